//! [`LangError`]: why a language-service operation did nothing, and how each variant is
//! reported to a client ([`LangError::to_method_error`]: code, message, `data`). Notifications
//! report these through `$/error` (see `rpc.rs`); requests answer with them.

use std::path::PathBuf;

use hearth_server::MethodError;
use hearth_server::protocol::ErrorCode;
use serde::Serialize;

/// Why an operation of the language service did nothing.
#[derive(Debug, thiserror::Error)]
pub enum LangError {
    /// The connection has no open document with this URI.
    #[error("document not open: {uri}")]
    NotOpen {
        /// The URI asked for.
        uri: String,
    },
    /// A change whose version is not newer than the document's.
    #[error("stale version {version} for {uri}: the document is at version {current}")]
    StaleVersion {
        /// The document.
        uri: String,
        /// The version the change carried.
        version: i64,
        /// The document's version.
        current: i64,
    },
    /// A change whose range ends before it starts.
    #[error("invalid range in change {index} for {uri}: start is after end")]
    InvalidRange {
        /// The document.
        uri: String,
        /// Which change in the list (zero-based).
        index: usize,
    },
    /// A document would be larger than the limit.
    #[error("document too large: {uri} would be {bytes} bytes; the limit is {max}")]
    TooLarge {
        /// The document.
        uri: String,
        /// Its size, in UTF-8 bytes, had it been accepted.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The connection has as many documents open as it may.
    #[error("too many open documents: cannot open {uri}; a connection may have {max} open")]
    TooManyDocuments {
        /// The document refused.
        uri: String,
        /// The limit.
        max: usize,
    },
    /// The folder to index cannot be used.
    #[error("cannot index {}: {source}", root.display())]
    BadRoot {
        /// The folder asked for.
        root: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The folder to index is not a directory.
    #[error("cannot index {}: not a directory", root.display())]
    NotADirectory {
        /// The path asked for.
        root: PathBuf,
    },
    /// Indexing was cancelled; the previous index stays.
    #[error("indexing cancelled")]
    Cancelled,
    /// The service failed (a bug): the indexing thread died, an update panicked.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct UriData<'a> {
    uri: &'a str,
}

#[derive(Serialize)]
struct RootData<'a> {
    root: &'a str,
}

impl LangError {
    /// The protocol error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotOpen { .. }
            | Self::StaleVersion { .. }
            | Self::InvalidRange { .. }
            | Self::TooLarge { .. }
            | Self::TooManyDocuments { .. }
            | Self::BadRoot { .. }
            | Self::NotADirectory { .. } => ErrorCode::INVALID_PARAMS,
            Self::Cancelled => ErrorCode::REQUEST_CANCELLED,
            Self::Internal(_) => ErrorCode::INTERNAL_ERROR,
        }
    }

    /// The URI this error is about, if any.
    pub fn uri(&self) -> Option<&str> {
        match self {
            Self::NotOpen { uri }
            | Self::StaleVersion { uri, .. }
            | Self::InvalidRange { uri, .. }
            | Self::TooLarge { uri, .. }
            | Self::TooManyDocuments { uri, .. } => Some(uri),
            _ => None,
        }
    }

    /// The error as the router sends it: code, this error's message, and `data` holding
    /// `{"uri"}` or `{"root"}` when there is one.
    pub fn to_method_error(&self) -> MethodError {
        let e = MethodError::new(self.code().0, self.to_string());
        match self {
            Self::BadRoot { root, .. } | Self::NotADirectory { root } => e.with_data(&RootData {
                root: &root.to_string_lossy(),
            }),
            _ => match self.uri() {
                Some(uri) => e.with_data(&UriData { uri }),
                None => e,
            },
        }
    }
}

impl From<LangError> for MethodError {
    fn from(e: LangError) -> Self {
        e.to_method_error()
    }
}
