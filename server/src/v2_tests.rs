//! Unit tests of the connection as a whole, through [`Service::serve`] on an in-memory
//! duplex: version 2 (options, the wait queue, streams, requests to the client), the
//! per-connection version, the frame timer and shutdown defects, and the cancellation
//! tree. Time is paused wherever a deadline or a sleep is involved, so nothing here depends
//! on how fast the machine is; wire-level tests against `hearthd` live in `server/tests/`.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use hearth_protocol::reserved::{Fatal, HelloResult};
use hearth_protocol::{
    Decoded, Encoder, ErrorCode, FrameDecoder, Message, Partial, RequestOptions, Response, Text,
    Version,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Limits, MethodError, Overflow, RequestContext, Router, Server, ServerHandle, builtins,
};

struct Peer {
    io: DuplexStream,
    frames: FrameDecoder,
    buf: BytesMut,
    enc: Encoder,
}

fn start(router: Router, limits: Limits) -> (Peer, ServerHandle, tokio::task::JoinHandle<()>) {
    start_with(router, limits, 64 * 1024)
}

fn start_with(
    router: Router,
    limits: Limits,
    pipe: usize,
) -> (Peer, ServerHandle, tokio::task::JoinHandle<()>) {
    let service = Server::builder().router(router).limits(limits).service();
    let handle = service.handle();
    let (ours, theirs) = tokio::io::duplex(pipe);
    let task = tokio::spawn(async move { service.serve(theirs).await });
    let peer = Peer {
        io: ours,
        frames: FrameDecoder::new(hearth_protocol::DEFAULT_MAX_FRAME),
        buf: BytesMut::new(),
        enc: Encoder::default().with_version(Version::V2),
    };
    (peer, handle, task)
}

fn opts(deadline_ms: Option<u64>, supersede: Option<&'static str>, stream: bool) -> RequestOptions {
    RequestOptions {
        deadline_ms,
        supersede: supersede.map(Text::from_static),
        stream,
    }
}

impl Peer {
    /// Encodes a v2 request (into `wire` so that several go out in one write).
    fn v2(&self, wire: &mut BytesMut, id: u64, method: &str, params: Value, o: RequestOptions) {
        self.enc
            .request_with(wire, id, method, &params, &o)
            .unwrap();
    }

    async fn send(&mut self, wire: BytesMut) {
        self.io.write_all(&wire).await.unwrap();
    }

    async fn request(&mut self, id: u64, method: &str, params: Value, o: RequestOptions) {
        let mut wire = BytesMut::new();
        self.v2(&mut wire, id, method, params, o);
        self.send(wire).await;
    }

    /// The next message, or `None` at end of file.
    async fn next(&mut self) -> Option<Decoded> {
        loop {
            if let Some(frame) = self.frames.decode(&mut self.buf).unwrap() {
                return Some(Message::decode_any(frame, 64).unwrap());
            }
            self.buf.reserve(4096);
            if self.io.read_buf(&mut self.buf).await.unwrap() == 0 {
                return None;
            }
        }
    }

    async fn response(&mut self) -> Response {
        loop {
            match self.next().await.expect("a response before EOF").message {
                Message::Response(r) => return r,
                Message::Notification(n) if n.method() == "$/fatal" => {
                    panic!("unexpected $/fatal: {:?}", fatal(&n.params))
                }
                _ => {}
            }
        }
    }

    /// The next `n` responses as (id, error code), in the order they came.
    async fn answers(&mut self, n: usize) -> Vec<(u64, Option<ErrorCode>)> {
        let mut got = Vec::with_capacity(n);
        for _ in 0..n {
            let r = self.response().await;
            got.push((r.id.get(), code(&r)));
        }
        got
    }

    /// Every response until end of file as (id, error code), in the order they came; other
    /// messages are skipped.
    async fn answers_until_eof(&mut self) -> Vec<(u64, Option<ErrorCode>)> {
        let mut got = Vec::new();
        while let Some(msg) = self.next().await {
            if let Message::Response(r) = msg.message {
                got.push((r.id.get(), code(&r)));
            }
        }
        got
    }

    /// The partials of a streamed call, then its response; any other message fails the test.
    async fn stream(&mut self) -> (Vec<Partial>, Response) {
        let mut partials = Vec::new();
        loop {
            match self.next().await.unwrap().message {
                Message::Partial(p) => partials.push(p),
                Message::Response(r) => return (partials, r),
                other => panic!("{other:?}"),
            }
        }
    }
}

