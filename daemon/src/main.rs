//! `hearthd`: the hearth daemon — `hearth-server` serving [`hearthd::router`] (the built-in
//! methods and the language service), wired to the command line, the environment, logging and
//! signals. SIGINT or SIGTERM starts a graceful shutdown; a second one stops at once. What is
//! served is the library's business (`lib.rs`), so tests can serve the same router in process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use hearth_lang::LangService;
use hearth_server::{Limits, Server};
use tokio::signal::unix::{SignalKind, signal};

/// hearthd, the hearth daemon: local, high-rate RPC over an owner-only Unix socket, serving a
/// language service (documents, a workspace index, completion) to editors.
#[derive(Debug, Parser)]
#[command(name = "hearthd", version, long_about = None, after_help = AFTER_HELP)]
struct Args {
    /// Socket path [default: $HEARTH_SOCKET if set and not empty, else
    /// $XDG_RUNTIME_DIR/hearth/hearthd.sock, else /tmp/hearth-<uid>/hearthd.sock]. A relative
    /// path is resolved against the current folder. Ignored when systemd passes a socket
    /// (LISTEN_FDS)
    // Not clap's `env`: it takes an empty HEARTH_SOCKET as a value, where PROTOCOL.md §3.1
    // says empty means unset. The server library reads the variable itself.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Exit once no connection has been open for this long (e.g. 30s, 10m, 1h); off by
    /// default. Clients that start hearthd on first use pass 10m
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    idle_exit: Option<Duration>,

    /// More logging: -v for debug, -vv for trace (RUST_LOG, when set, wins)
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Requests running at once per connection; past it the connection is not read
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_in_flight, value_parser = at_least(1))]
    max_in_flight: usize,

    /// Connections served at once; more are refused with a message
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections, value_parser = at_least(1))]
    max_connections: usize,

    /// Largest frame accepted or sent, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_frame, value_parser = at_least(Limits::MIN_MAX_FRAME))]
    max_frame: usize,

    /// Also listen on TCP, e.g. tcp:127.0.0.1:7070 (loopback only; for comparisons). TCP has
    /// no owner check, so connections must show the token written to tcp.token beside the
    /// socket in their first message, $/hello (PROTOCOL.md §3.4)
    #[arg(long, value_name = "tcp:ADDR:PORT", value_parser = parse_listen)]
    listen: Option<std::net::SocketAddr>,

    /// Allow --listen on a non-loopback address: exposes the daemon to the network, guarded
    /// only by the TCP token
    #[arg(long, requires = "listen")]
    allow_non_loopback: bool,

    /// How long a peer may take to finish a frame it started, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = Limits::default().frame_timeout.as_millis() as u64)]
    frame_timeout_ms: u64,

    /// How long output may wait for a peer that reads nothing before it is dropped, in
    /// milliseconds
    #[arg(long, value_name = "MS", default_value_t = Limits::default().write_timeout.as_millis() as u64)]
    write_timeout_ms: u64,

    /// How long running requests may finish after shutdown begins, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = Limits::default().grace.as_millis() as u64)]
    grace_ms: u64,
}

