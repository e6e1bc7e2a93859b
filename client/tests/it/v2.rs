//! Protocol version 2 from the client's side: first against scripted daemons (a raw peer
//! speaking the wire format) — the handshake and its fallback to version 1, request options,
//! streamed calls and their cancellation, the daemon's own requests served by the client —
//! then the same features against hearthd itself (`ask`, `count`, `sleep`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hearth_client::protocol::{ErrorObject, Message, Version};
use hearth_client::{Client, Error, ErrorCode, StreamEvent};
use serde::de::IgnoredAny;
use serde_json::json;
use tokio::sync::oneshot;

use crate::support::{FakeDaemon, Peer, TestDaemon, TestDaemonExt, eventually, within};

#[tokio::test]
async fn a_v2_daemon_gets_a_v2_connection() {
    let daemon = FakeDaemon::start_v2(|mut peer| async move {
        assert_eq!(peer.version(), Version::V2);
        let echo = peer.request().await.expect("the echo");
        assert!(echo.options.is_default(), "a plain call sends no options");
        peer.echo(&echo).await;
        peer.expect_hang_up().await;
    });
    let client = daemon.client().await;
    assert_eq!(client.protocol_version(), Version::V2);
    assert_eq!(client.hello().protocol, 2);
    let back: u32 = client.call("echo", &7u32).await.expect("echo");
    assert_eq!(back, 7);
    daemon.finish_after(client).await;
}

#[tokio::test]
async fn a_v1_only_daemon_gets_a_second_connection_in_v1() {
    let daemon = FakeDaemon::start_v1_only(|mut peer| async move {
        peer.answer_hello(1).await;
        assert_eq!(
            peer.version(),
            Version::V1,
            "the second hello is in version 1"
        );
        let echo = peer.request().await.expect("the echo");
        peer.echo(&echo).await;
        peer.expect_hang_up().await;
    });
    let client = within("connect", Client::connect(daemon.path()))
        .await
        .expect("falling back to version 1");
    assert_eq!(client.protocol_version(), Version::V1);
    assert_eq!(client.hello().protocol, 1);
    let back: String = client.call("echo", "hi").await.expect("echo");
    assert_eq!(back, "hi");
    // Options cannot be sent in version 1: a clear error, and nothing reaches the daemon.
    let err = client
        .request("echo", &1u8)
        .deadline(std::time::Duration::from_millis(5))
        .send::<IgnoredAny>()
        .await
        .expect_err("no options in version 1");
    assert!(
        matches!(err, Error::Unsupported { version: 1, .. }),
        "{err:?}"
    );
    assert!(!err.is_connection_lost());
    daemon.finish_after(client).await;
}

/// A daemon's -32002 for a call whose deadline came from its timeout is that timeout
/// expiring, whichever side noticed first: on a busy machine the daemon's answer can beat the
/// client's own timer, and the caller must see the same error either way.
#[tokio::test]
async fn a_timeout_the_daemon_reports_first_is_still_a_timeout() {
    let daemon = FakeDaemon::start_v2(|mut peer| async move {
        for _ in 0..2 {
            let call = peer.request().await.expect("a call with a timeout");
            assert_eq!(call.options.deadline_ms, Some(60_000));
            let expired = ErrorObject::new(ErrorCode::DEADLINE_EXCEEDED, "deadline exceeded");
            peer.send(|enc, buf| enc.error_response(buf, call.id, &expired))
                .await;
        }
        peer.expect_hang_up().await;
    });
    let client = daemon.client().await;
    let limit = Duration::from_secs(60);
    let err = client
        .call_timeout::<_, IgnoredAny>("sleep", &(), limit)
        .await
        .expect_err("the daemon says the deadline passed");
    assert!(matches!(err, Error::Timeout(d) if d == limit), "{err:?}");
    assert!(err.is_deadline_exceeded());
    // A call with an explicit deadline and no timeout keeps the daemon's error as it came.
    let err = client
        .request("sleep", &())
        .deadline(limit)
        .send::<IgnoredAny>()
        .await
        .expect_err("the daemon says the deadline passed");
    assert_eq!(err.code(), Some(ErrorCode::DEADLINE_EXCEEDED), "{err:?}");
    daemon.finish_after(client).await;
}

