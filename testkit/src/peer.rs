//! [`Raw`]: a peer that writes exactly the bytes a test gives it and decodes what comes back
//! with [`Message::decode_any`], in either protocol version, optionally feeding an
//! [`AnswerChecker`] with everything it sends and reads.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use hearth_protocol::reserved::{Fatal, Stats};
use hearth_protocol::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME, Decoded, ErrorCode, FrameDecoder, Message, Notification,
    RequestOptions, Response, Version,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::{AnswerChecker, Frames, PATIENCE};

/// Any stream a test connects with.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A raw connection to a daemon.
pub struct Raw {
    /// The connection; tests may split it or write to it directly.
    pub stream: Box<dyn Stream>,
    buf: BytesMut,
    decoder: FrameDecoder,
    frames: Frames,
    checker: Option<AnswerChecker>,
}

impl Raw {
    /// Connects to `path`, speaking version 1.
    pub async fn connect(path: &Path) -> Self {
        Self::from_stream(UnixStream::connect(path).await.expect("connect"))
    }

    /// Connects to `path`, speaking version 2 and checking every answer.
    pub async fn connect_v2(path: &Path) -> Self {
        Self::connect(path).await.speaking(Version::V2).checked()
    }

    /// A peer on an already connected stream, speaking version 1.
    pub fn from_stream(stream: impl Stream + 'static) -> Self {
        Self {
            stream: Box::new(stream),
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(DEFAULT_MAX_FRAME),
            frames: Frames::v1(),
            checker: None,
        }
    }

    /// The same peer writing envelopes of `version` from now on.
    pub fn speaking(mut self, version: Version) -> Self {
        self.frames = Frames::version(version);
        self
    }

    /// The same peer with an [`AnswerChecker`] fed everything it sends through the request
    /// helpers and everything it reads.
    pub fn checked(mut self) -> Self {
        self.checker = Some(AnswerChecker::new());
        self
    }

    /// The version this peer writes.
    pub fn version(&self) -> Version {
        self.frames.protocol()
    }

    /// The frame builders of this peer's version.
    pub fn frames(&self) -> Frames {
        self.frames
    }

    /// The answer checker (panics if the peer was not made [`Raw::checked`]).
    pub fn checker(&mut self) -> &mut AnswerChecker {
        self.checker
            .as_mut()
            .expect("this peer has no answer checker")
    }

    /// Writes `bytes` as they are.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends `body` framed with its true length.
    pub async fn send_body(&mut self, body: &[u8]) {
        self.send_bytes(&crate::frame(body)).await;
    }

    /// A request frame in this peer's version (not sent, not recorded).
    pub fn request_frame<P: Serialize + ?Sized>(
        &self,
        id: u64,
        method: &str,
        params: &P,
    ) -> BytesMut {
        self.frames.request(id, method, params)
    }

    /// Records request `id` in the checker, if there is one (for frames sent by hand).
    pub fn sent(&mut self, id: u64, stream: bool) {
        if let Some(c) = self.checker.as_mut() {
            c.sent(id, stream);
        }
    }

    /// Sends a request.
    pub async fn request<P: Serialize + ?Sized>(&mut self, id: u64, method: &str, params: &P) {
        let frame = self.request_frame(id, method, params);
        self.sent(id, false);
        self.send_bytes(&frame).await;
    }

    /// Sends a request with options (version 2).
    pub async fn request_with<P: Serialize + ?Sized>(
        &mut self,
        id: u64,
        method: &str,
        params: &P,
        options: &RequestOptions,
    ) {
        let frame = self.frames.request_with(id, method, params, options);
        self.sent(id, options.stream);
        self.send_bytes(&frame).await;
    }

    /// Cancels request `id`.
    pub async fn cancel(&mut self, id: u64) {
        let frame = self.frames.cancel(id);
        self.send_bytes(&frame).await;
    }

    /// Answers the daemon's request `id` with `result`.
    pub async fn respond<R: Serialize + ?Sized>(&mut self, id: u64, result: &R) {
        let frame = self.frames.response(id, result);
        if let Some(c) = self.checker.as_mut() {
            c.answered_daemon(id);
        }
        self.send_bytes(&frame).await;
    }

    /// Answers the daemon's request `id` with an error.
    pub async fn respond_error(&mut self, id: u64, code: i64, message: &str) {
        let frame = self.frames.error_response(id, code, message);
        if let Some(c) = self.checker.as_mut() {
            c.answered_daemon(id);
        }
        self.send_bytes(&frame).await;
    }

    /// The next message and its envelope's version, or `None` at a clean end of stream.
    pub async fn next_decoded(&mut self) -> Option<Decoded> {
        self.read_message(false).await
    }

    /// The next message, or `None` at a clean end of stream. Every message but `$/fatal` must
    /// carry this peer's version (PROTOCOL.md 15.2: everything the daemon sends carries the
    /// connection's version).
    pub async fn next(&mut self) -> Option<Message> {
        let d = self.read_message(false).await?;
        self.check_version(&d);
        Some(d.message)
    }

