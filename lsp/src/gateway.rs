//! The gateway's life: one main task reads the editor's messages in order and owns the LSP
//! state (initialized, shut down); requests run as tasks, answers leave through one writer
//! task. What each LSP method becomes at the daemon is `mapping.rs`'s; the index job with its
//! progress is `progress.rs`'s.
//!
//! **Order.** Document notifications are queued on the hearth connection by the main task, in
//! the order they arrive, so the daemon applies them in that order (it applies a notification
//! as it reads it). A request's hearth call is polled once by the main task before it moves to
//! its own task, and that first poll queues the request frame (the client library queues
//! synchronously when there is room; the gateway holds fewer calls than the client's in-flight
//! limit so there is always a place). So every request reaches the daemon after the
//! notifications before it and before the ones after it: a completion sees exactly the edits
//! the editor sent before asking. (Only when the daemon stops reading altogether and the
//! client's outbound buffer is full could a request's frame wait and be overtaken.)
//!
//! **Exactly one answer per request.** Each running request has an entry in `in_flight`
//! (id → abort handle, under a `std::sync::Mutex`: nothing is awaited while it is held).
//! Whoever removes the entry answers: the request's task when it finishes, or `$/cancelRequest`
//! (which aborts the task — dropping the hearth call sends the daemon a cancel — and answers
//! -32800).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use hearth_client::{Client, Error as ClientError, ErrorCode, Version};
use lsp_types as lsp;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};

use crate::error::LspError;
use crate::framing::{self, FrameReader};
use crate::mapping::{self, CompleteResult, DocChange, DocClose, DocOpen, HearthSymbol};
use crate::message::{self, Id, Incoming, codes};
use crate::{ExitStatus, Options};

/// hearth method names (docs/LANGUAGE.md).
pub(crate) mod methods {
    pub(crate) const DOC_OPEN: &str = "doc/open";
    pub(crate) const DOC_CHANGE: &str = "doc/change";
    pub(crate) const DOC_CLOSE: &str = "doc/close";
    pub(crate) const COMPLETE: &str = "complete";
    pub(crate) const SYMBOLS: &str = "symbols";
    pub(crate) const WORKSPACE_INDEX: &str = "workspace/index";
}

/// The supersede key of completions: a newer completion replaces an older one still running.
const COMPLETE_KEY: &str = "complete";

/// Messages queued for the writer task. Bounded: when the editor stops reading, tasks wait
/// here and then the main task stops reading the editor.
const OUT_QUEUE: usize = 256;

/// The writer's side of the editor: bodies to frame and write, in order.
#[derive(Clone, Debug)]
pub(crate) struct Out(mpsc::Sender<Vec<u8>>);

impl Out {
    /// Queues a body. Fails only when the writer is gone (the editor closed its input); the
    /// main task notices that itself, so callers may ignore the error.
    pub(crate) async fn send(&self, body: Vec<u8>) -> Result<(), ()> {
        self.0.send(body).await.map_err(drop)
    }

    pub(crate) async fn notify(&self, method: &str, params: &impl serde::Serialize) {
        let _ = self.send(message::notification_body(method, params)).await;
    }
}

/// The editor's answer to one of our requests: its result or its error object.
type EditorAnswer = oneshot::Sender<Result<Value, Value>>;

/// Our requests to the editor (`window/workDoneProgress/create`): id → where its answer goes.
#[derive(Clone, Debug, Default)]
pub(crate) struct EditorCalls {
    // A std mutex: held only to insert or remove, never across an await.
    waiting: Arc<Mutex<HashMap<Id, EditorAnswer>>>,
    next: Arc<AtomicU64>,
}

impl EditorCalls {
    /// Sends `method` to the editor; the receiver gets its answer (or is dropped with the
    /// gateway).
    pub(crate) async fn call(
        &self,
        out: &Out,
        method: &str,
        params: &impl serde::Serialize,
    ) -> oneshot::Receiver<Result<Value, Value>> {
        let id = Id::Str(format!(
            "hearth-lsp/{}",
            self.next.fetch_add(1, Ordering::Relaxed)
        ));
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(id.clone(), tx);
        let _ = out.send(message::request_body(&id, method, params)).await;
        rx
    }

    fn answer(&self, id: &Id, outcome: Result<Value, Value>) {
        if let Some(tx) = lock(&self.waiting).remove(id) {
            let _ = tx.send(outcome);
        }
        // An answer to nothing we asked: ignored.
    }
}

