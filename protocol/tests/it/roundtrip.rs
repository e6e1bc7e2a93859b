//! Property tests over valid frame streams of both versions: every message encodes and decodes
//! back to itself, however a stream is cut into chunks the decoder yields the same frames, and
//! a damaged body is an error, never a panic.

use bytes::{Bytes, BytesMut};
use hearth_protocol::{
    Cancel, DEFAULT_MAX_DEPTH, Encoder, ErrorCode, ErrorObject, Message, Notification, Partial,
    Request, RequestOptions, Response, Text, Version,
};
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

fn options() -> impl Strategy<Value = RequestOptions> {
    (
        proptest::option::of(any::<u64>()),
        proptest::option::of(".{0,12}"),
        any::<bool>(),
    )
        .prop_map(|(deadline_ms, supersede, stream)| RequestOptions {
            deadline_ms,
            supersede: supersede.map(Text::from),
            stream,
        })
}

/// A message valid in `version`: partials and request options only in version 2.
fn message(version: Version) -> impl Strategy<Value = Message> {
    let v2 = version >= Version::V2;
    let opts = options().prop_map(move |o| if v2 { o } else { RequestOptions::default() });
    let partial = (any::<u64>(), any::<u64>(), value()).prop_map(move |(id, seq, chunk)| {
        if v2 {
            Message::Partial(Partial {
                id: id.into(),
                seq,
                chunk: chunk.into(),
            })
        } else {
            Message::Cancel(Cancel { id: id.into() })
        }
    });
    prop_oneof![
        (any::<u64>(), ".{0,20}", value(), opts).prop_map(|(id, method, params, options)| {
            Message::Request(Request {
                id: id.into(),
                method: method.into(),
                params: params.into(),
                options,
            })
        }),
        (any::<u64>(), value()).prop_map(|(id, result)| {
            Message::Response(Response {
                id: id.into(),
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
                    id: id.into(),
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
        any::<u64>().prop_map(|id| Message::Cancel(Cancel { id: id.into() })),
        partial,
    ]
}

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::V1), Just(Version::V2)]
}

/// A version and a list of messages valid in it.
fn stream() -> impl Strategy<Value = (Version, Vec<Message>)> {
    version().prop_flat_map(|v| (Just(v), proptest::collection::vec(message(v), 1..20)))
}

fn encode(enc: &Encoder, out: &mut BytesMut, m: &Message) {
    let r = match m {
        Message::Request(r) => enc.request_raw_with(out, r.id, r.method(), &r.params, &r.options),
        Message::Response(r) => match &r.outcome {
            Ok(v) => enc.response_raw(out, r.id, v),
            Err(e) => enc.error_response(out, r.id, e),
        },
        Message::Notification(n) => enc.notification_raw(out, n.method(), &n.params),
        Message::Cancel(c) => enc.cancel(out, c.id),
        Message::Partial(p) => enc.partial_raw(out, p.id, p.seq, &p.chunk),
    };
    r.expect("encodes");
}

fn wire_of(version: Version, msgs: &[Message]) -> BytesMut {
    let enc = Encoder::default().with_version(version);
    let mut wire = BytesMut::new();
    for m in msgs {
        encode(&enc, &mut wire, m);
    }
    wire
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity((v, msgs) in stream(),
                                      chunks in proptest::collection::vec(1usize..64, 1..8)) {
        let wire = wire_of(v, &msgs);
        let frames = frames_in_chunks(&wire, &chunks).expect("valid stream");
        prop_assert_eq!(frames.len(), msgs.len());
        for (frame, sent) in frames.into_iter().zip(&msgs) {
            let got = Message::decode_any(frame, DEFAULT_MAX_DEPTH).expect("decodes");
            prop_assert_eq!(got.version, v);
            prop_assert_eq!(&got.message, sent);
        }
    }

    /// A valid stream of frames cut anywhere — whole, at random sizes, byte by byte — gives
    /// the same frames, and the same number as were written.
    #[test]
    fn chunking_never_changes_the_frames((v, msgs) in stream(),
                                         chunks in proptest::collection::vec(1usize..32, 1..8)) {
        let wire = wire_of(v, &msgs);
        let whole = frames_in_chunks(&wire, &[wire.len().max(1)]).expect("valid stream");
        prop_assert_eq!(whole.len(), msgs.len());
        prop_assert_eq!(&Ok(whole.clone()), &frames_in_chunks(&wire, &chunks));
        prop_assert_eq!(&Ok(whole), &frames_in_chunks(&wire, &[1]));
    }

    /// A valid body with one byte changed decodes to something or fails with an error; it
    /// never panics, and a version-1-only decode never yields a version 2 message.
    #[test]
    fn damaged_bodies_never_panic((v, msgs) in stream(), at in any::<prop::sample::Index>(),
                                  byte in any::<u8>()) {
        let wire = wire_of(v, &msgs[..1]);
        let mut body = wire[hearth_protocol::HEADER_LEN..].to_vec();
        let i = at.index(body.len());
        body[i] = byte;
        let _ = Message::decode_any(Bytes::from(body.clone()), DEFAULT_MAX_DEPTH);
        if let Ok(m) = Message::decode(Bytes::from(body)) {
            prop_assert!(!matches!(m, Message::Partial(_)));
        }
    }

    #[test]
    fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 1..256)) {
        let _ = Message::decode_any(Bytes::from(body), DEFAULT_MAX_DEPTH);
    }
}
