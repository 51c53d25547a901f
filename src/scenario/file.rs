//! The TOML form of a scenario, and its validation with errors that name file, line and column.
//!
//! Parsing happens in two steps. Serde reads the text into raw structs that refuse unknown keys
//! and keep the position of every value; validation then turns them into a [`Scenario`],
//! checking what serde cannot (a fault's parameters against its kind, a stage name, a range) and
//! pointing at the offending value when something is wrong.

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::{
    DnsSettings, DocumentedError, ListenerMode, Reproduces, Scenario, ServerSettings, TlsSettings,
};
use crate::dns::DnsFault;
use crate::faults::{
    AttemptRange, Chance, ChancePer, Close, Condition, Delay, Fault, FaultKind, Greylist,
    OmitExtension, Pattern, RateLimit, ReplyFault, Reset, Stage, Stall, Then, Throttle,
};
use crate::protocol::{BareNewlines, EnhancedCode, Reply};
use crate::tls::{CertVariant, TlsVersions};

/// A scenario that could not be loaded, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file (or other origin) of the text.
    pub origin: String,
    /// 1-based line and column of the mistake, when it has a place in the text.
    pub position: Option<(usize, usize)>,
    /// What is wrong, in lowercase, quoting the bad key or value.
    pub message: String,
}

impl ScenarioError {
    pub(super) fn io(origin: &str, err: &std::io::Error) -> Self {
        Self {
            origin: origin.to_string(),
            position: None,
            message: format!("cannot read: {err}"),
        }
    }

    pub(crate) fn unknown_builtin(name: &str) -> Self {
        Self {
            origin: name.to_string(),
            position: None,
            message: format!(
                "no built-in scenario is called {name:?} and no such file exists; \
                 `smtp-fault scenarios` lists the built-in names"
            ),
        }
    }

    fn at(origin: &str, source: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            origin: origin.to_string(),
            position: Some(line_column(source, span.start)),
            message: message.into(),
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{}:{line}:{column}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..source.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: S<String>,
    summary: S<String>,
    reproduces: S<RawReproduces>,
    #[serde(default)]
    server: Option<RawServer>,
    #[serde(default)]
    tls: Option<RawTls>,
    #[serde(default)]
    dns: Option<RawDns>,
    #[serde(default)]
    faults: Vec<S<RawFault>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReproduces {
    error: S<String>,
    reply: Option<S<String>>,
    sender_log: S<String>,
    fix: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listener: Option<S<String>>,
    idle_timeout_ms: Option<S<i64>>,
    max_recipients: Option<S<i64>>,
    max_message_bytes: Option<S<i64>>,
    max_line_octets: Option<S<i64>>,
    bare_newlines: Option<S<String>>,
    max_sessions: Option<S<i64>>,
    seed: Option<S<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    starttls: Option<bool>,
    certificate: Option<S<String>>,
    versions: Option<S<String>>,
    required: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    zone: Option<S<String>>,
    fault: Option<S<String>>,
    ttl: Option<S<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    stage: S<String>,
    kind: S<String>,
    code: Option<S<i64>>,
    enhanced: Option<S<String>>,
    text: Option<S<String>>,
    lines: Option<S<Vec<String>>>,
    then: Option<S<String>>,
    duration_ms: Option<S<i64>>,
    delay_ms: Option<S<i64>>,
    after_bytes: Option<S<i64>>,
    bytes_per_second: Option<S<i64>>,
    extension: Option<S<String>>,
    min_delay_ms: Option<S<i64>>,
    messages: Option<S<i64>>,
    window_ms: Option<S<i64>>,
    when: Option<RawWhen>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    rcpt: Option<S<String>>,
    mail_from: Option<S<String>>,
    helo: Option<S<String>>,
    attempts: Option<S<AttemptsValue>>,
    tls: Option<bool>,
    messages: Option<S<AttemptsValue>>,
    every_nth_message: Option<S<i64>>,
    window_ms: Option<S<Vec<i64>>>,
    chance: Option<S<f64>>,
    chance_per: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AttemptsValue {
    Number(i64),
    Text(String),
}

/// Turns raw values into a scenario, remembering the text for positions.
struct Validator<'a> {
    origin: &'a str,
    source: &'a str,
}

impl Validator<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(self.origin, self.source, span, message)
    }

