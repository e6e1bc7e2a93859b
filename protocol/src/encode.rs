//! Writing messages: [`Encoder`] appends whole frames (header and body) to a `BytesMut`, so a
//! connection can gather many frames and hand them to the kernel in one write.
//!
//! Each method writes exactly one frame or nothing: when serialization fails or the body would
//! exceed the encoder's maximum, the buffer is truncated back to where it was. Params and
//! results can be given as any `Serialize` value (structs become maps with field names) or as
//! MessagePack bytes that are copied verbatim (`*_raw`), which is how an echo avoids decoding.
//!
//! An encoder writes one protocol version (version 1 unless built with
//! [`Encoder::with_version`]); what only version 2 has — request options, partial results —
//! is refused by a version 1 encoder with [`EncodeError::NotInVersion`].

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::error::{EncodeError, ErrorObject};
use crate::frame::{DEFAULT_MAX_FRAME, HEADER_LEN};
use crate::message::{Kind, RequestId, RequestOptions, Version};

/// Room for a body's envelope fields: array header, version, kind, an id and a method's
/// string header.
const ENVELOPE: usize = 16;
/// What a serialized payload is first given room for; it grows past that as needed.
const SERIALIZED_GUESS: usize = 64;

/// Appends frames to a buffer, refusing any whose body would exceed `max_frame`.
#[derive(Debug, Clone, Copy)]
pub struct Encoder {
    max_frame: usize,
    version: Version,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

/// The value part of a message: serialized now, or already MessagePack.
enum Payload<'a, T: ?Sized> {
    Value(&'a T),
    Raw(&'a [u8]),
}

impl Encoder {
    /// An encoder whose frames carry at most `max_frame` body bytes (at most `u32::MAX`).
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame: max_frame.min(u32::MAX as usize),
            version: Version::V1,
        }
    }

    /// The same encoder writing envelopes of `version`.
    pub fn with_version(self, version: Version) -> Self {
        Self { version, ..self }
    }

    /// The version this encoder writes.
    pub fn version(&self) -> Version {
        self.version
    }

    fn require(&self, version: Version, what: &'static str) -> Result<(), EncodeError> {
        if self.version >= version {
            Ok(())
        } else {
            Err(EncodeError::NotInVersion {
                what,
                version: self.version.number(),
            })
        }
    }

