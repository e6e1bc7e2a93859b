//! Protocol version 2 on the wire, written from docs/PROTOCOL.md (sections 9.1, 10 and 15)
//! alone, with testkit's raw peer and its answer checker: which version a connection speaks,
//! `$/hello` in both versions, deadlines, supersede, streamed partial results (`count`),
//! requests from the daemon (`ask`) and their cancels, the wait queue past `max_in_flight`,
//! shutdown, and two regressions (the frame timeout while the daemon is not reading, frames
//! left unread at shutdown). Every test on a v2 connection ends by checking each request was
//! answered exactly once, partials before their response and in order.
//!
//! Handlers that must stay in flight wait at a [`Gate`]; deadline tests run with paused time,
//! the daemon being in the test's runtime, so no assertion depends on how fast the machine is.

use std::time::Duration;

use hearth_protocol::reserved::{Fatal, HelloResult};
use hearth_protocol::{ErrorCode, Message, Version};
use hearth_server::{Limits, builtins};
use serde_json::json;

use crate::support::{Gate, OptsExt, Raw, TestServer, error_code, opts, result_value};

/// The built-ins plus `gate`, with `max_in_flight` requests running per connection.
async fn gated(max_in_flight: usize) -> (TestServer, Gate) {
    let gate = Gate::new();
    let limits = Limits {
        max_in_flight,
        ..Limits::default()
    };
    let server = TestServer::with(gate.add_to(builtins::router()), limits).await;
    (server, gate)
}

/// Reads every message until every request the peer sent has been answered, panicking on
/// anything that is not an answer.
async fn answers_only(c: &mut Raw) {
    let other = c.drain_answers().await;
    assert!(other.is_empty(), "unexpected messages: {other:?}");
    c.checker().assert_all_answered();
}

/// Asserts that each of `ids` was answered with what `gate` returns once opened.
fn assert_opened(c: &mut Raw, ids: impl IntoIterator<Item = u64>) {
    for id in ids {
        assert_eq!(
            result_value::<String>(c.checker().answer(id)),
            "opened",
            "id {id}"
        );
    }
}

/// Asserts that each of `ids` was answered with the error `code`.
fn assert_codes(c: &mut Raw, ids: impl IntoIterator<Item = u64>, code: ErrorCode) {
    for id in ids {
        assert_eq!(c.checker().code(id), code, "id {id}");
    }
}

/// Sends a `gate` request for each of `ids`, one write each.
async fn send_gates(c: &mut Raw, ids: impl IntoIterator<Item = u64>) {
    for id in ids {
        c.request(id, "gate", &()).await;
    }
}

/// Sends `gate` requests 1 to `n`, noted with the checker, in one write: whole frames that
/// the daemon reads only as it chooses to.
async fn send_gates_at_once(c: &mut Raw, n: u64) {
    let mut batch = Vec::new();
    for id in 1..=n {
        batch.extend_from_slice(&c.request_frame(id, "gate", &()));
        c.sent(id, false);
    }
    c.send_bytes(&batch).await;
}

/// Waits until the daemon has read four `gate` requests and two of them run.
async fn four_read_two_running(server: &TestServer, gate: &Gate) {
    server
        .wait_stats("four requests read", |s| s.methods.get("gate") == Some(&4))
        .await;
    gate.wait_entered(2).await;
}

// --- 15.2 Which version a connection speaks ---------------------------------------------

#[tokio::test]
async fn the_first_message_fixes_the_version_and_another_is_fatal() {
    let server = TestServer::start().await;
    // Version 2 first, then a version 1 message.
    let mut c = server.connect_v2().await;
    let back: u8 = c.call(1, "echo", &7u8).await;
    assert_eq!(back, 7);
    let v1 = Raw::connect(&server.path)
        .await
        .request_frame(2, "echo", &1u8);
    c.send_bytes(&v1).await;
    let d = c.next_decoded().await.expect("a $/fatal");
    assert_eq!(
        d.version,
        Version::V2,
        "the fatal carries the connection's version"
    );
    let Message::Notification(n) = d.message else {
        panic!("expected $/fatal, got {:?}", d.message)
    };
    assert_eq!(n.method(), "$/fatal");
    let fatal: Fatal = hearth_protocol::from_msgpack(&n.params).expect("fatal");
    assert_eq!(
        (fatal.code, fatal.supported),
        (ErrorCode::UNSUPPORTED_VERSION.0, vec![1, 2])
    );
    assert!(c.next_or_reset().await.is_none(), "closed after $/fatal");

    // Version 1 first, then a version 2 message.
    let mut c = server.connect().await;
    let back: u8 = c.call(1, "echo", &7u8).await;
    assert_eq!(back, 7);
    c.send_bytes(&crate::support::Frames::v2().request(2, "echo", &1u8))
        .await;
    let d = c.next_decoded().await.expect("a $/fatal");
    assert_eq!(d.version, Version::V1);
    let Message::Notification(n) = d.message else {
        panic!("expected $/fatal, got {:?}", d.message)
    };
    let fatal: Fatal = hearth_protocol::from_msgpack(&n.params).expect("fatal");
    assert_eq!(
        (n.method(), fatal.code, fatal.supported),
        ("$/fatal", ErrorCode::UNSUPPORTED_VERSION.0, vec![1, 2])
    );
}

