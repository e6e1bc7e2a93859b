//! The typing workload through LSP and natively, by the same code, in one run: a simulated
//! editor types identifiers of a C file into a function at its end, one character per
//! keystroke on a fixed schedule (open loop: a keystroke's latency runs from its due time, so a
//! slow answer cannot delay the next keystroke and hide itself); each keystroke sends an
//! incremental change and then asks for completion at the cursor, without waiting for
//! earlier answers. Modes, run one after the other against the same daemon:
//!
//! - `native`: `hearth-client` to hearthd — `doc/change` + `complete` (supersede
//!   `"complete"`, the deadline), as `hearth bench --workload typing` does;
//! - `lsp`: the same keystrokes as LSP (`textDocument/didChange` + `textDocument/completion`)
//!   over the stdio of a `hearth lsp` process;
//! - `clangd`: the same keystrokes over the stdio of `clangd` (semantic C completion), for
//!   context.
//!
//! Per mode: keystrokes measured, answered, p50/p99/max latency, and CPU per measured
//! completion of the daemon, of the server process (gateway or clangd) and of this driver
//! (utime+stime from /proc, 10 ms ticks). The workspace (`--root`) is indexed once first.
//!
//! ```text
//! cargo run --release -p hearth-lsp --example lsp_typing -- \
//!   --socket S --daemon-pid PID --hearth target/release/hearth \
//!   --file /usr/share/doc/libpng-dev/examples/pngtest.c --root /usr/include \
//!   --keys-per-sec 20 --keys 600 --warmup 60 --modes native,lsp,clangd
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hearth_client::Client;
use hearth_lsp::framing::{FrameReader, encode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone)]
struct Args {
    socket: PathBuf,
    daemon_pid: Option<u32>,
    hearth: PathBuf,
    clangd: PathBuf,
    file: PathBuf,
    root: Option<PathBuf>,
    keys_per_sec: f64,
    keys: usize,
    warmup: usize,
    deadline: Duration,
    modes: Vec<String>,
}

fn args() -> Res<Args> {
    let mut a = Args {
        socket: hearth_client::default_socket_path(),
        daemon_pid: None,
        hearth: PathBuf::from("hearth"),
        clangd: PathBuf::from("clangd"),
        file: PathBuf::new(),
        root: None,
        keys_per_sec: 20.0,
        keys: 600,
        warmup: 60,
        deadline: Duration::from_millis(200),
        modes: vec!["native".into(), "lsp".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--socket" => a.socket = value()?.into(),
            "--daemon-pid" => a.daemon_pid = Some(value()?.parse()?),
            "--hearth" => a.hearth = value()?.into(),
            "--clangd" => a.clangd = value()?.into(),
            "--file" => a.file = value()?.into(),
            "--root" => a.root = Some(value()?.into()),
            "--keys-per-sec" => a.keys_per_sec = value()?.parse()?,
            "--keys" => a.keys = value()?.parse()?,
            "--warmup" => a.warmup = value()?.parse()?,
            "--deadline-ms" => a.deadline = Duration::from_millis(value()?.parse()?),
            "--modes" => a.modes = value()?.split(',').map(str::to_owned).collect(),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

/// The document and the keystrokes typed into it.
struct Script {
    uri: String,
    text: String,
    /// (line, character) where each keystroke inserts, its text, and whether a completion
    /// follows it (not after the `;` that ends a word).
    keys: Vec<(u32, u32, String, bool)>,
    /// The identifier each completing keystroke is typing.
    words: Vec<String>,
}

fn script(file: &Path, uri: String, total: usize) -> Res<Script> {
    let source = std::fs::read_to_string(file)?;
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in source.chars().chain(std::iter::once(' ')) {
        if c == '_' || c.is_ascii_alphanumeric() {
            cur.push(c);
        } else {
            if cur.len() >= 5 && !cur.starts_with(|c: char| c.is_ascii_digit()) {
                words.push(std::mem::take(&mut cur));
            }
            cur.clear();
        }
    }
    // A fixed stride through the file's identifiers: deterministic, varied.
    let mut picked = Vec::new();
    let mut i = 0usize;
    while picked.iter().map(|w: &String| w.len() + 1).sum::<usize>() < total + 64 {
        picked.push(words[(i * 7919) % words.len()].clone());
        i += 1;
    }
    let mut text = source;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let body_line = u32::try_from(text.lines().count())? + 1;
    text.push_str("\nvoid typing_bench(void)\n{\n    \n}\n");
    let (mut line, mut col) = (body_line + 2, 4u32);
    let mut keys = Vec::new();
    let mut typing = Vec::new();
    'outer: for w in &picked {
        for c in w.chars() {
            keys.push((line, col, c.to_string(), true));
            typing.push(w.clone());
            col += 1;
            if keys.len() == total {
                break 'outer;
            }
        }
        keys.push((line, col, ";\n    ".to_owned(), false));
        line += 1;
        col = 4;
    }
    Ok(Script {
        uri,
        text,
        keys,
        words: typing,
    })
}

/// utime+stime of a process in ms (10 ms ticks), threads that ended included.
fn cpu_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10)
}

