//! What a scenario remembers between sessions: how many connections and messages it has seen,
//! how long it has been in force, which greylisting triplets have knocked, and how many
//! messages arrived lately.
//!
//! A fresh [`History`] starts whenever a scenario takes effect (at server start, or when the
//! scenario is replaced), so "the first two attempts" count from then. Time is tokio's clock, so
//! tests can pause it.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The greylist never holds more than this many triplets; the oldest are forgotten first.
const MAX_TRIPLETS: usize = 100_000;

/// The memory of one scenario while it is in force.
#[derive(Debug)]
pub struct History {
    started: Instant,
    connections: AtomicU64,
    messages: AtomicU64,
    greylist: Mutex<Greylist>,
    arrivals: Mutex<HashMap<usize, VecDeque<Instant>>>,
}

/// The triplets seen, and the order they were first seen in, so that the oldest can be
/// forgotten in constant time once the list is full.
#[derive(Debug, Default)]
struct Greylist {
    first_seen: HashMap<Triplet, Instant>,
    order: VecDeque<Triplet>,
}

/// A greylisting triplet: the client's address, the sender and the recipient, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Triplet {
    /// The client's IP address.
    pub client: IpAddr,
    /// The MAIL FROM address.
    pub sender: String,
    /// The RCPT TO address.
    pub recipient: String,
}

impl Triplet {
    /// A triplet, with the addresses lower-cased.
    pub fn new(client: IpAddr, sender: &str, recipient: &str) -> Self {
        Self {
            client,
            sender: sender.to_lowercase(),
            recipient: recipient.to_lowercase(),
        }
    }
}

/// What the greylist says of a triplet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greylisted {
    /// First seen now; come back after the delay.
    New,
    /// Seen before, but the delay has not passed; this long remains.
    TooSoon(Duration),
    /// Seen long enough ago: let it through.
    Passed,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    /// A history starting now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            connections: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            greylist: Mutex::new(Greylist::default()),
            arrivals: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a new connection and returns its attempt number, from 1.
    pub fn next_attempt(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Connections counted so far.
    pub fn attempts(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Counts a new MAIL FROM and returns its message number, from 1.
    pub fn next_message(&self) -> u64 {
        self.messages.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Milliseconds since the scenario took effect.
    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Looks a triplet up, remembering it if it is new.
    pub fn greylist(&self, triplet: Triplet, min_delay: Duration) -> Greylisted {
        let now = Instant::now();
        let mut seen = self.greylist.lock().expect("greylist lock");
        match seen.first_seen.get(&triplet) {
            None => {
                if seen.order.len() >= MAX_TRIPLETS
                    && let Some(oldest) = seen.order.pop_front()
                {
                    seen.first_seen.remove(&oldest);
                }
                seen.order.push_back(triplet.clone());
                seen.first_seen.insert(triplet, now);
                Greylisted::New
            }
            Some(first) => {
                let waited = now.duration_since(*first);
                if waited >= min_delay {
                    Greylisted::Passed
                } else {
                    Greylisted::TooSoon(min_delay - waited)
                }
            }
        }
    }

    /// Counts one arrival for the rate limit numbered `limit` and says whether it is within
    /// `max` per `window`. Refused arrivals are not counted, so the limit lifts once the window
    /// slides past the accepted ones.
    pub fn within_rate(&self, limit: usize, max: u64, window: Duration) -> bool {
        let now = Instant::now();
        let mut arrivals = self.arrivals.lock().expect("rate lock");
        let times = arrivals.entry(limit).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            times.pop_front();
        }
        if times.len() as u64 >= max {
            return false;
        }
        times.push_back(now);
        true
    }
}

/// A uniform draw in [0, 1) from a seed and two numbers, the same every run: SplitMix64 over
/// the three, so each session or message gets its own independent, repeatable draw.
pub fn draw(seed: u64, unit: u64, salt: u64) -> f64 {
    let mut z = seed
        .wrapping_add(unit.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triplet() -> Triplet {
        Triplet::new("127.0.0.1".parse().unwrap(), "A@x.test", "b@y.test")
    }

    #[tokio::test(start_paused = true)]
    async fn a_triplet_passes_only_after_the_delay() {
        let history = History::new();
        let delay = Duration::from_secs(3);
        assert_eq!(history.greylist(triplet(), delay), Greylisted::New);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            history.greylist(triplet(), delay),
            Greylisted::TooSoon(Duration::from_secs(2))
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(history.greylist(triplet(), delay), Greylisted::Passed);
        let other = Triplet::new("127.0.0.1".parse().unwrap(), "a@x.test", "c@y.test");
        assert_eq!(history.greylist(other, delay), Greylisted::New);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_lifts_as_the_window_slides() {
        let history = History::new();
        let window = Duration::from_secs(10);
        assert!(history.within_rate(0, 2, window));
        assert!(history.within_rate(0, 2, window));
        assert!(!history.within_rate(0, 2, window));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(history.within_rate(0, 2, window));
    }

    #[test]
    fn a_full_greylist_forgets_its_oldest_triplet_first() {
        let history = History::new();
        let delay = Duration::from_secs(60);
        let nth = |i: usize| {
            Triplet::new(
                "127.0.0.1".parse().unwrap(),
                "a@x.test",
                &format!("{i}@y.test"),
            )
        };
        for i in 0..=MAX_TRIPLETS {
            assert_eq!(history.greylist(nth(i), delay), Greylisted::New);
        }
        // The first one was forgotten to make room, so it is new again; the second is not.
        assert_eq!(history.greylist(nth(0), delay), Greylisted::New);
        assert!(matches!(
            history.greylist(nth(MAX_TRIPLETS), delay),
            Greylisted::TooSoon(_)
        ));
    }

    #[test]
    fn attempts_and_messages_count_from_one() {
        let history = History::new();
        assert_eq!((history.next_attempt(), history.next_attempt()), (1, 2));
        assert_eq!(history.next_message(), 1);
    }

    #[test]
    fn draws_are_repeatable_and_roughly_uniform() {
        assert_eq!(draw(42, 7, 1), draw(42, 7, 1));
        assert_ne!(draw(42, 7, 1), draw(43, 7, 1));
        let below: usize = (0..10_000).filter(|i| draw(42, *i, 0) < 0.3).count();
        assert!((2700..3300).contains(&below), "{below} of 10000 below 0.3");
    }
}
