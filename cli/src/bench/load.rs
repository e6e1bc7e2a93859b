//! The load itself: in-flight slots that make calls through `hearth-client` and tally what
//! happened. Each slot is a loop — take the next call, send it, wait, check and record the
//! answer — that allocates nothing of its own: the params are encoded once and every call
//! borrows them. With protocol v2 options (`--deadline`, `--supersede`) calls go through the
//! client's request builder instead, which encodes the params and copies the key per call.
//! `--timeout` is each slot's own timer, made once and looked at about once per `--timeout`
//! (not the client's per-call timeout, which would set up and tear down a timer for every
//! call).
//!
//! - Closed loop: every slot sends its next call as soon as the last one is answered, so each
//!   connection keeps exactly its in-flight count outstanding. Latency runs from sending.
//! - Open loop: calls fall due on a fixed schedule kept by a pacer thread (`schedule.rs`), not
//!   by the answers. A free slot takes the oldest due call; when none is free the call waits,
//!   and that wait counts in its latency, which runs from the due time — not from when it was
//!   finally sent. This corrects for coordinated omission: a stalled daemon cannot hide its
//!   stall by slowing down the client that measures it.
//!
//! Flags, connecting and the report are `bench.rs`'s and `report.rs`'s business.

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hearth_client::{Client, Error};
use tokio::task::JoinSet;
use tokio::time::Sleep;

use crate::bench::Supersede;
use crate::bench::schedule::{LATE_AFTER, Schedule};
use crate::json::Params;

/// What every call sends, and how long the run lasts.
pub(crate) struct Plan {
    pub(crate) method: String,
    /// One MessagePack value, encoded once.
    pub(crate) params: Vec<u8>,
    /// The same params as a value, for calls with protocol v2 options: the request builder
    /// encodes its params itself.
    pub(crate) body: Params,
    /// Protocol v2: the deadline every call carries.
    pub(crate) deadline: Option<Duration>,
    /// Protocol v2: how every call is given a supersede key.
    pub(crate) supersede: Option<Supersede>,
    /// Whether each result must equal the params (for `echo`).
    pub(crate) check_echo: bool,
    /// How long one call may take (`--timeout`) before it is cancelled and counted as a
    /// timeout.
    pub(crate) timeout: Duration,
    pub(crate) warmup: Duration,
    pub(crate) length: Length,
    /// Calls per second in total for an open loop; `None` for a closed loop.
    pub(crate) rate: Option<f64>,
}

/// When the measured part of a run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Length {
    /// After this long (a closed loop stops sending then and waits for what is in flight).
    For(Duration),
    /// After this many calls.
    Calls(u64),
}

/// The state every slot shares.
pub(crate) struct Run {
    plan: Plan,
    /// Calls sent from here on are measured; earlier ones are the warmup.
    pub(crate) measure_from: Instant,
    /// A closed loop with a duration sends nothing from here on.
    closed_until: Option<Instant>,
    /// A closed loop with a call count: measured calls handed out so far.
    counted: AtomicU64,
    stop: AtomicBool,
    schedule: Option<Schedule>,
}

impl Run {
    /// A run whose warmup (or measurement, without one) starts at `start`.
    pub(crate) fn new(plan: Plan, start: Instant) -> Self {
        let measure_from = start + plan.warmup;
        let closed_until = match (plan.rate, plan.length) {
            (None, Length::For(d)) => Some(measure_from + d),
            _ => None,
        };
        let schedule = plan
            .rate
            .map(|rate| Schedule::new(start, rate, plan.warmup, plan.length));
        Self {
            plan,
            measure_from,
            closed_until,
            counted: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            schedule,
        }
    }

    /// How many measured calls an open loop makes (`None` for a closed loop).
    pub(crate) fn scheduled_calls(&self) -> Option<u64> {
        self.schedule.as_ref().map(Schedule::measured_calls)
    }

