//! Writes the seed corpus: `cargo run --manifest-path fuzz/Cargo.toml --example seeds`
//! regenerates `fuzz/corpus/<target>/seed-*` (other files there — minimized findings,
//! merged corpora — are left alone). Seeds are small hand-made cases: valid requests,
//! responses, notifications and cancels, a duplicate in-flight id, a wrong version, zero and
//! oversize frame lengths, damaged and too-deep bodies, and the fuzz-only methods of the
//! `connection` target.

use std::path::Path;

use bytes::BytesMut;
use hearth_fuzz::Plan;
use hearth_protocol::{Encoder, ErrorCode, ErrorObject, RequestOptions, Text, Version};

/// One frame body built with the real encoder (header stripped).
fn body(f: impl FnOnce(&Encoder, &mut BytesMut)) -> Vec<u8> {
    let mut b = BytesMut::new();
    f(&Encoder::default(), &mut b);
    b[4..].to_vec()
}

/// One version 2 frame body built with the real encoder (header stripped).
fn body2(f: impl FnOnce(&Encoder, &mut BytesMut)) -> Vec<u8> {
    let mut b = BytesMut::new();
    f(&Encoder::default().with_version(Version::V2), &mut b);
    b[4..].to_vec()
}

/// Request options.
fn opts(deadline_ms: Option<u64>, supersede: Option<&str>, stream: bool) -> RequestOptions {
    RequestOptions {
        deadline_ms,
        supersede: supersede.map(|k| Text::from(k.to_owned())),
        stream,
    }
}

/// `{"method": method, "params": 7}`: the params of `ask`. The connection target answers
/// by the method name's length mod 4: params back, an error, never, twice.
fn ask_params(method: &str) -> Vec<u8> {
    let mut out = vec![0x82, 0xa6];
    out.extend_from_slice(b"method");
    out.push(0xa0 | method.len() as u8);
    out.extend_from_slice(method.as_bytes());
    out.push(0xa6);
    out.extend_from_slice(b"params");
    out.push(0x07);
    out
}

