//! `hearth bench --workload typing`: simulated editors typing into real files of a corpus
//! against hearthd's language service. Each editor has its own connection, opens a file,
//! picks a line and types an identifier taken from elsewhere in the corpus one character at a
//! time; every keystroke sends `doc/change` (an incremental insert) and then `complete` with
//! the supersede key `complete` and a deadline, as an editor does. Keystrokes fall due on a
//! fixed schedule (`schedule.rs`, `--keys-per-sec` per editor, editors staggered), and a
//! completion's latency runs from its keystroke's due time, so a client or daemon that falls
//! behind cannot hide it.
//!
//! Percentiles are over every measured keystroke: one whose completion was superseded, missed
//! its deadline or failed ranks above every answered one, so dropping work never improves
//! them (a percentile that lands among those is reported as missing, not as a number).
//! Quality is the fraction of keystrokes with at least 2 characters of the identifier typed,
//! and not all of it (the service never offers the word being typed as its own candidate), at
//! which the identifier is among the first 10 items; an unanswered keystroke counts as a miss.
//!
//! The corpus is indexed (`workspace/index`) before the run, or with `--index` at the start of
//! the measured part, which then ends when indexing does (or at `--duration`, if sooner): so
//! that run measures completions while the index is being built. Files and words come from
//! `corpus.rs`; the daemon's memory from `cpu.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use hearth_client::{Client, Error};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::bench::corpus::{self, Corpus, Rng};
use crate::bench::daemon::Daemon;
use crate::bench::load::Length;
use crate::bench::schedule::{Due, LATE_AFTER, Schedule};
use crate::bench::{BenchArgs, Endpoint, connect, cpu};
use crate::commands::{self, Target};
use crate::exit::{BadInput, print};

/// The deadline of every `complete` when `--deadline` is not given.
pub(crate) const DEFAULT_DEADLINE: Duration = Duration::from_millis(50);
/// Quality looks for the identifier among this many items.
const TOP: usize = 10;
/// How long indexing the corpus may take.
const INDEX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The supersede key of every `complete`: each keystroke's replaces the one before it.
const SUPERSEDE_KEY: &str = "complete";

#[derive(Serialize, Clone, Copy)]
struct Pos {
    line: u32,
    character: u32,
}

#[derive(Serialize)]
struct Range {
    start: Pos,
    end: Pos,
}

#[derive(Serialize)]
struct Edit<'a> {
    range: Range,
    text: &'a str,
}

#[derive(Serialize)]
struct Change<'a> {
    uri: &'a str,
    version: i64,
    changes: [Edit<'a>; 1],
}

#[derive(Serialize)]
struct Complete<'a> {
    uri: &'a str,
    position: Pos,
}

#[derive(Serialize)]
struct Open<'a> {
    uri: &'a str,
    text: &'a str,
    version: i64,
    language: &'a str,
}

#[derive(Deserialize)]
struct Completion {
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    label: String,
}

/// `workspace/index`'s result.
#[derive(Debug, Deserialize, Clone, Copy)]
struct IndexStats {
    files: u64,
    identifiers: u64,
    bytes: u64,
    ms: u64,
}

/// One simulated editor: its document and the identifier it is typing.
struct Editor {
    uri: String,
    /// Lines in the document (it grows by one per word: each word starts a new line).
    lines: u32,
    version: i64,
    word: Arc<str>,
    typed: usize,
    line: u32,
    rng: Rng,
}

/// One keystroke: the character inserted where, and what its completion is judged by.
struct Step {
    version: i64,
    at: Pos,
    text: String,
    word: Arc<str>,
    /// Characters of `word` typed after this keystroke.
    typed: usize,
}

