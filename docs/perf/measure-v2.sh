#!/usr/bin/env bash
# The runs behind docs/PERFORMANCE.md § Protocol v2: interleaved rounds of
#   raw   the raw blocking echo baseline, 256 frames outstanding (target/release/raw_echo)
#   v1    `hearth bench` of the last v1 commit (14737c4), 1 x 256, 32-byte echo
#   v2    `hearth bench` of this commit, same flags
#   sleep / supersede   256 `sleep {"ms": 1}` in flight, without and with --supersede per-connection
#
# Usage: docs/perf/measure-v2.sh ROUNDS V1_TARGET_DIR [OUT_DIR]
#   V1_TARGET_DIR: the release target dir of a build of 14737c4, e.g.
#     git worktree add /tmp/hearth-v1 14737c4 && (cd /tmp/hearth-v1 && \
#       CARGO_TARGET_DIR=/tmp/v1-target cargo build --release --locked --bins)
# Needs `cargo build --release --locked --bins` here first. Appends to OUT_DIR (default
# docs/perf/raw/v2/); summarize with `python3 docs/perf/summarize-v2.py OUT_DIR`.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:?usage: $0 ROUNDS V1_TARGET_DIR}
v1=${2:?usage: $0 ROUNDS V1_TARGET_DIR}/hearth
out=${3:-docs/perf/raw/v2}
mkdir -p "$out"
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$out/commands.log" >&2; }
run() {
  local name=$1
  shift
  log "$name: $* (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$@" 2>/dev/null | tail -n 1 >>"$out/$name.jsonl"
}
log "commit $(git rev-parse --short HEAD); v1 binary $v1"
for r in $(seq 1 "$rounds"); do
  log "round $r"
  run raw target/release/raw_echo 256 10
  run v1 "$v1" bench --spawn --connections 1 --in-flight 256 --payload 32 --duration 10s --json
  run v2 target/release/hearth bench --spawn --connections 1 --in-flight 256 --payload 32 --duration 10s --json
  run sleep target/release/hearth bench --spawn --in-flight 256 --method sleep --params '{"ms": 1}' --duration 10s --json
  run supersede target/release/hearth bench --spawn --in-flight 256 --method sleep --params '{"ms": 1}' --supersede per-connection --duration 10s --json
done
log "done"
