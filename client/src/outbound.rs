//! The outbound queue: one shared byte buffer that callers append whole frames to and the
//! writer task empties, all of it, into one `write_all` per wakeup. Appending never awaits I/O;
//! a caller waits only when the buffer is over its bound, which is what bounds memory when the
//! daemon reads slower than we write.
//!
//! No user code (`Serialize` impls) runs under the lock: frames with typed params are encoded
//! by the caller before they get here, and only byte copies (raw params, cancels) are encoded
//! straight into the buffer. Writing to the socket is the writer task's job (`io.rs`), with
//! one exception, the editor's path (issue 13): a call made while no other is in flight, that
//! finds the queue empty and the writer task idle, writes its frame itself, without blocking
//! ([`Outbound::try_push`]) — one task wake-up and poll less per call. What does not fit is
//! left in the queue, in order, for the writer task.

use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWrite;
use tokio::sync::Notify;

/// The connection's write half (Unix or TCP), shared by the writer task and the callers that
/// write inline. Boxed: the queue is not generic over the transport.
pub(crate) type Sink = Box<dyn AsyncWrite + Send + Unpin>;

/// How many queued bytes make callers wait. One frame may go past it when the buffer is empty,
/// so a frame up to the frame limit always fits.
pub(crate) const OUTBOUND_LIMIT: usize = 1024 * 1024;

/// The queue is closed: nothing more will be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueClosed;

struct State {
    buf: BytesMut,
    closed: bool,
    /// The write half while the writer task is idle (the queue was empty when it last
    /// looked): a caller that may write inline finds it here and writes under the lock. The
    /// writer task takes it out for as long as it writes a batch. `None` before
    /// [`Outbound::attach`] and once the writer task has ended.
    sink: Option<Sink>,
}

/// Frames waiting for the writer task.
///
/// A `std::sync::Mutex` guards the buffer: critical sections are a bounds check and a copy,
/// nothing is awaited while it is held, and cancels are queued from `Drop`, which cannot await.
pub(crate) struct Outbound {
    state: Mutex<State>,
    /// Wakes the writer: something was queued, or the queue closed. `notify_one` stores a
    /// permit when the writer is busy, so no wakeup is lost.
    wake: Notify,
    /// Wakes callers waiting for room: the writer took the buffer, or the queue closed.
    room: Notify,
}

