//! How `hearth` ends: the exit codes, and turning any failure into one readable line on
//! stderr. Commands return `anyhow::Error`; this module looks inside for a
//! [`hearth_client::Error`] or a [`BadInput`] to pick the code. Which failures happen is the
//! commands' business.

use std::fmt;
use std::process::ExitCode;

/// The exit codes, as shown at the end of `--help`.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit status:
  0  success
  1  the daemon answered with an error (bench: a call failed, not counting superseded or
     deadline-exceeded calls), or output could not be written
  2  bad usage or input: unknown flag, malformed JSON params, bad duration, or protocol v2
     flags (--deadline, --supersede, --stream) for a daemon that speaks only protocol 1
  3  cannot connect (or start a daemon), connection lost, or timed out
  130  bench interrupted with Ctrl-C (after its report of the calls made so far)";

/// The daemon answered with an error.
const REMOTE: u8 = 1;
/// Bad usage or input.
const USAGE: u8 = 2;
/// Cannot connect, connection lost, timed out.
const CONNECTION: u8 = 3;

/// Input the user gave that cannot be used (exit 2).
#[derive(Debug)]
pub(crate) struct BadInput(pub(crate) String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// There is no daemon to talk to, and no `hearth_client::Error` says why: `bench --spawn`
/// could not start one (exit 3).
#[derive(Debug)]
pub(crate) struct Unreachable(pub(crate) String);

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// The user pressed Ctrl-C (exit 130, as a shell reports a command killed by SIGINT).
#[derive(Debug)]
pub(crate) struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Exit status for [`Interrupted`].
const INTERRUPTED: u8 = 130;

/// Prints `error` to stderr and returns the exit code for it.
pub(crate) fn report(error: &anyhow::Error) -> ExitCode {
    if error.is::<Interrupted>() {
        eprintln!("hearth: interrupted");
        return ExitCode::from(INTERRUPTED);
    }
    if is_broken_pipe(error) {
        // Our reader went away (`hearth call ... | head`): nothing to tell anyone.
        return ExitCode::SUCCESS;
    }
    let (line, code) = match error.downcast_ref::<hearth_client::Error>() {
        // The client's messages are complete sentences that already include their causes.
        Some(e) => (format!("{e}{}{}", causes(e), v2_hint(e)), client_code(e)),
        None if error.is::<BadInput>() => (error.to_string(), USAGE),
        None if error.is::<Unreachable>() => (error.to_string(), CONNECTION),
        None => (format!("{error:#}"), REMOTE),
    };
    eprintln!("hearth: {line}");
    if let Some(hearth_client::Error::Remote(remote)) = error.downcast_ref()
        && let Some(data) = remote_data(remote)
    {
        eprintln!("hearth: error data: {data}");
    }
    ExitCode::from(code)
}

/// The OS causes under a failure to start a daemon (the client's other messages already
/// include theirs).
fn causes(e: &hearth_client::Error) -> String {
    let hearth_client::Error::Start(start) = e else {
        return String::new();
    };
    let mut out = String::new();
    let mut next = std::error::Error::source(start);
    while let Some(cause) = next {
        out.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    out
}

/// What -32002 and -32801 mean for the caller, which the daemon's message may not say.
fn v2_hint(e: &hearth_client::Error) -> &'static str {
    if e.is_deadline_exceeded() {
        " — the daemon stopped the call when its --deadline passed"
    } else if e.is_superseded() {
        " — a newer call with the same --supersede key replaced it"
    } else {
        ""
    }
}

fn client_code(e: &hearth_client::Error) -> u8 {
    use hearth_client::Error as E;
    match e {
        E::Remote(_) => REMOTE,
        E::Encode(_) => USAGE,
        // Connect, Closed, Io, Protocol, Timeout, VersionMismatch, Decode (an answer we cannot
        // read is a daemon we cannot talk to) and anything added later.
        _ => CONNECTION,
    }
}

/// The error's `data` as compact JSON, if it has any.
fn remote_data(remote: &hearth_client::RemoteError) -> Option<String> {
    let data = remote.data.as_deref()?;
    Some(match crate::json::msgpack_to_json(data) {
        Ok(json) => json.to_string(),
        Err(why) => why.to_string(),
    })
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<OutputFailed>()
        .is_some_and(|e| e.0.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Writing to stdout failed.
#[derive(Debug)]
pub(crate) struct OutputFailed(pub(crate) std::io::Error);

impl fmt::Display for OutputFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write the output: {}", self.0)
    }
}

impl std::error::Error for OutputFailed {}

/// Prints `text` and a newline to stdout, failing (never panicking) if stdout is gone.
pub(crate) fn print(text: impl fmt::Display) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| OutputFailed(e).into())
}
