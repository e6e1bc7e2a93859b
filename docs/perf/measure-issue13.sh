#!/usr/bin/env bash
# Issue 13 (the editor's idle path): what can be measured on a loaded machine.
#   1. context switches per call, one call in flight, unpinned and pinned to core 0,
#      hearth (client + spawned daemon, `perf stat` follows children) and the raw ping-pong;
#   2. CPU of a connected but idle client and of the daemon over 10 s (`hearth call` waiting
#      on `sleep {"ms": 10000}`: both ends parked, one connection open).
# Usage: docs/perf/measure-issue13.sh   (after `cargo build --release --locked --bins`)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/perf/raw/issue13
mkdir -p "$out"
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$out/commands.log" >&2; }
log "commit $(git rev-parse --short HEAD); load $(cut -d' ' -f1-3 /proc/loadavg)"
for pin in "" "taskset -c 0"; do
  name=${pin:+pinned-}
  log "${name}hearth: $pin perf stat -e context-switches,cpu-migrations,task-clock -- target/release/hearth bench --spawn --in-flight 1 --warmup 0s --duration 5s --json"
  $pin perf stat -e context-switches,cpu-migrations,task-clock -o "$out/${name}hearth-seq.perf" -- \
    target/release/hearth bench --spawn --in-flight 1 --warmup 0s --duration 5s --json 2>/dev/null | tail -n 1 >"$out/${name}hearth-seq.json"
  log "${name}raw: $pin perf stat -e context-switches,cpu-migrations,task-clock -- target/release/raw_echo 1 5   (+1 s of uncounted warm-up calls)"
  $pin perf stat -e context-switches,cpu-migrations,task-clock -o "$out/${name}raw-seq.perf" -- \
    target/release/raw_echo 1 5 >"$out/${name}raw-seq.json"
done

dir=$(mktemp -d)
target/release/hearthd --socket "$dir/d.sock" >/dev/null 2>&1 &
daemon=$!
for _ in $(seq 50); do [ -S "$dir/d.sock" ] && break; sleep 0.1; done
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
log "idle: hearth --socket D call sleep '{\"ms\": 10000}' (client and daemon parked for 10 s, one connection)"
d0=$(ticks "$daemon")
/usr/bin/time -f "client_user_s %U client_sys_s %S wall_s %e" -o "$out/idle-client.txt" \
  target/release/hearth --socket "$dir/d.sock" --timeout 30s call sleep '{"ms": 10000}' >/dev/null
d1=$(ticks "$daemon")
echo "daemon_cpu_ticks_10ms $((d1 - d0)) over the call" >"$out/idle-daemon.txt"
kill "$daemon"
wait "$daemon" 2>/dev/null || true
rm -rf "$dir"
log "done"
