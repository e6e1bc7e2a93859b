//! The server library's errors: why a daemon could not start ([`StartError`]), why it stopped
//! serving ([`ServeError`]), what a handler reports to its caller ([`MethodError`]) and why a
//! notification could not be sent ([`NotifyError`]). Each variant says what failed and, for
//! start-up problems, what to do about it.

use std::path::PathBuf;

use bytes::Bytes;
use hearth_protocol::{ErrorCode, ErrorObject};
use serde::Serialize;

/// Why the daemon could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The socket's folder is not safe to use.
    #[error("refusing to use socket folder {path}: {problem}; {fix}")]
    UnsafeFolder {
        /// The folder.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// What the user can do.
        fix: String,
    },
    /// The socket path does not fit in a Unix socket address.
    #[error(
        "socket path {path} is {len} bytes long; Unix socket paths are limited to {max} bytes; choose a shorter path with --socket or HEARTH_SOCKET"
    )]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The most the platform allows.
        max: usize,
    },
    /// The socket path has no parent folder or no file name.
    #[error("socket path {0} must name a file inside a folder")]
    BadPath(PathBuf),
    /// Another daemon holds the lock or answers on the socket.
    #[error("hearthd is already running on {path}")]
    AlreadyRunning {
        /// The socket path.
        path: PathBuf,
    },
    /// Something that is not a socket sits where the socket should go.
    #[error("{path} exists and is not a socket; remove it or choose another path")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A TCP address that is not loopback, without the explicit override.
    #[error(
        "refusing to listen on {addr}: not a loopback address, so the daemon would be reachable from the network with no authentication; use 127.0.0.1 or ::1"
    )]
    NonLoopback {
        /// The address asked for.
        addr: std::net::SocketAddr,
    },
    /// Listening on TCP failed.
    #[error("cannot listen on tcp:{addr}")]
    Tcp {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A system call failed. The OS error is the [`source`](std::error::Error::source), not
    /// part of this message, so that printing the chain (`{:#}` with anyhow) says it once.
    #[error("{what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Why the daemon stopped serving other than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Accepting connections failed in a way that cannot be retried.
    #[error("accepting connections failed: {0}")]
    Accept(#[source] std::io::Error),
}

/// An error a handler returns to its caller: a code, a message and optional data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodError {
    pub(crate) object: ErrorObject,
}

impl MethodError {
    /// An error with an application-chosen code (avoid the reserved JSON-RPC range
    /// -32768..=-32000 unless the meaning matches).
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            object: ErrorObject::new(ErrorCode(code), message),
        }
    }

    /// -32602: the params were well formed but not acceptable.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::INVALID_PARAMS.0, message)
    }

    /// -32603: the handler failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::INTERNAL_ERROR.0, message)
    }

    /// Attaches structured data. If it cannot be serialized, the error says so instead.
    pub fn with_data<T: Serialize + ?Sized>(mut self, data: &T) -> Self {
        match hearth_protocol::to_msgpack(data) {
            Ok(bytes) => self.object.data = Some(Bytes::from(bytes)),
            Err(e) => {
                self.object.message =
                    format!("{} (error data not serializable: {e})", self.object.message);
            }
        }
        self
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.object.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.object.message
    }
}

impl std::fmt::Display for MethodError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.object.fmt(f)
    }
}

impl std::error::Error for MethodError {}

impl From<ErrorObject> for MethodError {
    fn from(object: ErrorObject) -> Self {
        Self { object }
    }
}

/// Why a handler's notification was not sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The connection it was for has closed.
    #[error("the connection is closed")]
    Closed,
    /// The connection's notification queue is full (only from the `try_` methods, which do
    /// not wait); send it later, or with the waiting method from async code.
    #[error("the connection's notification queue is full; try again later or use notify")]
    Full,
    /// The params could not be encoded (or were larger than a frame).
    #[error("cannot encode notification: {0}")]
    Encode(#[from] hearth_protocol::EncodeError),
}

/// Why a request the daemon made of its client ([`RequestContext::request`]) has no result.
///
/// [`RequestContext::request`]: crate::RequestContext::request
#[derive(Debug, thiserror::Error)]
pub enum ClientRequestError {
    /// The client answered with this error object.
    #[error("the client answered with an error: {0}")]
    Client(ErrorObject),
    /// The client did not answer within the daemon's timeout; the daemon sent a cancel.
    #[error("the client did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The connection closed before the client answered.
    #[error("the connection is closed")]
    Closed,
    /// The connection speaks version 1, which has no requests from the daemon.
    #[error("the connection speaks protocol version 1, which has no requests from the daemon")]
    Version1,
    /// The params could not be encoded (or were larger than a frame).
    #[error("cannot encode the request: {0}")]
    Encode(#[from] hearth_protocol::EncodeError),
    /// The params could not be serialized.
    #[error("cannot serialize the params: {0}")]
    Params(#[from] rmp_serde::encode::Error),
    /// The client's result did not deserialize into the type asked for.
    #[error("cannot decode the client's result: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
}
