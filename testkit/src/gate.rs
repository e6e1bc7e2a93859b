//! [`Gate`]: a method that runs until the test opens the gate, so a request is in flight for
//! exactly as long as the test needs — where a `sleep` of a fixed length would race the
//! test's own steps on a slow machine — and a count of the handlers that have entered it, so a
//! test knows they are running without polling anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hearth_server::{MethodError, RequestContext, Router};
use tokio::sync::{Notify, watch};

/// A test-controlled barrier. Clones share the gate.
#[derive(Clone)]
pub struct Gate {
    open: watch::Sender<bool>,
    entered: Arc<AtomicUsize>,
    left: Arc<AtomicUsize>,
    changed: Arc<Notify>,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Self {
            open: watch::channel(false).0,
            entered: Arc::default(),
            left: Arc::default(),
            changed: Arc::default(),
        }
    }

    /// `router` plus the method `gate`: see [`Gate::add_named`].
    pub fn add_to(&self, router: Router) -> Router {
        self.add_named(router, "gate")
    }

    /// `router` plus the method `name`: counts itself entered, waits (cancellably: dropping
    /// the handler stops the wait) until the gate is open, then answers `"opened"`. A handler
    /// dropped before the gate opened counts as left too.
    pub fn add_named(&self, router: Router, name: &str) -> Router {
        let gate = self.clone();
        router.method(
            name,
            move |_: serde::de::IgnoredAny, _ctx: RequestContext| {
                let gate = gate.clone();
                async move {
                    let _left = Left(gate.clone());
                    let mut open = gate.open.subscribe();
                    gate.entered.fetch_add(1, Ordering::SeqCst);
                    gate.changed.notify_waiters();
                    open.wait_for(|open| *open)
                        .await
                        .map(drop)
                        .map_err(|_| MethodError::internal("the gate was dropped closed"))?;
                    Ok::<_, MethodError>("opened")
                }
            },
        )
    }

    /// Opens the gate: every handler waiting, or still to come, answers.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// How many handlers have entered so far.
    pub fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }

    /// How many handlers have finished or been dropped so far.
    pub fn left(&self) -> usize {
        self.left.load(Ordering::SeqCst)
    }

    /// How many handlers are waiting at the gate now.
    pub fn waiting(&self) -> usize {
        self.entered() - self.left()
    }

    /// Waits until at least `n` handlers have entered (bounded by [`crate::PATIENCE`]).
    pub async fn wait_entered(&self, n: usize) {
        self.wait_until(&format!("{n} handlers to enter the gate"), |g| {
            g.entered() >= n
        })
        .await;
    }

    /// Waits until at least `n` handlers have left (finished or been dropped).
    pub async fn wait_left(&self, n: usize) {
        self.wait_until(&format!("{n} handlers to leave the gate"), |g| {
            g.left() >= n
        })
        .await;
    }

    async fn wait_until(&self, what: &str, cond: impl Fn(&Self) -> bool) {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if cond(self) {
                    return;
                }
                changed.await;
            }
        };
        if tokio::time::timeout(crate::PATIENCE, wait).await.is_err() {
            panic!(
                "timed out waiting for {what} (entered {}, left {})",
                self.entered(),
                self.left()
            );
        }
    }
}

/// Counts a handler out however it ends: answered, cancelled, dropped.
struct Left(Gate);

impl Drop for Left {
    fn drop(&mut self) {
        self.0.left.fetch_add(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}
