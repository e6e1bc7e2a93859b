-- test/framing_spec.lua owns the pure framing tests: encoding against the hex of
-- docs/PROTOCOL.md, decoding a stream split at every byte, many frames per read, headers
-- refused before any body is buffered, one value per body, and the shared conformance
-- vectors (conformance/frames.json) when the repository has them. No sockets.

local T = dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/helper.lua")
local framing = require("hearth.framing")
local unhex, hex = T.unhex, T.hex

-- docs/PROTOCOL.md §15.6: a streamed count call, its two partials and its response.
local STREAM = unhex([[
00 00 00 24 96 02 00 06 a5 63 6f 75 6e 74 82 a1
6e 02 ab 69 6e 74 65 72 76 61 6c 5f 6d 73 00 81
a6 73 74 72 65 61 6d c3
00 00 00 06 95 02 04 06 00 00
00 00 00 06 95 02 04 06 01 01
00 00 00 06 95 02 01 06 c0 02
]])
local STREAM_VALUES = {
  { 2, 0, 6, "count", { n = 2, interval_ms = 0 }, { stream = true } },
  { 2, 4, 6, 0, 0 },
  { 2, 4, 6, 1, 1 },
  { 2, 1, 6, vim.NIL, 2 },
}

local function decode_all(bodies)
  local out = {}
  for i, b in ipairs(bodies) do
    local v, err = framing.decode_body(b)
    T.ok(v ~= nil, "body " .. i .. " decodes: " .. vim.inspect(err))
    out[i] = v
  end
  return out
end

-- Plain tables compare equal to decoded maps (whose metatables vim.deep_equal ignores).
local function strip(v)
  if type(v) ~= "table" then
    return v
  end
  local t = {}
  for k, x in pairs(v) do
    t[k] = strip(x)
  end
  return t
end

T.test("encode: $/hello in version 2 matches §15.6 byte for byte", function()
  T.eq("0000000d950200" .. "01a7242f68656c6c6fc0", hex(framing.encode({ 2, 0, 1, "$/hello", vim.NIL })))
end)

T.test("encode: cancel [1,3,7] matches §6.4", function()
  T.eq("00000004" .. "93010307", hex(framing.encode({ 1, 3, 7 })))
end)

T.test("encode: a body above max_frame is refused, not sent", function()
  local frame, err = framing.encode(string.rep("x", 100), 50)
  T.eq(nil, frame, "frame")
  T.eq(framing.FRAME_TOO_LARGE, err.code, "code")
end)

T.test("decode: the §15.6 stream in one read gives four values in order", function()
  local d = framing.decoder()
  local bodies, err = d:feed(STREAM)
  T.eq(nil, err, "err")
  T.eq(STREAM_VALUES, strip(decode_all(bodies)), "values")
  T.eq(0, d:pending_bytes(), "nothing left over")
end)

