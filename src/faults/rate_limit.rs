//! `rate_limit`: past `messages` arrivals at its stage within `window_ms`, answer 451 4.7.1.
//!
//! At stage `mail` this limits how many messages the destination takes per window, as a
//! receiving server's rate limiter does. Arrivals are counted over a sliding window shared by
//! every session of the scenario; refused ones do not count, so a sender that backs off gets
//! through once the window has moved on.

use std::fmt;
use std::time::Duration;

use crate::protocol::{EnhancedCode, Reply};

/// The `rate_limit` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// How many arrivals are let through per window.
    pub messages: u64,
    /// The length of the sliding window.
    pub window_ms: u64,
}

impl RateLimit {
    /// The window as a duration.
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }

    /// The reply for an arrival over the limit.
    pub fn refusal(&self) -> Reply {
        Reply::new(
            451,
            Some(EnhancedCode::new(4, 7, 1)),
            format!(
                "Rate limit exceeded: at most {} per {}, try again later",
                super::greylist::plural(u128::from(self.messages), "message"),
                super::greylist::plural(u128::from(self.window_ms.div_ceil(1000)), "second"),
            ),
        )
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate limit {} per {} ms", self.messages, self.window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_451_4_7_1_naming_the_limit() {
        let r = RateLimit {
            messages: 3,
            window_ms: 60_000,
        }
        .refusal();
        assert_eq!(
            r.to_text(),
            "451 4.7.1 Rate limit exceeded: at most 3 messages per 60 seconds, try again later"
        );
    }
}
