//! Integration tests of `hearth-client` against a real `hearth-server` daemon (and, for what a
//! real one never sends, scripted fakes). One test binary; helpers in `support`. The `hearth`
//! binary's tests live with it, in `cli/tests/it/`.

mod calls;
mod cancel;
mod handshake;
mod lifecycle;
mod notifications;
mod reconnect;
mod start;
mod support;
mod tcp;
mod v2;
