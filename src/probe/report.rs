//! What a probe found: the verdict as a documented code, where it was reached, the remote's last
//! reply, what to look at, and a timed transcript of the whole attempt.
//!
//! [`ProbeReport::to_text`] is what an administrator reads; its `Serialize` form (`--json`) has
//! the same fields for a script, plus the verdict line, the exit status and the causes and fixes
//! spelled out so that the consumer needs no copy of this module's tables.

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;

use crate::scenario::DocumentedError;

/// The step of a delivery attempt at which a verdict was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStage {
    /// Looking up MX and address records.
    Resolve,
    /// Opening the TCP connection.
    Connect,
    /// Waiting for the server's 220 greeting.
    Greeting,
    /// EHLO, or HELO after EHLO was refused, before or after TLS.
    Ehlo,
    /// The STARTTLS command, or finding that it is not offered.
    Starttls,
    /// The TLS handshake after STARTTLS.
    TlsHandshake,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// The DATA command.
    Data,
    /// Sending the message itself.
    Body,
    /// The final dot and the reply to it.
    EndOfData,
    /// QUIT; a successful attempt ends here.
    Quit,
}

impl ProbeStage {
    /// The stage's name as the output spells it: `connect`, `tls_handshake`, `end_of_data`.
    pub fn name(self) -> &'static str {
        match self {
            ProbeStage::Resolve => "resolve",
            ProbeStage::Connect => "connect",
            ProbeStage::Greeting => "greeting",
            ProbeStage::Ehlo => "ehlo",
            ProbeStage::Starttls => "starttls",
            ProbeStage::TlsHandshake => "tls_handshake",
            ProbeStage::Mail => "mail",
            ProbeStage::Rcpt => "rcpt",
            ProbeStage::Data => "data",
            ProbeStage::Body => "body",
            ProbeStage::EndOfData => "end_of_data",
            ProbeStage::Quit => "quit",
        }
    }

    /// Where in the session a failure at this stage happened, as the end of a sentence.
    pub(crate) fn while_doing(self) -> &'static str {
        match self {
            ProbeStage::Resolve => "while resolving the destination",
            ProbeStage::Connect => "while connecting",
            ProbeStage::Greeting => "while waiting for the greeting",
            ProbeStage::Ehlo => "after EHLO",
            ProbeStage::Starttls => "after STARTTLS",
            ProbeStage::TlsHandshake => "during the TLS handshake",
            ProbeStage::Mail => "after MAIL FROM",
            ProbeStage::Rcpt => "after RCPT TO",
            ProbeStage::Data => "after DATA",
            ProbeStage::Body => "while sending the message",
            ProbeStage::EndOfData => {
                "after the final dot (the message may have arrived; a sender would send it again)"
            }
            ProbeStage::Quit => "after QUIT",
        }
    }
}

/// Who a transcript line is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Direction {
    /// Sent by the probe: `C:`.
    #[serde(rename = "C")]
    Client,
    /// Received from the server: `S:`.
    #[serde(rename = "S")]
    Server,
    /// Something the probe did or saw that is not an SMTP line (DNS, TCP, TLS): `*:`.
    #[serde(rename = "*")]
    Note,
}

impl Direction {
    fn tag(self) -> &'static str {
        match self {
            Direction::Client => "C:",
            Direction::Server => "S:",
            Direction::Note => "*:",
        }
    }
}

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TranscriptLine {
    /// Milliseconds since the probe started.
    pub offset_ms: f64,
    /// Who it is from.
    #[serde(rename = "dir")]
    pub direction: Direction,
    /// The line, without CRLF.
    pub text: String,
}

/// The transcript as it is being written.
#[derive(Debug)]
pub(crate) struct Transcript {
    start: Instant,
    lines: Vec<TranscriptLine>,
    truncated: bool,
}

