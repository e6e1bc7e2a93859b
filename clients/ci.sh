#!/usr/bin/env bash
# CI for the editor clients: the Node client (npm ci, build, test) and the Python client
# (a fresh venv, the hash-checked dev lock, the package, pytest), both against a real hearthd.
#
# Usage: bash clients/ci.sh            (uses target/debug/hearthd; build it first with
#                                       cargo build -p hearthd)
#        HEARTHD=/path/to/hearthd bash clients/ci.sh
# Needs node >= 18 with npm, and python3 >= 3.11 with venv. The conformance vectors in
# conformance/ are run by both suites (and by `cargo test -p hearth-protocol`).
# This script owns only these steps; .ci/run decides when to call it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export HEARTHD="${HEARTHD:-$ROOT/target/debug/hearthd}"
case "$HEARTHD" in /*) ;; *) HEARTHD="$ROOT/$HEARTHD" ;; esac

step() { printf '\n== clients: %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

if [ ! -x "$HEARTHD" ]; then
  echo "clients/ci.sh: no hearthd at $HEARTHD (cargo build -p hearthd)" >&2
  exit 1
fi

step "node: npm ci"
(cd clients/node && npm ci --no-audit --no-fund)
step "node: npm run build"
(cd clients/node && npm run build)
step "node: npm test"
(cd clients/node && npm test)

step "python: venv and dependencies"
VENV="$(mktemp -d "${TMPDIR:-/tmp}/hearth-clients-venv.XXXXXX")"
trap 'rm -rf "$VENV"' EXIT
python3 -m venv "$VENV"
# The lock is hash-checked; the package itself is a local folder (which pip cannot hash-check),
# so it goes in a second step, without dependencies: msgpack already came from the lock.
"$VENV/bin/pip" install --quiet --require-hashes -r clients/python/requirements-dev.txt
"$VENV/bin/pip" install --quiet --no-deps ./clients/python

step "python: pytest"
set +e
(cd clients/python && "$VENV/bin/python" -m pytest -q -p no:cacheprovider)
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "clients/ci.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
