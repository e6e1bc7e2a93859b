//! The gateway as a command runs it: connect to the daemon at a socket path, then serve the
//! editor on this process's stdin and stdout. Argument parsing, logging and the exit code are
//! the binary's (`hearth lsp` in the CLI, or `hearth-lsp`).

use std::path::Path;

use hearth_client::{Client, ClientConfig};

use crate::{ExitStatus, LspError, Options};

/// Connects to hearthd at `socket` and serves one editor session on stdin/stdout. See
/// [`run`](crate::run); the connect error says whether the daemon seems to be running.
pub async fn serve_stdio(socket: &Path, options: Options) -> Result<ExitStatus, LspError> {
    let mut config = ClientConfig::default().with_client_name("hearth lsp");
    if let Some(timeout) = options.daemon_timeout {
        config = config.with_timeout(timeout);
    }
    let client = Client::connect_with(socket, config)
        .await
        .map_err(LspError::Connect)?;
    crate::run(tokio::io::stdin(), tokio::io::stdout(), client, options).await
}
