//! Partial results of one streaming request (`[2, 4, id, seq, chunk]`): the sequence
//! counter, the overflow policy the handler chose, the chunks held back under a dropping
//! policy, and the flag that closes the stream when the request's response is encoded. It
//! owns the one ordering rule of streams — every partial of a request leaves before its
//! response, none after — and leaves the writing to the connection.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::error::NotifyError;

/// What [`RequestContext::partial`](crate::RequestContext::partial) does when the
/// connection's output is full (the client reads slower than the handler produces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Wait until there is room (backpressure on the handler). The default.
    #[default]
    Wait,
    /// Never wait: keep only the newest chunk that has not gone out; older ones are dropped
    /// and show up as gaps in `seq`. Good for "latest state" subscriptions.
    KeepLatest,
    /// Never wait: hold at most `capacity` chunks that have not gone out, dropping the
    /// oldest (a gap in `seq`) to make room for a new one.
    DropOldest {
        /// Chunks held back at most (at least 1).
        capacity: usize,
    },
}

impl Overflow {
    fn capacity(self) -> Option<usize> {
        match self {
            Self::Wait => None,
            Self::KeepLatest => Some(1),
            Self::DropOldest { capacity } => Some(capacity.max(1)),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    next_seq: u64,
    overflow: Overflow,
    /// Chunks produced under a dropping policy that found the output full, oldest first.
    /// Every one of them is newer than anything already in the connection's queue.
    held: VecDeque<Bytes>,
    /// Set when the response is encoded: nothing more may go out.
    closed: bool,
}

/// See the module docs. Shared by the request's contexts and the connection.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    // A std mutex: nothing is awaited while it is held.
    state: Mutex<State>,
}

impl Stream {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_overflow(&self, overflow: Overflow) {
        self.lock().overflow = overflow;
    }

    /// Numbers the next chunk.
    pub(crate) fn next_seq(&self) -> u64 {
        let mut st = self.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        seq
    }

    /// Sends one encoded partial frame through the connection's queue `tx`, under the
    /// stream's policy.
    pub(crate) async fn send(
        &self,
        tx: &mpsc::Sender<Bytes>,
        frame: Bytes,
    ) -> Result<(), NotifyError> {
        let overflow = self.lock().overflow;
        match overflow.capacity() {
            None => {
                let permit = tx.reserve().await.map_err(|_| NotifyError::Closed)?;
                let mut st = self.lock();
                if st.closed {
                    return Err(NotifyError::Closed);
                }
                // Chunks held under an earlier dropping policy go first.
                while let Some(held) = st.held.pop_front() {
                    if let Err(e) = tx.try_send(held) {
                        st.held.push_front(e.into_inner());
                        st.held.push_back(frame);
                        return Ok(());
                    }
                }
                permit.send(frame);
                Ok(())
            }
            Some(capacity) => {
                let mut st = self.lock();
                if st.closed || tx.is_closed() {
                    return Err(NotifyError::Closed);
                }
                st.held.push_back(frame);
                while let Some(held) = st.held.pop_front() {
                    if let Err(e) = tx.try_send(held) {
                        st.held.push_front(e.into_inner());
                        break;
                    }
                }
                while st.held.len() > capacity {
                    st.held.pop_front();
                }
                Ok(())
            }
        }
    }

    /// Closes the stream for the response: chunks still held are appended to `out` (after
    /// whatever the caller already took from the queue), and later partials are refused.
    pub(crate) fn close_into(&self, out: &mut BytesMut) {
        let mut st = self.lock();
        st.closed = true;
        for frame in st.held.drain(..) {
            out.extend_from_slice(&frame);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[tokio::test]
    async fn keep_latest_never_waits_and_keeps_the_newest() {
        let (tx, mut rx) = mpsc::channel(1);
        let s = Stream::default();
        s.set_overflow(Overflow::KeepLatest);
        for n in 0..5 {
            s.send(&tx, frame(n)).await.unwrap();
        }
        assert_eq!(rx.try_recv().unwrap(), frame(0));
        let mut out = BytesMut::new();
        s.close_into(&mut out);
        assert_eq!(&out[..], &[4]);
        assert!(matches!(
            s.send(&tx, frame(9)).await,
            Err(NotifyError::Closed)
        ));
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn drop_oldest_holds_its_capacity_in_order() {
        let (tx, mut rx) = mpsc::channel(1);
        let s = Stream::default();
        s.set_overflow(Overflow::DropOldest { capacity: 2 });
        for n in 0..6 {
            s.send(&tx, frame(n)).await.unwrap();
        }
        assert_eq!(rx.try_recv().unwrap(), frame(0));
        // Room again: the next chunk pushes the held ones out first, oldest first.
        s.send(&tx, frame(6)).await.unwrap();
        assert_eq!(rx.try_recv().unwrap(), frame(4));
        let mut out = BytesMut::new();
        s.close_into(&mut out);
        assert_eq!(&out[..], &[5, 6]);
    }

    #[tokio::test]
    async fn wait_refuses_after_close() {
        let (tx, mut rx) = mpsc::channel(4);
        let s = Stream::default();
        s.send(&tx, frame(0)).await.unwrap();
        s.close_into(&mut BytesMut::new());
        assert!(s.send(&tx, frame(1)).await.is_err());
        assert_eq!(rx.try_recv().unwrap(), frame(0));
        assert!(rx.try_recv().is_err());
    }
}
