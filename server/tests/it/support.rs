//! Test support for the server's integration tests: everything comes from `hearth-testkit`
//! (test daemon, raw peer, frame builders, Gate, eventually, answer checker); this file only
//! names the `hearthd` binary these tests run, which lives in the `hearthd` package now.

use std::path::Path;

pub(crate) use hearth_testkit::*;

/// The `hearthd` binary, built for these tests by `hearth_testkit::hearthd_bin`.
pub(crate) fn hearthd() -> &'static Path {
    hearthd_bin()
}
