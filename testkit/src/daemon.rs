//! The daemons tests talk to: [`TestServer`], a `hearth-server` inside the test's runtime on a
//! temporary socket (so `tokio::time::pause` reaches it), and [`Daemon`], a `hearthd` process
//! that says when it is ready; plus [`traversable_copy`], which puts a binary where another
//! user can run it.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;

use hearth_protocol::Version;
use hearth_protocol::reserved::Stats;
use hearth_server::{Limits, Router, Server, ServerHandle, builtins};
use tokio::task::JoinHandle;

use crate::{PATIENCE, Raw};

/// A server running inside the test's runtime on a temporary socket; the folder is removed
/// when it is dropped.
pub struct TestServer {
    /// The socket path.
    pub path: PathBuf,
    /// The server's handle: stats, shutdown.
    pub handle: ServerHandle,
    /// The task running the server.
    pub task: JoinHandle<Result<(), hearth_server::ServeError>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// The built-in methods with default limits.
    pub async fn start() -> Self {
        Self::with(builtins::router(), Limits::default()).await
    }

    /// `router` with `limits`.
    pub async fn with(router: Router, limits: Limits) -> Self {
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

    /// A version 1 peer.
    pub async fn connect(&self) -> Raw {
        Raw::connect(&self.path).await
    }

    /// A version 2 peer with an answer checker.
    pub async fn connect_v2(&self) -> Raw {
        Raw::connect(&self.path)
            .await
            .speaking(Version::V2)
            .checked()
    }

    /// Waits until the counters satisfy `pred` (polled on the handle: the counters change in
    /// other tasks and nothing signals them; bounded by [`PATIENCE`]).
    pub async fn wait_stats(&self, what: &str, pred: impl Fn(&Stats) -> bool) -> Stats {
        let mut last = None;
        crate::eventually(what, || {
            let stats = self.handle.stats();
            let ok = pred(&stats);
            last = Some(stats);
            ok
        })
        .await;
        last.expect("polled at least once")
    }
}

/// A `hearthd` process on a temporary socket, killed when dropped.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// Lines already taken off `lines` by a wait, kept for the final log.
    seen: Vec<String>,
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    /// The command for the daemon binary `bin` on `socket`, with logs on stderr and no
    /// inherited socket environment.
    pub fn command(bin: &Path, socket: &Path) -> Command {
        let mut cmd = Self::bare(bin);
        cmd.arg("--socket").arg(socket);
        cmd
    }

    /// The command for the daemon binary `bin` with no arguments yet: logs on stderr (piped),
    /// and none of the caller's socket environment (`HEARTH_SOCKET`, systemd's `LISTEN_FDS`
    /// and `LISTEN_PID`).
    pub fn bare(bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.env_remove("HEARTH_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// Spawns `cmd` and collects its stderr lines.
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
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

    /// Starts `bin` on `socket` and waits for its "ready" log line.
    pub fn start(bin: &Path, socket: &Path) -> Self {
        let mut d = Self::spawn(Self::command(bin, socket));
        d.wait_for_line("ready on");
        d
    }

    /// Waits for a stderr line containing `needle`; returns every line seen so far.
    pub fn wait_for_line(&mut self, needle: &str) -> Vec<String> {
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
                Err(_) => panic!("the daemon never logged {needle:?}; it logged: {seen:#?}"),
            }
        }
    }

    /// Waits until the daemon is ready (`true`) or has exited (`false`).
    pub fn ready_or_exit(&mut self) -> bool {
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
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("the daemon neither ready nor gone"),
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the daemon, in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// Open file descriptors of the daemon.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("proc fd")
            .count()
    }

    /// How many times the daemon's threads were switched out so far (voluntary plus
    /// involuntary, summed over its threads): a count of wake-ups that does not depend on how
    /// fast the machine is.
    pub fn context_switches(&self) -> u64 {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid())).expect("proc task");
        tasks
            .filter_map(Result::ok)
            .map(|t| {
                let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
                status
                    .lines()
                    .filter(|l| l.contains("ctxt_switches:"))
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .sum::<u64>()
            })
            .sum()
    }

    /// Waits for the process to exit; returns its status and every stderr line.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().expect("wait");
        // The reader thread ends at end of stream, which follows the exit.
        let mut all = std::mem::take(&mut self.seen);
        all.extend(self.lines.iter());
        (status, all.join("\n"))
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: &str) {
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

/// Runs a daemon command to completion (for daemons expected to refuse to start).
pub fn run_to_exit(cmd: Command) -> (ExitStatus, String) {
    Daemon::spawn(cmd).wait()
}

/// A `/proc/<pid>/status` field in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("field")
}

/// Copies the binary `bin` into a fresh temporary folder that every user can traverse (0755,
/// the binary 0755), so a test can run it as another user even when the checkout sits in a
/// private (0700) folder that user cannot enter. The folder, and the copy, go when the
/// returned `TempDir` is dropped. Tries `$TMPDIR`, then `/tmp`, then `/dev/shm`, and takes the
/// first whose every ancestor others may traverse; panics (saying why) if none is.
pub fn traversable_copy(bin: &Path) -> (tempfile::TempDir, PathBuf) {
    let candidates = [
        std::env::temp_dir(),
        PathBuf::from("/tmp"),
        PathBuf::from("/dev/shm"),
    ];
    let base = candidates
        .iter()
        .find(|c| others_can_traverse(c))
        .unwrap_or_else(|| panic!("no temporary folder others can traverse among {candidates:?}"));
    let dir = tempfile::Builder::new()
        .prefix("hearth-bin-")
        .tempdir_in(base)
        .expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let copy = dir
        .path()
        .join(bin.file_name().expect("a binary has a file name"));
    std::fs::copy(bin, &copy).expect("copy the binary");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (dir, copy)
}

/// Whether `path` and each of its ancestors is a folder others may search (`o+x`).
fn others_can_traverse(path: &Path) -> bool {
    path.ancestors().all(|p| {
        std::fs::metadata(p)
            .map(|m| m.is_dir() && m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}
