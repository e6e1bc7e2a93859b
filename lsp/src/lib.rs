//! `hearth-lsp` is `hearth lsp`: a Language Server Protocol gateway that lets any editor's
//! built-in LSP client use hearthd's language service. It speaks JSON-RPC 2.0 with
//! `Content-Length` framing to the editor (on stdin/stdout, or any byte streams) and hearth
//! (MessagePack, protocol version 2) to the daemon, over one [`hearth_client::Client`]
//! connection — so several gateways (several editor windows) share one daemon and its index.
//!
//! ```text
//! initialize                  → capabilities (incremental sync, completion, workspace symbols, utf-16)
//! initialized                 → workspace/index on the root, shown as $/progress
//! textDocument/didOpen|Change|Close → doc/open|change|close, in order
//! textDocument/completion     → complete (supersede "complete", deadline) → CompletionList
//! workspace/symbol            → symbols → SymbolInformation[]
//! $/cancelRequest             → the hearth call is dropped (a hearth cancel); -32800
//! ```
//!
//! [`run`] owns one session; docs/LSP.md is the user's and reviewer's account (the mapping in
//! full, error codes, limits, measurements). What this crate leaves out: it keeps no document
//! state of its own (the daemon does) and starts no daemon.

mod error;
pub mod framing;
mod gateway;
mod mapping;
pub mod message;
mod progress;
mod stdio;

use std::time::Duration;

pub use error::{FrameError, LspError};
pub use framing::DEFAULT_MAX_MESSAGE;
pub use mapping::{path_to_uri, uri_to_path};
pub use message::codes;
pub use stdio::serve_stdio;

/// How a gateway behaves. `Options::default()` is what `hearth lsp` uses.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The daemon should answer a completion within this long (sent as the hearth deadline);
    /// a late one is answered with an empty, incomplete list. Default 200 ms.
    pub completion_deadline: Duration,
    /// At most this many completion items (`None`: the service's default, 50).
    pub completion_limit: Option<u32>,
    /// At most this many workspace symbols (`None`: the service's default, 50).
    pub symbol_limit: Option<u32>,
    /// Index the workspace root on `initialized` (the editor can say otherwise with
    /// `initializationOptions: {"index": false}`). Default true.
    pub index_on_initialize: bool,
    /// The largest message accepted from the editor, in bytes; checked against the header
    /// before anything is allocated. Default [`DEFAULT_MAX_MESSAGE`] (64 MiB).
    pub max_message: usize,
    /// For [`serve_stdio`]: the bound on connecting (the `$/hello` handshake) and on each
    /// call's answer (streams excepted: indexing takes as long as it takes). Default none.
    pub daemon_timeout: Option<Duration>,
    /// At most this many editor requests run at once (further ones wait, and the editor's
    /// input is not read meanwhile); also kept below the daemon's in-flight limit. Default 32.
    pub max_concurrent: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            completion_deadline: Duration::from_millis(200),
            completion_limit: None,
            symbol_limit: None,
            index_on_initialize: true,
            max_message: DEFAULT_MAX_MESSAGE,
            max_concurrent: 32,
            daemon_timeout: None,
        }
    }
}

/// How a session ended normally: by the editor's `exit` or by the end of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// `shutdown` was received (and answered).
    pub shutdown_received: bool,
    /// The session ended with `exit` (else: the input ended).
    pub exit_received: bool,
}

impl ExitStatus {
    /// The process exit code LSP prescribes: 0 if `shutdown` came first, else 1.
    pub fn code(self) -> i32 {
        if self.shutdown_received { 0 } else { 1 }
    }
}

pub use gateway::run;