#[tokio::test]
async fn a_deadline_is_sent_and_its_answer_is_deadline_exceeded() {
    let daemon = FakeDaemon::start_v2(|mut peer| async move {
        let slow = peer.request().await.expect("the call with a deadline");
        assert_eq!(slow.options.deadline_ms, Some(21), "rounded up to whole ms");
        let expired = ErrorObject::new(ErrorCode::DEADLINE_EXCEEDED, "deadline exceeded");
        peer.send(|enc, buf| enc.error_response(buf, slow.id, &expired))
            .await;
        let timed = peer.request().await.expect("the call with a timeout");
        assert_eq!(
            timed.options.deadline_ms,
            Some(60_000),
            "call_timeout sends its timeout"
        );
        peer.send(|enc, buf| enc.response(buf, timed.id, &1u8))
            .await;
        peer.expect_hang_up().await;
    });
    let client = daemon.client().await;
    let err = client
        .request("sleep", &())
        .deadline(Duration::from_micros(20_500))
        .send::<IgnoredAny>()
        .await
        .expect_err("the daemon's deadline passed");
    assert!(err.is_deadline_exceeded(), "{err:?}");
    assert!(!err.is_superseded());
    let one: u8 = client
        .call_timeout("sleep", &(), Duration::from_secs(60))
        .await
        .expect("answered in time");
    assert_eq!(one, 1);
    daemon.finish_after(client).await;
}

#[tokio::test]
async fn a_superseded_call_fails_and_the_newer_one_is_answered() {
    let daemon = FakeDaemon::start_v2(|mut peer| async move {
        let first = peer.request().await.expect("the first call");
        let second = peer.request().await.expect("the second call");
        for call in [&first, &second] {
            assert_eq!(
                call.options.supersede.as_ref().map(|k| k.as_str()),
                Some("complete")
            );
        }
        let superseded = ErrorObject::new(ErrorCode::SUPERSEDED, "superseded");
        peer.send(|enc, buf| enc.error_response(buf, first.id, &superseded))
            .await;
        peer.send(|enc, buf| enc.response(buf, second.id, &"fresh"))
            .await;
        peer.expect_hang_up().await;
    });
    let client = daemon.client().await;
    // `join!` polls the first call first, so it is queued (and numbered) first.
    let (first, second) = within("both calls", async {
        tokio::join!(
            client
                .request("complete", &1u8)
                .supersede("complete")
                .send::<String>(),
            client
                .request("complete", &2u8)
                .supersede("complete")
                .send::<String>(),
        )
    })
    .await;
    let err = first.expect_err("the first call was superseded");
    assert!(err.is_superseded(), "{err:?}");
    assert_eq!(second.expect("the second call"), "fresh");
    daemon.finish_after(client).await;
}

#[tokio::test]
async fn a_stream_yields_its_partials_in_order_then_the_result() {
    let daemon = FakeDaemon::start_v2(|mut peer| async move {
        let count = peer.request().await.expect("the streamed call");
        assert!(count.options.stream);
        for seq in 0..3u64 {
            peer.send(|enc, buf| enc.partial(buf, count.id, seq, &(seq * 10)))
                .await;
        }
        peer.send(|enc, buf| enc.response(buf, count.id, &3u8))
            .await;
        peer.expect_hang_up().await;
    });
    let client = daemon.client().await;
    let events: Vec<_> = within(
        "the stream",
        client
            .request("count", &serde_json::json!({"n": 3}))
            .stream()
            .collect(),
    )
    .await;
    let events: Vec<StreamEvent> = events.into_iter().map(|e| e.expect("no error")).collect();
    let msgpack = |v: u64| Bytes::from(hearth_client::protocol::to_msgpack(&v).expect("msgpack"));
    assert_eq!(
        events,
        vec![
            StreamEvent::Partial {
                seq: 0,
                chunk: msgpack(0)
            },
            StreamEvent::Partial {
                seq: 1,
                chunk: msgpack(10)
            },
            StreamEvent::Partial {
                seq: 2,
                chunk: msgpack(20)
            },
            StreamEvent::Result(msgpack(3)),
        ]
    );
    assert_eq!(client.dropped_partials(), 0);
    daemon.finish_after(client).await;
}

