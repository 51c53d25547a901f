//! `throttle`: from its stage on, every reply is written at `bytes_per_second`.
//!
//! The reply goes out in small pieces with a timer between them, the way a saturated link or an
//! overloaded server dribbles bytes. A client's per-command timeout sees a slow but live peer.

use std::fmt;
use std::time::Duration;

/// The `throttle` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// The rate replies are written at, at least 1.
    pub bytes_per_second: u64,
}

impl Throttle {
    /// The size of each piece: a tenth of a second's worth, at least one byte.
    pub fn chunk_bytes(&self) -> usize {
        usize::try_from((self.bytes_per_second / 10).max(1)).unwrap_or(usize::MAX)
    }

    /// How long to wait after writing `bytes`.
    pub fn pause_after(&self, bytes: usize) -> Duration {
        let secs = bytes as f64 / self.bytes_per_second.max(1) as f64;
        Duration::from_secs_f64(secs)
    }
}

impl fmt::Display for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "throttle {} bytes/s", self.bytes_per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_a_tenth_of_a_second_and_pauses_match_the_rate() {
        let t = Throttle {
            bytes_per_second: 100,
        };
        assert_eq!(t.chunk_bytes(), 10);
        assert_eq!(t.pause_after(10), Duration::from_millis(100));
        assert_eq!(
            Throttle {
                bytes_per_second: 3
            }
            .chunk_bytes(),
            1
        );
    }
}
