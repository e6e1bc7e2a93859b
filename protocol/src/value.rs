//! A MessagePack reader that walks values without building them: [`skip`] finds where one value
//! ends, and [`Reader`] reads the few scalar fields of an envelope. This is how params and
//! results stay raw bytes until a handler deserializes them into its own type.
//!
//! Everything here is bounded by the input: a declared array, map, string or binary length is
//! checked against the bytes actually left before it is believed (an array of n elements needs
//! at least n more bytes), nesting is limited by an explicit depth, and walking is iterative,
//! so no input can make it allocate, recurse or loop beyond O(input length).

/// The default maximum nesting depth of a message, counting the envelope array itself.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// What is wrong with a MessagePack value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The input ended inside a value.
    #[error("truncated MessagePack value at byte {0}")]
    Truncated(usize),
    /// The marker byte 0xc1, which MessagePack never uses.
    #[error("reserved MessagePack marker 0xc1 at byte {0}")]
    Reserved(usize),
    /// A container or string declares more content than the input holds.
    #[error("length {declared} at byte {at} overruns the {left} bytes left")]
    Overrun {
        /// Where the length was read.
        at: usize,
        /// What it declared (elements or bytes).
        declared: u64,
        /// Bytes actually left after the header.
        left: usize,
    },
    /// Containers nest deeper than allowed.
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
}

/// The shape of a value as told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// nil
    Nil,
    /// true or false
    Bool(bool),
    /// An integer that fits in u64.
    Uint(u64),
    /// A negative integer.
    Int(i64),
    /// A 32- or 64-bit float.
    Float,
    /// A string of this many bytes.
    Str(u32),
    /// A binary blob of this many bytes.
    Bin(u32),
    /// An array of this many elements.
    Array(u32),
    /// A map of this many key/value pairs.
    Map(u32),
    /// An extension value of this many data bytes.
    Ext(u32),
}

impl Head {
    /// A word for error messages: "nil", "a string", ...
    pub fn describe(self) -> &'static str {
        match self {
            Self::Nil => "nil",
            Self::Bool(_) => "a boolean",
            Self::Uint(_) => "an integer",
            Self::Int(_) => "a negative integer",
            Self::Float => "a float",
            Self::Str(_) => "a string",
            Self::Bin(_) => "binary data",
            Self::Array(_) => "an array",
            Self::Map(_) => "a map",
            Self::Ext(_) => "an extension value",
        }
    }
}

