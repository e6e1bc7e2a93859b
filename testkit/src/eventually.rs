//! Bounded waiting for conditions no event announces (another process's counters, a file
//! that appears): poll at a short interval, fail loudly after a generous overall bound; and
//! [`within`], the same bound on one awaited future.

use std::time::Duration;

/// How long any single wait in a test may take before the test fails instead of hanging.
/// Generous on purpose: tests share a loaded 2-core machine, and a bound only has to be long
/// enough that hitting it means a bug, never a slow run.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The interval between two polls. Not a synchronisation: the outcome does not depend on it.
const POLL: Duration = Duration::from_millis(10);

/// Waits until `cond` holds, polling every few milliseconds; panics with `what` after
/// [`PATIENCE`]. Uses wall-clock time, so it also works under `tokio::time::pause`.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Awaits `fut`, failing the test instead of hanging after [`PATIENCE`].
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, fut).await {
        Ok(value) => value,
        Err(_) => panic!("gave up waiting for {what}"),
    }
}
