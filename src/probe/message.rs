//! The small test message `--send` delivers.
//!
//! It is plain ASCII text with the headers RFC 5322 requires, and a little over two kilobytes
//! long: faults that fire once the first kilobyte of a message has arrived (a reset mid-body, a
//! throttle) must be reached by it, and a real message is rarely smaller.

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// How many filler lines the body has; with the headers and the opening paragraph they bring
/// the message past two kilobytes.
const FILLER_LINES: usize = 30;

/// The message as it goes on the wire after DATA: CRLF line endings and dot-stuffed, without the
/// terminating `.` line.
pub(crate) fn test_message(from: &str, to: &str, helo: &str) -> Vec<u8> {
    let now = OffsetDateTime::now_utc();
    let date = now
        .format(&Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".to_string());
    let id = format!("{:x}.probe@{helo}", now.unix_timestamp_nanos());

    let mut text = String::new();
    let _ = writeln!(text, "From: <{from}>");
    let _ = writeln!(text, "To: <{to}>");
    let _ = writeln!(text, "Subject: smtp-fault probe test message");
    let _ = writeln!(text, "Date: {date}");
    let _ = writeln!(text, "Message-ID: <{id}>");
    let _ = writeln!(text, "MIME-Version: 1.0");
    let _ = writeln!(text, "Content-Type: text/plain; charset=us-ascii");
    let _ = writeln!(text, "Auto-Submitted: auto-generated");
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "This message was sent by smtp-fault probe to check that this destination\n\
         accepts mail. It needs no answer and can be deleted."
    );
    let _ = writeln!(text);
    for n in 1..=FILLER_LINES {
        let _ = writeln!(
            text,
            "Line {n:02} of {FILLER_LINES}: filler so that the message is a realistic size."
        );
    }
    to_wire(&text)
}

/// Turns text with `\n` line endings into CRLF lines, doubling a leading dot on any line
/// (RFC 5321 section 4.5.2) so that no line of the message can end it early.
pub(crate) fn to_wire(text: &str) -> Vec<u8> {
    let mut wire = Vec::with_capacity(text.len() + text.len() / 32);
    for line in text.lines() {
        if line.starts_with('.') {
            wire.push(b'.');
        }
        wire.extend_from_slice(line.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    wire
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_start_with_a_dot_are_stuffed_and_every_line_ends_in_crlf() {
        assert_eq!(to_wire("a\n.\n..b\nc"), b"a\r\n..\r\n...b\r\nc\r\n");
    }

    #[test]
    fn the_test_message_is_past_two_kilobytes_and_has_its_headers() {
        let message = test_message("probe@smtp-fault.test", "postmaster@lab.test", "probe.test");
        let text = String::from_utf8(message).unwrap();
        assert!(text.len() > 2048, "{} octets", text.len());
        assert!(text.starts_with("From: <probe@smtp-fault.test>\r\nTo: <postmaster@lab.test>\r\n"));
        assert!(text.contains("\r\nDate: "));
        assert!(text.contains("\r\nMessage-ID: <"));
        assert!(!text.contains("\r\n.\r\n"));
    }
}
