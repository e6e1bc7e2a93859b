-- test/fake_daemon.lua owns a FAKE hearthd for the editor-integration tests, running inside
-- the test's own Neovim on a libuv pipe server: it answers $/hello, records every
-- `doc/*` notification, mirrors documents by applying each change with its own UTF-16
-- position arithmetic (written independently of the plugin's), and answers `complete`
-- from the identifiers of the mirrored document. It can also play a daemon that speaks
-- only version 1 (to test the fallback). It is not the language service of branch `lang`;
-- the tests that use it say "fake" in their names.

local uv = vim.uv or vim.loop
local framing = require("hearth.framing")

local F = {}
F.__index = F

-- Byte offset (0-based) in text of an LSP position (line, UTF-16 character).
local function offset_of(text, pos)
  local off = 0
  for _ = 1, pos.line do
    local nl = text:find("\n", off + 1, true)
    if not nl then
      error("position line " .. pos.line .. " is past the end of the document")
    end
    off = nl
  end
  local units = 0
  local i = off + 1
  while units < pos.character do
    local b = text:byte(i)
    if b == nil or b == 10 then
      error(string.format("position (%d,%d) is past the end of its line", pos.line, pos.character))
    end
    local len, u = 1, 1
    if b >= 0xF0 then
      len, u = 4, 2
    elseif b >= 0xE0 then
      len = 3
    elseif b >= 0xC0 then
      len = 2
    end
    i = i + len
    units = units + u
  end
  if units ~= pos.character then
    error("position splits a surrogate pair")
  end
  return i - 1
end
F.offset_of = offset_of

function F.apply(text, change)
  if change.range == nil or change.range == vim.NIL then
    return change.text
  end
  local s = offset_of(text, change.range.start)
  local e = offset_of(text, change.range["end"])
  assert(s <= e, "range start after end")
  return text:sub(1, s) .. change.text .. text:sub(e + 1)
end

--- Starts a fake daemon on a fresh socket path. opts.versions: what it speaks ({1,2}
--- default; {1} plays an old daemon). opts.words: extra completion candidates.
function F.start(opts)
  opts = opts or {}
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, "p", tonumber("700", 8))
  local self = setmetatable({
    path = dir .. "/fake.sock",
    versions = opts.versions or { 1, 2 },
    words = opts.words or {},
    notifications = {}, -- {method=, params=} in arrival order
    requests = {}, -- {method=, params=, opts=, version=}
    docs = {}, -- uri -> {text=, version=}
    errors = {}, -- problems found while applying changes
    conns = {},
    hellos = {},
  }, F)
  self.server = uv.new_pipe(false)
  assert(self.server:bind(self.path))
  self.server:listen(16, function(err)
    assert(not err, err)
    local conn = uv.new_pipe(false)
    self.server:accept(conn)
    self:_serve(conn)
  end)
  return self
end

local function has(list, v)
  for _, x in ipairs(list) do
    if x == v then
      return true
    end
  end
  return false
end

function F:_serve(conn)
  local dec = framing.decoder()
  local c = { pipe = conn, version = nil }
  table.insert(self.conns, c)
  local function send(v)
    conn:write(framing.encode(v))
  end
  conn:read_start(function(err, data)
    if err or not data then
      if not conn:is_closing() then
        conn:close()
      end
      return
    end
    for _, body in ipairs((dec:feed(data))) do
      local msg = assert(framing.decode_body(body))
      local v = msg[1]
      if c.version == nil then
        if not has(self.versions, v) then
          send({ 1, 2, "$/fatal", {
            code = -32004,
            message = "unsupported protocol version " .. v,
            supported = self.versions,
          } })
          conn:shutdown(function()
            conn:close()
          end)
          return
        end
        c.version = v
      end
      self:_handle(c, msg, send)
    end
  end)
end

