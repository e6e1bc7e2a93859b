//! [`ClientConfig`]: the knobs a caller sets before connecting — the name sent in `$/hello`, a
//! default per-call timeout, the notification buffer and the largest frame accepted. Limits the
//! daemon announces (in-flight requests, its own frame maximum) are not configured here: the
//! client learns them from `$/hello` and respects them on its own.

use std::time::Duration;

use hearth_protocol::DEFAULT_MAX_FRAME;

/// How a [`Client`](crate::Client) behaves. Build one with `ClientConfig::default()` and the
/// `with_*` setters, or with a struct literal ending in `..ClientConfig::default()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The name sent in `$/hello`, which shows up in the daemon's logs.
    pub client_name: String,
    /// The timeout for calls that do not give their own (also for the `$/hello` done on
    /// connect). `None`, the default, waits as long as the connection lives.
    pub timeout: Option<Duration>,
    /// How many notifications from the daemon are kept for
    /// [`Notifications`](crate::Notifications) before new ones are dropped. Default 1024.
    pub notification_buffer: usize,
    /// The largest frame body this client accepts, and sends (it also never sends more than
    /// the daemon's announced maximum). Default [`DEFAULT_MAX_FRAME`] (8 MiB).
    pub max_frame: usize,
    /// The token a daemon's TCP listener asks for in `$/hello` (PROTOCOL.md §3.4): the
    /// contents of `tcp.token` beside its socket, e.g. from [`read_tcp_token`]. Sent when set;
    /// a Unix socket ignores it. Default `None`.
    pub tcp_token: Option<String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            client_name: format!("hearth-client {}", env!("CARGO_PKG_VERSION")),
            timeout: None,
            notification_buffer: 1024,
            max_frame: DEFAULT_MAX_FRAME,
            tcp_token: None,
        }
    }
}

impl ClientConfig {
    /// Sets the name sent in `$/hello`.
    pub fn with_client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// Sets the default per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets how many notifications are buffered (at least 1).
    pub fn with_notification_buffer(mut self, len: usize) -> Self {
        self.notification_buffer = len;
        self
    }

    /// Sets the largest frame body accepted and sent.
    pub fn with_max_frame(mut self, max: usize) -> Self {
        self.max_frame = max;
        self
    }

    /// Sets the token sent in `$/hello` for a daemon's TCP listener.
    pub fn with_tcp_token(mut self, token: impl Into<String>) -> Self {
        self.tcp_token = Some(token.into());
        self
    }
}

/// Reads the TCP token of the daemon whose socket is `socket`: the file `tcp.token` in the
/// socket's folder (mode 0600 in a 0700 folder, so only the daemon's user can read it),
/// without its trailing newline.
pub fn read_tcp_token(socket: &std::path::Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(socket.with_file_name("tcp.token"))?;
    Ok(text.trim_end().to_owned())
}
