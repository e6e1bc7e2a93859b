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
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            client_name: format!("hearth-client {}", env!("CARGO_PKG_VERSION")),
            timeout: None,
            notification_buffer: 1024,
            max_frame: DEFAULT_MAX_FRAME,
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
}
