//! Synchronous handlers (`Router::sync_method`, `Router::sync_raw_method`), which the
//! connection calls inline with a context it reuses: to the caller they must be exactly an
//! async handler that finishes on its first poll — one answer, -32602 for params that do not
//! fit, a `MethodError` as it is, a panic answered -32603 with the connection still serving,
//! notifications before the answer, the request's own id, version, deadline and stream flag,
//! and a cancellation token of its own that fires when the connection goes away. Every test
//! runs in both protocol versions.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hearth_protocol::{ErrorCode, Message, Version};
use hearth_server::{Limits, MethodError, RequestContext, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

#[derive(Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

/// What `whoami` reports of its context.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Seen {
    id: u64,
    version: u32,
    streaming: bool,
    deadline: bool,
    cancelled: bool,
}

/// Tokens `take_token` handed out, by request id.
type Taken = Arc<Mutex<Vec<(u64, CancellationToken)>>>;

/// The methods under test; `take_token` puts each request's token into `taken`, `keep` keeps
/// a clone of its whole context in `kept`.
fn router(taken: &Taken, kept: &Arc<Mutex<Vec<RequestContext>>>) -> Router {
    let (taken, kept) = (taken.clone(), kept.clone());
    Router::new()
        .sync_method("add", |p: Add, _ctx: &RequestContext| Ok(p.a + p.b))
        .sync_method("fail", |(): (), _ctx: &RequestContext| {
            Err::<(), _>(MethodError::new(4242, "refused on purpose").with_data(&"why"))
        })
        .sync_raw_method("boom", |_params: Bytes, _ctx: &RequestContext| {
            panic!("sync handler exploded")
        })
        .sync_method("chatty", |n: u64, ctx: &RequestContext| {
            for i in 0..n {
                ctx.try_notify("tick", &i)
                    .map_err(|e| MethodError::internal(e.to_string()))?;
            }
            Ok(n)
        })
        .sync_method("whoami", |(): (), ctx: &RequestContext| {
            Ok(Seen {
                id: ctx.id().get(),
                version: ctx.version().number(),
                streaming: ctx.is_streaming(),
                deadline: ctx.deadline().is_some(),
                cancelled: ctx.is_cancelled(),
            })
        })
        .sync_method("take_token", move |(): (), ctx: &RequestContext| {
            // Whether the token it is given was already cancelled (by the test, through the
            // clone an earlier request handed out): it must never be.
            let token = ctx.cancellation().clone();
            let was_cancelled = token.is_cancelled();
            taken.lock().expect("lock").push((ctx.id().get(), token));
            Ok(was_cancelled)
        })
        .sync_method("keep", move |(): (), ctx: &RequestContext| {
            kept.lock().expect("lock").push(ctx.clone());
            Ok(())
        })
}

async fn connect(server: &TestServer, version: Version) -> Raw {
    match version {
        Version::V1 => server.connect().await,
        _ => server.connect_v2().await,
    }
}

const VERSIONS: [Version; 2] = [Version::V1, Version::V2];

fn new_state() -> (Taken, Arc<Mutex<Vec<RequestContext>>>) {
    (Arc::default(), Arc::default())
}

#[tokio::test]
async fn answers_params_errors_and_method_errors_like_async_handlers() {
    let (taken, kept) = new_state();
    let server = TestServer::with(router(&taken, &kept), Limits::default()).await;
    for version in VERSIONS {
        let mut c = connect(&server, version).await;
        let sum: i64 = c.call(1, "add", &json!({"a": 2, "b": 40})).await;
        assert_eq!(sum, 42, "{version:?}");

        c.request(2, "add", &json!({"a": "two", "b": 40})).await;
        let r = c.response().await;
        assert_eq!(r.id, 2);
        let e = r.outcome.expect_err("bad params are an error");
        assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{version:?}: {e:?}");
        assert!(e.message.contains("field `a`"), "{e:?}");

        c.request(3, "fail", &()).await;
        let r = c.response().await;
        let e = r.outcome.expect_err("the handler's error");
        assert_eq!((e.code.0, &e.message[..]), (4242, "refused on purpose"));
        let data: String =
            hearth_protocol::from_msgpack(e.data.as_deref().expect("data")).expect("string data");
        assert_eq!(data, "why");

        let sum: i64 = c.call(4, "add", &json!({"a": -1, "b": 1})).await;
        assert_eq!(sum, 0);
    }
}

