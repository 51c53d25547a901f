//! Scenarios: what the destination does, which fault fires at which stage, and the documented
//! delivery error that this reproduces.
//!
//! A scenario is usually a TOML file (see [`Scenario::from_toml`] and `scenarios/` in the
//! repository, whose files are compiled in as the built-in scenarios), but it can also be built
//! in code with [`Scenario::builder`]. Loading validates everything and names the file, line and
//! column of the first mistake.

mod builtin;
mod file;

use std::fmt;
use std::path::Path;

pub use builtin::{BUILTIN, builtin, builtin_names};
pub use file::ScenarioError;

use crate::dns::DnsFault;
use crate::faults::{Fault, Stage};
use crate::protocol::BareNewlines;
use crate::tls::{CertVariant, TlsVersions};

/// One of the documented connector errors, or none, or any other reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum DocumentedError {
    /// The message is delivered.
    #[serde(rename = "none")]
    None,
    /// 450 4.4.312 DNS query failed.
    #[serde(rename = "4.4.312")]
    DnsQueryFailed,
    /// 450 4.4.315 Connection timed out.
    #[serde(rename = "4.4.315")]
    ConnectionTimedOut,
    /// 450 4.4.316 Connection refused.
    #[serde(rename = "4.4.316")]
    ConnectionRefused,
    /// 450 4.4.317 Cannot connect to remote server.
    #[serde(rename = "4.4.317")]
    CannotConnect,
    /// 450 4.4.318 Connection was closed abruptly.
    #[serde(rename = "4.4.318")]
    ConnectionClosed,
    /// 450 4.7.320 Certificate validation failed.
    #[serde(rename = "4.7.320")]
    CertificateValidationFailed,
    /// Any other reply the destination gives, reaching the sender as that reply.
    #[serde(rename = "other")]
    Other,
}

impl DocumentedError {
    /// Every value, in table order.
    pub const ALL: &'static [DocumentedError] = &[
        DocumentedError::None,
        DocumentedError::DnsQueryFailed,
        DocumentedError::ConnectionTimedOut,
        DocumentedError::ConnectionRefused,
        DocumentedError::CannotConnect,
        DocumentedError::ConnectionClosed,
        DocumentedError::CertificateValidationFailed,
        DocumentedError::Other,
    ];

    /// The machine-readable code used in scenario files: `4.4.316`, `other` or `none`.
    pub fn code(self) -> &'static str {
        match self {
            DocumentedError::None => "none",
            DocumentedError::DnsQueryFailed => "4.4.312",
            DocumentedError::ConnectionTimedOut => "4.4.315",
            DocumentedError::ConnectionRefused => "4.4.316",
            DocumentedError::CannotConnect => "4.4.317",
            DocumentedError::ConnectionClosed => "4.4.318",
            DocumentedError::CertificateValidationFailed => "4.7.320",
            DocumentedError::Other => "other",
        }
    }

    /// The documented name, e.g. `Connection refused`.
    pub fn name(self) -> &'static str {
        match self {
            DocumentedError::None => "Delivered",
            DocumentedError::DnsQueryFailed => "DNS query failed",
            DocumentedError::ConnectionTimedOut => "Connection timed out",
            DocumentedError::ConnectionRefused => "Connection refused",
            DocumentedError::CannotConnect => "Cannot connect to remote server",
            DocumentedError::ConnectionClosed => "Connection was closed abruptly",
            DocumentedError::CertificateValidationFailed => "Certificate validation failed",
            DocumentedError::Other => "Other error",
        }
    }

    /// The value with this code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.code() == code)
    }
}

impl fmt::Display for DocumentedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocumentedError::None | DocumentedError::Other => f.write_str(self.name()),
            _ => write!(f, "450 {} {}", self.code(), self.name()),
        }
    }
}

/// What a scenario says about the error it reproduces.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reproduces {
    /// The documented error.
    pub error: DocumentedError,
    /// For `other`: the reply the sender sees, such as `452 4.2.2`.
    pub reply: Option<String>,
    /// What a typical sender logs.
    pub sender_log: String,
    /// How to fix the sending side, where there is a fix.
    pub fix: Option<String>,
}

