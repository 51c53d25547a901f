//! The ways the server misbehaves, each a named kind with its parameters in explicit units.
//!
//! A scenario lists [`Fault`]s; each names the [`Stage`] at which it fires, the [`Condition`]
//! under which it applies and its [`FaultKind`]. The session asks [`select`] at every stage which
//! faults apply and carries them out. Each kind lives in its own file, with what it does on the
//! wire documented there.

mod close;
mod condition;
mod delay;
mod greylist;
mod history;
mod omit_extension;
mod rate_limit;
mod reply;
mod reset;
mod stall;
mod throttle;

use std::fmt;

pub use close::Close;
pub use condition::{
    AttemptRange, Chance, ChancePer, Condition, Facts, Pattern, PatternError, RangeError,
};
pub use delay::Delay;
pub use greylist::Greylist;
pub use history::{Greylisted, History, Triplet, draw};
pub use omit_extension::OmitExtension;
pub use rate_limit::RateLimit;
pub use reply::{ReplyFault, Then};
pub use reset::Reset;
pub use stall::{Stall, StallEnd};
pub use throttle::Throttle;

/// The points of a session at which a fault can fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The connection was accepted; the greeting has not been sent.
    Connect,
    /// EHLO or HELO arrived.
    Ehlo,
    /// STARTTLS arrived.
    Starttls,
    /// The TLS handshake, after `220 2.0.0` for STARTTLS or at once for implicit TLS.
    TlsHandshake,
    /// AUTH arrived.
    Auth,
    /// MAIL FROM arrived.
    Mail,
    /// RCPT TO arrived.
    Rcpt,
    /// The DATA command arrived; 354 has not been sent.
    Data,
    /// The message is streaming in; fires once `after_bytes` octets have arrived.
    Body,
    /// The final dot arrived; the reply to it has not been sent.
    EndOfData,
    /// RSET arrived.
    Rset,
    /// QUIT arrived.
    Quit,
}

impl Stage {
    /// Every stage, in the order a session meets them.
    pub const ALL: &'static [Stage] = &[
        Stage::Connect,
        Stage::Ehlo,
        Stage::Starttls,
        Stage::TlsHandshake,
        Stage::Auth,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::Body,
        Stage::EndOfData,
        Stage::Rset,
        Stage::Quit,
    ];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Ehlo => "ehlo",
            Stage::Starttls => "starttls",
            Stage::TlsHandshake => "tls_handshake",
            Stage::Auth => "auth",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::Body => "body",
            Stage::EndOfData => "end_of_data",
            Stage::Rset => "rset",
            Stage::Quit => "quit",
        }
    }

    /// The stage with this scenario-file name; `helo` is another name for `ehlo`.
    pub fn from_name(name: &str) -> Option<Stage> {
        if name == "helo" {
            return Some(Stage::Ehlo);
        }
        Stage::ALL.iter().copied().find(|s| s.name() == name)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a fault does when it fires.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer with a chosen reply instead of the normal one.
    Reply(ReplyFault),
    /// Send nothing, for a while or forever.
    Stall(Stall),
    /// Wait, then carry on as normal.
    Delay(Delay),
    /// Close the connection with a FIN, without a reply.
    Close(Close),
    /// Reset the connection with an RST, without a reply.
    Reset(Reset),
    /// Send every later reply slowly.
    Throttle(Throttle),
    /// Leave an extension keyword out of the EHLO reply.
    OmitExtension(OmitExtension),
    /// Refuse new sender/recipient/client triplets until they retry after a delay.
    Greylist(Greylist),
    /// Refuse arrivals past a number per window.
    RateLimit(RateLimit),
}

