//! [`Client`]: connecting (socket, then the `$/hello` handshake in protocol version 2, falling
//! back to a fresh connection in version 1 when the daemon refuses it) and the life of one call
//! — encode, take an in-flight permit, register, queue, wait, and cancel at the daemon if the
//! caller stops waiting. Calls with version 2 options and streamed calls are built in
//! `call.rs`; moving bytes is left to the tasks in `io.rs`, serving the daemon's requests to
//! `serve.rs`, and the rules for a dying connection to `connection.rs`.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hearth_protocol::reserved::{self, HelloResult};
use hearth_protocol::{
    DEFAULT_MAX_DEPTH, DecodeError, EncodeError, Encoder, ErrorCode, ErrorObject, RequestId,
    RequestOptions, Version,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::Semaphore;

use crate::call::CallBuilder;
use crate::config::ClientConfig;
use crate::connection::{Connection, Peer};
use crate::error::{CloseReason, Error, ProtocolError};
use crate::notifications::Notifications;
use crate::pending::{Abandon, Company};

/// One connection to a hearth daemon over its Unix socket (or, for comparisons, loopback TCP).
///
/// Cheap to clone (the clones share the connection) and usable from many tasks at once: calls
/// are multiplexed over the one socket and answered in whatever order the daemon finishes
/// them. The client keeps fewer requests at the daemon than its announced `max_in_flight`
/// (one slot stays free, so cancels are always read); further calls wait their turn.
///
/// Dropping a call's future before it resolves (or letting it time out) cancels the request
/// at the daemon.
///
/// A closed client stays closed (for reconnection, wrap it: [`Reconnecting`](crate::Reconnecting)). Once the connection is gone
/// (the daemon exited, restarted, or refused us), every call fails with [`Error::Closed`] and
/// the caller makes a new client with [`Client::connect`]. The connection closes when the
/// last clone is dropped.
///
/// Needs a Tokio runtime with I/O enabled (and time, for timeouts).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    owner: Owner,
    hello: HelloResult,
    version: Version,
    timeout: Option<Duration>,
}

/// A [`Client`] handle that does not keep the connection open (from [`Client::downgrade`]):
/// for handlers given to [`Client::serve`], which the connection itself holds.
#[derive(Clone, Debug)]
pub struct WeakClient {
    inner: std::sync::Weak<Inner>,
}

impl WeakClient {
    /// The client, while some [`Client`] handle still exists.
    pub fn upgrade(&self) -> Option<Client> {
        self.inner.upgrade().map(|inner| Client { inner })
    }
}

