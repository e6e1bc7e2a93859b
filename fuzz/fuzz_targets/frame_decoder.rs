//! Fuzz target: `FrameDecoder` over an arbitrary byte stream delivered in arbitrary chunks.
//! Input: `[max][Plan...]` — the first byte picks the maximum frame size, the rest is a
//! chunking plan and the stream (see `hearth_fuzz::Plan`). Checks that the frames, and the
//! error that ends the stream if any, are the same whatever the chunking: fed whole, fed as
//! planned, and as a plain reading of the framing rules says. No panic on any input.

#![no_main]

use bytes::{Bytes, BytesMut};
use hearth_fuzz::Plan;
use hearth_protocol::{DEFAULT_MAX_FRAME, FrameDecoder, FrameError, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

/// What a decoder made of a stream: its frames, then how it stopped.
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Bytes>,
    error: Option<FrameError>,
    /// Whether the decoder ended between frames with nothing buffered.
    idle: bool,
}

/// Appends each chunk and takes every whole frame after it; stops at the first error, after
/// which the decoder must not be used.
fn feed<'a>(max: usize, chunks: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut dec = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => {
                    return Outcome {
                        frames,
                        error: Some(error),
                        idle: false,
                    };
                }
            }
        }
    }
    let idle = dec.is_idle(&buf);
    Outcome {
        frames,
        error: None,
        idle,
    }
}

/// The framing rules read plainly: a 4-byte big-endian length, never 0 nor above `max`.
fn model(max: usize, mut s: &[u8]) -> Outcome {
    let mut frames = Vec::new();
    while s.len() >= HEADER_LEN {
        let len = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
        let error = match len as usize {
            0 => Some(FrameError::Empty),
            n if n > max => Some(FrameError::TooLarge {
                len: u64::from(len),
                max,
            }),
            _ => None,
        };
        if error.is_some() {
            return Outcome {
                frames,
                error,
                idle: false,
            };
        }
        let Some(body) = s.get(HEADER_LEN..HEADER_LEN + len as usize) else {
            break;
        };
        frames.push(Bytes::copy_from_slice(body));
        s = &s[HEADER_LEN + len as usize..];
    }
    Outcome {
        frames,
        error: None,
        idle: s.is_empty(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let max = match m {
        0xff => DEFAULT_MAX_FRAME,
        m => 1 + usize::from(m) * 8,
    };
    let plan = Plan::parse(rest);
    let expected = model(max, plan.stream);
    assert_eq!(
        feed(max, std::iter::once(plan.stream)),
        expected,
        "fed whole"
    );
    assert_eq!(feed(max, plan.chunks()), expected, "fed in chunks");
    let bytewise = feed(max, plan.stream.chunks(1));
    assert_eq!(bytewise, expected, "fed one byte at a time");
});
