-- test/support.lua owns what the live specs need around a real hearthd: starting one on a
-- temporary socket (binary from $HEARTHD, default target/debug/hearthd), waiting until its
-- socket exists, killing it, and removing it at the end. Assertions are test/helper.lua's.

local uv = vim.uv or vim.loop

local S = { spawned = {} }

function S.hearthd_path()
  local p = os.getenv("HEARTHD")
  if not p or p == "" then
    p = (os.getenv("HEARTH_REPO_ROOT") or vim.fn.getcwd()) .. "/target/debug/hearthd"
  end
  return p
end

--- Starts hearthd with extra args on a fresh socket; returns a handle with .sock, .pid,
--- :kill(signal), :stop(). Fails the calling test when it does not come up in 20 s.
function S.spawn_hearthd(T, args)
  local bin = S.hearthd_path()
  T.ok(vim.fn.executable(bin) == 1, "hearthd binary at " .. bin .. " (build it: cargo build -p hearthd)")
  local dir = vim.fn.tempname()
  local d = { sock = dir .. "/hearthd.sock", exited = false, log = {} }
  local full = { "--socket", d.sock }
  vim.list_extend(full, args or {})
  local stderr = uv.new_pipe(false)
  local stdout = uv.new_pipe(false)
  local handle, pid = uv.spawn(bin, { args = full, stdio = { nil, stdout, stderr } }, function(code, signal)
    d.exited, d.code, d.signal = true, code, signal
  end)
  T.ok(handle, "spawn hearthd: " .. tostring(pid))
  d.handle, d.pid = handle, pid
  table.insert(S.spawned, d)
  for _, p in ipairs({ stdout, stderr }) do
    p:read_start(function(_, data)
      if data then
        table.insert(d.log, data)
      else
        p:close()
      end
    end)
  end
  T.wait_for(function()
    local st = uv.fs_stat(d.sock)
    return d.exited or (st and st.type == "socket")
  end, "hearthd's socket", 20000)
  T.ok(not d.exited, "hearthd exited at start: " .. table.concat(d.log))
  function d:kill(signal)
    if not self.exited then
      self.handle:kill(signal or "sigkill")
    end
  end
  function d:stop()
    self:kill("sigterm")
    vim.wait(5000, function()
      return self.exited
    end, 5)
    self:kill("sigkill")
    vim.fn.delete(dir, "rf")
  end
  return d
end

--- Stops every daemon this process started (for after_all, so failed tests leave none).
function S.cleanup()
  for _, d in ipairs(S.spawned) do
    pcall(d.stop, d)
  end
end

return S
