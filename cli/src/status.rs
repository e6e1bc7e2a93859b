//! `hearth status`: the daemon's `$/hello` and `$/stats`, as one JSON object or as a block of
//! text for people. Connecting and exit codes are elsewhere (`commands.rs`, `exit.rs`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use hearth_client::protocol::reserved;
use hearth_client::{ErrorCode, HelloResult, Stats};
use serde_json::json;

use crate::commands::{Target, humanize};
use crate::exit::print;

/// Prints what the daemon is and what it has been doing.
pub(crate) async fn status(target: &Target, as_json: bool) -> anyhow::Result<()> {
    let client = target.connect().await?;
    let stats: Stats = client.call(reserved::STATS, &()).await?;
    let hello = client.hello();
    if as_json {
        print(json!({ "hello": hello, "stats": stats }))
    } else {
        print(render(&target.socket, hello, &stats).trim_end())
    }
}

fn render(socket: &Path, hello: &HelloResult, stats: &Stats) -> String {
    let mut out = String::new();
    let build = if hello.build.is_empty() {
        String::new()
    } else {
        format!(" ({})", hello.build)
    };
    line(&mut out, "server", format!("{}{build}", hello.server));
    line(&mut out, "protocol", hello.protocol.to_string());
    line(&mut out, "socket", socket.display().to_string());
    line(
        &mut out,
        "uptime",
        humanize(Duration::from_millis(stats.uptime_ms)),
    );
    line(
        &mut out,
        "connections",
        format!(
            "{} open, {} since start, {} refused",
            stats.connections, stats.connections_total, stats.connections_refused
        ),
    );
    line(&mut out, "in flight", stats.in_flight.to_string());
    line(
        &mut out,
        "limits",
        format!(
            "frame {} bytes, {} in flight per connection, {} connections, depth {}",
            hello.limits.max_frame,
            hello.limits.max_in_flight,
            hello.limits.max_connections,
            hello.limits.max_depth
        ),
    );
    line(
        &mut out,
        "requests",
        format!("{} since start", stats.requests_total),
    );
    table(&mut out, stats.methods.iter().map(|(m, n)| (m.clone(), *n)));
    let errors: u64 = stats.errors.values().sum();
    line(&mut out, "errors", format!("{errors} since start"));
    table(
        &mut out,
        stats.errors.iter().map(|(code, n)| (error_label(code), *n)),
    );
    out
}

/// One `label  value` line.
fn line(out: &mut String, label: &str, value: String) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{label:<13}{value}");
}

/// Indented `name  count` rows, counts aligned.
fn table(out: &mut String, rows: impl Iterator<Item = (String, u64)>) {
    let rows: Vec<_> = rows.collect();
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, count) in rows {
        let _ = writeln!(out, "  {name:<width$}  {count:>8}");
    }
}

/// `-32601 (method not found)` for a code the protocol names, else the code.
fn error_label(code: &str) -> String {
    match code.parse().ok().map(ErrorCode).and_then(ErrorCode::name) {
        Some(name) => format!("{code} ({name})"),
        None => code.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_client::Limits;

    #[test]
    fn the_human_block_has_every_section() {
        let hello = HelloResult {
            protocol: 1,
            server: "hearthd 0.1.0".into(),
            build: "debug".into(),
            methods: vec!["echo".into()],
            limits: Limits {
                max_frame: 8,
                max_in_flight: 4,
                max_connections: 2,
                max_depth: 64,
            },
            supported: Vec::new(),
            build_id: None,
        };
        let mut stats = Stats {
            uptime_ms: 61_000,
            connections: 1,
            connections_total: 3,
            requests_total: 5,
            ..Stats::default()
        };
        stats.methods.insert("echo".into(), 5);
        stats.errors.insert("-32601".into(), 2);
        let text = render(Path::new("/s.sock"), &hello, &stats);
        for expected in [
            "server       hearthd 0.1.0 (debug)",
            "protocol     1",
            "socket       /s.sock",
            "uptime       1m 1s",
            "connections  1 open, 3 since start, 0 refused",
            "requests     5 since start",
            "  echo         5",
            "errors       2 since start",
            "  -32601 (method not found)         2",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}
