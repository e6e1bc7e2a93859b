//! `hearth`, the command-line client for a hearth daemon: call any method with JSON params,
//! ping it, show its status, shut it down, load-test it, serve an editor over LSP (`lsp.rs`),
//! bridge it to browsers (`hearth bridge`, the `hearth-bridge` crate). This file owns the flags and the
//! dispatch; each command lives in `commands.rs`, `status.rs` or `bench.rs`, JSON⇄MessagePack
//! in `json.rs`, and exit codes and error lines in `exit.rs`. The talking itself is the
//! `hearth-client` library.

mod bench;
mod commands;
mod doctor;
mod duration;
mod exit;
mod json;
mod lsp;
mod start;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::commands::Target;

/// Talk to a hearth daemon over its Unix socket.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, after_help = exit::EXIT_CODES_HELP)]
struct Cli {
    // An attribute, not a doc comment: rustdoc would read `<uid>` as an HTML tag.
    // Not clap's `env`: it takes an empty HEARTH_SOCKET as a value, where PROTOCOL.md §3.1
    // says empty means unset; hearth_client::default_socket_path reads the variable.
    #[arg(
        long,
        value_name = "PATH",
        global = true,
        help = "The daemon's socket [default: $HEARTH_SOCKET if set and not empty, else \
                $XDG_RUNTIME_DIR/hearth/hearthd.sock, else /tmp/hearth-<uid>/hearthd.sock]"
    )]
    socket: Option<PathBuf>,

    /// Never start hearthd: call and bench fail when no daemon answers (also
    /// HEARTH_NO_START=1). Without it they start one (status, ping, shutdown and doctor never do)
    #[arg(long, global = true)]
    no_start: bool,

    /// How long to wait for the daemon: to connect, and for each answer (e.g. 500ms, 5s, 1m)
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = start::parse_timeout,
        global = true
    )]
    timeout: Duration,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Call a method and print its result as JSON
    Call {
        /// The method name, e.g. echo or $/stats
        method: String,
        /// The params as JSON; `-` reads them from stdin [default: null]
        #[arg(value_name = "PARAMS_JSON")]
        params: Option<String>,
        /// Print the result on one line instead of pretty-printed
        #[arg(long)]
        compact: bool,
        #[command(flatten)]
        options: commands::CallOptions,
    },
    /// Measure round trips to the daemon ($/hello on one connection)
    Ping {
        /// How many round trips
        #[arg(long, short = 'c', default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// Show what the daemon is and what it has been doing ($/hello and $/stats)
    Status {
        /// Print one JSON object {"hello": .., "stats": ..} instead of text
        #[arg(long)]
        json: bool,
    },
    /// Ask the daemon to shut down gracefully (running requests may finish)
    Shutdown,
    /// Check the setup: socket path and why, folder and socket safety, stale files, the
    /// daemon and its build, the hearthd that would be started, limits. Exits 1 on a problem
    Doctor {
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// Load-test the daemon: calls/s, latency percentiles, errors and CPU per call
    Bench(bench::BenchArgs),
    /// Serve the Language Server Protocol on stdin/stdout for an editor, backed by the daemon's
    /// language service (exit: 0 after shutdown+exit, 1 exit without shutdown or bad input,
    /// 3 no daemon or lost it)
    Lsp(lsp::LspArgs),
    /// Serve HTTP and WebSocket for browser clients on a loopback port, token-guarded; prints
    /// the URL to open (docs/BRIDGE.md)
    Bridge(hearth_bridge::Args),
}

fn main() -> ExitCode {
    // Usage errors exit 2 and --help/--version exit 0, as clap does by default.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hearth: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Lsp(args) = cli.command {
        let socket = socket_path(cli.socket);
        // Start on first use before the gateway connects; nothing of it reaches stdout.
        if start::may_start(cli.no_start)
            && let Err(e) = runtime.block_on(start::ensure_running(&socket, cli.timeout))
        {
            return exit::report(&e.into());
        }
        return lsp::run(runtime, &socket, cli.timeout, args);
    }
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::report(&e),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let socket_from_flag = cli
        .socket
        .as_ref()
        .is_some_and(|p| !p.as_os_str().is_empty());
    let target = Target {
        socket: socket_path(cli.socket),
        timeout: cli.timeout,
        start: start::may_start(cli.no_start)
            && matches!(cli.command, Command::Call { .. } | Command::Bench(_)),
        // (`hearth lsp` is served in `main`, and starts one there.)
    };
    match cli.command {
        Command::Call {
            method,
            params,
            compact,
            options,
        } => {
            let params = commands::read_params(params.as_deref())?;
            commands::call(&target, &method, &params, compact, &options).await
        }
        Command::Ping { count, json } => commands::ping(&target, count, json).await,
        Command::Status { json } => status::status(&target, json).await,
        Command::Shutdown => commands::shutdown(&target).await,
        Command::Doctor { json } => doctor::doctor(&target, socket_from_flag, json).await,
        Command::Bench(args) => bench::run(&target, args).await,
        Command::Lsp(_) => unreachable!("served in main"),
        Command::Bridge(args) => Ok(hearth_bridge::run(Some(target.socket), args).await?),
    }
}

