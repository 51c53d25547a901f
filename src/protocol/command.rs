/// An ESMTP parameter such as `SIZE=1000` or `SMTPUTF8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The keyword, upper-cased.
    pub keyword: String,
    /// The value after `=`, if any, as sent.
    pub value: Option<String>,
}

/// The BODY parameter of MAIL FROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
    /// `BODY=BINARYMIME`.
    BinaryMime,
}

/// The parameters of MAIL FROM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n`, the size the client declares.
    pub size: Option<u64>,
    /// `BODY=...`.
    pub body: Option<BodyType>,
    /// `SMTPUTF8` was given.
    pub smtputf8: bool,
    /// Any other parameter, in order.
    pub unknown: Vec<Param>,
}

/// One parsed SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO name`.
    Ehlo(String),
    /// `HELO name`.
    Helo(String),
    /// `MAIL FROM:<path> params`; the null path is the empty string.
    Mail { from: String, params: MailParams },
    /// `RCPT TO:<path> params`.
    Rcpt { to: String, params: Vec<Param> },
    /// `DATA`.
    Data,
    /// `RSET`.
    Rset,
    /// `NOOP`, with any argument.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy(String),
    /// `HELP [topic]`.
    Help(Option<String>),
    /// `STARTTLS`.
    StartTls,
    /// `AUTH mechanism [initial-response]`.
    Auth { mechanism: String, initial_response: Option<String> },
    /// A command known to SMTP that this server does not implement, upper-cased.
    NotImplemented(String),
    /// A verb this server does not know, upper-cased and cut to 64 characters.
    Unknown(String),
    /// A known verb with bad arguments.
    Invalid { verb: &'static str, reason: String },
}

/// Parses one command line, without its CRLF.
pub fn parse_command(line: &[u8]) -> Command {
    let _ = line;
    unimplemented!()
}
