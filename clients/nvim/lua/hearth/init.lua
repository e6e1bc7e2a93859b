-- hearth (init.lua) owns the editor integration: `setup`, one shared connection to hearthd,
-- mirroring buffers to the language service (`doc/open`, incremental `doc/change` from
-- `nvim_buf_attach` on_lines with byte columns turned into UTF-16 code units, `doc/close`),
-- completion through 'omnifunc'/'completefunc' (and an async `complete()` used by the
-- nvim-cmp source in hearth.cmp), and the work behind :HearthIndex and :HearthStatus.
--
-- The document a buffer is mirrored as is its lines, each followed by "\n". Versions are
-- b:changedtick. A shadow copy of the lines gives the old text of each edit, since
-- on_lines runs after the text changed; each change is the changed rows with their common
-- prefix and suffix trimmed (on_bytes was tried first: for some commands, such as J, it
-- fires before the buffer holds the new text).
-- Wire details (ids, framing, options) are hearth.client's; commands are plugin/hearth.lua's.

local api = vim.api
local hclient = require("hearth.client")

local M = {}

local defaults = {
  socket = nil, -- path; nil: the protocol's rule (HEARTH_SOCKET, XDG_RUNTIME_DIR, /tmp/hearth-<uid>)
  filetypes = nil, -- list of filetypes to attach to; nil: every normal file buffer
  auto_attach = true, -- attach on FileType/BufEnter
  set_omnifunc = true, -- set 'omnifunc' of attached buffers (when empty)
  complete_deadline_ms = 300, -- deadline sent with every `complete`
  complete_limit = 50,
  client_name = "hearth.nvim",
  start = true, -- start hearthd when nothing answers (HEARTH_NO_START=1 also turns it off)
  daemon = nil, -- the hearthd to start; nil: $HEARTHD, else hearthd on PATH
  replace = nil, -- replace a hearthd of another build; nil: yes unless HEARTH_NO_REPLACE=1
  build_id = nil, -- the build id expected of the daemon; nil: $HEARTH_BUILD_ID, else the binary's hash
  ready_timeout_ms = 10000, -- how long a started daemon may take to answer
}

M.config = vim.deepcopy(defaults)

local state = {
  client = nil,
  buffers = {}, -- bufnr -> record
  items = {}, -- the last completion's items, for omnifunc's second call
  augroup = nil,
}
M._state = state

--- The shared client, connecting on first use (and again after the connection died); when
--- nothing answers, hearth.client starts hearthd (unless `start = false`).
function M.client()
  local c = state.client
  local now = (vim.uv or vim.loop).now()
  local why = c and c.state == "closed" and c.close_reason and c.close_reason.code
  if (why == hclient.codes.NOT_CONNECTED or why == hclient.codes.START_FAILED) and now - (state.connected_at or 0) < 2000 then
    return c -- no daemon (or it would not start) when we tried, under 2 s ago: not on every keystroke
  end
  if c == nil or c.state == "closed" then
    state.connected_at = now
    local cfg = M.config
    c = hclient.connect({
      socket = cfg.socket,
      client_name = cfg.client_name,
      start = cfg.start,
      daemon = cfg.daemon,
      replace = cfg.replace,
      build_id = cfg.build_id,
      ready_timeout_ms = cfg.ready_timeout_ms,
    }, function(err)
      -- A daemon that would not start is worth saying once (the same message is not
      -- repeated); calls made meanwhile fail with the same error through their callbacks.
      if err and err.code == hclient.codes.START_FAILED and err.message ~= state.start_error then
        state.start_error = err.message
        vim.notify("hearth: " .. err.message, vim.log.levels.WARN)
      elseif not err then
        state.start_error = nil
      end
    end)
    state.client = c
    -- Document notifications have no id: the service reports their errors as $/error
    -- (docs/LANGUAGE.md §7). Kept for :HearthStatus.
    c:on_notification("$/error", function(p)
      state.errors = (state.errors or 0) + 1
      state.last_error = p
    end)
  end
  return c
