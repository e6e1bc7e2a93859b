-- test/editor_fake_spec.lua owns the editor-integration tests against the FAKE daemon of
-- test/fake_daemon.lua (hearthd does not serve the language service yet): real buffers,
-- real edits (normal-mode commands and nvim_buf_set_text, with multibyte text and emoji
-- before the edit), the doc/change ranges the fake recorded in UTF-16 columns, the fake's
-- mirror of each document equal to the buffer, completion through 'omnifunc', doc/close,
-- and the version 1 fallback.

local T = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/helper.lua")
local Fake = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/fake_daemon.lua")
local hclient = require("hearth.client")
local hearth = require("hearth")
local api = vim.api

local fake = Fake.start({ words = { "größenordnung", "counter_total" } })
hearth.setup({ socket = fake.path })
T.after_all = function()
  fake:stop()
end

local n_buf = 0
local function new_buffer(lines)
  n_buf = n_buf + 1
  vim.cmd("enew")
  local buf = api.nvim_get_current_buf()
  api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  api.nvim_buf_set_name(buf, vim.fn.tempname() .. "/doc" .. n_buf .. ".txt")
  hearth.attach(buf)
  local uri = vim.uri_from_bufnr(buf)
  T.wait_for(function()
    return fake.docs[uri] ~= nil
  end, "doc/open at the fake")
  return buf, uri
end

local function buffer_text(buf)
  return table.concat(api.nvim_buf_get_lines(buf, 0, -1, false), "\n") .. "\n"
end

-- Waits until the fake's mirror equals the buffer, at a version not below b:changedtick.
local function wait_mirror(buf, uri)
  local want = buffer_text(buf)
  local tick = api.nvim_buf_get_var(buf, "changedtick")
  local ok = vim.wait(10000, function()
    local d = fake.docs[uri]
    return #fake.errors > 0 or (d and d.text == want)
  end, 2)
  T.eq({}, fake.errors, "errors applying changes at the fake")
  T.eq(want, fake.docs[uri].text, "fake mirror (wait " .. tostring(ok) .. ")")
  T.ok(fake.docs[uri].version >= tick, "version " .. fake.docs[uri].version .. " >= b:changedtick " .. tick)
end

local function changes_for(uri, from)
  local out = {}
  for i, p in ipairs(fake:notifications_named("doc/change")) do
    if p.uri == uri and i > (from or 0) then
      for _, ch in ipairs(p.changes) do
        table.insert(out, ch)
      end
    end
  end
  return out
end

local function n_changes()
  return #fake:notifications_named("doc/change")
end

