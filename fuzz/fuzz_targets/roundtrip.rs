//! Fuzz target, structure-aware: an arbitrary `Message` (params, results and error data are
//! arbitrary MessagePack of bounded depth, see `hearth_fuzz::MsgPack`) is encoded with the
//! `Encoder`, cut out by the `FrameDecoder` and decoded; the result must be the message sent.
//! Values nested past the protocol's limit must be refused as a parse error instead, with the
//! request's id. Both versions: version 2 adds request options and partial results, and the
//! decoded envelope must carry the version it was encoded with. Also checks `value::skip`
//! against `rmpv` on every generated value.

#![no_main]

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use hearth_fuzz::MsgPack;
use hearth_protocol::{
    Cancel, DEFAULT_MAX_DEPTH, DecodeError, Encoder, ErrorCode, ErrorObject, FrameDecoder, Message,
    Notification, Partial, Request, RequestId, RequestOptions, Response, Text, Version, value,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Case {
    /// Encode in version 2 even when nothing needs it.
    v2: bool,
    input: Input,
}

/// Version 2 request options.
#[derive(Debug, Arbitrary)]
struct Opts {
    deadline_ms: Option<u64>,
    supersede: Option<String>,
    stream: bool,
}

#[derive(Debug, Arbitrary)]
enum Input {
    Request {
        id: u64,
        method: String,
        params: MsgPack,
        opts: Opts,
    },
    Partial {
        id: u64,
        seq: u64,
        chunk: MsgPack,
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
    fn build(self) -> (Message, usize, Option<RequestId>) {
        let b = |v: MsgPack| Bytes::from(v.bytes);
        match self {
            Self::Request {
                id,
                method,
                params,
                opts,
            } => (
                Message::Request(Request {
                    id: id.into(),
                    method: Text::from(method),
                    params: b(params.clone()),
                    options: RequestOptions {
                        deadline_ms: opts.deadline_ms,
                        supersede: opts.supersede.map(Text::from),
                        stream: opts.stream,
                    },
                }),
                params.depth,
                Some(id.into()),
            ),
            Self::Partial { id, seq, chunk } => (
                Message::Partial(Partial {
                    id: id.into(),
                    seq,
                    chunk: b(chunk.clone()),
                }),
                chunk.depth,
                None,
            ),
            Self::Response { id, result } => (
                Message::Response(Response {
                    id: id.into(),
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
                        id: id.into(),
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
            Self::Cancel { id } => (Message::Cancel(Cancel { id: id.into() }), 0, None),
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

fuzz_target!(|case: Case| {
    let input = case.input;
    match &input {
        Input::Request { params: v, .. }
        | Input::Partial { chunk: v, .. }
        | Input::Response { result: v, .. }
        | Input::Notification { params: v, .. }
        | Input::ErrorResponse { data: Some(v), .. } => check_value(v),
        _ => {}
    }
    let (msg, depth, id) = input.build();
    // Options and partials exist only in version 2.
    let needs_v2 = match &msg {
        Message::Request(r) => !r.options.is_default(),
        Message::Partial(_) => true,
        _ => false,
    };
    let version = if case.v2 || needs_v2 {
        Version::V2
    } else {
        Version::V1
    };
    let mut wire = BytesMut::new();
    hearth_fuzz::encode(&Encoder::default().with_version(version), &mut wire, &msg)
        .expect("encodes");
    let frame = FrameDecoder::new(u32::MAX as usize)
        .decode(&mut wire)
        .expect("a valid header")
        .expect("a whole frame");
    assert!(wire.is_empty(), "exactly one frame");
    let decoded = Message::decode_any(frame, DEFAULT_MAX_DEPTH);
    // The envelope is a level of its own.
    if depth < DEFAULT_MAX_DEPTH {
        let decoded = decoded.expect("decodes");
        assert_eq!(decoded.version, version);
        assert_eq!(decoded.message, msg);
    } else {
        match decoded {
            Err(DecodeError::Parse { id: got, .. }) => assert_eq!(got, id, "refusal's id"),
            other => panic!("depth {depth} must be a parse error, got {other:?}"),
        }
    }
});