#[tokio::test]
async fn hello_in_version_1_is_unchanged() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.request(1, "$/hello", &()).await;
    let r = c.response().await;
    let raw: serde_json::Value = result_value(&r);
    let mut keys: Vec<&str> = raw
        .as_object()
        .expect("a map")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["build", "limits", "methods", "protocol", "server"]);
    assert_eq!(raw["protocol"], 1);
}

#[tokio::test]
async fn hello_in_version_2_says_protocol_2_and_supported() {
    let server = TestServer::start().await;
    let mut c = server.connect_v2().await;
    let hello: HelloResult = c.call(1, "$/hello", &()).await;
    assert_eq!(hello.protocol, 2);
    assert_eq!(hello.supported, [1, 2]);
    for m in ["count", "ask"] {
        assert!(
            hello.methods.iter().any(|x| x == m),
            "{m} in {:?}",
            hello.methods
        );
    }
    c.checker().assert_all_answered();
}

// --- 15.1 deadline_ms --------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_deadline_stops_a_gated_handler_with_deadline_exceeded() {
    let (server, gate) = gated(16).await;
    let mut c = server.connect_v2().await;
    c.request_with(1, "gate", &(), &opts().deadline_ms(50))
        .await;
    answers_only(&mut c).await;
    assert_eq!(c.checker().code(1), ErrorCode::DEADLINE_EXCEEDED);
    assert_eq!(gate.entered(), 1, "it ran");
    gate.wait_left(1).await; // and was stopped: the gate never opened
}

#[tokio::test]
async fn deadline_zero_is_answered_without_starting() {
    let (server, gate) = gated(16).await;
    let mut c = server.connect_v2().await;
    c.request_with(1, "gate", &(), &opts().deadline_ms(0)).await;
    // An echo behind it: once it is answered, request 1 has certainly been read.
    c.request(2, "echo", &2u8).await;
    answers_only(&mut c).await;
    assert_eq!(c.checker().code(1), ErrorCode::DEADLINE_EXCEEDED);
    assert_eq!(gate.entered(), 0, "a request already expired never starts");
}

#[tokio::test(start_paused = true)]
async fn a_deadline_with_a_builtin_is_deadline_exceeded() {
    let server = TestServer::start().await;
    let mut c = server.connect_v2().await;
    c.request_with(1, "sleep", &json!({"ms": 600_000}), &opts().deadline_ms(20))
        .await;
    c.request_with(
        2,
        "count",
        &json!({"n": 10, "interval_ms": 60_000}),
        &opts().deadline_ms(20).stream(),
    )
    .await;
    answers_only(&mut c).await;
    assert_eq!(c.checker().code(1), ErrorCode::DEADLINE_EXCEEDED);
    assert_eq!(c.checker().code(2), ErrorCode::DEADLINE_EXCEEDED);
}

// --- 15.1 supersede ----------------------------------------------------------------------

#[tokio::test]
async fn supersede_stops_the_earlier_request_and_runs_the_later() {
    let (server, gate) = gated(16).await;
    let mut c = server.connect_v2().await;
    c.request_with(1, "gate", &(), &opts().supersede("k")).await;
    gate.wait_entered(1).await;
    c.request_with(2, "gate", &(), &opts().supersede("k")).await;
    let first = c.response().await;
    assert_eq!(
        (first.id.get(), error_code(&first)),
        (1, ErrorCode::SUPERSEDED)
    );
    gate.wait_entered(2).await;
    // Another key, and no key, are not affected.
    c.request_with(3, "gate", &(), &opts().supersede("other"))
        .await;
    c.request(4, "gate", &()).await;
    gate.wait_entered(4).await;
    gate.open();
    answers_only(&mut c).await;
    assert_opened(&mut c, [2, 3, 4]);
}