#[tokio::test]
async fn partials_for_calls_that_did_not_stream_are_dropped() {
    let daemon = FakeDaemon::start_v2(|mut peer| async move {
        let plain = peer.request().await.expect("the plain call");
        assert!(!plain.options.stream);
        peer.send(|enc, buf| enc.partial(buf, plain.id, 0, &"stray"))
            .await;
        peer.send(|enc, buf| enc.partial(buf, 999_999, 0, &"nobody's"))
            .await;
        peer.send(|enc, buf| enc.response(buf, plain.id, &"done"))
            .await;
        peer.expect_hang_up().await;
    });
    let client = daemon.client().await;
    let done: String = client.call("count", &()).await.expect("the call");
    assert_eq!(done, "done");
    daemon.finish_after(client).await;
}

#[tokio::test]
async fn dropping_a_stream_cancels_its_call() {
    let daemon = FakeDaemon::start_v2(|mut peer| async move {
        let count = peer.request().await.expect("the streamed call");
        peer.send(|enc, buf| enc.partial(buf, count.id, 0, &0u8))
            .await;
        match peer.message().await {
            Some(Message::Cancel(cancel)) => assert_eq!(cancel.id, count.id),
            other => panic!("expected a cancel, got {other:?}"),
        }
        let cancelled = ErrorObject::new(ErrorCode::REQUEST_CANCELLED, "cancelled");
        peer.send(|enc, buf| enc.error_response(buf, count.id, &cancelled))
            .await;
        let echo = peer.request().await.expect("a call after the cancel");
        peer.echo(&echo).await;
        peer.expect_hang_up().await;
    });
    let client = daemon.client().await;
    let mut stream = client.request("count", &()).stream();
    let first = within("the first partial", stream.next())
        .await
        .expect("an event")
        .expect("a partial");
    assert!(
        matches!(first, StreamEvent::Partial { seq: 0, .. }),
        "{first:?}"
    );
    drop(stream);
    let back: u8 = within("echo", client.call("echo", &9u8))
        .await
        .expect("the connection still works");
    assert_eq!(back, 9);
    daemon.finish_after(client).await;
}

#[tokio::test]
async fn connection_death_fails_pending_calls_and_streams_at_once() {
    let (hang_up, hang_up_rx) = oneshot::channel::<()>();
    let daemon = FakeDaemon::start_v2(|mut peer| async move {
        let a = peer.request().await.expect("the first request");
        let b = peer.request().await.expect("the second request");
        let streamed = if b.options.stream { b.id } else { a.id };
        peer.send(|enc, buf| enc.partial(buf, streamed, 0, &0u8))
            .await;
        // Hang up with both unanswered, once the test has the partial.
        let _ = hang_up_rx.await;
    });
    let client = daemon.client().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call::<_, IgnoredAny>("sleep", &()).await }
    });
    let mut stream = client.request("count", &()).stream();
    let first = within("the partial", stream.next()).await;
    assert!(
        matches!(first, Some(Ok(StreamEvent::Partial { .. }))),
        "{first:?}"
    );
    let _ = hang_up.send(());
    let err = within("the call to fail", call)
        .await
        .expect("the call task")
        .expect_err("the daemon hung up");
    assert!(err.is_connection_lost(), "{err:?}");
    let end = within("the stream to fail", stream.next())
        .await
        .expect("one more event");
    assert!(matches!(&end, Err(e) if e.is_connection_lost()), "{end:?}");
    assert!(stream.next().await.is_none(), "nothing after the error");
    daemon.finish().await;
}

