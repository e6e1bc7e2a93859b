//! `hearth bench --spawn`: a private `hearthd` for one run. It is the `hearthd` next to this
//! `hearth` binary, started on a socket in a fresh folder of mode 0700 (and on a loopback TCP
//! port when asked), in a process group of its own so that the terminal's Ctrl-C reaches only
//! us. We learn it is ready — and its TCP port — from its `ready on …` log line, keep draining
//! its log so it never blocks on a full pipe, and stop it with SIGTERM when the run is over.
//! What the daemon is measured for is decided in `bench.rs`; the numbers come from `cpu.rs`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::oneshot;

use crate::exit::Unreachable;

/// How many of the daemon's last log lines are kept, to explain a failure.
const LOG_LINES: usize = 20;
/// How long the daemon gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running `hearthd` of our own. Dropping it kills the daemon (SIGKILL) if [`stop`] was not
/// called, and removes its folder either way (the daemon removes its socket only on a clean
/// stop).
///
/// [`stop`]: Daemon::stop
pub(crate) struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
    socket: PathBuf,
    tcp: Option<SocketAddr>,
    log: Arc<Mutex<VecDeque<String>>>,
}

/// What the daemon's log said at start-up.
struct Ready {
    tcp: Option<SocketAddr>,
}

impl Daemon {
    /// Starts `hearthd`, also listening on `tcp` when given (port 0 picks a free one), and
    /// waits up to `timeout` for it to be ready.
    pub(crate) async fn spawn(tcp: Option<SocketAddr>, timeout: Duration) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()
            .context("cannot find where this hearth binary is")?
            .with_file_name("hearthd");
        if !exe.is_file() {
            return Err(Unreachable(format!(
                "--spawn needs hearthd next to hearth, but there is no {} (build it with \
                 `cargo build -p hearthd`, in the same profile)",
                exe.display()
            ))
            .into());
        }
        let dir = private_dir()?;
        let socket = dir.join("hearthd.sock");
        let mut command = Command::new(&exe);
        command
            .arg("--socket")
            .arg(&socket)
            .env_remove("RUST_LOG")
            .env_remove("HEARTH_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Not in our process group: Ctrl-C at the terminal is ours to handle.
            .process_group(0);
        if let Some(addr) = tcp {
            command.arg("--listen").arg(format!("tcp:{addr}"));
        }
        let mut daemon = Daemon {
            child: None,
            dir,
            socket,
            tcp: None,
            log: Arc::default(),
        };
        let mut child = command
            .spawn()
            .map_err(|e| Unreachable(format!("cannot start {}: {e}", exe.display())))?;
        let stderr = child.stderr.take();
        daemon.child = Some(child);
        let Some(stderr) = stderr else {
            return Err(Unreachable("hearthd's log is not readable".into()).into());
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let log = daemon.log.clone();
        std::thread::Builder::new()
            .name("hearthd log".into())
            .spawn(move || drain_log(stderr, &log, ready_tx))
            .context("cannot start a thread to read hearthd's log")?;
        let ready = match tokio::time::timeout(timeout, ready_rx).await {
            Ok(Ok(ready)) => ready,
            Ok(Err(_)) => {
                return Err(Unreachable(format!(
                    "hearthd exited before it was ready{}",
                    daemon.log_tail()
                ))
                .into());
            }
            Err(_) => {
                return Err(Unreachable(format!(
                    "hearthd was not ready within {timeout:?}{}",
                    daemon.log_tail()
                ))
                .into());
            }
        };
        if tcp.is_some() && ready.tcp.is_none() {
            return Err(Unreachable(format!(
                "hearthd did not say which TCP address it listens on{}",
                daemon.log_tail()
            ))
            .into());
        }
        daemon.tcp = ready.tcp;
        Ok(daemon)
    }

    /// The daemon's process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its Unix socket.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// Its TCP address, when it was started with one.
    pub(crate) fn tcp(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// Sends SIGTERM and waits for the daemon to exit (killing it if it takes longer than
    /// [`STOP_GRACE`]). Returns its exit status.
    pub(crate) async fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            anyhow::bail!("hearthd was not running");
        };
        terminate(&child);
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        loop {
            if let Some(status) = child.try_wait().context("cannot wait for hearthd")? {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let status = child.wait().context("cannot wait for hearthd")?;
                anyhow::bail!(
                    "hearthd did not stop within {STOP_GRACE:?} of SIGTERM; killed ({status})"
                );
            }
            // Polling: std's `Child` has no async wait, and this runs once per bench.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The last lines the daemon logged, as `:\n  line…`, or nothing.
    pub(crate) fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().fold(String::new(), |mut out, line| {
            out.push_str(if out.is_empty() {
                "; its log:\n  "
            } else {
                "\n  "
            });
            out.push_str(line);
            out
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SIGTERM: the daemon's graceful shutdown.
#[allow(unsafe_code)]
fn terminate(child: &Child) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) reads no memory of ours. `pid` is our child, not yet waited for (we hold
    // its `Child` and have not reaped it), so the id cannot have been reused by another
    // process. Failure (it already exited) is harmless: the wait that follows sees it.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// A fresh folder of mode 0700 in the temporary directory. `mkdir` fails on anything that
/// already exists (a symlink included), so the folder is ours.
fn private_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let dir = base.join(format!("hearth-bench-{}-{attempt}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Unreachable(format!(
                    "cannot create a folder for hearthd in {}: {e}",
                    base.display()
                ))
                .into());
            }
        }
    }
    Err(Unreachable(format!(
        "cannot create a folder for hearthd in {}",
        base.display()
    ))
    .into())
}

