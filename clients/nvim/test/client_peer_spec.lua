-- test/client_peer_spec.lua owns the tests of hearth.client against a SCRIPTED peer
-- (test/peer.lua), where each frame the "daemon" sends is chosen by the test: the hello
-- handshake, envelopes and options on the wire, answers out of order and split at every
-- byte, cancel and its late answer, daemon requests and cancels, dropped partials and
-- unknown ids, local flow control, $/fatal, a bad header, and the version 1 fallback.

local T = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/helper.lua")
local P = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/peer.lua")
local framing = require("hearth.framing")
local hclient = require("hearth.client")
local codes = hclient.codes
local NIL = vim.NIL

local peers = {}
T.after_all = function()
  for _, p in ipairs(peers) do
    p:stop()
  end
end

-- A peer and a client connected to it, past $/hello (answered in version, default 2).
local function setup(opts)
  opts = opts or {}
  local peer = P.start()
  table.insert(peers, peer)
  local c = hclient.connect({ socket = peer.path, client_name = "spec", max_in_flight = opts.max_in_flight })
  T.wait_for(function()
    return #peer:got(0) >= 1
  end, "$/hello")
  local hello = peer:got(0)[1]
  if opts.answer_hello ~= false then
    peer:send({ hello[1], 1, hello[3], NIL, P.hello_result(hello[1], opts.limits) })
    T.wait_for(function()
      return c:is_ready()
    end, "ready")
  end
  return peer, c, hello
end

local function results()
  local r = { n = 0 }
  r.cb = function(name)
    return function(err, res)
      r[name] = { err = err, res = res }
      r.n = r.n + 1
    end
  end
  return r
end

T.test("scripted peer: $/hello is the first frame, version 2, with the client name", function()
  local _, c, hello = setup({ answer_hello = false })
  T.eq({ 2, 0, 1, "$/hello", { client = "spec" } }, hello, "hello")
  local r = results()
  c:request("echo", 1, nil, r.cb("a"))
  T.eq(false, c:is_ready(), "not ready before the answer")
  c:close()
end)

