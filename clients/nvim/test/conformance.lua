-- test/conformance.lua owns running the shared wire vectors (conformance/frames.json, from
-- branch `clients`) through this client's framing and envelope reading: every frame is
-- read whole, accepted by hearth.envelope and checked against its `expect`; error maps
-- and $/hello results are read the way hearth.client reads them; bad headers are refused
-- (or waited on) and bad bodies refused with the kind of error the vectors say; each
-- stream is fed whole, byte by byte and split at every point the vectors ask for. Loaded by framing_spec.lua when the file exists; returns fn(T, path).
--
-- Lua 5.1 numbers are doubles: ids above 2^53 are compared after both sides are rounded
-- to a double (this client's own ids, a counter from 1, never get there).

local framing = require("hearth.framing")
local envelope = require("hearth.envelope")
local hclient = require("hearth.client")
local NIL = vim.NIL

local KINDS = { request = 0, response = 1, notification = 2, cancel = 3, partial = 4 }

local function unhex(h)
  h = h:gsub("[^%x]", "")
  return (h:gsub("%x%x", function(x)
    return string.char(tonumber(x, 16))
  end))
end

local function same_id(T, want, got, what)
  local w = tonumber(want)
  T.eq("number", type(got), what .. " type")
  if w <= 2 ^ 53 then
    T.eq(w, got, what)
  else
    T.eq(string.format("%.0f", w), string.format("%.0f", got), what .. " (as doubles)")
  end
end

-- Decodes a hex frame into its one envelope.
local function read_frame(T, hex, what)
  local d = framing.decoder()
  local bodies, err = d:feed(unhex(hex))
  T.eq(nil, err, what .. ": framing error")
  T.eq(1, #bodies, what .. ": one frame")
  T.eq(0, d:pending_bytes(), what .. ": nothing left over")
  local v, derr = framing.decode_body(bodies[1])
  T.ok(v ~= nil, what .. ": body decodes: " .. vim.inspect(derr))
  return v, bodies[1]
end

local function check_frame(T, f)
  local what = f.name
  local e = f.expect
  local v = read_frame(T, f.hex, what)
  local msg, bad = envelope.read(v)
  T.ok(msg ~= nil, what .. ": a valid message: " .. vim.inspect(bad))
  T.eq(e.version, v[1], what .. ": version")
  T.eq(KINDS[e.kind], v[2], what .. ": kind")
  if e.kind == "request" then
    same_id(T, e.id, v[3], what .. ": id")
    T.eq(e.method, v[4], what .. ": method")
    T.eq(e.params, v[5], what .. ": params")
    if e.opts ~= nil then
      for k, want in pairs(e.opts) do
        local got = v[6] and v[6][k]
        T.eq(want ~= NIL and want or nil, got, what .. ": opts." .. k)
      end
    else
      T.eq(5, #v, what .. ": no opts")
    end
  elseif e.kind == "response" then
    same_id(T, e.id, v[3], what .. ": id")
    if e.error == NIL then
      T.eq(NIL, v[4], what .. ": error nil")
      T.eq(e.result, v[5], what .. ": result")
    else
      local err = hclient.wire_error(v[4])
      T.eq(e.error.code, err.code, what .. ": error code")
      T.eq(e.error.message, err.message, what .. ": error message")
      T.eq(e.error.data, err.data, what .. ": error data")
    end
    if e.hello ~= nil then
      local h = hclient.parse_hello(v[5])
      T.eq(e.hello.protocol, h.protocol, what .. ": hello protocol")
      T.eq(e.hello.max_frame, h.max_frame, what .. ": hello max_frame")
      T.eq(e.hello.max_in_flight, h.max_in_flight, what .. ": hello max_in_flight")
      T.eq(e.hello.supported, h.supported, what .. ": hello supported")
    end
  elseif e.kind == "notification" then
    T.eq(e.method, v[3], what .. ": method")
    T.eq(e.params, v[4], what .. ": params")
    if e.fatal ~= nil then
      T.eq("$/fatal", v[3], what .. ": is $/fatal")
      T.eq(e.fatal.code, v[4].code, what .. ": fatal code")
      T.eq(e.fatal.supported, v[4].supported, what .. ": fatal supported")
    end
  elseif e.kind == "cancel" then
    same_id(T, e.id, v[3], what .. ": id")
    T.eq(3, #v, what .. ": 3 elements")
  elseif e.kind == "partial" then
    same_id(T, e.id, v[3], what .. ": id")
    T.eq(e.seq, v[4], what .. ": seq")
    T.eq(e.chunk, v[5], what .. ": chunk")
  else
    error(what .. ": unknown kind " .. tostring(e.kind))
  end
  if f.direction == "c2d" then
    -- what this client would write for the same value reads back the same
    T.eq(v, framing.decode_body(framing.encode(v):sub(5)), what .. ": re-encoded")
  end
end

local ERRORS = { frame_too_large = framing.FRAME_TOO_LARGE, empty_frame = framing.EMPTY_FRAME }
local BODY_ERRORS = { parse = framing.PARSE_ERROR, invalid = envelope.INVALID, unsupported_version = envelope.UNSUPPORTED_VERSION }

local function feed_with_cuts(bytes, cuts)
  local d = framing.decoder()
  local out, prev = {}, 0
  for _, cut in ipairs(cuts) do
    local got, err = d:feed(bytes:sub(prev + 1, cut))
    assert(not err, err and err.message)
    vim.list_extend(out, got)
    prev = cut
  end
  local got, err = d:feed(bytes:sub(prev + 1))
  assert(not err, err and err.message)
  vim.list_extend(out, got)
  return out, d:pending_bytes()
end

return function(T, path)
  local f = assert(io.open(path, "rb"))
  local data = vim.json.decode(f:read("*a"))
  f:close()
  T.test("conformance/frames.json: format 1", function()
    T.eq(1, data.format, "format")
  end)
  local by_name = {}
  for _, fr in ipairs(data.frames) do
    by_name[fr.name] = fr
    T.test("conformance frame: " .. fr.name, function()
      check_frame(T, fr)
    end)
  end
  for _, bb in ipairs(data.bad_bodies or {}) do
    by_name[bb.name] = bb
    T.test("conformance bad body: " .. bb.name, function()
      local d = framing.decoder()
      local bodies, ferr = d:feed(unhex(bb.hex))
      T.eq(nil, ferr, "framing is fine")
      T.eq(1, #bodies, "one frame")
      local value, derr = framing.decode_body(bodies[1])
      local code
      if value == nil then
        code = derr.code
      else
        local msg, eerr = envelope.read(value)
        T.eq(nil, msg, "refused as a message")
        code = eerr.code
      end
      T.eq(BODY_ERRORS[bb.expect_error], code, "error kind " .. bb.expect_error)
    end)
  end
  for _, bh in ipairs(data.bad_headers or {}) do
    T.test("conformance bad header: " .. bh.name, function()
      local d = framing.decoder(bh.max_frame)
      local bodies, err = d:feed(unhex(bh.hex))
      T.eq(0, #bodies, "no frame")
      if bh.expect_error == NIL or bh.expect_error == nil then
        T.eq(nil, err, "no error: waits for more")
      else
        T.eq(ERRORS[bh.expect_error], err and err.code, "error")
        T.eq(0, d:pending_bytes(), "nothing buffered")
      end
    end)
  end
  for _, st in ipairs(data.streams or {}) do
    T.test("conformance stream: " .. st.name, function()
      local bytes = unhex(st.hex)
      local want = {}
      for i, name in ipairs(st.frames) do
        local fr = assert(by_name[name], "frame " .. name)
        want[i] = unhex(fr.hex):sub(5)
      end
      local function check(cuts, label)
        local bodies, left = feed_with_cuts(bytes, cuts)
        T.eq(want, bodies, st.name .. ": " .. label)
        T.eq(0, left, st.name .. ": " .. label .. ": nothing left")
      end
      for _, feed in ipairs(st.feeds) do
        if feed == "whole" then
          check({}, "whole")
        elseif feed == "bytewise" then
          local cuts = {}
          for i = 1, #bytes - 1 do
            cuts[i] = i
          end
          check(cuts, "bytewise")
        elseif feed == "every_single_split" then
          for i = 0, #bytes do
            check({ i }, "split at " .. i)
          end
        elseif feed == "every_double_split" then
          for i = 0, #bytes do
            for j = i, #bytes do
              check({ i, j }, "split at " .. i .. "," .. j)
            end
          end
        elseif type(feed) == "table" then
          check(feed, "splits " .. table.concat(feed, ","))
        else
          error("unknown feed " .. vim.inspect(feed))
        end
      end
    end)
  end
end
