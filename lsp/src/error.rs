//! What ends a gateway with an error: [`LspError`] (returned by [`run`](crate::run)) and its
//! part [`FrameError`] (the editor's byte stream cannot be read as LSP messages). Errors the
//! gateway *answers* — JSON-RPC error responses — are not here: they are ordinary responses,
//! built in `message.rs` with the codes in [`codes`](crate::codes).

use std::io;

/// Why the editor's input cannot be read as LSP messages. LSP has no way to answer a broken
/// header (the reply could not be matched to anything), so each of these ends the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The header block has no `Content-Length`.
    #[error("malformed message header: no Content-Length")]
    MissingLength,
    /// Two `Content-Length` fields.
    #[error("malformed message header: Content-Length given twice")]
    DuplicateLength,
    /// `Content-Length` is not a non-negative decimal that fits.
    #[error("malformed message header: Content-Length {0:?} is not a length")]
    BadLength(String),
    /// A header line without `name: value`.
    #[error("malformed message header: {0:?} is not a `Name: value` line")]
    BadHeaderLine(String),
    /// Header bytes that are not ASCII.
    #[error("malformed message header: not ASCII")]
    NotAscii,
    /// No blank line within the header cap.
    #[error("malformed message header: no end of header within {max} bytes")]
    HeaderTooLong {
        /// The cap.
        max: usize,
    },
    /// The declared body is longer than the configured maximum; nothing was allocated for it.
    #[error("message of {len} bytes refused: the limit is {max} bytes")]
    TooLarge {
        /// The declared length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The input ended in the middle of a message.
    #[error("the editor closed its output in the middle of a message")]
    EofMidMessage,
    /// Reading the input failed.
    #[error("cannot read from the editor: {0}")]
    Io(#[source] io::Error),
}

/// Why [`run`](crate::run) stopped other than by the editor's `exit` or end of input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LspError {
    /// The editor's input is not LSP (see [`FrameError`]).
    #[error("{0}")]
    Input(#[from] FrameError),
    /// Writing to the editor failed (it closed its input?).
    #[error("cannot write to the editor: {0}")]
    Output(#[source] io::Error),
    /// hearthd could not be reached (not running? another socket path?).
    #[error("{0}")]
    Connect(#[source] hearth_client::Error),
    /// The connection to hearthd is gone (the daemon exited, or was restarted).
    #[error("lost the connection to hearthd: {reason}")]
    DaemonLost {
        /// What the client library said.
        reason: String,
    },
    /// The daemon speaks only protocol version 1; the gateway needs supersede and deadlines.
    #[error(
        "hearthd speaks protocol version {version}; hearth lsp needs version 2 (upgrade hearthd)"
    )]
    DaemonTooOld {
        /// The connection's version.
        version: u32,
    },
}