impl FaultKind {
    /// The kind's name in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Reply(_) => "reply",
            FaultKind::Stall(_) => "stall",
            FaultKind::Delay(_) => "delay",
            FaultKind::Close(_) => "close",
            FaultKind::Reset(_) => "reset",
            FaultKind::Throttle(_) => "throttle",
            FaultKind::OmitExtension(_) => "omit_extension",
            FaultKind::Greylist(_) => "greylist",
            FaultKind::RateLimit(_) => "rate_limit",
        }
    }

    /// Every kind's name, for error messages.
    pub const NAMES: &'static [&'static str] = &[
        "reply",
        "stall",
        "delay",
        "close",
        "reset",
        "throttle",
        "omit_extension",
        "greylist",
        "rate_limit",
    ];

    /// True for kinds that always decide the outcome of the stage. The others adjust it and let
    /// the session carry on; a greylist or rate limit decides only when it refuses.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            FaultKind::Reply(_) | FaultKind::Stall(_) | FaultKind::Close(_) | FaultKind::Reset(_)
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Reply(r) => fmt::Display::fmt(r, f),
            FaultKind::Stall(s) => fmt::Display::fmt(s, f),
            FaultKind::Delay(d) => fmt::Display::fmt(d, f),
            FaultKind::Close(c) => fmt::Display::fmt(c, f),
            FaultKind::Reset(r) => fmt::Display::fmt(r, f),
            FaultKind::Throttle(t) => fmt::Display::fmt(t, f),
            FaultKind::OmitExtension(o) => fmt::Display::fmt(o, f),
            FaultKind::Greylist(g) => fmt::Display::fmt(g, f),
            FaultKind::RateLimit(r) => fmt::Display::fmt(r, f),
        }
    }
}

/// One entry of a scenario's fault list.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Where it fires.
    pub stage: Stage,
    /// What it does.
    pub kind: FaultKind,
    /// For the `body` stage: how many octets of message data arrive before it fires.
    pub after_bytes: u64,
    /// Which sessions, messages or recipients it applies to.
    pub when: Condition,
}

impl Fault {
    /// A fault that fires at `stage` for every session.
    pub fn new(stage: Stage, kind: FaultKind) -> Self {
        Self {
            stage,
            kind,
            after_bytes: 0,
            when: Condition::default(),
        }
    }

    /// Restricts the fault to sessions, messages or recipients that meet `when`.
    pub fn when(mut self, when: Condition) -> Self {
        self.when = when;
        self
    }

    /// For a `body` fault: fire once this many octets of message data have arrived.
    pub fn after_bytes(mut self, after_bytes: u64) -> Self {
        self.after_bytes = after_bytes;
        self
    }

    /// A one-line description for logs and transcripts, e.g. `rcpt: reply 452 4.2.2`.
    pub fn describe(&self) -> String {
        if self.stage == Stage::Body {
            format!(
                "{} after {} bytes: {}",
                self.stage, self.after_bytes, self.kind
            )
        } else {
            format!("{}: {}", self.stage, self.kind)
        }
    }
}

/// The faults that apply at `stage` given what is known of the session: every non-terminal one
/// that matches, in file order, followed by the first terminal one that matches, if any.
pub fn select<'a>(faults: &'a [Fault], stage: Stage, facts: &Facts<'_>) -> Vec<&'a Fault> {
    let mut chosen = Vec::new();
    for fault in faults
        .iter()
        .filter(|f| f.stage == stage && f.when.matches(facts))
    {
        let terminal = fault.kind.is_terminal();
        chosen.push(fault);
        if terminal {
            break;
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Reply;

    fn reply(code: u16) -> FaultKind {
        FaultKind::Reply(ReplyFault::new(Reply::new(code, None, "x")))
    }

    #[test]
    fn stage_names_round_trip_and_helo_means_ehlo() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_name(stage.name()), Some(*stage));
        }
        assert_eq!(Stage::from_name("helo"), Some(Stage::Ehlo));
        assert_eq!(Stage::from_name("greeting"), None);
    }

    #[test]
    fn selection_keeps_modifiers_and_stops_at_the_first_terminal_fault() {
        let faults = vec![
            Fault::new(Stage::Rcpt, FaultKind::Delay(Delay { delay_ms: 10 })),
            Fault::new(Stage::Mail, reply(451)),
            Fault::new(Stage::Rcpt, reply(452)),
            Fault::new(Stage::Rcpt, reply(550)),
        ];
        let facts = Facts::default();
        let chosen = select(&faults, Stage::Rcpt, &facts);
        assert_eq!(chosen.len(), 2);
        assert_eq!(chosen[0].kind.name(), "delay");
        assert_eq!(chosen[1].kind, reply(452));
    }

    #[test]
    fn selection_skips_faults_whose_condition_fails() {
        let when = Condition {
            rcpt: Some(Pattern::new("*@full.example").unwrap()),
            ..Default::default()
        };
        let faults = vec![Fault::new(Stage::Rcpt, reply(452)).when(when)];
        let mut facts = Facts {
            rcpt: Some("a@other.example"),
            ..Default::default()
        };
        assert!(select(&faults, Stage::Rcpt, &facts).is_empty());
        facts.rcpt = Some("a@full.example");
        assert_eq!(select(&faults, Stage::Rcpt, &facts).len(), 1);
    }
}
