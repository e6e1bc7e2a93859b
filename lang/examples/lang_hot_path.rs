//! `lang_hot_path <workload> <iterations>`: the language service's completion workloads for
//! counting instructions under callgrind, like `.ci/perf-guard.sh` does for `hot_path` (run
//! twice, few and many iterations, and divide the difference). Workloads, over the generated
//! 200,000-occurrence index of `hearth_lang::bench_support`:
//! - `complete`: one iteration is the 24 completions of `complete_workload` (the guard's
//!   `hot_path complete`);
//! - `edited`: the same, after 300 generated words were typed into the document (so its
//!   edits have added words since the last full scan, as in an editing session);
//! - `keys`: after those 300 words, one iteration types one more word, a `doc/change` and a
//!   `complete` per char.
//!
//! It prints a checksum and reads no clock.

use std::process::ExitCode;

use hearth_lang::bench_support::{Typist, complete_workload, generated_index, service};

const OCCURRENCES: usize = 200_000;
const TYPED_FIRST: usize = 300;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (workload, n) = match args.as_slice() {
        [w, n] => match n.parse::<usize>() {
            Ok(n) => (w.as_str(), n),
            Err(e) => return usage(&format!("bad iteration count {n:?}: {e}")),
        },
        _ => return usage("expected two arguments"),
    };
    let service = service(generated_index(OCCURRENCES));
    // Scans the document once, as the first completion after opening it does.
    let mut sum = complete_workload(&service);
    let mut typist = Typist::new();
    if workload != "complete" {
        sum += typist.type_words(&service, TYPED_FIRST, false);
        sum += complete_workload(&service);
    }
    match workload {
        "complete" | "edited" => {
            for _ in 0..n {
                sum += complete_workload(std::hint::black_box(&service));
            }
        }
        "keys" => sum += typist.type_words(&service, n, true),
        other => return usage(&format!("unknown workload {other:?}")),
    }
    println!("{sum}");
    ExitCode::SUCCESS
}

fn usage(why: &str) -> ExitCode {
    eprintln!("lang_hot_path: {why}\nusage: lang_hot_path <complete|edited|keys> <iterations>");
    ExitCode::FAILURE
}
