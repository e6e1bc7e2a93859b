//! Start on first use: [`Client::connect_or_start`] connects to the daemon, and when nothing
//! answers on the socket it starts `hearthd` (detached, in a process group of its own, with
//! its output in `hearthd.log` beside the socket and `--idle-exit` on), waits for it to
//! answer, and connects. A daemon of another build than the one this client would start
//! (its `$/hello` `build_id`, see [`hearth_protocol::build_id`]) is asked to shut down and
//! replaced, unless [`StartOptions::replace_stale`] is off.
//!
//! However many clients race, one daemon results: starting and replacing happen under a start
//! lock beside the socket (`<socket>.start`), each client checks again for a daemon once it
//! holds that lock, and the daemon's own lock file is the last word (a second daemon exits
//! with "already running" and its client connects to the first). [`find_daemon`] says which
//! binary would be started and why.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_protocol::build_id::{self, BUILD_ID_ENV};

use crate::config::ClientConfig;
use crate::{Client, Error};

/// The environment variable naming the daemon binary to start, before any search.
pub const DAEMON_ENV: &str = "HEARTHD";
/// The environment variable that, set to `1`, stops clients replacing a daemon of another
/// build ([`StartOptions::replace_stale`]).
pub const NO_REPLACE_ENV: &str = "HEARTH_NO_REPLACE";
/// The idle exit a started daemon gets by default.
pub const DEFAULT_IDLE_EXIT: Duration = Duration::from_secs(600);

/// How [`Client::connect_or_start`] starts (and replaces) a daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartOptions {
    /// The daemon binary; `None` (the default) looks for one with [`find_daemon`].
    pub daemon: Option<PathBuf>,
    /// `--idle-exit` for a started daemon; default [`DEFAULT_IDLE_EXIT`]. `None` passes none.
    pub idle_exit: Option<Duration>,
    /// Further arguments for a started daemon.
    pub args: Vec<OsString>,
    /// Whether a running daemon of another build is asked to shut down and replaced. Default
    /// on, unless `HEARTH_NO_REPLACE=1`.
    pub replace_stale: bool,
    /// The build id expected of the daemon; `None` means `$HEARTH_BUILD_ID` if set, else the
    /// hash of the binary that would be started. A daemon started by this client gets
    /// `HEARTH_BUILD_ID` set to an id given here.
    pub build_id: Option<String>,
    /// How long to wait for a started daemon to answer (and for a replaced one to go).
    /// Default 10 s.
    pub ready_timeout: Duration,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            daemon: None,
            idle_exit: Some(DEFAULT_IDLE_EXIT),
            args: Vec::new(),
            replace_stale: std::env::var_os(NO_REPLACE_ENV).is_none_or(|v| v != "1"),
            build_id: None,
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a daemon could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// No daemon binary was found.
    #[error(
        "no hearthd to start: not in ${DAEMON_ENV}, not next to {exe}, not on PATH; install \
         hearthd beside hearth or set {DAEMON_ENV}"
    )]
    NotFound {
        /// The running program, next to which hearthd was looked for.
        exe: String,
    },
    /// The binary could not be run.
    #[error("cannot run {}", path.display())]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The socket's folder is unsafe or cannot be made (the daemon's rule,
    /// [`hearth_transport::folder`]); nothing was created in it.
    #[error(transparent)]
    Folder(hearth_transport::folder::FolderError),
    /// A file beside the socket (the start lock, the log) could not be made.
    #[error("cannot use {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The daemon exited before it answered.
    #[error("hearthd exited ({status}) before answering on {}; its log ({}) ends: {tail}", socket.display(), log.display())]
    Exited {
        /// How it exited.
        status: ExitStatus,
        /// The socket it was to serve.
        socket: PathBuf,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// Nothing answered within the wait.
    #[error("no daemon answered on {} within {waited:?}; see {}", socket.display(), log.display())]
    NotReady {
        /// The socket.
        socket: PathBuf,
        /// How long we waited.
        waited: Duration,
        /// The daemon's log file.
        log: PathBuf,
    },
    /// A daemon of another build did not go away when asked.
    #[error(
        "the daemon on {} (build {found}) did not shut down within {waited:?} to be replaced by build {expected}; stop it, or set {NO_REPLACE_ENV}=1 to keep it",
        socket.display()
    )]
    StaleStays {
        /// The socket.
        socket: PathBuf,
        /// Its build id.
        found: String,
        /// The build id expected.
        expected: String,
        /// How long we waited.
        waited: Duration,
    },
}

