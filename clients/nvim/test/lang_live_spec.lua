-- test/lang_live_spec.lua owns a check of the editor integration against the REAL language
-- service (hearth-lang), for a daemon that serves it: real buffers and edits (multibyte,
-- emoji, line edits, join, undo), completion through 'omnifunc', and after every edit a
-- probe that the service's text agrees with the buffer (the `prefix` it reports at every
-- character boundary of every line), with no `$/error` from the service. hearthd serves the
-- language service, so this runs with every other spec:
--
--   clients/nvim/test/run.sh lang_live

local T = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/helper.lua")
local S = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/support.lua")
local hearth = require("hearth")
local api = vim.api

local daemon = S.spawn_hearthd(T)
T.after_all = S.cleanup
hearth.setup({ socket = daemon.sock })
local errors = {}
hearth.client():on_notification("$/error", function(p)
  table.insert(errors, p)
end)

local n_buf = 0
local function new_buffer(lines)
  n_buf = n_buf + 1
  vim.cmd("enew")
  local buf = api.nvim_get_current_buf()
  api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  api.nvim_buf_set_name(buf, vim.fn.tempname() .. "/live" .. n_buf .. ".txt")
  hearth.attach(buf)
  return buf
end

-- The characters of line with, for each, whether it is an identifier character by the
-- service's rule (docs/LANGUAGE.md §4) as far as these test texts need: ASCII letters,
-- digits and _, and the 2- and 3-byte letters used here (é, ü, ö, ß, ï, α); emoji are not.
local function chars(line)
  local out = {}
  for ch in line:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    local ident = ch:match("^[%w_]$") ~= nil or (#ch == 2 or #ch == 3)
    table.insert(out, { ch = ch, ident = ident, units = #ch == 4 and 2 or 1 })
  end
  return out
end

-- Asks `complete` at every character boundary of every line and checks the prefix the
-- service reports against the buffer: the service's text must equal the buffer's.
local function probe(buf, what)
  hearth._flush(buf)
  local uri = vim.uri_from_bufnr(buf)
  local lines = api.nvim_buf_get_lines(buf, 0, -1, false)
  local c = hearth.client()
  local pending, failures = 0, {}
  for i, line in ipairs(lines) do
    local cs = chars(line)
    local u16 = 0
    for k = 0, #cs do
      if k > 0 then
        u16 = u16 + cs[k].units
      end
      local j = k
      while j >= 1 and cs[j].ident do
        j = j - 1
      end
      local want = {}
      for m = j + 1, k do
        want[#want + 1] = cs[m].ch
      end
      want = table.concat(want)
      if want:match("^%d") then
        want = ""
      end
      pending = pending + 1
      c:request("complete", { uri = uri, position = { line = i - 1, character = u16 } }, nil, function(err, res)
        pending = pending - 1
        local got = err and tostring(err) or res.prefix
        if got ~= want then
          table.insert(failures, string.format("line %d %q at %d: want %q, got %q", i, line, u16, want, got))
        end
      end)
    end
  end
  T.wait_for(function()
    return pending == 0
  end, what .. ": the probes")
  T.eq({}, failures, what .. ": prefixes")
  T.eq({}, errors, what .. ": $/error from the service")
end

T.test("real language service: omnifunc completes after multibyte text", function()
  local buf = new_buffer({ "let größe_total = größenordnung", "😀 grö + 1" })
  api.nvim_win_set_cursor(0, { 2, #"😀 grö" })
  T.eq(#"😀 ", hearth.omnifunc(1, ""), "start column")
  local words = vim.tbl_map(function(i)
    return i.word
  end, hearth.omnifunc(0, "grö"))
  T.ok(vim.tbl_contains(words, "größe_total"), "größe_total in " .. vim.inspect(words))
  T.ok(vim.tbl_contains(words, "größenordnung"), "größenordnung in " .. vim.inspect(words))
  probe(buf, "after open")
end)

T.test("real language service: set_text edits around emoji keep the service's text equal", function()
  local buf = new_buffer({ "é 😀 alpha", "zz beta" })
  for i, e in ipairs({
    { 0, #"é 😀 ", 0, #"é 😀 ", { "pre_" } },
    { 0, 0, 0, #"é", { "ü🎉 x" } },
    { 0, #"ü🎉 x", 1, 2, { " gamma", "🎉 delta" } },
    { 1, 0, 1, 0, { "", "new line" } },
  }) do
    api.nvim_buf_set_text(buf, e[1], e[2], e[3], e[4], e[5])
    probe(buf, "edit " .. i)
  end
end)

T.test("real language service: typing, line edits, join, undo, :%d keep the service's text equal", function()
  local buf = new_buffer({ "naïve 😀 word", "b 😀 c", "dd", "last" })
  for _, cmd in ipairs({
    "normal! A größe",
    "normal! Gdd",
    "normal! Go🎉 new",
    "normal! ggJ",
    "normal! 2Gx",
    "normal! u",
    "normal! u",
    "normal! \18",
    "normal! ggyyP",
    "%d",
    "normal! ifresh",
    "lua vim.api.nvim_buf_set_lines(0, -1, -1, false, {'p', 'q 😀 r'})",
    "lua vim.api.nvim_buf_set_lines(0, 0, -1, false, {})",
    "normal! iagain 😀 end",
  }) do
    vim.cmd("silent " .. cmd)
    probe(buf, cmd)
  end
end)

T.test("real language service: :HearthIndex indexes a folder and completion offers its words", function()
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, "p")
  vim.fn.writefile({ "fn workspace_only_ident() {}" }, dir .. "/a.rs")
  local done
  hearth.index(dir, function(err, stats)
    done = { err = err, stats = stats }
  end)
  T.wait_for(function()
    return done
  end, "index result")
  T.eq(nil, done.err, "err")
  T.eq(1, done.stats.files, "files")
  new_buffer({ "x workspace_on + 1" })
  api.nvim_win_set_cursor(0, { 1, #"x workspace_on" })
  T.eq(2, hearth.omnifunc(1, ""), "start")
  local items = hearth.omnifunc(0, "workspace_on")
  T.eq("workspace_only_ident", items[1] and items[1].word, "first item")
  T.eq("w", items[1].kind, "from the workspace")
end)

T.run("lang_live")
