//! The daemon as a whole: [`Server::builder`] sets the socket, methods and limits; `bind`
//! makes the socket safe and listens; [`Server::run`] accepts connections until shutdown and
//! then drains them. [`ServerHandle`] is the cheap, cloneable way to start shutdown or read
//! the counters from anywhere (a signal handler, a method, a test).
//!
//! Every accepted connection is checked before a byte is read: the peer's uid (SO_PEERCRED)
//! must be the daemon's own, and there must be a connection slot free. A peer of another user
//! is closed silently (and logged); one over the limit is told why with `$/fatal` (-32001).
//! A TCP connection, which has no uid to check, must first show the token `bind` wrote to
//! `tcp.token` (`tcp_token.rs`), or it is refused with `$/fatal` (-32600).
//!
//! Shutdown, in order: stop accepting and remove the socket; every connection stops starting
//! new requests (answering them -32003) and lets running ones finish for the grace period;
//! then what still runs is answered -32003; output gets `flush_timeout` to drain; last, the
//! lock file is removed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::BytesMut;
use hearth_protocol::reserved::{self, Fatal, HelloParams, HelloResult, Stats};
use hearth_protocol::{Encoder, ErrorCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use hearth_transport::QuietStream;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Limits, ServerInfo};
use crate::connection::{Connection, End};
use crate::context::RequestContext;
use crate::error::{MethodError, ServeError, StartError};
use crate::router::Router;
use crate::socket::{self, SocketFiles};
use crate::stats::Counters;
use crate::tcp_token::{self, Replay, TcpToken};

/// State shared by the accept loop, every connection and every handle. Read-only but for the
/// atomic counters and the two tokens.
pub(crate) struct Shared {
    pub(crate) router: Router,
    pub(crate) limits: Limits,
    pub(crate) info: ServerInfo,
    pub(crate) counters: Counters,
    /// Fires when shutdown begins.
    pub(crate) drain: CancellationToken,
    /// Fires when the grace period is over (or on a forced stop).
    pub(crate) hard: CancellationToken,
    methods: Vec<String>,
    uid: u32,
    build_id: Option<String>,
    /// Bumped whenever a connection is accepted or ends; wakes the idle watch.
    activity: std::sync::atomic::AtomicU64,
    activity_changed: tokio::sync::Notify,
}

impl Shared {
    fn touch(&self) {
        self.activity.fetch_add(1, Relaxed);
        self.activity_changed.notify_one();
    }
}

/// Configures a [`Server`]. Obtain one from [`Server::builder`].
#[derive(Debug, Default)]
pub struct ServerBuilder {
    socket: Option<PathBuf>,
    tcp: Option<SocketAddr>,
    allow_non_loopback: bool,
    router: Router,
    limits: Limits,
    info: ServerInfo,
    build_id: Option<String>,
    idle_exit: Option<Duration>,
    inherited: Option<std::os::unix::net::UnixListener>,
}

impl ServerBuilder {
    /// The socket path. Default: `$HEARTH_SOCKET`, else `$XDG_RUNTIME_DIR/hearth/hearthd.sock`,
    /// else `/tmp/hearth-<uid>/hearthd.sock`.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// The methods to serve. `$/hello` and `$/stats` are always added.
    pub fn router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    /// The limits to enforce (see [`Limits`] for defaults).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The name and version announced in `$/hello` (`"<name> <version>"`).
    pub fn info(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.info = ServerInfo {
            name: name.into(),
            version: version.into(),
        };
        self
    }

    /// The build id announced in `$/hello` on version 2 connections (see
    /// [`hearth_protocol::build_id`]); none by default.
    pub fn build_id(mut self, id: impl Into<String>) -> Self {
        self.build_id = Some(id.into());
        self
    }

    /// Shuts down gracefully once no connection has been open for `after` (counted from the
    /// start, or from the last connection's end). Off by default.
    pub fn idle_exit(mut self, after: Duration) -> Self {
        self.idle_exit = Some(after);
        self
    }

    /// Serves on a socket someone else bound and listens on (systemd's socket activation,
    /// say) instead of binding [`socket`](Self::socket): no folder check and no lock file,
    /// since the socket's creator answers for those, and on exit the socket file is left in
    /// place for that creator. Peers' uids are still checked.
    pub fn inherited_listener(mut self, listener: std::os::unix::net::UnixListener) -> Self {
        self.inherited = Some(listener);
        self
    }

