//! Replies as the sending side reads them: cut out of a receive buffer, with no I/O.
//!
//! A reply is one or more lines that share a three-digit code, every line but the last with a
//! hyphen after the code (RFC 5321 section 4.2.1). [`parse_reply`] takes the first complete reply
//! from the front of a buffer, or says that more data is needed, and refuses input that is not a
//! reply or is larger than any honest server sends, so a hostile server costs bounded memory.
//!
//! The parser is lenient where real servers are sloppy: a line may end in a bare LF, and a final
//! line may be the bare code with no text. It is strict where leniency would hide a broken
//! server: a line that does not start with a code, or a code that changes part-way through a
//! reply, is an error.

use bytes::{Buf, BytesMut};
use memchr::memchr;

use crate::protocol::{EnhancedCode, Reply};

/// The longest reply line accepted, counting its line ending. RFC 5321 section 4.5.3.1.5 allows
/// 512 octets; real servers overrun that with long EHLO keywords and wordy rejections, so the
/// limit is generous but still bounds what one line may cost.
pub const MAX_LINE_OCTETS: usize = 2048;

/// The most lines one reply may have. An EHLO reply lists a few dozen extensions at most.
pub const MAX_REPLY_LINES: usize = 128;

/// The most octets one reply may take, all lines together.
pub const MAX_REPLY_OCTETS: usize = 64 * 1024;

/// Why the bytes at the front of the buffer are not an acceptable reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line does not start with a three-digit code followed by a space, a hyphen or its end.
    #[error("not an smtp reply line: {0:?}")]
    NotAReply(String),
    /// A continuation line carries another code than the first line.
    #[error("reply code changed from {first} to {then} part-way through a reply")]
    CodeChanged {
        /// The code of the first line.
        first: u16,
        /// The code of the line that differs.
        then: u16,
    },
    /// A line is longer than [`MAX_LINE_OCTETS`].
    #[error("reply line longer than {MAX_LINE_OCTETS} octets")]
    LineTooLong,
    /// The reply has more than [`MAX_REPLY_LINES`] lines or [`MAX_REPLY_OCTETS`] octets.
    #[error("reply longer than {MAX_REPLY_LINES} lines or {MAX_REPLY_OCTETS} octets")]
    TooLong,
}

/// One reply as received: the typed value and the lines exactly as they arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReply {
    /// The code, the enhanced code if the server gave one, and the text of each line.
    pub reply: Reply,
    /// Each line as received, without its line ending.
    pub raw: Vec<String>,
}

impl ServerReply {
    /// The three-digit code.
    pub fn code(&self) -> u16 {
        self.reply.code
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.reply.code)
    }

    /// True for 3xx, the intermediate replies such as 354.
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.reply.code)
    }

    /// The reply verbatim, lines joined by `\n`.
    pub fn text(&self) -> String {
        self.raw.join("\n")
    }
}

/// Takes the first complete reply out of `buf`.
///
/// Returns `Ok(None)` and leaves `buf` untouched when the reply is not complete yet. On success
/// `buf` is advanced past the reply and anything after it stays in place. On error the contents
/// of `buf` are unspecified: the session cannot continue anyway.
pub fn parse_reply(buf: &mut BytesMut) -> Result<Option<ServerReply>, ReplyError> {
    let mut start = 0;
    let mut raw = Vec::new();
    let mut first_code = None;

    loop {
        let rest = &buf[start..];
        let Some(lf) = memchr(b'\n', rest) else {
            // The partial line is already longer than any line may be, or the reply so far
            // plus its partial line is: waiting for more would only cost memory.
            if rest.len() >= MAX_LINE_OCTETS {
                return Err(ReplyError::LineTooLong);
            }
            if buf.len() > MAX_REPLY_OCTETS {
                return Err(ReplyError::TooLong);
            }
            return Ok(None);
        };
        if lf + 1 > MAX_LINE_OCTETS {
            return Err(ReplyError::LineTooLong);
        }

        let line = rest[..lf].strip_suffix(b"\r").unwrap_or(&rest[..lf]);
        let line = String::from_utf8_lossy(line).into_owned();
        start += lf + 1;
        if start > MAX_REPLY_OCTETS || raw.len() == MAX_REPLY_LINES {
            return Err(ReplyError::TooLong);
        }

        let (code, last) = line_code(&line)?;
        match first_code {
            None => first_code = Some(code),
            Some(first) if first != code => {
                return Err(ReplyError::CodeChanged { first, then: code });
            }
            Some(_) => {}
        }
        raw.push(line);

        if last {
            buf.advance(start);
            return Ok(Some(typed(code, raw)));
        }
    }
}

/// The code of a reply line and whether the line is the reply's last.
fn line_code(line: &str) -> Result<(u16, bool), ReplyError> {
    let bytes = line.as_bytes();
    let not_a_reply = || ReplyError::NotAReply(shorten(line));
    let digits = bytes.get(..3).ok_or_else(not_a_reply)?;

    // RFC 5321 section 4.2: the first digit is 2 to 5, the second 0 to 5.
    let valid = matches!(digits[0], b'2'..=b'5')
        && matches!(digits[1], b'0'..=b'5')
        && digits[2].is_ascii_digit();
    if !valid {
        return Err(not_a_reply());
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));

    match bytes.get(3) {
        None | Some(b' ') => Ok((code, true)),
        Some(b'-') => Ok((code, false)),
        Some(_) => Err(not_a_reply()),
    }
}

