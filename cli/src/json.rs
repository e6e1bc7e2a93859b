//! JSON at the command line, MessagePack on the wire: [`parse_params`] for what the user
//! types and [`msgpack_to_json`] for what the daemon answers. The second is the bridge's
//! (`hearth_bridge::msgpack_to_json`, one rendering for the CLI and the bridge's JSON API): it
//! is total — every MessagePack value has a JSON rendering — so printing a result never fails
//! on its shape. Reading and printing are left to the commands.

pub(crate) use hearth_bridge::msgpack_to_json;
use serde::{Serialize, Serializer};
use serde_json::Value as Json;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_params_round_trip() {
        let wire = parse_params(r#"{"hi": [1, -2, 2.5, null, true, "x"]}"#)
            .and_then(|p| p.to_msgpack())
            .expect("json");
        assert_eq!(
            msgpack_to_json(&wire).expect("readable"),
            json!({"hi": [1, -2, 2.5, null, true, "x"]})
        );
        assert!(parse_params("{nope").is_err());
    }

    #[test]
    fn params_encode_as_the_values_they_hold() {
        let json = parse_params(r#"{"n": 3}"#).expect("json");
        assert_eq!(json, Params::Json(json!({"n": 3})));
        // A map of one entry, "n" => 3.
        assert_eq!(json.to_msgpack(), Ok(vec![0x81, 0xa1, b'n', 0x03]));
        // A MessagePack binary (bin 8) of two bytes, not an array.
        assert_eq!(
            Params::Binary(vec![7, 8]).to_msgpack(),
            Ok(vec![0xc4, 0x02, 7, 8])
        );
    }
}
