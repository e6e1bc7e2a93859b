-- hearth.client owns one connection to hearthd (docs/PROTOCOL.md): finding the socket
-- (§3.1), saying `$/hello` first in version 2 and reconnecting in version 1 when the daemon
-- refuses it with `$/fatal` -32004 and speaks 1 (§15.2), many calls in flight matched
-- by id, cancels that still consume the late answer (§7.2), the version 2 request options
-- and partial results (§15.1), requests from the daemon served by `serve` and answered
-- exactly once (§15.3), notifications, local flow control below `max_in_flight` (§7.4),
-- and failing every pending call at once when the connection ends. When nothing answers
-- on the socket it has hearthd started (hearth.start), and it replaces a hearthd of another
-- build (§9.1 "Mixed versions"); calls made meanwhile wait in its queue.
--
-- It runs on Neovim's libuv loop (`vim.loop` pipes). Bookkeeping happens in the libuv
-- callbacks; every user callback (results, partials, notifications, served requests) is
-- run through `vim.schedule`, in the order the frames arrived, so callbacks may use any
-- Neovim API. Bytes and frames are hearth.framing's business; editor integration is
-- hearth.init's.

local uv = vim.uv or vim.loop
local framing = require("hearth.framing")
local envelope = require("hearth.envelope")
local start = require("hearth.start")
local build_id = require("hearth.build_id")

local M = {}

local NIL = vim.NIL

--- Error codes. Negative codes from -32700 to -32000 are the wire's (docs/PROTOCOL.md §8.2);
--- CONNECTION_LOST, TIMEOUT, NOT_CONNECTED, CLOSED and START_FAILED are made up by this
--- client and never travel on the wire.
M.codes = {
  PARSE_ERROR = -32700,
  INVALID_REQUEST = -32600,
  METHOD_NOT_FOUND = -32601,
  INVALID_PARAMS = -32602,
  INTERNAL_ERROR = -32603,
  CANCELLED = -32800,
  SUPERSEDED = -32801,
  SERVER_BUSY = -32001,
  DEADLINE_EXCEEDED = -32002,
  SHUTTING_DOWN = -32003,
  UNSUPPORTED_VERSION = -32004,
  FRAME_TOO_LARGE = -32005,
  EMPTY_FRAME = -32006,
  -- client-local
  CONNECTION_LOST = -32099,
  TIMEOUT = -32098,
  NOT_CONNECTED = -32097,
  CLOSED = -32096,
  START_FAILED = -32095,
}
local codes = M.codes

local ErrorMT = {
  __tostring = function(e)
    return string.format("hearth error %s: %s", tostring(e.code), tostring(e.message))
  end,
}

--- A typed error table {code=, message=, data=}.
function M.error(code, message, data)
  return setmetatable({ code = code, message = message, data = data }, ErrorMT)
end

-- An error as it arrived on the wire (a map), or anything else, as a typed error table.
local function wire_error(e)
  if type(e) == "table" then
    local data = e.data
    if data == NIL then
      data = nil
    end
    return M.error(tonumber(e.code) or codes.INTERNAL_ERROR, type(e.message) == "string" and e.message or "", data)
  end
  return M.error(codes.INTERNAL_ERROR, tostring(e))
end

M.wire_error = wire_error

--- True when an error only says the answer is no longer wanted (cancelled, superseded,
--- deadline): callers should drop it rather than show it (§15.7 4).
function M.is_stale(err)
  return err ~= nil and (err.code == codes.CANCELLED or err.code == codes.SUPERSEDED or err.code == codes.DEADLINE_EXCEEDED)
end

--- The socket path by docs/PROTOCOL.md §3.1. env: a table to read instead of the process
--- environment (for tests).
function M.socket_path(env)
  local get = env and function(k)
    return env[k]
  end or os.getenv
  local s = get("HEARTH_SOCKET")
  if s and s ~= "" then
    return s
  end
  local xdg = get("XDG_RUNTIME_DIR")
  if xdg and xdg:sub(1, 1) == "/" then
    return xdg .. "/hearth/hearthd.sock"
  end
  local uid = env and env.uid or uv.getuid()
  return string.format("/tmp/hearth-%d/hearthd.sock", uid)
end

