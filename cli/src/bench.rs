//! `hearth bench`: load-tests a daemon through the `hearth-client` library — the real
//! envelope, dispatch and client are what gets measured. This file owns the flags, connecting
//! (Unix or TCP, to a daemon given or one spawned for the run), the run's timeline (warmup,
//! measurement, Ctrl-C), the progress bar and the exit status. The slots are in
//! `bench/load.rs`, the open-loop schedule in `bench/schedule.rs`, the report in `bench/report.rs`, the spawned daemon in
//! `bench/daemon.rs` and CPU and memory figures in `bench/cpu.rs`.

mod corpus;
mod cpu;
mod daemon;
mod load;
mod report;
mod schedule;
mod typing;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hearth_client::{Client, ClientConfig};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::signal::unix::{SignalKind, signal};

use crate::commands::{self, Target};
use crate::duration;
use crate::exit::{BadInput, print};
use crate::json::{self, Params};
use daemon::Daemon;
use load::{Conn, Length, Plan, Run, Tally};
use report::{DaemonFigures, Report, Setup, Transport};

/// The highest `--rate`: beyond it the schedule's arithmetic is no longer exact.
const MAX_RATE: f64 = 10_000_000.0;
/// In-flight slots per connection in an open loop when `--in-flight` is not given.
const OPEN_LOOP_IN_FLIGHT: u32 = 128;
/// How often the progress bar is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// The flags of `hearth bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = BENCH_HELP)]
pub(crate) struct BenchArgs {
    /// Connections to open
    #[arg(long, value_name = "C", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    connections: u32,

    /// Calls in flight per connection; an open loop's cap [default: 1, or 128 with --rate]
    #[arg(long, value_name = "W", value_parser = clap::value_parser!(u32).range(1..=65536))]
    in_flight: Option<u32>,

    /// How long to measure, after the warmup (e.g. 500ms, 10s, 1m) [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = positive_duration,
          conflicts_with = "calls")]
    duration: Option<Duration>,

    /// Measure this many calls instead of a duration
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    calls: Option<u64>,

    /// Open loop: this many calls per second in all, on a fixed schedule, latency measured
    /// from each call's scheduled time
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    rate: Option<f64>,

    /// The method to call
    #[arg(long, value_name = "NAME", default_value = "echo")]
    method: String,

    /// Params: a MessagePack binary of this many bytes
    #[arg(long, value_name = "BYTES", default_value_t = 32, conflicts_with = "params",
          value_parser = clap::value_parser!(u32).range(0..=64 * 1024 * 1024))]
    payload: u32,

    /// Params as JSON instead of a payload, e.g. '{"ms": 1}' for sleep
    #[arg(long, value_name = "JSON")]
    params: Option<String>,

    /// Calls made before measuring starts, not counted (0s for none)
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration::parse)]
    warmup: Duration,

    /// Connect over TCP (a daemon started with --listen tcp:ADDR:PORT) instead of the Unix
    /// socket; with --spawn the address may be left out
    #[arg(long, value_name = "ADDR:PORT", num_args = 0..=1, value_parser = parse_tcp)]
    tcp: Option<Option<SocketAddr>>,

    /// Start a private hearthd (the one next to this hearth binary) for the run and stop it
    /// after; adds its CPU per call and peak memory to the report
    #[arg(long)]
    spawn: bool,

    /// Send every call with this deadline (e.g. 5ms): the daemon stops a call not finished
    /// that long after reading it and answers -32002, counted as deadline-exceeded. Needs
    /// protocol v2
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    deadline: Option<Duration>,

    /// Send every call with a supersede key: per-connection (one key for all the calls on a
    /// connection, so each call replaces the one still in flight before it) or per-slot (one
    /// key per in-flight slot; a slot has one call out at a time, so nothing is replaced: this
    /// measures what the option costs). Replaced calls are counted as superseded. Needs protocol v2
    #[arg(long, value_name = "MODE")]
    supersede: Option<Supersede>,

    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,

    /// What to run: echo-style calls of --method (the default), or typing: simulated editors
    /// typing into files of --corpus against the language service (see below)
    #[arg(long, value_name = "WORKLOAD", default_value = "calls")]
    workload: Workload,

    /// typing: the folder whose files editors open and whose identifiers they type
    /// [default: $CARGO_HOME/registry/src, else ~/.cargo/registry/src]
    #[arg(long, value_name = "DIR")]
    corpus: Option<std::path::PathBuf>,

    /// typing: simulated editors, one connection each
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    editors: u32,

    /// typing: keystrokes per second per editor, on a fixed schedule
    #[arg(long, value_name = "K", default_value_t = 20.0, value_parser = parse_rate)]
    keys_per_sec: f64,

    /// typing: start workspace/index of the corpus when measuring starts, and measure until it
    /// finishes (completions while the index is built); without it the corpus is indexed first
    #[arg(long)]
    index: bool,

    /// typing: the seed that picks files, lines and words
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
}

