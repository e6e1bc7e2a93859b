//! hearth-lsp's integration tests, one binary: a scripted LSP editor drives gateways in memory
//! against an in-process hearth-server with the language service — the session rules
//! (initialize, shutdown, exit), the JSON-RPC errors LSP prescribes, documents and completion
//! (UTF-16 positions), indexing with progress and workspace symbols across two gateways,
//! cancel and supersede, the daemon's death. (The `hearth lsp` process is tested with the CLI.)

mod documents;
mod errors;
mod requests;
mod session;
mod support;