    fn text(&self, value: &S<String>, key: &str) -> Result<String, ScenarioError> {
        let text = value.get_ref().trim();
        if text.is_empty() {
            return Err(self.error(value.span(), format!("`{key}` must not be empty")));
        }
        Ok(text.to_string())
    }

    fn number(&self, value: &S<i64>, key: &str, min: i64, max: i64) -> Result<u64, ScenarioError> {
        let n = *value.get_ref();
        if n < min || n > max {
            return Err(self.error(
                value.span(),
                format!("`{key}` is {n}, but must be between {min} and {max}"),
            ));
        }
        Ok(n as u64)
    }

    fn pattern(&self, value: &S<String>, key: &str) -> Result<Pattern, ScenarioError> {
        Pattern::new(value.get_ref())
            .map_err(|e| self.error(value.span(), format!("`when.{key}`: {e}")))
    }

    fn scenario(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let name = self.text(&raw.name, "name")?;
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(self.error(
                raw.name.span(),
                format!("`name` {name:?} may hold only ASCII letters, digits, `-` and `_`"),
            ));
        }
        let faults = raw
            .faults
            .iter()
            .enumerate()
            .map(|(i, f)| self.fault(i, f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Scenario {
            name,
            summary: self.text(&raw.summary, "summary")?,
            reproduces: self.reproduces(&raw.reproduces)?,
            server: self.server(raw.server.as_ref())?,
            tls: self.tls(raw.tls.as_ref())?,
            faults,
            dns: raw.dns.as_ref().map(|d| self.dns(d)).transpose()?,
            source: None,
        })
    }

    fn reproduces(&self, raw: &S<RawReproduces>) -> Result<Reproduces, ScenarioError> {
        let r = raw.get_ref();
        let error = DocumentedError::from_code(r.error.get_ref()).ok_or_else(|| {
            let codes: Vec<_> = DocumentedError::ALL.iter().map(|e| e.code()).collect();
            self.error(
                r.error.span(),
                format!(
                    "unknown documented error {:?}; expected one of {}",
                    r.error.get_ref(),
                    codes.join(", ")
                ),
            )
        })?;
        let reply = match &r.reply {
            Some(reply) if error != DocumentedError::Other => {
                return Err(self.error(
                    reply.span(),
                    "`reply` is only for `error = \"other\"`; a documented code speaks for itself",
                ));
            }
            Some(reply) => Some(self.text(reply, "reply")?),
            None => None,
        };
        Ok(Reproduces {
            error,
            reply,
            sender_log: self.text(&r.sender_log, "sender_log")?,
            fix: r.fix.as_ref().map(|f| self.text(f, "fix")).transpose()?,
        })
    }

    fn server(&self, raw: Option<&RawServer>) -> Result<ServerSettings, ScenarioError> {
        let mut settings = ServerSettings::default();
        let Some(raw) = raw else { return Ok(settings) };
        if let Some(listener) = &raw.listener {
            settings.listener = match listener.get_ref().as_str() {
                "accept" => ListenerMode::Accept,
                "refuse" => ListenerMode::Refuse,
                "blackhole" => ListenerMode::Blackhole,
                other => {
                    return Err(self.error(
                        listener.span(),
                        format!(
                            "unknown listener {other:?}; expected \"accept\", \"refuse\" or \
                             \"blackhole\""
                        ),
                    ));
                }
            };
        }
        if let Some(v) = &raw.idle_timeout_ms {
            settings.idle_timeout_ms = self.number(v, "idle_timeout_ms", 1, 86_400_000)?;
        }
        if let Some(v) = &raw.max_recipients {
            settings.max_recipients = self.number(v, "max_recipients", 1, 100_000)? as usize;
        }
        if let Some(v) = &raw.max_message_bytes {
            settings.max_message_bytes = self.number(v, "max_message_bytes", 1, 1 << 32)?;
        }
        if let Some(v) = &raw.max_line_octets {
            settings.max_line_octets = self.number(v, "max_line_octets", 64, 1 << 20)? as usize;
        }
        if let Some(v) = &raw.bare_newlines {
            settings.bare_newlines = match v.get_ref().as_str() {
                "reject" => BareNewlines::Reject,
                "accept" => BareNewlines::Accept,
                other => {
                    return Err(self.error(
                        v.span(),
                        format!(
                            "unknown bare_newlines {other:?}; expected \"reject\" or \"accept\""
                        ),
                    ));
                }
            };
        }
        if let Some(v) = &raw.max_sessions {
            settings.max_sessions = Some(self.number(v, "max_sessions", 1, 1_000_000)? as usize);
        }
        if let Some(v) = &raw.seed {
            settings.seed = self.number(v, "seed", 0, i64::MAX)?;
        }
        Ok(settings)
    }

