-- test/scenarios_spec.lua owns running the shared conformance scenarios
-- (conformance/scenarios.json, from branch `clients`) with hearth.client: "hearthd"
-- scenarios against a LIVE hearthd started for each, "scripted" ones against a SCRIPTED
-- peer that plays the scenario's script in a coroutine inside this Neovim. This file is
-- the Lua interpreter of the step language (clients/python/tests/test_scenarios.py is the
-- Python one); the awaits are vim.wait on conditions, their timeouts only guards.

local T = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/helper.lua")
local S = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/support.lua")
local uv = vim.uv or vim.loop
local framing = require("hearth.framing")
local hclient = require("hearth.client")
local codes = hclient.codes
local NIL = vim.NIL
local GUARD = 15000

local path = (os.getenv("HEARTH_REPO_ROOT") or vim.fn.getcwd()) .. "/conformance/scenarios.json"

local function unhex(h)
  h = h:gsub("[^%x]", "")
  return (h:gsub("%x%x", function(x)
    return string.char(tonumber(x, 16))
  end))
end

local function is_list(t)
  return type(t) == "table" and getmetatable(t) == nil and (next(t) == nil or t[1] ~= nil)
end

-- Does got contain everything want names? (maps: subset; lists and the rest: equal)
local function matches(got, want)
  if type(want) == "table" and not is_list(want) then
    if type(got) ~= "table" then
      return false
    end
    for k, w in pairs(want) do
      if got[k] == nil or not matches(got[k], w) then
        return false
      end
    end
    return true
  end
  if type(want) == "table" then
    if type(got) ~= "table" or #got ~= #want then
      return false
    end
    for i = 1, #want do
      if not matches(got[i], want[i]) then
        return false
      end
    end
    return true
  end
  if want == NIL then
    return got == NIL or got == nil
  end
  return got == want
end

local KIND_NAMES = { [0] = "request", "response", "notification", "cancel", "partial" }

-- An envelope in the scripts' "expect" shape: ids as numbers, error as its code.
local function meaning(v)
  local m = { version = v[1], kind = KIND_NAMES[v[2]] }
  if v[2] == 0 then
    m.id, m.method, m.params, m.opts = v[3], v[4], v[5], v[6]
  elseif v[2] == 1 then
    m.id, m.result = v[3], v[5]
    m.error = (type(v[4]) == "table") and v[4].code or NIL
  elseif v[2] == 2 then
    m.method, m.params = v[3], v[4]
  elseif v[2] == 3 then
    m.id = v[3]
  else
    m.id, m.seq, m.chunk = v[3], v[4], v[5]
  end
  return m
end

-- A fake daemon on a temporary socket playing script in a coroutine; resumed by every
-- socket event. peer.done / peer.err say how the script ended.
local function scripted_peer(script)
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, "p", tonumber("700", 8))
  local peer = { socket = dir .. "/hearthd.sock", conns = {}, done = false, err = nil }
  local server = uv.new_pipe(false)
  assert(server:bind(peer.socket))
  local co
  local function pump()
    if co and coroutine.status(co) == "suspended" then
      local ok, e = coroutine.resume(co)
      if not ok then
        peer.err, peer.done = tostring(e), true
      end
    end
  end
  server:listen(8, function()
    local pipe = uv.new_pipe(false)
    server:accept(pipe)
    local conn = { pipe = pipe, inbox = {}, eof = false, dec = framing.decoder() }
    table.insert(peer.conns, conn)
    pipe:read_start(function(err, data)
      if err or not data then
        conn.eof = true
      else
        for _, body in ipairs((conn.dec:feed(data))) do
          table.insert(conn.inbox, assert(framing.decode_body(body)))
        end
      end
      pump()
    end)
    pump()
  end)
  local bound = {}
  local function subst(v)
    if type(v) == "string" and v:sub(1, 1) == "$" and bound[v:sub(2)] ~= nil then
      return bound[v:sub(2)]
    end
    if is_list(v) then
      local out = {}
      for i = 1, #v do
        out[i] = subst(v[i])
      end
      return out
    end
    return v
  end
  co = coroutine.create(function()
    local conn
    local accepted = 0
    local function nxt()
      while #conn.inbox == 0 and not conn.eof do
        coroutine.yield()
      end
      return table.remove(conn.inbox, 1)
    end
    for _, step in ipairs(script) do
      local op = step.op
      if op == "accept" then
        while #peer.conns <= accepted do
          coroutine.yield()
        end
        accepted = accepted + 1
        conn = peer.conns[accepted]
      elseif op == "recv" then
        local v = nxt()
        assert(v ~= nil, "peer: EOF while expecting " .. vim.inspect(step.expect))
        local m = meaning(v)
        assert(matches(m, step.expect), "peer: got " .. vim.inspect(m) .. ", expected " .. vim.inspect(step.expect))
        if step.bind then
          bound[step.bind] = v[3]
        end
      elseif op == "recv_eof" then
        local v = nxt()
        assert(v == nil, "peer: expected EOF, got " .. vim.inspect(v and meaning(v)))
      elseif op == "send" then
        conn.pipe:write(framing.encode(subst(step.msg)))
      elseif op == "send_batch" then
        local frames = {}
        for i, m in ipairs(step.msgs) do
          frames[i] = framing.encode(subst(m))
        end
        conn.pipe:write(table.concat(frames))
      elseif op == "send_hex" then
        conn.pipe:write(unhex(step.hex))
      elseif op == "close" then
        conn.pipe:close()
      else
        error("peer: unknown op " .. tostring(op))
      end
    end
    peer.done = true
  end)
  pump()
  function peer.stop()
    for _, c in ipairs(peer.conns) do
      if not c.pipe:is_closing() then
        c.pipe:close()
      end
    end
    if not server:is_closing() then
      server:close()
    end
  end
  return peer
