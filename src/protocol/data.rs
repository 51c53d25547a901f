//! Message data after the 354 reply: dot-unstuffing, the end-of-data line, and limits.
//!
//! The session hands each chunk it reads to a [`DataDecoder`] until [`Feed::done`], then gives
//! whatever the decoder did not consume back to the command reader, since a pipelining client may
//! send its next command right behind the final dot. The decoder is a state machine over single
//! bytes, so a message cut anywhere, even between the CR and LF of the final line, decodes the
//! same as in one piece; runs of ordinary bytes are copied in bulk.
//!
//! Where a line ends is the security question here. SMTP smuggling ends the data with a sequence
//! that one server takes for `<CRLF>.<CRLF>` and the next does not, so that text after it is a new
//! command to one and more of the message to the other. Under [`BareNewlines::Reject`] only CRLF
//! ends a line, so only `.` CR LF at the start of a line ends the data, and a bare LF or CR is
//! recorded so that the session can refuse the message after its real end. [`BareNewlines::Accept`]
//! reproduces the older receivers that also end a line at a bare LF.

use bytes::{Bytes, BytesMut};
use memchr::memchr2;

/// How a bare LF or bare CR inside message data is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareNewlines {
    /// Only CRLF ends a line; a message with a bare LF or CR is refused after its final dot.
    #[default]
    Reject,
    /// A bare LF also ends a line (so `<LF>.<LF>` ends the data); bytes are stored as sent.
    Accept,
}

/// What one call to [`DataDecoder::feed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feed {
    /// Octets of the input consumed.
    pub consumed: usize,
    /// The end-of-data line was consumed.
    pub done: bool,
}

/// The decoded message and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataOutcome {
    /// The message after dot-unstuffing, without the terminating `.` line.
    pub body: Bytes,
    /// Octets consumed from the wire, terminator included.
    pub octets: u64,
    /// A LF not preceded by CR was seen.
    pub bare_lf: bool,
    /// A CR not followed by LF was seen.
    pub bare_cr: bool,
    /// The message exceeded the size limit; `body` was truncated.
    pub too_big: bool,
    /// A line exceeded the line limit.
    pub long_line: bool,
}

/// Where the decoder is within a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line, where a dot is either stuffing or the start of the final line.
    LineStart,
    /// After a dot at the start of a line, not yet added to the body.
    Dot,
    /// After a dot and a CR at the start of a line, neither added to the body.
    DotCr,
    /// Inside a line, after anything but a CR.
    Text,
    /// Inside a line, right after a CR.
    Cr,
}

/// Streams message data: dot-unstuffing, end-of-data detection, and limits.
///
/// Every byte goes to the body as sent except the stuffing dot at the start of a line and the
/// final `.` line itself; no line ending is rewritten under either policy. The body includes the
/// line ending before the final dot, so `hello\r\n.\r\n` decodes to `hello\r\n`.
#[derive(Debug)]
pub struct DataDecoder {
    policy: BareNewlines,
    max_message_bytes: u64,
    max_line_octets: usize,
    state: State,
    body: BytesMut,
    octets: u64,
    /// Raw octets of the current line so far, terminator included once it arrives.
    line_octets: usize,
    bare_lf: bool,
    bare_cr: bool,
    too_big: bool,
    long_line: bool,
    done: bool,
}

impl DataDecoder {
    /// A decoder with a bare-newline policy, a message size limit and a line limit.
    ///
    /// `max_message_bytes` bounds the decoded body, and so the memory held; `max_line_octets`
    /// counts a line's raw octets, its CRLF included, as RFC 5321 section 4.5.3.1.6 does.
    pub fn new(policy: BareNewlines, max_message_bytes: u64, max_line_octets: usize) -> Self {
        Self {
            policy,
            max_message_bytes,
            max_line_octets,
            state: State::LineStart,
            body: BytesMut::new(),
            octets: 0,
            line_octets: 0,
            bare_lf: false,
            bare_cr: false,
            too_big: false,
            long_line: false,
            done: false,
        }
    }

    /// Decodes from `input`, stopping right after the end-of-data line.
    ///
    /// Without the end of data in `input`, all of it is consumed. With it, `consumed` stops just
    /// past its LF and the rest of `input` is left for the caller. Once done, further calls
    /// consume nothing.
    pub fn feed(&mut self, input: &[u8]) -> Feed {
        let mut pos = 0;
        while pos < input.len() && !self.done {
            if self.state == State::Text {
                let rest = &input[pos..];
                let run = memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
                if run > 0 {
                    self.count_line_octets(run);
                    self.append(&rest[..run]);
                    pos += run;
                    continue;
                }
            }

            let byte = input[pos];
            pos += 1;
            self.count_line_octets(1);
            self.step(byte);
        }

        self.octets += pos as u64;
        Feed {
            consumed: pos,
            done: self.done,
        }
    }