impl Editor {
    fn step(&mut self, words: &[String]) -> Step {
        if self.typed == self.word.len() {
            self.word = words[self.rng.below(words.len())].as_str().into();
            self.typed = 0;
            self.line = self.rng.below(self.lines as usize) as u32;
        }
        let c = self.word[self.typed..].chars().next().unwrap_or('x');
        // The first character opens a new line before `line`; the rest extend it.
        let text = if self.typed == 0 {
            self.lines += 1;
            format!("{c}\n")
        } else {
            c.to_string()
        };
        let at = Pos {
            line: self.line,
            character: self.typed as u32,
        };
        self.typed += 1;
        self.version += 1;
        Step {
            version: self.version,
            at,
            text,
            word: self.word.clone(),
            typed: self.typed,
        }
    }
}

/// What one editor recorded over the measured keystrokes.
struct Tally {
    keystrokes: u64,
    answered: u64,
    /// Answered completions, microseconds from the keystroke's due time.
    latency: Histogram<u64>,
    superseded: u64,
    deadline_missed: u64,
    errors: BTreeMap<String, u64>,
    /// Keystrokes sent more than `LATE_AFTER` after they were due.
    late: u64,
    quality_keystrokes: u64,
    quality_hits: u64,
    last_due: Option<Instant>,
}

impl Tally {
    fn new() -> Self {
        Self {
            keystrokes: 0,
            answered: 0,
            latency: Histogram::new(3).expect("3 significant figures are allowed"),
            superseded: 0,
            deadline_missed: 0,
            errors: BTreeMap::new(),
            late: 0,
            quality_keystrokes: 0,
            quality_hits: 0,
            last_due: None,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.keystrokes += other.keystrokes;
        self.answered += other.answered;
        let _ = self.latency.add(&other.latency);
        self.superseded += other.superseded;
        self.deadline_missed += other.deadline_missed;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.late += other.late;
        self.quality_keystrokes += other.quality_keystrokes;
        self.quality_hits += other.quality_hits;
        self.last_due = self.last_due.max(other.last_due);
    }

    fn record(&mut self, key: &Keyed, outcome: &Result<Completion, Error>, done: Instant) {
        if !key.due.measured {
            return;
        }
        self.keystrokes += 1;
        self.last_due = self.last_due.max(Some(key.due.due));
        self.late += u64::from(key.sent.saturating_duration_since(key.due.due) > LATE_AFTER);
        let judged = key.typed >= 2 && key.typed < key.word.len();
        self.quality_keystrokes += u64::from(judged);
        match outcome {
            Ok(completion) => {
                self.answered += 1;
                let micros = done.saturating_duration_since(key.due.due).as_micros();
                let micros = u64::try_from(micros).unwrap_or(u64::MAX);
                if self.latency.record(micros).is_err() {
                    self.latency.saturating_record(micros);
                }
                let hit = completion
                    .items
                    .iter()
                    .take(TOP)
                    .any(|i| *i.label == *key.word);
                self.quality_hits += u64::from(judged && hit);
            }
            Err(e) if e.is_superseded() => self.superseded += 1,
            Err(e) if e.is_deadline_exceeded() => self.deadline_missed += 1,
            Err(e) => {
                let kind = match e {
                    Error::Remote(remote) => remote.code.to_string(),
                    Error::Timeout(_) => "timeout".to_owned(),
                    _ => "other".to_owned(),
                };
                *self.errors.entry(kind).or_default() += 1;
            }
        }
    }

    fn dropped(&self) -> u64 {
        self.keystrokes - self.answered
    }

    /// The latency at quantile `q` over every keystroke, unanswered ones ranked slowest:
    /// `None` when it lands among them (or there were none).
    fn percentile(&self, q: f64) -> Option<u64> {
        if self.keystrokes == 0 {
            return None;
        }
        let rank = ((q * self.keystrokes as f64).ceil() as u64).max(1);
        (rank <= self.answered).then(|| {
            self.latency
                .value_at_quantile(rank as f64 / self.answered as f64)
        })
    }

    fn max(&self) -> Option<u64> {
        (self.keystrokes > 0 && self.dropped() == 0).then(|| self.latency.max())
    }

    fn quality(&self) -> Option<f64> {
        (self.quality_keystrokes > 0)
            .then(|| self.quality_hits as f64 / self.quality_keystrokes as f64)
    }
}

/// A keystroke in flight: when it was due and sent, and what its completion is judged by.
struct Keyed {
    due: Due,
    sent: Instant,
    word: Arc<str>,
    typed: usize,
}

/// One editor's loop: each keystroke the dispatcher hands it is sent at once (change, then
/// complete), without waiting for earlier completions, whose answers are recorded as they come.
async fn type_into(
    client: Client,
    mut editor: Editor,
    words: Arc<Vec<String>>,
    mut keys: mpsc::UnboundedReceiver<Due>,
    deadline: Duration,
) -> Result<Tally, Error> {
    let mut tally = Tally::new();
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    while open || !pending.is_empty() {
        tokio::select! {
            key = keys.recv(), if open => {
                let Some(due) = key else {
                    open = false;
                    continue;
                };
                let sent = Instant::now();
                let step = editor.step(&words);
                let change = Change {
                    uri: &editor.uri,
                    version: step.version,
                    changes: [Edit {
                        range: Range { start: step.at, end: step.at },
                        text: &step.text,
                    }],
                };
                client.notify("doc/change", &change).await?;
                let position = Pos { line: step.at.line, character: step.at.character + 1 };
                let complete = Complete { uri: &editor.uri, position };
                let call = client
                    .request("complete", &complete)
                    .supersede(SUPERSEDE_KEY)
                    .deadline(deadline)
                    .send::<Completion>();
                let key = Keyed { due, sent, word: step.word, typed: step.typed };
                pending.push(async move {
                    let outcome = call.await;
                    (key, outcome, Instant::now())
                });
            }
            Some((key, outcome, done)) = pending.next(), if !pending.is_empty() => {
                if let Err(e) = &outcome
                    && e.is_connection_lost()
                {
                    return Err(outcome.err().expect("an error"));
                }
                tally.record(&key, &outcome, done);
            }
        }
    }
    Ok(tally)
}

fn language(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("rs") => "rust",
        Some("c" | "h") => "c",
        Some("cc" | "cpp" | "hpp") => "cpp",
        Some("py") => "python",
        Some("go") => "go",
        Some("js") => "javascript",
        Some("ts") => "typescript",
        Some("java") => "java",
        _ => "text",
    }
}

