//! SMTP command lines parsed into [`Command`] values.
//!
//! [`parse_command`] takes one line from a [`LineReader`](super::LineReader), without its line
//! ending, and never fails: a line it cannot make sense of becomes [`Command::Unknown`] (answered
//! with 500) or [`Command::Invalid`] (answered with 501), and the session decides what follows.
//!
//! The grammar is RFC 5321's, applied as a strict receiver applies it, with the MAIL parameters of
//! RFC 1870 (SIZE), RFC 6152 and RFC 3030 (BODY) and RFC 6531 (SMTPUTF8). Control characters are
//! refused in every argument the server acts on or echoes, which also turns away a CR or NUL
//! smuggled into the middle of a line. Non-ASCII addresses parse; whether they are acceptable
//! depends on SMTPUTF8 having been given, and that is the session's call.

use std::net::{Ipv4Addr, Ipv6Addr};

use memchr::memchr;

/// Every verb this parser recognises, in the spelling it reports.
const VERBS: &[&str] = &[
    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "HELP", "STARTTLS",
    "AUTH", "EXPN", "TURN", "ETRN", "ATRN", "BDAT", "SEND", "SOML", "SAML", "VERB",
];

/// RFC 5321 section 4.5.3.1.3: a path, angle brackets included.
const MAX_PATH_OCTETS: usize = 256;
/// RFC 5321 section 4.5.3.1.1.
const MAX_LOCAL_PART_OCTETS: usize = 64;
/// RFC 5321 section 4.5.3.1.2.
const MAX_DOMAIN_OCTETS: usize = 255;
/// RFC 1035 section 2.3.4.
const MAX_LABEL_OCTETS: usize = 63;
/// RFC 4422 section 3.1.
const MAX_SASL_MECHANISM_CHARS: usize = 20;
/// An unknown verb is kept for logs and the transcript; this much of it is plenty.
const MAX_UNKNOWN_VERB_CHARS: usize = 64;
/// How much of a bad value a reason quotes, so that a reply line stays short.
const MAX_QUOTED_CHARS: usize = 64;

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
    Mail {
        /// The reverse path.
        from: String,
        /// The ESMTP parameters.
        params: MailParams,
    },
    /// `RCPT TO:<path> params`.
    Rcpt {
        /// The forward path.
        to: String,
        /// The ESMTP parameters.
        params: Vec<Param>,
    },
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
    Auth {
        /// The SASL mechanism, upper-cased.
        mechanism: String,
        /// The initial response, base64 or `=`.
        initial_response: Option<String>,
    },
    /// A command known to SMTP that this server does not implement, upper-cased.
    NotImplemented(String),
    /// A verb this server does not know, upper-cased and cut to 64 characters.
    Unknown(String),
    /// A known verb with bad arguments.
    Invalid {
        /// The verb, upper-cased.
        verb: &'static str,
        /// What is wrong with the arguments.
        reason: String,
    },
}

impl Command {
    /// The command's verb, upper-cased: `"EHLO"`, `"MAIL"`, and so on.
    ///
    /// For [`Command::Unknown`] it is the verb as received (upper-cased and cut, possibly empty),
    /// and for [`Command::Invalid`] the verb whose arguments were bad.
    pub fn verb(&self) -> &str {
        match self {
            Command::Ehlo(_) => "EHLO",
            Command::Helo(_) => "HELO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::Vrfy(_) => "VRFY",
            Command::Help(_) => "HELP",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
            Command::NotImplemented(verb) | Command::Unknown(verb) => verb,
            Command::Invalid { verb, .. } => verb,
        }
    }
}

/// Parses one command line, without its CRLF.
///
/// The verb runs up to the first space and is matched without regard to case; one or more spaces
/// separate it from the argument, and trailing spaces and tabs are ignored. A verb followed by
/// anything but a space (`MAILFROM:<a@b>`, `DATA\r`) is not that verb.
pub fn parse_command(line: &[u8]) -> Command {
    let line = trim_end(line);
    let (verb, arg) = match memchr(b' ', line) {
        Some(space) => (&line[..space], trim_start(&line[space..])),
        None => (line, &line[line.len()..]),
    };

    let Some(known) = VERBS
        .iter()
        .copied()
        .find(|v| v.as_bytes().eq_ignore_ascii_case(verb))
    else {
        return Command::Unknown(unknown_verb(verb));
    };

    let parsed = match known {
        "EHLO" => hello(known, arg).map(Command::Ehlo),
        "HELO" => hello(known, arg).map(Command::Helo),
        "MAIL" => mail(arg),
        "RCPT" => rcpt(arg),
        "DATA" => no_argument(known, arg, Command::Data),
        "RSET" => no_argument(known, arg, Command::Rset),
        "QUIT" => no_argument(known, arg, Command::Quit),
        "STARTTLS" => no_argument(known, arg, Command::StartTls),
        // RFC 5321 section 4.1.1.9: the argument, if any, is to be ignored.
        "NOOP" => Ok(Command::Noop),
        "VRFY" => vrfy(arg),
        "HELP" => help(arg),
        "AUTH" => auth(arg),
        _ => Ok(Command::NotImplemented(known.to_string())),
    };
    parsed.unwrap_or_else(|reason| Command::Invalid {
        verb: known,
        reason,
    })
}

