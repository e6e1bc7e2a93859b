//! Criterion benches for whole round trips over a real Unix socket, each next to its raw
//! baseline so the ratio is the point: `roundtrip/hearth/*` calls the built-in `echo` with 32
//! bytes of params through the full stack — a `hearth_server::Server` on a temporary socket
//! (its own multi-thread runtime, as `hearthd` runs) and a `hearth_client::Client` (on a
//! current-thread runtime, as the `hearth` CLI runs) — while `roundtrip/raw/*` sends the same
//! 45-byte request frame to a blocking `std::os::unix::net` echo server that only reads the
//! length prefix (`hearth_benches::raw_echo`). Shapes: `seq` (one call in flight, time per
//! call), `pipelined_256` (256 in flight on one connection) and `4x64` (four connections with 64
//! in flight each; the raw side uses one client thread per connection). Every bench counts
//! `Throughput::Elements` in calls. Encoding and decoding alone are `codec.rs`'s business.

use std::hint::black_box;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hearth_benches::raw_echo::{EchoClient, EchoServer};
use hearth_benches::{ECHO_METHOD, echo_params, framed_echo_request};
use hearth_client::Client;
use hearth_server::{Server, ServerHandle};
use tokio::runtime::Runtime;

/// Calls in flight on the one connection of the `pipelined_256` benches.
const PIPELINE: usize = 256;
/// Connections of the `4x64` benches.
const CONNECTIONS: usize = 4;
/// Calls in flight on each connection of the `4x64` benches.
const PER_CONNECTION: usize = 64;

/// A temporary folder only we can use, as the daemon requires of its socket's folder.
fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .expect("making the temporary folder private");
    dir
}

/// A hearth daemon serving the built-in methods on a temporary socket, on its own runtime.
struct Daemon {
    runtime: Runtime,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<Result<(), hearth_server::ServeError>>,
    dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("bench-hearthd")
            .build()
            .expect("the daemon's runtime");
        let dir = private_dir();
        let path = dir.path().join("hearthd.sock");
        let server = runtime
            .block_on(
                Server::builder()
                    .socket(&path)
                    .router(hearth_server::builtins::router())
                    .bind(),
            )
            .expect("the daemon binds");
        let handle = server.handle();
        let task = runtime.spawn(server.run());
        Self {
            runtime,
            handle,
            task,
            dir,
        }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("hearthd.sock")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.handle.shutdown_now();
        let task = &mut self.task;
        self.runtime.block_on(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        });
    }
}

/// Splits `calls` over `parts` as evenly as possible.
fn shares(calls: u64, parts: usize) -> impl Iterator<Item = u64> {
    let parts = parts as u64;
    (0..parts).map(move |i| calls / parts + u64::from(i < calls % parts))
}

/// Makes `calls` echo calls on `client` keeping `window` in flight: `window` slots, each a
/// loop that sends its next call as soon as its last one is answered (as `hearth bench` does).
/// The slots are long-lived futures, so the harness adds no allocation or move per call.
async fn pipelined(client: &Client, params: &[u8], calls: u64, window: usize) {
    let slots = shares(calls, window).map(|n| async move {
        for _ in 0..n {
            let answer = client.call_raw(ECHO_METHOD, params).await;
            black_box(answer.expect("echo answers"));
        }
    });
    futures::future::join_all(slots).await;
}

/// The hearth side: a daemon, a client runtime, one client for the single-connection
/// benches and [`CONNECTIONS`] more for the `4x64` one.
struct HearthSide {
    one: Client,
    four: Vec<Client>,
    params: Vec<u8>,
    runtime: Runtime,
    _daemon: Daemon,
}

impl HearthSide {
    fn start() -> Self {
        let daemon = Daemon::start();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the client's runtime");
        let params = echo_params();
        let connect = |path: &Path| runtime.block_on(Client::connect(path)).expect("connects");
        let one = connect(&daemon.path());
        let four = (0..CONNECTIONS).map(|_| connect(&daemon.path())).collect();
        let answer = runtime
            .block_on(one.call_raw(ECHO_METHOD, &params))
            .expect("echo answers");
        assert_eq!(&answer[..], &params[..], "echo returns its params");
        Self {
            one,
            four,
            params,
            runtime,
            _daemon: daemon,
        }
    }