#[tokio::test]
async fn supersede_applies_to_queued_requests() {
    let (server, gate) = gated(1).await;
    let mut c = server.connect_v2().await;
    c.request(1, "gate", &()).await;
    gate.wait_entered(1).await;
    c.request_with(2, "gate", &(), &opts().supersede("k")).await; // queued
    c.request_with(3, "gate", &(), &opts().supersede("k")).await; // replaces it, queued
    let r = c.response().await;
    assert_eq!((r.id.get(), error_code(&r)), (2, ErrorCode::SUPERSEDED));
    assert_eq!(
        gate.entered(),
        1,
        "the queued request was answered without starting"
    );
    gate.open();
    answers_only(&mut c).await;
    assert_opened(&mut c, [1, 3]);
    assert_eq!(gate.entered(), 2);
}

// --- 15.1 stream and the built-in count --------------------------------------------------

#[tokio::test]
async fn a_streamed_count_sends_partials_in_order_then_the_response() {
    let server = TestServer::start().await;
    let mut c = server.connect_v2().await;
    c.request_with(
        6,
        "count",
        &json!({"n": 5, "interval_ms": 0}),
        &opts().stream(),
    )
    .await;
    answers_only(&mut c).await;
    let chunks: Vec<(u64, u64)> = c
        .checker()
        .partials(6)
        .iter()
        .map(|(seq, chunk)| (*seq, hearth_protocol::from_msgpack(chunk).expect("uint")))
        .collect();
    // Nothing is dropped for a peer that reads: every chunk, in order, before the response.
    assert_eq!(chunks, (0..5).map(|n| (n, n)).collect::<Vec<_>>());
    assert_eq!(result_value::<u64>(c.checker().answer(6)), 5);
}

#[tokio::test]
async fn without_stream_count_sends_no_partials() {
    let server = TestServer::start().await;
    let mut c = server.connect_v2().await;
    // The checker fails on any partial for a request that did not ask for a stream.
    c.request(1, "count", &json!({"n": 5, "interval_ms": 0}))
        .await;
    c.request_with(2, "count", &json!({"n": 3, "interval_ms": 0}), &opts())
        .await;
    answers_only(&mut c).await;
    assert_eq!(result_value::<u64>(c.checker().answer(1)), 5);
    assert_eq!(result_value::<u64>(c.checker().answer(2)), 3);
}

#[tokio::test]
async fn count_refuses_params_out_of_range() {
    let server = TestServer::start().await;
    let mut c = server.connect_v2().await;
    c.request(1, "count", &json!({"n": 1_000_001, "interval_ms": 0}))
        .await;
    c.request(2, "count", &json!({"n": 1, "interval_ms": 60_001}))
        .await;
    c.request(3, "count", &"three").await;
    answers_only(&mut c).await;
    assert_codes(&mut c, 1..=3, ErrorCode::INVALID_PARAMS);
}

// --- 15.3 requests from the daemon: ask ---------------------------------------------------

/// Sends `ask` with id `id` and returns the request the daemon made of the peer.
async fn ask(
    c: &mut Raw,
    id: u64,
    method: &str,
    params: serde_json::Value,
) -> hearth_protocol::Request {
    c.request(id, "ask", &json!({"method": method, "params": params}))
        .await;
    match c.next().await {
        Some(Message::Request(r)) => r,
        other => panic!("expected the daemon's request, got {other:?}"),
    }
}

#[tokio::test]
async fn ask_round_trip_returns_the_peers_result() {
    let server = TestServer::start().await;
    let mut c = server.connect_v2().await;
    let req = ask(&mut c, 1, "editor/config", json!({"file": "a.rs"})).await;
    assert_eq!(req.method(), "editor/config");
    let params: serde_json::Value = hearth_protocol::from_msgpack(&req.params).expect("params");
    assert_eq!(params, json!({"file": "a.rs"}));
    // The daemon's id space is its own: the same id as the peer's call is fine, any is.
    c.respond(req.id.get(), &json!({"tab": 4})).await;
    answers_only(&mut c).await;
    let result: serde_json::Value = result_value(c.checker().answer(1));
    assert_eq!(result, json!({"tab": 4}));
    assert!(c.checker().daemon_outstanding().is_empty());
}

