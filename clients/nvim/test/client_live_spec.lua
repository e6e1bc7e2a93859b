-- test/client_live_spec.lua owns the tests of hearth.client against a LIVE hearthd (built
-- from this repository; $HEARTHD): $/hello in version 2, echo of every value shape, many
-- calls in flight, cancel and its late answer, deadline, supersede, streamed partials
-- from `count`, `ask` answered by `serve`, local frame limits, request_sync's timeout,
-- forced version 1, and every pending call failing at once when the daemon dies.
-- Synchronisation is vim.wait on conditions; timeouts only guard against hangs.

local T = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/helper.lua")
local S = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/support.lua")
local hclient = require("hearth.client")
local codes = hclient.codes

local daemon
local function d()
  if not daemon then
    daemon = S.spawn_hearthd(T)
  end
  return daemon
end
T.after_all = S.cleanup

local function connect(opts)
  opts = opts or {}
  opts.socket = opts.socket or d().sock
  local c = hclient.connect(opts)
  local ready, err = false, nil
  c:connect(function(e)
    ready, err = true, e
  end)
  T.wait_for(function()
    return ready
  end, "$/hello answered")
  T.eq(nil, err, "connect error")
  return c
end

local function call(c, method, params, opts)
  local res, err = c:request_sync(method, params, opts, 10000)
  if err and err.code == codes.TIMEOUT then
    error("timed out: " .. method)
  end
  return res, err
end

T.test("live hearthd: $/hello goes first and the connection speaks version 2", function()
  local c = connect()
  T.eq(2, c.version, "version")
  T.eq(2, c.hello.protocol, "hello.protocol")
  T.ok(vim.tbl_contains(c.hello.supported, 2), "supported has 2")
  T.ok(vim.tbl_contains(c.hello.methods, "count"), "count served")
  T.ok(c.hello.limits.max_frame > 0, "limits")
  c:close()
end)

T.test("live hearthd: echo returns maps, arrays with nil inside, UTF-8, numbers, booleans", function()
  local c = connect()
  local v = {
    list = { 1, vim.NIL, 3 },
    s = "naïve 😀",
    neg = -32801,
    big = 4294967296,
    f = 1.5,
    t = true,
    no = false,
    empty = vim.empty_dict(),
  }
  local res, err = call(c, "echo", v)
  T.eq(nil, err, "err")
  T.eq(v, res, "echo")
  local r2 = call(c, "echo", nil)
  T.eq(nil, r2, "echo nil")
  c:close()
end)

T.test("live hearthd: 2000 calls in flight at once, each answered with its own value", function()
  local c = connect()
  local got, n = {}, 2000
  for i = 1, n do
    c:request("echo", { i = i }, nil, function(err, res)
      got[i] = err or res.i
    end)
  end
  T.ok(c:in_flight() <= c.max_in_flight, "local flow control keeps in_flight below the limit")
  T.wait_for(function()
    return vim.tbl_count(got) == n
  end, "all answers")
  for i = 1, n do
    T.eq(i, got[i], "answer " .. i)
  end
  T.eq(0, c:in_flight(), "nothing left in flight")
  c:close()
end)

T.test("live hearthd: an unknown method is a typed error -32601", function()
  local c = connect()
  local res, err = call(c, "frobnicate", nil)
  T.eq(nil, res, "res")
  T.eq(codes.METHOD_NOT_FOUND, err.code, "code")
  T.eq("string", type(err.message), "message")
  c:close()
end)

T.test("live hearthd: cancel answers -32800 at once, the late answer is consumed, the connection goes on", function()
  local c = connect()
  local got
  local cancel = c:request("sleep", { ms = 60000 }, nil, function(err, res)
    got = { err = err, res = res }
  end)
  T.wait_for(function()
    return c:in_flight() == 1
  end, "sleep sent")
  cancel()
  T.wait_for(function()
    return got ~= nil
  end, "cancel callback")
  T.eq(codes.CANCELLED, got.err.code, "code")
  T.eq(1, c:in_flight(), "the call stays pending until its answer arrives")
  T.wait_for(function()
    return c:in_flight() == 0
  end, "the daemon's answer to the cancelled call")
  cancel() -- twice is harmless
  local res = call(c, "echo", "after")
  T.eq("after", res, "next call")
  c:close()
end)

T.test("live hearthd: deadline_ms stops a slow call with -32002", function()
  local c = connect()
  local res, err = call(c, "sleep", { ms = 60000 }, { deadline_ms = 1 })
  T.eq(nil, res, "res")
  T.eq(codes.DEADLINE_EXCEEDED, err.code, "code")
  T.ok(hclient.is_stale(err), "is_stale")
  c:close()
end)