/// `{"n": n, "interval_ms": ms}`: the params of `count`.
fn count_params(n: u8, ms: u8) -> Vec<u8> {
    let mut out = vec![0x82, 0xa1, b'n', n, 0xab];
    out.extend_from_slice(b"interval_ms");
    out.push(ms);
    out
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// A map `{key: value}` of one pair, `value` a positive fixint.
fn map1(key: &str, value: u8) -> Vec<u8> {
    let mut out = vec![0x81, 0xa0 | key.len() as u8];
    out.extend_from_slice(key.as_bytes());
    out.push(value);
    out
}

/// Named frame bodies, each a case worth starting from.
fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let req = |id, m: &'static str, p: Vec<u8>| body(|e, b| e.request_raw(b, id, m, &p).unwrap());
    let req2 = |id, m: &'static str, p: Vec<u8>, o: RequestOptions| {
        body2(|e, b| e.request_raw_with(b, id, m, &p, &o).unwrap())
    };
    let nested = |levels: usize| {
        let mut p = vec![0x91; levels];
        p.push(0xc0);
        p
    };
    vec![
        ("req-echo", req(1, "echo", map1("a", 1))),
        ("req-sleep", req(2, "sleep", map1("ms", 5))),
        ("req-hello", req(3, "$/hello", vec![0xc0])),
        ("req-stats", req(4, "$/stats", vec![0xc0])),
        ("req-unknown", req(5, "nope", vec![0xc0])),
        ("req-bad-params", req(6, "sleep", vec![0xa1, b'x'])),
        ("req-panic", req(7, "panic", vec![0xc3])),
        ("req-panic-late", req(8, "panic", vec![0x03])),
        ("req-notify", req(9, "notify", vec![0x06])),
        ("req-shutdown", req(10, "shutdown", vec![0xc0])),
        (
            "req-u64-id",
            req(u64::MAX, "echo", vec![0xcf, 1, 2, 3, 4, 5, 6, 7, 8]),
        ),
        ("req-depth-63", req(11, "echo", nested(63))),
        ("req-depth-64", req(12, "echo", nested(64))),
        (
            "response",
            body(|e, b| e.response_raw(b, 1, &[0x92, 0x01, 0xa1, b'x']).unwrap()),
        ),
        (
            "response-error",
            body(|e, b| {
                let err = ErrorObject::new(ErrorCode::INTERNAL_ERROR, "boom")
                    .with_raw_data(vec![0x91, 0x2a].into());
                e.error_response(b, 2, &err).unwrap()
            }),
        ),
        (
            "notification",
            body(|e, b| e.notification_raw(b, "note", &[0x05]).unwrap()),
        ),
        (
            "notification-unknown",
            body(|e, b| e.notification_raw(b, "x", &[0xc0]).unwrap()),
        ),
        ("cancel", body(|e, b| e.cancel(b, 2).unwrap())),
        (
            "wrong-version",
            vec![0x95, 0x03, 0x00, 0x07, 0xa1, b'm', 0xc0],
        ),
        (
            "damaged-request",
            vec![0x95, 0x01, 0x00, 0x07, 0xa4, b'e', b'c'],
        ),
        (
            "trailing-bytes",
            [body(|e, b| e.cancel(b, 3).unwrap()), vec![0xc0]].concat(),
        ),
        ("reserved-marker", vec![0x94, 0x01, 0x02, 0xa1, b'n', 0xc1]),
        ("huge-array", vec![0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]),
        ("empty-array", vec![0x90]),
        ("not-array", vec![0xa2, b'h', b'i']),
        ("bad-kind", vec![0x93, 0x01, 0x09, 0x01]),
        (
            "bad-utf8-method",
            vec![0x95, 0x01, 0x00, 0x01, 0xa1, 0xff, 0xc0],
        ),
        // Version 2.
        (
            "v2-hello",
            req2(20, "$/hello", vec![0xc0], opts(None, None, false)),
        ),
        (
            "v2-echo",
            req2(21, "echo", map1("a", 1), opts(None, None, false)),
        ),
        (
            "v2-sleep-deadline",
            req2(22, "sleep", map1("ms", 100), opts(Some(20), None, false)),
        ),
        (
            "v2-deadline-0",
            req2(23, "sleep", map1("ms", 1), opts(Some(0), None, false)),
        ),
        (
            "v2-supersede-a",
            req2(24, "sleep", map1("ms", 50), opts(None, Some("k"), false)),
        ),
        (
            "v2-supersede-b",
            req2(25, "sleep", map1("ms", 50), opts(None, Some("k"), false)),
        ),
        (
            "v2-count-stream",
            req2(26, "count", count_params(5, 0), opts(None, None, true)),
        ),
        (
            "v2-count-plain",
            req2(27, "count", count_params(3, 1), opts(None, None, false)),
        ),
        (
            "v2-count-all",
            req2(
                28,
                "count",
                count_params(4, 2),
                opts(Some(5), Some("c"), true),
            ),
        ),
        (
            "v2-ask-back",
            req2(29, "ask", ask_params("m/ok"), opts(None, None, false)),
        ),
        (
            "v2-ask-error",
            req2(30, "ask", ask_params("m/err"), opts(None, None, false)),
        ),
        (
            "v2-ask-never",
            req2(31, "ask", ask_params("m/wait"), opts(None, None, false)),
        ),
        (
            "v2-ask-twice",
            req2(32, "ask", ask_params("m/dup"), opts(None, None, false)),
        ),
        (
            "v2-ask-deadline",
            req2(33, "ask", ask_params("m/wait"), opts(Some(10), None, false)),
        ),
        ("v2-cancel-ask", body2(|e, b| e.cancel(b, 31).unwrap())),
        ("v2-cancel-sleep", body2(|e, b| e.cancel(b, 24).unwrap())),
        (
            "v2-response",
            body2(|e, b| {
                e.response_raw(b, 1, &[0x81, 0xa3, b't', b'a', b'b', 0x04])
                    .unwrap()
            }),
        ),
        (
            "v2-client-partial",
            body2(|e, b| e.partial_raw(b, 21, 0, &[0x01]).unwrap()),
        ),
        (
            "v2-bad-opts",
            // [2, 0, 34, "echo", nil, {"deadline_ms": "soon"}]
            vec![
                0x96, 0x02, 0x00, 0x22, 0xa4, b'e', b'c', b'h', b'o', 0xc0, 0x81, 0xab, b'd', b'e',
                b'a', b'd', b'l', b'i', b'n', b'e', b'_', b'm', b's', 0xa4, b's', b'o', b'o', b'n',
            ],
        ),
        (
            "v2-opts-nil",
            vec![
                0x96, 0x02, 0x00, 0x23, 0xa4, b'e', b'c', b'h', b'o', 0xc0, 0xc0,
            ],
        ),
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let bodies = bodies();
    let get = |name: &str| frame(&bodies.iter().find(|(n, _)| *n == name).unwrap().1);

    for (name, b) in &bodies {
        write(&root.join("envelope"), name, b);
    }

    // Whole sessions, for the frame decoder and the connection.
    let all: Vec<u8> = bodies.iter().flat_map(|(_, b)| frame(b)).collect();
    let dup = [get("req-sleep"), get("req-sleep"), get("cancel")].concat();
    let over = [
        get("req-echo"),
        (4097u32).to_be_bytes().to_vec(),
        vec![0; 8],
    ]
    .concat();
    let zero = [get("req-echo"), vec![0, 0, 0, 0]].concat();
    let full: Vec<u8> = (1..=9u64)
        .flat_map(|id| {
            frame(&body(|e, b| {
                e.request_raw(b, id, "sleep", &map1("ms", 50)).unwrap()
            }))
        })
        .chain(get("cancel"))
        .collect();
    let sessions: Vec<(&str, Vec<u8>)> = vec![
        ("all", all),
        ("duplicate-id", dup),
        ("oversize", over),
        ("zero-length", zero),
        ("in-flight-full", full),
        (
            "wrong-version",
            [get("req-echo"), get("wrong-version")].concat(),
        ),
        (
            "shutdown",
            [get("req-sleep"), get("req-shutdown"), get("req-echo")].concat(),
        ),
        (
            "notify",
            [
                get("req-notify"),
                get("notification"),
                get("req-panic-late"),
            ]
            .concat(),
        ),
        ("mid-frame-eof", get("req-echo")[..9].to_vec()),
        // Version 2 sessions.
        (
            "v2-options",
            [
                get("v2-hello"),
                get("v2-sleep-deadline"),
                get("v2-deadline-0"),
                get("v2-supersede-a"),
                get("v2-supersede-b"),
                get("v2-cancel-sleep"),
                get("v2-bad-opts"),
                get("v2-opts-nil"),
            ]
            .concat(),
        ),
        (
            "v2-stream",
            [
                get("v2-count-stream"),
                get("v2-count-plain"),
                get("v2-count-all"),
            ]
            .concat(),
        ),
        (
            "v2-ask",
            [
                get("v2-ask-back"),
                get("v2-echo"),
                get("v2-ask-error"),
                get("v2-ask-never"),
                get("v2-ask-twice"),
                get("v2-ask-deadline"),
                get("v2-echo"),
                get("v2-cancel-ask"),
                get("v2-response"),
            ]
            .concat(),
        ),
        (
            "v2-client-partial",
            [get("v2-echo"), get("v2-client-partial"), get("v2-hello")].concat(),
        ),
        ("v2-then-v1", [get("v2-echo"), get("req-echo")].concat()),
        ("v1-then-v2", [get("req-echo"), get("v2-echo")].concat()),
        (
            "v2-queue-full",
            (1..=20u64)
                .flat_map(|id| {
                    frame(&body2(|e, b| {
                        e.request_raw(b, id, "sleep", &map1("ms", 50)).unwrap()
                    }))
                })
                .chain(get("v2-cancel-sleep"))
                .collect(),
        ),
    ];
    // Chunk plans: whole, byte by byte, and a mix (see `hearth_fuzz::chunk_len`).
    let plans: [&[u8]; 3] = [&[], &[0x00], &[0x02, 0x45, 0x00, 0x83]];
    for (name, stream) in &sessions {
        for (i, sizes) in plans.iter().enumerate() {
            let input = Plan::to_input(sizes, stream);
            // frame_decoder: a maximum frame size (8 MiB, 1025, 129 bytes), then the plan.
            let max = [0xffu8, 0x80, 0x10][i];
            write(
                &root.join("frame_decoder"),
                &format!("{name}-{i}"),
                &[&[max][..], &input].concat(),
            );
            // connection: config bytes for 3 pause styles over 3 buffer sizes.
            let config = [0x00u8, 0x05, 0x1a][i];
            write(
                &root.join("connection"),
                &format!("{name}-{i}"),
                &[&[config][..], &input].concat(),
            );
        }
    }

    // roundtrip reads its input through `arbitrary`; a few distinct byte patterns.
    let patterns: [(&str, Vec<u8>); 5] = [
        ("zeros", vec![0; 64]),
        ("ones", vec![0xff; 64]),
        ("counting", (0..=255u8).collect()),
        (
            "deep",
            [vec![0x00, 0x00, 0x00, 0x00], vec![0x12; 200]].concat(),
        ),
        (
            "mixed",
            b"\x01\x00\x00\x00\x00\x00\x00\x07echo\x11\x05hello\x13\x02".to_vec(),
        ),
    ];
    for (name, bytes) in patterns {
        write(&root.join("roundtrip"), name, &bytes);
    }
}