/// Where the daemon binary was found, for `hearth doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonSource {
    /// Named by `$HEARTHD`.
    Env,
    /// In the same folder as the running program.
    NextToExe,
    /// Found on `PATH`.
    Path,
}

impl std::fmt::Display for DaemonSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Env => "from $HEARTHD",
            Self::NextToExe => "next to the running program",
            Self::Path => "on PATH",
        })
    }
}

/// The daemon binary a client would start: `$HEARTHD` if set and not empty, else `hearthd`
/// next to the running executable, else the first `hearthd` on `PATH`.
pub fn find_daemon() -> Result<(PathBuf, DaemonSource), StartError> {
    let exe = std::env::current_exe().ok();
    find_daemon_in(
        std::env::var_os(DAEMON_ENV).as_deref(),
        exe.as_deref(),
        std::env::var_os("PATH").as_deref(),
    )
}

fn find_daemon_in(
    env: Option<&OsStr>,
    exe: Option<&Path>,
    path: Option<&OsStr>,
) -> Result<(PathBuf, DaemonSource), StartError> {
    if let Some(p) = env.filter(|p| !p.is_empty()) {
        return Ok((PathBuf::from(p), DaemonSource::Env));
    }
    if let Some(beside) = exe.and_then(Path::parent).map(|d| d.join("hearthd"))
        && beside.is_file()
    {
        return Ok((beside, DaemonSource::NextToExe));
    }
    if let Some(path) = path {
        for dir in std::env::split_paths(path) {
            let candidate = dir.join("hearthd");
            if candidate.is_file() {
                return Ok((candidate, DaemonSource::Path));
            }
        }
    }
    Err(StartError::NotFound {
        exe: exe.map_or_else(|| "this program".into(), |e| e.display().to_string()),
    })
}

/// The log file of a daemon started for `socket`: `hearthd.log` in the socket's folder.
pub fn log_path(socket: &Path) -> PathBuf {
    socket
        .parent()
        .unwrap_or(Path::new("."))
        .join("hearthd.log")
}

/// The start lock beside `socket`: held while a client starts or replaces its daemon.
pub fn start_lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".start");
    PathBuf::from(name)
}

/// Whether a connect error means that nothing serves the socket (so starting one may help),
/// rather than something else in the way (permissions, a file that is not a socket).
fn nothing_answers(e: &Error) -> bool {
    matches!(e, Error::Connect { source, .. }
        if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused))
}

impl Client {
    /// Connects to the daemon at `path`, starting one when nothing answers there, and
    /// replacing one of another build when `start.replace_stale` allows (see the module docs
    /// of `start.rs` and README's "Embedding the client").
    pub async fn connect_or_start(
        path: impl AsRef<Path>,
        config: ClientConfig,
        start: &StartOptions,
    ) -> Result<Client, Error> {
        let path = path.as_ref();
        let mut starter = Starter::new(path, start)?;
        match Client::connect_with(path, config.clone()).await {
            Ok(client) if !starter.is_stale(&client) => return Ok(client),
            Ok(stale) => starter.stale = Some(stale),
            Err(e) if nothing_answers(&e) => {}
            Err(e) => return Err(e),
        }
        let _lock = starter.lock().await?;
        // Another client may have started or replaced the daemon while we waited.
        starter.stale = None;
        match Client::connect_with(path, config.clone()).await {
            Ok(client) if !starter.is_stale(&client) => return Ok(client),
            Ok(stale) => starter.replace(stale).await?,
            Err(e) if nothing_answers(&e) => {}
            Err(e) => return Err(e),
        }
        starter.spawn()?;
        starter.wait_ready(config).await
    }
}