function F:_handle(c, msg, send)
  local kind = msg[2]
  if kind == 2 then
    local method, params = msg[3], msg[4]
    table.insert(self.notifications, { method = method, params = params })
    local ok, err = pcall(function()
      if method == "doc/open" then
        self.docs[params.uri] = { text = params.text, version = params.version }
      elseif method == "doc/change" then
        local d = assert(self.docs[params.uri], "change for a document not open")
        assert(params.version > d.version, "version did not grow")
        for _, ch in ipairs(params.changes) do
          d.text = F.apply(d.text, ch)
        end
        d.version = params.version
      elseif method == "doc/close" then
        self.docs[params.uri] = nil
      end
    end)
    if not ok then
      table.insert(self.errors, tostring(err))
    end
  elseif kind == 0 then
    local id, method, params, opts = msg[3], msg[4], msg[5], msg[6]
    table.insert(self.requests, { method = method, params = params, opts = opts, version = msg[1] })
    if method == "$/hello" then
      table.insert(self.hellos, msg[1])
      local res = {
        protocol = c.version,
        server = "fake 0",
        build = "test",
        methods = { "$/hello", "complete" },
        limits = { max_frame = 8388608, max_in_flight = 1024, max_connections = 256, max_depth = 64 },
      }
      if c.version >= 2 then
        res.supported = self.versions
      end
      send({ c.version, 1, id, vim.NIL, res })
    elseif method == "complete" then
      local ok, res = pcall(self.complete, self, params)
      if ok then
        send({ c.version, 1, id, vim.NIL, res })
      else
        send({ c.version, 1, id, { code = -32602, message = tostring(res) }, vim.NIL })
      end
    elseif method == "workspace/index" then
      if c.version >= 2 and type(opts) == "table" and opts.stream then
        send({ 2, 4, id, 0, { files_done = 1, files_total = 2 } })
        send({ 2, 4, id, 1, { files_done = 2, files_total = 2 } })
      end
      send({ c.version, 1, id, vim.NIL, { files = 2, identifiers = 10, bytes = 100, ms = 1 } })
    elseif method == "$/stats" then
      send({ c.version, 1, id, vim.NIL, { uptime_ms = 5, connections = 1, requests_total = #self.requests, in_flight = 0 } })
    elseif method == "echo" then
      send({ c.version, 1, id, vim.NIL, params })
    else
      send({ c.version, 1, id, { code = -32601, message = "no such method" }, vim.NIL })
    end
  end
end

-- Identifier characters: ASCII letters, digits, _ and any non-ASCII byte.
local function is_ident_byte(b)
  return b and (b >= 0x80 or b == 95 or (b >= 48 and b <= 57) or (b >= 65 and b <= 90) or (b >= 97 and b <= 122))
end

function F:complete(params)
  local d = assert(self.docs[params.uri], "complete for a document not open")
  local at = offset_of(d.text, params.position)
  local s = at
  while s > 0 and is_ident_byte(d.text:byte(s)) do
    s = s - 1
  end
  local prefix = d.text:sub(s + 1, at)
  local seen, items = {}, {}
  if prefix ~= "" then
    local function consider(w, source)
      if not seen[w] and w ~= prefix and w:sub(1, #prefix) == prefix then
        seen[w] = true
        table.insert(items, { label = w, score = 100 - #w, source = source, detail = source == "document" and "fake" or nil })
      end
    end
    for w in d.text:gmatch("[%w_\128-\255]+") do
      consider(w, "document")
    end
    for _, w in ipairs(self.words) do
      consider(w, "workspace")
    end
  end
  table.sort(items, function(a, b)
    return a.label < b.label
  end)
  return { prefix = prefix, items = items, incomplete = false }
end

function F:notifications_named(method)
  local out = {}
  for _, n in ipairs(self.notifications) do
    if n.method == method then
      table.insert(out, n.params)
    end
  end
  return out
end

function F:stop()
  for _, c in ipairs(self.conns) do
    if not c.pipe:is_closing() then
      c.pipe:close()
    end
  end
  if not self.server:is_closing() then
    self.server:close()
  end
end

return F