    /// The largest body this encoder writes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Appends `prefix` (which starts with the header's placeholder), runs `body` to append
    /// the rest, and patches the header; undoes everything if `body` fails or the result is
    /// too large.
    ///
    /// `expected` is the body size to make room for up front (exact for raw payloads, a guess
    /// for serialized ones), so a fresh or small buffer grows once rather than field by field.
    #[inline]
    fn frame(
        &self,
        dst: &mut BytesMut,
        expected: usize,
        prefix: &Prefix,
        body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let start = dst.len();
        dst.reserve(HEADER_LEN + expected.min(self.max_frame));
        // All of the prefix's buffer, then cut back to what it holds: a copy of a fixed size
        // is a few moves, one of the prefix's own length a call to memcpy.
        dst.put_slice(&prefix.buf);
        dst.truncate(start + prefix.len);
        if let Err(e) = body(dst) {
            dst.truncate(start);
            return Err(e);
        }
        let len = dst.len() - start - HEADER_LEN;
        if len > self.max_frame {
            dst.truncate(start);
            return Err(EncodeError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        dst[start..start + HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }

    /// `[1, 0, id, method, params]`.
    pub fn request<P: Serialize + ?Sized>(
        &self,
        dst: &mut BytesMut,
        id: impl Into<RequestId>,
        method: &str,
        params: &P,
    ) -> Result<(), EncodeError> {
        let mut p = Prefix::new(self.version, 5, Kind::Request);
        p.uint(id.into().get());
        p.str_head(method.len());
        self.frame(dst, ENVELOPE + method.len() + SERIALIZED_GUESS, &p, |b| {
            b.put_slice(method.as_bytes());
            payload(b, Payload::Value(params))
        })
    }

    /// `[1, 0, id, method, params]` with params already MessagePack.
    pub fn request_raw(
        &self,
        dst: &mut BytesMut,
        id: impl Into<RequestId>,
        method: &str,
        params: &[u8],
    ) -> Result<(), EncodeError> {
        let mut p = Prefix::new(self.version, 5, Kind::Request);
        p.uint(id.into().get());
        p.str_head(method.len());
        self.frame(dst, ENVELOPE + method.len() + params.len(), &p, |b| {
            b.put_slice(method.as_bytes());
            payload::<()>(b, Payload::Raw(params))
        })
    }

    /// `[1, 1, id, nil, result]`.
    pub fn response<R: Serialize + ?Sized>(
        &self,
        dst: &mut BytesMut,
        id: impl Into<RequestId>,
        result: &R,
    ) -> Result<(), EncodeError> {
        let mut p = Prefix::new(self.version, 5, Kind::Response);
        p.uint(id.into().get());
        p.nil();
        self.frame(dst, ENVELOPE + SERIALIZED_GUESS, &p, |b| {
            payload(b, Payload::Value(result))
        })
    }

    /// `[1, 1, id, nil, result]` with the result already MessagePack.
    pub fn response_raw(
        &self,
        dst: &mut BytesMut,
        id: impl Into<RequestId>,
        result: &[u8],
    ) -> Result<(), EncodeError> {
        let mut p = Prefix::new(self.version, 5, Kind::Response);
        p.uint(id.into().get());
        p.nil();
        self.frame(dst, ENVELOPE + result.len(), &p, |b| {
            payload::<()>(b, Payload::Raw(result))
        })
    }

    /// `[1, 1, id, {"code", "message", "data"?}, nil]`.
    pub fn error_response(
        &self,
        dst: &mut BytesMut,
        id: impl Into<RequestId>,
        error: &ErrorObject,
    ) -> Result<(), EncodeError> {
        let mut p = Prefix::new(self.version, 5, Kind::Response);
        p.uint(id.into().get());
        self.frame(dst, ENVELOPE + error_map_size(error), &p, |b| {
            error_map(b, error);
            nil(b);
            Ok(())
        })
    }

    /// `[1, 2, method, params]`.
    pub fn notification<P: Serialize + ?Sized>(
        &self,
        dst: &mut BytesMut,
        method: &str,
        params: &P,
    ) -> Result<(), EncodeError> {
        let mut p = Prefix::new(self.version, 4, Kind::Notification);
        p.str_head(method.len());
        self.frame(dst, ENVELOPE + method.len() + SERIALIZED_GUESS, &p, |b| {
            b.put_slice(method.as_bytes());
            payload(b, Payload::Value(params))
        })
    }

    /// `[1, 2, method, params]` with params already MessagePack.
    pub fn notification_raw(
        &self,
        dst: &mut BytesMut,
        method: &str,
        params: &[u8],
    ) -> Result<(), EncodeError> {
        let mut p = Prefix::new(self.version, 4, Kind::Notification);
        p.str_head(method.len());
        self.frame(dst, ENVELOPE + method.len() + params.len(), &p, |b| {
            b.put_slice(method.as_bytes());
            payload::<()>(b, Payload::Raw(params))
        })
    }

    /// `[1, 2, "$/error", {"code", "message", "data"?}]`: an error that belongs to no request.
    pub fn error_notification(
        &self,
        dst: &mut BytesMut,
        error: &ErrorObject,
    ) -> Result<(), EncodeError> {
        let p = Prefix::new(self.version, 4, Kind::Notification);
        self.frame(dst, ENVELOPE + error_map_size(error), &p, |b| {
            str(b, crate::reserved::ERROR);
            error_map(b, error);
            Ok(())
        })
    }

    /// `[1, 3, id]`.
    pub fn cancel(&self, dst: &mut BytesMut, id: impl Into<RequestId>) -> Result<(), EncodeError> {
        let mut p = Prefix::new(self.version, 3, Kind::Cancel);
        p.uint(id.into().get());
        self.frame(dst, ENVELOPE, &p, |_| Ok(()))
    }

    /// `[2, 0, id, method, params, opts]` (or `[v, 0, id, method, params]` when every option
    /// has its default). Options other than the defaults need a version 2 encoder.
    pub fn request_with<P: Serialize + ?Sized>(
        &self,
        dst: &mut BytesMut,
        id: impl Into<RequestId>,
        method: &str,
        params: &P,
        options: &RequestOptions,
    ) -> Result<(), EncodeError> {
        if options.is_default() {
            return self.request(dst, id, method, params);
        }
        self.require(Version::V2, "request options")?;
        let mut p = Prefix::new(self.version, 6, Kind::Request);
        p.uint(id.into().get());
        p.str_head(method.len());
        self.frame(
            dst,
            ENVELOPE + method.len() + SERIALIZED_GUESS + options_size(options),
            &p,
            |b| {
                b.put_slice(method.as_bytes());
                payload(b, Payload::Value(params))?;
                options_map(b, options);
                Ok(())
            },
        )
    }

    /// [`Encoder::request_with`] with params already MessagePack.
    pub fn request_raw_with(
        &self,
        dst: &mut BytesMut,
        id: impl Into<RequestId>,
        method: &str,
        params: &[u8],
        options: &RequestOptions,
    ) -> Result<(), EncodeError> {
        if options.is_default() {
            return self.request_raw(dst, id, method, params);
        }
        self.require(Version::V2, "request options")?;
        let mut p = Prefix::new(self.version, 6, Kind::Request);
        p.uint(id.into().get());
        p.str_head(method.len());
        self.frame(
            dst,
            ENVELOPE + method.len() + params.len() + options_size(options),
            &p,
            |b| {
                b.put_slice(method.as_bytes());
                payload::<()>(b, Payload::Raw(params))?;
                options_map(b, options);
                Ok(())
            },
        )
    }

    /// `[2, 4, id, seq, chunk]`: a partial result (version 2 only).
    pub fn partial<C: Serialize + ?Sized>(
        &self,
        dst: &mut BytesMut,
        id: impl Into<RequestId>,
        seq: u64,
        chunk: &C,
    ) -> Result<(), EncodeError> {
        self.require(Version::V2, "partial results")?;
        let mut p = Prefix::new(self.version, 5, Kind::Partial);
        p.uint(id.into().get());
        p.uint(seq);
        self.frame(dst, ENVELOPE + 9 + SERIALIZED_GUESS, &p, |b| {
            payload(b, Payload::Value(chunk))
        })
    }

    /// `[2, 4, id, seq, chunk]` with the chunk already MessagePack.
    pub fn partial_raw(
        &self,
        dst: &mut BytesMut,
        id: impl Into<RequestId>,
        seq: u64,
        chunk: &[u8],
    ) -> Result<(), EncodeError> {
        self.require(Version::V2, "partial results")?;
        let mut p = Prefix::new(self.version, 5, Kind::Partial);
        p.uint(id.into().get());
        p.uint(seq);
        self.frame(dst, ENVELOPE + 9 + chunk.len(), &p, |b| {
            payload::<()>(b, Payload::Raw(chunk))
        })
    }
}

// The envelope fields — small arrays, unsigned integers, strings — are written by hand: they
// are on every message's path, and each is a marker byte and a big-endian length or value
// (the tests check every size class against rmp's writers). Error maps and serialized
// payloads go through rmp.

/// The most a [`Prefix`] holds: the header's placeholder, the envelope's array header,
/// version and kind, two unsigned integers and a string header.
const PREFIX_MAX: usize = HEADER_LEN + 3 + 9 + 9 + 5;

/// The start of a frame, put together on the stack and appended in one copy: the header's
/// placeholder (patched by [`Encoder::frame`]), the envelope's array header with its version
/// and kind (three single bytes, as the array is short and version and kind are positive
/// fixints), then the scalar fields and the string header that come before the envelope's
/// first variable-length part. Writing these field by field into the `BytesMut` cost a
/// capacity check and a length update each. `N` other than the default: the same for other
/// runs of short fields (an options map's).
struct Prefix<const N: usize = PREFIX_MAX> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Prefix<N> {
    /// An empty run of fields.
    #[inline(always)]
    fn empty() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// Appends the fields to `b`: all `N` bytes, then cut back to what they are (a copy of a
    /// fixed size is a few moves, one of the fields' own length a call to memcpy).
    #[inline(always)]
    fn put(&self, b: &mut BytesMut) {
        let start = b.len();
        b.put_slice(&self.buf);
        b.truncate(start + self.len);
    }
}

impl Prefix {
    #[inline(always)]
    fn new(version: Version, len: u8, kind: Kind) -> Self {
        const _: () = assert!(
            (Version::LATEST as u32) < 0x80,
            "the version must be a fixint"
        );
        debug_assert!(len <= 15);
        let mut buf = [0u8; PREFIX_MAX];
        buf[HEADER_LEN..HEADER_LEN + 3].copy_from_slice(&[0x90 | len, version as u8, kind as u8]);
        Self {
            buf,
            len: HEADER_LEN + 3,
        }
    }
}

impl<const N: usize> Prefix<N> {
    #[inline(always)]
    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// An unsigned integer in its shortest MessagePack form.
    #[inline(always)]
    fn uint(&mut self, v: u64) {
        if v < 0x80 {
            self.push(&[v as u8]);
        } else if v <= 0xff {
            self.push(&[0xcc, v as u8]);
        } else if v <= 0xffff {
            let [a, b] = (v as u16).to_be_bytes();
            self.push(&[0xcd, a, b]);
        } else if v <= 0xffff_ffff {
            let [a, b, c, d] = (v as u32).to_be_bytes();
            self.push(&[0xce, a, b, c, d]);
        } else {
            let [a, b, c, d, e, f, g, h] = v.to_be_bytes();
            self.push(&[0xcf, a, b, c, d, e, f, g, h]);
        }
    }

    /// The header [`str`] writes for a string of `n` bytes.
    #[inline(always)]
    fn str_head(&mut self, n: usize) {
        if n < 32 {
            self.push(&[0xa0 | n as u8]);
        } else if n <= 0xff {
            self.push(&[0xd9, n as u8]);
        } else if n <= 0xffff {
            let [a, b] = (n as u16).to_be_bytes();
            self.push(&[0xda, a, b]);
        } else {
            let [a, b, c, d] = (n as u32).to_be_bytes();
            self.push(&[0xdb, a, b, c, d]);
        }
    }

    #[inline(always)]
    fn nil(&mut self) {
        self.push(&[0xc0]);
    }

    #[cfg(test)]
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A string: its shortest header, then its bytes. A string longer than `u32::MAX` cannot fit
/// a frame; its header is then wrong, but the frame is refused as too large anyway.
#[inline]
fn str(b: &mut BytesMut, s: &str) {
    let n = s.len();
    if n < 32 {
        b.put_u8(0xa0 | n as u8);
    } else if n <= 0xff {
        b.put_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        b.put_u8(0xda);
        b.put_u16(n as u16);
    } else {
        b.put_u8(0xdb);
        b.put_u32(n as u32);
    }
    b.put_slice(s.as_bytes());
}

/// About what [`options_map`] writes.
fn options_size(o: &RequestOptions) -> usize {
    48 + o.supersede.as_ref().map_or(0, |k| k.as_str().len())
}

/// The options map, with only the options that differ from their defaults, in a fixed order.
/// The names are written with their fixstr headers, the fields before the supersede key's
/// bytes in one copy.
fn options_map(b: &mut BytesMut, o: &RequestOptions) {
    let len =
        u8::from(o.deadline_ms.is_some()) + u8::from(o.supersede.is_some()) + u8::from(o.stream);
    // map header, "deadline_ms" and a uint, "supersede" and a string header
    let mut fields = Prefix::<{ 1 + 12 + 9 + 10 + 5 }>::empty();
    fields.push(&[0x80 | len]);
    if let Some(ms) = o.deadline_ms {
        fields.push(b"\xabdeadline_ms");
        fields.uint(ms);
    }
    if let Some(key) = &o.supersede {
        fields.push(b"\xa9supersede");
        fields.str_head(key.as_str().len());
    }
    fields.put(b);
    if let Some(key) = &o.supersede {
        b.put_slice(key.as_str().as_bytes());
    }
    if o.stream {
        b.put_slice(b"\xa6stream\xc3");
    }
}

#[inline]
fn nil(b: &mut BytesMut) {
    b.put_u8(0xc0);
}

/// About what [`error_map`] writes: keys and headers, the message and the data.
fn error_map_size(e: &ErrorObject) -> usize {
    32 + e.message.len() + e.data.as_ref().map_or(0, |d| d.len())
}

fn error_map(b: &mut BytesMut, e: &ErrorObject) {
    let len = if e.data.is_some() { 3 } else { 2 };
    rmp::encode::write_map_len(&mut b.writer(), len).ok();
    str(b, "code");
    rmp::encode::write_sint(&mut b.writer(), e.code.0).ok();
    str(b, "message");
    str(b, &e.message);
    if let Some(data) = &e.data {
        str(b, "data");
        b.extend_from_slice(data);
    }
}

fn payload<T: Serialize + ?Sized>(b: &mut BytesMut, p: Payload<'_, T>) -> Result<(), EncodeError> {
    match p {
        Payload::Raw(bytes) => {
            b.extend_from_slice(bytes);
            Ok(())
        }
        Payload::Value(v) => {
            let mut ser = rmp_serde::Serializer::new(b.writer()).with_struct_map();
            v.serialize(&mut ser)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What rmp writes for the same value: the reference for the hand-written fields.
    fn rmp_bytes(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out);
        out
    }

    #[test]
    fn uints_match_rmp_in_every_size_class() {
        let edges = [
            0,
            1,
            0x7f,
            0x80,
            0xff,
            0x100,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ];
        for v in edges {
            let theirs = rmp_bytes(|w| {
                rmp::encode::write_uint(w, v).ok();
            });
            let mut prefix = Prefix::new(Version::V1, 3, Kind::Cancel);
            prefix.uint(v);
            prefix.uint(v);
            let both = [&theirs[..], &theirs[..]].concat();
            assert_eq!(&prefix.bytes()[HEADER_LEN + 3..], &both[..], "uint {v:#x}");
        }
    }

    #[test]
    fn strings_match_rmp_in_every_size_class() {
        for n in [0, 1, 31, 32, 255, 256, 0xffff, 0x1_0000] {
            let s = "x".repeat(n);
            let mut ours = BytesMut::new();
            str(&mut ours, &s);
            let theirs = rmp_bytes(|w| {
                rmp::encode::write_str(w, &s).ok();
            });
            assert_eq!(&ours[..], &theirs[..], "string of {n} bytes");
            let mut prefix = Prefix::new(Version::V1, 4, Kind::Notification);
            prefix.uint(u64::MAX);
            prefix.uint(u64::MAX);
            prefix.str_head(n);
            assert_eq!(
                &prefix.bytes()[HEADER_LEN + 3 + 18..],
                &theirs[..theirs.len() - n],
                "string header for {n} bytes"
            );
        }
    }

    #[test]
    fn options_maps_match_rmp() {
        for deadline_ms in [None, Some(5), Some(u64::MAX)] {
            for supersede in [None, Some(String::new()), Some("k".repeat(40))] {
                for stream in [false, true] {
                    let o = RequestOptions {
                        deadline_ms,
                        supersede: supersede.clone().map(crate::Text::from),
                        stream,
                    };
                    let mut ours = BytesMut::new();
                    options_map(&mut ours, &o);
                    let theirs = rmp_bytes(|w| {
                        let len = u32::from(deadline_ms.is_some())
                            + u32::from(supersede.is_some())
                            + u32::from(stream);
                        rmp::encode::write_map_len(w, len).ok();
                        if let Some(ms) = deadline_ms {
                            rmp::encode::write_str(w, "deadline_ms").ok();
                            rmp::encode::write_uint(w, ms).ok();
                        }
                        if let Some(key) = &supersede {
                            rmp::encode::write_str(w, "supersede").ok();
                            rmp::encode::write_str(w, key).ok();
                        }
                        if stream {
                            rmp::encode::write_str(w, "stream").ok();
                            rmp::encode::write_bool(w, true).ok();
                        }
                    });
                    assert_eq!(&ours[..], &theirs[..], "{o:?}");
                }
            }
        }
    }

    #[test]
    fn envelope_headers_match_rmp() {
        for (len, kind) in [
            (5, Kind::Request),
            (5, Kind::Response),
            (4, Kind::Notification),
            (3, Kind::Cancel),
            (5, Kind::Partial),
        ] {
            let prefix = Prefix::new(Version::V2, len, kind);
            let ours = &prefix.bytes()[HEADER_LEN..];
            let theirs = rmp_bytes(|w| {
                rmp::encode::write_array_len(w, u32::from(len)).ok();
                rmp::encode::write_uint(w, 2).ok();
                rmp::encode::write_uint(w, kind as u64).ok();
            });
            assert_eq!(ours, &theirs[..], "{kind:?}");
        }
    }
}