async fn index(client: &Client, root: &Path) -> anyhow::Result<IndexStats> {
    let root = root.to_str().context("the corpus path is not UTF-8")?;
    let stats = client
        .call_timeout("workspace/index", &json!({ "root": root }), INDEX_TIMEOUT)
        .await
        .context("workspace/index of the corpus failed")?;
    Ok(stats)
}

/// The daemon's resident memory now (`VmRSS`), in KiB.
fn rss_kib(pid: Option<u32>) -> Option<u64> {
    cpu::rss_kib(pid?).ok()
}

/// `hearth bench --workload typing`.
pub(crate) async fn run(target: &Target, args: &BenchArgs) -> anyhow::Result<()> {
    let editors = args.editors as usize;
    let keys_per_sec = args.keys_per_sec;
    let rate = keys_per_sec * editors as f64;
    let deadline = args.deadline.unwrap_or(DEFAULT_DEADLINE);
    let length = match (args.calls, args.duration) {
        (Some(n), _) => Length::Calls(n),
        (None, d) => Length::For(d.unwrap_or(Duration::from_secs(10))),
    };
    if args.tcp.is_some() {
        return Err(BadInput("--workload typing runs over the Unix socket only".into()).into());
    }
    let root = match &args.corpus {
        Some(root) => root.clone(),
        None => corpus::default_root().ok_or_else(|| {
            BadInput("no --corpus given and neither CARGO_HOME nor HOME is set".into())
        })?,
    };
    let mut rng = Rng::new(args.seed);
    let corpus = Corpus::load(&root, &mut rng)
        .map_err(|e| BadInput(format!("corpus {}: {e}", root.display())))?;
    let words = Arc::new(corpus.words.clone());

    let mut interrupts = signal(SignalKind::interrupt())?;
    let daemon = if args.spawn {
        Some(Daemon::spawn(None, target.timeout).await?)
    } else {
        None
    };
    let endpoint = match &daemon {
        Some(d) => Endpoint::Unix(d.socket().to_path_buf()),
        None => Endpoint::Unix(target.socket.clone()),
    };
    let pid = daemon.as_ref().and_then(Daemon::pid);
    let indexer = connect(&endpoint, None, target.timeout, true).await?;
    commands::require_v2(&indexer, &["--workload typing"])?;
    let server = indexer.hello().server.clone();

    // Each editor opens its file before anything is timed.
    let mut editors_ready = Vec::with_capacity(editors);
    for e in 0..editors {
        let client = connect(&endpoint, None, target.timeout, true).await?;
        let mut rng = Rng::new(args.seed ^ (e as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let (path, text) = corpus
            .pick_file(&mut rng)
            .context("cannot read a file of the corpus as UTF-8")?;
        let uri = format!("file://{}", path.display());
        let open = Open {
            uri: &uri,
            text: &text,
            version: 1,
            language: language(&path),
        };
        client.notify("doc/open", &open).await?;
        let lines = u32::try_from(text.lines().count().max(1)).unwrap_or(u32::MAX);
        let editor = Editor {
            uri,
            lines,
            version: 1,
            word: "".into(),
            typed: 0,
            line: 0,
            rng,
        };
        editors_ready.push((client, editor));
    }

    let mut index_stats = None;
    let mut rss_after_index = None;
    if !args.index {
        index_stats = Some(index(&indexer, &corpus.root).await?);
        rss_after_index = rss_kib(pid);
    }

    let start = Instant::now();
    let schedule = Arc::new(Schedule::new(start, rate, args.warmup, length));
    let measure_from = start + args.warmup;
    let pacer = {
        let schedule = schedule.clone();
        std::thread::Builder::new()
            .name("typing pacer".into())
            .spawn(move || schedule.pace(1))
            .context("cannot start the pacer thread")?
    };
    let mut senders = Vec::with_capacity(editors);
    let mut tasks = Vec::with_capacity(editors);
    for (client, editor) in editors_ready {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        tasks.push(tokio::spawn(type_into(
            client,
            editor,
            words.clone(),
            rx,
            deadline,
        )));
    }
    // Unbounded: each holds at most the keystrokes due and not yet taken by its editor, which
    // the schedule bounds.
    let dispatch = {
        let schedule = schedule.clone();
        async move {
            let mut k = 0usize;
            while let Some(due) = schedule.take().await {
                let _ = senders[k % senders.len()].send(due);
                k += 1;
            }
        }
    };
    tokio::pin!(dispatch);
    let indexing = async {
        if !args.index {
            return std::future::pending::<(anyhow::Result<IndexStats>, Duration)>().await;
        }
        tokio::time::sleep_until(measure_from.into()).await;
        let begun = Instant::now();
        let stats = index(&indexer, &corpus.root).await;
        (stats, begun.elapsed())
    };
    tokio::pin!(indexing);
    let mut index_during = None;
    let mut interrupted = false;
    // CPU time of both ends over the measured part (started at its start).
    let cpu_now = || {
        (
            cpu::own_cpu().ok(),
            pid.and_then(|p| cpu::process_cpu(p).ok()),
        )
    };
    let mut cpu_from = None;
    let measuring = tokio::time::sleep_until(measure_from.into());
    tokio::pin!(measuring);
    loop {
        tokio::select! {
            () = &mut dispatch => break,
            () = &mut measuring, if cpu_from.is_none() => cpu_from = Some(cpu_now()),
            (stats, took) = &mut indexing, if index_during.is_none() => {
                // The run measured completions while the index was built: it ends here.
                index_during = Some((stats?, took));
                schedule.close();
            }
            _ = interrupts.recv() => {
                interrupted = true;
                schedule.close();
            }
        }
    }
    let mut tally = Tally::new();
    for task in tasks {
        tally.merge(task.await.context("an editor task failed")??);
    }
    let cpu_to = cpu_now();
    let per_keystroke = |from: Option<Duration>, to: Option<Duration>| {
        let spent = to?.checked_sub(from?)?;
        (tally.keystrokes > 0)
            .then(|| round(spent.as_secs_f64() * 1e6 / tally.keystrokes as f64, 1))
    };
    let (client_cpu_us, daemon_cpu_us) = match cpu_from {
        Some((client, daemon)) => (
            per_keystroke(client, cpu_to.0),
            per_keystroke(daemon, cpu_to.1),
        ),
        None => (None, None),
    };
    let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    let mut index_finished_in_run = false;
    if args.index {
        let (stats, _) = match index_during {
            Some(done) => {
                index_finished_in_run = true;
                done
            }
            // The run ended first: wait for the index anyway, for its figures.
            None if !interrupted => {
                let (stats, took) = (&mut indexing).await;
                (stats?, took)
            }
            None => anyhow::bail!("interrupted while indexing"),
        };
        index_stats = Some(stats);
        rss_after_index = rss_kib(pid);
    }
    let peak_rss = pid.and_then(|pid| cpu::peak_rss_kib(pid).ok());
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

    let elapsed = tally
        .last_due
        .map(|last| {
            last.saturating_duration_since(measure_from) + Duration::from_secs_f64(1.0 / rate)
        })
        .unwrap_or_default();
    let report = TypingReport {
        server,
        corpus: corpus.root.display().to_string(),
        corpus_files: corpus.files(),
        editors,
        keys_per_sec,
        rate,
        deadline,
        warmup: args.warmup,
        elapsed,
        spawned: args.spawn,
        index_during_run: args.index,
        index_finished_in_run,
        index: index_stats,
        rss_after_index,
        peak_rss,
        interrupted,
        client_cpu_us,
        daemon_cpu_us,
        tally,
    };
    if args.json {
        print(report.to_json().to_string())?;
    } else {
        print(report.to_text())?;
    }
    let errors: u64 = report.tally.errors.values().sum();
    if errors > 0 {
        anyhow::bail!("{errors} of {} completions failed", report.tally.keystrokes);
    }
    Ok(())
}

/// What the typing report shows.
struct TypingReport {
    server: String,
    corpus: String,
    corpus_files: usize,
    editors: usize,
    keys_per_sec: f64,
    rate: f64,
    deadline: Duration,
    warmup: Duration,
    elapsed: Duration,
    spawned: bool,
    index_during_run: bool,
    index_finished_in_run: bool,
    index: Option<IndexStats>,
    rss_after_index: Option<u64>,
    peak_rss: Option<u64>,
    interrupted: bool,
    /// CPU time per measured keystroke, in microseconds, over the measured part: this
    /// process's, and the spawned daemon's (which includes indexing, with `--index`).
    client_cpu_us: Option<f64>,
    daemon_cpu_us: Option<f64>,
    tally: Tally,
}

const PERCENTILES: [(&str, &str, f64); 4] = [
    ("p50", "p50_us", 0.5),
    ("p90", "p90_us", 0.9),
    ("p99", "p99_us", 0.99),
    ("p99.9", "p999_us", 0.999),
];

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

impl TypingReport {
    /// Completions answered per second.
    fn answered_rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.tally.answered as f64 / secs
        } else {
            0.0
        }
    }

    fn index_mb_per_s(&self) -> Option<f64> {
        let stats = self.index?;
        (stats.ms > 0).then(|| stats.bytes as f64 / 1e6 / (stats.ms as f64 / 1e3))
    }

    fn to_json(&self) -> Value {
        let t = &self.tally;
        let mut out = json!({
            "workload": "typing",
            "server": self.server,
            "spawned": self.spawned,
            "corpus": self.corpus,
            "corpus_files": self.corpus_files,
            "editors": self.editors,
            "keys_per_sec": self.keys_per_sec,
            "offered_rate": self.rate,
            "deadline_ms": round(self.deadline.as_secs_f64() * 1e3, 3),
            "warmup_s": self.warmup.as_secs_f64(),
            "duration_s": round(self.elapsed.as_secs_f64(), 3),
            "keystrokes": t.keystrokes,
            "answered": t.answered,
            "rate": round(self.answered_rate(), 1),
            "superseded": t.superseded,
            "deadline_missed": t.deadline_missed,
            "errors": t.errors.values().sum::<u64>(),
            "errors_by_code": t.errors,
            // Unanswered keystrokes rank slowest; a percentile among them is null.
            "latency_includes_unanswered": true,
            "max_us": t.max(),
            "max_answered_us": (t.answered > 0).then(|| t.latency.max()),
            "late_keystrokes": t.late,
            "late_after_us": LATE_AFTER.as_micros() as u64,
            "quality": t.quality().map(|q| round(q, 4)),
            "quality_keystrokes": t.quality_keystrokes,
            "quality_top": TOP,
            "index_during_run": self.index_during_run,
            "index_finished_in_run": self.index_finished_in_run,
            "index_files": self.index.map(|s| s.files),
            "index_identifiers": self.index.map(|s| s.identifiers),
            "index_bytes": self.index.map(|s| s.bytes),
            "index_ms": self.index.map(|s| s.ms),
            "index_mb_per_s": self.index_mb_per_s().map(|x| round(x, 1)),
            "cpu_us_per_keystroke": self.client_cpu_us,
            "daemon_cpu_us_per_keystroke": self.daemon_cpu_us,
            "daemon_rss_kib": self.rss_after_index,
            "daemon_peak_rss_kib": self.peak_rss,
            "interrupted": self.interrupted,
        });
        for (_, key, q) in PERCENTILES {
            out[key] = json!(t.percentile(q));
        }
        out
    }

    fn to_text(&self) -> String {
        let t = &self.tally;
        let ms = |us: Option<u64>| match us {
            Some(us) => format!("{:.3} ms", us as f64 / 1e3),
            None => "unanswered".to_owned(),
        };
        let mut lines = vec![format!(
            "typing: {} editors × {} keys/s ({} keystrokes/s offered), deadline {} ms, against \
             {}{}",
            self.editors,
            self.keys_per_sec,
            self.rate,
            self.deadline.as_millis(),
            self.server,
            if self.spawned { " (spawned)" } else { "" },
        )];
        lines.push(format!(
            "corpus: {} ({} files to type in)",
            self.corpus, self.corpus_files
        ));
        if let Some(s) = self.index {
            let when = match (self.index_during_run, self.index_finished_in_run) {
                (false, _) => "before the run",
                (true, true) => "during the run, which ended when it did",
                (true, false) => "during the run and after it",
            };
            lines.push(format!(
                "index: {} files, {} identifiers, {:.1} MB in {} ms ({:.1} MB/s), {when}",
                s.files,
                s.identifiers,
                s.bytes as f64 / 1e6,
                s.ms,
                self.index_mb_per_s().unwrap_or(0.0),
            ));
        }
        lines.push(format!(
            "keystrokes: {} in {:.2} s; completions answered {} ({:.0}/s), superseded {}, \
             deadline missed {}, errors {}; sent over 1 ms late: {}",
            t.keystrokes,
            self.elapsed.as_secs_f64(),
            t.answered,
            self.answered_rate(),
            t.superseded,
            t.deadline_missed,
            t.errors.values().sum::<u64>(),
            t.late,
        ));
        let mut latency = String::from("latency (every keystroke, unanswered ones slowest):");
        for (label, _, q) in PERCENTILES {
            latency.push_str(&format!("  {label} {}", ms(t.percentile(q))));
        }
        latency.push_str(&format!("  max {}", ms(t.max())));
        lines.push(latency);
        lines.push(match t.quality() {
            Some(q) => format!(
                "quality: {q:.3} ({} of {} keystrokes with 2+ characters typed had the word in \
                 the top {TOP})",
                t.quality_hits, t.quality_keystrokes
            ),
            None => "quality: no keystroke with 2+ characters typed".to_owned(),
        });
        if let Some(rss) = self.rss_after_index {
            lines.push(format!(
                "daemon: {:.1} MiB resident with the index loaded, peak {:.1} MiB",
                rss as f64 / 1024.0,
                self.peak_rss.unwrap_or(0) as f64 / 1024.0
            ));
        }
        if let Some(us) = self.daemon_cpu_us {
            lines.push(format!(
                "cpu per keystroke: daemon {us:.1} µs{}, this client {:.1} µs",
                if self.index_during_run {
                    " (indexing included)"
                } else {
                    ""
                },
                self.client_cpu_us.unwrap_or(0.0)
            ));
        }
        if self.interrupted {
            lines.push("interrupted: the figures cover the run until Ctrl-C".to_owned());
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(measured: bool) -> Due {
        Due {
            due: Instant::now(),
            measured,
        }
    }

    #[test]
    fn unanswered_keystrokes_rank_above_every_answered_one() {
        let mut t = Tally::new();
        for i in 0..98u64 {
            t.answered += 1;
            t.keystrokes += 1;
            t.latency.record(100 + i).expect("in range");
        }
        t.keystrokes += 2;
        t.superseded += 2;
        assert_eq!(
            t.percentile(0.5),
            Some(t.latency.value_at_quantile(50.0 / 98.0))
        );
        assert!(t.percentile(0.98).is_some());
        assert_eq!(t.percentile(0.99), None, "the 99th of 100 is unanswered");
        assert_eq!(t.max(), None);
    }

    #[test]
    fn quality_counts_keystrokes_between_two_characters_and_the_whole_word() {
        let mut t = Tally::new();
        let word: Arc<str> = "render".into();
        let answer = |labels: &[&str]| {
            Ok(Completion {
                items: labels
                    .iter()
                    .map(|l| Item {
                        label: (*l).to_owned(),
                    })
                    .collect(),
            })
        };
        for typed in 1..=6 {
            let key = Keyed {
                due: due(true),
                sent: Instant::now(),
                word: word.clone(),
                typed,
            };
            let labels: &[&str] = if typed == 3 { &["other"] } else { &["render"] };
            t.record(&key, &answer(labels), Instant::now());
        }
        // Judged at 2, 3, 4, 5 typed characters; found at all but 3.
        assert_eq!((t.quality_hits, t.quality_keystrokes), (3, 4));
        // A warmup keystroke is not counted at all.
        let key = Keyed {
            due: due(false),
            sent: Instant::now(),
            word,
            typed: 2,
        };
        t.record(&key, &answer(&[]), Instant::now());
        assert_eq!(t.keystrokes, 6);
    }

    #[test]
    fn an_editor_types_each_word_on_a_new_line_one_character_at_a_time() {
        let mut editor = Editor {
            uri: "file:///a.rs".into(),
            lines: 3,
            version: 1,
            word: "".into(),
            typed: 0,
            line: 0,
            rng: Rng::new(1),
        };
        let words = vec!["abc".to_owned()];
        let first = editor.step(&words);
        assert_eq!(
            (first.text.as_str(), first.at.character, first.typed),
            ("a\n", 0, 1)
        );
        assert_eq!(editor.lines, 4);
        let second = editor.step(&words);
        assert_eq!((second.text.as_str(), second.at.line), ("b", first.at.line));
        assert_eq!((second.at.character, second.version), (1, 3));
        let third = editor.step(&words);
        assert_eq!(third.typed, 3);
        let next_word = editor.step(&words);
        assert_eq!((next_word.text.as_str(), next_word.typed), ("a\n", 1));
        assert_eq!(editor.lines, 5);
    }
}