/// Locks a std mutex, taking the data even if a holder panicked (the maps stay consistent:
/// every critical section is a single insert or remove).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A boxed future that produces a response body.
type Answer = Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;

struct Gateway {
    client: Client,
    options: Options,
    out: Out,
    initialized: bool,
    shutdown: bool,
    /// The folder to index, from `initialize`.
    root: Option<PathBuf>,
    /// Whether the editor creates work-done progress tokens on request.
    progress: bool,
    /// `initializationOptions.index`, when given.
    index_requested: Option<bool>,
    in_flight: Arc<Mutex<HashMap<Id, AbortHandle>>>,
    editor_calls: EditorCalls,
    /// Limits running requests below the client's in-flight limit (see the module).
    permits: Arc<Semaphore>,
    /// Every task the gateway started; dropping the set aborts them.
    tasks: JoinSet<()>,
}

/// Serves one editor session: reads LSP messages from `input`, answers on `output`, and talks
/// to the daemon through `client` (which must speak protocol version 2). Returns when the
/// editor sends `exit` or closes `input`, or with an error when the input is not LSP (a
/// malformed header: LSP cannot answer it), the output fails, or the daemon goes away.
/// Requests still running are cancelled at the daemon; queued output is flushed.
pub async fn run<R, W>(
    input: R,
    output: W,
    client: Client,
    options: Options,
) -> Result<ExitStatus, LspError>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    if client.protocol_version() < Version::V2 {
        return Err(LspError::DaemonTooOld {
            version: client.protocol_version().number(),
        });
    }
    let (tx, rx) = mpsc::channel(OUT_QUEUE);
    let mut writer = tokio::spawn(write_loop(output, rx));
    // Keep one place for cancels and one for the index, as the client library asks.
    let limit = usize::try_from(client.hello().limits.max_in_flight)
        .unwrap_or(usize::MAX)
        .saturating_sub(3)
        .clamp(1, options.max_concurrent.max(1));
    let mut gateway = Gateway {
        client,
        out: Out(tx),
        initialized: false,
        shutdown: false,
        root: None,
        progress: false,
        index_requested: None,
        in_flight: Arc::default(),
        editor_calls: EditorCalls::default(),
        permits: Arc::new(Semaphore::new(limit)),
        tasks: JoinSet::new(),
        options,
    };
    gateway.forward_daemon_notices();
    let mut reader = FrameReader::new(input, gateway.options.max_message);
    let outcome = loop {
        while gateway.tasks.try_join_next().is_some() {}
        let client = gateway.client.clone();
        let next = tokio::select! {
            biased;
            () = client.closed() => break Err(gateway.daemon_lost().await),
            result = &mut writer => {
                let e = match result {
                    Ok(Err(e)) => e,
                    _ => std::io::Error::other("the writer stopped"),
                };
                return Err(LspError::Output(e));
            }
            next = reader.next() => next,
        };
        match next {
            Err(e) => break Err(e.into()),
            Ok(None) => break Ok(gateway.status(false)),
            Ok(Some(body)) => match gateway.handle(&body).await {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(e) => break Err(e),
            },
        }
    };
    // Stop every request and the index (dropping the calls cancels them at the daemon), then
    // let the writer flush what is queued: the answer to `shutdown`, a last message.
    gateway.tasks.shutdown().await;
    drop(gateway);
    match writer.await {
        Ok(Ok(())) => outcome,
        Ok(Err(e)) => outcome.and(Err(LspError::Output(e))),
        Err(_) => outcome,
    }
}

/// Writes framed bodies to the editor, batching what is queued into one write.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut output: W,
    mut rx: mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some(body) = rx.recv().await {
        framing::encode(&body, &mut buf);
        while buf.len() < 1 << 20 {
            match rx.try_recv() {
                Ok(body) => framing::encode(&body, &mut buf),
                Err(_) => break,
            }
        }
        output.write_all(&buf).await?;
        output.flush().await?;
        buf.clear();
    }
    Ok(())
}

/// `$/cancelRequest` params (the id as JSON-RPC allows it, wider than lsp-types' i32).
#[derive(Deserialize)]
struct CancelParams {
    id: Id,
}

/// `initializationOptions` the gateway reads.
#[derive(Deserialize, Default)]
struct InitOptions {
    /// `false`: do not index the workspace (another window already did).
    index: Option<bool>,
}

/// `$/error` params from the daemon.
#[derive(Deserialize)]
struct DaemonNotice {
    message: String,
}

impl Gateway {
    fn status(&self, exit_received: bool) -> ExitStatus {
        ExitStatus {
            shutdown_received: self.shutdown,
            exit_received,
        }
    }

