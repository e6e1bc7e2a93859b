-- hearth.build_id owns build identity as docs/PROTOCOL.md §9.1 ("Mixed versions") and
-- hearth_protocol::build_id define it: the hash of a daemon binary's `stat` (64-bit FNV-1a
-- over size, mtime seconds, mtime nanoseconds, inode and device, each 8 bytes
-- little-endian, as 16 lowercase hex digits), the id a client expects of the hearthd it
-- would start ($HEARTH_BUILD_ID or an explicit id win), and when an announced id matches.
--
-- Neovim's Lua is LuaJIT, whose numbers are doubles: nothing above 2^53 survives plain
-- arithmetic. The hash is therefore computed on 16-bit limbs in pure Lua (exact on any Lua),
-- and with LuaJIT's `ffi` uint64_t when it is there; both are checked against
-- conformance/build_id.json by test/build_id_spec.lua. Starting and replacing daemons is
-- hearth.start's business.

local uv = vim.uv or vim.loop

local M = {}

M.ENV = "HEARTH_BUILD_ID"

-- FNV-1a 64: offset basis 0xcbf29ce484222325, prime 0x100000001b3, as 16-bit limbs, low first.
local OFFSET = { 0x2325, 0x8422, 0x9ce4, 0xcbf2 }
local PRIME_LOW, PRIME_HIGH = 0x01b3, 0x0100 -- 0x100000001b3 = 0x1b3 + 0x100 * 2^32

local floor = math.floor

-- One unsigned 64-bit word as four 16-bit limbs, low first. word: a decimal string (any
-- value up to 2^64-1, exactly) or a number (exact as far as the double holds it; a negative
-- number is taken modulo 2^64, as Rust's `as u64` does).
local function limbs(word)
  local l = { 0, 0, 0, 0 }
  if type(word) == "string" then
    if not word:match("^%d+$") then
      error("not a decimal number: " .. word, 2)
    end
    for i = 1, #word do
      local carry = word:byte(i) - 48
      for k = 1, 4 do
        local v = l[k] * 10 + carry
        l[k] = v % 65536
        carry = floor(v / 65536)
      end
      if carry ~= 0 then
        error("above 2^64-1: " .. word, 2)
      end
    end
    return l
  end
  local n = tonumber(word) or 0
  local negative = n < 0
  n = floor(negative and -n or n)
  for k = 1, 4 do
    l[k] = n % 65536 -- exact for every double: 65536 is a power of two
    n = floor(n / 65536)
  end
  if negative then
    -- two's complement: invert, add one
    local carry = 1
    for k = 1, 4 do
      local v = 65535 - l[k] + carry
      l[k] = v % 65536
      carry = floor(v / 65536)
    end
  end
  return l
end
M._limbs = limbs

-- The 40 bytes hashed: each word's 8 bytes, little-endian.
local function words_bytes(words)
  local out = {}
  for _, w in ipairs(words) do
    for _, limb in ipairs(limbs(w)) do
      out[#out + 1] = limb % 256
      out[#out + 1] = floor(limb / 256)
    end
  end
  return out
end

local function xor8(a, b)
  local r, bitv = 0, 1
  for _ = 1, 8 do
    if a % 2 ~= b % 2 then
      r = r + bitv
    end
    a, b, bitv = floor(a / 2), floor(b / 2), bitv * 2
  end
  return r
end

--- FNV-1a 64 of a list of bytes on 16-bit limbs: every intermediate stays below 2^27, so
--- doubles hold it exactly. Returns 16 lowercase hex digits.
function M._fnv_limbs(bytes)
  local h1, h2, h3, h4 = OFFSET[1], OFFSET[2], OFFSET[3], OFFSET[4]
  for _, b in ipairs(bytes) do
    local lo = h1 % 256
    h1 = h1 - lo + xor8(lo, b)
    -- h * prime mod 2^64, limb by limb: prime has limbs 0x1b3 (bits 0-15) and 0x100 (32-47).
    local r1 = h1 * PRIME_LOW
    local r2 = h2 * PRIME_LOW + floor(r1 / 65536)
    local r3 = h3 * PRIME_LOW + h1 * PRIME_HIGH + floor(r2 / 65536)
    local r4 = h4 * PRIME_LOW + h2 * PRIME_HIGH + floor(r3 / 65536)
    h1, h2, h3, h4 = r1 % 65536, r2 % 65536, r3 % 65536, r4 % 65536
  end
  return string.format("%04x%04x%04x%04x", h4, h3, h2, h1)
end

local ffi
if jit then
  local ok, mod = pcall(require, "ffi")
  ffi = ok and mod or nil
end

--- FNV-1a 64 of a list of bytes with LuaJIT's uint64_t (wrapping arithmetic); nil without
--- ffi.
function M._fnv_ffi(bytes)
  if not ffi then
    return nil
  end
  local h = ffi.new("uint64_t", 0)
  for k = 4, 1, -1 do
    h = h * 65536 + OFFSET[k]
  end
  local prime = ffi.new("uint64_t", 1099511628211) -- 0x100000001b3, below 2^53
  for _, b in ipairs(bytes) do
    local lo = tonumber(h % 256)
    h = h - lo + xor8(lo, b)
    h = h * prime
  end
  local parts = {}
  for k = 1, 4 do
    parts[k] = tonumber(h % 65536)
    h = h / 65536
  end
  return string.format("%04x%04x%04x%04x", parts[4], parts[3], parts[2], parts[1])
end

--- The identity hash of a file from its stat fields (numbers, or decimal strings for values
--- a double cannot hold): 16 lowercase hex digits, as hearth_protocol::build_id::identity_hash.
function M.identity_hash(size, mtime_sec, mtime_nsec, ino, dev)
  local bytes = words_bytes({ size, mtime_sec, mtime_nsec, ino, dev })
  return M._fnv_ffi(bytes) or M._fnv_limbs(bytes)
end

--- The hash part of the build id of the stat result st, or nil, err when a field may not be
--- exact: fs_stat gives doubles, and a field at or above 2^53 (an inode on some network
--- file systems) may have lost bits. Unknown is safer than wrong: a wrong id would have
--- every client replace a daemon that is the right build.
function M.stat_hash(st)
  local words = { st.size, st.mtime.sec, st.mtime.nsec, st.ino, st.dev }
  for _, w in ipairs(words) do
    if math.abs(w) >= 2 ^ 53 then
      return nil, "a stat field above 2^53 cannot be read exactly; set " .. M.ENV
    end
  end
  return M.identity_hash(unpack(words))
end

--- The hash part of the build id of the binary at path (one stat), or nil, err.
function M.file_hash(path)
  local st, err = uv.fs_stat(path)
  if not st then
    return nil, err
  end
  return M.stat_hash(st)
end

--- The id expected of a daemon started from `daemon`: `explicit` when given and not empty,
--- else $HEARTH_BUILD_ID when set and not empty, else the binary's file hash; nil when
--- there is no binary to inspect.
function M.expected(daemon, explicit)
  if type(explicit) == "string" and explicit ~= "" then
    return explicit
  end
  local env = os.getenv(M.ENV)
  if env and env ~= "" then
    return env
  end
  if daemon then
    return (M.file_hash(daemon))
  end
  return nil
end

--- Whether a daemon announcing `announced` is the build `expected`: the same id, or an id
--- whose part after the last "+" is it.
function M.matches(announced, expected)
  if type(announced) ~= "string" or type(expected) ~= "string" then
    return false
  end
  return announced == expected or announced:match("^.*%+(.*)$") == expected
end

return M
