#!/usr/bin/env bash
# The profiles quoted in docs/PERFORMANCE.md. Needs perf (cpu-clock sampling; this VM has no
# hardware counters) and valgrind; run on a quiet machine after `cargo build --release` and
# `cargo build --release -p hearth-benches --bin hot_path`.
#
# Usage: docs/perf/profile.sh     (about 30 s) -> docs/perf/raw/profile-*.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
raw=docs/perf/raw
mkdir -p "$raw"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log() { printf '%s profile %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$raw/commands.log" >&2; }

# perf_profile NAME ARGS...: samples the command and its children (the spawned hearthd).
perf_profile() {
  local name=$1
  shift
  log "$name: perf record -e cpu-clock -F 4000 -- $*"
  perf record -q -e cpu-clock -F 4000 -o "$work/$name.data" -- "$@" >"$work/$name.json"
  {
    echo "# perf record -e cpu-clock -F 4000 -- $*"
    echo "# run: $(tail -n 1 "$work/$name.json")"
    echo
    echo "## by process and object (comm = hearth: client; tokio-rt-worker: hearthd)"
    perf report -i "$work/$name.data" --no-children --sort comm,dso --stdio 2>/dev/null |
      grep -v '^#' | grep '%' | awk 'NR <= 12'
    echo
    echo "## top symbols"
    perf report -i "$work/$name.data" --no-children --sort comm,sym --stdio 2>/dev/null |
      grep -v '^#' | grep '%' | awk 'NR <= 40'
  } >"$raw/profile-$name.txt"
}

perf_profile pinned-256 taskset -c 0 target/release/hearth bench --spawn --in-flight 256 --duration 5s --json
perf_profile pinned-seq taskset -c 0 target/release/hearth bench --spawn --in-flight 1 --duration 5s --json

# The criterion pipelined bench itself (client on the main thread, daemon on bench-hearthd
# workers): criterion's --profile-time runs the bench for 5 s without analysis.
roundtrip=$(ls -t target/release/deps/roundtrip-* | grep -v '\.d$' | awk 'NR == 1')
perf_profile criterion-pipelined-256 "$roundtrip" --bench --profile-time 5 'hearth/pipelined_256'

log "callgrind: valgrind --tool=callgrind target/release/hot_path service 6400"
valgrind --tool=callgrind --callgrind-out-file="$work/svc.out" target/release/hot_path service 6400 \
  >/dev/null 2>"$work/cg.err"
{
  echo "# valgrind --tool=callgrind target/release/hot_path service 6400"
  echo "# exclusive instructions per function (inlined code counted in the function it was"
  echo "# inlined into), share of the whole run, and per echo call (/6400)"
  tot=$(awk '/^summary:/{print $2}' "$work/svc.out")
  echo "# total: $tot"
  callgrind_annotate --inclusive=no --auto=no --threshold=100 "$work/svc.out" 2>/dev/null |
    awk -v tot="$tot" -v n=6400 '
      /^ *[0-9,]+ \(/ && !/PROGRAM TOTALS/ {
        ir = $1; gsub(",", "", ir); line = $0
        sub(/^[^)]*\) +/, "", line); sub(/ \[\/.*$/, "", line)
        fn = line; if (match(line, /\.(rs|c|S|h):/)) fn = substr(line, RSTART + RLENGTH)
        s[fn] += ir
      }
      END { for (f in s) printf "%9d %6.2f%% %6.0f  %s\n", s[f], s[f] * 100 / tot, s[f] / n, f }' |
    sort -rn | awk 'NR <= 30'
} >"$raw/profile-callgrind-service.txt"

# Context switches per call, sequential, pinned (software counters work in this VM).
log "context switches: perf stat -e context-switches,cpu-migrations,task-clock -- taskset -c 0 target/release/hearth bench --spawn --in-flight 1 --calls 200000 --warmup 0s --json"
perf stat -e context-switches,cpu-migrations,task-clock -o "$work/stat.txt" -- \
  taskset -c 0 target/release/hearth bench --spawn --in-flight 1 --calls 200000 --warmup 0s --json >"$work/stat.json"
{
  echo "# perf stat -e context-switches,cpu-migrations,task-clock -- taskset -c 0 target/release/hearth bench --spawn --in-flight 1 --calls 200000 --warmup 0s --json"
  echo "# (no warmup: every call is counted; the counts include start-up and shutdown)"
  echo "# run: $(tail -n 1 "$work/stat.json")"
  cat "$work/stat.txt"
} >"$raw/profile-context-switches.txt"

# System calls per call on each side, sequential (strace slows the run; the counts are exact).
log "syscalls: strace -ff -e trace=epoll_wait,recvfrom,sendto,read,write,writev,futex -- target/release/hearth bench --spawn --in-flight 1 --calls 20000 --warmup 0s --json"
mkdir -p "$work/st"
strace -ff -o "$work/st/tr" -e trace=epoll_wait,recvfrom,sendto,read,write,writev,futex \
  target/release/hearth bench --spawn --in-flight 1 --calls 20000 --warmup 0s --json >"$work/st.json"
{
  echo "# strace -ff -e trace=epoll_wait,recvfrom,sendto,read,write,writev,futex -- target/release/hearth bench --spawn --in-flight 1 --calls 20000 --warmup 0s --json"
  echo "# per thread: system call counts (threads with fewer than 1000 calls left out)"
  for f in "$work"/st/tr.*; do
    awk -v t="${f##*.}" '/^[a-z_0-9]+\(/ { split($0, a, "("); n[a[1]]++; all++ }
      END { if (all >= 1000) { printf "thread %s:", t; for (k in n) printf " %s=%d", k, n[k]; print "" } }' "$f"
  done
  echo
  echo "# a stretch of the busiest thread (ids and payload bytes as sent)"
  busiest=$(wc -l "$work"/st/tr.* | sort -rn | awk 'NR == 2 { print $2 }')
  sed -n '1000,1008p' "$busiest"
} >"$raw/profile-syscalls.txt"
log "done"