/// `max_in_flight` requests run on a connection and `max_queued` more wait.
fn queue(max_in_flight: usize, max_queued: usize) -> Limits {
    Limits {
        max_in_flight,
        max_queued: Some(max_queued),
        ..Limits::default()
    }
}

/// One write of version 1 requests, `(id, method, params)` each.
fn v1_requests(requests: &[(u64, &str, Value)]) -> BytesMut {
    let v1 = Encoder::default();
    let mut wire = BytesMut::new();
    for (id, method, params) in requests {
        v1.request(&mut wire, *id, method, params).unwrap();
    }
    wire
}

fn fatal(params: &[u8]) -> Fatal {
    hearth_protocol::from_msgpack(params).unwrap()
}

fn code(r: &Response) -> Option<ErrorCode> {
    r.outcome.as_ref().err().map(|e| e.code)
}

fn result<T: serde::de::DeserializeOwned>(r: &Response) -> T {
    hearth_protocol::from_msgpack(r.outcome.as_ref().expect("a result")).unwrap()
}

#[tokio::test(start_paused = true)]
async fn frame_timer_does_not_run_while_the_daemon_chooses_not_to_read() {
    let limits = Limits {
        max_in_flight: 4,
        frame_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let (mut c, _, _) = start(builtins::router(), limits);
    let sleeps: Vec<_> = (1..=8u64)
        .map(|id| (id, "sleep", json!({"ms": 2000})))
        .collect();
    c.send(v1_requests(&sleeps)).await;
    let answers = c.answers(8).await; // panics on $/fatal
    assert!(
        answers.iter().all(|(_, code)| code.is_none()),
        "{answers:?}"
    );
    let mut ids: Vec<u64> = answers.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=8).collect::<Vec<_>>());
}

#[tokio::test]
async fn dropping_the_serve_future_cancels_work_a_handler_moved_elsewhere() {
    let (started_tx, mut started) = mpsc::channel::<()>(1);
    let (seen_tx, seen) = oneshot::channel::<()>();
    let seen_tx = Arc::new(std::sync::Mutex::new(Some(seen_tx)));
    let disconnects = Arc::new(AtomicUsize::new(0));
    let counted = disconnects.clone();
    let router = Router::new()
        .method("detach", move |_: Value, ctx: RequestContext| {
            let (started_tx, seen_tx) = (started_tx.clone(), seen_tx.clone());
            async move {
                let token = ctx.cancellation().clone();
                tokio::spawn(async move {
                    token.cancelled().await;
                    if let Some(tx) = seen_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                });
                let _ = started_tx.send(()).await;
                std::future::pending::<Result<(), MethodError>>().await
            }
        })
        .on_disconnect(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        });
    let (mut c, _, task) = start(router, Limits::default());
    c.request(1, "detach", Value::Null, RequestOptions::default())
        .await;
    started.recv().await.unwrap();
    task.abort();
    let _ = task.await;
    seen.await
        .expect("the moved work saw its request cancelled");
    assert_eq!(disconnects.load(Ordering::SeqCst), 1);
}

/// Waits until `token` fires, then sends on `seen`: work a handler moved elsewhere.
fn watch(token: tokio_util::sync::CancellationToken) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        token.cancelled().await;
        let _ = tx.send(());
    });
    rx
}

