//! What a handler can see while it runs: [`RequestContext`] (the request id, a cancellation
//! token that fires when the caller cancels or disconnects, the request's deadline and
//! whether it streams, a way to send notifications and partial results to the caller's
//! connection, requests to the client (version 2), and the server handle) and
//! [`NotificationContext`] for client notifications. Notifications, partials and requests
//! to the client go through the connection's bounded queue: sending waits when it is full
//! (unless a stream chose to drop, or `try_notify` was used, which fails instead), so a
//! handler cannot flood a client that does not read.

use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use hearth_protocol::{Encoder, RequestId, Version};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::ClientRequests;
use crate::error::{ClientRequestError, NotifyError};
use crate::server::ServerHandle;
use crate::stream::{Overflow, Stream};

/// Sends notifications to one connection.
#[derive(Clone, Debug)]
pub struct Notifier {
    pub(crate) tx: mpsc::Sender<Bytes>,
    pub(crate) encoder: Encoder,
}

impl Notifier {
    /// Sends `[1, 2, method, params]` to the connection, waiting while its queue is full.
    pub async fn notify<P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<(), NotifyError> {
        let frame = self.frame(method, params)?;
        self.tx.send(frame).await.map_err(|_| NotifyError::Closed)
    }

    /// The notification's whole frame.
    fn frame<P: Serialize + ?Sized>(&self, method: &str, params: &P) -> Result<Bytes, NotifyError> {
        let mut frame = BytesMut::new();
        self.encoder.notification(&mut frame, method, params)?;
        Ok(frame.freeze())
    }

    /// Sends `[1, 2, method, params]` to the connection if its queue has room, without
    /// waiting: for code that cannot await, such as a synchronous handler
    /// ([`Router::sync_method`](crate::Router::sync_method)), whose notifications sent this
    /// way leave before its answer. A full queue is [`NotifyError::Full`]: the notification
    /// is dropped, and sending it later (or with [`notify`](Self::notify), which waits) is the
    /// caller's choice.
    pub fn try_notify<P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<(), NotifyError> {
        let frame = self.frame(method, params)?;
        self.tx.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NotifyError::Full,
            mpsc::error::TrySendError::Closed(_) => NotifyError::Closed,
        })
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A request's cancellation token, made only when someone asks for it.
///
/// Most handlers finish on their first poll and never look at their token; making one for
/// each of them (a child of the connection's token: two locks of the parent, a node and a
/// push into the parent's child list, then the same undone at drop) cost about 450
/// instructions per call. The connection keeps one spare slot and lends it to each request it
/// launches: a handler that asks for [`RequestContext::cancellation`] creates the token then,
/// as a child of the connection's token (so a dropped connection still cancels work moved
/// elsewhere); a handler that does not finish on its first poll has its token created by the
/// connection right after that poll, for the in-flight table, before any cancel can be read.
/// A slot still referenced after its request ended (a context clone kept by moved work) is
/// left to its holders and the connection makes a new spare.
#[derive(Debug)]
pub(crate) struct TokenSlot {
    /// The connection's token, parent of the request's.
    parent: CancellationToken,
    token: OnceLock<CancellationToken>,
}

impl TokenSlot {
    /// An empty slot whose token will be a child of `parent`.
    pub(crate) fn new(parent: CancellationToken) -> Self {
        Self {
            parent,
            token: OnceLock::new(),
        }
    }

    /// A slot holding `token` already (a request that was queued: the table made its token).
    pub(crate) fn with_token(parent: CancellationToken, token: CancellationToken) -> Self {
        Self {
            parent,
            token: OnceLock::from(token),
        }
    }

    /// The request's token, created on first use.
    pub(crate) fn token(&self) -> &CancellationToken {
        self.token.get_or_init(|| self.parent.child_token())
    }

    /// Whether the request is cancelled, without creating its token: a token nobody asked
    /// for yet can only be cancelled through its parent.
    fn is_cancelled(&self) -> bool {
        match self.token.get() {
            Some(token) => token.is_cancelled(),
            None => self.parent.is_cancelled(),
        }
    }

    /// Empties the slot for the next request (the caller holds the only reference).
    pub(crate) fn reset(&mut self) {
        self.token.take();
    }
}

