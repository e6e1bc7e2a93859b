-- hearth.framing owns the bytes of the hearth wire (docs/PROTOCOL.md §4, §5): a frame is a
-- 4-byte big-endian length N followed by N bytes holding exactly one MessagePack value.
-- It encodes values into frames and turns an arbitrary stream of reads back into frame
-- bodies. It is pure: no sockets, no timers, no Neovim API beyond vim.mpack, so it can be
-- tested byte by byte. It deliberately leaves envelopes (what the arrays mean) to
-- hearth.client.
--
-- The decoder keeps its state explicit (waiting for a header, or for a body of n bytes),
-- checks a header against max_frame before it buffers any of the body, and keeps received
-- data as a list of chunks plus an offset into the first one, so a frame that arrives one
-- byte per read costs linear time, never quadratic string concatenation.

local M = {}

M.DEFAULT_MAX_FRAME = 8 * 1024 * 1024

-- Error codes of the wire (docs/PROTOCOL.md §8.2) that framing can detect.
M.FRAME_TOO_LARGE = -32005
M.EMPTY_FRAME = -32006
M.PARSE_ERROR = -32700
M.INVALID_REQUEST = -32600

local byte, char, sub, concat = string.byte, string.char, string.sub, table.concat
local floor = math.floor

--- The 4-byte big-endian header for a body of n bytes.
function M.header(n)
  return char(floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end

--- Encodes one value into a whole frame (header + body).
--- Returns frame, or nil and an error table when the body exceeds max_frame.
function M.encode(value, max_frame)
  local body = vim.mpack.encode(value)
  max_frame = max_frame or M.DEFAULT_MAX_FRAME
  if #body > max_frame then
    return nil, {
      code = M.FRAME_TOO_LARGE,
      message = string.format("frame of %d bytes is larger than max_frame %d", #body, max_frame),
    }
  end
  return M.header(#body) .. body
end

--- Decodes one frame body as exactly one MessagePack value (trailing bytes are an error).
--- Returns value, or nil and an error table.
function M.decode_body(body)
  local ok, value = pcall(vim.mpack.decode, body)
  if not ok then
    local msg = tostring(value)
    local code = msg:find("trailing", 1, true) and M.INVALID_REQUEST or M.PARSE_ERROR
    return nil, { code = code, message = "bad frame body: " .. msg }
  end
  return value
end

local Decoder = {}
Decoder.__index = Decoder

--- A new stream decoder. max_frame: the largest body accepted (default 8 MiB).
function M.decoder(max_frame)
  return setmetatable({
    max_frame = max_frame or M.DEFAULT_MAX_FRAME,
    chunks = {}, -- received strings not yet consumed, oldest first
    first = 1, -- index in chunks of the oldest unconsumed chunk
    last = 0, -- index in chunks of the newest chunk
    offset = 0, -- bytes of chunks[first] already consumed
    buffered = 0, -- unconsumed bytes over all chunks
    need = nil, -- nil: waiting for a header; n: waiting for a body of n bytes
    broken = nil, -- set once a bad header was seen; the stream cannot be resynchronised
  }, Decoder)
end

-- Takes exactly n bytes (n <= self.buffered) off the front.
function Decoder:take(n)
  local chunks = self.chunks
  local parts, np = nil, 0
  local remaining = n
  while remaining > 0 do
    local c = chunks[self.first]
    local avail = #c - self.offset
    if avail <= remaining then
      local piece = self.offset == 0 and c or sub(c, self.offset + 1)
      remaining = remaining - avail
      chunks[self.first] = nil
      self.first = self.first + 1
      self.offset = 0
      if remaining == 0 and parts == nil then
        self.buffered = self.buffered - n
        return piece
      end
      parts = parts or {}
      np = np + 1
      parts[np] = piece
    else
      local piece = sub(c, self.offset + 1, self.offset + remaining)
      self.offset = self.offset + remaining
      remaining = 0
      if parts == nil then
        self.buffered = self.buffered - n
        return piece
      end
      np = np + 1
      parts[np] = piece
    end
  end
  self.buffered = self.buffered - n
  return concat(parts, "", 1, np)
end

--- Feeds bytes read from the stream. Returns a list of complete frame bodies (strings, in
--- order), and, when the stream is broken (a header of 0 or above max_frame), an error
--- table as second value; bodies before the bad header are still returned.
function Decoder:feed(data)
  local out = {}
  if self.broken then
    return out, self.broken
  end
  if data and #data > 0 then
    self.last = self.last + 1
    self.chunks[self.last] = data
    self.buffered = self.buffered + #data
  end
  while true do
    if self.need == nil then
      if self.buffered < 4 then
        break
      end
      local h = self:take(4)
      local b1, b2, b3, b4 = byte(h, 1, 4)
      local n = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
      if n == 0 then
        self.broken = { code = M.EMPTY_FRAME, message = "frame header announces 0 bytes" }
      elseif n > self.max_frame then
        self.broken = {
          code = M.FRAME_TOO_LARGE,
          message = string.format("frame header announces %d bytes, above max_frame %d", n, self.max_frame),
        }
      end
      if self.broken then
        self.chunks, self.first, self.last, self.offset, self.buffered = {}, 1, 0, 0, 0
        return out, self.broken
      end
      self.need = n
    end
    if self.buffered < self.need then
      break
    end
    out[#out + 1] = self:take(self.need)
    self.need = nil
  end
  return out
end

--- Bytes received but not yet part of a complete frame (0 between frames).
function Decoder:pending_bytes()
  return self.buffered + (self.need and 4 or 0)
end

return M