    /// Also listens on this TCP address (for comparisons and bridges; off by default).
    /// TCP has no peer credentials, so [`bind`](Self::bind) writes a token to `tcp.token`
    /// (0600) beside the socket and every TCP connection must show it in its first message,
    /// `$/hello` (PROTOCOL.md §3.4); only loopback addresses are accepted unless
    /// [`allow_non_loopback_tcp`](Self::allow_non_loopback_tcp).
    pub fn listen_tcp(mut self, addr: SocketAddr) -> Self {
        self.tcp = Some(addr);
        self
    }

    /// Accepts a non-loopback TCP address in [`listen_tcp`](Self::listen_tcp). This exposes
    /// the daemon to the network, guarded only by the TCP token.
    pub fn allow_non_loopback_tcp(mut self, allow: bool) -> Self {
        self.allow_non_loopback = allow;
        self
    }

    /// Builds the request-serving part alone, with no socket: a [`Service`] serves any byte
    /// stream it is given (an in-memory duplex in tests and fuzzing, say).
    pub fn service(self) -> Service {
        Service {
            shared: self.into_shared(),
        }
    }

    fn into_shared(self) -> Arc<Shared> {
        let router = self
            .router
            // Both never wait: synchronous handlers, answered inline.
            .sync_method(
                reserved::HELLO,
                |params: Option<HelloParams>, ctx: &RequestContext| {
                    if let Some(client) = params.and_then(|p| p.client) {
                        tracing::debug!(conn = ctx.connection_id(), client, "hello");
                    }
                    let mut hello = ctx.server().hello();
                    if ctx.version() != hearth_protocol::Version::V1 {
                        hello.protocol = ctx.version().number();
                        hello.supported = hearth_protocol::SUPPORTED_VERSIONS.to_vec();
                        hello.build_id = ctx.server().shared.build_id.clone();
                    }
                    Ok::<_, MethodError>(hello)
                },
            )
            .sync_method(
                reserved::STATS,
                // Answered inline, so never counted in flight itself.
                |_: serde::de::IgnoredAny, ctx: &RequestContext| Ok(ctx.server().stats()),
            );
        let mut methods: Vec<String> = router.methods().map(str::to_owned).collect();
        methods.sort();
        let counters = Counters::new(router.names_by_index());
        Arc::new(Shared {
            router,
            limits: self.limits.sanitized(),
            info: self.info,
            counters,
            drain: CancellationToken::new(),
            hard: CancellationToken::new(),
            methods,
            uid: socket::current_uid(),
            build_id: self.build_id,
            activity: std::sync::atomic::AtomicU64::new(0),
            activity_changed: tokio::sync::Notify::new(),
        })
    }

    /// Makes the socket's folder safe, takes the lock, replaces a stale socket and listens
    /// (and on TCP, if asked). Must be called inside a tokio runtime.
    pub async fn bind(mut self) -> Result<Server, StartError> {
        let tcp = match self.tcp.take() {
            Some(addr) if !addr.ip().is_loopback() && !self.allow_non_loopback => {
                return Err(StartError::NonLoopback { addr });
            }
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Tcp { addr, source })?;
                Some(listener)
            }
            None => None,
        };
        let (std_listener, files) = match self.inherited.take() {
            Some(listener) => {
                let path = listener
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(Path::to_owned))
                    .unwrap_or_else(|| PathBuf::from("(inherited socket)"));
                (listener, SocketFiles::inherited(&path))
            }
            None => {
                let path = self.socket.take().unwrap_or_else(default_socket_path);
                socket::bind(&path)?
            }
        };
        let path = files.socket().to_owned();
        std_listener
            .set_nonblocking(true)
            .map_err(|source| StartError::Io {
                what: "cannot configure",
                path: path.clone(),
                source,
            })?;
        let listener = UnixListener::from_std(std_listener).map_err(|source| StartError::Io {
            what: "cannot listen on",
            path: path.clone(),
            source,
        })?;

        // TCP peers prove their user with a token only the daemon's user can read
        // (PROTOCOL.md §3.4).
        let tcp_token = match &tcp {
            None => None,
            Some(_) => {
                let folder = path.parent().unwrap_or_else(|| Path::new("."));
                let token_path = folder.join(tcp_token::FILE_NAME);
                let written = TcpToken::generate().and_then(|t| t.write(folder).map(|p| (t, p)));
                let (token, token_path) = written.map_err(|source| StartError::Io {
                    what: "cannot write the TCP token",
                    path: token_path,
                    source,
                })?;
                Some((Arc::new(token), token_path))
            }
        };
        let idle_exit = self.idle_exit;
        Ok(Server {
            listener,
            tcp,
            tcp_token,
            files,
            idle_exit,
            shared: self.into_shared(),
        })
    }
}