    /// For an open loop, releases calls as they fall due until the schedule is done or the
    /// run stopped (see [`Schedule::pace`]); returns at once for a closed loop.
    pub(crate) fn pace(&self, slots: usize) {
        if let Some(schedule) = &self.schedule {
            schedule.pace(slots);
        }
    }

    /// Stops handing out calls; calls already sent are still waited for.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Relaxed);
        if let Some(schedule) = &self.schedule {
            schedule.close();
        }
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// For a closed loop: whether a measured call sent at `sent` may go.
    fn take_measured(&self, sent: Instant) -> bool {
        match self.plan.length {
            Length::For(_) => self.closed_until.is_some_and(|until| sent < until),
            Length::Calls(n) => self.counted.fetch_add(1, Relaxed) < n,
        }
    }
}

/// One connection and what its slots recorded.
pub(crate) struct Conn {
    pub(crate) client: Client,
    tally: Mutex<Tally>,
}

/// What one connection's measured calls did.
pub(crate) struct Tally {
    /// Latency of each successful measured call, in nanoseconds (a call on one core takes a
    /// few µs, so whole µs were too coarse to compare; the report shows µs to 0.1).
    pub(crate) latency: Histogram<u64>,
    /// Open loop: how long after its scheduled time each measured call was sent, in
    /// microseconds — the client's own share of the latency.
    pub(crate) lag: Histogram<u64>,
    /// Measured calls answered (successes, errors, superseded and deadline-exceeded).
    pub(crate) calls: u64,
    /// Failed measured calls by kind: an error code, `mismatch`, `timeout`, ... Superseded and
    /// deadline-exceeded calls are not here: they are what the options asked for.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Measured calls answered -32801: a newer call with the same supersede key replaced them.
    pub(crate) superseded: u64,
    /// Measured calls answered -32002: the daemon stopped them at their deadline.
    pub(crate) deadline_exceeded: u64,
    /// Measured calls sent more than [`LATE_AFTER`] after their scheduled time.
    pub(crate) late: u64,
    /// When the last measured call was answered.
    pub(crate) last_done: Option<Instant>,
    /// Why the connection was lost, if it was.
    pub(crate) lost: Option<Error>,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Self {
            // Auto-resizing, three significant figures.
            latency: Histogram::new(3).expect("3 significant figures are allowed"),
            lag: Histogram::new(3).expect("3 significant figures are allowed"),
            calls: 0,
            errors: BTreeMap::new(),
            superseded: 0,
            deadline_exceeded: 0,
            late: 0,
            last_done: None,
            lost: None,
        }
    }

    /// Adds `other` into this one.
    pub(crate) fn merge(&mut self, other: Tally) {
        // Both histograms resize themselves, so adding cannot run out of range.
        let _ = self.latency.add(&other.latency);
        let _ = self.lag.add(&other.lag);
        self.calls += other.calls;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.superseded += other.superseded;
        self.deadline_exceeded += other.deadline_exceeded;
        self.late += other.late;
        self.last_done = self.last_done.max(other.last_done);
        self.lost = self.lost.take().or(other.lost);
    }
}

