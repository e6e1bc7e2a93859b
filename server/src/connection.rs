//! One client connection, driven by one task: it reads frames, starts a handler future per
//! request (or calls a synchronous handler inline, answering at once), collects finished
//! handlers and handler notifications into one output buffer, and writes that buffer — many
//! frames per system call. Requests run concurrently inside the task (a `FuturesUnordered`)
//! and are answered as they finish, so responses leave out of order. Nothing here is shared
//! with other connections except the read-only router and the daemon's atomic counters.
//!
//! Bounds, all from [`Limits`](crate::Limits):
//! - at most `max_in_flight` requests run at once; while that many run, the socket is not
//!   read (the client's writes back up in the kernel) — no request is refused for it;
//! - output waiting for the socket is capped near `max_outbound_bytes`; past it, finished
//!   handlers wait and the socket is not read, so a client that never reads pins at most
//!   `max_in_flight` requests and one buffer;
//! - handler notifications, partial results and requests to the client queue in a channel
//!   of `notification_queue` frames;
//! - version 2: up to `max_queued` more requests wait in the in-flight table's queue, and
//!   one more is answered -32001 while the connection keeps being read (client
//!   notifications still stop reading at `max_in_flight + max_queued` running).
//!
//! The first message in a version the daemon speaks fixes the connection's version; every
//! frame sent afterwards uses that version's encoder.
//!
//! Exactly one response per request: a request's id is in `table` (an
//! [`InFlight`](crate::in_flight::InFlight)) from the moment its handler starts or it is
//! queued until its response is encoded, and only the code that removes it encodes a
//! response. Cancel, deadline and supersede are decided by the table: a queued request is
//! answered at once; a running one has its token fired, the guard around the handler
//! future turns that into `Cancelled`, and `complete` answers it with the code the table
//! recorded. A disconnect drops every handler future and the table, which fires every
//! token (children of the connection's token, itself a child of the daemon's).

use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::task::{Context, Poll, Wake, Waker};

use bytes::{Buf, Bytes, BytesMut};
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::task::AtomicWaker;
use hearth_protocol::reserved::{self, Fatal};
use hearth_protocol::{
    Decoded, Encoder, ErrorCode, ErrorObject, FrameDecoder, Message, Notification, Request,
    RequestId, Version,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::budget::{Budget, Timer};
use crate::client::ClientRequests;
use crate::context::{NotificationContext, Notifier, RequestContext, TokenSlot};
use crate::in_flight::{Admission, InFlight, Stopped};
use crate::router::{
    Call, HandlerFuture, LastMethod, Reply, RequestFn, SyncFn, SyncOutcome, panic_message,
};
use crate::server::{ServerHandle, Shared};
use crate::stream::Stream;

/// Bytes reserved in the read buffer before each read.
const READ_CHUNK: usize = 16 * 1024;

/// How many rounds of work one wake-up may do before yielding to other tasks on the worker.
const ROUNDS_PER_POLL: usize = 32;

/// How many frames one round takes in before it writes the answers it has made.
///
/// A client with many calls in flight sends them in bursts. Answering a whole burst before
/// writing anything makes client and daemon take turns — each idle while the other works,
/// and each turn paying a wake-up — while writing every few dozen answers lets the client
/// start on them while the daemon goes on with the rest. In the 1 x 256 pipelined bench this
/// halved the time per call (about 1.05 µs -> 0.45-0.5 µs; 16, 32 and 64 did about equally
/// well, 128 worse). The cost is one more write per this many frames of a burst, which shows
/// when client and daemon share one core (no overlap to win there): pinned, 64 cost less
/// than 32 (0.65-0.68 against 0.71 µs per call), hence 64.
const FRAMES_PER_ROUND: usize = 64;

/// The waker the connection polls its two shutdown tokens with: it records that one of them
/// may have fired, then wakes the connection's task, which polls the tokens again only then.
#[derive(Debug)]
struct ShutdownWake {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Default for ShutdownWake {
    fn default() -> Self {
        // `true`: the first poll registers the tokens' waits.
        Self {
            fired: AtomicBool::new(true),
            task: AtomicWaker::new(),
        }
    }
}

impl Wake for ShutdownWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Release);
        self.task.wake();
    }
}

/// How a handler future ended.
enum Outcome {
    Reply(Reply),
    Error(ErrorObject),
    Cancelled,
    Panicked(String),
}

/// A running request (`Some(id)`) or client notification (`None`).
type Running = Pin<Box<dyn Future<Output = (Option<RequestId>, Outcome)> + Send>>;

/// Why a connection ended.
#[derive(Debug)]
pub(crate) enum End {
    /// The peer closed its end between frames.
    PeerClosed,
    /// The peer closed its end in the middle of a frame.
    PeerClosedMidFrame,
    /// We closed it after `$/fatal`.
    Fatal(String),
    /// Shutdown: every request answered.
    Drained,
    /// The peer read none of our output for `write_timeout`.
    Stalled(std::time::Duration),
    /// Reading or writing failed.
    Io(std::io::Error),
}

