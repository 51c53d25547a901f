//! Command lines cut out of a receive buffer.
//!
//! The session reads from its stream into a [`BytesMut`] and asks a [`LineReader`] for the next
//! line, which it hands to [`parse_command`](super::parse_command). A pipelining client may have
//! several commands in the buffer at once; each call takes only the first and leaves the rest where
//! they are, so the session can switch to reading message data after `DATA` without losing bytes.
//!
//! A line longer than the limit is dropped while it streams in rather than collected, so a client
//! that never sends LF costs at most one line's worth of memory.

use bytes::{Bytes, BytesMut};
use memchr::memchr;

/// What [`LineReader::next_line`] found in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    /// A complete line, without its LF and without the CR before it, if any.
    Line(Bytes),
    /// A line longer than the limit ended; its bytes were discarded as they arrived.
    TooLong,
    /// No complete line yet.
    NeedMore,
}

/// Cuts command lines out of a receive buffer, never holding more than the limit of one line.
///
/// A line ends at LF, with or without a CR before it. Its length is counted in octets as they
/// arrived, terminator included, so a limit of 1000 allows 998 characters and CRLF, or 999 and a
/// bare LF.
#[derive(Debug, Clone)]
pub struct LineReader {
    max_octets: usize,
    discarding: bool,
}

impl LineReader {
    /// A reader for lines of at most `max_octets`, counting the CRLF.
    pub fn new(max_octets: usize) -> Self {
        Self {
            max_octets,
            discarding: false,
        }
    }

