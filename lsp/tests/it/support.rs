//! Shared helpers: a test daemon serving the language service (`hearth_lang::rpc::register`
//! on a `hearth_server::Router`, on a temporary socket), a scripted LSP [`Editor`] that drives
//! a gateway in memory (two duplex pipes standing for stdin and stdout), and a gated
//! `complete` handler so a test decides how long a completion stays in flight.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use hearth_client::Client;
use hearth_lang::LangService;
use hearth_lsp::framing::FrameReader;
use hearth_lsp::{ExitStatus, LspError, Options};
use hearth_server::{Limits, MethodError, RequestContext, builtins};
use hearth_testkit::{PATIENCE, TestServer};
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A test daemon with the language service registered, as hearthd serves it.
pub(crate) async fn lang_daemon() -> TestServer {
    let service = Arc::new(LangService::new());
    let closed = service.clone();
    let router = hearth_lang::rpc::register(builtins::router(), service)
        .on_disconnect(move |conn| closed.connection_closed(conn));
    TestServer::with(router, Limits::default()).await
}

/// A `complete` that waits at a gate the test opens, counting who entered and who left
/// (finished, or dropped by a cancel or a supersede), then answers one item.
#[derive(Clone)]
pub(crate) struct GatedComplete {
    open: watch::Sender<bool>,
    pub(crate) entered: Arc<AtomicUsize>,
    pub(crate) left: Arc<AtomicUsize>,
}

struct Left(Arc<AtomicUsize>);

impl Drop for Left {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl GatedComplete {
    pub(crate) fn new() -> Self {
        Self {
            open: watch::channel(false).0,
            entered: Arc::default(),
            left: Arc::default(),
        }
    }

    pub(crate) async fn daemon(&self) -> TestServer {
        let gate = self.clone();
        let router = builtins::router().method(
            "complete",
            move |_: serde::de::IgnoredAny, _ctx: RequestContext| {
                let gate = gate.clone();
                async move {
                    let _left = Left(gate.left.clone());
                    gate.entered.fetch_add(1, Ordering::SeqCst);
                    let mut open = gate.open.subscribe();
                    open.wait_for(|o| *o)
                        .await
                        .map_err(|_| MethodError::internal("gate dropped"))?;
                    Ok::<_, MethodError>(json!({
                        "prefix": "ga",
                        "items": [{"label": "gated", "score": 1, "source": "document"}],
                        "incomplete": false
                    }))
                }
            },
        );
        TestServer::with(router, Limits::default()).await
    }

    pub(crate) fn open(&self) {
        self.open.send_replace(true);
    }

    pub(crate) async fn wait(&self, what: &str, cond: impl Fn(&Self) -> bool) {
        hearth_testkit::eventually(what, || cond(self)).await;
    }
}

/// A scripted editor driving one gateway in memory.
pub(crate) struct Editor {
    to_gateway: DuplexStream,
    from_gateway: FrameReader<DuplexStream>,
    gateway: JoinHandle<Result<ExitStatus, LspError>>,
    /// Messages read while looking for something else (notifications, requests to us).
    pub(crate) seen: Vec<Value>,
    /// Answer `window/workDoneProgress/create` with success while waiting.
    pub(crate) accept_progress: bool,
}

impl Editor {
    /// A gateway on a fresh connection to `server`, with `options`.
    pub(crate) async fn start(server: &TestServer, options: Options) -> Self {
        let client = Client::connect(&server.path).await.expect("connect");
        Self::with_client(client, options)
    }

    pub(crate) fn with_client(client: Client, options: Options) -> Self {
        let (editor_in, gateway_out) = tokio::io::duplex(1 << 20);
        let (gateway_in, editor_out) = tokio::io::duplex(1 << 20);
        let gateway = tokio::spawn(hearth_lsp::run(gateway_in, gateway_out, client, options));
        Self {
            to_gateway: editor_out,
            from_gateway: FrameReader::new(editor_in, 64 << 20),
            gateway,
            seen: Vec::new(),
            accept_progress: true,
        }
    }

    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) {
        self.to_gateway.write_all(bytes).await.expect("write");
    }

