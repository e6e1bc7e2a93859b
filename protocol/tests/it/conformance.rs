//! The language-neutral frame vectors of `conformance/frames.json`, run through
//! `hearth-protocol`: every frame cut by [`FrameDecoder`] and decoded by
//! [`Message::decode_any`] must mean what the vector says (a `$/fatal` of a version this crate
//! does not speak is refused as such, and read generically); every frame taken from
//! docs/PROTOCOL.md must come out of [`Encoder`] byte for byte; every bad header must be
//! refused from its four bytes; every stream must yield the same frames however it is split.
//! The Node and Python clients run the same file (see conformance/README.md).

use bytes::{Bytes, BytesMut};
use hearth_protocol::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME, DecodeError, Encoder, ErrorObject, FrameDecoder,
    FrameError, Message, RequestOptions, Version,
};
use serde_json::{Map, Value as Json, json};

use crate::support::hex;

fn vectors() -> Json {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/frames.json");
    let text = std::fs::read_to_string(path).expect("conformance/frames.json is readable");
    serde_json::from_str(&text).expect("frames.json is JSON")
}

/// MessagePack as the vectors write it: JSON, with every map key a string.
fn to_json(v: &rmpv::Value) -> Json {
    use rmpv::Value as V;
    match v {
        V::Nil => Json::Null,
        V::Boolean(b) => json!(b),
        V::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => json!(u),
            (None, Some(s)) => json!(s),
            _ => panic!("integer out of range"),
        },
        V::F32(f) => json!(f),
        V::F64(f) => json!(f),
        V::String(s) => json!(s.as_str().expect("utf-8 string")),
        V::Binary(b) => json!({ "$bin": b.iter().map(|x| format!("{x:02x}")).collect::<String>() }),
        V::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        V::Map(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().expect("string key").to_owned(), to_json(v)))
                .collect(),
        ),
        V::Ext(t, d) => json!({ "$ext": t, "data": d }),
    }
}

fn raw_json(bytes: &[u8]) -> Json {
    let mut rd = bytes;
    let v = rmpv::decode::read_value(&mut rd).expect("raw value is MessagePack");
    assert!(rd.is_empty(), "raw value has trailing bytes");
    to_json(&v)
}

fn error_json(e: &ErrorObject) -> Json {
    let mut m = Map::new();
    m.insert("code".into(), json!(e.code.0));
    m.insert("message".into(), json!(e.message));
    if let Some(d) = &e.data {
        m.insert("data".into(), raw_json(d));
    }
    Json::Object(m)
}

fn options_json(o: &RequestOptions) -> Json {
    json!({
        "deadline_ms": o.deadline_ms,
        "supersede": o.supersede.as_ref().map(|s| s.as_str()),
        "stream": o.stream,
    })
}

/// What a decoded message means, in the vectors' "expect" shape.
fn meaning(version: Version, msg: &Message) -> Json {
    let mut m = json!({ "version": version.number() });
    let o = m.as_object_mut().expect("object");
    match msg {
        Message::Request(r) => {
            o.insert("kind".into(), json!("request"));
            o.insert("id".into(), json!(r.id.get().to_string()));
            o.insert("method".into(), json!(r.method()));
            o.insert("params".into(), raw_json(&r.params));
            if !r.options.is_default() {
                o.insert("opts".into(), options_json(&r.options));
            }
        }
        Message::Response(r) => {
            o.insert("kind".into(), json!("response"));
            o.insert("id".into(), json!(r.id.get().to_string()));
            match &r.outcome {
                Ok(result) => {
                    o.insert("error".into(), Json::Null);
                    o.insert("result".into(), raw_json(result));
                }
                Err(e) => {
                    o.insert("error".into(), error_json(e));
                    o.insert("result".into(), Json::Null);
                }
            }
        }
        Message::Notification(n) => {
            o.insert("kind".into(), json!("notification"));
            o.insert("method".into(), json!(n.method()));
            o.insert("params".into(), raw_json(&n.params));
        }
        Message::Cancel(c) => {
            o.insert("kind".into(), json!("cancel"));
            o.insert("id".into(), json!(c.id.get().to_string()));
        }
        Message::Partial(p) => {
            o.insert("kind".into(), json!("partial"));
            o.insert("id".into(), json!(p.id.get().to_string()));
            o.insert("seq".into(), json!(p.seq));
            o.insert("chunk".into(), raw_json(&p.chunk));
        }
    }
    m
}

