use bytes::{Bytes, BytesMut};

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
#[derive(Debug, Clone)]
pub struct LineReader {
    max_octets: usize,
    discarding: bool,
}

impl LineReader {
    /// A reader for lines of at most `max_octets`, counting the CRLF.
    pub fn new(max_octets: usize) -> Self {
        Self { max_octets, discarding: false }
    }

    /// Takes the next line out of `buf`.
    pub fn next_line(&mut self, buf: &mut BytesMut) -> LineOutcome {
        let _ = (buf, self.max_octets, self.discarding);
        unimplemented!()
    }
}