fn trim_end(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

fn trim_start(mut bytes: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

fn unknown_verb(verb: &[u8]) -> String {
    String::from_utf8_lossy(verb)
        .chars()
        .take(MAX_UNKNOWN_VERB_CHARS)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A bad value for a reason, quoted and cut short, since reasons end up in replies.
fn quote(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

/// An argument as text: valid UTF-8 and free of control characters.
fn text(arg: &[u8]) -> Result<&str, String> {
    let text = std::str::from_utf8(arg).map_err(|_| "invalid UTF-8".to_string())?;
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("control character {c:?} not allowed")),
        None => Ok(text),
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn no_argument(verb: &str, arg: &[u8], command: Command) -> Result<Command, String> {
    if arg.is_empty() {
        Ok(command)
    } else {
        Err(format!("{verb} takes no argument"))
    }
}

/// EHLO and HELO: the first word, kept as sent.
///
/// The name is not checked against the domain grammar: RFC 5321 section 4.1.4 forbids refusing a
/// session over what the client calls itself, and real clients send bare host names, underscores
/// and the like.
fn hello(verb: &str, arg: &[u8]) -> Result<String, String> {
    if arg.is_empty() {
        return Err(format!("{verb} requires a domain or address literal"));
    }
    let arg = text(arg)?;
    let name = arg.split(' ').next().unwrap_or_default();
    Ok(name.to_string())
}

fn mail(arg: &[u8]) -> Result<Command, String> {
    let arg = text(arg)?;
    let rest = strip_prefix_ignore_case(arg, "FROM:")
        .ok_or_else(|| "expected FROM:<address>".to_string())?;
    let (path, params) = split_path(rest)?;

    let from = if path.is_empty() {
        ""
    } else {
        mailbox(strip_source_route(path)?)?
    };
    Ok(Command::Mail {
        from: from.to_string(),
        params: mail_params(params)?,
    })
}

fn rcpt(arg: &[u8]) -> Result<Command, String> {
    let arg = text(arg)?;
    let rest =
        strip_prefix_ignore_case(arg, "TO:").ok_or_else(|| "expected TO:<address>".to_string())?;
    let (path, params) = split_path(rest)?;

    // RFC 5321 section 4.1.1.3: `<Postmaster>` with no domain must be accepted.
    let to = if path.eq_ignore_ascii_case("postmaster") {
        path
    } else if path.is_empty() {
        return Err("empty recipient address".to_string());
    } else {
        mailbox(strip_source_route(path)?)?
    };
    Ok(Command::Rcpt {
        to: to.to_string(),
        params: parse_params(params)?,
    })
}

/// Splits `<path> params` after `FROM:` or `TO:` into the path inside the brackets and the text of
/// the parameters.
fn split_path(rest: &str) -> Result<(&str, &str), String> {
    // Not in the grammar, but common enough among clients that strict receivers allow one space.
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let unbracketed = || "address must be enclosed in <>".to_string();
    let inner = rest.strip_prefix('<').ok_or_else(unbracketed)?;
    let (path, after) = inner.split_once('>').ok_or_else(unbracketed)?;

    if path.contains('<') {
        return Err("unexpected < inside address".to_string());
    }
    if path.len() + 2 > MAX_PATH_OCTETS {
        return Err(format!("address longer than {MAX_PATH_OCTETS} octets"));
    }
    let params = match after {
        "" => "",
        _ => after
            .strip_prefix(' ')
            .ok_or_else(|| "unexpected text after address".to_string())?,
    };
    Ok((path, params))
}

/// Drops an RFC 5321 source route (`@a.example,@b.example:`), which receivers must accept and
/// ignore (appendix C).
fn strip_source_route(path: &str) -> Result<&str, String> {
    if !path.starts_with('@') {
        return Ok(path);
    }

    // An address literal in the route may hold colons of its own.
    let mut in_literal = false;
    let colon = path.bytes().position(|b| {
        match b {
            b'[' => in_literal = true,
            b']' => in_literal = false,
            _ => {}
        }
        b == b':' && !in_literal
    });
    let colon = colon.ok_or_else(|| format!("bad source route in {}", quote(path)))?;

    for hop in path[..colon].split(',') {
        let domain = hop
            .strip_prefix('@')
            .ok_or_else(|| format!("bad source route in {}", quote(path)))?;
        check_domain(domain)?;
    }
    Ok(&path[colon + 1..])
}

/// Checks `local-part@domain` and hands it back.
fn mailbox(address: &str) -> Result<&str, String> {
    let local_end = if address.starts_with('"') {
        quoted_string_end(address)?
    } else {
        address.find('@').unwrap_or(address.len())
    };
    let local = &address[..local_end];
    let domain = address[local_end..]
        .strip_prefix('@')
        .ok_or_else(|| format!("address {} is not local-part@domain", quote(address)))?;

    if local.is_empty() || local == "\"\"" {
        return Err(format!("empty local part in {}", quote(address)));
    }
    if local.len() > MAX_LOCAL_PART_OCTETS {
        return Err(format!(
            "local part longer than {MAX_LOCAL_PART_OCTETS} octets"
        ));
    }
    if !local.starts_with('"') {
        check_dot_string(local)?;
    }
    check_domain(domain)?;
    Ok(address)
}

/// The index just past the closing quote of the quoted string that `s` starts with.
fn quoted_string_end(s: &str) -> Result<usize, String> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            // RFC 5321 quoted-pairSMTP: a backslash escapes printable ASCII only.
            if !(' '..='~').contains(&c) {
                return Err(format!("bad escape in local part {}", quote(s)));
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Ok(i + 1);
        }
    }
    Err(format!("unterminated quoted local part in {}", quote(s)))
}

/// An unquoted local part: atoms of RFC 5322 atext, or UTF-8 under RFC 6531, joined by dots.
fn check_dot_string(local: &str) -> Result<(), String> {
    if local.split('.').any(str::is_empty) {
        return Err(format!("misplaced dot in local part {}", quote(local)));
    }
    let atext =
        |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    match local.chars().find(|&c| c != '.' && !atext(c)) {
        Some(c) => Err(format!("character {c:?} not allowed in local part")),
        None => Ok(()),
    }
}

/// A domain name of letter-digit-hyphen labels (or U-labels), or an address literal.
fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("empty domain".to_string());
    }
    if domain.len() > MAX_DOMAIN_OCTETS {
        return Err(format!("domain longer than {MAX_DOMAIN_OCTETS} octets"));
    }
    if let Some(literal) = domain.strip_prefix('[') {
        return match literal.strip_suffix(']') {
            Some(inner) if is_address_literal(inner) => Ok(()),
            _ => Err(format!("bad address literal {}", quote(domain))),
        };
    }

    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_OCTETS
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
    };
    if domain.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!("bad domain {}", quote(domain)))
    }
}

