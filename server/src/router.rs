//! The method table: [`Router`] maps method names to async handlers. Handlers are registered
//! with typed params and results (serde) or with raw MessagePack bytes; either way they are
//! erased here into one shape the connection can run. Params are deserialized when the request
//! is dispatched (bad params are answered -32602 without starting anything), and the result is
//! serialized straight into the connection's output buffer when the handler finishes.
//!
//! What a handler's future does with cancellation, panics or deadlines is not handled here;
//! the connection wraps every future (see `connection.rs`).

use rustc_hash::FxHashMap;
use std::future::Future;
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

type RequestFn =
    dyn Fn(Bytes, RequestContext) -> Result<HandlerFuture, ErrorObject> + Send + Sync + 'static;
type NotificationFn = dyn Fn(Bytes, NotificationContext) -> Result<NotificationFuture, ErrorObject>
    + Send
    + Sync
    + 'static;

/// A registered request handler, with its index in the per-method counters.
pub(crate) struct MethodEntry {
    pub(crate) index: usize,
    pub(crate) call: Box<RequestFn>,
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
    methods: FxHashMap<String, MethodEntry>,
    notifications: FxHashMap<String, Box<NotificationFn>>,
    on_disconnect: Vec<Box<DisconnectFn>>,
}

type DisconnectFn = dyn Fn(u64) + Send + Sync + 'static;

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("methods", &self.methods.keys().collect::<Vec<_>>())
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
            Box::new(move |params: Bytes, ctx: RequestContext| {
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
            }),
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
            Box::new(move |params: Bytes, ctx: RequestContext| {
                let fut = handler(params, ctx);
                Ok(Box::pin(async move {
                    match fut.await {
                        Ok(raw) => Ok(Reply::Raw(raw)),
                        Err(e) => Err(e.object),
                    }
                }) as HandlerFuture)
            }),
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

    fn insert_method(mut self, name: &str, call: Box<RequestFn>) -> Self {
        let index = match self.methods.get(name) {
            Some(entry) => entry.index,
            None => self.methods.len(),
        };
        self.methods
            .insert(name.to_owned(), MethodEntry { index, call });
        self
    }

    /// The names of the registered request methods, in no particular order.
    pub fn methods(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(String::as_str)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&MethodEntry> {
        self.methods.get(name)
    }

    pub(crate) fn get_notification(&self, name: &str) -> Option<&NotificationFn> {
        self.notifications.get(name).map(|b| b.as_ref())
    }

    /// Method names by counter index.
    pub(crate) fn names_by_index(&self) -> Vec<String> {
        let mut names = vec![String::new(); self.methods.len()];
        for (name, entry) in &self.methods {
            names[entry.index] = name.clone();
        }
        names
    }
}
