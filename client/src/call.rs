//! Calls with protocol version 2 options: [`CallBuilder`] (from
//! [`Client::request`](crate::Client::request)) adds a deadline or a supersede key and sends,
//! or turns the call into a [`CallStream`] of partial results and the final result.
//!
//! The params are serialized when the builder is made (into the thread's scratch buffer, so a
//! call without options allocates nothing more than [`Client::call`](crate::Client::call)
//! does) and copied into the request frame when it is sent. Waiting, cancelling and the
//! pending table are `client.rs`'s and `pending.rs`'s; this module only shapes the request and,
//! for a stream, drives those steps from `poll_next`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_core::Stream;
use hearth_protocol::{EncodeError, RequestId, RequestOptions, Text, Version};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{Client, Outgoing, Scratch, abandon, call_within, deadline_ms};
use crate::connection::Connection;
use crate::error::Error;

/// A call being set up: add options, then [`send`](Self::send),
/// [`send_raw`](Self::send_raw) or [`stream`](Self::stream). Made by
/// [`Client::request`](crate::Client::request).
///
/// Options need protocol version 2 ([`Client::protocol_version`]); on a version 1 connection a
/// call with any option fails when sent, with [`Error::Unsupported`], without reaching the
/// daemon. The client's default timeout applies to `send` and `send_raw` as to
/// [`Client::call`], but not to streams.
#[must_use = "a call does nothing until it is sent"]
pub struct CallBuilder<'a> {
    client: &'a Client,
    method: &'a str,
    /// The params as MessagePack, or why they could not be serialized.
    params: Result<Scratch, Error>,
    options: RequestOptions,
}

impl fmt::Debug for CallBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallBuilder")
            .field("method", &self.method)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'a> CallBuilder<'a> {
    pub(crate) fn new<P: Serialize + ?Sized>(
        client: &'a Client,
        method: &'a str,
        params: &P,
    ) -> Self {
        let mut scratch = Scratch::take();
        let serialized = {
            let mut writer = (&mut scratch.0).writer();
            params.serialize(&mut rmp_serde::Serializer::new(&mut writer).with_struct_map())
        };
        Self {
            client,
            method,
            params: serialized
                .map(|()| scratch)
                .map_err(|e| Error::Encode(EncodeError::Serialize(e))),
            options: RequestOptions::default(),
        }
    }

    /// The daemon should answer within `d` of reading the request, or stop and answer
    /// -32002 ([`Error::is_deadline_exceeded`]). Sent as `deadline_ms`, rounded up to whole
    /// milliseconds. Unlike a timeout, the clock is the daemon's: the call still waits for the
    /// daemon's answer (or the default timeout, if one is configured).
    pub fn deadline(mut self, d: Duration) -> Self {
        self.options.deadline_ms = Some(deadline_ms(d));
        self
    }

    /// A latest-wins key: when the daemon reads a newer request with the same key from this
    /// connection while this one is still in flight, this one is stopped and answered -32801
    /// ([`Error::is_superseded`]).
    pub fn supersede(mut self, key: impl Into<String>) -> Self {
        self.options.supersede = Some(Text::from(key.into()));
        self
    }

    /// Sends the call and deserializes the result into `R`.
    ///
    /// Errors as [`Client::call`], plus [`Error::Unsupported`] for options on a version 1
    /// connection. Dropping the future before it resolves cancels the request at the daemon.
    pub async fn send<R: DeserializeOwned>(self) -> Result<R, Error> {
        let raw = self.send_raw().await?;
        hearth_protocol::from_msgpack(&raw).map_err(Error::Decode)
    }

    /// Sends the call and returns the result as raw MessagePack.
    pub async fn send_raw(self) -> Result<Bytes, Error> {
        let params = self.params?;
        let conn = self.client.conn_arc();
        let options = if self.options.is_default() {
            None
        } else {
            check_version(conn)?;
            Some(&self.options)
        };
        let id = conn.next_id();
        let request = Outgoing::Raw {
            method: self.method,
            params: &params.0,
            options,
        };
        call_within(conn, id, request, self.client.default_timeout()).await
    }

    /// Sends the call with `"stream": true` and returns its events: the partial results in
    /// the order they arrive, then the result. See [`CallStream`].
    pub fn stream(mut self) -> CallStream {
        let conn = self.client.conn_arc().clone();
        let id = conn.next_id();
        self.options.stream = true;
        let frame = self.params.and_then(|params| {
            check_version(&conn)?;
            let mut frame = BytesMut::new();
            conn.encoder()
                .request_raw_with(&mut frame, id, self.method, &params.0, &self.options)
                .map_err(Error::Encode)?;
            Ok(frame)
        });
        let state = match frame {
            Ok(frame) => State::Sending(Box::pin(send_streamed(conn.clone(), id, frame))),
            Err(e) => State::Failed(e),
        };
        CallStream { conn, id, state }
    }
}

