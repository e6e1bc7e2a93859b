//! Requests the daemon makes of its client (version 2, PROTOCOL.md §15.3): the daemon's own
//! id space, the table of requests waiting for the client's answer, the bound on how many
//! may wait at once, the timeout, and the cancel `[2, 3, id]` sent when the daemon gives up
//! (timeout, or the handler that asked was dropped). Frames travel through the connection's
//! handler queue like notifications; answers are routed here by the connection, which reads
//! them whatever its in-flight limit says.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hearth_protocol::{ErrorObject, RequestId};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::context::Notifier;
use crate::error::ClientRequestError;

type Answer = Result<Bytes, ErrorObject>;

#[derive(Debug, Default)]
struct Pending {
    next_id: u64,
    waiting: HashMap<RequestId, oneshot::Sender<Answer>>,
    closed: bool,
}

/// See the module docs. One per version 2 connection, shared by its handlers.
#[derive(Debug)]
pub(crate) struct ClientRequests {
    // A std mutex: nothing is awaited while it is held.
    pending: Mutex<Pending>,
    permits: Semaphore,
    timeout: Duration,
    /// Ids the daemon gave up on, for the connection to send `[2, 3, id]`. Unbounded, but
    /// each id enters once, when it leaves `waiting`, and at most `permits` ids wait at a
    /// time: the queue grows only by requests that got a permit and sent their frame through
    /// the bounded handler queue, so it holds at most `permits` + that queue's length.
    cancels: mpsc::UnboundedSender<RequestId>,
}

impl ClientRequests {
    pub(crate) fn new(max: usize, timeout: Duration) -> (Self, mpsc::UnboundedReceiver<RequestId>) {
        let (cancels, rx) = mpsc::unbounded_channel();
        let this = Self {
            pending: Mutex::new(Pending::default()),
            permits: Semaphore::new(max.max(1)),
            timeout,
            cancels,
        };
        (this, rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Routes the client's answer to the request waiting for it; unknown ids are ignored.
    pub(crate) fn resolve(&self, id: RequestId, answer: Answer) -> bool {
        let waiter = self.lock().waiting.remove(&id);
        match waiter {
            Some(tx) => {
                let _ = tx.send(answer);
                true
            }
            None => false,
        }
    }

    /// The connection ended: every waiting request fails with `Closed`.
    pub(crate) fn close(&self) {
        let mut p = self.lock();
        p.closed = true;
        p.waiting.clear();
        self.permits.close();
    }

    /// Sends `[2, 0, id, method, params]` to the client and waits for its answer, at most
    /// the configured timeout (waiting for a free slot counts).
    pub(crate) async fn call(
        &self,
        notifier: &Notifier,
        method: &str,
        params: &[u8],
    ) -> Result<Bytes, ClientRequestError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let _permit = match tokio::time::timeout_at(deadline, self.permits.acquire()).await {
            Err(_) => return Err(ClientRequestError::Timeout(self.timeout)),
            Ok(Err(_)) => return Err(ClientRequestError::Closed),
            Ok(Ok(permit)) => permit,
        };
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut p = self.lock();
            if p.closed {
                return Err(ClientRequestError::Closed);
            }
            p.next_id += 1;
            let id = RequestId::new(p.next_id);
            p.waiting.insert(id, tx);
            id
        };
        // From here on, giving up for any reason (timeout, this future dropped) cancels.
        let guard = GiveUp { table: self, id };
        let mut frame = BytesMut::new();
        notifier
            .encoder
            .request_raw(&mut frame, id, method, params)?;
        tokio::time::timeout_at(deadline, notifier.tx.send(frame.freeze()))
            .await
            .map_err(|_| ClientRequestError::Timeout(self.timeout))?
            .map_err(|_| ClientRequestError::Closed)?;
        let answer = match tokio::time::timeout_at(deadline, rx).await {
            Err(_) => return Err(ClientRequestError::Timeout(self.timeout)),
            Ok(Err(_)) => return Err(ClientRequestError::Closed),
            Ok(Ok(answer)) => answer,
        };
        drop(guard); // already out of `waiting`: sends nothing
        answer.map_err(ClientRequestError::Client)
    }
}

/// Cancels a daemon request that is still waiting when dropped.
struct GiveUp<'a> {
    table: &'a ClientRequests,
    id: RequestId,
}

impl Drop for GiveUp<'_> {
    fn drop(&mut self) {
        let removed = self.table.lock().waiting.remove(&self.id).is_some();
        if removed {
            let _ = self.table.cancels.send(self.id);
        }
    }
}