impl End {
    /// Whether output still buffered should be flushed before closing.
    ///
    /// A peer that closed its end may only have half-closed it and still be reading: the
    /// answers already encoded go out whole (bounded by `flush_timeout`, and failing at once
    /// if the peer is really gone), so it never sees a frame cut short.
    fn wants_flush(&self) -> bool {
        matches!(
            self,
            Self::Fatal(_) | Self::Drained | Self::PeerClosed | Self::PeerClosedMidFrame
        )
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PeerClosed => write!(f, "closed by peer"),
            Self::PeerClosedMidFrame => write!(f, "closed by peer in the middle of a frame"),
            Self::Fatal(why) => write!(f, "closed after a protocol error: {why}"),
            Self::Drained => write!(f, "closed for shutdown"),
            Self::Stalled(t) => write!(f, "dropped: the peer read nothing for {t:?}"),
            Self::Io(e) => write!(f, "closed after an I/O error: {e}"),
        }
    }
}

/// The state of one connection. See the module docs.
pub(crate) struct Connection<S> {
    stream: S,
    id: u64,
    shared: Arc<Shared>,
    encoder: Encoder,
    inbuf: BytesMut,
    frames: FrameDecoder,
    outbuf: BytesMut,
    running: FuturesUnordered<Running>,
    /// Requests whose response has not been encoded yet (running, or queued in version 2).
    table: InFlight<Request, Option<Arc<Stream>>>,
    /// Fires at the table's earliest deadline; never armed while no request has one.
    deadline_timer: Timer,
    /// The token slot lent to the next request launched (see [`TokenSlot`]): reused while
    /// nothing kept the last one, so a request whose handler asks for no token costs none.
    spare: Arc<TokenSlot>,
    /// The context synchronous handlers borrow (see [`Router::sync_method`]): built at the
    /// first such call, reused for every later one (id, deadline, stream and token slot set
    /// per call), and dropped when the version (and with it the encoder and client) changes.
    ///
    /// [`Router::sync_method`]: crate::Router::sync_method
    sync_ctx: Option<Box<RequestContext>>,
    /// The method this connection's last request named, checked first on the next one.
    last_method: LastMethod,
    /// Fixed by the first message in a version the daemon speaks.
    version: Option<Version>,
    /// Version 2: requests the daemon made of the client, and the ids it gave up on.
    client: Option<(Arc<ClientRequests>, mpsc::UnboundedReceiver<RequestId>)>,
    notes: mpsc::Receiver<Bytes>,
    notifier: Notifier,
    /// Per-connection children of the daemon's shutdown tokens: waiting on them touches only
    /// this connection's token state, never a lock shared with other connections.
    drain: CancellationToken,
    hard: CancellationToken,
    /// The waker `run` polls `drain` and `hard` with: its `fired` flag is set, synchronously,
    /// by either token firing, so a clear flag means neither fired since `run` last looked.
    shutdown: Arc<ShutdownWake>,
    draining: bool,
    closing: Option<End>,
    requests: u64,
    errors: Budget,
    unknown_cancels: Budget,
    /// When the partial frame in `inbuf` was first seen waiting for more bytes.
    partial_since: Option<Instant>,
    frame_timer: Timer,
    /// When output first waited for a peer that took none of it.
    stalled_since: Option<Instant>,
    stall_timer: Timer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub(crate) fn new(stream: S, shared: Arc<Shared>, id: u64) -> Self {
        let limits = &shared.limits;
        let encoder = Encoder::new(limits.max_frame);
        let (tx, notes) = mpsc::channel(limits.notification_queue);
        let hard = shared.hard.child_token();
        Self {
            stream,
            id,
            frames: FrameDecoder::new(limits.max_frame),
            encoder,
            inbuf: BytesMut::with_capacity(READ_CHUNK),
            outbuf: BytesMut::with_capacity(READ_CHUNK),
            running: FuturesUnordered::new(),
            // Request tokens descend from the daemon's hard-stop token: a forced shutdown
            // reaches work a handler moved elsewhere, and so does dropping this connection.
            table: InFlight::new(hard.clone(), limits.queue_bound()),
            deadline_timer: Timer::default(),
            spare: Arc::new(TokenSlot::new(hard.clone())),
            sync_ctx: None,
            last_method: LastMethod::default(),
            version: None,
            client: None,
            notes,
            notifier: Notifier { tx, encoder },
            drain: shared.drain.child_token(),
            hard,
            shutdown: Arc::new(ShutdownWake::default()),
            draining: false,
            closing: None,
            requests: 0,
            errors: Budget::per_minute(limits.max_errors_per_minute),
            unknown_cancels: Budget::per_minute(limits.max_unknown_cancels_per_minute),
            partial_since: None,
            frame_timer: Timer::default(),
            stalled_since: None,
            stall_timer: Timer::default(),
            shared,
        }
    }

