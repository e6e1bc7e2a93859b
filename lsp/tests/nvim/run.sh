#!/usr/bin/env bash
# Headless Neovim (Debian's 0.7.2 or later) drives `hearth lsp` with its built-in LSP client:
# builds `hearth` and `hearthd`, starts hearthd (which serves the language service) on a
# temporary socket, makes a small project, runs lsp_spec.lua, stops the daemon. Exit status:
# the spec's (0 when every check passed). Installs Debian's neovim when missing and root.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cd "$repo"

if ! command -v nvim >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq neovim >/dev/null
  else
    echo "lsp/tests/nvim/run.sh: nvim is not installed (apt-get install neovim)" >&2
    exit 1
  fi
fi

cargo build --quiet --locked -p hearth-cli -p hearthd
bin_dir="${CARGO_TARGET_DIR:-$repo/target}/debug"

work="$(mktemp -d)"
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

socket="$work/run/hearthd.sock"
project="$work/project"
mkdir -p "$project/src"
printf 'fn main() {\n    let counter = 0;\n\n}\n' >"$project/main.rs"
printf '// the library\nfn render_frame() {}\nfn count_lines() {}\nconst größe_total: u32 = 1;\n' >"$project/src/lib.rs"

"$bin_dir/hearthd" --socket "$socket" 2>"$work/hearthd.log" &
daemon_pid=$!
# Wait for the ready line (bounded: 600 × 0.1 s), or for the daemon to fail.
for _ in $(seq 600); do
  grep -q "ready on" "$work/hearthd.log" && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/hearthd.log" >&2; exit 1; }
  sleep 0.1
done
grep -q "ready on" "$work/hearthd.log" || { echo "hearthd did not start" >&2; cat "$work/hearthd.log" >&2; exit 1; }

nvim --version | head -1
HEARTH_BIN="$bin_dir/hearth" HEARTH_TEST_SOCKET="$socket" HEARTH_TEST_PROJECT="$project" \
  timeout 300 nvim --headless -u NONE -i NONE -c "luafile $here/lsp_spec.lua"
