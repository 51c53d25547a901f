//! The sending side: `smtp-fault probe TARGET` plays a sending connector against any SMTP
//! destination and gives its verdict as the documented connector error a cloud connector would
//! report.
//!
//! Where the rest of the crate is a destination that fails on purpose, this module is the
//! sender that meets such failures and names them. Pointed at a real destination it answers the
//! question an administrator asks after a bounce: "what does a connector see when it delivers
//! here, right now?"
//!
//! [`probe`] resolves the target, connects, and runs a session the way a connector does: the
//! greeting, EHLO (HELO if EHLO is refused), STARTTLS, EHLO again, MAIL FROM, RCPT TO and, when
//! asked to send, DATA, a small test message and the final dot; otherwise it stops after RCPT
//! with RSET and QUIT. The SMTP client is written by hand over tokio so that it sees each failure
//! as it happened on the wire (an RST is not a FIN is not silence), which is exactly what tells
//! the documented errors apart.
//!
//! # Verdicts
//!
//! - `450 4.4.312` DNS query failed: NXDOMAIN, no MX and no address records, SERVFAIL,
//!   REFUSED, or the resolver did not answer.
//! - `450 4.4.315` Connection timed out: the TCP connection was not answered within
//!   `--timeout-connect`.
//! - `450 4.4.316` Connection refused: the SYN was answered with an RST.
//! - `450 4.4.317` Cannot connect to remote server: an error greeting; EHLO and HELO refused;
//!   TLS required and STARTTLS not offered; STARTTLS refused; a TLS handshake failure not about
//!   the certificate (no common version, a handshake alert); a greeting that is not SMTP.
//! - `450 4.4.318` Connection was closed abruptly: FIN, RST or silence part-way: a reset as the
//!   connection opens, no greeting, a drop after EHLO or MAIL, a drop or stall during the TLS
//!   handshake, the message body or after the final dot; or a reply that breaks the protocol
//!   once the session is under way.
//! - `450 4.7.320` Certificate validation failed: `--tls require` and the certificate is
//!   expired, not yet valid, for another name, self-signed or from an untrusted issuer.
//! - other: any other 4xx or 5xx reply, to MAIL, RCPT, DATA or the final dot, quoted as given;
//!   or a null MX.
//! - delivered: the message was accepted (`--send`), or the recipient was (`would be
//!   delivered`).
//!
//! In opportunistic mode (the default) a certificate that fails validation is still used, as
//! opportunistic senders do, and what is wrong with it is reported as a warning. Once STARTTLS is
//! offered the probe commits to it in both modes: a refused STARTTLS or a failed handshake is a
//! verdict, not a reason to carry on in plain text, because that is the failure a connector
//! reports.
//!
//! # Several hosts
//!
//! A domain's MX hosts are tried in order of preference (hosts of equal preference in the order
//! the answer lists them), and each host's addresses IPv4 first, as a connector tries them: on a
//! failure to connect (refused, timed out, unreachable) or to resolve a host, the next address or
//! host is tried. Any failure after the connection is established ends the probe there. When
//! nothing succeeds, the verdict is the last failure met. At most [`MAX_ATTEMPTS`] addresses are
//! tried.
//!
//! # Exit status
//!
//! | status | meaning |
//! |---|---|
//! | 0 | delivered, or would be delivered |
//! | 12 | 4.4.312 DNS query failed |
//! | 15 | 4.4.315 Connection timed out |
//! | 16 | 4.4.316 Connection refused |
//! | 17 | 4.4.317 Cannot connect to remote server |
//! | 18 | 4.4.318 Connection was closed abruptly |
//! | 20 | 4.7.320 Certificate validation failed |
//! | 30 | other, with a 4xx reply |
//! | 31 | other, with a 5xx reply (or a null MX) |
//! | 2 | usage error |
//! | 3 | local error, such as an unreadable `--ca` file |
//!
//! Implicit TLS (port 465) is not probed: STARTTLS on port 25 is what connectors use.

mod args;
mod client;
mod message;
mod reply;
mod report;
mod resolve;
mod target;
mod tls;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use args::{ArgsError, EXIT_LOCAL, EXIT_USAGE, ProbeArgs, run_cli, run_cli_blocking};
pub use reply::{MAX_LINE_OCTETS, MAX_REPLY_LINES, MAX_REPLY_OCTETS, ReplyError, ServerReply};
pub use report::{Direction, ProbeReport, ProbeStage, TranscriptLine, causes_and_fixes};
pub use target::{Target, TargetError};
pub use tls::{Roots, RootsError, SYSTEM_BUNDLE, TlsVersion, load_ca_file, system_roots};

