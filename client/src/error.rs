//! What can go wrong when talking to a daemon: [`Error`], the one error type of this crate, with
//! its parts — [`RemoteError`] (the daemon answered with an error object), [`CloseReason`] (why
//! a connection is gone) and [`ProtocolError`] (the daemon sent bytes we cannot read).
//!
//! This module only describes failures; deciding which failure a call gets is the business of
//! the connection (`connection.rs`) and the client (`client.rs`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hearth_protocol::{DecodeError, EncodeError, ErrorCode, ErrorObject, FrameError};
use serde::de::DeserializeOwned;

/// Everything a [`Client`](crate::Client) operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket could not be connected.
    #[error("cannot connect to {}: {}{}", path.display(), describe_io(source), connect_hint(source))]
    Connect {
        /// The socket path that was tried.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The socket path names something that is not a socket (a regular file, a folder), so
    /// no daemon can be listening there.
    #[error(
        "cannot connect to {}: it is {kind}, not a socket (check --socket or HEARTH_SOCKET)",
        path.display()
    )]
    NotASocket {
        /// The path that was tried.
        path: PathBuf,
        /// What it is instead: "a regular file", "a folder", ...
        kind: &'static str,
    },
    /// The TCP address could not be connected.
    #[error(
        "cannot connect to tcp:{addr}: {}{}",
        describe_io(source),
        connect_tcp_hint(source)
    )]
    ConnectTcp {
        /// The address that was tried.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The daemon answered the call with an error object.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The connection failed with an I/O error while this call was waiting for its answer.
    /// Calls made afterwards get [`Error::Closed`] with [`CloseReason::Io`].
    #[error("connection to the daemon lost: {}", describe_io(.0))]
    Io(#[source] io::Error),
    /// The connection is closed; see the reason.
    #[error("connection closed: {reason}")]
    Closed {
        /// Why the connection closed.
        reason: CloseReason,
    },
    /// The daemon sent something that is not valid hearth protocol; the connection was closed.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// No daemon answered and none could be started
    /// ([`Client::connect_or_start`](crate::Client::connect_or_start)).
    #[error(transparent)]
    Start(#[from] crate::start::StartError),
    /// No answer arrived within this time; the call was cancelled at the daemon.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The daemon speaks no protocol version this client speaks.
    #[error(
        "protocol version mismatch: this client speaks {}, the daemon speaks {}",
        versions(client),
        versions(daemon)
    )]
    VersionMismatch {
        /// The versions this client speaks.
        client: Vec<u32>,
        /// The versions the daemon said it speaks.
        daemon: Vec<u32>,
    },
    /// The call asked for something the connection's protocol version does not have
    /// (request options and streams need version 2; see
    /// [`Client::protocol_version`](crate::Client::protocol_version)). Nothing was sent.
    #[error("{what} need protocol version 2, and this connection speaks version {version}")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
        /// The connection's version.
        version: u32,
    },
    /// The params could not be encoded: their `Serialize` impl failed, raw params were not one
    /// MessagePack value, or the message would exceed the frame limit.
    #[error("cannot send request: {0}")]
    Encode(#[source] EncodeError),
    /// The result (or notification params, or error data) did not deserialize into the
    /// requested type.
    #[error("cannot decode the daemon's answer: {0}")]
    Decode(#[source] rmp_serde::decode::Error),
}

impl Error {
    /// The error code, when the daemon answered with an error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Remote(e) => Some(e.code),
            _ => None,
        }
    }

    /// Whether this error means the connection is unusable (closed, lost, or out of step):
    /// the caller needs a new [`Client`](crate::Client).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Self::Closed { .. } | Self::Io(_) | Self::Protocol(_))
    }

    /// Whether the daemon stopped the call because a newer one with the same supersede key
    /// arrived (-32801): no answer is needed any more, rather than a failure to show.
    pub fn is_superseded(&self) -> bool {
        self.code() == Some(ErrorCode::SUPERSEDED)
    }

    /// Whether the call ran out of time: the daemon answered -32002 (its deadline passed), or
    /// the client's own timeout expired ([`Error::Timeout`]).
    pub fn is_deadline_exceeded(&self) -> bool {
        self.code() == Some(ErrorCode::DEADLINE_EXCEEDED) || matches!(self, Self::Timeout(_))
    }

    /// The remote error, when the daemon answered with one.
    pub fn as_remote(&self) -> Option<&RemoteError> {
        match self {
            Self::Remote(e) => Some(e),
            _ => None,
        }
    }
}

/// An error object the daemon sent in answer to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// What kind of failure this is; see the constants on [`ErrorCode`].
    pub code: ErrorCode,
    /// The daemon's human-readable message.
    pub message: String,
    /// Structured detail, as raw MessagePack.
    pub data: Option<Bytes>,
}

impl RemoteError {
    /// Deserializes the error's `data`, if it has any.
    pub fn data<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        self.data
            .as_deref()
            .map(hearth_protocol::from_msgpack)
            .transpose()
            .map_err(Error::Decode)
    }
}

