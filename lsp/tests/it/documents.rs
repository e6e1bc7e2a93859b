//! Documents and completion through the gateway: open, incremental changes applied in order
//! before the completion that follows them, items in hearth's rank with kind, detail and
//! sortText, and UTF-16 positions with multibyte text before the cursor.

use hearth_lsp::Options;
use serde_json::{Value, json};

use crate::support::{Editor, code, labels, lang_daemon};

const URI: &str = "file:///project/src/main.rs";

fn change(version: i64, line: u32, character: u32, text: &str) -> Value {
    let at = json!({"line": line, "character": character});
    json!({
        "textDocument": {"uri": URI, "version": version},
        "contentChanges": [{"range": {"start": at, "end": at}, "text": text}],
    })
}

#[tokio::test]
async fn completion_sees_every_change_sent_before_it() {
    let server = lang_daemon().await;
    let mut editor = Editor::start(&server, Options::default()).await;
    editor.initialize(None).await;
    editor
        .open(
            URI,
            "fn main() {\n    let counter = 0;\n    let count_lines = 1;\n\n}\n",
        )
        .await;
    // Typed one keystroke at a time on line 3, no waiting in between.
    for (i, ch) in ["c", "o", "u"].iter().enumerate() {
        let col = u32::try_from(4 + i).expect("small");
        let at = if i == 0 { 0 } else { col };
        let text = if i == 0 {
            format!("    {ch}")
        } else {
            (*ch).to_owned()
        };
        editor
            .notify("textDocument/didChange", change(2 + i as i64, 3, at, &text))
            .await;
    }
    let answer = editor.complete(10, URI, 3, 7).await;
    let list = &answer["result"];
    assert_eq!(list["isIncomplete"], false);
    assert_eq!(labels(&answer), vec!["count_lines", "counter"]);
    let items = list["items"].as_array().expect("items");
    for (rank, item) in items.iter().enumerate() {
        assert_eq!(item["kind"], 1, "TEXT");
        assert_eq!(item["sortText"], format!("{rank:05}"));
        assert_eq!(item["detail"], "1 in document");
        assert_eq!(
            item["textEdit"]["range"],
            json!({"start": {"line": 3, "character": 4}, "end": {"line": 3, "character": 7}})
        );
        assert_eq!(item["textEdit"]["newText"], item["label"]);
    }

    // A whole-text change (no range) replaces the document.
    editor
        .notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": URI, "version": 9}, "contentChanges": [{"text": "let zebra = 1;\nze"}]}),
        )
        .await;
    let answer = editor.complete(11, URI, 1, 2).await;
    assert_eq!(labels(&answer), vec!["zebra"]);

    // After didClose the daemon no longer has it: invalid params, with the URI.
    editor
        .notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": URI}}),
        )
        .await;
    let answer = editor.complete(12, URI, 1, 2).await;
    assert_eq!(code(&answer), -32602);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(URI)
    );
}

#[tokio::test]
async fn multibyte_text_before_the_cursor_is_counted_in_utf16() {
    let server = lang_daemon().await;
    let mut editor = Editor::start(&server, Options::default()).await;
    editor.initialize(None).await;
    // Line 1: "😀 é grö" — 😀 is 2 UTF-16 units, é 1, ö 1: the cursor after "grö" is at 8
    // (and at 7 in code points, 11 in bytes: either mistake gives another prefix).
    editor.open(URI, "let größe = 1;\n😀 é grö").await;
    let answer = editor.complete(2, URI, 1, 8).await;
    assert_eq!(labels(&answer), vec!["größe"]);
    let item = &answer["result"]["items"][0];
    assert_eq!(
        item["textEdit"]["range"]["start"],
        json!({"line": 1, "character": 5})
    );
    // Edit in the middle of the multibyte line: insert "x" after "é" (UTF-16 column 4).
    editor
        .notify("textDocument/didChange", change(2, 1, 4, "x"))
        .await;
    // Line 1 is now "😀 éx grö" (the cursor after it: 9).
    let answer = editor.complete(3, URI, 1, 9).await;
    assert_eq!(labels(&answer), vec!["größe"]);
    let answer = editor.complete(4, URI, 1, 5).await;
    assert!(
        labels(&answer).is_empty(),
        "the prefix \"éx\"… matches nothing"
    );
}
