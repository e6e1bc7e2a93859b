//! `hearthd` as a process: file modes, refusing unsafe folders, one daemon per socket, stale
//! sockets, peers of another user, signals and the `shutdown` method.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use hearth_protocol::ErrorCode;
use serde_json::json;

use crate::support::{Daemon, Raw, error_code, hearthd, run_to_exit, traversable_copy};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).expect("stat").mode() & 0o777
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[tokio::test]
async fn folder_is_0700_and_socket_0600_even_under_umask_000() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("run").join("hearthd.sock");
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(hearthd())
        .arg("--socket")
        .arg(&socket)
        .env_remove("HEARTH_SOCKET")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped());
    let mut d = Daemon::spawn(cmd);
    d.wait_for_line("ready on");
    assert_eq!(mode(socket.parent().expect("folder")), 0o700);
    assert_eq!(mode(&socket), 0o600);
    let mut c = Raw::connect(&socket).await;
    let back: String = c.call(1, "echo", &"hi").await;
    assert_eq!(back, "hi");
}

#[test]
fn unsafe_folders_are_refused_and_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");

    let open = tmp.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o770)).expect("chmod");
    std::fs::write(open.join("keep"), b"x").expect("write");
    let socket = open.join("hearthd.sock");
    let (status, log) = run_to_exit(Daemon::command(hearthd(), &socket));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains(&open.display().to_string()), "{log}");
    assert!(
        log.contains("mode 770") && log.contains("hearth-") && !log.contains("chmod"),
        "{log}"
    );
    assert!(open.join("keep").exists(), "nothing unlinked");
    assert_eq!(mode(&open), 0o770, "permissions untouched");

    let real = tmp.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let socket = link.join("hearthd.sock");
    let (status, log) = run_to_exit(Daemon::command(hearthd(), &socket));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("symbolic link"), "{log}");
    assert!(link.exists() && real.exists());

    if is_root() {
        let theirs = tmp.path().join("theirs");
        std::fs::create_dir(&theirs).expect("mkdir");
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
        let socket = theirs.join("hearthd.sock");
        let (status, log) = run_to_exit(Daemon::command(hearthd(), &socket));
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(log.contains("owned by uid 65534"), "{log}");
    } else {
        eprintln!(
            "skipping the other-owner folder case: making a folder of another user needs root"
        );
    }
}

#[test]
fn a_socket_path_too_long_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("x".repeat(120));
    let (status, log) = run_to_exit(Daemon::command(hearthd(), &socket));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("Unix socket paths are limited to 107 bytes"),
        "{log}"
    );
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let socket = dir.join("hearthd.sock");
    // A daemon that died without cleaning up leaves a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    assert!(socket.exists());
    let d = Daemon::start(hearthd(), &socket);
    let mut c = Raw::connect(&socket).await;
    let back: u8 = c.call(1, "echo", &1u8).await;
    assert_eq!(back, 1);
    d.signal("TERM");
    let (status, log) = d.wait();
    assert!(status.success(), "{log}");
}

#[tokio::test]
async fn a_second_daemon_is_refused_and_the_first_keeps_serving() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("run").join("hearthd.sock");
    let _first = Daemon::start(hearthd(), &socket);
    let (status, log) = run_to_exit(Daemon::command(hearthd(), &socket));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("already running"), "{log}");
    let mut c = Raw::connect(&socket).await;
    let back: u8 = c.call(1, "echo", &2u8).await;
    assert_eq!(back, 2);
}

