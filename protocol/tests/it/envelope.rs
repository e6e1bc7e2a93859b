//! The wire bytes of every example in docs/PROTOCOL.md, and the classification of bad bodies:
//! parse error, invalid envelope (with the id when it can be read), trailing bytes, version.

use bytes::{Bytes, BytesMut};
use hearth_protocol::{DecodeError, Encoder, ErrorCode, ErrorObject, Message, Request, reserved};
use serde::Serialize;

use crate::support::hex;

fn decode_hex(s: &str) -> Result<Message, DecodeError> {
    Message::decode(Bytes::from(hex(s)))
}

#[derive(Serialize)]
struct Hi {
    hi: u8,
}

#[test]
fn documented_request_bytes() {
    let mut out = BytesMut::new();
    Encoder::default()
        .request(&mut out, 7, "echo", &Hi { hi: 1 })
        .expect("encodes");
    assert_eq!(
        &out[..],
        &hex("0000000e 95 01 00 07 a4 65 63 68 6f 81 a2 68 69 01")[..]
    );
}

#[test]
fn documented_response_bytes() {
    let mut out = BytesMut::new();
    let enc = Encoder::default();
    enc.response_raw(&mut out, 7, &hex("81 a2 68 69 01"))
        .expect("encodes");
    assert_eq!(&out[..], &hex("0000000a 95 01 01 07 c0 81 a2 68 69 01")[..]);

    out.clear();
    let err = ErrorObject::new(ErrorCode::METHOD_NOT_FOUND, "no such method");
    enc.error_response(&mut out, 8, &err).expect("encodes");
    assert_eq!(
        &out[..],
        &hex(
            "00000025 95 01 01 08 82 a4 63 6f 64 65 d1 80 a7 a7 6d 65 73 73 61 67 65
             ae 6e 6f 20 73 75 63 68 20 6d 65 74 68 6f 64 c0"
        )[..]
    );
}

#[test]
fn documented_notification_and_cancel_bytes() {
    let mut out = BytesMut::new();
    let enc = Encoder::default();
    enc.notification(&mut out, "progress", &50u8)
        .expect("encodes");
    assert_eq!(
        &out[..],
        &hex("0000000d 94 01 02 a8 70 72 6f 67 72 65 73 73 32")[..]
    );
    out.clear();
    enc.cancel(&mut out, 7).expect("encodes");
    assert_eq!(&out[..], &hex("00000004 93 01 03 07")[..]);
}

#[test]
fn decodes_every_kind() {
    assert_eq!(
        decode_hex("95 01 00 07 a4 65 63 68 6f 81 a2 68 69 01"),
        Ok(Message::Request(Request {
            id: 7,
            method: "echo".to_owned().into(),
            params: Bytes::from(hex("81 a2 68 69 01")),
        }))
    );
    match decode_hex("95 01 01 07 c0 2a") {
        Ok(Message::Response(r)) => {
            assert_eq!(r.id, 7);
            assert_eq!(r.outcome, Ok(Bytes::from_static(&[0x2a])));
        }
        other => panic!("{other:?}"),
    }
    match decode_hex(
        "95 01 01 08 83 a4 63 6f 64 65 d1 80 a7 a7 6d 65 73 73 61 67 65 a1 78 a4 64 61 74 61 93 01 02 03 c0",
    ) {
        Ok(Message::Response(r)) => {
            let e = r.outcome.expect_err("an error response");
            assert_eq!(e.code, ErrorCode::METHOD_NOT_FOUND);
            assert_eq!(e.message, "x");
            assert_eq!(e.data.as_deref(), Some(&hex("93 01 02 03")[..]));
        }
        other => panic!("{other:?}"),
    }
    match decode_hex("94 01 02 a1 6e c0") {
        Ok(Message::Notification(n)) => assert_eq!(n.method(), "n"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decode_hex("93 01 03 cf ff ff ff ff ff ff ff ff"),
        Ok(Message::Cancel(c)) if c.id == u64::MAX
    ));
}