/// Reads messages until the client's response to daemon request `id`, skipping others.
async fn answer_to(peer: &mut Peer, id: u64) -> Result<Bytes, ErrorObject> {
    loop {
        match peer.message().await.expect("the client's answer") {
            Message::Response(r) if r.id == id => return r.outcome,
            Message::Response(r) => panic!("an answer to {} while waiting for {id}", r.id),
            _ => {}
        }
    }
}

#[tokio::test]
async fn served_methods_answer_the_daemon_and_unknown_ones_get_method_not_found() {
    let daemon = FakeDaemon::start_v2(|mut peer| async move {
        // As hearthd does, ask while working on one of the client's requests.
        let go = peer.request().await.expect("the client's call");
        peer.send(|enc, buf| enc.request(buf, 1, "editor/config", &41u32))
            .await;
        let answer = answer_to(&mut peer, 1).await.expect("a result");
        assert_eq!(
            hearth_client::protocol::from_msgpack::<u32>(&answer).ok(),
            Some(42)
        );
        peer.send(|enc, buf| enc.request(buf, 2, "nobody/serves", &()))
            .await;
        let err = answer_to(&mut peer, 2).await.expect_err("not served");
        assert_eq!(err.code, ErrorCode::METHOD_NOT_FOUND);
        peer.send(|enc, buf| enc.request(buf, 3, "panics", &()))
            .await;
        let err = answer_to(&mut peer, 3).await.expect_err("a panic");
        assert_eq!(err.code, ErrorCode::INTERNAL_ERROR);
        peer.send(|enc, buf| enc.request(buf, 4, "typed", &"x"))
            .await;
        let err = answer_to(&mut peer, 4).await.expect_err("wrong params");
        assert_eq!(err.code, ErrorCode::INVALID_PARAMS);
        peer.send(|enc, buf| enc.response(buf, go.id, &"ok")).await;
        peer.expect_hang_up().await;
    });
    let client = daemon.client().await;
    client.serve("editor/config", |params: Bytes| async move {
        let n: u32 = hearth_client::protocol::from_msgpack(&params)
            .map_err(|e| ErrorObject::new(ErrorCode::INVALID_PARAMS, e.to_string()))?;
        Ok(Bytes::from(
            hearth_client::protocol::to_msgpack(&(n + 1)).expect("msgpack"),
        ))
    });
    client.serve("panics", |_| async { panic!("a handler that panics") });
    client.serve_typed("typed", |n: u32| async move { Ok(n) });
    let ok: String = within("a call", client.call("go", &())).await.expect("ok");
    assert_eq!(ok, "ok");
    daemon.finish_after(client).await;
}

#[tokio::test]
async fn a_cancel_from_the_daemon_aborts_its_handler() {
    let (dropped_tx, dropped) = oneshot::channel::<()>();
    let (started_tx, started) = oneshot::channel::<()>();
    let daemon = FakeDaemon::start_v2(|mut peer| async move {
        let go = peer.request().await.expect("the client's call");
        peer.send(|enc, buf| enc.request(buf, 7, "hang", &())).await;
        let _ = started.await;
        peer.send(|enc, buf| enc.cancel(buf, 7)).await;
        // The aborted handler sends nothing; the next answer is for the next request.
        peer.send(|enc, buf| enc.request(buf, 8, "quick", &()))
            .await;
        assert!(answer_to(&mut peer, 8).await.is_ok());
        peer.send(|enc, buf| enc.response(buf, go.id, &())).await;
        peer.expect_hang_up().await;
    });
    let client = daemon.client().await;
    let started_tx = std::sync::Mutex::new(Some(started_tx));
    let dropped_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
    let started_tx = std::sync::Arc::new(started_tx);
    client.serve("hang", move |_| {
        let started = started_tx.lock().expect("lock").take();
        let on_drop = SignalOnDrop(dropped_tx.lock().expect("lock").take());
        async move {
            let _on_drop = on_drop;
            if let Some(started) = started {
                let _ = started.send(());
            }
            std::future::pending::<Result<Bytes, ErrorObject>>().await
        }
    });
    client.serve("quick", |_| async { Ok(Bytes::from_static(&[0xc0])) });
    let go = tokio::spawn({
        let client = client.clone();
        async move { client.call::<_, ()>("go", &()).await }
    });
    within("the handler to be aborted", dropped)
        .await
        .expect("the handler was dropped");
    within("the call", go)
        .await
        .expect("the call task")
        .expect("the call");
    daemon.finish_after(client).await;
}

