//! `hearth-protocol` is the wire format shared by the hearth daemon and its clients, and nothing
//! else: bytes in, values out. It owns framing (a 4-byte big-endian length, then one
//! MessagePack value), the message envelopes of versions 1 and 2, the error codes, the shapes of the reserved
//! `$/` methods, and the default socket path rule. It never opens a socket, spawns a task or
//! reads the clock, so every behaviour here is tested deterministically; the server and client
//! crates put it on a real socket.
//!
//! The normative description is `docs/PROTOCOL.md`; this crate implements it.
//!
//! ```
//! use bytes::BytesMut;
//! use hearth_protocol::{Encoder, FrameDecoder, Message};
//!
//! let mut wire = BytesMut::new();
//! Encoder::default().request(&mut wire, 7, "echo", &"hi").unwrap();
//!
//! let mut frames = FrameDecoder::new(hearth_protocol::DEFAULT_MAX_FRAME);
//! let frame = frames.decode(&mut wire).unwrap().expect("a whole frame");
//! match Message::decode(frame).unwrap() {
//!     Message::Request(req) => {
//!         assert_eq!(req.id, 7);
//!         assert_eq!(req.method(), "echo");
//!         let params: String = hearth_protocol::from_msgpack(&req.params).unwrap();
//!         assert_eq!(params, "hi");
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

pub mod build_id;
mod encode;
mod error;
mod frame;
mod message;
pub mod paths;
pub mod reserved;
pub mod value;

pub use encode::Encoder;
pub use error::{DecodeError, EncodeError, ErrorCode, ErrorObject, FrameError};
pub use frame::{DEFAULT_MAX_FRAME, FrameDecoder, HEADER_LEN, RESERVE_CHUNK};
pub use message::{
    Cancel, Decoded, Message, Notification, Partial, Request, RequestId, RequestOptions, Response,
    Text, Version,
};
pub use value::DEFAULT_MAX_DEPTH;

/// The newest protocol version this crate speaks (see [`Version`]).
pub const PROTOCOL_VERSION: u32 = Version::LATEST.number();

/// Every protocol version this crate can speak, as advertised in `$/fatal` and `$/hello`.
pub const SUPPORTED_VERSIONS: &[u32] = &[1, 2];

/// Deserializes a MessagePack value (params, a result, error data) into a typed value.
///
/// Structs may arrive as maps with field names (what hearth sends) or as arrays.
pub fn from_msgpack<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

/// Serializes a value to MessagePack the way hearth puts it on the wire: structs as maps with
/// field names, so fields can be added later without breaking older peers.
pub fn to_msgpack<T: serde::Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut out = Vec::new();
    value.serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())?;
    Ok(out)
}
