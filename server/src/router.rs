//! The method table: [`Router`] maps method names to handlers. Handlers are registered with
//! typed params and results (serde) or with raw MessagePack bytes, and are either async (a
//! future, run concurrently with the connection's other requests) or synchronous (a function
//! that answers at once, called inline on the connection's task); each kind is erased here
//! into one shape the connection can run. Params are deserialized when the request is
//! dispatched (bad params are answered -32602 without starting anything), and the result is
//! serialized straight into the connection's output buffer when the handler finishes.
//!
//! What a handler's future does with cancellation or deadlines is not handled here; the
//! connection wraps every future (see `connection.rs`). A synchronous handler's panic is caught
//! here, around the handler alone, so that serializing its result happens outside, exactly as
//! for an async handler.

use rustc_hash::FxHashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use hearth_protocol::{EncodeError, Encoder, ErrorObject, RequestId};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::{NotificationContext, RequestContext};
use crate::error::MethodError;

/// A handler's successful result, written as a whole response frame by [`Reply::write`].
pub(crate) enum Reply {
    /// MessagePack bytes from a raw handler, copied as they are (no allocation per call).
    Raw(Bytes),
    /// A typed result, serialized when it is written.
    Typed(Box<WriteTyped>),
}

/// Serializes a typed result into its response frame.
pub(crate) type WriteTyped =
    dyn FnOnce(&Encoder, &mut BytesMut, RequestId) -> Result<(), EncodeError> + Send;

impl Reply {
    /// Appends the response frame for request `id` to `dst` (whole, or nothing on error).
    pub(crate) fn write(
        self,
        enc: &Encoder,
        dst: &mut BytesMut,
        id: RequestId,
    ) -> Result<(), EncodeError> {
        match self {
            Self::Raw(raw) => enc.response_raw(dst, id, &raw),
            Self::Typed(write) => write(enc, dst, id),
        }
    }
}

/// What a running request resolves to.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, ErrorObject>> + Send>>;

/// What a running client notification resolves to.
pub(crate) type NotificationFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub(crate) type RequestFn =
    dyn Fn(Bytes, RequestContext) -> Result<HandlerFuture, ErrorObject> + Send + Sync + 'static;

/// How a synchronous handler ended, as its erased form hands it to the connection's `answer`
/// callback. A typed result is lent as a function writing its response frame, so nothing is
/// boxed for it: it lives on the stack of the call that made it.
pub(crate) enum SyncOutcome<'a> {
    /// MessagePack bytes from a raw handler, copied as they are.
    Raw(Bytes),
    /// A typed result: writes the whole response frame for the id it is given (or nothing).
    Typed(&'a dyn Fn(&Encoder, &mut BytesMut, RequestId) -> Result<(), EncodeError>),
    /// The handler's error, or the -32602 for params that did not fit.
    Error(ErrorObject),
    /// The handler panicked; the panic's message.
    Panicked(String),
}

