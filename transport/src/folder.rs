//! The socket folder rule, shared by the daemon (which refuses to bind in an unsafe folder)
//! and by clients that start a daemon (which must not create the start lock or the daemon's
//! log in a folder the daemon would then refuse). A folder is safe when it is a real folder,
//! not a symbolic link, owned by this user, with no group or other permissions; a missing
//! folder is created (its last component only) owner-only.
//!
//! The advice for an unsafe folder never asks to change that folder: it may be `/tmp`, the
//! user's home or a project folder, shared on purpose. It names a dedicated subfolder instead.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a socket folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// The folder exists but is not safe for the socket.
    #[error("refusing to use socket folder {}: {problem}; {fix}", path.display())]
    Unsafe {
        /// The folder.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// What the user can do.
        fix: String,
    },
    /// The folder could not be inspected or created. The OS error is the source, not part of
    /// this message, so that printing the chain says it once.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The effective user id of this process.
#[allow(unsafe_code)]
pub fn current_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory we own, and cannot fail.
    unsafe { libc::geteuid() }
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FolderError + 'a {
    move |source| FolderError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Checks that `dir`, the folder of a socket named `file_name`, is safe, creating it
/// owner-only if it is missing (only the last component: its parent must exist).
pub fn check_socket_folder(dir: &Path, file_name: &OsStr) -> Result<(), FolderError> {
    let unsafe_folder = |problem: String, fix: String| FolderError::Unsafe {
        path: dir.to_owned(),
        problem,
        fix,
    };
    let subfolder = || {
        format!(
            "use a folder of its own, which hearthd creates owner-only: --socket {}",
            dir.join(format!("hearth-{}", current_uid()))
                .join(file_name)
                .display()
        )
    };
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .or_else(|e| match e.kind() {
                    // Another process made it meanwhile; it is checked below like any other.
                    io::ErrorKind::AlreadyExists => Ok(()),
                    _ => Err(e),
                })
                .map_err(io_err("cannot create socket folder", dir))?;
            let made =
                fs::symlink_metadata(dir).map_err(io_err("cannot inspect socket folder", dir))?;
            // The mode passed to mkdir is filtered by the umask; set it exactly (only on a
            // folder that is ours and really a folder: the checks below judge anything else).
            if made.is_dir() && made.uid() == current_uid() && made.mode() & 0o777 != 0o700 {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                    .map_err(io_err("cannot set permissions on socket folder", dir))?;
            }
            fs::symlink_metadata(dir).map_err(io_err("cannot inspect socket folder", dir))?
        }
        Err(e) => return Err(io_err("cannot inspect socket folder", dir)(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_folder(
            "it is a symbolic link".into(),
            format!(
                "remove the link (rm {}) or choose another path",
                dir.display()
            ),
        ));
    }
    if !meta.is_dir() {
        return Err(unsafe_folder(
            "it is not a folder".into(),
            "choose another path with --socket or HEARTH_SOCKET".into(),
        ));
    }
    let me = current_uid();
    if meta.uid() != me {
        return Err(unsafe_folder(
            format!("it is owned by uid {}, not by you (uid {me})", meta.uid()),
            "choose a folder of your own with --socket or HEARTH_SOCKET".into(),
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(unsafe_folder(
            format!("other users have access to it (mode {mode:o})"),
            subfolder(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_folder_is_made_owner_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("sock");
        check_socket_folder(&dir, OsStr::new("hearthd.sock")).expect("made");
        let meta = fs::metadata(&dir).expect("stat");
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o777, 0o700);
        assert_eq!(meta.uid(), current_uid());
        // And it passes a second time, as it is.
        check_socket_folder(&dir, OsStr::new("hearthd.sock")).expect("still safe");
    }

    #[test]
    fn a_shared_folder_is_refused_with_a_subfolder_as_the_advice() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("shared");
        fs::create_dir(&dir).expect("mkdir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).expect("chmod");
        let err = check_socket_folder(&dir, OsStr::new("x.sock")).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("other users have access to it (mode 777)"),
            "{text}"
        );
        assert!(
            text.contains(&format!("hearth-{}/x.sock", current_uid())),
            "{text}"
        );
        assert!(!text.contains("chmod"), "{text}");
        // Refused as it was: its mode is not touched.
        let mode = fs::metadata(&dir).expect("stat").mode() & 0o7777;
        assert_eq!(mode, 0o1777);
    }

    #[test]
    fn a_link_and_a_file_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let real = tmp.path().join("real");
        fs::create_dir(&real).expect("mkdir");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let err = check_socket_folder(&link, OsStr::new("s")).expect_err("a link");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let file = tmp.path().join("file");
        fs::write(&file, b"x").expect("write");
        let err = check_socket_folder(&file, OsStr::new("s")).expect_err("a file");
        assert!(err.to_string().contains("not a folder"), "{err}");
    }

    #[test]
    fn a_folder_whose_parent_is_missing_says_so_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("no").join("such");
        let err = check_socket_folder(&dir, OsStr::new("s")).expect_err("no parent");
        let FolderError::Io { what, source, .. } = &err else {
            panic!("an I/O error: {err}");
        };
        assert_eq!(*what, "cannot create socket folder");
        assert_eq!(source.kind(), io::ErrorKind::NotFound);
        assert!(!err.to_string().contains("os error"), "{err}");
    }

    #[test]
    fn current_uid_matches_the_owner_of_a_file_we_create() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("f");
        fs::write(&path, b"x").expect("write");
        assert_eq!(current_uid(), fs::metadata(&path).expect("stat").uid());
    }
}
