//! The pending-call table: for every request id the daemon has not answered yet, where its
//! answer goes. A call inserts its id before its frame is queued, the reader completes it when
//! the response arrives, a dropped call marks it abandoned, and closing the connection drains
//! it so that no caller can wait forever.
//!
//! The table also decides, per id, when the daemon is known to be done with a request — which
//! is when the caller's in-flight permit is given back (see [`Completion`]). It does not send
//! cancels or touch the semaphore itself; `connection.rs` and `client.rs` do that.

use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use hearth_protocol::RequestId;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::error::{CloseReason, Error};

/// What a waiting call receives: the raw result, or why there is none.
pub(crate) type Reply = Result<Bytes, Error>;

/// One request the daemon has not answered.
struct Entry {
    /// Where the answer goes; `None` once the caller gave up (it was cancelled), in which case
    /// the entry stays until the daemon's answer arrives, so the permit it holds keeps
    /// counting a request the daemon is still running.
    reply: Option<oneshot::Sender<Reply>>,
}

struct State {
    /// Keyed with a fast non-keyed hash: the ids are ours (sequential), and the daemon can
    /// only look ids up, never insert them, so it cannot pile up colliding keys.
    calls: FxHashMap<RequestId, Entry>,
    /// Set once, when the connection closes; nothing is inserted afterwards.
    closed: Option<CloseReason>,
}

/// Request id → waiting caller.
///
/// A `std::sync::Mutex` guards it: every critical section is a hash-map operation, nothing is
/// awaited while it is held, and it is also taken from `Drop` impls, which cannot await.
pub(crate) struct Pending {
    state: Mutex<State>,
}

/// What [`Pending::complete`] found for an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completion {
    /// A caller was waiting and got the answer (or had just gone away).
    Delivered,
    /// The caller had cancelled; the answer is dropped.
    Cancelled,
    /// No such request: never sent, or already answered.
    Unknown,
}

impl Completion {
    /// Whether the id was in flight, so its in-flight permit is now free.
    pub(crate) fn frees_permit(self) -> bool {
        !matches!(self, Self::Unknown)
    }
}

/// What [`Pending::abandon`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Abandon {
    /// The request was never sent: the entry is gone and its permit is free.
    Removed,
    /// The request was sent and is unanswered: a cancel should go out; the permit stays
    /// taken until the daemon answers.
    CancelNeeded,
    /// Nothing to do: already answered, or the connection is closed.
    Nothing,
}

impl Pending {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                calls: FxHashMap::default(),
                closed: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; recover rather than propagate a poison.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a call; fails with the close reason once the connection is closed.
    pub(crate) fn insert(&self, id: RequestId) -> Result<oneshot::Receiver<Reply>, CloseReason> {
        let mut state = self.lock();
        if let Some(reason) = &state.closed {
            return Err(reason.clone());
        }
        let (tx, rx) = oneshot::channel();
        state.calls.insert(id, Entry { reply: Some(tx) });
        Ok(rx)
    }

    /// Hands the daemon's answer for `id` to its caller.
    pub(crate) fn complete(&self, id: RequestId, reply: Reply) -> Completion {
        let entry = self.lock().calls.remove(&id);
        match entry {
            None => Completion::Unknown,
            Some(Entry { reply: None }) => Completion::Cancelled,
            Some(Entry { reply: Some(tx) }) => {
                // The caller may have been dropped a moment ago; the answer is then unwanted.
                let _ = tx.send(reply);
                Completion::Delivered
            }
        }
    }

    /// The caller of `id` stopped waiting. `sent` says whether its frame was queued.
    pub(crate) fn abandon(&self, id: RequestId, sent: bool) -> Abandon {
        let mut state = self.lock();
        match state.calls.get_mut(&id) {
            None => Abandon::Nothing,
            Some(_) if !sent => {
                state.calls.remove(&id);
                Abandon::Removed
            }
            Some(entry) => match entry.reply.take() {
                Some(_) => Abandon::CancelNeeded,
                None => Abandon::Nothing,
            },
        }
    }

    /// Marks the table closed and returns every waiting caller, or `None` if it was already
    /// closed (the first reason wins).
    pub(crate) fn close(&self, reason: CloseReason) -> Option<Vec<oneshot::Sender<Reply>>> {
        let mut state = self.lock();
        if state.closed.is_some() {
            return None;
        }
        state.closed = Some(reason);
        let waiting = state.calls.drain().filter_map(|(_, e)| e.reply).collect();
        Some(waiting)
    }

    /// Why the connection closed, once it has.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.lock().closed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reaches_its_caller_once() {
        let pending = Pending::new();
        let Ok(mut rx) = pending.insert(1) else {
            panic!("open table refused an insert")
        };
        assert_eq!(
            pending.complete(1, Ok(Bytes::from_static(b"\xc0"))),
            Completion::Delivered
        );
        assert!(matches!(rx.try_recv(), Ok(Ok(b)) if &b[..] == b"\xc0"));
        assert_eq!(pending.complete(1, Ok(Bytes::new())), Completion::Unknown);
    }

    #[test]
    fn abandoning_a_sent_call_keeps_it_until_the_answer() {
        let pending = Pending::new();
        let _rx = pending.insert(5);
        assert_eq!(pending.abandon(5, true), Abandon::CancelNeeded);
        assert_eq!(pending.abandon(5, true), Abandon::Nothing);
        assert_eq!(pending.complete(5, Ok(Bytes::new())), Completion::Cancelled);
        assert!(Completion::Cancelled.frees_permit());
        assert_eq!(pending.complete(5, Ok(Bytes::new())), Completion::Unknown);
    }

    #[test]
    fn abandoning_an_unsent_call_removes_it() {
        let pending = Pending::new();
        let _rx = pending.insert(9);
        assert_eq!(pending.abandon(9, false), Abandon::Removed);
        assert_eq!(pending.complete(9, Ok(Bytes::new())), Completion::Unknown);
    }

    #[test]
    fn closing_drains_waiters_and_refuses_new_calls() {
        let pending = Pending::new();
        let _a = pending.insert(1);
        let _b = pending.insert(2);
        let _c = pending.insert(3);
        pending.abandon(3, true);
        let waiting = pending.close(CloseReason::Eof).unwrap_or_default();
        assert_eq!(waiting.len(), 2, "the abandoned call has no waiter");
        assert!(
            pending.close(CloseReason::Dropped).is_none(),
            "first reason wins"
        );
        assert!(matches!(pending.insert(4), Err(CloseReason::Eof)));
        assert!(matches!(pending.close_reason(), Some(CloseReason::Eof)));
    }
}