/// Each malformed body, the code it must be answered with, and the id the answer goes to.
#[test]
fn malformed_bodies_are_classified() {
    let cases: &[(&str, &str, ErrorCode, Option<u64>)] = &[
        (
            "not msgpack: reserved marker",
            "c1",
            ErrorCode::PARSE_ERROR,
            None,
        ),
        ("truncated array", "95 01 00", ErrorCode::PARSE_ERROR, None),
        (
            "str overruns frame",
            "95 01 00 07 db ff ff ff ff 61",
            ErrorCode::PARSE_ERROR,
            None,
        ),
        (
            "array claims 4 billion items",
            "dd ff ff ff ff 01",
            ErrorCode::PARSE_ERROR,
            None,
        ),
        (
            "map claims 4 billion items",
            "df ff ff ff ff 01",
            ErrorCode::PARSE_ERROR,
            None,
        ),
        (
            "bin claims 4 billion bytes",
            "c6 ff ff ff ff 01",
            ErrorCode::PARSE_ERROR,
            None,
        ),
        (
            "not an array",
            "a4 65 63 68 6f",
            ErrorCode::INVALID_REQUEST,
            None,
        ),
        ("empty array", "90", ErrorCode::INVALID_REQUEST, None),
        (
            "version is a string",
            "95 a1 31 00 07 a1 6d c0",
            ErrorCode::INVALID_REQUEST,
            None,
        ),
        (
            "unknown kind",
            "93 01 09 07",
            ErrorCode::INVALID_REQUEST,
            None,
        ),
        (
            "id as string",
            "95 01 00 a1 37 a1 6d c0",
            ErrorCode::INVALID_REQUEST,
            None,
        ),
        (
            "id negative",
            "95 01 00 ff a1 6d c0",
            ErrorCode::INVALID_REQUEST,
            None,
        ),
        (
            "id float",
            "95 01 00 cb 3f f0 00 00 00 00 00 00 a1 6d c0",
            ErrorCode::INVALID_REQUEST,
            None,
        ),
        (
            "id as extension",
            "95 01 00 d4 01 07 a1 6d c0",
            ErrorCode::INVALID_REQUEST,
            None,
        ),
        (
            "method as binary",
            "95 01 00 07 c4 01 6d c0",
            ErrorCode::INVALID_REQUEST,
            Some(7),
        ),
        (
            "method not UTF-8",
            "95 01 00 07 a2 c3 28 c0",
            ErrorCode::INVALID_REQUEST,
            Some(7),
        ),
        (
            "method missing",
            "94 01 00 07 a1 6d",
            ErrorCode::INVALID_REQUEST,
            Some(7),
        ),
        (
            "extra element",
            "96 01 00 07 a1 6d c0 c0",
            ErrorCode::INVALID_REQUEST,
            Some(7),
        ),
        (
            "trailing bytes",
            "95 01 00 07 a1 6d c0 00",
            ErrorCode::INVALID_REQUEST,
            Some(7),
        ),
        (
            "cancel without id",
            "92 01 03",
            ErrorCode::INVALID_REQUEST,
            None,
        ),
        (
            "response error not a map",
            "95 01 01 07 01 c0",
            ErrorCode::INVALID_REQUEST,
            None,
        ),
        (
            "error map without message",
            "95 01 01 07 81 a4 63 6f 64 65 01 c0",
            ErrorCode::INVALID_REQUEST,
            None,
        ),
    ];
    for (what, body, code, id) in cases {
        match decode_hex(body) {
            Err(e) => {
                assert_eq!(e.code(), *code, "{what}: {e}");
                assert_eq!(e.request_id(), *id, "{what}: {e}");
                assert!(!e.is_fatal(), "{what}");
            }
            Ok(m) => panic!("{what}: decoded as {m:?}"),
        }
    }
}

#[test]
fn wrong_version_is_fatal_and_says_what_is_supported() {
    let e = decode_hex("95 02 00 07 a1 6d c0").expect_err("version 2");
    assert_eq!(e, DecodeError::UnsupportedVersion { found: 2 });
    assert!(e.is_fatal());
    assert_eq!(e.code(), ErrorCode::UNSUPPORTED_VERSION);
    assert!(e.to_string().contains("[1]"), "{e}");
}

#[test]
fn deep_nesting_is_a_parse_error_not_a_crash() {
    let mut body = hex("95 01 00 07 a1 6d");
    body.extend(std::iter::repeat_n(0x91, 100_000));
    body.push(0xc0);
    let e = Message::decode(Bytes::from(body)).expect_err("too deep");
    assert_eq!(e.code(), ErrorCode::PARSE_ERROR);
    assert!(e.to_string().contains("nesting"), "{e}");

    // Params may nest up to the limit, counting the envelope as one level.
    let mut ok = hex("95 01 00 07 a1 6d");
    ok.extend(std::iter::repeat_n(
        0x91,
        hearth_protocol::DEFAULT_MAX_DEPTH - 1,
    ));
    ok.push(0xc0);
    assert!(Message::decode(Bytes::from(ok)).is_ok());
}

#[test]
fn unknown_error_map_keys_are_ignored() {
    let body = "95 01 01 07 83 a4 63 6f 64 65 01 a7 6d 65 73 73 61 67 65 a1 78 a3 6e 65 77 c3 c0";
    match decode_hex(body) {
        Ok(Message::Response(r)) => assert_eq!(r.outcome.expect_err("error").code, ErrorCode(1)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn oversize_encodes_are_refused_and_leave_the_buffer_untouched() {
    let enc = Encoder::new(16);
    let mut out = BytesMut::from(&b"prefix"[..]);
    let err = enc
        .request(&mut out, 1, "echo", &"x".repeat(64))
        .expect_err("too large");
    assert!(matches!(
        err,
        hearth_protocol::EncodeError::TooLarge { max: 16, .. }
    ));
    assert_eq!(&out[..], b"prefix");
}

#[test]
fn failing_serialize_leaves_the_buffer_untouched() {
    struct Fails;
    impl Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("nope"))
        }
    }
    let mut out = BytesMut::from(&b"prefix"[..]);
    assert!(Encoder::default().response(&mut out, 1, &Fails).is_err());
    assert_eq!(&out[..], b"prefix");
}

#[test]
fn reserved_shapes_read_with_missing_and_unknown_fields() {
    // A hello result from a daemon that sends an extra field and omits optional ones.
    #[derive(Serialize)]
    struct FutureHello {
        protocol: u32,
        server: &'static str,
        limits: FutureLimits,
        shiny_new_field: bool,
    }
    #[derive(Serialize)]
    struct FutureLimits {
        max_frame: u64,
        max_in_flight: u64,
        max_widgets: u64,
    }
    let bytes = hearth_protocol::to_msgpack(&FutureHello {
        protocol: 1,
        server: "hearthd 9.9.9",
        limits: FutureLimits {
            max_frame: 10,
            max_in_flight: 2,
            max_widgets: 3,
        },
        shiny_new_field: true,
    })
    .expect("encodes");
    let hello: reserved::HelloResult = hearth_protocol::from_msgpack(&bytes).expect("decodes");
    assert_eq!(hello.limits.max_in_flight, 2);
    assert!(hello.methods.is_empty());

    let params: reserved::HelloParams = hearth_protocol::from_msgpack(&[0x80]).expect("empty map");
    assert_eq!(params.client, None);
}