/// Request tokens are made lazily (`TokenSlot`): these pin what that must not change.
#[tokio::test]
async fn lazily_made_tokens_fire_on_cancel_and_disconnect_wherever_they_were_asked_for() {
    type Seen = Arc<std::sync::Mutex<Vec<(u64, oneshot::Receiver<()>)>>>;
    let seen: Seen = Arc::default();
    let kept: Arc<std::sync::Mutex<Option<RequestContext>>> = Arc::default();
    let (s1, s2, k) = (seen.clone(), seen.clone(), kept.clone());
    let router = Router::new()
        // Asks for its token in its first poll, then moves it away and finishes at once.
        .method("detach_now", move |n: u64, ctx: RequestContext| {
            s1.lock()
                .unwrap()
                .push((n, watch(ctx.cancellation().clone())));
            async move { Ok::<_, MethodError>(n) }
        })
        // Keeps a clone of its context (never asking for the token) and finishes at once.
        .method("keep", move |(): (), ctx: RequestContext| {
            *k.lock().unwrap() = Some(ctx);
            async move { Ok::<_, MethodError>(()) }
        })
        // Goes pending first, and only then asks for its token.
        .method("ask_late", move |n: u64, ctx: RequestContext| {
            let s2 = s2.clone();
            async move {
                tokio::task::yield_now().await;
                assert!(!ctx.is_cancelled());
                s2.lock()
                    .unwrap()
                    .push((n, watch(ctx.cancellation().clone())));
                std::future::pending::<Result<(), MethodError>>().await
            }
        });
    let (mut c, _, task) = start(router, Limits::default());
    let none = RequestOptions::default;

    c.request(1, "detach_now", json!(1), none()).await;
    assert_eq!(result::<u64>(&c.response().await), 1);
    c.request(2, "keep", Value::Null, none()).await;
    assert!(c.response().await.outcome.is_ok());
    // The next request gets a slot of its own: the kept context still holds the last one.
    c.request(3, "ask_late", json!(3), none()).await;
    let late = loop {
        let found = {
            let mut seen = seen.lock().unwrap();
            let i = seen.iter().position(|(n, _)| *n == 3);
            i.map(|i| seen.remove(i).1)
        };
        match found {
            Some(rx) => break rx,
            None => tokio::task::yield_now().await,
        }
    };
    let mut wire = BytesMut::new();
    c.enc.cancel(&mut wire, 3u64).unwrap();
    c.send(wire).await;
    let r = c.response().await;
    assert_eq!(
        (r.id.get(), code(&r)),
        (3, Some(ErrorCode::REQUEST_CANCELLED))
    );
    late.await
        .expect("a token asked for after the first poll fires on cancel");
    let kept_ctx = kept.lock().unwrap().take().unwrap();
    assert!(
        !kept_ctx.is_cancelled(),
        "request 3's cancel reached request 2"
    );

    // Dropping the connection reaches the work of requests answered long ago.
    let kept_token = watch(kept_ctx.cancellation().clone());
    let early = seen.lock().unwrap().pop().unwrap();
    assert_eq!(early.0, 1);
    task.abort();
    let _ = task.await;
    early
        .1
        .await
        .expect("request 1's moved token fired at disconnect");
    kept_token
        .await
        .expect("a token made from a kept context fired at disconnect");
    assert!(kept_ctx.is_cancelled());
}

#[tokio::test]
async fn hello_in_v2_and_a_later_v1_message_is_fatal() {
    let (mut c, _, _) = start(builtins::router(), Limits::default());
    c.request(1, "$/hello", Value::Null, RequestOptions::default())
        .await;
    let r = c.response().await;
    let hello: HelloResult = result(&r);
    assert_eq!((hello.protocol, hello.supported), (2, vec![1, 2]));

    let mut wire = BytesMut::new();
    Encoder::default()
        .request(&mut wire, 2, "echo", &1)
        .unwrap();
    c.send(wire).await;
    let msg = c.next().await.unwrap();
    assert_eq!(msg.version, Version::V2);
    let Message::Notification(n) = msg.message else {
        panic!("expected $/fatal, got {msg:?}");
    };
    let f = fatal(&n.params);
    assert_eq!(
        (n.method(), f.code, f.supported),
        ("$/fatal", -32004, vec![1, 2])
    );
    assert!(c.next().await.is_none());
}

#[tokio::test]
async fn v1_hello_keeps_its_shape() {
    let (mut c, _, _) = start(builtins::router(), Limits::default());
    let mut wire = BytesMut::new();
    Encoder::default()
        .request(&mut wire, 1, "$/hello", &())
        .unwrap();
    c.send(wire).await;
    let msg = c.next().await.unwrap();
    assert_eq!(msg.version, Version::V1);
    let Message::Response(r) = msg.message else {
        panic!("{msg:?}")
    };
    let hello: HelloResult = result(&r);
    assert_eq!(hello.protocol, 1);
    assert!(hello.supported.is_empty());
}

