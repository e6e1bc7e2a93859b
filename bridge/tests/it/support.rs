//! Test set-up: [`Setup`] runs a hearth server (built-ins plus a `gate` method) on a temporary
//! socket and a bridge in front of it on a free loopback port, and offers an HTTP/1.1 client
//! ([`Setup::send`], built on hyper's client connection so a test controls every header, the
//! `Host` included or left out) and a WebSocket client ([`Setup::ws`]).

use bytes::Bytes;
use hearth_bridge::{Bridge, Config};
use hearth_testkit::{Gate, PATIENCE, TestServer};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::client::Request as WsRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A server, a bridge in front of it, and the gate.
pub(crate) struct Setup {
    pub(crate) server: TestServer,
    pub(crate) gate: Gate,
    pub(crate) port: u16,
    pub(crate) token: String,
    pub(crate) url: String,
    pub(crate) url_file: std::path::PathBuf,
    pub(crate) _bridge: JoinHandle<Result<(), hearth_bridge::Error>>,
}

impl Setup {
    pub(crate) async fn start() -> Self {
        Self::with(|_| {}).await
    }

    /// With the bridge's config adjusted by `adjust`.
    pub(crate) async fn with(adjust: impl FnOnce(&mut Config)) -> Self {
        let gate = Gate::new();
        let router = gate.add_to(hearth_server::builtins::router());
        let server = TestServer::with(router, hearth_server::Limits::default()).await;
        let mut config = Config::new(&server.path);
        config.listen = "127.0.0.1:0".into();
        adjust(&mut config);
        let bridge = Bridge::bind(config).await.expect("bridge binds");
        let port = bridge.port();
        let token = bridge.token().to_owned();
        let url = bridge.url().to_owned();
        let url_file = bridge.url_file().to_owned();
        let task = tokio::spawn(bridge.serve(std::future::pending()));
        Self {
            server,
            gate,
            port,
            token,
            url,
            url_file,
            _bridge: task,
        }
    }

    /// The bridge's own `Host` value.
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The bridge's own origin.
    pub(crate) fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub(crate) fn cookie(&self) -> String {
        format!("hearth_bridge_{}={}", self.port, self.token)
    }

    /// A request builder with the bridge's Host.
    pub(crate) fn req(&self, method: &str, path: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.host())
    }

    /// A GET with the bearer token.
    pub(crate) fn get(&self, path: &str) -> Request<Full<Bytes>> {
        self.req("GET", path)
            .header("authorization", self.bearer())
            .body(Full::default())
            .expect("request")
    }

    /// A JSON POST to `/v2/call/{method}{query}` with the bearer token.
    pub(crate) fn post(&self, path: &str, json: &str) -> Request<Full<Bytes>> {
        self.req("POST", path)
            .header("authorization", self.bearer())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(json.to_owned())))
            .expect("request")
    }

    /// Sends `req` on a new connection; the response with its body unread.
    pub(crate) async fn send_streaming(&self, req: Request<Full<Bytes>>) -> Response<Incoming> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        bounded(sender.send_request(req)).await.expect("response")
    }

    /// Sends `req` on a new connection: status, headers and body as text.
    pub(crate) async fn send(&self, req: Request<Full<Bytes>>) -> Answer {
        let response = self.send_streaming(req).await;
        let (parts, body) = response.into_parts();
        let body = bounded(body.collect()).await.expect("body").to_bytes();
        Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// A WebSocket handshake request for `/v2/ws` with the bridge's Host.
    pub(crate) fn ws_request(&self) -> hyper::http::request::Builder {
        WsRequest::builder()
            .uri(format!("ws://127.0.0.1:{}/v2/ws", self.port))
            .header("host", self.host())
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header(
                "sec-websocket-key",
                tokio_tungstenite::tungstenite::handshake::client::generate_key(),
            )
    }

    /// Opens a WebSocket with `req`; the HTTP status on refusal.
    pub(crate) async fn ws_with(&self, req: WsRequest) -> Result<Ws, u16> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect");
        match bounded(tokio_tungstenite::client_async(
            req,
            MaybeTlsStream::Plain(tcp),
        ))
        .await
        {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(e) => panic!("websocket handshake: {e}"),
        }
    }

    /// An authenticated WebSocket (by cookie, with the bridge's own Origin, as a browser).
    pub(crate) async fn ws(&self) -> Ws {
        let req = self
            .ws_request()
            .header("cookie", self.cookie())
            .header("origin", self.origin())
            .body(())
            .expect("request");
        self.ws_with(req).await.expect("websocket opens")
    }
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: hyper::HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// `fut`, or a panic after [`PATIENCE`] (a hang is a failure, not a wait).
pub(crate) async fn bounded<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("no progress within {PATIENCE:?}"))
}

/// Encodes a MessagePack value.
pub(crate) fn mp(value: &rmpv::Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).expect("encode");
    out
}

/// Decodes a MessagePack value.
pub(crate) fn unmp(mut bytes: &[u8]) -> rmpv::Value {
    rmpv::decode::read_value(&mut bytes).expect("decode")
}
