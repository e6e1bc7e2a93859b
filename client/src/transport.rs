//! The two halves of a connected Unix socket, arranged so that the connection's tasks wake
//! only for answers to read, and for room to write only while a write is waiting for it.
//!
//! Tokio's `UnixStream` registers for readable *and* writable events for its whole life. With
//! edge-triggered epoll that is a wake-up each time the daemon reads what we sent — the
//! socket "becomes writable again" though nothing waits for it — so one useless wake-up of
//! the client per call, which costs a context switch when client and daemon share a core.
//!
//! Here the socket is registered for readable events only ([`QuietRead`], used by the reader
//! task), and [`QuietWrite`] (the writer task) writes to it directly. Only when a write finds
//! the send buffer full does the writer register a duplicate of the descriptor for writable
//! events (the same descriptor cannot be registered twice), wait, and drop it once the write
//! went through. The daemon's side does the same with one task (`hearth-server`'s
//! `transport.rs`).

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::UnixStream;

/// Splits a connected stream into its quiet halves.
pub(crate) fn split(stream: UnixStream) -> io::Result<(QuietRead, QuietWrite)> {
    let std = stream.into_std()?;
    let fd = Arc::new(register(std, Interest::READABLE)?);
    Ok((
        QuietRead(fd.clone()),
        QuietWrite {
            stream: fd,
            waiting: None,
        },
    ))
}

/// Reads from the socket, woken by readable events only.
#[derive(Debug)]
pub(crate) struct QuietRead(Arc<AsyncFd<StdUnixStream>>);

/// Writes to the socket directly; see the module docs for how it waits for room.
#[derive(Debug)]
pub(crate) struct QuietWrite {
    /// The socket (shared with the reader, which owns its registration).
    stream: Arc<AsyncFd<StdUnixStream>>,
    /// While a write waits for room: a duplicate descriptor registered for writable events.
    waiting: Option<AsyncFd<StdUnixStream>>,
}

/// Registers `stream` with the runtime's reactor for `interest`.
#[allow(unsafe_code)]
fn register(stream: StdUnixStream, interest: Interest) -> io::Result<AsyncFd<StdUnixStream>> {
    // SAFETY: a `std` `UnixStream` owns one open descriptor for its whole life and
    // `as_raw_fd` always returns that one; the `AsyncFd` takes the stream by value, and
    // nothing here replaces or closes it while it is registered.
    unsafe { AsyncFd::register_with_interest(stream, interest) }.map_err(io::Error::from)
}

/// One `read(2)` into the unfilled part of `buf`, without zeroing it first: the read buffer
/// is tens of KiB and mostly receives a few hundred bytes, so zeroing would cost more than
/// the read (Tokio's own streams read into uninitialized memory the same way).
#[allow(unsafe_code)]
fn read_into(stream: &StdUnixStream, buf: &mut ReadBuf<'_>) -> io::Result<usize> {
    // SAFETY: nothing below de-initializes bytes of `buf`: the kernel only writes into them.
    let unfilled = unsafe { buf.unfilled_mut() };
    // SAFETY: `unfilled` is valid for writes of `unfilled.len()` bytes for the whole call,
    // and read(2) writes at most that many.
    let n = unsafe {
        libc::read(
            stream.as_raw_fd(),
            unfilled.as_mut_ptr().cast(),
            unfilled.len(),
        )
    };
    // A negative return is an error; otherwise it fits in usize and is <= unfilled.len().
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: the kernel initialized exactly the first `n` bytes of `unfilled`.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Ok(n)
}

impl AsyncRead for QuietRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let wanted = buf.remaining();
            match read_into(guard.get_inner(), buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) => return Poll::Ready(Err(e)),
                Ok(n) => {
                    // A short read emptied the socket: the next read would only say
                    // `WouldBlock`, so skip it and wait for the next readable event (as
                    // Tokio's own streams do).
                    if n > 0 && n < wanted {
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl AsyncWrite for QuietWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let waiting = match this.waiting.take() {
            Some(waiting) => waiting,
            None => match this.stream.get_ref().write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let dup = this.stream.get_ref().try_clone()?;
                    register(dup, Interest::WRITABLE)?
                }
                done => return Poll::Ready(done),
            },
        };
        loop {
            let mut guard = match waiting.poll_write_ready(cx) {
                Poll::Ready(guard) => guard?,
                Poll::Pending => {
                    // Keep the registration (and its readiness) for the next poll.
                    this.waiting = Some(waiting);
                    return Poll::Pending;
                }
            };
            match guard.try_io(|fd| fd.get_ref().write(buf)) {
                // Room again (or a real error): the duplicate is dropped, and with it the
                // interest in writable events.
                Ok(done) => return Poll::Ready(done),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the socket; nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.get_ref().shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Both halves work, including a write far larger than the socket buffer, which has to
    /// wait for the peer to read (the path with the duplicate descriptor).
    #[tokio::test]
    async fn carries_bytes_both_ways_and_waits_for_room() {
        let (ours, mut peer) = UnixStream::pair().expect("a socket pair");
        let (mut rd, mut wr) = split(ours).expect("registers");
        let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| i as u8).collect();
        let echo = tokio::spawn(async move {
            let mut got = vec![0u8; 4 * 1024 * 1024];
            peer.read_exact(&mut got).await.expect("reads it all");
            peer.write_all(b"done").await.expect("answers");
            let mut rest = Vec::new();
            peer.read_to_end(&mut rest).await.expect("reads to EOF");
            (got, rest)
        });
        wr.write_all(&big).await.expect("writes it all");
        assert!(
            wr.waiting.is_none(),
            "the duplicate is gone once the write went through"
        );
        let mut answer = [0u8; 4];
        rd.read_exact(&mut answer).await.expect("reads the answer");
        assert_eq!(&answer, b"done");
        wr.write_all(b"tail").await.expect("writes");
        wr.shutdown().await.expect("half-closes");
        let (got, rest) = echo.await.expect("join");
        assert!(got == big, "the big write arrived intact");
        assert_eq!(rest, b"tail");
    }
}
