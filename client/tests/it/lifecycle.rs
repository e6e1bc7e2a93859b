//! The life of a connection: the daemon dying under pending calls, graceful shutdown letting
//! them finish, a refused connection, and a client that closes when dropped.

use futures::FutureExt;
use hearth_client::{Client, CloseReason, Error, ErrorCode};
use hearth_server::{Limits, builtins};
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::support::{FakeDaemon, Gate, TestDaemon, TestDaemonExt, eventually, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_daemon_dies_every_pending_call_fails() {
    let mut daemon = TestDaemon::start();
    let client = daemon.client().await;
    let mut sleeps = JoinSet::new();
    for _ in 0..50 {
        let client = client.clone();
        sleeps.spawn(async move {
            client
                .call::<_, IgnoredAny>("sleep", &json!({"ms": 60_000}))
                .await
        });
    }
    eventually("50 sleeps run", || daemon.stats().in_flight == 50).await;

    daemon.kill();

    let failures = within("every pending call to fail", async {
        let mut failures = Vec::new();
        while let Some(done) = sleeps.join_next().await {
            failures.push(done.expect("a call task").expect_err("the daemon died"));
        }
        failures
    })
    .await;
    assert_eq!(failures.len(), 50);
    for e in &failures {
        assert!(
            matches!(e, Error::Closed { .. } | Error::Io(_)),
            "a connection error, not {e:?}"
        );
        assert!(e.is_connection_lost());
    }
    assert!(client.is_closed());
    within("closed()", client.closed()).await;

    // Later calls fail at once, without waiting for anything.
    let next = client
        .call::<_, IgnoredAny>("echo", &1)
        .now_or_never()
        .expect("a call on a closed client resolves immediately");
    assert!(matches!(next, Err(Error::Closed { .. })), "{next:?}");
    let note = client.notify("x", &()).now_or_never();
    assert!(matches!(note, Some(Err(Error::Closed { .. }))), "{note:?}");
}

/// One call at a time (each written by its caller, the connection being idle), and then the
/// daemon hangs up: each call before gets its own answer in order, and the lone call after
/// it fails as a lost connection instead of waiting.
#[tokio::test]
async fn lone_calls_go_out_in_order_and_fail_once_the_daemon_hangs_up() {
    let daemon = FakeDaemon::start_v2(|mut peer| async move {
        for n in 0..20u32 {
            let request = peer.request().await.expect("the next call");
            let got: u32 = hearth_protocol::from_msgpack(&request.params).expect("a number");
            assert_eq!(got, n, "the calls arrive in order");
            peer.echo(&request).await;
        }
        // Hang up without reading the next call.
    });
    let client = daemon.client().await;
    for n in 0..20u32 {
        let back: u32 = within("an echo", client.call("echo", &n))
            .await
            .expect("an answer");
        assert_eq!(back, n);
    }
    // Whether it is written before or after the hang-up, nobody answers it.
    let err = within(
        "a call after the hang-up",
        client.call::<_, IgnoredAny>("echo", &0),
    )
    .await
    .expect_err("nobody answers after the hang-up");
    assert!(err.is_connection_lost(), "{err:?}");
    daemon.finish().await;
}

/// Waits (off the runtime: the wait blocks) until `daemon` stopped by itself, and checks that
/// it stopped cleanly.
async fn stopped_cleanly(daemon: TestDaemon) {
    tokio::task::spawn_blocking(move || daemon.wait_stopped())
        .await
        .expect("joining the daemon")
        .expect("a clean stop");
}

#[tokio::test]
async fn graceful_shutdown_lets_pending_calls_finish() {
    let gate = Gate::new();
    let daemon = TestDaemon::start_with(gate.add_to(builtins::router()), Limits::default());
    let client = daemon.client().await;
    let mut calls = JoinSet::new();
    for _ in 0..10 {
        let client = client.clone();
        calls.spawn(async move { client.call::<_, Value>("gate", &()).await });
    }
    // The calls run until the gate opens, so all ten are still running at the shutdown.
    eventually("10 gated calls run", || daemon.stats().in_flight == 10).await;

    daemon.handle().shutdown();
    gate.open();

    within("the gated calls", async {
        while let Some(done) = calls.join_next().await {
            let result = done.expect("a call task").expect("the call finishes");
            assert_eq!(result, json!("opened"));
        }
    })
    .await;
    // Then the daemon hangs up, and the client notices.
    within("the connection to close", client.closed()).await;
    assert!(matches!(client.close_reason(), Some(CloseReason::Eof)));
    stopped_cleanly(daemon).await;
}

#[tokio::test]
async fn the_shutdown_method_stops_the_daemon_after_pending_calls() {
    let gate = Gate::new();
    let daemon = TestDaemon::start_with(gate.add_to(builtins::router()), Limits::default());
    let client = daemon.client().await;
    let gated = tokio::spawn({
        let client = client.clone();
        async move { client.call::<_, Value>("gate", &()).await }
    });
    eventually("the gated call runs", || daemon.stats().in_flight == 1).await;
    let answer: Value = client.call("shutdown", &()).await.expect("shutdown");
    assert!(answer.get("grace_ms").is_some(), "{answer}");
    // The gated call is still running: only now may it finish.
    gate.open();
    let result = within("the gated call", gated)
        .await
        .expect("the call task")
        .expect("the gated call finishes");
    assert_eq!(result, json!("opened"));
    within("the connection to close", client.closed()).await;
    stopped_cleanly(daemon).await;
}

#[tokio::test]
async fn a_refused_connection_reports_the_daemons_reason() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let daemon = TestDaemon::start_with(builtins::router(), limits);
    let first = daemon.client().await;
    let err = Client::connect(daemon.path())
        .await
        .expect_err("one connection too many");
    match &err {
        Error::Closed {
            reason: CloseReason::Fatal { code, message, .. },
        } => {
            assert_eq!(*code, ErrorCode::SERVER_BUSY);
            assert!(!message.is_empty());
        }
        other => panic!("expected the daemon's $/fatal, got {other:?}"),
    }
    assert!(err.to_string().contains("-32001"), "{err}");
    let ok: u8 = first
        .call("echo", &5u8)
        .await
        .expect("the first still works");
    assert_eq!(ok, 5);
}

#[tokio::test]
async fn dropping_the_last_clone_closes_the_connection() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let clone = client.clone();
    eventually("one connection", || daemon.stats().connections == 1).await;
    drop(client);
    let ok: u8 = clone
        .call("echo", &9u8)
        .await
        .expect("a clone keeps it open");
    assert_eq!(ok, 9);
    drop(clone);
    eventually("no connections", || daemon.stats().connections == 0).await;
}

#[tokio::test]
async fn connecting_to_nothing_says_so() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("nobody.sock");
    let err = Client::connect(&path).await.expect_err("nobody listens");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("is hearthd running?"), "{text}");
}

#[test]
fn a_client_that_outlives_its_runtime_fails_instead_of_hanging() {
    let daemon = TestDaemon::start();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    };
    let first = runtime();
    let client = first
        .block_on(Client::connect(daemon.path()))
        .expect("connect");
    drop(first);
    assert!(client.is_closed());
    let result = runtime().block_on(within("the call", client.call::<_, u8>("echo", &1u8)));
    assert!(
        result.as_ref().is_err_and(Error::is_connection_lost),
        "{result:?}"
    );
}
