#!/usr/bin/env bash
# perf-guard: a performance regression check that does not trust the wall clock.
#
# Counts the instructions of hearth's hot path with `valgrind --tool=callgrind` on the fixed
# workloads of `hot_path` (benches/src/bin/hot_path.rs, release build) and compares
# instructions per iteration with the committed benches/perf-baseline.txt:
#   more than +FAIL_ABOVE_PCT %   fails;
#   less than -STALE_BELOW_PCT %  passes, and asks for the baseline to be updated.
# Each workload runs twice (few and many iterations) and only the difference is counted, so
# process start-up and runtime set-up cancel out.
#
# Usage: .ci/perf-guard.sh            check against the baseline
#        .ci/perf-guard.sh --update   rewrite the baseline from this run (commit it)
# Installs valgrind with apt-get if missing (needs root, as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

BASELINE=benches/perf-baseline.txt
FAIL_ABOVE_PCT=5
STALE_BELOW_PCT=10
# workload, iterations of the short run, iterations of the long run. `service` and `options`
# iterations are echo calls (hearthd's own `echo` from `builtins::router()`, a synchronous
# handler run inline since Router::sync_raw_method) and must be multiples of 32; both runs keep request ids in the
# uint16 range. `options` is `service` in protocol version 2 with `supersede` (a key per
# slot, so nothing is superseded) and a far `deadline_ms` on every request. `seq` is one
# echo call in flight at a time (the sequential path: every call parks and wakes the
# connection task). `complete` iterations are 24 completions each over a 200,000-occurrence
# index. `client` iterations are echo calls made by hearth-client from 256 tasks at once against
# a canned peer (the client's own cost per call) and must be multiples of 256; the calls the
# long run adds all have uint16 ids.
WORKLOADS=(
  "codec 2000 22000"
  "service 640 6400"
  "options 640 6400"
  "seq 500 5000"
  "complete 4 24"
  "client 2560 25600"
)

step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
die() { echo "perf-guard: $*" >&2; exit 1; }

update=false
case "${1-}" in
  "") ;;
  --update) update=true ;;
  *) die "usage: $0 [--update]" ;;
esac

if ! command -v valgrind >/dev/null 2>&1; then
  step "installing valgrind"
  [ "$(id -u)" -eq 0 ] || die "valgrind is missing; install it (apt-get install valgrind)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi

step "cargo build --release --bin hot_path"
cargo build --release --locked -p hearth-benches --bin hot_path
bin="${CARGO_TARGET_DIR:-target}/release/hot_path"
[ -x "$bin" ] || die "no binary at $bin"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Total instructions (callgrind's Ir) of one run of `hot_path <workload> <n>`.
instructions() {
  local out="$work/callgrind.$1.$2"
  if ! valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$1" "$2" \
    >"$work/stdout" 2>"$work/stderr"; then
    cat "$work/stderr" >&2
    die "hot_path $1 $2 failed under callgrind"
  fi
  awk '/^summary:/ { print $2 }' "$out"
}

# Instructions per iteration of a workload: (long run - short run) / (extra iterations).
per_iteration() {
  local workload=$1 short=$2 long=$3 a b
  a=$(instructions "$workload" "$short")
  b=$(instructions "$workload" "$long")
  [ -n "$a" ] && [ -n "$b" ] || die "no instruction count for $workload"
  echo $(((b - a + (long - short) / 2) / (long - short)))
}

step "callgrind"
declare -A measured
for spec in "${WORKLOADS[@]}"; do
  read -r workload short long <<<"$spec"
  measured[$workload]=$(per_iteration "$workload" "$short" "$long")
  printf '%-8s %8s instructions per iteration\n' "$workload" "${measured[$workload]}"
done

toolchain=$(rustc -V)

if $update; then
  {
    echo "# perf-guard baseline: callgrind instructions (Ir) per iteration of the release"
    echo "# \`hot_path\` workloads (benches/src/bin/hot_path.rs). Written by"
    echo "# \`.ci/perf-guard.sh --update\`; counts depend on the compiler that built them:"
    echo "# toolchain: $toolchain"
    for spec in "${WORKLOADS[@]}"; do
      read -r workload _ <<<"$spec"
      echo "$workload ${measured[$workload]}"
    done
  } >"$BASELINE"
  step "baseline written to $BASELINE"
  cat "$BASELINE"
  echo "perf-guard: ${#WORKLOADS[@]} passed, 0 failed (baseline updated)"
  exit 0
fi

step "compare with $BASELINE"
[ -f "$BASELINE" ] || die "no $BASELINE; create it with $0 --update"
recorded=$(sed -n 's/^# toolchain: //p' "$BASELINE")
if [ "$recorded" != "$toolchain" ]; then
  echo "note: the baseline was recorded with '$recorded'; this is '$toolchain'." \
    "A compiler change alone can move the counts."
fi

passed=0
failed=0
for spec in "${WORKLOADS[@]}"; do
  read -r workload _ <<<"$spec"
  now=${measured[$workload]}
  base=$(awk -v w="$workload" '$1 == w && $2 ~ /^[0-9]+$/ { print $2 }' "$BASELINE")
  if [ -z "$base" ] || [ "$base" -eq 0 ]; then
    echo "FAIL $workload: no baseline entry; run $0 --update"
    failed=$((failed + 1))
    continue
  fi
  change=$(awk -v a="$now" -v b="$base" 'BEGIN { printf "%+.2f%%", (a - b) * 100 / b }')
  line="$workload: $now instructions per iteration, baseline $base ($change)"
  if ((now * 100 > base * (100 + FAIL_ABOVE_PCT))); then
    echo "FAIL $line: more than +$FAIL_ABOVE_PCT%"
    failed=$((failed + 1))
  elif ((now * 100 < base * (100 - STALE_BELOW_PCT))); then
    echo "ok   $line: faster by over $STALE_BELOW_PCT%; update the baseline ($0 --update)"
    passed=$((passed + 1))
  else
    echo "ok   $line"
    passed=$((passed + 1))
  fi
done

if ((failed > 0)); then
  echo "A deliberate cost? Run $0 --update and commit $BASELINE with the reason."
fi
echo "perf-guard: $passed passed, $failed failed"
((failed == 0))
