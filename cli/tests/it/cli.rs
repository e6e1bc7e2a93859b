//! The `hearth` binary against a real daemon: output, stderr lines and exit codes.

use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::{TestDaemon, V1OnlyDaemon, hearth, hearth_command};

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn call_prints_the_result_as_json() {
    let daemon = TestDaemon::start();
    let out = hearth(daemon.path(), &["call", "echo", r#"{"hi":1}"#]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out), json!({"hi": 1}));

    let out = hearth(
        daemon.path(),
        &["call", "echo", "[1, 2.5, null]", "--compact"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[1,2.5,null]\n");

    let out = hearth(daemon.path(), &["call", "echo"]);
    assert_eq!(stdout_json(&out), Value::Null, "params default to null");
}

#[test]
fn a_remote_error_exits_1_and_names_the_code() {
    let daemon = TestDaemon::start();
    let out = hearth(daemon.path(), &["call", "no-such-method"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("error -32601 (method not found)"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_json_exits_2_without_connecting() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = hearth(&dir.path().join("none.sock"), &["call", "echo", "{nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not valid JSON"), "{}", stderr(&out));
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let socket = dir.path().join("none.sock");
    assert_eq!(hearth(&socket, &["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        hearth(&socket, &["--timeout", "5", "ping"]).status.code(),
        Some(2)
    );
}

#[test]
fn no_daemon_exits_3_with_a_readable_line() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let socket = dir.path().join("none.sock");
    let out = hearth(&socket, &["status"]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert_eq!(
        err.trim_end(),
        format!(
            "hearth: cannot connect to {}: No such file or directory — is hearthd running?",
            socket.display()
        )
    );
}

#[test]
fn a_timeout_exits_3() {
    let daemon = TestDaemon::start();
    let out = hearth(
        daemon.path(),
        &["--timeout", "100ms", "call", "sleep", r#"{"ms": 60000}"#],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("no answer within 100ms"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn status_json_has_hello_and_stats() {
    let daemon = TestDaemon::start();
    let out = hearth(daemon.path(), &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let status = stdout_json(&out);
    // Both ends speak protocol v2 now.
    assert_eq!(status["hello"]["protocol"], json!(2));
    assert!(status["stats"]["uptime_ms"].is_u64(), "{status}");
    assert!(status["stats"]["methods"].is_object(), "{status}");

    let out = hearth(daemon.path(), &["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for label in [
        "server",
        "protocol",
        "socket",
        "uptime",
        "connections",
        "in flight",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(label)),
            "{label} in\n{text}"
        );
    }
}

#[test]
fn ping_json_reports_each_round_trip() {
    let daemon = TestDaemon::start();
    let out = hearth(daemon.path(), &["ping", "--count", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ping = stdout_json(&out);
    assert_eq!(ping["count"], json!(2));
    assert_eq!(ping["rtt_us"].as_array().map(Vec::len), Some(2));
    for key in ["min_us", "avg_us", "max_us"] {
        assert!(ping[key].is_u64(), "{key} in {ping}");
    }
}

#[test]
fn shutdown_stops_the_daemon() {
    let daemon = TestDaemon::start();
    let out = hearth(daemon.path(), &["shutdown"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("shutting down"),
        "{out:?}"
    );
    daemon.wait_stopped().expect("a clean stop");
}

#[test]
fn version_and_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--version")
        .output()
        .expect("running hearth");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        format!("hearth {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--help")
        .output()
        .expect("running hearth");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Exit status:"), "{help}");
    assert!(help.contains("3  cannot connect"), "{help}");
}

/// `hearth <args>` with no socket at all: for what is decided before connecting.
fn hearth_offline(args: &[&str]) -> Output {
    hearth_command()
        .args(args)
        .output()
        .expect("running hearth")
}

#[test]
fn help_names_the_protocol_v2_flags() {
    let out = hearth_offline(&["call", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--deadline <DURATION>",
        "--supersede <KEY>",
        "--stream",
        r#"{"partial": CHUNK, "seq": N}"#,
    ] {
        assert!(help.contains(flag), "{flag} in\n{help}");
    }
    let out = hearth_offline(&["bench", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--deadline <DURATION>",
        "--supersede <MODE>",
        "per-connection",
        "per-slot",
        r#""deadline_exceeded""#,
    ] {
        assert!(help.contains(flag), "{flag} in\n{help}");
    }
}

#[test]
fn bad_v2_flag_values_exit_2_without_connecting() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let socket = dir.path().join("none.sock");
    for args in [
        &["call", "echo", "--deadline", "5"][..],
        &["call", "echo", "--deadline", "soon"],
        &["call", "echo", "--supersede"],
        &["bench", "--deadline", "5"],
        &["bench", "--supersede", "per-moon"],
    ] {
        let out = hearth(&socket, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn call_stream_prints_each_partial_then_the_result() {
    let daemon = TestDaemon::start();
    let out = hearth(
        daemon.path(),
        &["call", "count", r#"{"n": 3, "interval_ms": 0}"#, "--stream"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    assert_eq!(
        lines,
        [
            json!({"partial": 0, "seq": 0}),
            json!({"partial": 1, "seq": 1}),
            json!({"partial": 2, "seq": 2}),
            json!(3),
        ],
        "{stdout}"
    );
}

#[test]
fn a_call_past_its_deadline_exits_1_and_says_so() {
    let daemon = TestDaemon::start();
    // 0 ms is expired on arrival: the daemon answers -32002 without starting the call.
    let out = hearth(
        daemon.path(),
        &["call", "sleep", r#"{"ms": 60000}"#, "--deadline", "0ms"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("error -32002 (deadline exceeded)"), "{err}");
    assert!(err.contains("--deadline passed"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_call_with_a_deadline_and_a_supersede_key_answers_as_usual() {
    let daemon = TestDaemon::start();
    let out = hearth(
        daemon.path(),
        &[
            "call",
            "echo",
            r#"{"hi": 1}"#,
            "--deadline",
            "1m",
            "--supersede",
            "k",
            "--compact",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"hi\":1}\n");
}

#[test]
fn v2_flags_against_a_v1_only_daemon_exit_2_and_say_why() {
    let daemon = V1OnlyDaemon::start();
    let out = hearth(
        daemon.path(),
        &["call", "echo", "--deadline", "1s", "--stream"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim_end(),
        "hearth: the daemon speaks protocol 1; --deadline and --stream need protocol 2"
    );
    assert!(out.stdout.is_empty());

    let out = hearth(
        daemon.path(),
        &["bench", "--calls", "1", "--supersede", "per-slot"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the daemon speaks protocol 1; --supersede needs protocol 2"),
        "{}",
        stderr(&out)
    );
}
