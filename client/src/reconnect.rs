//! Opt-in reconnection: [`Reconnecting`] holds a [`Client`] and, when its connection is gone
//! (the daemon restarted, was upgraded, or exited idle), makes a new one on the next call,
//! retrying with exponential backoff up to a bound ([`ReconnectPolicy`]). Calls that were in
//! flight when the connection died fail as they would on a plain `Client` (with
//! [`Error::Closed`], [`Error::Io`] or the daemon's -32003); they are never replayed, since the
//! daemon may have run them. Subscriptions, served handlers and documents a caller set up on
//! the old connection are the caller's to set up again ([`Reconnecting::generation`] tells
//! it when).

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::config::ClientConfig;
use crate::start::StartOptions;
use crate::{Client, Error};

/// How hard [`Reconnecting`] tries before giving up on one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// The pause after the first failed attempt; doubled after each further one. Default
    /// 50 ms.
    pub first_delay: Duration,
    /// The longest pause between attempts. Default 2 s.
    pub max_delay: Duration,
    /// Attempts before the last connect error is returned. Default 10 (about 8 s in all).
    pub max_attempts: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            max_attempts: 10,
        }
    }
}

/// A client that reconnects to its socket when its connection is gone. Cheap to share behind
/// an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Reconnecting {
    socket: PathBuf,
    config: ClientConfig,
    policy: ReconnectPolicy,
    start: Option<StartOptions>,
    current: Mutex<(Client, u64)>,
}

impl Reconnecting {
    /// Connects to the daemon at `socket` (once, without retrying: a first failure is
    /// usually a configuration mistake worth seeing at once).
    pub async fn connect(
        socket: impl Into<PathBuf>,
        config: ClientConfig,
        policy: ReconnectPolicy,
    ) -> Result<Self, Error> {
        let socket = socket.into();
        let client = Client::connect_with(&socket, config.clone()).await?;
        Ok(Self {
            socket,
            config,
            policy,
            start: None,
            current: Mutex::new((client, 0)),
        })
    }

    /// Like [`connect`](Self::connect), but connecting (first and on every reconnect) with
    /// [`Client::connect_or_start`], so a daemon that exited idle is started again.
    pub async fn connect_or_start(
        socket: impl Into<PathBuf>,
        config: ClientConfig,
        policy: ReconnectPolicy,
        start: StartOptions,
    ) -> Result<Self, Error> {
        let socket = socket.into();
        let client = Client::connect_or_start(&socket, config.clone(), &start).await?;
        Ok(Self {
            socket,
            config,
            policy,
            start: Some(start),
            current: Mutex::new((client, 0)),
        })
    }

    /// A connected client: the current one if its connection is open, else a new one, made
    /// with backoff within the policy's bound.
    pub async fn client(&self) -> Result<Client, Error> {
        let mut current = self.current.lock().await;
        if !current.0.is_closed() {
            return Ok(current.0.clone());
        }
        let mut delay = self.policy.first_delay;
        let mut attempt = 1;
        loop {
            let made = match &self.start {
                Some(start) => {
                    Client::connect_or_start(&self.socket, self.config.clone(), start).await
                }
                None => Client::connect_with(&self.socket, self.config.clone()).await,
            };
            match made {
                Ok(client) => {
                    tracing::info!(socket = %self.socket.display(), attempt, "reconnected");
                    *current = (client.clone(), current.1 + 1);
                    return Ok(client);
                }
                Err(e) if attempt >= self.policy.max_attempts.max(1) => return Err(e),
                Err(e) => {
                    tracing::debug!(attempt, "reconnect failed: {e}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.policy.max_delay);
                    attempt += 1;
                }
            }
        }
    }

    /// How many times a new connection replaced the first one.
    pub async fn generation(&self) -> u64 {
        self.current.lock().await.1
    }

    /// Calls `method` on a connected client (reconnecting first if needed). A call that fails
    /// because the connection died while it waited is returned as it failed, not retried.
    pub async fn call<P, R>(&self, method: &str, params: &P) -> Result<R, Error>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.client().await?.call(method, params).await
    }
}