    /// Octets consumed so far.
    pub fn octets(&self) -> u64 {
        self.octets
    }

    /// The decoded message.
    ///
    /// Called before the end of data, it returns what was decoded so far, without a dot (or dot
    /// and CR) at the start of a line that was still waiting for what follows it.
    pub fn finish(self) -> DataOutcome {
        DataOutcome {
            body: self.body.freeze(),
            octets: self.octets,
            bare_lf: self.bare_lf,
            bare_cr: self.bare_cr,
            too_big: self.too_big,
            long_line: self.long_line,
        }
    }

    /// Advances the state machine by one byte that is not part of a bulk run.
    fn step(&mut self, byte: u8) {
        match (self.state, byte) {
            (State::LineStart, b'.') => self.state = State::Dot,
            (State::Dot, b'\r') => self.state = State::DotCr,
            (State::DotCr, b'\n') => self.done = true,
            (State::Dot, b'\n') if self.policy == BareNewlines::Accept => {
                self.bare_lf = true;
                self.done = true;
            }
            (State::DotCr, _) => {
                // The line was a dot, a CR, and more: the dot was stuffing and the CR is bare.
                self.bare_cr = true;
                self.append(b"\r");
                self.text_byte(byte);
            }
            (State::Cr, b'\n') => {
                self.append(b"\n");
                self.end_line();
            }
            (State::Cr, _) => {
                self.bare_cr = true;
                self.text_byte(byte);
            }
            // A dot not followed by the end of data was stuffing, and is dropped.
            (State::LineStart | State::Dot | State::Text, _) => self.text_byte(byte),
        }
    }

    /// Adds a byte that belongs to the body and moves to the state it leads to.
    fn text_byte(&mut self, byte: u8) {
        self.append(&[byte]);
        match byte {
            b'\r' => self.state = State::Cr,
            b'\n' => {
                self.bare_lf = true;
                match self.policy {
                    BareNewlines::Accept => self.end_line(),
                    BareNewlines::Reject => self.state = State::Text,
                }
            }
            _ => self.state = State::Text,
        }
    }

    fn end_line(&mut self) {
        self.line_octets = 0;
        self.state = State::LineStart;
    }

    fn count_line_octets(&mut self, n: usize) {
        self.line_octets = self.line_octets.saturating_add(n);
        if self.line_octets > self.max_line_octets {
            self.long_line = true;
        }
    }

