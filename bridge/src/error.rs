//! [`Error`], what starting the bridge can fail with. Failures of single requests are answered
//! as HTTP statuses (see `api.rs` and `guard.rs`) and never reach this type.

use std::io;
use std::path::PathBuf;

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `--listen` is not `HOST:PORT`.
    #[error("--listen {given:?} is not HOST:PORT (e.g. 127.0.0.1:7727, [::1]:0, localhost:7727)")]
    BadListen {
        /// What was given.
        given: String,
    },
    /// The host name could not be resolved.
    #[error("cannot resolve --listen {given:?}: {source}")]
    Resolve {
        /// What was given.
        given: String,
        /// What the resolver said.
        #[source]
        source: io::Error,
    },
    /// The address is not a loopback address and `--unsafe-listen` was not given.
    #[error(
        "refusing to listen on {given} ({addr}): it is not a loopback address, so other machines \
         could reach the bridge; use 127.0.0.1, [::1] or localhost, or add --unsafe-listen if you \
         really mean it"
    )]
    NotLoopback {
        /// What was given.
        given: String,
        /// The address it is or resolved to.
        addr: std::net::IpAddr,
    },
    /// An `--origin` is not of the form `scheme://host[:port]`.
    #[error("--origin {0:?} is not an origin (scheme://host[:port], no path, no trailing slash)")]
    BadOrigin(String),
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The daemon could not be reached over its socket.
    #[error("cannot reach the daemon: {0}")]
    Daemon(#[from] hearth_client::Error),
    /// The daemon's socket has no parent folder to hold `bridge.url`.
    #[error("the socket path {0} has no folder for bridge.url")]
    NoSocketFolder(PathBuf),
    /// Writing `bridge.url` failed.
    #[error("cannot write {path}: {source}")]
    UrlFile {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The operating system's random source failed.
    #[error("cannot draw a random token: {0}")]
    Random(String),
    /// Accepting connections failed for good.
    #[error("accepting connections failed: {0}")]
    Accept(#[source] io::Error),
}
