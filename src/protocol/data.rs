use bytes::Bytes;

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

/// Streams message data: dot-unstuffing, end-of-data detection, and limits.
#[derive(Debug)]
pub struct DataDecoder {}

impl DataDecoder {
    /// A decoder with a bare-newline policy, a message size limit and a line limit.
    pub fn new(policy: BareNewlines, max_message_bytes: u64, max_line_octets: usize) -> Self {
        let _ = (policy, max_message_bytes, max_line_octets);
        unimplemented!()
    }

    /// Decodes from `input`, stopping right after the end-of-data line.
    pub fn feed(&mut self, input: &[u8]) -> Feed {
        let _ = input;
        unimplemented!()
    }

    /// Octets consumed so far.
    pub fn octets(&self) -> u64 {
        unimplemented!()
    }

    /// The decoded message.
    pub fn finish(self) -> DataOutcome {
        unimplemented!()
    }
}
