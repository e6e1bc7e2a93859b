//! Notifications from the daemon as the caller sees them: [`Notification`] (a method name and
//! raw MessagePack params) and [`Notifications`], the receiving end of a bounded channel that
//! the reader task fills. The reader's policy when the channel is full (drop and count, never
//! block) lives with the reader in `io.rs`.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::error::Error;

/// One notification the daemon sent: `[1, 2, method, params]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The method name, e.g. `"progress"` or `"$/error"`.
    pub method: String,
    /// The params, as raw MessagePack.
    pub params: Bytes,
}

impl Notification {
    /// Deserializes the params into `T`.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, Error> {
        hearth_protocol::from_msgpack(&self.params).map_err(Error::Decode)
    }
}

/// The stream of notifications from the daemon, in the order they arrived. Obtained once per
/// connection from [`Client::notifications`](crate::Client::notifications).
///
/// It holds at most `notification_buffer` of them (see
/// [`ClientConfig`](crate::ClientConfig)); past that, new ones are dropped and counted by
/// [`Client::dropped_notifications`](crate::Client::dropped_notifications). Dropping this
/// receiver discards all later notifications.
#[derive(Debug)]
pub struct Notifications {
    rx: mpsc::Receiver<Notification>,
}

impl Notifications {
    pub(crate) fn new(rx: mpsc::Receiver<Notification>) -> Self {
        Self { rx }
    }

    /// The next notification; `None` once the connection is closed and all buffered ones have
    /// been received.
    pub async fn recv(&mut self) -> Option<Notification> {
        self.rx.recv().await
    }

    /// The next notification if one is buffered, without waiting.
    pub fn try_recv(&mut self) -> Option<Notification> {
        self.rx.try_recv().ok()
    }
}
