//! Integration tests for `hearth-server`, against real sockets: in-process servers spoken to
//! with raw frames (`wire`, `limits`), and the `hearthd` binary as a process (`daemon`).

mod adversarial;
mod daemon;
mod lifecycle;
mod limits;
mod support;
mod sync;
mod v2;
mod wire;