end

local function run_steps(steps, socket, daemon, needs)
  local c
  local calls, served, notes, listened = {}, {}, {}, {}
  local function run(list)
    for _, step in ipairs(list) do
      local op, where = step.op, vim.inspect(step, { newline = " ", indent = "" })
      if op == "connect" then
        c = hclient.connect({ socket = socket, client_name = "conformance.lua" })
        local ready, err = false, nil
        c:connect(function(e)
          ready, err = true, e
        end)
        T.wait_for(function()
          return ready
        end, "connect", GUARD)
        T.eq(nil, err, where .. ": connect")
        T.ok(c.hello.protocol >= needs, string.format("this scenario needs a version %d hearthd; %s speaks %s", needs, tostring(c.hello.server), tostring(c.hello.protocol)))
        c:on_notification("*", function(p, m)
          table.insert(notes, { m, p, listened[m] == true })
        end)
        local exp = step.expect or {}
        if exp.version then
          T.eq(exp.version, c.version, where .. ": version")
        end
        for _, k in ipairs(exp.hello_keys or {}) do
          T.ok(c.hello[k] ~= nil, where .. ": hello has " .. k)
        end
      elseif op == "call" then
        local rec = { done = false, chunks = {}, dropped = 0, next_seq = 0 }
        local opts = { deadline_ms = step.deadline_ms, supersede = step.supersede }
        if step.stream then
          opts.stream = true
          opts.on_partial = function(seq, chunk)
            rec.dropped = rec.dropped + (seq - rec.next_seq)
            rec.next_seq = seq + 1
            table.insert(rec.chunks, chunk == nil and NIL or chunk)
          end
        end
        local params = step.params
        if params == NIL then
          params = nil
        end
        rec.cancel = c:request(step.method, params, opts, function(err, res)
          rec.done, rec.err, rec.res = true, err, res
        end)
        calls[step.as] = rec
      elseif op == "abort" then
        calls[step.call].cancel()
      elseif op == "await" then
        local rec = calls[step.call]
        T.wait_for(function()
          return rec.done
        end, where, GUARD)
        local e, err = step.expect, rec.err
        if e.result ~= nil or e.chunks ~= nil or e.result_subset ~= nil then
          T.ok(err == nil, where .. ": failed with " .. tostring(err))
          local res = rec.res == nil and NIL or rec.res
          if e.result ~= nil then
            T.eq(e.result, res, where .. ": result")
          end
          if e.result_subset ~= nil then
            T.ok(matches(res, e.result_subset), where .. ": " .. vim.inspect(res))
          end
          if e.chunks ~= nil then
            T.eq(e.chunks, rec.chunks, where .. ": chunks")
          end
          if e.dropped ~= nil then
            T.eq(e.dropped, rec.dropped, where .. ": dropped")
          end
        else
          T.ok(err ~= nil, where .. ": succeeded with " .. vim.inspect(rec.res))
          if e.error ~= nil then
            T.eq(e.error, err.code, where .. ": code")
            if e.message ~= nil then
              T.eq(e.message, err.message, where .. ": message")
            end
            if e.data ~= nil then
              T.eq(e.data, err.data, where .. ": data")
            end
          end
          if e.aborted then
            T.ok(err.code == codes.CANCELLED and err.data and err.data.client_side, where .. ": aborted, got " .. tostring(err))
          end
          if e.lost then
            T.eq(codes.CONNECTION_LOST, err.code, where .. ": lost")
          end
          if e.fatal_code ~= nil then
            T.eq(e.fatal_code, err.data and err.data.fatal and err.data.fatal.code, where .. ": fatal code")
          end
        end
      elseif op == "await_idle" then
        T.wait_for(function()
          return c:in_flight() == 0
        end, where, GUARD)
      elseif op == "await_closed" then
        T.wait_for(function()
          return c.state == "closed"
        end, where, GUARD)
      elseif op == "serve" then
        c:serve(step.method, function(params, reply)
          table.insert(served, { step.method, params == nil and NIL or params })
          if step.hang then
            return -- never answered (until the daemon cancels and the client closes)
          end
          if step.error then
            reply({ code = step.error.code, message = step.error.message })
            return
          end
          reply(nil, step.result)
        end)
      elseif op == "expect_served" then
        local any = false
        for _, s in ipairs(served) do
          any = any or (s[1] == step.method and matches(s[2], step.params))
        end
        T.ok(any, where .. ": " .. vim.inspect(served))
      elseif op == "listen" then
        listened[step.method] = true
      elseif op == "expect_notified" or op == "expect_notified_any" then
        T.wait_for(function()
          for _, n in ipairs(notes) do
            if n[1] == step.method and (op == "expect_notified_any" or n[3]) and matches(n[2] == nil and NIL or n[2], step.params) then
              return true
            end
          end
        end, where .. ": " .. vim.inspect(notes), GUARD)
      elseif op == "kill_daemon" then
        daemon:kill("sigkill")
      elseif op == "close" then
        c:close()
      elseif op == "repeat" then
        for _ = 1, step.times do
          run(step.steps)
        end
      else
        error("unknown step " .. where)
      end
    end
  end
  local ok, e = pcall(run, steps)
  if c then
    c:close()
  end
  if not ok then
    error(e, 0)
  end