/// The default socket path for this user, from the environment.
pub fn default_socket_path() -> PathBuf {
    hearth_protocol::paths::default_socket_path(
        std::env::var_os(hearth_protocol::paths::SOCKET_ENV).as_deref(),
        std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
        socket::current_uid(),
    )
}

/// A daemon bound to its socket, ready to [`run`](Self::run).
///
/// Dropping it without running removes the socket and lock file.
pub struct Server {
    listener: UnixListener,
    tcp: Option<TcpListener>,
    /// With `tcp`: the token TCP peers must show, and the file holding it.
    tcp_token: Option<(Arc<TcpToken>, PathBuf)>,
    files: SocketFiles,
    idle_exit: Option<Duration>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("socket", &self.files.socket())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// A handle to shut the server down or read its counters.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle::new(self.shared.clone())
    }

    /// The socket path the server listens on.
    pub fn socket_path(&self) -> &Path {
        self.files.socket()
    }

    /// The TCP address it also listens on, if any (with the real port when 0 was asked).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// With TCP: the file (`tcp.token`, mode 0600, beside the socket) holding the token every
    /// TCP connection must show in its first message, `$/hello` (PROTOCOL.md §3.4).
    pub fn tcp_token_path(&self) -> Option<&Path> {
        self.tcp_token.as_ref().map(|(_, p)| p.as_path())
    }

    /// Accepts and serves connections until shutdown is requested through a
    /// [`ServerHandle`], then drains (see the module docs) and removes the socket and lock.
    pub async fn run(self) -> Result<(), ServeError> {
        let Self {
            listener,
            tcp,
            tcp_token,
            mut files,
            idle_exit,
            shared,
        } = self;
        let gate = tcp_token.as_ref().map(|(t, _)| t.clone());
        let idle = idle_watch(&shared, idle_exit);
        tokio::pin!(idle);
        let tracker = TaskTracker::new();
        let slots = Arc::new(Semaphore::new(shared.limits.max_connections));
        let mut next_id = 0u64;
        tracing::info!(socket = %files.socket().display(), "listening");
        if let Some(addr) = tcp.as_ref().and_then(|l| l.local_addr().ok()) {
            tracing::info!(%addr, "also listening on TCP: connections must show the token in tcp.token");
        }
        let accept_tcp = || async {
            match &tcp {
                Some(l) => l.accept().await.map(|(s, _)| s),
                None => std::future::pending().await,
            }
        };

        let result = loop {
            let accepted = tokio::select! {
                biased;
                () = shared.drain.cancelled() => break Ok(()),
                () = &mut idle => break Ok(()),
                accepted = listener.accept() => accepted.map(|(s, _)| Accepted::Unix(s)),
                accepted = accept_tcp() => accepted.map(Accepted::Tcp),
            };
            match accepted {
                Ok(stream) => {
                    shared.touch();
                    next_id += 1;
                    match stream {
                        Accepted::Unix(s) => {
                            if peer_is_us(&s, next_id, &shared) {
                                admit(s, None, next_id, &shared, &slots, &tracker);
                            }
                        }
                        Accepted::Tcp(s) => {
                            let _ = s.set_nodelay(true);
                            admit(s, gate.clone(), next_id, &shared, &slots, &tracker);
                        }
                    }
                }
                Err(e) if is_transient(&e) => {
                    // Out of file descriptors or memory: retrying at once would spin.
                    tracing::warn!("cannot accept a connection: {e}; pausing 100 ms");
                    tokio::select! {
                        () = shared.drain.cancelled() => break Ok(()),
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
                Err(e) => {
                    tracing::error!("cannot accept connections: {e}; shutting down");
                    shared.drain.cancel();
                    break Err(ServeError::Accept(e));
                }
            }
        };

        drop(listener);
        drop(tcp);
        files.remove_socket();
        shared.drain.cancel();
        tracker.close();
        let open = shared.counters.connections.load(Relaxed);
        let in_flight = shared.counters.in_flight.load(Relaxed);
        tracing::info!(
            connections = open,
            in_flight,
            grace_ms = shared.limits.grace.as_millis() as u64,
            "shutting down"
        );
        if tokio::time::timeout(shared.limits.grace, tracker.wait())
            .await
            .is_err()
        {
            let left = shared.counters.in_flight.load(Relaxed);
            tracing::warn!(
                in_flight = left,
                "grace period over; answering the rest 'shutting down'"
            );
            shared.hard.cancel();
            // Each connection bounds its own final flush by `flush_timeout`.
            let bound = shared.limits.flush_timeout * 2 + Duration::from_millis(100);
            let _ = tokio::time::timeout(bound, tracker.wait()).await;
        }
        files.release();
        tracing::info!("stopped");
        result
    }
}

/// Errors from `accept` that a pause can cure.
fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::ECONNABORTED
                | libc::EINTR
        )
    )
}

