//! The two tasks that move one connection's bytes. The reader decodes frames and routes each
//! message: responses and partial results to their waiting calls, notifications to the
//! notification channel, `$/fatal` to [`Connection::close`], and the daemon's own requests and
//! cancels to `serve.rs` (which only spawns: the reader never waits for a handler or for room
//! to queue an answer). The writer empties the outbound queue into the socket,
//! one `write_all` per wakeup, however many frames are queued — except for what a lone call
//! wrote itself while the writer was idle (`outbound.rs`).
//!
//! What a call puts into the queue, and how it waits, is `client.rs`'s business; the shared
//! state and the closing rules are in `connection.rs`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::task::{Context, Poll, Waker, ready};

use futures::task::AtomicWaker;

use bytes::{Bytes, BytesMut};
use hearth_protocol::reserved::{self, Fatal};
use hearth_protocol::{DEFAULT_MAX_DEPTH, DecodeError, ErrorCode, FrameDecoder, Message};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::connection::Connection;
use crate::error::{CloseReason, Error, ProtocolError};
use crate::notifications::Notification;
use crate::pending::{Completion, PartialOutcome};
use crate::serve::Serve;

/// How much the read buffer grows by when it runs low.
const READ_CHUNK: usize = 64 * 1024;
/// The least free space we read into.
const MIN_READ_SPACE: usize = 8 * 1024;

/// Starts the reader and writer tasks over the two halves of a freshly connected stream (Unix
/// or TCP: the reader is generic, so each transport gets its own monomorphized copy; the
/// write half is boxed into the outbound queue, which lone calls write to as well). They run
/// until the connection closes; both hold the connection state. The reader is also lent to
/// lone calls (`Connection::read_now`), so it is kept in a [`ReaderCell`] the connection
/// holds.
pub(crate) fn spawn<R, W>(
    conn: Arc<Connection>,
    rd: R,
    wr: W,
    notifications: mpsc::Sender<Notification>,
    max_frame: usize,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    conn.outbound.attach(Box::new(wr));
    let cell = ReaderCell::new(&conn, rd, notifications, max_frame);
    conn.lend_reader(cell.clone());
    tokio::spawn(read_loop(CloseOnDrop(conn.clone()), cell));
    tokio::spawn(write_loop(conn));
}

