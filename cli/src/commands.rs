//! The subcommands that talk to the daemon — `call`, `ping`, `shutdown` — and [`Target`], how
//! each of them connects. `status` has its own module for its report; flags are parsed in
//! `main.rs`, and exit codes are chosen in `exit.rs`.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt as _;
use hearth_client::protocol::{Version, reserved};
use hearth_client::{Client, ClientConfig, CloseReason, StreamEvent};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;

use crate::exit::{BadInput, print};
use crate::{duration, json};

/// Where the daemon is and how long to wait for it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) socket: PathBuf,
    pub(crate) timeout: Duration,
    /// Whether to start a daemon when none answers (see `start.rs`).
    pub(crate) start: bool,
}

impl Target {
    /// Connects, with the timeout covering the handshake and every call made later.
    pub(crate) async fn connect(&self) -> Result<Client, hearth_client::Error> {
        let config = ClientConfig::default()
            .with_client_name(format!("hearth {}", env!("CARGO_PKG_VERSION")))
            .with_timeout(self.timeout);
        if self.start {
            return crate::start::connect_or_start(self, config).await;
        }
        tokio::time::timeout(self.timeout, Client::connect_with(&self.socket, config))
            .await
            .unwrap_or(Err(hearth_client::Error::Timeout(self.timeout)))
    }
}

/// Reads `PARAMS_JSON` (`-` for stdin; none means `null`) and checks it encodes. Done before
/// connecting, so bad input is reported as such even when no daemon runs.
pub(crate) fn read_params(params: Option<&str>) -> anyhow::Result<json::Params> {
    let text = match params {
        None => "null".to_owned(),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| BadInput(format!("cannot read params from stdin: {e}")))?;
            text
        }
        Some(text) => text.to_owned(),
    };
    Ok(json::parse_params(&text).map_err(BadInput)?)
}

/// `hearth call`'s protocol v2 request options (PROTOCOL.md §15.1).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct CallOptions {
    /// Ask the daemon to stop the call if it has not finished this long after reading it
    /// (e.g. 100ms); it then fails with -32002 (deadline exceeded). Needs protocol v2
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    pub(crate) deadline: Option<Duration>,

    /// Send the call with this supersede key: a newer call with the same key on the same
    /// connection replaces it (-32801, superseded). Each `hearth call` has its own connection,
    /// so another `hearth call` never supersedes it. Needs protocol v2
    #[arg(long, value_name = "KEY")]
    pub(crate) supersede: Option<String>,

    /// Ask for partial results and print each as it arrives, as one JSON line
    /// {"partial": CHUNK, "seq": N} (a gap in seq means the daemon dropped chunks), then the
    /// result on one line. Needs protocol v2
    #[arg(long)]
    pub(crate) stream: bool,

    /// Open this file as a document on the call's connection first (`doc/open`, uri
    /// file://ABSOLUTE-PATH, version 1), so that `complete` can work in it: documents belong
    /// to the connection that opened them. Repeatable
    #[arg(long, value_name = "FILE")]
    pub(crate) open: Vec<PathBuf>,
}

impl CallOptions {
    /// Whether the call needs a daemon that speaks protocol v2.
    pub(crate) fn is_v2(&self) -> bool {
        self.deadline.is_some() || self.supersede.is_some() || self.stream
    }

    /// The flags given, for the message when the daemon cannot take them.
    fn flags(&self) -> Vec<&'static str> {
        let given = [
            (self.deadline.is_some(), "--deadline"),
            (self.supersede.is_some(), "--supersede"),
            (self.stream, "--stream"),
        ];
        given.iter().filter(|g| g.0).map(|g| g.1).collect()
    }
}

/// Fails (exit 2) when `flags` were given and the daemon speaks only protocol v1.
pub(crate) fn require_v2(client: &Client, flags: &[&str]) -> anyhow::Result<()> {
    let version = client.protocol_version();
    if version >= Version::V2 {
        return Ok(());
    }
    Err(BadInput(format!(
        "the daemon speaks protocol {}; {} protocol 2",
        version.number(),
        need(flags)
    ))
    .into())
}

/// `--a needs`, `--a and --b need`, `--a, --b and --c need`.
fn need(flags: &[&str]) -> String {
    match flags {
        [] => "this needs".to_owned(),
        [one] => format!("{one} needs"),
        [init @ .., last] => format!("{} and {last} need", init.join(", ")),
    }
}

/// `hearth call METHOD [PARAMS_JSON]`: prints the result as JSON; with `--stream`, each
/// partial result first, one JSON line each.
pub(crate) async fn call(
    target: &Target,
    method: &str,
    params: &json::Params,
    compact: bool,
    options: &CallOptions,
) -> anyhow::Result<()> {
    let client = target.connect().await?;
    if options.is_v2() {
        require_v2(&client, &options.flags())?;
    }
    for path in &options.open {
        open_document(&client, path).await?;
    }
    let mut request = client.request(method, params);
    if let Some(deadline) = options.deadline {
        request = request.deadline(deadline);
    }
    if let Some(key) = &options.supersede {
        request = request.supersede(key.clone());
    }
    if !options.stream {
        let result = request.send_raw().await?;
        return print_result(&result, compact);
    }
    // The client's timeout does not cover streams; --timeout bounds the wait for each event.
    let mut events = request.stream();
    let timeout = target.timeout;
    loop {
        let event = tokio::time::timeout(timeout, events.next())
            .await
            .map_err(|_| hearth_client::Error::Timeout(timeout))?;
        let Some(event) = event else {
            break;
        };
        match event? {
            StreamEvent::Partial { seq, chunk } => print(partial_line(seq, &chunk)?)?,
            // One line, so that the whole output is JSON lines.
            StreamEvent::Result(result) => return print_result(&result, true),
        }
    }
    anyhow::bail!("the call's stream ended without a result")
}

