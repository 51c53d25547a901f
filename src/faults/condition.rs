//! When a fault applies: address and HELO patterns, attempt and message numbers, a window of
//! time, TLS state, and chance.
//!
//! A [`Condition`] with nothing set applies to every session. Each field that is set must match:
//! `rcpt = "*@full.example"` restricts a fault to those recipients, `attempts = "1-2"` to the
//! first two connections, so a sender's retry can be seen to succeed. Numbers and time count
//! from when the scenario took effect. Chance is drawn from the scenario's seed and the session
//! or message number, so the same run gives the same faults every time.

use std::fmt;
use std::str::FromStr;

/// A case-insensitive glob over an address or name: `*` matches any run of characters, `?` any
/// one character, everything else itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    lowered: Vec<char>,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern {0:?}: a pattern must be non-empty and printable")]
pub struct PatternError(pub String);

impl Pattern {
    /// Compiles a glob such as `*@full.example`.
    pub fn new(source: &str) -> Result<Self, PatternError> {
        if source.is_empty() || source.chars().any(char::is_control) {
            return Err(PatternError(source.to_string()));
        }
        Ok(Self {
            source: source.to_string(),
            lowered: source.to_lowercase().chars().collect(),
        })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when `text` matches the whole pattern, ignoring case.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.to_lowercase().chars().collect();
        glob(&self.lowered, &text)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Iterative glob matching with single-star backtracking: linear in practice, and never
/// exponential, whatever the pattern.
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// An inclusive range of attempt (connection) numbers, counted from 1: `3`, `1-2` or `3-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptRange {
    /// The first number in the range.
    pub first: u64,
    /// The last number in the range, or `None` for no end.
    pub last: Option<u64>,
}

/// Why a range was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid range {0:?}: expected N, N-M or N- with 1 <= N <= M")]
pub struct RangeError(pub String);

impl AttemptRange {
    /// True when `n` is inside the range.
    pub fn contains(&self, n: u64) -> bool {
        n >= self.first && self.last.is_none_or(|last| n <= last)
    }
}

impl FromStr for AttemptRange {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RangeError(s.to_string());
        let number = |p: &str| p.trim().parse::<u64>().ok().filter(|n| *n >= 1);
        let range = match s.split_once('-') {
            None => {
                let n = number(s).ok_or_else(bad)?;
                AttemptRange {
                    first: n,
                    last: Some(n),
                }
            }
            Some((first, "")) => AttemptRange {
                first: number(first).ok_or_else(bad)?,
                last: None,
            },
            Some((first, last)) => {
                let (first, last) = (
                    number(first).ok_or_else(bad)?,
                    number(last).ok_or_else(bad)?,
                );
                if last < first {
                    return Err(bad());
                }
                AttemptRange {
                    first,
                    last: Some(last),
                }
            }
        };
        Ok(range)
    }
}

impl fmt::Display for AttemptRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.last {
            Some(last) if last == self.first => write!(f, "{}", self.first),
            Some(last) => write!(f, "{}-{}", self.first, last),
            None => write!(f, "{}-", self.first),
        }
    }
}

/// What must hold for a fault to apply. Every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Condition {
    /// The recipient: at `rcpt`, the one being given; at later stages, any accepted one.
    pub rcpt: Option<Pattern>,
    /// The sender of the current transaction (`<>` is matched as the empty string).
    pub mail_from: Option<Pattern>,
    /// The name the client gave in EHLO or HELO.
    pub helo: Option<Pattern>,
    /// The attempt number: the count of connections the server accepted, this one included.
    pub attempts: Option<AttemptRange>,
    /// Whether TLS is up on the connection.
    pub tls: Option<bool>,
    /// The message number: MAIL FROM commands received, this one included.
    pub messages: Option<AttemptRange>,
    /// Every k-th message: message numbers k, 2k, 3k, ...
    pub every_nth_message: Option<u64>,
    /// Milliseconds since the scenario took effect: from the first (inclusive) to the second
    /// (exclusive).
    pub window_ms: Option<(u64, u64)>,
    /// A repeatable chance.
    pub chance: Option<Chance>,
}