#[derive(Default)]
struct Tally {
    measured: u64,
    answered: u64,
    superseded: u64,
    other: u64,
    items: u64,
    hits: u64,
}

struct Outcome {
    tally: Tally,
    latency: Histogram<u64>,
    cpu_daemon: Option<u64>,
    cpu_server: Option<u64>,
    cpu_driver: Option<u64>,
}

/// What a completion answer was: items and whether the word is among the first ten.
enum Answer {
    Items { count: u64, hit: bool },
    Superseded,
    Failed,
}

/// Runs the schedule: `send(k)` sends keystroke k (and its completion); answers arrive via
/// `record` from elsewhere. Returns when every completion was answered.
struct Clock {
    start: Instant,
    interval: Duration,
}

impl Clock {
    fn due(&self, k: usize) -> Instant {
        self.start + self.interval.mul_f64(k as f64)
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s: `Histogram::new` starts with a tiny range that saturating_record clamps to.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

type Pending = Arc<Mutex<HashMap<i64, (Instant, bool, String)>>>;

fn record(
    tally: &mut Tally,
    latency: &mut Histogram<u64>,
    due: Instant,
    measured: bool,
    answer: Answer,
) {
    if !measured {
        return;
    }
    tally.measured += 1;
    match answer {
        Answer::Items { count, hit } => {
            tally.answered += 1;
            tally.items += count;
            tally.hits += u64::from(hit);
            let us = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
            latency.saturating_record(us);
        }
        Answer::Superseded => tally.superseded += 1,
        Answer::Failed => tally.other += 1,
    }
}

#[derive(Deserialize)]
struct HearthCompletion {
    items: Vec<HearthItem>,
}

#[derive(Deserialize)]
struct HearthItem {
    label: String,
}

async fn native(a: &Args, s: &Script) -> Res<Outcome> {
    let client = Client::connect(&a.socket).await?;
    client
        .notify(
            "doc/open",
            &json!({"uri": s.uri, "text": s.text, "version": 1, "language": "c"}),
        )
        .await?;
    let clock = Clock {
        start: Instant::now() + Duration::from_millis(50),
        interval: Duration::from_secs_f64(1.0 / a.keys_per_sec),
    };
    let before = (a.daemon_pid.and_then(cpu_ms), cpu_ms(std::process::id()));
    let mut tally = Tally::default();
    let mut latency = histogram();
    let mut pending = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    let mut measured_index = 0usize;
    for (k, (line, col, text, complete)) in s.keys.iter().enumerate() {
        let due = clock.due(k);
        // Collect answers until the next keystroke is due.
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => break,
                Some((due, measured, word, result)) = pending.next(), if !pending.is_empty() => {
                    record(&mut tally, &mut latency, due, measured, native_answer(result, word));
                }
            }
        }
        let at = json!({"line": line, "character": col});
        client
            .notify(
                "doc/change",
                &json!({"uri": s.uri, "version": k + 2, "changes": [{"range": {"start": at, "end": at}, "text": text}]}),
            )
            .await?;
        if *complete {
            let measured = k >= a.warmup;
            let word = s.words[measured_index].clone();
            measured_index += 1;
            let client = client.clone();
            let params = json!({"uri": s.uri, "position": {"line": line, "character": col + 1}});
            let deadline = a.deadline;
            pending.push(async move {
                let result = client
                    .request("complete", &params)
                    .supersede("complete")
                    .deadline(deadline)
                    .send::<HearthCompletion>()
                    .await;
                (due, measured, word, result)
            });
        }
    }
    while let Some((due, measured, word, result)) = pending.next().await {
        record(
            &mut tally,
            &mut latency,
            due,
            measured,
            native_answer(result, word),
        );
    }
    let after = (a.daemon_pid.and_then(cpu_ms), cpu_ms(std::process::id()));
    Ok(Outcome {
        tally,
        latency,
        cpu_daemon: after.0.zip(before.0).map(|(x, y)| x - y),
        cpu_server: None,
        cpu_driver: after.1.zip(before.1).map(|(x, y)| x - y),
    })
}

