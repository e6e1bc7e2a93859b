//! Test helpers for the `hearth` binary's tests: [`TestDaemon`], a real `hearth-server` on a
//! fresh socket in its own runtime on its own thread (so a test can kill it outright),
//! [`V1OnlyDaemon`], a scripted daemon that speaks protocol 1 only (the real one speaks 2),
//! and [`within`], a bounded await. [`TestDaemon`] is a copy of the one in
//! `client/tests/it/support.rs` (which can kill its daemon outright, as `hearth-testkit`'s
//! in-runtime server cannot); [`eventually`] and its bound come from `hearth-testkit`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use bytes::BytesMut;
use hearth_server::protocol::reserved::{
    FATAL, Fatal, HELLO, HelloResult, Limits as HelloLimits, Stats,
};
use hearth_server::protocol::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME, Encoder, ErrorCode, FrameDecoder, Message, Version,
};
use hearth_server::{Limits, Router, ServeError, Server, ServerHandle, builtins};
use hearth_testkit::PATIENCE;
pub(crate) use hearth_testkit::eventually;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;

/// A daemon serving on a temporary socket, in a multi-thread runtime of its own on a thread of
/// its own. [`TestDaemon::kill`] drops that runtime: every connection vanishes at once with no
/// goodbye, as when the process dies.
pub(crate) struct TestDaemon {
    _dir: TempDir,
    path: PathBuf,
    tcp: Option<SocketAddr>,
    handle: ServerHandle,
    kill: Option<oneshot::Sender<()>>,
    /// Ends with the server's result, or `None` when it was killed.
    thread: Option<JoinHandle<Option<Result<(), ServeError>>>>,
}

impl TestDaemon {
    /// The built-in methods with default limits.
    pub(crate) fn start() -> Self {
        Self::start_with(builtins::router(), Limits::default())
    }

    /// The built-in methods with default limits, also listening on a loopback TCP port.
    pub(crate) fn start_tcp() -> Self {
        Self::start_on(builtins::router(), Limits::default(), true)
    }

    /// Serves `router` under `limits`.
    pub(crate) fn start_with(router: Router, limits: Limits) -> Self {
        Self::start_on(router, limits, false)
    }

    fn start_on(router: Router, limits: Limits, tcp: bool) -> Self {
        let dir = private_dir();
        let path = dir.path().join("hearthd.sock");
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let socket = path.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the daemon");
            let mut builder = Server::builder()
                .socket(socket)
                .router(router)
                .limits(limits);
            if tcp {
                builder = builder.listen_tcp(SocketAddr::from(([127, 0, 0, 1], 0)));
            }
            let bound = runtime.block_on(builder.bind());
            let server = match bound {
                Ok(server) => server,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return None;
                }
            };
            let _ = ready_tx.send(Ok((server.handle(), server.tcp_addr())));
            let outcome = runtime.block_on(async move {
                let run = tokio::spawn(server.run());
                tokio::select! {
                    ran = run => Some(ran.expect("the server task does not panic")),
                    // Killed, or the `TestDaemon` was dropped.
                    _ = kill_rx => None,
                }
            });
            // Whatever still runs (connections, handlers) is dropped here, sockets included.
            drop(runtime);
            outcome
        });
        let (handle, tcp) = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => panic!("the test daemon did not start: {e}"),
            Err(_) => panic!("the test daemon thread died while starting"),
        };
        Self {
            _dir: dir,
            path,
            tcp,
            handle,
            kill: Some(kill_tx),
            thread: Some(thread),
        }
    }

    /// The socket path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The TCP address, for a daemon started with [`start_tcp`](Self::start_tcp).
    pub(crate) fn tcp_addr(&self) -> SocketAddr {
        self.tcp.expect("a daemon started with start_tcp")
    }

    /// The server's counters, read directly (a `$/stats` call would count itself in flight).
    pub(crate) fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// Kills the daemon: drops its runtime, and with it every connection. Returns once it is
    /// gone.
    pub(crate) fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Waits (blocking) until the server stopped by itself, after a shutdown, and returns its
    /// result.
    pub(crate) fn wait_stopped(mut self) -> Result<(), ServeError> {
        let thread = self.thread.take().expect("the daemon thread");
        match thread.join() {
            Ok(Some(result)) => result,
            Ok(None) => panic!("the daemon was killed, not stopped"),
            Err(_) => panic!("the daemon thread panicked"),
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh temporary folder only we can use, as the daemon requires of its socket's folder.
/// (`tempfile` creates folders with the default mode, which the umask may leave open.)
pub(crate) fn private_dir() -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .expect("making the temporary folder private");
    dir
}

/// Awaits `fut`, failing the test instead of hanging after [`PATIENCE`].
pub(crate) async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, fut).await {
        Ok(value) => value,
        Err(_) => panic!("gave up waiting for {what}"),
    }
}

/// A daemon that speaks protocol 1 only, as hearthd did before version 2: a connection whose
/// first message is in version 2 gets `$/fatal` -32004 (`supported: [1]`) in a version 1
/// envelope and is closed; one in version 1 gets its `$/hello` answered with protocol 1, then
/// is read (and otherwise ignored) until the client hangs up. Serves any number of
/// connections, on a runtime of its own, until dropped.
pub(crate) struct V1OnlyDaemon {
    _dir: TempDir,
    path: PathBuf,
    _runtime: tokio::runtime::Runtime,
}

impl V1OnlyDaemon {
    pub(crate) fn start() -> Self {
        let dir = private_dir();
        let path = dir.path().join("v1.sock");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the fake daemon");
        let listener = {
            let _entered = runtime.enter();
            UnixListener::bind(&path).expect("binding the fake daemon")
        };
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_v1(stream));
            }
        });
        Self {
            _dir: dir,
            path,
            _runtime: runtime,
        }
    }

    /// The socket path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

async fn serve_v1(mut stream: UnixStream) {
    let mut buf = BytesMut::new();
    let mut frames = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let encoder = Encoder::default().with_version(Version::V1);
    loop {
        let frame = match frames.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => match stream.read_buf(&mut buf).await {
                Ok(n) if n > 0 => continue,
                _ => return,
            },
            Err(_) => return,
        };
        let Ok(decoded) = Message::decode_any(frame, DEFAULT_MAX_DEPTH) else {
            return;
        };
        let mut out = BytesMut::new();
        if decoded.version != Version::V1 {
            let fatal = Fatal {
                code: ErrorCode::UNSUPPORTED_VERSION.0,
                message: format!("unsupported protocol version {}", decoded.version.number()),
                supported: vec![1],
            };
            let _ = encoder.notification(&mut out, FATAL, &fatal);
            let _ = stream.write_all(&out).await;
            return;
        }
        if let Message::Request(request) = decoded.message
            && request.method() == HELLO
        {
            let hello = HelloResult {
                protocol: 1,
                server: "v1-only fake 0.0.0".into(),
                build: String::new(),
                methods: vec![HELLO.into(), "echo".into()],
                limits: HelloLimits {
                    max_frame: DEFAULT_MAX_FRAME as u64,
                    max_in_flight: 64,
                    max_connections: 64,
                    max_depth: DEFAULT_MAX_DEPTH as u64,
                },
                supported: vec![1],
                build_id: None,
            };
            let _ = encoder.response(&mut out, request.id, &hello);
            if stream.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}