/// What `hearth bench` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Workload {
    /// Calls of --method (echo by default), closed or open loop.
    Calls,
    /// Editors typing: doc/change then complete per keystroke.
    Typing,
}

/// How `--supersede` keys the calls. Keys are scoped to a connection by the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Supersede {
    /// The same key on every call of a connection.
    PerConnection,
    /// A key of its own for each in-flight slot.
    PerSlot,
}

impl Supersede {
    /// The flag's value, as the report shows it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::PerConnection => "per-connection",
            Self::PerSlot => "per-slot",
        }
    }

    /// The key slot `slot` of a connection sends.
    pub(crate) fn key(self, slot: usize) -> String {
        match self {
            Self::PerConnection => "bench".to_owned(),
            Self::PerSlot => format!("bench-slot-{slot}"),
        }
    }
}

const BENCH_HELP: &str = "\
Closed loop (default): each connection keeps --in-flight calls outstanding, sending the next
as soon as one is answered. Open loop (--rate): calls leave on a fixed schedule whatever the
answers do; a call that cannot leave on time waits for a free slot and its wait counts in its
latency (corrected for coordinated omission); calls sent over 1 ms late are reported.

Every answer is checked (echo must return the params). --timeout bounds each call. Ctrl-C
ends the run early and still reports. With --spawn, --socket is not used.

