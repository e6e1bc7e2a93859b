//! `hearth lsp` as an editor starts it: a whole session over real pipes against a daemon
//! serving the language service, and the exit codes and stderr lines when the daemon cannot
//! be reached or dies mid-session. (The gateway's behaviour message by message is tested in
//! the hearth-lsp crate.)

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;

use hearth_lang::LangService;
use hearth_server::{Limits, builtins};
use serde_json::{Value, json};

use crate::support::TestDaemon;

fn lang_daemon() -> TestDaemon {
    let service = Arc::new(LangService::new());
    let closed = service.clone();
    let router = hearth_lang::rpc::register(builtins::router(), service)
        .on_disconnect(move |conn| closed.connection_closed(conn));
    TestDaemon::start_with(router, Limits::default())
}

fn framed(msg: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(msg).expect("json");
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend(body);
    out
}

/// Reads one framed message.
fn read_message(r: &mut BufReader<ChildStdout>) -> Value {
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
    std::io::Read::read_exact(r, &mut body).expect("body");
    serde_json::from_slice(&body).expect("json")
}

fn send(stdin: &mut ChildStdin, msg: Value) {
    stdin.write_all(&framed(&msg)).expect("write");
}

fn start(daemon: &TestDaemon) -> (Child, ChildStdin, BufReader<ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("lsp")
        .arg("--socket")
        .arg(daemon.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    (child, stdin, stdout)
}

#[test]
fn lsp_session_over_stdio_exits_zero_after_shutdown_and_exit() {
    let daemon = lang_daemon();
    let (mut child, mut stdin, mut stdout) = start(&daemon);
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}),
    );
    let init = read_message(&mut stdout);
    assert_eq!(init["result"]["capabilities"]["positionEncoding"], "utf-16");
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    );
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
fn lsp_exits_three_with_a_message_when_the_daemon_dies() {
    let mut daemon = lang_daemon();
    let (child, mut stdin, mut stdout) = start(&daemon);
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}),
    );
    // Connected and serving: now the daemon dies.
    read_message(&mut stdout);
    daemon.kill();
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("hearth lsp: lost the connection to hearthd"),
        "stderr: {stderr}"
    );
    drop(stdin);
}

#[test]
fn lsp_without_a_daemon_exits_three_saying_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["lsp", "--socket"])
        .arg(dir.path().join("none.sock"))
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is hearthd running?"), "stderr: {stderr}");
}
