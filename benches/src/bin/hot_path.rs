//! `hot_path <workload> <iterations>`: runs one of the fixed workloads of
//! `hearth_benches::hot_path` a given number of times and prints a checksum, for
//! `.ci/perf-guard.sh` to count instructions under callgrind. Workloads: `codec` (one iteration
//! is one typed call's encode/decode work), `service` (one iteration is one `echo` call
//! through the daemon's connection code, in batches of [`SERVICE_BATCH`]), `options` (the
//! same in protocol version 2 with `supersede` and `deadline_ms` on every request), `seq`
//! (one call in flight at a time: an editor's path, each call a wake-up of an idle
//! connection task), `complete` (one iteration is 24 completions of the language service
//! over an index of [`COMPLETE_OCCURRENCES`] identifier occurrences) and `client` (one
//! iteration is one `echo` call through `hearth-client`, [`CLIENT_IN_FLIGHT`] tasks calling at
//! once, against a canned peer: the client's own cost per call). It times nothing and reads
//! no clock itself; a release build is what the guard measures.

use std::process::ExitCode;

use hearth_benches::hot_path::{ClientLoop, CodecLoop, CompleteLoop, ServiceLoop};

/// `echo` calls in flight at once in the `service` workload.
const SERVICE_BATCH: u64 = 32;
/// Tasks calling at once in the `client` workload: `hearth bench --in-flight 256`.
const CLIENT_IN_FLIGHT: u64 = 256;
/// The size of the `complete` workload's index: smaller than the criterion bench's million,
/// so that building it under callgrind stays quick; completion's work is bounded per prefix,
/// not by the index's size.
const COMPLETE_OCCURRENCES: usize = 200_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (workload, iterations) = match args.as_slice() {
        [w, n] => match n.parse::<u64>() {
            Ok(n) => (w.as_str(), n),
            Err(e) => return usage(&format!("bad iteration count {n:?}: {e}")),
        },
        _ => return usage("expected two arguments"),
    };
    let checksum = match workload {
        "codec" => CodecLoop::new().run(iterations),
        "service" | "options" => {
            if iterations % SERVICE_BATCH != 0 {
                return usage(&format!(
                    "service iterations must be a multiple of {SERVICE_BATCH}"
                ));
            }
            let batch = SERVICE_BATCH as usize;
            let service = if workload == "options" {
                ServiceLoop::with_options(batch)
            } else {
                ServiceLoop::new(batch)
            };
            match service.and_then(|s| s.run(iterations / SERVICE_BATCH)) {
                Ok(read) => read,
                Err(e) => {
                    eprintln!("hot_path: service workload failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        "seq" => match ServiceLoop::new(1).and_then(|s| s.run(iterations)) {
            Ok(read) => read,
            Err(e) => {
                eprintln!("hot_path: seq workload failed: {e}");
                return ExitCode::FAILURE;
            }
        },
        "complete" => CompleteLoop::new(COMPLETE_OCCURRENCES).run(iterations),
        "client" => {
            if iterations % CLIENT_IN_FLIGHT != 0 {
                return usage(&format!(
                    "client iterations must be a multiple of {CLIENT_IN_FLIGHT}"
                ));
            }
            let run = ClientLoop::new(CLIENT_IN_FLIGHT as usize).and_then(|c| {
                let read = c.run(iterations / CLIENT_IN_FLIGHT)?;
                c.finish()?;
                Ok(read)
            });
            match run {
                Ok(read) => read,
                Err(e) => {
                    eprintln!("hot_path: client workload failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        other => return usage(&format!("unknown workload {other:?}")),
    };
    println!("{workload}: {iterations} iterations, checksum {checksum}");
    ExitCode::SUCCESS
}

fn usage(why: &str) -> ExitCode {
    eprintln!(
        "hot_path: {why}\nusage: hot_path <codec|service|options|seq|complete|client> <iterations>"
    );
    ExitCode::from(2)
}
