//! Integration tests for `hearthd`: the language service as the daemon serves it — the same
//! router (`hearthd::router`) in process on a real socket, spoken to with raw frames
//! (`lang`) — and the `hearthd` binary itself as a process (`binary`).

mod binary;
mod lang;
mod lifecycle;
mod support;
