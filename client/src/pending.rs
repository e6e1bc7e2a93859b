//! The pending-call table: for every request the daemon has not answered yet, where its answer
//! goes — and, since each such request holds one of the daemon's in-flight places, the
//! in-flight limit too.
//!
//! A call takes a place and a slot before its frame is queued ([`Pending::insert`], waiting
//! while every place is taken), the reader fills the slot when the response arrives
//! ([`Pending::complete`]) and wakes the caller, who takes the answer out
//! ([`Pending::poll_answer`]). A call dropped after sending marks its slot abandoned; the slot
//! and its place stay until the daemon's answer (the result, or -32800 for the cancel) shows
//! the daemon is done with the request. Closing the connection fills every waiting slot with
//! the reason, so no caller can wait forever.
//!
//! A streamed call (protocol version 2, `"stream": true`) has a slot of its own kind that also
//! buffers the partial results arriving before its answer, at most [`PARTIAL_BUFFER`] of them:
//! the reader never waits for a slow stream consumer (it also completes every other call), so
//! past that bound new partials are dropped and counted, and the consumer sees the gap in
//! their `seq` numbers — the same signal the daemon gives when it drops chunks itself.
//!
//! One mutex covers the slots and the place count, so each step of a call is one short lock:
//! there is no per-call channel to allocate and no separate semaphore to keep in step. The
//! table does not send cancels; `client.rs` does.
//!
//! The slots live in a ring indexed by the request id (ours, handed out one after another, so
//! the calls in flight at once fall into distinct places) — a lookup is an index and a
//! compare, not a hash. A call whose place is still held by an older one (a call whose
//! answer is long in coming) goes into a small hash map beside it.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use hearth_protocol::RequestId;
use rustc_hash::FxHashMap;
use tokio::sync::Notify;

use crate::error::{CloseReason, Error};

/// What a call gets: the raw result, or why not.
pub(crate) type Reply = Result<Bytes, Error>;

/// One request the daemon has not finished with, or whose answer its caller has not taken.
enum Slot {
    /// No call here (a ring place not in use).
    Vacant,
    /// No answer yet; the caller's waker once it has polled.
    Waiting(Option<Waker>),
    /// Answered (or failed by the connection closing); waiting for the caller to take it.
    /// Holds no in-flight place any more.
    Ready(Reply),
    /// Sent, and then its caller stopped waiting: kept until the daemon answers, because until
    /// then the daemon may still be running it.
    Abandoned,
    /// A streamed call: partials buffered, and its answer once it came. Boxed, so that the
    /// slots of ordinary calls stay small.
    Stream(Box<StreamSlot>),
}

/// How many partial results one streamed call buffers before new ones are dropped.
pub(crate) const PARTIAL_BUFFER: usize = 256;

#[derive(Default)]
struct StreamSlot {
    waker: Option<Waker>,
    partials: VecDeque<(u64, Bytes)>,
    /// The answer; the slot holds an in-flight place until it is set.
    done: Option<Reply>,
}

impl StreamSlot {
    fn wake(&mut self) -> Option<Waker> {
        self.waker.take()
    }
}

/// What a streamed call gets next.
#[derive(Debug)]
pub(crate) enum Streamed {
    /// A partial result: its `seq` and chunk.
    Partial(u64, Bytes),
    /// The answer; nothing follows.
    Done(Reply),
}

/// What became of an arriving partial result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartialOutcome {
    /// Buffered for its stream.
    Buffered,
    /// Its stream's buffer was full: dropped.
    Overflow,
    /// No streamed call waits for this id: dropped.
    Ignored,
}

/// How a call stands among the others when it takes its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Company {
    /// Other calls hold places.
    Others,
    /// No other call holds a place, but the previous call to take one found others: the
    /// places were freed by a batch of answers, whose callers are likely about to call again.
    Alone,
    /// No other call holds a place, nor did when the previous call took its place: calls
    /// come one at a time (the editor's path).
    Sequential,
}

struct State {
    calls: Calls,
    /// Requests holding an in-flight place: `Waiting` and `Abandoned` slots.
    outstanding: usize,
    /// Whether the last call to take a place found no other holding one (see [`Company`]).
    last_alone: bool,
    /// How many places there are.
    limit: usize,
    /// Callers waiting in [`Pending::insert`] for a place.
    waiters: usize,
    closed: Option<CloseReason>,
}

