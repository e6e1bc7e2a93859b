//! Start on first use, for the commands that use the daemon (`call`, `bench` without
//! `--spawn`, and `lsp`): when nothing answers on the socket they start `hearthd` through
//! [`hearth_client::Client::connect_or_start`], unless `--no-start` or `HEARTH_NO_START=1`.
//! The commands that look at a daemon (`status`, `doctor`, `shutdown`, `ping`) never start
//! one. Also the check that `--timeout` is more than zero.

use std::time::Duration;

use hearth_client::{Client, ClientConfig, StartOptions};

use crate::commands::Target;

/// The environment variable that, set to `1`, means `--no-start`.
pub(crate) const NO_START_ENV: &str = "HEARTH_NO_START";

/// Whether a command that uses the daemon may start one.
pub(crate) fn may_start(no_start: bool) -> bool {
    !no_start && std::env::var_os(NO_START_ENV).is_none_or(|v| v != "1")
}

/// `--timeout`: a duration, refused when zero (every call would time out at once).
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = crate::duration::parse(text)?;
    if d.is_zero() {
        return Err("must be more than zero (every call would time out at once)".into());
    }
    Ok(d)
}

/// Makes sure a daemon answers on `socket`, starting one if needed (for `hearth lsp`, whose
/// gateway then connects on its own).
pub(crate) async fn ensure_running(
    socket: &std::path::Path,
    timeout: Duration,
) -> Result<(), hearth_client::Error> {
    let target = Target {
        socket: socket.to_owned(),
        timeout,
        start: true,
    };
    let config = ClientConfig::default()
        .with_client_name(format!("hearth lsp {}", env!("CARGO_PKG_VERSION")))
        .with_timeout(timeout);
    connect_or_start(&target, config).await.map(drop)
}

/// Connects to `target`'s daemon, starting one when nothing answers. The timeout covers the
/// connect; a daemon being started gets the same time again to answer.
pub(crate) async fn connect_or_start(
    target: &Target,
    config: ClientConfig,
) -> Result<Client, hearth_client::Error> {
    let options = StartOptions {
        ready_timeout: target.timeout,
        ..StartOptions::default()
    };
    let bound = target.timeout * 2;
    tokio::time::timeout(
        bound,
        Client::connect_or_start(&target.socket, config, &options),
    )
    .await
    .unwrap_or(Err(hearth_client::Error::Timeout(bound)))
}