/// Sends on its channel when dropped: tells the test a handler's future is gone.
struct SignalOnDrop(Option<oneshot::Sender<()>>);

impl Drop for SignalOnDrop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

#[tokio::test]
async fn many_running_handlers_do_not_block_calls_and_are_bounded() {
    const ASKS: u64 = 100;
    let daemon = FakeDaemon::start_v2(|mut peer| async move {
        let go = peer.request().await.expect("the client's first call");
        for id in 1..=ASKS {
            peer.send(|enc, buf| enc.request(buf, id, "held", &id))
                .await;
        }
        // While every handler waits, the client's own call goes through.
        let call = peer.request().await.expect("the client's call");
        peer.send(|enc, buf| enc.response(buf, call.id, &"through"))
            .await;
        let mut answered = std::collections::BTreeSet::new();
        while answered.len() < ASKS as usize {
            match peer.message().await.expect("answers") {
                Message::Response(r) => {
                    let n: u64 = hearth_client::protocol::from_msgpack(&r.outcome.expect("ok"))
                        .expect("a number");
                    assert_eq!(n, r.id.get());
                    assert!(answered.insert(n), "{n} answered twice");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        peer.send(|enc, buf| enc.response(buf, go.id, &())).await;
        peer.expect_hang_up().await;
    });
    let client = daemon.client().await;
    let gate = tokio::sync::watch::channel(false).0;
    let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    client.serve("held", {
        let (gate, running, most) = (gate.subscribe(), running.clone(), most.clone());
        move |params: Bytes| {
            let (mut gate, running, most) = (gate.clone(), running.clone(), most.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _ = gate.wait_for(|open| *open).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(params)
            }
        }
    });
    let go = tokio::spawn({
        let client = client.clone();
        async move { client.call::<_, ()>("go", &()).await }
    });
    eventually("64 handlers run", || running.load(Ordering::SeqCst) == 64).await;
    let through: String = within("a call while handlers wait", client.call("m", &()))
        .await
        .expect("the call");
    assert_eq!(through, "through");
    gate.send_replace(true);
    within("the first call", go)
        .await
        .expect("the call task")
        .expect("the call");
    daemon.finish_after(client).await;
    assert_eq!(
        most.load(Ordering::SeqCst),
        64,
        "at most 64 handlers at once"
    );
}

// Against hearthd itself (the test daemon, which speaks version 2).

#[tokio::test]
async fn hearthd_asks_a_served_method_and_relays_its_answer() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    assert_eq!(client.protocol_version(), Version::V2);
    client.serve_typed("editor/config", |n: u32| async move { Ok(n + 1) });
    let answer: u32 = within(
        "ask",
        client.call("ask", &json!({"method": "editor/config", "params": 41})),
    )
    .await
    .expect("the daemon relays our answer");
    assert_eq!(answer, 42);
    let err = within(
        "ask for a method nobody serves",
        client.call::<_, IgnoredAny>("ask", &json!({"method": "nope"})),
    )
    .await
    .expect_err("we serve no `nope`");
    assert_eq!(err.code(), Some(ErrorCode::METHOD_NOT_FOUND), "{err:?}");
}

#[tokio::test]
async fn hearthd_streams_count_partials_then_the_result() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let events: Vec<_> = within(
        "the stream",
        client
            .request("count", &json!({"n": 5, "interval_ms": 0}))
            .stream()
            .collect(),
    )
    .await;
    let msgpack = |v: u64| Bytes::from(hearth_client::protocol::to_msgpack(&v).expect("msgpack"));
    let mut expected: Vec<StreamEvent> = (0..5)
        .map(|seq| StreamEvent::Partial {
            seq,
            chunk: msgpack(seq),
        })
        .collect();
    expected.push(StreamEvent::Result(msgpack(5)));
    let events: Vec<StreamEvent> = events.into_iter().map(|e| e.expect("no error")).collect();
    assert_eq!(events, expected);
}

#[tokio::test]
async fn hearthd_stops_a_call_at_its_deadline() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let err = within(
        "the call with a deadline",
        client
            .request("sleep", &json!({"ms": 60_000}))
            .deadline(Duration::from_millis(20))
            .send::<IgnoredAny>(),
    )
    .await
    .expect_err("the sleep outlasts its deadline");
    assert!(err.is_deadline_exceeded(), "{err:?}");
    assert_eq!(err.code(), Some(ErrorCode::DEADLINE_EXCEEDED));
    assert_eq!(daemon.stats().in_flight, 0);
}