    /// Like [`Self::next`], but a connection reset also counts as the end.
    pub async fn next_or_reset(&mut self) -> Option<Message> {
        let d = self.read_message(true).await?;
        self.check_version(&d);
        Some(d.message)
    }

    fn check_version(&self, d: &Decoded) {
        let fatal = matches!(&d.message, Message::Notification(n) if n.method() == "$/fatal");
        if !fatal {
            assert_eq!(
                d.version,
                self.version(),
                "the daemon answered in another version: {:?}",
                d.message
            );
        }
    }

    async fn read_message(&mut self, reset_is_end: bool) -> Option<Decoded> {
        loop {
            if let Some(frame) = self
                .decoder
                .decode(&mut self.buf)
                .expect("daemon sent a bad frame")
            {
                let d = Message::decode_any(frame, DEFAULT_MAX_DEPTH)
                    .expect("daemon sent a bad message");
                if let Some(c) = self.checker.as_mut() {
                    c.received(&d.message);
                }
                return Some(d);
            }
            match tokio::time::timeout(PATIENCE, self.stream.read_buf(&mut self.buf))
                .await
                .expect("timed out waiting for the daemon")
            {
                Ok(0) => {
                    assert!(self.buf.is_empty(), "stream ended mid-frame");
                    return None;
                }
                Ok(_) => {}
                Err(e) if reset_is_end && e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return None;
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Reads until the checker has no request outstanding, returning every other message
    /// (notifications, daemon requests) in order. Needs a checked peer.
    pub async fn drain_answers(&mut self) -> Vec<Message> {
        let mut other = Vec::new();
        while !self.checker().all_answered() {
            match self.next().await {
                Some(Message::Response(_) | Message::Partial(_)) => {}
                Some(m) => other.push(m),
                None => panic!(
                    "the connection ended with {:?} unanswered; other messages: {other:?}",
                    self.checker().outstanding()
                ),
            }
        }
        other
    }

    /// Asks `$/stats` until `pred` holds (the counters change in the daemon and nothing
    /// announces it; bounded by [`PATIENCE`]). Uses ids from 2^40 up.
    pub async fn stats_until(&mut self, what: &str, pred: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = std::time::Instant::now() + PATIENCE;
        let mut id = 1u64 << 40;
        loop {
            id += 1;
            let stats: Stats = self.call(id, "$/stats", &()).await;
            if pred(&stats) {
                return stats;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; stats: {stats:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The next message, which must be a response.
    pub async fn response(&mut self) -> Response {
        match self.next().await {
            Some(Message::Response(r)) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// The next message, which must be a notification.
    pub async fn notification(&mut self) -> Notification {
        match self.next().await {
            Some(Message::Notification(n)) => n,
            other => panic!("expected a notification, got {other:?}"),
        }
    }

    /// Calls and returns the typed result, panicking on an error response or on any other
    /// message arriving first.
    pub async fn call<P: Serialize + ?Sized, R: DeserializeOwned>(
        &mut self,
        id: u64,
        method: &str,
        params: &P,
    ) -> R {
        self.request(id, method, params).await;
        let r = self.response().await;
        assert_eq!(r.id, id);
        let bytes = r.outcome.unwrap_or_else(|e| panic!("{method} failed: {e}"));
        hearth_protocol::from_msgpack(&bytes).expect("result type")
    }

    /// Expects `$/fatal` with `code` (listing the versions the daemon speaks), then the end
    /// of the stream.
    pub async fn expect_fatal(&mut self, code: ErrorCode) -> Fatal {
        let n = self.notification().await;
        assert_eq!(n.method(), "$/fatal");
        let fatal: Fatal = hearth_protocol::from_msgpack(&n.params).expect("fatal shape");
        assert_eq!(fatal.code, code.0, "{fatal:?}");
        assert_eq!(fatal.supported, hearth_protocol::SUPPORTED_VERSIONS);
        assert!(
            self.next_or_reset().await.is_none(),
            "connection should close after $/fatal"
        );
        fatal
    }
}

/// The error code of a response, panicking if it succeeded.
pub fn error_code(r: &Response) -> ErrorCode {
    match &r.outcome {
        Err(e) => e.code,
        Ok(v) => panic!("expected an error for id {}, got result {v:?}", r.id),
    }
}

/// The result bytes of a response, panicking if it failed.
pub fn result_bytes(r: Response) -> Bytes {
    r.outcome
        .unwrap_or_else(|e| panic!("id {} failed: {e}", r.id))
}

/// The result of a response as a typed value, panicking if it failed.
pub fn result_value<T: DeserializeOwned>(r: &Response) -> T {
    let bytes = r
        .outcome
        .as_ref()
        .unwrap_or_else(|e| panic!("id {} failed: {e}", r.id));
    hearth_protocol::from_msgpack(bytes).expect("result type")
}
