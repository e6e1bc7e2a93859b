//! `hearth-bridge bench`: the same echo call (params: a 32-character string, MessagePack on the
//! socket, JSON over HTTP) over one transport — the daemon's Unix socket (`uds`), its loopback
//! TCP listener (`tcp`), the bridge over HTTP/1.1 with keep-alive (`http`) and without
//! (`http-close`, a new connection per call), and the bridge's WebSocket (`ws`). Two phases,
//! each bounded by time and by a call count: sequential round trips (p50/p99 from an HDR
//! histogram) and throughput (calls/s with `--concurrency` calls in flight: multiplexed on one
//! connection for uds, tcp and ws; one connection per worker for http; a new connection per
//! call for http-close). Prints one Markdown table row. Loopback only: it talks to the
//! addresses it is given, which the bridge and hearthd only bind on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Flags of `hearth-bridge bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// uds, tcp, http, http-close or ws
    #[arg(long)]
    transport: Transport,
    /// hearthd's TCP listener (for --transport tcp), e.g. 127.0.0.1:7070
    #[arg(long, value_name = "ADDR:PORT")]
    tcp: Option<SocketAddr>,
    /// The bridge's URL with its token [default: read bridge.url beside the socket]
    #[arg(long)]
    url: Option<String>,
    /// Seconds per phase (sequential, then concurrent)
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// At most this many calls per phase
    #[arg(long, default_value_t = 200_000)]
    max_calls: u64,
    /// Calls in flight in the throughput phase
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Transport {
    Uds,
    Tcp,
    Http,
    HttpClose,
    Ws,
}

/// The echo payload: 32 bytes of text.
const PAYLOAD: &str = "0123456789abcdef0123456789abcdef";

pub(crate) async fn run(socket: &Path, args: BenchArgs) -> anyhow::Result<()> {
    let phase = Duration::from_secs_f64(args.seconds);
    let target = Target::new(socket, &args).await?;
    // Warm up: connections made, caches hot.
    target.sequential(Duration::from_millis(300), 2_000).await?;
    let (hist, seq_calls) = target.sequential(phase, args.max_calls).await?;
    let (calls, elapsed) = target
        .concurrent(phase, args.max_calls, args.concurrency)
        .await?;
    let name = match args.transport {
        Transport::Uds => "hearth, Unix socket",
        Transport::Tcp => "hearth, loopback TCP",
        Transport::Http => "bridge, HTTP/1.1 keep-alive",
        Transport::HttpClose => "bridge, HTTP/1.1 new connection per call",
        Transport::Ws => "bridge, WebSocket",
    };
    println!(
        "| {name} | {:.1} | {:.1} | {seq_calls} | {:.0} | {} |",
        hist.value_at_quantile(0.50) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        calls as f64 / elapsed.as_secs_f64(),
        args.concurrency,
    );
    Ok(())
}

/// Where calls go.
enum Target {
    Client(hearth_client::Client),
    Http {
        addr: SocketAddr,
        host: String,
        auth: String,
        keep_alive: bool,
    },
    Ws {
        url: String,
        host: String,
        auth: String,
    },
}

impl Target {
    async fn new(socket: &Path, args: &BenchArgs) -> anyhow::Result<Self> {
        let bridge = || -> anyhow::Result<(SocketAddr, String, String)> {
            let url = match &args.url {
                Some(url) => url.clone(),
                None => read_url(socket)?,
            };
            let rest = url
                .strip_prefix("http://")
                .context("the URL is not http://")?;
            let (host, token) = rest
                .split_once("/?token=")
                .context("the URL has no token")?;
            let addr = host
                .parse()
                .with_context(|| format!("{host} is not ADDR:PORT"))?;
            Ok((addr, host.to_owned(), format!("Bearer {token}")))
        };
        Ok(match args.transport {
            Transport::Uds => Self::Client(hearth_client::Client::connect(socket).await?),
            Transport::Tcp => {
                let addr = args.tcp.context("--transport tcp needs --tcp ADDR:PORT")?;
                let token = hearth_client::read_tcp_token(socket)
                    .with_context(|| format!("reading tcp.token beside {}", socket.display()))?;
                let config = hearth_client::ClientConfig::default().with_tcp_token(token);
                Self::Client(hearth_client::Client::connect_tcp_with(addr, config).await?)
            }
            Transport::Http | Transport::HttpClose => {
                let (addr, host, auth) = bridge()?;
                Self::Http {
                    addr,
                    host,
                    auth,
                    keep_alive: args.transport == Transport::Http,
                }
            }
            Transport::Ws => {
                let (addr, host, auth) = bridge()?;
                Self::Ws {
                    url: format!("ws://{addr}/v2/ws"),
                    host,
                    auth,
                }
            }
        })
    }

