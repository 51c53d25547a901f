//! `reply`: answer a stage with any code, enhanced status code and text, then carry on, close
//! with a FIN or reset with an RST.
//!
//! The reply replaces the one the healthy receiver would have sent. Its code decides what the
//! command did: a 2xx or 3xx reply lets the command take effect (a recipient is accepted, data
//! begins, a message is stored), a 4xx or 5xx refuses it. A 421 always closes the connection
//! afterwards, as RFC 5321 requires of a server that sends it.

use std::fmt;

use crate::protocol::Reply;

/// What happens on the connection after a fault's reply is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Then {
    /// The session goes on.
    #[default]
    Continue,
    /// The server closes the connection (FIN).
    Close,
    /// The server resets the connection (RST).
    Reset,
}

impl Then {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Then::Continue => "continue",
            Then::Close => "close",
            Then::Reset => "reset",
        }
    }

    /// The value with this scenario-file name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Then::Continue, Then::Close, Then::Reset]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// The `reply` fault.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyFault {
    /// The reply to send.
    pub reply: Reply,
    /// What to do after sending it.
    pub then: Then,
}

impl ReplyFault {
    /// Sends `reply` and carries on (or closes, for a 421).
    pub fn new(reply: Reply) -> Self {
        Self {
            reply,
            then: Then::Continue,
        }
    }

    /// Sets what happens after the reply.
    pub fn then(mut self, then: Then) -> Self {
        self.then = then;
        self
    }

    /// What the session does after writing the reply: a 421 closes even when the scenario
    /// says to continue.
    pub fn effective_then(&self) -> Then {
        match self.then {
            Then::Continue if self.reply.is_closing() => Then::Close,
            other => other,
        }
    }
}

impl fmt::Display for ReplyFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reply {}", self.reply.code)?;
        if let Some(enhanced) = self.reply.enhanced {
            write!(f, " {enhanced}")?;
        }
        match self.then {
            Then::Continue => Ok(()),
            then => write!(f, ", then {}", then.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::EnhancedCode;

    #[test]
    fn a_421_closes_even_when_told_to_continue() {
        let fault = ReplyFault::new(Reply::new(421, Some(EnhancedCode::new(4, 3, 2)), "bye"));
        assert_eq!(fault.effective_then(), Then::Close);
        assert_eq!(
            fault.clone().then(Then::Reset).effective_then(),
            Then::Reset
        );
        let fault = ReplyFault::new(Reply::new(452, None, "full"));
        assert_eq!(fault.effective_then(), Then::Continue);
    }

    #[test]
    fn description_names_code_enhanced_code_and_what_follows() {
        let fault = ReplyFault::new(Reply::new(421, Some(EnhancedCode::new(4, 3, 2)), "x"))
            .then(Then::Close);
        assert_eq!(fault.to_string(), "reply 421 4.3.2, then close");
    }
}