/// A cursor over a MessagePack byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// A reader over `buf` that starts at byte `pos` (at most `buf.len()`).
    pub(crate) fn at(buf: &'a [u8], pos: usize) -> Self {
        debug_assert!(pos <= buf.len());
        Self { buf, pos }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ValueError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(ValueError::Truncated(self.pos))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// A big-endian unsigned integer of `n` bytes (at most 8).
    #[inline]
    fn be(&mut self, n: usize) -> Result<u64, ValueError> {
        // `pos <= len`, and both are far from `usize::MAX`: the sum cannot overflow.
        let Some(bytes) = self.buf.get(self.pos..self.pos + n) else {
            return Err(ValueError::Truncated(self.pos));
        };
        self.pos += n;
        Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// Reads the head of the next value: its kind and, for scalars, the value. The content of
    /// strings, binaries, extensions and containers is not consumed.
    #[inline]
    pub fn head(&mut self) -> Result<Head, ValueError> {
        let at = self.pos;
        let Some(&marker) = self.buf.get(at) else {
            return Err(ValueError::Truncated(at));
        };
        self.pos = at + 1;
        // The one-byte forms every envelope is made of, inline; the rest out of line.
        match marker {
            0x00..=0x7f => Ok(Head::Uint(u64::from(marker))),
            0x80..=0x8f => Ok(Head::Map(u32::from(marker & 0x0f))),
            0x90..=0x9f => Ok(Head::Array(u32::from(marker & 0x0f))),
            0xa0..=0xbf => Ok(Head::Str(u32::from(marker & 0x1f))),
            0xc0 => Ok(Head::Nil),
            // Request ids past 127.
            0xcc..=0xcf => Ok(Head::Uint(self.be(1 << (marker - 0xcc))?)),
            _ => self.long_head(marker, at),
        }
    }

    /// [`head`](Self::head) for the markers it does not handle inline.
    #[inline(never)]
    fn long_head(&mut self, marker: u8, at: usize) -> Result<Head, ValueError> {
        let head = match marker {
            // `head` answers these itself and never calls here with them; read them there.
            0x00..=0xc0 | 0xcc..=0xcf => {
                self.pos = at;
                return self.head();
            }
            0xc1 => return Err(ValueError::Reserved(at)),
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4 => Head::Bin(self.be(1)? as u32),
            0xc5 => Head::Bin(self.be(2)? as u32),
            0xc6 => Head::Bin(self.be(4)? as u32),
            0xc7..=0xc9 => {
                let len = self.be(1 << (marker - 0xc7))? as u32;
                self.take(1)?; // extension type
                Head::Ext(len)
            }
            0xca => {
                self.take(4)?;
                Head::Float
            }
            0xcb => {
                self.take(8)?;
                Head::Float
            }
            0xd0..=0xd3 => {
                let width = 1usize << (marker - 0xd0);
                let raw = self.be(width)?;
                // Sign-extend from `width` bytes.
                let shift = 64 - 8 * width as u32;
                let v = ((raw << shift) as i64) >> shift;
                if v >= 0 {
                    Head::Uint(v as u64)
                } else {
                    Head::Int(v)
                }
            }
            0xd4..=0xd8 => {
                self.take(1)?; // extension type
                Head::Ext(1 << (marker - 0xd4))
            }
            0xd9 => Head::Str(self.be(1)? as u32),
            0xda => Head::Str(self.be(2)? as u32),
            0xdb => Head::Str(self.be(4)? as u32),
            0xdc => Head::Array(self.be(2)? as u32),
            0xdd => Head::Array(self.be(4)? as u32),
            0xde => Head::Map(self.be(2)? as u32),
            0xdf => Head::Map(self.be(4)? as u32),
            0xe0..=0xff => Head::Int(i64::from(marker as i8)),
        };
        Ok(head)
    }

    /// Consumes `len` content bytes of a string, binary or extension whose head was just read.
    pub fn bytes(&mut self, len: u32) -> Result<&'a [u8], ValueError> {
        let at = self.pos;
        let left = self.remaining();
        if len as usize > left {
            return Err(ValueError::Overrun {
                at,
                declared: u64::from(len),
                left,
            });
        }
        self.take(len as usize)
    }

    /// Skips one whole value, nested at most `max_depth` levels (a scalar is depth 0, `[1]`
    /// is depth 1), and returns the byte range it occupied.
    #[inline]
    pub fn skip(&mut self, max_depth: usize) -> Result<std::ops::Range<usize>, ValueError> {
        let start = self.pos;
        let Some(&marker) = self.buf.get(start) else {
            return Err(ValueError::Truncated(start));
        };
        // The values most params and results are — one-byte scalars and short strings — are
        // skipped here, inline; everything else (and every error but a short string's
        // overrun, which is reported exactly as `bytes` reports it) out of line.
        match marker {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => {
                self.pos = start + 1;
                Ok(start..start + 1)
            }
            0xa0..=0xbf => {
                let at = start + 1;
                let n = usize::from(marker & 0x1f);
                let left = self.buf.len() - at;
                if n > left {
                    return Err(ValueError::Overrun {
                        at,
                        declared: n as u64,
                        left,
                    });
                }
                self.pos = at + n;
                Ok(start..self.pos)
            }
            _ => self.skip_long(max_depth),
        }
    }

    /// [`skip`](Self::skip) for the values it does not handle inline.
    #[inline(never)]
    fn skip_long(&mut self, max_depth: usize) -> Result<std::ops::Range<usize>, ValueError> {
        let start = self.pos;
        // Scalars and strings need no stack at all.
        let mut probe = self.clone();
        match probe.head()? {
            Head::Str(n) | Head::Bin(n) | Head::Ext(n) => {
                probe.bytes(n)?;
                *self = probe;
                return Ok(start..self.pos);
            }
            Head::Array(_) | Head::Map(_) => {} // walked below, from `start`
            _ => {
                *self = probe;
                return Ok(start..self.pos);
            }
        }
        // `pending` counts values still to skip at each open container level. Depth is capped,
        // so the stack is a small fixed array rather than an allocation; counts fit in u32
        // because no container may claim more children than bytes left in the input.
        let mut pending = [0u32; DEFAULT_MAX_DEPTH + 1];
        let limit = max_depth.min(DEFAULT_MAX_DEPTH);
        let mut depth = 0usize;
        let mut values_left = 1u64; // at the current level
        loop {
            while values_left == 0 {
                if depth == 0 {
                    return Ok(start..self.pos);
                }
                depth -= 1;
                values_left = u64::from(pending[depth]);
            }
            values_left -= 1;
            let at = self.pos;
            let children = match self.head()? {
                Head::Str(n) | Head::Bin(n) | Head::Ext(n) => {
                    self.bytes(n)?;
                    continue;
                }
                Head::Array(n) => u64::from(n),
                Head::Map(n) => 2 * u64::from(n),
                _ => continue,
            };
            // A container is a level even when empty.
            if depth >= limit {
                return Err(ValueError::TooDeep(limit));
            }
            if children == 0 {
                continue;
            }
            // Every child takes at least one byte: believe no more children than bytes left.
            let left = self.remaining();
            if children > left as u64 || children > u64::from(u32::MAX) {
                return Err(ValueError::Overrun {
                    at,
                    declared: children,
                    left,
                });
            }
            pending[depth] = values_left as u32;
            depth += 1;
            values_left = children;
        }
    }
}

