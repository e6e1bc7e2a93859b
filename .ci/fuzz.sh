#!/usr/bin/env bash
# CI: build the fuzz targets in fuzz/ on the stable toolchain (RUSTC_BOOTSTRAP=1, so any -Z
# flag cargo-fuzz passes is accepted; -Zsanitizer if ASan is turned back on), replay each
# target's checked-in corpus once, then fuzz each target for a short bounded time. Exits
# non-zero on any build failure, crash, failed assertion, hang (-timeout) or runaway memory
# (-rss_limit_mb); ends with "fuzz: N passed, M failed". Installs cargo-fuzz if missing.
# Crashing inputs are kept in fuzz/artifacts/<target>/ (git-ignored).
#
#   FUZZ_SECONDS   time per target for the short run (default 20)
#   FUZZ_TARGETS   space-separated subset of targets (default: all in fuzz/fuzz_targets)
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export RUSTC_BOOTSTRAP=1

seconds="${FUZZ_SECONDS:-20}"
step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  step "installing cargo-fuzz"
  cargo install cargo-fuzz --locked || exit 1
fi

# Safe Rust under test: ASan buys little and halves the speed; debug assertions (and with
# them overflow checks) are what catch unchecked arithmetic on a decode path.
build_flags=(--sanitizer none --debug-assertions)
targets="${FUZZ_TARGETS:-$(cd fuzz/fuzz_targets && ls ./*.rs | sed 's|^\./||; s|\.rs$||' | sort)}"

step "cargo fuzz build"
if ! cargo fuzz build "${build_flags[@]}"; then
  echo "fuzz: 0 passed, $(wc -w <<<"$targets") failed (build)"
  exit 1
fi
bin=fuzz/target/x86_64-unknown-linux-gnu/release

# Per-target input size limits, matching the long runs in docs/RELIABILITY.md.
max_len() {
  case "$1" in
    frame_decoder | connection) echo 2048 ;;
    *) echo 1024 ;;
  esac
}

passed=0
failed=0
failed_names=()
for t in $targets; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus"
  work="$(mktemp -d)"
  artifacts="fuzz/artifacts/$t"
  mkdir -p "$artifacts"
  ok=1

  step "$t: replay $(find "$corpus" -type f | wc -l) corpus files"
  # -runs=0 runs every corpus input once and fuzzes nothing.
  "$bin/$t" -runs=0 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts/" "$corpus" 2>&1 |
    grep -E '^#[0-9]+.*(INITED|DONE)|panicked|ERROR|SUMMARY|Test unit written'
  [ "${PIPESTATUS[0]}" = 0 ] || ok=0

  if [ "$ok" = 1 ]; then
    step "$t: fuzz ${seconds}s"
    # New inputs go to a scratch directory; the checked-in corpus is only read.
    "$bin/$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
      "$work" "$corpus" 2>&1 |
      grep -E '^#[0-9]+.*DONE|stat::(number_of_executed_units|average_exec_per_sec)|panicked|ERROR|SUMMARY|Test unit written'
    # The fuzzer's status, not grep's.
    [ "${PIPESTATUS[0]}" = 0 ] || ok=0
  fi
  rm -rf "$work"

  if [ "$ok" = 1 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_names+=("$t")
    echo "fuzz: $t FAILED; reproduce with: cargo fuzz run ${build_flags[*]} $t <artifact from $artifacts/>"
  fi
done

step "done"
[ "$failed" = 0 ] || echo "failed targets: ${failed_names[*]}"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