    fn tls(&self, raw: Option<&RawTls>) -> Result<TlsSettings, ScenarioError> {
        let mut settings = TlsSettings::default();
        let Some(raw) = raw else { return Ok(settings) };
        if let Some(v) = raw.starttls {
            settings.starttls = v;
        }
        if let Some(v) = raw.required {
            settings.required = v;
        }
        if let Some(v) = &raw.certificate {
            settings.certificate = CertVariant::from_name(v.get_ref()).ok_or_else(|| {
                let names: Vec<_> = CertVariant::ALL.iter().map(|c| c.name()).collect();
                self.error(
                    v.span(),
                    format!(
                        "unknown certificate {:?}; expected one of {}",
                        v.get_ref(),
                        names.join(", ")
                    ),
                )
            })?;
        }
        if let Some(v) = &raw.versions {
            settings.versions = TlsVersions::from_name(v.get_ref()).ok_or_else(|| {
                self.error(
                    v.span(),
                    format!(
                        "unknown versions {:?}; expected \"any\", \"1.2\" or \"1.3\"",
                        v.get_ref()
                    ),
                )
            })?;
        }
        Ok(settings)
    }

    fn dns(&self, raw: &RawDns) -> Result<DnsSettings, ScenarioError> {
        let mut settings = DnsSettings::default();
        if let Some(v) = &raw.zone {
            let zone = self
                .text(v, "zone")?
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            };
            if !zone.contains('.') || !zone.split('.').all(label_ok) {
                return Err(self.error(
                    v.span(),
                    format!(
                        "invalid zone {zone:?}: expected a name of two labels or more, \
                         such as \"lab.test\""
                    ),
                ));
            }
            settings.zone = zone;
        }
        if let Some(v) = &raw.fault {
            let fault = DnsFault::from_name(v.get_ref()).ok_or_else(|| {
                let names: Vec<_> = DnsFault::ALL.iter().map(|f| f.name()).collect();
                self.error(
                    v.span(),
                    format!(
                        "unknown dns fault {:?}; expected one of {}",
                        v.get_ref(),
                        names.join(", ")
                    ),
                )
            })?;
            settings.fault = Some(fault);
        }
        if let Some(v) = &raw.ttl {
            settings.ttl = self.number(v, "ttl", 0, 86_400)? as u32;
        }
        Ok(settings)
    }

    fn fault(&self, index: usize, raw: &S<RawFault>) -> Result<Fault, ScenarioError> {
        let f = raw.get_ref();
        let stage = Stage::from_name(f.stage.get_ref()).ok_or_else(|| {
            let names: Vec<_> = Stage::ALL.iter().map(|s| s.name()).collect();
            self.error(
                f.stage.span(),
                format!(
                    "unknown stage {:?}; expected one of {}",
                    f.stage.get_ref(),
                    names.join(", ")
                ),
            )
        })?;

        // Each kind takes some parameters; any other parameter given is a mistake worth naming.
        let kind_name = f.kind.get_ref().as_str();
        let allowed: &[&str] = match kind_name {
            "reply" => &["code", "enhanced", "text", "lines", "then"],
            "stall" => &["duration_ms"],
            "delay" => &["delay_ms"],
            "close" | "reset" => &[],
            "throttle" => &["bytes_per_second"],
            "omit_extension" => &["extension"],
            "greylist" => &["min_delay_ms"],
            "rate_limit" => &["messages", "window_ms"],
            other => {
                return Err(self.error(
                    f.kind.span(),
                    format!(
                        "unknown fault kind {other:?}; expected one of {}",
                        FaultKind::NAMES.join(", ")
                    ),
                ));
            }
        };
        let given: [(&str, Option<Range<usize>>); 12] = [
            ("min_delay_ms", f.min_delay_ms.as_ref().map(|v| v.span())),
            ("messages", f.messages.as_ref().map(|v| v.span())),
            ("window_ms", f.window_ms.as_ref().map(|v| v.span())),
            ("code", f.code.as_ref().map(|v| v.span())),
            ("enhanced", f.enhanced.as_ref().map(|v| v.span())),
            ("text", f.text.as_ref().map(|v| v.span())),
            ("lines", f.lines.as_ref().map(|v| v.span())),
            ("then", f.then.as_ref().map(|v| v.span())),
            ("duration_ms", f.duration_ms.as_ref().map(|v| v.span())),
            ("delay_ms", f.delay_ms.as_ref().map(|v| v.span())),
            (
                "bytes_per_second",
                f.bytes_per_second.as_ref().map(|v| v.span()),
            ),
            ("extension", f.extension.as_ref().map(|v| v.span())),
        ];
        for (key, span) in given {
            if let Some(span) = span
                && !allowed.contains(&key)
            {
                return Err(self.error(
                    span,
                    format!("`{key}` does not apply to a `{kind_name}` fault"),
                ));
            }
        }

        let kind = match kind_name {
            "reply" => FaultKind::Reply(self.reply(f, raw.span())?),
            "stall" => FaultKind::Stall(Stall {
                duration_ms: f
                    .duration_ms
                    .as_ref()
                    .map(|v| self.number(v, "duration_ms", 0, 86_400_000))
                    .transpose()?,
            }),
            "delay" => {
                let Some(delay) = &f.delay_ms else {
                    return Err(self.error(raw.span(), "a `delay` fault needs `delay_ms`"));
                };
                FaultKind::Delay(Delay {
                    delay_ms: self.number(delay, "delay_ms", 0, 86_400_000)?,
                })
            }
            "close" => FaultKind::Close(Close),
            "reset" => FaultKind::Reset(Reset),
            "greylist" => {
                if stage != Stage::Rcpt {
                    return Err(self.error(
                        f.stage.span(),
                        "a `greylist` fault only applies at stage \"rcpt\", \
                         where the triplet is known",
                    ));
                }
                let min_delay_ms = match &f.min_delay_ms {
                    Some(v) => self.number(v, "min_delay_ms", 0, 86_400_000)?,
                    None => 3000,
                };
                FaultKind::Greylist(Greylist { min_delay_ms })
            }
            "rate_limit" => {
                let (Some(messages), Some(window)) = (&f.messages, &f.window_ms) else {
                    return Err(self.error(
                        raw.span(),
                        "a `rate_limit` fault needs `messages` and `window_ms`",
                    ));
                };
                if stage == Stage::Body {
                    return Err(self.error(
                        f.stage.span(),
                        "a `rate_limit` fault does not apply at stage \"body\"",
                    ));
                }
                FaultKind::RateLimit(RateLimit {
                    messages: self.number(messages, "messages", 1, 1_000_000_000)?,
                    window_ms: self.number(window, "window_ms", 1, 86_400_000 * 30)?,
                })
            }
            "throttle" => {
                let Some(rate) = &f.bytes_per_second else {
                    return Err(
                        self.error(raw.span(), "a `throttle` fault needs `bytes_per_second`")
                    );
                };
                FaultKind::Throttle(Throttle {
                    bytes_per_second: self.number(rate, "bytes_per_second", 1, 1 << 30)?,
                })
            }
            _ => {
                let Some(ext) = &f.extension else {
                    return Err(
                        self.error(raw.span(), "an `omit_extension` fault needs `extension`")
                    );
                };
                if stage != Stage::Ehlo {
                    return Err(self.error(
                        f.stage.span(),
                        "an `omit_extension` fault only applies at stage \"ehlo\"",
                    ));
                }
                let extension = self.text(ext, "extension")?.to_ascii_uppercase();
                if !extension
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    return Err(self.error(
                        ext.span(),
                        format!("invalid extension keyword {extension:?}"),
                    ));
                }
                FaultKind::OmitExtension(OmitExtension { extension })
            }
        };

        let after_bytes = match (&f.after_bytes, stage) {
            (Some(v), Stage::Body) => self.number(v, "after_bytes", 0, 1 << 40)?,
            (Some(v), _) => {
                return Err(self.error(v.span(), "`after_bytes` only applies at stage \"body\""));
            }
            (None, Stage::Body) => {
                return Err(self.error(raw.span(), "a fault at stage \"body\" needs `after_bytes`"));
            }
            (None, _) => 0,
        };
        if matches!(kind, FaultKind::Throttle(_) | FaultKind::Delay(_)) && stage == Stage::Body {
            return Err(self.error(
                f.kind.span(),
                format!("a `{kind_name}` fault does not apply at stage \"body\""),
            ));
        }

        Ok(Fault {
            stage,
            kind,
            after_bytes,
            when: self.when(f.when.as_ref(), stage, index)?,
        })
    }

    fn reply(&self, f: &RawFault, whole: Range<usize>) -> Result<ReplyFault, ScenarioError> {
        let Some(code) = &f.code else {
            return Err(self.error(whole, "a `reply` fault needs `code`"));
        };
        let code = self.number(code, "code", 200, 599)? as u16;
        let enhanced = match &f.enhanced {
            Some(v) => {
                let e: EnhancedCode =
                    v.get_ref()
                        .parse()
                        .map_err(|e: crate::protocol::EnhancedCodeError| {
                            self.error(v.span(), e.to_string())
                        })?;
                if u16::from(e.class) != code / 100 {
                    return Err(self.error(
                        v.span(),
                        format!(
                            "enhanced code {e} does not belong with reply code {code}; \
                             RFC 3463 asks for the same class"
                        ),
                    ));
                }
                Some(e)
            }
            None => None,
        };
        let lines = match (&f.text, &f.lines) {
            (Some(_), Some(lines)) => {
                return Err(self.error(lines.span(), "give either `text` or `lines`, not both"));
            }
            (Some(text), None) => vec![text.get_ref().clone()],
            (None, Some(lines)) if lines.get_ref().is_empty() => {
                return Err(self.error(lines.span(), "`lines` must hold at least one line"));
            }
            (None, Some(lines)) => lines.get_ref().clone(),
            (None, None) => vec![default_text(code).to_string()],
        };
        let bad_line = |l: &String| l.chars().any(|c| c == '\r' || c == '\n') || l.len() > 500;
        if let Some(span) = f
            .text
            .as_ref()
            .filter(|t| bad_line(t.get_ref()))
            .map(|t| t.span())
            .or_else(|| {
                f.lines
                    .as_ref()
                    .filter(|l| l.get_ref().iter().any(bad_line))
                    .map(|l| l.span())
            })
        {
            return Err(self.error(
                span,
                "reply text must not hold CR or LF, nor exceed 500 characters",
            ));
        }
        let then = match &f.then {
            Some(v) => Then::from_name(v.get_ref()).ok_or_else(|| {
                self.error(
                    v.span(),
                    format!(
                        "unknown then {:?}; expected \"continue\", \"close\" or \"reset\"",
                        v.get_ref()
                    ),
                )
            })?,
            None => Then::Continue,
        };
        Ok(ReplyFault {
            reply: Reply::multiline(code, enhanced, lines),
            then,
        })
    }

    fn when(
        &self,
        raw: Option<&RawWhen>,
        stage: Stage,
        index: usize,
    ) -> Result<Condition, ScenarioError> {
        let Some(raw) = raw else {
            return Ok(Condition::default());
        };
        let mut when = Condition::default();
        if let Some(v) = &raw.rcpt {
            if matches!(
                stage,
                Stage::Connect
                    | Stage::Ehlo
                    | Stage::Starttls
                    | Stage::TlsHandshake
                    | Stage::Auth
                    | Stage::Mail
            ) {
                return Err(self.error(
                    v.span(),
                    format!("`when.rcpt` cannot match at stage \"{stage}\", before any RCPT TO"),
                ));
            }
            when.rcpt = Some(self.pattern(v, "rcpt")?);
        }
        if let Some(v) = &raw.mail_from {
            if matches!(
                stage,
                Stage::Connect | Stage::Ehlo | Stage::Starttls | Stage::TlsHandshake | Stage::Auth
            ) {
                return Err(self.error(
                    v.span(),
                    format!("`when.mail_from` cannot match at stage \"{stage}\", before MAIL FROM"),
                ));
            }
            when.mail_from = Some(self.pattern(v, "mail_from")?);
        }
        if let Some(v) = &raw.helo {
            if stage == Stage::Connect {
                return Err(self.error(
                    v.span(),
                    "`when.helo` cannot match at stage \"connect\", before EHLO",
                ));
            }
            when.helo = Some(self.pattern(v, "helo")?);
        }
        if let Some(v) = &raw.attempts {
            let text = match v.get_ref() {
                AttemptsValue::Number(n) => n.to_string(),
                AttemptsValue::Text(t) => t.clone(),
            };
            let range: AttemptRange = text.parse().map_err(|e: crate::faults::RangeError| {
                self.error(v.span(), format!("`when.attempts`: {e}"))
            })?;
            when.attempts = Some(range);
        }
        when.tls = raw.tls;

        let before_mail = matches!(
            stage,
            Stage::Connect | Stage::Ehlo | Stage::Starttls | Stage::TlsHandshake | Stage::Auth
        );
        let message_key = raw.messages.as_ref().map(|v| ("messages", v.span())).or(raw
            .every_nth_message
            .as_ref()
            .map(|v| ("every_nth_message", v.span())));
        if let Some((key, span)) = message_key
            && before_mail
        {
            return Err(self.error(
                span,
                format!("`when.{key}` cannot match at stage \"{stage}\", before MAIL FROM"),
            ));
        }
        if let Some(v) = &raw.messages {
            let text = match v.get_ref() {
                AttemptsValue::Number(n) => n.to_string(),
                AttemptsValue::Text(t) => t.clone(),
            };
            let range: AttemptRange = text.parse().map_err(|e: crate::faults::RangeError| {
                self.error(v.span(), format!("`when.messages`: {e}"))
            })?;
            when.messages = Some(range);
        }
        if let Some(v) = &raw.every_nth_message {
            when.every_nth_message = Some(self.number(v, "every_nth_message", 1, 1_000_000_000)?);
        }
        if let Some(v) = &raw.window_ms {
            let window = v.get_ref();
            let valid = window.len() == 2 && window[0] >= 0 && window[1] > window[0];
            if !valid {
                return Err(self.error(
                    v.span(),
                    format!(
                        "`when.window_ms` is {window:?}; expected [start, end] in milliseconds \
                         since the scenario took effect, with start < end"
                    ),
                ));
            }
            when.window_ms = Some((window[0] as u64, window[1] as u64));
        }
        let per = match &raw.chance_per {
            None => ChancePer::Session,
            Some(v) => match v.get_ref().as_str() {
                "session" => ChancePer::Session,
                "message" if before_mail => {
                    return Err(self.error(
                        v.span(),
                        format!(
                            "`when.chance_per = \"message\"` cannot apply at stage \"{stage}\", \
                             before MAIL FROM"
                        ),
                    ));
                }
                "message" => ChancePer::Message,
                other => {
                    return Err(self.error(
                        v.span(),
                        format!(
                            "unknown chance_per {other:?}; expected \"session\" or \"message\""
                        ),
                    ));
                }
            },
        };
        match (&raw.chance, &raw.chance_per) {
            (Some(v), _) => {
                let p = *v.get_ref();
                if !(0.0..=1.0).contains(&p) {
                    return Err(self.error(
                        v.span(),
                        format!("`when.chance` is {p}, but must be between 0 and 1"),
                    ));
                }
                when.chance = Some(Chance {
                    probability: p,
                    per,
                    salt: index as u64,
                });
            }
            (None, Some(v)) => {
                return Err(self.error(v.span(), "`when.chance_per` needs `when.chance`"));
            }
            (None, None) => {}
        }
        Ok(when)
    }
}