#[tokio::test]
async fn hearthd_supersedes_the_older_call_with_the_same_key() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let older = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .request("sleep", &json!({"ms": 60_000}))
                .supersede("complete")
                .send::<IgnoredAny>()
                .await
        }
    });
    eventually("the older call runs", || daemon.stats().in_flight == 1).await;
    let newer: u8 = within(
        "the newer call",
        client.request("echo", &5u8).supersede("complete").send(),
    )
    .await
    .expect("the newer call is answered");
    assert_eq!(newer, 5);
    let err = within("the older call", older)
        .await
        .expect("its task")
        .expect_err("superseded");
    assert!(err.is_superseded(), "{err:?}");
}

#[tokio::test]
async fn dropping_a_stream_cancels_it_at_hearthd() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let mut stream = client
        .request("count", &json!({"n": 1_000, "interval_ms": 1_000}))
        .stream();
    let first = within("the first partial", stream.next()).await;
    assert!(
        matches!(first, Some(Ok(StreamEvent::Partial { seq: 0, .. }))),
        "{first:?}"
    );
    drop(stream);
    eventually("the daemon counts the cancel", || {
        daemon.stats().errors.get("-32800").copied() == Some(1)
    })
    .await;
    eventually("nothing runs", || daemon.stats().in_flight == 0).await;
}

#[tokio::test]
async fn a_handler_can_call_the_daemon_through_a_weak_client() {
    let daemon = TestDaemon::start();
    let client = daemon.client().await;
    let weak = client.downgrade();
    client.serve("nested", move |params: Bytes| {
        let weak = weak.clone();
        async move {
            let client = weak
                .upgrade()
                .ok_or_else(|| ErrorObject::new(ErrorCode::INTERNAL_ERROR, "client gone"))?;
            // A call of our own while the daemon waits for this answer: the reader is free.
            client
                .call_raw("echo", &params)
                .await
                .map_err(|e| ErrorObject::new(ErrorCode::INTERNAL_ERROR, e.to_string()))
        }
    });
    let back: u32 = within(
        "ask for a handler that calls back",
        client.call("ask", &json!({"method": "nested", "params": 5})),
    )
    .await
    .expect("the nested answer");
    assert_eq!(back, 5);
    let weak = client.downgrade();
    drop(client);
    assert!(
        weak.upgrade().is_none(),
        "a weak handle keeps nothing alive"
    );
}
