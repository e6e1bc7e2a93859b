//! An open loop's timetable and its pacer. Call `k` is due at `start + k / rate`, whatever
//! the answers do; the pacer, on a thread of its own, releases each call when it falls due,
//! and a free slot takes the oldest call released. A call that finds no free slot waits — and
//! since its latency is measured from its due time, that wait is counted, not omitted.
//!
//! The pacer sleeps on a thread rather than on the runtime's timer, which rounds to whole
//! milliseconds, and asks the kernel for a timer slack of 1 ns instead of the default 50 µs:
//! whatever it oversleeps shows up in every call's latency. Making the calls is `load.rs`'s job.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::bench::load::Length;

/// A call sent more than this after its due time was late: the client fell behind. Well above
/// the pacer's own precision (tens of microseconds).
pub(crate) const LATE_AFTER: Duration = Duration::from_millis(1);

/// The longest the pacer sleeps at once, so that it notices a stop.
const PACER_NAP: Duration = Duration::from_millis(50);

/// Call `k` is due at `start + k * nanos_per_call`; calls `0..warmup_calls` are the warmup
/// and `warmup_calls..total` are measured.
pub(crate) struct Schedule {
    start: Instant,
    nanos_per_call: f64,
    warmup_calls: u64,
    total: u64,
    /// One permit per call released and not yet taken; closed when the run is stopped.
    due: Semaphore,
    /// The next call a slot takes.
    next: AtomicU64,
}

/// A call a slot took off the schedule.
pub(crate) struct Due {
    pub(crate) due: Instant,
    pub(crate) measured: bool,
}

impl Schedule {
    /// `rate` calls per second from `start`: the warmup's worth, then `length`'s.
    pub(crate) fn new(start: Instant, rate: f64, warmup: Duration, length: Length) -> Self {
        let warmup_calls = (warmup.as_secs_f64() * rate).ceil() as u64;
        let measured = match length {
            Length::Calls(n) => n,
            Length::For(d) => (d.as_secs_f64() * rate).floor() as u64,
        };
        Self {
            start,
            nanos_per_call: 1e9 / rate,
            warmup_calls,
            total: warmup_calls.saturating_add(measured),
            due: Semaphore::new(0),
            next: AtomicU64::new(0),
        }
    }

    /// How many measured calls the schedule has.
    pub(crate) fn measured_calls(&self) -> u64 {
        self.total - self.warmup_calls
    }

    fn time_of(&self, k: u64) -> Instant {
        self.start + Duration::from_nanos((k as f64 * self.nanos_per_call) as u64)
    }

    /// How many calls are due by `now` (call 0 is due at once).
    fn due_by(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos() as f64;
        let mut due = (elapsed / self.nanos_per_call) as u64 + 1;
        // Float rounding can put the estimate one off either way; settle it on `time_of`.
        while due > 0 && self.time_of(due - 1) > now {
            due -= 1;
        }
        while due < self.total && self.time_of(due) <= now {
            due += 1;
        }
        due.min(self.total)
    }

    /// Waits for the oldest released call and takes it; `None` once the schedule is done or
    /// closed.
    pub(crate) async fn take(&self) -> Option<Due> {
        self.due.acquire().await.ok()?.forget();
        let k = self.next.fetch_add(1, Relaxed);
        (k < self.total).then(|| Due {
            due: self.time_of(k),
            measured: k >= self.warmup_calls,
        })
    }

    /// Stops the schedule: slots waiting in [`take`](Self::take) get `None`, the pacer returns.
    pub(crate) fn close(&self) {
        self.due.close();
    }

    /// The pacer: releases each call when it falls due, then one extra permit per slot so
    /// that every slot finds the schedule exhausted and ends. Blocks its thread until then, or
    /// until the schedule is closed.
    pub(crate) fn pace(&self, slots: usize) {
        precise_sleeps();
        let mut released = 0;
        while !self.due.is_closed() {
            let due = self.due_by(Instant::now());
            if due > released {
                self.due.add_permits(permits(due - released));
                released = due;
            }
            if released == self.total {
                self.due.add_permits(slots);
                return;
            }
            let wait = self
                .time_of(released)
                .saturating_duration_since(Instant::now());
            std::thread::sleep(wait.min(PACER_NAP));
        }
    }
}