impl Outbound {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                buf: BytesMut::with_capacity(16 * 1024),
                closed: false,
                sink: None,
            }),
            wake: Notify::new(),
            room: Notify::new(),
        }
    }

    /// Hands the queue the connection's write half, before the writer task starts.
    pub(crate) fn attach(&self, sink: Sink) {
        self.lock().sink = Some(sink);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; recover rather than propagate a poison.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues one encoded frame, waiting while the buffer is over [`OUTBOUND_LIMIT`].
    ///
    /// Cancel safety: the frame is either queued whole or not at all; dropping this future
    /// while it waits queues nothing.
    pub(crate) async fn push(&self, frame: &[u8]) -> Result<(), QueueClosed> {
        let Ok(()) = self
            .push_with(|buf| {
                buf.extend_from_slice(frame);
                Ok::<(), std::convert::Infallible>(())
            })
            .await?;
        Ok(())
    }

    /// Queues the one frame that `write` appends to the buffer, waiting while the buffer is
    /// over [`OUTBOUND_LIMIT`]: encoding straight into the queue saves a buffer and a copy
    /// per call.
    ///
    /// `write` runs under the queue's lock, so it must only copy bytes — never user code such
    /// as a `Serialize` impl — and it must append one whole frame or nothing (the
    /// `hearth_protocol::Encoder` methods do). It may run more than once: when the frame does
    /// not fit, it is taken back out and written again once there is room. Its error is
    /// returned as is, with nothing queued.
    ///
    /// Cancel safety: as [`push`](Self::push).
    pub(crate) async fn push_with<E>(
        &self,
        mut write: impl FnMut(&mut BytesMut) -> Result<(), E>,
    ) -> Result<Result<(), E>, QueueClosed> {
        // Most pushes find room at once. Only a full queue needs the waiting loop, which is
        // boxed so that every call's future does not carry its state.
        match self.try_push(&mut write, false) {
            Some(done) => done,
            None => Box::pin(self.push_when_room(write)).await,
        }
    }

    /// The slow path of [`push_with`](Self::push_with): waits for the writer to make room.
    pub(crate) async fn push_when_room<E>(
        &self,
        mut write: impl FnMut(&mut BytesMut) -> Result<(), E>,
    ) -> Result<Result<(), E>, QueueClosed> {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Register before looking again, so a `notify_waiters` between the check and the
            // await is not missed.
            room.as_mut().enable();
            if let Some(done) = self.try_push(&mut write, false) {
                return done;
            }
            room.await;
        }
    }

    /// One attempt at [`push_with`](Self::push_with); `None` when the frame does not fit yet.
    /// For a caller that needs to know whether it waited (see `client.rs`'s `roundtrip`):
    /// then [`push_when_room`](Self::push_when_room).
    ///
    /// With `inline` (the caller's call is the only one in flight), a frame that finds the
    /// queue empty and the writer task idle is written to the socket here, under the lock,
    /// without waiting: whatever the socket does not take (a partial write, a full send
    /// buffer, an error) stays queued for the writer task, which is woken for it, so frames
    /// still leave whole and in order. Only the idle path does this: at many calls in flight
    /// the writer task's batches (many frames per write) are cheaper than a write per frame.
    pub(crate) fn try_push<E>(
        &self,
        write: &mut impl FnMut(&mut BytesMut) -> Result<(), E>,
        inline: bool,
    ) -> Option<Result<Result<(), E>, QueueClosed>> {
        let mut state = self.lock();
        if state.closed {
            return Some(Err(QueueClosed));
        }
        let before = state.buf.len();
        if let Err(e) = write(&mut state.buf) {
            return Some(Ok(Err(e)));
        }
        if before != 0 && state.buf.len() > OUTBOUND_LIMIT {
            state.buf.truncate(before);
            return None;
        }
        let wake = before == 0 && !(inline && write_now(&mut state));
        drop(state);
        if wake {
            self.wake.notify_one();
        }
        Some(Ok(Ok(())))
    }

    /// Queues a frame now, past the bound: for cancels only, which are sent from `Drop` and
    /// are a few bytes each. What bounds them in practice is that each one answers a call that
    /// held an in-flight permit. (Answers to the daemon's requests do not come through here:
    /// their tasks wait for room with [`push_with`](Self::push_with), so the queue stays
    /// bounded however many the daemon asks.)
    pub(crate) fn push_now(&self, encode: impl FnOnce(&mut BytesMut)) -> Result<(), QueueClosed> {
        let mut state = self.lock();
        if state.closed {
            return Err(QueueClosed);
        }
        let before = state.buf.len();
        encode(&mut state.buf);
        drop(state);
        self.queued(before);
        Ok(())
    }

    /// Wakes the writer for frames just queued behind `before` bytes. Only the frame that
    /// makes the buffer non-empty has to: the writer takes the whole buffer whenever it
    /// takes any of it, so frames queued behind others go out with them, woken for already
    /// (the writer is woken, or holds a permit, from when the buffer stopped being empty).
    /// At many calls in flight, most frames are queued behind others.
    fn queued(&self, before: usize) {
        if before == 0 {
            self.wake.notify_one();
        }
    }

    /// For the writer: waits until frames are queued and swaps them into `batch` (whose old
    /// content is discarded, so the two buffers' allocations are reused). Returns `false` once
    /// the queue is closed and empty.
    ///
    /// `sink` is the writer task's hold on the write half: it is put back into the queue
    /// while the queue is empty (callers may write inline then), and taken out with a batch
    /// (and when the queue closes, for the half-close), so that the write half is always in
    /// exactly one place.
    pub(crate) async fn next_batch(&self, batch: &mut BytesMut, sink: &mut Option<Sink>) -> bool {
        loop {
            let wake = self.wake.notified();
            {
                let mut state = self.lock();
                if !state.buf.is_empty() {
                    batch.clear();
                    std::mem::swap(&mut state.buf, batch);
                    if sink.is_none() {
                        *sink = state.sink.take();
                    }
                    drop(state);
                    self.room.notify_waiters();
                    return true;
                }
                if state.closed {
                    if sink.is_none() {
                        *sink = state.sink.take();
                    }
                    return false;
                }
                if let Some(idle) = sink.take() {
                    state.sink = Some(idle);
                }
            }
            wake.await;
        }
    }

    /// Closes the queue. With `flush`, frames already queued are still handed to the writer;
    /// without, they are discarded.
    pub(crate) fn close(&self, flush: bool) {
        {
            let mut state = self.lock();
            state.closed = true;
            if !flush {
                state.buf.clear();
            }
        }
        self.wake.notify_one();
        self.room.notify_waiters();
    }
}

