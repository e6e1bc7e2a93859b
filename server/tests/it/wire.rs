//! The protocol as a peer sees it, with raw frames against an in-process server: ordering,
//! cancel, errors for every kind of bad input, and isolation of a panicking handler.

use std::collections::BTreeMap;

use bytes::BytesMut;
use hearth_protocol::{ErrorCode, Message};
use hearth_server::{Limits, MethodError, RequestContext, Router, builtins};
use serde_json::json;

use crate::support::{Gate, PATIENCE, TestServer, error_code, result_bytes};

/// A request that cannot finish until the test says so, pipelined in front of 200 echoes:
/// every echo must be answered while it is still running (so answers are not held back in
/// request order), and it is answered once the gate opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_come_back_out_of_order() {
    let gate = Gate::new();
    let server = TestServer::with(gate.add_to(builtins::router()), Limits::default()).await;
    let mut c = server.connect().await;
    let mut batch = c.request_frame(1_000, "gate", &());
    for id in 0..200u64 {
        batch.extend_from_slice(&c.request_frame(id, "echo", &json!({"n": id})));
    }
    c.send_bytes(&batch).await; // pipelined: one write
    let mut echoes = BTreeMap::new();
    for _ in 0..200 {
        let r = c.response().await;
        assert_ne!(
            r.id, 1_000,
            "the gated request answered before its gate opened"
        );
        let v: serde_json::Value =
            hearth_protocol::from_msgpack(&result_bytes(r.clone())).expect("json");
        assert_eq!(
            v,
            json!({"n": r.id.get()}),
            "echo {} got someone else's params",
            r.id
        );
        assert!(
            echoes.insert(r.id, ()).is_none(),
            "two responses for id {}",
            r.id
        );
    }
    assert_eq!(echoes.len(), 200);
    assert_eq!(gate.entered(), 1, "the gated request is running");
    gate.open();
    let r = c.response().await;
    assert_eq!(r.id, 1_000);
    let v: String = hearth_protocol::from_msgpack(&result_bytes(r)).expect("str");
    assert_eq!(v, "opened");
}

#[tokio::test]
async fn echo_returns_params_byte_for_byte() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    // A map with a binary value and an integer key: nothing a JSON round trip would keep.
    let params = [
        0x82, 0x01, 0xc4, 0x02, 0xde, 0xad, 0xa1, 0x6b, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0,
    ];
    let mut body = vec![0x95, 0x01, 0x00, 0x05, 0xa4, b'e', b'c', b'h', b'o'];
    body.extend_from_slice(&params);
    c.send_body(&body).await;
    let r = c.response().await;
    assert_eq!(r.id, 5);
    assert_eq!(&result_bytes(r)[..], &params[..]);
}

#[tokio::test]
async fn unknown_method_and_invalid_params() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.request(1, "nope", &()).await;
    let r = c.response().await;
    assert_eq!(
        (r.id.get(), error_code(&r)),
        (1, ErrorCode::METHOD_NOT_FOUND)
    );
    assert!(r.outcome.expect_err("an error").message.contains("nope"));

    c.request(2, "sleep", &json!({"ms": "soon"})).await;
    let r = c.response().await;
    assert_eq!((r.id.get(), error_code(&r)), (2, ErrorCode::INVALID_PARAMS));

    let stats = server.handle.stats();
    assert_eq!(stats.methods["(unknown)"], 1);
    assert_eq!(stats.errors["-32601"], 1);
    assert_eq!(stats.errors["-32602"], 1);
}