use client::{Failure, Findings, Success};
use report::Transcript;
use resolve::{MxAnswer, Resolver};

use crate::scenario::DocumentedError;

/// The most addresses one probe connects to, over all hosts, so that a domain with many MX
/// hosts or addresses cannot keep it going for long.
pub const MAX_ATTEMPTS: usize = 10;

/// The name the probe gives in EHLO when the machine's own name is not a fully qualified one.
pub const FALLBACK_HELO: &str = "probe.smtp-fault.test";

/// How the probe uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TlsMode {
    /// TLS must be offered and the certificate must validate.
    Require,
    /// STARTTLS when offered; a certificate that fails validation is used, with a warning.
    #[default]
    Opportunistic,
    /// Never STARTTLS: plain text only.
    Off,
}

/// What to probe and how.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The destination.
    pub target: Target,
    /// The SMTP port on every host.
    pub port: u16,
    /// How TLS is used.
    pub tls: TlsMode,
    /// The TLS versions offered.
    pub tls_version: TlsVersion,
    /// The roots certificates are checked against.
    pub roots: Roots,
    /// The name the certificate must be for; by default the MX host's name, or the target.
    pub hostname: Option<String>,
    /// The name given in EHLO; by default the machine's name, or [`FALLBACK_HELO`].
    pub helo: Option<String>,
    /// The envelope sender.
    pub from: String,
    /// The recipient; by default [`Target::default_recipient`].
    pub to: Option<String>,
    /// Send a test message after RCPT, instead of stopping there.
    pub send: bool,
    /// How long a TCP connection may take to open.
    pub timeout_connect: Duration,
    /// How long any one reply, write or TLS handshake may take.
    pub timeout_command: Duration,
    /// The DNS server to ask, instead of the system's.
    pub dns: Option<SocketAddr>,
    /// How long one DNS query may take.
    pub dns_timeout: Duration,
    /// How many times a DNS query is tried.
    pub dns_attempts: usize,
}

impl Default for ProbeOptions {
    /// Probes 127.0.0.1 port 25 with opportunistic TLS, stopping after RCPT.
    fn default() -> Self {
        Self {
            target: Target::Address(IpAddr::from([127, 0, 0, 1])),
            port: 25,
            tls: TlsMode::Opportunistic,
            tls_version: TlsVersion::Any,
            roots: Roots::System,
            hostname: None,
            helo: None,
            from: "probe@smtp-fault.test".to_string(),
            to: None,
            send: false,
            timeout_connect: Duration::from_secs(10),
            timeout_command: Duration::from_secs(30),
            dns: None,
            dns_timeout: Duration::from_secs(5),
            dns_attempts: 2,
        }
    }
}

impl ProbeOptions {
    /// The options for probing `target` on `port`, the rest left at their defaults.
    pub fn new(target: Target, port: u16) -> Self {
        Self {
            target,
            port,
            ..Self::default()
        }
    }

    /// The name sent in EHLO.
    pub fn helo_name(&self) -> String {
        self.helo.clone().unwrap_or_else(machine_name)
    }
}

/// The machine's host name if it is fully qualified, else [`FALLBACK_HELO`]: a receiver may
/// refuse a bare name in EHLO, and the probe should not fail for a reason of its own making.
fn machine_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_string())
        .find(|name| name.contains('.') && target::host_name(name).is_ok())
        .unwrap_or_else(|| FALLBACK_HELO.to_string())
}

/// A host to try: its name, if it has one, and where its addresses come from.
struct Host {
    name: Option<String>,
    addresses: Addresses,
}

enum Addresses {
    Known(Vec<IpAddr>),
    Lookup,
}

/// Probes the destination and reports what a sending connector would see.
pub async fn probe(opts: &ProbeOptions) -> ProbeReport {
    let mut log = Transcript::new();
    let mut findings = Findings::default();
    let mut tried = Vec::new();
    let result = run(opts, &mut log, &mut findings, &mut tried).await;

    let (verdict, stage, detail, delivered) = match result {
        Ok(Success::Delivered) => (
            DocumentedError::None,
            ProbeStage::Quit,
            "the message was accepted".to_string(),
            true,
        ),
        Ok(Success::WouldDeliver) => (
            DocumentedError::None,
            ProbeStage::Quit,
            "the recipient was accepted; no message was sent (use --send to send one)".to_string(),
            false,
        ),
        Err(f) => (f.verdict, f.stage, f.detail, false),
    };
    ProbeReport {
        verdict,
        detail,
        stage,
        last_reply: findings.last_reply,
        transcript: log.finish(),
        delivered,
        tried,
        warnings: findings.warnings,
    }
}