/// The inside of `[...]`: IPv4, `IPv6:` and an IPv6 address, or a `tag:content` general literal.
fn is_address_literal(inner: &str) -> bool {
    if inner.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    if let Some(v6) = strip_prefix_ignore_case(inner, "IPv6:") {
        return v6.parse::<Ipv6Addr>().is_ok();
    }
    let Some((tag, content)) = inner.split_once(':') else {
        return false;
    };
    // RFC 5321 dcontent: printable ASCII except `[`, `\` and `]`.
    let dcontent = |b: u8| matches!(b, 33..=90 | 94..=126);
    is_keyword(tag) && !tag.ends_with('-') && !content.is_empty() && content.bytes().all(dcontent)
}

/// RFC 5321 esmtp-keyword: a letter or digit, then letters, digits and hyphens.
fn is_keyword(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Space-separated `KEY` or `KEY=VALUE` parameters, keywords upper-cased.
fn parse_params(s: &str) -> Result<Vec<Param>, String> {
    s.split(' ')
        .filter(|p| !p.is_empty())
        .map(parse_param)
        .collect()
}

fn parse_param(param: &str) -> Result<Param, String> {
    let (keyword, value) = match param.split_once('=') {
        Some((keyword, value)) => (keyword, Some(value)),
        None => (param, None),
    };
    if !is_keyword(keyword) {
        return Err(format!("bad parameter {}", quote(param)));
    }
    // RFC 5321 esmtp-value: one or more characters, none of them `=`, space or control.
    if value.is_some_and(|v| v.is_empty() || v.contains('=')) {
        return Err(format!("bad value in parameter {}", quote(param)));
    }
    Ok(Param {
        keyword: keyword.to_ascii_uppercase(),
        value: value.map(str::to_string),
    })
}

fn mail_params(s: &str) -> Result<MailParams, String> {
    let mut params = MailParams::default();
    for param in parse_params(s)? {
        match param.keyword.as_str() {
            "SIZE" => {
                if params.size.is_some() {
                    return Err("duplicate SIZE parameter".to_string());
                }
                params.size = Some(size(param.value.as_deref())?);
            }
            "BODY" => {
                if params.body.is_some() {
                    return Err("duplicate BODY parameter".to_string());
                }
                params.body = Some(body_type(param.value.as_deref())?);
            }
            "SMTPUTF8" => {
                if params.smtputf8 {
                    return Err("duplicate SMTPUTF8 parameter".to_string());
                }
                if param.value.is_some() {
                    return Err("SMTPUTF8 takes no value".to_string());
                }
                params.smtputf8 = true;
            }
            _ => params.unknown.push(param),
        }
    }
    Ok(params)
}

fn size(value: Option<&str>) -> Result<u64, String> {
    let value = value.ok_or_else(|| "SIZE requires a value".to_string())?;
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("SIZE value {} is not a number", quote(value)));
    }
    value
        .parse()
        .map_err(|_| format!("SIZE value {} is too large", quote(value)))
}