/// Closes the connection when dropped: when the last [`Client`] goes, or when `connect` fails
/// or is abandoned half-way.
struct Owner(Arc<Connection>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.close(CloseReason::Dropped);
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.conn().peer)
            .field("server", &self.inner.hello.server)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Client {
    /// Connects to the daemon at `path` with the default configuration.
    pub async fn connect(path: impl AsRef<Path>) -> Result<Client, Error> {
        Self::connect_with(path, ClientConfig::default()).await
    }

    /// Connects to the daemon at the default socket path (see
    /// [`default_socket_path`](crate::default_socket_path)).
    pub async fn connect_default() -> Result<Client, Error> {
        Self::connect(crate::default_socket_path()).await
    }

    /// Connects to the daemon at `path` and does the `$/hello` handshake, which waits as long
    /// as `config.timeout` allows (forever without one).
    ///
    /// Fails with [`Error::Connect`] when the socket cannot be reached, and with
    /// [`Error::VersionMismatch`] when the daemon speaks another protocol version.
    pub async fn connect_with(
        path: impl AsRef<Path>,
        config: ClientConfig,
    ) -> Result<Client, Error> {
        let path = path.as_ref().to_path_buf();
        let mut version = Version::LATEST;
        loop {
            let stream = UnixStream::connect(&path)
                .await
                .map_err(|source| crate::error::connect_error(&path, source))?;
            let (rd, wr) = hearth_transport::split(stream).map_err(|source| Error::Connect {
                path: path.clone(),
                source,
            })?;
            match Self::start(Peer::Unix(path.clone()), rd, wr, &config, version).await? {
                Started::Ready(client) => return Ok(client),
                Started::Fallback => version = Version::V1,
            }
        }
    }

    /// Connects to a daemon listening on TCP at `addr` (`hearthd --listen tcp:127.0.0.1:PORT`)
    /// with the default configuration.
    pub async fn connect_tcp(addr: SocketAddr) -> Result<Client, Error> {
        Self::connect_tcp_with(addr, ClientConfig::default()).await
    }

    /// Connects to a daemon listening on TCP at `addr`, with `TCP_NODELAY` set so that small
    /// requests leave at once, and does the same handshake as
    /// [`connect_with`](Self::connect_with); the client behaves the same from then on.
    ///
    /// TCP is for comparisons and tools that cannot use a Unix socket. It has no owner check,
    /// so the daemon asks for the token in `tcp.token` beside its socket: set
    /// [`ClientConfig::tcp_token`] (see [`read_tcp_token`](crate::read_tcp_token)), or the
    /// daemon answers `$/fatal` and closes. Fails with [`Error::ConnectTcp`] when
    /// the address cannot be reached, and with [`Error::VersionMismatch`] when the daemon
    /// speaks another protocol version.
    pub async fn connect_tcp_with(addr: SocketAddr, config: ClientConfig) -> Result<Client, Error> {
        let mut version = Version::LATEST;
        loop {
            let stream = tcp_stream(addr)
                .await
                .map_err(|source| Error::ConnectTcp { addr, source })?;
            let (rd, wr) = stream.into_split();
            match Self::start(Peer::Tcp(addr), rd, wr, &config, version).await? {
                Started::Ready(client) => return Ok(client),
                Started::Fallback => version = Version::V1,
            }
        }
    }

    /// Starts the connection's tasks over a connected stream's halves and shakes hands in
    /// `version`. [`Started::Fallback`] when a version 2 hello was refused by a daemon that
    /// speaks version 1: the caller connects again (a connection's version is fixed by its
    /// first message, so the refused one cannot be reused).
    async fn start<R, W>(
        peer: Peer,
        rd: R,
        wr: W,
        config: &ClientConfig,
        version: Version,
    ) -> Result<Started, Error>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (conn, notifications) =
            Connection::new(peer, version, config.max_frame, config.notification_buffer);
        let conn = Arc::new(conn);
        crate::io::spawn(conn.clone(), rd, wr, notifications, config.max_frame);
        // From here on, returning early (or being dropped) closes the connection.
        let owner = Owner(conn.clone());

        let Some(hello) = handshake(&conn, config, version).await? else {
            return Ok(Started::Fallback);
        };
        let daemon_max = usize::try_from(hello.limits.max_frame).unwrap_or(usize::MAX);
        if daemon_max > 0 {
            conn.max_send
                .store(config.max_frame.min(daemon_max), Ordering::Relaxed);
        }
        // The handshake ran with one place in flight; widen to what the daemon allows.
        conn.pending
            .set_limit(request_limit(hello.limits.max_in_flight));

        Ok(Started::Ready(Client {
            inner: Arc::new(Inner {
                owner,
                hello,
                version,
                timeout: config.timeout,
            }),
        }))
    }

    fn conn(&self) -> &Connection {
        &self.inner.owner.0
    }

    pub(crate) fn conn_arc(&self) -> &Arc<Connection> {
        &self.inner.owner.0
    }

    /// A handle that does not keep the connection open; see [`WeakClient`].
    pub fn downgrade(&self) -> WeakClient {
        WeakClient {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// The protocol version this connection speaks: [`Version::V2`] with a daemon that speaks
    /// it, [`Version::V1`] with an older one. Request options, streams and daemon requests
    /// need version 2.
    pub fn protocol_version(&self) -> Version {
        self.inner.version
    }

    /// The default timeout from [`ClientConfig::timeout`].
    pub(crate) fn default_timeout(&self) -> Option<Duration> {
        self.inner.timeout
    }

    /// Starts a call of `method` with `params`, to be given options (a deadline, a supersede
    /// key) and then sent with [`CallBuilder::send`] / [`CallBuilder::send_raw`], or streamed
    /// with [`CallBuilder::stream`]. The params are serialized here, at once; if that fails,
    /// the error comes from sending.
    ///
    /// ```no_run
    /// # async fn demo(client: &hearth_client::Client) -> Result<(), hearth_client::Error> {
    /// use std::time::Duration;
    /// let items: Vec<String> = client
    ///     .request("complete", &("file.rs", 120))
    ///     .deadline(Duration::from_millis(200))
    ///     .supersede("complete")
    ///     .send()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn request<'a, P: Serialize + ?Sized>(
        &'a self,
        method: &'a str,
        params: &P,
    ) -> CallBuilder<'a> {
        CallBuilder::new(self, method, params)
    }

    /// Serves `method` for the daemon (protocol version 2): each daemon request for it runs
    /// `handler` with the raw MessagePack params, in a task of its own, and the daemon gets
    /// the handler's answer — the raw MessagePack result, or the error object.
    ///
    /// - Handlers run concurrently, at most 64 at once (more wait for a place); the reader is
    ///   never held up by them.
    /// - Every daemon request is answered exactly once: methods nobody serves with -32601, a
    ///   handler that panics with -32603.
    /// - A cancel from the daemon aborts the handler (the future is dropped at its next
    ///   await), and the request is then not answered: the daemon has stopped waiting.
    /// - Register a method before making the calls that lead the daemon to ask for it (hearthd
    ///   asks while working on one of our requests): a request for a method not registered yet
    ///   is answered -32601.
    /// - Registering a method again replaces its handler. On a version 1 connection the daemon
    ///   never asks, and handlers are never called.
    /// - A handler that needs the client should hold a [`WeakClient`] ([`Client::downgrade`]):
    ///   the connection keeps its handlers, so a handler holding a `Client` would keep the
    ///   connection open after every other handle is gone.
    pub fn serve<F, Fut>(&self, method: &str, handler: F)
    where
        F: Fn(Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, ErrorObject>> + Send + 'static,
    {
        self.conn()
            .serve
            .insert(method, crate::serve::handler(handler));
    }

    /// [`serve`](Self::serve) with typed params and result: the params are deserialized into
    /// `P` (-32602 if they do not fit) and the result serialized as hearth does.
    pub fn serve_typed<P, R, F, Fut>(&self, method: &str, handler: F)
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ErrorObject>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.serve(method, move |raw: Bytes| {
            let handler = handler.clone();
            async move {
                let params: P = hearth_protocol::from_msgpack(&raw).map_err(|e| {
                    ErrorObject::new(ErrorCode::INVALID_PARAMS, format!("invalid params: {e}"))
                })?;
                let result = handler(params).await?;
                hearth_protocol::to_msgpack(&result)
                    .map(Bytes::from)
                    .map_err(|e| {
                        ErrorObject::new(
                            ErrorCode::INTERNAL_ERROR,
                            format!("cannot serialize the result: {e}"),
                        )
                    })
            }
        });
    }

    /// Partial results dropped because a [`CallStream`](crate::CallStream)'s buffer was full
    /// (its consumer fell behind); see [`CallStream`](crate::CallStream).
    pub fn dropped_partials(&self) -> u64 {
        self.conn().dropped_partials.load(Ordering::Relaxed)
    }

    /// What the daemon said in the `$/hello` done on connect: its name, version, methods and
    /// limits.
    pub fn hello(&self) -> &HelloResult {
        &self.inner.hello
    }

    /// The socket path this client connected to; `None` for a client connected over TCP.
    pub fn socket_path(&self) -> Option<&Path> {
        match &self.conn().peer {
            Peer::Unix(path) => Some(path),
            Peer::Tcp(_) => None,
        }
    }

    /// The TCP address this client connected to; `None` for a client on a Unix socket.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match &self.conn().peer {
            Peer::Unix(_) => None,
            Peer::Tcp(addr) => Some(*addr),
        }
    }

    /// Calls `method` with `params` and deserializes the result into `R`, with the configured
    /// default timeout (if any).
    ///
    /// Errors: [`Error::Remote`] if the daemon answered with an error, [`Error::Encode`] /
    /// [`Error::Decode`] if params or result do not convert, [`Error::Timeout`], or a
    /// connection error ([`Error::is_connection_lost`]).
    pub async fn call<P, R>(&self, method: &str, params: &P) -> Result<R, Error>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.typed_call(method, params, self.inner.timeout).await
    }

    /// Like [`call`](Self::call), with its own timeout instead of the default one. When it
    /// expires the request is cancelled at the daemon and the call fails with
    /// [`Error::Timeout`].
    pub async fn call_timeout<P, R>(
        &self,
        method: &str,
        params: &P,
        timeout: Duration,
    ) -> Result<R, Error>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.typed_call(method, params, Some(timeout)).await
    }

    async fn typed_call<P, R>(
        &self,
        method: &str,
        params: &P,
        timeout: Option<Duration>,
    ) -> Result<R, Error>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let conn = self.conn();
        let id = conn.next_id();
        let frame = match timeout {
            // In version 2 the timeout also goes to the daemon, which then stops working on
            // the request when it expires, whether or not our cancel reaches it in time.
            Some(limit) if conn.version() >= Version::V2 => {
                let options = RequestOptions {
                    deadline_ms: Some(deadline_ms(limit)),
                    ..RequestOptions::default()
                };
                encode(conn, |enc, buf| {
                    enc.request_with(buf, id, method, params, &options)
                })?
            }
            _ => encode(conn, |enc, buf| enc.request(buf, id, method, params))?,
        };
        let raw = match call_within(conn, id, Outgoing::Encoded(frame), timeout).await {
            Ok(raw) => raw,
            // The daemon's deadline is our timeout, counted from a moment later: when its
            // -32002 arrives first (our timer was late on a busy machine), the call still
            // failed by running past `timeout`, and says so the same way.
            Err(e) if e.code() == Some(ErrorCode::DEADLINE_EXCEEDED) => {
                return Err(timeout.map_or(e, Error::Timeout));
            }
            Err(e) => return Err(e),
        };
        hearth_protocol::from_msgpack(&raw).map_err(Error::Decode)
    }

    /// Calls `method` with params that are already MessagePack (exactly one value) and returns
    /// the raw MessagePack result, with the default timeout (if any).
    pub async fn call_raw(&self, method: &str, params_msgpack: &[u8]) -> Result<Bytes, Error> {
        let conn = self.conn();
        check_one_value(params_msgpack)?;
        let id = conn.next_id();
        let request = Outgoing::Raw {
            method,
            params: params_msgpack,
            options: None,
        };
        call_within(conn, id, request, self.inner.timeout).await
    }

    /// Sends a notification: a one-way message the daemon does not answer. Resolves once it
    /// is queued for sending (waiting only while the send buffer is full); it is delivered
    /// unless the connection breaks first.
    pub async fn notify<P>(&self, method: &str, params: &P) -> Result<(), Error>
    where
        P: Serialize + ?Sized,
    {
        let conn = self.conn();
        if conn.is_closed() {
            return Err(conn.closed_error());
        }
        let frame = encode(conn, |enc, buf| enc.notification(buf, method, params))?;
        conn.outbound
            .push(&frame)
            .await
            .map_err(|_| conn.closed_error())
    }

    /// The notifications the daemon sends on this connection. Only the first caller gets
    /// them (`Some`); later calls, from any clone, return `None`.
    ///
    /// Notifications are buffered from the moment of connecting, whether or not this was
    /// called yet; see [`Notifications`] for what happens when the buffer is full.
    pub fn notifications(&self) -> Option<Notifications> {
        self.conn().take_notifications()
    }

    /// How many notifications were dropped because the buffer was full.
    pub fn dropped_notifications(&self) -> u64 {
        self.conn().dropped_notifications.load(Ordering::Relaxed)
    }

    /// Whether the connection is gone. A closed client stays closed.
    pub fn is_closed(&self) -> bool {
        self.conn().is_closed()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.conn().pending.close_reason()
    }

    /// Resolves once the connection is gone (immediately if it already is).
    pub async fn closed(&self) {
        let mut closed = self.conn().watch_closed();
        // An error means the sender is gone, which also means closed.
        let _ = closed.wait_for(Option::is_some).await;
    }
}