impl From<ErrorObject> for RemoteError {
    fn from(e: ErrorObject) -> Self {
        Self {
            code: e.code,
            message: e.message,
            data: e.data,
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code.name() {
            Some(name) => write!(f, "error {} ({name}): {}", self.code, self.message),
            None => write!(f, "error {}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for RemoteError {}

/// Why a connection is closed. Cheap to clone: every pending call gets a copy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CloseReason {
    /// The daemon closed the connection between messages.
    Eof,
    /// The daemon closed the connection in the middle of a frame.
    EofMidFrame,
    /// The daemon sent `$/fatal` and closed the connection.
    Fatal {
        /// The code it gave, e.g. [`ErrorCode::SERVER_BUSY`] for too many connections.
        code: ErrorCode,
        /// Its message.
        message: String,
        /// The protocol versions it speaks.
        supported: Vec<u32>,
    },
    /// Reading from or writing to the socket failed.
    Io(Arc<io::Error>),
    /// The daemon sent something this client cannot read.
    Protocol(ProtocolError),
    /// The last handle to the [`Client`](crate::Client) was dropped.
    Dropped,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Eof => f.write_str("the daemon closed the connection"),
            Self::EofMidFrame => {
                f.write_str("the daemon closed the connection in the middle of a message")
            }
            Self::Fatal { code, message, .. } => {
                let remote = RemoteError {
                    code: *code,
                    message: message.clone(),
                    data: None,
                };
                write!(f, "the daemon closed the connection with {remote}")
            }
            Self::Io(e) => write!(f, "i/o error: {}", describe_io(e)),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::Dropped => f.write_str("the client was dropped"),
        }
    }
}

/// Bytes from the daemon that are not valid hearth protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame header that can never be valid (empty, or over our maximum).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A frame body that is not a valid envelope.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A valid envelope with content we cannot use (e.g. an unreadable `$/fatal`).
    #[error("{0}")]
    Invalid(String),
}

/// An I/O error's text without the ` (os error N)` suffix, for one-line messages.
pub(crate) fn describe_io(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

/// The error for a failed connect to `path`: [`Error::NotASocket`] when a refusal is due to
/// the path naming something else, else [`Error::Connect`].
pub(crate) fn connect_error(path: &std::path::Path, source: io::Error) -> Error {
    use std::os::unix::fs::FileTypeExt;
    if source.kind() == io::ErrorKind::ConnectionRefused
        && let Ok(meta) = std::fs::metadata(path)
        && !meta.file_type().is_socket()
    {
        let kind = if meta.is_dir() {
            "a folder"
        } else if meta.is_file() {
            "a regular file"
        } else {
            "a special file"
        };
        return Error::NotASocket {
            path: path.to_owned(),
            kind,
        };
    }
    Error::Connect {
        path: path.to_owned(),
        source,
    }
}

fn connect_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => " — is hearthd running?",
        _ => "",
    }
}

fn connect_tcp_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => " — is hearthd running with --listen tcp:ADDR:PORT?",
        _ => "",
    }
}

fn versions(v: &[u32]) -> String {
    match v {
        [] => "no version it named".to_owned(),
        [one] => format!("version {one}"),
        many => {
            let list: Vec<String> = many.iter().map(u32::to_string).collect();
            format!("versions {}", list.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_say_whether_the_daemon_is_running() {
        let e = Error::Connect {
            path: "/run/x/hearthd.sock".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(
            e.to_string(),
            "cannot connect to /run/x/hearthd.sock: No such file or directory — is hearthd running?"
        );
        let e = Error::Connect {
            path: "/s".into(),
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(e.to_string(), "cannot connect to /s: Permission denied");
        let e = Error::ConnectTcp {
            addr: ([127, 0, 0, 1], 7070).into(),
            source: io::Error::from_raw_os_error(libc::ECONNREFUSED),
        };
        assert_eq!(
            e.to_string(),
            "cannot connect to tcp:127.0.0.1:7070: Connection refused — is hearthd running with \
             --listen tcp:ADDR:PORT?"
        );
        assert!(!e.is_connection_lost(), "nothing was connected");
    }

    #[test]
    fn remote_errors_name_known_codes() {
        let e = Error::Remote(RemoteError {
            code: ErrorCode::METHOD_NOT_FOUND,
            message: "no method `x`".into(),
            data: None,
        });
        assert_eq!(
            e.to_string(),
            "error -32601 (method not found): no method `x`"
        );
        assert_eq!(e.code(), Some(ErrorCode::METHOD_NOT_FOUND));
        let custom = RemoteError {
            code: ErrorCode(7),
            message: "m".into(),
            data: Some(Bytes::from(
                hearth_protocol::to_msgpack(&[1, 2]).unwrap_or_default(),
            )),
        };
        assert_eq!(custom.to_string(), "error 7: m");
        assert_eq!(custom.data::<Vec<u8>>().ok().flatten(), Some(vec![1, 2]));
    }

    #[test]
    fn version_mismatch_names_both_sides() {
        let e = Error::VersionMismatch {
            client: vec![1],
            daemon: vec![2, 3],
        };
        assert_eq!(
            e.to_string(),
            "protocol version mismatch: this client speaks version 1, the daemon speaks versions 2, 3"
        );
    }

    #[test]
    fn fatal_reason_carries_code_and_message() {
        let e = Error::Closed {
            reason: CloseReason::Fatal {
                code: ErrorCode::SERVER_BUSY,
                message: "too many connections".into(),
                supported: vec![1],
            },
        };
        assert_eq!(
            e.to_string(),
            "connection closed: the daemon closed the connection with error -32001 (server busy): too many connections"
        );
        assert!(e.is_connection_lost());
    }
}
