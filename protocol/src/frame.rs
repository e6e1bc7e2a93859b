//! Framing: a 4-byte big-endian body length, then the body. [`FrameDecoder`] cuts frames out of
//! a receive buffer without copying them; the writing half lives in [`crate::encode`].
//!
//! Decoder contract: `decode` is called whenever new bytes were appended to the buffer. It
//! returns `Ok(Some(frame))` for each whole frame, `Ok(None)` when more bytes are needed (never
//! an error), and an error only for a header that can never be valid: a zero length or one
//! above the configured maximum. The length is checked before a single byte is reserved for
//! the body, so a hostile header costs nothing; the decoder then reserves at most
//! [`RESERVE_CHUNK`] at a time while the body arrives. After an error the stream is out of step
//! and the decoder must not be used again.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::FrameError;

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 4;

/// The default maximum frame body: 8 MiB.
pub const DEFAULT_MAX_FRAME: usize = 8 * 1024 * 1024;

/// The most the decoder reserves in one go while a large body arrives, so a peer that
/// announces a big frame and then stalls holds only what it actually sent.
pub const RESERVE_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the 4-byte header.
    Head,
    /// Header read; waiting for a body of this many bytes.
    Body(usize),
}

/// Splits length-prefixed frames off a byte buffer.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame: usize,
    state: State,
}

impl FrameDecoder {
    /// A decoder that refuses bodies longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame,
            state: State::Head,
        }
    }

    /// The largest body this decoder accepts.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Whether the decoder is between frames: no header or body bytes consumed and pending.
    /// A peer that closes the stream here closed it cleanly.
    pub fn is_idle(&self, buf: &BytesMut) -> bool {
        self.state == State::Head && buf.is_empty()
    }

    /// Takes the next whole frame body off the front of `src`, if there is one.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let len = match self.state {
            State::Body(len) => len,
            State::Head => {
                if src.len() < HEADER_LEN {
                    return Ok(None);
                }
                let declared = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
                if declared == 0 {
                    return Err(FrameError::Empty);
                }
                let len = declared as usize;
                if len > self.max_frame {
                    return Err(FrameError::TooLarge {
                        len: u64::from(declared),
                        max: self.max_frame,
                    });
                }
                if src.len() - HEADER_LEN >= len {
                    // The whole frame is here (the usual case): cut header and body off in
                    // one split and drop the header from the frozen frame, where advancing
                    // is a pointer bump, not a second pass over the buffer's bookkeeping.
                    let mut frame = src.split_to(HEADER_LEN + len).freeze();
                    frame.advance(HEADER_LEN);
                    return Ok(Some(frame));
                }
                src.advance(HEADER_LEN);
                self.state = State::Body(len);
                len
            }
        };
        if src.len() < len {
            src.reserve((len - src.len()).min(RESERVE_CHUNK));
            return Ok(None);
        }
        self.state = State::Head;
        Ok(Some(src.split_to(len).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for body in bodies {
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(body);
        }
        out
    }

    fn decode_all(dec: &mut FrameDecoder, buf: &mut BytesMut) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(frame) = dec.decode(buf).expect("valid stream") {
            out.push(frame);
        }
        out
    }

    #[test]
    fn whole_frames_in_one_buffer() {
        let wire = framed(&[b"a", b"bcd", &[0u8; 300]]);
        let mut buf = BytesMut::from(&wire[..]);
        let mut dec = FrameDecoder::new(1024);
        let frames = decode_all(&mut dec, &mut buf);
        assert_eq!(frames.len(), 3);
        assert_eq!(&frames[1][..], b"bcd");
        assert!(dec.is_idle(&buf));
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_frames() {
        let wire = framed(&[b"hello", b"x", &[7u8; 70_000]]);
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for &b in &wire {
            buf.extend_from_slice(&[b]);
            frames.extend(decode_all(&mut dec, &mut buf));
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(&frames[0][..], b"hello");
        assert_eq!(frames[2].len(), 70_000);
    }

    /// A whole frame is cut off in one piece (header and body together) and what follows it
    /// — part of a header, part of a body — stays in the buffer for the next call, exactly
    /// as when header and body arrive separately.
    #[test]
    fn a_whole_frame_leaves_what_follows_it() {
        let wire = framed(&[b"first", b"second"]);
        for cut in 9..wire.len() {
            let mut dec = FrameDecoder::new(64);
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(dec.decode(&mut buf), Ok(Some(Bytes::from_static(b"first"))));
            assert_eq!(&buf[..], &wire[9..cut], "cut at {cut}");
            assert_eq!(dec.is_idle(&buf), cut == 9);
            buf.extend_from_slice(&wire[cut..]);
            assert_eq!(
                dec.decode(&mut buf),
                Ok(Some(Bytes::from_static(b"second")))
            );
            assert!(dec.is_idle(&buf));
        }
    }

    #[test]
    fn zero_length_is_an_error() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert_eq!(
            FrameDecoder::new(16).decode(&mut buf),
            Err(FrameError::Empty)
        );
    }

    #[test]
    fn oversize_is_refused_from_the_header_alone() {
        let mut dec = FrameDecoder::new(16);
        let mut buf = BytesMut::from(&17u32.to_be_bytes()[..]);
        let cap_before = buf.capacity();
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        );
        assert_eq!(
            buf.capacity(),
            cap_before,
            "nothing reserved for a refused frame"
        );
        let mut exact = BytesMut::from(&framed(&[&[1u8; 16]])[..]);
        assert_eq!(
            dec.decode(&mut exact).map(|f| f.map(|f| f.len())),
            Ok(Some(16))
        );
        let mut huge = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(matches!(
            FrameDecoder::new(DEFAULT_MAX_FRAME).decode(&mut huge),
            Err(FrameError::TooLarge {
                len: 0xFFFF_FFFF,
                ..
            })
        ));
    }

    #[test]
    fn a_stalled_large_frame_reserves_only_a_chunk() {
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut buf = BytesMut::from(&(DEFAULT_MAX_FRAME as u32).to_be_bytes()[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(buf.capacity() <= 2 * RESERVE_CHUNK, "{}", buf.capacity());
        assert!(!dec.is_idle(&buf));
    }
}
