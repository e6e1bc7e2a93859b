//! Errors of the wire format: what can be wrong with a frame header ([`FrameError`]), with a
//! frame body ([`DecodeError`]), or with a value we were asked to send ([`EncodeError`]); and
//! the error object that travels inside a response ([`ErrorObject`]) with its numeric
//! [`ErrorCode`]s. Which of these close a connection and which are answered is the server's
//! business, guided by [`DecodeError::is_fatal`].

use bytes::Bytes;

use crate::message::RequestId;

/// Numeric error codes carried in error responses, `$/error` and `$/fatal`.
///
/// The first six are JSON-RPC/LSP numbers; the rest are hearth's own, in the JSON-RPC
/// server-error range. Handlers may use any other code for their own errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ErrorCode(pub i64);

impl ErrorCode {
    /// The frame body is not one well-formed MessagePack value.
    pub const PARSE_ERROR: Self = Self(-32700);
    /// The body is MessagePack but not a valid envelope, has trailing bytes, or reuses an id
    /// that is still in flight.
    pub const INVALID_REQUEST: Self = Self(-32600);
    /// No handler is registered under that method name.
    pub const METHOD_NOT_FOUND: Self = Self(-32601);
    /// The params do not deserialize into what the method expects.
    pub const INVALID_PARAMS: Self = Self(-32602);
    /// The handler failed or panicked, or its result could not be encoded.
    pub const INTERNAL_ERROR: Self = Self(-32603);
    /// The request was cancelled by a cancel message before it finished.
    pub const REQUEST_CANCELLED: Self = Self(-32800);
    /// The daemon is at a limit (connections) and refused the work.
    pub const SERVER_BUSY: Self = Self(-32001);
    /// The request ran past its deadline.
    pub const DEADLINE_EXCEEDED: Self = Self(-32002);
    /// The daemon is shutting down and will not finish (or start) this request.
    pub const SHUTTING_DOWN: Self = Self(-32003);
    /// The envelope carries a protocol version the receiver does not speak.
    pub const UNSUPPORTED_VERSION: Self = Self(-32004);
    /// A frame length is larger than the receiver's maximum (or a message to send would be).
    pub const FRAME_TOO_LARGE: Self = Self(-32005);
    /// A frame length of zero.
    pub const EMPTY_FRAME: Self = Self(-32006);
    /// The peer kept sending bad input past the daemon's tolerance.
    pub const TOO_MANY_ERRORS: Self = Self(-32007);
    /// A frame was started but not finished within the daemon's time limit.
    pub const FRAME_TIMEOUT: Self = Self(-32008);
    /// A newer request with the same supersede key replaced this one (version 2; LSP's
    /// ContentModified number).
    pub const SUPERSEDED: Self = Self(-32801);

    /// A short human name for the well-known codes, `None` for any other.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::PARSE_ERROR => "parse error",
            Self::INVALID_REQUEST => "invalid request",
            Self::METHOD_NOT_FOUND => "method not found",
            Self::INVALID_PARAMS => "invalid params",
            Self::INTERNAL_ERROR => "internal error",
            Self::REQUEST_CANCELLED => "request cancelled",
            Self::SERVER_BUSY => "server busy",
            Self::DEADLINE_EXCEEDED => "deadline exceeded",
            Self::SHUTTING_DOWN => "shutting down",
            Self::UNSUPPORTED_VERSION => "unsupported protocol version",
            Self::FRAME_TOO_LARGE => "frame too large",
            Self::EMPTY_FRAME => "empty frame",
            Self::TOO_MANY_ERRORS => "too many errors",
            Self::FRAME_TIMEOUT => "frame timeout",
            Self::SUPERSEDED => "superseded",
            _ => return None,
        })
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The error half of a response: `{"code": int, "message": str, "data"?: any}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorObject {
    /// What kind of failure this is.
    pub code: ErrorCode,
    /// A human-readable sentence.
    pub message: String,
    /// Optional structured detail, kept as raw MessagePack.
    pub data: Option<Bytes>,
}

impl ErrorObject {
    /// An error with no data.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches raw MessagePack bytes as `data`.
    pub fn with_raw_data(mut self, data: Bytes) -> Self {
        self.data = Some(data);
        self
    }
}

impl std::fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for ErrorObject {}

/// What is wrong with a frame header. Both are fatal for the connection: after a bad length
/// the byte stream can no longer be trusted to be in step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The header declared a zero-length body.
    #[error("empty frame: a frame length of 0 is not allowed")]
    Empty,
    /// The header declared more than the receiver accepts.
    #[error("frame too large: {len} bytes declared, at most {max} allowed")]
    TooLarge {
        /// The declared length.
        len: u64,
        /// The receiver's maximum.
        max: usize,
    },
}

impl FrameError {
    /// The error code this failure is reported with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Empty => ErrorCode::EMPTY_FRAME,
            Self::TooLarge { .. } => ErrorCode::FRAME_TOO_LARGE,
        }
    }
}

/// What is wrong with a frame body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not one well-formed MessagePack value (truncated, a reserved marker, a
    /// length that overruns the frame, or nesting deeper than allowed).
    #[error("parse error: {reason}")]
    Parse {
        /// What is wrong, for the error message.
        reason: String,
        /// The request id, when the body starts like a request (`[1, 0, id, ...`) whose id
        /// could be read before the damage.
        id: Option<RequestId>,
    },
    /// The body is MessagePack but not a valid hearth envelope.
    #[error("invalid envelope: {reason}")]
    Invalid {
        /// What is wrong, for the error message.
        reason: String,
        /// The request id, when the body is a request whose id could be read.
        id: Option<RequestId>,
    },
    /// A valid envelope followed by more bytes inside the same frame.
    #[error("invalid envelope: {extra} trailing bytes after the message")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
        /// The request id, when the message is a request.
        id: Option<RequestId>,
    },
    /// The envelope's first element is a protocol version this crate does not speak.
    #[error("unsupported protocol version {found}; supported: {supported:?}", supported = crate::SUPPORTED_VERSIONS)]
    UnsupportedVersion {
        /// The version the peer sent.
        found: u64,
    },
}

impl DecodeError {
    /// The error code this failure is reported with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Parse { .. } => ErrorCode::PARSE_ERROR,
            Self::Invalid { .. } | Self::TrailingBytes { .. } => ErrorCode::INVALID_REQUEST,
            Self::UnsupportedVersion { .. } => ErrorCode::UNSUPPORTED_VERSION,
        }
    }

    /// The id of the request this error belongs to, when it could be read.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            Self::Parse { id, .. } | Self::Invalid { id, .. } | Self::TrailingBytes { id, .. } => {
                *id
            }
            Self::UnsupportedVersion { .. } => None,
        }
    }

    /// Whether the connection must be closed (with `$/fatal`) rather than answered.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::UnsupportedVersion { .. })
    }

    /// The error object to send back for this failure.
    pub fn to_error_object(&self) -> ErrorObject {
        ErrorObject::new(self.code(), self.to_string())
    }
}

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The value's `Serialize` impl failed.
    #[error("cannot serialize to MessagePack: {0}")]
    Serialize(#[from] rmp_serde::encode::Error),
    /// The message needs a newer protocol version than the encoder writes.
    #[error("{what} need protocol version 2; this encoder writes version {version}")]
    NotInVersion {
        /// What was asked for.
        what: &'static str,
        /// The encoder's version.
        version: u32,
    },
    /// The encoded message would exceed the frame limit.
    #[error("message too large: {len} bytes, at most {max} allowed")]
    TooLarge {
        /// The encoded length.
        len: usize,
        /// The limit it was checked against.
        max: usize,
    },
}
