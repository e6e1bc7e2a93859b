//! Where to find the daemon: [`default_socket_path`] applies the protocol crate's rule to this
//! process's environment and user id. Connecting, and what a failed connect says, is in
//! `client.rs` and `error.rs`.

use std::path::PathBuf;

use hearth_protocol::paths::{self, SOCKET_ENV};

/// The socket path a client uses when given none: `$HEARTH_SOCKET`, else
/// `$XDG_RUNTIME_DIR/hearth/hearthd.sock`, else `/tmp/hearth-<uid>/hearthd.sock` — the same
/// rule the daemon follows ([`hearth_protocol::paths::default_socket_path`]).
pub fn default_socket_path() -> PathBuf {
    paths::default_socket_path(
        std::env::var_os(SOCKET_ENV).as_deref(),
        std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
        current_uid(),
    )
}

/// The real user id of this process.
#[allow(unsafe_code)]
pub(crate) fn current_uid() -> u32 {
    // SAFETY: getuid(2) takes no arguments, touches no memory of ours, cannot fail and is
    // async-signal-safe; it only reads the calling process's credentials.
    unsafe { libc::getuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_matches_the_owner_of_a_file_we_create() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("a temporary folder");
        let meta = std::fs::metadata(dir.path()).expect("its metadata");
        // A process creates files with its effective uid; tests do not run setuid, so the
        // real and effective ids agree.
        assert_eq!(current_uid(), meta.uid());
    }
}
