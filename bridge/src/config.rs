//! What the bridge is told: [`Args`] (the `hearth bridge` flags, minus `--socket`, which the
//! `hearth` CLI owns globally), [`Config`] (everything [`Bridge::bind`](crate::Bridge::bind)
//! needs) and [`Limits`] (the bounds documented in docs/BRIDGE.md). Checking the listen address
//! is `listen.rs`'s; this module only holds values.

use std::path::PathBuf;
use std::time::Duration;

/// The flags of `hearth bridge`. `--socket` is the `hearth` CLI's global flag and is passed to
/// [`run`](crate::run) separately.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Where to listen: a loopback HOST:PORT (port 0 picks a free port)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7727")]
    pub listen: String,
    /// Another origin whose pages may call the bridge (exact, e.g. http://localhost:5173); repeatable
    #[arg(long = "origin", value_name = "ORIGIN")]
    pub origins: Vec<String>,
    /// Listen on a non-loopback address anyway (other machines can then reach the bridge)
    #[arg(long)]
    pub unsafe_listen: bool,
}

/// Everything the bridge needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The daemon's socket; `bridge.url` goes in its folder.
    pub socket: PathBuf,
    /// `HOST:PORT` to listen on.
    pub listen: String,
    /// Extra allowed origins, exact.
    pub origins: Vec<String>,
    /// Allow a non-loopback listen address.
    pub unsafe_listen: bool,
    /// Bounds.
    pub limits: Limits,
}

impl Config {
    /// A config for `socket` with the default listen address and limits.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            listen: "127.0.0.1:7727".to_owned(),
            origins: Vec::new(),
            unsafe_listen: false,
            limits: Limits::default(),
        }
    }
}

/// The bridge's bounds; see docs/BRIDGE.md, "Limits".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body (`POST /v2/call/...`); more is answered 413.
    pub max_body: usize,
    /// HTTP and WebSocket connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// WebSocket connections open at once; further upgrades are answered 503.
    pub max_websockets: usize,
    /// Time to receive a request's headers — also how long an idle keep-alive connection is
    /// kept.
    pub header_timeout: Duration,
    /// Time to receive a request's body.
    pub body_timeout: Duration,
    /// A WebSocket with no message in either direction for this long is closed.
    pub ws_idle_timeout: Duration,
    /// Largest request head (request line and headers).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 1 << 20,
            max_connections: 256,
            max_websockets: 64,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            ws_idle_timeout: Duration::from_secs(300),
            max_header_bytes: 16 * 1024,
        }
    }
}
