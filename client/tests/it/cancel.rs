//! Cancellation reaches the daemon: a dropped call future and an expired timeout each send a
//! cancel, the daemon stops the request (answering -32800, which it counts), and its
//! in-flight count returns to zero. In version 2 a timeout also travels as `deadline_ms`, so
//! the daemon may stop the request on its own deadline first (-32002); either way exactly once.

use std::time::Duration;

use futures::FutureExt;
use hearth_client::{Client, ClientConfig, Error};
use hearth_server::{Limits, builtins};
use serde::de::IgnoredAny;
use serde_json::json;

use crate::support::{TestDaemon, TestDaemonExt, eventually, sleep_past_the_timeout, stopped};

fn cancelled(daemon: &TestDaemon) -> u64 {
    daemon
        .stats()
        .errors
        .get("-32800")
        .copied()
        .unwrap_or_default()
}

#[tokio::test]
async fn dropping_a_call_cancels_it_at_the_daemon() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call::<_, IgnoredAny>("sleep", &json!({"ms": 60_000}))
                .await
        }
    });
    eventually("the sleep runs", || daemon.stats().in_flight == 1).await;
    call.abort();
    assert!(call.await.is_err_and(|e| e.is_cancelled()));

    eventually("the daemon counts the cancel", || cancelled(&daemon) == 1).await;
    eventually("nothing runs", || daemon.stats().in_flight == 0).await;
    // The daemon's -32800 answer was dropped quietly; the connection is fine.
    let back: u8 = client.call("echo", &3u8).await.expect("echo");
    assert_eq!(back, 3);
}

#[tokio::test]
async fn a_call_timeout_cancels_it_at_the_daemon() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let limit = Duration::from_millis(50);
    let err = client
        .call_timeout::<_, IgnoredAny>("sleep", &json!({"ms": 60_000}), limit)
        .await
        .expect_err("the sleep outlasts the timeout");
    assert!(matches!(err, Error::Timeout(d) if d == limit), "{err:?}");
    assert!(err.is_deadline_exceeded());
    eventually("the daemon stops the call", || stopped(&daemon) == 1).await;
    eventually("nothing runs", || daemon.stats().in_flight == 0).await;
    assert!(!client.is_closed());
}

#[tokio::test]
async fn the_configured_timeout_applies_to_every_call() {
    let daemon = TestDaemon::start();
    let config = ClientConfig::default().with_timeout(Duration::from_millis(50));
    let client = Client::connect_with(daemon.path(), config)
        .await
        .expect("connect");
    sleep_past_the_timeout(&client, &daemon).await;
}

/// With every slot but one busy, a cancel still gets through: the client keeps one of the
/// daemon's `max_in_flight` slots free, so the daemon never stops reading it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancels_get_through_when_the_client_is_at_its_limit() {
    let limits = Limits {
        max_in_flight: 4,
        ..Limits::default()
    };
    let daemon = TestDaemon::start_with(builtins::router(), limits);
    let client = daemon.client().await;
    let params = json!({"ms": 60_000});
    let mut sleeps = Vec::new();
    for _ in 0..3 {
        let client = client.clone();
        let params = params.clone();
        sleeps.push(tokio::spawn(async move {
            client.call::<_, IgnoredAny>("sleep", &params).await
        }));
    }
    // Three go out (4 - 1) and hold every permit the client has...
    eventually("the sleeps run", || daemon.stats().in_flight == 3).await;
    // ...so two more wait in the client: polled once each, they park on a permit.
    let mut waiting: Vec<_> = (0..2)
        .map(|_| Box::pin(client.call::<_, IgnoredAny>("sleep", &params)))
        .collect();
    for call in &mut waiting {
        assert!(call.as_mut().now_or_never().is_none(), "no permit is free");
    }
    // The waiting calls are given up before the running ones: each cancel answered frees a
    // permit, and a waiting call still alive could take it and send its sleep.
    drop(waiting);
    for sleep in &sleeps {
        sleep.abort();
    }
    // Had the client filled all four slots, the daemon would not read the cancels and the
    // sleeps would run for a minute.
    eventually("every sleep is cancelled", || daemon.stats().in_flight == 0).await;
    // The daemon counts a -32800 just after the request leaves `in_flight`.
    eventually("the cancels are counted", || cancelled(&daemon) >= 3).await;
    assert_eq!(cancelled(&daemon), 3);
    assert_eq!(
        daemon.stats().requests_total,
        4,
        "hello and three sleeps; the waiting calls never went out"
    );
}