/// Each bad body, and what must come back; after each, the connection still serves.
#[tokio::test]
async fn bad_bodies_are_answered_and_the_connection_survives() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    let cases: &[(&str, &[u8], Option<u64>, ErrorCode)] = &[
        ("garbage", b"\xc1\xc1\xc1", None, ErrorCode::PARSE_ERROR),
        (
            "truncated value",
            &[0x95, 0x01, 0x00],
            None,
            ErrorCode::PARSE_ERROR,
        ),
        (
            "not an array",
            &[0xa1, b'x'],
            None,
            ErrorCode::INVALID_REQUEST,
        ),
        (
            "id as string",
            &[0x95, 1, 0, 0xa1, b'7', 0xa1, b'm', 0xc0],
            None,
            ErrorCode::INVALID_REQUEST,
        ),
        (
            "method as binary",
            &[0x95, 1, 0, 9, 0xc4, 1, b'm', 0xc0],
            Some(9),
            ErrorCode::INVALID_REQUEST,
        ),
        (
            "trailing bytes",
            &[0x95, 1, 0, 10, 0xa4, b'e', b'c', b'h', b'o', 0xc0, 0x00],
            Some(10),
            ErrorCode::INVALID_REQUEST,
        ),
        (
            "huge declared array",
            &[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01],
            None,
            ErrorCode::PARSE_ERROR,
        ),
        (
            "id negative",
            &[0x95, 1, 0, 0xff, 0xa1, b'm', 0xc0],
            None,
            ErrorCode::INVALID_REQUEST,
        ),
        (
            "id float",
            &[0x95, 1, 0, 0xca, 0x3f, 0x80, 0, 0, 0xa1, b'm', 0xc0],
            None,
            ErrorCode::INVALID_REQUEST,
        ),
        (
            "id above u64 (as float 2^64)",
            &[
                0x95, 1, 0, 0xcb, 0x43, 0xf0, 0, 0, 0, 0, 0, 0, 0xa1, b'm', 0xc0,
            ],
            None,
            ErrorCode::INVALID_REQUEST,
        ),
        (
            "id as extension",
            &[0x95, 1, 0, 0xd4, 0x01, 0x07, 0xa1, b'm', 0xc0],
            None,
            ErrorCode::INVALID_REQUEST,
        ),
        (
            "method not UTF-8",
            &[0x95, 1, 0, 11, 0xa2, 0xc3, 0x28, 0xc0],
            Some(11),
            ErrorCode::INVALID_REQUEST,
        ),
        (
            "method as extension",
            &[0x95, 1, 0, 12, 0xd4, 0x01, 0x07, 0xc0],
            Some(12),
            ErrorCode::INVALID_REQUEST,
        ),
        (
            "params missing",
            &[0x94, 1, 0, 13, 0xa4, b'e', b'c', b'h', b'o'],
            Some(13),
            ErrorCode::INVALID_REQUEST,
        ),
        (
            "only a version",
            &[0x91, 1],
            None,
            ErrorCode::INVALID_REQUEST,
        ),
    ];
    for (what, body, id, code) in cases {
        c.send_body(body).await;
        match (c.next().await, id) {
            (Some(Message::Response(r)), Some(id)) => {
                assert_eq!(r.id, *id, "{what}");
                assert_eq!(error_code(&r), *code, "{what}");
            }
            (Some(Message::Notification(n)), None) => {
                assert_eq!(n.method(), "$/error", "{what}");
                let e: BTreeMap<String, serde_json::Value> =
                    hearth_protocol::from_msgpack(&n.params).expect("error map");
                assert_eq!(e["code"], json!(code.0), "{what}");
                assert!(e["message"].is_string(), "{what}");
            }
            (other, _) => panic!("{what}: unexpected {other:?}"),
        }
        let back: String = c.call(77, "echo", &"still here").await;
        assert_eq!(back, "still here", "{what}");
    }
}

#[tokio::test]
async fn deep_nesting_is_refused_without_crashing() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    let mut body = vec![0x95, 1, 0, 3, 0xa4, b'e', b'c', b'h', b'o'];
    body.extend(std::iter::repeat_n(0x91, 100_000));
    body.push(0xc0);
    c.send_body(&body).await;
    // The id sits before the damage, so the error goes to it.
    let r = c.response().await;
    assert_eq!((r.id.get(), error_code(&r)), (3, ErrorCode::PARSE_ERROR));
    let back: u32 = c.call(4, "echo", &7u32).await;
    assert_eq!(back, 7);
}

