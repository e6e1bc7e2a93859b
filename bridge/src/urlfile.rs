//! `bridge.url`: the printed URL (token included) written beside the daemon's socket, in its
//! owner-only folder, with mode 0600 — so the owner's scripts can find the bridge and no other
//! user can read the token. The file is written whole under a temporary name and renamed, so a
//! reader never sees half a URL; it is removed when the bridge stops.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// The file's name in the socket's folder.
pub(crate) const FILE_NAME: &str = "bridge.url";

/// Writes `url` (and a newline) to `bridge.url` in `socket`'s folder; returns its path.
pub(crate) fn write(socket: &Path, url: &str) -> Result<PathBuf, Error> {
    let dir = socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| Error::NoSocketFolder(socket.to_owned()))?;
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!(".{FILE_NAME}.{}", std::process::id()));
    let fail = |source| Error::UrlFile {
        path: path.clone(),
        source,
    };
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    file.write_all(format!("{url}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, &path))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
        .map_err(fail)?;
    Ok(path)
}

/// Removes the file if it still holds `url` (another bridge may have replaced it since).
pub(crate) fn remove(path: &Path, url: &str) {
    if fs::read_to_string(path).is_ok_and(|text| text.trim_end() == url) {
        let _ = fs::remove_file(path);
    }
}