end

if vim.fn.filereadable(path) == 1 then
  local f = assert(io.open(path, "rb"))
  local data = vim.json.decode(f:read("*a"))
  f:close()
  T.test("conformance/scenarios.json: format 1, every peer known", function()
    T.eq(1, data.format, "format")
    for _, sc in ipairs(data.scenarios) do
      T.ok(sc.peer == "hearthd" or sc.peer == "scripted", sc.name .. ": peer " .. tostring(sc.peer))
    end
  end)
  for _, sc in ipairs(data.scenarios) do
    local label = sc.peer == "hearthd" and "live hearthd" or "scripted peer"
    T.test("conformance scenario " .. sc.name .. " (" .. label .. ")", function()
      if sc.peer == "hearthd" then
        local d = S.spawn_hearthd(T, sc.daemon_args)
        local ok, e = pcall(run_steps, sc.steps, d.sock, d, sc.needs or 1)
        d:stop()
        if not ok then
          error(e, 0)
        end
      else
        local peer = scripted_peer(sc.script)
        local ok, e = pcall(run_steps, sc.steps, peer.socket, nil, 1)
        if ok then
          ok = vim.wait(GUARD, function()
            return peer.done
          end, 2)
          e = ok and peer.err or "the script did not finish"
          ok = ok and peer.err == nil
        end
        peer.stop()
        if not ok then
          error(e, 0)
        end
      end
    end)
  end
else
  T.out("# conformance/scenarios.json is not in this checkout: no shared scenarios to run")
  T.test("conformance scenarios: none in this checkout", function() end)
end
T.after_all = S.cleanup

T.run("scenarios_spec")
