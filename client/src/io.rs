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
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use hearth_protocol::reserved::{self, Fatal};
use hearth_protocol::{DEFAULT_MAX_DEPTH, DecodeError, ErrorCode, FrameDecoder, Message};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
/// until the connection closes; both hold the connection state.
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
    tokio::spawn(read_loop(conn.clone(), rd, notifications, max_frame));
    tokio::spawn(write_loop(conn));
}

async fn read_loop<R: AsyncRead + Unpin>(
    conn: Arc<Connection>,
    mut rd: R,
    notifications: mpsc::Sender<Notification>,
    max_frame: usize,
) {
    let _runtime_gone = CloseOnDrop(&conn);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut frames = FrameDecoder::new(max_frame);
    let reason = loop {
        if buf.capacity() - buf.len() < MIN_READ_SPACE {
            buf.reserve(READ_CHUNK);
        }
        // Only a dropped client closes the connection from outside the reader; the answers
        // still on their way are no longer wanted. That is an atomic load per pass, and the
        // waker registered for `close` when the read waits: a `select!` with the closed
        // signal's future cost a watch and a notify poll on every pass.
        let read = std::future::poll_fn(|cx| {
            if conn.stop_reading() {
                return Poll::Ready(None);
            }
            let read = std::pin::pin!(rd.read_buf(&mut buf));
            match read.poll(cx) {
                Poll::Ready(read) => Poll::Ready(Some(read)),
                Poll::Pending if conn.poll_stop_reading(cx) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let Some(read) = read else {
            return;
        };
        match read {
            Ok(0) if frames.is_idle(&buf) => break CloseReason::Eof,
            Ok(0) => break CloseReason::EofMidFrame,
            Ok(_) => {}
            Err(e) => break CloseReason::Io(Arc::new(e)),
        }
        if let Err(reason) = drain(&conn, &mut frames, &mut buf, &notifications) {
            break reason;
        }
    };
    conn.close(reason);
}

/// Closes the connection if the reader is dropped before it closed it itself: its task was
/// dropped because the runtime it ran on shut down. Without this, a client that outlives that
/// runtime would leave its calls waiting forever for answers nobody reads. (When the reader
/// ends normally the connection is already closed, and this does nothing.)
struct CloseOnDrop<'a>(&'a Connection);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close(CloseReason::Io(Arc::new(std::io::Error::other(
            "the runtime that ran this connection shut down",
        ))));
    }
}

/// Handles every whole frame in `buf`; an error is the reason to close the connection.
fn drain(
    conn: &Arc<Connection>,
    frames: &mut FrameDecoder,
    buf: &mut BytesMut,
    notifications: &mpsc::Sender<Notification>,
) -> Result<(), CloseReason> {
    loop {
        match frames.decode(buf) {
            Ok(Some(frame)) => dispatch(conn, frame, notifications)?,
            Ok(None) => return Ok(()),
            Err(e) => return Err(CloseReason::Protocol(e.into())),
        }
    }
}

fn dispatch(
    conn: &Arc<Connection>,
    frame: Bytes,
    notifications: &mpsc::Sender<Notification>,
) -> Result<(), CloseReason> {
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
                notifications,
                Notification {
                    method: n.method().to_owned(),
                    params: n.params,
                },
            );
        }
        // Every daemon request gets exactly one answer, from a task of its own; the reader
        // only starts it.
        Message::Request(request) => Serve::spawn(conn, request),
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
            if cx.waker().will_wake(Waker::noop()) {
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
            let reader = tokio::spawn(read_loop(conn.clone(), ours, notifications, 1 << 20));
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