    async fn send(&self, body: Vec<u8>) {
        let _ = self.out.send(body).await;
    }

    async fn error(&self, id: Option<&Id>, code: i64, message: &str) {
        self.send(message::error_body(id, code, message)).await;
    }

    /// Tells the editor (best effort) and gives the error `run` returns.
    async fn daemon_lost(&self) -> LspError {
        let reason = self
            .client
            .close_reason()
            .map_or_else(|| "the connection closed".to_owned(), |r| r.to_string());
        let text = format!("hearth lsp: lost the connection to hearthd ({reason}); exiting");
        self.out
            .notify(
                "window/showMessage",
                &lsp::ShowMessageParams {
                    typ: lsp::MessageType::ERROR,
                    message: text,
                },
            )
            .await;
        LspError::DaemonLost { reason }
    }

    /// Forwards the daemon's `$/error` notices (a stale `doc/change`, say) to the editor's log.
    fn forward_daemon_notices(&mut self) {
        let Some(mut notices) = self.client.notifications() else {
            return;
        };
        let out = self.out.clone();
        self.tasks.spawn(async move {
            while let Some(n) = notices.recv().await {
                if n.method != "$/error" {
                    continue;
                }
                let Ok(notice) = n.params::<DaemonNotice>() else {
                    continue;
                };
                let params = lsp::LogMessageParams {
                    typ: lsp::MessageType::WARNING,
                    message: format!("hearthd: {}", notice.message),
                };
                out.notify("window/logMessage", &params).await;
            }
        });
    }

    /// One message from the editor. `Ok(Some(status))`: `exit` was received.
    async fn handle(&mut self, body: &[u8]) -> Result<Option<ExitStatus>, LspError> {
        match Incoming::parse(body) {
            Err(rejected) => {
                self.error(rejected.id.as_ref(), rejected.code, &rejected.message)
                    .await;
                Ok(None)
            }
            Ok(Incoming::Response { id, outcome }) => {
                self.editor_calls.answer(&id, outcome);
                Ok(None)
            }
            Ok(Incoming::Notification { method, params }) => {
                self.notification(&method, params).await
            }
            Ok(Incoming::Request { id, method, params }) => {
                self.request(id, &method, params).await;
                Ok(None)
            }
        }
    }

    async fn request(&mut self, id: Id, method: &str, params: Value) {
        if method == "initialize" {
            if self.initialized {
                self.error(
                    Some(&id),
                    codes::INVALID_REQUEST,
                    "initialize was already received",
                )
                .await;
            } else {
                self.initialize(id, params).await;
            }
            return;
        }
        if !self.initialized {
            let text = format!("{method} before initialize");
            return self
                .error(Some(&id), codes::SERVER_NOT_INITIALIZED, &text)
                .await;
        }
        if self.shutdown {
            let text = format!("{method} after shutdown: only exit is expected now");
            return self.error(Some(&id), codes::INVALID_REQUEST, &text).await;
        }
        if lock(&self.in_flight).contains_key(&id) {
            let text = format!("request id {id} is already in use by a running request");
            return self.error(Some(&id), codes::INVALID_REQUEST, &text).await;
        }
        match method {
            "shutdown" => {
                self.shutdown = true;
                self.send(message::result_body(&id, &Value::Null)).await;
            }
            "textDocument/completion" => match serde_json::from_value(params) {
                Ok(p) => {
                    let answer = self.completion(id.clone(), p);
                    self.spawn_request(id, answer).await;
                }
                Err(e) => self.invalid_params(&id, method, &e).await,
            },
            "workspace/symbol" => match serde_json::from_value(params) {
                Ok(p) => {
                    let answer = self.symbols(id.clone(), p);
                    self.spawn_request(id, answer).await;
                }
                Err(e) => self.invalid_params(&id, method, &e).await,
            },
            _ => {
                let text = format!("method not found: {method}");
                self.error(Some(&id), codes::METHOD_NOT_FOUND, &text).await;
            }
        }
    }

    async fn invalid_params(&self, id: &Id, method: &str, e: &serde_json::Error) {
        let text = format!("invalid params for {method}: {e}");
        self.error(Some(id), codes::INVALID_PARAMS, &text).await;
    }