/// The slots by request id: in `ring` at `id % ring.len()` when that place was free when the
/// call was made, else in `spill`. An id is in one of them, never both.
struct Calls {
    /// A power of two long; [`Slot::Vacant`] where no call is.
    ring: Vec<(RequestId, Slot)>,
    /// Calls in the ring.
    in_ring: usize,
    /// Keyed with a fast non-keyed hash: the ids are ours (sequential), and the daemon can
    /// only look ids up, never insert them, so it cannot pile up colliding keys.
    spill: FxHashMap<RequestId, Slot>,
}

/// The ring's length to start with.
const RING_START: usize = 16;
/// The ring grows (doubling) while more than half of it is in use, up to this length; past
/// it, calls that find their place taken go to the spill map.
const RING_MAX: usize = 4096;

impl Calls {
    fn new() -> Self {
        Self {
            ring: Self::vacant(RING_START),
            in_ring: 0,
            spill: FxHashMap::default(),
        }
    }

    fn vacant(len: usize) -> Vec<(RequestId, Slot)> {
        std::iter::repeat_with(|| (RequestId::new(0), Slot::Vacant))
            .take(len)
            .collect()
    }

    fn index(&self, id: RequestId) -> usize {
        // Truncating is the point: the low bits pick the place.
        (id.get() as usize) & (self.ring.len() - 1)
    }

    /// Adds `id`'s slot; `id` must not be in the table.
    fn insert(&mut self, id: RequestId, slot: Slot) {
        if self.in_ring >= self.ring.len() / 2 && self.ring.len() < RING_MAX {
            self.grow();
        }
        let at = self.index(id);
        let place = &mut self.ring[at];
        if matches!(place.1, Slot::Vacant) {
            place.0 = id;
            // What is replaced is a `Vacant`, which owns nothing: forgetting it skips a call
            // to the slot's drop glue on every insert.
            std::mem::forget(std::mem::replace(&mut place.1, slot));
            self.in_ring += 1;
        } else {
            self.spill.insert(id, slot);
        }
    }

    /// Doubles the ring. Calls in distinct places stay in distinct places (their ids differ in
    /// the low bits already), so none has to go to the spill map.
    fn grow(&mut self) {
        let len = self.ring.len() * 2;
        let old = std::mem::replace(&mut self.ring, Self::vacant(len));
        for (id, slot) in old {
            if !matches!(slot, Slot::Vacant) {
                let at = self.index(id);
                self.ring[at] = (id, slot);
            }
        }
    }

    fn get_mut(&mut self, id: RequestId) -> Option<&mut Slot> {
        let at = self.index(id);
        let place = &mut self.ring[at];
        if place.0 == id && !matches!(place.1, Slot::Vacant) {
            return Some(&mut place.1);
        }
        if self.spill.is_empty() {
            return None;
        }
        self.spill.get_mut(&id)
    }

    /// Takes `id`'s slot out; `None` if there is none.
    fn remove(&mut self, id: RequestId) -> Option<Slot> {
        let at = self.index(id);
        let place = &mut self.ring[at];
        if place.0 == id && !matches!(place.1, Slot::Vacant) {
            self.in_ring -= 1;
            return Some(std::mem::replace(&mut place.1, Slot::Vacant));
        }
        if self.spill.is_empty() {
            return None;
        }
        self.spill.remove(&id)
    }

    /// Keeps the slots for which `keep` says so.
    fn retain(&mut self, mut keep: impl FnMut(&mut Slot) -> bool) {
        for (_, slot) in &mut self.ring {
            if !matches!(slot, Slot::Vacant) && !keep(slot) {
                *slot = Slot::Vacant;
                self.in_ring -= 1;
            }
        }
        self.spill.retain(|_, slot| keep(slot));
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.in_ring == 0 && self.spill.is_empty()
    }
}

pub(crate) struct Pending {
    state: Mutex<State>,
    /// Woken when a place frees up (one waiter) or the table closes (all of them).
    room: Notify,
}

/// What an arriving response meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completion {
    /// Handed to its waiting caller.
    Delivered,
    /// The caller had stopped waiting; the answer is dropped.
    Cancelled,
    /// No call waits for this id (an id never sent, or answered already).
    Unknown,
}

