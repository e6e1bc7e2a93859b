//! `hearth` and the daemon's lifecycle: `call` starts hearthd when none answers (unless
//! `--no-start` or `HEARTH_NO_START=1`), `status` and `shutdown` never do, `doctor` reports
//! broken setups (an open folder, a stale socket, no daemon) and exits 1 on a problem, and
//! the rough edges a new user hit: an empty `HEARTH_SOCKET`, `--timeout 0s`, a `--socket`
//! that is not a socket, and invalid params that read like a decoder's internals.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use hearth_testkit::{eventually, hearthd_bin};
use serde_json::Value;

use crate::support::{TestDaemon, private_dir};

/// `hearth <args>` with `HEARTHD` naming the test's hearthd and nothing inherited about
/// sockets or starting.
fn hearth(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.args(args)
        .env_remove("HEARTH_SOCKET")
        .env_remove("HEARTH_NO_START")
        .env("HEARTHD", hearthd_bin());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("running hearth")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Shuts down the daemon on `socket` with `hearth shutdown` and waits for its lock to go.
async fn stop(socket: &Path) {
    let out = run(hearth(&["shutdown", "--socket"]).arg(socket));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lock = hearth_client::protocol::paths::lock_path(socket);
    eventually("the daemon to exit", || !lock.exists()).await;
}

#[tokio::test]
async fn call_starts_a_daemon_when_none_answers() {
    let dir = private_dir();
    let socket = dir.path().join("run").join("hearthd.sock");
    let out = run(hearth(&["call", "echo", r#"{"hi": 1}"#, "--compact", "--socket"]).arg(&socket));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), r#"{"hi":1}"#);
    let log = std::fs::read_to_string(dir.path().join("run").join("hearthd.log")).expect("log");
    assert!(log.contains("ready on"), "{log}");
    // The next call finds it running.
    let out = run(hearth(&["call", "echo", "2", "--socket"]).arg(&socket));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let log = std::fs::read_to_string(dir.path().join("run").join("hearthd.log")).expect("log");
    assert_eq!(log.matches("ready on").count(), 1, "{log}");
    stop(&socket).await;
}

#[test]
fn no_start_and_the_looking_commands_never_start_one() {
    let dir = private_dir();
    let socket = dir.path().join("run").join("hearthd.sock");
    /// Arguments, and a variable to set.
    type Case<'a> = (&'a [&'a str], Option<(&'a str, &'a str)>);
    let cases: [Case; 4] = [
        (&["call", "echo", "--no-start"], None),
        (&["call", "echo"], Some(("HEARTH_NO_START", "1"))),
        (&["status"], None),
        (&["shutdown"], None),
    ];
    for (args, env) in cases {
        let mut cmd = hearth(args);
        cmd.arg("--socket").arg(&socket);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("is hearthd running?"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(!dir.path().join("run").exists(), "nothing was started");
}

fn doctor(socket: &Path) -> (Option<i32>, Value) {
    let out = run(hearth(&["doctor", "--json", "--socket"]).arg(socket));
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    (out.status.code(), json)
}

fn finding<'a>(report: &'a Value, topic: &str, level: &str) -> Option<&'a str> {
    report["findings"]
        .as_array()?
        .iter()
        .find(|f| f["topic"] == topic && f["level"] == level)?["text"]
        .as_str()
}

#[test]
fn doctor_with_no_daemon_says_what_would_be_started() {
    let dir = private_dir();
    let socket = dir.path().join("run").join("hearthd.sock");
    let (code, report) = doctor(&socket);
    assert_eq!(code, Some(0), "{report:#}");
    assert!(finding(&report, "daemon", "note").is_some(), "{report:#}");
    assert_eq!(report["hearthd"]["how"], "from $HEARTHD", "{report:#}");
    assert_eq!(report["socket"]["chosen_by"], "from --socket");
    assert!(!dir.path().join("run").exists(), "doctor starts nothing");
}

#[test]
fn doctor_flags_a_folder_others_can_enter() {
    let dir = private_dir();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (code, report) = doctor(&open.join("hearthd.sock"));
    assert_eq!(code, Some(1), "{report:#}");
    let text = finding(&report, "folder", "problem").expect("a folder problem");
    assert!(text.contains("mode 755"), "{text}");
    assert!(!text.contains("chmod"), "{text}");
}

#[test]
fn doctor_flags_a_stale_socket_and_lock() {
    let dir = private_dir();
    let socket = dir.path().join("hearthd.sock");
    // A daemon that died without cleaning up: a socket nobody listens on, an unheld lock.
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    std::fs::write(hearth_client::protocol::paths::lock_path(&socket), b"").expect("lock");
    let (code, report) = doctor(&socket);
    assert_eq!(code, Some(1), "{report:#}");
    let stale = finding(&report, "socket", "problem").expect("a socket problem");
    assert!(stale.contains("stale"), "{stale}");
    let lock = finding(&report, "lock", "problem").expect("a lock problem");
    assert!(lock.contains("stale"), "{lock}");
}

#[test]
fn doctor_on_a_healthy_daemon_shows_its_limits() {
    let daemon = TestDaemon::start();
    let (code, report) = doctor(daemon.path());
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["daemon"]["answers"], true);
    assert!(report["daemon"]["limits"]["max_frame"].as_u64().is_some());
}

#[test]
fn an_empty_hearth_socket_means_unset() {
    let dir = private_dir();
    let out = run(hearth(&["status"])
        .env("HEARTH_SOCKET", "")
        .env("XDG_RUNTIME_DIR", dir.path()));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let expected = dir.path().join("hearth").join("hearthd.sock");
    assert!(
        text(&out.stderr).contains(&expected.display().to_string()),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_zero_timeout_is_refused() {
    let out = run(&mut hearth(&["status", "--timeout", "0s"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("must be more than zero"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_socket_path_that_is_not_a_socket_says_so() {
    let dir = private_dir();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    for (path, kind) in [(file.as_path(), "a regular file"), (dir.path(), "a folder")] {
        let out = run(hearth(&["call", "echo", "--socket"]).arg(path));
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("it is {kind}, not a socket")),
            "{err}"
        );
        assert!(!err.contains("is hearthd running"), "{err}");
    }
}

#[test]
fn invalid_params_name_the_field_and_what_was_expected() {
    let daemon = TestDaemon::start();
    let out = run(hearth(&["call", "sleep", r#"{"ms": "x"}"#, "--socket"]).arg(daemon.path()));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("field `ms`: expected u64, got string \"x\""),
        "{err}"
    );
    assert!(
        err.contains(r#""field":"ms""#),
        "the data names it too: {err}"
    );
    let out = run(hearth(&["call", "sleep", "--socket"]).arg(daemon.path()));
    let err = text(&out.stderr);
    assert!(err.contains("expected a map"), "{err}");
    assert!(
        !err.contains("unit value") && !err.contains("marker"),
        "{err}"
    );
}

#[test]
fn a_daemon_that_cannot_be_started_says_why() {
    let dir = private_dir();
    let socket = dir.path().join("run").join("hearthd.sock");
    let missing = dir.path().join("no-hearthd");
    let out = run(hearth(&["call", "echo", "--socket"])
        .arg(&socket)
        .env("HEARTHD", &missing));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot run {}: No such file or directory",
            missing.display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn bench_starts_a_daemon_too() {
    let dir = private_dir();
    let socket = dir.path().join("run").join("hearthd.sock");
    let out = run(hearth(&[
        "bench", "--calls", "20", "--warmup", "0s", "--json", "--socket",
    ])
    .arg(&socket));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let log = std::fs::read_to_string(dir.path().join("run").join("hearthd.log")).expect("log");
    assert!(log.contains("ready on"), "{log}");
    stop(&socket).await;
}

#[tokio::test]
async fn lsp_starts_a_daemon_and_keeps_stdout_for_the_editor() {
    let dir = private_dir();
    let socket = dir.path().join("run").join("hearthd.sock");
    // No editor: stdin is empty, so the session ends at once (without `shutdown`, exit 1).
    let out = run(hearth(&["lsp", "--no-index", "--socket"])
        .arg(&socket)
        .stdin(std::process::Stdio::null()));
    assert_ne!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        out.stdout.is_empty(),
        "stdout is the editor's: {}",
        text(&out.stdout)
    );
    let log = std::fs::read_to_string(dir.path().join("run").join("hearthd.log")).expect("log");
    assert!(log.contains("ready on"), "{log}");
    stop(&socket).await;
}