#[tokio::test(start_paused = true)]
async fn deadline_and_supersede_each_get_their_one_answer() {
    let (mut c, handle, _) = start(builtins::router(), Limits::default());
    let mut wire = BytesMut::new();
    c.v2(
        &mut wire,
        1,
        "sleep",
        json!({"ms": 10_000}),
        opts(Some(20), None, false),
    );
    c.v2(
        &mut wire,
        2,
        "sleep",
        json!({"ms": 10_000}),
        opts(None, Some("s"), false),
    );
    c.v2(
        &mut wire,
        3,
        "sleep",
        json!({"ms": 5}),
        opts(None, Some("s"), false),
    );
    c.v2(
        &mut wire,
        4,
        "sleep",
        json!({"ms": 5}),
        opts(Some(0), None, false),
    );
    c.send(wire).await;
    let mut got = c.answers(4).await;
    got.sort_unstable_by_key(|g| g.0);
    assert_eq!(
        got,
        vec![
            (1, Some(ErrorCode::DEADLINE_EXCEEDED)),
            (2, Some(ErrorCode::SUPERSEDED)),
            (3, None),
            (4, Some(ErrorCode::DEADLINE_EXCEEDED)),
        ]
    );
    let errors = handle.stats().errors;
    assert_eq!(errors.get("-32002"), Some(&2), "{errors:?}");
    assert_eq!(errors.get("-32801"), Some(&1), "{errors:?}");
}

