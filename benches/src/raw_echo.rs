//! The raw baseline: a plain *blocking* Unix-socket echo server and client built on
//! `std::os::unix::net` alone — no runtime, no MessagePack, no routing. The server reads what
//! is available, writes back every complete length-prefixed frame in one write, and keeps the
//! partial tail for the next read; the client keeps a fixed number of frames outstanding. What
//! hearth adds on top of the kernel's socket cost is the distance between this and the daemon.
//!
//! Deliberately left out: frame contents are never parsed (only the 4-byte length is read),
//! nothing is timed here (the benches do that), and there is no shutdown protocol beyond the
//! client closing its end. One thread per accepted connection, as a baseline should be simple.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use hearth_protocol::{DEFAULT_MAX_FRAME, HEADER_LEN};

/// Initial read buffer of either side; grows only for a frame larger than it.
const READ_BUF: usize = 64 * 1024;

/// A blocking echo server listening on a Unix socket, one thread per connection.
///
/// Dropping it stops accepting (the socket file is removed); connection threads end when
/// their clients close.
#[derive(Debug)]
pub struct EchoServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Binds `path` (which must not exist) and starts accepting on a background thread.
    pub fn bind(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let listener = UnixListener::bind(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("raw-echo-accept".to_owned())
                .spawn(move || accept_loop(&listener, &stop))?
        };
        Ok(Self {
            path,
            stop,
            accept: Some(accept),
        })
    }

    /// The socket path clients connect to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking `accept` so it sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: &UnixListener, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = std::thread::Builder::new()
            .name("raw-echo-conn".to_owned())
            .spawn(move || serve_connection(stream));
    }
}

/// Echoes length-prefixed frames on `stream` until the peer closes it: each read takes what is
/// available, every complete frame in the buffer goes back in one `write_all`, and a partial
/// frame waits for the next read. Fails on an I/O error or a declared length over
/// [`DEFAULT_MAX_FRAME`].
pub fn serve_connection(mut stream: UnixStream) -> io::Result<()> {
    let mut buf = vec![0u8; READ_BUF];
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let complete = complete_frames(&buf[..filled])?;
        if complete.bytes > 0 {
            stream.write_all(&buf[..complete.bytes])?;
            buf.copy_within(complete.bytes..filled, 0);
            filled -= complete.bytes;
        }
        make_room(&mut buf, filled)?;
    }
}

/// How much of a buffer is whole frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Complete {
    /// Bytes taken by the whole frames at the front.
    bytes: usize,
    /// How many whole frames that is.
    frames: usize,
}

/// Counts the whole frames at the front of `buf`.
fn complete_frames(buf: &[u8]) -> io::Result<Complete> {
    let mut done = Complete {
        bytes: 0,
        frames: 0,
    };
    while let Some(len) = declared_len(&buf[done.bytes..])? {
        let end = done.bytes + HEADER_LEN + len;
        if end > buf.len() {
            break;
        }
        done.bytes = end;
        done.frames += 1;
    }
    Ok(done)
}

/// The body length in the header at the front of `buf`, if the header is there.
fn declared_len(buf: &[u8]) -> io::Result<Option<usize>> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*header) as usize;
    if len > DEFAULT_MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the maximum"),
        ));
    }
    Ok(Some(len))
}

/// Grows `buf` if the partial frame in its first `filled` bytes cannot be completed in it.
fn make_room(buf: &mut Vec<u8>, filled: usize) -> io::Result<()> {
    let needed = match declared_len(&buf[..filled])? {
        Some(len) => HEADER_LEN + len,
        None => HEADER_LEN,
    };
    if needed > buf.len() {
        buf.resize(needed, 0);
    }
    Ok(())
}

/// A blocking client that sends one fixed frame over and over and counts the echoes.
#[derive(Debug)]
pub struct EchoClient {
    stream: UnixStream,
    frame_len: usize,
    /// `frame` repeated, so up to `batch.len() / frame_len` frames go out in one write.
    batch: Vec<u8>,
    buf: Vec<u8>,
    filled: usize,
}