/// One attempt to start a daemon for one socket.
struct Starter<'a> {
    socket: &'a Path,
    options: &'a StartOptions,
    daemon: PathBuf,
    expected: Option<String>,
    stale: Option<Client>,
    child: Option<Arc<Mutex<Option<ExitStatus>>>>,
}

impl<'a> Starter<'a> {
    fn new(socket: &'a Path, options: &'a StartOptions) -> Result<Self, Error> {
        let daemon = match &options.daemon {
            Some(d) => d.clone(),
            None => find_daemon()?.0,
        };
        let expected = match &options.build_id {
            Some(id) => Some(id.clone()),
            None => build_id::expected_build_id(&daemon, std::env::var_os(BUILD_ID_ENV).as_deref()),
        };
        Ok(Self {
            socket,
            options,
            daemon,
            expected,
            stale: None,
            child: None,
        })
    }

    /// Whether `client`'s daemon is a hearthd of another build that we may replace.
    fn is_stale(&self, client: &Client) -> bool {
        let hello = client.hello();
        if !self.options.replace_stale || !hello.server.starts_with("hearthd ") {
            return false;
        }
        match (&hello.build_id, &self.expected) {
            (Some(found), Some(expected)) => !build_id::matches(found, expected),
            // A hearthd from before build ids is older than this client.
            (None, Some(_)) => client.protocol_version() != hearth_protocol::Version::V1,
            (_, None) => false,
        }
    }

