//! Test support for the server's integration tests: everything comes from `hearth-testkit`
//! (test daemon, raw peer, frame builders, Gate, eventually, answer checker); this file only
//! adds what needs this crate's build, the path of the `hearthd` binary.

use std::path::Path;

pub(crate) use hearth_testkit::*;

/// The `hearthd` binary Cargo built for these tests.
pub(crate) fn hearthd() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_hearthd"))
}