/// Connects to `addr` with Nagle's algorithm off: requests are small and latency-bound, and
/// the writer already batches whatever is queued into one write.
async fn tcp_stream(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// How many requests this client keeps at the daemon at once, given its `max_in_flight`: one
/// less, and at least one.
///
/// A daemon running `max_in_flight` requests for a connection stops reading it — cancels
/// included — until one finishes. Keeping one slot free means the daemon always reads us, so
/// a cancel for a long request is seen at once instead of after that request ends. (A daemon
/// that allows one request at a time cannot be given that slack; a cancel then waits.)
fn request_limit(max_in_flight: u64) -> usize {
    usize::try_from(max_in_flight)
        .unwrap_or(usize::MAX)
        .saturating_sub(1)
        .clamp(1, Semaphore::MAX_PERMITS)
}

/// Encodes one frame with typed params into this thread's scratch buffer. Done before taking
/// the queue's lock, so no `Serialize` impl runs under it.
pub(crate) fn encode(
    conn: &Connection,
    write: impl FnOnce(&Encoder, &mut BytesMut) -> Result<(), EncodeError>,
) -> Result<Scratch, Error> {
    let encoder = conn.encoder();
    let mut frame = Scratch::take();
    write(&encoder, &mut frame.0).map_err(Error::Encode)?;
    Ok(frame)
}

thread_local! {
    /// A buffer to serialize typed frames into, kept per thread so that a call does not
    /// allocate one (see [`Scratch`]).
    static SCRATCH: Cell<BytesMut> = Cell::new(BytesMut::new());
}

/// Scratch buffers bigger than this are freed after use rather than kept.
const SCRATCH_KEEP: usize = 64 * 1024;

/// This thread's scratch buffer, on loan until dropped. A frame is encoded into it, copied
/// into the outbound queue, and the buffer goes back for the next call. Two calls that
/// overlap on one thread simply use two buffers (the second finds none and starts empty).
pub(crate) struct Scratch(pub(crate) BytesMut);

impl Scratch {
    pub(crate) fn take() -> Self {
        Self(SCRATCH.try_with(Cell::take).unwrap_or_default())
    }
}

impl Deref for Scratch {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        if buf.capacity() <= SCRATCH_KEEP {
            buf.clear();
            // Fails only while the thread is exiting; the buffer is then just freed.
            let _ = SCRATCH.try_with(|scratch| scratch.set(buf));
        }
    }
}

