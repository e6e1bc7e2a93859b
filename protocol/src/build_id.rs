//! Build identity: what a daemon announces as `build_id` in `$/hello` and how a client works
//! out the id of the daemon binary it would start, so that both sides agree without talking.
//! The id is the daemon's version, `+`, and a hash of its executable file's identity (size,
//! modification time, inode), which changes whenever the binary is rebuilt or reinstalled.
//! `HEARTH_BUILD_ID`, when set and not empty, replaces the computed id on both sides (for
//! tests, and for packagers who want ids that survive a reinstall of the same build).

use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The environment variable that overrides the computed build id.
pub const BUILD_ID_ENV: &str = "HEARTH_BUILD_ID";

/// The hash part of a build id for the executable at `exe`: [`identity_hash`] of its
/// `stat`. Cheap (one `stat`), so a client can check on every start.
pub fn file_hash(exe: &Path) -> io::Result<String> {
    let m = std::fs::metadata(exe)?;
    Ok(identity_hash(
        m.size(),
        m.mtime() as u64,
        m.mtime_nsec() as u64,
        m.ino(),
        m.dev(),
    ))
}

/// 16 lowercase hex digits of 64-bit FNV-1a over five unsigned 64-bit words, each as 8
/// little-endian bytes, in this order: the file's size, its modification time (whole seconds
/// since the epoch, then the nanoseconds part), its inode and its device. Clients in other
/// languages compute the same from their `stat`; `conformance/build_id.json` holds vectors.
pub fn identity_hash(size: u64, mtime_sec: u64, mtime_nsec: u64, ino: u64, dev: u64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for word in [size, mtime_sec, mtime_nsec, ino, dev] {
        for byte in word.to_le_bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The build id a daemon of `version` running from `exe` announces: `override_id` (the value
/// of [`BUILD_ID_ENV`]) when given and not empty, else `<version>+<file_hash>`, else (the
/// executable cannot be inspected) `<version>`.
pub fn daemon_build_id(version: &str, exe: &Path, override_id: Option<&OsStr>) -> String {
    if let Some(id) = override_id.filter(|v| !v.is_empty()) {
        return id.to_string_lossy().into_owned();
    }
    match file_hash(exe) {
        Ok(hash) => format!("{version}+{hash}"),
        Err(_) => version.to_owned(),
    }
}

/// What a client expects of a daemon started from `exe`: the override when given, else the
/// file hash alone (the version is the daemon binary's own, which the client cannot know
/// without running it). `None` when the binary cannot be inspected.
pub fn expected_build_id(exe: &Path, override_id: Option<&OsStr>) -> Option<String> {
    if let Some(id) = override_id.filter(|v| !v.is_empty()) {
        return Some(id.to_string_lossy().into_owned());
    }
    file_hash(exe).ok()
}

/// Whether a daemon announcing `announced` is the build `expected` (from
/// [`expected_build_id`]): the same id, or an id whose hash part is `expected`.
pub fn matches(announced: &str, expected: &str) -> bool {
    announced == expected
        || announced
            .rsplit_once('+')
            .is_some_and(|(_, hash)| hash == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_and_a_client_agree_on_the_same_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("hearthd");
        std::fs::write(&exe, b"one").expect("write");
        let announced = daemon_build_id("1.2.3", &exe, None);
        let expected = expected_build_id(&exe, None).expect("a file");
        assert!(announced.starts_with("1.2.3+"), "{announced}");
        assert!(matches(&announced, &expected));

        std::fs::write(&exe, b"a rebuilt binary").expect("rewrite");
        let after = expected_build_id(&exe, None).expect("a file");
        assert_ne!(after, expected, "a rewrite changes the size");
        assert!(!matches(&announced, &after));
    }

    #[test]
    fn the_override_wins_on_both_sides() {
        let exe = Path::new("/nonexistent/hearthd");
        let id = Some(OsStr::new("test-old"));
        assert_eq!(daemon_build_id("1.0.0", exe, id), "test-old");
        assert_eq!(expected_build_id(exe, id).as_deref(), Some("test-old"));
        assert_eq!(daemon_build_id("1.0.0", exe, Some(OsStr::new(""))), "1.0.0");
        assert_eq!(expected_build_id(exe, None), None);
        assert!(!matches("test-old", "test-new"));
    }
}