    /// One call at a time; the histogram is in nanoseconds.
    async fn sequential(&self, phase: Duration, max: u64) -> anyhow::Result<(Histogram<u64>, u64)> {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
        let end = Instant::now() + phase;
        let mut n = 0;
        match self {
            Self::Client(client) => {
                while n < max && Instant::now() < end {
                    let t = Instant::now();
                    let _: String = client.call("echo", PAYLOAD).await?;
                    hist.record(nanos(t))?;
                    n += 1;
                }
            }
            Self::Http {
                keep_alive: true, ..
            } => {
                let mut conn = self.http_conn().await?;
                while n < max && Instant::now() < end {
                    let t = Instant::now();
                    self.http_call(&mut conn).await?;
                    hist.record(nanos(t))?;
                    n += 1;
                }
            }
            Self::Http { .. } => {
                while n < max && Instant::now() < end {
                    let t = Instant::now();
                    let mut conn = self.http_conn().await?;
                    self.http_call(&mut conn).await?;
                    hist.record(nanos(t))?;
                    n += 1;
                }
            }
            Self::Ws { .. } => {
                let mut ws = self.ws_conn().await?;
                while n < max && Instant::now() < end {
                    let t = Instant::now();
                    ws.send(ws_echo(n)).await?;
                    ws_answer(&mut ws).await?;
                    hist.record(nanos(t))?;
                    n += 1;
                }
            }
        }
        Ok((hist, n))
    }

