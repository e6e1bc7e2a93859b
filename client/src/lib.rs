//! `hearth-client` talks to a hearth daemon over its Unix socket (or over loopback TCP, for
//! comparisons: [`Client::connect_tcp`]): one [`Client`] per connection, shared by as many
//! tasks as like, each call answered in whatever order the daemon finishes them. It owns the
//! client side of the connection — handshake and version check, request ids, the pending-call
//! table, cancellation of dropped calls, timeouts, notifications and the failure of every
//! waiting call when the connection dies. The wire format itself is `hearth-protocol`'s,
//! re-exported here as [`protocol`]; the `hearth` command-line tool is a crate of its own,
//! `hearth-cli`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hearth_client::Error> {
//! let client = hearth_client::Client::connect_default().await?;
//! let sum: i64 = client.call("add", &(2, 3)).await?;
//! println!("{} says {sum}", client.hello().server);
//! # Ok(())
//! # }
//! ```
//!
//! With a daemon that speaks protocol version 2 ([`Client::protocol_version`]), calls can
//! carry a deadline or a supersede key and stream partial results ([`Client::request`],
//! [`CallBuilder`], [`CallStream`]), and the client answers the daemon's own requests with
//! the handlers given to [`Client::serve`]. Against a version 1 daemon the client reconnects
//! speaking version 1, and those features fail with [`Error::Unsupported`].
//!
//! Inside, a call encodes its frame, takes an in-flight permit (the daemon's `max_in_flight`
//! less one, so cancels are always read), registers its id in the pending table and appends the frame to a shared outbound buffer.
//! One writer task writes everything queued with one `write_all` per wakeup — except that a
//! call alone in flight, finding the writer idle, writes its frame itself (the editor's
//! one-call-at-a-time path, a task hop less); one reader task decodes frames and completes
//! calls. A closed client stays closed; [`Reconnecting`] is the
//! opt-in wrapper that makes a new connection when the daemon restarts, and
//! [`Client::connect_or_start`] starts a daemon when none answers.

mod call;
mod client;
mod config;
mod connection;
mod error;
mod io;
mod notifications;
mod outbound;
mod pending;
mod reconnect;
mod serve;
mod socket;
mod start;

pub use call::{CallBuilder, CallStream, StreamEvent};
pub use client::{Client, WeakClient};
pub use config::{ClientConfig, read_tcp_token};
pub use error::{CloseReason, Error, ProtocolError, RemoteError};
pub use hearth_protocol as protocol;
pub use hearth_protocol::reserved::{HelloResult, Limits, Stats};
pub use hearth_protocol::{ErrorCode, ErrorObject, Version};
pub use notifications::{Notification, Notifications};
pub use reconnect::{ReconnectPolicy, Reconnecting};
pub use socket::default_socket_path;
pub use start::{
    DAEMON_ENV, DEFAULT_IDLE_EXIT, DaemonSource, NO_REPLACE_ENV, StartError, StartOptions,
    find_daemon, log_path, start_lock_path,
};
