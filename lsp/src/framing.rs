//! LSP's base protocol on a byte stream: `Content-Length: N\r\n` (other header fields, such as
//! `Content-Type`, are accepted and ignored) then `\r\n`, then N bytes of JSON. [`Decoder`]
//! cuts messages out of a buffer, pure and byte-at-a-time safe; [`FrameReader`] drives it over
//! any `AsyncRead`; [`encode`] frames one outgoing body.
//!
//! The header is not trusted: the header block is at most [`MAX_HEADER`] bytes, the declared
//! length is parsed with checked arithmetic and compared with the configured maximum before
//! anything is reserved, and the body is split off without copying. What the body means (JSON,
//! JSON-RPC) is `message.rs`'s business, not this module's.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::FrameError;

/// The largest header block (all header lines and the blank line) accepted, in bytes.
pub const MAX_HEADER: usize = 8 * 1024;

/// The default largest message body accepted, in bytes (64 MiB): far above any real document,
/// far below what would hurt the machine.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Where the decoder is: looking for the end of a header block, or waiting for a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Body(usize),
}

/// Cuts LSP messages out of a byte buffer.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    max_message: usize,
}

impl Decoder {
    /// A decoder that refuses bodies longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            state: State::Header,
            max_message,
        }
    }

    /// The next whole message body in `buf`, removing it (and its header) from `buf`.
    /// `Ok(None)`: not enough bytes yet. An error is final: the stream cannot be resynchronised.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if self.state == State::Header {
            let Some(end) = find_header_end(buf) else {
                if buf.len() > MAX_HEADER {
                    return Err(FrameError::HeaderTooLong { max: MAX_HEADER });
                }
                return Ok(None);
            };
            if end + 4 > MAX_HEADER {
                return Err(FrameError::HeaderTooLong { max: MAX_HEADER });
            }
            let len = parse_header(&buf[..end])?;
            if len > self.max_message {
                return Err(FrameError::TooLarge {
                    len,
                    max: self.max_message,
                });
            }
            let _ = buf.split_to(end + 4);
            // Reserve what this message needs, now that its length is known to be acceptable.
            buf.reserve(len.saturating_sub(buf.len()));
            self.state = State::Body(len);
        }
        match self.state {
            State::Body(len) if buf.len() >= len => {
                self.state = State::Header;
                Ok(Some(buf.split_to(len).freeze()))
            }
            _ => Ok(None),
        }
    }

    /// Whether a message has been started (header bytes seen or a body awaited) — so that an
    /// end of input now cuts a message in half.
    pub fn is_mid_message(&self, buf: &BytesMut) -> bool {
        self.state != State::Header || !buf.is_empty()
    }
}

/// The offset of the `\r\n\r\n` that ends the header block, looking no further than the cap.
fn find_header_end(buf: &[u8]) -> Option<usize> {
    let window = &buf[..buf.len().min(MAX_HEADER)];
    window.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The `Content-Length` of a header block (without its final blank line).
fn parse_header(block: &[u8]) -> Result<usize, FrameError> {
    let text = std::str::from_utf8(block).map_err(|_| FrameError::NotAscii)?;
    let mut length = None;
    for line in text.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            return Err(FrameError::BadHeaderLine(truncate(line)));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(FrameError::DuplicateLength);
            }
            length = Some(parse_length(value.trim())?);
        }
        // Content-Type and anything else: accepted, ignored (LSP allows only utf-8 anyway).
    }
    length.ok_or(FrameError::MissingLength)
}

/// A decimal length, digit by digit with checked arithmetic.
fn parse_length(value: &str) -> Result<usize, FrameError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FrameError::BadLength(truncate(value)));
    }
    value.bytes().try_fold(0usize, |n, b| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(b - b'0')))
            .ok_or_else(|| FrameError::BadLength(truncate(value)))
    })
}

/// At most 60 characters of a bad header, for the error message.
fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Reads LSP messages from a byte stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    reader: R,
    buf: BytesMut,
    decoder: Decoder,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads from `reader`, refusing bodies over `max_message` bytes.
    pub fn new(reader: R, max_message: usize) -> Self {
        Self {
            reader,
            buf: BytesMut::with_capacity(16 * 1024),
            decoder: Decoder::new(max_message),
        }
    }

    /// The next message body; `Ok(None)` at a clean end of input (between messages).
    ///
    /// Cancel safety: bytes read stay in the reader's buffer, so dropping this future and
    /// calling it again loses nothing.
    pub async fn next(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            if let Some(body) = self.decoder.decode(&mut self.buf)? {
                return Ok(Some(body));
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            let n = self
                .reader
                .read_buf(&mut self.buf)
                .await
                .map_err(FrameError::Io)?;
            if n == 0 {
                return if self.decoder.is_mid_message(&self.buf) {
                    Err(FrameError::EofMidMessage)
                } else {
                    Ok(None)
                };
            }
        }
    }
}

