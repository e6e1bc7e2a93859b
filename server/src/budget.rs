//! Per-connection budgets and deadlines: [`Budget`] counts events in a one-minute window
//! (protocol errors, cancels for unknown ids) so a peer that keeps misbehaving is cut off
//! while an occasional mistake is merely answered; [`Timer`] is a lazily armed deadline
//! the connection polls (a frame that never completes, output the peer never reads).
//! Both read tokio's clock, so tests and fuzzing can pause time.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

const WINDOW: Duration = Duration::from_secs(60);

/// At most `limit` events per fixed one-minute window.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u32,
    used: u32,
    window_start: Option<Instant>,
}

impl Budget {
    pub(crate) fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            used: 0,
            window_start: None,
        }
    }

    /// Records one event; `false` once the window's budget is exceeded.
    pub(crate) fn spend(&mut self) -> bool {
        let now = Instant::now();
        match self.window_start {
            Some(start) if now.duration_since(start) < WINDOW => {}
            _ => {
                self.window_start = Some(now);
                self.used = 0;
            }
        }
        self.used = self.used.saturating_add(1);
        self.used <= self.limit
    }
}

/// A deadline that costs nothing until first polled, and is moved rather than recreated.
#[derive(Debug, Default)]
pub(crate) struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Timer {
    /// Polls for `deadline`, arming or moving the timer as needed.
    pub(crate) fn poll_at(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                sleep
            }
            slot @ None => slot.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        sleep.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn budget_refills_each_minute() {
        let mut b = Budget::per_minute(3);
        assert!(b.spend() && b.spend() && b.spend());
        assert!(!b.spend(), "fourth in the same minute");
        tokio::time::advance(WINDOW).await;
        assert!(b.spend(), "a new window");
    }

    #[tokio::test(start_paused = true)]
    async fn timer_fires_at_its_latest_deadline() {
        let mut t = Timer::default();
        let start = Instant::now();
        let first = start + Duration::from_secs(1);
        let moved = start + Duration::from_secs(5);
        std::future::poll_fn(|cx| {
            assert!(t.poll_at(first, cx).is_pending());
            Poll::Ready(())
        })
        .await;
        tokio::time::advance(Duration::from_secs(2)).await;
        std::future::poll_fn(|cx| {
            assert!(t.poll_at(moved, cx).is_pending(), "moved past now");
            Poll::Ready(())
        })
        .await;
        tokio::time::advance(Duration::from_secs(3)).await;
        std::future::poll_fn(|cx| {
            assert!(t.poll_at(moved, cx).is_ready());
            Poll::Ready(())
        })
        .await;
    }
}
