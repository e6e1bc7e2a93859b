//! `hearth bench` end to end: spawning its own daemon (Unix and TCP), closed and open loop,
//! the JSON report's fields, every answer checked, exit codes, Ctrl-C, a daemon that dies,
//! and coordinated-omission correction shown on a case whose outcome follows from the
//! arithmetic of the schedule rather than from timing luck.
//!
//! `--spawn` runs get their `hearthd` built by `support::hearth_bench`.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use hearth_server::{Limits, MethodError, Router};
use serde_json::Value;

use crate::support::{TestDaemon, eventually, hearth_bench, within};

/// The JSON object on stdout's last line.
fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "the last stdout line is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn u64_of(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {report}"))
}

/// A latency figure: µs, to 0.1.
fn us_of(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number of µs in {report}"))
}

#[test]
fn a_closed_loop_with_a_spawned_daemon_counts_every_call() {
    let out = hearth_bench(&["--spawn", "--calls", "2000", "--in-flight", "16", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["calls"], 2000);
    assert_eq!(r["errors"], 0);
    assert_eq!(r["superseded"], 0);
    assert_eq!(r["deadline_exceeded"], 0);
    assert_eq!(r["deadline_ms"], Value::Null);
    assert_eq!(r["supersede"], Value::Null);
    let (p50, p99, max) = (
        us_of(&r, "p50_us"),
        us_of(&r, "p99_us"),
        us_of(&r, "max_us"),
    );
    assert!(p50 <= p99 && p99 <= max, "{r}");
    assert!(
        us_of(&r, "p90_us") <= p99 && p99 <= us_of(&r, "p999_us"),
        "{r}"
    );
    assert!(r["rate"].as_f64().is_some_and(|rate| rate > 0.0), "{r}");
    assert_eq!(r["connections"], 1);
    assert_eq!(r["in_flight"], 16);
    assert_eq!(r["payload"], 32);
    assert_eq!(r["transport"], "unix");
    assert_eq!(r["offered_rate"], Value::Null);
    assert_eq!(r["spawned"], true);
    assert!(r["cpu_us_per_call"].is_f64(), "{r}");
    assert!(r["daemon_cpu_us_per_call"].is_f64(), "{r}");
    assert!(u64_of(&r, "daemon_peak_rss_kib") > 0);
    // The daemon's private folder is gone with it.
    let socket = PathBuf::from(r["target"].as_str().expect("the socket"));
    let folder = socket.parent().expect("the socket's folder");
    assert!(!folder.exists(), "{} was left behind", folder.display());
}

#[test]
fn calls_past_their_deadline_are_counted_apart_and_do_not_fail_the_run() {
    // 0 ms is expired on arrival: every call is answered -32002 without starting.
    let out = hearth_bench(&["--spawn", "--calls", "200", "--deadline", "0ms", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["calls"], 200);
    assert_eq!(r["deadline_exceeded"], 200);
    assert_eq!(r["errors"], 0);
    assert_eq!(r["superseded"], 0);
    assert_eq!(r["deadline_ms"], 0.0);
    assert_eq!(r["latency_includes_deadline_exceeded"], false);
    assert_eq!(
        r["p50_us"],
        Value::Null,
        "no successful call, no percentiles"
    );
}

#[test]
fn superseded_calls_are_counted_apart_and_do_not_fail_the_run() {
    let out = hearth_bench(&[
        "--spawn",
        "--calls",
        "400",
        "--in-flight",
        "8",
        "--supersede",
        "per-connection",
        "--deadline",
        "1m",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["calls"], 400);
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["deadline_exceeded"], 0);
    assert!(u64_of(&r, "superseded") <= 400, "{r}");
    assert_eq!(r["supersede"], "per-connection");
    assert_eq!(r["latency_includes_superseded"], false);

    // A slot has one call out at a time, so a key per slot never replaces anything.
    let out = hearth_bench(&[
        "--spawn",
        "--calls",
        "200",
        "--in-flight",
        "4",
        "--supersede",
        "per-slot",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["calls"], 200);
    assert_eq!(r["superseded"], 0, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    assert!(us_of(&r, "p50_us") <= us_of(&r, "max_us"));
}

#[test]
fn an_open_loop_sends_no_more_than_its_schedule() {
    let out = hearth_bench(&["--spawn", "--rate", "500", "--duration", "1s", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    let calls = u64_of(&r, "calls");
    assert!(
        calls > 0 && calls <= 500 + 1,
        "{calls} calls for 500/s over 1 s"
    );
    assert_eq!(r["offered_rate"], 500.0);
    assert_eq!(r["errors"], 0);
    assert!(u64_of(&r, "late_calls") <= calls);
    assert!(u64_of(&r, "lag_p50_us") <= u64_of(&r, "lag_max_us"));
}

/// One slot, calls due every 10 ms, each taking at least 20 ms: call `k` cannot be sent before
/// 20·k ms nor answered before 20·(k+1) ms, but is due at 10·k ms. Measured from its due time
/// its latency is at least 10·k + 20 ms — 210 ms for the last of 20 — although every single
/// round trip takes about 20 ms. A client that measured from sending would report ~20 ms.
#[test]
fn latency_runs_from_the_scheduled_time_when_the_client_falls_behind() {
    let args = [
        "--spawn",
        "--method",
        "sleep",
        "--params",
        r#"{"ms": 20}"#,
        "--calls",
        "20",
        "--in-flight",
        "1",
        "--warmup",
        "0s",
        "--json",
    ];
    let open: Vec<&str> = args.iter().copied().chain(["--rate", "100"]).collect();
    let out = hearth_bench(&open);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["calls"], 20);
    assert!(us_of(&r, "max_us") >= 210_000.0, "{r}");
    assert!(
        us_of(&r, "p50_us") >= f64::from(10 * 9 * 1000 + 20_000),
        "call 9 or later: {r}"
    );
    assert!(
        u64_of(&r, "late_calls") >= 19,
        "every call after the first: {r}"
    );

    // The same calls in a closed loop are each measured from their sending.
    let out = hearth_bench(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert!(us_of(&r, "p50_us") >= 20_000.0, "{r}");
    assert_eq!(r["late_calls"], Value::Null);
}

#[test]
fn tcp_works_with_a_spawned_daemon() {
    let out = hearth_bench(&[
        "--spawn",
        "--tcp",
        "--calls",
        "500",
        "--connections",
        "2",
        "--in-flight",
        "4",
        "--warmup",
        "0s",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["transport"], "tcp");
    assert!(
        r["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("tcp:127.0.0.1:")),
        "{r}"
    );
    assert_eq!(r["calls"], 500);
    assert_eq!(r["errors"], 0);
    assert_eq!(r["connections"], 2);
}

#[test]
fn a_running_daemon_can_be_benched_over_unix_and_tcp() {
    let daemon = TestDaemon::start_tcp();
    let socket = daemon.path().to_str().expect("a UTF-8 path").to_owned();
    let common = [
        "--calls",
        "300",
        "--in-flight",
        "4",
        "--warmup",
        "0s",
        "--json",
    ];
    let over_unix: Vec<&str> = ["--socket", &socket].into_iter().chain(common).collect();
    let out = hearth_bench(&over_unix);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(
        (r["calls"].clone(), r["transport"].clone()),
        (300.into(), "unix".into())
    );
    assert_eq!(r["spawned"], false);
    assert_eq!(r["daemon_cpu_us_per_call"], Value::Null, "not our daemon");

    let addr = daemon.tcp_addr().to_string();
    // The token is read from tcp.token beside --socket (PROTOCOL.md §3.4).
    let over_tcp: Vec<&str> = ["--tcp", &addr, "--socket", &socket]
        .into_iter()
        .chain(common)
        .collect();
    let out = hearth_bench(&over_tcp);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(
        (r["calls"].clone(), r["transport"].clone()),
        (300.into(), "tcp".into())
    );
    // The two runs, without warmups, made 600 echo calls between them and no others.
    assert_eq!(daemon.stats().methods.get("echo").copied(), Some(600));
}

#[test]
fn every_echo_is_checked_and_failures_are_counted_by_code() {
    // An "echo" that answers something else.
    let router = Router::new().raw_method("echo", |_params, _ctx| async move {
        Ok::<_, MethodError>(bytes::Bytes::from_static(&[0xc0]))
    });
    let daemon = TestDaemon::start_with(router, Limits::default());
    let socket = daemon.path().to_str().expect("a UTF-8 path");
    let out = hearth_bench(&[
        "--socket", socket, "--calls", "50", "--warmup", "0s", "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["errors"], 50);
    assert_eq!(r["errors_by_code"]["mismatch"], 50);
    assert_eq!(r["p50_us"], Value::Null, "no successful call");
    assert!(
        stderr(&out).contains("50 of 50 calls failed"),
        "{}",
        stderr(&out)
    );

    let out = hearth_bench(&[
        "--socket", socket, "--method", "nope", "--calls", "7", "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(report(&out)["errors_by_code"]["-32601"], 7);
}

#[test]
fn bad_flags_exit_2_before_connecting() {
    for args in [
        &["--rate", "0"][..],
        &["--rate", "fast"],
        &["--calls", "0"],
        &["--calls", "5", "--duration", "1s"],
        &["--duration", "0s"],
        &["--connections", "0"],
        &["--in-flight", "0"],
        &["--warmup", "5"],
        &["--payload", "8", "--params", "[]"],
        &["--params", "{oops"],
        &["--tcp"],
        &["--tcp", "localhost"],
        &["--rate", "1", "--duration", "500ms"],
        &["--frobnicate"],
    ] {
        let mut with_socket = vec!["--socket", "/nonexistent/hearthd.sock"];
        with_socket.extend_from_slice(args);
        let out = hearth_bench(&with_socket);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn no_daemon_exits_3() {
    let out = hearth_bench(&["--socket", "/nonexistent/hearthd.sock", "--calls", "1"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
}

#[test]
fn spawn_without_hearthd_next_to_hearth_says_so() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temporary folder");
    let lonely = dir.path().join("hearth");
    std::fs::hard_link(env!("CARGO_BIN_EXE_hearth"), &lonely)
        .or_else(|_| std::fs::copy(env!("CARGO_BIN_EXE_hearth"), &lonely).map(drop))
        .expect("a hearth without hearthd");
    let out = Command::new(&lonely)
        .args(["bench", "--spawn", "--calls", "1"])
        .output()
        .expect("running hearth");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--spawn needs hearthd next to hearth"),
        "{err}"
    );
    assert!(
        err.contains(&dir.path().join("hearthd").display().to_string()),
        "{err}"
    );
}

/// Starts `hearth bench` for a long run against `daemon` and waits until its calls arrive.
async fn long_run(daemon: &TestDaemon) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "bench",
            "--duration",
            "10m",
            "--warmup",
            "0s",
            "--json",
            "--socket",
        ])
        .arg(daemon.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting hearth bench");
    eventually("the bench's calls reach the daemon", || {
        daemon.stats().methods.get("echo").copied().unwrap_or(0) > 100
    })
    .await;
    child
}

/// Waits for `hearth bench` to exit, and its output.
async fn finish(child: std::process::Child) -> Output {
    let waiting = tokio::task::spawn_blocking(move || child.wait_with_output());
    within("hearth bench to exit", waiting)
        .await
        .expect("the waiting thread")
        .expect("hearth bench's output")
}

#[tokio::test]
async fn ctrl_c_ends_the_run_early_and_still_reports() {
    let daemon = TestDaemon::start();
    let child = long_run(&daemon).await;
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(kill.success());
    let out = finish(child).await;
    // 130, as for any command a shell sees killed by SIGINT; the report still comes first.
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("hearth: interrupted"),
        "{}",
        stderr(&out)
    );
    let r = report(&out);
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["errors"], 0);
    assert!(u64_of(&r, "calls") > 0);
}

#[tokio::test]
async fn a_daemon_that_dies_mid_run_exits_3_after_the_report() {
    let mut daemon = TestDaemon::start();
    let child = long_run(&daemon).await;
    daemon.kill();
    let out = finish(child).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let r = report(&out);
    assert!(u64_of(&r, "errors") >= 1, "{r}");
    assert!(r["errors_by_code"]["connection lost"].is_u64(), "{r}");
}