    /// Appends to the body up to the size limit, and drops the rest.
    fn append(&mut self, bytes: &[u8]) {
        let room = self
            .max_message_bytes
            .saturating_sub(self.body.len() as u64);
        if bytes.len() as u64 > room {
            self.too_big = true;
            // `room` is below `bytes.len()`, so it fits in a usize.
            self.body.extend_from_slice(&bytes[..room as usize]);
        } else {
            self.body.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use BareNewlines::{Accept, Reject};

    const POLICIES: [BareNewlines; 2] = [Reject, Accept];

    /// The result of decoding one input: the outcome, octets consumed, and whether it ended.
    type Run = (DataOutcome, usize, bool);

    fn decoder(policy: BareNewlines) -> DataDecoder {
        DataDecoder::new(policy, 1 << 20, 1000)
    }

    /// Feeds `input` in pieces cut at `cuts` (ascending), stopping at the end of data.
    fn run_in_pieces(mut decoder: DataDecoder, input: &[u8], cuts: &[usize]) -> Run {
        let mut pos = 0;
        let mut done = false;
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            let feed = decoder.feed(&input[pos..end]);
            pos += feed.consumed;
            if feed.done {
                done = true;
                break;
            }
            assert_eq!(
                pos, end,
                "a feed that did not end the data consumed less than it got"
            );
        }
        assert_eq!(decoder.octets(), pos as u64);
        (decoder.finish(), pos, done)
    }

    fn run(decoder: DataDecoder, input: &[u8]) -> Run {
        run_in_pieces(decoder, input, &[])
    }

    /// The same decoding written the slow, obvious way: cut into lines, then look at each.
    fn reference(policy: BareNewlines, input: &[u8], max_message: u64, max_line: usize) -> Run {
        let mut lines = Vec::new();
        let mut start = 0;
        for i in 0..input.len() {
            let crlf = i > 0 && input[i - 1] == b'\r';
            if input[i] == b'\n' && (crlf || policy == Accept) {
                lines.push(&input[start..=i]);
                start = i + 1;
            }
        }

        let mut body = Vec::new();
        let mut consumed = 0;
        let mut done = false;
        let mut long_line = false;
        for line in lines {
            consumed += line.len();
            long_line |= line.len() > max_line;
            if line == b".\r\n" || (policy == Accept && line == b".\n") {
                done = true;
                break;
            }
            body.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        if !done {
            let tail = &input[start..];
            consumed = input.len();
            long_line |= tail.len() > max_line;
            // A dot, or a dot and CR, at the start of the unfinished line is still undecided.
            if tail != b"." && tail != b".\r" {
                body.extend_from_slice(tail.strip_prefix(b".").unwrap_or(tail));
            }
        }

        let wire = &input[..consumed];
        let bare_lf = (0..wire.len()).any(|i| wire[i] == b'\n' && (i == 0 || wire[i - 1] != b'\r'));
        // A CR at the very end is not yet known to be bare.
        let bare_cr = wire
            .windows(2)
            .any(|pair| pair[0] == b'\r' && pair[1] != b'\n');
        let too_big = body.len() as u64 > max_message;
        body.truncate(max_message.min(body.len() as u64) as usize);

        let outcome = DataOutcome {
            body: body.into(),
            octets: consumed as u64,
            bare_lf,
            bare_cr,
            too_big,
            long_line,
        };
        (outcome, consumed, done)
    }

    /// A small deterministic generator, so that failures reproduce.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }
    }

    /// Random data dense in the bytes that matter: CR, LF and dots.
    fn random_data(rng: &mut XorShift, len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ab..\r\r\n\n x";
        (0..len)
            .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64)])
            .collect()
    }

    #[test]
    fn a_simple_message_decodes_to_its_lines() {
        let input = b"Subject: x\r\n\r\nhello\r\n.\r\n";
        let (outcome, consumed, done) = run(decoder(Reject), input);
        assert!(done);
        assert_eq!(consumed, input.len());
        assert_eq!(&outcome.body[..], b"Subject: x\r\n\r\nhello\r\n");
        assert_eq!(outcome.octets, input.len() as u64);
        assert!(!outcome.bare_lf && !outcome.bare_cr && !outcome.too_big && !outcome.long_line);
    }

    #[test]
    fn a_lone_final_dot_is_an_empty_message() {
        for policy in POLICIES {
            let (outcome, consumed, done) = run(decoder(policy), b".\r\n");
            assert!(done);
            assert_eq!(consumed, 3);
            assert!(outcome.body.is_empty());
        }
    }

    #[test]
    fn an_empty_feed_consumes_nothing() {
        let mut decoder = decoder(Reject);
        assert_eq!(
            decoder.feed(b""),
            Feed {
                consumed: 0,
                done: false
            }
        );
        assert_eq!(decoder.octets(), 0);
    }

    #[test]
    fn pipelined_bytes_after_the_final_dot_are_left_unconsumed() {
        let input = b"hello\r\n.\r\nQUIT\r\n";
        let mut decoder = decoder(Reject);
        assert_eq!(
            decoder.feed(input),
            Feed {
                consumed: 10,
                done: true
            }
        );
        assert_eq!(
            decoder.feed(b"more"),
            Feed {
                consumed: 0,
                done: true
            }
        );
        assert_eq!(decoder.octets(), 10);
        assert_eq!(&decoder.finish().body[..], b"hello\r\n");
    }

    #[test]
    fn a_leading_dot_is_removed_from_every_line() {
        let input = b"..foo\r\n.bar\r\n...\r\nx.y\r\n.\r\n";
        for policy in POLICIES {
            let (outcome, _, done) = run(decoder(policy), input);
            assert!(done);
            assert_eq!(&outcome.body[..], b".foo\r\nbar\r\n..\r\nx.y\r\n");
        }
    }

    #[test]
    fn the_first_bytes_of_the_data_start_a_line() {
        let (outcome, _, done) = run(decoder(Reject), b"..x\r\n.\r\n");
        assert!(done);
        assert_eq!(&outcome.body[..], b".x\r\n");
    }

    #[test]
    fn a_dot_line_that_only_looks_final_keeps_its_other_bytes() {
        let (outcome, _, done) = run(decoder(Reject), b"x\r\n.\rfoo\r\n. \r\n.\r\n");
        assert!(done);
        assert_eq!(&outcome.body[..], b"x\r\n\rfoo\r\n \r\n");
        assert!(outcome.bare_cr);
        assert!(!outcome.bare_lf);
    }

    #[test]
    fn smuggled_endings_are_message_text_when_bare_newlines_are_rejected() {
        for ending in [&b"\n.\n"[..], b"\r\n.\n", b"\n.\r\n"] {
            let mut input = b"Subject: a".to_vec();
            input.extend_from_slice(ending);
            input.extend_from_slice(b"MAIL FROM:<evil@x>\r\n.\r\nQUIT\r\n");

            let (outcome, consumed, done) = run(decoder(Reject), &input);
            assert!(done, "{ending:?}");
            assert_eq!(consumed, input.len() - b"QUIT\r\n".len(), "{ending:?}");
            assert!(outcome.bare_lf, "{ending:?}");
            assert!(
                outcome.body.ends_with(b"MAIL FROM:<evil@x>\r\n"),
                "{ending:?}"
            );
        }
    }

    #[test]
    fn smuggled_endings_end_the_data_when_bare_newlines_are_accepted() {
        // Each ending, and the line ending before its dot that stays in the body.
        let table: [(&[u8], &[u8]); 3] = [
            (b"\n.\n", b"\n"),
            (b"\r\n.\n", b"\r\n"),
            (b"\n.\r\n", b"\n"),
        ];
        for (ending, kept) in table {
            let mut input = b"Subject: a".to_vec();
            input.extend_from_slice(ending);
            let end = input.len();
            input.extend_from_slice(b"MAIL FROM:<evil@x>\r\n.\r\n");

            let (outcome, consumed, done) = run(decoder(Accept), &input);
            assert!(done, "{ending:?}");
            assert_eq!(consumed, end, "{ending:?}");
            assert!(outcome.bare_lf, "{ending:?}");
            assert_eq!(
                &outcome.body[..],
                [&b"Subject: a"[..], kept].concat(),
                "{ending:?}"
            );
        }
    }

    #[test]
    fn a_bare_cr_is_recorded_and_never_ends_a_line() {
        for policy in POLICIES {
            let input = b"a\rb\r.\r\n.\r\n";
            let (outcome, consumed, done) = run(decoder(policy), input);
            assert!(done);
            assert_eq!(consumed, input.len());
            assert_eq!(&outcome.body[..], b"a\rb\r.\r\n");
            assert!(outcome.bare_cr);
            assert!(!outcome.bare_lf);
        }
    }

    #[test]
    fn a_cr_before_crlf_is_bare() {
        let (outcome, _, done) = run(decoder(Reject), b"a\r\r\n.\r\r\n.\r\n");
        assert!(done);
        assert_eq!(&outcome.body[..], b"a\r\r\n\r\r\n");
        assert!(outcome.bare_cr);
    }

    #[test]
    fn bare_lf_lines_are_stored_as_sent_when_accepted() {
        let (outcome, _, done) = run(decoder(Accept), b"a\nb\r\n..c\n.\n");
        assert!(done);
        assert_eq!(&outcome.body[..], b"a\nb\r\n.c\n");
        assert!(outcome.bare_lf);
    }

    #[test]
    fn a_message_over_the_size_limit_is_truncated_and_read_to_its_end() {
        let input = b"0123456789\r\n0123456789\r\n.\r\nQUIT\r\n";
        let (outcome, consumed, done) = run(DataDecoder::new(Reject, 15, 1000), input);
        assert!(done);
        assert_eq!(consumed, input.len() - 6);
        assert!(outcome.too_big);
        assert_eq!(&outcome.body[..], b"0123456789\r\n012");
    }

    #[test]
    fn a_message_of_exactly_the_size_limit_fits() {
        let (outcome, _, done) = run(DataDecoder::new(Reject, 12, 1000), b"0123456789\r\n.\r\n");
        assert!(done);
        assert!(!outcome.too_big);
        assert_eq!(&outcome.body[..], b"0123456789\r\n");
    }

    #[test]
    fn a_line_over_the_line_limit_is_recorded() {
        let fits = run(DataDecoder::new(Reject, 1000, 10), b"12345678\r\n.\r\n").0;
        assert!(!fits.long_line);

        let long = run(
            DataDecoder::new(Reject, 1000, 10),
            b"123456789\r\nok\r\n.\r\n",
        );
        assert!(long.2);
        assert!(long.0.long_line);
        assert_eq!(&long.0.body[..], b"123456789\r\nok\r\n");
    }

    #[test]
    fn the_line_limit_counts_the_stuffing_dot() {
        let (outcome, _, _) = run(DataDecoder::new(Reject, 1000, 10), b".12345678\r\n.\r\n");
        assert!(outcome.long_line);
    }

    #[test]
    fn octets_count_the_wire_including_stuffing_and_terminator() {
        let mut decoder = decoder(Reject);
        decoder.feed(b"..a\r\n");
        assert_eq!(decoder.octets(), 5);
        decoder.feed(b".\r\nNOOP\r\n");
        assert_eq!(decoder.octets(), 8);
        assert_eq!(decoder.finish().octets, 8);
    }

    #[test]
    fn unfinished_data_is_all_consumed_and_not_done() {
        for policy in POLICIES {
            let input = b"line\r\n.";
            let (outcome, consumed, done) = run(decoder(policy), input);
            assert!(!done);
            assert_eq!(consumed, input.len());
            assert_eq!(&outcome.body[..], b"line\r\n");
        }
    }

    #[test]
    fn every_split_of_an_input_gives_the_same_outcome_as_one_feed() {
        let inputs: &[&[u8]] = &[
            b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n",
            b".\r\nRSET\r\n",
            b"..a\r\n.b\r\n\r\n.\r\n",
            b"a\n.\nb\r\n.\nc\n.\r\nd\r\n.\r\nNOOP\r\n",
            b"x\r\r\n.\r\r\n.\rq\r\n\r.\r\n.\r\n",
            b"no end in sight\r\n.",
            b"no end in sight\r\n.\r",
        ];
        for policy in POLICIES {
            for input in inputs {
                let whole = run(DataDecoder::new(policy, 12, 6), input);
                assert_eq!(
                    whole,
                    reference(policy, input, 12, 6),
                    "{policy:?} {input:?}"
                );

                for i in 0..=input.len() {
                    let split = run_in_pieces(DataDecoder::new(policy, 12, 6), input, &[i]);
                    assert_eq!(split, whole, "{policy:?} {input:?} cut at {i}");
                }
                let every_byte: Vec<usize> = (1..input.len()).collect();
                let bytewise = run_in_pieces(DataDecoder::new(policy, 12, 6), input, &every_byte);
                assert_eq!(bytewise, whole, "{policy:?} {input:?} byte by byte");
            }
        }
    }

    #[test]
    fn random_inputs_in_random_pieces_match_the_reference() {
        let mut rng = XorShift(0x5eed_1234_abcd_0001);
        for _ in 0..400 {
            let len = rng.below(3000);
            let data = random_data(&mut rng, len);
            let max_message = rng.below(4000) as u64;
            let max_line = 3 + rng.below(100);
            let policy = POLICIES[rng.below(2)];

            let pieces = rng.below(20);
            let mut cuts: Vec<usize> = (0..pieces)
                .map(|_| rng.below(data.len() as u64 + 1))
                .collect();
            cuts.sort_unstable();

            let expected = reference(policy, &data, max_message, max_line);
            let fresh = || DataDecoder::new(policy, max_message, max_line);
            assert_eq!(run(fresh(), &data), expected, "{policy:?} {data:?}");
            assert_eq!(
                run_in_pieces(fresh(), &data, &cuts),
                expected,
                "{policy:?} {cuts:?}"
            );
        }
    }

    #[test]
    fn a_large_message_decodes_the_same_in_any_chunk_size() {
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        let mut input = Vec::new();
        for n in 0..20_000 {
            if n % 7 == 0 {
                input.push(b'.');
            }
            input.extend((0..rng.below(120)).map(|_| b'a' + rng.below(26) as u8));
            input.extend_from_slice(b"\r\n");
        }
        input.extend_from_slice(b".\r\nQUIT\r\n");

        let expected = reference(Reject, &input, 1 << 30, 1000);
        assert!(expected.2);
        for chunk in [1, 7, 4096, 65536] {
            let cuts: Vec<usize> = (chunk..input.len()).step_by(chunk).collect();
            let got = run_in_pieces(DataDecoder::new(Reject, 1 << 30, 1000), &input, &cuts);
            assert_eq!(got, expected, "chunks of {chunk}");
        }
    }
}
