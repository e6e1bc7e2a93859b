//! The reserved methods — every name starting with `$/` — and the shapes of their params and
//! results. `$/hello` and `$/fatal` are frozen for all protocol versions, so that any client can
//! always learn what a daemon speaks and why it was refused. Unknown fields are ignored when
//! these are read, and fields not sent take their defaults, so both sides can grow.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The prefix of every reserved method name.
pub const PREFIX: &str = "$/";
/// Request: handshake; returns [`HelloResult`].
pub const HELLO: &str = "$/hello";
/// Request: counters; returns [`Stats`].
pub const STATS: &str = "$/stats";
/// Notification from the daemon just before it closes a connection: [`Fatal`].
pub const FATAL: &str = "$/fatal";
/// Notification from the daemon about bad input that belongs to no request id: an error map.
pub const ERROR: &str = "$/error";

/// Whether `method` is in the reserved namespace.
pub fn is_reserved(method: &str) -> bool {
    method.starts_with(PREFIX)
}

/// Params of `$/hello`: nil or `{"client": str}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloParams {
    /// A name for the client, for the daemon's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// Result of `$/hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloResult {
    /// The protocol version the daemon answered in.
    pub protocol: u32,
    /// `"<name> <version>"` of the daemon.
    pub server: String,
    /// How the daemon was built (profile and target).
    #[serde(default)]
    pub build: String,
    /// The methods it serves, sorted, reserved ones included.
    #[serde(default)]
    pub methods: Vec<String>,
    /// The limits a client should respect.
    pub limits: Limits,
    /// Every protocol version the daemon speaks. Sent in version 2 answers (and later);
    /// absent from a version 1 answer, whose shape is frozen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported: Vec<u32>,
    /// Which build of the daemon this is: its version, `+`, and a hash of its executable
    /// (or whatever its operator set in `HEARTH_BUILD_ID`). A client that would start a
    /// daemon with another build id may replace this one (PROTOCOL.md §9.1). Added within
    /// version 2; absent from older daemons' answers and never sent in version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

/// Limits the daemon announces in `$/hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest frame body it accepts (and sends), in bytes.
    pub max_frame: u64,
    /// Requests it runs at once per connection; past this it stops reading the connection
    /// until one finishes.
    pub max_in_flight: u64,
    /// Connections it serves at once.
    #[serde(default)]
    pub max_connections: u64,
    /// Deepest nesting it accepts in a message, counting the envelope.
    #[serde(default)]
    pub max_depth: u64,
}

/// Params of the `$/fatal` notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fatal {
    /// An error code, as in error responses.
    pub code: i64,
    /// What went wrong.
    pub message: String,
    /// The protocol versions the daemon speaks.
    #[serde(default)]
    pub supported: Vec<u32>,
}

/// Result of `$/stats`: a snapshot of the daemon's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Milliseconds since the daemon started.
    pub uptime_ms: u64,
    /// Connections open now.
    pub connections: u64,
    /// Connections accepted since start (refused ones not included).
    pub connections_total: u64,
    /// Connections refused (wrong user, over the limit).
    #[serde(default)]
    pub connections_refused: u64,
    /// Requests being served now, over all connections, not counting the `$/stats` request
    /// that asks.
    pub in_flight: u64,
    /// Requests received since start.
    pub requests_total: u64,
    /// Requests received since start, by method name. Names that are not registered are
    /// counted under `"(unknown)"`.
    pub methods: BTreeMap<String, u64>,
    /// Error responses and `$/error`/`$/fatal` notifications sent since start, by code (as a
    /// decimal string, so the map survives a trip through JSON).
    pub errors: BTreeMap<String, u64>,
}
