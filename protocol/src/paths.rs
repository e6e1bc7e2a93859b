//! Where the daemon's socket lives by default, as a pure function of the environment, so the
//! daemon and every client agree. The rule: `$HEARTH_SOCKET` if set and not empty, else
//! `$XDG_RUNTIME_DIR/hearth/hearthd.sock` if `XDG_RUNTIME_DIR` is set and absolute, else
//! `/tmp/hearth-<uid>/hearthd.sock`. A `--socket` flag, where a program has one, wins over all.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The environment variable that overrides the default socket path.
pub const SOCKET_ENV: &str = "HEARTH_SOCKET";

/// The socket's file name inside its folder.
pub const SOCKET_NAME: &str = "hearthd.sock";

/// The default socket path given the values of `HEARTH_SOCKET` and `XDG_RUNTIME_DIR` and the
/// user's uid. Empty or relative `XDG_RUNTIME_DIR` values are ignored, as the XDG spec asks.
pub fn default_socket_path(
    hearth_socket: Option<&OsStr>,
    xdg_runtime_dir: Option<&OsStr>,
    uid: u32,
) -> PathBuf {
    if let Some(path) = hearth_socket.filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    match xdg_runtime_dir.map(Path::new) {
        Some(dir) if dir.is_absolute() => dir.join("hearth").join(SOCKET_NAME),
        _ => PathBuf::from(format!("/tmp/hearth-{uid}")).join(SOCKET_NAME),
    }
}

/// The lock file that guards a socket path: the same path with `.lock` appended.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert_eq!(
            default_socket_path(os("/x/y.sock"), os("/run/user/5"), 5),
            PathBuf::from("/x/y.sock")
        );
        assert_eq!(
            default_socket_path(None, os("/run/user/5"), 5),
            PathBuf::from("/run/user/5/hearth/hearthd.sock")
        );
        assert_eq!(
            default_socket_path(os(""), os("relative"), 5),
            PathBuf::from("/tmp/hearth-5/hearthd.sock")
        );
        assert_eq!(
            default_socket_path(None, None, 1000),
            PathBuf::from("/tmp/hearth-1000/hearthd.sock")
        );
        assert_eq!(
            lock_path(Path::new("/a/b.sock")),
            PathBuf::from("/a/b.sock.lock")
        );
    }
}
