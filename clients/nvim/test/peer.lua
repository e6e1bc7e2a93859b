-- test/peer.lua owns a SCRIPTED peer for the client tests: a Unix-socket server inside the
-- test's Neovim that records every message the client sends and lets the test send any
-- value or raw bytes back, so each protocol rule can be checked exactly, including ones a
-- well-behaved hearthd never exercises (out-of-order answers, split frames, bad headers).

local uv = vim.uv or vim.loop
local framing = require("hearth.framing")

local P = {}
P.__index = P

function P.start()
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, "p", tonumber("700", 8))
  local self = setmetatable({ path = dir .. "/peer.sock", conns = {} }, P)
  self.server = uv.new_pipe(false)
  assert(self.server:bind(self.path))
  self.server:listen(16, function()
    local pipe = uv.new_pipe(false)
    self.server:accept(pipe)
    local conn = { pipe = pipe, got = {}, closed = false, dec = framing.decoder() }
    table.insert(self.conns, conn)
    pipe:read_start(function(err, data)
      if err or not data then
        conn.closed = true
        if not pipe:is_closing() then
          pipe:close()
        end
        return
      end
      for _, body in ipairs((conn.dec:feed(data))) do
        table.insert(conn.got, assert(framing.decode_body(body)))
      end
    end)
  end)
  return self
end

--- The n-th connection (default: the latest).
function P:conn(n)
  return self.conns[n or #self.conns]
end

function P:send(value, conn)
  conn = conn or self:conn()
  conn.pipe:write(framing.encode(value))
end

function P:send_raw(bytes, conn)
  conn = conn or self:conn()
  conn.pipe:write(bytes)
end

function P:close_conn(conn)
  conn = conn or self:conn()
  if not conn.pipe:is_closing() then
    conn.pipe:close()
  end
end

--- Messages the latest connection sent so far whose kind is kind (all when nil).
function P:got(kind, conn)
  conn = conn or self:conn()
  if not conn then
    return {}
  end
  local out = {}
  for _, m in ipairs(conn.got) do
    if kind == nil or m[2] == kind then
      table.insert(out, m)
    end
  end
  return out
end

function P:stop()
  for _, c in ipairs(self.conns) do
    self:close_conn(c)
  end
  if not self.server:is_closing() then
    self.server:close()
  end
end

function P.hello_result(version, limits)
  return {
    protocol = version,
    server = "scripted peer",
    build = "test",
    methods = { "$/hello" },
    limits = limits or { max_frame = 8388608, max_in_flight = 1024, max_connections = 256, max_depth = 64 },
    supported = { 1, 2 },
  }
end

return P
