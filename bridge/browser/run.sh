#!/usr/bin/env bash
# Runs the real-browser tests of `hearth bridge` (bridge.test.mjs) with Debian's chromium and
# playwright-core. HEARTH is the hearth CLI (with its `bridge` subcommand) and HEARTHD the
# daemon; unset, both are built here (debug). Needs chromium installed (`apt-get install -y
# chromium`) and node with npm; installs playwright-core from package-lock.json with `npm ci`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [[ -z "${HEARTH:-}" || -z "${HEARTHD:-}" ]]; then
  cargo build --manifest-path "$root/Cargo.toml" -p hearth-cli -p hearthd --bins
  target="$(cargo metadata --manifest-path "$root/Cargo.toml" --format-version 1 --no-deps \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
  export HEARTH="${HEARTH:-$target/debug/hearth}" HEARTHD="${HEARTHD:-$target/debug/hearthd}"
fi
# Relative paths are taken from where run.sh was started; the tests run from this folder.
abs() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
HEARTH="$(abs "$HEARTH")" HEARTHD="$(abs "$HEARTHD")"
export HEARTH HEARTHD
for bin in "$HEARTH" "$HEARTHD"; do
  [[ -x "$bin" ]] || { echo "run.sh: $bin is not an executable" >&2; exit 1; }
done
command -v "${CHROMIUM:-/usr/bin/chromium}" >/dev/null || {
  echo "run.sh: chromium is not installed (apt-get install -y chromium)" >&2
  exit 1
}
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
exec node --test --test-timeout=120000 bridge.test.mjs