--- What a $/hello result says, with the defaults of docs/PROTOCOL.md §9.1 for missing
--- keys: {protocol, server, build, methods, max_frame, max_in_flight, max_connections,
--- max_depth, supported} (0 for a limit not announced; supported {} in version 1).
function M.parse_hello(res)
  res = type(res) == "table" and res or {}
  local limits = type(res.limits) == "table" and res.limits or {}
  local function num(v)
    return tonumber(v) or 0
  end
  return {
    protocol = tonumber(res.protocol),
    server = type(res.server) == "string" and res.server or "",
    build = type(res.build) == "string" and res.build or "",
    methods = type(res.methods) == "table" and res.methods or {},
    max_frame = num(limits.max_frame),
    max_in_flight = num(limits.max_in_flight),
    max_connections = num(limits.max_connections),
    max_depth = num(limits.max_depth),
    supported = type(res.supported) == "table" and res.supported or {},
  }
end

local Client = {}
Client.__index = Client
M.Client = Client

--- A new, unconnected client.
--- opts: socket (path; default M.socket_path()), client_name (sent in $/hello),
--- version (2 default; 1 to force version 1), max_frame (largest frame accepted from the
--- daemon, default 8 MiB), max_in_flight (cap on our calls in flight; default 90% of the
--- daemon's announced limit).
--- Starting hearthd when nothing answers (hearth.start): start (default true; false, or
--- HEARTH_NO_START=1, turns it off), daemon (binary; default $HEARTHD, else hearthd on PATH),
--- build_id (the id expected of the daemon, passed to one we start as HEARTH_BUILD_ID;
--- default $HEARTH_BUILD_ID, else the hash of the binary), replace (replace a hearthd of
--- another build; default true unless HEARTH_NO_REPLACE=1), ready_timeout_ms (10000),
--- idle_exit ("10m"; false for none), daemon_args (more arguments for the daemon).
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({
    path = opts.socket or M.socket_path(),
    client_name = opts.client_name or "hearth.nvim",
    version = opts.version or 2,
    max_frame = opts.max_frame or framing.DEFAULT_MAX_FRAME,
    send_max_frame = framing.DEFAULT_MAX_FRAME,
    user_max_in_flight = opts.max_in_flight,
    max_in_flight = opts.max_in_flight or 1,
    state = "idle", -- idle | connecting | hello | ready | closed
    next_id = 1,
    calls = {}, -- id -> call, sent and not yet answered (cancelled ones included)
    inflight = 0,
    queue = {}, -- calls and notifications not sent yet, in order
    qhead = 1,
    qtail = 0,
    serving = {}, -- id -> ctx of daemon requests not yet answered
    handlers = {}, -- method -> fn(params, reply, ctx) for daemon requests
    listeners = {}, -- method (or "*") -> list of fn(params, method) for notifications
    ready_waiters = {},
    close_listeners = {},
    hello = nil,
    fatal = nil,
    close_reason = nil,
    start = start.options(opts),
    started = false, -- this client started or replaced a daemon already: never twice
  }, Client)
  return self
end

--- A new client, connecting at once. cb(err, hello) runs when $/hello is answered.
function M.connect(opts, cb)
  local c = M.new(opts)
  c:connect(cb)
  return c
end

local function schedule_call(fn, ...)
  if fn == nil then
    return
  end
  local n = select("#", ...)
  local args = { ... }
  vim.schedule(function()
    fn(unpack(args, 1, n))
  end)
end

--- Starts connecting (no-op when already connecting or connected). cb(err, hello) runs
--- once $/hello is answered, or with an error when connecting fails.
function Client:connect(cb)
  if self.state == "ready" then
    schedule_call(cb, nil, self.hello)
    return self
  end
  if self.state == "closed" then
    schedule_call(cb, self.close_reason)
    return self
  end
  if cb then
    table.insert(self.ready_waiters, cb)
  end
  if self.state == "idle" then
    self:_open()
  end
  return self
end

function Client:_open()
  self.state = "connecting"
  self.decoder = framing.decoder(self.max_frame)
  self.fatal = nil
  self.fallback = false
  local pipe = uv.new_pipe(false)
  self.pipe = pipe
  pipe:connect(self.path, function(err)
    if self.pipe ~= pipe then
      return
    end
    if err then
      -- Nothing answers: start one. Any other error while this Neovim starts or replaces
      -- the daemon (a daemon going away resets connections): wait for that.
      if self.start.enabled and not self.started and (start.nothing_answers(err) or start.busy(self.path)) then
        self:_start_daemon()
        return
      end
      self:_shutdown(M.error(codes.NOT_CONNECTED, string.format("cannot connect to %s: %s", self.path, err)))
      return
    end
    pipe:read_start(function(rerr, data)
      if self.pipe ~= pipe then
        return
      end
      if rerr then
        self:_lost("read error: " .. tostring(rerr))
      elseif data == nil then
        self:_lost("hearthd closed the connection")
      else
        self:_on_data(data)
      end
    end)
    self.state = "hello"
    local hello = self:_new_call("$/hello", { client = self.client_name }, nil, function(herr, res)
      self:_on_hello(herr, res)
    end)
    hello.internal = true
    self:_send_call(hello)
  end)
end

function Client:_on_hello(err, res)
  if self.state ~= "hello" then
    return
  end
  if err == nil and type(res) == "table" and self:_stale(res) then
    self:_replace(res)
    return
  end
  if err == nil and type(res) == "table" then
    self.hello = res
    local h = M.parse_hello(res)
    self.version = h.protocol or self.version
    if h.max_frame > 0 then
      -- The daemon never sends more than it announced: from now on a header above it is a
      -- broken stream, refused before any of its body is buffered.
      self.send_max_frame = h.max_frame
      self.decoder.max_frame = math.min(self.decoder.max_frame, h.max_frame)
    end
    local mif = h.max_in_flight > 0 and h.max_in_flight or 1024
    self.max_in_flight = self.user_max_in_flight or math.max(1, math.floor(mif * 0.9))
  else
    self.max_in_flight = self.user_max_in_flight or 64
  end
  self.state = "ready"
  local waiters = self.ready_waiters
  self.ready_waiters = {}
  for _, w in ipairs(waiters) do
    schedule_call(w, err, self.hello)
  end
  self:_pump()
end

-- An error reported by hearth.start ({code = name, message, data}) as a typed error.
local function start_error(e)
  return M.error(codes[e.code] or codes.START_FAILED, e.message, e.data)
end

-- Nothing answered on the socket: have a daemon started (or join the start under way in
-- this Neovim), then connect again. Queued calls and ready waiters wait meanwhile.
function Client:_start_daemon()
  self:_drop_connection()
  self.state = "starting"
  self.started = true
  start.ensure(self.path, self.start, function(serr)
    self:_after_start(serr)
  end)
end

-- A start or replacement this client waited for is over: connect to what answers now.
function Client:_after_start(serr)
  if self.state ~= "starting" and self.state ~= "replacing" then
    return -- closed meanwhile
  end
  if serr then
    self:_shutdown(start_error(serr))
  else
    self:_open()
  end
end

--- The build id expected of the daemon (hearth.build_id.expected of the binary this client
--- would start), or nil when there is no binary to inspect.
function Client:expected_build_id()
  if self._expected == nil then
    self._expected = build_id.expected(start.find_daemon(self.start.daemon), self.start.build_id) or false
  end
  return self._expected or nil
end

-- Whether a $/hello result, answered in protocol `version`, comes from a hearthd of another
-- build than the one we would start (hearth.start.is_stale).
function Client:_hello_is_stale(res, version)
  return start.is_stale(res, version, self:expected_build_id())
end

-- Whether to replace the daemon that just answered our $/hello.
function Client:_stale(res)
  return self.start.enabled and self.start.replace and not self.started and self:_hello_is_stale(res, self.version)
end

-- Ends the current connection without failing anything queued: only internal calls
-- ($/hello, shutdown) were sent on it.
function Client:_drop_connection()
  self:_close_pipe()
  self.calls, self.inflight = {}, 0
end

-- The daemon that answered is a hearthd of another build: ask it to shut down on this
-- connection, wait (hearth.start) until it is gone, start ours and connect to it. A
-- replacement already under way in this Neovim is joined instead.
function Client:_replace(res)
  self.state = "replacing"
  self.started = true
  local function resume(serr)
    self:_after_start(serr)
  end
  if start.busy(self.path) then
    self:_drop_connection()
    start.join(self.path, resume)
    return
  end
  local info = { found = type(res.build_id) == "string" and res.build_id or "none", expected = self:expected_build_id() }
  local function shutdown(done)
    local fired = false
    local timer = (vim.uv or vim.loop).new_timer()
    local function go()
      if fired then
        return
      end
      fired = true
      if not timer:is_closing() then
        timer:close()
      end
      self.on_replace_lost = nil
      self:_drop_connection()
      done()
    end
    -- The answer may or may not arrive before the connection closes; either will do, and
    -- so does the ready timeout (then hearth.start finds the daemon still there and says so).
    self.on_replace_lost = go
    timer:start(self.start.ready_timeout_ms, 0, go)
    local call = self:_new_call("shutdown", nil, nil, go)
    call.internal = true
    self:_send_call(call)
  end
  local function still_stale(cb)
    local check = M.new({ socket = self.path, start = false, client_name = self.client_name })
    check:connect(function(err, hello)
      local stale = err ~= nil or type(hello) ~= "table" or self:_hello_is_stale(hello, check.version)
      check:close()
      cb(stale)
    end)
  end
  start.replace(self.path, self.start, info, shutdown, still_stale, resume)
end

function Client:_new_call(method, params, opts, callback)
  return {
    method = method,
    params = params,
    opts = opts,
    callback = callback,
    on_partial = opts and opts.on_partial or nil,
    done = false,
  }
end

-- Queues one frame for writing. Frames queued while the main loop works through one
-- batch of events (for example the callbacks of one read full of answers, each sending
-- its next call) leave in one write: the flush is scheduled behind them. A failed write
-- ends the connection.
function Client:_write(frame)
  local pipe = self.pipe
  if not pipe or pipe:is_closing() then
    return false
  end
  local wq = self.wq
  if wq == nil then
    wq = {}
    self.wq = wq
    vim.schedule(function()
      self:_flush(pipe, wq)
    end)
  end
  wq[#wq + 1] = frame
  return true
end

function Client:_flush(pipe, wq)
  if self.wq == wq then
    self.wq = nil
  end
  if self.pipe ~= pipe or pipe:is_closing() then
    return
  end
  local ok, err = pipe:write(wq, function(werr)
    if werr and self.pipe == pipe then
      self:_lost("write error: " .. tostring(werr))
    end
  end)
  if not ok and err then
    self:_lost("write error: " .. tostring(err))
  end
end

local function wire_opts(opts)
  if not opts then
    return nil
  end
  local o, any = vim.empty_dict(), false
  if opts.deadline_ms ~= nil then
    o.deadline_ms = math.max(0, math.floor(opts.deadline_ms))
    any = true
  end
  if opts.supersede ~= nil then
    o.supersede = tostring(opts.supersede)
    any = true
  end
  if opts.stream then
    o.stream = true
    any = true
  end
  return any and o or nil
end

-- Finishes a call once: its callback gets (err) or (nil, result), scheduled.
function Client:_finish(call, err, result)
  if call.done then
    return
  end
  call.done = true
  schedule_call(call.callback, err, result)
end

function Client:_send_call(call)
  local id = self.next_id
  self.next_id = id + 1
  call.id = id
  local params = call.params
  if params == nil then
    params = NIL
  end
  local env
  local o = self.version >= 2 and wire_opts(call.opts) or nil
  if o then
    env = { self.version, 0, id, call.method, params, o }
  else
    env = { self.version, 0, id, call.method, params }
  end
  local ok, frame, ferr = pcall(framing.encode, env, self.send_max_frame)
  if not ok then
    self:_finish(call, M.error(codes.INVALID_PARAMS, "cannot encode params: " .. tostring(frame)))
    return
  end
  if not frame then
    self:_finish(call, M.error(ferr.code, ferr.message))
    return
  end
  self.calls[id] = call
  self.inflight = self.inflight + 1
  self:_write(frame)
end

function Client:_enqueue(item)
  self.qtail = self.qtail + 1
  self.queue[self.qtail] = item
end

-- Sends queued calls and notifications, in order, while there is room in flight.
function Client:_pump()
  if self.state ~= "ready" then
    return
  end
  local q = self.queue
  while self.qhead <= self.qtail do
    local item = q[self.qhead]
    if item.notification then
      self:_send_notification(item.method, item.params)
    elseif item.done then
      -- cancelled while queued: nothing to send
    elseif self.inflight < self.max_in_flight then
      self:_send_call(item)
    else
      return
    end
    q[self.qhead] = nil
    self.qhead = self.qhead + 1
    if self.state ~= "ready" then
      return
    end
  end
end

--- Sends a request. opts (all optional): deadline_ms, supersede (str), stream (bool),
--- on_partial = fn(seq, chunk). callback(err, result): err a typed error table or nil.
--- Returns a cancel function: it sends a cancel when the call is in flight, answers the
--- callback at once with -32800 and still consumes the late answer (§7.2).
--- In version 1 the options are not sent and no partials arrive.
function Client:request(method, params, opts, callback)
  if type(opts) == "function" and callback == nil then
    opts, callback = nil, opts
  end
  local call = self:_new_call(method, params, opts, callback)
  if self.state == "closed" then
    self:_finish(call, self.close_reason or M.error(codes.CLOSED, "client is closed"))
  elseif self.state == "ready" and self.qhead > self.qtail and self.inflight < self.max_in_flight then
    self:_send_call(call)
  else
    if self.state == "idle" then
      self:connect()
    end
    self:_enqueue(call)
  end
  return function()
    self:_cancel(call)
  end
end

function Client:_cancel(call)
  if call.done then
    return
  end
  if call.id and self.calls[call.id] == call then
    local frame = framing.encode({ self.version, 3, call.id }, self.send_max_frame)
    self:_write(frame)
  end
  self:_finish(call, M.error(codes.CANCELLED, "request cancelled", { client_side = true }))
end

--- Sends a request and waits for its answer (runs the event loop with vim.wait).
--- Returns result, err. On timeout (default 5000 ms) the call is cancelled and err.code is
--- codes.TIMEOUT.
function Client:request_sync(method, params, opts, timeout_ms)
  local done, rerr, rres = false, nil, nil
  local cancel = self:request(method, params, opts, function(e, r)
    done, rerr, rres = true, e, r
  end)
  timeout_ms = timeout_ms or 5000
  if not vim.wait(timeout_ms, function()
    return done
  end, 5) then
    cancel()
    return nil, M.error(codes.TIMEOUT, string.format("no answer to %s within %d ms", method, timeout_ms))
  end
  return rres, rerr
end

function Client:_send_notification(method, params)
  if params == nil then
    params = NIL
  end
  local ok, frame, ferr = pcall(framing.encode, { self.version, 2, method, params }, self.send_max_frame)
  if ok and frame then
    self:_write(frame)
  else
    self.last_error = M.error(codes.INVALID_PARAMS, "notification " .. method .. " not sent: " .. tostring(ferr or frame))
  end
end

--- Sends a notification (queued, in order with requests, until connected).
function Client:notify(method, params)
  if self.state == "closed" then
    return false
  end
  if self.state == "ready" and self.qhead > self.qtail then
    self:_send_notification(method, params)
  else
    if self.state == "idle" then
      self:connect()
    end
    self:_enqueue({ notification = true, method = method, params = params })
  end
  return true
end

--- Registers fn(params, method) for notifications named method ("*": all). Returns a
--- function that removes it.
function Client:on_notification(method, fn)
  local list = self.listeners[method] or {}
  self.listeners[method] = list
  table.insert(list, fn)
  return function()
    for i, f in ipairs(list) do
      if f == fn then
        table.remove(list, i)
        return
      end
    end
  end
end

--- Serves daemon requests named method (version 2, §15.3). fn(params, reply, ctx):
--- call reply(err, result) once, now or later; or return a non-nil result (or raise an
--- error) without calling reply. When the daemon cancels its request the client answers
--- it -32800 itself (later replies are ignored), sets ctx.cancelled and calls
--- ctx.on_cancel if set. fn = nil stops serving method.
function Client:serve(method, fn)
  self.handlers[method] = fn
end

--- fn(err) runs once when the connection ends (err says why).
function Client:on_close(fn)
  table.insert(self.close_listeners, fn)
end

function Client:is_ready()
  return self.state == "ready"
end

--- Calls sent and not yet answered (cancelled ones whose late answer is due included).
function Client:in_flight()
  return self.inflight
end

function Client:_on_data(data)
  local bodies, ferr = self.decoder:feed(data)
  for _, body in ipairs(bodies) do
    local msg, derr = framing.decode_body(body)
    if msg == nil then
      self.last_error = M.error(derr.code, derr.message)
    else
      self:_dispatch(msg)
    end
    if self.state == "closed" or self.state == "idle" then
      return
    end
  end
  if ferr then
    self:_lost(ferr.message, ferr.code)
  end
end

local function has(list, v)
  if type(list) ~= "table" then
    return false
  end
  for _, x in ipairs(list) do
    if x == v then
      return true
    end
  end
  return false
end

function Client:_notify_listeners(method, params)
  for _, key in ipairs({ method, "*" }) do
    local list = self.listeners[key]
    if list then
      for _, fn in ipairs(list) do
        schedule_call(fn, params, method)
      end
    end
  end
end

function Client:_dispatch(value)
  local msg, bad = envelope.read(value)
  if not msg then
    -- Not a message we can use (the daemon's bug): remember it, keep reading (§8.1).
    self.last_error = M.error(bad.code, bad.message)
    return
  end
  local kind = msg.kind
  if kind == envelope.RESPONSE then
    local call = self.calls[msg.id]
    if not call then
      return -- a late answer to something given up on, or garbage: drop
    end
    self.calls[msg.id] = nil
    self.inflight = self.inflight - 1
    if msg.error then
      self:_finish(call, M.error(msg.error.code, msg.error.message, msg.error.data))
    else
      local res = msg.result
      if res == NIL then
        res = nil
      end
      self:_finish(call, nil, res)
    end
    if self.qhead <= self.qtail then
      self:_pump()
    end
  elseif kind == envelope.PARTIAL then
    local call = self.calls[msg.id]
    if call and not call.done and call.on_partial then
      local chunk = msg.chunk
      if chunk == NIL then
        chunk = nil
      end
      schedule_call(call.on_partial, msg.seq, chunk)
    end
  elseif kind == envelope.NOTIFICATION then
    local method, params = msg.method, msg.params
    if params == NIL then
      params = nil
    end
    if method == "$/fatal" and type(params) == "table" then
      self.fatal = params
      -- §15.2: a daemon that refuses our version 2 $/hello and speaks 1 gets a new
      -- connection in version 1. (Refusal is what counts: a daemon built while version 2
      -- was being added may list 2 in `supported` and still refuse it. We never retry
      -- the refused version itself, as §12.1 asks.)
      if
        params.code == codes.UNSUPPORTED_VERSION
        and self.state == "hello"
        and self.version >= 2
        and (params.supported == nil or has(params.supported, 1))
      then
        self.fallback = true
      end
    end
    self:_notify_listeners(method, params)
  elseif kind == envelope.REQUEST then
    self:_on_daemon_request(msg.id, msg.method, msg.params)
  elseif kind == envelope.CANCEL then
    -- The daemon cancels its own request: answer it -32800 now, so it is answered exactly
    -- once even when the handler never replies (or has not started: then it never runs).
    -- A later reply from the handler is ignored.
    local ctx = self.serving[msg.id]
    if ctx and not ctx.cancelled then
      ctx.cancelled = true
      if ctx.on_cancel then
        schedule_call(ctx.on_cancel)
      end
      ctx.reply({ code = codes.CANCELLED, message = "cancelled by the daemon" })
    end
  end
end

function Client:_on_daemon_request(id, method, params)
  if params == NIL then
    params = nil
  end
  local ctx = { id = id, method = method, cancelled = false, answered = false }
  self.serving[id] = ctx
  local pipe = self.pipe
  local function reply(err, result)
    if ctx.answered then
      return
    end
    ctx.answered = true
    if self.serving[id] == ctx then
      self.serving[id] = nil
    end
    if self.pipe ~= pipe or self.state ~= "ready" then
      return
    end
    local e = NIL
    if err ~= nil then
      if type(err) == "table" then
        e = { code = tonumber(err.code) or codes.INTERNAL_ERROR, message = tostring(err.message or "") }
        if err.data ~= nil then
          e.data = err.data
        end
      else
        e = { code = codes.INTERNAL_ERROR, message = tostring(err) }
      end
      result = nil
    end
    if result == nil then
      result = NIL
    end
    local ok, frame = pcall(framing.encode, { self.version, 1, id, e, result }, self.send_max_frame)
    if not ok or not frame then
      frame = framing.encode({
        self.version,
        1,
        id,
        { code = codes.INTERNAL_ERROR, message = "result could not be encoded or is too large" },
        NIL,
      })
    end
    self:_write(frame)
  end
  ctx.reply = reply
  vim.schedule(function()
    if ctx.answered then
      return -- cancelled by the daemon before it started
    end
    local fn = type(method) == "string" and self.handlers[method] or nil
    if not fn then
      reply({ code = codes.METHOD_NOT_FOUND, message = "no such method: " .. tostring(method) })
      return
    end
    local ok, res = pcall(fn, params, reply, ctx)
    if not ok then
      local err = type(res) == "table" and res.code and res
        or { code = codes.INTERNAL_ERROR, message = "handler failed: " .. tostring(res) }
      reply(err)
    elseif res ~= nil then
      reply(nil, res)
    end
  end)
end

-- The connection ended without us asking.
function Client:_lost(why, code)
  if self.state == "closed" or self.state == "idle" then
    return
  end
  if self.state == "hello" and not self.fallback and self.start.enabled and not self.started and start.busy(self.path) then
    -- The daemon went before answering our $/hello, while this Neovim replaces it (or
    -- starts one): wait for that, then connect to the new one.
    self:_drop_connection()
    self.state = "starting"
    self.started = true
    start.join(self.path, function(serr)
      self:_after_start(serr)
    end)
    return
  end
  if self.state == "replacing" then
    -- the daemon we asked to shut down went
    if self.on_replace_lost then
      self.on_replace_lost()
    else
      self:_drop_connection()
    end
    return
  end
  if self.fallback then
    -- §15.2: the daemon speaks only version 1; reconnect speaking it. Queued calls stay
    -- queued; the only call sent was our $/hello, which is dropped.
    self:_close_pipe()
    self.calls, self.inflight = {}, 0
    self.version = 1
    self.state = "idle"
    self:_open()
    return
  end
  -- Always CONNECTION_LOST, so callers test one code; data says why: the daemon's
  -- $/fatal params (data.fatal.code) and/or the code of what we detected (data.cause).
  local data = { fatal = self.fatal, cause = code }
  if self.fatal then
    why = string.format("hearthd closed the connection after $/fatal %s: %s", tostring(self.fatal.code), tostring(self.fatal.message))
  end
  self:_shutdown(M.error(codes.CONNECTION_LOST, why, data))
end

function Client:_close_pipe()
  local pipe = self.pipe
  self.pipe = nil
  self.wq = nil
  if pipe and not pipe:is_closing() then
    pipe:read_stop()
    pipe:close()
  end
end

-- Ends the connection for good: every pending call fails at once with reason.
function Client:_shutdown(reason)
  if self.state == "closed" then
    return
  end
  self.state = "closed"
  self.close_reason = reason
  self:_close_pipe()
  local calls = self.calls
  self.calls, self.inflight = {}, 0
  local ids = vim.tbl_keys(calls)
  table.sort(ids)
  for _, id in ipairs(ids) do
    self:_finish(calls[id], reason)
  end
  for i = self.qhead, self.qtail do
    local item = self.queue[i]
    if item and not item.notification then
      self:_finish(item, reason)
    end
  end
  self.queue, self.qhead, self.qtail = {}, 1, 0
  for _, ctx in pairs(self.serving) do
    ctx.cancelled = true
  end
  self.serving = {}
  local waiters = self.ready_waiters
  self.ready_waiters = {}
  for _, w in ipairs(waiters) do
    schedule_call(w, reason)
  end
  for _, fn in ipairs(self.close_listeners) do
    schedule_call(fn, reason)
  end
end

--- Closes the connection; pending calls fail with codes.CLOSED.
function Client:close()
  self:_shutdown(M.error(codes.CLOSED, "closed by the client"))
end

return M
