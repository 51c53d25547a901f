//! `delay`: wait `delay_ms`, then carry on as the healthy receiver would.
//!
//! A delay composes with the other faults of its stage: a delay followed by a reply makes a slow
//! refusal. The wait is a timer that ends early on shutdown.

use std::fmt;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The `delay` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    /// How long to wait before answering.
    pub delay_ms: u64,
}

impl Delay {
    /// Waits; returns false when the wait was cut short by shutdown.
    pub async fn wait(&self, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(self.delay_ms)) => true,
            _ = shutdown.cancelled() => false,
        }
    }
}

impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "delay {} ms", self.delay_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_delay_waits_then_reports_it_finished() {
        let start = tokio::time::Instant::now();
        assert!(
            Delay { delay_ms: 250 }
                .wait(&CancellationToken::new())
                .await
        );
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn a_delay_is_cut_short_by_shutdown() {
        let token = CancellationToken::new();
        token.cancel();
        assert!(!Delay { delay_ms: 60_000 }.wait(&token).await);
    }
}
