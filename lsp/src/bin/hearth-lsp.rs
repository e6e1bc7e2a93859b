//! `hearth-lsp`: the LSP gateway as its own small binary, for editors to start (`hearth-lsp
//! [--socket PATH]`) until the `hearth` CLI carries it as `hearth lsp`. It parses its few
//! flags by hand, logs warnings to stderr (stdout is the editor's), and exits with LSP's code:
//! 0 after `shutdown` + `exit`, 1 otherwise — and 1 with a message on stderr when the input is
//! not LSP or hearthd cannot be reached or goes away.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use hearth_lsp::Options;

const USAGE: &str = "\
Usage: hearth-lsp [--socket PATH] [--completion-deadline-ms MS] [--no-index]

Speaks the Language Server Protocol on stdin/stdout and hearth to hearthd: configure it as the
language server command of your editor.

Options:
  --socket PATH                 hearthd's socket [default: $HEARTH_SOCKET, else
                                $XDG_RUNTIME_DIR/hearth/hearthd.sock, else
                                /tmp/hearth-<uid>/hearthd.sock]
  --completion-deadline-ms MS   answer a completion within MS or with an empty list [200]
  --no-index                    do not index the workspace root on start
  -h, --help                    this text
  -V, --version                 the version
";

fn main() -> ExitCode {
    let mut socket: Option<PathBuf> = None;
    let mut options = Options::default();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--socket") => match args.next() {
                Some(path) => socket = Some(PathBuf::from(path)),
                None => return usage_error("--socket needs a PATH"),
            },
            Some("--completion-deadline-ms") => {
                match args.next().and_then(|v| v.to_str()?.parse::<u64>().ok()) {
                    Some(ms) => options.completion_deadline = Duration::from_millis(ms),
                    None => return usage_error("--completion-deadline-ms needs a number"),
                }
            }
            Some("--no-index") => options.index_on_initialize = false,
            Some("-h" | "--help") => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some("-V" | "--version") => {
                println!("hearth-lsp {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            _ => return usage_error(&format!("unexpected argument {arg:?}")),
        }
    }
    let socket = socket.unwrap_or_else(hearth_client::default_socket_path);
    init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hearth lsp: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(hearth_lsp::serve_stdio(&socket, options));
    let code = match outcome {
        Ok(status) => status.code(),
        Err(e) => {
            eprintln!("hearth lsp: {e}");
            1
        }
    };
    // Exit without dropping the runtime: its stdin reader sits in a blocking read that would
    // hold the drop until the editor closes our input.
    std::process::exit(code)
}

fn usage_error(what: &str) -> ExitCode {
    eprintln!("hearth lsp: {what}\n\n{USAGE}");
    ExitCode::from(2)
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}