/// What a request handler can see.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub(crate) id: RequestId,
    pub(crate) token: Arc<TokenSlot>,
    pub(crate) notifier: Notifier,
    pub(crate) server: ServerHandle,
    pub(crate) connection: u64,
    /// Version 2 only: when the caller stops waiting.
    pub(crate) deadline: Option<Instant>,
    /// Version 2 only: set when the caller asked for partial results.
    pub(crate) stream: Option<Arc<Stream>>,
    /// Version 2 only: requests to the client.
    pub(crate) client: Option<Arc<ClientRequests>>,
}

impl RequestContext {
    /// The protocol version the caller's connection speaks.
    pub fn version(&self) -> Version {
        self.notifier.encoder.version()
    }

    /// When the caller stops waiting for this request (its `deadline_ms`), if it set one.
    /// The daemon stops the handler at that moment and answers -32002 itself.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the caller asked for partial results (`"stream": true`).
    pub fn is_streaming(&self) -> bool {
        self.stream.is_some()
    }

    /// Chooses what [`partial`](Self::partial) does when the connection's output is full:
    /// wait (the default) or drop chunks, which the client sees as gaps in `seq`.
    pub fn set_overflow(&self, overflow: Overflow) {
        if let Some(stream) = &self.stream {
            stream.set_overflow(overflow);
        }
    }

    /// Sends one partial result `[2, 4, id, seq, chunk]` to the caller. `seq` counts every
    /// chunk produced, from 0. Without a stream this does nothing and returns `Ok`. Under
    /// the default [`Overflow::Wait`] it waits while the connection's output is full; under
    /// a dropping policy it never waits. Every partial leaves before the request's
    /// response; once the response is on its way this returns [`NotifyError::Closed`].
    pub async fn partial<T: Serialize + ?Sized>(&self, chunk: &T) -> Result<(), NotifyError> {
        let Some(stream) = &self.stream else {
            return Ok(());
        };
        let seq = stream.next_seq();
        let mut frame = BytesMut::new();
        self.notifier
            .encoder
            .partial(&mut frame, self.id, seq, chunk)?;
        stream.send(&self.notifier.tx, frame.freeze()).await
    }

    /// Sends a request to the client (version 2) and waits for its result, at most
    /// `Limits::client_request_timeout`. Giving up (the timeout, or this future dropped
    /// because the request was cancelled) sends the client a cancel.
    pub async fn request<P: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R, ClientRequestError> {
        let params = hearth_protocol::to_msgpack(params)?;
        let raw = self.request_raw(method, &params).await?;
        Ok(hearth_protocol::from_msgpack(&raw)?)
    }

    /// [`request`](Self::request) with params and result as raw MessagePack.
    pub async fn request_raw(
        &self,
        method: &str,
        params: &[u8],
    ) -> Result<Bytes, ClientRequestError> {
        match &self.client {
            Some(client) => client.call(&self.notifier, method, params).await,
            None => Err(ClientRequestError::Version1),
        }
    }

    /// The caller's id for this request.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// Fires when the caller cancels this request, disconnects, or the daemon gives up on it
    /// at shutdown. The handler's future is dropped at that moment too; the token is for work
    /// the handler moved elsewhere (spawned tasks, blocking threads).
    pub fn cancellation(&self) -> &CancellationToken {
        self.token.token()
    }

    /// Whether the request has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Sends a notification to the caller's connection (see [`Notifier::notify`]).
    pub async fn notify<P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<(), NotifyError> {
        self.notifier.notify(method, params).await
    }

    /// Sends a notification to the caller's connection without waiting (see
    /// [`Notifier::try_notify`]); what a synchronous handler sends this way leaves before its
    /// answer.
    pub fn try_notify<P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<(), NotifyError> {
        self.notifier.try_notify(method, params)
    }

    /// A handle for sending notifications to this connection after the request finishes.
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// The server this request runs in (for stats or to start shutdown).
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// A number identifying the connection in logs.
    pub fn connection_id(&self) -> u64 {
        self.connection
    }
}

/// What a client-notification handler can see.
#[derive(Clone, Debug)]
pub struct NotificationContext {
    pub(crate) notifier: Notifier,
    pub(crate) server: ServerHandle,
    pub(crate) connection: u64,
}

impl NotificationContext {
    /// Sends a notification back to the connection that sent this one.
    pub async fn notify<P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<(), NotifyError> {
        self.notifier.notify(method, params).await
    }

    /// The server this notification arrived at.
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// A number identifying the connection in logs.
    pub fn connection_id(&self) -> u64 {
        self.connection
    }
}