#[tokio::test]
async fn sigterm_answers_in_flight_calls_and_removes_the_socket() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("run").join("hearthd.sock");
    let d = Daemon::start(hearthd(), &socket);
    let mut c = Raw::connect(&socket).await;
    for id in 0..100 {
        c.request(id, "sleep", &json!({"ms": 200})).await;
    }
    // Frames are dispatched in order: once this echo is answered, every sleep is running.
    let _: u8 = c.call(1_000, "echo", &0u8).await;
    d.signal("TERM");
    let mut answered = 0;
    while let Some(msg) = c.next().await {
        match msg {
            hearth_protocol::Message::Response(r) => {
                assert!(r.outcome.is_ok(), "sleep {} failed: {:?}", r.id, r.outcome);
                answered += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(answered, 100);
    let (status, log) = d.wait();
    assert!(status.success(), "{log}");
    assert!(!socket.exists(), "socket removed");
    assert!(
        !hearth_protocol::paths::lock_path(&socket).exists(),
        "lock removed"
    );
}

#[tokio::test]
async fn the_shutdown_method_stops_the_daemon() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("run").join("hearthd.sock");
    let d = Daemon::start(hearthd(), &socket);
    let mut c = Raw::connect(&socket).await;
    let reply: serde_json::Value = c.call(1, "shutdown", &()).await;
    assert_eq!(reply, json!({"grace_ms": 5000}));
    // The daemon may already have closed the connection: a failed write is fine here.
    let frame = c.request_frame(2, "echo", &1u8);
    let _ = tokio::io::AsyncWriteExt::write_all(&mut c.stream, &frame).await;
    match c.next_or_reset().await {
        // Refused as shutting down, or never read if the connection had already closed.
        Some(hearth_protocol::Message::Response(r)) => {
            assert_eq!(error_code(&r), ErrorCode::SHUTTING_DOWN);
        }
        None => {}
        other => panic!("unexpected {other:?}"),
    }
    let (status, log) = d.wait();
    assert!(status.success(), "{log}");
    assert!(!socket.exists());
}

/// A peer whose uid differs from the daemon's is closed before any byte is read. The test
/// runs the daemon as `nobody` and connects as root, so it needs root. The checkout may sit in
/// a private (0700) folder `nobody` cannot enter (CI clones into `mktemp -d`), so the daemon
/// runs from a copy of the binary in a fresh 0755 temporary folder, which also holds the
/// socket's folder; both go when the test ends.
///
/// Without root no second user can be made: the test says so and asserts the other half of
/// the rule instead, that a peer of the daemon's own user is served.
#[tokio::test]
async fn a_peer_of_another_user_is_refused() {
    use std::os::unix::process::CommandExt;
    if !is_root() {
        eprintln!(
            "not root: cannot run hearthd as another user, so only checking that a peer of \
             the daemon's own user is served"
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        let socket = tmp.path().join("run").join("hearthd.sock");
        let _d = Daemon::start(hearthd(), &socket);
        let mut c = Raw::connect(&socket).await;
        let back: u8 = c.call(1, "echo", &1u8).await;
        assert_eq!(back, 1);
        return;
    }
    let (shared, bin) = traversable_copy(hearthd());
    let dir = shared.path().join("nobody");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
    let socket = dir.join("hearthd.sock");
    let mut cmd = Daemon::command(&bin, &socket);
    // Not inside the checkout either, which nobody may not be able to enter.
    cmd.current_dir(shared.path()).uid(65534).gid(65534);
    let mut d = Daemon::spawn(cmd);
    d.wait_for_line("ready on");
    let mut c = Raw::connect(&socket).await;
    // The daemon may close before this write lands; only what comes back matters.
    let frame = c.request_frame(1, "echo", &1u8);
    let _ = tokio::io::AsyncWriteExt::write_all(&mut c.stream, &frame).await;
    // Closed with our request unread: an end of stream or a reset, never an answer.
    assert!(
        c.next_or_reset().await.is_none(),
        "closed without an answer"
    );
    d.wait_for_line("refused connection: peer is not the daemon's user");
}

/// Starts hearthd on `socket`, also listening on a loopback TCP port the system picks; returns
/// the daemon and the `HOST:PORT` its ready line names.
fn start_with_tcp(socket: &Path) -> (Daemon, String) {
    let mut cmd = Daemon::command(hearthd(), socket);
    cmd.arg("--listen").arg("tcp:127.0.0.1:0");
    let mut d = Daemon::spawn(cmd);
    let ready = d.wait_for_line("ready on").pop().expect("a line");
    // "... ready on /path and tcp:127.0.0.1:PORT pid=N"
    let addr = ready
        .rsplit("tcp:")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .expect("tcp address")
        .to_owned();
    (d, addr)
}

#[tokio::test]
async fn tcp_is_opt_in_and_loopback_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("run").join("hearthd.sock");
    let mut cmd = Daemon::command(hearthd(), &socket);
    cmd.arg("--listen").arg("tcp:0.0.0.0:0");
    let (status, log) = run_to_exit(cmd);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("not a loopback address"), "{log}");
    assert!(!socket.exists(), "refused before binding anything");

    let (mut d, addr) = start_with_tcp(&socket);
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect tcp");
    let mut c = Raw::from_stream(stream);
    // TCP peers open with $/hello and the token from tcp.token (PROTOCOL.md §3.4).
    let token = std::fs::read_to_string(socket.with_file_name("tcp.token")).expect("tcp.token");
    let _: serde::de::IgnoredAny = c
        .call(1, "$/hello", &json!({"token": token.trim_end()}))
        .await;
    let back: String = c.call(2, "echo", &"over tcp").await;
    assert_eq!(back, "over tcp");

    // Without it, or with a wrong one, the first message gets $/fatal and the connection
    // closes.
    let firsts = [
        ("echo", json!("no hello")),
        ("$/hello", json!(null)),
        ("$/hello", json!({"token": "0".repeat(64)})),
        ("$/hello", json!({"token": 7})),
    ];
    for (method, params) in firsts {
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect tcp");
        let mut c = Raw::from_stream(stream);
        c.request(1, method, &params).await;
        let fatal = c.expect_fatal(ErrorCode::INVALID_REQUEST).await;
        assert!(
            fatal.message.contains("token"),
            "{method} {params}: {}",
            fatal.message
        );
    }
    d.wait_for_line("refused TCP connection");
}