impl Conn {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            tally: Mutex::new(Tally::new()),
        }
    }

    /// The tally so far. A `std::sync::Mutex`: it is held for a few counter updates and
    /// never across an await.
    pub(crate) fn tally(&self) -> MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes what was tallied so far, leaving an empty tally.
    pub(crate) fn take_tally(&self) -> Tally {
        std::mem::replace(&mut *self.tally(), Tally::new())
    }

    /// Records one answered call; `Break` when the connection is gone.
    fn record(&self, run: &Run, outcome: Result<Bytes, Error>, call: Timing) -> ControlFlow<()> {
        let answer = match &outcome {
            Ok(result) if run.plan.check_echo && result[..] != run.plan.params[..] => {
                Answer::Failed("mismatch".to_owned())
            }
            Ok(_) => Answer::Ok,
            Err(e) if e.is_superseded() => Answer::Superseded,
            Err(e) if e.is_deadline_exceeded() => Answer::DeadlineExceeded,
            Err(e) => Answer::Failed(error_kind(e)),
        };
        let mut tally = self.tally();
        if call.measured {
            tally.calls += 1;
            if let Some(lag) = call.lag {
                tally.late += u64::from(lag > LATE_AFTER);
                record(&mut tally.lag, micros(lag));
            }
            tally.last_done = tally.last_done.max(Some(call.done));
            match answer {
                Answer::Ok => {
                    let latency = call.done.saturating_duration_since(call.from);
                    record(&mut tally.latency, nanos(latency));
                }
                Answer::Superseded => tally.superseded += 1,
                Answer::DeadlineExceeded => tally.deadline_exceeded += 1,
                Answer::Failed(kind) => *tally.errors.entry(kind).or_default() += 1,
            }
        }
        match outcome {
            Err(e) if e.is_connection_lost() => {
                tally.lost.get_or_insert(e);
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

/// Records `micros`, growing the histogram as needed (`saturating_record` would clamp to its
/// current range instead, which starts at about 2 ms).
fn record(histogram: &mut Histogram<u64>, micros: u64) {
    if histogram.record(micros).is_err() {
        // Only past the histogram's absolute limit (~2^63 µs).
        histogram.saturating_record(micros);
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How one call ended, as the tally counts it.
enum Answer {
    Ok,
    Superseded,
    DeadlineExceeded,
    /// Counted under this kind.
    Failed(String),
}

/// When one call was due, sent and answered.
struct Timing {
    /// What its latency is measured from: when it was sent (closed loop) or scheduled (open).
    from: Instant,
    /// Open loop: how long after its scheduled time it was sent.
    lag: Option<Duration>,
    done: Instant,
    measured: bool,
}

/// The key a failed call is counted under.
fn error_kind(e: &Error) -> String {
    match e {
        Error::Remote(remote) => remote.code.to_string(),
        Error::Timeout(_) => "timeout".to_owned(),
        e if e.is_connection_lost() => "connection lost".to_owned(),
        Error::Encode(_) => "cannot encode".to_owned(),
        Error::Decode(_) => "cannot decode".to_owned(),
        _ => "other".to_owned(),
    }
}

/// Runs every slot of every connection — `in_flight` per connection, each its own task — until
/// the run ends. Dropping the future aborts them.
///
/// One task per slot rather than one `FuturesUnordered` of slots per connection: measured
/// against each other, they cost the same client CPU per call up to 32 in flight, and past
/// that the tasks cost less (0.8–0.9 against 1.1 µs per call at 256 in flight, release build),
/// without adding a dependency.
pub(crate) async fn drive(run: Arc<Run>, conns: &[Arc<Conn>], in_flight: usize) {
    let mut slots = JoinSet::new();
    for conn in conns {
        for index in 0..in_flight {
            let (run, conn) = (run.clone(), conn.clone());
            let key = run.plan.supersede.map(|mode| mode.key(index));
            slots.spawn(async move {
                let slot = Slot {
                    run: &run,
                    conn: &conn,
                    key: key.as_deref(),
                };
                match &run.schedule {
                    None => closed_slot(slot).await,
                    Some(schedule) => open_slot(slot, schedule).await,
                }
            });
        }
    }
    while slots.join_next().await.is_some() {}
}

/// What one in-flight slot works with.
#[derive(Clone, Copy)]
struct Slot<'a> {
    run: &'a Run,
    conn: &'a Conn,
    /// Its supersede key, with `--supersede`.
    key: Option<&'a str>,
}

impl Slot<'_> {
    /// Whether calls go the raw fast path: no protocol v2 option to add.
    fn plain(self) -> bool {
        self.run.plan.deadline.is_none() && self.key.is_none()
    }

    /// Makes one call through the protocol v2 request builder, with the plan's deadline and
    /// this slot's supersede key.
    async fn call_with_options(self) -> Result<Bytes, Error> {
        let plan = &self.run.plan;
        let mut request = self.conn.client.request(&plan.method, &plan.body);
        if let Some(deadline) = plan.deadline {
            request = request.deadline(deadline);
        }
        if let Some(key) = self.key {
            request = request.supersede(key);
        }
        request.send_raw().await
    }
}

/// A slot's timer for `--timeout`, made once and kept for every call: a fresh timeout per call
/// (the client's own, from `ClientConfig::with_timeout`) allocates, registers and removes a
/// timer every time.
///
/// Nor is the timer moved or polled per call. Its deadline is never later than the current
/// call's limit (calls are sent in order, and it is only ever set to a call's limit), so it
/// may fire early: then the call's own limit is checked, and the timer set to it. A call's
/// first poll after sending leaves the timer alone when the timer has not fired and was last
/// polled with a waker that [`will_wake`](Waker::will_wake) this one — by the `Future`
/// contract it wakes that waker when it fires. So a slot touches its timer about once per
/// `--timeout`, not once per call, and a call is still given at least `--timeout` (and at most
/// that plus Tokio's millisecond tick).
struct Timer {
    limit: Duration,
    sleep: Pin<Box<Sleep>>,
    /// The waker the sleep last returned `Pending` to, unless it has been reset or fired since.
    armed: Option<Waker>,
}

impl Timer {
    fn new(limit: Duration) -> Self {
        Self {
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
            armed: None,
        }
    }

    /// `call`, sent at `sent`, or [`Error::Timeout`] once `limit` has passed since then; the
    /// caller then drops the call's future, which cancels it at the daemon.
    ///
    /// The call is borrowed pinned, not taken: a future taken by value is moved into this
    /// one's state (and the call's future is a few hundred bytes), and every call would pay
    /// for the copy. The caller pins it where it is made (see [`closed_loop`]).
    fn bound<'a, F>(
        &'a mut self,
        sent: Instant,
        mut call: Pin<&'a mut F>,
    ) -> impl Future<Output = Result<Bytes, Error>> + 'a
    where
        F: Future<Output = Result<Bytes, Error>>,
    {
        let due = tokio::time::Instant::from_std(sent + self.limit);
        let mut first = true;
        std::future::poll_fn(move |cx| {
            if let Poll::Ready(outcome) = call.as_mut().poll(cx) {
                return Poll::Ready(outcome);
            }
            // Later polls may be the timer's wake-up, so they always look at it.
            if std::mem::take(&mut first) && self.armed_for(due, cx) {
                return Poll::Pending;
            }
            self.watch(due, cx)
        })
    }

    /// Whether the timer will wake `cx` by `due` without being polled.
    fn armed_for(&self, due: tokio::time::Instant, cx: &Context<'_>) -> bool {
        self.sleep.deadline() <= due
            && !self.sleep.is_elapsed()
            && self.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
    }

    /// Polls the timer for a call due at `due`: [`Error::Timeout`] once that has passed,
    /// else `Pending` with the timer set to wake `cx` by then.
    fn watch(
        &mut self,
        due: tokio::time::Instant,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, Error>> {
        if self.sleep.deadline() > due {
            self.sleep.as_mut().reset(due);
        }
        loop {
            // Unconstrained: a sleep out of coop budget returns `Pending` without arming
            // itself, and `armed` would then be a lie.
            match Pin::new(&mut tokio::task::unconstrained(self.sleep.as_mut())).poll(cx) {
                Poll::Pending => {
                    if !self.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        self.armed = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                Poll::Ready(()) => {
                    self.armed = None;
                    if tokio::time::Instant::now() >= due {
                        return Poll::Ready(Err(Error::Timeout(self.limit)));
                    }
                    // Fired for an earlier call's limit: this call's own.
                    self.sleep.as_mut().reset(due);
                }
            }
        }
    }
}

async fn closed_slot(slot: Slot<'_>) {
    // Two loops, so that the usual one awaits the client's own future and not a wrapper
    // around either kind of call (which is bigger, and moved on every call).
    if slot.plain() {
        let plan = &slot.run.plan;
        let client = &slot.conn.client;
        closed_loop(slot, || client.call_raw(&plan.method, &plan.params)).await;
    } else {
        closed_loop(slot, || slot.call_with_options()).await;
    }
}

async fn closed_loop<F, C>(slot: Slot<'_>, call: C)
where
    C: Fn() -> F,
    F: Future<Output = Result<Bytes, Error>>,
{
    let Slot { run, conn, .. } = slot;
    let mut timer = Timer::new(run.plan.timeout);
    // One clock reading per call: a call's answer time is also when the slot sends the next
    // one (the recording in between is part of the next call's latency, tens of
    // nanoseconds).
    let mut sent = Instant::now();
    while !run.stopped() {
        let measured = sent >= run.measure_from;
        if measured && !run.take_measured(sent) {
            return;
        }
        let outcome = {
            let call = std::pin::pin!(call());
            timer.bound(sent, call).await
        };
        let done = Instant::now();
        let timing = Timing {
            from: sent,
            lag: None,
            done,
            measured,
        };
        if conn.record(run, outcome, timing).is_break() {
            return;
        }
        sent = done;
    }
}

async fn open_slot(slot: Slot<'_>, schedule: &Schedule) {
    if slot.plain() {
        let plan = &slot.run.plan;
        let client = &slot.conn.client;
        open_loop(slot, schedule, || {
            client.call_raw(&plan.method, &plan.params)
        })
        .await;
    } else {
        open_loop(slot, schedule, || slot.call_with_options()).await;
    }
}

async fn open_loop<F, C>(slot: Slot<'_>, schedule: &Schedule, call: C)
where
    C: Fn() -> F,
    F: Future<Output = Result<Bytes, Error>>,
{
    let Slot { run, conn, .. } = slot;
    let mut timer = Timer::new(run.plan.timeout);
    while let Some(due) = schedule.take().await {
        if run.stopped() {
            return;
        }
        let sent = Instant::now();
        let outcome = {
            let call = std::pin::pin!(call());
            timer.bound(sent, call).await
        };
        let timing = Timing {
            from: due.due,
            lag: Some(sent.saturating_duration_since(due.due)),
            done: Instant::now(),
            measured: due.measured,
        };
        if conn.record(run, outcome, timing).is_break() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rate: Option<f64>, warmup: Duration, length: Length) -> Plan {
        Plan {
            method: "echo".into(),
            params: vec![0xc0],
            body: Params::Json(serde_json::Value::Null),
            deadline: None,
            supersede: None,
            check_echo: true,
            timeout: Duration::from_secs(5),
            warmup,
            length,
            rate,
        }
    }

    #[tokio::test]
    async fn a_slot_timer_gives_every_call_its_limit_and_no_less() {
        let limit = Duration::from_millis(20);
        let mut timer = Timer::new(limit);
        let answered = timer
            .bound(
                Instant::now(),
                std::pin::pin!(async { Ok(Bytes::from_static(b"x")) }),
            )
            .await;
        assert!(matches!(answered, Ok(b) if &b[..] == b"x"));
        // The same timer, reused: once it has fired, and once for a call sent later.
        for _ in 0..2 {
            let sent = Instant::now();
            let outcome = timer
                .bound(sent, std::pin::pin!(std::future::pending()))
                .await;
            assert!(matches!(outcome, Err(Error::Timeout(l)) if l == limit));
            assert!(
                sent.elapsed() >= limit,
                "given up on after {:?}",
                sent.elapsed()
            );
        }
        let answered = timer
            .bound(Instant::now(), std::pin::pin!(async { Ok(Bytes::new()) }))
            .await;
        assert!(answered.is_ok());
    }

    /// `bound`, given up on (as a failed test) if it has not finished a minute of paused time
    /// after `sent`: a timer that never fires would otherwise hang the test.
    async fn bounded(
        timer: &mut Timer,
        call: impl Future<Output = Result<Bytes, Error>>,
    ) -> (Result<Bytes, Error>, Duration) {
        let sent = tokio::time::Instant::now();
        let call = std::pin::pin!(call);
        let outcome =
            tokio::time::timeout(Duration::from_secs(60), timer.bound(sent.into_std(), call))
                .await
                .expect("the slot timer fired");
        (outcome, sent.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_timer_that_fires_early_waits_out_the_call_s_own_limit() {
        let limit = Duration::from_millis(100);
        let mut timer = Timer::new(limit);
        // The timer's deadline is 100 ms from now; this call's, 160 ms.
        tokio::time::advance(Duration::from_millis(60)).await;
        let (outcome, waited) = bounded(&mut timer, std::future::pending()).await;
        assert!(matches!(outcome, Err(Error::Timeout(l)) if l == limit));
        assert!(waited >= limit, "given up on after {waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_timer_that_fired_during_an_answered_call_still_bounds_the_next() {
        let limit = Duration::from_millis(100);
        let mut timer = Timer::new(limit);
        tokio::time::advance(Duration::from_millis(60)).await;
        // Answered at 150 ms, after the timer fired (at 100 ms) and was set to 160 ms.
        let (answered, _) = bounded(&mut timer, async {
            tokio::time::sleep(Duration::from_millis(90)).await;
            Ok(Bytes::new())
        })
        .await;
        assert!(answered.is_ok());
        // The timer is still set for the answered call; the next one is bounded all the same,
        // first polled with the waker the timer was armed with.
        for _ in 0..3 {
            let (outcome, waited) = bounded(&mut timer, std::future::pending()).await;
            assert!(matches!(outcome, Err(Error::Timeout(_))));
            assert!(waited >= limit, "given up on after {waited:?}");
            let (answered, _) = bounded(&mut timer, async { Ok(Bytes::new()) }).await;
            assert!(answered.is_ok());
        }
    }

    #[test]
    fn a_closed_loop_hands_out_exactly_the_calls_asked_for() {
        let run = Run::new(plan(None, Duration::ZERO, Length::Calls(3)), Instant::now());
        let now = Instant::now();
        let taken = (0..10).filter(|_| run.take_measured(now)).count();
        assert_eq!(taken, 3);
        assert_eq!(run.scheduled_calls(), None);
    }

    #[test]
    fn stopping_ends_the_schedule_too() {
        let run = Run::new(
            plan(Some(10.0), Duration::ZERO, Length::Calls(5)),
            Instant::now(),
        );
        run.stop();
        assert!(run.stopped());
        // The pacer sees the closed schedule and returns at once.
        run.pace(4);
        assert_eq!(run.scheduled_calls(), Some(5));
    }

    #[test]
    fn long_latencies_are_recorded_as_they_are() {
        let mut t = Tally::new();
        record(&mut t.latency, 5);
        record(&mut t.latency, 4_000);
        record(&mut t.latency, 90_000_000);
        assert_eq!(t.latency.len(), 3);
        assert!(
            t.latency
                .equivalent(t.latency.value_at_quantile(0.5), 4_000)
        );
        assert!(t.latency.equivalent(t.latency.max(), 90_000_000));
    }

    #[test]
    fn tallies_add_up() {
        let mut a = Tally::new();
        a.calls = 2;
        record(&mut a.latency, 10);
        a.errors.insert("-32601".into(), 1);
        let mut b = Tally::new();
        b.calls = 3;
        b.late = 1;
        record(&mut b.latency, 1_000_000);
        b.errors.insert("-32601".into(), 2);
        b.errors.insert("mismatch".into(), 1);
        b.superseded = 4;
        b.deadline_exceeded = 5;
        a.deadline_exceeded = 1;
        a.merge(b);
        assert_eq!(a.superseded, 4);
        assert_eq!(a.deadline_exceeded, 6);
        assert_eq!(a.calls, 5);
        assert_eq!(a.late, 1);
        assert_eq!(a.latency.len(), 2);
        assert!(a.latency.equivalent(a.latency.max(), 1_000_000));
        assert_eq!(a.errors.get("-32601"), Some(&3));
        assert_eq!(a.errors.get("mismatch"), Some(&1));
    }
}
