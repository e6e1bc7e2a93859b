//! Criterion benches of `complete` alone (no sockets, no serialization) over a generated
//! workspace index of one million identifier occurrences (`bench_support`, deterministic):
//! the fixed 24-prefix workload the callgrind guard can count, and single completions for a
//! one-char prefix (the largest prefix range), a common prefix and a fuzzy one. The open
//! document's identifiers are cached after the first call, as they are between edits; the
//! last bench types a char into a 1 MiB document, completes, and deletes the char: the cost
//! of a keystroke there, edits included.
//! Building the index is setup, not measured.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hearth_lang::api::{ChangeParams, CompleteParams, ContentChange, OpenParams};
use hearth_lang::bench_support::{
    CONN, PREFIXES, URI, complete_workload, generated_index, prefix_position, service,
};
use hearth_lang::{Position, Range};

const OCCURRENCES: usize = 1_000_000;

fn complete(c: &mut Criterion) {
    let index = generated_index(OCCURRENCES);
    eprintln!(
        "index: {} occurrences, {} distinct identifiers, {} files",
        index.vocab().occurrences(),
        index.vocab().len(),
        index.stats().files
    );
    let service = service(index);
    black_box(complete_workload(&service)); // warm the document's identifier cache

    let mut group = c.benchmark_group("complete_1M");
    group.throughput(Throughput::Elements(PREFIXES.len() as u64));
    group.bench_function("workload_24_prefixes", |b| {
        b.iter(|| black_box(complete_workload(black_box(&service))));
    });
    group.throughput(Throughput::Elements(1));
    for prefix in ["g", "get", "gtvl"] {
        let i = PREFIXES
            .iter()
            .position(|p| *p == prefix)
            .expect("a workload prefix");
        let params = CompleteParams {
            uri: URI.into(),
            position: prefix_position(i),
            limit: None,
        };
        group.bench_function(format!("prefix_{prefix}"), |b| {
            b.iter(|| {
                black_box(
                    service
                        .complete(CONN, black_box(&params))
                        .expect("complete"),
                )
            });
        });
    }

    // A keystroke in a 1 MiB document: one inserted char (a new version), then a completion,
    // which rescans the document's identifiers once for the new version.
    let mut text = String::new();
    for (_, t) in hearth_lang::bench_support::generated_files(200_000) {
        if text.len() + t.len() > 1 << 20 {
            break;
        }
        text.push_str(&t);
    }
    text.push_str("ge");
    let last_line = u32::try_from(text.lines().count() - 1).expect("fits");
    let big = "file:///bench/big.rs";
    service
        .open(
            2,
            OpenParams {
                uri: big.into(),
                text,
                version: 1,
                language: None,
            },
        )
        .expect("open");
    // Each iteration types one char after "ge", completes, and deletes the char again, so
    // the document is the same at every iteration.
    let mut version = 1;
    let at = Position::new(last_line, 2);
    let after = Position::new(last_line, 3);
    let edit = |version: i64, range: Range, text: &str| ChangeParams {
        uri: big.into(),
        version,
        changes: vec![ContentChange {
            range: Some(range),
            text: text.into(),
        }],
    };
    let params = CompleteParams {
        uri: big.into(),
        position: after,
        limit: None,
    };
    group.bench_function("keystroke_in_1MiB_document", |b| {
        b.iter(|| {
            version += 2;
            service
                .change(2, &edit(version - 1, Range::new(at, at), "t"))
                .expect("type");
            let r = service.complete(2, &params).expect("complete");
            service
                .change(2, &edit(version, Range::new(at, after), ""))
                .expect("undo");
            black_box(r)
        });
    });
    group.finish();
}

criterion_group!(benches, complete);
criterion_main!(benches);
