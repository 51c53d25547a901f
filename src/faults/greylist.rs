//! `greylist`: refuse a new sender/recipient/client triplet with 451 4.7.1 until it comes back
//! after `min_delay_ms`, then let it through.
//!
//! This is how greylisting servers turn away senders that never retry. The first RCPT TO of a
//! triplet is refused; so is any retry before the delay has passed; a retry after it is treated
//! as if the fault were not there. The triplets are remembered by the scenario's history.

use std::fmt;
use std::time::Duration;

use super::history::Greylisted;
use crate::protocol::{EnhancedCode, Reply};

/// The `greylist` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Greylist {
    /// How long a triplet must wait after its first try before it is let through.
    pub min_delay_ms: u64,
}

impl Greylist {
    /// The delay as a duration.
    pub fn min_delay(&self) -> Duration {
        Duration::from_millis(self.min_delay_ms)
    }

    /// The refusal for a triplet the greylist holds back, or none when it may pass.
    pub fn refusal(&self, state: Greylisted) -> Option<Reply> {
        let wait = match state {
            Greylisted::Passed => return None,
            Greylisted::New => self.min_delay(),
            Greylisted::TooSoon(left) => left,
        };
        let seconds = wait.as_millis().div_ceil(1000);
        Some(Reply::new(
            451,
            Some(EnhancedCode::new(4, 7, 1)),
            format!(
                "Greylisted, please try again in {}",
                plural(seconds, "second")
            ),
        ))
    }
}

/// `1 second`, `3 seconds`.
pub(crate) fn plural(n: u128, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

impl fmt::Display for Greylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "greylist for {} ms", self.min_delay_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_and_early_triplets_get_451_4_7_1_and_passed_ones_nothing() {
        let g = Greylist { min_delay_ms: 3000 };
        let reply = g.refusal(Greylisted::New).unwrap();
        assert_eq!(
            reply.to_text(),
            "451 4.7.1 Greylisted, please try again in 3 seconds"
        );
        let reply = g
            .refusal(Greylisted::TooSoon(Duration::from_millis(1200)))
            .unwrap();
        assert!(reply.to_text().ends_with("in 2 seconds"));
        let reply = g
            .refusal(Greylisted::TooSoon(Duration::from_millis(300)))
            .unwrap();
        assert!(reply.to_text().ends_with("in 1 second"), "{reply}");
        assert!(g.refusal(Greylisted::Passed).is_none());
    }
}