/// What a call sends: a frame with typed params, already encoded, or raw params that are
/// encoded straight into the outbound queue (they are only copied, so that is safe under its
/// lock).
pub(crate) enum Outgoing<'a> {
    Encoded(Scratch),
    Raw {
        method: &'a str,
        params: &'a [u8],
        /// Version 2 options; `None` for a plain request.
        options: Option<&'a RequestOptions>,
    },
}

/// A duration as whole milliseconds for `deadline_ms`, rounded up (a deadline is never made
/// shorter than asked), saturating at `u64::MAX`.
pub(crate) fn deadline_ms(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// Raw params must be exactly one MessagePack value, or the daemon would read a malformed
/// envelope and the connection would be out of step.
pub(crate) fn check_one_value(params: &[u8]) -> Result<(), Error> {
    // Most raw params (the load tester's, an editor's buffer) are one binary or string: their
    // first bytes say how long they are, which is all there is to check. Anything else, and
    // anything that does not fit, is walked (and its error reported) below.
    if flat_value_len(params) == Some(params.len() as u64) {
        return Ok(());
    }
    check_one_value_walked(params)
}

/// The length of the value at the start of `params` when it is a scalar, a string or a
/// binary — values with no nested values, whose head gives their length; `None` for
/// anything else (containers, extensions, reserved markers) and for a truncated head.
fn flat_value_len(params: &[u8]) -> Option<u64> {
    let &marker = params.first()?;
    let length = |width: usize| -> Option<u64> {
        let bytes = params.get(1..1 + width)?;
        let n = bytes.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b));
        Some(1 + width as u64 + n)
    };
    match marker {
        // Positive and negative fixints, nil, false, true.
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Some(1),
        // fixstr
        0xa0..=0xbf => Some(1 + u64::from(marker & 0x1f)),
        // bin 8 / str 8, bin 16 / str 16, bin 32 / str 32
        0xc4 | 0xd9 => length(1),
        0xc5 | 0xda => length(2),
        0xc6 | 0xdb => length(4),
        // float 32, float 64, uint 8..64, int 8..64
        0xca => Some(5),
        0xcb => Some(9),
        0xcc | 0xd0 => Some(2),
        0xcd | 0xd1 => Some(3),
        0xce | 0xd2 => Some(5),
        0xcf | 0xd3 => Some(9),
        _ => None,
    }
}