/// A freshly accepted connection.
enum Accepted {
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// A stream the accept loop can serve, and refuse with one non-blocking write.
trait Peer: Send + 'static {
    /// What the connection task reads and writes.
    type Served: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn try_write_now(&self, bytes: &[u8]);
    fn pid(&self) -> Option<i32>;
    fn into_served(self) -> std::io::Result<Self::Served>;
}

impl Peer for UnixStream {
    /// Registered for readable events only (see `hearth-transport`): no wake-up each time
    /// the client reads an answer.
    type Served = QuietStream;
    fn try_write_now(&self, bytes: &[u8]) {
        let _ = self.try_write(bytes);
    }
    fn pid(&self) -> Option<i32> {
        self.peer_cred().ok().and_then(|c| c.pid())
    }
    fn into_served(self) -> std::io::Result<QuietStream> {
        QuietStream::new(self)
    }
}

impl Peer for TcpStream {
    type Served = TcpStream;
    fn try_write_now(&self, bytes: &[u8]) {
        let _ = self.try_write(bytes);
    }
    fn pid(&self) -> Option<i32> {
        None
    }
    fn into_served(self) -> std::io::Result<TcpStream> {
        Ok(self)
    }
}

/// Whether a Unix-socket peer runs as the daemon's user (SO_PEERCRED); logs a refusal.
fn peer_is_us(stream: &UnixStream, id: u64, shared: &Shared) -> bool {
    let counters = &shared.counters;
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == shared.uid => true,
        Ok(cred) => {
            counters.connections_refused.fetch_add(1, Relaxed);
            tracing::warn!(
                conn = id,
                peer_uid = cred.uid(),
                peer_pid = cred.pid().unwrap_or(0),
                "refused connection: peer is not the daemon's user"
            );
            false
        }
        Err(e) => {
            counters.connections_refused.fetch_add(1, Relaxed);
            tracing::warn!(
                conn = id,
                "refused connection: cannot read peer credentials: {e}"
            );
            false
        }
    }
}

/// Checks the connection limit, then serves the connection.
fn admit<S: Peer>(
    stream: S,
    gate: Option<Arc<TcpToken>>,
    id: u64,
    shared: &Arc<Shared>,
    slots: &Arc<Semaphore>,
    tracker: &TaskTracker,
) {
    let counters = &shared.counters;
    let Ok(slot) = slots.clone().try_acquire_owned() else {
        counters.connections_refused.fetch_add(1, Relaxed);
        counters.error(ErrorCode::SERVER_BUSY);
        let limit = shared.limits.max_connections;
        tracing::warn!(conn = id, limit, "refused connection: too many connections");
        let mut frame = BytesMut::new();
        let fatal = Fatal {
            code: ErrorCode::SERVER_BUSY.0,
            message: format!("too many connections (limit {limit}); try again later"),
            supported: hearth_protocol::SUPPORTED_VERSIONS.to_vec(),
        };
        // A fresh socket's send buffer always has room for this small frame, so one
        // non-blocking write suffices and the accept loop never waits on this peer.
        if Encoder::default()
            .notification(&mut frame, reserved::FATAL, &fatal)
            .is_ok()
        {
            stream.try_write_now(&frame);
        }
        return;
    };
    match stream.pid() {
        Some(pid) => tracing::info!(conn = id, peer_pid = pid, "connection opened"),
        None => tracing::info!(conn = id, "connection opened"),
    }
    let stream = match stream.into_served() {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(conn = id, "dropped connection: cannot register it: {e}");
            return;
        }
    };
    let shared = shared.clone();
    tracker.spawn(async move {
        let mut stream = stream;
        match gate {
            None => serve(stream, id, &shared).await,
            Some(token) => {
                let limits = &shared.limits;
                let first = tcp_token::check_first_frame(
                    &mut stream,
                    &token,
                    limits.max_depth,
                    limits.frame_timeout,
                );
                match first.await {
                    Ok(head) => serve(Replay::new(head, stream), id, &shared).await,
                    Err(why) => {
                        shared.counters.connections_refused.fetch_add(1, Relaxed);
                        shared.counters.error(ErrorCode::INVALID_REQUEST);
                        tracing::warn!(conn = id, "refused TCP connection: {why}");
                    }
                }
            }
        }
        drop(slot);
    });
}

