#!/usr/bin/env bash
# The runs behind docs/PERFORMANCE.md: one repetition of every figure in its tables.
#
# Usage: docs/perf/measure.sh REP [STEP...]   (REP = 1, 2, 3 ...; about 3 minutes per repetition;
#        with STEP names, e.g. pinned-pipelined, only those steps run)
#
# Needs a quiet machine (no other busy process) and `cargo build --release` and
# `cargo bench -p hearth-benches --no-run` done beforehand. Writes into docs/perf/raw/:
#   commands.log                      every command run, with its UTC start time
#   rep<REP>/<name>.json              the JSON line of each `hearth bench` run
#   rep<REP>/criterion-<name>.txt     criterion's output
#   rep<REP>/criterion-<name>/<id>.json   criterion's estimates (mean, median ...; ns per call)
# docs/perf/summarize.py turns them into the tables.
set -euo pipefail
cd "$(dirname "$0")/../.."
rep=${1:?usage: $0 REP [STEP...]}
shift
# With STEP names (e.g. `pinned-256`), only those steps run; otherwise all of them.
only=" $* "
raw=docs/perf/raw
out=$raw/rep$rep
mkdir -p "$out"
hearth=target/release/hearth
export CARGO_TERM_COLOR=never

log() { printf '%s rep%s %s\n' "$(date -u +%H:%M:%S)" "$rep" "$*" | tee -a "$raw/commands.log" >&2; }

# bench NAME ARGS...: one `hearth bench` run; its JSON line goes to rep<REP>/NAME.json.
bench() {
  local name=$1
  shift
  [[ "$only" == "  " || "$only" == *" $name "* ]] || return 0
  log "$name: $*"
  "$@" >"$out/$name.json.tmp"
  tail -n 1 "$out/$name.json.tmp" >"$out/$name.json"
  rm "$out/$name.json.tmp"
}

# criterion NAME ARGS...: one criterion run with its own output folder (CRITERION_HOME, so
# target/criterion is left alone); keeps its text and estimates.
criterion() {
  local name=$1
  shift
  [[ "$only" == "  " || "$only" == *" $name "* ]] || return 0
  local home
  home=$(mktemp -d)
  log "$name: $*"
  CRITERION_HOME=$home "$@" >"$out/criterion-$name.txt" 2>&1
  mkdir -p "$out/criterion-$name"
  local f id
  for f in "$home"/roundtrip/*/new/estimates.json; do
    id=${f#"$home"/roundtrip/}
    cp "$f" "$out/criterion-$name/${id%/new/estimates.json}.json"
  done
  rm -rf "$home"
}

log "commit $(git rev-parse --short HEAD); changed code: $(git status --porcelain -- protocol server client benches/src benches/benches | tr '\n' ' ')"
log "load: $(cat /proc/loadavg)"

criterion unpinned cargo bench -p hearth-benches --bench roundtrip -- 'pipelined_256|4x64'
criterion pinned-seq taskset -c 0 cargo bench -p hearth-benches --bench roundtrip -- 'seq'
# CPU per call of the library pair: both ends on one core, 256 in flight.
criterion pinned-pipelined taskset -c 0 cargo bench -p hearth-benches --bench roundtrip -- 'pipelined_256'

# Same flags over the Unix socket and loopback TCP, alternated.
bench unix-256 "$hearth" bench --spawn --in-flight 256 --payload 32 --duration 10s --json
bench tcp-256 "$hearth" bench --spawn --tcp --in-flight 256 --payload 32 --duration 10s --json
bench unix-seq "$hearth" bench --spawn --in-flight 1 --duration 10s --json
bench tcp-seq "$hearth" bench --spawn --tcp --in-flight 1 --duration 10s --json

# Pinned: client and daemon on core 0.
bench pinned-seq taskset -c 0 "$hearth" bench --spawn --in-flight 1 --duration 10s --json
bench pinned-256 taskset -c 0 "$hearth" bench --spawn --in-flight 256 --duration 10s --json

# Memory: 64 connections x 256 in flight.
bench rss-64x256 "$hearth" bench --spawn --connections 64 --in-flight 256 --duration 10s --json

log "done"
