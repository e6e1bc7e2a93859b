//! `hearth-bridge`: the bridge as a program of its own (`hearth-bridge [--socket PATH]
//! [--listen HOST:PORT] [--origin ORIGIN]... [--unsafe-listen]`), the same as `hearth bridge`.
//! The work is `hearth_bridge::run`; this file only parses flags and sets up logging.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// HTTP and WebSocket for browser clients of a hearth daemon.
#[derive(Debug, Parser)]
#[command(name = "hearth-bridge", version)]
struct Cli {
    /// The daemon's socket [default: as the hearth CLI]
    #[arg(long, value_name = "PATH", env = "HEARTH_SOCKET")]
    socket: Option<PathBuf>,
    #[command(flatten)]
    args: hearth_bridge::Args,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match hearth_bridge::run(cli.socket, cli.args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}