/// Writes the queue (one frame, queued into an empty queue) to the idle write half without
/// waiting; `true` when all of it went, else what is left stays queued, in order, for the
/// writer task (which then has to be woken). A write half that is not idle (the writer task
/// holds it) writes nothing here.
fn write_now(state: &mut State) -> bool {
    let Some(sink) = state.sink.as_mut() else {
        return false;
    };
    // Nothing waits here: a write that cannot go on now is the writer task's, which polls
    // again with its own waker (the readiness a poll here missed is kept by the runtime).
    let mut cx = Context::from_waker(Waker::noop());
    let mut done = 0;
    while done < state.buf.len() {
        match Pin::new(&mut **sink).poll_write(&mut cx, &state.buf[done..]) {
            Poll::Ready(Ok(n)) if n > 0 => done += n,
            // A full send buffer, nothing written, or an error: the writer task writes the
            // rest, and reports an error that stays (`write_all` retries an interrupted one).
            _ => break,
        }
    }
    if done == state.buf.len() {
        state.buf.clear();
        true
    } else {
        state.buf.advance(done);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_queued_together_come_out_as_one_batch() {
        let out = Outbound::new();
        assert_eq!(out.push(b"ab").await, Ok(()));
        assert_eq!(out.push_now(|b| b.extend_from_slice(b"c")), Ok(()));
        assert_eq!(out.push(b"de").await, Ok(()));
        let mut batch = BytesMut::new();
        assert!(out.next_batch(&mut batch, &mut None).await);
        assert_eq!(&batch[..], b"abcde");
    }

    /// Yields until the writer has taken the queue's bytes (a bounded number of times: a
    /// writer that is never woken fails the test instead of hanging it).
    async fn until_empty(out: &Outbound) {
        for _ in 0..10_000 {
            if out.lock().buf.is_empty() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the writer never took the queued frames");
    }

    /// The writer is woken by the frame that makes the queue non-empty, and finds the ones
    /// queued behind it (without a wake-up of their own) in the same batch; after it took
    /// the batch, the next frame wakes it again.
    #[tokio::test]
    async fn the_writer_is_woken_once_per_batch_and_misses_nothing() {
        let out = std::sync::Arc::new(Outbound::new());
        let writer = tokio::spawn({
            let out = out.clone();
            async move {
                let mut batch = BytesMut::new();
                let mut got = Vec::new();
                while out.next_batch(&mut batch, &mut None).await {
                    got.push(batch.to_vec());
                }
                got
            }
        });
        // Let the writer wait on an empty queue first.
        tokio::task::yield_now().await;
        assert_eq!(out.push(b"a").await, Ok(()));
        assert_eq!(out.push(b"b").await, Ok(()));
        assert_eq!(out.push_now(|b| b.extend_from_slice(b"c")), Ok(()));
        // The writer takes "abc"; wait until it has, then queue again.
        until_empty(&out).await;
        assert_eq!(out.push_now(|b| b.extend_from_slice(b"d")), Ok(()));
        until_empty(&out).await;
        assert_eq!(out.push(b"e").await, Ok(()));
        out.close(true);
        let got = writer.await.expect("the writer ends");
        assert_eq!(got.concat(), b"abcde");
        assert_eq!(got[0], b"abc", "one batch for frames queued together");
    }

    #[tokio::test]
    async fn a_full_queue_makes_callers_wait_for_the_writer() {
        let out = std::sync::Arc::new(Outbound::new());
        let big = vec![0u8; OUTBOUND_LIMIT];
        assert_eq!(out.push(&big).await, Ok(()));
        let waiter = tokio::spawn({
            let out = out.clone();
            async move { out.push(b"x").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let mut batch = BytesMut::new();
        assert!(out.next_batch(&mut batch, &mut None).await);
        assert_eq!(batch.len(), OUTBOUND_LIMIT);
        assert!(matches!(waiter.await, Ok(Ok(()))));
        assert!(out.next_batch(&mut batch, &mut None).await);
        assert_eq!(&batch[..], b"x");
    }

    #[tokio::test]
    async fn closing_flushes_or_discards() {
        let out = Outbound::new();
        assert_eq!(out.push(b"keep").await, Ok(()));
        out.close(true);
        assert_eq!(out.push(b"late").await, Err(QueueClosed));
        let mut batch = BytesMut::new();
        assert!(out.next_batch(&mut batch, &mut None).await);
        assert_eq!(&batch[..], b"keep");
        assert!(!out.next_batch(&mut batch, &mut None).await);

        let out = Outbound::new();
        assert_eq!(out.push(b"drop").await, Ok(()));
        out.close(false);
        assert!(!out.next_batch(&mut batch, &mut None).await);
    }
}
