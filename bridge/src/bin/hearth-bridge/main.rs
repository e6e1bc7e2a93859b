//! `hearth-bridge`: the bridge as a program of its own (`hearth-bridge [--socket PATH]
//! [--listen HOST:PORT] [--origin ORIGIN]... [--unsafe-listen]`, the same as `hearth bridge`),
//! plus `hearth-bridge bench`, which measures an echo round trip over each transport a
//! browser or a local client can use (see `bench.rs`). The bridge's work is
//! `hearth_bridge::run`; this file only parses flags and sets up logging.

mod bench;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// HTTP and WebSocket for browser clients of a hearth daemon.
#[derive(Debug, Parser)]
#[command(
    name = "hearth-bridge",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// The daemon's socket [default: as the hearth CLI]
    #[arg(long, value_name = "PATH", env = "HEARTH_SOCKET", global = true)]
    socket: Option<PathBuf>,
    #[command(flatten)]
    args: hearth_bridge::Args,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure echo round trips and calls/s over one transport
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hearth-bridge: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let socket = cli
        .socket
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(hearth_client::default_socket_path);
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Bench(args)) => bench::run(&socket, args).await,
            None => Ok(hearth_bridge::run(Some(socket), cli.args).await?),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth-bridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}
