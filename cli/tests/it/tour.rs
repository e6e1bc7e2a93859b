//! README's tour, run for real: every `hearth …` line of the ```sh block under "## A short
//! tour" runs, in order, against a daemon that the first line starts on first use (on a
//! temporary socket), and its `# …` comment is checked against what it printed. A comment
//! that starts with output (`{`, `[`, `"`, a digit, or `hearth:`) must match the command's
//! output, `…` standing for any text and a trailing `(exit N)` for the exit status; any other
//! comment is a description, and the command must only succeed. Lines this test cannot run
//! unattended (`hearth lsp`, `hearth bench`, anything not starting with `hearth`) are skipped,
//! so other sections can add their own lines to the tour.

use std::path::Path;
use std::process::Command;

use hearth_testkit::{eventually, hearthd_bin};

use crate::support::private_dir;

/// One runnable line of the tour.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Option<String>,
    exit: i32,
}

fn tour() -> Vec<Step> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split_once("## A short tour")
        .expect("README has a tour")
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the tour has a sh block")
        .0;
    block.lines().filter_map(step).collect()
}

fn step(line: &str) -> Option<Step> {
    let (command, comment) = match line.split_once(" # ") {
        Some((c, comment)) => (c.trim(), comment.trim()),
        None => (line.trim(), ""),
    };
    let mut words = command.split_whitespace();
    if words.next() != Some("hearth") || matches!(words.next(), Some("lsp" | "bench")) {
        return None;
    }
    let (comment, exit) = match comment.rsplit_once("(exit ") {
        Some((before, code)) if code.ends_with(')') => (
            before.trim(),
            code.trim_end_matches(')').parse().expect("an exit code"),
        ),
        _ => (comment, 0),
    };
    let is_output = comment.starts_with(['{', '[', '"'])
        || comment.starts_with(|c: char| c.is_ascii_digit())
        || comment.starts_with("hearth:");
    Some(Step {
        command: command.to_owned(),
        expected: is_output.then(|| comment.to_owned()),
        exit,
    })
}

/// Whether `output` (whitespace collapsed) holds the pieces of `expected` between its `…`s,
/// in order, the first at the start.
fn matches(expected: &str, output: &str) -> bool {
    let output = output.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut rest = output.as_str();
    for (i, piece) in expected.split('…').map(str::trim).enumerate() {
        if piece.is_empty() {
            continue;
        }
        let Some(at) = rest.find(piece) else {
            return false;
        };
        if i == 0 && at != 0 {
            return false;
        }
        rest = &rest[at + piece.len()..];
    }
    expected.trim_end().ends_with('…') || rest.trim().is_empty()
}

#[test]
fn the_matcher_reads_ellipses_as_any_text() {
    assert!(matches("{\"hi\":1}", "{\"hi\":1}\n"));
    assert!(!matches("{\"hi\": 1}", "{\n  \"hi\": 1\n}x"));
    assert!(matches("a … c", "a b\nc"));
    assert!(matches("hearth: error …", "hearth: error whatever"));
    assert!(!matches("b", "a b"));
}

#[tokio::test]
async fn the_readme_tour_is_literally_true() {
    let steps = tour();
    assert!(
        steps
            .iter()
            .any(|s| s.command.starts_with("hearth call echo")),
        "the tour lost its first example: {steps:#?}"
    );
    let dir = private_dir();
    let socket = dir.path().join("run").join("hearthd.sock");
    // `hearth` and, beside it, the `hearthd` it starts on first use.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_hearth"))
        .parent()
        .expect("a folder");
    assert_eq!(
        hearthd_bin().parent(),
        Some(bin_dir),
        "hearthd beside hearth"
    );
    let path = std::env::join_paths(std::iter::once(bin_dir.to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    for step in &steps {
        let out = Command::new("sh")
            .arg("-c")
            .arg(&step.command)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("HEARTH_SOCKET", &socket)
            .env_remove("HEARTH_NO_START")
            .env_remove("HEARTHD")
            .output()
            .expect("running sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(step.exit),
            "`{}`: exit status\nstdout: {stdout}\nstderr: {stderr}",
            step.command
        );
        if let Some(expected) = &step.expected {
            let output = format!("{stdout}{stderr}");
            assert!(
                matches(expected, &output),
                "`{}` printed\n{output}\nbut README says\n{expected}",
                step.command
            );
        }
    }
    // The tour ends with `hearth shutdown`; whatever it ends with, leave no daemon behind.
    let _ = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["shutdown", "--socket"])
        .arg(&socket)
        .output();
    let lock = hearth_client::protocol::paths::lock_path(&socket);
    eventually("the tour's daemon to exit", || !lock.exists()).await;
}
