#!/bin/sh
# test/run.sh owns running the Neovim plugin's tests: each test/*_spec.lua in its own
# headless Neovim (0.7.2 has no `-l`, so the spec is started with `-c lua ...`), exiting
# non-zero when any spec fails. Live specs need a built hearthd: HEARTHD (default
# target/debug/hearthd, relative to the repository root).
#
#   clients/nvim/test/run.sh            # every spec
#   clients/nvim/test/run.sh framing    # specs whose name contains "framing"
#   clients/nvim/test/run.sh --file clients/nvim/test/lang_live_spec.lua   # one file
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 2
export HEARTH_NVIM_ROOT="$here"
export HEARTH_REPO_ROOT="$repo"
export HEARTHD="${HEARTHD:-$repo/target/debug/hearthd}"
status=0
specs="$here"/test/*_spec.lua
filter="${1:-}"
if [ "$filter" = "--file" ]; then
  specs=$(cd "$repo" && realpath "$2")
  filter=""
fi
for spec in $specs; do
  case "$(basename "$spec")" in *"$filter"*) ;; *) continue ;; esac
  echo "# $(basename "$spec")"
  timeout 300 nvim --headless -u NONE -i NONE -n \
    --cmd "set rtp^=$here" \
    -c "lua local ok, e = pcall(dofile, '$spec'); if not ok then io.stdout:write('FAIL - loading spec: ', tostring(e), '\\n'); vim.cmd('1cquit') end" \
    -c "2cquit" </dev/null
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "# $(basename "$spec") failed (exit $rc)"
    status=1
  fi
done
exit $status
