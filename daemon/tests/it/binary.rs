//! The `hearthd` binary as a process: it introduces itself as hearthd, and it serves the
//! language service by default, with no flag.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Daemon, Raw, labels, open, pos};

fn hearthd() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_hearthd"))
}

#[test]
fn help_and_version_say_hearthd() {
    let help = Command::new(hearthd()).arg("--help").output().expect("run");
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).expect("utf-8");
    assert!(help.starts_with("hearthd"), "{help}");
    assert!(help.contains("Usage: hearthd"), "{help}");
    assert!(help.contains("workspace/index"), "{help}");

    let version = Command::new(hearthd())
        .arg("--version")
        .output()
        .expect("run");
    assert!(version.status.success());
    let version = String::from_utf8(version.stdout).expect("utf-8");
    assert_eq!(
        version.trim(),
        format!("hearthd {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn the_daemon_serves_the_language_service_by_default() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("run").join("hearthd.sock");
    let _d = Daemon::start(hearthd(), &socket);
    let mut peer = Raw::connect_v2(&socket).await;
    let uri = "file:///w/a.rs";
    open(&mut peer, uri, "let counter = 0;\ncou").await;
    let result: Value = peer
        .call(1, "complete", &json!({"uri": uri, "position": pos(1, 3)}))
        .await;
    assert_eq!(result["prefix"], "cou");
    assert_eq!(labels(&result), ["counter"]);
    // The built-ins are still there.
    let back: String = peer.call(2, "echo", &"hi").await;
    assert_eq!(back, "hi");
}
