//! JSON-RPC 2.0 as LSP uses it: [`Incoming::parse`] sorts one message body into a request, a
//! notification or a response (or says which JSON-RPC error it deserves), and the `*_body`
//! functions build outgoing bodies. No I/O and no LSP semantics here: which method means what
//! is `gateway.rs`'s; framing is `framing.rs`'s.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// JSON-RPC and LSP error codes the gateway answers with.
pub mod codes {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Valid JSON, but not a JSON-RPC message (also: a request after `shutdown`).
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Params that do not fit the method.
    pub const INVALID_PARAMS: i64 = -32602;
    /// A failure of the gateway or the daemon.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// A request before `initialize`.
    pub const SERVER_NOT_INITIALIZED: i64 = -32002;
    /// The request was cancelled by `$/cancelRequest`.
    pub const REQUEST_CANCELLED: i64 = -32800;
    /// The answer would be stale: a newer request replaced it (hearth's superseded).
    pub const CONTENT_MODIFIED: i64 = -32801;
    /// The request was valid but failed.
    pub const REQUEST_FAILED: i64 = -32803;
}

/// A request id: a number or a string, echoed back exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// A number (JSON-RPC allows fractions; LSP says integer).
    Num(i64),
    /// A string.
    Str(String),
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// One message from the editor.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A request: it gets exactly one response.
    Request {
        /// Its id.
        id: Id,
        /// Its method.
        method: String,
        /// Its params (`Null` when absent).
        params: Value,
    },
    /// A notification: no response.
    Notification {
        /// Its method.
        method: String,
        /// Its params (`Null` when absent).
        params: Value,
    },
    /// The editor's answer to a request of ours.
    Response {
        /// The id of our request.
        id: Id,
        /// `Ok(result)` or `Err(error object)`.
        outcome: Result<Value, Value>,
    },
}

/// A message that deserves an error response instead: the id to answer (`None`: `null`), the
/// code and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The id, when one could be read.
    pub id: Option<Id>,
    /// [`codes::PARSE_ERROR`] or [`codes::INVALID_REQUEST`].
    pub code: i64,
    /// Why.
    pub message: String,
}

impl Incoming {
    /// Sorts a message body. A body that is not JSON is a parse error; JSON that is not a
    /// JSON-RPC 2.0 message (no `"jsonrpc": "2.0"`, a batch, a method that is not a string, an
    /// id that is neither number nor string) is an invalid request.
    pub fn parse(body: &[u8]) -> Result<Incoming, Rejected> {
        let value: Value = serde_json::from_slice(body).map_err(|e| Rejected {
            id: None,
            code: codes::PARSE_ERROR,
            message: format!("parse error: {e}"),
        })?;
        let Value::Object(mut map) = value else {
            return Err(invalid(
                None,
                "a message must be a JSON object (LSP has no batches)",
            ));
        };
        let id = match map.remove("id") {
            None => None,
            Some(v) => match serde_json::from_value::<Id>(v) {
                Ok(id) => Some(id),
                Err(_) => return Err(invalid(None, "id must be an integer or a string")),
            },
        };
        if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(invalid(id, "\"jsonrpc\" must be \"2.0\""));
        }
        let params = map.remove("params").unwrap_or(Value::Null);
        match (map.remove("method"), id) {
            (Some(Value::String(method)), Some(id)) => Ok(Incoming::Request { id, method, params }),
            (Some(Value::String(method)), None) => Ok(Incoming::Notification { method, params }),
            (Some(_), id) => Err(invalid(id, "method must be a string")),
            (None, Some(id)) => match (map.remove("result"), map.remove("error")) {
                (Some(result), None) => Ok(Incoming::Response {
                    id,
                    outcome: Ok(result),
                }),
                (None, Some(error)) => Ok(Incoming::Response {
                    id,
                    outcome: Err(error),
                }),
                _ => Err(invalid(Some(id), "a response has either result or error")),
            },
            (None, None) => Err(invalid(
                None,
                "neither a request, a notification nor a response",
            )),
        }
    }
}

fn invalid(id: Option<Id>, message: &str) -> Rejected {
    Rejected {
        id,
        code: codes::INVALID_REQUEST,
        message: format!("invalid request: {message}"),
    }
}

fn to_body(value: &Value) -> Vec<u8> {
    // Serializing a `Value` cannot fail (its map keys are strings).
    serde_json::to_vec(value).unwrap_or_default()
}

/// A success response.
pub fn result_body(id: &Id, result: &impl Serialize) -> Vec<u8> {
    let result = serde_json::to_value(result).unwrap_or(Value::Null);
    to_body(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// An error response; `id` `None` is `null` (for messages whose id could not be read).
pub fn error_body(id: Option<&Id>, code: i64, message: &str) -> Vec<u8> {
    to_body(&json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    }))
}

/// A notification to the editor.
pub fn notification_body(method: &str, params: &impl Serialize) -> Vec<u8> {
    let params = serde_json::to_value(params).unwrap_or(Value::Null);
    to_body(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
}

/// A request to the editor.
pub fn request_body(id: &Id, method: &str, params: &impl Serialize) -> Vec<u8> {
    let params = serde_json::to_value(params).unwrap_or(Value::Null);
    to_body(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_messages() {
        let parse = |s: &str| Incoming::parse(s.as_bytes());
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}"#),
            Ok(Incoming::Request {
                id: Id::Num(1),
                method: "m".into(),
                params: json!([1])
            })
        );
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","method":"n"}"#),
            Ok(Incoming::Notification {
                method: "n".into(),
                params: Value::Null
            })
        );
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","id":"a","result":null}"#),
            Ok(Incoming::Response {
                id: Id::Str("a".into()),
                outcome: Ok(Value::Null)
            })
        );
    }

    #[test]
    fn rejects_with_the_code_json_rpc_prescribes() {
        let code = |s: &str| Incoming::parse(s.as_bytes()).map_err(|r| (r.id, r.code));
        assert_eq!(code("{nope"), Err((None, codes::PARSE_ERROR)));
        assert_eq!(code("[]"), Err((None, codes::INVALID_REQUEST)));
        assert_eq!(
            code(r#"{"id":3,"method":"m"}"#),
            Err((Some(Id::Num(3)), codes::INVALID_REQUEST))
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":{},"method":"m"}"#),
            Err((None, codes::INVALID_REQUEST))
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":4,"method":5}"#),
            Err((Some(Id::Num(4)), codes::INVALID_REQUEST))
        );
    }

    #[test]
    fn error_bodies_carry_null_ids() {
        let body = error_body(None, codes::PARSE_ERROR, "x");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["id"], Value::Null);
        assert_eq!(v["error"]["code"], json!(-32700));
    }
}