async fn run(
    opts: &ProbeOptions,
    log: &mut Transcript,
    findings: &mut Findings,
    tried: &mut Vec<String>,
) -> Result<Success, Failure> {
    let dns_failure =
        |detail: String| Failure::new(DocumentedError::DnsQueryFailed, ProbeStage::Resolve, detail);
    let resolver = || Resolver::new(opts.dns, opts.dns_timeout, opts.dns_attempts);

    let (hosts, resolver) = match &opts.target {
        Target::Address(ip) => (
            vec![Host {
                name: None,
                addresses: Addresses::Known(vec![*ip]),
            }],
            None,
        ),
        Target::SmartHost(name) => (
            vec![Host {
                name: Some(name.clone()),
                addresses: Addresses::Lookup,
            }],
            Some(resolver().map_err(|f| dns_failure(f.detail))?),
        ),
        Target::Domain(domain) => {
            let resolver = resolver().map_err(|f| dns_failure(f.detail))?;
            log.note(format!("MX {domain}?"));
            let hosts = match resolver.mx(domain).await {
                Err(f) => {
                    log.note(f.detail.clone());
                    return Err(dns_failure(f.detail));
                }
                Ok(MxAnswer::NullMx) => {
                    let detail = format!(
                        "{domain} publishes a null MX (RFC 7505): it accepts no mail at all"
                    );
                    log.note(detail.clone());
                    return Err(Failure::new(
                        DocumentedError::Other,
                        ProbeStage::Resolve,
                        detail,
                    ));
                }
                Ok(MxAnswer::NoMx) => {
                    log.note(format!(
                        "no MX records; {domain} is its own mail exchanger (RFC 5321 section 5.1)"
                    ));
                    vec![Host {
                        name: Some(domain.clone()),
                        addresses: Addresses::Lookup,
                    }]
                }
                Ok(MxAnswer::Exchangers(exchangers)) => {
                    let list: Vec<String> =
                        exchangers.iter().map(|(p, n)| format!("{p} {n}")).collect();
                    log.note(format!("MX: {}", list.join(", ")));
                    exchangers
                        .into_iter()
                        .map(|(_, name)| Host {
                            name: Some(name),
                            addresses: Addresses::Lookup,
                        })
                        .collect()
                }
            };
            (hosts, Some(resolver))
        }
    };

    let mut last_failure = None;
    let mut attempts = 0;
    for host in hosts.iter().take(MAX_ATTEMPTS) {
        let addresses = match (&host.addresses, &host.name, &resolver) {
            (Addresses::Known(addresses), _, _) => addresses.clone(),
            (Addresses::Lookup, Some(name), Some(resolver)) => {
                log.note(format!("A/AAAA {name}?"));
                match resolver.addresses(name).await {
                    Ok(addresses) => {
                        let list: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
                        log.note(format!("{name}: {}", list.join(", ")));
                        addresses
                    }
                    Err(f) => {
                        log.note(f.detail.clone());
                        tried.push(format!("{name}: {}", f.detail));
                        last_failure = Some(dns_failure(f.detail));
                        continue;
                    }
                }
            }
            (Addresses::Lookup, _, _) => unreachable!("only named hosts are looked up"),
        };

        for ip in addresses {
            if attempts == MAX_ATTEMPTS {
                log.note(format!("stopping after {MAX_ATTEMPTS} addresses"));
                break;
            }
            attempts += 1;

            let addr = SocketAddr::new(ip, opts.port);
            let label = match &host.name {
                Some(name) => format!("{name}[{ip}]:{}", opts.port),
                None => addr.to_string(),
            };
            let tls_name = opts
                .hostname
                .clone()
                .or_else(|| host.name.clone())
                .unwrap_or_else(|| ip.to_string());

            // The last reply belongs to the attempt that decides the verdict, not an earlier one.
            findings.last_reply = None;
            match client::attempt(opts, addr, &tls_name, log, findings).await {
                Ok(success) => {
                    tried.push(format!("{label}: accepted"));
                    return Ok(success);
                }
                Err(failure) if failure.stage == ProbeStage::Connect => {
                    tried.push(format!("{label}: {}", failure.detail));
                    last_failure = Some(failure);
                }
                Err(failure) => {
                    tried.push(format!("{label}: {}", failure.detail));
                    return Err(failure);
                }
            }
        }
    }

    Err(last_failure
        .unwrap_or_else(|| dns_failure(format!("no address to try for {}", opts.target))))
}
