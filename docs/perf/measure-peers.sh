#!/usr/bin/env bash
# Issue 13's peer table, re-measured on one build, interleaved per round, unpinned, one call in
# flight, 32-byte echo over a Unix socket:
#   raw         target/release/raw_echo 1 SECS            (blocking ping-pong, threads of one process)
#   tarpc-mt    benches/peers: tarpc + bincode, tokio multi-thread on both ends, server a process of its own
#   tarpc-ct    the same on tokio's current-thread runtime (PEERS_CURRENT_THREAD=1)
#   hearth      target/release/hearth bench --spawn --in-flight 1 --payload 32
# and prints per round p50, p99 and calls/s of each, then the medians. tonic is not in the
# harness (its code generation needs protoc, which this machine does not have).
#
# Usage: docs/perf/measure-peers.sh [ROUNDS (5)] [SECONDS (5)]
#   after `cargo build --release --locked -p hearthd -p hearth-cli -p hearth-benches --bins` and
#   `cargo build --release --manifest-path benches/peers/Cargo.toml` (its own workspace: the main
#   build and CI never compile tarpc).
#   BIN=dir (default target/release), OUT=dir (default docs/perf/raw/peers/<commit>)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
secs=${2:-5}
bin=${BIN:-target/release}
peers=${PEERS:-benches/peers/target/release/peers}
for b in "$bin/hearth" "$bin/hearthd" "$bin/raw_echo" "$peers"; do
  [ -x "$b" ] || { echo "measure-peers: no $b (see the usage at the top of this script)" >&2; exit 1; }
done
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs' || echo "-dirty")
out=${OUT:-docs/perf/raw/peers/$commit}
mkdir -p "$out"
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$out/commands.log" >&2; }
log "commit $commit; $rounds rounds of ${secs}s; load $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # run KIND ROUND
  local kind=$1 round=$2
  log "round $round: $kind (load $(cut -d' ' -f1-3 /proc/loadavg))"
  case $kind in
    raw) "$bin/raw_echo" 1 "$secs" ;;
    tarpc-mt) "$peers" tarpc "$secs" ;;
    tarpc-ct) PEERS_CURRENT_THREAD=1 "$peers" tarpc "$secs" ;;
    hearth) "$bin/hearth" bench --spawn --in-flight 1 --payload 32 --warmup 1s --duration "${secs}s" --json 2>/dev/null | tail -n 1 ;;
  esac >"$out/$kind-$round.json"
}
for round in $(seq "$rounds"); do
  if ((round % 2)); then order="raw tarpc-mt tarpc-ct hearth"; else order="hearth tarpc-ct tarpc-mt raw"; fi
  for kind in $order; do run "$kind" "$round"; done
done
python3 - "$out" "$rounds" <<'PY' | tee "$out/summary.txt"
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def get(kind, r):
    with open(f"{out}/{kind}-{r}.json") as f:
        j = json.loads(f.read().strip().splitlines()[-1])
    rate = j.get("calls_per_s") or j["calls"] / j["duration_s"]
    return float(j["p50_us"]), float(j["p99_us"]), float(rate)
print(f"{'':>9} " + " ".join(f"{'round ' + str(r):>22}" for r in range(1, rounds + 1)) + f" {'median':>22}")
for kind in ("raw", "tarpc-mt", "tarpc-ct", "hearth"):
    rows = [get(kind, r) for r in range(1, rounds + 1)]
    med = [statistics.median(x[i] for x in rows) for i in range(3)]
    cell = lambda x: f"{x[0]:6.1f} {x[1]:6.1f} {x[2] / 1000:7.1f}K"
    print(f"{kind:>9} " + " ".join(f"{cell(x):>22}" for x in rows) + f" {cell(med):>22}")
print("(each cell: p50 µs, p99 µs, calls/s)")
PY
