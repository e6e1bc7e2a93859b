//! Helpers shared by the protocol tests: hex parsing and whole-stream decoding.

use bytes::{Bytes, BytesMut};
use hearth_protocol::{DEFAULT_MAX_FRAME, FrameDecoder, FrameError};

/// Bytes from a hex string with optional spaces: `"93 01 03 07"`.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(text, 16).expect("hex digit pair")
        })
        .collect()
}

/// Feeds `wire` to a fresh decoder in chunks of the given sizes (cycled), returning every
/// frame, or the first error.
pub(crate) fn frames_in_chunks(wire: &[u8], chunks: &[usize]) -> Result<Vec<Bytes>, FrameError> {
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = wire;
    let mut sizes = chunks.iter().copied().filter(|&n| n > 0).cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(frame) = dec.decode(&mut buf)? {
            out.push(frame);
        }
    }
    Ok(out)
}