/// A synchronous handler, erased: called with the params, the connection's reused context and
/// the callback that answers; it calls `answer` exactly once, before it returns.
pub(crate) type SyncFn = dyn for<'c> Fn(Bytes, &'c RequestContext, &mut dyn FnMut(SyncOutcome<'_>))
    + Send
    + Sync
    + 'static;

/// The two kinds of request handler.
pub(crate) enum Call {
    /// Returns a future, which the connection polls (and keeps, if it does not finish at once).
    Async(Box<RequestFn>),
    /// Answers before returning; the connection calls it inline (see [`Router::sync_method`]).
    Sync(Box<SyncFn>),
}
type NotificationFn = dyn Fn(Bytes, NotificationContext) -> Result<NotificationFuture, ErrorObject>
    + Send
    + Sync
    + 'static;

/// A registered request handler, with its name and its index (in the router's entries and in
/// the per-method counters).
pub(crate) struct MethodEntry {
    pub(crate) name: String,
    pub(crate) index: usize,
    pub(crate) call: Call,
}

/// The index of the method a connection looked up last ([`Router::get_cached`]); `Default`
/// is none yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LastMethod(usize);

impl Default for LastMethod {
    fn default() -> Self {
        Self(usize::MAX)
    }
}

/// The set of methods a daemon serves.
///
/// ```
/// use hearth_server::{MethodError, RequestContext, Router};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Add { a: i64, b: i64 }
///
/// let router = Router::new()
///     .method("add", |p: Add, _ctx: RequestContext| async move {
///         Ok::<_, MethodError>(p.a + p.b)
///     });
/// assert!(router.methods().any(|m| m == "add"));
/// ```
#[derive(Default)]
pub struct Router {
    // A fast unkeyed hash: every method is looked up on every request, and the keys are fixed
    // when the router is built — a peer only looks names up, so it cannot pile up collisions.
    // Name -> index in `entries`.
    methods: FxHashMap<String, usize>,
    /// The request handlers, by index.
    entries: Vec<MethodEntry>,
    notifications: FxHashMap<String, Box<NotificationFn>>,
    on_disconnect: Vec<Box<DisconnectFn>>,
}

type DisconnectFn = dyn Fn(u64) + Send + Sync + 'static;

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("methods", &self.methods().collect::<Vec<_>>())
            .field(
                "notifications",
                &self.notifications.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Router {
    /// An empty router. The server adds `$/hello` and `$/stats` itself.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a request handler with typed params and result. A method registered twice
    /// keeps the last handler.
    ///
    /// The params are deserialized from the request's MessagePack into `P` (a struct may
    /// arrive as a map with field names); if that fails the caller gets -32602 and the handler
    /// is not called. The result `R` is serialized with structs as maps.
    pub fn method<P, R, F, Fut>(self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(P, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, MethodError>> + Send + 'static,
    {
        let method = name.to_owned();
        self.insert_method(
            name,
            Call::Async(Box::new(move |params: Bytes, ctx: RequestContext| {
                let params: P = hearth_protocol::from_msgpack(&params)
                    .map_err(|e| crate::params::invalid_params::<P>(&method, &params, e))?;
                let fut = handler(params, ctx);
                Ok(Box::pin(async move {
                    match fut.await {
                        Ok(result) => Ok(Reply::Typed(Box::new(
                            move |enc: &Encoder, dst: &mut BytesMut, id: RequestId| {
                                enc.response(dst, id, &result)
                            },
                        ))),
                        Err(e) => Err(e.object),
                    }
                }) as HandlerFuture)
            })),
        )
    }

    /// Registers a request handler that takes the params as raw MessagePack and returns a raw
    /// MessagePack result, copied to the wire as is. The returned bytes must be exactly one
    /// well-formed MessagePack value: they are not checked.
    pub fn raw_method<F, Fut>(self, name: &str, handler: F) -> Self
    where
        F: Fn(Bytes, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, MethodError>> + Send + 'static,
    {
        self.insert_method(
            name,
            Call::Async(Box::new(move |params: Bytes, ctx: RequestContext| {
                let fut = handler(params, ctx);
                Ok(Box::pin(async move {
                    match fut.await {
                        Ok(raw) => Ok(Reply::Raw(raw)),
                        Err(e) => Err(e.object),
                    }
                }) as HandlerFuture)
            })),
        )
    }

    /// Registers a request handler that computes its result without waiting: typed params
    /// and result, as [`method`](Self::method), but a plain function instead of an async one.
    ///
    /// It is called on the connection's own task, inline, as the request is read: no future
    /// is made and no context is built for the call (the handler borrows one the connection
    /// reuses), which makes it the cheapest kind of handler — for methods such as `echo` or a
    /// lookup in memory. It must therefore be quick and must not block: while it runs, its
    /// connection reads and answers nothing. Anything that waits — I/O, a lock held across
    /// work, a timer, [`RequestContext::partial`], a request to the client — belongs in an
    /// async [`method`](Self::method). Work it hands elsewhere can take
    /// [`RequestContext::cancellation`] (fires when the connection goes away) or a
    /// [`RequestContext::notifier`] along.
    ///
    /// To the caller it is the same as an async handler that finishes on its first poll: one
    /// answer; params that do not fit `P` answered -32602 without calling it; a [`MethodError`]
    /// answered as it is; a panic answered -32603 while the connection goes on serving;
    /// notifications it queued with [`RequestContext::try_notify`] sent before its answer;
    /// deadlines, supersede, the wait queue and `max_in_flight` applied as to any request.
    ///
    /// ```
    /// use hearth_server::{MethodError, RequestContext, Router};
    ///
    /// let router = Router::new().sync_method("double", |n: i64, _ctx: &RequestContext| {
    ///     n.checked_mul(2).ok_or_else(|| MethodError::invalid_params("too large to double"))
    /// });
    /// assert!(router.methods().any(|m| m == "double"));
    /// ```
    pub fn sync_method<P, R, F>(self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(P, &RequestContext) -> Result<R, MethodError> + Send + Sync + 'static,
    {
        let method = name.to_owned();
        self.insert_method(
            name,
            Call::Sync(Box::new(
                move |params: Bytes,
                      ctx: &RequestContext,
                      answer: &mut dyn FnMut(SyncOutcome<'_>)| {
                    let params: P = match hearth_protocol::from_msgpack(&params) {
                        Ok(params) => params,
                        Err(e) => {
                            let error = crate::params::invalid_params::<P>(&method, &params, e);
                            return answer(SyncOutcome::Error(error));
                        }
                    };
                    run_sync(
                        answer,
                        || handler(params, ctx),
                        |result, answer| {
                            answer(SyncOutcome::Typed(
                                &|enc: &Encoder, dst: &mut BytesMut, id: RequestId| {
                                    enc.response(dst, id, &result)
                                },
                            ))
                        },
                    )
                },
            )),
        )
    }

    /// [`sync_method`](Self::sync_method) with params and result as raw MessagePack, as
    /// [`raw_method`](Self::raw_method): the returned bytes must be exactly one well-formed
    /// MessagePack value, and are copied to the wire unchecked. The same rules apply: it runs
    /// inline on the connection's task and must neither block nor wait.
    ///
    /// ```
    /// use hearth_server::Router;
    ///
    /// // Answers with the params it was sent, byte for byte (hearthd's `echo`).
    /// let router = Router::new().sync_raw_method("echo", |params, _ctx| Ok(params));
    /// assert!(router.methods().any(|m| m == "echo"));
    /// ```
    pub fn sync_raw_method<F>(self, name: &str, handler: F) -> Self
    where
        F: Fn(Bytes, &RequestContext) -> Result<Bytes, MethodError> + Send + Sync + 'static,
    {
        self.insert_method(
            name,
            Call::Sync(Box::new(
                move |params: Bytes,
                      ctx: &RequestContext,
                      answer: &mut dyn FnMut(SyncOutcome<'_>)| {
                    run_sync(
                        answer,
                        || handler(params, ctx),
                        |raw, answer| answer(SyncOutcome::Raw(raw)),
                    )
                },
            )),
        )
    }

    /// Registers a handler for a notification from clients. Notifications are never answered;
    /// params that do not deserialize into `P` are logged and dropped.
    pub fn notification<P, F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        F: Fn(P, NotificationContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let method = name.to_owned();
        self.notifications.insert(
            name.to_owned(),
            Box::new(move |params: Bytes, ctx: NotificationContext| {
                let params: P = hearth_protocol::from_msgpack(&params)
                    .map_err(|e| crate::params::invalid_params::<P>(&method, &params, e))?;
                Ok(Box::pin(handler(params, ctx)) as NotificationFuture)
            }),
        );
        self
    }

    /// Registers a function called once when a connection ends, for any reason (the peer
    /// left, `$/fatal`, shutdown, the serving future dropped), with the connection's id (as
    /// [`RequestContext::connection_id`] reports it). It runs on the connection's task and
    /// must not block.
    pub fn on_disconnect<F>(mut self, hook: F) -> Self
    where
        F: Fn(u64) + Send + Sync + 'static,
    {
        self.on_disconnect.push(Box::new(hook));
        self
    }

    pub(crate) fn disconnected(&self, connection: u64) {
        for hook in &self.on_disconnect {
            hook(connection);
        }
    }

    fn insert_method(mut self, name: &str, call: Call) -> Self {
        let entry = |index| MethodEntry {
            name: name.to_owned(),
            index,
            call,
        };
        match self.methods.get(name) {
            Some(&index) => self.entries[index] = entry(index),
            None => {
                let index = self.entries.len();
                self.entries.push(entry(index));
                self.methods.insert(name.to_owned(), index);
            }
        }
        self
    }

    /// The names of the registered request methods, in no particular order.
    pub fn methods(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The handler for `name`, checking `last` (the connection's previous method) before the
    /// map: a connection mostly calls one method over and over (echo, completions as the user
    /// types), and comparing one short name costs a third of hashing it and probing the map.
    pub(crate) fn get_cached(&self, name: &str, last: &mut LastMethod) -> Option<&MethodEntry> {
        if let Some(entry) = self.entries.get(last.0)
            && entry.name == name
        {
            return Some(entry);
        }
        let index = *self.methods.get(name)?;
        *last = LastMethod(index);
        self.entries.get(index)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&MethodEntry> {
        self.entries.get(*self.methods.get(name)?)
    }

    pub(crate) fn get_notification(&self, name: &str) -> Option<&NotificationFn> {
        self.notifications.get(name).map(|b| b.as_ref())
    }

    /// Method names by counter index.
    pub(crate) fn names_by_index(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name.clone()).collect()
    }
}

/// Runs a synchronous handler and answers for it: its result through `ok`, its error as it
/// is, a panic as its message (the connection goes on serving).
fn run_sync<T>(
    answer: &mut dyn FnMut(SyncOutcome<'_>),
    handler: impl FnOnce() -> Result<T, MethodError>,
    ok: impl FnOnce(T, &mut dyn FnMut(SyncOutcome<'_>)),
) {
    match std::panic::catch_unwind(AssertUnwindSafe(handler)) {
        Ok(Ok(result)) => ok(result, answer),
        Ok(Err(e)) => answer(SyncOutcome::Error(e.object)),
        Err(panic) => answer(SyncOutcome::Panicked(panic_message(&*panic))),
    }
}

/// A panic's message, for the -32603 answer and the log.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new()
            .sync_raw_method("echo", |p, _ctx| Ok(p))
            .sync_raw_method("ping", |_, _ctx| Ok(Bytes::from_static(&[0xc0])))
            .sync_raw_method("echo", |p, _ctx| Ok(p)) // registered twice: keeps its index
    }

    fn name(entry: Option<&MethodEntry>) -> Option<&str> {
        entry.map(|e| e.name.as_str())
    }

    #[test]
    fn the_last_method_is_found_again_and_a_different_one_replaces_it() {
        let r = router();
        assert_eq!(r.names_by_index(), ["echo", "ping"]);
        let mut last = LastMethod::default();
        assert_eq!(name(r.get_cached("echo", &mut last)), Some("echo"));
        assert_eq!(last.0, 0);
        assert_eq!(name(r.get_cached("echo", &mut last)), Some("echo"));
        assert_eq!(name(r.get_cached("ping", &mut last)), Some("ping"));
        assert_eq!(last.0, 1);
        // An unknown name (a prefix of a known one, too) is not found and changes nothing.
        assert_eq!(name(r.get_cached("pin", &mut last)), None);
        assert_eq!(name(r.get_cached("nope", &mut last)), None);
        assert_eq!(last.0, 1);
        assert_eq!(name(r.get_cached("echo", &mut last)), Some("echo"));
        assert_eq!(name(r.get("ping")), Some("ping"));
        assert_eq!(r.get("echo").map(|e| e.index), Some(0));
    }
}