/// What a dropped call has to do about its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Abandon {
    /// Nothing: it was never sent (its slot and place are gone now), already answered, or
    /// already abandoned.
    Nothing,
    /// Its request is at the daemon: send a cancel.
    CancelNeeded,
}

impl Pending {
    /// A table with one place, for the handshake; [`set_limit`](Self::set_limit) widens it.
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                calls: Calls::new(),
                outstanding: 0,
                last_alone: false,
                limit: 1,
                waiters: 0,
                closed: None,
            }),
            room: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets how many requests may be in flight at once.
    pub(crate) fn set_limit(&self, limit: usize) {
        self.lock().limit = limit.max(1);
        self.room.notify_waiters();
    }

    /// Takes an in-flight place for `id` and gives it a slot, waiting while every place is
    /// taken. Fails once the table is closed.
    ///
    /// Cancel safety: dropping the future while it waits takes nothing.
    ///
    /// The slot starts out holding the waker of the task that awaits this, from the poll in
    /// which this returns: a caller that goes on, in that same poll, to wait for the answer
    /// has nothing to register — the answer, if it came meanwhile, has woken that waker
    /// already — so it can return `Pending` without taking the lock (see `client.rs`'s
    /// `roundtrip`).
    ///
    /// Returns the call's [`Company`]: a call that found no other holding a place may write
    /// its frame itself (`outbound.rs`), and one in sequential use reads its own answer too
    /// (`client.rs`).
    pub(crate) async fn insert(&self, id: RequestId) -> Result<Company, CloseReason> {
        let inserted =
            std::future::poll_fn(|cx| Poll::Ready(self.try_insert_kind(id, Some(cx.waker()))))
                .await?;
        if let Some(company) = inserted {
            return Ok(company);
        }
        // The uncommon case; boxed so that every call's future does not carry its state.
        Box::pin(self.insert_when_room(id, true)).await?;
        Ok(Company::Others)
    }

    /// [`insert`](Self::insert) for a streamed call, whose slot also buffers partials.
    pub(crate) async fn insert_stream(&self, id: RequestId) -> Result<(), CloseReason> {
        if self.try_insert_kind(id, None)?.is_some() {
            return Ok(());
        }
        Box::pin(self.insert_when_room(id, false)).await
    }

    /// Waits for a place; an ordinary call's slot (holding the waker of the poll that finds
    /// the place) with `plain`, else a streamed call's.
    async fn insert_when_room(&self, id: RequestId, plain: bool) -> Result<(), CloseReason> {
        let _waiting = Waiting::new(self);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Register before looking, so a wake-up between the look and the await is kept.
            // (A `notify_one` meant for a waiter that is dropped passes to the next one.)
            room.as_mut().enable();
            let inserted = std::future::poll_fn(|cx| {
                Poll::Ready(self.try_insert_kind(id, plain.then_some(cx.waker())))
            })
            .await?;
            if inserted.is_some() {
                return Ok(());
            }
            room.await;
        }
    }

    /// `Ok(false)` when every place is taken.
    #[cfg(test)]
    fn try_insert(&self, id: RequestId) -> Result<bool, CloseReason> {
        Ok(self.try_insert_kind(id, Some(Waker::noop()))?.is_some())
    }

    /// An ordinary call's slot, holding `waker` (`Some`), or a streamed call's (`None`).
    /// `Ok(None)` when every place is taken, else the call's [`Company`].
    fn try_insert_kind(
        &self,
        id: RequestId,
        waker: Option<&Waker>,
    ) -> Result<Option<Company>, CloseReason> {
        let mut state = self.lock();
        if let Some(reason) = &state.closed {
            return Err(reason.clone());
        }
        if state.outstanding >= state.limit {
            return Ok(None);
        }
        let alone = state.outstanding == 0;
        let company = match (alone, std::mem::replace(&mut state.last_alone, alone)) {
            (false, _) => Company::Others,
            (true, false) => Company::Alone,
            (true, true) => Company::Sequential,
        };
        state.outstanding += 1;
        let slot = match waker {
            Some(waker) => Slot::Waiting(Some(waker.clone())),
            None => Slot::Stream(Box::default()),
        };
        state.calls.insert(id, slot);
        Ok(Some(company))
    }

    /// The caller's side of a slot: the answer once there is one (taking it out of the
    /// table), otherwise `Pending` with the caller's waker kept for [`complete`].
    ///
    /// [`complete`]: Self::complete
    pub(crate) fn poll_answer(&self, id: RequestId, cx: &mut Context<'_>) -> Poll<Reply> {
        let mut state = self.lock();
        match state.calls.get_mut(id) {
            Some(Slot::Waiting(waker)) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Some(Slot::Ready(_)) => match state.calls.remove(id) {
                Some(Slot::Ready(reply)) => Poll::Ready(reply),
                _ => Poll::Pending,
            },
            // Only the caller abandons its slot, and then it no longer polls; a streamed
            // call polls with `poll_stream`.
            Some(Slot::Abandoned | Slot::Stream(_) | Slot::Vacant) => Poll::Pending,
            // Only the caller removes a slot it inserted; polling one it never inserted is a
            // bug, answered as the closed connection it most likely is.
            None => Poll::Ready(Err(Error::Closed {
                reason: state.closed.clone().unwrap_or(CloseReason::Dropped),
            })),
        }
    }

    /// A streamed call's side of its slot: the next partial, or the answer (taking the slot
    /// out of the table), or `Pending` with the caller's waker kept.
    pub(crate) fn poll_stream(&self, id: RequestId, cx: &mut Context<'_>) -> Poll<Streamed> {
        let mut state = self.lock();
        match state.calls.get_mut(id) {
            Some(Slot::Stream(stream)) => {
                if let Some((seq, chunk)) = stream.partials.pop_front() {
                    return Poll::Ready(Streamed::Partial(seq, chunk));
                }
                if let Some(reply) = stream.done.take() {
                    state.calls.remove(id);
                    return Poll::Ready(Streamed::Done(reply));
                }
                match &stream.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => stream.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Some(_) => Poll::Pending,
            None => Poll::Ready(Streamed::Done(Err(Error::Closed {
                reason: state.closed.clone().unwrap_or(CloseReason::Dropped),
            }))),
        }
    }

    /// A partial result for `id`: buffered if `id` is a streamed call still waiting for its
    /// answer and its buffer has room.
    pub(crate) fn partial(&self, id: RequestId, seq: u64, chunk: Bytes) -> PartialOutcome {
        let mut state = self.lock();
        let Some(Slot::Stream(stream)) = state.calls.get_mut(id) else {
            return PartialOutcome::Ignored;
        };
        if stream.done.is_some() {
            return PartialOutcome::Ignored;
        }
        if stream.partials.len() >= PARTIAL_BUFFER {
            return PartialOutcome::Overflow;
        }
        stream.partials.push_back((seq, chunk));
        let waker = stream.wake();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        PartialOutcome::Buffered
    }

    /// Hands the daemon's answer for `id` to its caller, and frees its in-flight place.
    pub(crate) fn complete(&self, id: RequestId, reply: Reply) -> Completion {
        let mut state = self.lock();
        let (done, waker) = match state.calls.get_mut(id) {
            None => return Completion::Unknown,
            Some(slot) => match slot {
                // The waiting slot is taken apart rather than dropped in place: its waker is
                // all it holds, and no drop glue runs on the hot path.
                Slot::Waiting(_) => match std::mem::replace(slot, Slot::Ready(reply)) {
                    Slot::Waiting(waker) => (Completion::Delivered, waker),
                    _ => (Completion::Delivered, None),
                },
                Slot::Abandoned => {
                    state.calls.remove(id);
                    (Completion::Cancelled, None)
                }
                Slot::Stream(stream) if stream.done.is_none() => {
                    stream.done = Some(reply);
                    (Completion::Delivered, stream.wake())
                }
                // A second answer for one id; the first is still waiting to be taken.
                Slot::Ready(_) | Slot::Stream(_) | Slot::Vacant => return Completion::Unknown,
            },
        };
        state.outstanding -= 1;
        let wake_waiter = state.waiters > 0;
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        if wake_waiter {
            self.room.notify_one();
        }
        done
    }

    /// The caller of `id` stopped waiting; `sent` says whether its frame was queued.
    pub(crate) fn abandon(&self, id: RequestId, sent: bool) -> Abandon {
        let mut state = self.lock();
        let Some(slot) = state.calls.get_mut(id) else {
            return Abandon::Nothing;
        };
        let waiting = match slot {
            Slot::Waiting(_) => true,
            Slot::Stream(stream) => stream.done.is_none(),
            Slot::Ready(_) | Slot::Abandoned | Slot::Vacant => false,
        };
        if waiting && sent {
            *slot = Slot::Abandoned;
            Abandon::CancelNeeded
        } else if waiting {
            state.calls.remove(id);
            state.outstanding -= 1;
            let wake_waiter = state.waiters > 0;
            drop(state);
            if wake_waiter {
                self.room.notify_one();
            }
            Abandon::Nothing
        } else if matches!(slot, Slot::Abandoned) {
            Abandon::Nothing
        } else {
            // Answered but never taken: the place was freed when the answer came.
            state.calls.remove(id);
            Abandon::Nothing
        }
    }

    /// Closes the table: every waiting caller gets `error(&reason)`, and new calls are
    /// refused with the reason. Returns the callers to wake — done by the caller, once it has
    /// told everyone else the connection is closed — or `None` if the table was already
    /// closed (the first reason stays).
    pub(crate) fn close(
        &self,
        reason: CloseReason,
        error: impl Fn(&CloseReason) -> Error,
    ) -> Option<Wakeups<'_>> {
        let mut wakers = Vec::new();
        {
            let mut state = self.lock();
            if state.closed.is_some() {
                return None;
            }
            state.calls.retain(|slot| match slot {
                Slot::Waiting(waker) => {
                    wakers.extend(waker.take());
                    *slot = Slot::Ready(Err(error(&reason)));
                    true
                }
                Slot::Stream(stream) => {
                    if stream.done.is_none() {
                        // The call failed: its error comes next, not after partials that
                        // belong to a result that will never come.
                        stream.partials.clear();
                        wakers.extend(stream.wake());
                        stream.done = Some(Err(error(&reason)));
                    }
                    true
                }
                Slot::Ready(_) => true,
                Slot::Abandoned | Slot::Vacant => false,
            });
            state.outstanding = 0;
            state.closed = Some(reason);
        }
        Some(Wakeups {
            wakers,
            room: &self.room,
        })
    }

    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.lock().closed.clone()
    }
}