#[tokio::test(start_paused = true)]
async fn past_max_in_flight_v2_requests_queue_and_past_the_queue_are_busy() {
    let (mut c, _, _) = start(builtins::router(), queue(1, 2));
    let mut wire = BytesMut::new();
    let none = || opts(None, None, false);
    c.v2(&mut wire, 1, "sleep", json!({"ms": 100}), none());
    c.v2(
        &mut wire,
        2,
        "sleep",
        json!({"ms": 1}),
        opts(Some(50), None, false),
    );
    c.v2(&mut wire, 3, "echo", json!("queued"), none());
    c.v2(&mut wire, 4, "echo", json!("busy"), none());
    c.send(wire).await;
    let order = c.answers(4).await;
    assert_eq!(
        order,
        vec![
            (4, Some(ErrorCode::SERVER_BUSY)),
            (2, Some(ErrorCode::DEADLINE_EXCEEDED)),
            (1, None),
            (3, None),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancel_reaches_a_queued_request_and_shutdown_answers_the_queue() {
    let (mut c, handle, _) = start(builtins::router(), queue(1, 2));
    let mut wire = BytesMut::new();
    c.v2(
        &mut wire,
        1,
        "sleep",
        json!({"ms": 1000}),
        opts(None, None, false),
    );
    c.v2(&mut wire, 2, "echo", json!(2), opts(None, None, false));
    c.v2(&mut wire, 3, "echo", json!(3), opts(None, None, false));
    c.enc.cancel(&mut wire, 2).unwrap();
    c.send(wire).await;
    let r = c.response().await;
    assert_eq!(
        (r.id.get(), code(&r)),
        (2, Some(ErrorCode::REQUEST_CANCELLED))
    );
    handle.shutdown();
    let got = c.answers_until_eof().await;
    assert_eq!(got, vec![(3, Some(ErrorCode::SHUTTING_DOWN)), (1, None)]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_answers_frames_left_undecoded_at_the_limit() {
    let limits = Limits {
        max_in_flight: 1,
        ..Limits::default()
    };
    let (mut c, handle, _) = start(builtins::router(), limits);
    c.send(v1_requests(&[
        (1, "sleep", json!({"ms": 100})),
        (2, "echo", json!(2)),
        (3, "echo", json!(3)),
    ]))
    .await;
    while handle.stats().in_flight == 0 {
        tokio::task::yield_now().await;
    }
    handle.shutdown();
    let got = c.answers_until_eof().await;
    assert_eq!(
        got,
        vec![
            (1, None),
            (2, Some(ErrorCode::SHUTTING_DOWN)),
            (3, Some(ErrorCode::SHUTTING_DOWN)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn count_streams_partials_before_its_response() {
    let (mut c, _, _) = start(builtins::router(), Limits::default());
    c.request(
        6,
        "count",
        json!({"n": 3, "interval_ms": 10}),
        opts(None, None, true),
    )
    .await;
    let (partials, r) = c.stream().await;
    let seen: Vec<_> = partials
        .iter()
        .map(|p| {
            assert_eq!(p.id, 6);
            let chunk = hearth_protocol::from_msgpack::<u64>(&p.chunk).unwrap();
            (p.seq, chunk)
        })
        .collect();
    assert_eq!(result::<u64>(&r), 3);
    assert_eq!(seen, vec![(0, 0), (1, 1), (2, 2)]);

    // Without a stream: the same result, no partials.
    c.request(7, "count", json!({"n": 3}), opts(None, None, false))
        .await;
    match c.next().await.unwrap().message {
        Message::Response(r) => assert_eq!(result::<u64>(&r), 3),
        other => panic!("{other:?}"),
    }
    c.request(8, "count", json!({"n": 1_000_001}), opts(None, None, false))
        .await;
    assert_eq!(code(&c.response().await), Some(ErrorCode::INVALID_PARAMS));
}

#[tokio::test]
async fn a_dropping_stream_with_full_output_still_ends_with_its_response() {
    let router = Router::new().method("burst", |_: Value, ctx: RequestContext| async move {
        ctx.set_overflow(Overflow::KeepLatest);
        for i in 0..1000u64 {
            ctx.partial(&i)
                .await
                .map_err(|e| MethodError::internal(e.to_string()))?;
        }
        Ok::<_, MethodError>("done")
    });
    let limits = Limits {
        notification_queue: 1,
        max_outbound_bytes: 1,
        ..Limits::default()
    };
    let (mut c, _, _) = start_with(router, limits, 64);
    c.request(1, "burst", Value::Null, opts(None, None, true))
        .await;
    let (partials, r) = c.stream().await;
    assert_eq!(result::<String>(&r), "done");
    let seqs: Vec<u64> = partials.iter().map(|p| p.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(seqs.last(), Some(&999), "the latest chunk is kept");
    // Nothing after the response.
    c.request(2, "$/stats", Value::Null, RequestOptions::default())
        .await;
    assert!(matches!(c.next().await.unwrap().message, Message::Response(r) if r.id == 2));
}

#[tokio::test]
async fn handlers_waiting_on_the_client_never_block_its_answers() {
    let (mut c, _, _) = start(builtins::router(), queue(2, 2));
    let mut wire = BytesMut::new();
    for id in 1..=4u64 {
        c.v2(
            &mut wire,
            id,
            "ask",
            json!({"method": "editor/config", "params": id}),
            opts(None, None, false),
        );
    }
    c.send(wire).await;
    let mut answered = Vec::new();
    while answered.len() < 4 {
        match c.next().await.unwrap().message {
            Message::Request(req) => {
                assert_eq!(req.method(), "editor/config");
                let asked: u64 = hearth_protocol::from_msgpack(&req.params).unwrap();
                let mut wire = BytesMut::new();
                c.enc
                    .response(&mut wire, req.id, &json!({"tab": asked}))
                    .unwrap();
                c.send(wire).await;
            }
            Message::Response(r) => {
                let v: Value = result(&r);
                assert_eq!(v, json!({"tab": r.id.get()}));
                answered.push(r.id.get());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_daemon_gives_up_on_a_silent_client_and_cancels_its_request() {
    let limits = Limits {
        client_request_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let (mut c, _, _) = start(builtins::router(), limits);
    c.request(1, "ask", json!({"method": "slow"}), opts(None, None, false))
        .await;
    let mut asked = None;
    let mut cancelled = None;
    let mut response = None;
    while response.is_none() || cancelled.is_none() {
        match c.next().await.unwrap().message {
            Message::Request(req) => asked = Some(req.id),
            Message::Cancel(x) => cancelled = Some(x.id),
            Message::Response(r) => response = Some(r),
            other => panic!("{other:?}"),
        }
    }
    assert!(asked.is_some());
    assert_eq!(asked, cancelled);
    assert_eq!(code(&response.unwrap()), Some(ErrorCode::DEADLINE_EXCEEDED));
}

#[tokio::test(start_paused = true)]
async fn a_handler_stopped_while_waiting_on_the_client_cancels_its_request() {
    let (mut c, _, _) = start(builtins::router(), Limits::default());
    c.request(
        1,
        "ask",
        json!({"method": "slow"}),
        opts(Some(100), Some("k"), false),
    )
    .await;
    let Message::Request(asked) = c.next().await.unwrap().message else {
        panic!("expected the daemon's request")
    };
    // Supersede it: the handler is dropped, and its request to the client is cancelled.
    c.request(2, "echo", json!(2), opts(None, Some("k"), false))
        .await;
    let (mut cancelled, mut answers) = (None, Vec::new());
    while cancelled.is_none() || answers.len() < 2 {
        match c.next().await.unwrap().message {
            Message::Cancel(x) => cancelled = Some(x.id),
            Message::Response(r) => answers.push((r.id.get(), code(&r))),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(cancelled, Some(asked.id));
    answers.sort_unstable_by_key(|a| a.0);
    assert_eq!(answers, vec![(1, Some(ErrorCode::SUPERSEDED)), (2, None)]);
    // Its late answer is ignored.
    let mut wire = BytesMut::new();
    c.enc.response(&mut wire, asked.id, &1).unwrap();
    c.send(wire).await;
    c.request(3, "echo", json!(3), opts(None, None, false))
        .await;
    assert_eq!(c.response().await.id, 3);
}

#[tokio::test]
async fn ask_relays_the_clients_error_unchanged_and_is_invalid_on_v1() {
    let (mut c, _, _) = start(builtins::router(), Limits::default());
    c.request(1, "ask", json!({"method": "nope"}), opts(None, None, false))
        .await;
    let Message::Request(req) = c.next().await.unwrap().message else {
        panic!()
    };
    let mut wire = BytesMut::new();
    let err = hearth_protocol::ErrorObject::new(ErrorCode::METHOD_NOT_FOUND, "no such method");
    c.enc.error_response(&mut wire, req.id, &err).unwrap();
    // An answer for an id the daemon never asked is ignored.
    c.enc.response(&mut wire, 999, &1).unwrap();
    c.send(wire).await;
    let r = c.response().await;
    assert_eq!(r.outcome.unwrap_err(), err);

    let (mut c, _, _) = start(builtins::router(), Limits::default());
    let mut wire = BytesMut::new();
    Encoder::default()
        .request(&mut wire, 1, "ask", &json!({"method": "x"}))
        .unwrap();
    c.send(wire).await;
    assert_eq!(code(&c.response().await), Some(ErrorCode::INVALID_REQUEST));
}

#[tokio::test]
async fn a_waiting_stream_with_full_output_loses_nothing_and_ends_with_its_response() {
    let limits = Limits {
        notification_queue: 1,
        max_outbound_bytes: 1,
        ..Limits::default()
    };
    let (mut c, _, _) = start_with(builtins::router(), limits, 64);
    c.request(1, "count", json!({"n": 300}), opts(None, None, true))
        .await;
    let (partials, r) = c.stream().await;
    assert_eq!(result::<u64>(&r), 300);
    let seqs: Vec<u64> = partials.iter().map(|p| p.seq).collect();
    assert_eq!(seqs, (0..300).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_bad_first_v2_request_is_answered_in_v2() {
    let (mut c, _, _) = start(builtins::router(), Limits::default());
    // [2, 0, 1, "echo", nil, {"deadline_ms": "soon"}]: a known option of the wrong type.
    let mut body = vec![0x96, 0x02, 0x00, 0x01, 0xa4];
    body.extend_from_slice(b"echo");
    body.extend_from_slice(&[0xc0, 0x81, 0xab]);
    body.extend_from_slice(b"deadline_ms");
    body.extend_from_slice(&[0xa4]);
    body.extend_from_slice(b"soon");
    let mut wire = BytesMut::new();
    wire.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    wire.extend_from_slice(&body);
    c.send(wire).await;
    let msg = c.next().await.unwrap();
    assert_eq!(msg.version, Version::V2);
    let Message::Response(r) = msg.message else {
        panic!("{msg:?}")
    };
    assert_eq!(
        (r.id.get(), code(&r)),
        (1, Some(ErrorCode::INVALID_REQUEST))
    );
}

/// A shutdown begun by a request is seen by the next request of the same read, in the same
/// poll of the connection (before `run` looks at its tokens again).
#[tokio::test]
async fn a_request_read_with_the_shutdown_call_is_refused_shutting_down() {
    let (mut c, _, task) = start(builtins::router(), Limits::default());
    c.send(v1_requests(&[
        (1, "shutdown", Value::Null),
        (2, "echo", json!("late")),
    ]))
    .await;
    let answers = c.answers_until_eof().await;
    assert_eq!(
        answers,
        [(1, None), (2, Some(ErrorCode::SHUTTING_DOWN))],
        "the echo behind the shutdown call ran"
    );
    task.await.unwrap();
}