/// The reading side of a connection: its half of the stream, the bytes read and not yet
/// decoded, and what routing a message needs. It belongs to the reader task, but a call in
/// sequential use may borrow it to read its own answer (issue 13: on the editor's path that
/// saves a task wake-up and poll per call, and the runtime's look at its reactor that follows
/// it). Either way it runs the same code, [`Reader::poll_step`], with the reader task's waker,
/// so whatever it waits for afterwards wakes the reader task.
struct Reader<R> {
    rd: R,
    buf: BytesMut,
    frames: FrameDecoder,
    notifications: mpsc::Sender<Notification>,
    /// The runtime the connection's tasks run on: the daemon's requests are served there,
    /// whoever read them.
    runtime: Handle,
    /// For serving the daemon's requests (their tasks hold the connection). Weak: the
    /// connection holds this reader.
    conn: Weak<Connection>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Reads and routes messages until a read has to wait (`Pending`, with `cx`'s task
    /// registered for input and for the connection's close) or the reader is done: `Some`
    /// with the reason to close the connection, or `None` when it was closed from outside.
    fn poll_step(&mut self, conn: &Connection, cx: &mut Context<'_>) -> Poll<Option<CloseReason>> {
        loop {
            if self.buf.capacity() - self.buf.len() < MIN_READ_SPACE {
                self.buf.reserve(READ_CHUNK);
            }
            // Only a dropped client closes the connection from outside the reader; the
            // answers still on their way are no longer wanted. That is an atomic load per
            // pass, and the waker registered for `close` when the read waits: a `select!`
            // with the closed signal's future cost a watch and a notify poll on every pass.
            if conn.stop_reading() {
                return Poll::Ready(None);
            }
            let read = std::pin::pin!(self.rd.read_buf(&mut self.buf));
            let read = match read.poll(cx) {
                Poll::Ready(read) => read,
                Poll::Pending if conn.poll_stop_reading(cx) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            let reason = match read {
                Ok(0) if self.frames.is_idle(&self.buf) => CloseReason::Eof,
                Ok(0) => CloseReason::EofMidFrame,
                Ok(_) => match self.drain(conn) {
                    Ok(()) => continue,
                    Err(reason) => reason,
                },
                Err(e) => CloseReason::Io(Arc::new(e)),
            };
            return Poll::Ready(Some(reason));
        }
    }

    /// Handles every whole frame read; an error is the reason to close the connection.
    fn drain(&mut self, conn: &Connection) -> Result<(), CloseReason> {
        let route = Route {
            conn,
            notifications: &self.notifications,
            runtime: &self.runtime,
            me: &self.conn,
        };
        drain(&route, &mut self.frames, &mut self.buf)
    }
}

/// Where the reader's messages go.
struct Route<'a> {
    conn: &'a Connection,
    notifications: &'a mpsc::Sender<Notification>,
    runtime: &'a Handle,
    me: &'a Weak<Connection>,
}

/// The [`Reader`] and who holds it. A lock that is only ever tried: the reader task and a
/// lone call never wait for each other. A call that finds the reader busy waits for its
/// answer as any other call; the reader task, finding it lent out, asks to be woken when it
/// comes back (`wanted`), and reads then.
pub(crate) struct ReaderCell<R> {
    held: Mutex<Held<R>>,
    /// Set by the reader task when it found the reader lent out; the borrower wakes
    /// [`returned`](Self::returned) when it gives the reader back.
    wanted: AtomicBool,
    returned: AtomicWaker,
}

struct Held<R> {
    /// The reader task's waker (a no-op one until it first runs): a borrower reads with it.
    task: Waker,
    /// `None` once the reader is done (the connection is closed).
    reader: Option<Reader<R>>,
}

impl<R: AsyncRead + Unpin> ReaderCell<R> {
    fn new(
        conn: &Arc<Connection>,
        rd: R,
        notifications: mpsc::Sender<Notification>,
        max_frame: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            held: Mutex::new(Held {
                task: Waker::noop().clone(),
                reader: Some(Reader {
                    rd,
                    buf: BytesMut::with_capacity(READ_CHUNK),
                    frames: FrameDecoder::new(max_frame),
                    notifications,
                    runtime: Handle::current(),
                    conn: Arc::downgrade(conn),
                }),
            }),
            wanted: AtomicBool::new(false),
            returned: AtomicWaker::new(),
        })
    }

    fn try_hold(&self) -> Option<MutexGuard<'_, Held<R>>> {
        match self.held.try_lock() {
            Ok(held) => Some(held),
            // Nothing panics while it is held (routing only queues and wakes); recover
            // rather than stop reading.
            Err(TryLockError::Poisoned(held)) => Some(held.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// The reader task's poll: runs the reader unless it is lent out (then `cx`'s task is
    /// woken when it comes back). `Ready` once the reader is done, with the reason to close
    /// the connection if it has one (a borrower that finished the reader closed it itself).
    fn poll_task(&self, conn: &Connection, cx: &mut Context<'_>) -> Poll<Option<CloseReason>> {
        let mut held = match self.try_hold() {
            Some(held) => held,
            None => {
                self.returned.register(cx.waker());
                self.wanted.store(true, Ordering::SeqCst);
                // Given back between the first try and `wanted`: its borrower may have
                // looked at `wanted` before it was set, so try once more.
                match self.try_hold() {
                    Some(held) => held,
                    None => return Poll::Pending,
                }
            }
        };
        let held = &mut *held;
        if !held.task.will_wake(cx.waker()) {
            held.task = cx.waker().clone();
        }
        let Some(reader) = held.reader.as_mut() else {
            return Poll::Ready(None);
        };
        let end = ready!(reader.poll_step(conn, cx));
        held.reader = None;
        Poll::Ready(end)
    }
}

/// A connection's reader as lone calls see it (not generic over the transport).
pub(crate) trait LoneReader: Send + Sync {
    /// For a call in sequential use that has just sent its request: reads and routes what
    /// comes now — polling briefly for the answer, as the transport does after a write — as
    /// the reader task would, unless the reader is busy. What it leaves waiting wakes the
    /// reader task.
    fn read_now(&self, conn: &Connection);
}

impl<R: AsyncRead + Unpin + Send> LoneReader for ReaderCell<R> {
    fn read_now(&self, conn: &Connection) {
        let Some(mut held) = self.try_hold() else {
            return;
        };
        let held_ref = &mut *held;
        let mut done = None;
        if let Some(reader) = held_ref.reader.as_mut() {
            let mut cx = Context::from_waker(&held_ref.task);
            if let Poll::Ready(end) = reader.poll_step(conn, &mut cx) {
                held_ref.reader = None;
                // Closed before the reader is given back: the reader task, finding it done,
                // ends, and its `CloseOnDrop` must find the connection closed for this reason
                // already. (Closing takes no lock the reader task holds.)
                if let Some(reason) = end {
                    conn.close(reason);
                }
                done = Some(held_ref.task.clone());
            }
        }
        drop(held);
        if self.wanted.swap(false, Ordering::SeqCst) {
            self.returned.wake();
        }
        if let Some(task) = done {
            // The reader task finds the reader done and ends.
            task.wake();
        }
    }
}

/// The reader task. Its connection is held by a [`CloseOnDrop`] from the start, so that even
/// a reader task that never ran (lone calls read everything so far) closes the connection when
/// its runtime shuts down.
async fn read_loop<R: AsyncRead + Unpin>(conn: CloseOnDrop, cell: Arc<ReaderCell<R>>) {
    let conn = &*conn.0;
    let end = std::future::poll_fn(|cx| cell.poll_task(conn, cx)).await;
    if let Some(reason) = end {
        conn.close(reason);
    }
}

/// Closes the connection if the reader is dropped before it closed it itself: its task was
/// dropped because the runtime it ran on shut down. Without this, a client that outlives that
/// runtime would leave its calls waiting forever for answers nobody reads. (When the reader
/// ends normally the connection is already closed, and this does nothing.)
struct CloseOnDrop(Arc<Connection>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(CloseReason::Io(Arc::new(std::io::Error::other(
            "the runtime that ran this connection shut down",
        ))));
    }
}