#[tokio::test]
async fn a_frame_delivered_one_byte_at_a_time() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    let frame = c.request_frame(3, "echo", &json!({"slow": [1, 2, 3]}));
    for b in frame.iter() {
        c.send_bytes(&[*b]).await;
    }
    let r = c.response().await;
    let v: serde_json::Value = hearth_protocol::from_msgpack(&result_bytes(r)).expect("json");
    assert_eq!(v, json!({"slow": [1, 2, 3]}));
}

/// The original request is held at a gate, so it is certainly still in flight when its id is
/// reused, however slow the machine.
#[tokio::test]
async fn duplicate_in_flight_id_is_refused_and_the_original_completes() {
    let gate = Gate::new();
    let server = TestServer::with(gate.add_to(builtins::router()), Limits::default()).await;
    let mut c = server.connect().await;
    c.request(5, "gate", &()).await;
    gate.wait_entered(1).await;
    c.request(5, "echo", &1).await;
    let first = c.response().await;
    assert_eq!(
        (first.id, error_code(&first)),
        (5.into(), ErrorCode::INVALID_REQUEST)
    );
    gate.open();
    let second = c.response().await;
    assert_eq!(second.id, 5);
    let v: String = hearth_protocol::from_msgpack(&result_bytes(second)).expect("str");
    assert_eq!(v, "opened");
    // Once answered, the id may be used again.
    let back: u8 = c.call(5, "echo", &2u8).await;
    assert_eq!(back, 2);
}

#[tokio::test]
async fn wrong_version_is_fatal() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.send_body(&[0x95, 0x03, 0x00, 0x01, 0xa1, b'm', 0xc0])
        .await;
    let fatal = c.expect_fatal(ErrorCode::UNSUPPORTED_VERSION).await;
    assert!(fatal.message.contains('3'), "{fatal:?}");
    // The daemon keeps serving others.
    let mut other = server.connect().await;
    let back: u8 = other.call(1, "echo", &1u8).await;
    assert_eq!(back, 1);
}

#[tokio::test]
async fn zero_and_oversize_lengths_are_fatal() {
    let limits = Limits {
        max_frame: 1024,
        ..Limits::default()
    };
    let server = TestServer::with(builtins::router(), limits).await;

    let mut c = server.connect().await;
    c.send_bytes(&[0, 0, 0, 0]).await;
    c.expect_fatal(ErrorCode::EMPTY_FRAME).await;

    let mut c = server.connect().await;
    c.send_bytes(&0xFFFF_FFFFu32.to_be_bytes()).await;
    c.expect_fatal(ErrorCode::FRAME_TOO_LARGE).await;

    // Exactly the maximum is fine; one more is not.
    let mut c = server.connect().await;
    let mut body = vec![0x95, 1, 0, 1, 0xa4, b'e', b'c', b'h', b'o', 0xc5];
    let pad = 1024 - body.len() - 2;
    body.extend_from_slice(&(pad as u16).to_be_bytes());
    body.resize(1024, 0xab);
    c.send_body(&body).await;
    let r = c.response().await;
    assert_eq!(result_bytes(r).len(), pad + 3);
    body.push(0);
    c.send_body(&body).await;
    c.expect_fatal(ErrorCode::FRAME_TOO_LARGE).await;
}

#[tokio::test]
async fn cancel_stops_the_handler_and_answers_cancelled() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.request(1, "sleep", &json!({"ms": 600_000})).await;
    server
        .wait_stats("the sleep to start", |s| s.in_flight == 1)
        .await;
    c.cancel(1).await;
    let r = c.response().await;
    assert_eq!(
        (r.id.get(), error_code(&r)),
        (1, ErrorCode::REQUEST_CANCELLED)
    );
    let stats = server.handle.stats();
    assert_eq!(
        stats.in_flight, 0,
        "the handler is gone once the cancel is answered"
    );
    assert_eq!(stats.errors["-32800"], 1);

    // A cancel for an id that is not in flight gets no answer: the next message is the echo.
    c.cancel(12345).await;
    let back: u8 = c.call(2, "echo", &9u8).await;
    assert_eq!(back, 9);
}

