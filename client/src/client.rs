//! [`Client`]: connecting (socket, then the `$/hello` handshake and its version check) and the
//! life of one call — encode, take an in-flight permit, register, queue, wait, and cancel at the
//! daemon if the caller stops waiting. Moving bytes is left to the tasks in `io.rs`, and the
//! rules for a dying connection to `connection.rs`.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hearth_protocol::reserved::{self, HelloParams, HelloResult};
use hearth_protocol::{DEFAULT_MAX_DEPTH, DecodeError, EncodeError, Encoder, ErrorCode, RequestId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::Semaphore;

use crate::config::ClientConfig;
use crate::connection::{Connection, Peer};
use crate::error::{CloseReason, Error, ProtocolError};
use crate::notifications::Notifications;
use crate::pending::Abandon;

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
/// A closed client stays closed: there is no automatic reconnect. Once the connection is gone
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
    timeout: Option<Duration>,
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
        let stream = UnixStream::connect(&path)
            .await
            .map_err(|source| Error::Connect {
                path: path.clone(),
                source,
            })?;
        let (rd, wr) = hearth_transport::split(stream).map_err(|source| Error::Connect {
            path: path.clone(),
            source,
        })?;
        Self::start(Peer::Unix(path), rd, wr, config).await
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
    /// TCP is for comparisons and tools that cannot use a Unix socket: it has no owner check
    /// (any local user can connect to the daemon's port). Fails with [`Error::ConnectTcp`] when
    /// the address cannot be reached, and with [`Error::VersionMismatch`] when the daemon
    /// speaks another protocol version.
    pub async fn connect_tcp_with(addr: SocketAddr, config: ClientConfig) -> Result<Client, Error> {
        let stream = tcp_stream(addr)
            .await
            .map_err(|source| Error::ConnectTcp { addr, source })?;
        let (rd, wr) = stream.into_split();
        Self::start(Peer::Tcp(addr), rd, wr, config).await
    }

    /// Starts the connection's tasks over a connected stream's halves and shakes hands.
    async fn start<R, W>(peer: Peer, rd: R, wr: W, config: ClientConfig) -> Result<Client, Error>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (conn, notifications) =
            Connection::new(peer, config.max_frame, config.notification_buffer);
        let conn = Arc::new(conn);
        crate::io::spawn(conn.clone(), rd, wr, notifications, config.max_frame);
        // From here on, returning early (or being dropped) closes the connection.
        let owner = Owner(conn.clone());

        let hello = handshake(&conn, &config).await?;
        let daemon_max = usize::try_from(hello.limits.max_frame).unwrap_or(usize::MAX);
        if daemon_max > 0 {
            conn.max_send
                .store(config.max_frame.min(daemon_max), Ordering::Relaxed);
        }
        // The handshake ran with one place in flight; widen to what the daemon allows.
        conn.pending
            .set_limit(request_limit(hello.limits.max_in_flight));

        Ok(Client {
            inner: Arc::new(Inner {
                owner,
                hello,
                timeout: config.timeout,
            }),
        })
    }

    fn conn(&self) -> &Connection {
        &self.inner.owner.0
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
        let frame = encode(conn, |enc, buf| enc.request(buf, id, method, params))?;
        let raw = call_within(conn, id, Outgoing::Encoded(frame), timeout).await?;
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
fn encode(
    conn: &Connection,
    write: impl FnOnce(&Encoder, &mut BytesMut) -> Result<(), EncodeError>,
) -> Result<Scratch, Error> {
    let encoder = Encoder::new(conn.max_send.load(Ordering::Relaxed));
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
struct Scratch(BytesMut);

impl Scratch {
    fn take() -> Self {
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
enum Outgoing<'a> {
    Encoded(Scratch),
    Raw { method: &'a str, params: &'a [u8] },
}

/// Raw params must be exactly one MessagePack value, or the daemon would read a malformed
/// envelope and the connection would be out of step.
fn check_one_value(params: &[u8]) -> Result<(), Error> {
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
async fn call_within(
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
    conn.pending
        .insert(id)
        .await
        .map_err(|reason| Error::Closed { reason })?;
    let mut guard = CallGuard {
        conn,
        id,
        sent: false,
        answered: false,
    };
    let queued = match request {
        Outgoing::Encoded(frame) => conn.outbound.push(&frame).await.map(Ok),
        Outgoing::Raw { method, params } => {
            let encoder = Encoder::new(conn.max_send.load(Ordering::Relaxed));
            conn.outbound
                .push_with(|buf| encoder.request_raw(buf, id, method, params))
                .await
        }
    };
    // On an error, nothing was queued: the guard takes the slot out and frees the place.
    queued
        .map_err(|_| conn.closed_error())?
        .map_err(Error::Encode)?;
    guard.sent = true;
    let reply = std::future::poll_fn(|cx| conn.pending.poll_answer(id, cx)).await;
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
        match self.conn.pending.abandon(self.id, self.sent) {
            Abandon::CancelNeeded => {
                let encoder = Encoder::new(self.conn.max_send.load(Ordering::Relaxed));
                let id = self.id;
                // A closed queue means the connection is gone, and the request with it.
                let _ = self.conn.outbound.push_now(|buf| {
                    // A cancel is a handful of bytes; it cannot exceed any frame limit.
                    let _ = encoder.cancel(buf, id);
                });
                tracing::trace!(id = id.get(), "call dropped; cancel queued");
            }
            Abandon::Nothing => {}
        }
    }
}

/// `$/hello`, and the version check.
async fn handshake(conn: &Connection, config: &ClientConfig) -> Result<HelloResult, Error> {
    let params = HelloParams {
        client: Some(config.client_name.clone()),
    };
    let id = conn.next_id();
    let frame = encode(conn, |enc, buf| {
        enc.request(buf, id, reserved::HELLO, &params)
    })?;
    let raw = match call_within(conn, id, Outgoing::Encoded(frame), config.timeout).await {
        Ok(raw) => raw,
        Err(e) => return Err(version_mismatch(&e).unwrap_or(e)),
    };
    // Look at the version before anything else: another version may shape the rest
    // differently.
    #[derive(Deserialize)]
    struct Version {
        protocol: u32,
    }
    let version: Version = hearth_protocol::from_msgpack(&raw).map_err(Error::Decode)?;
    if version.protocol != SPOKEN {
        return Err(Error::VersionMismatch {
            client: vec![SPOKEN],
            daemon: vec![version.protocol],
        });
    }
    hearth_protocol::from_msgpack(&raw).map_err(Error::Decode)
}

/// The version this client speaks (version 2 comes with the client's rebuild).
const SPOKEN: u32 = hearth_protocol::Version::V1.number();

/// Whether a failed handshake was the daemon refusing our protocol version: a `$/fatal`
/// whose `supported` list lacks our version, or a reply in an envelope of another version.
fn version_mismatch(e: &Error) -> Option<Error> {
    let daemon = match e {
        Error::Closed {
            reason: CloseReason::Fatal {
                code, supported, ..
            },
        } if !supported.contains(&SPOKEN)
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
        client: vec![SPOKEN],
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
            version_mismatch(&fatal(ErrorCode::UNSUPPORTED_VERSION, vec![2])),
            Some(Error::VersionMismatch { daemon, .. }) if daemon == [2]
        ));
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