end

local function utf16_col(line, col)
  if col <= 0 or line == nil then
    return 0
  end
  if col >= #line then
    local _, u = vim.str_utfindex(line)
    return u + (col - #line)
  end
  local ok, _, u = pcall(vim.str_utfindex, line, col)
  if ok and u then
    return u
  end
  return col
end
M._utf16_col = utf16_col

local function buf_uri(buf)
  local name = api.nvim_buf_get_name(buf)
  if name == "" then
    return "buffer://" .. buf
  end
  return vim.uri_from_bufnr(buf)
end

local function full_text(lines)
  return table.concat(lines, "\n") .. "\n"
end

local function wanted(buf)
  if not api.nvim_buf_is_loaded(buf) or vim.bo[buf].buftype ~= "" then
    return false
  end
  local fts = M.config.filetypes
  if fts == nil then
    return true
  end
  return vim.tbl_contains(fts, vim.bo[buf].filetype)
end

local function send_open(rec)
  local c = M.client()
  rec.conn = c
  rec.lines = api.nvim_buf_get_lines(rec.buf, 0, -1, false)
  rec.changes = {}
  rec.version = api.nvim_buf_get_var(rec.buf, "changedtick")
  local ft = vim.bo[rec.buf].filetype
  c:notify("doc/open", { uri = rec.uri, text = full_text(rec.lines), version = rec.version, language = ft ~= "" and ft or nil })
end

-- The version of the next doc/change: b:changedtick at the time it is sent (callbacks may
-- run before the tick moves), and always above the last version sent.
local function next_version(rec)
  local tick = api.nvim_buf_get_var(rec.buf, "changedtick")
  rec.version = math.max(tick, rec.version + 1)
  return rec.version
end

-- Sends the changes gathered since the last flush as one doc/change. When the connection
-- is a new one (the old died), opens the document there again instead.
local function flush(rec)
  rec.flush_scheduled = false
  if rec.detached then
    return
  end
  if rec.conn ~= state.client or (rec.conn and rec.conn.state == "closed") then
    send_open(rec)
    return
  end
  if #rec.changes == 0 then
    return
  end
  local changes = rec.changes
  rec.changes = {}
  rec.conn:notify("doc/change", { uri = rec.uri, version = next_version(rec), changes = changes })
end
M._flush = function(buf)
  local rec = state.buffers[buf or api.nvim_get_current_buf()]
  if rec then
    flush(rec)
  end
end

local function queue_change(rec, change)
  table.insert(rec.changes, change)
  if not rec.flush_scheduled then
    rec.flush_scheduled = true
    vim.schedule(function()
      if rec.flush_scheduled then
        flush(rec)
      end
    end)
  end
end

local function resync(rec)
  rec.lines = api.nvim_buf_get_lines(rec.buf, 0, -1, false)
  rec.changes = {} -- a whole-text change replaces everything before it
  queue_change(rec, { text = full_text(rec.lines) })
end

local function is_cont(b)
  return b ~= nil and b >= 0x80 and b < 0xC0
end

-- (line, UTF-16 character) of byte offset o in the text of lines (each ending in "\n"),
-- the first of which is row first.
local function position_in(lines, first, o)
  for i, line in ipairs(lines) do
    if o <= #line then
      return { line = first + i - 1, character = utf16_col(line, o) }
    end
    o = o - #line - 1
  end
  return { line = first + #lines, character = 0 }
end

local function join_lines(list)
  if #list == 0 then
    return ""
  end
  return table.concat(list, "\n") .. "\n"
end

-- on_lines: rows first..last-1 of the shadow became rows first..new_last-1 of the buffer.
-- The change sent is that region with the common prefix and suffix trimmed, so a
-- keystroke is one character, and columns are UTF-16 within the old text.
local function on_lines(rec, buf, first, last, new_last)
  if rec.detached then
    return true
  end
  local lines = rec.lines
  last = math.min(last, #lines)
  local old = {}
  for i = first + 1, last do
    old[#old + 1] = lines[i]
  end
  local new = api.nvim_buf_get_lines(buf, first, new_last, false)
  local old_text, new_text = join_lines(old), join_lines(new)
  local no, nn = #old_text, #new_text
  local p, max_p = 0, math.min(no, nn)
  while p < max_p and old_text:byte(p + 1) == new_text:byte(p + 1) do
    p = p + 1
  end
  while p > 0 and (is_cont(old_text:byte(p + 1)) or is_cont(new_text:byte(p + 1))) do
    p = p - 1
  end
  local sfx, max_s = 0, math.min(no, nn) - p
  while sfx < max_s and old_text:byte(no - sfx) == new_text:byte(nn - sfx) do
    sfx = sfx + 1
  end
  while sfx > 0 and is_cont(old_text:byte(no - sfx + 1)) do
    sfx = sfx - 1
  end
  -- the shadow follows the buffer
  local n_old, n_new = #old, #new
  if n_old == n_new then
    for i = 1, n_new do
      lines[first + i] = new[i]
    end
  else
    local rebuilt = {}
    for i = 1, first do
      rebuilt[i] = lines[i]
    end
    for i = 1, n_new do
      rebuilt[#rebuilt + 1] = new[i]
    end
    for i = last + 1, #lines do
      rebuilt[#rebuilt + 1] = lines[i]
    end
    rec.lines = rebuilt
  end
  if #rec.lines ~= api.nvim_buf_line_count(buf) then
    resync(rec) -- out of step: send the whole text
    return
  end
  if p == no and p == nn then
    return -- nothing changed
  end
  queue_change(rec, {
    range = { start = position_in(old, first, p), ["end"] = position_in(old, first, no - sfx) },
    text = new_text:sub(p + 1, nn - sfx),
  })
end

--- Starts mirroring buffer buf (default: current) to hearthd. Returns true when attached.
function M.attach(buf)
  buf = (buf == nil or buf == 0) and api.nvim_get_current_buf() or buf
  if state.buffers[buf] then
    return true
  end
  if not api.nvim_buf_is_loaded(buf) then
    return false
  end
  local rec = { buf = buf, uri = buf_uri(buf), changes = {} }
  state.buffers[buf] = rec
  send_open(rec)
  api.nvim_buf_attach(buf, false, {
    on_lines = function(_, b, _, first, last, new_last)
      return on_lines(rec, b, first, last, new_last)
    end,
    on_reload = function(_, b)
      if not rec.detached then
        resync(rec)
      end
    end,
    on_detach = function()
      if not rec.detached then
        vim.schedule(function()
          M.detach(buf)
        end)
      end
    end,
  })
  if M.config.set_omnifunc and vim.bo[buf].omnifunc == "" then
    vim.bo[buf].omnifunc = "v:lua.require'hearth'.omnifunc"
  end
  return true
end

--- Stops mirroring buf (default: current) and sends doc/close.
function M.detach(buf)
  buf = (buf == nil or buf == 0) and api.nvim_get_current_buf() or buf
  local rec = state.buffers[buf]
  if not rec then
    return
  end
  state.buffers[buf] = nil
  rec.detached = true
  if rec.conn and rec.conn.state ~= "closed" and rec.conn == state.client then
    if #rec.changes > 0 and api.nvim_buf_is_valid(buf) then
      rec.conn:notify("doc/change", { uri = rec.uri, version = next_version(rec), changes = rec.changes })
    end
    rec.conn:notify("doc/close", { uri = rec.uri })
  end
end

-- The buffer got another name (:file, :saveas): close the old URI, open the new one.
function M._renamed(buf)
  local rec = state.buffers[buf]
  if not rec or rec.uri == buf_uri(buf) then
    return
  end
  if rec.conn and rec.conn == state.client and rec.conn.state ~= "closed" then
    rec.conn:notify("doc/close", { uri = rec.uri })
  end
  rec.uri = buf_uri(buf)
  send_open(rec)
end

--- Whether buf is mirrored.
function M.is_attached(buf)
  return state.buffers[(buf == nil or buf == 0) and api.nvim_get_current_buf() or buf] ~= nil
end

-- The params of a `complete` at the cursor of the current window, after sending pending
-- edits; nil when the buffer is not mirrored.
local function complete_params()
  local buf = api.nvim_get_current_buf()
  local rec = state.buffers[buf]
  if not rec then
    if not wanted(buf) or not M.attach(buf) then
      return nil
    end
    rec = state.buffers[buf]
  end
  flush(rec)
  local row, col = unpack(api.nvim_win_get_cursor(0))
  local line = api.nvim_get_current_line()
  return {
    uri = rec.uri,
    position = { line = row - 1, character = utf16_col(line, col) },
    limit = M.config.complete_limit,
  }, rec, row, col
end

local function to_vim_items(items)
  local out = {}
  for _, it in ipairs(items or {}) do
    local detail = it.detail
    if detail == vim.NIL then
      detail = nil
    end
    out[#out + 1] = {
      word = it.label,
      abbr = it.label,
      menu = detail or "",
      kind = it.source == "workspace" and "w" or "d",
      icase = 1,
      dup = 0,
      user_data = { hearth = { score = it.score, source = it.source } },
    }
  end
  return out
end
M._to_vim_items = to_vim_items

local function complete_opts()
  return { supersede = "complete", deadline_ms = M.config.complete_deadline_ms }
end

--- 'omnifunc' / 'completefunc': v:lua.require'hearth'.omnifunc. The first call asks
--- hearthd (waiting at most the deadline); the second returns the items.
function M.omnifunc(findstart, base)
  if findstart == 1 then
    state.items = {}
    local params, _, _, col = complete_params()
    if not params then
      return -3
    end
    local wait = M.config.complete_deadline_ms + 200
    local res, err = M.client():request_sync("complete", params, complete_opts(), wait)
    if err or type(res) ~= "table" then
      return -3
    end
    state.items = to_vim_items(res.items)
    local prefix = type(res.prefix) == "string" and res.prefix or ""
    return math.max(0, col - #prefix)
  end
  local items = state.items
  state.items = {}
  return items
end
M.completefunc = M.omnifunc

--- Asks for completions at the cursor without blocking. callback(err, result, startcol):
--- result as the service returns it, startcol the 0-based byte column where the prefix
--- begins. A newer call supersedes an older one (the older gets err.code -32801).
--- Returns a cancel function, or nil when the buffer is not mirrored.
function M.request_completion(callback)
  local params, _, _, col = complete_params()
  if not params then
    return nil
  end
  return M.client():request("complete", params, complete_opts(), function(err, res)
    if err or type(res) ~= "table" then
      callback(err or hclient.error(hclient.codes.INTERNAL_ERROR, "bad complete result"))
      return
    end
    local prefix = type(res.prefix) == "string" and res.prefix or ""
    callback(nil, res, math.max(0, col - #prefix))
  end)
end

--- Completes at the cursor asynchronously with complete() (for an insert-mode mapping).
function M.complete()
  local buf = api.nvim_get_current_buf()
  local tick = api.nvim_buf_get_var(buf, "changedtick")
  M.request_completion(function(err, res, startcol)
    if err then
      return
    end
    if api.nvim_get_current_buf() ~= buf or api.nvim_buf_get_var(buf, "changedtick") ~= tick then
      return -- stale: the user typed on
    end
    if api.nvim_get_mode().mode:sub(1, 1) == "i" then
      vim.fn.complete(startcol + 1, to_vim_items(res.items))
    end
  end)
  return ""
end

--- :HearthIndex [dir]: indexes dir (default: the current directory), streaming progress
--- to the message area. on_done(err, stats) is optional.
function M.index(dir, on_done)
  dir = vim.fn.fnamemodify(dir ~= nil and dir ~= "" and dir or vim.fn.getcwd(), ":p"):gsub("/$", "")
  if dir == "" then
    dir = "/"
  end
  local last = -1
  return M.client():request("workspace/index", { root = dir }, {
    stream = true,
    on_partial = function(_, p)
      if type(p) == "table" and p.files_done ~= last then
        last = p.files_done
        api.nvim_echo({ { string.format("hearth: indexing %s: %d/%d files", dir, p.files_done or 0, p.files_total or 0) } }, false, {})
      end
    end,
  }, function(err, stats)
    if err then
      vim.notify("hearth: indexing " .. dir .. " failed: " .. tostring(err), vim.log.levels.ERROR)
    else
      stats = type(stats) == "table" and stats or {}
      vim.notify(
        string.format(
          "hearth: indexed %s: %d files, %d identifiers in %d ms",
          dir,
          stats.files or 0,
          stats.identifiers or 0,
          stats.ms or 0
        ),
        vim.log.levels.INFO
      )
    end
    if on_done then
      on_done(err, stats)
    end
  end)
end

--- :HearthStatus: the connection, $/hello and $/stats, as lines (also shown).
function M.status(show)
  local c = M.client()
  local lines = { "hearth: socket " .. c.path }
  local hello, herr = c:request_sync("$/hello", { client = M.config.client_name }, nil, 2000)
  if herr then
    table.insert(lines, "  not connected: " .. tostring(herr))
  else
    table.insert(
      lines,
      string.format("  %s (%s), protocol %s", tostring(hello.server), tostring(hello.build), tostring(hello.protocol))
    )
    local stats = c:request_sync("$/stats", nil, nil, 2000)
    if type(stats) == "table" then
      table.insert(
        lines,
        string.format(
          "  uptime %d ms, %d connections, %d requests, %d in flight",
          stats.uptime_ms or 0,
          stats.connections or 0,
          stats.requests_total or 0,
          stats.in_flight or 0
        )
      )
    end
  end
  local n = 0
  for _ in pairs(state.buffers) do
    n = n + 1
  end
  table.insert(lines, string.format("  %d buffers mirrored", n))
  if state.last_error then
    table.insert(
      lines,
      string.format("  %d $/error from the daemon, last: %s", state.errors, tostring(state.last_error.message))
    )
  end
  if show ~= false then
    api.nvim_echo({ { table.concat(lines, "\n") } }, false, {})
  end
  return lines
end

--- require("hearth").setup{ socket = nil, filetypes = nil, auto_attach = true, start = true, ... }
function M.setup(opts)
  M.config = vim.tbl_extend("force", vim.deepcopy(defaults), opts or {})
  state.augroup = api.nvim_create_augroup("hearth", { clear = true })
  if M.config.auto_attach then
    api.nvim_create_autocmd({ "FileType", "BufEnter" }, {
      group = state.augroup,
      callback = function(ev)
        if not state.buffers[ev.buf] and wanted(ev.buf) then
          M.attach(ev.buf)
        end
      end,
    })
    for _, b in ipairs(api.nvim_list_bufs()) do
      if wanted(b) and api.nvim_buf_get_name(b) ~= "" then
        M.attach(b)
      end
    end
  end
  api.nvim_create_autocmd({ "BufUnload", "BufDelete" }, {
    group = state.augroup,
    callback = function(ev)
      M.detach(ev.buf)
    end,
  })
  api.nvim_create_autocmd("BufFilePost", {
    group = state.augroup,
    callback = function(ev)
      M._renamed(ev.buf)
    end,
  })
  local ok, cmp = pcall(require, "cmp")
  if ok and type(cmp) == "table" and cmp.register_source then
    cmp.register_source("hearth", require("hearth.cmp").new())
  end
  return M
end

return M
