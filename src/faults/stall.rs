//! `stall`: send nothing, for `duration_ms` or forever.
//!
//! The session stops reading and writing. When the duration ends the server closes the
//! connection with a FIN, as a hung server's watchdog would; with no duration it waits until the
//! client gives up or the server shuts down. The wait is a timer, so it costs no CPU, and it
//! ends at once on shutdown.

use std::fmt;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The `stall` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// How long to stay silent before closing; `None` for ever.
    pub duration_ms: Option<u64>,
}

/// How a stall ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallEnd {
    /// The duration passed.
    Elapsed,
    /// The server is shutting down.
    Shutdown,
}

impl Stall {
    /// Waits out the stall.
    pub async fn wait(&self, shutdown: &CancellationToken) -> StallEnd {
        // Written without `select!`: a stalled session keeps this future for as long as it
        // stalls, so it is kept to a timer and the shutdown signal.
        match self.duration_ms {
            Some(ms) => {
                let limit = Duration::from_millis(ms);
                match tokio::time::timeout(limit, shutdown.cancelled()).await {
                    Ok(()) => StallEnd::Shutdown,
                    Err(_) => StallEnd::Elapsed,
                }
            }
            None => {
                shutdown.cancelled().await;
                StallEnd::Shutdown
            }
        }
    }
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.duration_ms {
            Some(ms) => write!(f, "stall {ms} ms"),
            None => f.write_str("stall forever"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_timed_stall_lasts_its_duration() {
        let token = CancellationToken::new();
        let start = tokio::time::Instant::now();
        assert_eq!(
            Stall {
                duration_ms: Some(1500)
            }
            .wait(&token)
            .await,
            StallEnd::Elapsed
        );
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_forever_ends_on_shutdown() {
        let token = CancellationToken::new();
        let stopper = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            stopper.cancel();
        });
        assert_eq!(
            Stall { duration_ms: None }.wait(&token).await,
            StallEnd::Shutdown
        );
    }
}
