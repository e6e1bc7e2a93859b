//! Frame builders for versions 1 and 2, so a test reads as the data it sends: [`Frames`]
//! wraps an [`Encoder`] of one version, [`opts`] builds request options, and [`frame`] puts
//! any body (well-formed or not) behind its true length.

use bytes::BytesMut;
use hearth_protocol::{Encoder, ErrorCode, ErrorObject, RequestOptions, Text, Version};
use serde::Serialize;

/// `body` behind a 4-byte big-endian header with its true length.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).expect("a body shorter than 4 GiB");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Request options, built fluently: `opts().deadline_ms(0).supersede("k").stream()`.
pub fn opts() -> RequestOptions {
    RequestOptions::default()
}

/// Builders on [`RequestOptions`] (implemented for it, so `opts().stream()` reads well).
pub trait OptsExt {
    /// With `"deadline_ms": ms`.
    fn deadline_ms(self, ms: u64) -> Self;
    /// With `"supersede": key`.
    fn supersede(self, key: &str) -> Self;
    /// With `"stream": true`.
    fn stream(self) -> Self;
}

impl OptsExt for RequestOptions {
    fn deadline_ms(mut self, ms: u64) -> Self {
        self.deadline_ms = Some(ms);
        self
    }

    fn supersede(mut self, key: &str) -> Self {
        self.supersede = Some(Text::from(key.to_owned()));
        self
    }

    fn stream(mut self) -> Self {
        self.stream = true;
        self
    }
}

/// Whole frames of one protocol version. Every builder panics if the message cannot be
/// encoded in that version (options or partials in version 1): that is a bug in the test.
#[derive(Debug, Clone, Copy)]
pub struct Frames {
    enc: Encoder,
}

impl Frames {
    /// Version 1 envelopes.
    pub fn v1() -> Self {
        Self::version(Version::V1)
    }

    /// Version 2 envelopes.
    pub fn v2() -> Self {
        Self::version(Version::V2)
    }

    /// Envelopes of `version`.
    pub fn version(version: Version) -> Self {
        Self {
            enc: Encoder::default().with_version(version),
        }
    }

    /// The version these frames carry.
    pub fn protocol(&self) -> Version {
        self.enc.version()
    }

    /// `[v, 0, id, method, params]`.
    pub fn request<P: Serialize + ?Sized>(&self, id: u64, method: &str, params: &P) -> BytesMut {
        let mut out = BytesMut::new();
        self.enc
            .request(&mut out, id, method, params)
            .expect("encode request");
        out
    }

    /// `[2, 0, id, method, params, opts]` (the 5-element form when `options` are defaults).
    pub fn request_with<P: Serialize + ?Sized>(
        &self,
        id: u64,
        method: &str,
        params: &P,
        options: &RequestOptions,
    ) -> BytesMut {
        let mut out = BytesMut::new();
        self.enc
            .request_with(&mut out, id, method, params, options)
            .expect("encode request with options");
        out
    }

    /// `[v, 1, id, nil, result]`.
    pub fn response<R: Serialize + ?Sized>(&self, id: u64, result: &R) -> BytesMut {
        let mut out = BytesMut::new();
        self.enc
            .response(&mut out, id, result)
            .expect("encode response");
        out
    }

    /// `[v, 1, id, {"code": code, "message": message}, nil]`.
    pub fn error_response(&self, id: u64, code: i64, message: &str) -> BytesMut {
        let mut out = BytesMut::new();
        self.enc
            .error_response(&mut out, id, &ErrorObject::new(ErrorCode(code), message))
            .expect("encode error response");
        out
    }

    /// `[v, 2, method, params]`.
    pub fn notification<P: Serialize + ?Sized>(&self, method: &str, params: &P) -> BytesMut {
        let mut out = BytesMut::new();
        self.enc
            .notification(&mut out, method, params)
            .expect("encode notification");
        out
    }

    /// `[v, 3, id]`.
    pub fn cancel(&self, id: u64) -> BytesMut {
        let mut out = BytesMut::new();
        self.enc.cancel(&mut out, id).expect("encode cancel");
        out
    }

    /// `[2, 4, id, seq, chunk]` (a client must never send one; tests send it to see it
    /// refused).
    pub fn partial<C: Serialize + ?Sized>(&self, id: u64, seq: u64, chunk: &C) -> BytesMut {
        let mut out = BytesMut::new();
        self.enc
            .partial(&mut out, id, seq, chunk)
            .expect("encode partial");
        out
    }
}
