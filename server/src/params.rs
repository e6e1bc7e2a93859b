//! What a caller is told when a request's params do not fit the handler's type: the field
//! that is wrong (a path such as `ms` or `items[2].name`), what was expected and what came,
//! in words a caller knows (`null`, `a string`) rather than the decoder's (`FixStr(1)`,
//! `unit value`). Only runs on the failure path: the params are decoded once more into a
//! generic value so that serde can name the expected type and the path can be tracked.

use hearth_protocol::ErrorObject;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::MethodError;

/// The `data` of a -32602 answer for params that did not deserialize.
#[derive(Debug, Serialize)]
struct Data {
    /// Where in the params: `""` for the params as a whole, else a path such as `ms`.
    field: String,
    /// What the method expected there, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<String>,
    /// What was sent there, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    got: Option<String>,
}

/// The -32602 error for `params` that `P` could not be read from; `first` is the decoder's
/// own error, used when the params are not even well-formed MessagePack.
pub(crate) fn invalid_params<P: DeserializeOwned>(
    method: &str,
    params: &[u8],
    first: impl std::fmt::Display,
) -> ErrorObject {
    let Ok(value) = rmpv::decode::read_value(&mut &params[..]) else {
        return MethodError::invalid_params(format!("invalid params for {method}: {first}")).object;
    };
    let (field, problem) = match serde_path_to_error::deserialize::<_, P>(value) {
        Ok(_) => (String::new(), first.to_string()),
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            let inner = e.into_inner().to_string();
            // rmpv's own prefix adds nothing for a reader.
            let inner = inner
                .strip_prefix("error while decoding value: ")
                .map(str::to_owned)
                .unwrap_or(inner);
            (field, inner)
        }
    };
    let (expected, got) = split_invalid(&problem);
    let message = match (&field[..], &expected, &got) {
        ("", Some(exp), Some(got)) => {
            format!("invalid params for {method}: expected {exp}, got {got}")
        }
        (f, Some(exp), Some(got)) => {
            format!("invalid params for {method}: field `{f}`: expected {exp}, got {got}")
        }
        ("", _, _) => format!("invalid params for {method}: {}", plain(&problem)),
        (f, _, _) => format!(
            "invalid params for {method}: field `{f}`: {}",
            plain(&problem)
        ),
    };
    MethodError::invalid_params(message)
        .with_data(&Data {
            field,
            expected,
            got,
        })
        .object
}

/// Splits serde's `invalid type: X, expected Y` (and `invalid value: …`) into Y and X.
fn split_invalid(problem: &str) -> (Option<String>, Option<String>) {
    let rest = problem
        .strip_prefix("invalid type: ")
        .or_else(|| problem.strip_prefix("invalid value: "));
    match rest.and_then(|r| r.rsplit_once(", expected ")) {
        Some((got, expected)) => (Some(plain(expected)), Some(plain(got))),
        None => (None, None),
    }
}

/// serde's names for MessagePack's kinds, in the words of the protocol's JSON-minded users.
fn plain(text: &str) -> String {
    let mut out = text
        .replace("unit value", "null")
        .replace("a unit", "null")
        .replace("unit", "null");
    if let Some(name) = out.strip_prefix("struct ") {
        out = format!("a map (the fields of {name})");
    }
    out.replace("a sequence", "an array")
        .replace("sequence", "an array")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtins::SleepParams;

    fn answer<P: DeserializeOwned + std::fmt::Debug>(
        params: &impl Serialize,
    ) -> (String, serde_json::Value) {
        let bytes = hearth_protocol::to_msgpack(params).expect("encodes");
        let first = hearth_protocol::from_msgpack::<P>(&bytes).expect_err("does not fit");
        let e = invalid_params::<P>("sleep", &bytes, first);
        let data: serde_json::Value =
            hearth_protocol::from_msgpack(e.data.as_deref().expect("data")).expect("data");
        (e.message, data)
    }

    #[test]
    fn a_wrong_field_is_named_with_what_was_expected() {
        let (message, data) = answer::<SleepParams>(&serde_json::json!({"ms": "x"}));
        assert_eq!(
            message,
            "invalid params for sleep: field `ms`: expected u64, got string \"x\""
        );
        assert_eq!(data["field"], "ms");
        assert_eq!(data["expected"], "u64");
        assert!(!message.contains("marker"), "{message}");
    }

    #[test]
    fn missing_params_say_null_and_what_shape_was_wanted() {
        let (message, data) = answer::<SleepParams>(&());
        assert_eq!(
            message,
            "invalid params for sleep: expected a map (the fields of SleepParams), got null"
        );
        assert_eq!(data["field"], "");
        assert_eq!(data["got"], "null");
    }

    #[test]
    fn a_missing_field_is_named() {
        let (message, _) = answer::<SleepParams>(&serde_json::json!({"msx": 1}));
        assert_eq!(message, "invalid params for sleep: missing field `ms`");
    }
}
