//! MessagePack → JSON for what the daemon answers ([`msgpack_to_json`]); JSON → MessagePack
//! needs nothing here, since the client serializes a `serde_json::Value` as params directly.
//! The rendering is total, as in the `hearth` CLI: every MessagePack value has a JSON form
//! (binary → array of byte values, non-string map keys → their JSON text, extension values →
//! `{"ext", "data"}`, NaN and infinities → null), so answering never fails on a result's shape.

use serde_json::{Map, Number, Value as Json, json};

/// The deepest nesting the daemon accepts bounds what we ever render.
const MAX_DEPTH: usize = hearth_client::protocol::DEFAULT_MAX_DEPTH;

/// Decodes one MessagePack value and renders it as JSON.
pub(crate) fn msgpack_to_json(mut bytes: &[u8]) -> Result<Json, String> {
    let value = rmpv::decode::read_value_with_max_depth(&mut bytes, MAX_DEPTH)
        .map_err(|e| format!("the daemon's answer is not readable MessagePack: {e}"))?;
    if !bytes.is_empty() {
        return Err(format!(
            "the daemon's answer has {} bytes after its value",
            bytes.len()
        ));
    }
    Ok(to_json(value))
}

/// One MessagePack value as JSON; see the module docs for the values JSON lacks.
pub(crate) fn to_json(value: rmpv::Value) -> Json {
    use rmpv::Value as Mp;
    match value {
        Mp::Nil => Json::Null,
        Mp::Boolean(b) => Json::Bool(b),
        Mp::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Json::from(u),
            (None, Some(s)) => Json::from(s),
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
                let key = match key {
                    Mp::String(s) => text(s),
                    other => to_json(other).to_string(),
                };
                object.insert(key, to_json(value));
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
            msgpack_to_json(&encode(&value)),
            Ok(json!({"1": [0, 255], "x": {"ext": 5, "data": [9]}, "nan": null, "neg": i64::MIN}))
        );
        assert!(msgpack_to_json(&[0x92, 0x01]).is_err(), "truncated");
        assert!(msgpack_to_json(&[0xc0, 0xc0]).is_err(), "trailing bytes");
    }
}
