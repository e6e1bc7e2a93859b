//! The methods `hearthd` serves besides the reserved ones: `echo` (params back, byte for
//! byte), `sleep` (`{"ms": n}`, cancellable) and `shutdown` (starts a graceful shutdown).
//! They double as the workload for tests and the load-test client.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{MethodError, RequestContext, Router};

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
        .raw_method("echo", |params, _ctx| async move { Ok(params) })
        .method("sleep", |p: SleepParams, _ctx: RequestContext| async move {
            // Dropping this future (cancel, disconnect, shutdown) stops the sleep.
            tokio::time::sleep(Duration::from_millis(p.ms)).await;
            Ok::<_, MethodError>(SleepResult { slept_ms: p.ms })
        })
        .method(
            "shutdown",
            |_: serde::de::IgnoredAny, ctx: RequestContext| async move {
                ctx.server().shutdown();
                Ok::<_, MethodError>(ShutdownResult {
                    grace_ms: u64::try_from(ctx.server().limits().grace.as_millis())
                        .unwrap_or(u64::MAX),
                })
            },
        )
}
