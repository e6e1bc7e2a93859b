//! The `hearth` binary against hearthd's language service (the `hearthd` router in a test
//! daemon): `hearth call --open FILE complete …` completes in a file from one command line,
//! which works only because the document is opened on the call's own connection.

use std::sync::Arc;

use hearth_server::Limits;
use hearthd::hearth_lang::LangService;
use serde_json::{Value, json};

use crate::support::{TestDaemon, hearth};

fn hearthd_daemon() -> TestDaemon {
    TestDaemon::start_with(
        hearthd::router(Arc::new(LangService::new())),
        Limits::default(),
    )
}

#[test]
fn call_open_then_complete_in_that_file() {
    let daemon = hearthd_daemon();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("main.rs");
    std::fs::write(&file, "let counter = 0;\ncou\n").expect("write");
    let uri = format!(
        "file://{}",
        file.canonicalize().expect("canonical").display()
    );
    let params = json!({"uri": uri, "position": {"line": 1, "character": 3}}).to_string();
    let file = file.to_str().expect("utf-8 path");

    let out = hearth(
        daemon.path(),
        &["call", "--open", file, "complete", &params, "--compact"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(result["prefix"], "cou");
    assert_eq!(result["items"][0]["label"], "counter", "{result}");

    // Without --open the document is not open on that connection.
    let out = hearth(daemon.path(), &["call", "complete", &params]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("document not open"), "{err}");
}

#[test]
fn call_open_of_a_missing_file_is_bad_input() {
    let daemon = hearthd_daemon();
    let out = hearth(
        daemon.path(),
        &["call", "--open", "/no/such/file.rs", "complete", "{}"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/file.rs"), "{err}");
}
