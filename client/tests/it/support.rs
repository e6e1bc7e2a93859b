//! Test helpers for the client: [`TestDaemonExt`], what a client adds to `hearth-testkit`'s
//! [`TestDaemon`] (a connected client, a TCP config), and [`FakeDaemon`], a scripted daemon
//! for what a real one would never send — both client-specific, so they stay here. The shared
//! pieces ([`TestDaemon`] itself — a real `hearth-server` on a fresh socket in its own runtime
//! on its own thread, so a test can kill it outright — [`Gate`], [`eventually`], [`within`],
//! [`private_dir`] and the raw peer under [`Peer`]) come from `hearth-testkit`.
//! The tests themselves are in the sibling modules.

use hearth_testkit::Raw;
pub(crate) use hearth_testkit::{Gate, TestDaemon, eventually, private_dir, within};

use std::future::Future;
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use hearth_client::protocol::reserved::{FATAL, Fatal};
use hearth_client::protocol::reserved::{HelloResult, Limits as HelloLimits};
use hearth_client::protocol::{EncodeError, Encoder, ErrorCode, Message, Request, Version};
use hearth_client::{Client, ClientConfig, Error};
use tempfile::TempDir;
use tokio::net::{UnixListener, UnixStream};

/// What the client's tests add to `hearth-testkit`'s [`TestDaemon`], which depends on no
/// client: a connected [`Client`] and a config that shows the daemon's TCP token.
pub(crate) trait TestDaemonExt {
    /// A client config showing this daemon's TCP token (PROTOCOL.md §3.4).
    fn tcp_config(&self) -> ClientConfig;

    /// A client connected with the default configuration.
    async fn client(&self) -> Client;
}

impl TestDaemonExt for TestDaemon {
    fn tcp_config(&self) -> ClientConfig {
        let token = hearth_client::read_tcp_token(self.path()).expect("the daemon's tcp.token");
        ClientConfig::default().with_tcp_token(token)
    }

    async fn client(&self) -> Client {
        Client::connect(self.path())
            .await
            .expect("connecting to the test daemon")
    }
}

/// Requests the daemon stopped for the client: cancelled (-32800) or past their deadline
/// (-32002). A timed-out call in version 2 is stopped by whichever comes first, the client's
/// cancel or the daemon's own deadline, and answered once.
pub(crate) fn stopped(daemon: &TestDaemon) -> u64 {
    let errors = daemon.stats().errors;
    let count = |code: &str| errors.get(code).copied().unwrap_or_default();
    count("-32800") + count("-32002")
}

/// Calls `sleep` for a minute on `client`, whose configured timeout is far shorter: the call
/// fails with [`Error::Timeout`], the daemon stops the request exactly once ([`stopped`]), and
/// then nothing is in flight.
pub(crate) async fn sleep_past_the_timeout(client: &Client, daemon: &TestDaemon) {
    let err = client
        .call::<_, serde::de::IgnoredAny>("sleep", &serde_json::json!({"ms": 60_000}))
        .await
        .expect_err("the sleep outlasts the timeout");
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    // `in_flight == 0` alone also holds before the daemon has read the sleep at all.
    eventually("the daemon stops the call", || stopped(daemon) == 1).await;
    eventually("nothing runs", || daemon.stats().in_flight == 0).await;
}

/// A scripted daemon for one connection: the script gets the accepted [`Peer`].
pub(crate) struct FakeDaemon {
    _dir: TempDir,
    path: PathBuf,
    script: tokio::task::JoinHandle<()>,
}

