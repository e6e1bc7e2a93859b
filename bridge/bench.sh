#!/usr/bin/env bash
# The transport table of docs/BRIDGE.md ("Measured"): starts a release hearthd (Unix socket
# plus loopback TCP) and a release hearth-bridge on a free loopback port in a temporary folder,
# runs `hearth-bridge bench` once per transport (each: SECONDS of sequential round trips, then
# SECONDS with CONCURRENCY calls in flight), prints one Markdown table, and stops both.
# Loopback only; bounded by time and by --max-calls.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${SECONDS_PER_PHASE:-3}"
concurrency="${CONCURRENCY:-16}"
cargo build --release --manifest-path "$root/Cargo.toml" -p hearth-server -p hearth-bridge --bins >&2
bin="$root/target/release"
dir="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
socket="$dir/run/hearthd.sock"
"$bin/hearthd" --socket "$socket" --listen tcp:127.0.0.1:0 2>"$dir/hearthd.log" &
until grep -q "ready on" "$dir/hearthd.log"; do
  kill -0 $! 2>/dev/null || { cat "$dir/hearthd.log" >&2; exit 1; }
  sleep 0.1
done
tcp="$(sed -n 's/.*and tcp:\([0-9.:]*\).*/\1/p' "$dir/hearthd.log" | head -1)"
mkfifo "$dir/url"
"$bin/hearth-bridge" --socket "$socket" --listen 127.0.0.1:0 >"$dir/url" &
read -r url <"$dir/url"
echo "| transport | p50 µs | p99 µs | sequential calls | calls/s | in flight |"
echo "|---|---|---|---|---|---|"
for transport in uds tcp http http-close ws; do
  "$bin/hearth-bridge" bench --socket "$socket" --transport "$transport" --tcp "$tcp" \
    --url "$url" --seconds "$seconds" --concurrency "$concurrency" --max-calls 200000
done
