//! `GET /v2/ws`: one WebSocket, one dedicated connection to the daemon's socket, and envelopes
//! relayed both ways unchanged — each binary message is one version 2 MessagePack envelope,
//! exactly a frame's body on the socket. The relay adds and strips the 4-byte length, refuses
//! messages larger than the daemon's `max_frame` (close 1009), anything but a version 2
//! envelope (close 1008: no version 1 and no change of version) and text messages (close
//! 1003). Closing the WebSocket closes the socket connection, and the daemon cancels that
//! connection's calls; the daemon closing it closes the WebSocket. It does not look inside
//! envelopes beyond their version: ids, cancels, partials and daemon requests are the
//! browser's and the daemon's business.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::{BufMut, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tracing::debug;

use crate::api::bridge_error;
use crate::serve::Shared;

/// `GET /v2/ws`: connects to the daemon, then upgrades.
pub(crate) async fn upgrade(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    let Ok(permit) = shared.ws_permits.clone().try_acquire_owned() else {
        return bridge_error(StatusCode::SERVICE_UNAVAILABLE, "too many WebSockets open");
    };
    let socket = match UnixStream::connect(shared.link.socket()).await {
        Ok(socket) => socket,
        Err(e) => {
            return bridge_error(
                StatusCode::BAD_GATEWAY,
                &format!("cannot reach the daemon: {e}"),
            );
        }
    };
    let max_frame = shared.max_frame;
    let idle = shared.limits.ws_idle_timeout;
    ws.max_message_size(max_frame)
        .max_frame_size(max_frame)
        .on_upgrade(move |ws| relay(ws, socket, max_frame, idle, permit))
}

/// How a relay ended, and what close frame (if any) the browser gets.
#[derive(Debug)]
enum End {
    /// The browser closed or vanished; nothing more to say to it.
    Browser,
    /// Close with this code and reason.
    Close(u16, String),
}

async fn relay(
    ws: WebSocket,
    socket: UnixStream,
    max_frame: usize,
    idle: Duration,
    _permit: OwnedSemaphorePermit,
) {
    let (read, mut write) = socket.into_split();
    let (mut to_browser, mut from_browser) = ws.split();
    let mut frames = FramedRead::new(
        read,
        LengthDelimitedCodec::builder()
            .max_frame_length(max_frame)
            .new_codec(),
    );
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let end = tokio::select! {
        end = up(&mut from_browser, &mut write, max_frame, start, &last) => end,
        end = down(&mut frames, &mut to_browser, start, &last) => end,
        end = idle_watch(start, &last, idle) => end,
    };
    debug!(?end, "websocket relay ends");
    // Closing the daemon connection first makes the daemon cancel this WebSocket's calls.
    drop(write);
    drop(frames);
    if let End::Close(code, reason) = end {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = to_browser.send(Message::Close(Some(frame))).await;
    }
}

fn touch(start: Instant, last: &AtomicU64) {
    let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    last.store(ms, Ordering::Relaxed);
}

/// Browser → daemon.
async fn up(
    from_browser: &mut SplitStream<WebSocket>,
    write: &mut OwnedWriteHalf,
    max_frame: usize,
    start: Instant,
    last: &AtomicU64,
) -> End {
    let mut frame = BytesMut::new();
    loop {
        let message = match from_browser.next().await {
            None | Some(Ok(Message::Close(_))) => return End::Browser,
            Some(Err(e)) => return browser_error(e),
            Some(Ok(message)) => message,
        };
        touch(start, last);
        let body = match message {
            Message::Binary(body) => body,
            Message::Text(_) => {
                return End::Close(
                    1003,
                    "binary messages only: one MessagePack envelope each".into(),
                );
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return End::Browser,
        };
        if body.len() > max_frame {
            return End::Close(
                1009,
                format!("message larger than max_frame ({max_frame} bytes)"),
            );
        }
        if !is_v2_envelope(&body) {
            return End::Close(
                1008,
                "protocol version 2 only: each message must be a [2, ...] envelope".into(),
            );
        }
        let Ok(len) = u32::try_from(body.len()) else {
            return End::Close(1009, "message too large".into());
        };
        frame.clear();
        frame.reserve(4 + body.len());
        frame.put_u32(len);
        frame.put_slice(&body);
        if write.write_all(&frame).await.is_err() {
            return End::Close(1011, "the daemon closed the connection".into());
        }
    }
}

/// Daemon → browser.
async fn down(
    frames: &mut FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    to_browser: &mut SplitSink<WebSocket, Message>,
    start: Instant,
    last: &AtomicU64,
) -> End {
    loop {
        match frames.next().await {
            None => return End::Close(1000, "the daemon closed the connection".into()),
            Some(Err(e)) => return End::Close(1011, format!("bad frame from the daemon: {e}")),
            Some(Ok(body)) => {
                touch(start, last);
                if to_browser
                    .send(Message::Binary(body.freeze()))
                    .await
                    .is_err()
                {
                    return End::Browser;
                }
            }
        }
    }
}

/// Ends the relay when nothing has moved for `idle`.
async fn idle_watch(start: Instant, last: &AtomicU64, idle: Duration) -> End {
    loop {
        let since = Duration::from_millis(last.load(Ordering::Relaxed));
        let deadline = start + since + idle;
        if Instant::now() >= deadline {
            return End::Close(1001, format!("idle for {} s", idle.as_secs()));
        }
        tokio::time::sleep_until(deadline).await;
    }
}

fn browser_error(e: axum::Error) -> End {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match e.into_inner().downcast_ref::<WsError>() {
        Some(WsError::Capacity(_)) => End::Close(1009, "message larger than max_frame".into()),
        Some(WsError::Protocol(_)) => End::Close(1002, "WebSocket protocol error".into()),
        _ => End::Browser,
    }
}

/// Whether `body` starts as a version 2 envelope: a MessagePack array whose first element is
/// the positive fixint 2. Everything after that the daemon checks.
pub(crate) fn is_v2_envelope(body: &[u8]) -> bool {
    matches!(
        body,
        [0x91..=0x9f, 0x02, ..] | [0xdc, _, _, 0x02, ..] | [0xdd, _, _, _, _, 0x02, ..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_version_2_envelopes_pass() {
        assert!(is_v2_envelope(&[0x95, 0x02, 0x00, 0x01, 0xa0, 0xc0]));
        assert!(is_v2_envelope(&[0xdc, 0x00, 0x05, 0x02]));
        assert!(
            !is_v2_envelope(&[0x94, 0x01, 0x00, 0x01, 0xa0]),
            "version 1"
        );
        assert!(!is_v2_envelope(&[0x95, 0x03]), "version 3");
        assert!(!is_v2_envelope(&[0x82, 0x02]), "a map");
        assert!(!is_v2_envelope(&[]));
    }
}
