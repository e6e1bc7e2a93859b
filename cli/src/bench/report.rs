//! The bench report: what was run and what came of it, as a few lines of text for people or
//! one JSON object for scripts. Percentiles come from the merged HDR histogram (microseconds,
//! three significant figures); per-call CPU divides a CPU-time delta by the measured calls.
//! Gathering the numbers is done in `bench.rs`, `load.rs` and `cpu.rs`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hearth_client::ErrorCode;
use serde_json::{Value, json};

use crate::bench::Supersede;
use crate::bench::load::Tally;
use crate::bench::schedule::LATE_AFTER;

/// How the client reached the daemon.
#[derive(Debug, Clone)]
pub(crate) enum Transport {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Transport {
    fn name(&self) -> &'static str {
        match self {
            Self::Unix(_) => "unix",
            Self::Tcp(_) => "tcp",
        }
    }

    fn target(&self) -> String {
        match self {
            Self::Unix(path) => path.display().to_string(),
            Self::Tcp(addr) => format!("tcp:{addr}"),
        }
    }
}

/// What was run.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) method: String,
    /// The size of the generated binary payload; `None` when the params were given as JSON.
    pub(crate) payload: Option<usize>,
    /// The encoded params' size.
    pub(crate) params_bytes: usize,
    pub(crate) transport: Transport,
    /// The daemon's name and version, from `$/hello`.
    pub(crate) server: String,
    pub(crate) connections: usize,
    pub(crate) in_flight: usize,
    /// Offered calls per second (open loop).
    pub(crate) rate: Option<f64>,
    pub(crate) warmup: Duration,
    pub(crate) spawned: bool,
    /// Protocol v2: the deadline every call carried.
    pub(crate) deadline: Option<Duration>,
    /// Protocol v2: how the calls were given supersede keys.
    pub(crate) supersede: Option<Supersede>,
}

impl Setup {
    /// Whether the calls carried protocol v2 options.
    fn v2_options(&self) -> bool {
        self.deadline.is_some() || self.supersede.is_some()
    }
}

/// The spawned daemon's figures over the measured part of the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DaemonFigures {
    pub(crate) cpu: Option<Duration>,
    pub(crate) peak_rss_kib: Option<u64>,
}

/// Everything the report shows.
pub(crate) struct Report {
    pub(crate) setup: Setup,
    pub(crate) tally: Tally,
    /// The measured part of the run.
    pub(crate) elapsed: Duration,
    /// This process's CPU time over the measured part.
    pub(crate) client_cpu: Option<Duration>,
    pub(crate) daemon: Option<DaemonFigures>,
    /// Ended early by Ctrl-C.
    pub(crate) interrupted: bool,
}

/// The percentiles shown, as (label, JSON key, quantile).
const PERCENTILES: [(&str, &str, f64); 4] = [
    ("p50", "p50_us", 0.5),
    ("p90", "p90_us", 0.9),
    ("p99", "p99_us", 0.99),
    ("p99.9", "p999_us", 0.999),
];