    pub(crate) async fn send(&mut self, msg: Value) {
        let body = serde_json::to_vec(&msg).expect("json");
        let mut framed = Vec::new();
        hearth_lsp::framing::encode(&body, &mut framed);
        self.send_bytes(&framed).await;
    }

    pub(crate) async fn request(&mut self, id: i64, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
    }

    pub(crate) async fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    /// The next message from the gateway (`None`: it closed its output).
    pub(crate) async fn next(&mut self) -> Option<Value> {
        let body: Option<Bytes> = tokio::time::timeout(PATIENCE, self.from_gateway.next())
            .await
            .expect("the gateway said something within PATIENCE")
            .expect("well-framed output");
        body.map(|b| serde_json::from_slice(&b).expect("JSON from the gateway"))
    }

    /// Reads until `pred` holds for a message, which is returned; the others are kept in
    /// `seen`. Progress-token requests are answered on the way.
    pub(crate) async fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let msg = self
                .next()
                .await
                .unwrap_or_else(|| panic!("the gateway closed before {what}"));
            if pred(&msg) {
                return msg;
            }
            if msg["method"] == "window/workDoneProgress/create" && self.accept_progress {
                let id = msg["id"].clone();
                self.send(json!({"jsonrpc": "2.0", "id": id, "result": null}))
                    .await;
            }
            self.seen.push(msg);
        }
    }

    /// The response to request `id`.
    pub(crate) async fn response(&mut self, id: i64) -> Value {
        self.until(&format!("the response to {id}"), |m| {
            m["id"] == json!(id) && m.get("method").is_none()
        })
        .await
    }

    /// `request` then its response.
    pub(crate) async fn call(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.request(id, method, params).await;
        self.response(id).await
    }

    /// `initialize` (with the root, if any, and work-done progress support) and `initialized`;
    /// returns the `initialize` result.
    pub(crate) async fn initialize(&mut self, root: Option<&Path>) -> Value {
        let root_uri = root.map(|r| {
            hearth_lsp::path_to_uri(r)
                .expect("a file URI")
                .as_str()
                .to_owned()
        });
        let answer = self
            .call(
                1,
                "initialize",
                json!({
                    "processId": null,
                    "rootUri": root_uri,
                    "capabilities": {"window": {"workDoneProgress": true}},
                }),
            )
            .await;
        self.notify("initialized", json!({})).await;
        answer["result"].clone()
    }

    pub(crate) async fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": text}}),
        )
        .await;
    }

    pub(crate) async fn complete(
        &mut self,
        id: i64,
        uri: &str,
        line: u32,
        character: u32,
    ) -> Value {
        self.call(
            id,
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}),
        )
        .await
    }

    /// Closes the editor's side of stdin and waits for the gateway to end.
    pub(crate) async fn finish(self) -> Result<ExitStatus, LspError> {
        let Editor {
            to_gateway,
            gateway,
            from_gateway,
            ..
        } = self;
        drop(to_gateway);
        let outcome = tokio::time::timeout(PATIENCE, gateway)
            .await
            .expect("the gateway ended within PATIENCE")
            .expect("the gateway did not panic");
        drop(from_gateway);
        outcome
    }

    /// Waits for the gateway to end by itself (after `exit`, or an error), keeping stdin open.
    pub(crate) async fn ended(&mut self) -> Result<ExitStatus, LspError> {
        tokio::time::timeout(PATIENCE, &mut self.gateway)
            .await
            .expect("the gateway ended within PATIENCE")
            .expect("the gateway did not panic")
    }
}

/// The error code of a response.
pub(crate) fn code(response: &Value) -> i64 {
    response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("an error response: {response}"))
}

/// The labels of a completion response.
pub(crate) fn labels(response: &Value) -> Vec<String> {
    response["result"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a completion list: {response}"))
        .iter()
        .map(|i| i["label"].as_str().unwrap_or_default().to_owned())
        .collect()
}