T.test("decode: the stream split at every byte (one and two cuts) gives the same frames", function()
  local n = #STREAM
  for i = 0, n do
    local d = framing.decoder()
    local a = d:feed(STREAM:sub(1, i))
    local b = d:feed(STREAM:sub(i + 1))
    T.eq(4, #a + #b, "frames with cut at " .. i)
    T.eq(STREAM_VALUES, strip(decode_all(vim.list_extend(a, b))), "values with cut at " .. i)
  end
  for i = 0, n, 3 do
    for j = i, n, 5 do
      local d = framing.decoder()
      local all = {}
      vim.list_extend(all, d:feed(STREAM:sub(1, i)))
      vim.list_extend(all, d:feed(STREAM:sub(i + 1, j)))
      vim.list_extend(all, d:feed(STREAM:sub(j + 1)))
      T.eq(STREAM_VALUES, strip(decode_all(all)), "values with cuts at " .. i .. "," .. j)
    end
  end
end)

T.test("decode: one byte per read", function()
  local d = framing.decoder()
  local all = {}
  for i = 1, #STREAM do
    local got = d:feed(STREAM:sub(i, i))
    vim.list_extend(all, got)
  end
  T.eq(STREAM_VALUES, strip(decode_all(all)), "values")
end)

T.test("decode: a 256 KiB body fed one byte per read arrives whole", function()
  local payload = string.rep("abcdefgh", 32768)
  local frame = framing.encode({ 2, 1, 9, vim.NIL, payload })
  local d = framing.decoder()
  local all = {}
  for i = 1, #frame do
    local got = d:feed(frame:sub(i, i))
    if #got > 0 then
      vim.list_extend(all, got)
    end
  end
  T.eq(1, #all, "frames")
  T.eq(payload, decode_all(all)[1][5], "payload")
end)

T.test("decode: 5000 frames in one read, then in reads of 7 bytes", function()
  local parts = {}
  for i = 1, 5000 do
    parts[i] = framing.encode({ 2, 1, i, vim.NIL, { i = i, s = string.rep("é", i % 13) } })
  end
  local stream = table.concat(parts)
  local d = framing.decoder()
  local bodies = d:feed(stream)
  T.eq(5000, #bodies, "frames in one read")
  local values = decode_all(bodies)
  for i = 1, 5000 do
    T.eq(i, values[i][3], "id " .. i)
  end
  d = framing.decoder()
  local n = 0
  for i = 1, #stream, 7 do
    n = n + #d:feed(stream:sub(i, i + 6))
  end
  T.eq(5000, n, "frames in 7-byte reads")
end)

T.test("decode: a header above max_frame is refused from the header alone", function()
  local d = framing.decoder(1024)
  local good = framing.encode({ 2, 1, 1, vim.NIL, 1 })
  -- a good frame, then the header of a 1025-byte frame and no body at all
  local bodies, err = d:feed(good .. framing.header(1025))
  T.eq(1, #bodies, "the good frame before it is still delivered")
  T.eq(framing.FRAME_TOO_LARGE, err and err.code, "code")
  T.eq(0, d:pending_bytes(), "nothing buffered")
  local again, err2 = d:feed("more")
  T.eq(0, #again, "a broken stream yields nothing more")
  T.eq(framing.FRAME_TOO_LARGE, err2.code, "stays broken")
end)

T.test("decode: the default limit is 8 MiB; a 4 GiB header is refused at once", function()
  local d = framing.decoder()
  local _, err = d:feed(unhex("ff ff ff ff"))
  T.eq(framing.FRAME_TOO_LARGE, err.code, "code")
  d = framing.decoder()
  local bodies, ok = d:feed(framing.header(8388608))
  T.eq(nil, ok, "8 MiB exactly is allowed")
  T.eq(0, #bodies, "and waits for its body")
end)

T.test("decode: a header split in two reads is checked when complete", function()
  local d = framing.decoder(10)
  local _, e1 = d:feed(unhex("00 00"))
  T.eq(nil, e1, "half a header is not an error")
  local _, e2 = d:feed(unhex("00 0b"))
  T.eq(framing.FRAME_TOO_LARGE, e2.code, "code")
end)

T.test("decode: an empty frame breaks the stream (-32006)", function()
  local d = framing.decoder()
  local _, err = d:feed(unhex("00 00 00 00 c0"))
  T.eq(framing.EMPTY_FRAME, err.code, "code")
end)

T.test("decode_body: any integer width is the same value (§5)", function()
  for _, h in ipairs({ "07", "cc 07", "cd 00 07", "ce 00 00 00 07", "cf 00 00 00 00 00 00 00 07", "d0 07" }) do
    T.eq(7, framing.decode_body(unhex(h)), h)
  end
end)

T.test("decode_body: trailing bytes inside a frame and truncated values are errors", function()
  local v, err = framing.decode_body(unhex("93 01 03 07 00"))
  T.eq(nil, v, "value")
  T.eq(framing.INVALID_REQUEST, err.code, "trailing")
  v, err = framing.decode_body(unhex("95 01 01"))
  T.eq(framing.PARSE_ERROR, err.code, "truncated")
  v, err = framing.decode_body(unhex("c1"))
  T.eq(framing.PARSE_ERROR, err.code, "c1")
end)

-- Shared wire vectors written for every client (branch `clients`). They are loaded from
-- the repository when present; see docs in that file for its shape.
local vectors_path = (os.getenv("HEARTH_REPO_ROOT") or vim.fn.getcwd()) .. "/conformance/frames.json"
if vim.fn.filereadable(vectors_path) == 1 then
  dofile(os.getenv("HEARTH_NVIM_ROOT") .. "/test/conformance.lua")(T, vectors_path)
else
  T.out("# conformance/frames.json is not in this checkout: no shared vectors to run")
end

T.run("framing_spec")
