//! The daemon's tunables: [`Limits`] (every bound a peer can push against, with its default)
//! and [`ServerInfo`] (how the daemon names itself in `$/hello`). Plain data; the connection
//! and accept loop enforce them.

use std::time::Duration;

use hearth_protocol::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME};

/// Every bound the daemon enforces. The defaults are documented in docs/PROTOCOL.md and
/// announced to clients in `$/hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame body accepted or sent, in bytes. Default 8 MiB.
    pub max_frame: usize,
    /// Requests (and client notifications) running at once on one connection. Past this the
    /// daemon stops reading that connection until one finishes. Default 1024.
    pub max_in_flight: usize,
    /// Connections served at once; one more is sent `$/fatal` (-32001) and closed.
    /// Default 256.
    pub max_connections: usize,
    /// Deepest nesting accepted in a message, counting the envelope (at most 64). Default 64.
    pub max_depth: usize,
    /// Version 2 requests that may wait on one connection while `max_in_flight` run; one more
    /// is answered -32001 at once and the connection keeps being read. `None` (the default)
    /// means as many as `max_in_flight`, as PROTOCOL.md §15.4 describes.
    pub max_queued: Option<usize>,
    /// Requests the daemon may have waiting for one client's answer at once (version 2);
    /// a handler that wants another waits for a free slot. Default 64.
    pub max_client_requests: usize,
    /// How long the daemon waits for the client to answer one of its requests before it
    /// gives up and cancels it. Default 30 s.
    pub client_request_timeout: Duration,
    /// Encoded output a connection may have waiting for the socket, in bytes, before the
    /// daemon stops producing more for it (and so stops reading it). Default 4 MiB; one frame
    /// may overshoot it.
    pub max_outbound_bytes: usize,
    /// Notifications from handlers waiting to be written on one connection; senders wait when
    /// it is full. Default 256.
    pub notification_queue: usize,
    /// How long a frame may take from its first byte to its last. A peer that sends part of
    /// a frame and stalls gets `$/fatal` (-32008) when it runs out. Default 10 s.
    pub frame_timeout: Duration,
    /// How long output may wait for a peer that reads nothing before the connection is
    /// dropped (its requests are cancelled). Default 30 s.
    pub write_timeout: Duration,
    /// Protocol errors (bad bodies, duplicate ids) a connection may cause per minute before
    /// it gets `$/fatal` (-32007). Default 100.
    pub max_errors_per_minute: u32,
    /// Cancels for ids that are not in flight a connection may send per minute before it
    /// gets `$/fatal` (-32007). Some are normal (a cancel racing its response). Default
    /// 100,000.
    pub max_unknown_cancels_per_minute: u32,
    /// How long in-flight requests may run after shutdown begins before they are answered
    /// -32003. Default 5 s.
    pub grace: Duration,
    /// How long the daemon keeps trying to write final answers to a connection that does not
    /// read them, once the grace period is over. Default 1 s.
    pub flush_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            max_in_flight: 1024,
            max_connections: 256,
            max_depth: DEFAULT_MAX_DEPTH,
            max_queued: None,
            max_client_requests: 64,
            client_request_timeout: Duration::from_secs(30),
            max_outbound_bytes: 4 * 1024 * 1024,
            notification_queue: 256,
            frame_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_errors_per_minute: 100,
            max_unknown_cancels_per_minute: 100_000,
            grace: Duration::from_secs(5),
            flush_timeout: Duration::from_secs(1),
        }
    }
}

impl Limits {
    /// The smallest `max_frame` a daemon works with: room for `$/hello`'s request and a
    /// `$/fatal`.
    pub const MIN_MAX_FRAME: usize = 64;

    /// The version 2 wait queue's bound: `max_queued`, or `max_in_flight` when unset.
    pub fn queue_bound(&self) -> usize {
        self.max_queued.unwrap_or(self.max_in_flight)
    }

    /// The same limits with every value clamped to something workable (at least 1, depth at
    /// most the protocol's maximum).
    pub(crate) fn sanitized(mut self) -> Self {
        self.max_frame = self.max_frame.clamp(Self::MIN_MAX_FRAME, u32::MAX as usize);
        self.max_in_flight = self.max_in_flight.max(1);
        self.max_connections = self.max_connections.max(1);
        self.max_client_requests = self.max_client_requests.max(1);
        self.max_depth = self.max_depth.clamp(2, DEFAULT_MAX_DEPTH);
        self.max_outbound_bytes = self.max_outbound_bytes.max(1);
        self.notification_queue = self.notification_queue.max(1);
        self
    }
}

/// How the daemon describes itself in `$/hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// Program name, e.g. `hearthd`.
    pub name: String,
    /// Program version.
    pub version: String,
}

impl Default for ServerInfo {
    fn default() -> Self {
        Self {
            name: "hearth-server".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}
