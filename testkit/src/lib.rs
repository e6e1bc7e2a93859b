//! `hearth-testkit` is what hearth's integration tests share, in the spirit of h2's
//! `tests/h2-support`: a [`TestServer`] (a `hearth-server` in the test's runtime on a temporary
//! socket, with its handle, limits and extra methods), a [`TestDaemon`] (a `hearth-server` on a
//! runtime and thread of its own, in a [`private_dir`], which a test can kill outright), a
//! [`Daemon`] (a `hearthd` process), a [`Raw`] peer that writes exactly the bytes a test gives
//! it and decodes every message with [`hearth_protocol::Message::decode_any`], frame builders
//! for versions 1 and 2 ([`Frames`], [`opts`]), a [`Gate`] a handler waits on until the test
//! opens it, [`hearthd_bin`] (the `hearthd` binary, built on demand), [`eventually`] for the
//! few conditions nothing announces, [`within`] for a bounded await, and the
//! [`AnswerChecker`], which is fed every request id sent and every message received and asserts
//! the protocol's exactly-one-answer rule. It is a dev-dependency only: no library crate may
//! depend on it, and it depends on no client crate, so client tests can use it too.

mod binary;
mod checker;
mod daemon;
mod eventually;
mod frames;
mod gate;
mod killable;
mod peer;

pub use binary::hearthd_bin;
pub use checker::AnswerChecker;
pub use daemon::{Daemon, TestServer, proc_status_kib, run_to_exit, traversable_copy};
pub use eventually::{PATIENCE, eventually, within};
pub use frames::{Frames, OptsExt, frame, opts};
pub use gate::Gate;
pub use killable::{TestDaemon, private_dir};
pub use peer::{Raw, Stream, error_code, result_bytes, result_value};