Protocol v2 options: --deadline and --supersede are sent on every call (the daemon must
speak protocol 2). Calls answered -32801 (superseded) or -32002 (deadline exceeded) are
counted apart from errors (JSON: \"superseded\", \"deadline_exceeded\"), do not make the
run fail, and are not in the latency percentiles, which cover successful calls only.

Typing (--workload typing): each of --editors connections opens a file of --corpus and
types identifiers found elsewhere in it, --keys-per-sec per editor on a fixed schedule; each
keystroke sends doc/change, then complete with the supersede key \"complete\" and --deadline
(default 50ms). Latency runs from the keystroke's scheduled time; percentiles cover every
keystroke, superseded, past-deadline and failed ones ranking slowest (shown as unanswered). Quality:
the share of keystrokes with 2+ characters typed whose word is in the top 10 items.

Examples:
  hearth bench --spawn --in-flight 16 --duration 5s
  hearth bench --spawn --workload typing --editors 10 --keys-per-sec 500 --duration 10s
  hearth bench --spawn --tcp --rate 20000 --connections 4 --json
  hearth bench --socket /run/user/1000/hearth/hearthd.sock --method sleep --params '{\"ms\": 1}'";

fn positive_duration(text: &str) -> Result<Duration, String> {
    let d = duration::parse(text)?;
    if d.is_zero() {
        return Err("must be longer than 0".into());
    }
    Ok(d)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of calls per second"))?;
    if !(rate > 0.0 && rate <= MAX_RATE) {
        return Err(format!("must be above 0 and at most {MAX_RATE}"));
    }
    Ok(rate)
}

/// `127.0.0.1:7070`, or `tcp:127.0.0.1:7070` as hearthd's --listen spells it.
fn parse_tcp(text: &str) -> Result<SocketAddr, String> {
    let addr = text.strip_prefix("tcp:").unwrap_or(text);
    addr.parse()
        .map_err(|_| format!("`{text}` is not an address and port, e.g. 127.0.0.1:7070"))
}

/// Where to connect, once any daemon of ours is up.
enum Endpoint {
    Unix(std::path::PathBuf),
    Tcp(SocketAddr),
}

/// `hearth bench`.
pub(crate) async fn run(target: &Target, args: BenchArgs) -> anyhow::Result<()> {
    if args.workload == Workload::Typing {
        return typing::run(target, &args).await;
    }
    if args.corpus.is_some() || args.index || args.editors != 1 {
        return Err(
            BadInput("--corpus, --editors and --index need --workload typing".into()).into(),
        );
    }
    // Checked before anything starts, so that bad flags exit 2 without side effects.
    let body = match &args.params {
        Some(text) => json::parse_params(text).map_err(BadInput)?,
        None => Params::Binary(payload_data(args.payload as usize)),
    };
    let params = body.to_msgpack().map_err(BadInput)?;
    if args.tcp == Some(None) && !args.spawn {
        return Err(BadInput("--tcp needs ADDR:PORT unless --spawn is given".into()).into());
    }
    let length = match (args.calls, args.duration) {
        (Some(n), _) => Length::Calls(n),
        (None, d) => Length::For(d.unwrap_or(Duration::from_secs(10))),
    };
    if let (Some(rate), Length::For(d)) = (args.rate, length)
        && d.as_secs_f64() * rate < 1.0
    {
        return Err(BadInput(format!(
            "--rate {rate} for {d:?} schedules no call at all; raise one of them"
        ))
        .into());
    }
    let default_in_flight = if args.rate.is_some() {
        OPEN_LOOP_IN_FLIGHT
    } else {
        1
    };
    let in_flight = args.in_flight.unwrap_or(default_in_flight) as usize;
    let connections = args.connections as usize;

    // From here on Ctrl-C is ours: it ends the run (or its start-up) and we clean up.
    let mut interrupts = signal(SignalKind::interrupt())?;
    let started = async {
        let daemon = if args.spawn {
            let tcp = args
                .tcp
                .map(|addr| addr.unwrap_or(([127, 0, 0, 1], 0).into()));
            Some(Daemon::spawn(tcp, target.timeout).await?)
        } else {
            None
        };
        let endpoint = match (&daemon, args.tcp) {
            (Some(d), Some(_)) => Endpoint::Tcp(
                d.tcp()
                    .context("the spawned hearthd listens on no TCP address")?,
            ),
            (Some(d), None) => Endpoint::Unix(d.socket().to_path_buf()),
            (None, Some(Some(addr))) => Endpoint::Tcp(addr),
            (None, _) => Endpoint::Unix(target.socket.clone()),
        };
        if daemon.is_none() && target.start && matches!(endpoint, Endpoint::Unix(_)) {
            // Start on first use (see start.rs); the run's own connections follow.
            drop(target.connect().await?);
        }
        // TCP peers show the token the daemon keeps beside its socket (PROTOCOL.md §3.4).
        let tcp_token = match (&endpoint, &daemon) {
            (Endpoint::Unix(_), _) => None,
            (Endpoint::Tcp(_), Some(d)) => Some(d.socket().to_path_buf()),
            (Endpoint::Tcp(_), None) => Some(target.socket.clone()),
        }
        .map(|socket| {
            hearth_client::read_tcp_token(&socket).with_context(|| {
                format!(
                    "cannot read the TCP token beside {} (--socket names the daemon whose \
                     tcp.token to read)",
                    socket.display()
                )
            })
        })
        .transpose()?;
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections {
            // No client timeout per call: the slots bound each call themselves (load.rs).
            clients.push(connect(&endpoint, tcp_token.as_deref(), target.timeout, false).await?);
        }
        anyhow::Ok((daemon, endpoint, clients))
    };
    let (daemon, endpoint, clients) = tokio::select! {
        started = started => started?,
        _ = interrupts.recv() => return Err(crate::exit::Interrupted.into()),
    };

    if args.deadline.is_some() || args.supersede.is_some() {
        let given = [
            (args.deadline.is_some(), "--deadline"),
            (args.supersede.is_some(), "--supersede"),
        ];
        let flags: Vec<&str> = given.iter().filter(|g| g.0).map(|g| g.1).collect();
        commands::require_v2(&clients[0], &flags)?;
    }
    let hello = clients[0].hello().clone();
    let allowed = usize::try_from(hello.limits.max_in_flight)
        .unwrap_or(usize::MAX)
        .saturating_sub(1)
        .max(1);
    if in_flight > allowed {
        return Err(BadInput(format!(
            "--in-flight {in_flight} is more than the daemon runs per connection ({allowed} \
             with one slot kept for cancels); use more --connections"
        ))
        .into());
    }
    let max_frame = usize::try_from(hello.limits.max_frame).unwrap_or(usize::MAX);
    if params.len() + args.method.len() + 32 > max_frame {
        return Err(BadInput(format!(
            "{} bytes of params do not fit the daemon's {max_frame}-byte frames",
            params.len()
        ))
        .into());
    }

    let setup = Setup {
        method: args.method.clone(),
        payload: args.params.is_none().then_some(args.payload as usize),
        params_bytes: params.len(),
        transport: match &endpoint {
            Endpoint::Unix(path) => Transport::Unix(path.clone()),
            Endpoint::Tcp(addr) => Transport::Tcp(*addr),
        },
        server: hello.server.clone(),
        connections,
        in_flight,
        rate: args.rate,
        warmup: args.warmup,
        spawned: daemon.is_some(),
        deadline: args.deadline,
        supersede: args.supersede,
    };
    let plan = Plan {
        check_echo: args.method == "echo",
        timeout: target.timeout,
        method: args.method,
        params,
        body,
        deadline: args.deadline,
        supersede: args.supersede,
        warmup: args.warmup,
        length,
        rate: args.rate,
    };
    let conns: Vec<Arc<Conn>> = clients
        .into_iter()
        .map(|c| Arc::new(Conn::new(c)))
        .collect();
    let pid = daemon.as_ref().and_then(Daemon::pid);
    let outcome = measure(plan, &conns, in_flight, pid, &mut interrupts).await;

    let mut tally = Tally::new();
    for conn in &conns {
        tally.merge(conn.take_tally());
    }
    // Close our connections before stopping the daemon, so it has nothing to drain. (After a
    // second Ctrl-C, aborted slots may still hold a clone for a moment; the daemon's graceful
    // shutdown copes with that.)
    drop(conns);
    if let Some(mut daemon) = daemon {
        match daemon.stop().await {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!(
                "hearth: the spawned hearthd exited with {status}{}",
                daemon.log_tail()
            ),
            Err(e) => eprintln!("hearth: {e:#}{}", daemon.log_tail()),
        }
    }

    let interrupted = outcome.interrupted;
    let errors: u64 = tally.errors.values().sum();
    let calls = tally.calls;
    let lost = tally.lost.take();
    let report = Report {
        setup,
        tally,
        elapsed: outcome.elapsed,
        client_cpu: outcome.client_cpu,
        daemon: pid.map(|_| outcome.daemon),
        interrupted: outcome.interrupted,
    };
    if args.json {
        print(report.to_json())?;
    } else {
        print(report.to_text().trim_end())?;
    }
    if let Some(lost) = lost {
        return Err(lost.into());
    }
    if interrupted {
        // Reported above; the exit status says it was cut short (130, as for SIGINT).
        return Err(crate::exit::Interrupted.into());
    }
    if errors > 0 {
        anyhow::bail!("{errors} of {calls} calls failed");
    }
    Ok(())
}

/// The generated payload: `bytes` bytes counting up, sent as one MessagePack binary.
fn payload_data(bytes: usize) -> Vec<u8> {
    (0..bytes).map(|i| i as u8).collect()
}

/// One connection (showing `tcp_token` on TCP), with `timeout` for the connect and handshake,
/// and, with `per_call`, as the client's default timeout for every call.
async fn connect(
    endpoint: &Endpoint,
    tcp_token: Option<&str>,
    timeout: Duration,
    per_call: bool,
) -> Result<Client, hearth_client::Error> {
    let mut config = ClientConfig::default()
        .with_client_name(format!("hearth bench {}", env!("CARGO_PKG_VERSION")));
    if per_call {
        config = config.with_timeout(timeout);
    }
    config.tcp_token = tcp_token.map(str::to_owned);
    let connecting = async {
        match endpoint {
            Endpoint::Unix(path) => Client::connect_with(path, config).await,
            Endpoint::Tcp(addr) => Client::connect_tcp_with(*addr, config).await,
        }
    };
    tokio::time::timeout(timeout, connecting)
        .await
        .unwrap_or(Err(hearth_client::Error::Timeout(timeout)))
}

/// What the timeline yields besides the tallies.
struct Outcome {
    elapsed: Duration,
    client_cpu: Option<Duration>,
    daemon: DaemonFigures,
    interrupted: bool,
}

/// Runs the load: warmup, then measurement until the plan's end or Ctrl-C (a second Ctrl-C
/// abandons the calls still in flight). Takes the CPU figures at the start and end of the
/// measured part, and keeps the progress bar.
async fn measure(
    plan: Plan,
    conns: &[Arc<Conn>],
    in_flight: usize,
    daemon_pid: Option<u32>,
    interrupts: &mut tokio::signal::unix::Signal,
) -> Outcome {
    let length = plan.length;
    let start = Instant::now();
    let run = Arc::new(Run::new(plan, start));
    let measure_from = run.measure_from;
    let pacer = {
        let run = run.clone();
        let slots = conns.len() * in_flight;
        std::thread::Builder::new()
            .name("bench pacer".into())
            .spawn(move || run.pace(slots))
    };
    if let Err(e) = &pacer {
        eprintln!("hearth: cannot start the pacer thread: {e}");
        run.stop();
    }
    let progress = Progress::new(length, run.scheduled_calls());
    let load = load::drive(run.clone(), conns, in_flight);
    tokio::pin!(load);
    let warm = tokio::time::sleep_until(measure_from.into());
    tokio::pin!(warm);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let mut first = None;
    let mut interrupted = false;
    loop {
        tokio::select! {
            biased;
            () = &mut load => break,
            _ = interrupts.recv() => {
                if interrupted {
                    // Second Ctrl-C: dropping `load` aborts the calls in flight.
                    break;
                }
                interrupted = true;
                run.stop();
            }
            () = &mut warm, if first.is_none() => first = Some(Snapshot::take(daemon_pid)),
            _ = tick.tick() => progress.update(conns, measure_from),
        }
    }
    let last = Snapshot::take(daemon_pid);
    progress.finish();
    // The pacer sleeps at most `PACER_NAP` before it notices the stop.
    run.stop();
    if let Ok(pacer) = pacer {
        let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    }
    let first = first.unwrap_or(last);
    let last_done = conns.iter().filter_map(|c| c.tally().last_done).max();
    let planned_end = match length {
        Length::For(d) if !interrupted => Some(measure_from + d),
        _ => None,
    };
    let end = last_done.max(planned_end).unwrap_or(measure_from);
    let delta = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
    Outcome {
        elapsed: end.saturating_duration_since(measure_from),
        client_cpu: delta(first.client, last.client),
        daemon: DaemonFigures {
            cpu: delta(first.daemon, last.daemon),
            peak_rss_kib: daemon_pid.and_then(|pid| cpu::peak_rss_kib(pid).ok()),
        },
        interrupted,
    }
}

/// CPU time used so far by us and by the spawned daemon.
#[derive(Clone, Copy)]
struct Snapshot {
    client: Option<Duration>,
    daemon: Option<Duration>,
}

impl Snapshot {
    fn take(daemon_pid: Option<u32>) -> Self {
        Self {
            client: cpu::own_cpu().ok(),
            daemon: daemon_pid.and_then(|pid| cpu::process_cpu(pid).ok()),
        }
    }
}

/// The progress bar on stderr, when stderr is a terminal; otherwise nothing is drawn. It
/// counts calls when the run has a known number of them, else milliseconds.
struct Progress {
    bar: Option<ProgressBar>,
    by_calls: bool,
}

impl Progress {
    fn new(length: Length, scheduled: Option<u64>) -> Self {
        let (total, by_calls) = match (length, scheduled) {
            (_, Some(n)) | (Length::Calls(n), None) => (n, true),
            (Length::For(d), None) => (u64::try_from(d.as_millis()).unwrap_or(u64::MAX), false),
        };
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{prefix:>6} [{bar:30}] {percent:>3}%  {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix("warmup");
            bar
        });
        Self { bar, by_calls }
    }

    fn update(&self, conns: &[Arc<Conn>], measure_from: Instant) {
        let Some(bar) = &self.bar else {
            return;
        };
        let now = Instant::now();
        if now < measure_from {
            bar.tick();
            return;
        }
        let (mut calls, mut errors, mut superseded, mut past_deadline) = (0, 0, 0, 0);
        for conn in conns {
            let t = conn.tally();
            calls += t.calls;
            errors += t.errors.values().sum::<u64>();
            superseded += t.superseded;
            past_deadline += t.deadline_exceeded;
        }
        let elapsed = now - measure_from;
        bar.set_prefix("bench");
        bar.set_position(if self.by_calls {
            calls
        } else {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        });
        let rate = calls as f64 / elapsed.as_secs_f64().max(1e-3);
        let mut message = format!("{calls} calls, {rate:.0}/s, {errors} errors");
        if superseded > 0 {
            message.push_str(&format!(", {superseded} superseded"));
        }
        if past_deadline > 0 {
            message.push_str(&format!(", {past_deadline} past deadline"));
        }
        bar.set_message(message);
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_one_binary_value_of_that_size() {
        let payload = |n| {
            Params::Binary(payload_data(n))
                .to_msgpack()
                .expect("a binary encodes")
        };
        let p = payload(32);
        assert_eq!(&p[..2], &[0xc4, 32], "bin 8 header");
        assert_eq!(p.len(), 34);
        assert_eq!(payload(0), vec![0xc4, 0]);
        assert_eq!(payload(70_000).len(), 70_005, "bin 32 header");
    }

    #[test]
    fn supersede_modes_key_by_connection_or_by_slot() {
        let keys = |mode: Supersede| (0..3).map(|slot| mode.key(slot)).collect::<Vec<_>>();
        let per_conn = keys(Supersede::PerConnection);
        assert!(per_conn.iter().all(|k| *k == per_conn[0]), "{per_conn:?}");
        let per_slot = keys(Supersede::PerSlot);
        assert!(
            per_slot[0] != per_slot[1] && per_slot[1] != per_slot[2],
            "{per_slot:?}"
        );
        assert_eq!(Supersede::PerSlot.name(), "per-slot");
    }

    #[test]
    fn flag_values_are_checked() {
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-5").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("inf").is_err());
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert_eq!(parse_tcp("tcp:127.0.0.1:7070"), parse_tcp("127.0.0.1:7070"));
        assert!(parse_tcp("localhost").is_err());
        assert!(positive_duration("0s").is_err());
    }
}