impl Reproduces {
    /// A short label: `450 4.4.316 Connection refused`, `other: 452 4.2.2` or
    /// `none (delivered)`.
    pub fn label(&self) -> String {
        match (self.error, &self.reply) {
            (DocumentedError::Other, Some(reply)) => format!("other: {reply}"),
            (DocumentedError::Other, None) => "other".to_string(),
            (DocumentedError::None, _) => "none (delivered)".to_string(),
            (error, _) => error.to_string(),
        }
    }
}

/// The Markdown table of the built-in scenarios that the README carries: one row each, with
/// the error it reproduces and what the destination does, generated from the files.
pub fn markdown_table() -> String {
    let mut table =
        String::from("| scenario | reproduces | what the destination does |\n|---|---|---|\n");
    for name in builtin_names() {
        let scenario = builtin(name).expect("listed names exist");
        let label = scenario.reproduces.label();
        table.push_str(&format!("| `{name}` | {label} | {} |\n", scenario.summary));
    }
    table
}

/// How the SMTP listener treats connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerMode {
    /// Accept connections and run sessions.
    #[default]
    Accept,
    /// The port is bound but never listens, so the kernel answers each SYN with an RST.
    Refuse,
    /// The port listens with a full accept queue and never accepts, so SYNs go unanswered.
    Blackhole,
}

impl ListenerMode {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            ListenerMode::Accept => "accept",
            ListenerMode::Refuse => "refuse",
            ListenerMode::Blackhole => "blackhole",
        }
    }
}

/// Limits and policies of the receiver itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServerSettings {
    /// How the listener treats connections.
    pub listener: ListenerMode,
    /// How long the server waits for a command, or for more message data, before it answers
    /// 421 4.4.2 and closes.
    pub idle_timeout_ms: u64,
    /// The most recipients one transaction may have; the next gets 452 4.5.3.
    pub max_recipients: usize,
    /// The SIZE advertised in EHLO and enforced on message data.
    pub max_message_bytes: u64,
    /// The longest line accepted, counting its CRLF.
    pub max_line_octets: usize,
    /// How a bare LF or bare CR inside message data is treated.
    #[serde(serialize_with = "serialize_bare_newlines")]
    pub bare_newlines: BareNewlines,
    /// The most sessions at once under this scenario; past it a connection gets 421 4.7.0 at
    /// the greeting.
    pub max_sessions: Option<usize>,
    /// The seed every chance is drawn from.
    pub seed: u64,
}

fn serialize_bare_newlines<S: serde::Serializer>(
    v: &BareNewlines,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(match v {
        BareNewlines::Reject => "reject",
        BareNewlines::Accept => "accept",
    })
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listener: ListenerMode::Accept,
            idle_timeout_ms: 300_000,
            max_recipients: 100,
            max_message_bytes: 10 * 1024 * 1024,
            max_line_octets: 1000,
            bare_newlines: BareNewlines::Reject,
            max_sessions: None,
            seed: 0,
        }
    }
}

/// How the server uses TLS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsSettings {
    /// STARTTLS is offered in the EHLO reply.
    pub starttls: bool,
    /// The certificate variant presented.
    pub certificate: CertVariant,
    /// The protocol versions allowed.
    pub versions: TlsVersions,
    /// MAIL before STARTTLS gets 530 5.7.0.
    pub required: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            starttls: true,
            certificate: CertVariant::Valid,
            versions: TlsVersions::Any,
            required: false,
        }
    }
}

/// The lab DNS server a scenario runs: the zone it answers for and how it misbehaves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DnsSettings {
    /// The zone, `lab.test` by default; its MX leads to the SMTP listener.
    pub zone: String,
    /// The misbehaviour, or none for a healthy zone.
    pub fault: Option<DnsFault>,
    /// The TTL of every record, in seconds.
    pub ttl: u32,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            zone: crate::dns::DnsConfig::DEFAULT_ZONE.to_string(),
            fault: None,
            ttl: 300,
        }
    }
}