T.test("live hearthd: a newer call with the same supersede key answers the older -32801", function()
  local c = connect()
  local first, second
  c:request("sleep", { ms = 60000 }, { supersede = "k" }, function(err, res)
    first = { err = err, res = res }
  end)
  c:request("sleep", { ms = 1 }, { supersede = "k" }, function(err, res)
    second = { err = err, res = res }
  end)
  T.wait_for(function()
    return first and second
  end, "both answers")
  T.eq(codes.SUPERSEDED, first.err.code, "first superseded")
  T.eq(nil, second.err, "second ok")
  T.eq(1, second.res.slept_ms, "second slept")
  c:close()
end)

T.test("live hearthd: count with stream delivers partials in order before the result", function()
  local c = connect()
  local seen, order, final = {}, {}, nil
  c:request("count", { n = 50, interval_ms = 0 }, {
    stream = true,
    on_partial = function(seq, chunk)
      table.insert(seen, { seq, chunk })
      table.insert(order, "partial")
    end,
  }, function(err, res)
    final = { err = err, res = res }
    table.insert(order, "result")
  end)
  T.wait_for(function()
    return final
  end, "count's result")
  T.eq(nil, final.err, "err")
  T.eq(50, final.res, "result")
  T.eq("result", order[#order], "the result comes last")
  T.ok(#seen >= 1, "partials arrived")
  local last = -1
  for _, p in ipairs(seen) do
    T.ok(p[1] > last, "seq grows")
    T.eq(p[1], p[2], "chunk of count is its seq")
    last = p[1]
  end
  -- without stream, no partials
  local none = 0
  local res = call(c, "count", { n = 5, interval_ms = 0 }, {
    on_partial = function()
      none = none + 1
    end,
  })
  T.eq(5, res, "result without stream")
  T.eq(0, none, "no partials without stream")
  c:close()
end)

T.test("live hearthd: ask is answered by serve (sync, async, error, unserved -32601)", function()
  local c = connect()
  c:serve("editor/config", function(params)
    return { tab = 4, got = params }
  end)
  c:serve("editor/later", function(params, reply)
    vim.schedule(function()
      reply(nil, { later = params.x })
    end)
  end)
  c:serve("editor/fail", function()
    error({ code = 7, message = "no config here" })
  end)
  local res, err = call(c, "ask", { method = "editor/config", params = { x = 1 } })
  T.eq(nil, err, "err")
  T.eq({ tab = 4, got = { x = 1 } }, res, "sync answer")
  res = call(c, "ask", { method = "editor/later", params = { x = 2 } })
  T.eq({ later = 2 }, res, "async answer")
  res, err = call(c, "ask", { method = "editor/fail", params = vim.NIL })
  T.eq(7, err and err.code, "handler error passed through")
  res, err = call(c, "ask", { method = "editor/nobody", params = vim.NIL })
  T.eq(codes.METHOD_NOT_FOUND, err and err.code, "unserved method")
  c:close()
end)

T.test("live hearthd: a frame above the daemon's max_frame is refused locally", function()
  local small = S.spawn_hearthd(T, { "--max-frame", "1024" })
  local c = connect({ socket = small.sock })
  local _, err = call(c, "echo", string.rep("x", 2000))
  T.eq(codes.FRAME_TOO_LARGE, err.code, "code")
  T.eq("ok", call(c, "echo", "ok"), "the connection goes on")
  c:close()
  small:stop()
end)

T.test("live hearthd: request_sync gives up at its timeout and cancels", function()
  local c = connect()
  local res, err = c:request_sync("sleep", { ms = 60000 }, nil, 20)
  T.eq(nil, res, "res")
  T.eq(codes.TIMEOUT, err.code, "code")
  T.wait_for(function()
    return c:in_flight() == 0
  end, "the cancelled sleep's answer")
  c:close()
end)

T.test("live hearthd: a client forced to version 1 works without options", function()
  local c = connect({ version = 1 })
  T.eq(1, c.version, "version")
  T.eq(1, c.hello.protocol, "hello.protocol")
  T.eq("v1", call(c, "echo", "v1", { supersede = "x", deadline_ms = 60000 }), "echo")
  c:close()
end)

T.test("live hearthd: when the daemon dies every pending call fails at once", function()
  local dying = S.spawn_hearthd(T)
  local c = connect({ socket = dying.sock })
  local closed
  c:on_close(function(err)
    closed = err
  end)
  local failed = {}
  for i = 1, 20 do
    c:request("sleep", { ms = 60000 }, nil, function(err)
      failed[i] = err
    end)
  end
  T.wait_for(function()
    return c:in_flight() == 20
  end, "20 sleeps sent")
  dying:kill("sigkill")
  T.wait_for(function()
    return vim.tbl_count(failed) == 20
  end, "every pending call failed")
  for i = 1, 20 do
    T.eq(codes.CONNECTION_LOST, failed[i].code, "call " .. i)
  end
  T.wait_for(function()
    return closed
  end, "on_close")
  local late
  c:request("echo", 1, nil, function(err)
    late = err
  end)
  T.wait_for(function()
    return late
  end, "a call on a dead connection")
  T.eq(codes.CONNECTION_LOST, late.code, "fails with the close reason")
  dying:stop()
end)

T.run("client_live_spec")