    /// Serves the connection until the peer leaves, a protocol error closes it, or shutdown
    /// has answered everything.
    pub(crate) async fn run(mut self) -> (End, u64) {
        let (drain, hard) = (self.drain.clone(), self.hard.clone());
        let mut drain_wait = std::pin::pin!(drain.cancelled());
        let mut hard_wait = std::pin::pin!(hard.cancelled());
        let mut hard_done = false;
        // The two shutdown tokens are polled with a waker of their own, which marks `fired`
        // before waking this task: a wake-up for input or a finished handler does not poll
        // them again (that was ~170 instructions per wake-up of an idle connection).
        let shutdown = self.shutdown.clone();
        let shutdown_waker = Waker::from(shutdown.clone());
        // The daemon's shared state, held here for the connection's life so that the request
        // path borrows the router from it instead of cloning the `Arc` (two atomic
        // read-modify-writes on a line every connection shares) for each request.
        let shared = self.shared.clone();
        let end = poll_fn(|cx| {
            shutdown.task.register(cx.waker());
            // Set before the first poll; after that only by a token's wake-up. Polled after
            // `register`, so a token that fires in between is seen here or wakes the task.
            if shutdown.fired.swap(false, AcqRel) {
                let mut tokens = Context::from_waker(&shutdown_waker);
                if !self.draining && drain_wait.as_mut().poll(&mut tokens).is_ready() {
                    self.begin_drain();
                }
                if !hard_done && hard_wait.as_mut().poll(&mut tokens).is_ready() {
                    hard_done = true;
                    self.draining = true;
                    self.abandon_all(ErrorCode::SHUTTING_DOWN, "the daemon is shutting down");
                }
            }
            self.poll_io(&shared, cx)
        })
        .await;
        if end.wants_flush() && !self.outbuf.is_empty() {
            let flush = async {
                self.stream.write_all(&self.outbuf).await?;
                self.stream.flush().await
            };
            let _ = tokio::time::timeout(self.shared.limits.flush_timeout, flush).await;
        }
        let _ =
            tokio::time::timeout(self.shared.limits.flush_timeout, self.stream.shutdown()).await;
        let _ = self.abandon_all_silently(false);
        if let Some((client, _)) = &self.client {
            client.close();
        }
        (end, self.requests)
    }

    /// Shutdown has begun: nothing new starts, and queued requests are answered -32003.
    fn begin_drain(&mut self) {
        self.draining = true;
        let error = ErrorObject::new(ErrorCode::SHUTTING_DOWN, "the daemon is shutting down");
        for (id, _) in self.table.take_queued() {
            self.send_error(id, &error);
        }
    }