impl Report {
    /// Measured calls per second.
    fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.tally.calls as f64 / secs
        } else {
            0.0
        }
    }

    fn errors(&self) -> u64 {
        self.tally.errors.values().sum()
    }

    /// CPU time per measured call, in microseconds to 0.01 (a pipelined call costs a few
    /// tenths of a µs; the CPU time itself is counted in 10 ms ticks, which over a run of
    /// millions of calls is far finer than that).
    fn per_call(&self, cpu: Option<Duration>) -> Option<f64> {
        let calls = self.tally.calls;
        cpu.filter(|_| calls > 0)
            .map(|cpu| round2(cpu.as_secs_f64() * 1e6 / calls as f64))
    }

    /// The latency percentiles and maximum, in µs to 0.1 (the histogram holds nanoseconds).
    fn latency(&self) -> Option<([f64; 4], f64)> {
        let h = &self.tally.latency;
        (!h.is_empty()).then(|| {
            (
                PERCENTILES.map(|(_, _, q)| us_of_ns(h.value_at_quantile(q) as f64)),
                us_of_ns(h.max() as f64),
            )
        })
    }

    /// Open loop: the send lag's p50, p99 and max.
    fn lag(&self) -> Option<(u64, u64, u64)> {
        let h = &self.tally.lag;
        (self.setup.rate.is_some() && !h.is_empty())
            .then(|| (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max()))
    }

    /// The report as one JSON object.
    pub(crate) fn to_json(&self) -> Value {
        let s = &self.setup;
        let mut out = json!({
            "method": s.method,
            "transport": s.transport.name(),
            "target": s.transport.target(),
            "server": s.server,
            "spawned": s.spawned,
            "connections": s.connections,
            "in_flight": s.in_flight,
            "payload": s.payload,
            "params_bytes": s.params_bytes,
            "offered_rate": s.rate,
            "warmup_s": s.warmup.as_secs_f64(),
            "duration_s": round3(self.elapsed.as_secs_f64()),
            "calls": self.tally.calls,
            "rate": round1(self.rate()),
            "errors": self.errors(),
            "errors_by_code": self.tally.errors,
            "deadline_ms": s.deadline.map(|d| round3(d.as_secs_f64() * 1e3)),
            "supersede": s.supersede.map(Supersede::name),
            "superseded": self.tally.superseded,
            "deadline_exceeded": self.tally.deadline_exceeded,
            // The percentiles cover successful calls only.
            "latency_includes_errors": false,
            "latency_includes_superseded": false,
            "latency_includes_deadline_exceeded": false,
            "late_calls": s.rate.map(|_| self.tally.late),
            "late_after_us": s.rate.map(|_| LATE_AFTER.as_micros() as u64),
            "lag_p50_us": self.lag().map(|(p50, _, _)| p50),
            "lag_p99_us": self.lag().map(|(_, p99, _)| p99),
            "lag_max_us": self.lag().map(|(_, _, max)| max),
            "cpu_us_per_call": self.per_call(self.client_cpu),
            "daemon_cpu_us_per_call": self.daemon.and_then(|d| self.per_call(d.cpu)),
            "daemon_peak_rss_kib": self.daemon.and_then(|d| d.peak_rss_kib),
            "interrupted": self.interrupted,
        });
        let latency = self.latency();
        for (i, (_, key, _)) in PERCENTILES.iter().enumerate() {
            out[*key] = json!(latency.map(|(p, _)| p[i]));
        }
        out["max_us"] = json!(latency.map(|(_, max)| max));
        out["mean_us"] = json!(
            latency
                .is_some()
                .then(|| us_of_ns(self.tally.latency.mean()))
        );
        out
    }

    /// The report as text for people.
    pub(crate) fn to_text(&self) -> String {
        let s = &self.setup;
        let mut out = String::new();
        let params = match s.payload {
            Some(n) => format!("a {n}-byte payload"),
            None => format!("{}-byte params", s.params_bytes),
        };
        let spawned = if s.spawned { ", spawned" } else { "" };
        line(
            &mut out,
            "bench",
            format!(
                "{} with {params} over {} {} ({}{spawned})",
                s.method,
                s.transport.name(),
                s.transport.target(),
                s.server
            ),
        );
        let conns = plural(s.connections as u64, "connection");
        let mode = match s.rate {
            None => format!("closed loop, {conns} × {} in flight", s.in_flight),
            Some(rate) => format!(
                "open loop at {} calls/s over {conns} (at most {} in flight each); latency from \
                 each call's scheduled time",
                trim_float(rate),
                s.in_flight
            ),
        };
        line(&mut out, "load", mode);
        let warmup = if s.warmup.is_zero() {
            String::new()
        } else {
            format!(" after a {} warmup", secs(s.warmup))
        };
        let stopped = if self.interrupted {
            ", interrupted"
        } else {
            ""
        };
        line(
            &mut out,
            "calls",
            format!(
                "{} in {}{warmup}{stopped}: {} calls/s",
                self.tally.calls,
                secs(self.elapsed),
                trim_float(round1(self.rate()))
            ),
        );
        match self.latency() {
            Some((p, max)) => {
                let mut text = String::new();
                for ((label, _, _), value) in PERCENTILES.iter().zip(p) {
                    let _ = write!(text, "{label} {}   ", fine_micros(value));
                }
                let _ = write!(text, "max {}", fine_micros(max));
                if s.v2_options() {
                    text.push_str("  (successful calls only)");
                }
                line(&mut out, "latency", text);
            }
            None => line(&mut out, "latency", "no successful calls".into()),
        }
        line(&mut out, "errors", self.error_text());
        if let Some(mode) = s.supersede {
            line(
                &mut out,
                "superseded",
                format!(
                    "{} (replaced by a newer call with the same key; keys {})",
                    self.tally.superseded,
                    mode.name()
                ),
            );
        }
        if let Some(deadline) = s.deadline {
            line(
                &mut out,
                "deadline",
                format!(
                    "{} exceeded (stopped by the daemon {} after it read them)",
                    self.tally.deadline_exceeded,
                    micros(micros_of(deadline))
                ),
            );
        }
        if s.rate.is_some() {
            let late = self.tally.late;
            let text = if late == 0 {
                format!(
                    "0: every call was sent within {} ms of its scheduled time",
                    LATE_AFTER.as_millis()
                )
            } else {
                format!(
                    "{late} ({:.1}%) sent more than {} ms after their scheduled time: the \
                     client fell behind",
                    late as f64 * 100.0 / self.tally.calls.max(1) as f64,
                    LATE_AFTER.as_millis()
                )
            };
            line(&mut out, "late", text);
            if let Some((p50, p99, max)) = self.lag() {
                line(
                    &mut out,
                    "send lag",
                    format!(
                        "p50 {}   p99 {}   max {}  (sent after scheduled; part of the latency)",
                        micros(p50),
                        micros(p99),
                        micros(max)
                    ),
                );
            }
        }
        if let Some(cpu) = self.per_call(self.client_cpu) {
            line(
                &mut out,
                "client CPU",
                format!("{cpu} µs per call (this process, user + system)"),
            );
        }
        if let Some(d) = self.daemon {
            let cpu = self
                .per_call(d.cpu)
                .map_or("?".to_owned(), |c| format!("{c} µs per call"));
            let rss = d
                .peak_rss_kib
                .map_or("?".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
            line(
                &mut out,
                "daemon",
                format!("{cpu}, peak RSS {rss} (spawned hearthd, from /proc; CPU in 10 ms ticks)"),
            );
        }
        out
    }

    fn error_text(&self) -> String {
        let errors = self.errors();
        if errors == 0 {
            return "0".to_owned();
        }
        let kinds: Vec<String> = self
            .tally
            .errors
            .iter()
            .map(|(kind, n)| format!("{n} {}", error_label(kind)))
            .collect();
        format!("{errors}: {}", kinds.join(", "))
    }
}

