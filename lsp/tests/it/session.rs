//! The session's life as LSP prescribes it: capabilities from `initialize`, requests before it
//! (-32002) and after `shutdown` (-32600), and the exit code (0 only after `shutdown`).

use hearth_lsp::{Options, codes};
use serde_json::json;

use crate::support::{Editor, code, lang_daemon};

#[tokio::test]
async fn initialize_advertises_incremental_sync_completion_symbols_and_utf16() {
    let server = lang_daemon().await;
    let mut editor = Editor::start(&server, Options::default()).await;
    let result = editor.initialize(None).await;
    let caps = &result["capabilities"];
    assert_eq!(caps["positionEncoding"], "utf-16");
    assert_eq!(caps["textDocumentSync"]["openClose"], true);
    assert_eq!(caps["textDocumentSync"]["change"], 2, "incremental");
    assert!(caps["completionProvider"].is_object());
    assert_eq!(caps["workspaceSymbolProvider"], true);
    assert_eq!(result["serverInfo"]["name"], "hearth lsp");

    let again = editor
        .call(2, "initialize", json!({"capabilities": {}}))
        .await;
    assert_eq!(code(&again), codes::INVALID_REQUEST);

    let shutdown = editor.call(3, "shutdown", json!(null)).await;
    assert_eq!(shutdown["result"], json!(null));
    assert!(shutdown.get("error").is_none());
    editor.notify("exit", json!(null)).await;
    let status = editor.ended().await.expect("a clean exit");
    assert!(status.shutdown_received && status.exit_received);
    assert_eq!(status.code(), 0);
}

#[tokio::test]
async fn requests_before_initialize_get_server_not_initialized() {
    let server = lang_daemon().await;
    let mut editor = Editor::start(&server, Options::default()).await;
    // A notification before initialize is dropped, not answered.
    editor
        .notify("textDocument/didOpen", json!({"textDocument": {"uri": "file:///a", "languageId": "x", "version": 1, "text": "abc"}}))
        .await;
    let early = editor
        .call(7, "workspace/symbol", json!({"query": "x"}))
        .await;
    assert_eq!(code(&early), codes::SERVER_NOT_INITIALIZED);
    assert_eq!(code(&early), -32002);
    assert!(
        editor.seen.is_empty(),
        "nothing else was said: {:?}",
        editor.seen
    );
    editor.initialize(None).await;
    let status = editor.finish().await.expect("the input ended");
    assert_eq!(status.code(), 1, "no shutdown was received");
}

#[tokio::test]
async fn after_shutdown_requests_are_invalid_and_exit_is_zero() {
    let server = lang_daemon().await;
    let mut editor = Editor::start(&server, Options::default()).await;
    editor.initialize(None).await;
    editor.call(2, "shutdown", json!(null)).await;
    let late = editor
        .call(3, "workspace/symbol", json!({"query": "x"}))
        .await;
    assert_eq!(code(&late), codes::INVALID_REQUEST);
    editor.notify("exit", json!(null)).await;
    assert_eq!(editor.ended().await.expect("exit").code(), 0);
}

#[tokio::test]
async fn exit_without_shutdown_is_one() {
    let server = lang_daemon().await;
    let mut editor = Editor::start(&server, Options::default()).await;
    editor.initialize(None).await;
    editor.notify("exit", json!(null)).await;
    let status = editor.ended().await.expect("exit");
    assert!(status.exit_received && !status.shutdown_received);
    assert_eq!(status.code(), 1);
    // The gateway closed its output.
    assert_eq!(editor.next().await, None);
}