fn native_answer(result: Result<HearthCompletion, hearth_client::Error>, word: String) -> Answer {
    match result {
        Ok(c) => Answer::Items {
            count: c.items.len() as u64,
            hit: c.items.iter().take(10).any(|i| i.label == *word),
        },
        Err(e) if e.is_superseded() => Answer::Superseded,
        Err(_) => Answer::Failed,
    }
}

async fn write_msg(stdin: &mut ChildStdin, msg: &Value) -> Res<()> {
    let mut out = Vec::new();
    encode(&serde_json::to_vec(msg)?, &mut out);
    stdin.write_all(&out).await?;
    Ok(())
}

/// An LSP server process: its stdin, and a reader task that answers server requests and
/// delivers responses by id.
async fn lsp(a: &Args, s: &Script, mut cmd: Command, root: &Path) -> Res<Outcome> {
    let mut child: Child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(if std::env::var_os("LSP_TYPING_DEBUG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .kill_on_drop(true)
        .spawn()?;
    let server_pid = child.id();
    let mut stdin = child.stdin.take().ok_or("stdin")?;
    let stdout = child.stdout.take().ok_or("stdout")?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Value)>();
    let reader = tokio::spawn(async move {
        let mut frames = FrameReader::new(stdout, 1 << 28);
        while let Ok(Some(body)) = frames.next().await {
            let now = Instant::now();
            if let Ok(v) = serde_json::from_slice::<Value>(&body)
                && tx.send((now, v)).is_err()
            {
                break;
            }
        }
    });
    let root_uri = hearth_lsp::path_to_uri(root).ok_or("root uri")?;
    write_msg(
        &mut stdin,
        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "processId": std::process::id(), "rootUri": root_uri.as_str(), "capabilities": {},
            "initializationOptions": {"index": false}}}),
    )
    .await?;
    loop {
        let (_, v) = rx.recv().await.ok_or("server ended before initialize")?;
        if v["id"] == 0 {
            break;
        }
    }
    write_msg(
        &mut stdin,
        &json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    )
    .await?;
    write_msg(
        &mut stdin,
        &json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": s.uri, "languageId": "c", "version": 1, "text": s.text}}}),
    )
    .await?;
    let clock = Clock {
        start: Instant::now() + Duration::from_millis(50),
        interval: Duration::from_secs_f64(1.0 / a.keys_per_sec),
    };
    let before = (
        a.daemon_pid.and_then(cpu_ms),
        server_pid.and_then(cpu_ms),
        cpu_ms(std::process::id()),
    );
    let pending: Pending = Arc::default();
    let mut tally = Tally::default();
    let mut latency = histogram();
    let mut outstanding = 0usize;
    let handle = |tally: &mut Tally,
                  latency: &mut Histogram<u64>,
                  pending: &Pending,
                  outstanding: &mut usize,
                  at: Instant,
                  v: Value| {
        let Some(id) = v["id"].as_i64() else { return };
        if v.get("method").is_some() {
            return;
        }
        let Some((due, measured, word)) = pending.lock().expect("lock").remove(&id) else {
            return;
        };
        *outstanding -= 1;
        if std::env::var_os("LSP_TYPING_DEBUG").is_some() {
            eprintln!(
                "{id} {:?} {}",
                due.elapsed(),
                v.to_string().chars().take(200).collect::<String>()
            );
        }
        let answer = if v.get("error").is_some() {
            if v["error"]["code"] == -32801 {
                Answer::Superseded
            } else {
                Answer::Failed
            }
        } else {
            let items = v["result"]["items"]
                .as_array()
                .or_else(|| v["result"].as_array())
                .cloned()
                .unwrap_or_default();
            let hit = items.iter().take(10).any(|i| {
                let f = i["filterText"].as_str().or_else(|| i["label"].as_str());
                f.is_some_and(|f| f.trim() == word)
            });
            Answer::Items {
                count: items.len() as u64,
                hit,
            }
        };
        // Latency to when the reader saw the answer.
        let _ = at;
        record(tally, latency, due, measured, answer);
    };
    let mut word_index = 0usize;
    for (k, (line, col, text, complete)) in s.keys.iter().enumerate() {
        let due = clock.due(k);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => break,
                msg = rx.recv() => {
                    let (at, v) = msg.ok_or("the server ended")?;
                    handle(&mut tally, &mut latency, &pending, &mut outstanding, at, v);
                }
            }
        }
        let at = json!({"line": line, "character": col});
        write_msg(
            &mut stdin,
            &json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": s.uri, "version": k + 2},
                "contentChanges": [{"range": {"start": at, "end": at}, "text": text}]}}),
        )
        .await?;
        if *complete {
            let id = i64::try_from(k)? + 1;
            pending
                .lock()
                .expect("lock")
                .insert(id, (due, k >= a.warmup, s.words[word_index].clone()));
            word_index += 1;
            outstanding += 1;
            write_msg(
                &mut stdin,
                &json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/completion", "params": {
                    "textDocument": {"uri": s.uri},
                    "position": {"line": line, "character": col + 1},
                    "context": {"triggerKind": 1}}}),
            )
            .await?;
        }
    }
    while outstanding > 0 {
        let (at, v) = rx.recv().await.ok_or("the server ended")?;
        handle(&mut tally, &mut latency, &pending, &mut outstanding, at, v);
    }
    let after = (
        a.daemon_pid.and_then(cpu_ms),
        server_pid.and_then(cpu_ms),
        cpu_ms(std::process::id()),
    );
    write_msg(
        &mut stdin,
        &json!({"jsonrpc": "2.0", "id": -1, "method": "shutdown"}),
    )
    .await?;
    write_msg(&mut stdin, &json!({"jsonrpc": "2.0", "method": "exit"})).await?;
    drop(stdin);
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    reader.abort();
    let diff = |x: Option<u64>, y: Option<u64>| x.zip(y).map(|(x, y)| x - y);
    Ok(Outcome {
        tally,
        latency,
        cpu_daemon: diff(after.0, before.0),
        cpu_server: diff(after.1, before.1),
        cpu_driver: diff(after.2, before.2),
    })
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn per(cpu: Option<u64>, n: u64) -> String {
    match cpu {
        Some(c) if n > 0 => format!("{:.3}", c as f64 / n as f64),
        _ => "–".to_owned(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let a = args()?;
    let dir = tempfile::tempdir()?;
    let name = a.file.file_name().ok_or("--file has no name")?;
    let doc = dir.path().join(name);
    std::fs::copy(&a.file, &doc)?;
    let uri = hearth_lsp::path_to_uri(&doc)
        .ok_or("uri")?
        .as_str()
        .to_owned();
    let s = script(&doc, uri, a.keys + a.warmup)?;
    if let Some(root) = &a.root {
        let client = Client::connect(&a.socket).await?;
        let t = Instant::now();
        let stats: Value = client
            .request("workspace/index", &json!({"root": root}))
            .send()
            .await?;
        eprintln!("indexed {} in {:?}: {stats}", root.display(), t.elapsed());
    }
    println!(
        "| mode | keystrokes measured | answered | superseded | failed | p50 ms | p99 ms | max ms | items/answer | word in top 10 | CPU ms/completion: daemon | server process | driver |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for mode in &a.modes {
        let outcome = match mode.as_str() {
            "native" => native(&a, &s).await?,
            "lsp" => {
                let mut cmd = Command::new(&a.hearth);
                cmd.arg("lsp")
                    .arg("--socket")
                    .arg(&a.socket)
                    .arg("--no-index");
                cmd.arg("--completion-deadline")
                    .arg(format!("{}ms", a.deadline.as_millis()));
                lsp(&a, &s, cmd, dir.path()).await?
            }
            "clangd" => {
                let mut cmd = Command::new(&a.clangd);
                cmd.arg(if std::env::var_os("LSP_TYPING_DEBUG").is_some() {
                    "--log=verbose"
                } else {
                    "--log=error"
                });
                lsp(&a, &s, cmd, dir.path()).await?
            }
            other => return Err(format!("unknown mode {other}").into()),
        };
        let t = &outcome.tally;
        let l = &outcome.latency;
        println!(
            "| {mode} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.0}% | {} | {} | {} |",
            t.measured,
            t.answered,
            t.superseded,
            t.other,
            ms(l.value_at_quantile(0.5)),
            ms(l.value_at_quantile(0.99)),
            ms(l.max()),
            t.items as f64 / t.answered.max(1) as f64,
            100.0 * t.hits as f64 / t.answered.max(1) as f64,
            per(outcome.cpu_daemon, t.measured),
            per(outcome.cpu_server, t.measured),
            per(outcome.cpu_driver, t.measured),
        );
    }
    Ok(())
}