    /// Does every piece of work that is ready; returns when the connection must end.
    fn poll_io(&mut self, shared: &Shared, cx: &mut Context<'_>) -> Poll<End> {
        let max_out = self.shared.limits.max_outbound_bytes;
        let max_in_flight = self.shared.limits.max_in_flight;
        // Whether the socket said "nothing to read" during this poll. Its waker is registered
        // then, so new bytes wake the task for another poll; asking again in a later round of
        // this one would only repeat the answer (on the sequential path that was two extra
        // reads, and buffer reservations, per call). Nor can the read buffer hold a whole
        // frame then: it was just found not to, and only a read adds bytes. A write clears
        // it: the read after a write is the one the transport polls the socket in before
        // parking (hearth-transport's short poll; on the sequential path that read is where
        // the next request is caught without a wake-up).
        let mut read_pending = false;
        for _ in 0..ROUNDS_PER_POLL {
            let mut progress = false;

            // Finished handlers become responses while there is room for output. An empty set
            // is not polled: that would only register this task's waker with it (~70
            // instructions a time, three times per call on the sequential path), and a future
            // pushed later is polled in the round after its push, which registers it then.
            while !self.running.is_empty() && self.outbuf.len() < max_out {
                match self.running.poll_next_unpin(cx) {
                    Poll::Ready(Some((id, outcome))) => {
                        self.complete(id, outcome);
                        progress = true;
                    }
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            // Version 2: queued requests start as running ones finish.
            while self.table.queued() > 0
                && self.running.len() < max_in_flight
                && self.outbuf.len() < max_out
                && self.closing.is_none()
            {
                self.start_queued(cx);
                progress = true;
            }
            // Deadlines: one timer, for the earliest; never armed without one.
            if let Some(at) = self.table.next_deadline()
                && self.deadline_timer.poll_at(at, cx).is_ready()
            {
                self.expire();
                progress = true;
            }
            // Notifications from handlers, likewise — but nothing may follow `$/fatal`. The
            // channel never reports closed: we hold a sender ourselves.
            while self.closing.is_none() && self.outbuf.len() < max_out && self.notes_possible() {
                match self.notes.poll_recv(cx) {
                    Poll::Ready(Some(frame)) => {
                        self.outbuf.extend_from_slice(&frame);
                        progress = true;
                    }
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            // Cancels of requests the daemon gave up on, after any request frame they follow
            // (those came through the queue just drained).
            if self.closing.is_none() && self.outbuf.len() < max_out && self.notes.is_empty() {
                progress |= self.poll_client_cancels(cx);
            }
            // Everything gathered so far goes out in as few writes as the kernel allows.
            while !self.outbuf.is_empty() {
                match Pin::new(&mut self.stream).poll_write(cx, &self.outbuf) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(End::Io(std::io::ErrorKind::WriteZero.into()));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.outbuf.advance(n);
                        self.stalled_since = None;
                        progress = true;
                        read_pending = false;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(End::Io(e)),
                    Poll::Pending => break,
                }
            }

            if let Some(end) = self.closing.take() {
                return Poll::Ready(end);
            }
            if self.draining && self.running.is_empty() {
                // Whole frames already read but never decoded (the connection was at its
                // limit) are requests too: each is owed its -32003.
                if self.answer_buffered_frames(shared, cx) {
                    continue;
                }
                return Poll::Ready(End::Drained);
            }

            // New work, while there is room for it — and at most FRAMES_PER_ROUND frames
            // before the answers made so far are written. Version 2 keeps reading past
            // `max_in_flight` (requests queue, or are answered -32001; answers from the
            // client must never wait behind the limit).
            let read_limit = match self.version {
                Some(Version::V2) => max_in_flight.saturating_add(self.shared.limits.queue_bound()),
                _ => max_in_flight,
            };
            let mut taken = 0;
            // Whether we wanted bytes and the socket had none: only then is the peer the one
            // keeping a partial frame partial.
            let mut starved = false;
            while self.closing.is_none()
                && self.running.len() < read_limit
                && self.outbuf.len() < max_out
                && taken < FRAMES_PER_ROUND
            {
                if read_pending {
                    starved = true;
                    break;
                }
                taken += 1;
                match self.frames.decode(&mut self.inbuf) {
                    Ok(Some(frame)) => {
                        self.partial_since = None;
                        self.dispatch(frame, shared, cx);
                        progress = true;
                    }
                    Ok(None) => {
                        self.inbuf.reserve(READ_CHUNK);
                        match tokio_util::io::poll_read_buf(
                            Pin::new(&mut self.stream),
                            cx,
                            &mut self.inbuf,
                        ) {
                            Poll::Ready(Ok(0)) => {
                                return Poll::Ready(if self.frames.is_idle(&self.inbuf) {
                                    End::PeerClosed
                                } else {
                                    End::PeerClosedMidFrame
                                });
                            }
                            Poll::Ready(Ok(_)) => progress = true,
                            Poll::Ready(Err(e)) => return Poll::Ready(End::Io(e)),
                            Poll::Pending => {
                                read_pending = true;
                                starved = true;
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        self.fatal(e.code(), e.to_string());
                        progress = true;
                    }
                }
            }

            if !progress {
                // Nothing to do until something arrives: make sure that wait is bounded.
                let limits = &self.shared.limits;
                if self.closing.is_none() && starved && !self.frames.is_idle(&self.inbuf) {
                    let since = *self.partial_since.get_or_insert_with(Instant::now);
                    let (timeout, timer) = (limits.frame_timeout, &mut self.frame_timer);
                    if timer.poll_at(since + timeout, cx).is_ready() {
                        let msg =
                            format!("a frame was started but not finished within {timeout:?}");
                        self.fatal(ErrorCode::FRAME_TIMEOUT, msg);
                        continue;
                    }
                } else if !starved {
                    // The daemon chose not to read (at its limit, or its output is full):
                    // bytes waiting meanwhile do not count against the peer.
                    self.partial_since = None;
                }
                if !self.outbuf.is_empty() {
                    let since = *self.stalled_since.get_or_insert_with(Instant::now);
                    let timeout = limits.write_timeout;
                    if self.stall_timer.poll_at(since + timeout, cx).is_ready() {
                        return Poll::Ready(End::Stalled(timeout));
                    }
                }
                return Poll::Pending;
            }
        }
        // Still busy: let other connections on this worker run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// At shutdown with nothing running: decodes and answers the whole frames left in the
    /// read buffer (requests get -32003). Returns whether it did anything.
    fn answer_buffered_frames(&mut self, shared: &Shared, cx: &mut Context<'_>) -> bool {
        let mut any = false;
        while self.closing.is_none() && self.running.is_empty() {
            match self.frames.decode(&mut self.inbuf) {
                Ok(Some(frame)) => {
                    self.dispatch(frame, shared, cx);
                    any = true;
                }
                Ok(None) => break,
                Err(e) => {
                    self.fatal(e.code(), e.to_string());
                    any = true;
                }
            }
        }
        any
    }

    /// Sends `[2, 3, id]` for each request the daemon gave up on.
    fn poll_client_cancels(&mut self, cx: &mut Context<'_>) -> bool {
        let Some((_, cancels)) = &mut self.client else {
            return false;
        };
        let mut any = false;
        while let Poll::Ready(Some(id)) = cancels.poll_recv(cx) {
            if self.encoder.cancel(&mut self.outbuf, id).is_err() {
                tracing::warn!(conn = self.id, "cannot encode a cancel");
            }
            any = true;
        }
        any
    }

    /// Answers what the table stopped: queued requests now; running ones when their future
    /// ends (`complete`).
    fn expire(&mut self) {
        for stopped in self.table.expire(Instant::now()) {
            self.answer_stopped(stopped);
        }
    }

    fn answer_stopped(&mut self, stopped: Stopped<Request>) {
        if let Stopped::Queued(id, _, code) = stopped {
            self.send_error(id, &error_for(code));
        }
    }

    /// Decodes one frame and acts on it; `shared` is `self.shared`, borrowed for the router.
    fn dispatch(&mut self, frame: Bytes, shared: &Shared, cx: &mut Context<'_>) {
        // For a body that fails to decode, the version its envelope starts with (if it is
        // one we speak) still fixes or checks the connection's version, so the error goes
        // out in the version the peer speaks.
        let peeked = peek_version(&frame);
        let message = match Message::decode_any(frame, self.shared.limits.max_depth) {
            Ok(Decoded { version, message }) => {
                match self.version {
                    Some(v) if v == version => {}
                    Some(v) => {
                        let msg = format!(
                            "a version {version} message on a version {v} connection; supported: {:?}",
                            hearth_protocol::SUPPORTED_VERSIONS
                        );
                        return self.fatal(ErrorCode::UNSUPPORTED_VERSION, msg);
                    }
                    None => self.set_version(version),
                }
                Ok(message)
            }
            Err(e) => {
                // Only a well-formed body has a version (PROTOCOL.md §8.1's order of checks).
                let peeked = peeked.filter(|_| e.code() != ErrorCode::PARSE_ERROR);
                match (self.version, peeked) {
                    (None, Some(version)) => self.set_version(version),
                    (Some(v), Some(version)) if v != version && !e.is_fatal() => {
                        let msg = format!(
                            "a version {version} message on a version {v} connection; supported: {:?}",
                            hearth_protocol::SUPPORTED_VERSIONS
                        );
                        return self.fatal(ErrorCode::UNSUPPORTED_VERSION, msg);
                    }
                    _ => {}
                }
                Err(e)
            }
        };
        match message {
            Ok(Message::Request(req)) => self.start_request(req, shared, cx),
            Ok(Message::Notification(n)) => self.start_notification(n),
            Ok(Message::Cancel(c)) => match self.table.stop(c.id, ErrorCode::REQUEST_CANCELLED) {
                Some(stopped) => self.answer_stopped(stopped),
                // Unknown ids are ignored (the request may have just finished), up to a point.
                None => {
                    if !self.unknown_cancels.spend() {
                        let limit = self.shared.limits.max_unknown_cancels_per_minute;
                        let msg = format!("more than {limit} cancels for unknown ids in a minute");
                        self.fatal(ErrorCode::TOO_MANY_ERRORS, msg);
                    }
                }
            },
            Ok(Message::Response(r)) => {
                let routed = match &self.client {
                    Some((client, _)) => client.resolve(r.id, r.outcome),
                    None => false,
                };
                if !routed {
                    tracing::debug!(
                        conn = self.id,
                        id = r.id.get(),
                        "ignoring a response to no request of the daemon's"
                    );
                }
            }
            // Partials travel from the daemon only; one from the client means nothing.
            Ok(Message::Partial(_)) => {}
            Err(e) if e.is_fatal() => self.fatal(e.code(), e.to_string()),
            Err(e) => {
                if !self.spend_error() {
                    return;
                }
                let error = e.to_error_object();
                match e.request_id() {
                    Some(id) => self.send_error(id, &error),
                    None => {
                        self.shared.counters.error(error.code);
                        if self
                            .encoder
                            .error_notification(&mut self.outbuf, &error)
                            .is_err()
                        {
                            tracing::warn!(conn = self.id, "cannot encode $/error");
                        }
                    }
                }
            }
        }
    }

    /// Fixes the connection's version: every frame from now on is encoded in it.
    fn set_version(&mut self, version: Version) {
        self.version = Some(version);
        self.encoder = self.encoder.with_version(version);
        self.notifier.encoder = self.encoder;
        self.sync_ctx = None;
        if version == Version::V2 {
            let limits = &self.shared.limits;
            let (client, cancels) =
                ClientRequests::new(limits.max_client_requests, limits.client_request_timeout);
            self.client = Some((Arc::new(client), cancels));
        }
    }

    fn start_request(&mut self, mut req: Request, shared: &Shared, cx: &mut Context<'_>) {
        self.requests += 1;
        let id = req.id;
        let entry = shared
            .router
            .get_cached(req.method(), &mut self.last_method);
        self.shared.counters.request(entry.map(|e| e.index));
        // The flag is set from `run`, between polls; a shutdown that began during this poll
        // (the `shutdown` method finishing just now) shows only on the token. Asking the token
        // locks a mutex, so it is asked only when its waker has marked `fired` since `run`
        // last polled it (cancelling wakes the waiters before `cancel` returns; `fired` also
        // starts out set, before `run` first registers them).
        if self.draining || (self.shutdown.fired.load(Acquire) && self.drain.is_cancelled()) {
            if !self.draining {
                self.begin_drain();
            }
            return self.send_error(
                id,
                &ErrorObject::new(ErrorCode::SHUTTING_DOWN, "the daemon is shutting down"),
            );
        }
        if self.table.contains(id) {
            if !self.spend_error() {
                return;
            }
            let msg = format!("request id {id} is already in flight on this connection");
            return self.send_error(id, &ErrorObject::new(ErrorCode::INVALID_REQUEST, msg));
        }
        let Some(entry) = entry else {
            let msg = format!("method not found: {}", req.method());
            return self.send_error(id, &ErrorObject::new(ErrorCode::METHOD_NOT_FOUND, msg));
        };
        // Version 2 options; a request without them skips all of this.
        let mut admission = Admission::default();
        if !req.options.is_default() {
            if let Some(key) = &req.options.supersede
                && let Some(stopped) = self.table.supersede(key)
            {
                self.answer_stopped(stopped);
            }
            match req.options.deadline_ms {
                Some(0) => return self.send_error(id, &error_for(ErrorCode::DEADLINE_EXCEEDED)),
                Some(ms) => {
                    admission.deadline =
                        Some(Instant::now() + std::time::Duration::from_millis(ms));
                }
                None => {}
            }
            // Moved, not cloned (a reference count up and down again): nothing reads the
            // request's own copy after this.
            admission.key = req.options.supersede.take();
        }
        let limits = &self.shared.limits;
        if self.running.len() >= limits.max_in_flight || self.table.queued() > 0 {
            // Only version 2 reads this far past the limit.
            if let Err(req) = self.table.enqueue(id, admission, req) {
                let msg = format!(
                    "{} requests running and {} waiting on this connection; try again later",
                    limits.max_in_flight,
                    self.table.queued()
                );
                self.send_error(req.id, &ErrorObject::new(ErrorCode::SERVER_BUSY, msg));
            }
            return;
        }
        let stream = req.options.stream.then(|| Arc::new(Stream::default()));
        let deadline = admission.deadline;
        let call = match &entry.call {
            Call::Async(call) => call,
            Call::Sync(call) => {
                return self.call_sync(call, id, req.params, deadline, stream, None);
            }
        };
        let slot = self.lend_slot();
        let Some(fut) = self.launch(call, req, slot.clone(), deadline, stream.clone(), cx) else {
            return;
        };
        // Still running: now it needs its token (the handler's, if it asked for it already),
        // for the table to cancel. No cancel can have been read since the handler started.
        let token = slot.token().clone();
        // `insert_running` cannot fail: the id was checked above.
        if self
            .table
            .insert_running(id, token.clone(), admission, stream)
            .is_ok()
        {
            self.shared.counters.in_flight.fetch_add(1, Relaxed);
            self.running.push(Box::pin(guard(id, token, fut)));
        }
    }

    /// The slot for the next request's token: the spare, emptied, when nothing holds it any
    /// more (the usual case); a new one when a running request or a kept context does.
    fn lend_slot(&mut self) -> Arc<TokenSlot> {
        match Arc::get_mut(&mut self.spare) {
            Some(slot) => slot.reset(),
            None => self.spare = Arc::new(TokenSlot::new(self.hard.clone())),
        }
        self.spare.clone()
    }

    /// Starts the oldest queued request.
    fn start_queued(&mut self, cx: &mut Context<'_>) {
        let Some((id, token, req)) = self
            .table
            .start_next(|req| req.options.stream.then(|| Arc::new(Stream::default())))
        else {
            return;
        };
        let shared = self.shared.clone();
        let Some(entry) = shared.router.get(req.method()) else {
            // Looked up when it was read; the router never changes.
            return self.finish_now(id, Outcome::Error(error_for(ErrorCode::METHOD_NOT_FOUND)));
        };
        let (deadline, stream) = self
            .table
            .running_entry(id)
            .map(|(deadline, stream)| (deadline, stream.clone()))
            .unwrap_or_default();
        let call = match &entry.call {
            Call::Async(call) => call,
            Call::Sync(call) => {
                self.call_sync(call, id, req.params, deadline, stream, Some(token));
                // Answered; drop the table's entry without a second answer.
                let _ = self.table.finish(id);
                return;
            }
        };
        let slot = Arc::new(TokenSlot::with_token(self.hard.clone(), token.clone()));
        match self.launch(call, req, slot, deadline, stream, cx) {
            Some(fut) => {
                self.shared.counters.in_flight.fetch_add(1, Relaxed);
                self.running.push(Box::pin(guard(id, token, fut)));
            }
            None => {
                // `launch` answered it; drop the table's entry without a second answer.
                let _ = self.table.finish(id);
            }
        }
    }

    /// A running request that ended before it ever reached the running set.
    fn finish_now(&mut self, id: RequestId, outcome: Outcome) {
        let stream = self.table.finish(id).and_then(|f| f.data);
        self.answer(id, outcome, stream.as_deref());
    }

    /// Calls the handler and polls it once. Most handlers finish on that first poll (echo,
    /// lookups, `$/hello`): those are answered at once, with no place in the table or the
    /// running set, and `None` is returned; otherwise the pending future.
    fn launch(
        &mut self,
        call: &RequestFn,
        req: Request,
        token: Arc<TokenSlot>,
        deadline: Option<Instant>,
        stream: Option<Arc<Stream>>,
        cx: &mut Context<'_>,
    ) -> Option<HandlerFuture> {
        let id = req.id;
        let ctx = RequestContext {
            deadline,
            stream: stream.clone(),
            ..self.context(id, token)
        };
        let outcome = match call(req.params, ctx) {
            Err(error) => Outcome::Error(error),
            Ok(mut fut) => {
                // Polling here registers this task's waker; if the handler is pending, the
                // running set polls it again with its own, and the extra registration costs
                // at most one spurious wake-up.
                match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
                    Ok(Poll::Ready(Ok(reply))) => Outcome::Reply(reply),
                    Ok(Poll::Ready(Err(error))) => Outcome::Error(error),
                    Err(panic) => Outcome::Panicked(panic_message(&*panic)),
                    Ok(Poll::Pending) => return Some(fut),
                }
            }
        };
        self.answer(id, outcome, stream.as_deref());
        None
    }

    /// Calls a synchronous handler and answers it, inline: no future, no context of its own.
    /// The handler borrows the connection's reused context, set up for this request; `token`
    /// is the request's token when the table made one already (a request that was queued),
    /// else the context's slot makes one only if the handler asks.
    fn call_sync(
        &mut self,
        call: &SyncFn,
        id: RequestId,
        params: Bytes,
        deadline: Option<Instant>,
        stream: Option<Arc<Stream>>,
        token: Option<CancellationToken>,
    ) {
        let mut ctx = match self.sync_ctx.take() {
            Some(ctx) => ctx,
            None => Box::new(self.context(id, Arc::new(TokenSlot::new(self.hard.clone())))),
        };
        ctx.id = id;
        ctx.deadline = deadline;
        ctx.stream = stream;
        if let Some(token) = token {
            ctx.token = Arc::new(TokenSlot::with_token(self.hard.clone(), token));
        }
        let stream = ctx.stream.as_deref();
        call(params, &ctx, &mut |outcome| {
            self.answer_sync(id, outcome, stream);
        });
        ctx.stream = None;
        // Empty the slot for the next call, so that a token this handler took (and perhaps
        // handed to other work) is never the next request's: emptied in place when nothing
        // else holds the slot, replaced when a context clone the handler kept does.
        match Arc::get_mut(&mut ctx.token) {
            Some(slot) => slot.reset(),
            None => ctx.token = Arc::new(TokenSlot::new(self.hard.clone())),
        }
        self.sync_ctx = Some(ctx);
    }

    /// A context for request `id` on this connection, with no deadline or stream.
    fn context(&self, id: RequestId, token: Arc<TokenSlot>) -> RequestContext {
        RequestContext {
            id,
            token,
            notifier: self.notifier.clone(),
            server: ServerHandle::new(self.shared.clone()),
            connection: self.id,
            deadline: None,
            stream: None,
            client: self.client.as_ref().map(|(c, _)| c.clone()),
        }
    }

    fn start_notification(&mut self, n: Notification) {
        let Some(handler) = self.shared.router.get_notification(n.method()) else {
            tracing::debug!(
                conn = self.id,
                method = n.method(),
                "ignoring an unknown notification"
            );
            return;
        };
        if self.draining {
            return;
        }
        let ctx = NotificationContext {
            notifier: self.notifier.clone(),
            server: ServerHandle::new(self.shared.clone()),
            connection: self.id,
        };
        let method = n.method;
        match handler(n.params, ctx) {
            Ok(fut) => {
                let conn = self.id;
                self.running.push(Box::pin(async move {
                    if let Err(panic) = AssertUnwindSafe(fut).catch_unwind().await {
                        tracing::error!(conn, method = ?method, "notification handler panicked: {}", panic_message(&*panic));
                    }
                    (None, Outcome::Cancelled)
                }));
            }
            Err(e) => {
                tracing::debug!(
                    conn = self.id,
                    method = method.as_str(),
                    "dropping notification: {}",
                    e.message
                );
            }
        }
    }

    /// Turns a finished handler into its one response.
    fn complete(&mut self, id: Option<RequestId>, outcome: Outcome) {
        let Some(id) = id else { return };
        let Some(finished) = self.table.finish(id) else {
            return; // already answered by `abandon_all`; cannot happen while both run here
        };
        self.shared.counters.in_flight.fetch_sub(1, Relaxed);
        // Stopped by the table (deadline, supersede): that is the answer, unless the handler
        // finished in the same instant.
        let outcome = match (outcome, finished.reason) {
            (Outcome::Cancelled, Some(code)) => Outcome::Error(error_for(code)),
            (outcome, _) => outcome,
        };
        self.answer(id, outcome, finished.data.as_deref());
    }

    /// Whether a handler notification may be queued or still come. Polling the channel
    /// registers this task's waker each time, which cost ~600 instructions per call in the
    /// sequential profile; with no sender alive but our own (no handler running, no
    /// `Notifier` kept) and the queue empty, nothing can arrive until we hand out a sender
    /// again, which only this task does. The context kept for synchronous handlers holds a
    /// sender too, but sends nothing between their calls (it is lent only during one).
    fn notes_possible(&self) -> bool {
        let own = 1 + usize::from(self.sync_ctx.is_some());
        self.notes.sender_strong_count() > own || !self.notes.is_empty()
    }

    /// Encodes the one response to request `id`.
    fn answer(&mut self, id: RequestId, outcome: Outcome, stream: Option<&Stream>) {
        self.before_answer(stream);
        let error = match outcome {
            Outcome::Reply(reply) => match reply.write(&self.encoder, &mut self.outbuf, id) {
                Ok(()) => return,
                Err(e) => unencodable(e),
            },
            Outcome::Error(e) => e,
            Outcome::Cancelled => {
                ErrorObject::new(ErrorCode::REQUEST_CANCELLED, "request cancelled")
            }
            Outcome::Panicked(msg) => self.panicked(id, &msg),
        };
        self.send_error(id, &error);
    }

    /// [`answer`](Self::answer) for a synchronous handler: the same frames, in the same order.
    fn answer_sync(&mut self, id: RequestId, outcome: SyncOutcome<'_>, stream: Option<&Stream>) {
        self.before_answer(stream);
        let written = match outcome {
            SyncOutcome::Raw(raw) => self.encoder.response_raw(&mut self.outbuf, id, &raw),
            SyncOutcome::Typed(write) => write(&self.encoder, &mut self.outbuf, id),
            SyncOutcome::Error(e) => return self.send_error(id, &e),
            SyncOutcome::Panicked(msg) => {
                let error = self.panicked(id, &msg);
                return self.send_error(id, &error);
            }
        };
        if let Err(e) = written {
            self.send_error(id, &unencodable(e));
        }
    }

    /// What goes out before a request's response: notifications and partials the handler
    /// sent before it returned. It ran on this task, so all of them are already in the
    /// queue; partials held back by a dropping policy follow them, and the stream closes so
    /// that none can come after the response.
    fn before_answer(&mut self, stream: Option<&Stream>) {
        while !self.notes.is_empty() {
            let Ok(frame) = self.notes.try_recv() else {
                break;
            };
            self.outbuf.extend_from_slice(&frame);
        }
        if let Some(stream) = stream {
            stream.close_into(&mut self.outbuf);
        }
    }

    /// Logs a handler's panic; the error it is answered with.
    fn panicked(&self, id: RequestId, msg: &str) -> ErrorObject {
        tracing::error!(conn = self.id, id = id.get(), "handler panicked: {msg}");
        ErrorObject::new(
            ErrorCode::INTERNAL_ERROR,
            format!("the handler panicked: {msg}"),
        )
    }

    fn send_error(&mut self, id: RequestId, error: &ErrorObject) {
        self.shared.counters.error(error.code);
        if self
            .encoder
            .error_response(&mut self.outbuf, id, error)
            .is_err()
        {
            // Only a message or data larger than a frame can fail; send the code alone.
            let short = ErrorObject::new(error.code, "error too large to send");
            if self
                .encoder
                .error_response(&mut self.outbuf, id, &short)
                .is_err()
            {
                tracing::warn!(
                    conn = self.id,
                    id = id.get(),
                    "cannot encode an error response"
                );
            }
        }
    }

    /// Counts a protocol error against the budget; past it, closes the connection.
    fn spend_error(&mut self) -> bool {
        if self.errors.spend() {
            return true;
        }
        let limit = self.shared.limits.max_errors_per_minute;
        self.fatal(
            ErrorCode::TOO_MANY_ERRORS,
            format!("more than {limit} protocol errors in a minute"),
        );
        false
    }

    /// Sends `$/fatal` and stops reading; the connection closes once output is flushed.
    fn fatal(&mut self, code: ErrorCode, message: String) {
        self.shared.counters.error(code);
        // Notifications handlers queued before this point go out before `$/fatal`; none after.
        while let Ok(frame) = self.notes.try_recv() {
            self.outbuf.extend_from_slice(&frame);
        }
        let fatal = Fatal {
            code: code.0,
            message: message.clone(),
            supported: hearth_protocol::SUPPORTED_VERSIONS.to_vec(),
        };
        if self
            .encoder
            .notification(&mut self.outbuf, reserved::FATAL, &fatal)
            .is_err()
        {
            tracing::warn!(conn = self.id, "cannot encode $/fatal");
        }
        let _ = self.abandon_all_silently(false);
        self.closing = Some(End::Fatal(message));
    }

    /// Stops every running and queued request and answers each with `code`.
    fn abandon_all(&mut self, code: ErrorCode, message: &str) {
        let error = ErrorObject::new(code, message);
        // Partials and notifications already queued go before these responses.
        while let Ok(frame) = self.notes.try_recv() {
            self.outbuf.extend_from_slice(&frame);
        }
        let ids = self.abandon_all_silently(true);
        for id in ids {
            self.send_error(id, &error);
        }
    }

    /// Stops every request without answering (the peer is gone or being cut off); returns
    /// their ids. Their streams close (held chunks go out first), so that work a handler
    /// moved elsewhere cannot send a partial after the answer.
    fn abandon_all_silently(&mut self, flush_held: bool) -> Vec<RequestId> {
        let n = self.table.running() as u64;
        let cleared = self.table.clear();
        self.shared.counters.in_flight.fetch_sub(n, Relaxed);
        self.running.clear();
        let mut ids = Vec::with_capacity(cleared.len());
        for (id, data) in cleared {
            if let Some(Some(stream)) = data {
                if flush_held {
                    stream.close_into(&mut self.outbuf);
                } else {
                    stream.close_into(&mut BytesMut::new());
                }
            }
            ids.push(id);
        }
        ids
    }
}

/// However the connection ends — `run` returning, or its future dropped mid-poll — its token
/// fires: every request token descends from it, so work a handler moved elsewhere stops, also
/// for requests answered long ago whose token was made after the fact (see [`TokenSlot`]).
impl<S> Drop for Connection<S> {
    fn drop(&mut self) {
        self.hard.cancel();
    }
}

/// The version a frame body's envelope claims, read from its first two bytes when they are
/// a short array header and a version we speak; `None` otherwise.
fn peek_version(body: &[u8]) -> Option<Version> {
    match body {
        [0x90..=0x9f, v, ..] => Version::from_number(u64::from(*v)),
        _ => None,
    }
}

/// The error object for a code the connection answers by itself.
fn error_for(code: ErrorCode) -> ErrorObject {
    let message = match code {
        ErrorCode::SUPERSEDED => "superseded",
        ErrorCode::DEADLINE_EXCEEDED => "deadline exceeded",
        ErrorCode::REQUEST_CANCELLED => "request cancelled",
        ErrorCode::SHUTTING_DOWN => "the daemon is shutting down",
        _ => "request stopped",
    };
    ErrorObject::new(code, message)
}

/// Runs a handler future so that a cancel, a panic or an error each become an [`Outcome`].
/// The handler is polled before the token, so a handler that is already done wins over a
/// cancel that arrives in the same instant (either answer is correct; this one is cheaper).
async fn guard(
    id: RequestId,
    token: CancellationToken,
    fut: HandlerFuture,
) -> (Option<RequestId>, Outcome) {
    let outcome = tokio::select! {
        biased;
        r = AssertUnwindSafe(fut).catch_unwind() => match r {
            Ok(Ok(reply)) => Outcome::Reply(reply),
            Ok(Err(error)) => Outcome::Error(error),
            Err(panic) => Outcome::Panicked(panic_message(&*panic)),
        },
        () = token.cancelled() => Outcome::Cancelled,
    };
    (Some(id), outcome)
}

/// The error for a result that could not be encoded.
fn unencodable(e: hearth_protocol::EncodeError) -> ErrorObject {
    match e {
        hearth_protocol::EncodeError::TooLarge { len, max } => ErrorObject::new(
            ErrorCode::FRAME_TOO_LARGE,
            format!("the result is {len} bytes, more than the {max}-byte frame limit"),
        ),
        e => ErrorObject::new(
            ErrorCode::INTERNAL_ERROR,
            format!("cannot encode the result: {e}"),
        ),
    }
}
