//! Calls against a real daemon: results, out-of-order answers, many concurrent calls on one
//! client and many clients at once, remote errors, raw calls.

use std::sync::{Arc, Mutex};

use hearth_client::{Client, Error, ErrorCode};
use hearth_server::{Limits, builtins};
use serde::de::IgnoredAny;
use serde_json::json;
use tokio::task::JoinSet;

use crate::support::{Gate, TestDaemon, TestDaemonExt, eventually, within};

#[tokio::test]
async fn echo_returns_the_params() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let back: (u32, String, Vec<bool>) = client
        .call("echo", &(7, "seven", vec![true, false]))
        .await
        .expect("echo");
    assert_eq!(back, (7, "seven".to_owned(), vec![true, false]));
    assert_eq!(client.hello().protocol, 2);
    assert_eq!(
        client.protocol_version(),
        hearth_client::protocol::Version::V2
    );
    assert!(client.hello().methods.iter().any(|m| m == "echo"));
    assert_eq!(client.socket_path(), Some(daemon.path()));
    assert_eq!(client.tcp_addr(), None);
}

#[tokio::test]
async fn answers_come_back_in_the_order_they_finish() {
    let gate = Gate::new();
    let daemon = TestDaemon::start_with(gate.add_to(builtins::router()), Limits::default());
    let client = daemon.client().await;
    let finished = Arc::new(Mutex::new(Vec::new()));
    let record = |what: String| {
        let finished = finished.clone();
        move || finished.lock().expect("the log").push(what)
    };

    // The gated call goes out first and runs until every echo is back: a client that handed
    // out answers in request order would hold the echoes behind it, and this would never end.
    let gated = {
        let done = record("gate".to_owned());
        let client = &client;
        async move {
            let r: IgnoredAny = client.call("gate", &()).await.expect("gate");
            done();
            r
        }
    };
    let echoes = futures::future::join_all((0..200u32).map(|i| {
        let done = record(format!("echo {i}"));
        let client = &client;
        async move {
            let back: u32 = client.call("echo", &i).await.expect("echo");
            assert_eq!(back, i, "each echo gets its own params back");
            done();
        }
    }));
    let echoes_then_open = async {
        eventually("the gated call runs", || daemon.stats().in_flight == 1).await;
        echoes.await;
        gate.open();
    };
    within("the calls", futures::future::join(gated, echoes_then_open)).await;

    let finished = finished.lock().expect("the log");
    assert_eq!(finished.len(), 201);
    assert_eq!(
        finished.last().map(String::as_str),
        Some("gate"),
        "every echo finished before the gated call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_calls_on_one_client() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let mut calls = JoinSet::new();
    for i in 0..10_000u64 {
        let client = client.clone();
        calls.spawn(async move {
            let label = format!("call {i}");
            let back: (u64, String) = client.call("echo", &(i, &label)).await.expect("echo");
            assert_eq!(back, (i, label));
        });
    }
    within("10,000 calls", async {
        while let Some(done) = calls.join_next().await {
            done.expect("a call task");
        }
    })
    .await;
    assert_eq!(daemon.stats().methods.get("echo"), Some(&10_000));
}

/// Calls one at a time from one task (each reads its own answer: sequential use) while other
/// tasks on other workers now and then call at the same time, so the reader is run by lone
/// calls and by the reader task in turn, sometimes both wanting it at once: every call gets
/// its own answer, and none hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_calls_mixed_with_concurrent_ones_each_get_their_answer() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let mut tasks = JoinSet::new();
    for t in 0..4u64 {
        let client = client.clone();
        tasks.spawn(async move {
            for i in 0..500u64 {
                // Task 0 calls back to back; the others pause every few calls, so that task 0
                // is alone in flight for stretches, then has company again.
                if t != 0 && i % 8 == 0 {
                    tokio::task::yield_now().await;
                }
                let back: [u64; 2] = client.call("echo", &[t, i]).await.expect("echo");
                assert_eq!(back, [t, i]);
            }
        });
    }
    within("4 x 500 calls", async {
        while let Some(done) = tasks.join_next().await {
            done.expect("a call task");
        }
    })
    .await;
    assert_eq!(daemon.stats().methods.get("echo"), Some(&2_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_clients_at_once() {
    let daemon = TestDaemon::start();
    let mut clients = JoinSet::new();
    for c in 0..32u64 {
        let path = daemon.path().to_owned();
        clients.spawn(async move {
            let client = Client::connect(&path).await.expect("connect");
            let mut calls = JoinSet::new();
            for i in 0..100u64 {
                let client = client.clone();
                calls.spawn(async move {
                    let back: [u64; 2] = client.call("echo", &[c, i]).await.expect("echo");
                    assert_eq!(back, [c, i]);
                });
            }
            while let Some(done) = calls.join_next().await {
                done.expect("a call task");
            }
        });
    }
    within("32 clients", async {
        while let Some(done) = clients.join_next().await {
            done.expect("a client task");
        }
    })
    .await;
    assert_eq!(daemon.stats().methods.get("echo"), Some(&3_200));
}

#[tokio::test]
async fn an_unknown_method_is_a_remote_error() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let err = client
        .call::<_, IgnoredAny>("no-such-method", &())
        .await
        .expect_err("unknown method");
    assert_eq!(err.code(), Some(ErrorCode::METHOD_NOT_FOUND), "{err:?}");
    assert!(matches!(err, Error::Remote(_)));
    assert!(
        err.to_string()
            .starts_with("error -32601 (method not found)")
    );
    // A remote error leaves the connection usable.
    let ok: u8 = client
        .call("echo", &1u8)
        .await
        .expect("echo after an error");
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn bad_params_are_a_remote_error() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let err = client
        .call::<_, IgnoredAny>("sleep", &json!({"ms": "soon"}))
        .await
        .expect_err("bad params");
    assert_eq!(err.code(), Some(ErrorCode::INVALID_PARAMS), "{err:?}");
}

#[tokio::test]
async fn a_result_of_the_wrong_type_is_a_decode_error() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let err = client
        .call::<_, u32>("echo", &"text")
        .await
        .expect_err("a string is not a u32");
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert!(!client.is_closed());
}

#[tokio::test]
async fn raw_calls_pass_bytes_through() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let params = hearth_client::protocol::to_msgpack(&json!({"k": [1, 2]})).expect("encode");
    let back = client.call_raw("echo", &params).await.expect("echo");
    assert_eq!(&back[..], &params[..]);
    let err = client
        .call_raw("echo", &[0x92, 0x01])
        .await
        .expect_err("half an array is not one value");
    assert!(matches!(err, Error::Encode(_)), "{err:?}");
    assert!(!client.is_closed(), "nothing bad was sent");
}

#[tokio::test]
async fn params_over_the_frame_limit_are_refused_locally() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let big = "x".repeat(hearth_client::protocol::DEFAULT_MAX_FRAME + 1);
    let err = client
        .call::<_, IgnoredAny>("echo", &big)
        .await
        .expect_err("too large");
    assert!(matches!(err, Error::Encode(_)), "{err:?}");
    let ok: u8 = client.call("echo", &2u8).await.expect("still usable");
    assert_eq!(ok, 2);
}