    async fn initialize(&mut self, id: Id, params: Value) {
        let params: lsp::InitializeParams = match serde_json::from_value(params) {
            Ok(p) => p,
            Err(e) => return self.invalid_params(&id, "initialize", &e).await,
        };
        self.root = root_of(&params);
        self.progress = params
            .capabilities
            .window
            .as_ref()
            .and_then(|w| w.work_done_progress)
            .unwrap_or(false);
        self.index_requested = params
            .initialization_options
            .and_then(|o| serde_json::from_value::<InitOptions>(o).ok())
            .and_then(|o| o.index);
        self.initialized = true;
        self.send(message::result_body(&id, &initialize_result()))
            .await;
    }

    async fn notification(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<Option<ExitStatus>, LspError> {
        if method == "exit" {
            return Ok(Some(self.status(true)));
        }
        // Before initialize, LSP says notifications are dropped; after shutdown nothing is
        // expected but exit.
        if !self.initialized || self.shutdown {
            return Ok(None);
        }
        let sent = match method {
            "initialized" => {
                self.start_index();
                Ok(())
            }
            "textDocument/didOpen" => match self
                .parse::<lsp::DidOpenTextDocumentParams>(method, params)
                .await
            {
                Some(p) => {
                    let doc = DocOpen::from_lsp(&p);
                    self.client.notify(methods::DOC_OPEN, &doc).await
                }
                None => Ok(()),
            },
            "textDocument/didChange" => {
                match self
                    .parse::<lsp::DidChangeTextDocumentParams>(method, params)
                    .await
                {
                    Some(p) => {
                        let doc = DocChange::from_lsp(&p);
                        self.client.notify(methods::DOC_CHANGE, &doc).await
                    }
                    None => Ok(()),
                }
            }
            "textDocument/didClose" => {
                match self
                    .parse::<lsp::DidCloseTextDocumentParams>(method, params)
                    .await
                {
                    Some(p) => {
                        let doc = DocClose {
                            uri: p.text_document.uri.as_str(),
                        };
                        self.client.notify(methods::DOC_CLOSE, &doc).await
                    }
                    None => Ok(()),
                }
            }
            "$/cancelRequest" => {
                if let Some(p) = self.parse::<CancelParams>(method, params).await {
                    self.cancel(&p.id).await;
                }
                Ok(())
            }
            // Unknown notifications (and `$/` ones we do not use) are ignored, as LSP says.
            _ => Ok(()),
        };
        match sent {
            Ok(()) => Ok(None),
            Err(e) if e.is_connection_lost() => Err(self.daemon_lost().await),
            Err(e) => {
                self.log(format!("hearth lsp: {method} not forwarded: {e}"))
                    .await;
                Ok(None)
            }
        }
    }

    /// A notification's params, or `None` (said in the editor's log) when they do not fit.
    async fn parse<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Option<T> {
        match serde_json::from_value(params) {
            Ok(p) => Some(p),
            Err(e) => {
                self.log(format!(
                    "hearth lsp: ignoring {method} with invalid params: {e}"
                ))
                .await;
                None
            }
        }
    }

    /// A warning in the editor's log (LSP's stderr is not where editors look).
    async fn log(&self, message: String) {
        let params = lsp::LogMessageParams {
            typ: lsp::MessageType::WARNING,
            message,
        };
        self.out.notify("window/logMessage", &params).await;
    }

    async fn cancel(&self, id: &Id) {
        let handle = lock(&self.in_flight).remove(id);
        // Unknown or already answered: nothing to do (LSP allows cancels to race answers).
        if let Some(handle) = handle {
            handle.abort();
            self.error(Some(id), codes::REQUEST_CANCELLED, "request cancelled")
                .await;
        }
    }

    fn start_index(&mut self) {
        let wanted = self
            .index_requested
            .unwrap_or(self.options.index_on_initialize);
        let Some(root) = self.root.clone().filter(|_| wanted) else {
            return;
        };
        let job = crate::progress::IndexJob {
            client: self.client.clone(),
            out: self.out.clone(),
            calls: self.editor_calls.clone(),
            root,
            progress: self.progress,
        };
        self.tasks.spawn(job.run());
    }

    /// Starts a request: its hearth call is queued now (see the module on order), then it
    /// runs as a task with an entry in `in_flight`.
    async fn spawn_request(&mut self, id: Id, mut answer: Answer) {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return; // Never closed.
        };
        let first = std::future::poll_fn(|cx| Poll::Ready(answer.as_mut().poll(cx))).await;
        if let Poll::Ready(body) = first {
            return self.send(body).await;
        }
        let table = self.in_flight.clone();
        let out = self.out.clone();
        let key = id.clone();
        // Inserted under the lock the task also needs to remove it, so a task that finishes
        // at once still finds its entry.
        let mut in_flight = lock(&self.in_flight);
        let handle = self.tasks.spawn(async move {
            let body = answer.await;
            drop(permit);
            let mine = lock(&table).remove(&key).is_some();
            if mine {
                let _ = out.send(body).await;
            }
        });
        in_flight.insert(id, handle);
    }

