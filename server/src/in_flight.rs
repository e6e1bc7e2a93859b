//! The in-flight table of one connection: every request the daemon has read and not yet
//! answered, running or waiting in the version 2 queue, with its cancellation token (a child
//! of the connection's token), its deadline and its supersede key. It makes every version 2
//! decision about a request that is not the handler's own — who is stopped by a deadline or a
//! newer request with the same key, which queued request starts next, why a stopped request
//! is answered the way it is — and does no I/O and reads no clock: the caller passes `now`
//! and polls one timer for [`InFlight::next_deadline`]. Encoding answers and running handler
//! futures stay in `connection.rs`.
//!
//! A request without options costs what it did before version 2: one map insert and one
//! child token when its handler does not finish on its first poll, and nothing else (no key
//! hashing, no deadline bookkeeping). Dropping the table cancels every token in it.

use std::collections::{BTreeSet, HashMap, VecDeque};

use hearth_protocol::{ErrorCode, RequestId, Text};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where a request is: running (with per-running data `R`) or waiting in the queue (with the
/// data needed to start it later, `Q`).
#[derive(Debug)]
enum Slot<Q, R> {
    Running(R),
    Queued(Q),
}

#[derive(Debug)]
struct Entry<Q, R> {
    token: CancellationToken,
    deadline: Option<Instant>,
    key: Option<Text>,
    /// Why the table stopped this request, if it did: the code of its one response.
    reason: Option<ErrorCode>,
    slot: Slot<Q, R>,
}

/// A request id already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request id {0} is already in flight on this connection")]
pub(crate) struct Duplicate(pub(crate) RequestId);

/// What the table did to a request it stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stopped<Q> {
    /// It was running: its token is cancelled, and [`InFlight::finish`] will report `code`
    /// when its future ends. The caller answers nothing now.
    Running(RequestId),
    /// It was queued and is gone from the table: the caller answers it `code` now.
    Queued(RequestId, Q, ErrorCode),
}

/// A finished running request, as [`InFlight::finish`] returns it.
#[derive(Debug)]
pub(crate) struct Finished<R> {
    /// Set when the table stopped the request (deadline, supersede): answer this code
    /// instead of "cancelled".
    pub(crate) reason: Option<ErrorCode>,
    /// The per-running data given to [`InFlight::insert_running`] or [`InFlight::start_next`].
    pub(crate) data: R,
}

/// The options that concern the table, already resolved against the clock.
#[derive(Debug, Default, Clone)]
pub(crate) struct Admission {
    pub(crate) deadline: Option<Instant>,
    pub(crate) key: Option<Text>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct InFlight<Q, R> {
    parent: CancellationToken,
    entries: HashMap<RequestId, Entry<Q, R>>,
    /// Supersede key → the request currently holding it.
    keys: HashMap<Text, RequestId>,
    /// Pending deadlines, earliest first.
    deadlines: BTreeSet<(Instant, RequestId)>,
    /// Queued ids in arrival order; each is in `entries` as `Slot::Queued`.
    queue: VecDeque<RequestId>,
    max_queued: usize,
}

impl<Q, R> InFlight<Q, R> {
    /// An empty table whose tokens are children of `parent`, queueing at most `max_queued`.
    pub(crate) fn new(parent: CancellationToken, max_queued: usize) -> Self {
        Self {
            parent,
            entries: HashMap::new(),
            keys: HashMap::new(),
            deadlines: BTreeSet::new(),
            queue: VecDeque::new(),
            max_queued,
        }
    }

    /// A fresh token for a request about to start (child of the connection's token).
    pub(crate) fn child_token(&self) -> CancellationToken {
        self.parent.child_token()
    }

    /// Whether `id` is running or queued.
    pub(crate) fn contains(&self, id: RequestId) -> bool {
        self.entries.contains_key(&id)
    }

    /// Requests in the table, running and queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Requests waiting in the queue.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether another request may be queued.
    pub(crate) fn queue_has_room(&self) -> bool {
        self.queue.len() < self.max_queued
    }

    /// Stops the request holding `key`, if any, for a newer one: it is answered -32801
    /// (superseded). Call before admitting the newer request.
    pub(crate) fn supersede(&mut self, key: &Text) -> Option<Stopped<Q>> {
        let earlier = *self.keys.get(key)?;
        self.stop(earlier, ErrorCode::SUPERSEDED)
    }