    /// Takes the next line out of `buf`.
    ///
    /// On [`LineOutcome::Line`] and [`LineOutcome::TooLong`], `buf` is advanced past the line's
    /// LF and whatever follows it is left in place. On [`LineOutcome::NeedMore`], a partial line
    /// within the limit stays in `buf` to be completed by the next read; a partial line over the
    /// limit is removed from `buf`, and the rest of it is removed as it arrives until its LF, when
    /// `TooLong` is returned once.
    pub fn next_line(&mut self, buf: &mut BytesMut) -> LineOutcome {
        let Some(lf) = memchr(b'\n', buf) else {
            // Without an LF the line is at least one octet longer than what is buffered, so a
            // buffer of `max_octets` already holds a line over the limit.
            if self.discarding || buf.len() >= self.max_octets {
                self.discarding = true;
                buf.clear();
            }
            return LineOutcome::NeedMore;
        };

        let mut line = buf.split_to(lf + 1);
        if std::mem::take(&mut self.discarding) || line.len() > self.max_octets {
            return LineOutcome::TooLong;
        }

        line.truncate(lf);
        if line.last() == Some(&b'\r') {
            line.truncate(lf - 1);
        }
        LineOutcome::Line(line.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the reader yields for `buf` until it needs more.
    fn drain(reader: &mut LineReader, buf: &mut BytesMut) -> Vec<LineOutcome> {
        let mut out = Vec::new();
        loop {
            match reader.next_line(buf) {
                LineOutcome::NeedMore => return out,
                outcome => out.push(outcome),
            }
        }
    }

    /// Feeds `input` in pieces cut at `cuts` (ascending) and collects every outcome.
    fn read_in_pieces(max_octets: usize, input: &[u8], cuts: &[usize]) -> Vec<LineOutcome> {
        let mut reader = LineReader::new(max_octets);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            buf.extend_from_slice(&input[start..end]);
            out.extend(drain(&mut reader, &mut buf));
            start = end;
        }
        out
    }

    fn line(text: &str) -> LineOutcome {
        LineOutcome::Line(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn crlf_ends_a_line_and_is_not_part_of_it() {
        let mut reader = LineReader::new(1000);
        let mut buf = BytesMut::from(&b"NOOP\r\n"[..]);
        assert_eq!(reader.next_line(&mut buf), line("NOOP"));
        assert!(buf.is_empty());
        assert_eq!(reader.next_line(&mut buf), LineOutcome::NeedMore);
    }

    #[test]
    fn lf_only_endings_are_accepted() {
        let mut reader = LineReader::new(1000);
        let mut buf = BytesMut::from(&b"EHLO a\nQUIT\n"[..]);
        assert_eq!(
            drain(&mut reader, &mut buf),
            vec![line("EHLO a"), line("QUIT")]
        );
    }

    #[test]
    fn only_the_cr_right_before_the_lf_is_stripped() {
        let mut reader = LineReader::new(1000);
        let mut buf = BytesMut::from(&b"a\r\r\nb\rc\n\r\n"[..]);
        assert_eq!(
            drain(&mut reader, &mut buf),
            vec![line("a\r"), line("b\rc"), line("")]
        );
    }

    #[test]
    fn a_partial_line_waits_in_the_buffer() {
        let mut reader = LineReader::new(1000);
        let mut buf = BytesMut::from(&b"MAIL FROM:<a@b"[..]);
        assert_eq!(reader.next_line(&mut buf), LineOutcome::NeedMore);
        assert_eq!(&buf[..], b"MAIL FROM:<a@b");

        buf.extend_from_slice(b">\r");
        assert_eq!(reader.next_line(&mut buf), LineOutcome::NeedMore);
        buf.extend_from_slice(b"\n");
        assert_eq!(reader.next_line(&mut buf), line("MAIL FROM:<a@b>"));
    }

    #[test]
    fn pipelined_commands_come_out_in_order_and_leave_the_rest_in_place() {
        let mut reader = LineReader::new(1000);
        let mut buf =
            BytesMut::from(&b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x"[..]);
        assert_eq!(reader.next_line(&mut buf), line("MAIL FROM:<a@b>"));
        assert_eq!(reader.next_line(&mut buf), line("RCPT TO:<c@d>"));
        assert_eq!(reader.next_line(&mut buf), line("DATA"));
        assert_eq!(&buf[..], b"Subject: x");
    }

    #[test]
    fn every_split_of_a_multi_command_input_gives_the_same_lines() {
        let input =
            b"EHLO client.example\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\nNOOP\r\r\n\r\nQUIT\r\n";
        let expected = read_in_pieces(1000, input, &[]);
        assert_eq!(
            expected,
            vec![
                line("EHLO client.example"),
                line("MAIL FROM:<a@b>"),
                line("RCPT TO:<c@d>"),
                line("NOOP\r"),
                line(""),
                line("QUIT"),
            ]
        );

        for i in 0..=input.len() {
            for j in i..=input.len() {
                assert_eq!(
                    read_in_pieces(1000, input, &[i, j]),
                    expected,
                    "cut at {i} and {j}"
                );
            }
        }
        let every_byte: Vec<usize> = (1..input.len()).collect();
        assert_eq!(read_in_pieces(1000, input, &every_byte), expected);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        let mut reader = LineReader::new(1000);
        let text = "x".repeat(998);
        let mut buf = BytesMut::from(format!("{text}\r\n").as_bytes());
        assert_eq!(reader.next_line(&mut buf), line(&text));

        let text = "x".repeat(999);
        let mut buf = BytesMut::from(format!("{text}\n").as_bytes());
        assert_eq!(reader.next_line(&mut buf), line(&text));
    }

    #[test]
    fn a_line_one_octet_over_the_limit_is_too_long() {
        let mut reader = LineReader::new(1000);
        let mut buf = BytesMut::from(format!("{}\r\nQUIT\r\n", "x".repeat(999)).as_bytes());
        assert_eq!(reader.next_line(&mut buf), LineOutcome::TooLong);
        assert_eq!(reader.next_line(&mut buf), line("QUIT"));
    }

    #[test]
    fn an_overlong_line_then_a_normal_line_gives_too_long_once_then_the_line() {
        let input = format!("{}\r\nRSET\r\n", "y".repeat(5000));
        let out = read_in_pieces(1000, input.as_bytes(), &[]);
        assert_eq!(out, vec![LineOutcome::TooLong, line("RSET")]);
    }

    #[test]
    fn an_overlong_line_in_many_chunks_never_grows_the_buffer_beyond_the_limit() {
        let max = 100;
        let mut reader = LineReader::new(max);
        let mut buf = BytesMut::new();
        let mut outcomes = Vec::new();

        for _ in 0..1000 {
            buf.extend_from_slice(b"0123456789abcdefg");
            outcomes.extend(drain(&mut reader, &mut buf));
            assert!(buf.len() < max, "buffer holds {} octets", buf.len());
        }
        assert!(outcomes.is_empty());

        buf.extend_from_slice(b"tail\r\nQUIT\r\n");
        outcomes.extend(drain(&mut reader, &mut buf));
        assert_eq!(outcomes, vec![LineOutcome::TooLong, line("QUIT")]);
        assert!(buf.is_empty());
    }

    #[test]
    fn an_overlong_line_is_too_long_at_every_split() {
        let input = format!("NOOP\r\n{}\r\nQUIT\r\n", "z".repeat(40));
        let expected = vec![line("NOOP"), LineOutcome::TooLong, line("QUIT")];
        for i in 0..=input.len() {
            assert_eq!(
                read_in_pieces(32, input.as_bytes(), &[i]),
                expected,
                "cut at {i}"
            );
        }
        let every_byte: Vec<usize> = (1..input.len()).collect();
        assert_eq!(read_in_pieces(32, input.as_bytes(), &every_byte), expected);
    }

    #[test]
    fn a_partial_line_just_under_the_limit_is_kept() {
        let mut reader = LineReader::new(10);
        let mut buf = BytesMut::from(&b"123456789"[..]);
        assert_eq!(reader.next_line(&mut buf), LineOutcome::NeedMore);
        assert_eq!(buf.len(), 9);

        buf.extend_from_slice(b"\n");
        assert_eq!(reader.next_line(&mut buf), line("123456789"));
    }

    #[test]
    fn a_partial_line_at_the_limit_is_dropped_at_once() {
        let mut reader = LineReader::new(10);
        let mut buf = BytesMut::from(&b"1234567890"[..]);
        assert_eq!(reader.next_line(&mut buf), LineOutcome::NeedMore);
        assert!(buf.is_empty());

        buf.extend_from_slice(b"\r\n");
        assert_eq!(reader.next_line(&mut buf), LineOutcome::TooLong);
        assert_eq!(reader.next_line(&mut buf), LineOutcome::NeedMore);
    }
}
