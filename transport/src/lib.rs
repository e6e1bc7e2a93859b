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
//! do), and reads and writes are made as direct system calls (`read`, and `sendto` with
//! `MSG_NOSIGNAL`), past libc's cancellation-point bookkeeping; this crate holds the
//! workspace's only `unsafe` for I/O, each block with its `SAFETY` note and tests.
//!
//! **A short poll before parking** (issue 13, the editor's idle path). Once a side has sent
//! something it expects an answer (the client) or the next request (the daemon), and a
//! parked thread is expensive to wake: on a virtual machine whose idle CPUs halt, the wake-up
//! of a parked peer costs tens of µs, more than the call itself. So after a write, a read
//! that finds nothing polls the socket again for at most [`SPIN`] since the write, before
//! the task parks as usual, giving its CPU away between polls (`sched_yield`, so that a peer
//! on the same CPU runs). Whether it is worth it is learnt per stream ([`Spin`]): a wait
//! whose input came later than [`SPIN`] makes the next waits park at once, 1, 2, 4 … up to
//! 64 of them, before one tries again (64 at once after input ten times too late: the CPU
//! was taken by another program, whose time slice a yield can cost); one that came in time
//! resets that. Only waits that polled count: a wait that parked at once says nothing about
//! polling (on a busy machine it is answered in time, and counting it made every other wait
//! poll there). An idle connection (nothing sent, nothing expected) never polls, and a daemon
//! whose client pauses between calls (an editor between keystrokes) soon polls only once in
//! 64 answers. [`SPIN_ENV`] (`HEARTH_SPIN_US`) sets the poll's length (at most
//! [`MAX_SPIN`]); `0` turns it off. The poll runs inside the read (the worker is held for at
//! most that long), not by waking the task again, which in Tokio's multi-thread runtime would
//! unpark another worker each time.