/// Handles every whole frame in `buf`; an error is the reason to close the connection.
fn drain(
    route: &Route<'_>,
    frames: &mut FrameDecoder,
    buf: &mut BytesMut,
) -> Result<(), CloseReason> {
    loop {
        match frames.decode(buf) {
            Ok(Some(frame)) => dispatch(route, frame)?,
            Ok(None) => return Ok(()),
            Err(e) => return Err(CloseReason::Protocol(e.into())),
        }
    }
}

fn dispatch(route: &Route<'_>, frame: Bytes) -> Result<(), CloseReason> {
    let conn = route.conn;
    let decoded = Message::decode_any(frame, DEFAULT_MAX_DEPTH)
        .map_err(|e| CloseReason::Protocol(e.into()))?;
    let message = decoded.message;
    if decoded.version != conn.version() {
        // A daemon refusing our version answers in its own (PROTOCOL.md §15.2): its `$/fatal`
        // is read whatever version it is in. Anything else must be in ours.
        if let Message::Notification(n) = &message
            && n.method() == reserved::FATAL
        {
            return Err(fatal_reason(&n.params));
        }
        return Err(CloseReason::Protocol(
            DecodeError::UnsupportedVersion {
                found: u64::from(decoded.version.number()),
            }
            .into(),
        ));
    }
    match message {
        Message::Response(response) => {
            let reply = response.outcome.map_err(|e| Error::Remote(e.into()));
            match conn.pending.complete(response.id, reply) {
                Completion::Unknown => {
                    tracing::debug!(
                        id = response.id.get(),
                        "ignoring a response to an id not pending"
                    );
                }
                Completion::Cancelled => {
                    tracing::trace!(id = response.id.get(), "answer to a cancelled call dropped");
                }
                Completion::Delivered => {}
            }
        }
        Message::Notification(n) => {
            match n.method() {
                reserved::FATAL => return Err(fatal_reason(&n.params)),
                reserved::ERROR => warn_error_notification(&n.params),
                _ => {}
            }
            deliver(
                conn,
                route.notifications,
                Notification {
                    method: n.method().to_owned(),
                    params: n.params,
                },
            );
        }
        // Every daemon request gets exactly one answer, from a task of its own; the reader
        // only starts it.
        Message::Request(request) => {
            // The connection is alive while its reader reads.
            if let Some(conn) = route.me.upgrade() {
                Serve::spawn(&conn, request, route.runtime);
            }
        }
        // A cancel from the daemon names one of its own requests (its id space, not ours).
        Message::Cancel(cancel) => conn.serve.cancel(cancel.id),
        Message::Partial(partial) => {
            match conn.pending.partial(partial.id, partial.seq, partial.chunk) {
                PartialOutcome::Buffered => {}
                PartialOutcome::Overflow => {
                    let dropped = conn.dropped_partials.fetch_add(1, Ordering::Relaxed) + 1;
                    if dropped.is_power_of_two() {
                        tracing::warn!(
                            id = partial.id.get(),
                            dropped,
                            "a stream's buffer is full: dropping partial results"
                        );
                    }
                }
                PartialOutcome::Ignored => tracing::trace!(
                    id = partial.id.get(),
                    "partial result for no streamed call dropped"
                ),
            }
        }
    }
    Ok(())
}

