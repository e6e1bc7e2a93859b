-- test/helper.lua owns the tiny test harness the specs share: registering tests, a few
-- assertions, waiting on a condition with a bounded timeout (never a sleep), and exiting
-- Neovim with status 0 when every test passed and 1 otherwise. It knows nothing about
-- hearth; helpers for daemons live in test/support.lua.

local T = { tests = {}, root = os.getenv("HEARTH_NVIM_ROOT") or vim.fn.getcwd() .. "/clients/nvim" }

local function out(s)
  io.stdout:write(s, "\n")
  io.stdout:flush()
end
T.out = out

function T.test(name, fn)
  table.insert(T.tests, { name = name, fn = fn })
end

local function fmt(v)
  return type(v) == "string" and string.format("%q", v) or vim.inspect(v)
end

function T.eq(want, got, what)
  if not vim.deep_equal(want, got) then
    error(string.format("%s: want %s, got %s", what or "eq", fmt(want), fmt(got)), 2)
  end
end

function T.ok(cond, what)
  if not cond then
    error("not true: " .. tostring(what), 2)
  end
  return cond
end

--- Runs the event loop until cond() is true; fails the test after timeout_ms (a guard
--- against hangs, not a timing assertion).
function T.wait_for(cond, what, timeout_ms)
  if not vim.wait(timeout_ms or 10000, cond, 2) then
    error("timed out waiting for " .. tostring(what), 2)
  end
end

function T.hex(s)
  return (s:gsub(".", function(c)
    return string.format("%02x", c:byte())
  end))
end

function T.unhex(h)
  h = h:gsub("[^%x]", "")
  return (h:gsub("%x%x", function(x)
    return string.char(tonumber(x, 16))
  end))
end

--- Runs every registered test and exits Neovim (status 0 when all passed).
function T.run(file)
  local failed = 0
  for _, t in ipairs(T.tests) do
    local ok, err = xpcall(t.fn, debug.traceback)
    if ok then
      out("ok   - " .. t.name)
    else
      failed = failed + 1
      out("FAIL - " .. t.name .. "\n" .. tostring(err))
    end
    if T.after_each then
      pcall(T.after_each)
    end
  end
  out(string.format("%s: %d passed, %d failed", file or "spec", #T.tests - failed, failed))
  if T.after_all then
    pcall(T.after_all)
  end
  if failed > 0 or #T.tests == 0 then
    vim.cmd("1cquit")
  else
    vim.cmd("qall!")
  end
end

return T
