//! Writing messages: [`Encoder`] appends whole frames (header and body) to a `BytesMut`, so a
//! connection can gather many frames and hand them to the kernel in one write.
//!
//! Each method writes exactly one frame or nothing: when serialization fails or the body would
//! exceed the encoder's maximum, the buffer is truncated back to where it was. Params and
//! results can be given as any `Serialize` value (structs become maps with field names) or as
//! MessagePack bytes that are copied verbatim (`*_raw`), which is how an echo avoids decoding.

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::error::{EncodeError, ErrorObject};
use crate::frame::{DEFAULT_MAX_FRAME, HEADER_LEN};
use crate::message::{Kind, RequestId};

/// Appends frames to a buffer, refusing any whose body would exceed `max_frame`.
#[derive(Debug, Clone, Copy)]
pub struct Encoder {
    max_frame: usize,
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
        }
    }

    /// The largest body this encoder writes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Runs `body` between a header placeholder and the patched header; undoes everything if
    /// `body` fails or the result is too large.
    fn frame(
        &self,
        dst: &mut BytesMut,
        body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let start = dst.len();
        dst.put_u32(0);
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
        id: RequestId,
        method: &str,
        params: &P,
    ) -> Result<(), EncodeError> {
        self.frame(dst, |b| {
            header(b, 5, Kind::Request);
            uint(b, id);
            str(b, method);
            payload(b, Payload::Value(params))
        })
    }

    /// `[1, 0, id, method, params]` with params already MessagePack.
    pub fn request_raw(
        &self,
        dst: &mut BytesMut,
        id: RequestId,
        method: &str,
        params: &[u8],
    ) -> Result<(), EncodeError> {
        self.frame(dst, |b| {
            header(b, 5, Kind::Request);
            uint(b, id);
            str(b, method);
            payload::<()>(b, Payload::Raw(params))
        })
    }

    /// `[1, 1, id, nil, result]`.
    pub fn response<R: Serialize + ?Sized>(
        &self,
        dst: &mut BytesMut,
        id: RequestId,
        result: &R,
    ) -> Result<(), EncodeError> {
        self.frame(dst, |b| {
            header(b, 5, Kind::Response);
            uint(b, id);
            nil(b);
            payload(b, Payload::Value(result))
        })
    }

    /// `[1, 1, id, nil, result]` with the result already MessagePack.
    pub fn response_raw(
        &self,
        dst: &mut BytesMut,
        id: RequestId,
        result: &[u8],
    ) -> Result<(), EncodeError> {
        self.frame(dst, |b| {
            header(b, 5, Kind::Response);
            uint(b, id);
            nil(b);
            payload::<()>(b, Payload::Raw(result))
        })
    }

    /// `[1, 1, id, {"code", "message", "data"?}, nil]`.
    pub fn error_response(
        &self,
        dst: &mut BytesMut,
        id: RequestId,
        error: &ErrorObject,
    ) -> Result<(), EncodeError> {
        self.frame(dst, |b| {
            header(b, 5, Kind::Response);
            uint(b, id);
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
        self.frame(dst, |b| {
            header(b, 4, Kind::Notification);
            str(b, method);
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
        self.frame(dst, |b| {
            header(b, 4, Kind::Notification);
            str(b, method);
            payload::<()>(b, Payload::Raw(params))
        })
    }

    /// `[1, 2, "$/error", {"code", "message", "data"?}]`: an error that belongs to no request.
    pub fn error_notification(
        &self,
        dst: &mut BytesMut,
        error: &ErrorObject,
    ) -> Result<(), EncodeError> {
        self.frame(dst, |b| {
            header(b, 4, Kind::Notification);
            str(b, crate::reserved::ERROR);
            error_map(b, error);
            Ok(())
        })
    }

    /// `[1, 3, id]`.
    pub fn cancel(&self, dst: &mut BytesMut, id: RequestId) -> Result<(), EncodeError> {
        self.frame(dst, |b| {
            header(b, 3, Kind::Cancel);
            uint(b, id);
            Ok(())
        })
    }
}

// The envelope fields are written with rmp's low-level writers. Writing into a `BytesMut`
// cannot fail (it grows), so their io results are ignored through `ok()`.

fn header(b: &mut BytesMut, len: u32, kind: Kind) {
    rmp::encode::write_array_len(&mut b.writer(), len).ok();
    uint(b, u64::from(crate::PROTOCOL_VERSION));
    uint(b, kind as u64);
}

fn uint(b: &mut BytesMut, v: u64) {
    rmp::encode::write_uint(&mut b.writer(), v).ok();
}

fn str(b: &mut BytesMut, s: &str) {
    rmp::encode::write_str(&mut b.writer(), s).ok();
}

fn nil(b: &mut BytesMut) {
    b.put_u8(0xc0);
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
