#!/usr/bin/env python3
"""Latency against offered load: runs `hearth bench --spawn --rate R` (open loop) for a ladder of
rates, keeps each run's JSON line, and plots p50, p99 and p99.9 (log scale) against the
offered rate (and how late calls left, the send lag), with the achieved rate underneath.

Needs python3 (3.11 works) and, for the plot only, matplotlib:

    pip install matplotlib

Usage (from the repository root, after `cargo build --release`, on a quiet machine):

    python3 benches/plot_latency.py                 # run the ladder, then plot
    python3 benches/plot_latency.py --plot-only     # redraw from the saved JSON lines

Each rate runs `target/release/hearth bench --spawn --rate R --duration 5s --json` (1 s of
warmup, the default; 128 calls in flight at most, the open-loop default). The JSON lines go to
docs/perf/latency-vs-load.jsonl (one per rate, exactly as `hearth bench` printed them) and the
picture to docs/perf/latency-vs-load.png. Latency is measured from each call's scheduled send
time, so once the offered rate passes what client and daemon can do, the queue shows up in
the latency instead of being hidden.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

DEFAULT_RATES = [
    5_000,
    10_000,
    20_000,
    40_000,
    80_000,
    120_000,
    160_000,
    200_000,
    240_000,
    280_000,
    320_000,
    400_000,
    480_000,
]


def run_ladder(hearth, rates, duration, out):
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for rate in rates:
            cmd = [hearth, "bench", "--spawn", "--rate", str(rate), "--duration", duration, "--json"]
            print("+", " ".join(cmd), file=sys.stderr, flush=True)
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            last = done.stdout.strip().splitlines()[-1]
            json.loads(last)  # must be one JSON object
            f.write(last + "\n")
            f.flush()


def plot(jsonl, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(l) for l in jsonl.read_text().splitlines() if l.strip()]
    runs.sort(key=lambda r: r["offered_rate"])
    offered = [r["offered_rate"] / 1000 for r in runs]
    achieved = [r["rate"] / 1000 for r in runs]

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    for key, label, style in [
        ("p50_us", "p50", "o-"),
        ("p99_us", "p99", "s-"),
        ("p999_us", "p99.9", "^--"),
    ]:
        top.plot(offered, [r[key] for r in runs], style, label=label)
    # How late calls left (the client's own queue), part of the latency above.
    top.plot(
        offered,
        [max(r["lag_p50_us"] or 0, 1) for r in runs],
        ":",
        color="grey",
        label="send lag p50",
    )
    top.set_yscale("log")
    top.set_ylabel("latency (µs, log scale)\nfrom scheduled send time")
    top.grid(True, which="both", alpha=0.3)
    top.legend(loc="upper left")
    first = runs[0]
    top.set_title(
        "hearth echo (32-byte payload), 1 Unix-socket connection, open loop\n"
        f"hearth bench --spawn --rate R --duration {first['duration_s']:g}s "
        f"(≤{first['in_flight']} in flight); client and daemon share 2 cores",
        fontsize=10,
    )
    # Mark the runs where most calls left late: the client could not keep the schedule.
    late = [r for r in runs if r.get("late_calls") and r["late_calls"] > 0.5 * r["calls"]]
    if late:
        x = min(r["offered_rate"] for r in late) / 1000
        for ax in (top, bottom):
            ax.axvline(x, color="grey", linestyle=":", alpha=0.8)
        top.annotate(
            "most calls sent >1 ms late \n(past saturation) ",
            xy=(x, top.get_ylim()[1]),
            va="top",
            ha="right",
            fontsize=8,
            color="dimgrey",
        )

    bottom.plot(offered, achieved, "o-", label="achieved")
    bottom.plot(offered, offered, ":", color="grey", label="offered = achieved")
    bottom.set_xscale("log")
    ticks = [o for o in offered]
    bottom.set_xticks(ticks)
    bottom.set_xticklabels([f"{o:g}" for o in ticks], rotation=45, fontsize=8)
    bottom.minorticks_off()
    bottom.set_ylabel("calls/s (thousands)")
    bottom.set_xlabel("offered rate (thousand calls/s, log scale)")
    bottom.grid(True, alpha=0.3)
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    print(f"wrote {png}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hearth", default="target/release/hearth", help="the hearth binary")
    p.add_argument(
        "--rates",
        default=",".join(str(r) for r in DEFAULT_RATES),
        help="comma-separated offered rates, calls/s",
    )
    p.add_argument("--duration", default="5s", help="measured time per rate")
    p.add_argument("--jsonl", default="docs/perf/latency-vs-load.jsonl", type=Path)
    p.add_argument("--png", default="docs/perf/latency-vs-load.png", type=Path)
    p.add_argument("--plot-only", action="store_true", help="do not run, redraw from --jsonl")
    args = p.parse_args()
    if not args.plot_only:
        rates = [int(r) for r in args.rates.split(",") if r]
        run_ladder(args.hearth, rates, args.duration, args.jsonl)
    plot(args.jsonl, args.png)


if __name__ == "__main__":
    main()