    /// Records a running request whose handler did not finish on its first poll.
    pub(crate) fn insert_running(
        &mut self,
        id: RequestId,
        token: CancellationToken,
        admission: Admission,
        data: R,
    ) -> Result<(), Duplicate> {
        self.insert(id, token, admission, Slot::Running(data))
    }

    /// Queues a request that cannot start yet; `Err` gives it back when the queue is full or
    /// the id is taken (check [`contains`](Self::contains) first to tell them apart).
    pub(crate) fn enqueue(
        &mut self,
        id: RequestId,
        admission: Admission,
        item: Q,
    ) -> Result<(), Q> {
        if !self.queue_has_room() || self.contains(id) {
            return Err(item);
        }
        let token = self.child_token();
        // Cannot be a duplicate: checked above.
        let _ = self.insert(id, token, admission, Slot::Queued(item));
        self.queue.push_back(id);
        Ok(())
    }

    fn insert(
        &mut self,
        id: RequestId,
        token: CancellationToken,
        admission: Admission,
        slot: Slot<Q, R>,
    ) -> Result<(), Duplicate> {
        if self.entries.contains_key(&id) {
            return Err(Duplicate(id));
        }
        let Admission { deadline, key } = admission;
        if let Some(at) = deadline {
            self.deadlines.insert((at, id));
        }
        if let Some(key) = &key {
            self.keys.insert(key.clone(), id);
        }
        self.entries.insert(
            id,
            Entry {
                token,
                deadline,
                key,
                reason: None,
                slot,
            },
        );
        Ok(())
    }

    /// Stops request `id` with `code` (cancel: -32800, deadline, supersede, shutdown).
    /// `None` when no such request is in the table, or it was already stopped.
    pub(crate) fn stop(&mut self, id: RequestId, code: ErrorCode) -> Option<Stopped<Q>> {
        let entry = self.entries.get_mut(&id)?;
        if entry.reason.is_some() {
            return None;
        }
        match entry.slot {
            Slot::Running(_) => {
                entry.reason = Some(code);
                entry.token.cancel();
                let (deadline, key) = (entry.deadline.take(), entry.key.take());
                self.forget(id, deadline, key);
                Some(Stopped::Running(id))
            }
            Slot::Queued(_) => {
                let entry = self.entries.remove(&id)?;
                entry.token.cancel();
                self.forget(id, entry.deadline, entry.key);
                self.queue.retain(|&q| q != id);
                match entry.slot {
                    Slot::Queued(item) => Some(Stopped::Queued(id, item, code)),
                    Slot::Running(_) => None,
                }
            }
        }
    }

    /// Removes a running request whose handler future has ended.
    pub(crate) fn finish(&mut self, id: RequestId) -> Option<Finished<R>> {
        let entry = self.entries.remove(&id)?;
        match entry.slot {
            Slot::Running(data) => {
                self.forget(id, entry.deadline, entry.key);
                Some(Finished {
                    reason: entry.reason,
                    data,
                })
            }
            Slot::Queued(item) => {
                // Not running: put it back untouched.
                self.entries.insert(
                    id,
                    Entry {
                        slot: Slot::Queued(item),
                        ..entry
                    },
                );
                None
            }
        }
    }

    /// Drops the deadline and key bookkeeping of `id`.
    fn forget(&mut self, id: RequestId, deadline: Option<Instant>, key: Option<Text>) {
        if let Some(at) = deadline {
            self.deadlines.remove(&(at, id));
        }
        if let Some(key) = key
            && self.keys.get(&key) == Some(&id)
        {
            self.keys.remove(&key);
        }
    }

