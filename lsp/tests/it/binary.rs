//! The `hearth-lsp` binary as an editor starts it: a whole session over real pipes, and the
//! exit code and stderr message when hearthd cannot be reached or goes away.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::lang_daemon;

fn framed(msg: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(msg).expect("json");
    let mut out = Vec::new();
    hearth_lsp::framing::encode(&body, &mut out);
    out
}

/// Reads one framed message from a blocking reader.
fn read_message(r: &mut impl BufRead) -> Value {
    let mut len = None;
    loop {
        let mut line = String::new();
        assert_ne!(r.read_line(&mut line).expect("read"), 0, "output ended");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len.expect("a length")];
    r.read_exact(&mut body).expect("body");
    serde_json::from_slice(&body).expect("json")
}

#[test]
fn a_session_over_stdio_exits_zero_after_shutdown_and_exit() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(lang_daemon());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth-lsp"))
        .arg("--socket")
        .arg(&server.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let send = |stdin: &mut std::process::ChildStdin, msg: Value| {
        stdin.write_all(&framed(&msg)).expect("write");
    };
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}),
    );
    let init = read_message(&mut stdout);
    assert_eq!(init["result"]["capabilities"]["positionEncoding"], "utf-16");
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": "file:///x.c", "languageId": "c", "version": 1, "text": "int widget;\nwid"}}}),
    );
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 2, "method": "textDocument/completion", "params": {"textDocument": {"uri": "file:///x.c"}, "position": {"line": 1, "character": 3}}}),
    );
    let answer = read_message(&mut stdout);
    assert_eq!(answer["result"]["items"][0]["label"], "widget");
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}),
    );
    assert_eq!(read_message(&mut stdout)["id"], 3);
    send(&mut stdin, json!({"jsonrpc": "2.0", "method": "exit"}));
    // stdin stays open: `exit` alone must end the process.
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    drop(stdin);
}

#[test]
fn the_daemons_death_exits_non_zero_with_a_message() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(lang_daemon());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth-lsp"))
        .arg("--socket")
        .arg(&server.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    stdin
        .write_all(&framed(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})))
        .expect("write");
    // Connected and serving: now the daemon dies.
    read_message(&mut stdout);
    server.handle.shutdown_now();
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hearth lsp: lost the connection to hearthd"),
        "stderr: {stderr}"
    );
    drop(stdin);
}

#[test]
fn no_daemon_exits_non_zero_saying_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth-lsp"))
        .arg("--socket")
        .arg(dir.path().join("none.sock"))
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is hearthd running?"), "stderr: {stderr}");
}
