//! [`hearthd_bin`]: the path of the `hearthd` binary for tests that run it as a process. The
//! binary belongs to the `hearthd` package, so a test of another package (the server's, the
//! CLI's) cannot name it with `env!("CARGO_BIN_EXE_hearthd")`; this builds it with Cargo, in
//! the test's own target folder and profile, once per test process. It leaves running the
//! binary to [`Daemon`](crate::Daemon).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>/hearthd`, built (or brought up to date) with `cargo build -p hearthd`
/// in the profile and target folder of the running test binary, the first time it is asked
/// for. Panics with cargo's output when the build fails.
pub fn hearthd_bin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build)
}

fn build() -> PathBuf {
    // A test binary lives in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let target_dir = profile_dir.parent().expect("the target folder");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        // Not --locked: the test build itself already checked or updated Cargo.lock, and a
        // manifest edited since then should rebuild, not fail.
        .args(["build", "--quiet", "-p", "hearthd", "--bin", "hearthd"])
        .arg("--target-dir")
        .arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(profile) => {
            cmd.args(["--profile", profile]);
        }
    }
    let out = cmd.output().expect("running cargo build for hearthd");
    assert!(
        out.status.success(),
        "cannot build hearthd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = profile_dir.join("hearthd");
    assert!(bin.is_file(), "no {}", bin.display());
    bin
}