T.test("fake daemon: attach sends doc/open with the text and b:changedtick", function()
  local buf, uri = new_buffer({ "ä😀", "second" })
  local opens = fake:notifications_named("doc/open")
  local open = opens[#opens]
  T.eq(uri, open.uri, "uri")
  T.eq("ä😀\nsecond\n", open.text, "text")
  T.eq(api.nvim_buf_get_var(buf, "changedtick"), open.version, "version")
end)

T.test("fake daemon: nvim_buf_set_text after é and 😀 sends UTF-16 ranges", function()
  local buf, uri = new_buffer({ "é😀x", "zz" })
  local before = n_changes()
  -- insert "Z" after "é😀" (bytes 6, UTF-16 3)
  api.nvim_buf_set_text(buf, 0, 6, 0, 6, { "Z" })
  wait_mirror(buf, uri)
  T.eq({ { range = { start = { line = 0, character = 3 }, ["end"] = { line = 0, character = 3 } }, text = "Z" } },
    changes_for(uri, before), "insert")
  -- delete the emoji: bytes 2..6 are UTF-16 1..3
  before = n_changes()
  api.nvim_buf_set_text(buf, 0, 2, 0, 6, { "" })
  wait_mirror(buf, uri)
  T.eq({ { range = { start = { line = 0, character = 1 }, ["end"] = { line = 0, character = 3 } }, text = "" } },
    changes_for(uri, before), "delete emoji")
  -- replace from after "é" on line 0 to after "z" on line 1 with two lines holding an emoji
  before = n_changes()
  api.nvim_buf_set_text(buf, 0, 2, 1, 1, { "🎉a", "b" })
  wait_mirror(buf, uri)
  T.eq({ { range = { start = { line = 0, character = 1 }, ["end"] = { line = 1, character = 1 } }, text = "🎉a\nb" } },
    changes_for(uri, before), "multi-line replace")
  T.eq({ "é🎉a", "bz" }, api.nvim_buf_get_lines(buf, 0, -1, false), "buffer")
end)

T.test("fake daemon: typing in insert mode after multibyte text mirrors each edit", function()
  local buf, uri = new_buffer({ "naïve 😀", "end" })
  local before = n_changes()
  api.nvim_win_set_cursor(0, { 1, 0 })
  vim.cmd("normal! A größe🎉")
  wait_mirror(buf, uri)
  local chs = changes_for(uri, before)
  T.ok(#chs >= 1, "at least one change")
  -- the first insertion starts at the end of "naïve 😀": 5 + 1 + 2 = 8 UTF-16 units
  T.eq({ line = 0, character = 8 }, chs[1].range.start, "first change start")
  T.eq({ line = 0, character = 8 }, chs[1].range["end"], "first change end")
  T.eq({ "naïve 😀 größe🎉", "end" }, api.nvim_buf_get_lines(buf, 0, -1, false), "buffer")
end)

T.test("fake daemon: normal-mode line edits, join, undo and :%d keep the mirror equal", function()
  local buf, uri = new_buffer({ "α", "b😀c", "dd", "last" })
  for _, cmd in ipairs({
    "normal! Gdd",
    "normal! Go🎉 new",
    "normal! ggJ",
    "normal! 2Gx",
    "normal! 2Gx",
    "normal! u",
    "normal! u",
    "normal! \18",
    "normal! ggyyP",
    "%d",
    "normal! ifresh",
    "lua vim.api.nvim_buf_set_lines(0, -1, -1, false, {'p', 'q'})",
    "lua vim.api.nvim_buf_set_lines(0, 0, -1, false, {})",
    "normal! iagain😀",
  }) do
    vim.cmd("silent " .. cmd)
    wait_mirror(buf, uri)
  end
end)

T.test("fake daemon: omnifunc sends complete (supersede, deadline, UTF-16) and returns items", function()
  local buf, uri = new_buffer({ "let größe_total = 1", "😀 grö + 1" })
  T.eq("v:lua.require'hearth'.omnifunc", vim.bo[buf].omnifunc, "'omnifunc' set on attach")
  local line = "😀 grö" -- the cursor is after it, on the space
  api.nvim_win_set_cursor(0, { 2, #line })
  local start = hearth.omnifunc(1, "")
  T.eq(#line - #"grö", start, "start column (bytes)")
  local req = fake.requests[#fake.requests]
  T.eq("complete", req.method, "method")
  T.eq({ line = 1, character = 6 }, req.params.position, "position in UTF-16")
  T.eq(uri, req.params.uri, "uri")
  T.eq("complete", req.opts.supersede, "supersede key")
  T.eq(hearth.config.complete_deadline_ms, req.opts.deadline_ms, "deadline")
  local items = hearth.omnifunc(0, "grö")
  T.eq({ "größe_total", "größenordnung" }, vim.tbl_map(function(i)
    return i.word
  end, items), "words")
  T.eq("d", items[1].kind, "document item")
  T.eq("w", items[2].kind, "workspace item")
end)

T.test("fake daemon: completion sees the edit typed just before it", function()
  local buf = new_buffer({ "counter_local", "" })
  api.nvim_win_set_cursor(0, { 2, 0 })
  vim.cmd("normal! icou = 1")
  api.nvim_win_set_cursor(0, { 2, 3 })
  T.eq(0, hearth.omnifunc(1, ""), "start")
  T.eq({ "counter_local", "counter_total" }, vim.tbl_map(function(i)
    return i.word
  end, hearth.omnifunc(0, "cou")), "words")
  T.ok(buf, "buffer")
end)

T.test("fake daemon: typing then <C-x><C-o> in insert mode inserts the completion", function()
  local buf, uri = new_buffer({ "unique_counter größe", "x" })
  api.nvim_win_set_cursor(0, { 2, 0 })
  local keys = api.nvim_replace_termcodes("A uniq<C-x><C-o><Esc>", true, false, true)
  api.nvim_feedkeys(keys, "xt", false)
  T.eq({ "unique_counter größe", "x unique_counter" }, api.nvim_buf_get_lines(buf, 0, -1, false), "buffer")
  wait_mirror(buf, uri)
  local req = fake.requests[#fake.requests]
  T.eq("complete", req.method, "method")
  T.eq({ line = 1, character = 6 }, req.params.position, "asked after the typed text")
end)

T.test("fake daemon: the nvim-cmp source (with a stand-in cmp module) completes", function()
  local registered = {}
  package.loaded.cmp = {
    register_source = function(name, src)
      registered[name] = src
    end,
  }
  local ok, err = pcall(function()
    hearth.setup({ socket = fake.path })
    local src = registered.hearth
    T.ok(src, "source registered")
    new_buffer({ "cmp_candidate", "cmp + 1" })
    api.nvim_win_set_cursor(0, { 2, 3 })
    T.ok(src:is_available(), "available in an attached buffer")
    local got
    src:complete({}, function(resp)
      got = resp or false
    end)
    T.wait_for(function()
      return got ~= nil
    end, "cmp callback")
    T.eq({ { label = "cmp_candidate", detail = "fake", kind = 1 } }, got.items, "items")
    T.eq(false, got.isIncomplete, "isIncomplete")
  end)
  package.loaded.cmp = nil
  assert(ok, err)
end)

T.test("fake daemon: doc/close when the buffer is wiped", function()
  local buf, uri = new_buffer({ "bye" })
  vim.cmd("bwipeout! " .. buf)
  T.wait_for(function()
    for _, p in ipairs(fake:notifications_named("doc/close")) do
      if p.uri == uri then
        return true
      end
    end
  end, "doc/close")
  T.eq(nil, fake.docs[uri], "closed at the fake")
  T.eq(false, hearth.is_attached(buf), "detached")
end)

T.test("fake daemon: after the connection is lost, the next edit reconnects and reopens the document", function()
  local buf, uri = new_buffer({ "one ü" })
  local opens_before = #fake:notifications_named("doc/open")
  local old = hearth.client()
  old:close()
  api.nvim_buf_set_text(buf, 0, 0, 0, 0, { "😀" })
  T.wait_for(function()
    return #fake:notifications_named("doc/open") > opens_before
  end, "doc/open on the new connection")
  T.ok(hearth.client() ~= old, "a new client")
  wait_mirror(buf, uri)
  api.nvim_buf_set_text(buf, 0, 4, 0, 4, { "x" })
  wait_mirror(buf, uri)
end)

T.test("fake daemon: :HearthIndex streams progress to the message area and reports the result", function()
  vim.cmd("runtime plugin/hearth.lua")
  local echoed, notified = {}, {}
  local echo, notify = api.nvim_echo, vim.notify
  api.nvim_echo = function(chunks)
    table.insert(echoed, chunks[1][1])
  end
  vim.notify = function(msg)
    table.insert(notified, msg)
  end
  local ok, err = pcall(function()
    local dir = vim.fn.tempname()
    vim.fn.mkdir(dir, "p")
    vim.cmd("HearthIndex " .. dir)
    T.wait_for(function()
      return #notified > 0
    end, "the final message")
    local req = fake.requests[#fake.requests]
    T.eq("workspace/index", req.method, "method")
    T.eq(dir, req.params.root, "root")
    T.eq(true, req.opts.stream, "stream asked for")
    T.ok(vim.tbl_contains(echoed, "hearth: indexing " .. dir .. ": 2/2 files"), "progress: " .. vim.inspect(echoed))
    T.ok(notified[1]:find("2 files, 10 identifiers", 1, true), "result: " .. notified[1])
  end)
  api.nvim_echo, vim.notify = echo, notify
  assert(ok, err)
end)

T.test("fake daemon: :HearthStatus shows hello and stats", function()
  vim.cmd("runtime plugin/hearth.lua")
  local lines = hearth.status(false)
  T.ok(lines[2]:find("fake 0 (test), protocol 2", 1, true), vim.inspect(lines))
  T.ok(lines[3]:find("requests", 1, true), vim.inspect(lines))
  T.eq(2, vim.fn.exists(":HearthStatus"), "command defined (2: a full match)")
end)

T.test("fake daemon: a daemon that speaks only version 1 gets $/hello again in version 1", function()
  local old = Fake.start({ versions = { 1 } })
  local c = hclient.connect({ socket = old.path })
  local res, err = c:request_sync("echo", { hi = 1 }, { deadline_ms = 50, supersede = "x" }, 5000)
  T.eq(nil, err, "err")
  T.eq(1, res.hi, "echo")
  T.eq(1, c.version, "client speaks version 1")
  T.eq({ 1 }, old.hellos, "hellos answered")
  local echo = old.requests[#old.requests]
  T.eq(1, echo.version, "request version")
  T.eq(nil, echo.opts, "no options in version 1")
  c:close()
  old:stop()
end)

T.run("editor_fake_spec")