    /// Takes the start lock, waiting (bounded) for a client that holds it.
    async fn lock(&self) -> Result<File, Error> {
        // The start lock and the log go beside the socket: check the folder as the daemon
        // will (making it owner-only if missing) before creating anything in it, so that a
        // refused folder is refused here with the daemon's advice, and nothing is left in it.
        let dir = match self.socket.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = self
            .socket
            .file_name()
            .unwrap_or(OsStr::new("hearthd.sock"));
        hearth_transport::folder::check_socket_folder(dir, name).map_err(StartError::Folder)?;
        let path = start_lock_path(self.socket);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| StartError::File {
                path: path.clone(),
                source,
            })?;
        // The holder is bounded by its own ready and replace waits.
        let give_up = Instant::now() + self.options.ready_timeout * 3;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StartError::File {
                        path,
                        source: io::Error::new(
                            io::ErrorKind::TimedOut,
                            "another client held the start lock too long",
                        ),
                    }
                    .into());
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(StartError::File { path, source }.into());
                }
            }
        }
    }

    /// Asks a daemon of another build to shut down gracefully and waits until it has let go
    /// of the socket's lock.
    async fn replace(&self, stale: Client) -> Result<(), Error> {
        let found = stale
            .hello()
            .build_id
            .clone()
            .unwrap_or_else(|| "none".into());
        let expected = self.expected.clone().unwrap_or_default();
        tracing::info!(socket = %self.socket.display(), found, expected, "replacing a daemon of another build");
        // The answer may or may not arrive before the connection closes.
        let _ = stale
            .call_timeout::<_, serde::de::IgnoredAny>("shutdown", &(), self.options.ready_timeout)
            .await;
        drop(stale);
        let lock = hearth_protocol::paths::lock_path(self.socket);
        let give_up = Instant::now() + self.options.ready_timeout;
        loop {
            if !lock_is_held(&lock) && !answers(self.socket) {
                return Ok(());
            }
            if Instant::now() >= give_up {
                return Err(StartError::StaleStays {
                    socket: self.socket.to_owned(),
                    found,
                    expected,
                    waited: self.options.ready_timeout,
                }
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the daemon detached: its own process group (so a terminal's Ctrl-C does not
    /// reach it), no stdin, output appended to the log; a thread reaps it when it exits.
    fn spawn(&mut self) -> Result<(), Error> {
        let log_path = log_path(self.socket);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(|source| StartError::File {
                path: log_path.clone(),
                source,
            })?;
        let log2 = log.try_clone().map_err(|source| StartError::File {
            path: log_path.clone(),
            source,
        })?;
        let mut cmd = Command::new(&self.daemon);
        cmd.arg("--socket").arg(self.socket);
        if let Some(idle) = self.options.idle_exit {
            cmd.arg("--idle-exit")
                .arg(format!("{}ms", idle.as_millis().max(1)));
        }
        cmd.args(&self.options.args)
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        if let Some(id) = &self.options.build_id {
            cmd.env(BUILD_ID_ENV, id);
        }
        let mut child = cmd.spawn().map_err(|source| StartError::Spawn {
            path: self.daemon.clone(),
            source,
        })?;
        tracing::info!(daemon = %self.daemon.display(), pid = child.id(), socket = %self.socket.display(), "started hearthd");
        let exit = Arc::new(Mutex::new(None));
        let seen = exit.clone();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait()
                && let Ok(mut slot) = seen.lock()
            {
                *slot = Some(status);
            }
        });
        self.child = Some(exit);
        Ok(())
    }

    /// Waits for the started daemon (or the one that won a race) to answer.
    async fn wait_ready(&self, config: ClientConfig) -> Result<Client, Error> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match Client::connect_with(self.socket, config.clone()).await {
                Ok(client) => return Ok(client),
                Err(e) if !nothing_answers(&e) => return Err(e),
                Err(_) => {}
            }
            let exited = self
                .child
                .as_ref()
                .and_then(|c| c.lock().ok().and_then(|s| *s));
            if let Some(status) = exited {
                // A daemon that lost a race to another exits "already running": the winner
                // answers soon. Anything else is a failure to report.
                let log = log_path(self.socket);
                let tail = log_tail(&log);
                if !tail.contains("already running") {
                    return Err(StartError::Exited {
                        status,
                        socket: self.socket.to_owned(),
                        log,
                        tail,
                    }
                    .into());
                }
            }
            if started.elapsed() >= self.options.ready_timeout {
                return Err(StartError::NotReady {
                    socket: self.socket.to_owned(),
                    waited: self.options.ready_timeout,
                    log: log_path(self.socket),
                }
                .into());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// Whether a process holds the daemon lock at `path` (false when there is no such file).
pub(crate) fn lock_is_held(path: &Path) -> bool {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        ),
        Err(_) => false,
    }
}

/// Whether something accepts connections on `socket` right now.
fn answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// The last few lines of a log file, on one line.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    let mut lines: Vec<&str> = lines.into_iter().rev().collect();
    if lines.is_empty() {
        lines.push("(empty)");
    }
    lines.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_is_found_by_env_then_beside_the_program_then_on_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        let other = dir.path().join("other");
        std::fs::create_dir_all(&bin).expect("mkdir");
        std::fs::create_dir_all(&other).expect("mkdir");
        let exe = bin.join("hearth");
        let path = std::env::join_paths([&other]).expect("PATH");

        let (p, how) =
            find_daemon_in(Some(OsStr::new("/x/hearthd")), Some(&exe), None).expect("env");
        assert_eq!((p, how), (PathBuf::from("/x/hearthd"), DaemonSource::Env));

        assert!(find_daemon_in(Some(OsStr::new("")), Some(&exe), Some(&path)).is_err());

        std::fs::write(other.join("hearthd"), b"").expect("write");
        let (p, how) = find_daemon_in(None, Some(&exe), Some(&path)).expect("on PATH");
        assert_eq!((p, how), (other.join("hearthd"), DaemonSource::Path));

        std::fs::write(bin.join("hearthd"), b"").expect("write");
        let (p, how) = find_daemon_in(None, Some(&exe), Some(&path)).expect("beside");
        assert_eq!((p, how), (bin.join("hearthd"), DaemonSource::NextToExe));
    }

    #[test]
    fn the_log_and_start_lock_sit_beside_the_socket() {
        let socket = Path::new("/run/u/hearth/hearthd.sock");
        assert_eq!(log_path(socket), Path::new("/run/u/hearth/hearthd.log"));
        assert_eq!(
            start_lock_path(socket),
            Path::new("/run/u/hearth/hearthd.sock.start")
        );
    }
}