impl FakeDaemon {
    /// A daemon speaking version 2: answers the first connection's `$/hello` with protocol 2,
    /// then runs `script` on it.
    pub(crate) fn start_v2<F, Fut>(script: F) -> Self
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start(|mut peer| async move {
            peer.answer_hello(2).await;
            script(peer).await;
        })
    }

    /// Listens on a fresh socket and runs `script` on the first connection.
    pub(crate) fn start<F, Fut>(script: F) -> Self
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_refusing(0, script)
    }

    /// A daemon that speaks version 1 only: it refuses the first connection's version 2
    /// `$/hello` as such a daemon does (`$/fatal` -32004, `supported: [1]`, in a version 1
    /// envelope, then hang up), and runs `script` on the second connection.
    pub(crate) fn start_v1_only<F, Fut>(script: F) -> Self
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_refusing(1, script)
    }

    fn start_refusing<F, Fut>(refuse: usize, script: F) -> Self
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let dir = private_dir();
        let path = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&path).expect("binding the fake daemon");
        let script = tokio::spawn(async move {
            for _ in 0..refuse {
                let (stream, _) = listener.accept().await.expect("accepting a client");
                let mut peer = Peer::new(stream);
                let hello = peer.request().await.expect("the client's $/hello");
                assert_eq!(hello.method(), "$/hello");
                assert_eq!(
                    peer.version(),
                    Version::V2,
                    "the first hello is in version 2"
                );
                peer.version = Version::V1;
                let fatal = Fatal {
                    code: ErrorCode::UNSUPPORTED_VERSION.0,
                    message: "unsupported protocol version 2".into(),
                    supported: vec![1],
                };
                peer.send(|enc, buf| enc.notification(buf, FATAL, &fatal))
                    .await;
            }
            let (stream, _) = listener.accept().await.expect("accepting a client");
            script(Peer::new(stream)).await;
        });
        Self {
            _dir: dir,
            path,
            script,
        }
    }

    /// The socket path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A client connected with the default configuration (failing the test if that fails or
    /// hangs).
    pub(crate) async fn client(&self) -> Client {
        within("connect", Client::connect(&self.path))
            .await
            .expect("connect")
    }

    /// Connects, expecting that to fail (`why` says why it should); returns the error.
    pub(crate) async fn connect_err(&self, why: &str) -> Error {
        within("connect", Client::connect(&self.path))
            .await
            .expect_err(why)
    }

    /// Drops `client` (hanging up), then waits for the script to finish.
    pub(crate) async fn finish_after(self, client: Client) {
        drop(client);
        self.finish().await;
    }

    /// Waits for the script to finish, propagating its panics.
    pub(crate) async fn finish(self) {
        within("the fake daemon's script", self.script)
            .await
            .expect("the fake daemon's script");
    }
}

/// The daemon's end of one connection, for scripts: `hearth-testkit`'s raw peer, answering in
/// the version the client speaks (its encoder takes the version of each message it reads).
pub(crate) struct Peer {
    raw: Raw,
    version: Version,
}

impl Peer {
    fn new(stream: UnixStream) -> Self {
        Self {
            raw: Raw::from_stream(stream),
            version: Version::V1,
        }
    }

    /// The next request the client sends; `None` at EOF. Other messages are skipped.
    pub(crate) async fn request(&mut self) -> Option<Request> {
        loop {
            if let Message::Request(request) = self.message().await? {
                return Some(request);
            }
        }
    }

    /// The next message the client sends, of any kind; `None` at EOF.
    pub(crate) async fn message(&mut self) -> Option<Message> {
        let decoded = self.raw.next_decoded().await?;
        self.version = decoded.version;
        Some(decoded.message)
    }

    /// The version the peer answers in: that of the last message it read.
    pub(crate) fn version(&self) -> Version {
        self.version
    }

    /// Encodes one message with the protocol's encoder, in the peer's version, and sends it.
    pub(crate) async fn send(
        &mut self,
        write: impl FnOnce(&Encoder, &mut BytesMut) -> Result<(), EncodeError>,
    ) {
        let mut frame = BytesMut::new();
        let encoder = Encoder::default().with_version(self.version);
        write(&encoder, &mut frame).expect("encoding a scripted message");
        self.send_bytes(&frame).await;
    }

    /// Sends bytes as they are, well-formed or not.
    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) {
        self.raw.send_bytes(bytes).await;
    }

    /// Answers `request` with its own params, as `echo` does.
    pub(crate) async fn echo(&mut self, request: &Request) {
        self.send(|enc, buf| enc.response_raw(buf, request.id, &request.params))
            .await;
    }

    /// Asserts that the client sends no further request and hangs up.
    pub(crate) async fn expect_hang_up(&mut self) {
        let next = self.request().await;
        assert!(next.is_none(), "the client hangs up, but sent {next:?}");
    }

    /// Reads the client's `$/hello` and answers it (in the hello's envelope version) as a
    /// daemon speaking `protocol`.
    pub(crate) async fn answer_hello(&mut self, protocol: u32) {
        let hello = self.request().await.expect("the client's $/hello");
        assert_eq!(hello.method(), "$/hello");
        let result = fake_hello(protocol);
        self.send(|enc, buf| enc.response(buf, hello.id, &result))
            .await;
    }
}

/// A `$/hello` result as a fake daemon of `protocol` would give it.
pub(crate) fn fake_hello(protocol: u32) -> HelloResult {
    HelloResult {
        protocol,
        server: "fake 0.0.0".into(),
        build: String::new(),
        methods: vec!["$/hello".into()],
        limits: HelloLimits {
            max_frame: 1024,
            max_in_flight: 4,
            max_connections: 1,
            max_depth: 64,
        },
        supported: if protocol == 2 {
            vec![1, 2]
        } else {
            Vec::new()
        },
        build_id: None,
    }
}
