-- hearth.envelope owns reading a decoded frame body as a protocol message
-- (docs/PROTOCOL.md §6 and §15.1): it checks the element count per kind, that version,
-- kind, id and seq are unsigned integers, that methods are strings and errors are nil or
-- a map with an integer code and a string message, and that a version other than 1 or 2
-- only carries `$/fatal` (whose shape is frozen, §9). It is pure, like hearth.framing;
-- what a message means for the connection is hearth.client's business.
--
-- What MessagePack facts vim.mpack keeps: a map decodes to a table with the shared map
-- metatable (the one vim.empty_dict() has), an array to a plain table, nil to vim.NIL. It
-- does not keep int versus float or str versus bin, so 7.0 passes as the integer 7 and a
-- bin passes as a string.

local M = {}

M.REQUEST, M.RESPONSE, M.NOTIFICATION, M.CANCEL, M.PARTIAL = 0, 1, 2, 3, 4
M.INVALID = -32600
M.UNSUPPORTED_VERSION = -32004

local NIL = vim.NIL
local MAP_MT = getmetatable(vim.empty_dict())

local function is_map(v)
  return type(v) == "table" and getmetatable(v) == MAP_MT
end
M.is_map = is_map

local function is_array(v)
  return type(v) == "table" and getmetatable(v) == nil
end

local function is_uint(v)
  return type(v) == "number" and v >= 0 and v % 1 == 0
end

local function is_int(v)
  return type(v) == "number" and v % 1 == 0
end

-- allowed element counts per kind
local LENGTHS = { [0] = { [5] = true, [6] = true }, { [5] = true }, { [4] = true }, { [3] = true }, { [5] = true } }

local function invalid(msg)
  return nil, { code = M.INVALID, message = msg }
end

--- Reads value (a decoded body) as a message. Returns a table {version, kind, id, method,
--- params, opts, error, result, seq, chunk} (fields by kind; params, result and chunk keep
--- vim.NIL; error is nil or {code, message, data}), or nil and {code, message} with code
--- -32600 (not a valid message) or -32004 (a version other than 1 or 2).
function M.read(value)
  if not is_array(value) or #value < 3 then
    return invalid("a message is an array of at least 3 elements")
  end
  local version, kind = value[1], value[2]
  if not is_uint(version) or not is_uint(kind) then
    return invalid("version and kind must be unsigned integers")
  end
  local n = #value
  if version ~= 1 and version ~= 2 then
    if kind == M.NOTIFICATION and n == 4 and value[3] == "$/fatal" then
      return { version = version, kind = kind, method = "$/fatal", params = value[4] }
    end
    return nil, { code = M.UNSUPPORTED_VERSION, message = "unsupported protocol version " .. tostring(version) }
  end
  if LENGTHS[kind] == nil or (kind == M.PARTIAL and version < 2) then
    return invalid(string.format("unknown kind %s in version %d", tostring(kind), version))
  end
  if not LENGTHS[kind][n] or (kind == M.REQUEST and n == 6 and version < 2) then
    return invalid(string.format("wrong element count %d for kind %d", n, kind))
  end
  if kind == M.NOTIFICATION then
    if type(value[3]) ~= "string" then
      return invalid("method must be a string")
    end
    return { version = version, kind = kind, method = value[3], params = value[4] }
  end
  local id = value[3]
  if not is_uint(id) then
    return invalid("id must be an unsigned integer")
  end
  if kind == M.CANCEL then
    return { version = version, kind = kind, id = id }
  elseif kind == M.REQUEST then
    if type(value[4]) ~= "string" then
      return invalid("method must be a string")
    end
    local opts = value[6]
    if n == 6 and not is_map(opts) then
      return invalid("opts must be a map")
    end
    return { version = version, kind = kind, id = id, method = value[4], params = value[5], opts = opts }
  elseif kind == M.PARTIAL then
    if not is_uint(value[4]) then
      return invalid("seq must be an unsigned integer")
    end
    return { version = version, kind = kind, id = id, seq = value[4], chunk = value[5] }
  end
  -- response
  local err = value[4]
  if err == NIL then
    return { version = version, kind = kind, id = id, result = value[5] }
  end
  if not is_map(err) then
    return invalid("error must be nil or a map")
  end
  if not is_int(err.code) or type(err.message) ~= "string" then
    return invalid("an error map needs an integer code and a string message")
  end
  local data = err.data
  if data == NIL then
    data = nil
  end
  return {
    version = version,
    kind = kind,
    id = id,
    error = { code = err.code, message = err.message, data = data },
    result = NIL,
  }
end

return M
