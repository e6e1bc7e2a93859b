//! JSON at the command line, MessagePack on the wire: [`parse_params`] for what the user
//! types and [`msgpack_to_json`] for what the daemon answers. The second is total — every
//! MessagePack value has a JSON rendering, spelled out on [`to_json`] — so printing a result
//! never fails on its shape. Reading and printing are left to the commands.

use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value as Json, json};

/// The nesting the daemon allows (counting the envelope) bounds what we ever have to render.
const MAX_DEPTH: usize = hearth_client::protocol::DEFAULT_MAX_DEPTH;

/// Params as a value the client encodes (the protocol v2 request builder takes anything
/// `Serialize`), each kind encoding exactly as [`Params::to_msgpack`] does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Params {
    /// What the user typed.
    Json(Json),
    /// A MessagePack binary (`hearth bench`'s generated payload).
    Binary(Vec<u8>),
}

impl Serialize for Params {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Json(value) => value.serialize(serializer),
            Self::Binary(bytes) => serializer.serialize_bytes(bytes),
        }
    }
}

impl Params {
    /// The params as one MessagePack value, as the client sends them.
    pub(crate) fn to_msgpack(&self) -> Result<Vec<u8>, String> {
        hearth_client::protocol::to_msgpack(self)
            .map_err(|e| format!("cannot encode the params as MessagePack: {e}"))
    }
}

/// Parses `text` as JSON params, checking that they can be encoded.
pub(crate) fn parse_params(text: &str) -> Result<Params, String> {
    let value: Json =
        serde_json::from_str(text).map_err(|e| format!("PARAMS_JSON is not valid JSON: {e}"))?;
    let params = Params::Json(value);
    params.to_msgpack()?;
    Ok(params)
}

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

/// MessagePack → JSON: nil → null; integers and floats → numbers (NaN and ±inf → null);
/// strings → strings (invalid UTF-8 replaced by U+FFFD); binary → an array of byte values;
/// maps → objects, where a key that is not a string becomes its own JSON text (`1` → `"1"`,
/// `[1,2]` → `"[1,2]"`); extension values → `{"ext": type, "data": [bytes]}`.
pub(crate) fn to_json(value: rmpv::Value) -> Json {
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
    fn json_params_round_trip() {
        let wire = parse_params(r#"{"hi": [1, -2, 2.5, null, true, "x"]}"#)
            .and_then(|p| p.to_msgpack())
            .expect("json");
        assert_eq!(
            msgpack_to_json(&wire),
            Ok(json!({"hi": [1, -2, 2.5, null, true, "x"]}))
        );
        assert!(parse_params("{nope").is_err());
    }

    #[test]
    fn params_encode_as_the_values_they_hold() {
        let json = parse_params(r#"{"n": 3}"#).expect("json");
        assert_eq!(json, Params::Json(json!({"n": 3})));
        assert_eq!(
            json.to_msgpack(),
            Ok(encode(&Mp::Map(vec![(Mp::from("n"), Mp::from(3))])))
        );
        assert_eq!(
            Params::Binary(vec![7, 8]).to_msgpack(),
            Ok(encode(&Mp::Binary(vec![7, 8])))
        );
    }

    #[test]
    fn values_json_lacks_are_spelled_out() {
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
            msgpack_to_json(&encode(&value)),
            Ok(json!({
                "1": [0, 255],
                "[1,2]": {"ext": 5, "data": [9]},
                "true": null,
                "inf": null,
                "null": u64::MAX,
                "neg": i64::MIN,
                "ok": null,
            }))
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        // fixstr of 2 bytes: 0xff 0x41
        assert_eq!(msgpack_to_json(&[0xa2, 0xff, 0x41]), Ok(json!("\u{fffd}A")));
    }

    #[test]
    fn unreadable_bytes_are_an_error() {
        assert!(msgpack_to_json(&[0x92, 0x01]).is_err(), "truncated");
        assert!(msgpack_to_json(&[0xc0, 0xc0]).is_err(), "trailing bytes");
    }
}
