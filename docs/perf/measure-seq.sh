#!/usr/bin/env bash
# Issue 13's sequential targets in one command: one call in flight, 32-byte echo, hearth
# (`hearth bench --spawn --in-flight 1`: the client library against a spawned release hearthd)
# against the raw blocking Unix-socket ping-pong (`raw_echo 1`), interleaved.
#
# Each round runs six measurements back to back, on the same build and settings:
#   raw, raw2 and hearth unpinned, then the same three under `taskset -c 0`
# (both ends on core 0; `hearth bench --spawn` starts hearthd as its child, so it inherits
# the pin). raw is `raw_echo 1` (server and client threads of one process); raw2 is
# `raw_echo 1 --two-processes` (the server in a process of its own, as hearthd is: pinned, a
# switch between processes costs more than one between threads). Odd rounds run raw first,
# even rounds hearth first, so a drift in the machine's load does not favour one side. Per round it prints p50, p99 and CPU per call (hearth:
# client + daemon; raw: its one process, both threads) and the ratios hearth/raw; at the
# end the median of each column over the rounds. Then, unless IDLE=0, the CPU of a connected
# but idle client and of its daemon over 10 s.
#
# Usage:  docs/perf/measure-seq.sh [ROUNDS (5)] [SECONDS per measurement (5)]
#   after `cargo build --release --locked -p hearthd -p hearth-cli -p hearth-benches --bin hearth --bin hearthd --bin raw_echo`
#   BIN=dir  where hearth, hearthd and raw_echo are (default target/release)
#   OUT=dir  where the raw outputs go (default docs/perf/raw/seq/<commit>)
#   IDLE=0   skip the idle measurement
# Targets (issue 13): unpinned p50 <= 0.92x raw and p99 <= 1.00x raw; pinned p50 <= 1.15x raw.
# The summary gives hearth's ratios to raw, and its p50 ratio to raw2.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
secs=${2:-5}
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release}
for b in hearth hearthd raw_echo; do
  [ -x "$bin/$b" ] || {
    echo "measure-seq: no $bin/$b; run cargo build --release --locked -p hearthd -p hearth-cli -p hearth-benches --bin hearth --bin hearthd --bin raw_echo" >&2
    exit 1
  }
done
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs' || echo "-dirty")
out=${OUT:-docs/perf/raw/seq/$commit}
mkdir -p "$out"
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$out/commands.log" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
log "commit $commit; $rounds rounds of ${secs}s; load $(load); $(nproc) CPUs"

raw() { # raw [PIN...]: one raw_echo run, JSON on stdout
  "$@" "$bin/raw_echo" 1 "$secs"
}
raw2() { # raw2 [PIN...]: one raw_echo run with its server in a child process
  "$@" "$bin/raw_echo" 1 "$secs" --two-processes
}
hearth() { # hearth [PIN...]: one hearth bench run, its JSON line on stdout
  "$@" "$bin/hearth" bench --spawn --in-flight 1 --payload 32 --warmup 1s --duration "${secs}s" --json 2>/dev/null | tail -n 1
}
one() { # one KIND PINNAME ROUND: runs and stores one measurement
  local kind=$1 pin=$2 round=$3 file
  file="$out/$kind-$pin-$round.json"
  local prefix=()
  [ "$pin" = pinned ] && prefix=(taskset -c 0)
  log "round $round: ${prefix[*]:+${prefix[*]} }$kind (load $(load))"
  "$kind" "${prefix[@]}" >"$file"
}

for round in $(seq "$rounds"); do
  if ((round % 2)); then order="raw raw2 hearth"; else order="hearth raw2 raw"; fi
  for pin in unpinned pinned; do
    for kind in $order; do one "$kind" "$pin" "$round"; done
  done
done

# Summary: per round and median, from the stored JSON.
python3 - "$out" "$rounds" <<'EOF' | tee "$out/summary.txt"
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def get(kind, pin, r):
    with open(f"{out}/{kind}-{pin}-{r}.json") as f:
        j = json.loads(f.read().strip().splitlines()[-1])
    if kind in ("raw", "raw2"):
        cpu = j.get("cpu_us_per_call")
    else:
        c, d = j.get("cpu_us_per_call"), j.get("daemon_cpu_us_per_call")
        cpu = None if c is None or d is None else c + d
    return float(j["p50_us"]), float(j["p99_us"]), cpu
for pin in ("unpinned", "pinned"):
    print(f"\n{pin}: µs (CPU = µs of CPU per call; hearth's is client + daemon)")
    print(f"{'round':>5} {'raw p50':>8} {'p99':>8} {'CPU':>6} | {'hearth p50':>10} {'p99':>8} {'CPU':>6} | {'p50 ratio':>9} {'p99 ratio':>9}")
    cols = []
    for r in range(1, rounds + 1):
        rp50, rp99, rcpu = get("raw", pin, r)
        hp50, hp99, hcpu = get("hearth", pin, r)
        row = (rp50, rp99, rcpu or 0.0, hp50, hp99, hcpu or 0.0, hp50 / rp50, hp99 / rp99)
        cols.append(row)
        print(f"{r:>5} {row[0]:>8.1f} {row[1]:>8.1f} {row[2]:>6.1f} | {row[3]:>10.1f} {row[4]:>8.1f} {row[5]:>6.1f} | {row[6]:>8.2f}x {row[7]:>8.2f}x")
    med = [statistics.median(c[i] for c in cols) for i in range(8)]
    print(f"{'med':>5} {med[0]:>8.1f} {med[1]:>8.1f} {med[2]:>6.1f} | {med[3]:>10.1f} {med[4]:>8.1f} {med[5]:>6.1f} | {med[6]:>8.2f}x {med[7]:>8.2f}x")
    two = [(get("raw2", pin, r)[0], get("hearth", pin, r)[0]) for r in range(1, rounds + 1)]
    ratios = [h / r2 for r2, h in two]
    print(f"  against raw2 (server in its own process): raw2 p50 " + " ".join(f"{r2:.1f}" for r2, _ in two)
          + f"; hearth p50 ratio " + " ".join(f"{x:.2f}x" for x in ratios)
          + f"; median {statistics.median(ratios):.2f}x")
EOF
log "summary in $out/summary.txt (load $(load))"

[ "${IDLE:-1}" = 0 ] && exit 0
# Idle: one connected client waiting 10 s on `sleep`, both ends parked (nothing may spin).
dir=$(mktemp -d)
"$bin/hearthd" --socket "$dir/d.sock" >/dev/null 2>&1 &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$dir/d.sock" ] && break; sleep 0.1; done
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
log "idle: hearth --socket D call sleep '{\"ms\": 10000}' (client and daemon parked for 10 s, one connection)"
d0=$(ticks "$daemon")
/usr/bin/time -f "client_user_s %U client_sys_s %S wall_s %e" -o "$out/idle-client.txt" \
  "$bin/hearth" --socket "$dir/d.sock" --timeout 30s call sleep '{"ms": 10000}' >/dev/null
d1=$(ticks "$daemon")
echo "daemon_cpu_ticks_10ms $((d1 - d0)) over the call" >"$out/idle-daemon.txt"
echo "idle over 10 s: $(cat "$out/idle-client.txt"); daemon $((d1 - d0)) ticks of 10 ms" | tee -a "$out/summary.txt"