/// The callers a [`Pending::close`] failed: those waiting for an answer and those waiting for
/// a place.
#[must_use = "the callers stay asleep until woken"]
pub(crate) struct Wakeups<'a> {
    wakers: Vec<Waker>,
    room: &'a Notify,
}

impl Wakeups<'_> {
    pub(crate) fn wake(self) {
        for waker in self.wakers {
            waker.wake();
        }
        self.room.notify_waiters();
    }
}

/// Counts a caller waiting for a place while it exists, so that freeing a place wakes one.
struct Waiting<'a>(&'a Pending);

impl<'a> Waiting<'a> {
    fn new(pending: &'a Pending) -> Self {
        pending.lock().waiters += 1;
        Self(pending)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().waiters -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::Arc;

    use super::*;

    fn closed(reason: &CloseReason) -> Error {
        Error::Closed {
            reason: reason.clone(),
        }
    }

    /// Polls `id`'s answer once with a no-op waker.
    fn peek(pending: &Pending, id: u64) -> Poll<Reply> {
        pending.poll_answer(id.into(), &mut Context::from_waker(Waker::noop()))
    }

    async fn insert(pending: &Pending, id: u64) {
        assert!(
            pending.insert(id.into()).await.is_ok(),
            "an open table takes {id}"
        );
    }

    #[tokio::test]
    async fn an_answer_reaches_its_caller_once() {
        let pending = Pending::new();
        insert(&pending, 1).await;
        assert!(peek(&pending, 1).is_pending());
        assert_eq!(
            pending.complete(1.into(), Ok(Bytes::from_static(b"\xc0"))),
            Completion::Delivered
        );
        assert_eq!(
            pending.complete(1.into(), Ok(Bytes::new())),
            Completion::Unknown,
            "a second answer before the first is taken"
        );
        assert!(matches!(peek(&pending, 1), Poll::Ready(Ok(b)) if &b[..] == b"\xc0"));
        assert_eq!(
            pending.complete(1.into(), Ok(Bytes::new())),
            Completion::Unknown
        );
    }

    #[tokio::test]
    async fn a_sent_call_abandoned_keeps_its_place_until_the_answer() {
        let pending = Pending::new();
        insert(&pending, 5).await;
        assert_eq!(pending.abandon(5.into(), true), Abandon::CancelNeeded);
        assert_eq!(pending.abandon(5.into(), true), Abandon::Nothing);
        assert!(
            matches!(pending.try_insert(6.into()), Ok(false)),
            "the one place is still taken"
        );
        assert_eq!(
            pending.complete(5.into(), Ok(Bytes::new())),
            Completion::Cancelled
        );
        assert!(
            matches!(pending.try_insert(6.into()), Ok(true)),
            "the answer freed it"
        );
        assert_eq!(
            pending.complete(5.into(), Ok(Bytes::new())),
            Completion::Unknown
        );
    }

    #[tokio::test]
    async fn an_unsent_call_abandoned_frees_its_place_at_once() {
        let pending = Pending::new();
        insert(&pending, 9).await;
        assert_eq!(pending.abandon(9.into(), false), Abandon::Nothing);
        assert_eq!(
            pending.complete(9.into(), Ok(Bytes::new())),
            Completion::Unknown
        );
        assert!(matches!(pending.try_insert(10.into()), Ok(true)));
    }

    #[tokio::test]
    async fn an_answer_never_taken_is_dropped_with_its_caller() {
        let pending = Pending::new();
        insert(&pending, 2).await;
        assert_eq!(
            pending.complete(2.into(), Ok(Bytes::new())),
            Completion::Delivered
        );
        assert_eq!(
            pending.abandon(2.into(), true),
            Abandon::Nothing,
            "nothing to cancel"
        );
        assert!(peek(&pending, 2).is_ready(), "the slot is gone");
        assert!(matches!(pending.try_insert(3.into()), Ok(true)));
    }

    async fn company(pending: &Pending, id: u64) -> Company {
        pending.insert(id.into()).await.expect("an open table")
    }

    /// A call's company: alone after a call that had company is `Alone` (a batch of answers
    /// freed the places), alone after a call that was alone too is `Sequential`; streamed
    /// calls count as calls.
    #[tokio::test]
    async fn a_call_alone_after_a_call_alone_is_sequential() {
        let pending = Pending::new();
        pending.set_limit(4);
        let answer = |id: u64| {
            assert_eq!(
                pending.complete(id.into(), Ok(Bytes::new())),
                Completion::Delivered
            );
            assert!(peek(&pending, id).is_ready());
        };
        assert_eq!(company(&pending, 1).await, (Company::Alone), "the first");
        answer(1);
        assert_eq!(company(&pending, 2).await, (Company::Sequential));
        answer(2);
        assert_eq!(company(&pending, 3).await, (Company::Sequential));
        assert_eq!(company(&pending, 4).await, (Company::Others));
        answer(3);
        answer(4);
        assert_eq!(
            company(&pending, 5).await,
            (Company::Alone),
            "after a call that had company"
        );
        assert!(pending.insert_stream(6.into()).await.is_ok());
        pending.abandon(6.into(), false);
        answer(5);
        assert_eq!(
            company(&pending, 7).await,
            (Company::Alone),
            "the stream had company"
        );
    }

    #[tokio::test]
    async fn a_caller_waits_for_a_place_and_gets_the_freed_one() {
        let pending = Arc::new(Pending::new());
        pending.set_limit(2);
        insert(&pending, 1).await;
        insert(&pending, 2).await;
        let third = tokio::spawn({
            let pending = pending.clone();
            async move { pending.insert(3.into()).await }
        });
        // The waiter counts itself before it sleeps; wait until it has.
        poll_fn(|cx| {
            if pending.lock().waiters == 1 {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
        assert!(!third.is_finished());
        assert_eq!(
            pending.complete(1.into(), Ok(Bytes::new())),
            Completion::Delivered
        );
        assert!(matches!(third.await, Ok(Ok(_))));
        assert_eq!(pending.lock().outstanding, 2);
        assert_eq!(pending.lock().waiters, 0);
    }

    #[tokio::test]
    async fn closing_fails_waiters_and_refuses_new_calls() {
        let pending = Arc::new(Pending::new());
        pending.set_limit(3);
        insert(&pending, 1).await;
        insert(&pending, 2).await;
        insert(&pending, 3).await;
        pending.abandon(3.into(), true);
        let blocked = tokio::spawn({
            let pending = pending.clone();
            async move { pending.insert(4.into()).await }
        });
        let Some(wakeups) = pending.close(CloseReason::Eof, closed) else {
            panic!("an open table closes")
        };
        wakeups.wake();
        assert!(
            pending.close(CloseReason::Dropped, closed).is_none(),
            "first reason wins"
        );
        assert!(matches!(
            peek(&pending, 1),
            Poll::Ready(Err(Error::Closed { .. }))
        ));
        assert!(matches!(
            peek(&pending, 2),
            Poll::Ready(Err(Error::Closed { .. }))
        ));
        assert!(matches!(blocked.await, Ok(Err(CloseReason::Eof))));
        assert!(matches!(
            pending.try_insert(5.into()),
            Err(CloseReason::Eof)
        ));
        assert!(matches!(pending.close_reason(), Some(CloseReason::Eof)));
        assert!(pending.lock().calls.is_empty(), "nothing left behind");
    }

    /// Ids that share a ring place with a live call (an old call still waiting, the ring
    /// grown past it or not) are kept apart, found, and taken out, each exactly once.
    #[test]
    fn calls_sharing_a_ring_place_are_kept_apart() {
        let mut calls = Calls::new();
        let ids: Vec<u64> = (1..=3 * RING_MAX as u64)
            .step_by(RING_START / 2 + 1)
            .chain([
                2,
                2 + RING_START as u64,
                2 + RING_MAX as u64,
                2 + 4 * RING_MAX as u64,
            ])
            .collect();
        for &id in &ids {
            calls.insert(id.into(), Slot::Abandoned);
        }
        assert!(!calls.spill.is_empty(), "some ids collided");
        assert!(calls.get_mut(3.into()).is_none(), "never inserted");
        assert!(
            calls.get_mut((2 + 2 * RING_MAX as u64).into()).is_none(),
            "same place as live ids, never inserted"
        );
        for &id in &ids {
            assert!(
                matches!(calls.get_mut(id.into()), Some(Slot::Abandoned)),
                "{id} is there"
            );
        }
        for &id in ids.iter().rev() {
            assert!(calls.remove(id.into()).is_some(), "{id} taken out");
            assert!(calls.remove(id.into()).is_none(), "{id} only once");
        }
        assert!(calls.is_empty());
    }

    #[tokio::test]
    async fn an_answer_for_an_id_sharing_a_place_is_unknown() {
        let pending = Pending::new();
        pending.set_limit(RING_MAX * 4);
        // A call that waits long: its place is then wanted by ids that come around again.
        insert(&pending, 1).await;
        for id in 2..=(2 * RING_MAX as u64 + 1) {
            insert(&pending, id).await;
            assert_eq!(
                pending.complete(id.into(), Ok(Bytes::new())),
                Completion::Delivered
            );
            assert!(peek(&pending, id).is_ready());
        }
        let same_place = 1 + RING_MAX as u64;
        assert_eq!(
            pending.complete((same_place + 2 * RING_MAX as u64).into(), Ok(Bytes::new())),
            Completion::Unknown,
            "never sent"
        );
        assert!(peek(&pending, 1).is_pending(), "the old call still waits");
        assert_eq!(
            pending.complete(1.into(), Ok(Bytes::from_static(b"\xc0"))),
            Completion::Delivered
        );
        assert!(matches!(peek(&pending, 1), Poll::Ready(Ok(b)) if &b[..] == b"\xc0"));
        assert!(pending.lock().calls.is_empty());
        assert_eq!(pending.lock().outstanding, 0);
    }

    #[tokio::test]
    async fn closing_fails_spilled_calls_too() {
        let pending = Pending::new();
        pending.set_limit(RING_MAX * 4);
        for id in 1..=(2 * RING_MAX as u64) {
            insert(&pending, id).await;
        }
        // The ring stops growing at RING_MAX; ids whose place is taken then go to the spill map.
        assert!(!pending.lock().calls.spill.is_empty());
        if let Some(wakeups) = pending.close(CloseReason::Eof, closed) {
            wakeups.wake();
        }
        for id in 1..=(2 * RING_MAX as u64) {
            assert!(
                matches!(peek(&pending, id), Poll::Ready(Err(Error::Closed { .. }))),
                "{id} failed"
            );
        }
        assert!(pending.lock().calls.is_empty(), "nothing left behind");
    }

    fn next_event(pending: &Pending, id: u64) -> Poll<Streamed> {
        pending.poll_stream(id.into(), &mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test]
    async fn a_stream_gets_its_partials_then_its_answer_then_nothing() {
        let pending = Pending::new();
        assert!(pending.insert_stream(1.into()).await.is_ok());
        assert!(next_event(&pending, 1).is_pending());
        assert_eq!(
            pending.partial(1.into(), 0, Bytes::from_static(b"a")),
            PartialOutcome::Buffered
        );
        assert_eq!(
            pending.partial(2.into(), 0, Bytes::from_static(b"x")),
            PartialOutcome::Ignored,
            "no call with that id"
        );
        assert_eq!(
            pending.complete(1.into(), Ok(Bytes::from_static(b"r"))),
            Completion::Delivered
        );
        assert_eq!(
            pending.partial(1.into(), 1, Bytes::from_static(b"late")),
            PartialOutcome::Ignored,
            "nothing follows the answer"
        );
        assert!(
            matches!(next_event(&pending, 1), Poll::Ready(Streamed::Partial(0, c)) if &c[..] == b"a")
        );
        assert!(
            matches!(next_event(&pending, 1), Poll::Ready(Streamed::Done(Ok(r))) if &r[..] == b"r")
        );
        assert!(pending.lock().calls.is_empty());
        assert_eq!(pending.lock().outstanding, 0);
    }

    #[tokio::test]
    async fn partials_of_a_plain_call_are_ignored() {
        let pending = Pending::new();
        insert(&pending, 1).await;
        assert_eq!(
            pending.partial(1.into(), 0, Bytes::new()),
            PartialOutcome::Ignored
        );
    }

    #[tokio::test]
    async fn a_full_stream_buffer_drops_new_partials() {
        let pending = Pending::new();
        assert!(pending.insert_stream(1.into()).await.is_ok());
        for seq in 0..PARTIAL_BUFFER as u64 {
            assert_eq!(
                pending.partial(1.into(), seq, Bytes::new()),
                PartialOutcome::Buffered
            );
        }
        assert_eq!(
            pending.partial(1.into(), PARTIAL_BUFFER as u64, Bytes::new()),
            PartialOutcome::Overflow
        );
        // The consumer catches up: room again, and the gap shows in `seq`.
        assert!(matches!(
            next_event(&pending, 1),
            Poll::Ready(Streamed::Partial(0, _))
        ));
        assert_eq!(
            pending.partial(1.into(), PARTIAL_BUFFER as u64 + 1, Bytes::new()),
            PartialOutcome::Buffered
        );
    }

    #[tokio::test]
    async fn closing_fails_a_stream_at_once() {
        let pending = Pending::new();
        assert!(pending.insert_stream(1.into()).await.is_ok());
        pending.partial(1.into(), 0, Bytes::new());
        if let Some(wakeups) = pending.close(CloseReason::Eof, closed) {
            wakeups.wake();
        }
        assert!(matches!(
            next_event(&pending, 1),
            Poll::Ready(Streamed::Done(Err(Error::Closed { .. })))
        ));
    }

    #[tokio::test]
    async fn an_abandoned_stream_needs_a_cancel_and_keeps_its_place() {
        let pending = Pending::new();
        assert!(pending.insert_stream(1.into()).await.is_ok());
        assert_eq!(pending.abandon(1.into(), true), Abandon::CancelNeeded);
        assert!(matches!(pending.try_insert(2.into()), Ok(false)));
        assert_eq!(
            pending.partial(1.into(), 0, Bytes::new()),
            PartialOutcome::Ignored
        );
        assert_eq!(
            pending.complete(1.into(), Ok(Bytes::new())),
            Completion::Cancelled
        );
        assert!(matches!(pending.try_insert(2.into()), Ok(true)));
    }
}