    fn completion(&self, id: Id, params: lsp::CompletionParams) -> Answer {
        let client = self.client.clone();
        let deadline = self.options.completion_deadline;
        let limit = self.options.completion_limit;
        Box::pin(async move {
            let doc = params.text_document_position;
            let position = doc.position;
            let call = mapping::Complete {
                uri: doc.text_document.uri.as_str(),
                position,
                limit,
            };
            let result = client
                .request(methods::COMPLETE, &call)
                .supersede(COMPLETE_KEY)
                .deadline(deadline)
                .send::<CompleteResult>()
                .await;
            match result {
                Ok(r) => message::result_body(&id, &mapping::completion_list(r, position)),
                Err(e) if e.is_superseded() => message::error_body(
                    Some(&id),
                    codes::CONTENT_MODIFIED,
                    "content modified: a newer completion replaced this one",
                ),
                // Late is as good as nothing: an empty, incomplete list makes the editor ask
                // again on the next keystroke instead of showing an error.
                Err(e) if e.is_deadline_exceeded() => message::result_body(
                    &id,
                    &lsp::CompletionList {
                        is_incomplete: true,
                        items: Vec::new(),
                    },
                ),
                Err(e) => hearth_error(&id, methods::COMPLETE, &e),
            }
        })
    }

    fn symbols(&self, id: Id, params: lsp::WorkspaceSymbolParams) -> Answer {
        let client = self.client.clone();
        let limit = self.options.symbol_limit;
        Box::pin(async move {
            let call = mapping::Symbols {
                query: &params.query,
                limit,
            };
            match client
                .request(methods::SYMBOLS, &call)
                .send::<Vec<HearthSymbol>>()
                .await
            {
                Ok(symbols) => message::result_body(&id, &mapping::symbol_information(symbols)),
                Err(e) => hearth_error(&id, methods::SYMBOLS, &e),
            }
        })
    }
}

/// A hearth failure as an LSP error response.
fn hearth_error(id: &Id, method: &str, e: &ClientError) -> Vec<u8> {
    let (code, text) = match e.code() {
        Some(ErrorCode::INVALID_PARAMS) => (codes::INVALID_PARAMS, format!("hearthd: {e}")),
        Some(ErrorCode::METHOD_NOT_FOUND) => (
            codes::REQUEST_FAILED,
            format!("hearthd does not serve the language service ({method}: {e})"),
        ),
        Some(_) => (codes::REQUEST_FAILED, format!("hearthd: {e}")),
        None => (codes::INTERNAL_ERROR, format!("hearth lsp: {e}")),
    };
    message::error_body(Some(id), code, &text)
}

/// The folder to index: the first workspace folder, else `rootUri`, else `rootPath`. The
/// daemon keeps one index, so further folders are not indexed.
fn root_of(params: &lsp::InitializeParams) -> Option<PathBuf> {
    if let Some(folder) = params.workspace_folders.as_ref().and_then(|f| f.first()) {
        return mapping::uri_to_path(folder.uri.as_str());
    }
    #[allow(deprecated)] // Older editors send only these.
    let (root_uri, root_path) = (&params.root_uri, &params.root_path);
    match (root_uri, root_path) {
        (Some(uri), _) => mapping::uri_to_path(uri.as_str()),
        (None, Some(path)) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => None,
    }
}

/// What the gateway offers: incremental sync with open/close, completion, workspace symbols,
/// UTF-16 positions.
fn initialize_result() -> lsp::InitializeResult {
    lsp::InitializeResult {
        capabilities: lsp::ServerCapabilities {
            position_encoding: Some(lsp::PositionEncodingKind::UTF16),
            text_document_sync: Some(lsp::TextDocumentSyncCapability::Options(
                lsp::TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(lsp::TextDocumentSyncKind::INCREMENTAL),
                    ..Default::default()
                },
            )),
            completion_provider: Some(lsp::CompletionOptions {
                resolve_provider: Some(false),
                ..Default::default()
            }),
            workspace_symbol_provider: Some(lsp::OneOf::Left(true)),
            ..Default::default()
        },
        server_info: Some(lsp::ServerInfo {
            name: "hearth lsp".to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }),
    }
}
