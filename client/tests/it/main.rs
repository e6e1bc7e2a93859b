//! Integration tests of `hearth-client` and the `hearth` binary against a real
//! `hearth-server` daemon (and, for what a real one never sends, scripted fakes). One test
//! binary; helpers in `support`.

mod bench;
mod calls;
mod cancel;
mod cli;
mod handshake;
mod lifecycle;
mod notifications;
mod support;
mod tcp;
mod v2;
