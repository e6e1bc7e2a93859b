//! Helpers for hearthd's tests: a [`Served`] daemon (hearthd's router in process, plus a
//! `test/connection` method that tells a peer its connection id), a small workspace on disk,
//! and document notifications and calls that read as the data they send.

use std::path::Path;
use std::sync::Arc;

use hearth_lang::LangService;
use hearth_server::protocol::{self, Message};
use hearth_server::{Limits, MethodError, RequestContext};
pub(crate) use hearth_testkit::*;
use serde::Serialize;
use serde_json::{Value, json};

/// hearthd's router in process, with the service it serves.
pub(crate) struct Served {
    pub(crate) server: TestServer,
    pub(crate) service: Arc<LangService>,
}

impl Served {
    /// hearthd's router, and `test/connection`, which answers the caller's connection id.
    pub(crate) async fn start() -> Self {
        let service = Arc::new(LangService::new());
        let router = hearthd::router(service.clone())
            .method("test/connection", |_: (), ctx: RequestContext| async move {
                Ok::<_, MethodError>(ctx.connection_id())
            });
        let server = TestServer::with(router, Limits::default()).await;
        Self { server, service }
    }

    /// A version 2 peer and its connection id.
    pub(crate) async fn connect(&self) -> (Raw, u64) {
        let mut peer = self.server.connect_v2().await;
        let conn: u64 = peer.call(1 << 50, "test/connection", &()).await;
        (peer, conn)
    }
}

/// Sends a notification.
pub(crate) async fn notify(peer: &mut Raw, method: &str, params: &impl Serialize) {
    let frame = peer.frames().notification(method, params);
    peer.send_bytes(&frame).await;
}

/// `doc/open` of `uri` with `text` at version 1.
pub(crate) async fn open(peer: &mut Raw, uri: &str, text: &str) {
    let params = json!({"uri": uri, "text": text, "version": 1, "language": "rust"});
    notify(peer, "doc/open", &params).await;
}

/// `{"line": line, "character": character}`.
pub(crate) fn pos(line: u32, character: u32) -> Value {
    json!({"line": line, "character": character})
}

/// The labels of a `complete` result, in rank order.
pub(crate) fn labels(result: &Value) -> Vec<String> {
    result["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["label"].as_str().expect("label").to_owned())
        .collect()
}

/// The next message, which must be a `$/error` notification; its params.
pub(crate) async fn next_error(peer: &mut Raw) -> Value {
    match peer.next().await {
        Some(Message::Notification(n)) if n.method() == "$/error" => {
            protocol::from_msgpack(&n.params).expect("$/error params")
        }
        other => panic!("expected $/error, got {other:?}"),
    }
}

/// A folder of `files` Rust files, `src/use_<i>.rs` (after `lib.rs` by path), each defining `render_frame_<i>` and
/// calling `render_frame`, plus `src/lib.rs` defining `render_frame` on its second line.
pub(crate) fn workspace(files: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    write(
        &src.join("lib.rs"),
        "// the frame\npub fn render_frame() {}\n",
    );
    for i in 0..files {
        write(
            &src.join(format!("use_{i}.rs")),
            &format!("fn render_frame_{i}() {{\n    render_frame();\n}}\n"),
        );
    }
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}