/// [`check_one_value`] by walking the whole value.
fn check_one_value_walked(params: &[u8]) -> Result<(), Error> {
    let invalid = |why: String| {
        Error::Encode(EncodeError::Serialize(rmp_serde::encode::Error::Syntax(
            format!("raw params are not one MessagePack value: {why}"),
        )))
    };
    // The envelope counts as one level of nesting.
    let end = hearth_protocol::value::skip(params, DEFAULT_MAX_DEPTH - 1)
        .map_err(|e| invalid(e.to_string()))?;
    if end != params.len() {
        return Err(invalid(format!(
            "{} bytes follow the value",
            params.len() - end
        )));
    }
    Ok(())
}

/// [`roundtrip`] within `limit`, if there is one.
///
/// Each arm makes its own `roundtrip` future rather than taking one as an argument: a future
/// passed in and then awaited would be stored twice in this one, and every call's future is
/// moved at least once (into a task or a `FuturesUnordered`), so its size is paid per call.
pub(crate) async fn call_within(
    conn: &Connection,
    id: RequestId,
    request: Outgoing<'_>,
    limit: Option<Duration>,
) -> Result<Bytes, Error> {
    match limit {
        None => roundtrip(conn, id, request).await,
        // On expiry the call future is dropped, and its guard cancels the request. Boxed:
        // the timer is large, and calls without a timeout should not carry it.
        Some(limit) => Box::pin(tokio::time::timeout(limit, roundtrip(conn, id, request)))
            .await
            .unwrap_or(Err(Error::Timeout(limit))),
    }
}

/// Sends one request and waits for its answer.
async fn roundtrip(
    conn: &Connection,
    id: RequestId,
    request: Outgoing<'_>,
) -> Result<Bytes, Error> {
    // Takes an in-flight place (waiting while all are taken; failing with the reason once the
    // connection is closed) and a slot for the answer.
    // From here until the daemon answers, the slot holds the place: the reader frees it when
    // the answer arrives, or the guard below if the request is never sent.
    // The slot holds this task's waker from the start: the waker of this very poll (see
    // `Pending::insert`).
    let company = conn
        .pending
        .insert(id)
        .await
        .map_err(|reason| Error::Closed { reason })?;
    let alone = company != Company::Others;
    let mut guard = CallGuard {
        conn,
        id,
        sent: false,
        answered: false,
    };
    let encoder = conn.encoder();
    let mut write = |buf: &mut BytesMut| match &request {
        Outgoing::Encoded(frame) => {
            buf.extend_from_slice(frame);
            Ok(())
        }
        Outgoing::Raw {
            method,
            params,
            options: None,
        } => encoder.request_raw(buf, id, method, params),
        Outgoing::Raw {
            method,
            params,
            options: Some(options),
        } => encoder.request_raw_with(buf, id, method, params, options),
    };
    // Most frames are queued at once, in the poll that inserted the slot; only a full queue
    // makes the call wait (and then it may be polled with another waker afterwards). A call
    // alone in flight writes its frame itself when the writer task is idle.
    let (queued, same_poll) = match conn.outbound.try_push(&mut write, alone) {
        Some(queued) => (queued, true),
        None => (Box::pin(conn.outbound.push_when_room(write)).await, false),
    };
    // A typed call's scratch buffer goes back for the next call now, not after the answer.
    drop(request);
    // On an error, nothing was queued: the guard takes the slot out and frees the place.
    queued
        .map_err(|_| conn.closed_error())?
        .map_err(Error::Encode)?;
    guard.sent = true;
    // Still in the poll whose waker the slot holds, a call that is not alone has nothing to
    // do: the answer, if it came since `insert`, has woken that waker, so this task will be
    // polled again. That saves taking the table's lock and looking the slot up once per call.
    // A call in sequential use (alone in flight, as was the call before it: the editor's
    // keystroke) reads its answer itself, in this poll, if the reader is free: without the
    // reader task's wake-up, its poll, and the runtime's look at its reactor before this task
    // is polled again. Only then: a call that is alone because a batch of answers has just
    // freed every place would hold its thread for the poll (up to `hearth_transport::SPIN`)
    // while the tasks those answers woke wait to send their next calls, and pipelining
    // would collapse into one call at a time (`hearth bench` 4 x 64 went from 2.2 M to
    // 0.17 M calls/s when every lone call did).
    // That read goes around the runtime's accounting of socket reads (the transport polls the
    // socket itself), so it takes a unit of the task's budget here: a loop of lone calls, each
    // answered in its first poll, still yields to the other tasks on its thread now and then.
    let mut registered = same_poll;
    let reply = std::future::poll_fn(|cx| {
        if std::mem::take(&mut registered) {
            if company != Company::Sequential {
                return Poll::Pending;
            }
            // Out of budget: this task is woken again once the others had their turn, and
            // the reader task reads the answer meanwhile.
            let coop = ready!(tokio::task::coop::poll_proceed(cx));
            conn.read_now();
            let answer = conn.pending.poll_answer(id, cx);
            if answer.is_ready() {
                coop.made_progress();
            }
            return answer;
        }
        conn.pending.poll_answer(id, cx)
    })
    .await;
    guard.answered = true;
    reply
}