/// `-32601 (method not found)` for a code the protocol names, else the kind as it is.
fn error_label(kind: &str) -> String {
    match kind.parse().ok().map(ErrorCode).and_then(ErrorCode::name) {
        Some(name) => format!("{kind} ({name})"),
        None => kind.to_owned(),
    }
}

fn line(out: &mut String, label: &str, value: String) {
    let _ = writeln!(out, "{label:<11} {value}");
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `45 µs`, `1.23 ms`, `2.50 s`.
fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// `4.3 µs`, `45 µs`, `1.23 ms`, `2.50 s`: [`micros`] with a decimal below 10 µs.
fn fine_micros(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.1} µs")
    } else {
        micros(us.round() as u64)
    }
}

/// Nanoseconds as µs to 0.1.
fn us_of_ns(ns: f64) -> f64 {
    round1(ns / 1e3)
}

fn micros_of(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn secs(d: Duration) -> String {
    format!("{} s", trim_float(round3(d.as_secs_f64())))
}

/// `500` rather than `500.0`.
fn trim_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(rate: Option<f64>) -> Report {
        let mut tally = Tally::new();
        for us in 1..=1000u64 {
            tally.latency.record(us * 1000).expect("in range");
        }
        tally.calls = 1002;
        for us in [5, 5, 7, 2_000] {
            tally.lag.record(us).expect("in range");
        }
        tally.late = 3;
        tally.errors.insert("-32601".into(), 1);
        tally.errors.insert("mismatch".into(), 1);
        Report {
            setup: Setup {
                method: "echo".into(),
                payload: Some(32),
                params_bytes: 34,
                transport: Transport::Tcp(([127, 0, 0, 1], 7070).into()),
                server: "hearthd 0.1.0".into(),
                connections: 2,
                in_flight: 8,
                rate,
                warmup: Duration::from_secs(1),
                spawned: true,
                deadline: None,
                supersede: None,
            },
            tally,
            elapsed: Duration::from_secs(2),
            client_cpu: Some(Duration::from_micros(10_020)),
            daemon: Some(DaemonFigures {
                cpu: Some(Duration::from_millis(20)),
                peak_rss_kib: Some(10_240),
            }),
            interrupted: false,
        }
    }

    #[test]
    fn json_has_every_field_scripts_read() {
        let json = report(None).to_json();
        assert_eq!(json["calls"], 1002);
        assert_eq!(json["errors"], 2);
        assert_eq!(json["errors_by_code"]["mismatch"], 1);
        assert_eq!(json["rate"], 501.0);
        // Nanoseconds recorded, µs to 0.1 shown, as precise as the histogram's 3 significant
        // figures (each value is the top of its bucket).
        for (key, us) in [
            ("p50_us", 500.0),
            ("p90_us", 900.0),
            ("p99_us", 990.0),
            ("p999_us", 999.0),
            ("max_us", 1000.0),
        ] {
            let got = json[key].as_f64().expect("a number");
            assert!((us..=us * 1.001).contains(&got), "{key}: {got}");
        }
        assert_eq!(json["cpu_us_per_call"], 10.0);
        assert_eq!(
            json["daemon_cpu_us_per_call"], 19.96,
            "20 ms over 1002 calls, to 0.01 µs"
        );
        assert_eq!(json["daemon_peak_rss_kib"], 10_240);
        assert_eq!(json["connections"], 2);
        assert_eq!(json["in_flight"], 8);
        assert_eq!(json["payload"], 32);
        assert_eq!(json["transport"], "tcp");
        assert_eq!(json["offered_rate"], Value::Null, "closed loop");
        assert_eq!(json["late_calls"], Value::Null, "closed loop");
        assert_eq!(json["lag_p99_us"], Value::Null, "closed loop");
        let open = report(Some(500.0)).to_json();
        assert_eq!(open["offered_rate"], 500.0);
        assert_eq!(open["late_calls"], 3);
        assert_eq!(open["lag_p50_us"], 5);
        assert_eq!(open["lag_max_us"], 2_000, "exact below 2048 µs");
    }

    #[test]
    fn superseded_and_deadline_exceeded_are_counted_apart_from_errors() {
        let mut r = report(None);
        r.setup.deadline = Some(Duration::from_millis(5));
        r.setup.supersede = Some(Supersede::PerConnection);
        r.tally.superseded = 7;
        r.tally.deadline_exceeded = 3;
        let json = r.to_json();
        assert_eq!(json["superseded"], 7);
        assert_eq!(json["deadline_exceeded"], 3);
        assert_eq!(json["errors"], 2, "neither is an error");
        assert_eq!(json["deadline_ms"], 5.0);
        assert_eq!(json["supersede"], "per-connection");
        assert_eq!(json["latency_includes_superseded"], false);
        assert_eq!(json["latency_includes_deadline_exceeded"], false);
        let text = r.to_text();
        for expected in [
            "max 1.00 ms  (successful calls only)",
            "errors      2: 1 -32601 (method not found), 1 mismatch",
            "superseded  7 (replaced by a newer call with the same key; keys per-connection)",
            "deadline    3 exceeded (stopped by the daemon 5.00 ms after it read them)",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }

        let plain = report(None);
        let json = plain.to_json();
        assert_eq!(json["superseded"], 0);
        assert_eq!(json["deadline_ms"], Value::Null);
        assert_eq!(json["supersede"], Value::Null);
        let text = plain.to_text();
        assert!(!text.contains("superseded"), "no options, no line:\n{text}");
        assert!(!text.contains("successful calls only"), "{text}");
    }

    /// A call on one core takes a few µs: the report keeps a tenth of a µs of it.
    #[test]
    fn latency_below_10_us_keeps_a_tenth_of_a_microsecond() {
        let mut r = report(None);
        r.tally.latency.reset();
        for ns in [3_140, 4_260, 4_260, 4_260, 9_960] {
            r.tally.latency.record(ns).expect("in range");
        }
        let json = r.to_json();
        assert_eq!(json["p50_us"], 4.3);
        assert_eq!(json["max_us"], 10.0);
        assert_eq!(json["mean_us"], 5.2);
        let text = r.to_text();
        assert!(text.contains("p50 4.3 µs"), "{text}");
        assert!(text.contains("max 10 µs"), "{text}");
    }

    #[test]
    fn no_successful_call_means_no_percentiles() {
        let mut r = report(None);
        r.tally.latency.reset();
        let json = r.to_json();
        assert_eq!(json["p50_us"], Value::Null);
        assert_eq!(json["max_us"], Value::Null);
        assert!(r.to_text().contains("no successful calls"));
    }

    #[test]
    fn text_names_what_ran_and_labels_whose_cpu_it_is() {
        let text = report(Some(500.0)).to_text();
        for expected in [
            "echo with a 32-byte payload over tcp tcp:127.0.0.1:7070 (hearthd 0.1.0, spawned)",
            "open loop at 500 calls/s over 2 connections",
            "1002 in 2 s after a 1 s warmup: 501 calls/s",
            "p50 500 µs",
            "max 1.00 ms",
            "2: 1 -32601 (method not found), 1 mismatch",
            "3 (0.3%) sent more than 1 ms after their scheduled time",
            "send lag    p50 5 µs   p99 2.00 ms   max 2.00 ms",
            "client CPU  10 µs per call (this process",
            "daemon      19.96 µs per call, peak RSS 10.0 MiB (spawned hearthd",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}