/// Request options need version 2.
fn check_version(conn: &Connection) -> Result<(), Error> {
    match conn.version() {
        Version::V1 => Err(Error::Unsupported {
            what: "request options (deadline, supersede, stream)",
            version: Version::V1.number(),
        }),
        _ => Ok(()),
    }
}

/// One event of a [`CallStream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A partial result: the daemon's `seq` for it (from 0; a gap means chunks were dropped,
    /// by the daemon or by this client, see [`CallStream`]) and the chunk as MessagePack.
    Partial {
        /// The chunk's number.
        seq: u64,
        /// The chunk, as raw MessagePack.
        chunk: Bytes,
    },
    /// The final result, as raw MessagePack. Nothing follows it.
    Result(Bytes),
}

/// A streamed call (`"stream": true`), as a [`Stream`] of [`StreamEvent`]s: the partial
/// results in order, then exactly one [`StreamEvent::Result`] — or exactly one `Err` instead,
/// for an error answer or a lost connection — and then `None`.
///
/// Dropping it before the end cancels the call at the daemon, like dropping a call's future.
///
/// **When the consumer falls behind**: the client buffers at most 256 partial results per
/// stream. It does not stop reading the socket (that would also hold up every other call's
/// answer), so further partials are dropped until the consumer catches up, counted in
/// [`Client::dropped_partials`], and visible as a gap in `seq`. The final result is never
/// dropped. When the connection dies, buffered partials are discarded and the error comes
/// next.
///
/// The request is sent when the stream is first polled. The client's default timeout does
/// not apply; use [`CallBuilder::deadline`].
pub struct CallStream {
    conn: Arc<Connection>,
    id: RequestId,
    state: State,
}

enum State {
    /// Could not be sent; the error is the one event.
    Failed(Error),
    /// Waiting for an in-flight place and room in the queue.
    Sending(Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>),
    /// At the daemon; events come from the pending table.
    Receiving,
    /// The last event was given.
    Done,
}

impl fmt::Debug for CallStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Failed(_) => "failed",
            State::Sending(_) => "sending",
            State::Receiving => "receiving",
            State::Done => "done",
        };
        f.debug_struct("CallStream")
            .field("id", &self.id)
            .field("state", &state)
            .finish()
    }
}

/// Takes an in-flight place and a stream slot for `id`, and queues the frame.
async fn send_streamed(conn: Arc<Connection>, id: RequestId, frame: BytesMut) -> Result<(), Error> {
    conn.pending
        .insert_stream(id)
        .await
        .map_err(|reason| Error::Closed { reason })?;
    // If the frame is never queued (the queue closed, or this future was dropped while
    // waiting for room), the slot and its place go.
    struct Unsent<'a>(Option<(&'a Connection, RequestId)>);
    impl Drop for Unsent<'_> {
        fn drop(&mut self) {
            if let Some((conn, id)) = self.0 {
                abandon(conn, id, false);
            }
        }
    }
    let mut unsent = Unsent(Some((&conn, id)));
    conn.outbound
        .push(&frame)
        .await
        .map_err(|_| conn.closed_error())?;
    unsent.0 = None;
    Ok(())
}

impl Stream for CallStream {
    type Item = Result<StreamEvent, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Failed(_) => {
                    let State::Failed(e) = std::mem::replace(&mut this.state, State::Done) else {
                        unreachable!("matched just above")
                    };
                    return Poll::Ready(Some(Err(e)));
                }
                State::Sending(send) => match send.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) => this.state = State::Receiving,
                    Poll::Ready(Err(e)) => {
                        this.state = State::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                State::Receiving => {
                    return match this.conn.pending.poll_stream(this.id, cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(crate::pending::Streamed::Partial(seq, chunk)) => {
                            Poll::Ready(Some(Ok(StreamEvent::Partial { seq, chunk })))
                        }
                        Poll::Ready(crate::pending::Streamed::Done(reply)) => {
                            this.state = State::Done;
                            Poll::Ready(Some(reply.map(StreamEvent::Result)))
                        }
                    };
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }
}

impl Drop for CallStream {
    fn drop(&mut self) {
        // While sending, the sending future's own guard cleans up when it is dropped.
        if matches!(self.state, State::Receiving) {
            abandon(&self.conn, self.id, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_builders_cross_threads() {
        fn send<T: Send>() {}
        send::<CallStream>();
        fn unpin<T: Unpin>() {}
        unpin::<CallStream>();
        fn spawnable<F: Future + Send>(_: F) {}
        let _ =
            |client: Client| spawnable(async move { client.request("m", &1u8).send::<u8>().await });
    }
}
