//! Test support: in-process servers on temporary sockets, a `hearthd` process that says when
//! it is ready, a raw connection that speaks frames byte for byte, so tests read as data, and
//! a method that runs until the test lets it finish.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hearth_protocol::reserved::{Fatal, Stats};
use hearth_protocol::{
    DEFAULT_MAX_FRAME, Encoder, ErrorCode, FrameDecoder, Message, Notification, Response,
};
use hearth_server::{Limits, MethodError, RequestContext, Router, Server, ServerHandle, builtins};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long any single wait in a test may take before the test fails instead of hanging.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// A server running inside the test's runtime on a temporary socket.
pub(crate) struct TestServer {
    pub(crate) path: PathBuf,
    pub(crate) handle: ServerHandle,
    pub(crate) task: JoinHandle<Result<(), hearth_server::ServeError>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// The built-in methods with default limits.
    pub(crate) async fn start() -> Self {
        Self::with(builtins::router(), Limits::default()).await
    }

    pub(crate) async fn with(router: Router, limits: Limits) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // The server creates its own 0700 folder inside the temporary one.
        let path = dir.path().join("run").join("hearthd.sock");
        let server = Server::builder()
            .socket(&path)
            .router(router)
            .limits(limits)
            .bind()
            .await
            .expect("bind");
        let handle = server.handle();
        let task = tokio::spawn(server.run());
        Self {
            path,
            handle,
            task,
            _dir: dir,
        }
    }

    pub(crate) async fn connect(&self) -> Raw {
        Raw::connect(&self.path).await
    }

    /// Waits until the counters satisfy `pred` (polled on a server handle: the counters
    /// change in other tasks and nothing signals them; bounded by PATIENCE).
    pub(crate) async fn wait_stats(&self, what: &str, pred: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let stats = self.handle.stats();
            if pred(&stats) {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; stats: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A method that runs until the test opens the gate: a request that is in flight for exactly
/// as long as the test needs, where a `sleep` of a fixed length would race the test's own
/// steps on a slow machine.
pub(crate) struct Gate(watch::Sender<bool>);

impl Gate {
    /// A closed gate.
    pub(crate) fn new() -> Self {
        Self(watch::channel(false).0)
    }

    /// `router` plus `gate`: waits (cancellably) until the gate is open, then answers
    /// `"opened"`.
    pub(crate) fn add_to(&self, router: Router) -> Router {
        let open = self.0.subscribe();
        router.method(
            "gate",
            move |_: serde::de::IgnoredAny, _ctx: RequestContext| {
                let mut open = open.clone();
                async move {
                    open.wait_for(|open| *open)
                        .await
                        .map(drop)
                        .map_err(|_| MethodError::internal("the gate was dropped closed"))?;
                    Ok::<_, MethodError>("opened")
                }
            },
        )
    }

    /// Opens the gate: every `gate` request running or still to come answers.
    pub(crate) fn open(&self) {
        self.0.send_replace(true);
    }
}

/// A connection that writes exactly the bytes a test gives it and decodes what comes back.
/// Any stream a test connects with.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub(crate) struct Raw {
    pub(crate) stream: Box<dyn Stream>,
    buf: BytesMut,
    frames: FrameDecoder,
    enc: Encoder,
}

impl Raw {
    pub(crate) async fn connect(path: &Path) -> Self {
        Self::from_stream(UnixStream::connect(path).await.expect("connect"))
    }

    pub(crate) fn from_stream(stream: impl Stream + 'static) -> Self {
        Self {
            stream: Box::new(stream),
            buf: BytesMut::new(),
            frames: FrameDecoder::new(DEFAULT_MAX_FRAME),
            enc: Encoder::default(),
        }
    }

    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends `body` framed with its true length.
    pub(crate) async fn send_body(&mut self, body: &[u8]) {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        self.send_bytes(&frame).await;
    }

    pub(crate) fn request_frame<P: Serialize + ?Sized>(
        &self,
        id: u64,
        method: &str,
        params: &P,
    ) -> BytesMut {
        let mut out = BytesMut::new();
        self.enc
            .request(&mut out, id, method, params)
            .expect("encode");
        out
    }

    pub(crate) async fn request<P: Serialize + ?Sized>(
        &mut self,
        id: u64,
        method: &str,
        params: &P,
    ) {
        let frame = self.request_frame(id, method, params);
        self.send_bytes(&frame).await;
    }

    pub(crate) async fn cancel(&mut self, id: u64) {
        let mut out = BytesMut::new();
        self.enc.cancel(&mut out, id).expect("encode");
        self.send_bytes(&out).await;
    }

    /// The next message, or `None` at a clean end of stream.
    pub(crate) async fn next(&mut self) -> Option<Message> {
        self.read_message(false).await
    }

    /// Like [`Self::next`], but a connection reset also counts as the end.
    pub(crate) async fn next_or_reset(&mut self) -> Option<Message> {
        self.read_message(true).await
    }

    async fn read_message(&mut self, reset_is_end: bool) -> Option<Message> {
        loop {
            if let Some(frame) = self
                .frames
                .decode(&mut self.buf)
                .expect("daemon sent a bad frame")
            {
                return Some(Message::decode(frame).expect("daemon sent a bad message"));
            }
            match tokio::time::timeout(PATIENCE, self.stream.read_buf(&mut self.buf))
                .await
                .expect("timed out waiting for the daemon")
            {
                Ok(0) => {
                    assert!(self.buf.is_empty(), "stream ended mid-frame");
                    return None;
                }
                Ok(_) => {}
                Err(e) if reset_is_end && e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return None;
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Asks `$/stats` until `pred` holds (the counters change in the daemon and nothing
    /// announces it; bounded by PATIENCE).
    pub(crate) async fn stats_until(&mut self, what: &str, pred: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut id = 1u64 << 40;
        loop {
            id += 1;
            let stats: Stats = self.call(id, "$/stats", &()).await;
            if pred(&stats) {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; stats: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) async fn response(&mut self) -> Response {
        match self.next().await {
            Some(Message::Response(r)) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    pub(crate) async fn notification(&mut self) -> Notification {
        match self.next().await {
            Some(Message::Notification(n)) => n,
            other => panic!("expected a notification, got {other:?}"),
        }
    }

    /// Calls and returns the typed result, panicking on an error response.
    pub(crate) async fn call<P: Serialize + ?Sized, R: DeserializeOwned>(
        &mut self,
        id: u64,
        method: &str,
        params: &P,
    ) -> R {
        self.request(id, method, params).await;
        let r = self.response().await;
        assert_eq!(r.id, id);
        let bytes = r.outcome.unwrap_or_else(|e| panic!("{method} failed: {e}"));
        hearth_protocol::from_msgpack(&bytes).expect("result type")
    }

    /// Expects `$/fatal` with `code`, then the end of the stream.
    pub(crate) async fn expect_fatal(&mut self, code: ErrorCode) -> Fatal {
        let n = self.notification().await;
        assert_eq!(n.method(), "$/fatal");
        let fatal: Fatal = hearth_protocol::from_msgpack(&n.params).expect("fatal shape");
        assert_eq!(fatal.code, code.0, "{fatal:?}");
        assert_eq!(fatal.supported, hearth_protocol::SUPPORTED_VERSIONS);
        assert!(
            self.next().await.is_none(),
            "connection should close after $/fatal"
        );
        fatal
    }
}

/// The error code of a response, panicking if it succeeded.
pub(crate) fn error_code(r: &Response) -> ErrorCode {
    match &r.outcome {
        Err(e) => e.code,
        Ok(v) => panic!("expected an error for id {}, got result {v:?}", r.id),
    }
}

/// The result bytes of a response, panicking if it failed.
pub(crate) fn result_bytes(r: Response) -> Bytes {
    r.outcome
        .unwrap_or_else(|e| panic!("id {} failed: {e}", r.id))
}

/// A `hearthd` process on a temporary socket.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    /// Lines already taken off `lines` by a wait, kept for the final log.
    seen: Vec<String>,
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    /// The command for a daemon on `socket`, with logs on stderr and no inherited socket env.
    pub(crate) fn command(socket: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearthd"));
        cmd.arg("--socket")
            .arg(socket)
            .env_remove("HEARTH_SOCKET")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// Spawns `cmd` and collects its stderr lines.
    pub(crate) fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("spawn hearthd");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            seen: Vec::new(),
            lines,
        }
    }

    /// Starts a daemon and waits for its "ready" log line.
    pub(crate) fn start(socket: &Path) -> Self {
        let mut d = Self::spawn(Self::command(socket));
        d.wait_for_line("ready on");
        d
    }

    /// Waits for a stderr line containing `needle`; returns every line seen so far.
    pub(crate) fn wait_for_line(&mut self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    seen.push(line);
                    if hit {
                        return seen;
                    }
                }
                Err(_) => panic!("hearthd never logged {needle:?}; it logged: {seen:#?}"),
            }
        }
    }

    /// Waits until the daemon is ready (`true`) or has exited (`false`).
    pub(crate) fn ready_or_exit(&mut self) -> bool {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) => {
                    let ready = line.contains("ready on");
                    self.seen.push(line);
                    if ready {
                        return true;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("hearthd neither ready nor gone"),
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the daemon, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// Open file descriptors of the daemon.
    pub(crate) fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("proc fd")
            .count()
    }

    /// User plus system CPU time of the daemon so far, in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        // Fields after the command name (which is in parentheses): utime is 14th, stime 15th.
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    }

    /// Waits for the process to exit; returns its status and remaining stderr.
    pub(crate) fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("wait");
        // The reader thread ends at end of stream, which follows the exit.
        let mut all = std::mem::take(&mut self.seen);
        all.extend(self.lines.iter());
        (status, all.join("\n"))
    }

    /// Sends a signal to the daemon.
    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a `hearthd` to completion (for daemons expected to refuse to start).
pub(crate) fn run_to_exit(cmd: Command) -> (std::process::ExitStatus, String) {
    let d = Daemon::spawn(cmd);
    d.wait()
}

/// A `/proc/<pid>/status` field in KiB.
pub(crate) fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("field")
}

/// Waits for `cond` on something no event announces (another process's counters); bounded.
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
