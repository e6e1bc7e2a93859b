//! The daemon's lifecycle as a library sees it: idle exit (with a paused clock, so the test
//! waits for nothing real), the build id in `$/hello`, a socket handed over by whoever bound
//! it (socket activation) and left in place on exit, and the advice given for an unsafe
//! socket folder.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use hearth_server::protocol::Version;
use hearth_server::protocol::reserved::{HELLO, HelloResult};
use hearth_server::{Server, StartError, builtins};
use hearth_testkit::Raw;

const IDLE: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn idle_exit_waits_for_the_last_connection_then_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("run").join("hearthd.sock");
    let server = Server::builder()
        .socket(&path)
        .router(builtins::router())
        .idle_exit(IDLE)
        .bind()
        .await
        .expect("bind");
    let mut task = tokio::spawn(server.run());

    let mut c = Raw::connect(&path).await;
    let back: u8 = c.call(1, "echo", &7u8).await;
    assert_eq!(back, 7);
    // With a connection open, no amount of (paused, auto-advanced) time ends the server.
    assert!(
        tokio::time::timeout(IDLE * 100, &mut task).await.is_err(),
        "stopped with a connection open"
    );
    drop(c);
    // Closed: not before the idle time has passed since the close…
    assert!(
        tokio::time::timeout(IDLE - Duration::from_secs(1), &mut task)
            .await
            .is_err(),
        "stopped before the idle time"
    );
    // …and then on its own, cleaning up as after any graceful shutdown.
    let result = tokio::time::timeout(IDLE * 2, &mut task)
        .await
        .expect("stopped once idle")
        .expect("task");
    assert!(result.is_ok(), "{result:?}");
    assert!(!path.exists(), "socket removed");
    assert!(
        !hearth_server::protocol::paths::lock_path(&path).exists(),
        "lock removed"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_exit_counts_from_the_start_when_nobody_connects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("run").join("hearthd.sock");
    let server = Server::builder()
        .socket(&path)
        .idle_exit(IDLE)
        .bind()
        .await
        .expect("bind");
    let result = tokio::time::timeout(IDLE * 2, server.run())
        .await
        .expect("stopped once idle");
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn hello_carries_the_build_id_in_version_2_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("run").join("hearthd.sock");
    let server = Server::builder()
        .socket(&path)
        .build_id("9.9.9+abc")
        .bind()
        .await
        .expect("bind");
    let handle = server.handle();
    let task = tokio::spawn(server.run());

    let mut v2 = Raw::connect(&path).await.speaking(Version::V2);
    let hello: HelloResult = v2.call(1, HELLO, &()).await;
    assert_eq!(hello.build_id.as_deref(), Some("9.9.9+abc"));
    let mut v1 = Raw::connect(&path).await;
    let hello: HelloResult = v1.call(1, HELLO, &()).await;
    assert_eq!(hello.build_id, None, "the version 1 shape is frozen");

    handle.shutdown();
    task.await.expect("task").expect("clean stop");
}

#[tokio::test]
async fn an_inherited_socket_is_served_and_left_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("activated.sock");
    // What systemd would do: bind and listen, then hand over the listener.
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let server = Server::builder()
        .router(builtins::router())
        .inherited_listener(listener)
        .bind()
        .await
        .expect("serve the inherited socket");
    assert_eq!(server.socket_path(), path);
    let handle = server.handle();
    let task = tokio::spawn(server.run());

    let mut c = Raw::connect(&path).await;
    let back: String = c.call(1, "echo", &"activated").await;
    assert_eq!(back, "activated");

    handle.shutdown();
    task.await.expect("task").expect("clean stop");
    assert!(path.exists(), "the socket belongs to whoever bound it");
    assert!(
        !hearth_server::protocol::paths::lock_path(&path).exists(),
        "no lock file made"
    );
}

#[tokio::test]
async fn an_unsafe_folder_gets_a_subfolder_suggested_never_a_chmod() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let err = Server::builder()
        .socket(shared.join("x.sock"))
        .bind()
        .await
        .expect_err("a world-writable folder");
    let StartError::UnsafeFolder { fix, .. } = &err else {
        panic!("not an unsafe folder: {err}");
    };
    assert!(!fix.contains("chmod"), "{fix}");
    let suggested = shared.join(format!("hearth-{}", my_uid())).join("x.sock");
    assert!(
        fix.contains(&suggested.display().to_string()),
        "suggests {}: {fix}",
        suggested.display()
    );
    // The suggestion works.
    let server = Server::builder()
        .socket(&suggested)
        .bind()
        .await
        .expect("the suggested path binds");
    drop(server);
}

#[tokio::test]
async fn the_io_cause_is_a_source_not_repeated_in_the_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing").join("deeper").join("x.sock");
    let err = Server::builder()
        .socket(&path)
        .bind()
        .await
        .expect_err("the parent does not exist");
    let message = err.to_string();
    let cause = std::error::Error::source(&err)
        .expect("an OS error as source")
        .to_string();
    assert!(
        message.starts_with("cannot create socket folder"),
        "{message}"
    );
    assert!(!message.contains(&cause), "{message} repeats {cause}");
}

/// The uid folders are named after: the owner of a file this process creates.
fn my_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    let f = tempfile::NamedTempFile::new().expect("temp file");
    f.as_file().metadata().expect("stat").uid()
}
