//! The client over loopback TCP against a real daemon started with a TCP listener: the same
//! handshake, calls, out-of-order answers, cancels, timeouts and connection loss as on the Unix
//! socket. What TCP adds — the connect error and its address — is checked here too.

use std::time::Duration;

use hearth_client::{Client, ClientConfig, Error};
use serde::de::IgnoredAny;
use serde_json::json;
use tokio::task::JoinSet;

use hearth_server::{Limits, builtins};

use crate::support::{Gate, TestDaemon, TestDaemonExt, eventually, sleep_past_the_timeout, within};

#[tokio::test]
async fn calls_over_tcp_get_their_answers() {
    let daemon = TestDaemon::start_tcp();
    let client = Client::connect_tcp_with(daemon.tcp_addr(), daemon.tcp_config())
        .await
        .expect("connecting over TCP");
    assert_eq!(client.hello().protocol, 2);
    assert_eq!(
        client.protocol_version(),
        hearth_client::protocol::Version::V2
    );
    assert_eq!(client.tcp_addr(), Some(daemon.tcp_addr()));
    assert_eq!(client.socket_path(), None);

    let back: (u32, String) = client.call("echo", &(7, "seven")).await.expect("echo");
    assert_eq!(back, (7, "seven".to_owned()));
    let raw = client
        .call_raw("echo", &[0x93, 1, 2, 3])
        .await
        .expect("raw");
    assert_eq!(&raw[..], &[0x93, 1, 2, 3]);
    let err = client
        .call::<_, IgnoredAny>("no-such-method", &())
        .await
        .expect_err("an unknown method");
    assert_eq!(err.code(), Some(hearth_client::ErrorCode::METHOD_NOT_FOUND));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_share_one_tcp_connection() {
    let gate = Gate::new();
    let daemon = TestDaemon::start_tcp_with(gate.add_to(builtins::router()), Limits::default());
    let client = Client::connect_tcp_with(daemon.tcp_addr(), daemon.tcp_config())
        .await
        .expect("connecting over TCP");
    // A call that stays unanswered until the gate opens, sent before all the others.
    let held = {
        let client = client.clone();
        tokio::spawn(async move { client.call::<_, String>("gate", &()).await })
    };
    eventually("the gated call runs", || daemon.stats().in_flight == 1).await;
    let mut calls = JoinSet::new();
    for i in 0..2_000u64 {
        let client = client.clone();
        calls.spawn(async move {
            let back: u64 = client.call("echo", &i).await.expect("echo");
            assert_eq!(back, i);
        });
    }
    within("2000 echoes", async {
        while let Some(done) = calls.join_next().await {
            done.expect("an echo task");
        }
    })
    .await;
    // Out of order: every later echo was answered while the first call still waits.
    assert!(
        !held.is_finished(),
        "the gated call was answered before the gate opened"
    );
    gate.open();
    let opened = within("the gated call", held)
        .await
        .expect("the gated call's task")
        .expect("gate");
    assert_eq!(opened, "opened");
    assert_eq!(daemon.stats().methods.get("echo").copied(), Some(2_000));
}

#[tokio::test]
async fn a_timed_out_call_is_cancelled_at_the_daemon_over_tcp() {
    let daemon = TestDaemon::start_tcp();
    let config = daemon.tcp_config().with_timeout(Duration::from_millis(50));
    let client = Client::connect_tcp_with(daemon.tcp_addr(), config)
        .await
        .expect("connecting over TCP");
    // Stopped once: by our cancel (-32800) or, in version 2, by the deadline we sent (-32002).
    sleep_past_the_timeout(&client, &daemon).await;
    // The connection is still good.
    let back: u8 = client
        .call("echo", &5u8)
        .await
        .expect("echo after a cancel");
    assert_eq!(back, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_tcp_daemon_dies_pending_calls_fail() {
    let mut daemon = TestDaemon::start_tcp();
    let client = Client::connect_tcp_with(daemon.tcp_addr(), daemon.tcp_config())
        .await
        .expect("connecting over TCP");
    let sleeping = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call::<_, IgnoredAny>("sleep", &json!({"ms": 60_000}))
                .await
        })
    };
    eventually("the sleep runs", || daemon.stats().in_flight == 1).await;
    daemon.kill();
    let err = within("the pending call to fail", sleeping)
        .await
        .expect("the call task")
        .expect_err("the daemon died");
    assert!(err.is_connection_lost(), "{err:?}");
    within("closed()", client.closed()).await;
}

#[tokio::test]
async fn a_refused_tcp_connect_names_the_address() {
    // A port that was just free: bind, note it, close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("its address");
    drop(listener);
    let err = Client::connect_tcp(addr)
        .await
        .expect_err("nothing listens there");
    match &err {
        Error::ConnectTcp {
            addr: tried,
            source,
        } => {
            assert_eq!(*tried, addr);
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected ConnectTcp, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to tcp:{addr}"))
    );
}

#[tokio::test]
async fn a_tcp_client_without_the_token_is_refused() {
    let daemon = TestDaemon::start_tcp();
    let err = Client::connect_tcp(daemon.tcp_addr())
        .await
        .expect_err("no token, no connection");
    assert!(err.to_string().contains("token"), "{err}");
    let wrong = ClientConfig::default().with_tcp_token("0".repeat(64));
    let err = Client::connect_tcp_with(daemon.tcp_addr(), wrong)
        .await
        .expect_err("a wrong token, no connection");
    assert!(err.to_string().contains("wrong token"), "{err}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(daemon.path().with_file_name("tcp.token"))
            .expect("tcp.token")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}
