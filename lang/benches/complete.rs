//! Criterion benches of `complete` alone (no sockets, no serialization) over a generated
//! workspace index of one million identifier occurrences (`bench_support`, deterministic):
//! the fixed 24-prefix workload the callgrind guard can count, and single completions for a
//! one-char prefix (the largest prefix range), a common prefix and a fuzzy one. The open
//! document's identifiers are cached after the first call, as they are between edits.
//! Building the index is setup, not measured.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hearth_lang::api::CompleteParams;
use hearth_lang::bench_support::{
    CONN, PREFIXES, URI, complete_workload, generated_index, prefix_position, service,
};

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
    group.finish();
}

criterion_group!(benches, complete);
criterion_main!(benches);
