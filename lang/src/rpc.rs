//! The service on the wire: [`register`] adds `doc/open`, `doc/change`, `doc/close`
//! (notifications) and `complete`, `symbols`, `workspace/index` (requests) to a
//! `hearth_server::Router`. Params are typed, so params that do not fit are answered -32602 by
//! the router (requests) or dropped with a log line (notifications). Errors become
//! `MethodError`s (requests) or a `$/error` notification to the sending connection
//! (notifications), each with the `uri` in `data`.
//!
//! Ordering: the server calls a notification handler closure synchronously, as it reads the
//! frame, and only then reads the next frame. So each document notification is applied in
//! the closure itself, before it returns a future, and the future only reports an error. A
//! request that follows a notification on the same connection therefore always sees it.
//!
//! What the daemon must also do: call [`LangService::connection_closed`] when a connection ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use hearth_server::protocol::reserved;
use hearth_server::{MethodError, NotificationContext, Overflow, RequestContext, Router};
use serde::Serialize;
use tokio::sync::watch;

use crate::api::{
    ChangeParams, CloseParams, CompleteParams, IndexParams, IndexProgress, OpenParams, Symbol,
    SymbolsParams,
};
use crate::error::LangError;
use crate::service::LangService;

/// `doc/open`.
pub const DOC_OPEN: &str = "doc/open";
/// `doc/change`.
pub const DOC_CHANGE: &str = "doc/change";
/// `doc/close`.
pub const DOC_CLOSE: &str = "doc/close";
/// `complete`.
pub const COMPLETE: &str = "complete";
/// `symbols`.
pub const SYMBOLS: &str = "symbols";
/// `workspace/index`.
pub const WORKSPACE_INDEX: &str = "workspace/index";

/// The params of the `$/error` notification the service sends.
#[derive(Debug, Serialize)]
struct ErrorNotice<'a> {
    code: i64,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<UriData<'a>>,
}

#[derive(Debug, Serialize)]
struct UriData<'a> {
    uri: &'a str,
}

/// Reports a notification's error to its connection; a ready future when there is none.
async fn report(result: Result<(), LangError>, ctx: NotificationContext) {
    if let Err(e) = result {
        tracing::debug!(conn = ctx.connection_id(), "{e}");
        let notice = ErrorNotice {
            code: e.code().0,
            message: e.to_string(),
            data: e.uri().map(|uri| UriData { uri }),
        };
        // The connection may be gone; then nobody is left to tell.
        let _ = ctx.notify(reserved::ERROR, &notice).await;
    }
}

/// Runs a document update, turning a panic into an error: the server calls notification
/// closures outside its panic guard, and a bug here must not take the connection down.
/// (Updates leave documents consistent even if interrupted: see `document.rs`.)
fn guarded(method: &str, update: impl FnOnce() -> Result<(), LangError>) -> Result<(), LangError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(update)).unwrap_or_else(|_| {
        tracing::error!(method, "document update panicked");
        Err(LangError::Internal(format!("{method} failed")))
    })
}

/// Sets the flag when dropped: the request's future is dropped when the caller cancels,
/// its deadline passes or it disconnects (the server's guard drops it when the request's
/// token fires), and that stops the walk running on the blocking thread.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

/// Adds the language service's methods to `router`.
pub fn register(router: Router, service: Arc<LangService>) -> Router {
    let (open, change, close) = (service.clone(), service.clone(), service.clone());
    let (complete, symbols, index) = (service.clone(), service.clone(), service);
    router
        // Each document notification does its work here, synchronously (see the module).
        .notification(DOC_OPEN, move |p: OpenParams, ctx: NotificationContext| {
            let result = guarded(DOC_OPEN, || open.open(ctx.connection_id(), p));
            report(result, ctx)
        })
        .notification(
            DOC_CHANGE,
            move |p: ChangeParams, ctx: NotificationContext| {
                let result = guarded(DOC_CHANGE, || change.change(ctx.connection_id(), &p));
                report(result, ctx)
            },
        )
        .notification(
            DOC_CLOSE,
            move |p: CloseParams, ctx: NotificationContext| {
                let result = guarded(DOC_CLOSE, || close.close(ctx.connection_id(), &p));
                report(result, ctx)
            },
        )
        // Completion is short and latency-sensitive: it runs on the connection's task, with
        // no hop to another thread. The work is inside the future, which the server polls
        // once at dispatch (so it still reads the document as of its place in the stream)
        // under its panic guard.
        .method(COMPLETE, move |p: CompleteParams, ctx: RequestContext| {
            let service = complete.clone();
            async move {
                service
                    .complete(ctx.connection_id(), &p)
                    .map_err(MethodError::from)
            }
        })
        .method(SYMBOLS, move |p: SymbolsParams, _ctx: RequestContext| {
            let service = symbols.clone();
            async move { Ok::<Vec<Symbol>, MethodError>(service.symbols(&p)) }
        })
        .method(
            WORKSPACE_INDEX,
            move |p: IndexParams, ctx: RequestContext| {
                let service = index.clone();
                async move {
                    let cancel = Arc::new(AtomicBool::new(false));
                    let _stop_on_drop = CancelOnDrop(cancel.clone());
                    // Progress crosses from the indexing thread in a watch channel: the thread
                    // only replaces the latest value, never waits; partials leave from here,
                    // and with KeepLatest a slow reader only skips some (gaps in `seq`).
                    let (progress_tx, mut progress_rx) = watch::channel(None);
                    ctx.set_overflow(Overflow::KeepLatest);
                    let mut task = tokio::task::spawn_blocking(move || {
                        service.index_workspace(&p.root, &cancel, |files_done, files_total| {
                            progress_tx.send_replace(Some(IndexProgress {
                                files_done,
                                files_total,
                            }));
                        })
                    });
                    let mut streaming = ctx.is_streaming();
                    let mut sent = None;
                    let joined = loop {
                        tokio::select! {
                            joined = &mut task => break joined,
                            changed = progress_rx.changed(), if streaming => {
                                let progress = *progress_rx.borrow_and_update();
                                if changed.is_err() {
                                    streaming = false; // the thread is done: its result is next
                                } else if progress != sent
                                    && let Some(chunk) = progress
                                {
                                    // Err only once the response is on its way.
                                    let _ = ctx.partial(&chunk).await;
                                    sent = progress;
                                }
                            }
                        }
                    };
                    // The last progress (all files done) even when the result won the race.
                    let last = *progress_rx.borrow();
                    if ctx.is_streaming()
                        && last != sent
                        && let Some(chunk) = last
                    {
                        let _ = ctx.partial(&chunk).await;
                    }
                    match joined {
                        Ok(result) => result.map_err(MethodError::from),
                        Err(e) => Err(LangError::Internal(format!("indexing thread: {e}")).into()),
                    }
                }
            },
        )
}