/// A whole scenario: its description, the receiver's settings and the faults.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// A short name, such as `mailbox-full`.
    pub name: String,
    /// A sentence on what the destination does.
    pub summary: String,
    /// The documented error it reproduces.
    pub reproduces: Reproduces,
    /// Limits and policies.
    pub server: ServerSettings,
    /// TLS behaviour.
    pub tls: TlsSettings,
    /// The lab DNS server, when the scenario has one.
    pub dns: Option<DnsSettings>,
    /// The faults, in the order they are considered.
    pub faults: Vec<Fault>,
    /// The TOML text it was loaded from, if it was.
    pub source: Option<String>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            name: "accept".to_string(),
            summary: "A healthy receiver that accepts every message.".to_string(),
            reproduces: Reproduces {
                error: DocumentedError::None,
                reply: None,
                sender_log: "status=sent (250 2.0.0 OK: queued as ...)".to_string(),
                fix: None,
            },
            server: ServerSettings::default(),
            tls: TlsSettings::default(),
            dns: None,
            faults: Vec::new(),
            source: None,
        }
    }
}

impl Scenario {
    /// Parses and validates a scenario from TOML text; `origin` names the text in errors (a file
    /// path, or something like `<inline>`).
    pub fn from_toml(source: &str, origin: &str) -> Result<Self, ScenarioError> {
        file::parse(source, origin)
    }

    /// Reads, parses and validates a scenario file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ScenarioError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| ScenarioError::io(&origin, &e))?;
        Self::from_toml(&source, &origin)
    }

    /// A built-in scenario by name, or else a file at that path.
    pub fn resolve(name_or_path: &str) -> Result<Self, ScenarioError> {
        if let Some(scenario) = builtin(name_or_path) {
            return Ok(scenario);
        }
        let path = Path::new(name_or_path);
        if path.exists() || name_or_path.contains('/') || name_or_path.ends_with(".toml") {
            return Self::from_file(path);
        }
        Err(ScenarioError::unknown_builtin(name_or_path))
    }

    /// Starts a scenario in code, healthy until faults are added.
    pub fn builder(name: impl Into<String>) -> ScenarioBuilder {
        let scenario = Scenario {
            name: name.into(),
            ..Scenario::default()
        };
        ScenarioBuilder { scenario }
    }

    /// The faults for one stage, in order.
    pub fn faults_at(&self, stage: Stage) -> impl Iterator<Item = &Fault> {
        self.faults.iter().filter(move |f| f.stage == stage)
    }

    /// True when some fault fires at `stage`.
    pub fn has_faults_at(&self, stage: Stage) -> bool {
        self.faults_at(stage).next().is_some()
    }

    /// True when the scenario cannot do what it says without TLS: a certificate other than the
    /// valid one, TLS required, a TLS version restriction, or a fault at a TLS stage or on a
    /// TLS session.
    pub fn needs_tls(&self) -> bool {
        let tls = &self.tls;
        let tls_fault = self.faults.iter().any(|f| {
            matches!(f.stage, Stage::Starttls | Stage::TlsHandshake) || f.when.tls == Some(true)
        });
        tls.starttls
            && (tls.certificate != CertVariant::Valid
                || tls.required
                || tls.versions != TlsVersions::Any
                || tls_fault)
    }
}

/// Builds a [`Scenario`] in code.
#[derive(Debug, Clone)]
pub struct ScenarioBuilder {
    scenario: Scenario,
}

impl ScenarioBuilder {
    /// Sets the sentence describing the destination.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.scenario.summary = summary.into();
        self
    }

    /// Declares the documented error reproduced.
    pub fn reproduces(mut self, error: DocumentedError, sender_log: impl Into<String>) -> Self {
        self.scenario.reproduces = Reproduces {
            error,
            reply: None,
            sender_log: sender_log.into(),
            fix: None,
        };
        self
    }

    /// Adds a fault after those already added.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.scenario.faults.push(fault);
        self
    }

    /// Changes the receiver's settings.
    pub fn server(mut self, settings: impl FnOnce(&mut ServerSettings)) -> Self {
        settings(&mut self.scenario.server);
        self
    }

    /// Changes the TLS settings.
    pub fn tls(mut self, settings: impl FnOnce(&mut TlsSettings)) -> Self {
        settings(&mut self.scenario.tls);
        self
    }

    /// The finished scenario.
    pub fn build(self) -> Scenario {
        self.scenario
    }
}
