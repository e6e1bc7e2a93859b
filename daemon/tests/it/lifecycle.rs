//! hearthd's lifecycle flags as a process: limits below their minimum are refused, an empty
//! `HEARTH_SOCKET` means unset, relative socket paths are resolved (and unsafe folders get a
//! subfolder suggested, never a chmod), `--idle-exit` stops an unused daemon, and socket
//! activation through `systemd-socket-activate` (Debian's systemd package) serves the passed
//! socket, still refuses other users, and leaves the socket file in place.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hearth_server::protocol::Version;
use hearth_server::protocol::reserved::{HELLO, HelloResult};

use crate::support::{Daemon, Raw, run_to_exit, traversable_copy};

fn hearthd() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_hearthd"))
}

#[test]
fn limits_below_their_minimum_are_refused_with_the_minimum() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("run").join("hearthd.sock");
    for (flag, value, min) in [
        ("--max-frame", "10", "64"),
        ("--max-connections", "0", "1"),
        ("--max-in-flight", "0", "1"),
    ] {
        let mut cmd = Daemon::command(hearthd(), &socket);
        cmd.arg(flag).arg(value);
        let (status, log) = run_to_exit(cmd);
        assert_eq!(status.code(), Some(2), "{flag} {value}: {log}");
        assert!(
            log.contains(&format!("below the minimum, {min}")),
            "{flag} {value}: {log}"
        );
        assert!(!socket.exists(), "refused before binding");
    }
}

#[test]
fn an_empty_hearth_socket_means_unset() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cmd = Daemon::bare(hearthd());
    cmd.env("HEARTH_SOCKET", "")
        .env("XDG_RUNTIME_DIR", tmp.path())
        .args(["--idle-exit", "30s"]);
    let mut d = Daemon::spawn(cmd);
    d.wait_for_line("ready on");
    let socket = tmp.path().join("hearth").join("hearthd.sock");
    assert!(socket.exists(), "the XDG default was used");
}

#[test]
fn a_relative_socket_path_is_resolved_and_said() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let mut cmd = Daemon::bare(hearthd());
    cmd.current_dir(tmp.path()).args(["--socket", "x.sock"]);
    let mut d = Daemon::spawn(cmd);
    let lines = d.wait_for_line("ready on").join("\n");
    let absolute = tmp.path().join("x.sock");
    assert!(lines.contains("relative socket path resolved"), "{lines}");
    assert!(lines.contains(&absolute.display().to_string()), "{lines}");
    assert!(absolute.exists());
}

#[test]
fn a_shared_folder_gets_a_subfolder_suggested_not_a_chmod() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let mut cmd = Daemon::bare(hearthd());
    cmd.current_dir(&shared).args(["--socket", "x.sock"]);
    let (status, log) = run_to_exit(cmd);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(!log.contains("chmod"), "{log}");
    assert!(
        log.contains(&format!("--socket {}/hearth-", shared.display())),
        "{log}"
    );
    assert_eq!(
        std::fs::metadata(&shared)
            .expect("stat")
            .permissions()
            .mode()
            & 0o7777,
        0o1777,
        "untouched"
    );
}

#[tokio::test]
async fn idle_exit_stops_a_daemon_nobody_uses() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("run").join("hearthd.sock");
    let mut cmd = Daemon::command(hearthd(), &socket);
    cmd.args(["--idle-exit", "1s"]);
    let mut d = Daemon::spawn(cmd);
    d.wait_for_line("ready on");
    {
        let mut c = Raw::connect(&socket).await;
        let back: u8 = c.call(1, "echo", &3u8).await;
        assert_eq!(back, 3);
    }
    // Bounded by the testkit's patience: a daemon that never stops fails here.
    d.wait_for_line("no connection for the idle-exit time");
    d.wait_for_line("stopped");
    let (status, _) = d.wait();
    assert!(status.success());
    assert!(!socket.exists(), "socket removed");
}

/// `systemd-socket-activate -l SOCKET hearthd …`, as systemd's `hearthd.socket` would start it.
fn activate(bin: &Path, socket: &Path) -> Command {
    activate_with(bin, socket, &["--idle-exit", "60s"])
}

