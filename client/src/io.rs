//! The two tasks that move one connection's bytes. The reader decodes frames and routes each
//! message: responses and partial results to their waiting calls, notifications to the
//! notification channel, `$/fatal` to [`Connection::close`], and the daemon's own requests and
//! cancels to `serve.rs` (which only spawns: the reader never waits for a handler or for room
//! to queue an answer). The writer empties the outbound queue into the socket,
//! one `write_all` per wakeup, however many frames are queued.
//!
//! What a call puts into the queue, and how it waits, is `client.rs`'s business; the shared
//! state and the closing rules are in `connection.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

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
/// or TCP: the tasks are generic, so each transport gets its own monomorphized copy and
/// nothing is boxed). They run until the connection closes; both hold the connection state.
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
    tokio::spawn(read_loop(conn.clone(), rd, notifications, max_frame));
    tokio::spawn(write_loop(conn, wr));
}

async fn read_loop<R: AsyncRead + Unpin>(
    conn: Arc<Connection>,
    mut rd: R,
    notifications: mpsc::Sender<Notification>,
    max_frame: usize,
) {
    let _runtime_gone = CloseOnDrop(&conn);
    let mut closed = conn.watch_closed();
    // Made once, not per read: building and dropping a `wait_for` future on every pass cost
    // about as much as decoding an answer.
    let closed = closed.wait_for(Option::is_some);
    tokio::pin!(closed);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut frames = FrameDecoder::new(max_frame);
    let reason = loop {
        if buf.capacity() - buf.len() < MIN_READ_SPACE {
            buf.reserve(READ_CHUNK);
        }
        let read = tokio::select! {
            biased;
            // Only a dropped client closes the connection from outside the reader; the
            // answers still on their way are no longer wanted.
            _ = &mut closed => return,
            read = rd.read_buf(&mut buf) => read,
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

async fn write_loop<W: AsyncWrite + Unpin>(conn: Arc<Connection>, mut wr: W) {
    let mut closed = conn.watch_closed();
    // Made once, as in `read_loop`.
    let closed = closed.wait_for(|r| {
        r.as_ref()
            .is_some_and(|r| !matches!(r, CloseReason::Dropped))
    });
    tokio::pin!(closed);
    let mut batch = BytesMut::with_capacity(16 * 1024);
    while conn.outbound.next_batch(&mut batch).await {
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
    let _ = wr.shutdown().await;
}