/// The text a reply gets when the scenario gives none.
fn default_text(code: u16) -> &'static str {
    match code {
        421 => "Service not available, closing transmission channel",
        450 | 451 => "Requested action aborted: local error in processing",
        452 => "Insufficient system storage",
        454 => "TLS not available due to temporary reason",
        500..=504 => "Command rejected",
        530 => "Must issue a STARTTLS command first",
        550 => "Requested action not taken: mailbox unavailable",
        552 => "Requested mail action aborted: exceeded storage allocation",
        553 => "Requested action not taken: mailbox name not allowed",
        554 => "Transaction failed",
        200..=399 => "OK",
        _ => "Error",
    }
}

pub(super) fn parse(source: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        ScenarioError::at(origin, source, span, e.message().trim().to_string())
    })?;
    let mut scenario = Validator { origin, source }.scenario(raw)?;
    scenario.source = Some(source.to_string());
    Ok(scenario)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "name = \"t\"\nsummary = \"s\"\n[reproduces]\nerror = \"other\"\nsender_log = \"l\"\n";

    fn load(extra: &str) -> Result<Scenario, ScenarioError> {
        parse(&format!("{HEAD}{extra}"), "t.toml")
    }

    fn error_at(extra: &str) -> String {
        load(extra).unwrap_err().to_string()
    }

    #[test]
    fn a_minimal_file_loads_as_a_healthy_receiver() {
        let scenario = load("").unwrap();
        assert_eq!(scenario.name, "t");
        assert!(scenario.faults.is_empty());
        assert_eq!(scenario.server, ServerSettings::default());
    }

    #[test]
    fn a_reply_fault_with_a_condition_loads() {
        let s = load(
            "[[faults]]\nstage = \"rcpt\"\nkind = \"reply\"\ncode = 452\nenhanced = \"4.2.2\"\n\
             text = \"Mailbox full\"\n[faults.when]\nrcpt = \"*@full.example\"\n",
        )
        .unwrap();
        let fault = &s.faults[0];
        assert_eq!(fault.stage, Stage::Rcpt);
        assert_eq!(fault.describe(), "rcpt: reply 452 4.2.2");
        assert!(fault.when.rcpt.as_ref().unwrap().matches("x@full.example"));
    }

    #[test]
    fn an_unknown_top_level_key_is_named_with_its_line_and_column() {
        let err = error_at("colour = 3\n");
        assert!(
            err.starts_with("t.toml:6:1: unknown field `colour`"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_inside_a_fault_is_named() {
        let err = error_at("[[faults]]\nstage = \"mail\"\nkind = \"close\"\ndelay = 5\n");
        assert!(
            err.starts_with("t.toml:9:1: unknown field `delay`"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_stage_points_at_its_value() {
        let err = error_at("[[faults]]\nstage = \"greeting\"\nkind = \"close\"\n");
        assert!(
            err.starts_with("t.toml:7:9: unknown stage \"greeting\""),
            "{err}"
        );
    }

    #[test]
    fn a_parameter_of_another_kind_is_refused() {
        let err = error_at("[[faults]]\nstage = \"mail\"\nkind = \"close\"\ndelay_ms = 5\n");
        assert!(
            err.starts_with("t.toml:9:12: `delay_ms` does not apply to a `close` fault"),
            "{err}"
        );
    }

    #[test]
    fn a_body_fault_needs_after_bytes_and_others_refuse_it() {
        let err = error_at("[[faults]]\nstage = \"body\"\nkind = \"reset\"\n");
        assert!(err.contains("needs `after_bytes`"), "{err}");
        let err = error_at("[[faults]]\nstage = \"mail\"\nkind = \"reset\"\nafter_bytes = 3\n");
        assert!(
            err.contains("t.toml:9:15: `after_bytes` only applies"),
            "{err}"
        );
    }

    #[test]
    fn an_enhanced_code_of_another_class_is_refused() {
        let err = error_at(
            "[[faults]]\nstage = \"mail\"\nkind = \"reply\"\ncode = 451\nenhanced = \"5.1.1\"\n",
        );
        assert!(
            err.contains("t.toml:10:12: enhanced code 5.1.1 does not belong"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_numbers_are_refused_with_their_bounds() {
        let err = error_at("[[faults]]\nstage = \"mail\"\nkind = \"reply\"\ncode = 99\n");
        assert!(
            err.contains("`code` is 99, but must be between 200 and 599"),
            "{err}"
        );
    }

    #[test]
    fn a_syntax_error_names_line_and_column() {
        let err = parse("name = \"x\n", "bad.toml").unwrap_err().to_string();
        assert!(err.starts_with("bad.toml:1:"), "{err}");
    }

    #[test]
    fn a_recipient_condition_before_rcpt_is_refused() {
        let err = error_at(
            "[[faults]]\nstage = \"mail\"\nkind = \"close\"\n[faults.when]\nrcpt = \"a\"\n",
        );
        assert!(
            err.contains("`when.rcpt` cannot match at stage \"mail\""),
            "{err}"
        );
    }

    #[test]
    fn attempts_accept_a_number_or_a_range() {
        let s = load(
            "[[faults]]\nstage = \"connect\"\nkind = \"close\"\n[faults.when]\nattempts = 2\n",
        )
        .unwrap();
        assert_eq!(s.faults[0].when.attempts, Some("2".parse().unwrap()));
        let err = error_at(
            "[[faults]]\nstage = \"connect\"\nkind = \"close\"\n\
             [faults.when]\nattempts = \"2-1\"\n",
        );
        assert!(
            err.contains("t.toml:10:12: `when.attempts`: invalid range"),
            "{err}"
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        assert_eq!(line_column("é = 1\nab", 7), (2, 1));
        assert_eq!(line_column("é = 1", 3), (1, 3));
    }
}
