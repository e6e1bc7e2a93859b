//! The language service as hearthd serves it, over a real socket: a completion sees the
//! changes sent before it, `workspace/index` streams its progress before its result, the
//! index answers `complete` and `symbols`, documents belong to their connection and go with
//! it, and a change to a document that is not open is reported with its URI.

use hearth_server::protocol::{ErrorCode, Message};
use serde_json::{Value, json};

use crate::support::{
    OptsExt, Served, error_code, eventually, labels, next_error, notify, open, opts, pos,
    result_value, workspace,
};

#[tokio::test]
async fn a_completion_sees_the_incremental_change_sent_before_it() {
    let d = Served::start().await;
    let (mut peer, _) = d.connect().await;
    let uri = "file:///w/a.rs";
    open(&mut peer, uri, "let alphabet = 1;\n").await;
    // Typing "al" then "p" on the second line, each an incremental edit, with no wait for
    // anything in between: the completion must see both.
    for (version, character, text) in [(2, 0, "al"), (3, 2, "p")] {
        let at = pos(1, character);
        let change = json!({"uri": uri, "version": version, "changes": [
            {"range": {"start": at, "end": at}, "text": text}
        ]});
        notify(&mut peer, "doc/change", &change).await;
    }
    let params = json!({"uri": uri, "position": pos(1, 3)});
    peer.request_with(
        1,
        "complete",
        &params,
        &opts().supersede("complete").deadline_ms(60_000),
    )
    .await;
    let result: Value = result_value(&peer.response().await);
    assert_eq!(result["prefix"], "alp");
    assert_eq!(labels(&result), ["alphabet"]);
    assert_eq!(result["items"][0]["source"], "document");
}

#[tokio::test]
async fn indexing_streams_progress_before_its_result() {
    let d = Served::start().await;
    let (mut peer, _) = d.connect().await;
    let dir = workspace(40);
    let root = dir.path().to_str().expect("utf-8 path");
    peer.request_with(
        1,
        "workspace/index",
        &json!({"root": root}),
        &opts().stream(),
    )
    .await;
    let mut progress = Vec::new();
    let result: Value = loop {
        match peer.next().await {
            Some(Message::Partial(p)) => {
                assert_eq!(p.id, 1);
                let chunk: Value = hearth_server::protocol::from_msgpack(&p.chunk).expect("chunk");
                progress.push((p.seq, chunk));
            }
            Some(Message::Response(r)) => break result_value(&r),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(result["files"], 41, "{result}");
    assert!(result["identifiers"].as_u64().expect("identifiers") > 0);
    assert!(!progress.is_empty(), "no progress before the result");
    let seqs: Vec<u64> = progress.iter().map(|(seq, _)| *seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq not increasing: {seqs:?}"
    );
    for (_, chunk) in &progress {
        let done = chunk["files_done"].as_u64().expect("files_done");
        let total = chunk["files_total"].as_u64().expect("files_total");
        assert!(done <= total, "{chunk}");
    }
    let (_, last) = progress.last().expect("a partial");
    assert_eq!(last["files_done"], last["files_total"], "{progress:?}");
    assert_eq!(last["files_total"], 41);
}

#[tokio::test]
async fn indexing_without_a_stream_sends_only_the_result() {
    let d = Served::start().await;
    let (mut peer, _) = d.connect().await;
    let dir = workspace(3);
    let root = dir.path().to_str().expect("utf-8 path");
    let result: Value = peer
        .call(1, "workspace/index", &json!({"root": root}))
        .await;
    assert_eq!(result["files"], 4, "{result}");
}

#[tokio::test]
async fn completion_and_symbols_come_from_the_workspace_index() {
    let d = Served::start().await;
    let (mut indexer, _) = d.connect().await;
    let dir = workspace(5);
    let root = dir.path().to_str().expect("utf-8 path");
    let _: Value = indexer
        .call(1, "workspace/index", &json!({"root": root}))
        .await;

    // Another connection completes from the index the first one built.
    let (mut editor, _) = d.connect().await;
    let uri = "file:///w/main.rs";
    open(&mut editor, uri, "fn main() {\n    render_fr\n}\n").await;
    let result: Value = editor
        .call(
            2,
            "complete",
            &json!({"uri": uri, "position": pos(1, 13), "limit": 10}),
        )
        .await;
    assert_eq!(result["prefix"], "render_fr");
    assert_eq!(labels(&result)[0], "render_frame", "{result}");
    assert_eq!(result["items"][0]["source"], "workspace");
    assert_eq!(result["items"][0]["detail"], "src/lib.rs:2");

    let symbols: Value = editor
        .call(3, "symbols", &json!({"query": "render_frame", "limit": 3}))
        .await;
    let first = &symbols[0];
    assert_eq!(first["name"], "render_frame", "{symbols}");
    assert_eq!(first["line"], 1, "zero-based, as in LSP");
    let lib = dir
        .path()
        .canonicalize()
        .expect("canonical")
        .join("src/lib.rs");
    assert_eq!(first["uri"], format!("file://{}", lib.display()));
    assert_eq!(symbols.as_array().expect("a list").len(), 3);
}

#[tokio::test]
async fn documents_belong_to_their_connection_and_go_with_it() {
    let d = Served::start().await;
    let uri = "file:///w/shared.rs";
    let (mut first, first_id) = d.connect().await;
    open(&mut first, uri, "let mine_only = 1;\nmin").await;
    let complete = json!({"uri": uri, "position": pos(1, 3)});
    let result: Value = first.call(1, "complete", &complete).await;
    assert_eq!(labels(&result), ["mine_only"]);

    // A second connection cannot see it: for it the document is not open.
    let (mut second, _) = d.connect().await;
    second.request(1, "complete", &complete).await;
    let r = second.response().await;
    assert_eq!(error_code(&r), ErrorCode::INVALID_PARAMS);
    let data = r.outcome.expect_err("an error").data.expect("data");
    let data: Value = hearth_server::protocol::from_msgpack(&data).expect("data");
    assert_eq!(data["uri"], uri);

    // The first connection's document is dropped when it closes.
    assert_eq!(d.service.documents().open_count(first_id), 1);
    drop(first);
    eventually("the closed connection's documents to be dropped", || {
        d.service.documents().open_count(first_id) == 0
    })
    .await;
    // The second connection opening the same URI gets its own copy, not the dropped one.
    open(&mut second, uri, "let theirs = 2;\nthe").await;
    let result: Value = second.call(2, "complete", &complete).await;
    assert_eq!(labels(&result), ["theirs"]);
}

#[tokio::test]
async fn a_change_to_a_document_that_is_not_open_is_reported_with_its_uri() {
    let d = Served::start().await;
    let (mut peer, _) = d.connect().await;
    let uri = "file:///w/never-opened.rs";
    let change = json!({"uri": uri, "version": 2, "changes": [{"text": "x"}]});
    notify(&mut peer, "doc/change", &change).await;
    let error = next_error(&mut peer).await;
    assert_eq!(error["code"], ErrorCode::INVALID_PARAMS.0);
    assert_eq!(error["data"]["uri"], uri);
    // It changed nothing: the document is still not open.
    peer.request(1, "complete", &json!({"uri": uri, "position": pos(0, 1)}))
        .await;
    assert_eq!(
        error_code(&peer.response().await),
        ErrorCode::INVALID_PARAMS
    );
}