/// The TCP listener has no SO_PEERCRED, so its token is what keeps other users out: a client
/// running as `nobody` cannot read tcp.token (0600 in the 0700 socket folder), and its
/// connection is refused. The client is bash's /dev/tcp, run as nobody, sending an `echo`
/// request; it needs root to change user, and without root the test says so and checks the
/// file's mode instead.
#[tokio::test]
async fn a_tcp_client_of_another_user_is_refused() {
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("run").join("hearthd.sock");
    let (mut d, addr) = start_with_tcp(&socket);
    let port = addr
        .strip_prefix("127.0.0.1:")
        .expect("a port on 127.0.0.1")
        .to_owned();
    let token_file = socket.with_file_name("tcp.token");
    let mode = std::fs::metadata(&token_file)
        .expect("tcp.token")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    if !is_root() {
        eprintln!("not root: cannot run a client as another user; checked tcp.token's mode");
        return;
    }
    // [1, 0, 1, "echo", 1] in a frame.
    let script = r#"cat "$1" >/dev/null 2>&1 && echo READ-THE-TOKEN
exec 3<>"/dev/tcp/127.0.0.1/$2" || exit 9
printf '\x00\x00\x00\x0a\x95\x01\x00\x01\xa4echo\x01' >&3
cat <&3"#;
    let out = std::process::Command::new("timeout")
        .args(["30", "bash", "-c", script, "client"])
        .arg(&token_file)
        .arg(&port)
        .current_dir("/")
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run bash as nobody");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(!text.contains("READ-THE-TOKEN"), "nobody read the token");
    assert!(
        text.contains("$/fatal") && text.contains("token"),
        "refused: {text:?}"
    );
    d.wait_for_line("refused TCP connection");
}
