//! Requests from the daemon (protocol version 2): the methods this client serves
//! ([`Client::serve`](crate::Client::serve)), the handlers running for the daemon, and the one
//! answer each daemon request gets.
//!
//! The reader task never runs a handler and never waits: for every daemon request it only
//! spawns a task ([`Serve::spawn`]) and notes the task's abort handle under the request id, so
//! that a cancel from the daemon can stop it. The task waits for one of [`MAX_HANDLERS`] places,
//! runs the handler (a panic becomes -32603), and queues its answer with the outbound queue's
//! bounded `push_with` — it, not the reader, waits when the queue is full. Methods nobody
//! serves are answered -32601 the same way. What is *not* here: the client's own calls and
//! their ids (`pending.rs`) — the two directions have separate id spaces.

use std::collections::hash_map::Entry;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use bytes::Bytes;
use hearth_protocol::{ErrorCode, ErrorObject, Request, RequestId};
use rustc_hash::FxHashMap;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;

use crate::connection::Connection;

/// How many handlers run at once for the daemon; further daemon requests wait (as tasks, not
/// in the reader) for one to finish. hearthd keeps at most 64 of its own requests in flight
/// per connection, so with it nothing ever waits here.
pub(crate) const MAX_HANDLERS: usize = 64;

/// A handler's future, boxed: handlers of different types share one table.
type HandlerFuture = Pin<Box<dyn Future<Output = Result<Bytes, ErrorObject>> + Send>>;

/// A served method: raw MessagePack params in, a raw MessagePack result or an error out.
pub(crate) type Handler = Arc<dyn Fn(Bytes) -> HandlerFuture + Send + Sync>;

/// Boxes a caller's handler into a [`Handler`].
pub(crate) fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Bytes) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Bytes, ErrorObject>> + Send + 'static,
{
    Arc::new(move |params| Box::pin(f(params)) as HandlerFuture)
}

pub(crate) struct Serve {
    /// Method name → handler. Written by `Client::serve`, read once per daemon request; a
    /// `std` lock, as nothing is awaited while it is held.
    methods: RwLock<FxHashMap<String, Handler>>,
    /// Daemon request id → the task answering it, until the task is done (or aborted). A
    /// `std::sync::Mutex`: held only to insert, remove or abort, never across an await.
    running: Mutex<FxHashMap<RequestId, AbortHandle>>,
    /// Places for running handlers.
    places: Arc<Semaphore>,
}

impl Serve {
    pub(crate) fn new() -> Self {
        Self {
            methods: RwLock::new(FxHashMap::default()),
            running: Mutex::new(FxHashMap::default()),
            places: Arc::new(Semaphore::new(MAX_HANDLERS)),
        }
    }

    fn running(&self) -> MutexGuard<'_, FxHashMap<RequestId, AbortHandle>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers (or replaces) the handler for `method`.
    pub(crate) fn insert(&self, method: &str, handler: Handler) {
        self.methods
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(method.to_owned(), handler);
    }

    fn lookup(&self, method: &str) -> Option<Handler> {
        self.methods
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(method)
            .cloned()
    }

    /// For the reader: starts the task that answers `request`, on `runtime` (the connection's,
    /// whoever read the request). Never waits.
    ///
    /// A request whose id is still being served is a daemon bug (ids are unique among its
    /// requests in flight); it is dropped with a warning, so that the first keeps its one
    /// answer.
    pub(crate) fn spawn(conn: &Arc<Connection>, request: Request, runtime: &Handle) {
        let id = request.id;
        let handler = conn.serve.lookup(request.method());
        let mut running = conn.serve.running();
        let Entry::Vacant(slot) = running.entry(id) else {
            tracing::warn!(
                id = id.get(),
                "the daemon reused the id of a request still served"
            );
            return;
        };
        // Spawned under the lock: the task removes its own entry when done, and taking the
        // lock makes that come after this insert.
        let task = runtime.spawn(answer(conn.clone(), request, handler));
        slot.insert(task.abort_handle());
    }

    /// A cancel from the daemon: stops the handler for `id`, if it still runs. The request
    /// is then not answered — the daemon has given up on it (PROTOCOL.md §15.3 lets the
    /// client answer or not).
    pub(crate) fn cancel(&self, id: RequestId) {
        match self.running().remove(&id) {
            Some(task) => {
                task.abort();
                tracing::trace!(
                    id = id.get(),
                    "daemon cancelled its request; handler aborted"
                );
            }
            None => tracing::trace!(id = id.get(), "cancel for a daemon request not running"),
        }
    }

    /// Stops every handler: the connection is gone, and their answers with it.
    pub(crate) fn abort_all(&self) {
        for (_, task) in self.running().drain() {
            task.abort();
        }
    }
}

/// The task for one daemon request: run its handler (or refuse it) and queue the one answer.
async fn answer(conn: Arc<Connection>, request: Request, handler: Option<Handler>) {
    let id = request.id;
    let outcome = match handler {
        None => Err(ErrorObject::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("this client does not serve `{}`", request.method()),
        )),
        Some(handler) => {
            // Closed only if the semaphore is dropped, which it never is while we hold `conn`.
            let _place = conn.serve.places.clone().acquire_owned().await;
            run_catching_panics(handler(request.params)).await
        }
    };
    // Out of the table before the answer goes: a cancel from now on finds nothing to abort,
    // and the daemon may reuse the id only once it has the answer.
    conn.serve.running().remove(&id);
    let encoder = conn.encoder();
    let queued = conn
        .outbound
        .push_with(|buf| match &outcome {
            Ok(result) => encoder.response_raw(buf, id, result),
            Err(error) => encoder.error_response(buf, id, error),
        })
        .await;
    match queued {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            // Too large for a frame (or not one MessagePack value): answer that instead, so the
            // daemon still gets exactly one answer.
            let error = ErrorObject::new(
                ErrorCode::INTERNAL_ERROR,
                format!("the client could not send its answer: {e}"),
            );
            let _ = conn
                .outbound
                .push_with(|buf| encoder.error_response(buf, id, &error))
                .await;
        }
        // The connection is gone; nobody is waiting for the answer.
        Err(_) => {}
    }
}

/// Runs a handler's future; a panic in it becomes -32603 instead of ending the task without
/// an answer.
async fn run_catching_panics(mut fut: HandlerFuture) -> Result<Bytes, ErrorObject> {
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => std::task::Poll::Ready(Err(ErrorObject::new(
                ErrorCode::INTERNAL_ERROR,
                "the client's handler panicked",
            ))),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_an_internal_error() {
        let h = handler(|_| async { panic!("boom") });
        let err = run_catching_panics(h(Bytes::new()))
            .await
            .expect_err("a panic is an error");
        assert_eq!(err.code, ErrorCode::INTERNAL_ERROR);
        let ok = handler(|p| async move { Ok(p) });
        assert_eq!(
            run_catching_panics(ok(Bytes::from_static(b"\x01"))).await,
            Ok(Bytes::from_static(b"\x01"))
        );
    }
}