/// `doc/open` of the file at `path`; the daemon reads nothing from disk for it.
async fn open_document(client: &Client, path: &std::path::Path) -> anyhow::Result<()> {
    let absolute = path
        .canonicalize()
        .map_err(|e| BadInput(format!("--open {}: {e}", path.display())))?;
    let text = std::fs::read_to_string(&absolute)
        .map_err(|e| BadInput(format!("--open {}: {e}", path.display())))?;
    let uri = format!("file://{}", absolute.display());
    let params = json!({"uri": uri, "text": text, "version": 1});
    client.notify("doc/open", &params).await?;
    Ok(())
}

/// `{"partial": CHUNK, "seq": N}`, compact.
fn partial_line(seq: u64, chunk: &[u8]) -> anyhow::Result<String> {
    let chunk = json::msgpack_to_json(chunk).map_err(anyhow::Error::msg)?;
    Ok(json!({ "partial": chunk, "seq": seq }).to_string())
}

fn print_result(result: &[u8], compact: bool) -> anyhow::Result<()> {
    let value = json::msgpack_to_json(result).map_err(anyhow::Error::msg)?;
    let text = if compact {
        value.to_string()
    } else {
        serde_json::to_string_pretty(&value).context("cannot render the result as JSON")?
    };
    print(text)
}

/// `hearth ping`: `$/hello` round trips on one connection.
pub(crate) async fn ping(target: &Target, count: u32, as_json: bool) -> anyhow::Result<()> {
    let client = target.connect().await?;
    let server = client.hello().server.clone();
    if !as_json {
        print(format_args!(
            "pinging {server} at {}",
            target.socket.display()
        ))?;
    }
    let mut rtts = Vec::with_capacity(count as usize);
    for seq in 1..=count {
        let start = Instant::now();
        let _: IgnoredAny = client.call(reserved::HELLO, &()).await?;
        let rtt = micros(start.elapsed());
        rtts.push(rtt);
        if !as_json {
            print(format_args!("seq={seq} time={rtt} µs"))?;
        }
    }
    let min = rtts.iter().copied().min().unwrap_or(0);
    let max = rtts.iter().copied().max().unwrap_or(0);
    let avg = rtts.iter().sum::<u64>() / u64::from(count.max(1));
    if as_json {
        print(json!({
            "socket": target.socket,
            "server": server,
            "count": count,
            "rtt_us": rtts,
            "min_us": min,
            "avg_us": avg,
            "max_us": max,
        }))
    } else {
        print(format_args!(
            "{count} round trips: min {min} µs, avg {avg} µs, max {max} µs"
        ))
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `hearth shutdown`: asks the daemon to stop.
pub(crate) async fn shutdown(target: &Target) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    struct Reply {
        grace_ms: Option<u64>,
    }
    let client = target.connect().await?;
    let grace = match client.call_raw("shutdown", &[0xc0]).await {
        Ok(raw) => hearth_client::protocol::from_msgpack::<Reply>(&raw)
            .ok()
            .and_then(|r| r.grace_ms),
        // A daemon that hangs up instead of answering is shutting down all the same.
        Err(hearth_client::Error::Closed {
            reason: CloseReason::Eof,
        }) => None,
        Err(e) => return Err(e.into()),
    };
    let socket = target.socket.display();
    match grace {
        Some(ms) => print(format_args!(
            "the daemon at {socket} is shutting down (running requests get {} to finish)",
            humanize(Duration::from_millis(ms))
        )),
        None => print(format_args!("the daemon at {socket} is shutting down")),
    }
}

/// `1h 2m 3s`, `4m 5s`, `6s`, `750ms`.
pub(crate) fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        _ if secs == 0 => format!("{}ms", d.as_millis()),
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanized_durations() {
        assert_eq!(humanize(Duration::from_millis(750)), "750ms");
        assert_eq!(humanize(Duration::from_secs(6)), "6s");
        assert_eq!(humanize(Duration::from_secs(245)), "4m 5s");
        assert_eq!(humanize(Duration::from_secs(3723)), "1h 2m 3s");
    }

    #[test]
    fn missing_params_are_null_and_bad_ones_are_bad_input() {
        let null = read_params(None).ok().map(|p| p.to_msgpack());
        assert_eq!(null, Some(Ok(vec![0xc0])));
        let err = read_params(Some("{oops")).err().map(|e| e.is::<BadInput>());
        assert_eq!(err, Some(true));
    }

    #[test]
    fn a_partial_is_one_compact_json_line() {
        // fixarray [1, "a"]
        let line = partial_line(7, &[0x92, 0x01, 0xa1, b'a']).expect("readable");
        assert_eq!(line, r#"{"partial":[1,"a"],"seq":7}"#);
        assert!(partial_line(0, &[0x92]).is_err(), "truncated chunk");
    }

    #[test]
    fn only_the_v2_flags_given_are_named() {
        let options = CallOptions {
            deadline: Some(Duration::from_millis(5)),
            stream: true,
            ..CallOptions::default()
        };
        assert_eq!(options.flags(), ["--deadline", "--stream"]);
        assert_eq!(need(&options.flags()), "--deadline and --stream need");
        assert_eq!(need(&["--a"]), "--a needs");
        assert_eq!(need(&["--a", "--b", "--c"]), "--a, --b and --c need");
        assert!(!CallOptions::default().is_v2());
    }
}