#[tokio::test]
async fn ask_passes_the_peers_error_unchanged() {
    let server = TestServer::start().await;
    let mut c = server.connect_v2().await;
    let req = ask(&mut c, 1, "editor/nope", json!(null)).await;
    c.respond_error(req.id.get(), -32601, "no such method here")
        .await;
    let req = ask(&mut c, 2, "editor/app", json!(null)).await;
    c.respond_error(req.id.get(), 42, "the application's own error")
        .await;
    answers_only(&mut c).await;
    let e1 = c.checker().answer(1).outcome.clone().expect_err("an error");
    assert_eq!(
        (e1.code.0, e1.message.as_str()),
        (-32601, "no such method here")
    );
    let e2 = c.checker().answer(2).outcome.clone().expect_err("an error");
    assert_eq!(
        (e2.code.0, e2.message.as_str()),
        (42, "the application's own error")
    );
}

#[tokio::test]
async fn ask_on_a_version_1_connection_is_invalid_request() {
    let server = TestServer::start().await;
    let mut c = server.connect().await.checked();
    c.request(1, "ask", &json!({"method": "m", "params": null}))
        .await;
    answers_only(&mut c).await;
    assert_eq!(c.checker().code(1), ErrorCode::INVALID_REQUEST);
    assert_eq!(
        c.checker().daemon_requests(),
        0,
        "v1 never receives a request"
    );
}

#[tokio::test]
async fn a_response_for_an_unknown_id_is_ignored() {
    let server = TestServer::start().await;
    let mut c = server.connect_v2().await;
    let f = c.frames();
    c.send_bytes(&f.response(999, &"nobody asked")).await;
    c.send_bytes(&f.error_response(998, 1, "nor this")).await;
    // Answer an ask twice: the second answer is for an id no longer awaited.
    let req = ask(&mut c, 1, "m", json!(null)).await;
    c.respond(req.id.get(), &1u8).await;
    c.respond(req.id.get(), &2u8).await;
    c.request(2, "echo", &"still here").await;
    answers_only(&mut c).await;
    assert_eq!(result_value::<u8>(c.checker().answer(1)), 1);
    assert_eq!(result_value::<String>(c.checker().answer(2)), "still here");
}