/// `--socket` (or `HEARTH_SOCKET`), else the default path.
fn socket_path(flag: Option<PathBuf>) -> PathBuf {
    // An empty HEARTH_SOCKET means "not set", as for the daemon.
    flag.filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(hearth_client::default_socket_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from(["hearth", "ping", "--socket", "/s", "--timeout", "500ms"])
            .expect("valid flags");
        assert_eq!(cli.socket, Some(PathBuf::from("/s")));
        assert_eq!(cli.timeout, Duration::from_millis(500));
        assert!(Cli::try_parse_from(["hearth", "ping", "--count", "0"]).is_err());
    }

    #[test]
    fn call_takes_the_protocol_v2_options() {
        let cli = Cli::try_parse_from([
            "hearth",
            "call",
            "count",
            r#"{"n": 3}"#,
            "--deadline",
            "100ms",
            "--supersede",
            "k",
            "--stream",
        ])
        .expect("valid flags");
        let Command::Call { options, .. } = cli.command else {
            panic!("not a call: {:?}", cli.command);
        };
        assert_eq!(options.deadline, Some(Duration::from_millis(100)));
        assert_eq!(options.supersede.as_deref(), Some("k"));
        assert!(options.stream);
        assert!(options.is_v2());

        let cli = Cli::try_parse_from(["hearth", "call", "echo"]).expect("valid flags");
        let Command::Call { options, .. } = cli.command else {
            panic!("not a call: {:?}", cli.command);
        };
        assert!(!options.is_v2(), "no option, no v2 requirement");
        assert!(Cli::try_parse_from(["hearth", "call", "echo", "--deadline", "5"]).is_err());
        assert!(Cli::try_parse_from(["hearth", "call", "echo", "--supersede"]).is_err());
    }

    #[test]
    fn bridge_takes_its_contract_flags() {
        let cli = Cli::try_parse_from([
            "hearth",
            "bridge",
            "--socket",
            "/s",
            "--listen",
            "127.0.0.1:0",
            "--origin",
            "http://localhost:5173",
            "--origin",
            "http://localhost:8080",
            "--unsafe-listen",
        ])
        .expect("valid flags");
        assert_eq!(cli.socket, Some(PathBuf::from("/s")));
        let Command::Bridge(args) = cli.command else {
            panic!("not bridge: {:?}", cli.command);
        };
        assert_eq!(args.listen, "127.0.0.1:0");
        assert_eq!(
            args.origins,
            ["http://localhost:5173", "http://localhost:8080"]
        );
        assert!(args.unsafe_listen);
        let Command::Bridge(args) = Cli::try_parse_from(["hearth", "bridge"])
            .expect("no flags")
            .command
        else {
            panic!("not bridge");
        };
        assert_eq!(args.listen, "127.0.0.1:7727");
        assert!(args.origins.is_empty() && !args.unsafe_listen);
    }
}