/// Serves one connection to its end, keeping the connection counters and logging the end.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, id: u64, shared: &Arc<Shared>) {
    shared.counters.connections.fetch_add(1, Relaxed);
    shared.counters.connections_total.fetch_add(1, Relaxed);
    // Runs the disconnect hooks once however the connection ends, this future dropped
    // included.
    let _hooks = DisconnectHooks { shared, id };
    let (end, requests) = Connection::new(stream, shared.clone(), id).run().await;
    match &end {
        End::Fatal(_) | End::Io(_) | End::Stalled(_) => {
            tracing::warn!(conn = id, requests, "connection {end}")
        }
        _ => tracing::info!(conn = id, requests, "connection {end}"),
    }
    shared.counters.connections.fetch_sub(1, Relaxed);
    shared.touch();
}

/// Resolves once no connection has been open for `after` (never without it). A connection
/// accepted or ended restarts the count, so one that came and went during the wait still
/// counts as activity.
async fn idle_watch(shared: &Shared, after: Option<Duration>) {
    let Some(after) = after else {
        return std::future::pending().await;
    };
    loop {
        let seen = shared.activity.load(Relaxed);
        if shared.counters.connections.load(Relaxed) > 0 {
            shared.activity_changed.notified().await;
            continue;
        }
        tokio::select! {
            () = shared.activity_changed.notified() => continue,
            () = tokio::time::sleep(after) => {}
        }
        if shared.activity.load(Relaxed) == seen && shared.counters.connections.load(Relaxed) == 0 {
            tracing::info!(
                idle_secs = after.as_secs_f64(),
                "no connection for the idle-exit time: shutting down"
            );
            return;
        }
    }
}

/// Calls the router's disconnect hooks when dropped.
struct DisconnectHooks<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for DisconnectHooks<'_> {
    fn drop(&mut self) {
        self.shared.router.disconnected(self.id);
    }
}

/// The request-serving part of a daemon without a socket of its own: it serves whatever
/// byte streams it is handed, with the same router, limits and counters. Build one with
/// [`ServerBuilder::service`].
#[derive(Clone)]
pub struct Service {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    /// A handle to its counters and shutdown.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle::new(self.shared.clone())
    }

    /// Serves one connection over `stream` until the peer closes it, a protocol error ends
    /// it, or shutdown drains it. No peer check and no connection limit apply here.
    pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 32);
        let id = NEXT.fetch_add(1, Relaxed);
        serve(stream, id, &self.shared).await;
    }
}

/// A cheap, cloneable handle on a running server.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("shutting_down", &self.is_shutting_down())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Starts a graceful shutdown: stop accepting, let running requests finish within the
    /// grace period, answer the rest -32003, remove the socket. Returns at once.
    pub fn shutdown(&self) {
        self.shared.drain.cancel();
    }

    /// Shuts down without a grace period: running requests are answered -32003 now.
    pub fn shutdown_now(&self) {
        self.shared.drain.cancel();
        self.shared.hard.cancel();
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.drain.is_cancelled()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// A snapshot of the counters, as `$/stats` returns it.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// What `$/hello` returns.
    pub fn hello(&self) -> HelloResult {
        let s = &self.shared;
        HelloResult {
            // The version 1 shape; `$/hello` on a version 2 connection adds `supported`.
            protocol: hearth_protocol::Version::V1.number(),
            server: format!("{} {}", s.info.name, s.info.version),
            build: format!(
                "{} {}-{}",
                if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                },
                std::env::consts::ARCH,
                std::env::consts::OS
            ),
            methods: s.methods.clone(),
            limits: reserved::Limits {
                max_frame: s.limits.max_frame as u64,
                max_in_flight: s.limits.max_in_flight as u64,
                max_connections: s.limits.max_connections as u64,
                max_depth: s.limits.max_depth as u64,
            },
            supported: Vec::new(),
            build_id: None,
        }
    }
}
