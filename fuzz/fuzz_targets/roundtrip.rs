//! Fuzz target, structure-aware: an arbitrary `Message` (params, results and error data are
//! arbitrary MessagePack of bounded depth, see `hearth_fuzz::MsgPack`) is encoded with the
//! `Encoder`, cut out by the `FrameDecoder` and decoded; the result must be the message sent.
//! Values nested past the protocol's limit must be refused as a parse error instead, with the
//! request's id. Also checks `value::skip` against `rmpv` on every generated value.

#![no_main]

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use hearth_fuzz::MsgPack;
use hearth_protocol::{
    Cancel, DEFAULT_MAX_DEPTH, DecodeError, Encoder, ErrorCode, ErrorObject, FrameDecoder, Message,
    Notification, Request, Response, Text, value,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Input {
    Request {
        id: u64,
        method: String,
        params: MsgPack,
    },
    Response {
        id: u64,
        result: MsgPack,
    },
    ErrorResponse {
        id: u64,
        code: i64,
        message: String,
        data: Option<MsgPack>,
    },
    Notification {
        method: String,
        params: MsgPack,
    },
    Cancel {
        id: u64,
    },
}

impl Input {
    /// The message, the depth of its deepest value, and the id a refusal should carry.
    fn build(self) -> (Message, usize, Option<u64>) {
        let b = |v: MsgPack| Bytes::from(v.bytes);
        match self {
            Self::Request { id, method, params } => (
                Message::Request(Request {
                    id,
                    method: Text::from(method),
                    params: b(params.clone()),
                }),
                params.depth,
                Some(id),
            ),
            Self::Response { id, result } => (
                Message::Response(Response {
                    id,
                    outcome: Ok(b(result.clone())),
                }),
                result.depth,
                None,
            ),
            Self::ErrorResponse {
                id,
                code,
                message,
                data,
            } => {
                // The error map is one level below the envelope; its data one more.
                let depth = data.as_ref().map_or(1, |d| d.depth + 1);
                let mut error = ErrorObject::new(ErrorCode(code), message);
                error.data = data.map(b);
                (
                    Message::Response(Response {
                        id,
                        outcome: Err(error),
                    }),
                    depth,
                    None,
                )
            }
            Self::Notification { method, params } => (
                Message::Notification(Notification {
                    method: Text::from(method),
                    params: b(params.clone()),
                }),
                params.depth,
                None,
            ),
            Self::Cancel { id } => (Message::Cancel(Cancel { id }), 0, None),
        }
    }
}

/// `value::skip` and rmpv agree on a generated value's length, and it has the depth we built.
fn check_value(v: &MsgPack) {
    match value::skip(&v.bytes, DEFAULT_MAX_DEPTH) {
        Ok(end) => assert_eq!(end, v.bytes.len(), "skip ends where the value ends"),
        Err(e) => assert!(
            v.depth > DEFAULT_MAX_DEPTH,
            "skip refused depth {}: {e}",
            v.depth
        ),
    }
    let mut rd = &v.bytes[..];
    let decoded = rmpv::decode::read_value(&mut rd).expect("rmpv reads a generated value");
    assert!(rd.is_empty(), "rmpv reads the whole value");
    assert_eq!(
        hearth_fuzz::rmpv_depth(&decoded),
        v.depth,
        "depth as generated"
    );
}

fuzz_target!(|input: Input| {
    match &input {
        Input::Request { params: v, .. }
        | Input::Response { result: v, .. }
        | Input::Notification { params: v, .. }
        | Input::ErrorResponse { data: Some(v), .. } => check_value(v),
        _ => {}
    }
    let (msg, depth, id) = input.build();
    let mut wire = BytesMut::new();
    hearth_fuzz::encode(&Encoder::default(), &mut wire, &msg).expect("encodes");
    let frame = FrameDecoder::new(u32::MAX as usize)
        .decode(&mut wire)
        .expect("a valid header")
        .expect("a whole frame");
    assert!(wire.is_empty(), "exactly one frame");
    let decoded = Message::decode(frame);
    // The envelope is a level of its own.
    if depth < DEFAULT_MAX_DEPTH {
        assert_eq!(decoded, Ok(msg));
    } else {
        match decoded {
            Err(DecodeError::Parse { id: got, .. }) => assert_eq!(got, id, "refusal's id"),
            other => panic!("depth {depth} must be a parse error, got {other:?}"),
        }
    }
});