/// The vector's expectation without the client-side extras ("fatal", "hello").
fn plain(expect: &Json) -> Json {
    let mut e = expect.clone();
    let o = e.as_object_mut().expect("expect is an object");
    o.remove("fatal");
    o.remove("hello");
    e
}

fn one_frame(bytes: &[u8]) -> Bytes {
    let mut buf = BytesMut::from(bytes);
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let frame = dec
        .decode(&mut buf)
        .expect("valid header")
        .expect("a whole frame");
    assert!(buf.is_empty(), "exactly one frame");
    frame
}

/// Encodes `msg` as `hearth-protocol` would send it.
fn encode(version: Version, msg: &Message) -> BytesMut {
    let enc = Encoder::default().with_version(version);
    let mut out = BytesMut::new();
    match msg {
        Message::Request(r) => {
            enc.request_raw_with(&mut out, r.id, r.method(), &r.params, &r.options)
        }
        Message::Response(r) => match &r.outcome {
            Ok(result) => enc.response_raw(&mut out, r.id, result),
            Err(e) => enc.error_response(&mut out, r.id, e),
        },
        Message::Notification(n) => enc.notification_raw(&mut out, n.method(), &n.params),
        Message::Cancel(c) => enc.cancel(&mut out, c.id),
        Message::Partial(p) => enc.partial_raw(&mut out, p.id, p.seq, &p.chunk),
    }
    .expect("encodes");
    out
}

#[test]
fn every_frame_vector_decodes_to_its_meaning() {
    let v = vectors();
    let frames = v["frames"].as_array().expect("frames");
    assert!(frames.len() >= 60, "{} frame vectors", frames.len());
    for f in frames {
        let name = f["name"].as_str().expect("name");
        let body = one_frame(&hex(f["hex"].as_str().expect("hex")));
        let expect = &f["expect"];
        let version = expect["version"].as_u64().expect("version");
        match Message::decode_any(body.clone(), DEFAULT_MAX_DEPTH) {
            Ok(d) => {
                assert_eq!(meaning(d.version, &d.message), plain(expect), "{name}");
            }
            Err(DecodeError::UnsupportedVersion { found }) => {
                // Only a $/fatal may come in a version we do not speak: read it generically.
                assert_eq!(found, version, "{name}");
                assert_eq!(expect["method"], "$/fatal", "{name}: only $/fatal may");
                let generic = raw_json(&body);
                assert_eq!(
                    generic,
                    json!([version, 2, "$/fatal", expect["params"]]),
                    "{name}"
                );
            }
            Err(e) => panic!("{name}: {e}"),
        }
        if let Some(fatal) = expect.get("fatal") {
            let params = &expect["params"];
            assert_eq!(params["code"], fatal["code"], "{name}");
            assert_eq!(params["supported"], fatal["supported"], "{name}");
            if version <= 2 {
                let p: hearth_protocol::reserved::Fatal =
                    serde_json::from_value(params.clone()).expect("a Fatal");
                assert_eq!(json!(p.code), fatal["code"], "{name}");
            }
        }
        if let Some(hello) = expect.get("hello") {
            let h: hearth_protocol::reserved::HelloResult =
                serde_json::from_value(expect["result"].clone()).expect("a HelloResult");
            assert_eq!(json!(h.protocol), hello["protocol"], "{name}");
            assert_eq!(json!(h.limits.max_frame), hello["max_frame"], "{name}");
            assert_eq!(
                json!(h.limits.max_in_flight),
                hello["max_in_flight"],
                "{name}"
            );
        }
    }
}

#[test]
fn every_documented_frame_is_what_the_encoder_writes() {
    let v = vectors();
    let mut checked = 0;
    for f in v["frames"].as_array().expect("frames") {
        if !f["source"].as_str().unwrap_or("").starts_with("docs/") {
            continue;
        }
        let name = f["name"].as_str().expect("name");
        let wire = hex(f["hex"].as_str().expect("hex"));
        let d = Message::decode_any(one_frame(&wire), DEFAULT_MAX_DEPTH)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&encode(d.version, &d.message)[..], &wire[..], "{name}");
        checked += 1;
    }
    assert!(checked >= 25, "{checked} documented frames");
}