pub mod folder;

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

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
///
/// The system call is made directly, not through libc's `read`: in a multi-threaded process
/// glibc brackets every cancellation point with two atomic updates of the thread's
/// cancellation state (`__pthread_enable_asynccancel` / `__pthread_disable_asynccancel`),
/// ~3 % of the pinned sequential bench's samples between this and [`send`], and Rust never
/// cancels a thread. Errors are `errno` as libc's `read` reports it (`EAGAIN` is
/// `WouldBlock`, `EINTR` is `Interrupted`).
#[allow(unsafe_code)]
fn read_into(stream: &StdUnixStream, buf: &mut ReadBuf<'_>) -> io::Result<usize> {
    // SAFETY: nothing below de-initializes bytes of `buf`: the kernel only writes into them.
    let unfilled = unsafe { buf.unfilled_mut() };
    // SAFETY: `unfilled` is valid for writes of `unfilled.len()` bytes for the whole call,
    // and read(2) writes at most that many; every argument is passed as a full register
    // (the descriptor widened to `c_long`), as the kernel's system call ABI takes them.
    let n = unsafe {
        libc::syscall(
            libc::SYS_read,
            libc::c_long::from(stream.as_raw_fd()),
            unfilled.as_mut_ptr(),
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

/// One `send(2)` of `buf` with `MSG_NOSIGNAL` (a peer that closed its end is an `EPIPE` error,
/// `BrokenPipe`, never a `SIGPIPE`), as std's `Write::write` for a Unix stream does, but made
/// as a direct `sendto` system call (see [`read_into`] for why). Returns how many bytes went;
/// errors as std's `write` reports them: `EAGAIN` is `WouldBlock`, and `EINTR` is returned as
/// `Interrupted` (not retried here: the callers' loops and `write_all` retry it, as they did
/// for std's `write`; on these non-blocking sockets the kernel does not sleep in `send`, so
/// it does not happen in practice).
#[allow(unsafe_code)]
fn send(stream: &StdUnixStream, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call, and sendto(2)
    // only reads them; a null address of length 0 is `send(2)` (a connected socket). Every
    // argument is passed as a full register (the descriptor, flags and address length
    // widened to `c_long`), as the kernel's system call ABI takes them.
    let n = unsafe {
        libc::syscall(
            libc::SYS_sendto,
            libc::c_long::from(stream.as_raw_fd()),
            buf.as_ptr(),
            buf.len(),
            libc::c_long::from(libc::MSG_NOSIGNAL),
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::c_long,
        )
    };
    // A negative return is an error; otherwise it fits in usize and is <= buf.len().
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
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

/// How long after a write a read that finds nothing keeps polling before its task parks: a
/// little more than a small call's round trip between two awake processes on the machine of
/// docs/PERFORMANCE.md (10-20 µs), far less than a keystroke.
pub const SPIN: Duration = Duration::from_micros(50);

/// The environment variable that sets how long the poll lasts, in µs, instead of [`SPIN`]:
/// `0` turns it off (every wait parks at once, as before issue 13), for a machine where
/// polling costs more than it saves, and to compare the two with one build.
pub const SPIN_ENV: &str = "HEARTH_SPIN_US";

/// The longest poll [`SPIN_ENV`] can ask for: the read holds its thread that long.
pub const MAX_SPIN: Duration = Duration::from_millis(1);

/// How long the poll lasts in this process: [`SPIN_ENV`] if set to a whole number of µs (at
/// most [`MAX_SPIN`]), else [`SPIN`]. Read once.
pub fn spin_limit() -> Duration {
    static LIMIT: LazyLock<Duration> = LazyLock::new(|| {
        std::env::var(SPIN_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(SPIN, |us| Duration::from_micros(us).min(MAX_SPIN))
    });
    *LIMIT
}

/// The most waits that park at once, without polling, after polled waits whose input came
/// late.
const MAX_SKIP: u32 = 64;

/// Input this many times [`SPIN`] late backs off to [`MAX_SKIP`] at once.
const FAR_LATE: u32 = 10;

/// Whether the waits for input after a write are worth polling for, learnt from the last
/// polled ones: see the crate docs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Spin {
    /// How many waits park at once after the last late one (0: poll).
    backoff: u32,
    /// How many of those are left.
    skip: u32,
    /// Whether the wait in progress polls (decided by [`begin`](Self::begin)).
    polling: bool,
}

impl Spin {
    /// A wait for input begins (something was written): whether to poll during it.
    fn begin(&mut self) -> bool {
        self.polling = if self.skip > 0 {
            self.skip -= 1;
            false
        } else {
            true
        };
        self.polling
    }

    /// A wait that ended without [`begin`](Self::begin) deciding about it (the reader never
    /// found it pending: its input was there at the first look): it parked at once, so it
    /// uses up one wait of a back-off in progress, as a wait decided to park would. Without
    /// this a client whose reader is not woken to poll (because of the back-off) would find
    /// every answer at its first look and never count the back-off down: no poll ever again.
    fn ended_undecided(&mut self) {
        self.skip = self.skip.saturating_sub(1);
        self.polling = false;
    }

    /// The input the wait was for came after `waited`; `limit` is how long a poll lasts.
    /// Only a wait that polled teaches anything: one that parked at once says nothing about
    /// what polling would have done. (Counting those too made a busy machine poll on every
    /// other wait: there a parked wait is answered in time, which reset the back-off, and
    /// the next poll's yield lost the CPU to another program for its time slice.)
    fn end(&mut self, waited: Duration, limit: Duration) {
        if !std::mem::take(&mut self.polling) {
            return;
        }
        if waited <= limit {
            *self = Self::default();
        } else {
            // Far too late: a slow handler or a paused peer, or another program took this CPU
            // while the poll had yielded it. Either way, polling again soon is no use.
            let far = waited >= limit * FAR_LATE;
            self.backoff = if far {
                MAX_SKIP
            } else {
                (self.backoff * 2).clamp(1, MAX_SKIP)
            };
            self.skip = self.backoff;
        }
    }

    /// Whether the next wait will poll.
    fn polls_next(self) -> bool {
        self.skip == 0
    }

    /// Whether the wait in progress polls: only then does [`end`](Self::end) need to know
    /// how long it took (the clock is not read for the others).
    fn polling(self) -> bool {
        self.polling
    }
}

/// Reads directly from the socket until something comes, the peer closes it, or the deadline
/// passes (`past` says whether it has: the clock is read only after an attempt found
/// nothing), giving the CPU away between attempts (`sched_yield`: a peer on the same CPU, as
/// when both are pinned to one, runs then; a busy loop without it made the peer wait out
/// the whole [`SPIN`]). `Pending` once the deadline passed.
fn poll_until(
    stream: &StdUnixStream,
    buf: &mut ReadBuf<'_>,
    past: impl Fn() -> bool,
) -> Poll<io::Result<()>> {
    loop {
        std::thread::yield_now();
        match read_into(stream, buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Poll::Ready(Err(e)),
            // Data, or the end of the stream: either way the wait is over. A read that
            // emptied the socket leaves the reactor's readiness as it was: the bytes' own
            // event sets it later, and the next read then finds nothing and clears it.
            Ok(_) => return Poll::Ready(Ok(())),
        }
        if past() {
            return Poll::Pending;
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
    /// Since the last write, while no input has come: when that write was, and whether reads
    /// that find nothing still poll (see the crate docs).
    waiting: Option<(Instant, bool)>,
    spin: Spin,
}

impl QuietStream {
    /// Takes over an accepted stream from Tokio's registration.
    pub fn new(stream: UnixStream) -> io::Result<Self> {
        let std = stream.into_std()?;
        Ok(Self {
            fd: Some(register(std, Interest::READABLE).map_err(|(_, e)| e)?),
            watching_writes: false,
            waiting: None,
            spin: Spin::default(),
        })
    }

    /// Something was written: a wait for input begins, unless one already runs.
    fn wrote(&mut self) {
        if self.waiting.is_none() {
            let polls = self.spin.begin();
            self.waiting = Some((Instant::now(), polls));
        }
    }

    /// Input came (or the stream ended): the wait, if any, is over. (Only a wait that polled
    /// needs to know how long it took.)
    fn input(&mut self) {
        if let Some((since, _)) = self.waiting.take()
            && self.spin.polling()
        {
            self.spin.end(since.elapsed(), spin_limit());
        }
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
        let this = self.get_mut();
        let fd = this.fd.as_ref().ok_or_else(gone)?;
        let result = match poll_read_registered(fd, cx, buf) {
            Poll::Pending => match this.waiting {
                Some((since, true)) if !spin_limit().is_zero() => {
                    let deadline = since + spin_limit();
                    let polled = poll_until(fd.get_ref(), buf, || Instant::now() >= deadline);
                    if polled.is_pending() {
                        // Polled long enough: park until the reactor says there is input.
                        this.waiting = Some((since, false));
                    }
                    polled
                }
                _ => Poll::Pending,
            },
            ready => ready,
        };
        if result.is_ready() {
            this.input();
        }
        result
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
            match send(this.fd()?.get_ref(), buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => this.watch_writes(true)?,
                done => {
                    if matches!(done, Ok(n) if n > 0) {
                        this.wrote();
                    }
                    return Poll::Ready(done);
                }
            }
        }
        loop {
            let fd = this.fd()?;
            let mut guard = ready!(fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| send(fd.get_ref(), buf)) {
                Ok(Ok(n)) => {
                    drop(guard);
                    // There was room again: stop listening for it.
                    this.watch_writes(false)?;
                    if n > 0 {
                        this.wrote();
                    }
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
    let shared = Arc::new(Halves {
        fd: register(std, Interest::READABLE).map_err(|(_, e)| e)?,
        wrote_at: AtomicU64::new(0),
        reader: AtomicWaker::new(),
        reader_polls: AtomicBool::new(true),
    });
    Ok((
        QuietRead {
            shared: shared.clone(),
            decided: 0,
            polls: false,
            spin: Spin::default(),
        },
        QuietWrite {
            stream: shared,
            waiting: None,
        },
    ))
}

/// The instant [`Halves::wrote_at`] counts from.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds since [`EPOCH`], plus one (so that no instant is 0).
fn now_ns() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// [`spin_limit`] in nanoseconds.
fn spin_limit_ns() -> u64 {
    u64::try_from(spin_limit().as_nanos()).unwrap_or(u64::MAX)
}

/// What the two halves share: the socket, and the wait for input the writer starts.
#[derive(Debug)]
struct Halves {
    /// The socket (the reader owns its readable registration).
    fd: AsyncFd<StdUnixStream>,
    /// When the writer wrote with no input since ([`now_ns`]); 0 while no wait runs.
    wrote_at: AtomicU64,
    /// The reader's task while it waits for input, for the writer to wake when a wait
    /// begins, so that it polls.
    reader: AtomicWaker,
    /// Whether the reader will poll during the next wait (else the writer need not wake it).
    reader_polls: AtomicBool,
}

/// Reads from the socket, woken by readable events only; after a write, polls briefly before
/// parking (see the crate docs).
#[derive(Debug)]
pub struct QuietRead {
    shared: Arc<Halves>,
    /// The wait (its `wrote_at`) that `polls` was decided for.
    decided: u64,
    /// Whether reads that find nothing poll during that wait.
    polls: bool,
    spin: Spin,
}

/// Writes to the socket directly; see the crate docs for how it waits for room.
#[derive(Debug)]
pub struct QuietWrite {
    /// The socket and the wait state, shared with the reader.
    stream: Arc<Halves>,
    /// While a write waits for room: a duplicate descriptor registered for writable events.
    waiting: Option<AsyncFd<StdUnixStream>>,
}

impl QuietWrite {
    /// Something was written: a wait for input begins, unless one runs; the reader is woken
    /// to poll for it when it will.
    fn wrote(&self) {
        let halves = &*self.stream;
        if halves.wrote_at.load(SeqCst) == 0
            && halves
                .wrote_at
                .compare_exchange(0, now_ns(), SeqCst, SeqCst)
                .is_ok()
            && halves.reader_polls.load(SeqCst)
        {
            halves.reader.wake();
        }
    }

    fn written(&self, done: io::Result<usize>) -> Poll<io::Result<usize>> {
        if matches!(done, Ok(n) if n > 0) {
            self.wrote();
        }
        Poll::Ready(done)
    }
}

impl AsyncRead for QuietRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let halves = &*this.shared;
        let mut result = poll_read_registered(&halves.fd, cx, buf);
        if result.is_pending() {
            // Registered before the wait is looked at: a write after this wakes us.
            halves.reader.register(cx.waker());
            let since = halves.wrote_at.load(SeqCst);
            if since != 0 {
                if since != this.decided {
                    this.decided = since;
                    this.polls = this.spin.begin();
                    halves.reader_polls.store(this.spin.polls_next(), SeqCst);
                }
                if this.polls && !spin_limit().is_zero() {
                    // The poll's deadline counts from the write: no clock read before the
                    // first attempt (one read wanted the time left, one the deadline).
                    let deadline = since.saturating_add(spin_limit_ns());
                    result = poll_until(halves.fd.get_ref(), buf, || now_ns() >= deadline);
                    if result.is_pending() {
                        this.polls = false;
                    }
                }
            }
        }
        if result.is_ready() {
            let since = halves.wrote_at.swap(0, SeqCst);
            // Only a wait that polled teaches the back-off, and needs the clock: input found
            // at the first read (the answer was already there) costs no clock read.
            if since != 0 {
                if since != this.decided {
                    this.spin.ended_undecided();
                } else if this.spin.polling() {
                    let waited = now_ns().saturating_sub(since);
                    this.spin.end(Duration::from_nanos(waited), spin_limit());
                }
                halves.reader_polls.store(this.spin.polls_next(), SeqCst);
            }
        }
        result
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
            None => match send(this.stream.fd.get_ref(), buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let dup = this.stream.fd.get_ref().try_clone()?;
                    register(dup, Interest::WRITABLE).map_err(|(_, e)| e)?
                }
                done => return this.written(done),
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
            match guard.try_io(|fd| send(fd.get_ref(), buf)) {
                // Room again (or a real error): the duplicate is dropped, and with it the
                // interest in writable events.
                Ok(done) => return this.written(done),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the socket; nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.fd.get_ref().shutdown(std::net::Shutdown::Write))
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

    /// The write helper never raises `SIGPIPE`: a write to a socket whose peer is gone is a
    /// `BrokenPipe` error, and the process lives on. Rust's runtime (this test harness too)
    /// ignores `SIGPIPE`, so surviving alone would prove nothing; the signal is blocked in
    /// this thread instead, which keeps one that is raised pending (the kernel never drops a
    /// blocked signal, ignored or not), and the test looks for it.
    #[test]
    #[allow(unsafe_code)]
    fn a_write_to_a_closed_peer_is_broken_pipe_and_raises_no_sigpipe() {
        let (ours, peer) = StdUnixStream::pair().expect("a socket pair");
        drop(peer);
        // SAFETY: an all-zero `sigset_t` is a valid value (it is emptied next anyway).
        let mut pipe: libc::sigset_t = unsafe { std::mem::zeroed() };
        let mut old = pipe;
        let mut pending = pipe;
        // SAFETY: every pointer is to a live, writable `sigset_t` of this frame; the mask
        // changed is this thread's, and is restored below.
        unsafe {
            assert_eq!(libc::sigemptyset(&mut pipe), 0);
            assert_eq!(libc::sigaddset(&mut pipe, libc::SIGPIPE), 0);
            assert_eq!(libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old), 0);
        }
        let wrote = send(&ours, b"ping");
        // SAFETY: as above; `sigtimedwait` with a zero timeout only takes a pending SIGPIPE
        // (raised by the write, if any) off this thread, so that it is not delivered later.
        let raised = unsafe {
            assert_eq!(libc::sigpending(&mut pending), 0);
            let raised = libc::sigismember(&pending, libc::SIGPIPE) == 1;
            if raised {
                let now = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                libc::sigtimedwait(&pipe, std::ptr::null_mut(), &now);
            }
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()),
                0
            );
            raised
        };
        let err = wrote.expect_err("the peer is gone");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
        assert!(!raised, "the write raised SIGPIPE");
    }

    /// The read and write helpers with nothing to move and with far more than the socket
    /// holds: an empty write sends nothing and an empty read takes nothing; a big write goes
    /// as far as the send buffer allows (then `WouldBlock`), a big read takes what is there,
    /// and everything arrives intact and in order.
    #[test]
    fn reads_and_writes_of_nothing_and_of_a_lot_behave() {
        let (ours, peer) = StdUnixStream::pair().expect("a socket pair");
        ours.set_nonblocking(true).expect("non-blocking");
        peer.set_nonblocking(true).expect("non-blocking");
        let mut space = vec![0u8; 8 << 20];
        // One read of at most `room` bytes, appended to `into`.
        let mut read = |into: &mut Vec<u8>, room: usize| {
            let mut buf = ReadBuf::new(&mut space[..room]);
            let got = read_into(&peer, &mut buf)?;
            assert_eq!(got, buf.filled().len(), "the count is what was filled");
            into.extend_from_slice(buf.filled());
            Ok::<_, io::Error>(got)
        };

        assert_eq!(send(&ours, b"").expect("an empty write"), 0);
        let mut got = Vec::new();
        let err = read(&mut got, 16).expect_err("nothing was sent");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(send(&ours, b"abc").expect("writes"), 3);
        assert_eq!(read(&mut got, 0).expect("an empty read"), 0);
        assert!(got.is_empty());
        assert_eq!(
            read(&mut got, 1 << 20).expect("reads"),
            3,
            "all that was there"
        );
        assert_eq!(got, b"abc");

        let big: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let mut sent = 0;
        let mut got = Vec::new();
        let mut blocked = false;
        while sent < big.len() {
            match send(&ours, &big[sent..]) {
                Ok(n) => {
                    assert!(n > 0, "a write of something sends something");
                    sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    loop {
                        match read(&mut got, 8 << 20) {
                            Ok(n) => assert!(n > 0, "the writer is still there"),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => panic!("read failed: {e}"),
                        }
                    }
                }
                Err(e) => panic!("write failed: {e}"),
            }
        }
        drop(ours);
        while read(&mut got, 8 << 20).expect("reads to the end") > 0 {}
        assert!(blocked, "8 MiB filled the send buffer at least once");
        assert!(got == big, "the big write arrived intact and in order");
    }

    /// Polls `fut` once, with a waker that does nothing.
    fn poll_once<F: std::future::Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
        fut.poll(&mut Context::from_waker(std::task::Waker::noop()))
    }

    /// The poll-before-parking rule, for polled waits: input in time keeps polling; late
    /// input makes the next 1, then 2, 4 … (at most 64) waits park at once; one in time
    /// resets it; one far too late parks the next 64 at once. Waits that parked at once
    /// teach nothing, whatever their input did.
    #[test]
    fn spinning_backs_off_after_late_input_and_resumes_after_timely_input() {
        let mut spin = Spin::default();
        assert!(spin.begin(), "a fresh stream polls");
        spin.end(SPIN / 2, SPIN);
        assert!(
            spin.polls_next() && spin.begin(),
            "input in time: still polls"
        );
        spin.end(SPIN * 3, SPIN);
        assert!(!spin.polls_next());
        assert!(!spin.begin(), "one wait parks at once after a late input");
        spin.end(Duration::ZERO, SPIN);
        assert!(spin.polls_next(), "the parked wait used up the back-off");
        assert!(spin.begin());
        spin.end(SPIN * 3, SPIN);
        let mut parked = 0;
        while !spin.begin() {
            parked += 1;
            // A parked wait answered in time does not reset the back-off.
            spin.end(Duration::ZERO, SPIN);
        }
        assert_eq!(parked, 2, "two waits park after the second late input");
        for _ in 0..10 {
            spin.end(SPIN * 3, SPIN);
            while !spin.begin() {}
        }
        spin.end(SPIN * 3, SPIN);
        let parked = (0..200).take_while(|_| !spin.begin()).count();
        assert_eq!(
            parked, MAX_SKIP as usize,
            "the back-off stops growing at MAX_SKIP"
        );
        spin.end(Duration::ZERO, SPIN);
        assert_eq!(spin, Spin::default(), "input in time resets it");
        let mut far = Spin::default();
        assert!(far.begin());
        far.end(SPIN * FAR_LATE, SPIN);
        let parked = (0..200)
            .take_while(|_| {
                let polls = far.begin();
                far.end(Duration::ZERO, SPIN);
                !polls
            })
            .count();
        assert_eq!(
            parked, MAX_SKIP as usize,
            "far too late: the longest back-off at once, whatever the parked waits saw"
        );
    }

    /// After a write, a read whose input comes only after the poll gave up parks and is still
    /// woken by the reactor when it comes (daemon side: one task reads and writes).
    #[tokio::test]
    async fn a_quiet_stream_read_parks_after_polling_and_wakes_for_late_input() {
        let (ours, mut peer) = UnixStream::pair().expect("a socket pair");
        let mut quiet = QuietStream::new(ours).expect("registers");
        quiet.write_all(b"ping").await.expect("writes");
        assert!(
            matches!(quiet.waiting, Some((_, true))),
            "a wait that polls began"
        );
        let mut got = [0u8; 4];
        let mut read = std::pin::pin!(quiet.read_exact(&mut got));
        // Nothing comes while it polls: it gives up and parks.
        assert!(poll_once(read.as_mut()).is_pending());
        let mut ping = [0u8; 4];
        peer.read_exact(&mut ping).await.expect("the peer reads");
        peer.write_all(b"pong").await.expect("the peer answers");
        read.await.expect("woken by the reactor");
        assert_eq!(&got, b"pong");
        assert!(quiet.waiting.is_none(), "the wait is over");
        assert!(
            !quiet.spin.polls_next(),
            "late input: the next wait parks at once"
        );
    }

    /// An answer already there when the reader first looks ends the wait without polling: it
    /// neither resets a late-input back-off in progress nor learns anything from its timing,
    /// but it uses up one of the back-off's parked waits, so that a reader that is not woken
    /// to poll (and so finds every answer at its first look) polls again once the back-off
    /// ran out; on both stream types.
    #[tokio::test]
    async fn input_found_at_once_ends_the_wait_and_teaches_nothing() {
        let (ours, mut peer) = UnixStream::pair().expect("a socket pair");
        let (mut rd, mut wr) = split(ours).expect("registers");
        let backed_off = Spin {
            backoff: 4,
            skip: 4,
            polling: false,
        };
        rd.spin = backed_off;
        for left in (0..4).rev() {
            wr.write_all(b"ping").await.expect("writes");
            let mut ping = [0u8; 4];
            peer.read_exact(&mut ping).await.expect("the peer reads");
            peer.write_all(b"pong").await.expect("the peer answers");
            // Let the reactor see the answer.
            tokio::task::yield_now().await;
            let mut got = [0u8; 4];
            let read = std::pin::pin!(rd.read_exact(&mut got));
            assert!(
                poll_once(read).is_ready(),
                "the answer is read at the first look"
            );
            assert_eq!(&got, b"pong");
            assert_eq!(rd.shared.wrote_at.load(SeqCst), 0, "the wait is over");
            let used_one = Spin {
                skip: left,
                ..backed_off
            };
            assert_eq!(rd.spin, used_one, "one parked wait used up, nothing else");
            assert_eq!(rd.shared.reader_polls.load(SeqCst), left == 0);
        }
        let mut ping = [0u8; 4];
        let mut got = [0u8; 4];

        let (ours, mut peer) = UnixStream::pair().expect("a socket pair");
        let mut quiet = QuietStream::new(ours).expect("registers");
        quiet.spin = backed_off;
        quiet.write_all(b"ping").await.expect("writes");
        assert!(
            matches!(quiet.waiting, Some((_, false))),
            "a backed-off wait that will not poll began"
        );
        let backed_off = quiet.spin;
        peer.read_exact(&mut ping).await.expect("the peer reads");
        peer.write_all(b"pong").await.expect("the peer answers");
        tokio::task::yield_now().await;
        let read = std::pin::pin!(quiet.read_exact(&mut got));
        assert!(poll_once(read).is_ready());
        assert!(quiet.waiting.is_none(), "the wait is over");
        assert_eq!(quiet.spin, backed_off, "nothing learnt");
    }

    /// The same for the client's halves: the writer starts the wait, the reader polls, parks,
    /// and is woken by the reactor; an answer in time keeps the next wait polling.
    #[tokio::test]
    async fn quiet_halves_read_parks_after_polling_and_wakes_for_late_input() {
        let (ours, mut peer) = UnixStream::pair().expect("a socket pair");
        let (mut rd, mut wr) = split(ours).expect("registers");
        wr.write_all(b"ping").await.expect("writes");
        assert_ne!(rd.shared.wrote_at.load(SeqCst), 0, "the write began a wait");
        let mut got = [0u8; 4];
        let mut read = std::pin::pin!(rd.read_exact(&mut got));
        assert!(poll_once(read.as_mut()).is_pending());
        let mut ping = [0u8; 4];
        peer.read_exact(&mut ping).await.expect("the peer reads");
        peer.write_all(b"pong").await.expect("the peer answers");
        read.await.expect("woken by the reactor");
        assert_eq!(&got, b"pong");
        assert_eq!(rd.shared.wrote_at.load(SeqCst), 0, "the wait is over");
        assert!(
            !rd.spin.polls_next(),
            "late input: the next wait parks at once"
        );
    }
}
