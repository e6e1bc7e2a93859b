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
            id: 7.into(),
            method: "echo".to_owned().into(),
            params: Bytes::from(hex("81 a2 68 69 01")),
            options: Default::default(),
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
            "truncated request after its id",
            "95 01 00 2a a4 65",
            ErrorCode::PARSE_ERROR,
            Some(42),
        ),
        (
            "too deep request",
            &format!("95 01 00 09 a1 6d {}c0", "91 ".repeat(70)),
            ErrorCode::PARSE_ERROR,
            Some(9),
        ),
        (
            "str overruns frame",
            "95 01 00 07 db ff ff ff ff 61",
            ErrorCode::PARSE_ERROR,
            Some(7),
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
                assert_eq!(e.request_id().map(u64::from), *id, "{what}: {e}");
                assert!(!e.is_fatal(), "{what}");
            }
            Ok(m) => panic!("{what}: decoded as {m:?}"),
        }
    }
}

#[test]
fn wrong_version_is_fatal_and_says_what_is_supported() {
    let e = decode_hex("95 03 00 07 a1 6d c0").expect_err("version 3");
    assert_eq!(e, DecodeError::UnsupportedVersion { found: 3 });
    assert!(e.is_fatal());
    assert_eq!(e.code(), ErrorCode::UNSUPPORTED_VERSION);
    assert!(e.to_string().contains("[1, 2]"), "{e}");
    // The version-1 decoder refuses version 2 the same way.
    let e = decode_hex("95 02 00 07 a1 6d c0").expect_err("version 2 in a v1 decode");
    assert_eq!(e, DecodeError::UnsupportedVersion { found: 2 });
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

/// The walk-through in docs/PROTOCOL.md section 11, message by message.
#[test]
fn documented_session_bytes() {
    #[derive(Serialize)]
    struct Sleep {
        ms: u64,
    }
    #[derive(Serialize)]
    struct Slept {
        slept_ms: u64,
    }
    let enc = Encoder::default();
    let mut out = BytesMut::new();
    let mut check = |what: &str, expected: &str, write: &dyn Fn(&mut BytesMut)| {
        out.clear();
        write(&mut out);
        assert_eq!(&out[..], &hex(expected)[..], "{what}");
        let mut wire = out.clone();
        let frame = hearth_protocol::FrameDecoder::new(hearth_protocol::DEFAULT_MAX_FRAME)
            .decode(&mut wire)
            .expect("valid header")
            .expect("one whole frame");
        assert!(wire.is_empty(), "{what}: one frame exactly");
        Message::decode(frame).unwrap_or_else(|e| panic!("{what}: {e}"));
    };

    check(
        "hello request",
        "00 00 00 19 95 01 00 01 a7 24 2f 68 65 6c 6c 6f
         81 a6 63 6c 69 65 6e 74 a4 64 65 6d 6f",
        &|b| {
            let params = reserved::HelloParams {
                client: Some("demo".to_owned()),
            };
            enc.request(b, 1, reserved::HELLO, &params)
                .expect("encodes");
        },
    );
    check(
        "hello response",
        "00 00 00 b3 95 01 01 01 c0 85 a8 70 72 6f 74 6f
         63 6f 6c 01 a6 73 65 72 76 65 72 ad 68 65 61 72
         74 68 64 20 30 2e 31 2e 30 a5 62 75 69 6c 64 b4
         72 65 6c 65 61 73 65 20 78 38 36 5f 36 34 2d 6c
         69 6e 75 78 a7 6d 65 74 68 6f 64 73 95 a7 24 2f
         68 65 6c 6c 6f a7 24 2f 73 74 61 74 73 a4 65 63
         68 6f a8 73 68 75 74 64 6f 77 6e a5 73 6c 65 65
         70 a6 6c 69 6d 69 74 73 84 a9 6d 61 78 5f 66 72
         61 6d 65 ce 00 80 00 00 ad 6d 61 78 5f 69 6e 5f
         66 6c 69 67 68 74 cd 04 00 af 6d 61 78 5f 63 6f
         6e 6e 65 63 74 69 6f 6e 73 cd 01 00 a9 6d 61 78
         5f 64 65 70 74 68 40",
        &|b| {
            let hello = reserved::HelloResult {
                protocol: 1,
                server: "hearthd 0.1.0".to_owned(),
                build: "release x86_64-linux".to_owned(),
                methods: ["$/hello", "$/stats", "echo", "shutdown", "sleep"]
                    .map(str::to_owned)
                    .to_vec(),
                limits: reserved::Limits {
                    max_frame: 8_388_608,
                    max_in_flight: 1024,
                    max_connections: 256,
                    max_depth: 64,
                },
                supported: Vec::new(),
                build_id: None,
            };
            enc.response(b, 1, &hello).expect("encodes");
        },
    );
    check(
        "call to a missing method",
        "00 00 00 10 95 01 00 08 aa 66 72 6f 62 6e 69 63 61 74 65 c0",
        &|b| enc.request(b, 8, "frobnicate", &()).expect("encodes"),
    );
    check(
        "sleep request",
        "00 00 00 11 95 01 00 09 a5 73 6c 65 65 70 81 a2 6d 73 cd 27 10",
        &|b| {
            enc.request(b, 9, "sleep", &Sleep { ms: 10_000 })
                .expect("encodes");
        },
    );
    check("cancel 9", "00 00 00 04 93 01 03 09", &|b| {
        enc.cancel(b, 9).expect("encodes");
    });
    check(
        "cancelled response",
        "00 00 00 2a 95 01 01 09 82 a4 63 6f 64 65 d2 ff
         ff 7f e0 a7 6d 65 73 73 61 67 65 b1 72 65 71 75
         65 73 74 20 63 61 6e 63 65 6c 6c 65 64 c0",
        &|b| {
            let err = ErrorObject::new(ErrorCode::REQUEST_CANCELLED, "request cancelled");
            enc.error_response(b, 9, &err).expect("encodes");
        },
    );
    check(
        "sleep result that won the race",
        "00 00 00 12 95 01 01 09 c0 81 a8 73 6c 65 70 74 5f 6d 73 cd 27 10",
        &|b| {
            enc.response(b, 9, &Slept { slept_ms: 10_000 })
                .expect("encodes");
        },
    );
}

/// The `$/error` and `$/fatal` examples in docs/PROTOCOL.md section 8.1: what the decoder's
/// own error for each bad body becomes on the wire.
#[test]
fn documented_error_and_fatal_notification_bytes() {
    let enc = Encoder::default();
    let mut out = BytesMut::new();

    let parse = decode_hex("c1").expect_err("reserved marker");
    enc.error_notification(&mut out, &parse.to_error_object())
        .expect("encodes");
    assert_eq!(
        &out[..],
        &hex("00 00 00 55 94 01 02 a7 24 2f 65 72 72 6f 72 82
             a4 63 6f 64 65 d1 80 44 a7 6d 65 73 73 61 67 65
             d9 37 70 61 72 73 65 20 65 72 72 6f 72 3a 20 72
             65 73 65 72 76 65 64 20 4d 65 73 73 61 67 65 50
             61 63 6b 20 6d 61 72 6b 65 72 20 30 78 63 31 20
             61 74 20 62 79 74 65 20 30")[..]
    );

    out.clear();
    let version = decode_hex("95 03 00 07 a1 6d c0").expect_err("version 3");
    let fatal = reserved::Fatal {
        code: version.code().0,
        message: version.to_string(),
        supported: hearth_protocol::SUPPORTED_VERSIONS.to_vec(),
    };
    enc.notification(&mut out, reserved::FATAL, &fatal)
        .expect("encodes");
    assert_eq!(
        &out[..],
        &hex("00 00 00 5c 94 01 02 a7 24 2f 66 61 74 61 6c 83
             a4 63 6f 64 65 d1 82 fc a7 6d 65 73 73 61 67 65
             d9 31 75 6e 73 75 70 70 6f 72 74 65 64 20 70 72
             6f 74 6f 63 6f 6c 20 76 65 72 73 69 6f 6e 20 33
             3b 20 73 75 70 70 6f 72 74 65 64 3a 20 5b 31 2c
             20 32 5d a9 73 75 70 70 6f 72 74 65 64 92 01 02")[..]
    );
}

/// Section 5 of docs/PROTOCOL.md: any integer encoding of a non-negative id is accepted.
#[test]
fn documented_id_encodings_are_accepted() {
    for id in [
        "07",
        "cc 07",
        "cd 00 07",
        "ce 00 00 00 07",
        "cf 00 00 00 00 00 00 00 07",
        "d0 07",
    ] {
        assert!(
            matches!(decode_hex(&format!("93 01 03 {id}")), Ok(Message::Cancel(c)) if c.id == 7),
            "{id}"
        );
    }
}

#[test]
fn the_version_is_checked_before_the_envelope_shape() {
    for body in ["92 03 00", "91 03", "93 03 09 07", "95 09 00 07 a1 6d c0"] {
        let e = decode_hex(body).expect_err(body);
        assert!(e.is_fatal(), "{body}: {e}");
    }
}

#[test]
fn error_map_keys_that_are_not_strings_are_ignored() {
    // {1: true, "code": 1, "message": "x"}
    let body = "95 01 01 07 83 01 c3 a4 63 6f 64 65 01 a7 6d 65 73 73 61 67 65 a1 78 c0";
    match decode_hex(body) {
        Ok(Message::Response(r)) => assert_eq!(r.outcome.expect_err("error").message, "x"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_damaged_body_is_a_parse_error_whatever_version_it_claims() {
    // An array32 claiming four billion elements whose first byte reads as "version 0".
    let e = decode_hex("dd ff ff ff ff 00").expect_err("damaged");
    assert_eq!(e.code(), ErrorCode::PARSE_ERROR, "{e}");
    let e = decode_hex("95 03 00 07 db ff ff ff ff").expect_err("damaged");
    assert_eq!(e.code(), ErrorCode::PARSE_ERROR, "{e}");
    assert_eq!(e.request_id(), None, "not a v1 request, so no id to answer");
}

/// Section 15.6 of docs/PROTOCOL.md: the version 2 examples, byte for byte, and
/// each decodes back to what the document says it is.
#[test]
fn documented_v2_bytes() {
    use hearth_protocol::{Partial, RequestOptions, Text, Version};
    #[derive(serde::Serialize)]
    struct Ms {
        ms: u64,
    }
    #[derive(serde::Serialize)]
    struct Count {
        n: u64,
        interval_ms: u64,
    }
    #[derive(serde::Serialize)]
    struct Tab {
        tab: u8,
    }
    let enc = Encoder::default().with_version(Version::V2);
    type Write<'a> = Box<dyn Fn(&mut BytesMut) + 'a>;
    let cases: Vec<(&str, Write<'_>)> = vec![
        (
            "00 00 00 29 96 02 00 05 a5 73 6c 65 65 70 81 a2 6d 73 64 82 ab 64 65 61 64 6c 69
             6e 65 5f 6d 73 14 a9 73 75 70 65 72 73 65 64 65 a1 73",
            Box::new(|b| {
                let opts = RequestOptions {
                    deadline_ms: Some(20),
                    supersede: Some(Text::from_static("s")),
                    stream: false,
                };
                enc.request_with(b, 5, "sleep", &Ms { ms: 100 }, &opts)
                    .expect("encodes")
            }),
        ),
        (
            "00 00 00 24 96 02 00 06 a5 63 6f 75 6e 74 82 a1 6e 02 ab 69 6e 74 65 72 76 61 6c
             5f 6d 73 00 81 a6 73 74 72 65 61 6d c3",
            Box::new(|b| {
                let opts = RequestOptions {
                    stream: true,
                    ..RequestOptions::default()
                };
                enc.request_with(
                    b,
                    6,
                    "count",
                    &Count {
                        n: 2,
                        interval_ms: 0,
                    },
                    &opts,
                )
                .expect("encodes")
            }),
        ),
        (
            "00 00 00 06 95 02 04 06 00 00",
            Box::new(|b| enc.partial(b, 6, 0, &0u8).expect("encodes")),
        ),
        (
            "00 00 00 06 95 02 04 06 01 01",
            Box::new(|b| enc.partial(b, 6, 1, &1u8).expect("encodes")),
        ),
        (
            "00 00 00 06 95 02 01 06 c0 02",
            Box::new(|b| enc.response(b, 6, &2u8).expect("encodes")),
        ),
        (
            "00 00 00 23 95 02 01 05 82 a4 63 6f 64 65 d2 ff ff 7f df a7 6d 65 73 73 61 67 65
             aa 73 75 70 65 72 73 65 64 65 64 c0",
            Box::new(|b| {
                let e = ErrorObject::new(ErrorCode::SUPERSEDED, "superseded");
                enc.error_response(b, 5, &e).expect("encodes")
            }),
        ),
        (
            "00 00 00 28 95 02 01 05 82 a4 63 6f 64 65 d1 82 fe a7 6d 65 73 73 61 67 65 b1 64
             65 61 64 6c 69 6e 65 20 65 78 63 65 65 64 65 64 c0",
            Box::new(|b| {
                let e = ErrorObject::new(ErrorCode::DEADLINE_EXCEEDED, "deadline exceeded");
                enc.error_response(b, 5, &e).expect("encodes")
            }),
        ),
        (
            "00 00 00 13 95 02 00 01 ad 65 64 69 74 6f 72 2f 63 6f 6e 66 69 67 c0",
            Box::new(|b| enc.request(b, 1, "editor/config", &()).expect("encodes")),
        ),
        (
            "00 00 00 0b 95 02 01 01 c0 81 a3 74 61 62 04",
            Box::new(|b| enc.response(b, 1, &Tab { tab: 4 }).expect("encodes")),
        ),
        (
            "00 00 00 04 93 02 03 01",
            Box::new(|b| enc.cancel(b, 1).expect("encodes")),
        ),
        (
            "00 00 00 0d 95 02 00 01 a7 24 2f 68 65 6c 6c 6f c0",
            Box::new(|b| enc.request(b, 1, "$/hello", &()).expect("encodes")),
        ),
    ];
    for (doc, write) in &cases {
        let mut out = BytesMut::new();
        write(&mut out);
        assert_eq!(&out[..], &hex(doc)[..], "{doc}");
        let decoded = Message::decode_any(Bytes::from(hex(doc)).slice(4..), 64).expect(doc);
        assert_eq!(decoded.version, Version::V2, "{doc}");
    }
    // What the first two examples mean.
    match Message::decode_any(Bytes::from(hex(cases[0].0)).slice(4..), 64).map(|d| d.message) {
        Ok(Message::Request(r)) => {
            assert_eq!(r.options.deadline_ms, Some(20));
            assert_eq!(r.options.supersede.as_ref().map(Text::as_str), Some("s"));
            assert!(!r.options.stream);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        Message::decode_any(Bytes::from(hex("95 02 04 06 01 01")), 64).map(|d| d.message),
        Ok(Message::Partial(Partial {
            id: 6.into(),
            seq: 1,
            chunk: Bytes::from_static(&[1]),
        }))
    );
}

/// Version 2 envelope rules: options only in version 2 and only as a map; unknown options and
/// non-string keys ignored; wrongly typed known options answered to the request's id; a
/// partial only in version 2 and only with 5 elements.
#[test]
fn v2_envelope_rules() {
    use hearth_protocol::Version;
    let any = |h: &str| Message::decode_any(Bytes::from(hex(h)), 64);
    // [2, 0, 7, "m", nil, {"x": 1, 5: 6, "stream": true}]
    match any("96 02 00 07 a1 6d c0 83 a1 78 01 05 06 a6 73 74 72 65 61 6d c3") {
        Ok(d) => match d.message {
            Message::Request(r) => assert!(r.options.stream && r.options.deadline_ms.is_none()),
            other => panic!("{other:?}"),
        },
        Err(e) => panic!("{e}"),
    }
    // A v1 request with 6 elements is invalid, answered to its id.
    let e = any("96 01 00 07 a1 6d c0 80").expect_err("v1 with options");
    assert_eq!(
        (e.code(), e.request_id()),
        (ErrorCode::INVALID_REQUEST, Some(7.into()))
    );
    // Options that are not a map, or a deadline that is not an unsigned integer.
    for bad in [
        "96 02 00 07 a1 6d c0 c0",
        "96 02 00 07 a1 6d c0 81 ab 64 65 61 64 6c 69 6e 65 5f 6d 73 ff",
    ] {
        let e = any(bad).expect_err(bad);
        assert_eq!(
            (e.code(), e.request_id()),
            (ErrorCode::INVALID_REQUEST, Some(7.into())),
            "{bad}"
        );
    }
    // Seven elements.
    assert!(any("97 02 00 07 a1 6d c0 80 c0").is_err());
    // A partial in version 1 is an unknown kind; in version 2 it needs 5 elements.
    assert_eq!(
        any("95 01 04 06 00 00").expect_err("v1 partial").code(),
        ErrorCode::INVALID_REQUEST
    );
    assert!(any("94 02 04 06 00").is_err());
    assert_eq!(any("95 02 04 06 00 00").map(|d| d.version), Ok(Version::V2));
    // The version-1 decoder refuses every version 2 message.
    assert!(Message::decode(Bytes::from(hex("95 02 04 06 00 00"))).is_err());
}
