#!/usr/bin/env bash
# Instructions per call of the hearth-client library alone, v1 (14737c4) and this tree, on the
# perf guard's `client` workload (256 tasks calling echo against a canned peer; see
# benches/README.md § The perf guard): callgrind on SHORT and LONG calls, the difference in
# instructions over the difference in calls.
#
# Usage: docs/perf/client-v1-lib.sh V1_WORKTREE V1_TARGET_DIR [SHORT LONG]
#   V1_WORKTREE: a worktree of 14737c4 (git worktree add /tmp/hearth-v1 14737c4); this copies
#     docs/perf/client_v1.rs into it as benches/src/bin/client_v1.rs and makes hearth-client
#     and tempfile normal dependencies of its hearth-benches (a throwaway change there).
#   V1_TARGET_DIR: where to build it, e.g. /tmp/v1-target.
# Needs `cargo build --release -p hearth-benches --bin hot_path` here first.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
v1=${1:?usage: $0 V1_WORKTREE V1_TARGET_DIR [SHORT LONG]}
target=${2:?usage: $0 V1_WORKTREE V1_TARGET_DIR [SHORT LONG]}
short=${3:-2560}
long=${4:-25600}
cp "$here/docs/perf/client_v1.rs" "$v1/benches/src/bin/client_v1.rs"
if ! grep -q '^hearth-client.workspace' <(sed -n '/^\[dependencies\]/,/^\[dev-dependencies\]/p' "$v1/benches/Cargo.toml"); then
  sed -i '/^\[dev-dependencies\]/,$ { /^hearth-client.workspace = true$/d; /^tempfile.workspace = true$/d }' "$v1/benches/Cargo.toml"
  sed -i 's/^\[dependencies\]$/[dependencies]\nhearth-client.workspace = true\ntempfile.workspace = true/' "$v1/benches/Cargo.toml"
fi
(cd "$v1" && CARGO_TARGET_DIR="$target" cargo build --release --locked -p hearth-benches --bin client_v1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ir() { # binary, extra args..., calls
  valgrind --tool=callgrind --callgrind-out-file="$work/cg" "$@" >/dev/null 2>"$work/err" ||
    { cat "$work/err" >&2; exit 1; }
  awk '/^summary:/ { print $2 }' "$work/cg"
}
per_call() {
  local a b
  a=$(ir "$@" "$short")
  b=$(ir "$@" "$long")
  echo $(((b - a + (long - short) / 2) / (long - short)))
}
echo "v1 (14737c4) hearth-client: $(per_call "$target/release/client_v1") instructions per call"
echo "this tree's hearth-client:  $(per_call "$here/target/release/hot_path" client) instructions per call"
