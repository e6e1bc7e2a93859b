//! Starting the bridge: non-loopback listen addresses are refused (by the library and by the
//! binary, which exits non-zero saying why), the URL file is 0600 in the socket's 0700 folder
//! and holds the printed URL, the token is 256 bits and new at every start, and the binary
//! prints exactly one line.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use hearth_bridge::{Bridge, Config, Error};

use crate::support::Setup;

#[tokio::test]
async fn non_loopback_listen_addresses_are_refused() {
    let s = Setup::start().await;
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0", "[2001:db8::1]:0"] {
        let mut config = Config::new(&s.server.path);
        config.listen = listen.into();
        let err = Bridge::bind(config).await.expect_err(listen);
        assert!(matches!(err, Error::NotLoopback { .. }), "{listen}: {err}");
        assert!(err.to_string().contains("--unsafe-listen"), "{err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hearth-bridge"))
        .args(["--listen", "0.0.0.0:7727", "--socket"])
        .arg(&s.server.path)
        .output()
        .expect("run hearth-bridge");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no URL printed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}

#[tokio::test]
async fn the_url_file_is_owner_only_and_the_token_is_long_and_fresh() {
    let s = Setup::start().await;
    let dir = s.server.path.parent().expect("socket folder");
    assert_eq!(s.url_file, dir.join("bridge.url"));
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700);
    assert_eq!(mode(&s.url_file), 0o600);
    assert_eq!(
        std::fs::read_to_string(&s.url_file).expect("read"),
        format!("{}\n", s.url)
    );
    assert_eq!(
        s.url,
        format!("http://127.0.0.1:{}/?token={}", s.port, s.token)
    );
    assert_eq!(s.token.len(), 64, "256 bits as hex");
    assert!(s.token.bytes().all(|b| b.is_ascii_hexdigit()));
    // A second bridge draws a new token.
    let mut config = Config::new(&s.server.path);
    config.listen = "127.0.0.1:0".into();
    let second = Bridge::bind(config).await.expect("bind");
    assert_ne!(second.token(), s.token);
    assert_eq!(mode(second.url_file()), 0o600);
}

#[tokio::test]
async fn the_binary_prints_one_url_line_and_serves_it() {
    let s = Setup::start().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth-bridge"))
        .args(["--listen", "127.0.0.1:0", "--socket"])
        .arg(&s.server.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("read");
    let url = line.trim_end().to_owned();
    let (base, token) = url.split_once("/?token=").expect("url shape");
    let port: u16 = base
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert_eq!(token.len(), 64);
    let file =
        std::fs::read_to_string(s.server.path.with_file_name("bridge.url")).expect("url file");
    assert_eq!(file.trim_end(), url);
    let probe = Setup {
        port,
        token: token.to_owned(),
        ..Setup::start().await
    };
    assert_eq!(probe.send(probe.get("/v2/hello")).await.status, 200);
    let _ = child.kill();
    let _ = child.wait();
}