/// The same with `args` for hearthd.
fn activate_with(bin: &Path, socket: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("systemd-socket-activate");
    // systemd-socket-activate passes on only the variables named with -E.
    cmd.arg("-l")
        .arg(socket)
        .args(["-E", "HEARTH_BUILD_ID=activated-test"])
        .args(["-E", "RUST_LOG=info", "-E", "NO_COLOR=1"])
        .arg(bin)
        .args(args)
        .env_remove("HEARTH_SOCKET")
        .env("HEARTH_BUILD_ID", "activated-test")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn socket_activate_available() -> bool {
    Command::new("systemd-socket-activate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn socket_activation_serves_the_passed_socket_and_leaves_it() {
    assert!(
        socket_activate_available(),
        "systemd-socket-activate is missing: install Debian's systemd package (CI does)"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("hearthd.sock");
    let mut d = Daemon::spawn(activate(hearthd(), &socket));
    d.wait_for_line("Listening on");
    // The first connection makes systemd-socket-activate exec hearthd.
    let mut c = Raw::connect(&socket).await.speaking(Version::V2);
    let hello: HelloResult = c.call(1, HELLO, &()).await;
    assert_eq!(hello.build_id.as_deref(), Some("activated-test"));
    d.wait_for_line("serving the socket systemd passed");
    let _: serde::de::IgnoredAny = c.call(2, "shutdown", &()).await;
    drop(c);
    d.wait_for_line("stopped");
    let (status, log) = d.wait();
    assert!(status.success(), "{log}");
    assert!(
        socket.exists(),
        "the socket file stays with whoever bound it"
    );
    assert!(
        !hearth_server::protocol::paths::lock_path(&socket).exists(),
        "no lock file"
    );
}

/// As in the server's own test of the uid check: the daemon runs as `nobody` (here with
/// systemd-socket-activate binding the socket as `nobody` too) and root connects. Needs root.
#[tokio::test]
async fn socket_activation_still_refuses_other_users() {
    assert!(
        socket_activate_available(),
        "systemd-socket-activate is missing: install Debian's systemd package (CI does)"
    );
    if !is_root() {
        eprintln!("not root: cannot run hearthd as another user; skipping the refusal half");
        return;
    }
    let (shared, bin) = traversable_copy(hearthd());
    let dir: PathBuf = shared.path().join("nobody");
    std::fs::create_dir(&dir).expect("mkdir");
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
    let socket = dir.join("hearthd.sock");
    let mut cmd = activate(&bin, &socket);
    cmd.current_dir(shared.path()).uid(65534).gid(65534);
    let mut d = Daemon::spawn(cmd);
    d.wait_for_line("Listening on");
    let mut c = Raw::connect(&socket).await;
    let frame = c.request_frame(1, "echo", &1u8);
    let _ = tokio::io::AsyncWriteExt::write_all(&mut c.stream, &frame).await;
    assert!(
        c.next_or_reset().await.is_none(),
        "closed without an answer"
    );
    d.wait_for_line("refused connection: peer is not the daemon's user");
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let f = tempfile::NamedTempFile::new().expect("temp file");
    f.as_file().metadata().expect("stat").uid() == 0
}

/// The value of `key=` in a systemd unit file's text.
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {unit}"))
}

/// contrib/systemd's units, as systemd would run them: the socket where clients look by
/// default (`%t` is `$XDG_RUNTIME_DIR`), hearthd with the service's arguments, answering.
#[tokio::test]
async fn the_contrib_systemd_units_put_the_socket_where_clients_look() {
    assert!(
        socket_activate_available(),
        "systemd-socket-activate is missing: install Debian's systemd package (CI does)"
    );
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/systemd");
    let socket_unit =
        std::fs::read_to_string(contrib.join("hearthd.socket")).expect("hearthd.socket");
    let service =
        std::fs::read_to_string(contrib.join("hearthd.service")).expect("hearthd.service");

    let runtime = tempfile::tempdir().expect("tempdir");
    let listen = unit_value(&socket_unit, "ListenStream");
    let socket = PathBuf::from(listen.replace("%t", &runtime.path().display().to_string()));
    let uid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").expect("stat").uid()
    };
    assert_eq!(
        socket,
        hearth_server::protocol::paths::default_socket_path(
            None,
            Some(runtime.path().as_os_str()),
            uid
        ),
        "ListenStream is the default socket path"
    );
    assert_eq!(unit_value(&socket_unit, "SocketMode"), "0600");
    assert_eq!(unit_value(&socket_unit, "DirectoryMode"), "0700");

    let exec = unit_value(&service, "ExecStart");
    let mut words = exec.split_whitespace();
    assert!(
        words.next().is_some_and(|bin| bin.ends_with("/hearthd")),
        "{exec}"
    );
    let args: Vec<&str> = words.collect();
    assert!(args.contains(&"--idle-exit"), "{exec}");

    std::fs::create_dir_all(socket.parent().expect("a folder")).expect("mkdir");
    let mut d = Daemon::spawn(activate_with(hearthd(), &socket, &args));
    d.wait_for_line("Listening on");
    let mut c = Raw::connect(&socket).await;
    let back: String = c.call(1, "echo", &"unit").await;
    assert_eq!(back, "unit");
    let _: serde::de::IgnoredAny = c.call(2, "shutdown", &()).await;
    drop(c);
    d.wait_for_line("stopped");
    let (status, log) = d.wait();
    assert!(status.success(), "{log}");
}
