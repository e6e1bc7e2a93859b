-- hearth.cmp owns the nvim-cmp completion source "hearth" (registered by setup() when
-- nvim-cmp is installed; nothing here requires it). Each cmp request becomes one
-- `complete` call with the supersede key "complete", so a newer keystroke cuts the older
-- call at the daemon; stale answers (-32801, -32002, -32800) become an empty response.

local source = {}
source.__index = source

function source.new()
  return setmetatable({}, source)
end

function source:get_debug_name()
  return "hearth"
end

function source:is_available()
  return require("hearth").is_attached(0)
end

function source:get_keyword_pattern()
  return [[\k\+]]
end

-- kind 1 is LSP's CompletionItemKind.Text
function source:complete(_, callback)
  local cancel = require("hearth").request_completion(function(err, res)
    if err or type(res) ~= "table" then
      callback(nil)
      return
    end
    local items = {}
    for _, it in ipairs(res.items or {}) do
      local detail = it.detail ~= vim.NIL and it.detail or nil
      items[#items + 1] = { label = it.label, detail = detail, kind = 1 }
    end
    callback({ items = items, isIncomplete = res.incomplete == true })
  end)
  if not cancel then
    callback(nil)
  end
end

return source
