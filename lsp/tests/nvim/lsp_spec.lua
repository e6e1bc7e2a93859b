-- hearth lsp with Neovim's own LSP client (0.7-compatible: vim.lsp.start_client +
-- vim.lsp.buf_attach_client). run.sh starts hearthd on a temporary socket, makes a project
-- and runs:  nvim --headless -u NONE -c "luafile lsp_spec.lua"
-- with HEARTH_BIN (the `hearth` binary), HEARTH_TEST_SOCKET and HEARTH_TEST_PROJECT set.
-- Each check prints "ok - ..." or "not ok - ..."; the exit code (cquit) is the failures.

local bin = assert(os.getenv('HEARTH_BIN'), 'HEARTH_BIN')
local socket = assert(os.getenv('HEARTH_TEST_SOCKET'), 'HEARTH_TEST_SOCKET')
local root = assert(os.getenv('HEARTH_TEST_PROJECT'), 'HEARTH_TEST_PROJECT')
local PATIENCE = 60000 -- ms: a bound that only a bug reaches, never a slow machine

local passed, failed = 0, 0
local function check(name, ok, detail)
  if ok then
    passed = passed + 1
    io.stdout:write('ok - ' .. name .. '\n')
  else
    failed = failed + 1
    io.stdout:write('not ok - ' .. name .. (detail and (': ' .. detail) or '') .. '\n')
  end
end

local function finish()
  io.stdout:write(string.format('%d passed, %d failed\n', passed, failed))
  io.stdout:flush()
  vim.cmd('cquit ' .. (failed == 0 and 0 or 1))
end

local stderr_lines = {}
local progress_kinds = {}
local index_ended = false
local exit_code = nil

local function labels_of(result)
  local items = result and (result.items or result) or {}
  local labels = {}
  for _, item in ipairs(items) do
    table.insert(labels, item.label)
  end
  return labels, items
end

local function contains(list, x)
  for _, v in ipairs(list) do
    if v == x then return true end
  end
  return false
end

-- The one answer of our one client to a request, or fail.
local function request(method, params)
  local answers, err = vim.lsp.buf_request_sync(0, method, params, PATIENCE)
  if not answers then return nil, 'no answer: ' .. tostring(err) end
  for _, answer in pairs(answers) do
    if answer.err then return nil, vim.inspect(answer.err) end
    return answer.result
  end
  return nil, 'no client answered'
end

-- The LSP position (UTF-16 columns) of the end of line `row` (0-based).
local function end_of_line(row)
  local line = vim.api.nvim_buf_get_lines(0, row, row + 1, true)[1]
  local _, utf16 = vim.str_utfindex(line)
  return { line = row, character = utf16 }, line
end

local function run()
  local default_progress = vim.lsp.handlers['$/progress']
  local client_id = vim.lsp.start_client({
    name = 'hearth',
    cmd = { bin, 'lsp', '--socket', socket },
    root_dir = root,
    handlers = {
      ['$/progress'] = function(err, result, ctx, config)
        local kind = result and result.value and result.value.kind
        table.insert(progress_kinds, kind)
        if kind == 'end' then index_ended = true end
        return default_progress(err, result, ctx, config)
      end,
    },
    on_stderr = function(_, data) table.insert(stderr_lines, data) end,
    on_exit = function(code) exit_code = code end,
  })
  check('start_client returns an id', client_id ~= nil)
  if not client_id then return end

  vim.cmd('edit ' .. vim.fn.fnameescape(root .. '/main.rs'))
  check('buf_attach_client', vim.lsp.buf_attach_client(0, client_id))

  -- The workspace was indexed at startup, shown as work-done progress.
  vim.wait(PATIENCE, function() return index_ended or exit_code ~= nil end, 10)
  check('$/progress begin ... end while indexing', index_ended and progress_kinds[1] == 'begin',
    vim.inspect(progress_kinds) .. ' stderr: ' .. table.concat(stderr_lines))

  local client = vim.lsp.get_client_by_id(client_id)
  local caps = client and client.server_capabilities or {}
  check('capabilities: completion and workspace symbols',
    caps.completionProvider ~= nil and caps.workspaceSymbolProvider == true, vim.inspect(caps))

  -- Edit: Neovim sends the change (incremental, UTF-16 ranges) before the request below.
  vim.api.nvim_buf_set_lines(0, 2, 3, false, { '    let s = "😀é"; cou' })
  local pos, line = end_of_line(2)
  check('the cursor column is counted in UTF-16', pos.character == #'    let s = "' + 2 + 1 + #'"; cou',
    line .. ' -> ' .. pos.character)
  local result, err = request('textDocument/completion',
    { textDocument = { uri = vim.uri_from_bufnr(0) }, position = pos })
  local labels, items = labels_of(result)
  check('completion after an edit, multibyte text before the cursor',
    contains(labels, 'counter') and contains(labels, 'count_lines'), err or vim.inspect(labels))
  check('items are TEXT with a sortText rank', items[1] and items[1].kind == 1 and items[1].sortText == '00000'
    and items[2] and items[2].sortText == '00001', vim.inspect(items))

  -- A multibyte prefix after a character outside the BMP.
  vim.api.nvim_buf_set_lines(0, 2, 3, false, { '    😀 grö' })
  pos, line = end_of_line(2)
  result, err = request('textDocument/completion',
    { textDocument = { uri = vim.uri_from_bufnr(0) }, position = pos })
  labels, items = labels_of(result)
  check('completion of a multibyte prefix', labels[1] == 'größe_total', err or vim.inspect(labels))
  local edit = items[1] and items[1].textEdit
  check('the edit replaces the prefix, in UTF-16', edit and edit.range.start.character == 7
    and edit.range['end'].character == 10 and edit.newText == 'größe_total', vim.inspect(edit))

  -- Typing through insert mode too (what a user does): the changes arrive as Neovim batches them.
  vim.api.nvim_win_set_cursor(0, { 3, 0 })
  vim.cmd('normal! Sre')
  pos = end_of_line(2)
  result, err = request('textDocument/completion',
    { textDocument = { uri = vim.uri_from_bufnr(0) }, position = pos })
  labels = labels_of(result)
  check('completion after typing in normal mode', contains(labels, 'render_frame'), err or vim.inspect(labels))

  result, err = request('workspace/symbol', { query = 'render_frame' })
  local first = result and result[1]
  check('workspace/symbol finds the indexed identifier',
    first and first.name == 'render_frame' and first.location.uri:match('/src/lib%.rs$') ~= nil
    and first.location.range.start.line == 1, err or vim.inspect(result))

  -- Shut down as Neovim does (shutdown, then exit): the gateway exits 0.
  vim.lsp.stop_client(client_id)
  vim.wait(PATIENCE, function() return exit_code ~= nil end, 10)
  check('shutdown + exit: exit code 0', exit_code == 0, tostring(exit_code) .. ' ' .. table.concat(stderr_lines))
end

local ok, err = pcall(run)
check('the spec ran to the end', ok, tostring(err))
finish()
