//! SMTP replies as values: a three-digit code, an optional RFC 3463 enhanced status code and one or
//! more lines of text.
//!
//! Every reply the server sends is built here, either by a named constructor for the healthy
//! receiver or from a scenario's override, and turned into bytes by [`Reply::write_to`].

use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};

/// An RFC 3463 enhanced status code such as `4.2.2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject, 0 to 999.
    pub subject: u16,
    /// The detail, 0 to 999.
    pub detail: u16,
}

impl EnhancedCode {
    /// Builds an enhanced code from its three parts.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        Self {
            class,
            subject,
            detail,
        }
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// Why a string is not an enhanced status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid enhanced status code {0:?}: expected class.subject.detail such as \"4.2.2\"")]
pub struct EnhancedCodeError(pub String);

impl FromStr for EnhancedCode {
    type Err = EnhancedCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || EnhancedCodeError(s.to_string());
        let mut parts = s.split('.');
        let (Some(class), Some(subject), Some(detail), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let digits = |p: &str, max_len: usize| {
            !p.is_empty() && p.len() <= max_len && p.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(class, 1) || !digits(subject, 3) || !digits(detail, 3) {
            return Err(bad());
        }
        let class: u8 = class.parse().map_err(|_| bad())?;
        if !matches!(class, 2 | 4 | 5) {
            return Err(bad());
        }
        Ok(Self {
            class,
            subject: subject.parse().map_err(|_| bad())?,
            detail: detail.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for EnhancedCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EnhancedCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One SMTP reply: a code, an optional enhanced status code and at least one line of text.
///
/// The enhanced code, when present, is written at the start of every line, as RFC 2034 asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The three-digit reply code, 200 to 599.
    pub code: u16,
    /// The enhanced status code, written before the text of every line.
    pub enhanced: Option<EnhancedCode>,
    /// The lines of text, without CRLF; never empty.
    pub lines: Vec<String>,
}

const fn ec(class: u8, subject: u16, detail: u16) -> Option<EnhancedCode> {
    Some(EnhancedCode::new(class, subject, detail))
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, enhanced: Option<EnhancedCode>, text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced,
            lines: vec![text.into()],
        }
    }

    /// A reply of several lines; an empty list becomes one empty line.
    pub fn multiline(code: u16, enhanced: Option<EnhancedCode>, lines: Vec<String>) -> Self {
        let lines = if lines.is_empty() {
            vec![String::new()]
        } else {
            lines
        };
        Self {
            code,
            enhanced,
            lines,
        }
    }

    /// True for 2xx and 3xx replies, which let the command take effect.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// True for 421, the reply after which an RFC 5321 server closes the connection.
    pub fn is_closing(&self) -> bool {
        self.code == 421
    }

    /// The reply as it appears on the wire, without the final CRLF, lines joined by `\n`.
    pub fn to_text(&self) -> String {
        let mut out = BytesMut::new();
        self.write_to(&mut out);
        let text = String::from_utf8_lossy(&out);
        text.trim_end_matches("\r\n").replace("\r\n", "\n")
    }

    /// Appends the reply's wire form, CRLF-terminated lines, to `out`.
    pub fn write_to(&self, out: &mut BytesMut) {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { b' ' } else { b'-' };
            out.put_slice(itoa3(self.code).as_bytes());
            out.put_u8(sep);
            if let Some(enhanced) = self.enhanced {
                out.put_slice(enhanced.to_string().as_bytes());
                if !line.is_empty() {
                    out.put_u8(b' ');
                }
            }
            // A CR or LF inside a line would split the reply; scenario text is validated, but
            // this keeps the wire form well-formed whatever the source.
            for b in line.bytes() {
                out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
            }
            out.put_slice(b"\r\n");
        }
    }

    // The healthy receiver's replies, by name.

    /// `220 <host> ESMTP ready`.
    pub fn greeting(hostname: &str) -> Self {
        Self::new(220, None, format!("{hostname} ESMTP smtp-fault ready"))
    }

    /// `221 2.0.0 Bye`.
    pub fn bye(hostname: &str) -> Self {
        Self::new(221, ec(2, 0, 0), format!("{hostname} closing connection"))
    }

    /// `250 2.0.0 OK`.
    pub fn ok() -> Self {
        Self::new(250, ec(2, 0, 0), "OK")
    }

    /// `250 <host>` for HELO.
    pub fn helo(hostname: &str, client: &str) -> Self {
        Self::new(250, None, format!("{hostname} greets {client}"))
    }

    /// The multi-line EHLO reply listing the given extensions.
    pub fn ehlo(hostname: &str, client: &str, extensions: &[String]) -> Self {
        let mut lines = Vec::with_capacity(extensions.len() + 1);
        lines.push(format!("{hostname} greets {client}"));
        lines.extend(extensions.iter().cloned());
        Self::multiline(250, None, lines)
    }

    /// `250 2.1.0` for an accepted sender.
    pub fn sender_ok() -> Self {
        Self::new(250, ec(2, 1, 0), "Sender OK")
    }

    /// `250 2.1.5` for an accepted recipient.
    pub fn recipient_ok() -> Self {
        Self::new(250, ec(2, 1, 5), "Recipient OK")
    }

    /// `354` to start message input.
    pub fn start_data() -> Self {
        Self::new(354, None, "End data with <CR><LF>.<CR><LF>")
    }

    /// `250 2.0.0` for a stored message, naming its queue id.
    pub fn message_accepted(id: u64) -> Self {
        Self::new(250, ec(2, 0, 0), format!("OK: queued as {id:016X}"))
    }

    /// `252 2.5.0` for VRFY, which this server never answers definitively.
    pub fn cannot_verify() -> Self {
        Self::new(
            252,
            ec(2, 5, 0),
            "Cannot VRFY user, but will accept message and attempt delivery",
        )
    }

    /// `214 2.0.0` for HELP.
    pub fn help() -> Self {
        Self::multiline(
            214,
            ec(2, 0, 0),
            vec![
                "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT STARTTLS".to_string(),
                "See RFC 5321".to_string(),
            ],
        )
    }

    /// `220 2.0.0` to begin a STARTTLS handshake.
    pub fn ready_to_start_tls() -> Self {
        Self::new(220, ec(2, 0, 0), "Ready to start TLS")
    }

    /// `500 5.5.2` for a command the server does not know.
    pub fn unknown_command() -> Self {
        Self::new(500, ec(5, 5, 2), "Error: command not recognized")
    }

    /// `502 5.5.1` for a known command this server does not implement.
    pub fn not_implemented() -> Self {
        Self::new(502, ec(5, 5, 1), "Error: command not implemented")
    }

    /// `503 5.5.1` for a command out of sequence.
    pub fn bad_sequence(why: &str) -> Self {
        Self::new(503, ec(5, 5, 1), format!("Error: {why}"))
    }

    /// `501 5.5.4` for a syntax error in a command's arguments.
    pub fn syntax_error(why: &str) -> Self {
        Self::new(501, ec(5, 5, 4), format!("Syntax error: {why}"))
    }

    /// `555 5.5.4` for a MAIL or RCPT parameter that is not recognised.
    pub fn unsupported_parameter(name: &str) -> Self {
        Self::new(555, ec(5, 5, 4), format!("Unsupported parameter {name}"))
    }

    /// `553 5.6.7` for a non-ASCII address without SMTPUTF8.
    pub fn utf8_address_without_smtputf8() -> Self {
        Self::new(553, ec(5, 6, 7), "Non-ASCII address requires SMTPUTF8")
    }

    /// `500 5.5.6` for a line longer than the limit.
    pub fn line_too_long(max_octets: usize) -> Self {
        Self::new(
            500,
            ec(5, 5, 6),
            format!("Line too long (limit is {max_octets} octets)"),
        )
    }

    /// `552 5.3.4` for a message larger than the advertised SIZE.
    pub fn message_too_big(max_bytes: u64) -> Self {
        Self::new(
            552,
            ec(5, 3, 4),
            format!("Message size exceeds fixed limit of {max_bytes} bytes"),
        )
    }

    /// `452 4.5.3` for one recipient too many.
    pub fn too_many_recipients() -> Self {
        Self::new(452, ec(4, 5, 3), "Too many recipients")
    }

    /// `550 5.5.2` for a message containing a bare LF or bare CR.
    pub fn bare_newline(which: &str) -> Self {
        Self::new(550, ec(5, 5, 2), format!("Error: bare {which} received"))
    }

    /// `421 4.4.2` for a client that went silent too long.
    pub fn idle_timeout(hostname: &str) -> Self {
        Self::new(
            421,
            ec(4, 4, 2),
            format!("{hostname} Error: timeout exceeded"),
        )
    }

    /// `421 4.3.2` when the server shuts down.
    pub fn shutting_down(hostname: &str) -> Self {
        Self::new(
            421,
            ec(4, 3, 2),
            format!("{hostname} Service shutting down, closing connection"),
        )
    }

    /// `421 4.7.0` past the server's session limit.
    pub fn too_many_sessions(hostname: &str) -> Self {
        Self::new(
            421,
            ec(4, 7, 0),
            format!("{hostname} Too many concurrent sessions"),
        )
    }

    /// `451 4.3.0` when the server could not store an accepted message.
    pub fn local_error() -> Self {
        Self::new(451, ec(4, 3, 0), "Error: local error in processing")
    }

    /// `554 5.5.1` for a transaction with no valid recipient.
    pub fn no_valid_recipients() -> Self {
        Self::new(554, ec(5, 5, 1), "Error: no valid recipients")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

fn itoa3(code: u16) -> String {
    format!("{code:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: &Reply) -> String {
        let mut out = BytesMut::new();
        reply.write_to(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn one_line_reply_carries_its_enhanced_code() {
        let reply = Reply::new(452, ec(4, 2, 2), "Mailbox full");
        assert_eq!(wire(&reply), "452 4.2.2 Mailbox full\r\n");
    }

    #[test]
    fn multiline_reply_uses_dashes_and_repeats_the_enhanced_code() {
        let reply = Reply::multiline(421, ec(4, 3, 2), vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(
            wire(&reply),
            "421-4.3.2 a\r\n421-4.3.2 b\r\n421 4.3.2 c\r\n"
        );
    }

    #[test]
    fn reply_without_enhanced_code_is_code_and_text() {
        assert_eq!(
            wire(&Reply::start_data()),
            "354 End data with <CR><LF>.<CR><LF>\r\n"
        );
    }

    #[test]
    fn line_breaks_inside_text_never_reach_the_wire() {
        let reply = Reply::new(250, None, "a\r\n250 injected");
        assert_eq!(wire(&reply), "250 a  250 injected\r\n");
    }

    #[test]
    fn enhanced_codes_parse_and_reject_nonsense() {
        assert_eq!(
            "4.4.316".parse::<EnhancedCode>().unwrap(),
            EnhancedCode::new(4, 4, 316)
        );
        for bad in [
            "", "4", "4.4", "3.0.0", "4.4.4.4", "4.x.1", "4.1000.1", "44.1.1", "4..1",
        ] {
            assert!(
                bad.parse::<EnhancedCode>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