    /// The earliest deadline of any request in the table: the one timer the connection
    /// needs.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// Stops every request whose deadline is at or before `now` with -32002.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Stopped<Q>> {
        let mut stopped = Vec::new();
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(s) = self.stop(id, ErrorCode::DEADLINE_EXCEEDED) {
                stopped.push(s);
            }
        }
        stopped
    }

    /// Takes the oldest queued request and marks it running with `data`; returns its id,
    /// token and queued item for the caller to start.
    pub(crate) fn start_next(
        &mut self,
        data: impl FnOnce(&Q) -> R,
    ) -> Option<(RequestId, CancellationToken, Q)> {
        let id = self.queue.pop_front()?;
        let entry = self.entries.get_mut(&id)?;
        let running = match &entry.slot {
            Slot::Queued(item) => Slot::Running(data(item)),
            Slot::Running(_) => return None,
        };
        let Slot::Queued(item) = std::mem::replace(&mut entry.slot, running) else {
            return None;
        };
        Some((id, entry.token.clone(), item))
    }

    /// Removes every queued request (shutdown answers them -32003).
    pub(crate) fn take_queued(&mut self) -> Vec<(RequestId, Q)> {
        let ids: Vec<RequestId> = self.queue.drain(..).collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(entry) = self.entries.remove(&id) {
                entry.token.cancel();
                self.forget(id, entry.deadline, entry.key);
                if let Slot::Queued(item) = entry.slot {
                    out.push((id, item));
                }
            }
        }
        out
    }

    /// Cancels and removes everything; returns every id (each is owed an answer unless the
    /// connection is being cut off) with the per-running data of those that ran.
    pub(crate) fn clear(&mut self) -> Vec<(RequestId, Option<R>)> {
        self.queue.clear();
        self.keys.clear();
        self.deadlines.clear();
        let mut ids = Vec::with_capacity(self.entries.len());
        for (id, entry) in self.entries.drain() {
            entry.token.cancel();
            ids.push((
                id,
                match entry.slot {
                    Slot::Running(data) => Some(data),
                    Slot::Queued(_) => None,
                },
            ));
        }
        ids
    }

    /// The deadline and per-running data of running request `id`.
    pub(crate) fn running_entry(&self, id: RequestId) -> Option<(Option<Instant>, &R)> {
        match self.entries.get(&id) {
            Some(Entry {
                deadline,
                slot: Slot::Running(data),
                ..
            }) => Some((*deadline, data)),
            _ => None,
        }
    }

    /// Running requests (not queued).
    pub(crate) fn running(&self) -> usize {
        self.entries.len() - self.queue.len()
    }
}

