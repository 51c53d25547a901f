//! `omit_extension`: leave one keyword, such as STARTTLS, out of the EHLO reply.
//!
//! With STARTTLS left out, a sender that requires TLS gives up before MAIL FROM, which is how a
//! destination that does not offer TLS looks on the wire. The command itself is still refused
//! with 502 if the client sends it anyway, as a server without the extension would.

use std::fmt;

/// The `omit_extension` fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmitExtension {
    /// The EHLO keyword to leave out, upper-case (`STARTTLS`, `PIPELINING`, `SIZE`, ...).
    pub extension: String,
}

impl OmitExtension {
    /// True when `line` of an EHLO reply advertises this extension.
    pub fn hides(&self, line: &str) -> bool {
        let keyword = line.split_whitespace().next().unwrap_or("");
        keyword.eq_ignore_ascii_case(&self.extension)
    }
}

impl fmt::Display for OmitExtension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "omit {} from EHLO", self.extension)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_hides_the_keyword_whatever_its_parameters() {
        let omit = OmitExtension {
            extension: "SIZE".into(),
        };
        assert!(omit.hides("SIZE 10485760"));
        assert!(omit.hides("size"));
        assert!(!omit.hides("SMTPUTF8"));
    }
}
