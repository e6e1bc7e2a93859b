#!/usr/bin/env python3
"""Summarize the runs of docs/perf/measure.sh (docs/perf/raw/rep*/) for docs/PERFORMANCE.md.

Usage: python3 docs/perf/summarize.py [docs/perf/raw]

Prints, per figure, every repetition, the median and the range (min-max). Criterion figures
are the `median` point estimate of time per call (criterion's estimates.json, ns); each
ratio is computed within one criterion run (raw and hearth measured by the same process),
then summarized over repetitions. Standard library only.
"""

import json
import statistics
import sys
from pathlib import Path

RAW = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "raw")


def reps():
    return sorted(p for p in RAW.glob("rep*") if p.is_dir())


def crit(rep, run, bench_id):
    f = rep / f"criterion-{run}" / f"{bench_id}.json"
    if not f.exists():
        return None
    return json.loads(f.read_text())["median"]["point_estimate"]


def bench(rep, name):
    f = rep / f"{name}.json"
    if not f.exists() or not f.read_text().strip():
        return None
    return json.loads(f.read_text())


def fmt(x, digits):
    return f"{x:.{digits}f}"


def line(label, values, digits=2, unit=""):
    vals = [v for v in values if v is not None]
    if not vals:
        print(f"{label}: not measured")
        return
    each = ", ".join(fmt(v, digits) for v in vals)
    med = statistics.median(vals)
    print(
        f"{label}: median {fmt(med, digits)}{unit}, range {fmt(min(vals), digits)}"
        f"-{fmt(max(vals), digits)}{unit}  (n={len(vals)}: {each})"
    )


def main():
    rs = reps()
    print(f"repetitions: {[r.name for r in rs]}\n")

    print("## criterion, unpinned (ns per call, median estimate)")
    for bid in ["hearth_pipelined_256", "raw_pipelined_256", "hearth_4x64", "raw_4x64"]:
        line(bid, [crit(r, "unpinned", bid) for r in rs], 1, " ns")

    def ratio(r, num_run, num, den_run, den):
        a, b = crit(r, num_run, num), crit(r, den_run, den)
        return None if a is None or b is None else a / b

    line(
        "ratio pipelined_256 (raw/hearth time per call)",
        [ratio(r, "unpinned", "raw_pipelined_256", "unpinned", "hearth_pipelined_256") for r in rs],
        3,
        "x",
    )
    line(
        "ratio 4x64 vs raw 1-conn pipelined_256 (raw_pipelined_256/hearth_4x64)",
        [ratio(r, "unpinned", "raw_pipelined_256", "unpinned", "hearth_4x64") for r in rs],
        3,
        "x",
    )
    line(
        "ratio 4x64 vs raw 4x64 (context)",
        [ratio(r, "unpinned", "raw_4x64", "unpinned", "hearth_4x64") for r in rs],
        3,
        "x",
    )

    print("\n## criterion, taskset -c 0 (ns per call, median estimate)")
    for bid in ["hearth_seq", "raw_seq"]:
        line(bid, [crit(r, "pinned-seq", bid) for r in rs], 1, " ns")
    line(
        "ratio seq pinned (hearth/raw median)",
        [ratio(r, "pinned-seq", "hearth_seq", "pinned-seq", "raw_seq") for r in rs],
        3,
        "x",
    )
    # CPU per call: with client and daemon on one core, time per call is their CPU per call
    # (an upper bound: any idle time on the core counts too).
    for bid in ["hearth_pipelined_256", "raw_pipelined_256"]:
        line(f"{bid} pinned", [crit(r, "pinned-pipelined", bid) for r in rs], 1, " ns")

    print("\n## hearth bench")
    for name in [
        "unix-256",
        "tcp-256",
        "unix-seq",
        "tcp-seq",
        "pinned-seq",
        "pinned-256",
        "rss-64x256",
    ]:
        runs = [bench(r, name) for r in rs]
        ok = [b for b in runs if b is not None]
        if not ok:
            print(f"{name}: not measured")
            continue
        errors = sum(b["errors"] for b in ok)
        print(f"{name}: {len(ok)} runs, errors {errors}, transport {ok[0]['transport']}")
        line("  calls/s", [b["rate"] for b in ok], 0)
        line("  p50 us", [b["p50_us"] for b in ok], 0)
        line("  p99 us", [b["p99_us"] for b in ok], 0)
        line("  p99.9 us", [b["p999_us"] for b in ok], 0)
        line("  client cpu us/call", [b["cpu_us_per_call"] for b in ok], 1)
        line("  daemon cpu us/call", [b["daemon_cpu_us_per_call"] for b in ok], 1)
        line(
            "  client+daemon cpu us/call",
            [b["cpu_us_per_call"] + b["daemon_cpu_us_per_call"] for b in ok],
            1,
        )
        line("  daemon peak rss KiB", [b["daemon_peak_rss_kib"] for b in ok], 0)

    # Pinned seq: hearth bench p50 against the raw pinned ping-pong of the same repetition.
    vals = []
    for r in rs:
        b, raw = bench(r, "pinned-seq"), crit(r, "pinned-seq", "raw_seq")
        vals.append(None if b is None or raw is None else b["p50_us"] * 1000 / raw)
    line("\nratio hearth bench pinned seq p50 / criterion raw/seq pinned median", vals, 2, "x")


if __name__ == "__main__":
    main()