/// Cleans up after a call whose future is dropped before the answer arrived — because the
/// caller lost interest, or a timeout fired.
///
/// If the request was already queued, a cancel `[1, 3, id]` is queued behind it. This races
/// with the answer: the daemon may have finished the request and its response may be on the
/// wire, or already read, when the cancel goes out. Both orders are harmless. The daemon
/// ignores a cancel for an id it no longer runs, and the reader drops a response whose id is
/// no longer waited for. Until some answer for the id arrives (the result, or -32800 for the
/// cancel), the slot stays in the pending table, marked abandoned, holding its in-flight
/// place: the daemon may still be running the request, and it still counts against the
/// daemon's `max_in_flight`.
struct CallGuard<'a> {
    conn: &'a Connection,
    id: RequestId,
    sent: bool,
    answered: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        abandon(self.conn, self.id, self.sent);
    }
}

/// A call's caller stopped waiting: takes its slot out of the pending table, or, when the
/// request is at the daemon, marks it abandoned and queues a cancel (see [`CallGuard`]).
pub(crate) fn abandon(conn: &Connection, id: RequestId, sent: bool) {
    match conn.pending.abandon(id, sent) {
        Abandon::CancelNeeded => {
            let encoder = conn.encoder();
            // A closed queue means the connection is gone, and the request with it.
            let _ = conn.outbound.push_now(|buf| {
                // A cancel is a handful of bytes; it cannot exceed any frame limit.
                let _ = encoder.cancel(buf, id);
            });
            tracing::trace!(id = id.get(), "call dropped; cancel queued");
        }
        Abandon::Nothing => {}
    }
}

/// What one connection attempt ended with.
enum Started {
    Ready(Client),
    /// The daemon refused version 2 and speaks version 1: connect again in version 1.
    Fallback,
}

/// `$/hello` in `version`, and the version check; `None` when a version 2 hello was refused
/// by a daemon that speaks version 1 (PROTOCOL.md §15.2: `$/fatal` -32004 whose `supported`
/// names 1, in a version 1 envelope).
async fn handshake(
    conn: &Connection,
    config: &ClientConfig,
    version: Version,
) -> Result<Option<HelloResult>, Error> {
    // `HelloParams` plus the TCP token (PROTOCOL.md §3.4) when one is configured.
    #[derive(Serialize)]
    struct Hello<'a> {
        client: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<&'a str>,
    }
    let params = Hello {
        client: &config.client_name,
        token: config.tcp_token.as_deref(),
    };
    let id = conn.next_id();
    let frame = encode(conn, |enc, buf| {
        enc.request(buf, id, reserved::HELLO, &params)
    })?;
    let raw = match call_within(conn, id, Outgoing::Encoded(frame), config.timeout).await {
        Ok(raw) => raw,
        Err(e) => {
            if version == Version::V2 && refused_v2(&e) {
                tracing::debug!(peer = %conn.peer, "the daemon speaks version 1 only; reconnecting");
                return Ok(None);
            }
            return Err(version_mismatch(&e).unwrap_or(e));
        }
    };
    // Look at the version before anything else: another version may shape the rest
    // differently.
    #[derive(Deserialize)]
    struct Versions {
        protocol: u32,
        #[serde(default)]
        supported: Vec<u32>,
    }
    let said: Versions = hearth_protocol::from_msgpack(&raw).map_err(Error::Decode)?;
    if said.protocol != version.number() {
        let daemon = if said.supported.is_empty() {
            vec![said.protocol]
        } else {
            said.supported
        };
        return Err(Error::VersionMismatch {
            client: SPOKEN.to_vec(),
            daemon,
        });
    }
    hearth_protocol::from_msgpack(&raw)
        .map_err(Error::Decode)
        .map(Some)
}

