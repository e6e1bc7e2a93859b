//! The socket's place on disk, made safe: the folder check (ours, a real folder, mode 0700),
//! the lock file that makes one daemon per path, the stale-socket probe, and a bind that puts
//! the socket in place already owner-only. [`SocketFiles`] removes the socket and the lock when
//! the daemon is done. Accepting connections and checking peers is `server.rs`'s business.
//!
//! Why the socket is owner-only from the moment it exists: it is bound under a temporary name
//! inside the checked 0700 folder (which no other user can enter), chmod-ed to 0600, and only
//! then renamed to its real name. Renaming also replaces a stale socket atomically, so clients
//! never see a moment with no socket or a half-made one.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::StartError;

/// The longest path a `sockaddr_un` holds, leaving room for the terminating NUL.
pub(crate) const MAX_SOCKET_PATH: usize = 107;

pub(crate) use hearth_transport::folder::current_uid;

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StartError + 'a {
    move |source| StartError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The socket and lock file of a running daemon; removes both when dropped.
#[derive(Debug)]
pub(crate) struct SocketFiles {
    socket: PathBuf,
    /// (device, inode) of the socket we bound, so we never remove someone else's.
    socket_id: Option<(u64, u64)>,
    lock_path: PathBuf,
    lock: Option<File>,
}

impl SocketFiles {
    /// For a socket someone else bound (socket activation): nothing is ours to remove.
    pub(crate) fn inherited(socket: &Path) -> Self {
        Self {
            socket: socket.to_owned(),
            socket_id: None,
            lock_path: hearth_protocol::paths::lock_path(socket),
            lock: None,
        }
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// Removes the socket file, if it is still the one we bound. Called when the daemon stops
    /// accepting; the lock stays held until [`Self::release`] so no second daemon starts
    /// while this one drains.
    pub(crate) fn remove_socket(&mut self) {
        if let Some(id) = self.socket_id.take() {
            match fs::symlink_metadata(&self.socket) {
                Ok(m) if (m.dev(), m.ino()) == id => {
                    if let Err(e) = fs::remove_file(&self.socket) {
                        tracing::warn!(path = %self.socket.display(), "cannot remove socket: {e}");
                    }
                }
                _ => {}
            }
        }
    }

    /// Removes the socket (if still ours) and the lock file, then releases the lock.
    pub(crate) fn release(&mut self) {
        self.remove_socket();
        if let Some(lock) = self.lock.take() {
            // Remove the lock file while still holding the lock; a daemon that opened the old
            // file meanwhile notices the inode changed and retries (see `lock`).
            if let Err(e) = fs::remove_file(&self.lock_path) {
                tracing::warn!(path = %self.lock_path.display(), "cannot remove lock file: {e}");
            }
            drop(lock);
        }
    }
}

impl Drop for SocketFiles {
    fn drop(&mut self) {
        self.release();
    }
}

/// Checks (creating it if missing) that `dir` is safe for the socket: the rule shared with
/// clients that start a daemon, [`hearth_transport::folder::check_socket_folder`].
pub(crate) fn check_folder(dir: &Path, file_name: &std::ffi::OsStr) -> Result<(), StartError> {
    use hearth_transport::folder::{FolderError, check_socket_folder};
    check_socket_folder(dir, file_name).map_err(|e| match e {
        FolderError::Unsafe { path, problem, fix } => {
            StartError::UnsafeFolder { path, problem, fix }
        }
        FolderError::Io { what, path, source } => StartError::Io { what, path, source },
    })
}

/// Takes the exclusive lock beside the socket, or reports that a daemon is running.
fn lock(lock_path: &Path, socket: &Path) -> Result<File, StartError> {
    // The lock file may be removed by a daemon that is just exiting. If we locked a file that
    // has since been unlinked, the lock protects nothing: try again with the new file.
    for _ in 0..8 {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(lock_path)
            .map_err(io_err("cannot open lock file", lock_path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StartError::AlreadyRunning {
                    path: socket.to_owned(),
                });
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(io_err("cannot lock", lock_path)(e));
            }
        }
        let held = file
            .metadata()
            .map_err(io_err("cannot inspect lock file", lock_path))?;
        match fs::symlink_metadata(lock_path) {
            Ok(now) if (now.dev(), now.ino()) == (held.dev(), held.ino()) => return Ok(file),
            _ => continue,
        }
    }
    Err(StartError::AlreadyRunning {
        path: socket.to_owned(),
    })
}

/// Prepares `socket` for serving: checks the folder, takes the lock, replaces a stale socket
/// and binds. Returns the listener and the files to clean up.
pub(crate) fn bind(socket: &Path) -> Result<(UnixListener, SocketFiles), StartError> {
    // Clients elsewhere cannot find a relative path: make it absolute, and say so.
    let absolute;
    let socket = if socket.is_relative() {
        let cwd = std::env::current_dir()
            .map_err(io_err("cannot resolve the relative socket path", socket))?;
        absolute = cwd.join(socket);
        tracing::info!(
            given = %socket.display(),
            path = %absolute.display(),
            "relative socket path resolved against the current folder"
        );
        absolute.as_path()
    } else {
        socket
    };
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(StartError::PathTooLong {
            path: socket.to_owned(),
            len,
            max: MAX_SOCKET_PATH,
        });
    }
    let (Some(dir), Some(file_name)) = (socket.parent(), socket.file_name()) else {
        return Err(StartError::BadPath(socket.to_owned()));
    };
    check_folder(dir, file_name)?;

    let lock_path = hearth_protocol::paths::lock_path(socket);
    let lock = lock(&lock_path, socket)?;
    let mut files = SocketFiles {
        socket: socket.to_owned(),
        socket_id: None,
        lock_path,
        lock: Some(lock),
    };

    // We hold the lock, so a socket that exists is stale — unless a daemon that does not use
    // the lock (an older build, or one whose lock file was deleted) answers on it.
    match fs::symlink_metadata(socket) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(socket).is_ok() {
                // Not ours to clean up: forget the lock file without removing it.
                files.lock = None;
                return Err(StartError::AlreadyRunning {
                    path: socket.to_owned(),
                });
            }
            tracing::info!(path = %socket.display(), "replacing stale socket");
        }
        Ok(_) => {
            return Err(StartError::NotASocket {
                path: socket.to_owned(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot inspect", socket)(e)),
    }

    let mut temp = temp_name(dir);
    if temp.as_os_str().len() > MAX_SOCKET_PATH {
        // The temporary name does not fit where the real one does: bind in place. The 0700
        // folder still keeps everyone else out until the chmod below.
        let _ = fs::remove_file(socket);
        temp = socket.to_owned();
    }
    // A leftover from a crash between bind and rename would make bind fail.
    let _ = fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp).map_err(io_err("cannot bind", &temp))?;
    let placed = fs::set_permissions(&temp, fs::Permissions::from_mode(0o600))
        .map_err(io_err("cannot set permissions on", &temp))
        .and_then(|()| fs::rename(&temp, socket).map_err(io_err("cannot move socket to", socket)));
    if let Err(e) = placed {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    let m = fs::symlink_metadata(socket).map_err(io_err("cannot inspect", socket))?;
    files.socket_id = Some((m.dev(), m.ino()));
    Ok((listener, files))
}

/// A short name in `dir` to bind under before the rename; short so it fits `sun_path`
/// whenever the real path does.
fn temp_name(dir: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".h{}.{n}", std::process::id() % 100_000))
}
