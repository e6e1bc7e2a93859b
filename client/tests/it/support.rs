//! Test helpers for the client: [`TestDaemon`], a real `hearth-server` on a fresh socket in its
//! own runtime on its own thread (so a test can kill it outright, which `hearth-testkit`'s
//! in-runtime server cannot), and [`FakeDaemon`], a scripted daemon for what a real one would
//! never send — both client-specific, so they stay here. The shared pieces ([`Gate`],
//! [`eventually`], [`PATIENCE`] and the raw peer under [`Peer`]) come from `hearth-testkit`.
//! The tests themselves are in the sibling modules.

use hearth_testkit::Raw;
pub(crate) use hearth_testkit::{Gate, PATIENCE, eventually};

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use bytes::BytesMut;
use hearth_client::protocol::reserved::{FATAL, Fatal};
use hearth_client::protocol::reserved::{HelloResult, Limits as HelloLimits};
use hearth_client::protocol::{EncodeError, Encoder, ErrorCode, Message, Request, Version};
use hearth_client::{Client, Stats};
use hearth_server::{Limits, Router, ServeError, Server, ServerHandle, builtins};
use tempfile::TempDir;
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
    /// The built-in methods (`echo`, `sleep`, `shutdown`) with default limits.
    pub(crate) fn start() -> Self {
        Self::start_with(builtins::router(), Limits::default())
    }

    /// The built-in methods with default limits, also listening on a loopback TCP port.
    pub(crate) fn start_tcp() -> Self {
        Self::start_on(builtins::router(), Limits::default(), true)
    }

    /// Serves `router` under `limits`, also listening on a loopback TCP port.
    pub(crate) fn start_tcp_with(router: Router, limits: Limits) -> Self {
        Self::start_on(router, limits, true)
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

    /// A client config showing this daemon's TCP token (PROTOCOL.md §3.4).
    pub(crate) fn tcp_config(&self) -> hearth_client::ClientConfig {
        let token = hearth_client::read_tcp_token(&self.path).expect("the daemon's tcp.token");
        hearth_client::ClientConfig::default().with_tcp_token(token)
    }

    /// The TCP address, for a daemon started with [`start_tcp`](Self::start_tcp).
    pub(crate) fn tcp_addr(&self) -> SocketAddr {
        self.tcp.expect("a daemon started with start_tcp")
    }

    /// The server's handle: shutdown, counters.
    pub(crate) fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// The server's counters, read directly (a `$/stats` call would count itself in flight).
    pub(crate) fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// A client connected with the default configuration.
    pub(crate) async fn client(&self) -> Client {
        Client::connect(&self.path)
            .await
            .expect("connecting to the test daemon")
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

/// A scripted daemon for one connection: the script gets the accepted [`Peer`].
pub(crate) struct FakeDaemon {
    _dir: TempDir,
    path: PathBuf,
    script: tokio::task::JoinHandle<()>,
}

impl FakeDaemon {
    /// Listens on a fresh socket and runs `script` on the first connection.
    pub(crate) fn start<F, Fut>(script: F) -> Self
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_refusing(0, script)
    }

    /// A daemon that speaks version 1 only: it refuses the first connection's version 2
    /// `$/hello` as such a daemon does (`$/fatal` -32004, `supported: [1]`, in a version 1
    /// envelope, then hang up), and runs `script` on the second connection.
    pub(crate) fn start_v1_only<F, Fut>(script: F) -> Self
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_refusing(1, script)
    }

    fn start_refusing<F, Fut>(refuse: usize, script: F) -> Self
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let dir = private_dir();
        let path = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&path).expect("binding the fake daemon");
        let script = tokio::spawn(async move {
            for _ in 0..refuse {
                let (stream, _) = listener.accept().await.expect("accepting a client");
                let mut peer = Peer::new(stream);
                let hello = peer.request().await.expect("the client's $/hello");
                assert_eq!(hello.method(), "$/hello");
                assert_eq!(
                    peer.version(),
                    Version::V2,
                    "the first hello is in version 2"
                );
                peer.version = Version::V1;
                let fatal = Fatal {
                    code: ErrorCode::UNSUPPORTED_VERSION.0,
                    message: "unsupported protocol version 2".into(),
                    supported: vec![1],
                };
                peer.send(|enc, buf| enc.notification(buf, FATAL, &fatal))
                    .await;
            }
            let (stream, _) = listener.accept().await.expect("accepting a client");
            script(Peer::new(stream)).await;
        });
        Self {
            _dir: dir,
            path,
            script,
        }
    }

    /// The socket path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the script to finish, propagating its panics.
    pub(crate) async fn finish(self) {
        within("the fake daemon's script", self.script)
            .await
            .expect("the fake daemon's script");
    }
}

/// The daemon's end of one connection, for scripts: `hearth-testkit`'s raw peer, answering in
/// the version the client speaks (its encoder takes the version of each message it reads).
pub(crate) struct Peer {
    raw: Raw,
    version: Version,
}

impl Peer {
    fn new(stream: UnixStream) -> Self {
        Self {
            raw: Raw::from_stream(stream),
            version: Version::V1,
        }
    }

    /// The next request the client sends; `None` at EOF. Other messages are skipped.
    pub(crate) async fn request(&mut self) -> Option<Request> {
        loop {
            if let Message::Request(request) = self.message().await? {
                return Some(request);
            }
        }
    }

    /// The next message the client sends, of any kind; `None` at EOF.
    pub(crate) async fn message(&mut self) -> Option<Message> {
        let decoded = self.raw.next_decoded().await?;
        self.version = decoded.version;
        Some(decoded.message)
    }

    /// The version the peer answers in: that of the last message it read.
    pub(crate) fn version(&self) -> Version {
        self.version
    }

    /// Encodes one message with the protocol's encoder, in the peer's version, and sends it.
    pub(crate) async fn send(
        &mut self,
        write: impl FnOnce(&Encoder, &mut BytesMut) -> Result<(), EncodeError>,
    ) {
        let mut frame = BytesMut::new();
        let encoder = Encoder::default().with_version(self.version);
        write(&encoder, &mut frame).expect("encoding a scripted message");
        self.send_bytes(&frame).await;
    }

    /// Sends bytes as they are, well-formed or not.
    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) {
        self.raw.send_bytes(bytes).await;
    }

    /// Reads the client's `$/hello` and answers it (in the hello's envelope version) as a
    /// daemon speaking `protocol`.
    pub(crate) async fn answer_hello(&mut self, protocol: u32) {
        let hello = self.request().await.expect("the client's $/hello");
        assert_eq!(hello.method(), "$/hello");
        let result = fake_hello(protocol);
        self.send(|enc, buf| enc.response(buf, hello.id, &result))
            .await;
    }
}

/// A `$/hello` result as a fake daemon of `protocol` would give it.
pub(crate) fn fake_hello(protocol: u32) -> HelloResult {
    HelloResult {
        protocol,
        server: "fake 0.0.0".into(),
        build: String::new(),
        methods: vec!["$/hello".into()],
        limits: HelloLimits {
            max_frame: 1024,
            max_in_flight: 4,
            max_connections: 1,
            max_depth: 64,
        },
        supported: if protocol == 2 {
            vec![1, 2]
        } else {
            Vec::new()
        },
    }
}
