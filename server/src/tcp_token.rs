//! The TCP listener's token (PROTOCOL.md §3.4): a Unix socket proves its peer's user with
//! SO_PEERCRED, loopback TCP cannot, so a TCP connection must open with `$/hello` whose params
//! carry `"token"`, the 256-bit secret the daemon writes at start to `tcp.token` (mode 0600)
//! in the socket's 0700 folder — a file only the daemon's user can read. [`TcpToken`] draws,
//! writes and compares it (in constant time, `subtle`); [`check_first_frame`] reads a TCP
//! connection's first frame before the connection is served and either hands back the bytes it
//! read (to be replayed, so the connection then answers that `$/hello` as usual) or refuses
//! with `$/fatal`. [`Replay`] is that replaying stream. Everything else about connections is
//! `connection.rs`'s.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use hearth_protocol::reserved::{self, Fatal};
use hearth_protocol::{Encoder, ErrorCode, Message, Version};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The token file's name, in the socket's folder.
pub const FILE_NAME: &str = "tcp.token";

/// The largest first frame a TCP connection may send: a `$/hello` with a client name and the
/// token fits many times over.
const FIRST_FRAME_MAX: usize = 4096;

/// The secret a TCP client must show.
pub(crate) struct TcpToken(String);

impl TcpToken {
    /// Draws 256 bits from the operating system.
    pub(crate) fn generate() -> io::Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// Writes the token to `folder`/`tcp.token`, mode 0600, whole or not at all.
    pub(crate) fn write(&self, folder: &Path) -> io::Result<PathBuf> {
        let path = folder.join(FILE_NAME);
        let tmp = folder.join(format!(".{FILE_NAME}.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(self.0.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&tmp, &path))
            .inspect_err(|_| {
                let _ = fs::remove_file(&tmp);
            })?;
        Ok(path)
    }

    fn matches(&self, candidate: &[u8]) -> bool {
        candidate.len() == self.0.len() && bool::from(self.0.as_bytes().ct_eq(candidate))
    }
}

#[derive(Deserialize)]
struct TokenParams {
    #[serde(default)]
    token: Option<String>,
}

/// Reads the first frame of a TCP connection within `limit` and checks that it is a `$/hello`
/// carrying the token. `Ok` holds the bytes read, to replay; on refusal the peer has been sent
/// `$/fatal` (when it was still reading) and the connection is to be closed.
pub(crate) async fn check_first_frame<S>(
    stream: &mut S,
    token: &TcpToken,
    max_depth: usize,
    limit: Duration,
) -> Result<Bytes, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let read = async {
        let len = stream
            .read_u32()
            .await
            .map_err(|e| (None, format!("no first frame: {e}")))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > FIRST_FRAME_MAX {
            return Err((
                None,
                format!("a first frame of {len} bytes; a TCP hello is at most {FIRST_FRAME_MAX}"),
            ));
        }
        let mut frame = BytesMut::zeroed(4 + len);
        frame[..4].copy_from_slice(&u32::try_from(len).unwrap_or(0).to_be_bytes());
        stream
            .read_exact(&mut frame[4..])
            .await
            .map_err(|e| (None, format!("the first frame was cut short: {e}")))?;
        let frame = frame.freeze();
        let decoded = Message::decode_any(frame.slice(4..), max_depth);
        let version = decoded.as_ref().ok().map(|d| d.version);
        let shown = match decoded.map(|d| d.message) {
            Ok(Message::Request(req)) if req.method() == reserved::HELLO => {
                rmp_serde::from_slice::<TokenParams>(&req.params)
                    .ok()
                    .and_then(|p| p.token)
            }
            _ => None,
        };
        match shown {
            Some(shown) if token.matches(shown.as_bytes()) => Ok(frame),
            Some(_) => Err((version, "wrong token".to_owned())),
            None => Err((
                version,
                format!(
                    "a TCP connection must start with $/hello whose params carry \"token\" (the \
                 contents of {FILE_NAME} in the daemon's socket folder)"
                ),
            )),
        }
    };
    let outcome = match tokio::time::timeout(limit, read).await {
        Ok(Ok(frame)) => return Ok(frame),
        Ok(Err(e)) => e,
        Err(_) => (
            None,
            format!("no $/hello with the token within {} s", limit.as_secs()),
        ),
    };
    let (version, message) = outcome;
    let fatal = Fatal {
        code: ErrorCode::INVALID_REQUEST.0,
        message: format!("refused: {message}"),
        supported: hearth_protocol::SUPPORTED_VERSIONS.to_vec(),
    };
    let mut out = BytesMut::new();
    let encoder = Encoder::default().with_version(version.unwrap_or(Version::V1));
    if encoder
        .notification(&mut out, reserved::FATAL, &fatal)
        .is_ok()
    {
        // Bounded: a peer that does not read must not hold the task.
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&out)).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
    }
    Err(message)
}

/// A stream that first yields `head` (the bytes [`check_first_frame`] read), then reads from
/// the inner stream; writes go straight through.
pub(crate) struct Replay<S> {
    head: Bytes,
    inner: S,
}

impl<S> Replay<S> {
    pub(crate) fn new(head: Bytes, inner: S) -> Self {
        Self { head, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.head.has_remaining() {
            let n = self.head.len().min(buf.remaining());
            buf.put_slice(&self.head[..n]);
            self.head.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