/// Builds the typed reply, taking the enhanced code from the first line when it has one whose
/// class agrees with the reply code (RFC 2034 section 4), and removing it from every line that
/// repeats it.
fn typed(code: u16, raw: Vec<String>) -> ServerReply {
    let texts: Vec<&str> = raw.iter().map(|l| l.get(4..).unwrap_or("")).collect();
    let enhanced = texts
        .first()
        .and_then(|t| t.split(' ').next())
        .and_then(|word| word.parse::<EnhancedCode>().ok())
        .filter(|e| u16::from(e.class) == code / 100);

    let lines = texts
        .iter()
        .map(|text| match enhanced {
            Some(e) => {
                let prefix = e.to_string();
                match text.strip_prefix(prefix.as_str()) {
                    Some(rest) if rest.is_empty() || rest.starts_with(' ') => {
                        rest.strip_prefix(' ').unwrap_or(rest).to_string()
                    }
                    _ => text.to_string(),
                }
            }
            None => text.to_string(),
        })
        .collect();

    ServerReply {
        reply: Reply::multiline(code, enhanced, lines),
        raw,
    }
}

/// A line cut short for an error message, since it comes from the remote side.
fn shorten(line: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut chars = line.chars();
    let head: String = chars.by_ref().take(MAX_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}...")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Option<ServerReply>, ReplyError> {
        parse_reply(&mut BytesMut::from(input))
    }

    #[test]
    fn one_line_reply_with_enhanced_code_is_typed_and_kept_verbatim() {
        let reply = parse_all(b"452 4.2.2 Mailbox full\r\n").unwrap().unwrap();
        assert_eq!(reply.code(), 452);
        assert_eq!(reply.reply.enhanced, Some(EnhancedCode::new(4, 2, 2)));
        assert_eq!(reply.reply.lines, vec!["Mailbox full"]);
        assert_eq!(reply.text(), "452 4.2.2 Mailbox full");
    }

    #[test]
    fn multiline_reply_ends_at_the_line_with_a_space_after_the_code() {
        let input = b"250-mx.lab.test greets probe\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
        let reply = parse_all(input).unwrap().unwrap();
        assert_eq!(reply.code(), 250);
        assert_eq!(reply.reply.enhanced, None);
        assert_eq!(
            reply.reply.lines,
            vec!["mx.lab.test greets probe", "PIPELINING", "STARTTLS"]
        );
        assert_eq!(reply.raw.len(), 3);
    }

    #[test]
    fn a_reply_split_at_every_byte_parses_only_once_complete() {
        let input = b"250-2.0.0 first\r\n250-2.0.0 second\n250 2.0.0 last\r\nNEXT";
        let reply_len = input.len() - 4;
        for split in 0..input.len() {
            let mut buf = BytesMut::from(&input[..split]);
            let early = parse_reply(&mut buf).unwrap();
            if split < reply_len {
                assert_eq!(early, None, "split at {split}");
                assert_eq!(buf.len(), split, "split at {split} consumed input");
                buf.extend_from_slice(&input[split..]);
                let reply = parse_reply(&mut buf).unwrap().unwrap();
                assert_eq!(reply.reply.lines, vec!["first", "second", "last"]);
            } else {
                assert!(early.is_some(), "split at {split}");
            }
            assert!(b"NEXT".starts_with(&buf), "split at {split} left {buf:?}");
        }
    }

    #[test]
    fn a_bare_code_is_a_complete_final_line() {
        let reply = parse_all(b"354\r\n").unwrap().unwrap();
        assert_eq!(reply.code(), 354);
        assert_eq!(reply.reply.lines, vec![""]);
    }

    #[test]
    fn an_enhanced_code_of_another_class_is_left_as_text() {
        let reply = parse_all(b"550 2.0.0 odd\r\n").unwrap().unwrap();
        assert_eq!(reply.reply.enhanced, None);
        assert_eq!(reply.reply.lines, vec!["2.0.0 odd"]);
    }

    #[test]
    fn lines_that_are_not_replies_are_refused() {
        for bad in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            b"25\r\n",
            b"650 nope\r\n",
            b"2500 nope\r\n",
            b"250_nope\r\n",
        ] {
            assert!(
                matches!(parse_all(bad), Err(ReplyError::NotAReply(_))),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn a_code_that_changes_part_way_is_refused() {
        assert_eq!(
            parse_all(b"250-first\r\n550 second\r\n"),
            Err(ReplyError::CodeChanged {
                first: 250,
                then: 550
            })
        );
    }

    #[test]
    fn an_endless_line_is_refused_before_it_is_complete() {
        let input = vec![b'2'; MAX_LINE_OCTETS];
        assert_eq!(parse_all(&input), Err(ReplyError::LineTooLong));
        let mut long = b"250 ".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_LINE_OCTETS));
        long.extend_from_slice(b"\r\n");
        assert_eq!(parse_all(&long), Err(ReplyError::LineTooLong));
    }

    #[test]
    fn an_endless_reply_is_refused() {
        let input = b"250-x\r\n".repeat(MAX_REPLY_LINES + 1);
        assert_eq!(parse_all(&input), Err(ReplyError::TooLong));
    }
}
