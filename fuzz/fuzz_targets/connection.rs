//! Fuzz target: one whole daemon connection, in protocol version 1 or 2. The input is
//! written by a fake client, in chunks, to a `Service` serving an in-memory duplex (builtins,
//! `count` and `ask` included, plus methods that panic, send notifications and take client
//! notifications; small limits); the client answers the daemon's own requests (v2, from
//! `ask`) between frames, as the method name asks: with the params, with an error, twice, or
//! never; then it half-closes and reads everything until the daemon closes. Time is paused,
//! so sleeps, deadlines and the daemon's 30 s wait for an answer cost nothing.
//!
//! Input: `[config][Plan...]` (see `hearth_fuzz::Plan`); `config` picks the duplex buffer
//! size and how the client pauses between chunks. Checks: no panic (but the deliberate one
//! inside the `panic` method, which the daemon must turn into -32603); every frame the daemon
//! sends is at most `max_frame` and decodes; the output
//! ends between frames; `$/fatal` comes last; every response answers an id the client sent,
//! and no id gets more responses than requests carrying it (a duplicate in-flight id is its
//! own request, answered -32600; ids may be reused once answered); partials come only on v2,
//! for an id that asked for a stream, before its response, with seq increasing; requests and
//! cancels from the daemon come only on v2, never reuse an id in flight, and a cancel names a
//! request the daemon made; client-sent partials are refused without harm; and when the
//! connection ends without `$/fatal`, a `shutdown` or a stall, every request the daemon read
//! was answered exactly once. A connection that stalls (legitimately: eight endless sleeps
//! fill `max_in_flight`) ends promptly after `shutdown_now`.

#![no_main]

use std::collections::{HashMap, HashSet};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hearth_fuzz::Plan;
use hearth_protocol::{
    Encoder, ErrorCode, ErrorObject, FrameDecoder, Message, RequestId, Version, reserved,
};
use hearth_server::{Limits, MethodError, NotificationContext, RequestContext, Server, builtins};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const MAX_FRAME: usize = 4096;
const MAX_DEPTH: usize = 64;
/// The payload of the one panic this target expects (and lets the daemon catch).
const DELIBERATE: &str = "fuzz: deliberate handler panic";
/// Virtual time a connection may stall before the harness shuts the service down.
const STALL: Duration = Duration::from_secs(600);
/// Virtual time a connection gets to end after `shutdown_now`; longer is a hang.
const AFTER_SHUTDOWN: Duration = Duration::from_secs(10);
thread_local! {
    static RUNTIME: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
}

fn service() -> hearth_server::Service {
    let router = builtins::router()
        // `true` panics at once; a small integer n sleeps n ms, then panics; else echoes.
        .raw_method("panic", |params: Bytes, _ctx| async move {
            match params.first() {
                Some(0xc3) => panic!("{DELIBERATE}"),
                Some(&n @ 0..=0x7f) => {
                    tokio::time::sleep(Duration::from_millis(u64::from(n))).await;
                    panic!("{DELIBERATE}")
                }
                _ => Ok::<_, MethodError>(params),
            }
        })
        // Sends n `tick` notifications (through the bounded queue), then answers n.
        .method("notify", |n: u8, ctx: RequestContext| async move {
            for i in 0..n {
                ctx.notify("tick", &i)
                    .await
                    .map_err(|e| MethodError::internal(e.to_string()))?;
            }
            Ok::<_, MethodError>(n)
        })
        // A client notification whose handler runs for `ms` (and counts as in flight).
        .notification("note", |ms: u64, _ctx: NotificationContext| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        });
    Server::builder()
        .router(router)
        .limits(Limits {
            max_frame: MAX_FRAME,
            max_in_flight: 8,
            max_outbound_bytes: 8 * 1024,
            notification_queue: 4,
            grace: Duration::from_millis(20),
            flush_timeout: Duration::from_millis(20),
            ..Limits::default()
        })
        .service()
}

/// Lets the deliberate panic unwind quietly to the daemon's `catch_unwind`; any other panic
/// still reaches libFuzzer's hook (which aborts: a finding).
fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied());
            if msg != Some(DELIBERATE) {
                fuzzer_hook(info);
            }
        }));
    });
}