/// Hands a notification to the caller's channel without ever waiting.
///
/// The reader must never block on the notification consumer: it is also what completes every
/// call, so a slow consumer would stall all responses — and a task that awaits a call before
/// it drains notifications would deadlock. So when the channel is full the notification is
/// dropped and counted, and a warning is logged (at the 1st, 2nd, 4th, 8th, ... drop, so that
/// a flood of them does not also flood the log).
fn deliver(conn: &Connection, channel: &mpsc::Sender<Notification>, n: Notification) {
    match channel.try_send(n) {
        Ok(()) => {}
        Err(TrySendError::Full(n)) => {
            let dropped = conn.dropped_notifications.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    method = %n.method,
                    dropped,
                    "notification buffer full: dropping notifications from the daemon"
                );
            }
        }
        // The caller dropped its `Notifications`: it does not want them.
        Err(TrySendError::Closed(_)) => {}
    }
}

/// `$/fatal` params as a close reason.
fn fatal_reason(params: &[u8]) -> CloseReason {
    match hearth_protocol::from_msgpack::<Fatal>(params) {
        Ok(fatal) => CloseReason::Fatal {
            code: ErrorCode(fatal.code),
            message: fatal.message,
            supported: fatal.supported,
        },
        Err(e) => CloseReason::Protocol(ProtocolError::Invalid(format!(
            "the daemon sent $/fatal with unreadable params: {e}"
        ))),
    }
}

fn warn_error_notification(params: &[u8]) {
    #[derive(Deserialize)]
    struct ErrorMap {
        code: i64,
        message: String,
    }
    match hearth_protocol::from_msgpack::<ErrorMap>(params) {
        Ok(e) => tracing::warn!(
            code = e.code,
            message = %e.message,
            "the daemon reported an error that belongs to no request"
        ),
        Err(e) => tracing::warn!(error = %e, "the daemon sent $/error with unreadable params"),
    }
}