/// The versions this client speaks, oldest first.
const SPOKEN: &[u32] = &[Version::V1.number(), Version::V2.number()];

/// Whether a failed version 2 hello means "this daemon speaks version 1": a `$/fatal` -32004
/// naming version 1, or an answer in a version 1 envelope. (A daemon that lists 2 among its
/// versions and still refuses a version 2 hello does not speak it either — hearthd before
/// version 2 listed the protocol crate's versions — so the code decides, not the list.)
fn refused_v2(e: &Error) -> bool {
    match e {
        Error::Closed {
            reason: CloseReason::Fatal {
                code, supported, ..
            },
        } => {
            supported.contains(&Version::V1.number())
                && (*code == ErrorCode::UNSUPPORTED_VERSION
                    || !supported.contains(&Version::V2.number()))
        }
        Error::Protocol(ProtocolError::Decode(DecodeError::UnsupportedVersion { found })) => {
            *found == u64::from(Version::V1.number())
        }
        _ => false,
    }
}

/// Whether a failed handshake was the daemon refusing every protocol version we speak: a
/// `$/fatal` whose `supported` list has none of them, or a reply in an envelope of another
/// version.
fn version_mismatch(e: &Error) -> Option<Error> {
    let daemon = match e {
        Error::Closed {
            reason: CloseReason::Fatal {
                code, supported, ..
            },
        } if !supported.iter().any(|v| SPOKEN.contains(v))
            && (!supported.is_empty() || *code == ErrorCode::UNSUPPORTED_VERSION) =>
        {
            supported.clone()
        }
        Error::Protocol(ProtocolError::Decode(DecodeError::UnsupportedVersion { found })) => {
            vec![u32::try_from(*found).unwrap_or(u32::MAX)]
        }
        _ => return None,
    };
    Some(Error::VersionMismatch {
        client: SPOKEN.to_vec(),
        daemon,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Client>();
        send_sync::<Error>();
        send::<Notifications>();
        // A call's future can be spawned.
        fn spawnable<F: Future + Send>(_: F) {}
        let _ = |client: Client| spawnable(async move { client.call::<_, u8>("m", &1u8).await });
    }

    /// Every call's future is moved at least once (into a task, a `FuturesUnordered`, a
    /// `join_all`), so its size is paid on every call. The waiting paths (no permit, a full
    /// queue) and the timer are boxed to keep it small; this catches a change that puts one of
    /// them back inline (a few hundred bytes each).
    #[test]
    fn a_call_future_stays_small() {
        fn future_size<'a, F>(_: impl FnOnce(&'a Client, &'a [u8]) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        let raw = future_size(|c, p| c.call_raw("echo", p));
        let typed = future_size(|c, p| c.call::<_, u8>("echo", p));
        assert!(raw <= 512, "call_raw's future is {raw} bytes");
        assert!(typed <= 576, "call's future is {typed} bytes");
    }

    #[tokio::test]
    async fn tcp_connections_have_nagle_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback listener");
        let addr = listener.local_addr().expect("its address");
        let stream = tcp_stream(addr).await.expect("connecting");
        assert!(stream.nodelay().expect("reading TCP_NODELAY"));
    }

    #[test]
    fn one_daemon_slot_stays_free_for_cancels() {
        assert_eq!(request_limit(1024), 1023);
        assert_eq!(request_limit(2), 1);
        assert_eq!(request_limit(1), 1);
        assert_eq!(request_limit(0), 1);
        assert_eq!(request_limit(u64::MAX), Semaphore::MAX_PERMITS);
    }

    #[test]
    fn raw_params_must_be_exactly_one_value() {
        assert!(check_one_value(&[0xc0]).is_ok());
        assert!(check_one_value(&[0x92, 0x01, 0x02]).is_ok());
        assert!(matches!(check_one_value(&[]), Err(Error::Encode(_))));
        assert!(matches!(
            check_one_value(&[0x92, 0x01]),
            Err(Error::Encode(_))
        ));
        assert!(matches!(
            check_one_value(&[0xc0, 0xc0]),
            Err(Error::Encode(_))
        ));
    }

    /// The shortcut for scalars, strings and binaries gives the answer the full walk gives,
    /// for every value kind, cut short, exact, and with bytes after it.
    #[test]
    fn the_one_value_shortcut_agrees_with_the_walk() {
        let mut values: Vec<Vec<u8>> = (0..=255u8).map(|m| vec![m]).collect();
        for len in [0usize, 1, 31, 32, 255, 256, 65_535, 65_536] {
            values.push(hearth_protocol::to_msgpack(&"x".repeat(len)).expect("a str"));
            let mut bin = match u32::try_from(len).expect("small") {
                n @ 0..=0xff => vec![0xc4, n as u8],
                n @ 0..=0xffff => [&[0xc5][..], &(n as u16).to_be_bytes()].concat(),
                n => [&[0xc6][..], &n.to_be_bytes()].concat(),
            };
            bin.resize(bin.len() + len, 7);
            values.push(bin);
        }
        for v in [0u64, 127, 128, 255, 256, 65_535, 65_536, u64::MAX] {
            values.push(hearth_protocol::to_msgpack(&v).expect("a uint"));
        }
        for v in [-1i64, -32, -33, -128, -129, -32_768, -32_769, i64::MIN] {
            values.push(hearth_protocol::to_msgpack(&v).expect("an int"));
        }
        values.push(hearth_protocol::to_msgpack(&1.5f32).expect("a float 32"));
        values.push(hearth_protocol::to_msgpack(&1.5f64).expect("a float 64"));
        values.push(hearth_protocol::to_msgpack(&(1, "a")).expect("an array"));
        values.push(vec![0xd4, 1, 2]);
        values.push(vec![0xc7, 1, 1, 2]);
        let mut inputs = Vec::new();
        for v in values {
            for cut in 0..v.len().min(12) {
                inputs.push(v[..cut].to_vec());
            }
            inputs.push(v[..v.len() - 1].to_vec());
            let mut longer = v.clone();
            longer.push(0xc0);
            inputs.push(longer);
            inputs.push(v);
        }
        for input in inputs {
            assert_eq!(
                check_one_value(&input).is_ok(),
                check_one_value_walked(&input).is_ok(),
                "{:x?}",
                &input[..input.len().min(12)]
            );
        }
    }

    #[test]
    fn a_v1_daemon_refusing_v2_means_fall_back() {
        let fatal = |code, supported: Vec<u32>| Error::Closed {
            reason: CloseReason::Fatal {
                code,
                message: "m".into(),
                supported,
            },
        };
        assert!(refused_v2(&fatal(ErrorCode::UNSUPPORTED_VERSION, vec![1])));
        // hearthd before version 2 listed the protocol crate's versions, 2 included.
        assert!(refused_v2(&fatal(
            ErrorCode::UNSUPPORTED_VERSION,
            vec![1, 2]
        )));
        assert!(refused_v2(&fatal(ErrorCode::INVALID_REQUEST, vec![1])));
        assert!(!refused_v2(&fatal(ErrorCode::SERVER_BUSY, vec![1, 2])));
        assert!(!refused_v2(&fatal(ErrorCode::UNSUPPORTED_VERSION, vec![3])));
        assert!(!refused_v2(&fatal(ErrorCode::UNSUPPORTED_VERSION, vec![])));
        let v1_envelope = Error::Protocol(ProtocolError::Decode(DecodeError::UnsupportedVersion {
            found: 1,
        }));
        assert!(refused_v2(&v1_envelope));
    }

    #[test]
    fn deadlines_round_up_to_whole_milliseconds() {
        assert_eq!(deadline_ms(Duration::ZERO), 0);
        assert_eq!(deadline_ms(Duration::from_nanos(1)), 1);
        assert_eq!(deadline_ms(Duration::from_millis(20)), 20);
        assert_eq!(deadline_ms(Duration::from_micros(20_001)), 21);
        assert_eq!(deadline_ms(Duration::MAX), u64::MAX);
    }

    #[test]
    fn a_fatal_without_our_version_is_a_mismatch() {
        let fatal = |code, supported: Vec<u32>| Error::Closed {
            reason: CloseReason::Fatal {
                code,
                message: "m".into(),
                supported,
            },
        };
        assert!(matches!(
            version_mismatch(&fatal(ErrorCode::UNSUPPORTED_VERSION, vec![3])),
            Some(Error::VersionMismatch { client, daemon }) if daemon == [3] && client == [1, 2]
        ));
        assert!(version_mismatch(&fatal(ErrorCode::UNSUPPORTED_VERSION, vec![2])).is_none());
        assert!(version_mismatch(&fatal(ErrorCode::SERVER_BUSY, vec![1])).is_none());
        assert!(version_mismatch(&fatal(ErrorCode::SERVER_BUSY, vec![])).is_none());
        assert!(version_mismatch(&fatal(ErrorCode::UNSUPPORTED_VERSION, vec![])).is_some());
        let envelope = Error::Protocol(ProtocolError::Decode(DecodeError::UnsupportedVersion {
            found: 3,
        }));
        assert!(matches!(
            version_mismatch(&envelope),
            Some(Error::VersionMismatch { daemon, .. }) if daemon == [3]
        ));
    }
}
