-- hearth.start owns starting hearthd on first use, the Neovim side of Rust's
-- `Client::connect_or_start` (client/src/start.rs, README "Daemon lifecycle"): which binary
-- to start (the `daemon` option, $HEARTHD, `hearthd` on PATH), starting it detached with
-- `--idle-exit 10m` and its output appended to `hearthd.log` beside the socket, waiting for
-- it to answer (a libuv timer, 2 ms doubling to 50 ms, bounded by the ready timeout), and
-- replacing a daemon of another build: once it was asked to shut down (by hearth.client, on
-- the connection that found it), waiting until it is gone before starting our own.
--
-- Nothing here blocks the editor: every wait is a libuv callback or timer, and every function
-- is safe in a fast (libuv) context, so it uses no vim.fn. Callbacks run on the libuv loop;
-- hearth.client turns what they report into its error tables and schedules user callbacks.
--
-- One daemon however many clients race: the clients of one Neovim share one start (or
-- replacement) per socket; between processes (Neovims, Rust clients) the daemon's own lock
-- file is the last word, since Neovim has no flock: a second hearthd exits "already running"
-- and its client connects to the one that won. The protocol itself is hearth.client's.

local uv = vim.uv or vim.loop
local build_id = require("hearth.build_id")

local M = {}

M.DEFAULT_READY_TIMEOUT_MS = 10000
M.DEFAULT_IDLE_EXIT = "10m"
M.NO_START_ENV = "HEARTH_NO_START"
M.NO_REPLACE_ENV = "HEARTH_NO_REPLACE"
M.DAEMON_ENV = "HEARTHD"

--- How many daemons this Neovim started, by socket (for :HearthStatus-like checks and tests).
M.spawned = {}

--- The start settings of a client from its options (see hearth.client.new): enabled
--- (start ~= false and HEARTH_NO_START is not "1"), daemon, build_id (explicit, or nil),
--- replace (the option, else HEARTH_NO_REPLACE is not "1"), ready_timeout_ms, idle_exit
--- (false: none), args.
function M.options(opts)
  opts = opts or {}
  local replace = opts.replace
  if replace == nil then
    replace = os.getenv(M.NO_REPLACE_ENV) ~= "1"
  end
  local idle = opts.idle_exit
  if idle == nil then
    idle = M.DEFAULT_IDLE_EXIT
  end
  return {
    enabled = opts.start ~= false and os.getenv(M.NO_START_ENV) ~= "1",
    daemon = (opts.daemon ~= nil and opts.daemon ~= "") and opts.daemon or nil,
    build_id = (type(opts.build_id) == "string" and opts.build_id ~= "") and opts.build_id or nil,
    replace = replace and true or false,
    ready_timeout_ms = opts.ready_timeout_ms or M.DEFAULT_READY_TIMEOUT_MS,
    idle_exit = idle,
    args = opts.daemon_args or {},
  }
end

--- The daemon binary to start: the `daemon` option, else $HEARTHD when set and not empty,
--- else the first executable `hearthd` on PATH. Returns path, where ("the daemon option",
--- "$HEARTHD", "PATH"), or nil.
function M.find_daemon(daemon)
  if daemon and daemon ~= "" then
    return daemon, "the daemon option"
  end
  local env = os.getenv(M.DAEMON_ENV)
  if env and env ~= "" then
    return env, "$" .. M.DAEMON_ENV
  end
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    local p = dir .. "/hearthd"
    local st = uv.fs_stat(p)
    if st and st.type == "file" and uv.fs_access(p, "X") then
      return p, "PATH"
    end
  end
  return nil
end

--- The socket's folder ("." for a bare name).
function M.dir_of(socket)
  local dir = socket:match("^(.*)/[^/]*$")
  if dir == nil then
    return "."
  end
  return dir == "" and "/" or dir
end

--- The log of a daemon started for socket: hearthd.log in the socket's folder.
function M.log_path(socket)
  local dir = M.dir_of(socket)
  return (dir == "/" and "" or dir) .. "/hearthd.log"
end

--- The daemon's own lock file for socket (hearth_protocol::paths::lock_path).
function M.lock_path(socket)
  return socket .. ".lock"
end