/// How the client waits between chunks.
#[derive(Debug, Clone, Copy)]
enum Pause {
    None,
    Yield,
    Millis(u64),
}

impl Pause {
    async fn wait(self) {
        match self {
            Self::None => {}
            Self::Yield => tokio::task::yield_now().await,
            Self::Millis(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
    }
}

/// Offsets in `stream` where a frame ends (where the client may slip in an answer of its
/// own without cutting a frame), up to the first length that is not a frame.
fn boundaries(stream: &[u8]) -> HashSet<usize> {
    let mut out = HashSet::from([0]);
    let mut at = 0usize;
    while let Some(head) = stream.get(at..at + 4) {
        let len = u32::from_be_bytes(head.try_into().expect("4 bytes")) as usize;
        if len == 0 || len > MAX_FRAME || at + 4 + len > stream.len() {
            break;
        }
        at += 4 + len;
        out.insert(at);
    }
    out
}

/// How the client answers a daemon request, chosen by its method name (which the input
/// picks, through `ask`'s params).
fn answers_for(req: &hearth_protocol::Request) -> Vec<BytesMut> {
    let enc = Encoder::new(MAX_FRAME).with_version(Version::V2);
    let mut one = BytesMut::new();
    let ok = match req.method().len() % 4 {
        0 => enc.response_raw(&mut one, req.id, &req.params),
        1 => enc.error_response(
            &mut one,
            req.id,
            &ErrorObject::new(ErrorCode(1), "the fuzz client says no"),
        ),
        2 => return Vec::new(), // never answered: the daemon gives up after 30 s
        _ => enc.response_raw(&mut one, req.id, &[0xc0]),
    };
    if ok.is_err() {
        return Vec::new();
    }
    if req.method().len() % 4 == 3 {
        // Twice: the second answers an id the daemon no longer waits for.
        vec![one.clone(), one]
    } else {
        vec![one]
    }
}

/// Writes the plan's chunks, slipping in answers to the daemon's requests where a frame
/// ends; half-closes; and returns everything the daemon sent.
async fn client(
    stream: DuplexStream,
    plan: Plan<'_>,
    pause: Pause,
    owed: HashMap<RequestId, usize>,
    outstanding: &std::cell::Cell<usize>,
) -> Vec<u8> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    // How many answers the stream is owed; the client half-closes only once they have all
    // come (or the daemon closed), so that every request is answered while the connection
    // lives: at end of stream the daemon drops what still runs.
    let mut owed = owed;
    outstanding.set(owed.values().sum());
    let (remaining_tx, mut remaining) = tokio::sync::watch::channel(outstanding.get());
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<BytesMut>();
    let at_boundary = boundaries(plan.stream);
    let write = async move {
        let mut written = 0usize;
        for chunk in plan.chunks() {
            if at_boundary.contains(&written) {
                while let Ok(answer) = answers.try_recv() {
                    if wr.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            }
            if wr.write_all(chunk).await.is_err() {
                return; // the daemon closed the connection
            }
            written += chunk.len();
            pause.wait().await;
        }
        if at_boundary.contains(&written) {
            // Give the daemon's last requests a chance to be answered before the half-close.
            tokio::task::yield_now().await;
            while let Ok(answer) = answers.try_recv() {
                if wr.write_all(&answer).await.is_err() {
                    return;
                }
            }
        }
        // Answers may follow only if the plan ended between frames; otherwise they would
        // complete its last frame.
        let whole = at_boundary.contains(&written);
        loop {
            while let Ok(answer) = answers.try_recv() {
                if !whole {
                    continue;
                }
                if wr.write_all(&answer).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                changed = remaining.wait_for(|&n| n == 0) => {
                    let _ = changed;
                    break;
                }
                Some(answer) = answers.recv() => {
                    if whole && wr.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = wr.shutdown().await;
    };
    let read = async move {
        let mut out = Vec::new();
        let mut frames = FrameDecoder::new(MAX_FRAME);
        let mut buf = BytesMut::new();
        loop {
            let n = match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            out.extend_from_slice(&buf[buf.len() - n..]);
            // Answer the daemon's requests as they come (decoding a copy; checks come later).
            let mut copy = std::mem::take(&mut buf);
            while let Ok(Some(frame)) = frames.decode(&mut copy) {
                match Message::decode_any(frame, MAX_DEPTH).map(|d| d.message) {
                    Ok(Message::Request(req)) => {
                        for a in answers_for(&req) {
                            let _ = answers_tx.send(a);
                        }
                    }
                    Ok(Message::Response(r)) => {
                        if let Some(n) = owed.get_mut(&r.id).filter(|n| **n > 0) {
                            *n -= 1;
                            outstanding.set(outstanding.get() - 1);
                            remaining_tx.send_replace(outstanding.get());
                        }
                    }
                    _ => {}
                }
            }
            buf = copy;
        }
        // The daemon closed: nothing more will come.
        remaining_tx.send_replace(0);
        out
    };
    tokio::join!(write, read).1
}

/// What the client's stream asks of the daemon, read the way the daemon reads it.
#[derive(Default)]
struct Asked {
    /// For each id, how many frames the daemon may answer under it: requests, and bodies it
    /// cannot decode whose id it can still read.
    ids: HashMap<RequestId, usize>,
    /// Ids of requests that asked for a stream.
    streams: HashSet<RequestId>,
    /// The connection's version: that of the first message decoded.
    version: Option<Version>,
    /// The stream asked for `shutdown` (the connection may close with frames unread).
    shutdown: bool,
    /// The daemon stops reading: a fatal error, or a message of another version.
    fatal: bool,
}

fn asked(stream: &[u8]) -> Asked {
    let mut a = Asked::default();
    let mut frames = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::from(stream);
    loop {
        let frame = match frames.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => {
                a.fatal = true;
                break;
            }
        };
        match Message::decode_any(frame, MAX_DEPTH) {
            Ok(d) => {
                if *a.version.get_or_insert(d.version) != d.version {
                    a.fatal = true;
                    break;
                }
                if let Message::Request(r) = d.message {
                    *a.ids.entry(r.id).or_default() += 1;
                    if r.options.stream {
                        a.streams.insert(r.id);
                    }
                    a.shutdown |= r.method() == "shutdown";
                }
            }
            Err(e) if e.is_fatal() => {
                a.fatal = true;
                break;
            }
            Err(e) => {
                if let Some(id) = e.request_id() {
                    *a.ids.entry(id).or_default() += 1;
                }
            }
        }
    }
    a
}

fuzz_target!(|data: &[u8]| {
    quiet_deliberate_panics();
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let capacity = [64, 512, 4096, 65536][usize::from(config & 3)];
    let pause = match (config >> 2) & 3 {
        0 => Pause::None,
        1 => Pause::Yield,
        2 => Pause::Millis(1),
        _ => Pause::Millis(u64::from(config >> 4) * 10),
    };
    let plan = Plan::parse(rest);

    let mut stalled = false;
    let asked_early = asked(plan.stream);
    let owed = asked_early.ids.clone();
    let outstanding = std::cell::Cell::new(0usize);
    let outstanding = &outstanding;
    let asked_early = &asked_early;
    let output = RUNTIME.with(|rt| {
        rt.block_on(async {
            let service = service();
            let stalled = &mut stalled;
            let (ours, theirs) = tokio::io::duplex(capacity);
            let session = async {
                let ((), out) = tokio::join!(
                    service.serve(theirs),
                    client(ours, plan, pause, owed, outstanding)
                );
                out
            };
            tokio::pin!(session);
            match tokio::time::timeout(STALL, &mut session).await {
                Ok(out) => out,
                Err(_) => {
                    *stalled = true;
                    // Time only gets this far when every task is idle. If nothing runs, no
                    // answer can still come: one owed now was lost.
                    let running = service.handle().stats().in_flight;
                    assert!(
                        running > 0
                            || outstanding.get() == 0
                            || asked_early.fatal
                            || asked_early.shutdown,
                        "idle with nothing running and {} answers owed",
                        outstanding.get()
                    );
                    service.handle().shutdown_now();
                    tokio::time::timeout(AFTER_SHUTDOWN, &mut session)
                        .await
                        .expect("the connection ends after shutdown_now")
                }
            }
        })
    });

    static DEBUG: OnceLock<bool> = OnceLock::new();
    let debug = *DEBUG.get_or_init(|| std::env::var_os("HEARTH_FUZZ_DEBUG").is_some());
    if debug {
        eprintln!("the daemon sent {} bytes; stalled: {stalled}", output.len());
    }
    let asked = asked(plan.stream);
    let allowed = &asked.ids;
    let v2 = asked.version == Some(Version::V2);
    let mut answered: HashMap<RequestId, usize> = HashMap::new();
    let mut last_seq: HashMap<RequestId, u64> = HashMap::new();
    let mut daemon_open: HashSet<RequestId> = HashSet::new();
    let mut daemon_asked: HashSet<RequestId> = HashSet::new();
    let mut frames = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::from(&output[..]);
    let mut fatal_seen = false;
    while let Some(frame) = frames.decode(&mut buf).expect("daemon frames are valid") {
        let d = Message::decode_any(frame, MAX_DEPTH).expect("daemon messages decode");
        let msg = d.message;
        if debug {
            eprintln!("daemon sent {msg:?}");
        }
        assert!(!fatal_seen, "nothing follows $/fatal: {msg:?}");
        // Responses and notifications may come before the connection has a version (answers
        // to damaged first frames), so only the v2-only kinds are held to it here.
        if matches!(
            msg,
            Message::Partial(_) | Message::Request(_) | Message::Cancel(_)
        ) {
            assert_eq!(
                d.version,
                Version::V2,
                "a v2-only kind in a v1 envelope: {msg:?}"
            );
        }
        match msg {
            Message::Response(r) => {
                let n = answered.entry(r.id).or_default();
                *n += 1;
                let sent = allowed.get(&r.id).copied().unwrap_or(0);
                assert!(
                    *n <= sent,
                    "id {} answered {n} times for {sent} requests: {:?}",
                    r.id,
                    r.outcome
                );
                last_seq.remove(&r.id);
            }
            Message::Partial(p) => {
                assert!(v2, "a partial on a version 1 connection: {p:?}");
                assert!(
                    asked.streams.contains(&p.id),
                    "a partial for id {}, which never asked for a stream",
                    p.id
                );
                let n = answered.get(&p.id).copied().unwrap_or(0);
                assert!(
                    n < allowed.get(&p.id).copied().unwrap_or(0),
                    "a partial for id {} after its last response",
                    p.id
                );
                if let Some(&last) = last_seq.get(&p.id) {
                    assert!(
                        p.seq > last,
                        "partial seq {} after {last} for id {}",
                        p.seq,
                        p.id
                    );
                }
                last_seq.insert(p.id, p.seq);
            }
            Message::Request(r) => {
                assert!(v2, "a daemon request on a version 1 connection: {r:?}");
                assert!(
                    r.options.is_default(),
                    "a daemon request has no options: {r:?}"
                );
                assert!(
                    daemon_open.insert(r.id),
                    "the daemon reused its id {} while in flight",
                    r.id
                );
                daemon_asked.insert(r.id);
            }
            Message::Cancel(c) => {
                assert!(v2, "a daemon cancel on a version 1 connection: {c:?}");
                assert!(
                    daemon_asked.contains(&c.id),
                    "the daemon cancelled id {}, which it never asked",
                    c.id
                );
                daemon_open.remove(&c.id);
            }
            Message::Notification(n) => match n.method() {
                reserved::FATAL => fatal_seen = true,
                reserved::ERROR | "tick" => {}
                other => panic!("unexpected notification {other:?}"),
            },
        }
    }
    assert!(
        frames.is_idle(&buf),
        "the daemon's output ends between frames"
    );
    // A connection that ended on its own terms (the client half-closed; no $/fatal, no
    // shutdown, no stall) owes nothing: every request read got exactly one response.
    if !fatal_seen && !asked.fatal && !asked.shutdown && !stalled {
        for (id, &sent) in allowed {
            let got = answered.get(id).copied().unwrap_or(0);
            assert_eq!(got, sent, "id {id}: {sent} requests, {got} responses");
        }
    }
});
