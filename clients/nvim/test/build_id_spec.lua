-- test/build_id_spec.lua owns the tests of hearth.build_id: every vector of the shared
-- conformance/build_id.json through both hash implementations (16-bit limbs in pure Lua, and
-- LuaJIT's uint64_t), words given as numbers where a double holds them, two's complement for
-- negative numbers, when an announced id matches the expected one, and that the id expected
-- of $HEARTHD is the hash part of what that binary announces. No sockets but the last test's.

local T = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/helper.lua")
local S = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/support.lua")
local bid = require("hearth.build_id")
T.after_all = S.cleanup

local vectors_path = (os.getenv("HEARTH_REPO_ROOT") or vim.fn.getcwd()) .. "/conformance/build_id.json"
local doc = vim.fn.json_decode(table.concat(vim.fn.readfile(vectors_path), "\n"))

local function bytes_of(c)
  local out = {}
  for _, w in ipairs({ c.size, c.mtime_sec, c.mtime_nsec, c.ino, c.dev }) do
    for _, limb in ipairs(bid._limbs(w)) do
      out[#out + 1] = limb % 256
      out[#out + 1] = math.floor(limb / 256)
    end
  end
  return out
end

T.test("conformance/build_id.json has format 1 and cases", function()
  T.eq(1, doc.format, "format")
  T.ok(#doc.cases >= 6, "at least the six cases")
end)

T.test("every build_id vector: the pure-Lua limb hash", function()
  for _, c in ipairs(doc.cases) do
    T.eq(c.hash, bid._fnv_limbs(bytes_of(c)), c.name)
  end
end)

T.test("every build_id vector: the LuaJIT ffi uint64_t hash (this Neovim is LuaJIT)", function()
  T.ok(jit ~= nil, "Neovim 0.7.2 runs LuaJIT")
  for _, c in ipairs(doc.cases) do
    T.eq(c.hash, bid._fnv_ffi(bytes_of(c)), c.name)
  end
end)

T.test("every build_id vector: identity_hash from decimal strings", function()
  for _, c in ipairs(doc.cases) do
    T.eq(c.hash, bid.identity_hash(c.size, c.mtime_sec, c.mtime_nsec, c.ino, c.dev), c.name)
  end
end)

T.test("identity_hash from numbers, as fs_stat gives them, where a double holds the words", function()
  local n = 0
  for _, c in ipairs(doc.cases) do
    local words = { c.size, c.mtime_sec, c.mtime_nsec, c.ino, c.dev }
    local fits = true
    for _, w in ipairs(words) do
      fits = fits and #w <= 15 -- below 10^15 < 2^53
    end
    if fits then
      n = n + 1
      local nums = vim.tbl_map(tonumber, words)
      T.eq(c.hash, bid.identity_hash(unpack(nums)), c.name)
    end
  end
  T.ok(n >= 3, "cases with small words")
end)

T.test("limbs: decimal strings exactly, negative numbers modulo 2^64, nothing above 2^64-1", function()
  T.eq({ 65535, 65535, 65535, 65535 }, bid._limbs("18446744073709551615"), "2^64-1")
  T.eq({ 1, 0, 0, 32 }, bid._limbs("9007199254740993"), "2^53+1, which a double cannot hold")
  T.eq({ 65535, 65535, 65535, 65535 }, bid._limbs(-1), "-1")
  T.eq({ 0, 0, 1, 0 }, bid._limbs(2 ^ 32), "2^32")
  T.ok(not pcall(bid._limbs, "18446744073709551616"), "2^64 refused")
  T.ok(not pcall(bid._limbs, "12x"), "not a number refused")
end)

T.test("stat_hash: the hash of fs_stat's fields, or nil when one is too big for a double", function()
  local st = { size = 3, mtime = { sec = 1, nsec = 2 }, ino = 3, dev = 4 }
  T.eq("6a8f00ea73435262", bid.stat_hash(st), "the 'a small file' vector")
  st.ino = 2 ^ 53
  local h, err = bid.stat_hash(st)
  T.eq(nil, h, "inexact inode: no hash")
  T.ok(err:find(bid.ENV, 1, true), "says to set " .. bid.ENV .. ": " .. tostring(err))
end)

T.test("matches: equal, or equal to the part after the last +", function()
  T.ok(bid.matches("abc", "abc"), "equal")
  T.ok(bid.matches("0.1.0+0123456789abcdef", "0123456789abcdef"), "hash part")
  T.ok(bid.matches("1+2+beef", "beef"), "after the last +")
  T.ok(not bid.matches("1+2+beef", "2+beef"), "not the middle")
  T.ok(not bid.matches("old", "new"), "different")
  T.ok(not bid.matches(nil, "new"), "no announced id")
end)

T.test("expected: explicit id, else $HEARTH_BUILD_ID, else the file hash, else nil", function()
  local saved = os.getenv(bid.ENV)
  local ok, err = pcall(function()
    vim.env[bid.ENV] = nil
    local f = vim.fn.tempname()
    vim.fn.writefile({ "x" }, f)
    local st = vim.loop.fs_stat(f)
    local want = bid.identity_hash(st.size, st.mtime.sec, st.mtime.nsec, st.ino, st.dev)
    T.eq(want, bid.expected(f), "file hash")
    T.eq("given", bid.expected(f, "given"), "explicit")
    vim.env[bid.ENV] = "from-env"
    T.eq("from-env", bid.expected(f), "env")
    T.eq("given", bid.expected(f, "given"), "explicit before env")
    vim.env[bid.ENV] = ""
    T.eq(want, bid.expected(f), "empty env ignored")
    T.eq(nil, bid.expected(f .. ".missing"), "no binary")
  end)
  vim.env[bid.ENV] = saved
  assert(ok, err)
end)

T.test("live hearthd: the id this client expects of $HEARTHD matches what that binary announces", function()
  local d = S.spawn_hearthd(T)
  local c = require("hearth.client").connect({ socket = d.sock, start = false })
  local res, err = c:request_sync("$/hello", { client = "build_id_spec" }, nil, 10000)
  T.eq(nil, err, "hello")
  local expected = bid.expected(S.hearthd_path())
  T.ok(type(res.build_id) == "string" and res.build_id:find("+", 1, true), "announced: " .. tostring(res.build_id))
  T.ok(bid.matches(res.build_id, expected), res.build_id .. " matches " .. tostring(expected))
  c:close()
  d:stop()
end)

T.run("build_id_spec")