    /// `concurrency` calls in flight; returns the calls answered and the time taken.
    async fn concurrent(
        &self,
        phase: Duration,
        max: u64,
        concurrency: usize,
    ) -> anyhow::Result<(u64, Duration)> {
        let start = Instant::now();
        let end = start + phase;
        let done = Arc::new(AtomicU64::new(0));
        // Each worker takes a ticket per call, so the total stays within `max`.
        let tickets = Arc::new(AtomicU64::new(0));
        let more = move |tickets: &AtomicU64| {
            Instant::now() < end && tickets.fetch_add(1, Ordering::Relaxed) < max
        };
        match self {
            Self::Ws { .. } => {
                let mut ws = self.ws_conn().await?;
                let mut id = 0;
                let mut in_flight = 0;
                while in_flight < concurrency && more(&tickets) {
                    ws.send(ws_echo(id)).await?;
                    id += 1;
                    in_flight += 1;
                }
                while in_flight > 0 {
                    ws_answer(&mut ws).await?;
                    in_flight -= 1;
                    done.fetch_add(1, Ordering::Relaxed);
                    if more(&tickets) {
                        ws.send(ws_echo(id)).await?;
                        id += 1;
                        in_flight += 1;
                    }
                }
            }
            _ => {
                let mut workers = tokio::task::JoinSet::new();
                for _ in 0..concurrency {
                    let (done, tickets) = (done.clone(), tickets.clone());
                    let target = self.clone_for_worker();
                    workers.spawn(async move {
                        let mut conn = match &target {
                            Self::Http {
                                keep_alive: true, ..
                            } => Some(target.http_conn().await?),
                            _ => None,
                        };
                        while more(&tickets) {
                            match (&target, conn.as_mut()) {
                                (Self::Client(client), _) => {
                                    let _: String = client.call("echo", PAYLOAD).await?;
                                }
                                (Self::Http { .. }, Some(conn)) => target.http_call(conn).await?,
                                (Self::Http { .. }, None) => {
                                    let mut fresh = target.http_conn().await?;
                                    target.http_call(&mut fresh).await?;
                                }
                                (Self::Ws { .. }, _) => bail!("unreachable: ws is pipelined above"),
                            }
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        anyhow::Ok(())
                    });
                }
                while let Some(result) = workers.join_next().await {
                    result??;
                }
            }
        }
        Ok((done.load(Ordering::Relaxed), start.elapsed()))
    }

    fn clone_for_worker(&self) -> Self {
        match self {
            Self::Client(c) => Self::Client(c.clone()),
            Self::Http {
                addr,
                host,
                auth,
                keep_alive,
            } => Self::Http {
                addr: *addr,
                host: host.clone(),
                auth: auth.clone(),
                keep_alive: *keep_alive,
            },
            Self::Ws { url, host, auth } => Self::Ws {
                url: url.clone(),
                host: host.clone(),
                auth: auth.clone(),
            },
        }
    }

    async fn http_conn(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let Self::Http { addr, .. } = self else {
            bail!("not http")
        };
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        Ok(sender)
    }

    async fn http_call(&self, conn: &mut SendRequest<Full<Bytes>>) -> anyhow::Result<()> {
        let Self::Http {
            host,
            auth,
            keep_alive,
            ..
        } = self
        else {
            bail!("not http")
        };
        let req = hyper::Request::post("/v2/call/echo")
            .header("host", host.as_str())
            .header("authorization", auth.as_str())
            .header("content-type", "application/json")
            .header(
                "connection",
                if *keep_alive { "keep-alive" } else { "close" },
            )
            .body(Full::new(Bytes::from(format!("\"{PAYLOAD}\""))))?;
        conn.ready().await?;
        let response = conn.send_request(req).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != 200 || body.len() != PAYLOAD.len() + 13 {
            bail!(
                "unexpected answer {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    }

    async fn ws_conn(&self) -> anyhow::Result<Ws> {
        let Self::Ws { url, host, auth } = self else {
            bail!("not ws")
        };
        let req = hyper::Request::get(url.as_str())
            .header("host", host.as_str())
            .header("authorization", auth.as_str())
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header(
                "sec-websocket-key",
                tokio_tungstenite::tungstenite::handshake::client::generate_key(),
            )
            .body(())?;
        let tcp = TcpStream::connect(host.as_str()).await?;
        tcp.set_nodelay(true)?;
        let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await?;
        // The connection's version is set by its first message.
        ws.send(Message::Binary(Bytes::from_static(
            b"\x95\x02\x00\x00\xa7$/hello\xc0",
        )))
        .await?;
        ws_answer(&mut ws).await?;
        Ok(ws)
    }
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// `[2, 0, id, "echo", PAYLOAD]`.
fn ws_echo(id: u64) -> Message {
    let mut out = Vec::with_capacity(64);
    let envelope = rmpv::Value::Array(vec![
        2.into(),
        0.into(),
        id.into(),
        "echo".into(),
        PAYLOAD.into(),
    ]);
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, &envelope);
    Message::Binary(out.into())
}

/// Waits for the next response and checks it is one.
async fn ws_answer(ws: &mut Ws) -> anyhow::Result<()> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => {
                // [2, 1, id, nil, result]: a fixarray of 5, version 2, kind 1.
                if b.len() < 4 || b[..2] != [0x95, 0x02] || b[2] != 0x01 {
                    bail!("unexpected message {b:02x?}");
                }
                return Ok(());
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => bail!("the WebSocket ended: {other:?}"),
        }
    }
}

fn nanos(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn read_url(socket: &Path) -> anyhow::Result<String> {
    let path: PathBuf = socket.with_file_name("bridge.url");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.trim().to_owned())
}