/// Returns how many bytes the first MessagePack value in `buf` occupies, checking that it is
/// well formed and nests no deeper than `max_depth` (at most [`DEFAULT_MAX_DEPTH`]).
pub fn skip(buf: &[u8], max_depth: usize) -> Result<usize, ValueError> {
    Reader::new(buf).skip(max_depth).map(|r| r.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack<T: serde::Serialize>(v: &T) -> Vec<u8> {
        crate::to_msgpack(v).expect("encodes")
    }

    #[test]
    fn skips_scalars_and_containers_exactly() {
        let cases: Vec<Vec<u8>> = vec![
            pack(&()),
            pack(&true),
            pack(&0u8),
            pack(&u64::MAX),
            pack(&-1i8),
            pack(&i64::MIN),
            pack(&1.5f32),
            pack(&2.5f64),
            pack(&"x".repeat(300)),
            pack(&vec![1u8; 70_000]),
            pack(&std::collections::BTreeMap::from([
                ("a", vec![1, 2]),
                ("b", vec![]),
            ])),
        ];
        for bytes in cases {
            let mut with_tail = bytes.clone();
            with_tail.extend_from_slice(&[0xc0, 0xc0]);
            assert_eq!(skip(&with_tail, 8), Ok(bytes.len()), "{bytes:x?}");
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = pack(&(1u32, "hello", vec![(), ()], u64::MAX, -300i32));
        for cut in 0..bytes.len() {
            assert!(skip(&bytes[..cut], 8).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn reserved_marker_is_rejected() {
        assert_eq!(skip(&[0xc1], 8), Err(ValueError::Reserved(0)));
        assert_eq!(skip(&[0x91, 0xc1], 8), Err(ValueError::Reserved(1)));
    }

    #[test]
    fn huge_declared_lengths_are_not_believed() {
        // array32, map32, str32, bin32 each claiming ~4 billion, followed by one byte.
        for marker in [0xdd, 0xdf, 0xdb, 0xc6] {
            let buf = [marker, 0xff, 0xff, 0xff, 0xff, 0x00];
            assert!(
                matches!(skip(&buf, 8), Err(ValueError::Overrun { .. })),
                "{marker:x}"
            );
        }
    }

    #[test]
    fn depth_is_limited() {
        let mut nested = vec![0x91u8; 100_000];
        nested.push(0xc0);
        assert_eq!(skip(&nested, 64), Err(ValueError::TooDeep(64)));
        let ok = [vec![0x91u8; 64], vec![0xc0]].concat();
        assert_eq!(skip(&ok, 64), Ok(65));
        let too_deep = [vec![0x91u8; 65], vec![0xc0]].concat();
        assert_eq!(skip(&too_deep, 64), Err(ValueError::TooDeep(64)));
        // Maps count as a level too, and so do empty containers.
        assert_eq!(skip(&[0x81, 0x90, 0x80], 2), Ok(3));
        assert_eq!(skip(&[0x81, 0x90, 0x80], 1), Err(ValueError::TooDeep(1)));
        assert_eq!(skip(&[0x90], 0), Err(ValueError::TooDeep(0)));
    }

    /// The inline cases of `skip` answer exactly as the general walk does, for every marker
    /// byte followed by every length of tail up to 40 bytes.
    #[test]
    fn inline_skip_agrees_with_the_general_walk() {
        for marker in 0u8..=0xff {
            for tail in 0..40usize {
                let mut buf = vec![marker];
                buf.extend((0..tail).map(|i| 0xa0 + (i as u8 % 3)));
                for depth in [0, 1, 8] {
                    let (mut inline, mut long) = (Reader::new(&buf), Reader::new(&buf));
                    assert_eq!(
                        inline.skip(depth),
                        long.skip_long(depth),
                        "{buf:02x?} at depth {depth}"
                    );
                    assert_eq!(inline.position(), long.position(), "{buf:02x?}");
                }
            }
        }
        assert_eq!(Reader::new(&[]).skip(8), Err(ValueError::Truncated(0)));
        let mut after = Reader::at(&[0xc0, 0xa2, b'h'], 1);
        assert_eq!(
            after.skip(8),
            Err(ValueError::Overrun {
                at: 2,
                declared: 2,
                left: 1
            })
        );
    }

    #[test]
    fn signed_encodings_of_non_negative_numbers_read_as_uint() {
        assert_eq!(Reader::new(&[0xd0, 0x05]).head(), Ok(Head::Uint(5)));
        assert_eq!(Reader::new(&[0xd0, 0xff]).head(), Ok(Head::Int(-1)));
        assert_eq!(
            Reader::new(&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]).head(),
            Ok(Head::Int(i64::MIN))
        );
        assert_eq!(Reader::new(&[0xe0]).head(), Ok(Head::Int(-32)));
    }
}
