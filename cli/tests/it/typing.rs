//! `hearth bench --workload typing` end to end: a spawned hearthd, a small generated corpus,
//! short runs. The JSON report's shape and that completions find the words being typed are
//! asserted; no figure about time is.

use std::process::Output;

use serde_json::Value;

use crate::support::hearth_bench;

/// A corpus of `files` Rust files that share a vocabulary, each over the 512 bytes the bench
/// wants of a file it opens.
fn corpus(files: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = [
        "render_frame",
        "frame_count",
        "parse_header",
        "buffer_length",
        "socket_path",
        "index_workspace",
        "complete_prefix",
        "document_store",
    ];
    for i in 0..files {
        let mut text = format!("//! file {i}\n");
        for (j, name) in names.iter().enumerate() {
            let other = names[(i + j) % names.len()];
            text.push_str(&format!(
                "pub fn {name}_{i}(value: usize) -> usize {{\n    {other}(value) + {j}\n}}\n"
            ));
        }
        std::fs::write(dir.path().join(format!("f{i}.rs")), text).expect("write");
    }
    dir
}

fn report(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("a line on stdout");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// A `--spawn`ed typing run over a corpus of `files` files, with `flags` besides, and its JSON
/// report (after checking it exited 0). The deadline is long enough that a slow debug build
/// still answers: quality, not speed, is what these tests look at.
fn typing_run(files: usize, flags: &[&str]) -> Value {
    let dir = corpus(files);
    let root = dir.path().to_str().expect("utf-8 path");
    let mut args = vec![
        "--spawn",
        "--workload",
        "typing",
        "--corpus",
        root,
        "--deadline",
        "30s",
        "--json",
    ];
    args.extend_from_slice(flags);
    report(&hearth_bench(&args))
}

#[test]
fn a_short_typing_run_reports_latency_drops_and_quality() {
    let r = typing_run(
        12,
        &[
            "--editors",
            "2",
            "--keys-per-sec",
            "40",
            "--duration",
            "1s",
            "--warmup",
            "100ms",
        ],
    );
    assert_eq!(r["workload"], "typing");
    assert_eq!(r["editors"], 2);
    assert_eq!(r["index_files"], 12, "{r}");
    assert_eq!(r["index_during_run"], false);
    let keystrokes = r["keystrokes"].as_u64().expect("keystrokes");
    assert!(keystrokes > 0, "{r}");
    for key in [
        "rate",
        "p50_us",
        "p90_us",
        "p99_us",
        "p999_us",
        "max_answered_us",
    ] {
        assert!(r[key].is_number(), "{key} in {r}");
    }
    for key in ["superseded", "deadline_missed", "errors", "answered"] {
        assert!(r[key].is_u64(), "{key} in {r}");
    }
    let accounted = r["answered"].as_u64().unwrap_or(0)
        + r["superseded"].as_u64().unwrap_or(0)
        + r["deadline_missed"].as_u64().unwrap_or(0)
        + r["errors"].as_u64().unwrap_or(0);
    assert_eq!(accounted, keystrokes, "every keystroke accounted for: {r}");
    let quality = r["quality"].as_f64().expect("quality");
    assert!(quality > 0.0 && quality <= 1.0, "{r}");
    assert!(r["index_mb_per_s"].is_number(), "{r}");
    assert!(r["daemon_rss_kib"].as_u64().expect("rss") > 0, "{r}");
}

#[test]
fn with_index_the_run_measures_while_the_corpus_is_indexed() {
    let r = typing_run(
        6,
        &[
            "--keys-per-sec",
            "20",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--index",
        ],
    );
    assert_eq!(r["index_during_run"], true);
    assert_eq!(r["index_files"], 6, "{r}");
    assert!(r["keystrokes"].is_u64(), "{r}");
}

#[test]
fn typing_flags_without_the_typing_workload_are_bad_usage() {
    let out = hearth_bench(&["--corpus", "/tmp", "--socket", "/nonexistent/sock"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--workload typing"), "{err}");
}

#[test]
fn an_empty_corpus_is_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_str().expect("utf-8 path");
    let out = hearth_bench(&["--workload", "typing", "--corpus", root]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no source files"), "{err}");
}
