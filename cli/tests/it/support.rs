//! Test helpers for the `hearth` binary's tests: [`hearth`] and [`hearth_bench`], which run the
//! binary with the environment these tests want ([`hearth_command`]; `hearth_bench` also builds
//! the `hearthd` its `--spawn` runs, next to `hearth`), and [`V1OnlyDaemon`], a
//! scripted daemon that speaks protocol 1 only (the real one speaks 2). The shared pieces — [`TestDaemon`] (a real
//! `hearth-server` on a fresh socket in its own runtime on its own thread, so a test can kill
//! it outright), [`private_dir`], [`within`] and [`eventually`] — come from `hearth-testkit`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytes::BytesMut;
use hearth_server::protocol::reserved::{FATAL, Fatal, HELLO, HelloResult, Limits as HelloLimits};
use hearth_server::protocol::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME, Encoder, ErrorCode, FrameDecoder, Message, Version,
};
use hearth_testkit::hearthd_bin;
pub(crate) use hearth_testkit::{TestDaemon, eventually, private_dir, within};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// The `hearth` under test, with no `HEARTH_SOCKET` from the environment and no start on first
/// use: these tests choose their daemons (start-on-first-use has its own tests, in
/// `lifecycle.rs`).
pub(crate) fn hearth_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.env_remove("HEARTH_SOCKET").env("HEARTH_NO_START", "1");
    cmd
}

/// `hearth --socket <socket> <args>` (see [`hearth_command`]).
pub(crate) fn hearth(socket: &Path, args: &[&str]) -> Output {
    hearth_command()
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("running hearth")
}

/// `hearth bench <args>` (see [`hearth_command`]). `--spawn` runs the `hearthd` next to
/// `hearth`, which `cargo test -p hearth-cli` does not build: for those, [`hearthd_bin`] builds
/// it first, with the same cargo, target folder and profile.
pub(crate) fn hearth_bench(args: &[&str]) -> Output {
    if args.contains(&"--spawn") {
        let hearth = Path::new(env!("CARGO_BIN_EXE_hearth"));
        assert_eq!(
            hearthd_bin().parent(),
            hearth.parent(),
            "hearthd next to hearth"
        );
    }
    hearth_command()
        .arg("bench")
        .args(args)
        .output()
        .expect("running hearth bench")
}

/// A daemon that speaks protocol 1 only, as hearthd did before version 2: a connection whose
/// first message is in version 2 gets `$/fatal` -32004 (`supported: [1]`) in a version 1
/// envelope and is closed; one in version 1 gets its `$/hello` answered with protocol 1, then
/// is read (and otherwise ignored) until the client hangs up. Serves any number of
/// connections, on a runtime of its own, until dropped.
pub(crate) struct V1OnlyDaemon {
    _dir: TempDir,
    path: PathBuf,
    _runtime: tokio::runtime::Runtime,
}

impl V1OnlyDaemon {
    pub(crate) fn start() -> Self {
        let dir = private_dir();
        let path = dir.path().join("v1.sock");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the fake daemon");
        let listener = {
            let _entered = runtime.enter();
            UnixListener::bind(&path).expect("binding the fake daemon")
        };
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_v1(stream));
            }
        });
        Self {
            _dir: dir,
            path,
            _runtime: runtime,
        }
    }

    /// The socket path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

async fn serve_v1(mut stream: UnixStream) {
    let mut buf = BytesMut::new();
    let mut frames = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let encoder = Encoder::default().with_version(Version::V1);
    loop {
        let frame = match frames.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => match stream.read_buf(&mut buf).await {
                Ok(n) if n > 0 => continue,
                _ => return,
            },
            Err(_) => return,
        };
        let Ok(decoded) = Message::decode_any(frame, DEFAULT_MAX_DEPTH) else {
            return;
        };
        let mut out = BytesMut::new();
        if decoded.version != Version::V1 {
            let fatal = Fatal {
                code: ErrorCode::UNSUPPORTED_VERSION.0,
                message: format!("unsupported protocol version {}", decoded.version.number()),
                supported: vec![1],
            };
            let _ = encoder.notification(&mut out, FATAL, &fatal);
            let _ = stream.write_all(&out).await;
            return;
        }
        if let Message::Request(request) = decoded.message
            && request.method() == HELLO
        {
            let hello = HelloResult {
                protocol: 1,
                server: "v1-only fake 0.0.0".into(),
                build: String::new(),
                methods: vec![HELLO.into(), "echo".into()],
                limits: HelloLimits {
                    max_frame: DEFAULT_MAX_FRAME as u64,
                    max_in_flight: 64,
                    max_connections: 64,
                    max_depth: DEFAULT_MAX_DEPTH as u64,
                },
                supported: vec![1],
                build_id: None,
            };
            let _ = encoder.response(&mut out, request.id, &hello);
            if stream.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}