#[tokio::test]
async fn cancelling_an_ask_cancels_the_daemons_request() {
    let server = TestServer::start().await;
    let mut c = server.connect_v2().await;
    let req = ask(&mut c, 1, "slow/thing", json!(null)).await;
    c.cancel(1).await;
    // The ask is answered -32800 and the daemon cancels its own request, in either order.
    let mut cancelled_daemon_request = false;
    while !(c.checker().all_answered() && cancelled_daemon_request) {
        match c.next().await {
            Some(Message::Cancel(k)) => {
                assert_eq!(k.id, req.id, "the daemon cancels the request it made");
                cancelled_daemon_request = true;
            }
            Some(Message::Response(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(c.checker().code(1), ErrorCode::REQUEST_CANCELLED);
    // A late answer to the cancelled request is ignored; the connection serves on.
    c.respond(req.id.get(), &"late").await;
    let back: u8 = c.call(2, "echo", &3u8).await;
    assert_eq!(back, 3);
}

/// The daemon keeps at most 64 of its own requests in flight per connection (15.3): 65
/// concurrent `ask` calls produce 64 requests; the 65th comes only once one is answered.
/// Time is paused and the daemon runs in this runtime, so sleeping one virtual second lets
/// every daemon task run until it blocks: whatever it would send by then has been sent.
#[tokio::test(start_paused = true)]
async fn the_daemon_keeps_at_most_64_requests_in_flight() {
    let server = TestServer::start().await;
    let mut c = server.connect_v2().await;
    for id in 1..=65 {
        c.request(id, "ask", &json!({"method": "m", "params": id}))
            .await;
    }
    let mut asked = Vec::new();
    while asked.len() < 64 {
        match c.next().await {
            Some(Message::Request(r)) => asked.push(r.id.get()),
            other => panic!("expected a daemon request, got {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.request(100, "echo", &0u8).await;
    match c.next().await {
        Some(Message::Response(r)) if r.id == 100 => {}
        other => panic!("a 65th daemon request while 64 are in flight: {other:?}"),
    }
    c.respond(asked[0], &"first").await;
    let last = loop {
        match c.next().await {
            Some(Message::Request(r)) => break r.id.get(),
            Some(Message::Response(_)) => {} // the first ask's answer
            other => panic!("unexpected {other:?}"),
        }
    };
    for id in asked.into_iter().skip(1).chain([last]) {
        c.respond(id, &"answer").await;
    }
    answers_only(&mut c).await;
    assert_eq!(
        c.checker().codes().get(&None),
        Some(&66),
        "65 asks and the echo"
    );
}

/// A daemon request the peer never answers is given up after 30 s (hearthd's bound): the
/// `ask` that made it is answered -32002; any cancel the daemon sends names its own request.
#[tokio::test(start_paused = true)]
async fn an_unanswered_daemon_request_is_given_up_after_30_s() {
    let server = TestServer::start().await;
    let mut c = server.connect_v2().await;
    let start = tokio::time::Instant::now();
    let req = ask(&mut c, 1, "never/answered", json!(null)).await;
    let other = c.drain_answers().await;
    for m in &other {
        match m {
            Message::Cancel(k) => assert_eq!(k.id, req.id),
            m => panic!("unexpected {m:?}"),
        }
    }
    assert_eq!(c.checker().code(1), ErrorCode::DEADLINE_EXCEEDED);
    // Paused time: the virtual clock moved exactly as far as the daemon's timer.
    assert!(
        start.elapsed() >= Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn client_sent_partials_are_refused_and_the_connection_serves_on() {
    let server = TestServer::start().await;
    let mut c = server.connect_v2().await;
    let partial = c.frames().partial(1, 0, &"not yours to send");
    c.send_bytes(&partial).await;
    c.request(2, "echo", &2u8).await;
    // At most a $/error for the partial; then the echo's answer.
    let other = c.drain_answers().await;
    for m in &other {
        assert!(
            matches!(m, Message::Notification(n) if n.method() == "$/error"),
            "{m:?}"
        );
    }
    assert_eq!(result_value::<u8>(c.checker().answer(2)), 2);
}

// --- 15.4 the wait queue -----------------------------------------------------------------

#[tokio::test]
async fn past_max_in_flight_requests_queue_and_start_as_running_ones_finish() {
    let (server, gate) = gated(2).await;
    let mut c = server.connect_v2().await;
    send_gates(&mut c, 1..=4).await;
    // All four are read (v2 keeps reading), two run.
    four_read_two_running(&server, &gate).await;
    assert_eq!(gate.entered(), 2, "only max_in_flight run");
    gate.open();
    answers_only(&mut c).await;
    assert_opened(&mut c, 1..=4);
    assert_eq!(gate.entered(), 4);
}

/// The queue holds `max_in_flight` more requests (15.4), whatever `max_in_flight` is. Paused
/// time (the daemon runs in this runtime): if the busy answers never come, the wait for them
/// fails at once instead of after a minute.
#[tokio::test(start_paused = true)]
async fn past_the_queue_bound_requests_get_server_busy_and_the_connection_serves_on() {
    let (server, gate) = gated(2).await;
    let mut c = server.connect_v2().await;
    send_gates(&mut c, 1..=4).await; // two run, two wait
    c.request(5, "gate", &()).await;
    c.request(6, "echo", &6u8).await;
    // Both are answered at once, while the gate is still closed.
    for _ in 0..2 {
        let r = tokio::time::timeout(crate::support::PATIENCE / 2, c.response())
            .await
            .expect(
                "requests past max_in_flight running + max_in_flight queued are answered -32001 \
                 (PROTOCOL.md 15.4), not queued",
            );
        assert!([5, 6].contains(&r.id.get()), "{r:?}");
        assert_eq!(error_code(&r), ErrorCode::SERVER_BUSY);
    }
    assert_eq!(gate.entered(), 2);
    gate.open();
    answers_only(&mut c).await;
    assert_opened(&mut c, 1..=4);
    let back: u8 = c.call(7, "echo", &7u8).await;
    assert_eq!(back, 7, "still served");
}

#[tokio::test]
async fn a_cancel_stops_a_queued_request_without_starting_it() {
    let (server, gate) = gated(1).await;
    let mut c = server.connect_v2().await;
    c.request(1, "gate", &()).await;
    c.request(2, "gate", &()).await; // queued
    gate.wait_entered(1).await;
    c.cancel(2).await;
    let r = c.response().await;
    assert_eq!(
        (r.id.get(), error_code(&r)),
        (2, ErrorCode::REQUEST_CANCELLED)
    );
    assert_eq!(gate.entered(), 1);
    gate.open();
    answers_only(&mut c).await;
    assert_eq!(gate.entered(), 1, "the cancelled request never ran");
}

#[tokio::test(start_paused = true)]
async fn a_deadline_runs_while_queued() {
    let (server, gate) = gated(1).await;
    let mut c = server.connect_v2().await;
    c.request(1, "gate", &()).await;
    c.request_with(2, "gate", &(), &opts().deadline_ms(50))
        .await; // queued
    let r = c.response().await;
    assert_eq!(
        (r.id.get(), error_code(&r)),
        (2, ErrorCode::DEADLINE_EXCEEDED)
    );
    assert_eq!(
        gate.entered(),
        1,
        "it expired in the queue, without starting"
    );
    gate.open();
    answers_only(&mut c).await;
}

#[tokio::test]
async fn shutdown_answers_running_and_queued_requests_shutting_down() {
    let (server, gate) = gated(2).await;
    let mut c = server.connect_v2().await;
    send_gates(&mut c, 1..=4).await;
    four_read_two_running(&server, &gate).await;
    server.handle.shutdown_now();
    answers_only(&mut c).await;
    assert_codes(&mut c, 1..=4, ErrorCode::SHUTTING_DOWN);
    assert!(
        c.next_or_reset().await.is_none(),
        "then the connection closes"
    );
}

// --- 15.5 exactly one response, under a mix ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_answered_exactly_once_under_a_mix() {
    let (server, gate) = gated(64).await;
    let mut c = server.connect_v2().await;
    let mut id = 0u64;
    let mut next = || {
        id += 1;
        id
    };
    for round in 0..20u64 {
        let a = next();
        c.request_with(a, "gate", &(), &opts().supersede("latest"))
            .await;
        let b = next();
        c.request_with(
            b,
            "count",
            &json!({"n": round, "interval_ms": 0}),
            &opts().stream(),
        )
        .await;
        let d = next();
        c.request_with(d, "gate", &(), &opts().deadline_ms(0)).await;
        let e = next();
        c.request(e, "gate", &()).await;
        c.cancel(e).await;
        let f = next();
        c.request(f, "echo", &round).await;
        c.cancel(u64::MAX - round).await; // for nothing in flight: ignored
    }
    let last = next();
    c.request_with(last, "gate", &(), &opts().supersede("latest"))
        .await;
    // Everything but the last gate finishes without the gate; then open it.
    while c.checker().outstanding() != [last] {
        match c.next().await {
            Some(Message::Response(_) | Message::Partial(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    gate.open();
    answers_only(&mut c).await;
    c.checker().assert_all_answered();
    let codes = c.checker().codes();
    // 20 superseded gates, 20 expired, 20 cancelled; the queue (64) never fills.
    for code in [
        ErrorCode::SUPERSEDED,
        ErrorCode::DEADLINE_EXCEEDED,
        ErrorCode::REQUEST_CANCELLED,
    ] {
        let answered = codes.get(&Some(code.0)).copied().unwrap_or(0);
        assert_eq!(answered, 20, "{code:?} in {codes:?}");
    }
    assert_opened(&mut c, [last]);
}

// --- regressions -------------------------------------------------------------------------

/// The frame timeout runs only while the daemon is reading (PROTOCOL.md 7.4): whole frames it
/// has not chosen to read, because `max_in_flight` requests are running, never count against
/// the peer. Eight whole requests sent at once with four allowed to run; time passes far
/// beyond the frame timeout; no `$/fatal` -32008, and all eight are answered once the gate
/// opens.
#[tokio::test(start_paused = true)]
async fn the_frame_timeout_does_not_run_while_the_daemon_is_not_reading() {
    let gate = Gate::new();
    let limits = Limits {
        max_in_flight: 4,
        frame_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let server = TestServer::with(gate.add_to(builtins::router()), limits).await;
    let mut c = server.connect().await.checked();
    send_gates_at_once(&mut c, 8).await;
    gate.wait_entered(4).await;
    tokio::time::sleep(Duration::from_secs(10)).await; // paused time: 100 frame timeouts
    gate.open();
    answers_only(&mut c).await;
    assert_opened(&mut c, 1..=8);
}

/// Frames the daemon had not decoded yet (it was at `max_in_flight`) when shutdown empties
/// the running set are requests it could read: each is answered -32003, none is dropped.
#[tokio::test]
async fn frames_left_unread_at_shutdown_are_answered_shutting_down() {
    let (server, gate) = gated(4).await;
    let mut c = server.connect().await.checked();
    send_gates_at_once(&mut c, 8).await;
    gate.wait_entered(4).await;
    server.handle.shutdown_now();
    answers_only(&mut c).await;
    assert_codes(&mut c, 1..=8, ErrorCode::SHUTTING_DOWN);
}