#[tokio::test]
async fn disconnect_cancels_in_flight_work() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    for id in 0..10 {
        c.request(id, "sleep", &json!({"ms": 600_000})).await;
    }
    server.wait_stats("ten sleeps", |s| s.in_flight == 10).await;
    drop(c);
    server
        .wait_stats("the sleeps to be dropped", |s| {
            s.in_flight == 0 && s.connections == 0
        })
        .await;
}

#[tokio::test]
async fn client_notifications_get_no_response() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let router = builtins::add(Router::new()).notification(
        "log",
        move |line: String, _ctx: hearth_server::NotificationContext| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(line);
            }
        },
    );
    let server = TestServer::with(router, Limits::default()).await;
    let mut c = server.connect().await;
    let mut out = BytesMut::new();
    let enc = hearth_protocol::Encoder::default();
    enc.notification(&mut out, "log", &"hello").expect("encode");
    enc.notification(&mut out, "no-such-notification", &())
        .expect("encode");
    c.send_bytes(&out).await;
    let got = tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("handler ran");
    assert_eq!(got.as_deref(), Some("hello"));
    // Nothing was sent back for either: the next message is the echo's answer.
    let back: u8 = c.call(1, "echo", &3u8).await;
    assert_eq!(back, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_fails_only_its_own_request() {
    let router =
        builtins::add(Router::new()).method("explode", |n: u32, _ctx: RequestContext| async move {
            if n % 10 == 3 {
                panic!("boom {n}");
            }
            Ok::<_, MethodError>(n)
        });
    let server = TestServer::with(router, Limits::default()).await;
    let mut c = server.connect().await;
    let mut batch = BytesMut::new();
    for n in 0..100u32 {
        batch.extend_from_slice(&c.request_frame(u64::from(n), "explode", &n));
    }
    c.send_bytes(&batch).await;
    let (mut ok, mut panicked) = (0, 0);
    for _ in 0..100 {
        let r = c.response().await;
        match &r.outcome {
            Ok(v) => {
                let n: u32 = hearth_protocol::from_msgpack(v).expect("u32");
                assert_eq!(u64::from(n), r.id);
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.code, ErrorCode::INTERNAL_ERROR);
                assert!(e.message.contains("boom"), "{}", e.message);
                assert_eq!(r.id.get() % 10, 3);
                panicked += 1;
            }
        }
    }
    assert_eq!((ok, panicked), (90, 10));
    let back: u8 = c.call(500, "echo", &1u8).await;
    assert_eq!(back, 1);
}

#[tokio::test]
async fn handlers_can_notify_their_caller() {
    let router = Router::new().method("count", |n: u32, ctx: RequestContext| async move {
        for i in 0..n {
            ctx.notify("progress", &i)
                .await
                .map_err(|e| MethodError::internal(e.to_string()))?;
        }
        Ok::<_, MethodError>(n)
    });
    let server = TestServer::with(router, Limits::default()).await;
    let mut c = server.connect().await;
    c.request(1, "count", &3u32).await;
    for i in 0..3u32 {
        let n = c.notification().await;
        assert_eq!(n.method(), "progress");
        assert_eq!(
            hearth_protocol::from_msgpack::<u32>(&n.params).expect("u32"),
            i
        );
    }
    assert_eq!(c.response().await.id, 1);
}

#[tokio::test]
async fn hello_and_stats() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    let hello: hearth_protocol::reserved::HelloResult =
        c.call(1, "$/hello", &json!({"client": "test"})).await;
    assert_eq!(hello.protocol, 1);
    assert!(
        hello.server.starts_with("hearth-server "),
        "{}",
        hello.server
    );
    assert_eq!(
        hello.methods,
        [
            "$/hello", "$/stats", "ask", "count", "echo", "shutdown", "sleep"
        ]
    );
    assert_eq!(hello.limits.max_frame, 8 * 1024 * 1024);
    assert_eq!(hello.limits.max_in_flight, 1024);
    let nil_hello: hearth_protocol::reserved::HelloResult = c.call(2, "$/hello", &()).await;
    assert_eq!(nil_hello.protocol, 1);
    let stats: hearth_protocol::reserved::Stats = c.call(3, "$/stats", &()).await;
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.methods["$/hello"], 2);
    assert_eq!(stats.in_flight, 0, "the $/stats call does not count itself");
}