/// Asks the kernel to wake this thread from a sleep as close to the asked time as it can: the
/// default timer slack lets it oversleep by up to 50 µs. Best effort; a failure leaves the
/// default.
#[allow(unsafe_code)]
fn precise_sleeps() {
    // SAFETY: prctl(2) with PR_SET_TIMERSLACK takes the slack in nanoseconds as a plain integer
    // argument, reads no memory of ours and affects only the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

/// A count of calls as semaphore permits. The backlog can never come near the limit (it is
/// at most the number of scheduled calls), but `add_permits` panics past it.
fn permits(n: u64) -> usize {
    usize::try_from(n)
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_fixed_by_the_rate_alone() {
        let start = Instant::now();
        let s = Schedule::new(
            start,
            1000.0,
            Duration::from_millis(10),
            Length::For(Duration::from_secs(2)),
        );
        assert_eq!(s.warmup_calls, 10);
        assert_eq!(s.measured_calls(), 2000);
        assert_eq!(s.time_of(0), start);
        assert_eq!(s.time_of(1500), start + Duration::from_millis(1500));
        assert_eq!(s.due_by(start), 1, "call 0 is due at once");
        assert_eq!(s.due_by(start + Duration::from_micros(999)), 1);
        assert_eq!(s.due_by(start + Duration::from_millis(1)), 2);
        assert_eq!(s.due_by(start + Duration::from_millis(7)), 8);
        assert_eq!(s.due_by(start + Duration::from_secs(60)), 2010, "capped");
    }

    #[test]
    fn fractional_rates_round_each_call_on_its_own() {
        let start = Instant::now();
        let s = Schedule::new(start, 3.0, Duration::ZERO, Length::Calls(7));
        for k in 0..7u64 {
            let at = s.time_of(k);
            assert_eq!(s.due_by(at), k + 1, "call {k} is due at its time");
            if k > 0 {
                assert_eq!(s.due_by(at - Duration::from_nanos(1)), k);
            }
        }
    }

    #[tokio::test]
    async fn the_pacer_releases_every_call_then_one_per_slot() {
        let s = Schedule::new(
            Instant::now(),
            1e6,
            Duration::from_micros(3),
            Length::Calls(50),
        );
        s.pace(2);
        assert_eq!(s.due.available_permits(), 53 + 2);
        let mut measured = 0;
        let mut dues = Vec::new();
        while let Some(call) = s.take().await {
            measured += u64::from(call.measured);
            dues.push(call.due);
        }
        assert_eq!(dues.len(), 53, "3 warmup calls and 50 measured");
        assert_eq!(measured, 50);
        assert!(dues.windows(2).all(|w| w[0] < w[1]), "taken in due order");
        // The second slot's extra permit ends it too.
        assert!(s.take().await.is_none());
    }

    #[tokio::test]
    async fn closing_ends_the_pacer_and_the_slots() {
        let s = Schedule::new(Instant::now(), 0.001, Duration::ZERO, Length::Calls(5));
        s.close();
        // With one call per 1000 s, only the closed schedule lets the pacer return.
        s.pace(4);
        assert!(s.take().await.is_none());
    }

    #[test]
    #[allow(unsafe_code)]
    fn the_pacer_thread_sleeps_precisely() {
        let slack = std::thread::spawn(|| {
            precise_sleeps();
            // SAFETY: PR_GET_TIMERSLACK takes no pointer; it returns this thread's slack.
            unsafe { libc::prctl(libc::PR_GET_TIMERSLACK) }
        })
        .join()
        .expect("the thread");
        assert_eq!(slack, 1);
    }
}
