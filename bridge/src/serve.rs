//! Starting and running the bridge: [`Bridge::bind`] checks the listen address, connects to the
//! daemon (so a bridge without a daemon fails at once, saying so), binds, draws the token and
//! writes `bridge.url`; [`Bridge::serve`] accepts connections — at most
//! `Limits::max_connections` at once, each served by hyper's HTTP/1.1 with the header timeout
//! and head size of [`Limits`] — until its shutdown future resolves. [`run`] is the `hearth
//! bridge` command: all that, plus printing the URL and stopping on Ctrl-C or SIGTERM.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::daemon::DaemonLink;
use crate::{Args, Config, Error, Limits, Token, api, guard, listen, page, urlfile, ws};

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) token: Token,
    pub(crate) cookie_name: String,
    pub(crate) port: u16,
    pub(crate) origins: Vec<String>,
    pub(crate) link: DaemonLink,
    pub(crate) limits: Limits,
    /// The daemon's `max_frame`: the largest WebSocket message relayed.
    pub(crate) max_frame: usize,
    pub(crate) ws_permits: Arc<Semaphore>,
}

/// A bound bridge, ready to [`serve`](Self::serve).
pub struct Bridge {
    listener: TcpListener,
    shared: Arc<Shared>,
    url: String,
    url_file: PathBuf,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("port", &self.shared.port)
            .field("url_file", &self.url_file)
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// Checks `config`, connects to the daemon, binds and writes `bridge.url`.
    pub async fn bind(config: Config) -> Result<Self, Error> {
        for origin in &config.origins {
            if !is_origin(origin) {
                return Err(Error::BadOrigin(origin.clone()));
            }
        }
        let addr = listen::resolve(&config.listen, config.unsafe_listen).await?;
        let client = crate::daemon::connect(&config.socket).await?;
        let max_frame = usize::try_from(client.hello().limits.max_frame)
            .unwrap_or(usize::MAX)
            .min(hearth_client::protocol::DEFAULT_MAX_FRAME);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let token = Token::generate()?;
        let url = format!("http://{}/?token={}", url_host(local), token.as_str());
        let url_file = urlfile::write(&config.socket, &url)?;
        let shared = Arc::new(Shared {
            token,
            cookie_name: guard::cookie_name(local.port()),
            port: local.port(),
            origins: config.origins,
            link: DaemonLink::new(config.socket, client),
            ws_permits: Arc::new(Semaphore::new(config.limits.max_websockets)),
            limits: config.limits,
            max_frame,
        });
        Ok(Self {
            listener,
            shared,
            url,
            url_file,
            local_addr: local,
        })
    }

    /// The URL to open: `http://127.0.0.1:PORT/?token=TOKEN`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The token.
    pub fn token(&self) -> &str {
        self.shared.token.as_str()
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// Where `bridge.url` was written.
    pub fn url_file(&self) -> &Path {
        &self.url_file
    }

    /// Serves until `shutdown` resolves; then closes every connection and removes
    /// `bridge.url`.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let app = router(self.shared.clone());
        let limits = &self.shared.limits;
        let connections = Arc::new(Semaphore::new(limits.max_connections));
        let stop = CancellationToken::new();
        let _stop_all = stop.clone().drop_guard();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192));
        tokio::pin!(shutdown);
        let result = loop {
            let permit = tokio::select! {
                () = &mut shutdown => break Ok(()),
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break Ok(()),
                },
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break Ok(()),
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) if is_transient(&e) => {
                        warn!("accept: {e}");
                        // Out of descriptors or similar: give others a moment to close theirs.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    Err(e) => break Err(Error::Accept(e)),
                },
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(app.clone());
            let conn = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let stop = stop.clone();
            tokio::spawn(async move {
                let _permit = permit;
                tokio::select! {
                    result = conn => if let Err(e) = result { debug!(%peer, "connection: {e}") },
                    () = stop.cancelled() => {}
                }
            });
        };
        urlfile::remove(&self.url_file, &self.url);
        result
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/app.css", get(page::style))
        .route("/v2/hello", get(api::hello))
        .route("/v2/openapi.json", get(api::openapi))
        .route("/v2/call/{*method}", post(api::call))
        .route("/v2/ws", get(ws::upgrade))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            guard::guard,
        ))
        .with_state(shared)
}

/// How the printed URL names the bound address.
fn url_host(local: SocketAddr) -> String {
    match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            format!("{}:{}", Ipv4Addr::LOCALHOST, local.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            format!("[{}]:{}", Ipv6Addr::LOCALHOST, local.port())
        }
        _ => local.to_string(),
    }
}

/// `scheme://host[:port]`, nothing after.
fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12)) // ENFILE, EMFILE, ENOBUFS, ENOMEM
}

/// `hearth bridge`: binds, prints the URL (one line on stdout), serves until Ctrl-C or SIGTERM.
pub async fn run(socket: Option<PathBuf>, args: Args) -> Result<(), Error> {
    let socket = socket.unwrap_or_else(hearth_client::default_socket_path);
    let config = Config {
        socket,
        listen: args.listen,
        origins: args.origins,
        unsafe_listen: args.unsafe_listen,
        limits: Limits::default(),
    };
    let bridge = Bridge::bind(config).await?;
    if !listen::is_loopback(bridge.local_addr.ip()) {
        eprintln!(
            "hearth bridge: WARNING: --unsafe-listen: listening on {}, which is not a loopback \
             address: other machines can reach the bridge, and only the token keeps them out",
            bridge.local_addr
        );
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", bridge.url());
        let _ = out.flush();
    }
    bridge.serve(stop_signal()).await
}

async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
