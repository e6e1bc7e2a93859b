-- bench/echo.lua owns the plugin's load mode: a closed loop keeping N `echo` calls in
-- flight over one hearth.client connection for a fixed time, then printing calls/s and
-- the p50/p99 latency as seen by the callbacks (which run through vim.schedule, as every
-- plugin callback does). Run it with:
--
--   HEARTH_SOCKET=/path/to/hearthd.sock BENCH_INFLIGHT=32 BENCH_SECONDS=5 BENCH_PAYLOAD=64 \
--     nvim --headless -u NONE --cmd 'set rtp^=clients/nvim' -c 'luafile clients/nvim/bench/echo.lua'
--
-- Without HEARTH_SOCKET the protocol's socket rule applies. It exits with status 1 when a
-- call fails.

local uv = vim.uv or vim.loop
local hclient = require("hearth.client")

local inflight = tonumber(os.getenv("BENCH_INFLIGHT")) or 32
local seconds = tonumber(os.getenv("BENCH_SECONDS")) or 5
local payload = string.rep("x", tonumber(os.getenv("BENCH_PAYLOAD")) or 64)

local function out(s)
  io.stdout:write(s, "\n")
  io.stdout:flush()
end

local c = hclient.connect({ client_name = "hearth.nvim bench" })
local hello, herr = c:request_sync("$/hello", nil, nil, 5000)
if herr then
  out("cannot reach hearthd at " .. c.path .. ": " .. tostring(herr))
  vim.cmd("1cquit")
  return
end

local lat = {}
local n, failed = 0, nil
local stop_at = uv.hrtime() + seconds * 1e9
local running = 0
local t0 = uv.hrtime()

local function one()
  running = running + 1
  local start = uv.hrtime()
  c:request("echo", payload, nil, function(err)
    running = running - 1
    local now = uv.hrtime()
    if err then
      failed = err
      return
    end
    n = n + 1
    lat[n] = (now - start) / 1e3
    if now < stop_at and not failed then
      one()
    end
  end)
end

for _ = 1, inflight do
  one()
end
vim.wait(seconds * 1000 + 30000, function()
  return running == 0
end, 10)
local elapsed = (uv.hrtime() - t0) / 1e9
c:close()

if failed then
  out("a call failed: " .. tostring(failed))
  vim.cmd("1cquit")
  return
end
table.sort(lat)
local function pct(p)
  return lat[math.max(1, math.ceil(#lat * p))] or 0
end
out(
  string.format(
    "hearth.nvim echo: %s protocol %d, %d in flight, %d-byte payload: %d calls in %.2f s = %.0f calls/s, p50 %.0f us, p99 %.0f us",
    tostring(hello.server),
    c.version,
    inflight,
    #payload,
    n,
    elapsed,
    n / elapsed,
    pct(0.5),
    pct(0.99)
  )
)
vim.cmd("qall!")