    fn seq(&self, calls: u64) -> Duration {
        self.runtime.block_on(async {
            let start = Instant::now();
            for _ in 0..calls {
                let answer = self.one.call_raw(ECHO_METHOD, &self.params).await;
                black_box(answer.expect("echo answers"));
            }
            start.elapsed()
        })
    }

    fn pipelined(&self, calls: u64) -> Duration {
        self.runtime.block_on(async {
            let start = Instant::now();
            pipelined(&self.one, &self.params, calls, PIPELINE).await;
            start.elapsed()
        })
    }

    fn spread(&self, calls: u64) -> Duration {
        self.runtime.block_on(async {
            let start = Instant::now();
            let each = self
                .four
                .iter()
                .zip(shares(calls, CONNECTIONS))
                .map(|(client, n)| pipelined(client, &self.params, n, PER_CONNECTION));
            futures::future::join_all(each).await;
            start.elapsed()
        })
    }
}

/// A raw client on its own thread, running whatever call counts it is sent.
struct Worker {
    jobs: Option<mpsc::Sender<u64>>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn(mut client: EchoClient, window: usize) -> Self {
        let (jobs, job_rx) = mpsc::channel::<u64>();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bench-raw-client".to_owned())
            .spawn(move || {
                for calls in job_rx {
                    client.run(calls, window).expect("raw echo");
                    if done_tx.send(()).is_err() {
                        return;
                    }
                }
            })
            .expect("a client thread");
        Self {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The raw side: a blocking echo server, one client for the single-connection benches and
/// [`CONNECTIONS`] client threads for the `4x64` one.
struct RawSide {
    one: EchoClient,
    four: Vec<Worker>,
    _server: EchoServer,
    _dir: tempfile::TempDir,
}

impl RawSide {
    fn start() -> Self {
        let dir = private_dir();
        let server = EchoServer::bind(dir.path().join("echo.sock")).expect("the echo server binds");
        let frame = framed_echo_request(1);
        let one = EchoClient::connect(server.path(), &frame, PIPELINE).expect("connects");
        let four = (0..CONNECTIONS)
            .map(|_| {
                let client =
                    EchoClient::connect(server.path(), &frame, PER_CONNECTION).expect("connects");
                Worker::spawn(client, PER_CONNECTION)
            })
            .collect();
        Self {
            one,
            four,
            _server: server,
            _dir: dir,
        }
    }

    fn run(&mut self, calls: u64, window: usize) -> Duration {
        let start = Instant::now();
        self.one.run(calls, window).expect("raw echo");
        start.elapsed()
    }

    fn spread(&self, calls: u64) -> Duration {
        let start = Instant::now();
        for (worker, n) in self.four.iter().zip(shares(calls, CONNECTIONS)) {
            let jobs = worker.jobs.as_ref().expect("a running worker");
            jobs.send(n).expect("the worker runs");
        }
        for worker in &self.four {
            worker.done.recv().expect("the worker finishes");
        }
        start.elapsed()
    }
}

/// Each hearth bench next to its raw baseline, so the report reads as ratios.
fn roundtrip(c: &mut Criterion) {
    let hearth = HearthSide::start();
    let mut raw = RawSide::start();
    let mut group = c.benchmark_group("roundtrip");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hearth/seq", |b| b.iter_custom(|n| hearth.seq(n)));
    group.bench_function("raw/seq", |b| b.iter_custom(|n| raw.run(n, 1)));
    group.bench_function("hearth/pipelined_256", |b| {
        b.iter_custom(|n| hearth.pipelined(n))
    });
    group.bench_function("raw/pipelined_256", |b| {
        b.iter_custom(|n| raw.run(n, PIPELINE))
    });
    group.bench_function("hearth/4x64", |b| b.iter_custom(|n| hearth.spread(n)));
    group.bench_function("raw/4x64", |b| b.iter_custom(|n| raw.spread(n)));
    group.finish();
}

criterion_group!(benches, roundtrip);
criterion_main!(benches);
