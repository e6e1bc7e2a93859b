//! `hearth lsp`: the Language Server Protocol gateway (the `hearth-lsp` library) as an editor
//! starts it — LSP on stdin/stdout, hearth to the daemon at the usual socket (the global
//! `--timeout` bounds connecting and each answer). This file only turns flags into
//! `hearth_lsp::Options` and the outcome into an exit code: 0 after the editor's `shutdown`
//! and `exit`, 1 for `exit` without `shutdown` (as LSP prescribes) or input that is not LSP,
//! 3 when the daemon cannot be reached or goes away — each failure with one line on stderr
//! (stdout belongs to the editor).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use hearth_lsp::{LspError, Options};

/// `hearth lsp`'s flags (the socket is the global `--socket`).
#[derive(Debug, clap::Args)]
pub(crate) struct LspArgs {
    /// Answer a completion within this long, or with an empty list the editor asks again for
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = crate::duration::parse)]
    completion_deadline: Duration,
    /// Do not index the workspace root when the editor starts (another window already did)
    #[arg(long)]
    no_index: bool,
}

/// Serves one editor session on `runtime`, then exits the process.
pub(crate) fn run(
    runtime: tokio::runtime::Runtime,
    socket: &Path,
    timeout: Duration,
    args: LspArgs,
) -> ExitCode {
    let mut options = Options::default();
    options.daemon_timeout = Some(timeout);
    options.completion_deadline = args.completion_deadline;
    options.index_on_initialize = !args.no_index;
    let code = match runtime.block_on(hearth_lsp::serve_stdio(socket, options)) {
        Ok(status) => status.code(),
        Err(e) => {
            eprintln!("hearth lsp: {e}");
            match e {
                LspError::Connect(_)
                | LspError::DaemonLost { .. }
                | LspError::DaemonTooOld { .. } => 3,
                _ => 1,
            }
        }
    };
    // Exit without dropping the runtime: its stdin reader sits in a blocking read that would
    // hold the drop until the editor closes our input.
    std::process::exit(code)
}
