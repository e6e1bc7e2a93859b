//! Property tests: every message encodes and decodes back to itself, and however a stream of
//! frames is cut into chunks, the decoder yields the same frames.

use bytes::{Bytes, BytesMut};
use hearth_protocol::{Encoder, ErrorCode, ErrorObject, Message};
use proptest::prelude::*;

use crate::support::frames_in_chunks;

/// Arbitrary MessagePack values, encoded, for params and results.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(rmpv::Value::Nil),
        any::<bool>().prop_map(rmpv::Value::from),
        any::<u64>().prop_map(rmpv::Value::from),
        any::<i64>().prop_map(rmpv::Value::from),
        any::<f64>().prop_map(rmpv::Value::from),
        ".{0,40}".prop_map(rmpv::Value::from),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(rmpv::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(rmpv::Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..8).prop_map(rmpv::Value::Map),
        ]
    })
    .prop_map(|v| {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &v).expect("vec write");
        out
    })
}

fn message() -> impl Strategy<Value = Message> {
    use hearth_protocol::{Cancel, Notification, Request, Response};
    prop_oneof![
        (any::<u64>(), ".{0,20}", value()).prop_map(|(id, method, params)| {
            Message::Request(Request {
                id,
                method: method.into(),
                params: params.into(),
            })
        }),
        (any::<u64>(), value()).prop_map(|(id, result)| {
            Message::Response(Response {
                id,
                outcome: Ok(result.into()),
            })
        }),
        (
            any::<u64>(),
            any::<i64>(),
            ".{0,30}",
            proptest::option::of(value())
        )
            .prop_map(|(id, code, message, data)| {
                Message::Response(Response {
                    id,
                    outcome: Err(ErrorObject {
                        code: ErrorCode(code),
                        message,
                        data: data.map(Bytes::from),
                    }),
                })
            }),
        (".{0,20}", value()).prop_map(|(method, params)| {
            Message::Notification(Notification {
                method: method.into(),
                params: params.into(),
            })
        }),
        any::<u64>().prop_map(|id| Message::Cancel(Cancel { id })),
    ]
}

fn encode(enc: &Encoder, out: &mut BytesMut, m: &Message) {
    let r = match m {
        Message::Request(r) => enc.request_raw(out, r.id, r.method(), &r.params),
        Message::Response(r) => match &r.outcome {
            Ok(v) => enc.response_raw(out, r.id, v),
            Err(e) => enc.error_response(out, r.id, e),
        },
        Message::Notification(n) => enc.notification_raw(out, n.method(), &n.params),
        Message::Cancel(c) => enc.cancel(out, c.id),
    };
    r.expect("encodes");
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(msgs in proptest::collection::vec(message(), 1..20),
                                      chunks in proptest::collection::vec(1usize..64, 1..8)) {
        let enc = Encoder::default();
        let mut wire = BytesMut::new();
        for m in &msgs {
            encode(&enc, &mut wire, m);
        }
        let frames = frames_in_chunks(&wire, &chunks).expect("valid stream");
        prop_assert_eq!(frames.len(), msgs.len());
        for (frame, sent) in frames.into_iter().zip(&msgs) {
            prop_assert_eq!(&Message::decode(frame).expect("decodes"), sent);
        }
    }

    #[test]
    fn chunking_never_changes_the_frames(wire in proptest::collection::vec(any::<u8>(), 0..512),
                                         chunks in proptest::collection::vec(1usize..32, 1..8)) {
        let whole = frames_in_chunks(&wire, &[wire.len().max(1)]);
        let split = frames_in_chunks(&wire, &chunks);
        let bytewise = frames_in_chunks(&wire, &[1]);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(&whole, &bytewise);
    }

    #[test]
    fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 1..256)) {
        let _ = Message::decode(Bytes::from(body));
    }
}