impl<Q, R> Drop for InFlight<Q, R> {
    fn drop(&mut self) {
        for entry in self.entries.values() {
            entry.token.cancel();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use std::time::Duration;

    fn table() -> InFlight<&'static str, ()> {
        InFlight::new(CancellationToken::new(), 2)
    }

    fn id(n: u64) -> RequestId {
        RequestId::new(n)
    }

    fn key(s: &'static str) -> Text {
        Text::from_static(s)
    }

    fn run(t: &mut InFlight<&'static str, ()>, n: u64, adm: Admission) -> CancellationToken {
        let token = t.child_token();
        t.insert_running(id(n), token.clone(), adm, ()).unwrap();
        token
    }

    #[test]
    fn duplicate_ids_are_rejected_running_or_queued() {
        let mut t = table();
        run(&mut t, 1, Admission::default());
        let again = t.insert_running(id(1), t.child_token(), Admission::default(), ());
        assert_eq!(again, Err(Duplicate(id(1))));
        t.enqueue(id(2), Admission::default(), "two").unwrap();
        assert_eq!(
            t.enqueue(id(2), Admission::default(), "again"),
            Err("again")
        );
        assert!(t.contains(id(2)));
        assert_eq!((t.running(), t.queued()), (1, 1));
    }

    #[test]
    fn supersede_stops_the_running_holder_and_reports_it_when_it_finishes() {
        let mut t = table();
        let first = run(
            &mut t,
            1,
            Admission {
                key: Some(key("k")),
                ..Admission::default()
            },
        );
        assert_eq!(t.supersede(&key("k")), Some(Stopped::Running(id(1))));
        assert!(first.is_cancelled());
        run(
            &mut t,
            2,
            Admission {
                key: Some(key("k")),
                ..Admission::default()
            },
        );
        let done = t.finish(id(1)).unwrap();
        assert_eq!(done.reason, Some(ErrorCode::SUPERSEDED));
        // The newer request still holds the key.
        assert_eq!(t.supersede(&key("k")), Some(Stopped::Running(id(2))));
    }

    #[test]
    fn supersede_removes_a_queued_holder_at_once() {
        let mut t = table();
        let adm = Admission {
            key: Some(key("k")),
            ..Admission::default()
        };
        t.enqueue(id(1), adm.clone(), "one").unwrap();
        assert_eq!(
            t.supersede(&key("k")),
            Some(Stopped::Queued(id(1), "one", ErrorCode::SUPERSEDED))
        );
        assert!(!t.contains(id(1)));
        assert_eq!(t.queued(), 0);
        assert!(t.start_next(|_| ()).is_none());
    }

    #[test]
    fn a_stopped_request_is_stopped_once() {
        let mut t = table();
        run(&mut t, 1, Admission::default());
        assert_eq!(
            t.stop(id(1), ErrorCode::REQUEST_CANCELLED),
            Some(Stopped::Running(id(1)))
        );
        assert_eq!(t.stop(id(1), ErrorCode::DEADLINE_EXCEEDED), None);
        assert_eq!(
            t.finish(id(1)).unwrap().reason,
            Some(ErrorCode::REQUEST_CANCELLED)
        );
        assert!(t.finish(id(1)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_expire_in_order_running_and_queued() {
        let mut t = table();
        let now = Instant::now();
        let at = |ms| Admission {
            deadline: Some(now + Duration::from_millis(ms)),
            key: None,
        };
        let running = run(&mut t, 1, at(20));
        t.enqueue(id(2), at(10), "two").unwrap();
        run(&mut t, 3, Admission::default());
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(10)));

        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(
            t.expire(Instant::now()),
            vec![Stopped::Queued(id(2), "two", ErrorCode::DEADLINE_EXCEEDED)]
        );
        assert!(!running.is_cancelled());
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(20)));

        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(t.expire(Instant::now()), vec![Stopped::Running(id(1))]);
        assert!(running.is_cancelled());
        assert_eq!(t.next_deadline(), None);
        assert_eq!(
            t.finish(id(1)).unwrap().reason,
            Some(ErrorCode::DEADLINE_EXCEEDED)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_request_leaves_no_deadline_behind() {
        let mut t = table();
        let adm = Admission {
            deadline: Some(Instant::now() + Duration::from_millis(5)),
            key: Some(key("k")),
        };
        run(&mut t, 1, adm);
        assert!(t.finish(id(1)).unwrap().reason.is_none());
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.supersede(&key("k")), None);
        tokio::time::advance(Duration::from_millis(10)).await;
        assert!(t.expire(Instant::now()).is_empty());
    }

    #[test]
    fn the_queue_is_fifo_and_bounded() {
        let mut t = table();
        t.enqueue(id(1), Admission::default(), "one").unwrap();
        t.enqueue(id(2), Admission::default(), "two").unwrap();
        assert!(!t.queue_has_room());
        assert_eq!(
            t.enqueue(id(3), Admission::default(), "three"),
            Err("three")
        );
        let (first, _, item) = t.start_next(|_| ()).unwrap();
        assert_eq!((first, item), (id(1), "one"));
        assert_eq!((t.running(), t.queued()), (1, 1));
        assert!(t.finish(id(1)).is_some());
        assert_eq!(t.take_queued(), vec![(id(2), "two")]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn cancel_of_a_queued_request_frees_its_place() {
        let mut t = table();
        t.enqueue(id(1), Admission::default(), "one").unwrap();
        t.enqueue(id(2), Admission::default(), "two").unwrap();
        assert_eq!(
            t.stop(id(1), ErrorCode::REQUEST_CANCELLED),
            Some(Stopped::Queued(id(1), "one", ErrorCode::REQUEST_CANCELLED))
        );
        assert!(t.queue_has_room());
        // A reused id queues again and starts in its new place.
        t.enqueue(id(1), Admission::default(), "one again").unwrap();
        assert_eq!(t.start_next(|_| ()).unwrap().2, "two");
        assert_eq!(t.start_next(|_| ()).unwrap().2, "one again");
    }

    #[test]
    fn tokens_are_children_of_the_parent_and_dropping_the_table_cancels_them() {
        let parent = CancellationToken::new();
        let mut t: InFlight<&str, ()> = InFlight::new(parent.clone(), 4);
        let a = t.child_token();
        t.insert_running(id(1), a.clone(), Admission::default(), ())
            .unwrap();
        parent.cancel();
        assert!(a.is_cancelled());

        let mut t: InFlight<&str, ()> = InFlight::new(CancellationToken::new(), 4);
        let b = t.child_token();
        t.insert_running(id(1), b.clone(), Admission::default(), ())
            .unwrap();
        t.enqueue(id(2), Admission::default(), "two").unwrap();
        drop(t);
        assert!(b.is_cancelled());
    }
}
