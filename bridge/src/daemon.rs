//! The bridge's side of the daemon: [`DaemonLink`] holds the one shared [`Client`] that HTTP
//! calls use (reconnecting when the daemon restarted); a WebSocket's relay opens its own plain
//! socket connection (`ws.rs`). Both go over the daemon's Unix socket, never its
//! TCP listener, so the daemon's uid check applies to the bridge like to any client.

use std::path::{Path, PathBuf};

use hearth_client::{Client, ClientConfig};
use tokio::sync::Mutex;

/// The shared client for HTTP calls, made again when the old one is closed.
pub(crate) struct DaemonLink {
    socket: PathBuf,
    client: Mutex<Option<Client>>,
}

impl DaemonLink {
    /// A link whose first client is `client`.
    pub(crate) fn new(socket: PathBuf, client: Client) -> Self {
        Self {
            socket,
            client: Mutex::new(Some(client)),
        }
    }

    /// The socket path.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// A live client: the current one, or a new one if it closed.
    pub(crate) async fn client(&self) -> Result<Client, hearth_client::Error> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        *slot = None;
        let client = connect(&self.socket).await?;
        *slot = Some(client.clone());
        Ok(client)
    }
}

/// Connects a hearth client named for the bridge.
pub(crate) async fn connect(socket: &Path) -> Result<Client, hearth_client::Error> {
    let config = ClientConfig::default()
        .with_client_name(format!("hearth-bridge {}", env!("CARGO_PKG_VERSION")));
    Client::connect_with(socket, config).await
}
