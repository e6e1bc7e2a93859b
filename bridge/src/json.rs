//! MessagePack → JSON for what a daemon answers: [`msgpack_to_json`] and [`to_json`], shared by
//! the bridge's JSON API and the `hearth` CLI, which prints results with them. JSON →
//! MessagePack needs nothing here, since the client serializes a `serde_json::Value` as params
//! directly. The rendering is total — every MessagePack value has a JSON form, spelled out on
//! [`to_json`] — so answering or printing never fails on a result's shape; only bytes that are
//! not one MessagePack value fail, with an [`UnreadableAnswer`].

use serde_json::{Map, Number, Value as Json, json};

/// The nesting the daemon allows (counting the envelope) bounds what we ever have to render.
const MAX_DEPTH: usize = hearth_client::protocol::DEFAULT_MAX_DEPTH;

/// Why a daemon's answer could not be rendered as JSON.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnreadableAnswer {
    /// The bytes do not start with a MessagePack value (truncated, or nested too deep).
    #[error("the daemon's answer is not readable MessagePack: {0}")]
    NotMessagePack(rmpv::decode::Error),
    /// One value was read and bytes are left after it.
    #[error("the daemon's answer has {0} bytes after its value")]
    TrailingBytes(usize),
}

/// Decodes one MessagePack value and renders it as JSON.
pub fn msgpack_to_json(mut bytes: &[u8]) -> Result<Json, UnreadableAnswer> {
    let value = rmpv::decode::read_value_with_max_depth(&mut bytes, MAX_DEPTH)
        .map_err(UnreadableAnswer::NotMessagePack)?;
    if !bytes.is_empty() {
        return Err(UnreadableAnswer::TrailingBytes(bytes.len()));
    }
    Ok(to_json(value))
}

/// MessagePack → JSON: nil → null; integers and floats → numbers (NaN and ±inf → null);
/// strings → strings (invalid UTF-8 replaced by U+FFFD); binary → an array of byte values;
/// maps → objects, where a key that is not a string becomes its own JSON text (`1` → `"1"`,
/// `[1,2]` → `"[1,2]"`); extension values → `{"ext": type, "data": [bytes]}`.
pub fn to_json(value: rmpv::Value) -> Json {
    use rmpv::Value as Mp;
    match value {
        Mp::Nil => Json::Null,
        Mp::Boolean(b) => Json::Bool(b),
        Mp::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Json::from(u),
            (None, Some(s)) => Json::from(s),
            // Every MessagePack integer fits one of the two.
            (None, None) => Json::Null,
        },
        Mp::F32(f) => float(f64::from(f)),
        Mp::F64(f) => float(f),
        Mp::String(s) => Json::String(text(s)),
        Mp::Binary(bytes) => bytes_to_json(&bytes),
        Mp::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        Mp::Map(pairs) => {
            let mut object = Map::with_capacity(pairs.len());
            for (key, value) in pairs {
                object.insert(key_text(key), to_json(value));
            }
            Json::Object(object)
        }
        Mp::Ext(kind, data) => json!({ "ext": kind, "data": bytes_to_json(&data) }),
    }
}

fn float(f: f64) -> Json {
    Number::from_f64(f).map_or(Json::Null, Json::Number)
}

fn text(s: rmpv::Utf8String) -> String {
    match s.as_str() {
        Some(s) => s.to_owned(),
        None => String::from_utf8_lossy(s.as_bytes()).into_owned(),
    }
}

fn bytes_to_json(bytes: &[u8]) -> Json {
    Json::Array(bytes.iter().map(|&b| Json::from(b)).collect())
}

fn key_text(key: rmpv::Value) -> String {
    match key {
        rmpv::Value::String(s) => text(s),
        other => to_json(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value as Mp;

    fn encode(value: &Mp) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, value).expect("writing to a Vec");
        out
    }

    #[test]
    fn values_json_lacks_are_spelled_out() {
        let value = Mp::Map(vec![
            (Mp::from(1), Mp::Binary(vec![0, 255])),
            (Mp::from("x"), Mp::Ext(5, vec![9])),
            (Mp::from("nan"), Mp::F64(f64::NAN)),
            (Mp::from("neg"), Mp::from(i64::MIN)),
        ]);
        assert_eq!(
            msgpack_to_json(&encode(&value)).expect("readable"),
            json!({"1": [0, 255], "x": {"ext": 5, "data": [9]}, "nan": null, "neg": i64::MIN})
        );
        assert!(msgpack_to_json(&[0x92, 0x01]).is_err(), "truncated");
        assert!(msgpack_to_json(&[0xc0, 0xc0]).is_err(), "trailing bytes");
    }

    /// Was `values_json_lacks_are_spelled_out` in the CLI's copy of this module.
    #[test]
    fn keys_of_every_kind_and_extreme_numbers_are_spelled_out() {
        let value = Mp::Map(vec![
            (Mp::from(1), Mp::Binary(vec![0, 255])),
            (
                Mp::Array(vec![Mp::from(1), Mp::from(2)]),
                Mp::Ext(5, vec![9]),
            ),
            (Mp::Boolean(true), Mp::F64(f64::NAN)),
            (Mp::from("inf"), Mp::F32(f32::INFINITY)),
            (Mp::Nil, Mp::from(u64::MAX)),
            (Mp::from("neg"), Mp::from(i64::MIN)),
            (
                Mp::String(rmpv::Utf8String::from(String::from("ok"))),
                Mp::Nil,
            ),
        ]);
        assert_eq!(
            msgpack_to_json(&encode(&value)).expect("readable"),
            json!({
                "1": [0, 255],
                "[1,2]": {"ext": 5, "data": [9]},
                "true": null,
                "inf": null,
                "null": u64::MAX,
                "neg": i64::MIN,
                "ok": null,
            })
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        // fixstr of 2 bytes: 0xff 0x41
        assert_eq!(
            msgpack_to_json(&[0xa2, 0xff, 0x41]).expect("readable"),
            json!("\u{fffd}A")
        );
    }

    #[test]
    fn unreadable_bytes_are_an_error() {
        assert!(msgpack_to_json(&[0x92, 0x01]).is_err(), "truncated");
        assert!(msgpack_to_json(&[0xc0, 0xc0]).is_err(), "trailing bytes");
        // The messages the CLI prints and the bridge answers with.
        let truncated = msgpack_to_json(&[0x92, 0x01]).expect_err("truncated");
        assert!(
            truncated
                .to_string()
                .starts_with("the daemon's answer is not readable MessagePack: "),
            "{truncated}"
        );
        let trailing = msgpack_to_json(&[0xc0, 0xc0]).expect_err("trailing bytes");
        assert_eq!(
            trailing.to_string(),
            "the daemon's answer has 1 bytes after its value"
        );
    }
}
