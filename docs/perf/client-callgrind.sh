#!/usr/bin/env bash
# Client instructions per call of `hearth bench` (the load tester and the hearth-client library
# in one process), counted with callgrind on the bench process only: the hearthd it spawns is
# not traced (--trace-children=no). Two runs of SHORT and LONG calls (1 connection x 256 in
# flight, 32-byte echo, no warmup); the difference in instructions over the difference in
# calls is the cost per call, start-up and the spawned daemon's start cancelling out.
#
# Usage: docs/perf/client-callgrind.sh HEARTH_BIN [SHORT LONG [OUT_DIR]]
#   e.g. docs/perf/client-callgrind.sh target/release/hearth
#        docs/perf/client-callgrind.sh /tmp/v1-target/release/hearth   (a build of 14737c4)
# Prints `<bin>: <Ir per call> instructions per call`; with OUT_DIR, keeps the long run's
# callgrind.out there for callgrind_annotate.
set -euo pipefail
bin=${1:?usage: $0 HEARTH_BIN [SHORT LONG [OUT_DIR]]}
short=${2:-5120}
long=${3:-51200}
keep=${4-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ir() {
  valgrind --tool=callgrind --trace-children=no --callgrind-out-file="$work/cg.$1" \
    "$bin" bench --spawn --connections 1 --in-flight 256 --payload 32 --warmup 0s \
    --calls "$1" --json >"$work/json.$1" 2>"$work/err.$1" || {
    cat "$work/err.$1" >&2
    exit 1
  }
  awk '/^summary:/ { print $2 }' "$work/cg.$1"
}
a=$(ir "$short")
b=$(ir "$long")
[ -n "$keep" ] && mkdir -p "$keep" && cp "$work/cg.$long" "$keep/callgrind.out.$(basename "$(dirname "$bin")")-$(basename "$bin")"
echo "$bin: $(((b - a + (long - short) / 2) / (long - short))) instructions per call" \
  "(callgrind, $short vs $long calls, load $(cut -d' ' -f1-3 /proc/loadavg))"