impl Transcript {
    /// The most lines kept. A hostile server can send a reply of many lines to every command;
    /// past this, lines are counted out rather than kept.
    const MAX_LINES: usize = 2000;

    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            lines: Vec::new(),
            truncated: false,
        }
    }

    pub(crate) fn client(&mut self, text: impl Into<String>) {
        self.push(Direction::Client, text.into());
    }

    pub(crate) fn server(&mut self, text: impl Into<String>) {
        self.push(Direction::Server, text.into());
    }

    pub(crate) fn note(&mut self, text: impl Into<String>) {
        self.push(Direction::Note, text.into());
    }

    fn push(&mut self, direction: Direction, text: String) {
        if self.lines.len() >= Self::MAX_LINES {
            self.truncated = true;
            return;
        }
        let offset_ms = (self.start.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
        self.lines.push(TranscriptLine {
            offset_ms,
            direction,
            text,
        });
    }

    pub(crate) fn finish(mut self) -> Vec<TranscriptLine> {
        if self.truncated {
            let offset_ms = self.lines.last().map_or(0.0, |l| l.offset_ms);
            self.lines.push(TranscriptLine {
                offset_ms,
                direction: Direction::Note,
                text: format!("transcript cut at {} lines", Self::MAX_LINES),
            });
        }
        self.lines
    }
}

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    /// The documented error a sending connector would report, or `None` when the message was
    /// (or would be) delivered.
    pub verdict: DocumentedError,
    /// What exactly happened, in a sentence: `certificate expired on 2025-06-01 00:00:00 UTC`.
    pub detail: String,
    /// The step at which the verdict was reached; `quit` for a success.
    pub stage: ProbeStage,
    /// The remote's last reply before the verdict was reached, verbatim, lines joined by `\n`.
    pub last_reply: Option<String>,
    /// Everything sent and received, with time offsets.
    pub transcript: Vec<TranscriptLine>,
    /// True when a message was sent and accepted after its final dot.
    pub delivered: bool,
    /// Each host and address tried, in order, with how it went.
    pub tried: Vec<String>,
    /// Things that did not stop delivery but that an administrator should know, such as a
    /// certificate that failed validation in opportunistic mode.
    pub warnings: Vec<String>,
}

impl ProbeReport {
    /// The exit status for this verdict; see the table in the [module documentation](super).
    pub fn exit_code(&self) -> i32 {
        match self.verdict {
            DocumentedError::None => 0,
            DocumentedError::DnsQueryFailed => 12,
            DocumentedError::ConnectionTimedOut => 15,
            DocumentedError::ConnectionRefused => 16,
            DocumentedError::CannotConnect => 17,
            DocumentedError::ConnectionClosed => 18,
            DocumentedError::CertificateValidationFailed => 20,
            // A verdict of "other" with no reply (a null MX) is as final as a 5xx.
            DocumentedError::Other => match self.reply_code() {
                Some(400..=499) => 30,
                _ => 31,
            },
        }
    }

    /// The first line of the report: `450 4.4.316 Connection refused`, `delivered`,
    /// `would be delivered` or `other: 452 4.2.2 Mailbox full`.
    pub fn verdict_line(&self) -> String {
        match self.verdict {
            DocumentedError::None if self.delivered => "delivered".to_string(),
            DocumentedError::None => "would be delivered".to_string(),
            DocumentedError::Other => match &self.last_reply {
                Some(reply) => format!("other: {}", reply.lines().last().unwrap_or_default()),
                None => format!("other: {}", self.detail),
            },
            documented => documented.to_string(),
        }
    }

    /// The code of the last reply, when there was one.
    fn reply_code(&self) -> Option<u16> {
        self.last_reply.as_deref()?.get(..3)?.parse().ok()
    }

    /// The report as an administrator reads it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.verdict_line());
        let _ = writeln!(out, "  stage:      {}", self.stage.name());
        let _ = writeln!(out, "  detail:     {}", terminal_safe(&self.detail));
        match &self.last_reply {
            Some(reply) => {
                for (i, line) in reply.lines().enumerate() {
                    let label = if i == 0 { "last reply:" } else { "" };
                    let _ = writeln!(out, "  {label:<11} {}", terminal_safe(line));
                }
            }
            None => {
                let _ = writeln!(out, "  last reply: none");
            }
        }
        for (i, tried) in self.tried.iter().enumerate() {
            let label = if i == 0 { "tried:" } else { "" };
            let _ = writeln!(out, "  {label:<11} {tried}");
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "  warning:    {warning}");
        }

        let causes = causes_and_fixes(self.verdict);
        if !causes.is_empty() {
            let _ = writeln!(out, "\nLikely causes and fixes:");
            for cause in causes {
                let _ = writeln!(out, "  - {cause}");
            }
        }

        let _ = writeln!(out, "\nTranscript:");
        for line in &self.transcript {
            let _ = writeln!(
                out,
                "{:>8.1} ms  {} {}",
                line.offset_ms,
                line.direction.tag(),
                terminal_safe(&line.text)
            );
        }
        out
    }
}

