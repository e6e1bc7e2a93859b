//! The state one connection's tasks and callers share: request ids, the pending-call table, the
//! outbound queue, the in-flight semaphore, the notification channel and the closed signal —
//! and [`Connection::close`], the one place a connection dies, which fails every waiting call.
//!
//! The tasks that move bytes live in `io.rs`; what a call does with this state (encode, wait,
//! cancel) lives in `client.rs`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use futures::task::AtomicWaker;
use hearth_protocol::{Encoder, RequestId, Version};
use tokio::sync::{mpsc, watch};

use crate::error::{CloseReason, Error};
use crate::io::LoneReader;
use crate::notifications::{Notification, Notifications};
use crate::outbound::Outbound;
use crate::pending::Pending;
use crate::serve::Serve;

/// Where a connection goes: a Unix socket (the normal case) or a loopback TCP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Peer {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "{}", path.display()),
            Self::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// Shared by the [`Client`](crate::Client) handles, the reader task and the writer task.
pub(crate) struct Connection {
    /// Where this connection was made to.
    pub(crate) peer: Peer,
    /// Calls waiting for an answer, and the in-flight limit: `max_in_flight - 1` from
    /// `$/hello` (one until then; see `client::request_limit`). A place is taken before a
    /// request is queued and given back when the daemon's answer arrives — also for a
    /// cancelled call, whose request keeps running until the cancel is read — so the daemon
    /// never has to stop reading us and cancels always get through.
    pub(crate) pending: Pending,
    /// Frames waiting for the writer.
    pub(crate) outbound: Outbound,
    /// The largest frame body we send: our own maximum, lowered to the daemon's after hello.
    pub(crate) max_send: AtomicUsize,
    /// The protocol version this connection speaks (a [`Version`] number): the one its
    /// `$/hello` was sent in, fixed from then on.
    version: AtomicU8,
    /// Requests from the daemon: the methods this client serves and the handlers running.
    pub(crate) serve: Serve,
    /// Partial results dropped because their call's buffer was full.
    pub(crate) dropped_partials: AtomicU64,
    next_id: AtomicU64,
    /// `Some(reason)` once closed. The writer (and [`Client::closed`](crate::Client::closed))
    /// watch it to stop.
    closed: watch::Sender<Option<CloseReason>>,
    /// Set once closed, before [`reader`](Self::reader) is woken: what the reader looks at
    /// whenever it waits for input (cheaper per read than watching `closed`).
    stop_reading: AtomicBool,
    /// The reader task's waker, registered whenever it waits for input.
    reader: AtomicWaker,
    /// The reader, for a call in sequential use to read its own answer with (`io.rs`); set
    /// once, when the reader task starts.
    lone_reader: OnceLock<Arc<dyn LoneReader>>,
    /// The receiving end of the notification channel, until someone takes it.
    notifications: Mutex<Option<mpsc::Receiver<Notification>>>,
    /// Notifications dropped because the channel was full.
    pub(crate) dropped_notifications: AtomicU64,
    /// Why writing failed, if it did; new calls are refused with it until the reader closes.
    write_error: Mutex<Option<Arc<io::Error>>>,
}

impl Connection {
    /// A fresh connection's state, and the sending end of its notification channel (for the
    /// reader task).
    pub(crate) fn new(
        peer: Peer,
        version: Version,
        max_frame: usize,
        notification_buffer: usize,
    ) -> (Self, mpsc::Sender<Notification>) {
        let (tx, rx) = mpsc::channel(notification_buffer.max(1));
        let conn = Self {
            peer,
            pending: Pending::new(),
            outbound: Outbound::new(),
            max_send: AtomicUsize::new(max_frame),
            version: AtomicU8::new(version.number() as u8),
            serve: Serve::new(),
            dropped_partials: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            closed: watch::Sender::new(None),
            stop_reading: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            lone_reader: OnceLock::new(),
            notifications: Mutex::new(Some(rx)),
            dropped_notifications: AtomicU64::new(0),
            write_error: Mutex::new(None),
        };
        (conn, tx)
    }

