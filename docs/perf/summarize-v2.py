#!/usr/bin/env python3
"""Prints the figures of docs/PERFORMANCE.md § Protocol v2 from docs/perf/raw/v2/*.jsonl, or
from the folder given as the first argument (written by docs/perf/measure-v2.sh): per round,
then the median and range over rounds."""
import json
import pathlib
import statistics
import sys

RAW = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).parent / "raw" / "v2"


def load(name):
    path = RAW / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(values, fmt="{:.3f}"):
    values = list(values)
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


raw, v1, v2 = load("raw"), load("v1"), load("v2")
sleep, sup = load("sleep"), load("supersede")
n = min(len(raw), len(v1), len(v2))
print("round  raw ns/call  v1 ns/call  v2 ns/call  v1/raw  v2/raw  v2 vs v1 throughput")
r1, r2, d = [], [], []
for i in range(n):
    raw_ns = raw[i]["ns_per_call"]
    v1_ns = v1[i]["duration_s"] * 1e9 / v1[i]["calls"]
    v2_ns = v2[i]["duration_s"] * 1e9 / v2[i]["calls"]
    r1.append(raw_ns / v1_ns)
    r2.append(raw_ns / v2_ns)
    d.append(v1_ns / v2_ns)
    print(f"{i + 1:5}  {raw_ns:11.1f}  {v1_ns:10.1f}  {v2_ns:10.1f}  {r1[-1]:6.3f}  {r2[-1]:6.3f}  {d[-1]:6.3f}")
print("median (range): v1/raw", summary(r1), " v2/raw", summary(r2), " v2/v1", summary(d))
for name, runs in (("v1", v1), ("v2", v2)):
    print(f"{name}: calls/s", summary((r["rate"] for r in runs), "{:.0f}"),
          " cpu us/call client", summary((r["cpu_us_per_call"] for r in runs), "{:.1f}"),
          " daemon", summary((r["daemon_cpu_us_per_call"] for r in runs), "{:.1f}"))

print()
print("sleep {ms: 1}, 256 in flight: without supersede / with --supersede per-connection")
for name, runs in (("plain", sleep), ("supersede", sup)):
    answered = [r["calls"] for r in runs]
    cut = [r.get("superseded", 0) for r in runs]
    done = [a - c - r["errors"] - r.get("deadline_exceeded", 0) for a, c, r in zip(answered, cut, runs)]
    cpu = [(r["cpu_us_per_call"] + r["daemon_cpu_us_per_call"]) * r["calls"] for r in runs]
    print(f"{name}: answers/s", summary((r["rate"] for r in runs), "{:.0f}"),
          " superseded (-32801)", summary(cut, "{:.0f}"),
          " completed", summary(done, "{:.0f}"),
          " cpu us per answer (client+daemon)", summary(((r["cpu_us_per_call"] + r["daemon_cpu_us_per_call"]) for r in runs), "{:.1f}"),
          " cpu us per completed call", summary((c / max(x, 1) for c, x in zip(cpu, done)), "{:.1f}"),
          " errors", summary((r["errors"] for r in runs), "{:.0f}"))