fn body_type(value: Option<&str>) -> Result<BodyType, String> {
    let value = value.ok_or_else(|| "BODY requires a value".to_string())?;
    if value.eq_ignore_ascii_case("7BIT") {
        Ok(BodyType::SevenBit)
    } else if value.eq_ignore_ascii_case("8BITMIME") {
        Ok(BodyType::EightBitMime)
    } else if value.eq_ignore_ascii_case("BINARYMIME") {
        Ok(BodyType::BinaryMime)
    } else {
        Err(format!(
            "BODY value {} is not 7BIT, 8BITMIME or BINARYMIME",
            quote(value)
        ))
    }
}

fn vrfy(arg: &[u8]) -> Result<Command, String> {
    if arg.is_empty() {
        return Err("VRFY requires an argument".to_string());
    }
    Ok(Command::Vrfy(text(arg)?.to_string()))
}

fn help(arg: &[u8]) -> Result<Command, String> {
    if arg.is_empty() {
        return Ok(Command::Help(None));
    }
    Ok(Command::Help(Some(text(arg)?.to_string())))
}

fn auth(arg: &[u8]) -> Result<Command, String> {
    let arg = text(arg)?;
    let mut words = arg.split(' ').filter(|w| !w.is_empty());
    let mechanism = words
        .next()
        .ok_or_else(|| "AUTH requires a mechanism".to_string())?;
    let initial_response = words.next();
    if words.next().is_some() {
        return Err("AUTH takes a mechanism and at most one initial response".to_string());
    }

    // RFC 4422 sasl-mech, taken without regard to case as RFC 4954 allows.
    let mechanism_ok = mechanism.len() <= MAX_SASL_MECHANISM_CHARS
        && mechanism
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !mechanism_ok {
        return Err(format!("bad SASL mechanism {}", quote(mechanism)));
    }
    // Decoding is the session's job; this only keeps out what base64 (or `=`) cannot contain.
    let base64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    if initial_response.is_some_and(|r| !r.bytes().all(base64)) {
        return Err("initial response is not base64".to_string());
    }

    Ok(Command::Auth {
        mechanism: mechanism.to_ascii_uppercase(),
        initial_response: initial_response.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Command {
        parse_command(line.as_bytes())
    }

    fn mail(from: &str, params: MailParams) -> Command {
        Command::Mail {
            from: from.to_string(),
            params,
        }
    }

    fn sender(from: &str) -> Command {
        mail(from, MailParams::default())
    }

    fn rcpt(to: &str) -> Command {
        Command::Rcpt {
            to: to.to_string(),
            params: Vec::new(),
        }
    }

    fn param(keyword: &str, value: Option<&str>) -> Param {
        Param {
            keyword: keyword.to_string(),
            value: value.map(str::to_string),
        }
    }

    /// The verb of an `Invalid`, or a panic naming what came out instead.
    fn invalid_verb(line: &[u8]) -> &'static str {
        match parse_command(line) {
            Command::Invalid { verb, .. } => verb,
            other => panic!("{:?} parsed as {other:?}", String::from_utf8_lossy(line)),
        }
    }

    #[test]
    fn valid_commands_parse_to_their_values() {
        let table: Vec<(&str, Command)> = vec![
            (
                "EHLO client.example",
                Command::Ehlo("client.example".into()),
            ),
            ("EHLO [127.0.0.1]", Command::Ehlo("[127.0.0.1]".into())),
            ("EHLO [IPv6:::1]", Command::Ehlo("[IPv6:::1]".into())),
            ("EHLO my_host extra words", Command::Ehlo("my_host".into())),
            ("HELO client", Command::Helo("client".into())),
            ("MAIL FROM:<a@b.example>", sender("a@b.example")),
            ("MAIL FROM: <a@b.example>", sender("a@b.example")),
            ("MAIL FROM:<>", sender("")),
            (
                "MAIL FROM:<\"john doe\"@example.com>",
                sender("\"john doe\"@example.com"),
            ),
            (
                "MAIL FROM:<\"a\\\"b\"@example.com>",
                sender("\"a\\\"b\"@example.com"),
            ),
            (
                "MAIL FROM:<@a.example,@b.example:user@c.example>",
                sender("user@c.example"),
            ),
            (
                "MAIL FROM:<@[IPv6:::1]:user@c.example>",
                sender("user@c.example"),
            ),
            ("MAIL FROM:<user@[192.0.2.1]>", sender("user@[192.0.2.1]")),
            (
                "MAIL FROM:<user@[IPv6:2001:db8::1]>",
                sender("user@[IPv6:2001:db8::1]"),
            ),
            (
                "MAIL FROM:<user@[x-tag:stuff]>",
                sender("user@[x-tag:stuff]"),
            ),
            ("MAIL FROM:<user@localhost>", sender("user@localhost")),
            (
                "MAIL FROM:<o'brien+tag@xn--bcher-kva.example>",
                sender("o'brien+tag@xn--bcher-kva.example"),
            ),
            (
                "MAIL FROM:<jörg@bücher.example>",
                sender("jörg@bücher.example"),
            ),
            ("RCPT TO:<c@d.example>", rcpt("c@d.example")),
            ("RCPT TO: <c@d.example>", rcpt("c@d.example")),
            ("RCPT TO:<postmaster>", rcpt("postmaster")),
            ("RCPT TO:<PostMaster>", rcpt("PostMaster")),
            ("RCPT TO:<@relay.example:c@d.example>", rcpt("c@d.example")),
            ("DATA", Command::Data),
            ("RSET", Command::Rset),
            ("QUIT", Command::Quit),
            ("STARTTLS", Command::StartTls),
            ("NOOP", Command::Noop),
            ("NOOP anything at all", Command::Noop),
            ("VRFY  John Smith ", Command::Vrfy("John Smith".into())),
            ("HELP", Command::Help(None)),
            ("HELP MAIL", Command::Help(Some("MAIL".into()))),
            (
                "AUTH plain",
                Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial_response: None,
                },
            ),
            (
                "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
                Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial_response: Some("AGFsaWNlAHNlY3JldA==".into()),
                },
            ),
            (
                "AUTH SCRAM-SHA-256 =",
                Command::Auth {
                    mechanism: "SCRAM-SHA-256".into(),
                    initial_response: Some("=".into()),
                },
            ),
        ];
        for (line, expected) in table {
            assert_eq!(parse(line), expected, "{line:?}");
        }
    }

    #[test]
    fn verbs_are_matched_without_regard_to_case() {
        assert_eq!(parse("ehlo x"), Command::Ehlo("x".into()));
        assert_eq!(parse("HeLo x"), Command::Helo("x".into()));
        assert_eq!(parse("mail from:<a@b>"), sender("a@b"));
        assert_eq!(parse("rCpT tO:<a@b>"), rcpt("a@b"));
        assert_eq!(parse("data"), Command::Data);
        assert_eq!(parse("StartTLS"), Command::StartTls);
        assert_eq!(parse("expn list"), Command::NotImplemented("EXPN".into()));
    }

    #[test]
    fn spacing_between_verb_and_argument_and_at_the_end_is_tolerated() {
        assert_eq!(parse("EHLO    x"), Command::Ehlo("x".into()));
        let sized = mail(
            "a@b",
            MailParams {
                size: Some(10),
                ..Default::default()
            },
        );
        assert_eq!(parse("MAIL   FROM:<a@b>  SIZE=10 \t "), sized);
        assert_eq!(parse("DATA \t"), Command::Data);
        assert_eq!(parse("QUIT  "), Command::Quit);
    }

    #[test]
    fn invalid_arguments_are_reported_against_their_verb() {
        let table: &[(&str, &str)] = &[
            ("EHLO", "EHLO"),
            ("EHLO   ", "EHLO"),
            ("HELO", "HELO"),
            ("MAIL", "MAIL"),
            ("MAIL TO:<a@b>", "MAIL"),
            ("MAIL FROM:a@b", "MAIL"),
            ("MAIL FROM:<a@b", "MAIL"),
            ("MAIL FROM:a@b>", "MAIL"),
            ("MAIL FROM:  <a@b>", "MAIL"),
            ("MAIL FROM :<a@b>", "MAIL"),
            ("MAIL FROM:<a@b>SIZE=1", "MAIL"),
            ("MAIL FROM:<<a@b>>", "MAIL"),
            ("MAIL FROM:<a<b@c>", "MAIL"),
            ("MAIL FROM:<ab>", "MAIL"),
            ("MAIL FROM:<@b>", "MAIL"),
            ("MAIL FROM:<a@>", "MAIL"),
            ("MAIL FROM:<a@@b>", "MAIL"),
            ("MAIL FROM:<a b@c>", "MAIL"),
            ("MAIL FROM:<a@b c>", "MAIL"),
            ("MAIL FROM:<\"a b@c>", "MAIL"),
            ("MAIL FROM:<\"a\"b@c>", "MAIL"),
            ("MAIL FROM:<\"\"@c>", "MAIL"),
            ("MAIL FROM:<.a@b>", "MAIL"),
            ("MAIL FROM:<a.@b>", "MAIL"),
            ("MAIL FROM:<a..b@c>", "MAIL"),
            ("MAIL FROM:<a,b@c>", "MAIL"),
            ("MAIL FROM:<a@b..c>", "MAIL"),
            ("MAIL FROM:<a@.b>", "MAIL"),
            ("MAIL FROM:<a@b.>", "MAIL"),
            ("MAIL FROM:<a@-b.example>", "MAIL"),
            ("MAIL FROM:<a@b_c.example>", "MAIL"),
            ("MAIL FROM:<a@[300.1.1.1]>", "MAIL"),
            ("MAIL FROM:<a@[IPv6:nonsense]>", "MAIL"),
            ("MAIL FROM:<a@[127.0.0.1>", "MAIL"),
            ("MAIL FROM:<@a.example:>", "MAIL"),
            ("MAIL FROM:<@a.example>", "MAIL"),
            ("MAIL FROM:<@a.example,b.example:c@d>", "MAIL"),
            ("MAIL FROM:<@a..example:c@d>", "MAIL"),
            ("MAIL FROM:<a@b> =1", "MAIL"),
            ("MAIL FROM:<a@b> SIZE=", "MAIL"),
            ("MAIL FROM:<a@b> SIZE", "MAIL"),
            ("MAIL FROM:<a@b> SIZE=12x", "MAIL"),
            ("MAIL FROM:<a@b> SIZE=-1", "MAIL"),
            ("MAIL FROM:<a@b> SIZE=99999999999999999999", "MAIL"),
            ("MAIL FROM:<a@b> SIZE=1 SIZE=2", "MAIL"),
            ("MAIL FROM:<a@b> BODY=9BIT", "MAIL"),
            ("MAIL FROM:<a@b> BODY", "MAIL"),
            ("MAIL FROM:<a@b> BODY=7BIT BODY=8BITMIME", "MAIL"),
            ("MAIL FROM:<a@b> SMTPUTF8=yes", "MAIL"),
            ("MAIL FROM:<a@b> SMTPUTF8 SMTPUTF8", "MAIL"),
            ("MAIL FROM:<a@b> X_Y=1", "MAIL"),
            ("MAIL FROM:<a@b> X=a=b", "MAIL"),
            ("RCPT", "RCPT"),
            ("RCPT FROM:<a@b>", "RCPT"),
            ("RCPT TO:<>", "RCPT"),
            ("RCPT TO:c@d", "RCPT"),
            ("RCPT TO:<postmaster@>", "RCPT"),
            ("RCPT TO:<@relay.example:postmaster>", "RCPT"),
            ("RCPT TO:<a@b> NOTIFY=", "RCPT"),
            ("DATA now", "DATA"),
            ("RSET all", "RSET"),
            ("QUIT please", "QUIT"),
            ("STARTTLS x", "STARTTLS"),
            ("VRFY", "VRFY"),
            ("VRFY   ", "VRFY"),
            ("AUTH", "AUTH"),
            ("AUTH PLAIN a b", "AUTH"),
            ("AUTH PL@IN", "AUTH"),
            ("AUTH ABCDEFGHIJKLMNOPQRSTU", "AUTH"),
            ("AUTH PLAIN not-base64!", "AUTH"),
        ];
        for &(line, verb) in table {
            assert_eq!(invalid_verb(line.as_bytes()), verb, "{line:?}");
        }
    }

    #[test]
    fn commands_that_take_no_argument_say_so() {
        assert_eq!(
            parse("DATA now"),
            Command::Invalid {
                verb: "DATA",
                reason: "DATA takes no argument".into()
            }
        );
        assert_eq!(
            parse("starttls x"),
            Command::Invalid {
                verb: "STARTTLS",
                reason: "STARTTLS takes no argument".into()
            }
        );
    }

    #[test]
    fn smuggled_control_characters_are_refused() {
        let table: &[(&[u8], &str)] = &[
            (b"EHLO a\0b", "EHLO"),
            (b"EHLO x\rMAIL", "EHLO"),
            (b"MAIL FROM:<a@b>\0", "MAIL"),
            (b"MAIL FROM:<a\0@b>", "MAIL"),
            (b"MAIL FROM:<a@b>\rRCPT TO:<c@d>", "MAIL"),
            (b"MAIL FROM:<a@b> SIZE=1\tBODY=7BIT", "MAIL"),
            (b"MAIL FROM:<\"a\rb\"@c>", "MAIL"),
            (b"MAIL FROM:<a@b\x7f>", "MAIL"),
            (b"RCPT TO:<c@d>\r\nDATA", "RCPT"),
            (b"RCPT TO:<c@d\n>", "RCPT"),
            (b"VRFY a\0", "VRFY"),
            (b"HELP \x1b[2J", "HELP"),
            (b"AUTH PLAIN\rX", "AUTH"),
        ];
        for &(line, verb) in table {
            assert_eq!(
                invalid_verb(line),
                verb,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn a_cr_or_nul_glued_to_a_verb_makes_it_unknown() {
        assert_eq!(parse_command(b"DATA\r"), Command::Unknown("DATA\r".into()));
        assert_eq!(parse_command(b"QUIT\0"), Command::Unknown("QUIT\0".into()));
        assert_eq!(parse_command(b"\0"), Command::Unknown("\0".into()));
    }

    #[test]
    fn invalid_utf8_is_refused_where_text_is_expected() {
        assert_eq!(invalid_verb(b"MAIL FROM:<\xff@b>"), "MAIL");
        assert_eq!(invalid_verb(b"RCPT TO:<a@\xc3>"), "RCPT");
        assert_eq!(invalid_verb(b"EHLO \xfe"), "EHLO");
        assert_eq!(parse_command(b"NOOP \xff\x00"), Command::Noop);
    }

    #[test]
    fn overlong_addresses_are_refused_at_the_rfc_limits() {
        let local = "l".repeat(64);
        assert_eq!(
            parse(&format!("MAIL FROM:<{local}@b>")),
            sender(&format!("{local}@b"))
        );
        assert_eq!(
            invalid_verb(format!("MAIL FROM:<{local}l@b>").as_bytes()),
            "MAIL"
        );

        // The path limit of 256 octets, brackets included, binds before the domain limit.
        let label = "d".repeat(63);
        let domain = format!("{label}.{label}.{label}.{}", "d".repeat(59));
        assert_eq!(domain.len(), 251);
        let from = format!("ab@{domain}");
        assert_eq!(parse(&format!("MAIL FROM:<{from}>")), sender(&from));
        assert_eq!(
            invalid_verb(format!("RCPT TO:<abc@{domain}>").as_bytes()),
            "RCPT"
        );
        assert_eq!(
            invalid_verb(format!("RCPT TO:<a@{}.x>", "d".repeat(64)).as_bytes()),
            "RCPT"
        );

        let huge = format!("MAIL FROM:<{}@{}>", "x".repeat(500), "y".repeat(500));
        assert_eq!(invalid_verb(huge.as_bytes()), "MAIL");
    }

    #[test]
    fn mail_parameters_are_parsed_and_kept_in_order() {
        let parsed =
            parse("MAIL FROM:<a@b> size=1000 body=8bitmime SmtpUtf8 RET=HDRS envid=QQ314159");
        let expected = MailParams {
            size: Some(1000),
            body: Some(BodyType::EightBitMime),
            smtputf8: true,
            unknown: vec![param("RET", Some("HDRS")), param("ENVID", Some("QQ314159"))],
        };
        assert_eq!(parsed, mail("a@b", expected));
    }

    #[test]
    fn body_values_are_matched_without_regard_to_case() {
        let body = |line: &str| match parse(line) {
            Command::Mail { params, .. } => params.body,
            other => panic!("{line:?} parsed as {other:?}"),
        };
        assert_eq!(body("MAIL FROM:<a@b> BODY=7bit"), Some(BodyType::SevenBit));
        assert_eq!(
            body("MAIL FROM:<a@b> BODY=8BITMIME"),
            Some(BodyType::EightBitMime)
        );
        assert_eq!(
            body("MAIL FROM:<a@b> BODY=BinaryMime"),
            Some(BodyType::BinaryMime)
        );
        assert_eq!(body("MAIL FROM:<a@b>"), None);
    }

    #[test]
    fn the_largest_size_fits_and_one_more_does_not() {
        let parsed = parse(&format!("MAIL FROM:<> SIZE={}", u64::MAX));
        assert_eq!(
            parsed,
            mail(
                "",
                MailParams {
                    size: Some(u64::MAX),
                    ..Default::default()
                }
            )
        );
        assert_eq!(
            invalid_verb(b"MAIL FROM:<> SIZE=18446744073709551616"),
            "MAIL"
        );
    }

    #[test]
    fn rcpt_parameters_all_go_to_the_list() {
        let parsed = parse("RCPT TO:<c@d> notify=SUCCESS,FAILURE ORCPT=rfc822;c+40d SIZE=5 X");
        let params = vec![
            param("NOTIFY", Some("SUCCESS,FAILURE")),
            param("ORCPT", Some("rfc822;c+40d")),
            param("SIZE", Some("5")),
            param("X", None),
        ];
        assert_eq!(
            parsed,
            Command::Rcpt {
                to: "c@d".into(),
                params
            }
        );
    }

    #[test]
    fn commands_not_implemented_are_named_whatever_their_arguments() {
        for verb in [
            "EXPN", "TURN", "ETRN", "ATRN", "BDAT", "SEND", "SOML", "SAML", "VERB",
        ] {
            assert_eq!(parse(verb), Command::NotImplemented(verb.into()));
            let with_arg = format!("{} junk\0 here", verb.to_lowercase());
            assert_eq!(parse(&with_arg), Command::NotImplemented(verb.into()));
        }
    }

    #[test]
    fn unknown_verbs_are_upper_cased_and_cut_to_64_characters() {
        assert_eq!(parse("frob x y"), Command::Unknown("FROB".into()));
        assert_eq!(parse(""), Command::Unknown(String::new()));
        assert_eq!(parse("   "), Command::Unknown(String::new()));
        assert_eq!(parse(&"é".repeat(100)), Command::Unknown("é".repeat(64)));
        assert_eq!(
            parse_command(b"ab\xffcd"),
            Command::Unknown("AB\u{fffd}CD".into())
        );
    }

    #[test]
    fn a_verb_glued_to_its_argument_is_unknown() {
        assert_eq!(
            parse("MAILFROM:<a@b>"),
            Command::Unknown("MAILFROM:<A@B>".into())
        );
        assert_eq!(
            parse("RCPT\tTO:<a@b>"),
            Command::Unknown("RCPT\tTO:<A@B>".into())
        );
        assert_eq!(parse(" DATA"), Command::Unknown(String::new()));
        assert_eq!(parse("EHLO\0x"), Command::Unknown("EHLO\0X".into()));
    }

    #[test]
    fn verb_names_every_kind_of_command() {
        let table = [
            ("EHLO x", "EHLO"),
            ("helo x", "HELO"),
            ("MAIL FROM:<>", "MAIL"),
            ("RCPT TO:<postmaster>", "RCPT"),
            ("DATA", "DATA"),
            ("RSET", "RSET"),
            ("NOOP", "NOOP"),
            ("QUIT", "QUIT"),
            ("VRFY x", "VRFY"),
            ("HELP", "HELP"),
            ("STARTTLS", "STARTTLS"),
            ("AUTH LOGIN", "AUTH"),
            ("etrn x", "ETRN"),
            ("xyzzy", "XYZZY"),
            ("MAIL FROM:nobody", "MAIL"),
            ("data x", "DATA"),
        ];
        for (line, verb) in table {
            assert_eq!(parse(line).verb(), verb, "{line:?}");
        }
    }

    #[test]
    fn reasons_name_the_bad_value_but_stay_short() {
        let Command::Invalid { reason, .. } = parse("MAIL FROM:<a@b> SIZE=12x") else {
            panic!("SIZE=12x accepted");
        };
        assert_eq!(reason, "SIZE value \"12x\" is not a number");

        let line = format!("MAIL FROM:<a@b> X={}=", "v".repeat(900));
        let Command::Invalid { reason, .. } = parse(&line) else {
            panic!("bad parameter accepted");
        };
        assert!(reason.len() < 100, "{reason}");
    }
}