--- Whether a connect error (libuv's message, "ENOENT: ...") means nothing serves the
--- socket, so that starting a daemon may help; other errors (EACCES, ENOTSOCK) are reported.
function M.nothing_answers(err)
  return type(err) == "string" and (err:find("^ENOENT") ~= nil or err:find("^ECONNREFUSED") ~= nil)
end

-- Whether a connect error is worth waiting out while a daemon starts or goes: nothing
-- answers yet, or one that is going away reset the connection, or its backlog is full.
local function passing(err)
  return M.nothing_answers(err) or err:find("^ECONNRESET") ~= nil or err:find("^EAGAIN") ~= nil
end

--- Connects to socket and closes at once; cb(err) with libuv's error string or nil.
function M.probe(socket, cb)
  local pipe = uv.new_pipe(false)
  pipe:connect(socket, function(err)
    if not pipe:is_closing() then
      pipe:close()
    end
    cb(err)
  end)
end

local ffi_flock
do
  local ok, ffi = pcall(require, "ffi")
  if ok and jit then
    pcall(ffi.cdef, "int flock(int fd, int operation);")
    local okc, f = pcall(function()
      return ffi.C.flock
    end)
    if okc and f then
      ffi_flock = function(fd)
        return ffi.C.flock(fd, 1 + 4) -- LOCK_SH | LOCK_NB
      end
    end
  end
end

--- Whether a process holds the daemon lock at path (false when there is no such file, or
--- without LuaJIT's ffi to ask).
function M.lock_is_held(path)
  if not ffi_flock then
    return false
  end
  local fd = uv.fs_open(path, "r", 0)
  if not fd then
    return false
  end
  local held = ffi_flock(fd) ~= 0
  uv.fs_close(fd) -- also drops the shared lock we may just have taken
  return held
end

-- The text of the file at path from byte offset `from` (at most its last 64 KiB).
local function read_from(path, from)
  local fd = uv.fs_open(path, "r", 0)
  local text = ""
  if fd then
    local st = uv.fs_fstat(fd)
    local size = st and st.size or 0
    from = math.max(from or 0, size - 65536)
    if size > from then
      text = uv.fs_read(fd, size - from, from) or ""
    end
    uv.fs_close(fd)
  end
  return text
end

--- The last few lines of the log at path, on one line ("(empty)" when there are none).
function M.log_tail(path)
  local text = read_from(path, 0)
  local lines = {}
  for line in text:gmatch("[^\n]+") do
    lines[#lines + 1] = line
  end
  local tail = {}
  for i = math.max(1, #lines - 2), #lines do
    tail[#tail + 1] = lines[i]
  end
  if #tail == 0 then
    return "(empty)"
  end
  return table.concat(tail, " | ")
end

-- An error as hearth.client reports it: code is the name of one of its codes.
local function fail(code, message, data)
  return { code = code, message = message, data = data }
end

--- Checks the socket's folder with the daemon's rule (hearth_transport::folder) before
--- anything is made in it: a real folder, not a symbolic link, owned by this user, with no
--- group or other permissions; a missing one is made owner-only (its last component only).
--- An existing folder is never changed: the advice names a subfolder of its own instead.
--- Returns nil, or an error (START_FAILED) saying what is wrong and what to do.
function M.check_folder(socket)
  local dir = M.dir_of(socket)
  local name = socket:match("([^/]*)$")
  local function unsafe(problem, fix)
    return fail(
      "START_FAILED",
      string.format("refusing to use socket folder %s: %s; %s", dir, problem, fix),
      { socket = socket, folder = dir }
    )
  end
  local me = uv.getuid()
  local st, err = uv.fs_lstat(dir)
  if not st then
    if not tostring(err):find("^ENOENT") then
      return fail("START_FAILED", string.format("cannot inspect socket folder %s: %s", dir, tostring(err)), { socket = socket })
    end
    local ok, merr = uv.fs_mkdir(dir, 448) -- 0700
    if not ok and not tostring(merr):find("^EEXIST") then
      return fail("START_FAILED", string.format("cannot create socket folder %s: %s", dir, tostring(merr)), { socket = socket })
    end
    st, err = uv.fs_lstat(dir)
    if not st then
      return fail("START_FAILED", string.format("cannot inspect socket folder %s: %s", dir, tostring(err)), { socket = socket })
    end
    -- mkdir's mode passes through the umask: set it exactly, on a folder of ours only.
    if ok and st.type == "directory" and st.uid == me and st.mode % 512 ~= 448 then
      uv.fs_chmod(dir, 448)
      st = uv.fs_lstat(dir) or st
    end
  end
  if st.type == "link" then
    return unsafe("it is a symbolic link", string.format("remove the link (rm %s) or choose another path", dir))
  end
  if st.type ~= "directory" then
    return unsafe("it is not a folder", "choose another path with setup{ socket = ... } or HEARTH_SOCKET")
  end
  if st.uid ~= me then
    return unsafe(
      string.format("it is owned by uid %d, not by you (uid %d)", st.uid, me),
      "choose a folder of your own with setup{ socket = ... } or HEARTH_SOCKET"
    )
  end
  local mode = st.mode % 512
  if mode % 64 ~= 0 then
    return unsafe(
      string.format("other users have access to it (mode %o)", mode),
      string.format(
        "use a folder of its own, which hearthd creates owner-only: setup{ socket = '%s/hearth-%d/%s' }",
        dir == "/" and "" or dir,
        me,
        name
      )
    )
  end
  return nil
end

-- The environment of a started daemon: ours without LISTEN_FDS/LISTEN_PID (those are
-- systemd's, for a process it started), with HEARTH_BUILD_ID when the caller gave an id.
local function environment(o)
  local env = uv.os_environ and uv.os_environ() or {}
  local out = {}
  for k, v in pairs(env) do
    if k ~= "LISTEN_FDS" and k ~= "LISTEN_PID" and not (o.build_id and k == build_id.ENV) then
      out[#out + 1] = k .. "=" .. v
    end
  end
  if o.build_id then
    out[#out + 1] = build_id.ENV .. "=" .. o.build_id
  end
  return out
end

-- Waits for something to answer on socket after our daemon was started; cb(err).
local function wait_ready(socket, o, child, log, cb)
  local started = uv.hrtime()
  local pause = 2
  local timer = uv.new_timer()
  local function done(err)
    if not timer:is_closing() then
      timer:close()
    end
    cb(err)
  end
  local step
  step = function()
    M.probe(socket, function(err)
      if err == nil then
        return done(nil)
      end
      if not passing(err) then
        return done(fail("NOT_CONNECTED", string.format("cannot connect to %s: %s", socket, err)))
      end
      if child.exited then
        -- A hearthd that lost a race exits "already running"; the winner answers soon.
        -- Only what was written since we started it counts (the log outlives daemons).
        local tail = M.log_tail(log)
        if not read_from(log, child.log_offset):find("already running", 1, true) then
          return done(fail(
            "START_FAILED",
            string.format(
              "%s exited (code %s%s) before answering on %s; its log (%s) ends: %s. Fix what the log says, or start hearthd yourself and set HEARTH_NO_START=1",
              child.path,
              tostring(child.code),
              (child.signal or 0) ~= 0 and (", signal " .. tostring(child.signal)) or "",
              socket,
              log,
              tail
            ),
            { socket = socket, log = log, daemon = child.path, exit_code = child.code, tail = tail }
          ))
        end
      end
      local waited = (uv.hrtime() - started) / 1e6
      if waited >= o.ready_timeout_ms then
        return done(fail(
          "START_FAILED",
          string.format(
            "no daemon answered on %s within %d ms after starting %s; see its log %s (or raise ready_timeout_ms if it is only slow)",
            socket,
            o.ready_timeout_ms,
            child.path,
            log
          ),
          { socket = socket, log = log, daemon = child.path }
        ))
      end
      timer:start(pause, 0, step)
      pause = math.min(pause * 2, 50)
    end)
  end
  step()
end

--- Starts the daemon for socket detached (its own session, no stdin, output appended to the
--- log) and waits until something answers there; cb(err) on the libuv loop. Each call
--- starts a process: M.ensure shares one start between the clients of this Neovim.
function M.spawn_and_wait(socket, o, cb)
  local daemon = M.find_daemon(o.daemon)
  if not daemon then
    return cb(fail(
      "START_FAILED",
      "no hearthd to start: no daemon option, $HEARTHD not set, no hearthd on PATH; install hearthd (cargo install --path daemon) or set $HEARTHD or setup{ daemon = '/path/to/hearthd' }",
      { socket = socket }
    ))
  end
  -- The log goes beside the socket: check the folder as the daemon will first, so that a
  -- folder it would refuse is refused here with its advice and nothing is left in it.
  local ferr0 = M.check_folder(socket)
  if ferr0 then
    return cb(ferr0)
  end
  local log = M.log_path(socket)
  local before = uv.fs_stat(log)
  local fd, ferr = uv.fs_open(log, "a", 384) -- 0600
  if not fd then
    return cb(fail("START_FAILED", string.format("cannot open the daemon's log %s: %s", log, tostring(ferr)), { socket = socket, log = log }))
  end
  local args = { "--socket", socket }
  if o.idle_exit then
    vim.list_extend(args, { "--idle-exit", tostring(o.idle_exit) })
  end
  vim.list_extend(args, o.args or {})
  local child = { path = daemon, exited = false, log_offset = before and before.size or 0 }
  local handle, pid
  handle, pid = uv.spawn(daemon, {
    args = args,
    stdio = { nil, fd, fd },
    detached = true,
    env = environment(o),
  }, function(code, signal)
    child.exited, child.code, child.signal = true, code, signal
    if handle and not handle:is_closing() then
      handle:close()
    end
  end)
  uv.fs_close(fd)
  if not handle then
    return cb(fail(
      "START_FAILED",
      string.format("cannot run %s: %s; set setup{ daemon = ... } or $HEARTHD to a hearthd binary", daemon, tostring(pid)),
      { socket = socket, log = log, daemon = daemon }
    ))
  end
  handle:unref() -- Neovim may exit while the daemon runs on
  child.pid = pid
  M.last_pid = pid
  M.spawned[socket] = (M.spawned[socket] or 0) + 1
  wait_ready(socket, o, child, log, cb)
end

--- Whether a daemon whose $/hello result is res, answered in protocol `version`, is a hearthd
--- of another build than `expected` (docs/PROTOCOL.md §9.1 "Mixed versions"): never over
--- version 1, never a daemon whose server is not "hearthd ...", never when the expected id
--- is unknown; a version 2 hearthd without build_id is older than the key, so stale.
function M.is_stale(res, version, expected)
  if type(res) ~= "table" or version == 1 or tonumber(res.protocol) == 1 then
    return false
  end
  if type(res.server) ~= "string" or res.server:sub(1, 8) ~= "hearthd " or not expected then
    return false
  end
  if type(res.build_id) ~= "string" then
    return true
  end
  return not build_id.matches(res.build_id, expected)
end

-- Starts and replacements under way in this Neovim: socket -> { waiters = {cb...} }.
local ops = {}

local function begin(socket, cb)
  if ops[socket] then
    table.insert(ops[socket].waiters, cb)
    return false
  end
  ops[socket] = { waiters = { cb } }
  return true
end

local function finish(socket, err)
  local op = ops[socket]
  ops[socket] = nil
  for _, cb in ipairs(op and op.waiters or {}) do
    cb(err)
  end
end

--- Whether a start or replacement for socket is under way in this Neovim.
function M.busy(socket)
  return ops[socket] ~= nil
end

--- Waits for the start or replacement under way for socket; cb(err).
function M.join(socket, cb)
  if not begin(socket, cb) then
    return
  end
  finish(socket, nil) -- nothing was under way after all
end

--- Makes a daemon answer on socket: joins the start under way in this Neovim, else starts
--- one. cb(err) once something answers, or with why not.
function M.ensure(socket, o, cb)
  if begin(socket, cb) then
    M.spawn_and_wait(socket, o, function(err)
      finish(socket, err)
    end)
  end
end

-- Waits until the replaced daemon is gone (nothing answers and its lock is free), then
-- cb(nil); cb(nil, true) when what answers is no longer stale (another process replaced it).
local function wait_gone(socket, o, info, still_stale, cb)
  local started = uv.hrtime()
  local timer = uv.new_timer()
  local function done(err, replaced)
    if not timer:is_closing() then
      timer:close()
    end
    cb(err, replaced)
  end
  local step
  local function again()
    if (uv.hrtime() - started) / 1e6 >= o.ready_timeout_ms then
      return done(fail(
        "START_FAILED",
        string.format(
          "the daemon on %s (build %s) did not shut down within %d ms to be replaced by build %s; stop it, or set HEARTH_NO_REPLACE=1 to keep it",
          socket,
          tostring(info.found),
          o.ready_timeout_ms,
          tostring(info.expected)
        ),
        { socket = socket, found = info.found, expected = info.expected }
      ))
    end
    timer:start(20, 0, step)
  end
  step = function()
    M.probe(socket, function(err)
      if err ~= nil then
        -- Nothing accepts any more (whatever the error, as in Rust): gone once the lock is free.
        if M.lock_is_held(M.lock_path(socket)) then
          return again()
        end
        return done(nil)
      end
      still_stale(function(stale)
        if stale then
          again()
        else
          done(nil, true)
        end
      end)
    end)
  end
  step()
end

--- Replaces the daemon of another build on socket: shutdown(done) asks it to go (the caller
--- holds its connection) and calls done(); then waits until it is gone and starts ours.
--- still_stale(cb) connects afresh and says cb(true) when what answers is still the old
--- build. info: {found=, expected=} build ids, for the error. Joins a start or replacement
--- under way in this Neovim instead. cb(err) once a daemon of the expected build answers.
function M.replace(socket, o, info, shutdown, still_stale, cb)
  if not begin(socket, cb) then
    return
  end
  shutdown(function()
    wait_gone(socket, o, info, still_stale, function(err, replaced)
      if err or replaced then
        return finish(socket, err)
      end
      M.spawn_and_wait(socket, o, function(serr)
        finish(socket, serr)
      end)
    end)
  end)
end

return M