impl EchoClient {
    /// Connects to `path`; every call will send `frame` (one whole length-prefixed frame) and
    /// at most `max_window` copies of it are written at once.
    pub fn connect(path: impl AsRef<Path>, frame: &[u8], max_window: usize) -> io::Result<Self> {
        Ok(Self::new(UnixStream::connect(path)?, frame, max_window))
    }

    /// Wraps a connected stream; see [`connect`](Self::connect).
    pub fn new(stream: UnixStream, frame: &[u8], max_window: usize) -> Self {
        assert!(!frame.is_empty(), "an echo frame has at least a header");
        Self {
            stream,
            frame_len: frame.len(),
            batch: frame.repeat(max_window.max(1)),
            buf: vec![0u8; READ_BUF.max(frame.len())],
            filled: 0,
        }
    }

    /// Sends `calls` frames and waits for all their echoes, with at most `window` frames
    /// outstanding (clamped to the `max_window` given at connect): it writes as many frames as
    /// the window allows in one write, then reads whatever echoes have arrived and refills.
    /// A window of 1 is plain ping-pong.
    ///
    /// The window's bytes must fit in the socket's buffers (the server blocks writing echoes
    /// while the client blocks writing frames otherwise); a few hundred small frames do.
    pub fn run(&mut self, calls: u64, window: usize) -> io::Result<()> {
        let window = window.clamp(1, self.batch.len() / self.frame_len) as u64;
        let mut sent = 0u64;
        let mut received = 0u64;
        while received < calls {
            let room = (window - (sent - received)).min(calls - sent);
            if room > 0 {
                // `room` is at most `window`, which fits in `batch`.
                let bytes = room as usize * self.frame_len;
                self.stream.write_all(&self.batch[..bytes])?;
                sent += room;
            }
            received += self.read_echoes()? as u64;
        }
        Ok(())
    }

    /// Reads once (blocking) and consumes the whole frames that arrived; returns how many.
    fn read_echoes(&mut self) -> io::Result<usize> {
        let n = self.stream.read(&mut self.buf[self.filled..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the echo server closed the connection",
            ));
        }
        self.filled += n;
        let complete = complete_frames(&self.buf[..self.filled])?;
        self.buf.copy_within(complete.bytes..self.filled, 0);
        self.filled -= complete.bytes;
        make_room(&mut self.buf, self.filled)?;
        Ok(complete.frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn counts_whole_frames_and_leaves_the_tail() {
        let mut wire = frame(b"abc");
        wire.extend(frame(b"de"));
        wire.extend_from_slice(&frame(b"fgh")[..5]);
        let done = complete_frames(&wire).expect("valid lengths");
        assert_eq!(
            done,
            Complete {
                bytes: 13,
                frames: 2
            }
        );
        assert_eq!(
            complete_frames(&wire[..3]).expect("valid"),
            Complete {
                bytes: 0,
                frames: 0
            }
        );
    }

    #[test]
    fn refuses_a_length_over_the_maximum() {
        let wire = u32::MAX.to_be_bytes();
        assert!(complete_frames(&wire).is_err());
    }

    #[test]
    fn grows_for_a_frame_larger_than_the_buffer() {
        let mut buf = vec![0u8; 8];
        buf[..4].copy_from_slice(&100u32.to_be_bytes());
        make_room(&mut buf, 6).expect("valid length");
        assert_eq!(buf.len(), 104);
    }

    #[test]
    fn echoes_sequential_and_pipelined_calls() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("echo.sock");
        let server = EchoServer::bind(&path).expect("bind");
        let wire = crate::framed_echo_request(1);
        let mut client = EchoClient::connect(server.path(), &wire, 64).expect("connect");
        client.run(10, 1).expect("ping-pong");
        client.run(1000, 64).expect("pipelined");
        client.run(3, 64).expect("fewer calls than the window");
        drop(client);
        drop(server);
        assert!(!path.exists());
    }
}
