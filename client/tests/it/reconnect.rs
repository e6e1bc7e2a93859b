//! Reconnecting after the daemon restarts: the next call after a restart finds the new daemon,
//! the call that was in flight when the old one went fails instead of being replayed, and
//! with no daemon the attempts stop at the policy's bound.

use std::path::Path;

use hearth_client::{ClientConfig, Error, ReconnectPolicy, Reconnecting, Stats};
use hearth_server::{Server, ServerHandle, builtins};
use serde::de::IgnoredAny;
use serde_json::json;

use crate::support::{private_dir, within};

async fn serve(socket: &Path) -> (ServerHandle, tokio::task::JoinHandle<()>) {
    let server = Server::builder()
        .socket(socket)
        .router(builtins::router())
        .bind()
        .await
        .expect("bind");
    let handle = server.handle();
    let task = tokio::spawn(async move {
        server.run().await.expect("serve");
    });
    (handle, task)
}

#[tokio::test]
async fn a_restarted_daemon_is_found_and_in_flight_calls_fail_not_replay() {
    let dir = private_dir();
    let socket = dir.path().join("hearthd.sock");
    let (first, first_task) = serve(&socket).await;
    let rc = Reconnecting::connect(&socket, ClientConfig::default(), ReconnectPolicy::default())
        .await
        .expect("connect");
    let back: u8 = rc.call("echo", &1u8).await.expect("echo");
    assert_eq!(back, 1);

    let client = rc.client().await.expect("client");
    let in_flight = tokio::spawn(async move {
        client
            .call::<_, IgnoredAny>("sleep", &json!({"ms": 600_000}))
            .await
    });
    crate::support::eventually("the sleep to be running", || first.stats().in_flight == 1).await;
    first.shutdown_now();
    let failed = within("the in-flight call", in_flight).await.expect("task");
    assert!(failed.is_err(), "the in-flight call failed: {failed:?}");
    within("the first daemon to stop", first_task)
        .await
        .expect("task");

    let (second, second_task) = serve(&socket).await;
    let back: u8 = within("a call after the restart", rc.call("echo", &2u8))
        .await
        .expect("reconnected");
    assert_eq!(back, 2);
    assert_eq!(rc.generation().await, 1);
    let stats: Stats = second.stats();
    assert_eq!(
        stats.methods.get("sleep").copied().unwrap_or(0),
        0,
        "the sleep was not replayed: {stats:?}"
    );
    second.shutdown();
    within("the second daemon to stop", second_task)
        .await
        .expect("task");
}

#[tokio::test(start_paused = true)]
async fn with_no_daemon_reconnecting_stops_at_the_bound() {
    let dir = private_dir();
    let socket = dir.path().join("hearthd.sock");
    let (handle, task) = serve(&socket).await;
    let policy = ReconnectPolicy {
        max_attempts: 3,
        ..ReconnectPolicy::default()
    };
    let rc = Reconnecting::connect(&socket, ClientConfig::default(), policy)
        .await
        .expect("connect");
    handle.shutdown();
    task.await.expect("task");
    let err = rc
        .call::<_, u8>("echo", &1u8)
        .await
        .expect_err("nobody to reconnect to");
    assert!(
        matches!(err, Error::Connect { .. } | Error::Closed { .. }),
        "{err}"
    );
    // Once closed, the next call tries (and fails) to reconnect within the bound.
    let err = rc
        .call::<_, u8>("echo", &1u8)
        .await
        .expect_err("still nobody");
    assert!(matches!(err, Error::Connect { .. }), "{err}");
}