/// Reads the daemon's log until it closes: keeps the last [`LOG_LINES`], and reports the
/// `ready on` line once.
fn drain_log(
    stderr: impl std::io::Read,
    log: &Mutex<VecDeque<String>>,
    ready: oneshot::Sender<Ready>,
) {
    let mut ready = Some(ready);
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Some(found) = ready_line(&line)
            && let Some(tx) = ready.take()
        {
            let _ = tx.send(found);
        }
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() == LOG_LINES {
            log.pop_front();
        }
        log.push_back(line);
    }
}

/// `… hearthd 0.1.0 ready on /path and tcp:127.0.0.1:PORT pid=N`, or without the `and tcp:`
/// part when it listens on the Unix socket only.
fn ready_line(line: &str) -> Option<Ready> {
    let rest = &line[line.find(" ready on ")?..];
    let tcp = rest.find(" and tcp:").and_then(|at| {
        let addr = rest[at + " and tcp:".len()..]
            .split_ascii_whitespace()
            .next()?;
        addr.parse().ok()
    });
    Some(Ready { tcp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_gives_the_tcp_address() {
        let line = "2026-11-23T21:16:51.000Z  INFO hearthd 0.1.0 ready on /tmp/h/hearthd.sock \
                    and tcp:127.0.0.1:40123 pid=77";
        let ready = ready_line(line).expect("a ready line");
        assert_eq!(ready.tcp, Some(SocketAddr::from(([127, 0, 0, 1], 40123))));
        let unix_only = "INFO hearthd 0.1.0 ready on /tmp/h/hearthd.sock pid=77";
        assert_eq!(ready_line(unix_only).map(|r| r.tcp), Some(None));
        assert!(ready_line("INFO listening socket=/tmp/h/hearthd.sock").is_none());
    }

    #[test]
    fn terminate_sends_sigterm() {
        use std::os::unix::process::ExitStatusExt;
        let mut child = Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("starting sleep");
        terminate(&child);
        let status = child.wait().expect("waiting for sleep");
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    }

    #[test]
    fn the_private_folder_is_ours_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = private_dir().expect("a folder");
        let mode = std::fs::metadata(&dir)
            .expect("its metadata")
            .permissions()
            .mode();
        std::fs::remove_dir(&dir).expect("removing it");
        assert_eq!(mode & 0o777, 0o700);
    }
}
