//! Helpers shared by hearth's fuzz targets, so each target stays a few lines over library
//! code: how a raw input is split into a chunking plan and a byte stream ([`Plan`]), a
//! bounded-depth generator of arbitrary MessagePack ([`MsgPack`]), and the re-encoding of a
//! decoded [`Message`] with the `Encoder`'s raw methods ([`encode`]). The seed corpus
//! generator (`seeds.rs`) writes inputs in the layout [`Plan`] reads.
//!
//! Nothing here checks the library: assertions live in the targets.

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use hearth_protocol::{Encoder, Message};

/// Most chunk-size bytes a plan may carry.
pub const MAX_CHUNK_BYTES: usize = 7;

/// A raw input read as `[count][count chunk-size bytes][stream...]`: the stream is delivered
/// in chunks whose sizes cycle through the size bytes (see [`chunk_len`]). A count of zero (or
/// an input too short for its sizes) delivers the stream in one piece.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    /// The chunk-size bytes.
    pub sizes: &'a [u8],
    /// The bytes to deliver.
    pub stream: &'a [u8],
}

impl<'a> Plan<'a> {
    /// Splits `data` into a plan. Never fails: every input is some plan.
    pub fn parse(data: &'a [u8]) -> Self {
        let Some((&count, rest)) = data.split_first() else {
            return Self {
                sizes: &[],
                stream: &[],
            };
        };
        let count = (count as usize % (MAX_CHUNK_BYTES + 1)).min(rest.len());
        let (sizes, stream) = rest.split_at(count);
        Self { sizes, stream }
    }

    /// The stream cut into its chunks, in order; together they are exactly the stream.
    pub fn chunks(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let sizes = self.sizes;
        let mut rest = self.stream;
        let mut i = 0usize;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let n = match sizes.get(i % sizes.len().max(1)) {
                Some(&b) if !sizes.is_empty() => chunk_len(b),
                _ => rest.len(),
            };
            i += 1;
            let (chunk, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            Some(chunk)
        })
    }

    /// The inverse of [`Plan::parse`]: `sizes` (at most [`MAX_CHUNK_BYTES`]) then `stream`.
    pub fn to_input(sizes: &[u8], stream: &[u8]) -> Vec<u8> {
        assert!(sizes.len() <= MAX_CHUNK_BYTES);
        let mut out = vec![sizes.len() as u8];
        out.extend_from_slice(sizes);
        out.extend_from_slice(stream);
        out
    }
}

/// A chunk length from one plan byte: the low 6 bits scaled by the top 2, so one byte reaches
/// single bytes (1..=64), a few hundred, a few thousand and tens of thousands.
pub fn chunk_len(b: u8) -> usize {
    (1 + usize::from(b & 0x3f)) << (3 * usize::from(b >> 6))
}

/// Deepest value [`MsgPack`] generates (one more than the protocol allows inside an
/// envelope, so both sides of the limit are reached).
pub const MAX_GEN_DEPTH: usize = 66;

/// One arbitrary, well-formed MessagePack value, with its nesting depth (a scalar is 0, `[1]`
/// is 1, empty containers count). Built with `rmp::encode`, choosing among every encoding
/// width, including non-minimal ones a peer may legally send.
#[derive(Debug, Clone, PartialEq)]
pub struct MsgPack {
    /// The encoded value.
    pub bytes: Vec<u8>,
    /// Its nesting depth.
    pub depth: usize,
}

impl<'a> Arbitrary<'a> for MsgPack {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        // Usually shallow; sometimes a deep spine, to walk up to the depth limit.
        let max_depth = if u.ratio(1, 8)? {
            u.int_in_range(0..=MAX_GEN_DEPTH)?
        } else {
            u.int_in_range(0..=4)?
        };
        let mut bytes = Vec::new();
        let mut budget = 64usize; // containers' elements, in total
        let depth = write_value(u, &mut bytes, max_depth, &mut budget)?;
        Ok(Self { bytes, depth })
    }
}

