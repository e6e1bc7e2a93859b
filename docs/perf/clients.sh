#!/usr/bin/env bash
# The editor clients' load modes side by side (issue 9): one release hearthd on a temporary
# socket, then the Rust (`hearth bench`), Node, Python and Neovim-Lua clients in turn, each a
# closed loop of echo calls with a 32-byte payload on one connection, at 1 and at 32 calls in
# flight, SECONDS each (default 5). Needs: cargo build --release -p hearthd -p hearth-cli;
# clients/node built (npm ci && npm run build); PYTHON with hearth_client installed; nvim.
#
#   PYTHON=/path/to/venv/bin/python bash docs/perf/clients.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${SECONDS_EACH:-5}"
py="${PYTHON:-python3}"
dir=$(mktemp -d); chmod 700 "$dir"; sock="$dir/hearthd.sock"
target/release/hearthd --socket "$sock" >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in 1 32; do
  echo "== in flight $n"
  printf 'rust:   '; target/release/hearth --socket "$sock" --no-start bench --in-flight "$n" \
    --duration "${secs}s" --payload 32 --json | tail -1
  printf 'node:   '; node clients/node/dist/bench.js --in-flight "$n" --duration "$secs" \
    --socket "$sock" --size 32
  printf 'python: '; "$py" -m hearth_client.bench --in-flight "$n" --duration "$secs" \
    --socket "$sock" --size 32
  printf 'nvim:   '; HEARTH_SOCKET="$sock" BENCH_INFLIGHT="$n" BENCH_SECONDS="$secs" BENCH_PAYLOAD=32 \
    nvim --headless -u NONE --cmd 'set rtp^=clients/nvim' \
    -c 'luafile clients/nvim/bench/echo.lua' 2>&1 | tail -1
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