/// The remote's text as it can be shown on a terminal: control characters, which a hostile
/// server could use to send escape sequences, are written as escapes such as `\u{1b}`.
fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let escaped = text
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    std::borrow::Cow::Owned(escaped)
}

impl Serialize for ProbeReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            verdict: DocumentedError,
            verdict_line: String,
            name: &'static str,
            exit_code: i32,
            stage: ProbeStage,
            detail: &'a str,
            last_reply: Option<&'a str>,
            delivered: bool,
            tried: &'a [String],
            warnings: &'a [String],
            causes_and_fixes: &'static [&'static str],
            transcript: &'a [TranscriptLine],
        }

        Json {
            verdict: self.verdict,
            verdict_line: self.verdict_line(),
            name: self.verdict.name(),
            exit_code: self.exit_code(),
            stage: self.stage,
            detail: &self.detail,
            last_reply: self.last_reply.as_deref(),
            delivered: self.delivered,
            tried: &self.tried,
            warnings: &self.warnings,
            causes_and_fixes: causes_and_fixes(self.verdict),
            transcript: &self.transcript,
        }
        .serialize(serializer)
    }
}

/// The likely causes of a verdict and what fixes each, one line apiece; empty for a delivery.
pub fn causes_and_fixes(verdict: DocumentedError) -> &'static [&'static str] {
    match verdict {
        DocumentedError::None => &[],
        DocumentedError::DnsQueryFailed => &[
            "The name does not exist or has no mail records: a mistyped smart host, an expired \
             domain (NXDOMAIN), or a zone with neither MX nor address records. Check the name \
             the connector uses and the zone's delegation.",
            "The zone's DNS servers are failing or silent (SERVFAIL, timeouts, REFUSED). Query \
             each authoritative server directly and repair or replace the one that fails.",
            "A record changed and resolvers still hold the old answer, or the new one was never \
             published. Check every authoritative server serves the new record, then wait out \
             the old TTL or flush the sender's resolver cache.",
        ],
        DocumentedError::ConnectionTimedOut => &[
            "Nothing is at that address: the server is down, or the host is unplugged or \
             powered off. Bring it back; queued mail retries on its own.",
            "The smart host, MX or address record points at a wrong or retired address. \
             Correct the record or the connector so it names the current server.",
            "A firewall silently drops the sender's packets. Allow the sender's published \
             address ranges to reach the SMTP port.",
        ],
        DocumentedError::ConnectionRefused => &[
            "No mail service listens on that port: it is stopped, crashed, or bound to another \
             port or address. Start it, or point the connector at the port it really uses.",
            "A firewall or the server's own access rules actively reject the sender's \
             addresses. Allow the sender's address ranges on the SMTP port.",
            "The address now belongs to another machine. Check that the MX or smart host still \
             leads to the mail server.",
        ],
        DocumentedError::CannotConnect => &[
            "The server answered, but with an error at once (421 or 554 in the greeting, EHLO \
             and HELO refused). Its reply and logs say why: maintenance, overload, or a block on \
             the sender's address or name.",
            "TLS is required but the server does not offer STARTTLS, or refuses it. Enable \
             STARTTLS with a working key and certificate, or relax the connector's TLS \
             requirement where policy allows.",
            "The TLS handshake failed for a reason other than the certificate, such as no \
             protocol version or cipher suite in common. Let both sides allow at least one \
             version (TLS 1.2 or 1.3) and a modern cipher suite.",
        ],
        DocumentedError::ConnectionClosed => &[
            "The server stopped part-way: it crashed, restarted, hit a resource limit, or hung \
             until the sender gave up. Its logs around the time of the attempt say which.",
            "A firewall or SMTP inspection device in the path broke the session, typically at \
             STARTTLS or while the message streamed. Turn the inspection off or let SMTP through \
             untouched.",
            "The server is slower than the sender's patience (a late greeting, a long content \
             scan after the final dot). Make it answer sooner, or raise the sender's timeouts; \
             a drop after the final dot can leave the recipient with duplicates.",
        ],
        DocumentedError::CertificateValidationFailed => &[
            "The certificate is out of date (expired, or not valid yet). Renew and install it, \
             and check that the clocks on both sides are right.",
            "The certificate is for another name than the one the sender connects to. Issue one \
             whose subject alternative names include that name, or point the connector at a \
             name the certificate covers.",
            "The certificate is self-signed, chains to an authority the sender does not trust, \
             or the server leaves out an intermediate. Use a certificate from an authority the \
             sender trusts and serve the full chain.",
        ],
        DocumentedError::Other => &[
            "The server refused on purpose and its reply says why (mailbox full, unknown user, \
             policy or content rejection); the enhanced status code names the class of \
             problem.",
            "A 4xx reply is temporary: the sender keeps the message queued and retries until \
             its queue lifetime runs out, then bounces it.",
            "A 5xx reply is permanent: the sender bounces at once. Fix the address or the \
             message, or get the sender allowed by the destination.",
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(verdict: DocumentedError, last_reply: Option<&str>) -> ProbeReport {
        ProbeReport {
            verdict,
            detail: "detail".to_string(),
            stage: ProbeStage::Rcpt,
            last_reply: last_reply.map(str::to_string),
            transcript: Vec::new(),
            delivered: false,
            tried: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn control_bytes_from_the_remote_are_escaped_for_the_terminal() {
        assert_eq!(
            terminal_safe("250 ok\u{0}\u{1b}[31mRED"),
            "250 ok\\u{0}\\u{1b}[31mRED"
        );
        assert_eq!(terminal_safe("plain"), "plain");
    }

    #[test]
    fn every_verdict_has_its_own_exit_status() {
        let cases = [
            (DocumentedError::None, None, 0),
            (DocumentedError::DnsQueryFailed, None, 12),
            (DocumentedError::ConnectionTimedOut, None, 15),
            (DocumentedError::ConnectionRefused, None, 16),
            (DocumentedError::CannotConnect, Some("421 4.3.2 bye"), 17),
            (DocumentedError::ConnectionClosed, None, 18),
            (DocumentedError::CertificateValidationFailed, None, 20),
            (DocumentedError::Other, Some("452 4.2.2 Mailbox full"), 30),
            (DocumentedError::Other, Some("550 5.1.1 User unknown"), 31),
            (DocumentedError::Other, None, 31),
        ];
        for (verdict, reply, code) in cases {
            assert_eq!(
                report(verdict, reply).exit_code(),
                code,
                "{verdict:?} {reply:?}"
            );
        }
    }

    #[test]
    fn the_verdict_line_names_the_code_or_quotes_the_final_reply_line() {
        assert_eq!(
            report(DocumentedError::ConnectionRefused, None).verdict_line(),
            "450 4.4.316 Connection refused"
        );
        assert_eq!(
            report(
                DocumentedError::Other,
                Some("452-4.2.2 Mailbox\n452 4.2.2 full")
            )
            .verdict_line(),
            "other: 452 4.2.2 full"
        );
        assert_eq!(
            report(DocumentedError::None, None).verdict_line(),
            "would be delivered"
        );
    }

    #[test]
    fn every_failure_has_causes_and_fixes_and_a_delivery_has_none() {
        for &verdict in DocumentedError::ALL {
            let causes = causes_and_fixes(verdict);
            if verdict == DocumentedError::None {
                assert!(causes.is_empty());
            } else {
                assert!((2..=4).contains(&causes.len()), "{verdict:?}");
            }
        }
    }

    #[test]
    fn the_json_form_carries_the_code_the_stage_and_the_exit_status() {
        let json =
            serde_json::to_value(report(DocumentedError::Other, Some("452 4.2.2 x"))).unwrap();
        assert_eq!(json["verdict"], "other");
        assert_eq!(json["stage"], "rcpt");
        assert_eq!(json["exit_code"], 30);
        assert_eq!(json["last_reply"], "452 4.2.2 x");
        assert_eq!(json["verdict_line"], "other: 452 4.2.2 x");
    }
}