const AFTER_HELP: &str = "\
Methods: echo, sleep {\"ms\": N}, count, ask, shutdown, the reserved $/hello and $/stats,
and the language service (docs/LANGUAGE.md): workspace/index {\"root\": DIR}, symbols
{\"query\": Q}, complete, and the notifications doc/open, doc/change, doc/close.
Talk to it with `hearth` (hearth call echo '{\"hi\": 1}', hearth status, hearth shutdown).

Exit status: 0 after a clean shutdown, 1 when it cannot start (already running, unsafe
socket folder, bad path) or stops on an error.

Socket activation: started by systemd with a listening socket (LISTEN_FDS, LISTEN_PID; see
contrib/systemd/ in the source), hearthd serves that socket instead of binding one, still
refuses peers of other users, and leaves the socket file to systemd when it exits.

HEARTH_BUILD_ID, when set, replaces the build id announced in $/hello (normally the version
and a hash of this executable), which clients compare with the hearthd they would start.

HEARTH_SPIN_US: after answering, a connection polls for the next request for up to this many
microseconds (default 50, at most 1000, 0 = off), yielding the CPU between polls, before it
sleeps; it saves the wake-up of a sleeping core on one-call-at-a-time traffic.";

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.verbose);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearthd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A clap parser for a count or size that must be at least `min`: a smaller value is refused
/// with the minimum rather than silently raised.
fn at_least(min: usize) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync {
    move |s| {
        let n: usize = s
            .parse()
            .map_err(|_| format!("{s:?} is not a whole number"))?;
        if n < min {
            return Err(format!("{n} is below the minimum, {min}"));
        }
        Ok(n)
    }
}

/// `500ms`, `30s`, `10m`, `1h`; a bare number is seconds. Zero is refused: an idle exit of
/// nothing would stop the daemon before its first client could connect.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 30s, 10m, 1h)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{s:?} is not a duration (e.g. 30s, 10m, 1h)")),
    };
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// The listening socket systemd passed (LISTEN_FDS/LISTEN_PID for this process), if any.
fn activated_listener() -> anyhow::Result<Option<std::os::unix::net::UnixListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    if fds.len() > 1 {
        tracing::warn!(
            count = fds.len(),
            "systemd passed several sockets; serving the first"
        );
    }
    fds.take_unix_listener(0)
        .context("the socket systemd passed (fd 3) is not a listening Unix socket")
}

fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    let addr = s
        .strip_prefix("tcp:")
        .ok_or_else(|| format!("expected tcp:ADDR:PORT, e.g. tcp:127.0.0.1:7070, got {s:?}"))?;
    addr.parse()
        .map_err(|e| format!("{addr:?} is not an address and port: {e}"))
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let limits = Limits {
            max_in_flight: args.max_in_flight,
            max_connections: args.max_connections,
            max_frame: args.max_frame,
            grace: Duration::from_millis(args.grace_ms),
            frame_timeout: Duration::from_millis(args.frame_timeout_ms),
            write_timeout: Duration::from_millis(args.write_timeout_ms),
            ..Limits::default()
        };
        let build_id = hearth_server::protocol::build_id::daemon_build_id(
            env!("CARGO_PKG_VERSION"),
            std::path::Path::new("/proc/self/exe"),
            std::env::var_os(hearth_server::protocol::build_id::BUILD_ID_ENV).as_deref(),
        );
        let mut builder = Server::builder()
            .info("hearthd", env!("CARGO_PKG_VERSION"))
            .build_id(&build_id)
            .limits(limits)
            .router(hearthd::router(Arc::new(LangService::new())));
        if let Some(listener) = activated_listener()? {
            tracing::info!("serving the socket systemd passed (socket activation)");
            builder = builder.inherited_listener(listener);
        } else if let Some(path) = args.socket.filter(|p| !p.as_os_str().is_empty()) {
            builder = builder.socket(path);
        }
        if let Some(after) = args.idle_exit {
            builder = builder.idle_exit(after);
        }
        if let Some(addr) = args.listen {
            builder = builder
                .listen_tcp(addr)
                .allow_non_loopback_tcp(args.allow_non_loopback);
        }
        let server = builder.bind().await?;
        match server.tcp_addr() {
            Some(tcp) => tracing::info!(
                pid = std::process::id(),
                "hearthd {} ready on {} and tcp:{tcp}",
                env!("CARGO_PKG_VERSION"),
                server.socket_path().display()
            ),
            None => tracing::info!(
                pid = std::process::id(),
                build_id,
                "hearthd {} ready on {}",
                env!("CARGO_PKG_VERSION"),
                server.socket_path().display()
            ),
        }
        let handle = server.handle();
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down (send again to stop at once)"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down (send again to stop at once)"),
            }
            handle.shutdown();
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("second signal: stopping now");
            handle.shutdown_now();
        });
        server.run().await?;
        Ok(())
    })
}
