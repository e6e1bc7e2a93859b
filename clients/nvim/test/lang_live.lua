-- test/lang_live.lua owns a check of the editor integration against the REAL language
-- service (hearth-lang), for a daemon that serves it: real buffers and edits (multibyte,
-- emoji, line edits, join, undo), completion through 'omnifunc', and after every edit a
-- probe that the service's text agrees with the buffer (the `prefix` it reports at the end
-- of each line), with no `$/error` from the service. Not a *_spec.lua yet: hearthd does
-- not serve the language service today. Run it with a daemon that does:
--
--   HEARTHD=/path/to/daemon-with-lang clients/nvim/test/run.sh --file clients/nvim/test/lang_live.lua

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

-- The identifier chars at the end of line (ASCII or letters of other scripts; the test
-- texts put a space before every emoji so the two never touch).
local function trailing_ident(line)
  return line:match("([%w_\128-\255]*)$")
end

-- For every line, asks `complete` at its end and checks the service's prefix.
local function probe(buf, what)
  hearth._flush(buf)
  local uri = vim.uri_from_bufnr(buf)
  local lines = api.nvim_buf_get_lines(buf, 0, -1, false)
  for i, line in ipairs(lines) do
    local _, u16 = vim.str_utfindex(line)
    local res, err = hearth.client():request_sync("complete", { uri = uri, position = { line = i - 1, character = u16 } }, nil, 5000)
    T.eq(nil, err, what .. ": complete on line " .. i)
    local want = trailing_ident(line)
    if want:match("^%d") or want:match("[\240-\247]") then
      want = ""
    end
    T.eq(want, res.prefix, what .. ": prefix at the end of line " .. i .. " " .. string.format("%q", line))
  end
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

T.run("lang_live")
