//! What broken input gets: a malformed header or an oversized message ends the gateway with
//! an error (LSP cannot answer them); invalid JSON is -32700 with id null, an unknown method
//! -32601, an unknown notification nothing (a known one with bad params, a log line) — and the session goes on after each of those.
//! The daemon's death ends the gateway with an error and tells the editor.

use hearth_lsp::{FrameError, LspError, Options, codes};
use serde_json::{Value, json};

use crate::support::{Editor, code, lang_daemon};

#[tokio::test]
async fn a_malformed_header_ends_the_gateway_with_a_clear_error() {
    let server = lang_daemon().await;
    let mut editor = Editor::start(&server, Options::default()).await;
    editor.send_bytes(b"Content-Length: twelve\r\n\r\n{}").await;
    let err = editor.ended().await.expect_err("not LSP");
    assert!(
        matches!(err, LspError::Input(FrameError::BadLength(_))),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "malformed message header: Content-Length \"twelve\" is not a length"
    );
}

#[tokio::test]
async fn a_message_over_the_cap_is_refused_before_its_body_is_read() {
    let server = lang_daemon().await;
    let mut options = Options::default();
    options.max_message = 1024;
    let mut editor = Editor::start(&server, options).await;
    // Only the header is sent: the gateway must decide from it alone.
    editor
        .send_bytes(b"Content-Length: 1000000000000\r\n\r\n")
        .await;
    let err = editor.ended().await.expect_err("too large");
    assert!(
        matches!(
            err,
            LspError::Input(FrameError::TooLarge {
                len: 1_000_000_000_000,
                max: 1024
            })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn invalid_json_gets_a_parse_error_with_id_null_and_the_session_goes_on() {
    let server = lang_daemon().await;
    let mut editor = Editor::start(&server, Options::default()).await;
    let body = br#"{"jsonrpc": "2.0", "id": 1, "method": "#;
    let mut framed = Vec::new();
    hearth_lsp::framing::encode(body, &mut framed);
    editor.send_bytes(&framed).await;
    let answer = editor.next().await.expect("an answer");
    assert_eq!(answer["id"], Value::Null);
    assert_eq!(code(&answer), codes::PARSE_ERROR);
    assert_eq!(code(&answer), -32700);
    // Valid JSON that is not JSON-RPC: invalid request, with the id when it can be read.
    editor.send(json!({"id": 4, "method": "initialize"})).await;
    let answer = editor.next().await.expect("an answer");
    assert_eq!((answer["id"].clone(), code(&answer)), (json!(4), -32600));
    editor.send(json!([1, 2])).await;
    let answer = editor.next().await.expect("an answer");
    assert_eq!((answer["id"].clone(), code(&answer)), (Value::Null, -32600));
    // Still serving.
    let result = editor.initialize(None).await;
    assert_eq!(result["capabilities"]["positionEncoding"], "utf-16");
}

#[tokio::test]
async fn unknown_methods_get_method_not_found_and_unknown_notifications_nothing() {
    let server = lang_daemon().await;
    let mut editor = Editor::start(&server, Options::default()).await;
    editor.initialize(None).await;
    editor.notify("$/setTrace", json!({"value": "off"})).await;
    editor
        .notify("workspace/didChangeConfiguration", json!({"settings": {}}))
        .await;
    editor
        .notify("textDocument/didChange", json!({"bad": "params"}))
        .await;
    let answer = editor
        .call(
            5,
            "textDocument/hover",
            json!({"textDocument": {"uri": "file:///a"}, "position": {"line": 0, "character": 0}}),
        )
        .await;
    assert_eq!(code(&answer), codes::METHOD_NOT_FOUND);
    assert_eq!(code(&answer), -32601);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("textDocument/hover")
    );
    // Unknown notifications get nothing; a known one with bad params a line in the log.
    assert_eq!(editor.seen.len(), 1, "{:?}", editor.seen);
    assert_eq!(editor.seen[0]["method"], "window/logMessage");
    let logged = editor.seen[0]["params"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        logged.contains("ignoring textDocument/didChange with invalid params"),
        "{logged}"
    );
    let bad = editor
        .call(6, "textDocument/completion", json!({"position": "nowhere"}))
        .await;
    assert_eq!(code(&bad), codes::INVALID_PARAMS);
}

#[tokio::test]
async fn the_daemons_death_ends_the_gateway_with_an_error_and_tells_the_editor() {
    let server = lang_daemon().await;
    let mut editor = Editor::start(&server, Options::default()).await;
    editor.initialize(None).await;
    server.handle.shutdown_now();
    let err = editor.ended().await.expect_err("the daemon went away");
    assert!(matches!(err, LspError::DaemonLost { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("lost the connection to hearthd"),
        "{err}"
    );
    let told = editor
        .until("a message to the user", |m| {
            m["method"] == "window/showMessage"
        })
        .await;
    assert_eq!(told["params"]["type"], 1, "an error");
    assert!(
        told["params"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("lost the connection to hearthd")
    );
}