#[tokio::test]
async fn a_panic_is_answered_internal_error_and_the_connection_keeps_serving() {
    let (taken, kept) = new_state();
    let server = TestServer::with(router(&taken, &kept), Limits::default()).await;
    for version in VERSIONS {
        let mut c = connect(&server, version).await;
        c.request(1, "boom", &()).await;
        let r = c.response().await;
        assert_eq!(r.id, 1);
        let e = r.outcome.expect_err("a panic is an error");
        assert_eq!(e.code, ErrorCode::INTERNAL_ERROR, "{version:?}");
        assert!(e.message.contains("sync handler exploded"), "{e:?}");
        // The same connection answers the next request.
        let sum: i64 = c.call(2, "add", &json!({"a": 1, "b": 2})).await;
        assert_eq!(sum, 3, "{version:?}");
    }
}

#[tokio::test]
async fn notifications_it_queues_leave_before_its_answer() {
    let (taken, kept) = new_state();
    let server = TestServer::with(router(&taken, &kept), Limits::default()).await;
    for version in VERSIONS {
        let mut c = connect(&server, version).await;
        // Two calls in one write: each one's ticks come before its own answer.
        let mut wire = c.request_frame(1, "chatty", &3u64);
        wire.extend_from_slice(&c.request_frame(2, "chatty", &2u64));
        c.sent(1, false);
        c.sent(2, false);
        c.send_bytes(&wire).await;
        let mut order = Vec::new();
        for _ in 0..7 {
            match c.next().await.expect("a message") {
                Message::Notification(n) => {
                    assert_eq!(n.method(), "tick");
                    let i: u64 = hearth_protocol::from_msgpack(&n.params).expect("tick params");
                    order.push(format!("tick {i}"));
                }
                Message::Response(r) => {
                    let n: u64 = hearth_protocol::from_msgpack(&r.outcome.expect("a result"))
                        .expect("a number");
                    order.push(format!("answer {} = {n}", r.id.get()));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            order,
            [
                "tick 0",
                "tick 1",
                "tick 2",
                "answer 1 = 3",
                "tick 0",
                "tick 1",
                "answer 2 = 2"
            ],
            "{version:?}"
        );
    }
}

#[tokio::test]
async fn the_context_is_the_requests_own() {
    let (taken, kept) = new_state();
    let server = TestServer::with(router(&taken, &kept), Limits::default()).await;
    for version in VERSIONS {
        let mut c = connect(&server, version).await;
        for id in [7u64, 8, 1 << 40] {
            let seen: Seen = c.call(id, "whoami", &()).await;
            let expected = Seen {
                id,
                version: version.number(),
                streaming: false,
                deadline: false,
                cancelled: false,
            };
            assert_eq!(seen, expected);
        }
    }
    // Version 2: the request's options reach the reused context, and leave it again.
    let mut c = server.connect_v2().await;
    c.request_with(10, "whoami", &(), &opts().deadline_ms(60_000).stream())
        .await;
    let r = c.response().await;
    assert_eq!(r.id, 10);
    let seen: Seen = result_value(&r);
    assert_eq!((seen.id, seen.streaming, seen.deadline), (10, true, true));
    c.request_with(11, "whoami", &(), &opts().supersede("k"))
        .await;
    let seen: Seen = result_value(&c.response().await);
    assert_eq!((seen.id, seen.streaming, seen.deadline), (11, false, false));
    // A deadline already past is answered by the connection; the handler never runs.
    c.request_with(12, "whoami", &(), &opts().deadline_ms(0))
        .await;
    let r = c.response().await;
    assert_eq!(error_code(&r), ErrorCode::DEADLINE_EXCEEDED);
}

#[tokio::test]
async fn a_token_taken_out_is_never_the_next_requests_and_fires_on_disconnect() {
    for version in VERSIONS {
        let (taken, kept) = new_state();
        let server = TestServer::with(router(&taken, &kept), Limits::default()).await;
        let mut c = connect(&server, version).await;
        let was_cancelled: bool = c.call(1, "take_token", &()).await;
        assert!(!was_cancelled);
        // Cancel the token request 1 handed out: request 2 must get a token of its own.
        let first = taken.lock().expect("lock")[0].1.clone();
        first.cancel();
        let was_cancelled: bool = c.call(2, "take_token", &()).await;
        assert!(
            !was_cancelled,
            "{version:?}: request 2 got request 1's token"
        );

        // A kept clone of the whole context keeps its slot; the next request gets another.
        c.call::<_, ()>(3, "keep", &()).await;
        let kept_ctx = kept.lock().expect("lock").pop().expect("a kept context");
        kept_ctx.cancellation().cancel();
        let seen: Seen = c.call(4, "whoami", &()).await;
        assert!(
            !seen.cancelled,
            "{version:?}: request 4 saw request 3's cancel"
        );
        let was_cancelled: bool = c.call(5, "take_token", &()).await;
        assert!(
            !was_cancelled,
            "{version:?}: request 5 got request 3's token"
        );

        // Tokens handed out by answered requests fire when the connection goes away.
        let later: Vec<CancellationToken> = taken
            .lock()
            .expect("lock")
            .iter()
            .filter(|(id, _)| *id != 1)
            .map(|(_, t)| t.clone())
            .collect();
        assert_eq!(later.len(), 2);
        assert!(later.iter().all(|t| !t.is_cancelled()));
        drop(c);
        for token in later {
            within(
                "the token of an answered request to fire on disconnect",
                token.cancelled(),
            )
            .await;
        }
    }
}

/// A synchronous request that waited in the version 2 queue runs when a slot frees up, with
/// the token the queue made for it.
#[tokio::test]
async fn a_queued_sync_request_runs_when_a_slot_frees() {
    let (taken, kept) = new_state();
    let gate = Gate::new();
    let limits = Limits {
        max_in_flight: 1,
        max_queued: Some(4),
        ..Limits::default()
    };
    let server = TestServer::with(gate.add_to(router(&taken, &kept)), limits).await;
    let mut c = server.connect_v2().await;
    c.request(1, "gate", &()).await;
    gate.wait_entered(1).await;
    c.request(2, "whoami", &()).await;
    c.request(3, "take_token", &()).await;
    // Queued behind the gate: cancelling one answers it at once, without running it.
    c.cancel(3).await;
    let r = c.response().await;
    assert_eq!(
        (r.id.get(), error_code(&r)),
        (3, ErrorCode::REQUEST_CANCELLED)
    );
    gate.open();
    let mut answers = Vec::new();
    for _ in 0..2 {
        answers.push(c.response().await);
    }
    answers.sort_by_key(|r| r.id.get());
    assert_eq!(result_value::<String>(&answers[0]), "opened");
    let seen: Seen = result_value(&answers[1]);
    assert_eq!((seen.id, seen.cancelled), (2, false));
    assert!(
        taken.lock().expect("lock").is_empty(),
        "the cancelled request ran"
    );
    // And the connection goes on answering inline afterwards.
    let sum: i64 = c.call(4, "add", &json!({"a": 1, "b": 1})).await;
    assert_eq!(sum, 2);
}

/// `try_notify` never waits: past the connection's notification queue it fails with `Full`,
/// and what it did queue still leaves before the answer.
#[tokio::test]
async fn try_notify_past_a_full_queue_fails_and_what_was_queued_still_comes_first() {
    let (taken, kept) = new_state();
    let limits = Limits {
        notification_queue: 2,
        ..Limits::default()
    };
    let server = TestServer::with(router(&taken, &kept), limits).await;
    for version in VERSIONS {
        let mut c = connect(&server, version).await;
        c.request(1, "chatty", &5u64).await;
        for i in 0..2u64 {
            let n = c.notification().await;
            assert_eq!(n.method(), "tick");
            let got: u64 = hearth_protocol::from_msgpack(&n.params).expect("tick params");
            assert_eq!(got, i, "{version:?}");
        }
        let r = c.response().await;
        assert_eq!(r.id, 1);
        let e = r.outcome.expect_err("the third tick did not fit");
        assert_eq!(e.code, ErrorCode::INTERNAL_ERROR, "{version:?}");
        assert!(e.message.contains("queue is full"), "{e:?}");
        // The queue drained with the answer: the connection is usable as before.
        c.request(2, "chatty", &1u64).await;
        assert_eq!(c.notification().await.method(), "tick");
        let r = c.response().await;
        assert_eq!((r.id.get(), result_value::<u64>(&r)), (2, 1), "{version:?}");
    }
}