/// `body` framed for the editor: the `Content-Length` header, then the body.
pub fn encode(body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &str) -> Vec<u8> {
        let mut v = Vec::new();
        encode(body.as_bytes(), &mut v);
        v
    }

    #[test]
    fn byte_at_a_time_yields_each_message_once() {
        let mut input = framed(r#"{"a":1}"#);
        input.extend(b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\ncontent-length: 2\r\n\r\n{}");
        let mut dec = Decoder::new(1024);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in input {
            buf.extend_from_slice(&[b]);
            while let Some(body) = dec.decode(&mut buf).expect("valid") {
                got.push(body);
            }
        }
        assert_eq!(got, vec![Bytes::from(r#"{"a":1}"#), Bytes::from("{}")]);
        assert!(!dec.is_mid_message(&buf));
    }

    #[test]
    fn a_length_over_the_cap_is_refused_before_the_body_arrives() {
        let mut dec = Decoder::new(10);
        let mut buf = BytesMut::from(&b"Content-Length: 11\r\n\r\n"[..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        ));
        let mut buf = BytesMut::from(&b"Content-Length: 99999999999999999999999999\r\n\r\n"[..]);
        assert!(matches!(
            Decoder::new(10).decode(&mut buf),
            Err(FrameError::BadLength(_))
        ));
    }

    #[test]
    fn malformed_headers_are_errors() {
        type Check = fn(&FrameError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            (b"Content-Type: x\r\n\r\n", |e| {
                matches!(e, FrameError::MissingLength)
            }),
            (b"Content-Length: -1\r\n\r\n", |e| {
                matches!(e, FrameError::BadLength(_))
            }),
            (b"Content-Length: \r\n\r\n", |e| {
                matches!(e, FrameError::BadLength(_))
            }),
            (b"hello\r\n\r\n", |e| {
                matches!(e, FrameError::BadHeaderLine(_))
            }),
            (b"Content-Length: 1\r\nContent-Length: 1\r\n\r\n", |e| {
                matches!(e, FrameError::DuplicateLength)
            }),
            (b"Content-Length: \xff\r\n\r\n", |e| {
                matches!(e, FrameError::NotAscii)
            }),
        ];
        for (input, ok) in cases {
            let err = Decoder::new(100)
                .decode(&mut BytesMut::from(*input))
                .expect_err("malformed");
            assert!(ok(&err), "{input:?} gave {err:?}");
        }
    }

    #[test]
    fn an_endless_header_is_refused_at_the_cap() {
        let mut dec = Decoder::new(100);
        let mut buf = BytesMut::from(&vec![b'x'; MAX_HEADER + 1][..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FrameError::HeaderTooLong { .. })
        ));
    }

    proptest::proptest! {
        /// Any sequence of bodies, framed and cut at any points, decodes to the same bodies.
        #[test]
        fn framed_bodies_survive_any_split(
            bodies in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..200), 1..8),
            cuts in proptest::collection::vec(0usize..2000, 0..12),
        ) {
            let mut input = Vec::new();
            for b in &bodies {
                encode(b, &mut input);
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
            cuts.push(input.len());
            cuts.sort_unstable();
            let mut dec = Decoder::new(1024);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut at = 0;
            for cut in cuts {
                buf.extend_from_slice(&input[at..cut]);
                at = cut;
                while let Some(body) = dec.decode(&mut buf).expect("valid") {
                    got.push(body.to_vec());
                }
            }
            proptest::prop_assert_eq!(got, bodies);
        }

        /// Arbitrary bytes never panic the decoder, and it never holds a body over the cap.
        #[test]
        fn arbitrary_input_never_panics(input in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let mut dec = Decoder::new(64);
            let mut buf = BytesMut::from(&input[..]);
            while let Ok(Some(body)) = dec.decode(&mut buf) {
                proptest::prop_assert!(body.len() <= 64);
            }
        }
    }

    #[tokio::test]
    async fn the_reader_tells_a_clean_end_from_a_cut_message() {
        let input = framed("{}");
        let mut r = FrameReader::new(&input[..], 100);
        assert_eq!(r.next().await.expect("ok"), Some(Bytes::from("{}")));
        assert_eq!(r.next().await.expect("clean end"), None);
        let cut = &input[..input.len() - 1];
        let mut r = FrameReader::new(cut, 100);
        assert!(matches!(r.next().await, Err(FrameError::EofMidMessage)));
    }
}