T.test("scripted peer: calls made before hello is answered wait and go after it, in order", function()
  local peer, c = setup({ answer_hello = false })
  c:notify("n1", { x = 1 })
  c:request("m1", nil, nil, function() end)
  T.eq(1, #peer:conn().got, "only $/hello on the wire")
  local hello = peer:got(0)[1]
  peer:send({ 2, 1, hello[3], NIL, P.hello_result(2) })
  T.wait_for(function()
    return #peer:conn().got == 3
  end, "the queued messages")
  T.eq({ 2, 2, "n1", { x = 1 } }, peer:conn().got[2], "notification first")
  T.eq({ 2, 0, 2, "m1", NIL }, peer:conn().got[3], "then the request, params nil as nil")
  c:close()
end)

T.test("scripted peer: options travel as a sixth element only when given", function()
  local peer, c = setup()
  c:request("a", { 1 }, nil, function() end)
  c:request("b", { 1 }, { deadline_ms = 250, supersede = "complete", stream = true, on_partial = print }, function() end)
  c:request("c", { 1 }, { stream = false }, function() end)
  T.wait_for(function()
    return #peer:got(0) == 4
  end, "three requests")
  local got = peer:got(0)
  T.eq(5, #got[2], "no options: 5 elements")
  T.eq({ 2, 0, 3, "b", { 1 }, { deadline_ms = 250, supersede = "complete", stream = true } }, got[3], "options")
  T.eq(5, #got[4], "stream=false alone is no option")
  c:close()
end)

T.test("scripted peer: answers out of order are matched by id; errors are typed tables", function()
  local peer, c = setup()
  local r = results()
  c:request("x", 1, nil, r.cb("x"))
  c:request("y", 2, nil, r.cb("y"))
  T.wait_for(function()
    return #peer:got(0) == 3
  end, "requests")
  peer:send({ 2, 1, 3, { code = -32601, message = "no such method", data = { hint = 1 } }, NIL })
  peer:send({ 2, 1, 2, NIL, "x-result" })
  T.wait_for(function()
    return r.n == 2
  end, "answers")
  T.eq("x-result", r.x.res, "x")
  T.eq(codes.METHOD_NOT_FOUND, r.y.err.code, "y code")
  T.eq({ hint = 1 }, r.y.err.data, "y data")
  T.ok(tostring(r.y.err):find("-32601", 1, true), "tostring")
  c:close()
end)

T.test("scripted peer: answers split at every byte and many per write are all read", function()
  local peer, c = setup()
  local got = {}
  for i = 1, 30 do
    c:request("e", i, nil, function(_, res)
      got[i] = res
    end)
  end
  T.wait_for(function()
    return #peer:got(0) == 31
  end, "requests")
  local stream = {}
  for i = 1, 30 do
    stream[i] = framing.encode({ 2, 1, i + 1, NIL, { i = i, s = "é😀" } })
  end
  stream = table.concat(stream)
  -- first half one byte per write, the rest in one write
  local half = math.floor(#stream / 2)
  for i = 1, half do
    peer:send_raw(stream:sub(i, i))
  end
  peer:send_raw(stream:sub(half + 1))
  T.wait_for(function()
    return vim.tbl_count(got) == 30
  end, "30 answers")
  for i = 1, 30 do
    T.eq(i, got[i].i, "answer " .. i)
  end
  c:close()
end)

T.test("scripted peer: bad bodies between answers are refused and the connection goes on", function()
  local peer, c = setup()
  local r = results()
  c:request("a", nil, nil, r.cb("a"))
  c:request("b", nil, nil, r.cb("b"))
  T.wait_for(function()
    return #peer:got(0) == 3
  end, "requests")
  peer:send_raw(T.unhex("00 00 00 01 c1")) -- not MessagePack
  peer:send({ 2, 1, 2, NIL, "a" })
  peer:send({ 2, 1, 3, "not an error map", NIL }) -- invalid: b stays pending
  peer:send({ 2, 9, 3 }) -- unknown kind
  peer:send({ 3, 1, 3, NIL, "v3" }) -- a version we do not speak
  T.wait_for(function()
    return r.n == 1
  end, "a")
  T.eq("a", r.a.res, "a answered")
  T.eq(1, c:in_flight(), "b still pending")
  peer:send({ 2, 1, 3, NIL, "b" })
  T.wait_for(function()
    return r.n == 2
  end, "b")
  T.eq("b", r.b.res, "b answered by the valid answer")
  T.eq(codes.UNSUPPORTED_VERSION, c.last_error.code, "last error kept")
  c:close()
end)

T.test("scripted peer: cancel sends [2,3,id], answers -32800 at once, consumes the late answer", function()
  local peer, c = setup()
  local r = results()
  local cancel = c:request("slow", nil, nil, r.cb("slow"))
  T.wait_for(function()
    return #peer:got(0) == 2
  end, "request")
  cancel()
  T.wait_for(function()
    return #peer:got(3) == 1
  end, "cancel")
  T.eq({ 2, 3, 2 }, peer:got(3)[1], "cancel envelope")
  T.wait_for(function()
    return r.n == 1
  end, "callback")
  T.eq(codes.CANCELLED, r.slow.err.code, "code")
  T.eq(1, c:in_flight(), "still pending")
  peer:send({ 2, 1, 2, NIL, "finished anyway" }) -- the race of §7.2
  T.wait_for(function()
    return c:in_flight() == 0
  end, "late answer consumed")
  T.eq(1, r.n, "callback ran once")
  c:close()
end)

T.test("scripted peer: daemon requests: served, unserved -32601, replied once, cancelled", function()
  local peer, c = setup()
  local ctx_seen
  c:serve("editor/config", function(params, reply)
    reply(nil, { tab = params.n })
    reply(nil, "second reply ignored")
  end)
  local on_cancel_ran = false
  c:serve("editor/slow", function(_, reply, ctx)
    ctx_seen = ctx
    ctx.on_cancel = function()
      on_cancel_ran = true
      reply(nil, "too late: ignored")
    end
  end)
  peer:send({ 2, 0, 1, "editor/config", { n = 4 } })
  peer:send({ 2, 0, 1, "editor/none", NIL }) -- same id as a client id in flight is fine
  peer:send({ 2, 0, 2, "editor/slow", NIL })
  T.wait_for(function()
    return #peer:got(1) == 2 and ctx_seen
  end, "two answers and the slow one started")
  local answers = peer:got(1)
  T.eq({ 2, 1, 1, NIL, { tab = 4 } }, answers[1], "served")
  T.eq(codes.METHOD_NOT_FOUND, answers[2][4].code, "unserved")
  T.eq(1, answers[2][3], "unserved answered under its id")
  peer:send({ 2, 3, 2 })
  T.wait_for(function()
    return #peer:got(1) == 3
  end, "answer to the cancelled request")
  T.ok(ctx_seen.cancelled, "ctx.cancelled")
  T.eq(codes.CANCELLED, peer:got(1)[3][4].code, "answered -32800 by the client")
  T.wait_for(function()
    return on_cancel_ran
  end, "on_cancel")
  c:request("sync", nil, nil, function() end) -- anything sent after on_cancel's reply
  T.wait_for(function()
    return #peer:got(0) == 2
  end, "a later request")
  T.eq(3, #peer:got(1), "the handler's late reply was not sent")
  c:close()
end)

T.test("scripted peer: partials go to on_partial in order; stray partials and ids are dropped", function()
  local peer, c = setup()
  local seen, r = {}, results()
  c:request("s", nil, { stream = true, on_partial = function(seq, chunk)
    table.insert(seen, { seq, chunk })
  end }, r.cb("s"))
  c:request("t", nil, nil, r.cb("t"))
  T.wait_for(function()
    return #peer:got(0) == 3
  end, "requests")
  peer:send({ 2, 4, 2, 0, "a" })
  peer:send({ 2, 4, 3, 0, "for a call without on_partial" })
  peer:send({ 2, 4, 99, 0, "for no call" })
  peer:send({ 2, 1, 99, NIL, "answer for no call" })
  peer:send({ 2, 4, 2, 2, { "c" } }) -- seq 1 dropped by the daemon
  peer:send({ 2, 1, 2, NIL, "done" })
  peer:send({ 2, 1, 3, NIL, "t" })
  T.wait_for(function()
    return r.n == 2
  end, "answers")
  T.eq({ { 0, "a" }, { 2, { "c" } } }, seen, "partials")
  T.eq("done", r.s.res, "result")
  c:close()
end)

T.test("scripted peer: notifications reach on_notification handlers and '*'", function()
  local peer, c = setup()
  local got, all = {}, {}
  c:on_notification("progress", function(p)
    table.insert(got, p)
  end)
  c:on_notification("*", function(_, m)
    table.insert(all, m)
  end)
  peer:send({ 2, 2, "progress", 50 })
  peer:send({ 2, 2, "unknown/thing", NIL })
  T.wait_for(function()
    return #all == 2
  end, "notifications")
  T.eq({ 50 }, got, "progress")
  T.eq({ "progress", "unknown/thing" }, all, "all")
  c:close()
end)

T.test("scripted peer: calls beyond 90% of max_in_flight wait locally and go as answers come", function()
  local peer, c = setup({ limits = { max_frame = 8388608, max_in_flight = 10 } })
  T.eq(9, c.max_in_flight, "limit")
  for i = 1, 20 do
    c:request("w", i, nil, function() end)
  end
  T.wait_for(function()
    return #peer:got(0) == 10
  end, "hello + 9 calls")
  T.eq(9, c:in_flight(), "in flight")
  peer:send({ 2, 1, 2, NIL, 1 })
  peer:send({ 2, 1, 3, NIL, 1 })
  T.wait_for(function()
    return #peer:got(0) == 12
  end, "two more sent")
  T.eq({ 2, 0, 12, "w", 11 }, peer:got(0)[12], "in order")
  c:close()
end)

T.test("scripted peer: $/fatal then close fails every pending call, lost, with the fatal code in data", function()
  local peer, c = setup()
  local r = results()
  c:request("a", nil, nil, r.cb("a"))
  c:request("b", nil, nil, r.cb("b"))
  T.wait_for(function()
    return #peer:got(0) == 3
  end, "requests")
  peer:send({ 2, 2, "$/fatal", { code = -32007, message = "too many errors", supported = { 1, 2 } } })
  peer:close_conn()
  T.wait_for(function()
    return r.n == 2
  end, "both failed")
  T.eq(codes.CONNECTION_LOST, r.a.err.code, "a")
  T.eq(-32007, r.a.err.data.fatal.code, "a: the fatal code")
  T.eq(codes.CONNECTION_LOST, r.b.err.code, "b")
  T.eq("closed", c.state, "closed")
end)

T.test("scripted peer: a header above max_frame ends the connection (cause -32005)", function()
  local peer = P.start()
  table.insert(peers, peer)
  local c = hclient.connect({ socket = peer.path, max_frame = 1000 })
  local hello_err
  c:connect(function(err)
    hello_err = err
  end)
  T.wait_for(function()
    return #peer:got(0) == 1
  end, "hello")
  peer:send_raw(framing.header(1001))
  T.wait_for(function()
    return hello_err
  end, "failure")
  T.eq(codes.CONNECTION_LOST, hello_err.code, "code")
  T.eq(codes.FRAME_TOO_LARGE, hello_err.data.cause, "cause")
end)

T.test("scripted peer: a refused version 2 hello is retried once in version 1 on a new connection", function()
  local peer = P.start()
  table.insert(peers, peer)
  local c = hclient.connect({ socket = peer.path })
  local r = results()
  c:request("echo", "hi", { deadline_ms = 5 }, r.cb("echo"))
  T.wait_for(function()
    return #peer:got(0) == 1
  end, "hello v2")
  peer:send({ 1, 2, "$/fatal", { code = -32004, message = "unsupported protocol version 2", supported = { 1 } } })
  peer:close_conn()
  T.wait_for(function()
    return #peer.conns == 2 and #peer:got(0) == 1
  end, "hello v1 on a second connection")
  local hello = peer:got(0)[1]
  T.eq(1, hello[1], "version 1")
  T.eq("$/hello", hello[4], "hello")
  peer:send({ 1, 1, hello[3], NIL, P.hello_result(1) })
  T.wait_for(function()
    return #peer:got(0) == 2
  end, "the queued echo")
  local echo = peer:got(0)[2]
  T.eq({ 1, 0, echo[3], "echo", "hi" }, echo, "echo in version 1, no options")
  peer:send({ 1, 1, echo[3], NIL, "hi" })
  T.wait_for(function()
    return r.n == 1
  end, "echo answered")
  T.eq("hi", r.echo.res, "result")
  T.eq(1, c.version, "version")
  c:close()
end)

T.test("scripted peer: no socket and start = false: connect and calls fail with NOT_CONNECTED", function()
  local c = hclient.connect({ socket = vim.fn.tempname() .. "/none.sock", start = false })
  local r = results()
  c:request("echo", 1, nil, r.cb("e"))
  T.wait_for(function()
    return r.n == 1
  end, "failure")
  T.eq(codes.NOT_CONNECTED, r.e.err.code, "code")
end)

T.test("socket_path follows §3.1", function()
  T.eq("/s", hclient.socket_path({ HEARTH_SOCKET = "/s", XDG_RUNTIME_DIR = "/run/user/1", uid = 5 }), "HEARTH_SOCKET")
  T.eq("/run/user/1/hearth/hearthd.sock", hclient.socket_path({ HEARTH_SOCKET = "", XDG_RUNTIME_DIR = "/run/user/1", uid = 5 }), "XDG")
  T.eq("/tmp/hearth-5/hearthd.sock", hclient.socket_path({ XDG_RUNTIME_DIR = "relative", uid = 5 }), "relative XDG ignored")
  T.eq("/tmp/hearth-5/hearthd.sock", hclient.socket_path({ uid = 5 }), "fallback")
end)

T.run("client_peer_spec")