async fn write_loop(conn: Arc<Connection>) {
    let mut closed = conn.watch_closed();
    // Made once, as in `read_loop`.
    let closed = closed.wait_for(|r| {
        r.as_ref()
            .is_some_and(|r| !matches!(r, CloseReason::Dropped))
    });
    tokio::pin!(closed);
    let mut batch = BytesMut::with_capacity(16 * 1024);
    // The write half, while this task writes (see `Outbound::next_batch`).
    let mut sink = None;
    while conn.outbound.next_batch(&mut batch, &mut sink).await {
        let Some(wr) = sink.as_mut() else {
            // Never attached (not reached: `spawn` attaches first); fail rather than hang.
            conn.write_failed(std::io::Error::other("the connection has no write half"));
            return;
        };
        let written = tokio::select! {
            biased;
            written = wr.write_all(&batch) => written,
            // A dropped client still flushes what it queued; any other close means the
            // stream is gone or out of step, and a daemon that stopped reading must not keep
            // this task alive.
            _ = &mut closed => return,
        };
        if let Err(e) = written {
            conn.write_failed(e);
            return;
        }
    }
    // Half-close: the daemon reads EOF after our last frame.
    if let Some(wr) = sink.as_mut() {
        let _ = wr.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    use hearth_protocol::Version;

    use super::*;
    use crate::connection::Peer;

    /// What a [`TestSink`] has taken, and how it behaves.
    #[derive(Default)]
    struct Wire {
        out: Vec<u8>,
        /// The most bytes one write takes (0: any number).
        chunk: usize,
        /// Every `stall`th write says "no room" (0: never) — waking its waker at once, as a
        /// socket with room again would.
        stall: usize,
        writes: usize,
        /// Bytes it takes before it has no room until [`TestSink::open`] (None: no limit).
        room: Option<usize>,
        waker: Option<Waker>,
        /// Every write fails (the peer is gone).
        broken: bool,
        inline_writes: usize,
    }

    /// A write half that records what it is given and can take it in pieces, be full, or fail.
    #[derive(Clone, Default)]
    struct TestSink(Arc<Mutex<Wire>>);

    impl TestSink {
        fn wire(&self) -> std::sync::MutexGuard<'_, Wire> {
            self.0.lock().expect("the wire's lock")
        }

        /// Gives the sink `n` more bytes of room, waking a writer waiting for it.
        fn open(&self, n: usize) {
            let mut wire = self.wire();
            wire.room = Some(wire.room.unwrap_or(0) + n);
            if let Some(waker) = wire.waker.take() {
                waker.wake();
            }
        }
    }

    impl AsyncWrite for TestSink {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let mut wire = self.wire();
            if wire.broken {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            wire.writes += 1;
            // The inline write polls with the no-op waker, whose data pointer is null (a
            // task's never is). Not `will_wake(Waker::noop())`: in an optimized build the
            // no-op waker's vtable is not always one address.
            if cx.waker().data().is_null() {
                wire.inline_writes += 1;
            }
            if wire.stall != 0 && wire.writes.is_multiple_of(wire.stall) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let mut n = buf.len();
            if wire.chunk != 0 {
                n = n.min(wire.chunk);
            }
            if let Some(room) = wire.room {
                if room == 0 {
                    wire.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                n = n.min(room);
                wire.room = Some(room - n);
            }
            wire.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A connection whose write half is `sink`, with its writer task running.
    fn connection(sink: &TestSink) -> Arc<Connection> {
        let (conn, _notifications) =
            Connection::new(Peer::Unix("test.sock".into()), Version::V2, 1 << 20, 8);
        let conn = Arc::new(conn);
        conn.outbound.attach(Box::new(sink.clone()));
        tokio::spawn(write_loop(conn.clone()));
        conn
    }

    /// Queues `frame` as a lone call would (inline when the writer is idle).
    fn push(conn: &Connection, frame: &[u8], inline: bool) -> Result<(), QueueClosedError> {
        match conn.outbound.try_push(
            &mut |buf: &mut BytesMut| {
                buf.extend_from_slice(frame);
                Ok::<(), std::convert::Infallible>(())
            },
            inline,
        ) {
            Some(Ok(Ok(()))) => Ok(()),
            Some(Err(_)) => Err(QueueClosedError),
            None => panic!("the queue is far from full"),
        }
    }

    #[derive(Debug, PartialEq)]
    struct QueueClosedError;

    /// Waits (yielding, for at most a generous bound: a writer that is never woken fails the
    /// test instead of hanging it) until `sink` has taken `len` bytes.
    async fn until_written(sink: &TestSink, len: usize) {
        let bound = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < bound {
            if sink.wire().out.len() >= len {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the writer wrote {} of {len} bytes", sink.wire().out.len());
    }

    /// A reader waiting for input stops when the connection is closed from outside it (the
    /// client dropped), and one that has input ready stops too instead of reading it.
    #[tokio::test]
    async fn the_reader_stops_when_the_connection_closes() {
        for input in [false, true] {
            let (conn, notifications) =
                Connection::new(Peer::Unix("test.sock".into()), Version::V2, 1 << 20, 8);
            let conn = Arc::new(conn);
            let (ours, mut theirs) = tokio::io::duplex(1024);
            let cell = ReaderCell::new(&conn, ours, notifications, 1 << 20);
            conn.lend_reader(cell.clone());
            let reader = tokio::spawn(read_loop(CloseOnDrop(conn.clone()), cell));
            // Let it wait for input.
            tokio::task::yield_now().await;
            assert!(!reader.is_finished());
            if input {
                // Half a frame: reading it would not finish the reader.
                theirs.write_all(&[0, 0, 0, 9, 1]).await.expect("written");
            }
            conn.close(CloseReason::Dropped);
            tokio::time::timeout(std::time::Duration::from_secs(30), reader)
                .await
                .expect("the reader stops")
                .expect("the reader task");
            assert!(matches!(
                conn.closed_error(),
                Error::Closed {
                    reason: CloseReason::Dropped
                }
            ));
            drop(theirs);
        }
    }

    /// A daemon in memory that answers at once: a request written to it is answered (its
    /// params echoed) before the write returns, so the answer is there for the next read.
    #[derive(Clone)]
    struct Loopback(Arc<Mutex<LoopState>>);

    struct LoopState {
        written: BytesMut,
        frames: FrameDecoder,
        inbox: BytesMut,
        waker: Option<Waker>,
        /// Requests answered so far.
        answered: usize,
    }

    impl Loopback {
        fn new() -> Self {
            Self(Arc::new(Mutex::new(LoopState {
                written: BytesMut::new(),
                frames: FrameDecoder::new(1 << 20),
                inbox: BytesMut::new(),
                waker: None,
                answered: 0,
            })))
        }

        fn state(&self) -> std::sync::MutexGuard<'_, LoopState> {
            self.0.lock().expect("the loopback's lock")
        }

        /// The daemon sends a frame of its own, waking the reader waiting for input.
        fn send(&self, encode: impl FnOnce(&hearth_protocol::Encoder, &mut BytesMut)) {
            let mut state = self.state();
            encode(
                &hearth_protocol::Encoder::new(1 << 20).with_version(Version::V2),
                &mut state.inbox,
            );
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
    }

    impl AsyncWrite for Loopback {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let mut state = self.state();
            let state = &mut *state;
            state.written.extend_from_slice(buf);
            while let Some(frame) = state.frames.decode(&mut state.written).expect("a frame") {
                let decoded = Message::decode_any(frame, DEFAULT_MAX_DEPTH).expect("a message");
                if let Message::Request(request) = decoded.message {
                    hearth_protocol::Encoder::new(1 << 20)
                        .with_version(Version::V2)
                        .response_raw(&mut state.inbox, request.id, &request.params)
                        .expect("encodes");
                    state.answered += 1;
                }
            }
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncRead for Loopback {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let mut state = self.state();
            if state.inbox.is_empty() {
                state.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = state.inbox.len().min(buf.remaining());
            buf.put_slice(&state.inbox.split_to(n));
            Poll::Ready(Ok(()))
        }
    }

    /// A connection to a [`Loopback`] daemon with its reader and writer tasks started, and
    /// its notifications.
    fn loopback() -> (Arc<Connection>, Loopback, crate::Notifications) {
        let (conn, tx) = Connection::new(Peer::Unix("test.sock".into()), Version::V2, 1 << 20, 8);
        let conn = Arc::new(conn);
        let notifications = conn.take_notifications().expect("not taken yet");
        let daemon = Loopback::new();
        spawn(conn.clone(), daemon.clone(), daemon.clone(), tx, 1 << 20);
        (conn, daemon, notifications)
    }

    fn echo<'a>(params: &'a [u8]) -> crate::client::Outgoing<'a> {
        crate::client::Outgoing::Raw {
            method: "echo",
            params,
            options: None,
        }
    }

    /// A call in sequential use reads its own answer in the poll that sent it (the editor's
    /// path: no reader task in between), and the reader task is the one woken for whatever
    /// comes afterwards: a notification after the answer reaches the caller.
    #[tokio::test]
    async fn a_lone_call_reads_its_own_answer_in_the_poll_that_sent_it() {
        let (conn, daemon, mut notifications) = loopback();
        // The first call is not in sequential use yet (nothing came before it): it leaves
        // the reading to the reader task.
        let mut call = std::pin::pin!(crate::client::call_within(
            &conn,
            conn.next_id(),
            echo(&[9]),
            None
        ));
        assert!(
            call.as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        call.await.expect("echo answers");
        for round in 0..3u8 {
            let params = [round];
            let call = std::pin::pin!(crate::client::call_within(
                &conn,
                conn.next_id(),
                echo(&params),
                None
            ));
            let answer = call.poll(&mut Context::from_waker(Waker::noop()));
            match answer {
                Poll::Ready(Ok(answer)) => assert_eq!(&answer[..], &params[..]),
                other => panic!("round {round}: not answered in its first poll: {other:?}"),
            }
            daemon.send(|enc, buf| {
                enc.notification_raw(buf, "progress", &[round])
                    .expect("encodes");
            });
            let n = tokio::time::timeout(std::time::Duration::from_secs(30), notifications.recv())
                .await
                .expect("the reader task was woken for it")
                .expect("a notification");
            assert_eq!(
                (n.method.as_str(), &n.params[..]),
                ("progress", &[round][..])
            );
        }
        assert_eq!(daemon.state().answered, 4);
    }

    /// A loop of lone calls, each answered in its first poll, still lets the other tasks on
    /// its thread run: every lone read takes a unit of the task's budget, as a read of a
    /// runtime's socket would, so the loop yields once it is spent.
    #[tokio::test]
    async fn a_loop_of_lone_calls_yields_to_other_tasks() {
        let (conn, daemon, _notifications) = loopback();
        // The first call is not in sequential use yet, and yields.
        crate::client::call_within(&conn, conn.next_id(), echo(&[1]), None)
            .await
            .expect("echo answers");
        let ran = Arc::new(AtomicBool::new(false));
        tokio::spawn({
            let ran = ran.clone();
            async move { ran.store(true, Ordering::SeqCst) }
        });
        let mut calls = 0;
        while !ran.load(Ordering::SeqCst) {
            assert!(calls < 10_000, "the other task never ran");
            let answer = crate::client::call_within(&conn, conn.next_id(), echo(&[1]), None)
                .await
                .expect("echo answers");
            assert_eq!(&answer[..], &[1]);
            calls += 1;
        }
        assert!(calls > 1, "sequential calls are answered without yielding");
        assert!(daemon.state().answered > calls, "every call was sent");
    }

    /// With another call in flight, a call leaves the reading to the reader task: its first
    /// poll does not look for the answer, which the reader task delivers.
    #[tokio::test]
    async fn a_call_that_is_not_alone_leaves_the_reading_to_the_reader_task() {
        let (conn, _daemon, _notifications) = loopback();
        conn.pending.set_limit(8);
        // Held in flight: its slot is taken but its request never sent.
        let first_id = conn.next_id();
        assert_ne!(
            conn.pending.insert(first_id).await.expect("a place"),
            crate::pending::Company::Others
        );
        let params = [7u8];
        let mut call = std::pin::pin!(crate::client::call_within(
            &conn,
            conn.next_id(),
            echo(&params),
            None
        ));
        assert!(
            call.as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending(),
            "not alone: the first poll only sends"
        );
        let answer = tokio::time::timeout(std::time::Duration::from_secs(30), call)
            .await
            .expect("the reader task delivers it")
            .expect("echo answers");
        assert_eq!(&answer[..], &params[..]);
    }

    /// The reader task, finding the reader lent out, is woken when the borrower gives it
    /// back, and then reads what came meanwhile.
    #[tokio::test]
    async fn the_reader_task_is_woken_when_a_lone_call_gives_the_reader_back() {
        let (conn, tx) = Connection::new(Peer::Unix("test.sock".into()), Version::V2, 1 << 20, 8);
        let conn = Arc::new(conn);
        let mut notifications = conn.take_notifications().expect("not taken yet");
        let daemon = Loopback::new();
        let cell = ReaderCell::new(&conn, daemon.clone(), tx, 1 << 20);
        conn.lend_reader(cell.clone());
        let held = cell.held.lock().expect("lent out");
        let (woken, counter) = counting_waker();
        let mut cx = Context::from_waker(&woken);
        assert!(cell.poll_task(&conn, &mut cx).is_pending(), "lent out");
        assert!(cell.wanted.load(Ordering::SeqCst));
        daemon.send(|enc, buf| enc.notification_raw(buf, "late", &[1]).expect("encodes"));
        drop(held);
        assert_eq!(counter.load(Ordering::SeqCst), 0);
        // The borrower gives it back (a lone call's read, which reads the notification).
        conn.read_now();
        assert_eq!(counter.load(Ordering::SeqCst), 1, "woken on the return");
        assert!(!cell.wanted.load(Ordering::SeqCst));
        let n = notifications.recv().await.expect("read by the borrower");
        assert_eq!(n.method, "late");
        assert!(cell.poll_task(&conn, &mut cx).is_pending(), "reads, waits");
    }

    /// A waker that counts its wakes.
    fn counting_waker() -> (Waker, Arc<std::sync::atomic::AtomicUsize>) {
        struct Count(Arc<std::sync::atomic::AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        (Waker::from(Arc::new(Count(counter.clone()))), counter)
    }

    /// A lone call whose read finds the end of the stream closes the connection itself, fails
    /// with the reason, and the reader task ends.
    #[tokio::test]
    async fn a_lone_call_that_reads_the_end_closes_the_connection() {
        let (conn, tx) = Connection::new(Peer::Unix("test.sock".into()), Version::V2, 1 << 20, 8);
        let conn = Arc::new(conn);
        let (ours, theirs) = tokio::io::duplex(1024);
        let (rd, _) = tokio::io::split(ours);
        let (_, wr) = tokio::io::split(theirs);
        drop(wr);
        let sink = TestSink::default();
        conn.outbound.attach(Box::new(sink.clone()));
        let cell = ReaderCell::new(&conn, rd, tx, 1 << 20);
        conn.lend_reader(cell.clone());
        let reader = tokio::spawn(read_loop(CloseOnDrop(conn.clone()), cell.clone()));
        // A call answered before: the next is in sequential use.
        let before = conn.next_id();
        conn.pending.insert(before).await.expect("a place");
        conn.pending.complete(before, Ok(Bytes::new()));
        let answered = std::future::poll_fn(|cx| Poll::Ready(conn.pending.poll_answer(before, cx)));
        assert!(answered.await.is_ready());
        let params = [1u8];
        let call = std::pin::pin!(crate::client::call_within(
            &conn,
            conn.next_id(),
            echo(&params),
            None
        ));
        match call.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Err(Error::Closed {
                reason: CloseReason::Eof,
            })) => {}
            other => panic!("{other:?}"),
        }
        assert!(conn.is_closed());
        assert!(cell.held.lock().expect("free").reader.is_none(), "done");
        tokio::time::timeout(std::time::Duration::from_secs(30), reader)
            .await
            .expect("the reader task ends")
            .expect("the reader task");
    }

    /// A lone call's frame goes to the socket in the caller's own poll, without the writer.
    #[tokio::test]
    async fn a_lone_frame_is_written_by_its_caller() {
        let sink = TestSink::default();
        let conn = connection(&sink);
        // Let the writer task start and go idle.
        tokio::task::yield_now().await;
        push(&conn, b"first", true).expect("queued");
        assert_eq!(
            sink.wire().out,
            b"first",
            "written before the caller returned"
        );
        assert_eq!(sink.wire().inline_writes, 1);
        // Not alone: queued for the writer, which writes it.
        push(&conn, b"second", false).expect("queued");
        assert_eq!(sink.wire().out, b"first");
        until_written(&sink, 11).await;
        assert_eq!(sink.wire().out, b"firstsecond");
        assert_eq!(sink.wire().inline_writes, 1, "the writer wrote the second");
    }

    /// What the socket does not take at once stays queued, in order, ahead of later frames,
    /// and the writer task writes it when there is room.
    #[tokio::test]
    async fn a_partial_inline_write_leaves_the_rest_to_the_writer_in_order() {
        let sink = TestSink::default();
        sink.wire().room = Some(3);
        let conn = connection(&sink);
        tokio::task::yield_now().await;
        push(&conn, b"abcdef", true).expect("queued");
        assert_eq!(
            sink.wire().out,
            b"abc",
            "the socket took what it had room for"
        );
        // A later lone frame finds the queue busy: it queues behind the rest.
        push(&conn, b"gh", true).expect("queued");
        push(&conn, b"ij", false).expect("queued");
        assert_eq!(sink.wire().out, b"abc");
        // The writer holds the rest until there is room.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(sink.wire().out, b"abc");
        sink.open(usize::MAX / 2);
        until_written(&sink, 10).await;
        assert_eq!(sink.wire().out, b"abcdefghij");
        // Idle again: the next lone frame is written inline.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let inline = sink.wire().inline_writes;
        push(&conn, b"k", true).expect("queued");
        assert_eq!(sink.wire().out, b"abcdefghijk");
        assert_eq!(sink.wire().inline_writes, inline + 1);
    }

    /// Callers on several threads, some writing inline, some queueing, over a socket that
    /// takes a few bytes per write and often has no room: every frame arrives whole, and each
    /// caller's frames in the order it sent them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_frames_arrive_whole_and_in_order() {
        const CALLERS: u8 = 8;
        const FRAMES: u32 = 500;
        let sink = TestSink::default();
        {
            let mut wire = sink.wire();
            wire.chunk = 5;
            wire.stall = 3;
        }
        let conn = connection(&sink);
        let mut callers = tokio::task::JoinSet::new();
        for caller in 0..CALLERS {
            let conn = conn.clone();
            callers.spawn(async move {
                for seq in 0..FRAMES {
                    let mut frame = [caller, 0, 0, 0, 0, 0xAA, 0xBB, 0xCC];
                    frame[1..5].copy_from_slice(&seq.to_le_bytes());
                    push(&conn, &frame, seq.is_multiple_of(2)).expect("queued");
                    if seq.is_multiple_of(7) {
                        tokio::task::yield_now().await;
                    }
                }
            });
        }
        while let Some(done) = callers.join_next().await {
            done.expect("a caller");
        }
        let total = usize::from(CALLERS) * FRAMES as usize * 8;
        until_written(&sink, total).await;
        let wire = sink.wire();
        assert_eq!(wire.out.len(), total);
        assert!(wire.inline_writes > 0, "some frames were written inline");
        let mut next = [0u32; CALLERS as usize];
        for frame in wire.out.chunks(8) {
            assert_eq!(&frame[5..], [0xAA, 0xBB, 0xCC], "a whole frame: {frame:?}");
            let caller = usize::from(frame[0]);
            let seq = u32::from_le_bytes(frame[1..5].try_into().expect("4 bytes"));
            assert_eq!(seq, next[caller], "caller {caller}'s frames in order");
            next[caller] += 1;
        }
        assert!(next.iter().all(|&n| n == FRAMES));
    }

    /// A write that fails inline is left to the writer task, which fails the connection's
    /// writes (later frames are refused); a closed connection writes nothing, inline or not.
    #[tokio::test]
    async fn a_failed_inline_write_fails_the_writes_and_a_closed_queue_takes_nothing() {
        let sink = TestSink::default();
        sink.wire().broken = true;
        let conn = connection(&sink);
        tokio::task::yield_now().await;
        push(&conn, b"lost", true).expect("queued: the writer reports the failure");
        // The writer task runs on this thread: a few yields let it fail the writes.
        for _ in 0..1000 {
            if push(&conn, b"x", false).is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(push(&conn, b"late", true), Err(QueueClosedError));
        assert!(matches!(
            conn.closed_error(),
            Error::Closed {
                reason: CloseReason::Io(e)
            } if e.kind() == io::ErrorKind::BrokenPipe
        ));

        let sink = TestSink::default();
        let conn = connection(&sink);
        tokio::task::yield_now().await;
        conn.close(CloseReason::Eof);
        assert_eq!(push(&conn, b"late", true), Err(QueueClosedError));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(sink.wire().out.is_empty());
    }
}
