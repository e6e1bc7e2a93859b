//! Fuzz target: one whole daemon connection. The input is written by a fake client, in
//! chunks, to a `Service` serving an in-memory duplex (builtins plus methods that panic, send
//! notifications and take client notifications; small limits); the client then half-closes
//! and reads everything until the daemon closes. Time is paused, so sleeps cost nothing.
//!
//! Input: `[config][Plan...]` (see `hearth_fuzz::Plan`); `config` picks the duplex buffer
//! size and how the client pauses between chunks. Checks: no panic (but the deliberate one
//! inside the `panic` method, which the daemon must turn into -32603); every frame the daemon
//! sends is at most `max_frame` and decodes; the output ends between frames, even when the
//! client half-closed with answers still queued; `$/fatal` comes last; every response
//! answers an id the client sent, and no id gets more responses than requests carrying it (a
//! duplicate in-flight id is its own request, answered -32600; ids may be reused once
//! answered); a connection that stalls (legitimately: eight endless sleeps fill
//! `max_in_flight`) ends promptly after `shutdown_now`.

#![no_main]

use std::collections::HashMap;
use std::sync::{Once, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hearth_fuzz::Plan;
use hearth_protocol::{FrameDecoder, Message, RequestId, reserved};
use hearth_server::{Limits, MethodError, NotificationContext, RequestContext, Server, builtins};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;

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

/// Writes the plan's chunks, half-closes, and returns everything the daemon sent.
async fn client(stream: DuplexStream, plan: Plan<'_>, pause: Pause) -> Vec<u8> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let write = async move {
        for chunk in plan.chunks() {
            if wr.write_all(chunk).await.is_err() {
                return; // the daemon closed the connection
            }
            pause.wait().await;
        }
        let _ = wr.shutdown().await;
    };
    let read = async move {
        let mut out = Vec::new();
        let _ = rd.read_to_end(&mut out).await;
        out
    };
    tokio::join!(write, read).1
}

/// For each id, how many frames the daemon may answer under it: requests, and bodies it
/// cannot decode whose id it can still read. Stops where the daemon stops reading.
fn answerable(stream: &[u8]) -> HashMap<RequestId, usize> {
    let mut ids = HashMap::new();
    let mut frames = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::from(stream);
    while let Ok(Some(frame)) = frames.decode(&mut buf) {
        match Message::decode_with_depth(frame, MAX_DEPTH) {
            Ok(Message::Request(r)) => *ids.entry(r.id).or_default() += 1,
            Ok(_) => {}
            Err(e) if e.is_fatal() => break,
            Err(e) => {
                if let Some(id) = e.request_id() {
                    *ids.entry(id).or_default() += 1;
                }
            }
        }
    }
    ids
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

    let output = RUNTIME.with(|rt| {
        rt.block_on(async {
            let service = service();
            let (ours, theirs) = tokio::io::duplex(capacity);
            let session = async {
                let ((), out) = tokio::join!(service.serve(theirs), client(ours, plan, pause));
                out
            };
            tokio::pin!(session);
            match tokio::time::timeout(STALL, &mut session).await {
                Ok(out) => out,
                Err(_) => {
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
    let allowed = answerable(plan.stream);
    let mut answered: HashMap<RequestId, usize> = HashMap::new();
    let mut frames = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::from(&output[..]);
    let mut fatal_seen = false;
    while let Some(frame) = frames.decode(&mut buf).expect("daemon frames are valid") {
        let msg = Message::decode(frame).expect("daemon messages decode");
        if debug {
            eprintln!("daemon sent {msg:?}");
        }
        assert!(!fatal_seen, "nothing follows $/fatal: {msg:?}");
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
            }
            Message::Notification(n) => match n.method() {
                reserved::FATAL => fatal_seen = true,
                reserved::ERROR | "tick" => {}
                other => panic!("unexpected notification {other:?}"),
            },
            other => panic!("the daemon sent {other:?}"),
        }
    }
    assert!(
        frames.is_idle(&buf),
        "the daemon's output ends between frames"
    );
});
