//! Start on first use and replace on upgrade, against the real `hearthd` binary: twenty
//! clients racing to start a daemon get one daemon, a daemon of another build is asked to go
//! and replaced (unless the client may not), and a daemon that cannot start is reported with
//! its log. Every daemon here lives on a temporary socket and is shut down by the test.

use std::path::Path;
use std::time::Duration;

use hearth_client::{Client, ClientConfig, Error, StartError, StartOptions, Stats};
use hearth_testkit::{Daemon, eventually, hearthd_bin};
use serde::de::IgnoredAny;

use crate::support::{private_dir, within};

fn options(build_id: &str) -> StartOptions {
    StartOptions {
        daemon: Some(hearthd_bin().to_owned()),
        build_id: Some(build_id.to_owned()),
        replace_stale: true,
        ..StartOptions::default()
    }
}

/// Shuts the daemon on `socket` down and waits (bounded) until it has let go of its lock.
async fn stop(client: Client, socket: &Path) {
    let _ = client.call::<_, IgnoredAny>("shutdown", &()).await;
    drop(client);
    let lock = hearth_client::protocol::paths::lock_path(socket);
    eventually("the daemon to exit", || !lock.exists()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_clients_racing_to_start_get_one_daemon() {
    let dir = private_dir();
    let socket = dir.path().join("run").join("hearthd.sock");
    let opts = options("race-test");
    let clients = within(
        "20 clients to start and connect",
        futures::future::join_all((0..20).map(|_| {
            let socket = socket.clone();
            let opts = opts.clone();
            async move { Client::connect_or_start(&socket, ClientConfig::default(), &opts).await }
        })),
    )
    .await;
    let clients: Vec<Client> = clients.into_iter().map(|c| c.expect("connected")).collect();
    // All twenty are open at once on one daemon: a second daemon would have some of them.
    let stats: Stats = clients[0].call("$/stats", &()).await.expect("stats");
    assert_eq!(stats.connections, 20, "{stats:?}");
    for c in &clients {
        assert_eq!(c.hello().build_id.as_deref(), Some("race-test"));
    }
    let log = std::fs::read_to_string(hearth_client::log_path(&socket)).expect("a log");
    assert_eq!(
        log.matches("ready on").count(),
        1,
        "one daemon started: {log}"
    );
    let mut clients = clients.into_iter();
    let first = clients.next().expect("a client");
    drop(clients);
    stop(first, &socket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_of_another_build_is_replaced_unless_the_client_may_not() {
    let dir = private_dir();
    let socket = dir.path().join("run").join("hearthd.sock");
    let mut cmd = Daemon::command(hearthd_bin(), &socket);
    cmd.env("HEARTH_BUILD_ID", "old-build");
    let mut old = Daemon::spawn(cmd);
    old.wait_for_line("ready on");

    // Not allowed to replace: connects to the old one.
    let keep = StartOptions {
        replace_stale: false,
        ..options("new-build")
    };
    let client = Client::connect_or_start(&socket, ClientConfig::default(), &keep)
        .await
        .expect("connected");
    assert_eq!(client.hello().build_id.as_deref(), Some("old-build"));
    drop(client);

    let client = within(
        "the replacement",
        Client::connect_or_start(&socket, ClientConfig::default(), &options("new-build")),
    )
    .await
    .expect("connected to a replacement");
    assert_eq!(client.hello().build_id.as_deref(), Some("new-build"));
    // The old daemon was asked, and went gracefully.
    old.wait_for_line("stopped");
    let (status, log) = old.wait();
    assert!(status.success(), "{log}");

    // The same build again: kept.
    let again = Client::connect_or_start(&socket, ClientConfig::default(), &options("new-build"))
        .await
        .expect("connected");
    let stats: Stats = again.call("$/stats", &()).await.expect("stats");
    assert_eq!(stats.connections, 2, "the same daemon serves both");
    drop(again);
    stop(client, &socket).await;
}

#[tokio::test]
async fn a_daemon_that_cannot_start_is_reported_with_its_log() {
    let dir = private_dir();
    let socket = dir.path().join("run").join("hearthd.sock");
    let opts = StartOptions {
        args: vec!["--max-frame".into(), "1".into()],
        ready_timeout: Duration::from_secs(30),
        ..options("bad-flags")
    };
    let err = Client::connect_or_start(&socket, ClientConfig::default(), &opts)
        .await
        .expect_err("hearthd refuses --max-frame 1");
    let Error::Start(StartError::Exited { tail, .. }) = &err else {
        panic!("not an exit: {err}");
    };
    assert!(tail.contains("below the minimum"), "{err}");
}

#[tokio::test]
async fn no_daemon_binary_is_an_error_that_says_where_it_looked() {
    let dir = private_dir();
    let socket = dir.path().join("run").join("hearthd.sock");
    let opts = StartOptions {
        daemon: Some(dir.path().join("no-such-hearthd")),
        ..options("x")
    };
    let err = Client::connect_or_start(&socket, ClientConfig::default(), &opts)
        .await
        .expect_err("nothing to run");
    assert!(
        matches!(err, Error::Start(StartError::Spawn { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn a_shared_folder_is_refused_before_anything_is_made_in_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = private_dir();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let socket = shared.join("hearthd.sock");
    let err = Client::connect_or_start(&socket, ClientConfig::default(), &options("x"))
        .await
        .expect_err("the daemon would refuse this folder");
    let Error::Start(StartError::Folder(folder)) = &err else {
        panic!("not a folder refusal: {err}");
    };
    let text = folder.to_string();
    assert!(text.contains("other users have access to it"), "{text}");
    assert!(text.contains("hearth-"), "advises a subfolder: {text}");
    let left: Vec<_> = std::fs::read_dir(&shared)
        .expect("read the folder")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(
        left.is_empty(),
        "nothing is created in a refused folder: {left:?}"
    );
}
