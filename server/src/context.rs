//! What a handler can see while it runs: [`RequestContext`] (the request id, a cancellation
//! token that fires when the caller cancels or disconnects, a way to send notifications to the
//! caller's connection, and the server handle) and [`NotificationContext`] for client
//! notifications. Notifications go through the connection's bounded queue: sending waits when
//! it is full, so a handler cannot flood a client that does not read.

use bytes::{Bytes, BytesMut};
use hearth_protocol::{Encoder, RequestId};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::NotifyError;
use crate::server::ServerHandle;

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
        let mut frame = BytesMut::new();
        self.encoder.notification(&mut frame, method, params)?;
        self.tx
            .send(frame.freeze())
            .await
            .map_err(|_| NotifyError::Closed)
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// What a request handler can see.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub(crate) id: RequestId,
    pub(crate) token: CancellationToken,
    pub(crate) notifier: Notifier,
    pub(crate) server: ServerHandle,
    pub(crate) connection: u64,
}

impl RequestContext {
    /// The caller's id for this request.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// Fires when the caller cancels this request, disconnects, or the daemon gives up on it
    /// at shutdown. The handler's future is dropped at that moment too; the token is for work
    /// the handler moved elsewhere (spawned tasks, blocking threads).
    pub fn cancellation(&self) -> &CancellationToken {
        &self.token
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