/// Writes one value nested at most `depth_left` levels; returns its depth. Recursion is
/// bounded by `depth_left` (at most [`MAX_GEN_DEPTH`]) and work by `budget`.
fn write_value(
    u: &mut Unstructured<'_>,
    out: &mut Vec<u8>,
    depth_left: usize,
    budget: &mut usize,
) -> arbitrary::Result<usize> {
    use rmp::encode as e;
    let kinds = if depth_left == 0 { 17 } else { 20 };
    // Writing to a Vec cannot fail; the results are ignored.
    match u.choose_index(kinds)? {
        0 => drop(e::write_nil(out)),
        1 => drop(e::write_bool(out, bool::arbitrary(u)?)),
        2 => drop(e::write_uint(out, u64::arbitrary(u)?)),
        3 => drop(e::write_sint(out, i64::arbitrary(u)?)),
        4 => drop(e::write_u8(out, u8::arbitrary(u)?)),
        5 => drop(e::write_u16(out, u16::arbitrary(u)?)),
        6 => drop(e::write_u32(out, u32::arbitrary(u)?)),
        7 => drop(e::write_u64(out, u64::arbitrary(u)?)),
        8 => drop(e::write_i8(out, i8::arbitrary(u)?)),
        9 => drop(e::write_i16(out, i16::arbitrary(u)?)),
        10 => drop(e::write_i32(out, i32::arbitrary(u)?)),
        11 => drop(e::write_i64(out, i64::arbitrary(u)?)),
        12 => drop(e::write_f32(out, f32::arbitrary(u)?)),
        13 => drop(e::write_f64(out, f64::arbitrary(u)?)),
        14 => drop(e::write_str(out, <&str>::arbitrary(u)?)),
        15 => drop(e::write_bin(out, <&[u8]>::arbitrary(u)?)),
        16 => {
            let data = <&[u8]>::arbitrary(u)?;
            let ty = i8::arbitrary(u)?;
            drop(e::write_ext_meta(out, data.len() as u32, ty));
            out.extend_from_slice(data);
        }
        // Containers: 17 and 18 arrays (one of them a single-child spine), 19 maps.
        k => {
            let n = if k == 18 {
                1
            } else {
                u.int_in_range(0..=4u32)?.min(*budget as u32)
            };
            *budget = budget.saturating_sub(n as usize);
            let wide = bool::arbitrary(u)?;
            if k == 19 {
                if wide {
                    out.push(0xde);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                } else {
                    drop(e::write_map_len(out, n));
                }
            } else if wide {
                out.push(0xdd);
                out.extend_from_slice(&n.to_be_bytes());
            } else {
                drop(e::write_array_len(out, n));
            }
            let children = if k == 19 { 2 * n } else { n };
            let mut deepest = 0;
            for _ in 0..children {
                deepest = deepest.max(write_value(u, out, depth_left - 1, budget)?);
            }
            return Ok(deepest + 1);
        }
    }
    Ok(0)
}

/// Appends `msg` as one frame, written with the `Encoder`'s raw methods (and
/// `error_response` / `cancel`, which have no typed counterpart).
pub fn encode(
    enc: &Encoder,
    dst: &mut BytesMut,
    msg: &Message,
) -> Result<(), hearth_protocol::EncodeError> {
    match msg {
        Message::Request(r) => enc.request_raw_with(dst, r.id, r.method(), &r.params, &r.options),
        Message::Response(r) => match &r.outcome {
            Ok(result) => enc.response_raw(dst, r.id, result),
            Err(error) => enc.error_response(dst, r.id, error),
        },
        Message::Notification(n) => enc.notification_raw(dst, n.method(), &n.params),
        Message::Cancel(c) => enc.cancel(dst, c.id),
        Message::Partial(p) => enc.partial_raw(dst, p.id, p.seq, &p.chunk),
    }
}

/// The nesting depth of a decoded `rmpv` value, counted the way `hearth_protocol::value`
/// counts it (a scalar is 0; every array or map is a level, even when empty).
pub fn rmpv_depth(v: &rmpv::Value) -> usize {
    match v {
        rmpv::Value::Array(items) => 1 + items.iter().map(rmpv_depth).max().unwrap_or(0),
        rmpv::Value::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| rmpv_depth(k).max(rmpv_depth(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}
