//! Requests that take time: indexing a folder with `$/progress`, workspace symbols from the
//! shared index (two gateways, one daemon), `$/cancelRequest` (-32800, and the daemon's
//! handler stops), and a burst of completions that leaves one running while the stale ones
//! get ContentModified (-32801).

use std::sync::atomic::Ordering;
use std::time::Duration;

use hearth_lsp::{Options, codes};
use serde_json::{Value, json};

use crate::support::{Editor, GatedComplete, code, labels, lang_daemon};

/// A folder with two source files.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src dir");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(
        src.join("gpu.rs"),
        "\n\nfn render_frame() {}\nfn render_frames() {}\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("main.rs"), "fn main() { start(); }\n").expect("write");
    dir
}

/// Waits for the index's progress to end; returns every `$/progress` value seen.
async fn indexed(editor: &mut Editor) -> Vec<Value> {
    editor
        .until("the end of indexing", |m| {
            m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"
        })
        .await;
    editor
        .seen
        .iter()
        .filter(|m| m["method"] == "$/progress")
        .map(|m| m["params"]["value"].clone())
        .collect()
}

#[tokio::test]
async fn indexing_the_root_shows_progress_and_feeds_workspace_symbols() {
    let server = lang_daemon().await;
    let dir = project();
    let root = dir.path().canonicalize().expect("canonical");
    let mut editor = Editor::start(&server, Options::default()).await;
    editor.initialize(Some(&root)).await;
    let progress = indexed(&mut editor).await;
    let create = editor
        .seen
        .iter()
        .find(|m| m["method"] == "window/workDoneProgress/create")
        .expect("the gateway asked for a token");
    let token = create["params"]["token"].clone();
    assert_eq!(
        progress.first().map(|v| v["kind"].clone()),
        Some(json!("begin"))
    );
    assert_eq!(progress[0]["title"], "hearth: indexing");
    for m in editor.seen.iter().filter(|m| m["method"] == "$/progress") {
        assert_eq!(m["params"]["token"], token);
    }

    let answer = editor
        .call(5, "workspace/symbol", json!({"query": "render_frame"}))
        .await;
    let symbols = answer["result"].as_array().expect("symbols");
    assert_eq!(symbols[0]["name"], "render_frame");
    assert_eq!(symbols[1]["name"], "render_frames");
    let uri = hearth_lsp::path_to_uri(&root.join("src dir").join("gpu.rs")).expect("uri");
    assert_eq!(symbols[0]["location"]["uri"], uri.as_str());
    assert!(uri.as_str().contains("src%20dir"), "percent-encoded");
    assert_eq!(
        symbols[0]["location"]["range"],
        json!({"start": {"line": 2, "character": 0}, "end": {"line": 3, "character": 0}})
    );
    assert_eq!(symbols[0]["kind"], 13, "VARIABLE");
}

#[tokio::test]
async fn two_gateways_share_one_daemon_and_its_index() {
    let server = lang_daemon().await;
    let dir = project();
    let root = dir.path().canonicalize().expect("canonical");
    let mut indexer = Editor::start(&server, Options::default()).await;
    let mut other = Editor::start(&server, Options::default()).await;
    indexer.initialize(Some(&root)).await;
    indexed(&mut indexer).await;
    // The second window has no root (and no progress support): it indexes nothing itself.
    other.initialize(None).await;
    let answer = other
        .call(2, "workspace/symbol", json!({"query": "render"}))
        .await;
    let names: Vec<_> = answer["result"]
        .as_array()
        .expect("symbols")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, vec!["render_frame", "render_frames"]);
    // Its completion draws on the shared index too, from its own document.
    other.open("file:///scratch.rs", "rend").await;
    let answer = other.complete(3, "file:///scratch.rs", 0, 4).await;
    assert_eq!(labels(&answer), vec!["render_frame", "render_frames"]);
    assert_eq!(answer["result"]["items"][0]["detail"], "src dir/gpu.rs:3");
}