    /// A request id not used before on this connection.
    pub(crate) fn next_id(&self) -> RequestId {
        RequestId::new(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// The protocol version this connection speaks.
    pub(crate) fn version(&self) -> Version {
        match self.version.load(Ordering::Relaxed) {
            1 => Version::V1,
            _ => Version::V2,
        }
    }

    /// An encoder for this connection: its version, and the largest frame we may send.
    pub(crate) fn encoder(&self) -> Encoder {
        Encoder::new(self.max_send.load(Ordering::Relaxed)).with_version(self.version())
    }

    /// The notification receiver, the first time only.
    pub(crate) fn take_notifications(&self) -> Option<Notifications> {
        self.notifications
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .map(Notifications::new)
    }

    /// Whether the connection is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.borrow().is_some()
    }

    /// For the reader: whether the connection was closed (from outside the reader, which
    /// stops then).
    pub(crate) fn stop_reading(&self) -> bool {
        self.stop_reading.load(Ordering::Acquire)
    }

    /// For the reader, waiting for input: [`stop_reading`](Self::stop_reading); if not yet,
    /// `cx`'s task is woken when the connection closes.
    pub(crate) fn poll_stop_reading(&self, cx: &mut std::task::Context<'_>) -> bool {
        // Register before looking, so that a close after the look wakes the task.
        self.reader.register(cx.waker());
        self.stop_reading()
    }

    /// For `io::spawn`: the reader lone calls may borrow.
    pub(crate) fn lend_reader(&self, reader: Arc<dyn LoneReader>) {
        let _ = self.lone_reader.set(reader);
    }

    /// For a call in sequential use, just sent: reads and routes what comes now, polling
    /// briefly for the answer, unless the reader is busy (see `io::LoneReader`).
    pub(crate) fn read_now(&self) {
        if let Some(reader) = self.lone_reader.get() {
            reader.read_now(self);
        }
    }

    /// A receiver of the closed signal.
    pub(crate) fn watch_closed(&self) -> watch::Receiver<Option<CloseReason>> {
        self.closed.subscribe()
    }

    /// The error for a call made on (or racing with) a closed connection.
    pub(crate) fn closed_error(&self) -> Error {
        let reason = self
            .pending
            .close_reason()
            .or_else(|| {
                let write_error = self
                    .write_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                write_error.clone().map(CloseReason::Io)
            })
            // The table and queue close only through `close` or `write_failed`, which
            // record a reason first; this fallback is not normally reached.
            .unwrap_or(CloseReason::Dropped);
        Error::Closed { reason }
    }

    /// The writer could not write. New frames are refused from now on, but the connection is
    /// not closed here: the reader goes on until EOF or an error of its own, so that answers
    /// the daemon still sends (and a `$/fatal` explaining why it hung up) are not lost. A write
    /// to a Unix socket fails only when the daemon has closed it (or shut down its reading
    /// side), so the reader's EOF follows; on TCP the same close, or a reset, ends the reader
    /// with EOF or the reset's error.
    pub(crate) fn write_failed(&self, error: io::Error) {
        tracing::debug!(peer = %self.peer, %error, "writing to the daemon failed");
        *self
            .write_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(error));
        self.outbound.close(false);
    }

    /// Closes the connection: every waiting call fails, new calls are refused, the tasks stop.
    /// The first reason wins; later calls do nothing.
    ///
    /// Calls that were waiting get the cause itself — [`Error::Protocol`], [`Error::Io`], or
    /// [`Error::Closed`] with the EOF or `$/fatal` reason; calls made afterwards get
    /// [`Error::Closed`].
    pub(crate) fn close(&self, reason: CloseReason) {
        let Some(waiting) = self.pending.close(reason.clone(), error_for_waiter) else {
            return;
        };
        // Signal first, so that a caller woken below already sees `is_closed()`.
        self.closed.send_replace(Some(reason.clone()));
        self.stop_reading.store(true, Ordering::Release);
        self.reader.wake();
        match &reason {
            CloseReason::Dropped | CloseReason::Eof => {
                tracing::debug!(peer = %self.peer, %reason, "connection closed");
            }
            _ => tracing::warn!(peer = %self.peer, %reason, "connection closed"),
        }
        // A client that is dropped still sends what it queued (cancels, notifications); any
        // other close means the stream is gone or untrustworthy.
        self.outbound.close(matches!(reason, CloseReason::Dropped));
        // The daemon can no longer receive answers: stop the handlers serving it.
        self.serve.abort_all();
        waiting.wake();
    }
}

fn error_for_waiter(reason: &CloseReason) -> Error {
    match reason {
        CloseReason::Protocol(e) => Error::Protocol(e.clone()),
        CloseReason::Io(e) => {
            Error::Io(std::io::Error::new(e.kind(), crate::error::describe_io(e)))
        }
        other => Error::Closed {
            reason: other.clone(),
        },
    }
}