/// The same conversation delivered whole, one byte at a time, and cut at pseudo-random points
/// gets the same answers.
#[tokio::test]
async fn split_points_never_change_the_answers() {
    let server = TestServer::start().await;
    let enc = hearth_protocol::Encoder::default();
    let mut wire = BytesMut::new();
    for id in 0..40u64 {
        match id % 5 {
            0 => enc.request(
                &mut wire,
                id,
                "echo",
                &json!({"id": id, "pad": "x".repeat(id as usize * 7)}),
            ),
            1 => enc.request(&mut wire, id, "nope", &()),
            2 => enc.request(&mut wire, id, "sleep", &json!({"ms": "bad"})),
            3 => enc.request(&mut wire, id, "echo", &vec![id; 50]),
            _ => enc.cancel(&mut wire, 9_999),
        }
        .expect("encode");
    }
    // A garbage frame and a trailing-bytes frame among them. (No fatal frame: what was still
    // running when `$/fatal` goes out is dropped, and that depends on timing by design.)
    wire.extend_from_slice(&[0, 0, 0, 2, 0xc1, 0xc1]);
    wire.extend_from_slice(&[0, 0, 0, 7, 0x95, 1, 0, 100, 0xa1, b'm', 0xc0]);
    // 32 requests, one $/error and one error for id 100; the bogus cancels get nothing.
    let expected = 34;
    let wire = wire.to_vec();

    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random_cuts = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = 1 + (seed % 23) as usize;
        random_cuts.push(n);
        at += n;
    }
    let mut transcripts = Vec::new();
    for cuts in [vec![wire.len()], vec![1], random_cuts] {
        let mut c = server.connect().await;
        let mut rest = &wire[..];
        for n in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*n).min(rest.len());
            c.send_bytes(&rest[..n]).await;
            rest = &rest[n..];
        }
        let mut seen = Vec::new();
        for _ in 0..expected {
            let msg = c.next().await.expect("a message");
            seen.push(format!("{msg:?}"));
        }
        seen.sort();
        transcripts.push(seen);
    }
    assert_eq!(transcripts[0], transcripts[1], "one byte at a time");
    assert_eq!(transcripts[0], transcripts[2], "random split points");
}

/// At the deepest nesting allowed, a typed handler deserializing into a recursive type (and
/// serializing it back) stays within a default worker stack, in debug and release builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deepest_allowed_params_fit_on_a_worker_stack() {
    let router = Router::new().method(
        "tree",
        |v: serde_json::Value, _ctx: RequestContext| async move { Ok::<_, MethodError>(v) },
    );
    let server = TestServer::with(router, Limits::default()).await;
    let mut c = server.connect().await;
    let depth = hearth_protocol::DEFAULT_MAX_DEPTH - 1; // the envelope is the first level
    let mut body = vec![0x95, 1, 0, 1, 0xa4, b't', b'r', b'e', b'e'];
    body.extend(std::iter::repeat_n(0x91, depth - 1));
    body.push(0x90);
    c.send_body(&body).await;
    let r = c.response().await;
    let back = result_bytes(r);
    assert_eq!(back.len(), depth);
    assert!(back[..depth - 1].iter().all(|&b| b == 0x91) && back[depth - 1] == 0x90);
    // One level deeper is refused before any handler sees it.
    body.insert(9, 0x91);
    body[3] = 2;
    c.send_body(&body).await;
    let r = c.response().await;
    assert_eq!((r.id.get(), error_code(&r)), (2, ErrorCode::PARSE_ERROR));
}
