#!/usr/bin/env bash
# Issue 13's high-concurrency targets in one command, interleaved per round on one build:
#   raw      target/release/raw_echo 256 SECS         (the raw blocking echo, 256 frames outstanding)
#   1x256    hearth bench --spawn --connections 1 --in-flight 256 --payload 32
#   4x64     hearth bench --spawn --connections 4 --in-flight 64  --payload 32
#   pinned   the 1x256 run under `taskset -c 0` (client and spawned daemon on one core), for
#            the CPU per call target
# and prints per round: calls/s, the ratios to raw (targets: 1x256 >= 0.40x, 4x64 >= 0.5x raw
# 1x256) and CPU per call client + daemon (target, pinned: <= 0.45 µs); then the medians.
#
# Usage: docs/perf/measure-hot.sh [ROUNDS (3)] [SECONDS (10)]
#   after `cargo build --release --locked --bins && cargo build --release -p hearth-benches --bin raw_echo`
#   BIN=dir (default target/release), OUT=dir (default docs/perf/raw/hot/<commit>)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
secs=${2:-10}
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release}
for b in hearth hearthd raw_echo; do
  [ -x "$bin/$b" ] || { echo "measure-hot: no $bin/$b (see the usage at the top of $0)" >&2; exit 1; }
done
commit=$(git rev-parse --short HEAD)
out=${OUT:-docs/perf/raw/hot/$commit}
mkdir -p "$out"
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$out/commands.log" >&2; }
run() { # run NAME CMD...: one JSON line appended to NAME.jsonl
  local name=$1
  shift
  log "$name: $* (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$@" 2>/dev/null | tail -n 1 >>"$out/$name.jsonl"
}
bench=("$bin/hearth" bench --spawn --payload 32 --duration "${secs}s" --json)
log "commit $commit; $rounds rounds of ${secs}s; $(nproc) CPUs"
for r in $(seq 1 "$rounds"); do
  log "round $r"
  run raw "$bin/raw_echo" 256 "$secs"
  run 1x256 "${bench[@]}" --connections 1 --in-flight 256
  run 4x64 "${bench[@]}" --connections 4 --in-flight 64
  run pinned-1x256 taskset -c 0 "${bench[@]}" --connections 1 --in-flight 256
done
python3 - "$out" <<'PY' | tee "$out/summary.txt"
import json, statistics, sys
d = sys.argv[1]
rows = {n: [json.loads(l) for l in open(f"{d}/{n}.jsonl") if l.strip()]
        for n in ("raw", "1x256", "4x64", "pinned-1x256")}
print("round   raw calls/s  1x256 calls/s  4x64 calls/s  1x256/raw  4x64/raw  CPU us/call 1x256 (client+daemon)  pinned 1x256 calls/s  pinned CPU us/call")
cols = []
for i, raw in enumerate(rows["raw"]):
    one, four, pin = rows["1x256"][i], rows["4x64"][i], rows["pinned-1x256"][i]
    c = (raw["calls_per_s"], one["rate"], four["rate"], one["rate"] / raw["calls_per_s"],
         four["rate"] / raw["calls_per_s"], one["cpu_us_per_call"] + one["daemon_cpu_us_per_call"],
         pin["rate"], pin["cpu_us_per_call"] + pin["daemon_cpu_us_per_call"])
    cols.append(c)
    print(f"{i+1:5} {c[0]:13,.0f} {c[1]:14,.0f} {c[2]:13,.0f} {c[3]:9.3f}x {c[4]:8.3f}x"
          f" {c[5]:10.2f} ({one['cpu_us_per_call']} + {one['daemon_cpu_us_per_call']})"
          f" {c[6]:27,.0f} {c[7]:10.2f} ({pin['cpu_us_per_call']} + {pin['daemon_cpu_us_per_call']})")
med = [statistics.median(c[k] for c in cols) for k in range(8)]
print(f"  med {med[0]:13,.0f} {med[1]:14,.0f} {med[2]:13,.0f} {med[3]:9.3f}x {med[4]:8.3f}x {med[5]:10.2f} {med[6]:36,.0f} {med[7]:10.2f}")
PY
