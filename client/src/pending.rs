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
//! One mutex covers the slots and the place count, so each step of a call is one short lock:
//! there is no per-call channel to allocate and no separate semaphore to keep in step. The
//! table does not send cancels; `client.rs` does.

use std::collections::hash_map::Entry;
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
    /// No answer yet; the caller's waker once it has polled.
    Waiting(Option<Waker>),
    /// Answered (or failed by the connection closing); waiting for the caller to take it.
    /// Holds no in-flight place any more.
    Ready(Reply),
    /// Sent, and then its caller stopped waiting: kept until the daemon answers, because until
    /// then the daemon may still be running it.
    Abandoned,
}

struct State {
    /// Keyed with a fast non-keyed hash: the ids are ours (sequential), and the daemon can
    /// only look ids up, never insert them, so it cannot pile up colliding keys.
    calls: FxHashMap<RequestId, Slot>,
    /// Requests holding an in-flight place: `Waiting` and `Abandoned` slots.
    outstanding: usize,
    /// How many places there are.
    limit: usize,
    /// Callers waiting in [`Pending::insert`] for a place.
    waiters: usize,
    closed: Option<CloseReason>,
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
                calls: FxHashMap::default(),
                outstanding: 0,
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
    pub(crate) async fn insert(&self, id: RequestId) -> Result<(), CloseReason> {
        if self.try_insert(id)? {
            return Ok(());
        }
        // The uncommon case; boxed so that every call's future does not carry its state.
        Box::pin(self.insert_when_room(id)).await
    }

    async fn insert_when_room(&self, id: RequestId) -> Result<(), CloseReason> {
        let _waiting = Waiting::new(self);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Register before looking, so a wake-up between the look and the await is kept.
            // (A `notify_one` meant for a waiter that is dropped passes to the next one.)
            room.as_mut().enable();
            if self.try_insert(id)? {
                return Ok(());
            }
            room.await;
        }
    }

    /// `Ok(false)` when every place is taken.
    fn try_insert(&self, id: RequestId) -> Result<bool, CloseReason> {
        let mut state = self.lock();
        if let Some(reason) = &state.closed {
            return Err(reason.clone());
        }
        if state.outstanding >= state.limit {
            return Ok(false);
        }
        state.outstanding += 1;
        state.calls.insert(id, Slot::Waiting(None));
        Ok(true)
    }

    /// The caller's side of a slot: the answer once there is one (taking it out of the
    /// table), otherwise `Pending` with the caller's waker kept for [`complete`].
    ///
    /// [`complete`]: Self::complete
    pub(crate) fn poll_answer(&self, id: RequestId, cx: &mut Context<'_>) -> Poll<Reply> {
        let mut state = self.lock();
        match state.calls.entry(id) {
            Entry::Occupied(mut slot) => match slot.get_mut() {
                Slot::Waiting(waker) => {
                    match waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => *waker = Some(cx.waker().clone()),
                    }
                    Poll::Pending
                }
                Slot::Ready(_) => match slot.remove() {
                    Slot::Ready(reply) => Poll::Ready(reply),
                    Slot::Waiting(_) | Slot::Abandoned => Poll::Pending,
                },
                // Only the caller abandons its slot, and then it no longer polls.
                Slot::Abandoned => Poll::Pending,
            },
            // Only the caller removes a slot it inserted; polling one it never inserted is a
            // bug, answered as the closed connection it most likely is.
            Entry::Vacant(_) => Poll::Ready(Err(Error::Closed {
                reason: state.closed.clone().unwrap_or(CloseReason::Dropped),
            })),
        }
    }

    /// Hands the daemon's answer for `id` to its caller, and frees its in-flight place.
    pub(crate) fn complete(&self, id: RequestId, reply: Reply) -> Completion {
        let mut state = self.lock();
        let (done, waker) = match state.calls.entry(id) {
            Entry::Vacant(_) => return Completion::Unknown,
            Entry::Occupied(mut slot) => match slot.get_mut() {
                Slot::Waiting(waker) => {
                    let waker = waker.take();
                    *slot.get_mut() = Slot::Ready(reply);
                    (Completion::Delivered, waker)
                }
                Slot::Abandoned => {
                    slot.remove();
                    (Completion::Cancelled, None)
                }
                // A second answer for one id; the first is still waiting to be taken.
                Slot::Ready(_) => return Completion::Unknown,
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
        let Entry::Occupied(mut slot) = state.calls.entry(id) else {
            return Abandon::Nothing;
        };
        match slot.get() {
            Slot::Waiting(_) if sent => {
                *slot.get_mut() = Slot::Abandoned;
                Abandon::CancelNeeded
            }
            Slot::Waiting(_) => {
                slot.remove();
                state.outstanding -= 1;
                let wake_waiter = state.waiters > 0;
                drop(state);
                if wake_waiter {
                    self.room.notify_one();
                }
                Abandon::Nothing
            }
            // Answered but never taken: the place was freed when the answer came.
            Slot::Ready(_) => {
                slot.remove();
                Abandon::Nothing
            }
            Slot::Abandoned => Abandon::Nothing,
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
            state.calls.retain(|_, slot| match slot {
                Slot::Waiting(waker) => {
                    wakers.extend(waker.take());
                    *slot = Slot::Ready(Err(error(&reason)));
                    true
                }
                Slot::Ready(_) => true,
                Slot::Abandoned => false,
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
        assert!(matches!(third.await, Ok(Ok(()))));
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
}