#[tokio::test]
async fn an_editor_that_refuses_the_token_gets_no_progress_but_the_index() {
    let server = lang_daemon().await;
    let dir = project();
    let root = dir.path().canonicalize().expect("canonical");
    let mut editor = Editor::start(&server, Options::default()).await;
    editor.accept_progress = false;
    editor.initialize(Some(&root)).await;
    let create = editor
        .until("the token request", |m| {
            m["method"] == "window/workDoneProgress/create"
        })
        .await;
    editor
        .send(json!({"jsonrpc": "2.0", "id": create["id"], "error": {"code": -32603, "message": "no"}}))
        .await;
    let log = editor
        .until("the log line", |m| m["method"] == "window/logMessage")
        .await;
    assert!(
        log["params"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("indexed 2 files"),
        "{log}"
    );
    assert!(!editor.seen.iter().any(|m| m["method"] == "$/progress"));
}

fn completion(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/completion", "params": {
        "textDocument": {"uri": "file:///a.rs"}, "position": {"line": 0, "character": 2}}})
}

/// Deadlines far beyond any test: the gate, not the clock, decides.
fn patient() -> Options {
    let mut options = Options::default();
    options.completion_deadline = Duration::from_secs(3600);
    options
}

#[tokio::test]
async fn cancel_request_answers_request_cancelled_and_stops_the_daemons_work() {
    let gate = GatedComplete::new();
    let server = gate.daemon().await;
    let mut editor = Editor::start(&server, patient()).await;
    editor.initialize(None).await;
    editor.send(completion(2)).await;
    gate.wait("the completion to reach the daemon", |g| {
        g.entered.load(Ordering::SeqCst) == 1
    })
    .await;
    editor.notify("$/cancelRequest", json!({"id": 2})).await;
    let answer = editor.response(2).await;
    assert_eq!(code(&answer), codes::REQUEST_CANCELLED);
    assert_eq!(code(&answer), -32800);
    gate.wait("the daemon's handler to be dropped", |g| {
        g.left.load(Ordering::SeqCst) == 1
    })
    .await;
    // Exactly one answer: the next thing the editor hears is the answer to its next request.
    editor.notify("$/cancelRequest", json!({"id": 2})).await;
    editor.request(3, "shutdown", json!(null)).await;
    let next = editor.next().await.expect("an answer");
    assert_eq!(next["id"], 3, "{next}");
    gate.open();
}

#[tokio::test]
async fn a_burst_of_completions_leaves_one_running_and_the_stale_ones_get_content_modified() {
    let gate = GatedComplete::new();
    let server = gate.daemon().await;
    let mut editor = Editor::start(&server, patient()).await;
    editor.initialize(None).await;
    for id in 10..15 {
        editor.send(completion(id)).await;
    }
    let mut stale = Vec::new();
    for _ in 10..14 {
        let answer = editor.until("an answer", |m| m.get("id").is_some()).await;
        assert_eq!(code(&answer), codes::CONTENT_MODIFIED, "{answer}");
        stale.push(answer["id"].as_i64().expect("id"));
    }
    stale.sort_unstable();
    assert_eq!(stale, vec![10, 11, 12, 13]);
    // Only the newest is still at the daemon.
    gate.wait("the stale handlers to be dropped", |g| {
        g.left.load(Ordering::SeqCst) + 1 == g.entered.load(Ordering::SeqCst)
    })
    .await;
    gate.open();
    let answer = editor.response(14).await;
    assert_eq!(labels(&answer), vec!["gated"]);
}

#[tokio::test]
async fn a_completion_past_its_deadline_is_an_empty_incomplete_list() {
    let gate = GatedComplete::new();
    let server = gate.daemon().await;
    let mut options = Options::default();
    options.completion_deadline = Duration::from_millis(1);
    let mut editor = Editor::start(&server, options).await;
    editor.initialize(None).await;
    editor.send(completion(2)).await;
    // The gate never opens: only the daemon's deadline can end the request.
    let answer = editor.response(2).await;
    assert_eq!(answer["result"], json!({"isIncomplete": true, "items": []}));
}