#[test]
fn every_bad_header_is_refused_from_the_header_alone() {
    let v = vectors();
    for b in v["bad_headers"].as_array().expect("bad_headers") {
        let name = b["name"].as_str().expect("name");
        let max = usize::try_from(b["max_frame"].as_u64().expect("max_frame")).expect("fits");
        let mut buf = BytesMut::from(&hex(b["hex"].as_str().expect("hex"))[..]);
        let got = FrameDecoder::new(max).decode(&mut buf);
        match (b["expect_error"].as_str(), got) {
            (None, Ok(None)) => {}
            (Some("frame_too_large"), Err(FrameError::TooLarge { .. })) => {}
            (Some("empty_frame"), Err(FrameError::Empty)) => {}
            (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
        }
        assert!(
            buf.capacity() <= 64 * 1024 + 16,
            "{name}: reserved {}",
            buf.capacity()
        );
    }
}

#[test]
fn every_bad_body_is_refused_as_the_vector_says() {
    let v = vectors();
    let bodies = v["bad_bodies"].as_array().expect("bad_bodies");
    assert!(bodies.len() >= 10, "{} bad bodies", bodies.len());
    for b in bodies {
        let name = b["name"].as_str().expect("name");
        let frame = one_frame(&hex(b["hex"].as_str().expect("hex")));
        let got = Message::decode_any(frame, DEFAULT_MAX_DEPTH);
        match (b["expect_error"].as_str().expect("expect_error"), &got) {
            ("parse", Err(DecodeError::Parse { .. }))
            | ("invalid", Err(DecodeError::Invalid { .. } | DecodeError::TrailingBytes { .. }))
            | ("unsupported_version", Err(DecodeError::UnsupportedVersion { .. })) => {}
            (want, got) => panic!("{name}: wanted {want}, got {got:?}"),
        }
    }
}

fn split_at(bytes: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut prev = 0;
    for &p in points.iter().chain(std::iter::once(&bytes.len())) {
        out.push(bytes[prev..p].to_vec());
        prev = p;
    }
    out
}

fn chunkings(bytes: &[u8], spec: &Json) -> Vec<Vec<Vec<u8>>> {
    let n = bytes.len();
    match spec {
        Json::String(s) if s == "whole" => vec![vec![bytes.to_vec()]],
        Json::String(s) if s == "bytewise" => vec![bytes.iter().map(|b| vec![*b]).collect()],
        Json::String(s) if s == "every_single_split" => {
            (1..n).map(|i| split_at(bytes, &[i])).collect()
        }
        Json::String(s) if s == "every_double_split" => (1..n)
            .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
            .map(|(i, j)| split_at(bytes, &[i, j]))
            .collect(),
        Json::Array(points) => {
            let points: Vec<usize> = points
                .iter()
                .map(|p| usize::try_from(p.as_u64().expect("split point")).expect("fits"))
                .collect();
            vec![split_at(bytes, &points)]
        }
        other => panic!("unknown feed {other}"),
    }
}

#[test]
fn every_stream_yields_its_frames_however_it_is_split() {
    let v = vectors();
    let by_name: std::collections::HashMap<&str, &Json> = v["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .chain(v["bad_bodies"].as_array().expect("bad_bodies"))
        .map(|f| (f["name"].as_str().expect("name"), f))
        .collect();
    let mut runs = 0;
    for s in v["streams"].as_array().expect("streams") {
        let name = s["name"].as_str().expect("name");
        let bytes = hex(s["hex"].as_str().expect("hex"));
        let want: Vec<Json> = s["frames"]
            .as_array()
            .expect("frame names")
            .iter()
            .map(|n| {
                let f = by_name[n.as_str().expect("frame name")];
                match f.get("expect") {
                    Some(expect) => plain(expect),
                    None => json!({ "rejected": true }), // a bad body
                }
            })
            .collect();
        for spec in s["feeds"].as_array().expect("feeds") {
            for chunks in chunkings(&bytes, spec) {
                let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
                let mut buf = BytesMut::new();
                let mut got = Vec::new();
                for c in &chunks {
                    buf.extend_from_slice(c);
                    while let Some(frame) = dec.decode(&mut buf).expect("valid stream") {
                        got.push(
                            match Message::decode_any(frame.clone(), DEFAULT_MAX_DEPTH) {
                                Ok(d) => meaning(d.version, &d.message),
                                Err(DecodeError::UnsupportedVersion { found }) => {
                                    // A $/fatal is read whatever its version; else rejected.
                                    let g = raw_json(&frame);
                                    if g[2] == "$/fatal" {
                                        json!({"version": found, "kind": "notification",
                                           "method": g[2], "params": g[3]})
                                    } else {
                                        json!({ "rejected": true })
                                    }
                                }
                                Err(_) => json!({ "rejected": true }),
                            },
                        );
                    }
                }
                assert!(dec.is_idle(&buf), "{name}: bytes left over");
                assert_eq!(got, want, "{name} fed {spec}");
                runs += 1;
            }
        }
    }
    assert!(runs > 500, "{runs} chunkings");
}