/// What a chance is drawn for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChancePer {
    /// One draw per session (connection).
    #[default]
    Session,
    /// One draw per message (MAIL FROM).
    Message,
}

/// A probability, drawn once per session or per message from the scenario's seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chance {
    /// The probability that the fault applies, 0 to 1.
    pub probability: f64,
    /// What each draw is for.
    pub per: ChancePer,
    /// Mixed into the draw so that two faults with the same chance draw independently.
    pub salt: u64,
}

/// What the session knows when it asks whether a fault applies.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// This connection's attempt number, from 1.
    pub attempt: u64,
    /// The EHLO or HELO name, once given.
    pub helo: Option<&'a str>,
    /// The sender of the current transaction.
    pub mail_from: Option<&'a str>,
    /// The recipient being given, at the `rcpt` stage.
    pub rcpt: Option<&'a str>,
    /// The recipients accepted so far in the current transaction.
    pub rcpts: &'a [String],
    /// TLS is up on the connection.
    pub tls: bool,
    /// The current message number, from 1; 0 before the first MAIL FROM.
    pub message: u64,
    /// Milliseconds since the scenario took effect.
    pub uptime_ms: u64,
    /// The scenario's seed for chance.
    pub seed: u64,
}

impl Condition {
    /// True when every field that is set matches `facts`. A pattern on something not yet known
    /// (a sender pattern at the greeting, say) does not match.
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        let text = |pattern: &Option<Pattern>, value: Option<&str>| match pattern {
            None => true,
            Some(p) => value.is_some_and(|v| p.matches(v)),
        };
        let rcpt = match &self.rcpt {
            None => true,
            Some(p) => match facts.rcpt {
                Some(r) => p.matches(r),
                None => facts.rcpts.iter().any(|r| p.matches(r)),
            },
        };
        rcpt && text(&self.mail_from, facts.mail_from)
            && text(&self.helo, facts.helo)
            && self
                .attempts
                .is_none_or(|range| range.contains(facts.attempt))
            && self.tls.is_none_or(|tls| tls == facts.tls)
            && self
                .messages
                .is_none_or(|range| facts.message > 0 && range.contains(facts.message))
            && self
                .every_nth_message
                .is_none_or(|k| facts.message > 0 && facts.message.is_multiple_of(k.max(1)))
            && self
                .window_ms
                .is_none_or(|(from, to)| (from..to).contains(&facts.uptime_ms))
            && self.chance.is_none_or(|chance| {
                let unit = match chance.per {
                    ChancePer::Session => facts.attempt,
                    ChancePer::Message => facts.message,
                };
                super::draw(facts.seed, unit, chance.salt) < chance.probability
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_addresses_ignoring_case() {
        let p = Pattern::new("*@full.example").unwrap();
        assert!(p.matches("alice@full.example"));
        assert!(p.matches("BOB@Full.Example"));
        assert!(!p.matches("alice@full.example.org"));
        assert!(!p.matches("alice@notfull.example.com"));
        assert!(Pattern::new("a?c").unwrap().matches("abc"));
        assert!(!Pattern::new("a?c").unwrap().matches("ac"));
        assert!(Pattern::new("*").unwrap().matches(""));
    }

    #[test]
    fn pathological_patterns_finish_quickly() {
        let p = Pattern::new(&"*a".repeat(50)).unwrap();
        assert!(!p.matches(&"a".repeat(49)));
        assert!(p.matches(&"a".repeat(200)));
    }

    #[test]
    fn empty_or_control_patterns_are_refused() {
        assert!(Pattern::new("").is_err());
        assert!(Pattern::new("a\nb").is_err());
    }

    #[test]
    fn ranges_parse_in_their_three_forms() {
        assert_eq!(
            "3".parse(),
            Ok(AttemptRange {
                first: 3,
                last: Some(3)
            })
        );
        assert_eq!(
            "1-2".parse(),
            Ok(AttemptRange {
                first: 1,
                last: Some(2)
            })
        );
        assert_eq!(
            "4-".parse(),
            Ok(AttemptRange {
                first: 4,
                last: None
            })
        );
        for bad in ["", "0", "2-1", "a", "-3", "1-b", "0-"] {
            assert!(
                bad.parse::<AttemptRange>().is_err(),
                "{bad:?} should be refused"
            );
        }
        let r: AttemptRange = "1-2".parse().unwrap();
        assert!(r.contains(1) && r.contains(2) && !r.contains(3));
    }

    #[test]
    fn a_sender_pattern_does_not_match_before_mail_from() {
        let when = Condition {
            mail_from: Some(Pattern::new("*").unwrap()),
            ..Default::default()
        };
        assert!(!when.matches(&Facts::default()));
        assert!(when.matches(&Facts {
            mail_from: Some(""),
            ..Default::default()
        }));
    }

    #[test]
    fn a_recipient_pattern_after_rcpt_matches_any_accepted_recipient() {
        let when = Condition {
            rcpt: Some(Pattern::new("*@full.example").unwrap()),
            ..Default::default()
        };
        let rcpts = vec!["a@ok.example".to_string(), "b@full.example".to_string()];
        assert!(when.matches(&Facts {
            rcpts: &rcpts,
            ..Default::default()
        }));
        assert!(!when.matches(&Facts {
            rcpts: &rcpts[..1],
            ..Default::default()
        }));
    }

    #[test]
    fn a_tls_condition_matches_only_sessions_in_that_state() {
        let when = Condition {
            tls: Some(true),
            ..Default::default()
        };
        assert!(!when.matches(&Facts::default()));
        assert!(when.matches(&Facts {
            tls: true,
            ..Default::default()
        }));
    }

    #[test]
    fn every_nth_message_picks_multiples_only() {
        let when = Condition {
            every_nth_message: Some(3),
            ..Default::default()
        };
        let at = |message| Facts {
            message,
            ..Default::default()
        };
        let hits: Vec<u64> = (0..10).filter(|m| when.matches(&at(*m))).collect();
        assert_eq!(hits, vec![3, 6, 9]);
    }

    #[test]
    fn a_window_holds_from_its_start_to_before_its_end() {
        let when = Condition {
            window_ms: Some((1000, 2000)),
            ..Default::default()
        };
        let at = |uptime_ms| Facts {
            uptime_ms,
            ..Default::default()
        };
        assert!(!when.matches(&at(999)) && when.matches(&at(1000)));
        assert!(when.matches(&at(1999)) && !when.matches(&at(2000)));
    }

    #[test]
    fn a_chance_is_the_same_for_the_same_seed_and_session() {
        let chance = Chance {
            probability: 0.5,
            per: ChancePer::Session,
            salt: 0,
        };
        let when = Condition {
            chance: Some(chance),
            ..Default::default()
        };
        let run = |seed| -> Vec<bool> {
            (1..=40)
                .map(|attempt| {
                    when.matches(&Facts {
                        attempt,
                        seed,
                        ..Default::default()
                    })
                })
                .collect()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let hits = run(7).iter().filter(|h| **h).count();
        assert!((8..=32).contains(&hits), "{hits} of 40");
    }

    #[test]
    fn attempts_select_the_first_connections() {
        let when = Condition {
            attempts: Some("1-2".parse().unwrap()),
            ..Default::default()
        };
        let at = |attempt| Facts {
            attempt,
            ..Default::default()
        };
        assert!(when.matches(&at(1)) && when.matches(&at(2)) && !when.matches(&at(3)));
    }
}
