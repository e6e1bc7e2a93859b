-- test/start_live_spec.lua owns the tests of starting hearthd on first use (hearth.start and
-- its use in hearth.client) against LIVE hearthds from $HEARTHD: a start from nothing (0700
-- folder, 0600 log, --idle-exit 10m, hello answers), 20 connections at once served by one
-- daemon, two separate starts racing and three Neovims starting at once (the daemon's lock
-- decides), setup{}'s start path and its notice, failing starts (/bin/false,
-- a missing binary, none found, a daemon that never answers), the opt-outs, and a daemon of
-- another build replaced or kept. Every test uses a fresh socket folder; every daemon found
-- on it is shut down and killed after the test, passed or failed. Waits are vim.wait on a
-- condition; their timeouts only guard against hangs.

local T = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/helper.lua")
local S = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/support.lua")
local hclient = require("hearth.client")
local start = require("hearth.start")
local codes = hclient.codes
local uv = vim.uv or vim.loop

local HEARTHD = S.hearthd_path()
local sockets = {} -- every socket a test used, for cleanup
local extra_pids = {} -- processes a test started that are not hearthd
local children = {} -- Neovims a test started: {handle=, exited=}

-- The pids of the processes whose command line serves socket (`--socket <socket>`).
local function daemons_on(socket)
  local want = "--socket\0" .. socket .. "\0"
  local pids = {}
  for _, f in ipairs(vim.fn.glob("/proc/[0-9]*/cmdline", true, true)) do
    local fh = io.open(f, "rb")
    if fh then
      local cmd = fh:read("*a") or ""
      fh:close()
      if cmd:find(want, 1, true) then
        pids[#pids + 1] = tonumber(f:match("/proc/(%d+)/"))
      end
    end
  end
  table.sort(pids)
  return pids
end

local function cmdline(pid)
  local fh = io.open("/proc/" .. pid .. "/cmdline", "rb")
  local cmd = fh and fh:read("*a") or ""
  if fh then
    fh:close()
  end
  return vim.split(cmd, "\0", { plain = true })
end

-- A fresh socket path whose folder does not exist yet.
local function fresh_socket()
  local s = vim.fn.tempname() .. "/hearthd.sock"
  table.insert(sockets, s)
  return s
end

local function cleanup()
  -- Neovims first, so that none starts a daemon after the sweep below.
  for _, ch in ipairs(children) do
    if not ch.exited then
      ch.handle:kill("sigkill")
    end
  end
  vim.wait(5000, function()
    for _, ch in ipairs(children) do
      if not ch.exited then
        return false
      end
    end
    return true
  end, 10)
  children = {}
  for _, s in ipairs(sockets) do
    local pids = daemons_on(s)
    for _, pid in ipairs(pids) do
      uv.kill(pid, "sigterm")
    end
    vim.wait(5000, function()
      return #daemons_on(s) == 0
    end, 10)
    for _, pid in ipairs(daemons_on(s)) do
      uv.kill(pid, "sigkill")
    end
    vim.fn.delete(start.dir_of(s), "rf")
  end
  sockets = {}
  for _, pid in ipairs(extra_pids) do
    uv.kill(pid, "sigkill")
  end
  extra_pids = {}
end
T.after_each = cleanup
T.after_all = cleanup

-- Connects with opts and waits for the outcome: returns the client, err.
local function connect(opts)
  local c = hclient.new(opts)
  local done, err = false, nil
  c:connect(function(e)
    done, err = true, e
  end)
  T.wait_for(function()
    return done
  end, "connect outcome", 30000)
  return c, err
end

local function mode_of(path)
  local st = uv.fs_stat(path)
  return st and string.format("%o", st.mode % 512) or nil
end

T.test("start: from nothing, hearthd is started detached, 0700 folder, 0600 log, idle exit, and answers", function()
  T.ok(vim.fn.executable(HEARTHD) == 1, "hearthd at " .. HEARTHD .. " (cargo build -p hearthd)")
  local sock = fresh_socket()
  T.eq(nil, uv.fs_stat(start.dir_of(sock)), "no folder yet")
  -- systemd's socket-passing variables are for a process systemd started: not passed on.
  local saved_fds, saved_pid = os.getenv("LISTEN_FDS"), os.getenv("LISTEN_PID")
  vim.env.LISTEN_FDS, vim.env.LISTEN_PID = "1", tostring(uv.os_getpid())
  local c, err = connect({ socket = sock, daemon = HEARTHD })
  vim.env.LISTEN_FDS, vim.env.LISTEN_PID = saved_fds, saved_pid
  T.eq(nil, err, "connect")
  T.eq(2, c.version, "version 2")
  T.ok(c.hello.server:find("^hearthd "), "server: " .. tostring(c.hello.server))
  T.ok(require("hearth.build_id").matches(c.hello.build_id, c:expected_build_id()), "the build we would start: " .. tostring(c.hello.build_id))
  T.eq("700", mode_of(start.dir_of(sock)), "socket folder mode")
  T.eq("600", mode_of(start.log_path(sock)), "log mode")
  local res, rerr = c:request_sync("echo", { hi = 1 }, nil, 10000)
  T.eq(nil, rerr, "echo")
  T.eq(1, res.hi, "echo result")
  local pids = daemons_on(sock)
  T.eq(1, #pids, "one daemon")
  local args = cmdline(pids[1])
  T.ok(vim.tbl_contains(args, "--idle-exit") and vim.tbl_contains(args, "10m"), "idle exit: " .. vim.inspect(args))
  local fh = io.open("/proc/" .. pids[1] .. "/environ", "rb")
  local environ = fh:read("*a")
  fh:close()
  T.ok(not environ:find("LISTEN_FDS=", 1, true) and not environ:find("LISTEN_PID=", 1, true), "no LISTEN_FDS/LISTEN_PID")
  T.ok(environ:find("PATH=", 1, true), "the rest of the environment")
  T.eq(true, start.lock_is_held(start.lock_path(sock)), "the daemon holds its lock")
  c:close()
  uv.kill(pids[1], "sigterm")
  T.wait_for(function()
    return #daemons_on(sock) == 0
  end, "the daemon to exit")
  T.eq(false, start.lock_is_held(start.lock_path(sock)), "the lock is free once it exited")
end)

T.test("editor: setup{} starts hearthd on first use; a start that fails is said once with vim.notify", function()
  local hearth = require("hearth")
  local notified = {}
  local notify = vim.notify
  vim.notify = function(msg)
    table.insert(notified, msg)
  end
  local ok, e = pcall(function()
    local bad = fresh_socket()
    hearth.setup({ socket = bad, daemon = "/bin/false", auto_attach = false })
    local c = hearth.client()
    T.wait_for(function()
      return #notified > 0
    end, "the start failure notified")
    T.ok(notified[1]:find("/bin/false exited", 1, true), notified[1])
    T.eq(c, hearth.client(), "not started again on every use within 2 s")
    hearth._state.client = nil -- as after 2 s: the next use tries again
    local c2 = hearth.client()
    local after = false
    c2:connect(function() -- scheduled after setup's own connect callback
      after = true
    end)
    T.wait_for(function()
      return after
    end, "the second attempt to fail")
    T.eq(1, #notified, "the same failure is said once")

    local sock = fresh_socket()
    hearth.setup({ socket = sock, daemon = HEARTHD, auto_attach = false })
    hearth._state.client = nil
    local lines = hearth.status(false)
    T.ok(lines[2]:find("hearthd", 1, true) and lines[2]:find("protocol 2", 1, true), vim.inspect(lines))
    T.eq(1, #daemons_on(sock), "one daemon started")
    hearth.client():close()
  end)
  vim.notify = notify
  assert(ok, e)
end)

T.test("start: calls made before the daemon answers wait in the queue and are answered", function()
  local sock = fresh_socket()
  local c = hclient.new({ socket = sock, daemon = HEARTHD })
  local got = {}
  for i = 1, 5 do
    c:request("echo", i, nil, function(e, r)
      got[i] = e or r
    end)
  end
  T.ok(c.state ~= "ready", "not ready yet: " .. c.state)
  T.wait_for(function()
    return vim.tbl_count(got) == 5
  end, "answers", 30000)
  T.eq({ 1, 2, 3, 4, 5 }, got, "answers in order")
  c:close()
end)

T.test("start: 20 connections at the same moment are served by exactly one daemon", function()
  local sock = fresh_socket()
  local clients, outcomes = {}, {}
  for i = 1, 20 do
    clients[i] = hclient.new({ socket = sock, daemon = HEARTHD })
  end
  for i = 1, 20 do
    clients[i]:connect(function(e)
      outcomes[i] = e or true
    end)
  end
  T.wait_for(function()
    return vim.tbl_count(outcomes) == 20
  end, "20 outcomes", 30000)
  for i = 1, 20 do
    T.eq(true, outcomes[i], "client " .. i)
  end
  T.eq(1, #daemons_on(sock), "one hearthd process")
  T.eq(1, start.spawned[sock], "started once")
  -- The readiness probe's own connection may still be closing at the daemon: poll.
  local stats
  T.wait_for(function()
    stats = clients[1]:request_sync("$/stats", nil, nil, 10000)
    return type(stats) == "table" and stats.connections == 20
  end, "$/stats connections = 20", 20000)
  T.eq(20, stats.connections, "connections")
  T.eq(1, #daemons_on(sock), "still one hearthd process")
  for _, c in ipairs(clients) do
    c:close()
  end
end)

T.test("start: two separate starts racing leave one daemon; the loser exits 'already running'", function()
  local sock = fresh_socket()
  local o = start.options({ daemon = HEARTHD })
  local results = {}
  -- spawn_and_wait twice, not ensure: as two Neovims would, each starts its own hearthd.
  for i = 1, 2 do
    start.spawn_and_wait(sock, o, function(err)
      results[i] = err or true
    end)
  end
  T.wait_for(function()
    return results[1] ~= nil and results[2] ~= nil
  end, "both starts", 30000)
  T.eq(true, results[1], "first start")
  T.eq(true, results[2], "second start")
  T.wait_for(function()
    return #daemons_on(sock) == 1
  end, "the loser to exit", 10000)
  local log = table.concat(vim.fn.readfile(start.log_path(sock)), "\n")
  T.ok(log:find("already running", 1, true), "log: " .. log)
end)

T.test("start: three Neovims starting at once end with one daemon serving all their clients", function()
  local sock = fresh_socket()
  local root = os.getenv("HEARTH_NVIM_ROOT")
  local code = table.concat({
    "local hc = require('hearth.client')",
    "local n, ok = 0, 0",
    "local cs = {}",
    "for i = 1, 5 do cs[i] = hc.connect({ socket = os.getenv('HEARTH_TEST_SOCKET'), daemon = os.getenv('HEARTHD') }, function(e)",
    "  n = n + 1; if e then io.stdout:write(tostring(e), '\\n') else ok = ok + 1 end end) end",
    "vim.wait(30000, function() return n == 5 end, 5)",
    "io.stdout:write('connected=' .. ok .. '\\n')",
    "vim.cmd('qall!')",
  }, " ")
  local env = {}
  for k, v in pairs(uv.os_environ()) do
    env[#env + 1] = k .. "=" .. v
  end
  env[#env + 1] = "HEARTH_TEST_SOCKET=" .. sock
  local outs, exits = {}, {}
  for i = 1, 3 do
    outs[i] = ""
    local out = uv.new_pipe(false)
    local ch = { exited = false }
    local handle, perr
    handle, perr = uv.spawn(vim.v.progpath, {
      args = { "--headless", "-u", "NONE", "-i", "NONE", "-n", "--cmd", "set rtp^=" .. root, "-c", "lua " .. code },
      stdio = { nil, out, nil },
      env = env,
    }, function(c)
      exits[i], ch.exited = c, true
      handle:close()
    end)
    T.ok(handle, "spawn " .. vim.v.progpath .. ": " .. tostring(perr))
    ch.handle = handle
    table.insert(children, ch)
    out:read_start(function(_, data)
      if data then
        outs[i] = outs[i] .. data
      elseif not out:is_closing() then
        out:close()
      end
    end)
  end
  T.wait_for(function()
    return exits[1] and exits[2] and exits[3] and outs[1]:find("connected=") and outs[2]:find("connected=") and outs[3]:find("connected=")
  end, "three Neovims done", 60000)
  for i = 1, 3 do
    T.ok(outs[i]:find("connected=5", 1, true), "Neovim " .. i .. ": " .. outs[i])
  end
  -- A hearthd another Neovim started may still be on its way to "already running".
  T.wait_for(function()
    return #daemons_on(sock) == 1
  end, "one hearthd process to remain", 10000)
end)

T.test("start: a socket folder others can reach is refused with the daemon's advice; nothing is made in it", function()
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, "p")
  uv.fs_chmod(dir, tonumber("755", 8))
  local sock = dir .. "/hearthd.sock"
  table.insert(sockets, sock)
  local _, err = connect({ socket = sock, daemon = HEARTHD })
  T.eq(codes.START_FAILED, err.code, "code")
  T.ok(err.message:find("refusing to use socket folder " .. dir .. ": other users have access to it (mode 755)", 1, true), err.message)
  T.ok(err.message:find(string.format("%s/hearth-%d/hearthd.sock", dir, uv.getuid()), 1, true), "advises a subfolder: " .. err.message)
  T.eq("755", mode_of(dir), "the folder is left as it is")
  T.eq({}, vim.fn.readdir(dir), "no log, no socket")
  T.eq(0, #daemons_on(sock), "no daemon")
end)

T.test("start: a socket folder that is a symbolic link is refused", function()
  local real = vim.fn.tempname()
  vim.fn.mkdir(real, "p", tonumber("700", 8))
  local link = vim.fn.tempname()
  T.ok(uv.fs_symlink(real, link), "symlink")
  local sock = link .. "/hearthd.sock"
  table.insert(sockets, real .. "/hearthd.sock")
  local _, err = connect({ socket = sock, daemon = HEARTHD })
  os.remove(link)
  T.eq(codes.START_FAILED, err.code, "code")
  T.ok(err.message:find("refusing to use socket folder " .. link .. ": it is a symbolic link", 1, true), err.message)
  T.eq({}, vim.fn.readdir(real), "nothing made behind the link")
end)

T.test("start: a daemon that exits at once fails with its exit code, the socket and the log", function()
  local sock = fresh_socket()
  local got
  local c = hclient.new({ socket = sock, daemon = "/bin/false" })
  c:request("echo", 1, nil, function(e)
    got = e
  end)
  local _, err = connect({ socket = sock, daemon = "/bin/false" })
  T.wait_for(function()
    return got ~= nil
  end, "the queued call's failure")
  for _, e in ipairs({ err, got }) do
    T.eq(codes.START_FAILED, e.code, "code")
    T.ok(e.message:find("/bin/false exited (code 1)", 1, true), e.message)
    T.ok(e.message:find(sock, 1, true), "names the socket: " .. e.message)
    T.ok(e.message:find(start.log_path(sock), 1, true), "names the log: " .. e.message)
    T.ok(e.message:find("HEARTH_NO_START=1", 1, true), "says what to do: " .. e.message)
    T.eq(1, e.data.exit_code, "data.exit_code")
  end
end)

T.test("start: a missing binary fails saying it cannot run it", function()
  local sock = fresh_socket()
  local _, err = connect({ socket = sock, daemon = "/nonexistent/hearthd" })
  T.eq(codes.START_FAILED, err.code, "code")
  T.ok(err.message:find("cannot run /nonexistent/hearthd: ENOENT", 1, true), err.message)
  T.ok(err.message:find("$HEARTHD", 1, true), "says what to do: " .. err.message)
end)

T.test("start: no daemon option, $HEARTHD empty, none on PATH: says none was found", function()
  local sock = fresh_socket()
  local saved_hearthd, saved_path = os.getenv("HEARTHD"), os.getenv("PATH")
  local empty = vim.fn.tempname()
  vim.fn.mkdir(empty, "p")
  local ok, e = pcall(function()
    vim.env.HEARTHD = ""
    vim.env.PATH = empty
    local _, err = connect({ socket = sock })
    T.eq(codes.START_FAILED, err.code, "code")
    T.ok(err.message:find("no hearthd to start", 1, true), err.message)
    T.ok(err.message:find("install hearthd", 1, true), "says what to do: " .. err.message)
    vim.env.HEARTHD = HEARTHD
    T.eq(HEARTHD, start.find_daemon(nil), "$HEARTHD used when set")
    T.eq("/x/hearthd", start.find_daemon("/x/hearthd"), "the daemon option before $HEARTHD")
    vim.env.HEARTHD = ""
    local bin = empty .. "/hearthd"
    vim.fn.writefile({ "#!/bin/sh" }, bin)
    T.eq(nil, start.find_daemon(nil), "not executable: not found")
    vim.fn.setfperm(bin, "rwx------")
    T.eq(bin, start.find_daemon(nil), "hearthd on PATH")
  end)
  vim.env.HEARTHD, vim.env.PATH = saved_hearthd, saved_path
  vim.fn.delete(empty, "rf")
  assert(ok, e)
end)

T.test("start: a daemon that never answers fails after the ready timeout, naming the socket and the log", function()
  local sock = fresh_socket()
  local script = vim.fn.tempname()
  vim.fn.writefile({ "#!/bin/sh", "exec sleep 60" }, script)
  vim.fn.setfperm(script, "rwx------")
  local _, err = connect({ socket = sock, daemon = script, ready_timeout_ms = 300 })
  if start.last_pid then
    table.insert(extra_pids, start.last_pid)
  end
  vim.fn.delete(script)
  T.eq(codes.START_FAILED, err.code, "code")
  T.ok(err.message:find("no daemon answered on " .. sock .. " within 300 ms", 1, true), err.message)
  T.ok(err.message:find(start.log_path(sock), 1, true), "names the log: " .. err.message)
end)

T.test("start: HEARTH_NO_START=1 and start = false fail like a plain connect and start nothing", function()
  local sock = fresh_socket()
  local _, err = connect({ socket = sock, daemon = HEARTHD, start = false })
  T.eq(codes.NOT_CONNECTED, err.code, "start = false")
  T.ok(err.message:find("cannot connect to " .. sock .. ": ENOENT", 1, true), err.message)
  local saved = os.getenv("HEARTH_NO_START")
  vim.env.HEARTH_NO_START = "1"
  local ok, e = pcall(function()
    local _, err2 = connect({ socket = sock, daemon = HEARTHD })
    T.eq(codes.NOT_CONNECTED, err2.code, "HEARTH_NO_START=1")
  end)
  vim.env.HEARTH_NO_START = saved
  assert(ok, e)
  T.eq(nil, uv.fs_stat(start.dir_of(sock)), "no folder made, no log, no daemon")
  T.eq(0, #daemons_on(sock), "no daemon")
end)

-- Waits until the one process serving socket is not old_pid (the old daemon may still be
-- exiting after it let go of the socket and its lock); returns the pids.
local function only_new_daemon(sock, old_pid)
  local pids
  T.wait_for(function()
    pids = daemons_on(sock)
    return #pids == 1 and pids[1] ~= old_pid
  end, "only the new daemon to remain", 10000)
  return pids
end

-- Starts a daemon announcing build id "old" (through a client that expects "old").
local function old_daemon(sock)
  local c, err = connect({ socket = sock, daemon = HEARTHD, build_id = "old" })
  T.eq(nil, err, "start the old daemon")
  T.eq("old", c.hello.build_id, "old build id")
  local pids = daemons_on(sock)
  T.eq(1, #pids, "one old daemon")
  return c, pids[1]
end

T.test("replace: a client expecting build 'new' shuts the 'old' daemon down and starts its own", function()
  local sock = fresh_socket()
  local old, old_pid = old_daemon(sock)
  local lost
  old:on_close(function(e)
    lost = e
  end)
  local c, err = connect({ socket = sock, daemon = HEARTHD, build_id = "new" })
  T.eq(nil, err, "connect")
  T.eq("new", c.hello.build_id, "the new daemon answers")
  T.wait_for(function()
    return lost ~= nil
  end, "the old daemon's client sees its connection end")
  local pids = only_new_daemon(sock, old_pid)
  local res = c:request_sync("echo", "after", nil, 10000)
  T.eq("after", res, "echo on the new daemon")
  c:close()
end)

T.test("replace: 20 clients expecting 'new' at once replace the 'old' daemon once", function()
  local sock = fresh_socket()
  local old, old_pid = old_daemon(sock)
  old:close()
  local clients, outcomes = {}, {}
  for i = 1, 20 do
    clients[i] = hclient.new({ socket = sock, daemon = HEARTHD, build_id = "new" })
  end
  for i = 1, 20 do
    clients[i]:connect(function(e)
      outcomes[i] = e or true
    end)
  end
  T.wait_for(function()
    return vim.tbl_count(outcomes) == 20
  end, "20 outcomes", 30000)
  for i = 1, 20 do
    T.eq(true, outcomes[i], "client " .. i)
    T.eq("new", clients[i].hello.build_id, "client " .. i .. " on the new daemon")
  end
  T.eq(2, start.spawned[sock], "the old daemon and one replacement started")
  local pids = only_new_daemon(sock, old_pid)
  for _, c in ipairs(clients) do
    c:close()
  end
end)

T.test("replace: HEARTH_NO_REPLACE=1, replace = false and version 1 keep the 'old' daemon", function()
  local sock = fresh_socket()
  local _, old_pid = old_daemon(sock)
  local saved = os.getenv("HEARTH_NO_REPLACE")
  vim.env.HEARTH_NO_REPLACE = "1"
  local ok, e = pcall(function()
    local c, err = connect({ socket = sock, daemon = HEARTHD, build_id = "new" })
    T.eq(nil, err, "HEARTH_NO_REPLACE=1: connect")
    T.eq("old", c.hello.build_id, "HEARTH_NO_REPLACE=1 keeps it")
    c:close()
  end)
  vim.env.HEARTH_NO_REPLACE = saved
  assert(ok, e)
  local c2, err2 = connect({ socket = sock, daemon = HEARTHD, build_id = "new", replace = false })
  T.eq(nil, err2, "replace = false: connect")
  T.eq("old", c2.hello.build_id, "replace = false keeps it")
  c2:close()
  local c3, err3 = connect({ socket = sock, daemon = HEARTHD, build_id = "new", version = 1 })
  T.eq(nil, err3, "version 1: connect")
  T.eq(1, c3.version, "version 1 spoken")
  c3:close()
  T.eq({ old_pid }, daemons_on(sock), "the old daemon still serves")
end)

T.test("replace: a daemon that is not hearthd is never replaced", function()
  local fake = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/fake_daemon.lua").start()
  local c, err = connect({ socket = fake.path, daemon = HEARTHD, build_id = "new" })
  T.eq(nil, err, "connect")
  T.eq("fake 0", c.hello.server, "the fake daemon (no build_id) still answers")
  T.eq(false, c:_hello_is_stale({ server = "fake 0", protocol = 2 }, 2), "not hearthd")
  T.eq(true, c:_hello_is_stale({ server = "hearthd 0.1.0", protocol = 2 }, 2), "a version 2 hearthd without build_id")
  T.eq(false, c:_hello_is_stale({ server = "hearthd 0.1.0", protocol = 2, build_id = "0.1.0+new" }, 2), "same build")
  T.eq(false, c:_hello_is_stale({ server = "hearthd 0.1.0", protocol = 1, build_id = "x" }, 1), "version 1")
  T.eq(false, start.is_stale({ server = "hearthd 0.1.0", protocol = 2, build_id = "x" }, 2, nil), "expected id unknown")
  T.eq(true, start.is_stale({ server = "hearthd 0.1.0", protocol = 2, build_id = "0.1.0+old" }, 2, "new"), "another build")
  c:close()
  fake:stop()
end)

T.run("start_live_spec")
