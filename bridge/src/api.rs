//! The JSON API: `GET /v2/hello` (the daemon's `$/hello`), `POST /v2/call/{method}` (one call,
//! JSON params in, `{"result"}` or `{"error"}` out, or NDJSON partials with `?stream=1`), and
//! `GET /v2/openapi.json`. Calls go through the bridge's one shared daemon connection; dropping
//! a handler (the HTTP client went away) drops the call, which cancels it at the daemon. Error
//! codes map to HTTP statuses in [`status_for`], the table docs/BRIDGE.md repeats.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hearth_client::{ErrorCode, StreamEvent};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::json::msgpack_to_json;
use crate::serve::Shared;

/// The code the bridge uses for failures of its own (daemon unreachable, unreadable answer).
const BRIDGE_ERROR: i64 = -32603;

/// The HTTP status for an error code from the daemon.
pub(crate) fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::PARSE_ERROR | ErrorCode::INVALID_REQUEST | ErrorCode::INVALID_PARAMS => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        ErrorCode::REQUEST_CANCELLED | ErrorCode::SUPERSEDED => StatusCode::CONFLICT,
        ErrorCode::SERVER_BUSY | ErrorCode::SHUTTING_DOWN => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::DEADLINE_EXCEEDED => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::FRAME_TOO_LARGE => StatusCode::BAD_GATEWAY,
        ErrorCode::INTERNAL_ERROR => StatusCode::INTERNAL_SERVER_ERROR,
        // The rest of the range reserved for the protocol and the daemon.
        c if (-32768..=-32000).contains(&c.0) => StatusCode::INTERNAL_SERVER_ERROR,
        // Errors a method defines for itself: the request was understood and refused.
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// `GET /v2/hello`.
pub(crate) async fn hello(State(shared): State<Arc<Shared>>) -> Response {
    match shared.link.client().await {
        Ok(client) => json_response(StatusCode::OK, &json!(client.hello())),
        Err(e) => client_error(&e),
    }
}

/// `GET /v2/openapi.json`.
pub(crate) async fn openapi() -> Response {
    static_json(include_str!("openapi.json"))
}

/// Query parameters of `POST /v2/call/{method}`.
#[derive(Debug, Deserialize)]
pub(crate) struct CallQuery {
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    deadline_ms: Option<u64>,
    #[serde(default)]
    supersede: Option<String>,
}

/// `POST /v2/call/{method}`.
pub(crate) async fn call(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    Query(query): Query<CallQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !is_json(&headers) {
        return bridge_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON, sent with Content-Type: application/json",
        );
    }
    let limit = shared.limits.max_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let read = tokio::time::timeout(
        shared.limits.body_timeout,
        Limited::new(body, limit).collect(),
    );
    let bytes = match read.await {
        Err(_) => {
            return bridge_error(
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time",
            );
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(limit),
        Ok(Err(e)) => {
            return bridge_error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
            );
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let params: Json = if bytes.iter().all(u8::is_ascii_whitespace) {
        Json::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(e) => {
                return bridge_error(
                    StatusCode::BAD_REQUEST,
                    &format!("the body is not JSON: {e}"),
                );
            }
        }
    };
    let stream = match query.stream.as_deref() {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => return bridge_error(StatusCode::BAD_REQUEST, "stream must be 1 or 0"),
    };
    let client = match shared.link.client().await {
        Ok(client) => client,
        Err(e) => return client_error(&e),
    };
    let mut builder = client.request(&method, &params);
    if let Some(ms) = query.deadline_ms {
        builder = builder.deadline(Duration::from_millis(ms));
    }
    if let Some(key) = query.supersede {
        builder = builder.supersede(key);
    }
    if !stream {
        return match builder.send_raw().await {
            Ok(raw) => result_response(&raw),
            Err(e) => client_error(&e),
        };
    }
    let mut events = builder.stream();
    // The first event decides the status: an error before any partial gets its own.
    let first = match events.next().await {
        Some(Err(e)) => return client_error(&e),
        Some(Ok(first)) => first,
        None => return bridge_error(StatusCode::BAD_GATEWAY, "the stream ended without a result"),
    };
    let lines = futures_util::stream::once(async move { Ok(first) })
        .chain(events)
        // `client` keeps the shared connection open until the stream ends.
        .map(move |event| -> Result<Bytes, Infallible> {
            let _ = &client;
            let mut line = match event {
                Ok(StreamEvent::Partial { chunk, .. }) => json!({ "partial": render(&chunk) }),
                Ok(StreamEvent::Result(raw)) => json!({ "result": render(&raw) }),
                Err(e) => json!({ "error": error_json(&e) }),
            }
            .to_string()
            .into_bytes();
            line.push(b'\n');
            Ok(Bytes::from(line))
        });
    let mut response = Response::new(Body::from_stream(lines));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

fn render(raw: &[u8]) -> Json {
    msgpack_to_json(raw).unwrap_or_else(|e| json!({ "unreadable": e.to_string() }))
}

fn result_response(raw: &[u8]) -> Response {
    match msgpack_to_json(raw) {
        Ok(value) => json_response(StatusCode::OK, &json!({ "result": value })),
        Err(e) => bridge_error(StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}

/// The `{"code", "message", "data"?}` object for a failed call.
fn error_json(e: &hearth_client::Error) -> Json {
    match e.as_remote() {
        Some(remote) => {
            let mut object = json!({ "code": remote.code.0, "message": remote.message });
            if let Some(data) = remote.data.as_deref() {
                object["data"] = render(data);
            }
            object
        }
        None => json!({ "code": BRIDGE_ERROR, "message": format!("hearth bridge: {e}") }),
    }
}

fn client_error(e: &hearth_client::Error) -> Response {
    let status = match e {
        _ if e.as_remote().is_some() => e
            .code()
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, status_for),
        hearth_client::Error::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
        hearth_client::Error::Encode(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_GATEWAY,
    };
    json_response(status, &json!({ "error": error_json(e) }))
}

fn too_large(limit: usize) -> Response {
    bridge_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body is larger than {limit} bytes"),
    )
}

/// An error the bridge itself answers, in the same shape as the daemon's.
pub(crate) fn bridge_error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        &json!({ "error": { "code": BRIDGE_ERROR, "message": format!("hearth bridge: {message}") } }),
    )
}

fn json_response(status: StatusCode, value: &Json) -> Response {
    let mut response = (status, value.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn static_json(text: &'static str) -> Response {
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
