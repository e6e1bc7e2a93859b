//! The methods `hearthd` serves besides the reserved ones: `echo` (params back, byte for
//! byte), `sleep` (`{"ms": n}`, cancellable), `shutdown` (starts a graceful shutdown),
//! `count` (`{"n", "interval_ms"}`, streams `0..n` as partial results) and `ask` (version 2:
//! relays a request to the caller and returns its answer). They double as the workload for
//! tests and the load-test client. Deadlines, supersede and cancel reach them as any
//! handler: the connection drops their futures. `echo` and `shutdown` never wait, so they are
//! synchronous handlers ([`Router::sync_raw_method`], [`Router::sync_method`]), run inline.

use std::time::Duration;

use bytes::Bytes;
use hearth_protocol::value::{Head, Reader};
use hearth_protocol::{DEFAULT_MAX_DEPTH, ErrorCode, Version};
use serde::{Deserialize, Serialize};

use crate::{ClientRequestError, MethodError, RequestContext, Router};

/// Largest `n` `count` accepts.
pub const COUNT_MAX_N: u64 = 1_000_000;
/// Largest `interval_ms` `count` accepts.
pub const COUNT_MAX_INTERVAL_MS: u64 = 60_000;

/// Params of `count`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CountParams {
    /// How many chunks to produce (at most 1,000,000).
    pub n: u64,
    /// Milliseconds between chunks (at most 60,000); the first comes at once.
    #[serde(default)]
    pub interval_ms: u64,
}

/// Params of `sleep`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SleepParams {
    /// How long to sleep, in milliseconds.
    pub ms: u64,
}

/// Result of `sleep`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SleepResult {
    /// How long it slept, in milliseconds.
    pub slept_ms: u64,
}

/// Result of `shutdown`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ShutdownResult {
    /// How long running requests get to finish, in milliseconds.
    pub grace_ms: u64,
}

/// A router with the built-in methods.
pub fn router() -> Router {
    add(Router::new())
}

/// Adds the built-in methods to `router`.
pub fn add(router: Router) -> Router {
    router
        // Never waits: answered inline, with no future or context of its own.
        .sync_raw_method("echo", |params, _ctx| Ok(params))
        .method("sleep", |p: SleepParams, _ctx: RequestContext| async move {
            // Dropping this future (cancel, disconnect, shutdown) stops the sleep.
            tokio::time::sleep(Duration::from_millis(p.ms)).await;
            Ok::<_, MethodError>(SleepResult { slept_ms: p.ms })
        })
        .method("count", |p: CountParams, ctx: RequestContext| async move {
            if p.n > COUNT_MAX_N || p.interval_ms > COUNT_MAX_INTERVAL_MS {
                return Err(MethodError::invalid_params(format!(
                    "count needs n <= {COUNT_MAX_N} and interval_ms <= {COUNT_MAX_INTERVAL_MS}"
                )));
            }
            let interval = Duration::from_millis(p.interval_ms);
            if !ctx.is_streaming() && interval.is_zero() {
                return Ok(p.n); // nothing to send and nothing to wait for
            }
            for i in 0..p.n {
                if i > 0 && !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                // Not streaming: a no-op. Closed: the caller is gone; stop early.
                if ctx.partial(&i).await.is_err() {
                    break;
                }
            }
            Ok(p.n)
        })
        .raw_method("ask", |params: Bytes, ctx: RequestContext| async move {
            if ctx.version() == Version::V1 {
                return Err(MethodError::new(
                    ErrorCode::INVALID_REQUEST.0,
                    "ask needs a version 2 connection: version 1 has no requests from the daemon",
                ));
            }
            let (method, inner) = ask_params(&params).ok_or_else(|| {
                MethodError::invalid_params("ask needs {\"method\": str, \"params\": any}")
            })?;
            match ctx.request_raw(&method, &inner).await {
                Ok(result) => Ok(result),
                Err(ClientRequestError::Client(object)) => Err(MethodError::from(object)),
                // PROTOCOL.md §8: -32002 also means "the client did not answer in time".
                Err(e @ ClientRequestError::Timeout(_)) => Err(MethodError::new(
                    ErrorCode::DEADLINE_EXCEEDED.0,
                    e.to_string(),
                )),
                Err(e) => Err(MethodError::internal(e.to_string())),
            }
        })
        .sync_method(
            "shutdown",
            |_: serde::de::IgnoredAny, ctx: &RequestContext| {
                ctx.server().shutdown();
                Ok::<_, MethodError>(ShutdownResult {
                    grace_ms: u64::try_from(ctx.server().limits().grace.as_millis())
                        .unwrap_or(u64::MAX),
                })
            },
        )
}

/// Reads `{"method": str, "params": any}` (params default nil) without copying `params`.
fn ask_params(raw: &Bytes) -> Option<(String, Bytes)> {
    let mut rd = Reader::new(raw);
    let Ok(Head::Map(pairs)) = rd.head() else {
        return None;
    };
    let (mut method, mut params) = (None, None);
    for _ in 0..pairs {
        let Head::Str(len) = rd.head().ok()? else {
            return None; // keys that are not strings: not the params `ask` takes
        };
        let key = rd.bytes(len).ok()?;
        match key {
            b"method" => {
                let Head::Str(len) = rd.head().ok()? else {
                    return None;
                };
                method = Some(std::str::from_utf8(rd.bytes(len).ok()?).ok()?.to_owned());
            }
            b"params" => params = Some(raw.slice(rd.skip(DEFAULT_MAX_DEPTH).ok()?)),
            _ => {
                rd.skip(DEFAULT_MAX_DEPTH).ok()?;
            }
        }
    }
    Some((
        method?,
        params.unwrap_or_else(|| Bytes::from_static(&[0xc0])),
    ))
}
