//! Unix-socket streams for hearth's daemon and client that wake their task only for input,
//! and for output only while a write is actually waiting for room.
//!
//! Tokio's `UnixStream` registers for readable *and* writable events for its whole life. With
//! edge-triggered epoll that means a wake-up every time the peer reads what we sent — the
//! socket "becomes writable again" although nothing waits for it. Under a request/response
//! load that is one useless wake-up per call on each side, which, with client and daemon on
//! one core, is an extra context switch per call. The types here register for readable
//! events only, write straight to the socket, and add writable interest only when a write
//! finds the send buffer full:
//!
//! - [`QuietStream`] (the daemon: one task reads and writes) re-registers the socket with
//!   writable interest while a write waits, and back (two `epoll_ctl` calls each way; only a
//!   peer that reads slower than it is answered causes it);
//! - [`split`] (the client: a reader task and a writer task) gives a [`QuietRead`] that owns
//!   the readable registration and a [`QuietWrite`] that, while a write waits, registers a
//!   duplicate of the descriptor for writable events (one descriptor cannot be registered
//!   twice) and drops it once the write went through.
//!
//! Reads go into the buffer's spare capacity without zeroing it first (as Tokio's own streams
//! do); this crate holds the workspace's only `unsafe` for I/O, each block with its `SAFETY`
//! note and tests.

pub mod folder;

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::UnixStream;

/// Registers `stream` with the runtime's reactor for `interest`; on failure, gives the stream
/// back with the error.
#[allow(unsafe_code)]
fn register(
    stream: StdUnixStream,
    interest: Interest,
) -> Result<AsyncFd<StdUnixStream>, (StdUnixStream, io::Error)> {
    // SAFETY: a `std` `UnixStream` owns one open descriptor for its whole life and
    // `as_raw_fd` always returns that one; the `AsyncFd` takes the stream by value, and
    // nothing here replaces or closes it while it is registered (`into_inner` deregisters
    // before handing it back).
    unsafe { AsyncFd::register_with_interest(stream, interest) }.map_err(|e| e.into_parts())
}

/// One `read(2)` into the unfilled part of `buf`, without zeroing it first: read buffers are
/// tens of KiB and mostly receive a few hundred bytes, so zeroing would cost more than the
/// read. Returns how many bytes were read.
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

/// Reads once `fd` is readable; shared by both stream types.
fn poll_read_registered(
    fd: &AsyncFd<StdUnixStream>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    loop {
        let mut guard = ready!(fd.poll_read_ready(cx))?;
        let wanted = buf.remaining();
        match read_into(guard.get_inner(), buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
            Err(e) => return Poll::Ready(Err(e)),
            Ok(n) => {
                // A short read emptied the socket: the next read would only say `WouldBlock`,
                // so skip it and wait for the next readable event (as Tokio's streams do).
                if n > 0 && n < wanted {
                    guard.clear_ready();
                }
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// An accepted Unix stream served by one task: registered for readable events, plus writable
/// ones only while a write waits.
#[derive(Debug)]
pub struct QuietStream {
    /// `None` only for the moment of a re-registration, or after one failed (then every
    /// operation fails).
    fd: Option<AsyncFd<StdUnixStream>>,
    /// Whether `fd` is registered for writable events too.
    watching_writes: bool,
}

impl QuietStream {
    /// Takes over an accepted stream from Tokio's registration.
    pub fn new(stream: UnixStream) -> io::Result<Self> {
        let std = stream.into_std()?;
        Ok(Self {
            fd: Some(register(std, Interest::READABLE).map_err(|(_, e)| e)?),
            watching_writes: false,
        })
    }

    fn fd(&self) -> io::Result<&AsyncFd<StdUnixStream>> {
        self.fd.as_ref().ok_or_else(gone)
    }

    /// Registers again with `writable` interest added or removed.
    fn watch_writes(&mut self, writable: bool) -> io::Result<()> {
        let Some(fd) = self.fd.take() else {
            return Err(gone());
        };
        let interest = |writable| {
            if writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            }
        };
        match register(fd.into_inner(), interest(writable)) {
            Ok(fd) => {
                self.fd = Some(fd);
                self.watching_writes = writable;
                Ok(())
            }
            Err((stream, e)) => {
                // Keep the old registration if we can; the stream is unusable otherwise.
                self.fd = register(stream, interest(self.watching_writes)).ok();
                Err(e)
            }
        }
    }
}

fn gone() -> io::Error {
    io::Error::other("the socket could not be registered with the runtime again")
}

impl AsyncRead for QuietStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_registered(self.get_mut().fd()?, cx, buf)
    }
}

impl AsyncWrite for QuietStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.watching_writes {
            match this.fd()?.get_ref().write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => this.watch_writes(true)?,
                done => return Poll::Ready(done),
            }
        }
        loop {
            let fd = this.fd()?;
            let mut guard = ready!(fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().write(buf)) {
                Ok(Ok(n)) => {
                    drop(guard);
                    // There was room again: stop listening for it.
                    this.watch_writes(false)?;
                    return Poll::Ready(Ok(n));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the socket; nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.fd()?.get_ref().shutdown(std::net::Shutdown::Write))
    }
}

/// Splits a connected stream into its quiet halves.
pub fn split(stream: UnixStream) -> io::Result<(QuietRead, QuietWrite)> {
    let std = stream.into_std()?;
    let fd = Arc::new(register(std, Interest::READABLE).map_err(|(_, e)| e)?);
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
pub struct QuietRead(Arc<AsyncFd<StdUnixStream>>);

/// Writes to the socket directly; see the crate docs for how it waits for room.
#[derive(Debug)]
pub struct QuietWrite {
    /// The socket (shared with the reader, which owns its registration).
    stream: Arc<AsyncFd<StdUnixStream>>,
    /// While a write waits for room: a duplicate descriptor registered for writable events.
    waiting: Option<AsyncFd<StdUnixStream>>,
}

impl AsyncRead for QuietRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_registered(&self.0, cx, buf)
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
                    register(dup, Interest::WRITABLE).map_err(|(_, e)| e)?
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

    /// Both directions work, including a write far larger than the socket buffer, which has
    /// to wait for the peer to read (the path that re-registers).
    #[tokio::test]
    async fn a_quiet_stream_carries_bytes_both_ways_and_waits_for_room() {
        let (ours, mut peer) = UnixStream::pair().expect("a socket pair");
        let mut quiet = QuietStream::new(ours).expect("registers");
        let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| i as u8).collect();
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 4 * 1024 * 1024];
            peer.read_exact(&mut got).await.expect("reads it all");
            peer.write_all(b"done").await.expect("answers");
            let mut rest = Vec::new();
            peer.read_to_end(&mut rest).await.expect("reads to EOF");
            (got, rest)
        });
        quiet.write_all(&big).await.expect("writes it all");
        assert!(!quiet.watching_writes, "back to readable-only");
        let mut answer = [0u8; 4];
        quiet
            .read_exact(&mut answer)
            .await
            .expect("reads the answer");
        assert_eq!(&answer, b"done");
        quiet.write_all(b"tail").await.expect("writes");
        quiet.shutdown().await.expect("half-closes");
        let (got, rest) = reader.await.expect("join");
        assert!(got == big, "the big write arrived intact");
        assert_eq!(rest, b"tail");
    }

    /// Both halves work, including a write far larger than the socket buffer, which has to
    /// wait for the peer to read (the path with the duplicate descriptor).
    #[tokio::test]
    async fn quiet_halves_carry_bytes_both_ways_and_wait_for_room() {
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
