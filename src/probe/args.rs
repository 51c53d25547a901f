//! The `probe` subcommand's arguments and its entry point, ready for the command line to mount.
//!
//! [`ProbeArgs`] derives `clap::Args`; [`run_cli`] turns it into [`ProbeOptions`], runs the
//! probe, prints the report and returns the exit status, and [`run_cli_blocking`] does the same
//! on a runtime of its own for a synchronous `main`:
//!
//! ```text
//! /// Play a sending connector against a destination and name the error it would report.
//! Probe(smtp_fault::probe::ProbeArgs),
//! // ...
//! Commands::Probe(args) => Ok(smtp_fault::probe::run_cli_blocking(args)),
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::target::host_name;
use super::tls::{Roots, load_ca_file, system_roots};
use super::{ProbeOptions, Target, TlsMode, TlsVersion, probe};

/// The exit status for a usage error, as clap uses.
pub const EXIT_USAGE: i32 = 2;

/// The exit status for a local error, such as a `--ca` file that cannot be read.
pub const EXIT_LOCAL: i32 = 3;

const AFTER_HELP: &str = "\
TARGET is a mail domain (its MX hosts are tried in preference order; a domain with no MX is its \
own mail exchanger), a host name given with --smart-host (only its address records are used), or \
an IP address with or without a port. A name without --smart-host is always treated as a domain.

Examples:
  smtp-fault probe 127.0.0.1:2525
  smtp-fault probe [::1]:2525 --tls require --ca certs/ca.pem --hostname mx.lab.test
  smtp-fault probe lab.test --dns 127.0.0.1:5353 --send
  smtp-fault probe relay.lab.test --smart-host --port 587 --json
  smtp-fault probe 127.0.0.1:2525 --to x@full.example       # other: 452 4.2.2 Mailbox full

Exit status:
   0  delivered, or would be delivered (without --send)
  12  450 4.4.312 DNS query failed
  15  450 4.4.315 Connection timed out
  16  450 4.4.316 Connection refused
  17  450 4.4.317 Cannot connect to remote server
  18  450 4.4.318 Connection was closed abruptly
  20  450 4.7.320 Certificate validation failed
  30  other error, with a 4xx reply
  31  other error, with a 5xx reply
   2  usage error
   3  local error (such as an unreadable --ca file)

With several MX hosts or addresses, a failure to connect moves on to the next one, as a \
connector does; the verdict is the last failure when none succeeds.";

/// Play a sending connector against an SMTP destination and name the error it would report.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct ProbeArgs {
    /// What to probe (given as `help` text, since rustdoc would read its brackets as a link).
    #[arg(
        help = "A domain, a host name with --smart-host, or an IP address such as \
                127.0.0.1:2525 or [::1]:2525"
    )]
    pub target: String,

    /// Treat TARGET as a smart host: use its address records, with no MX lookup.
    #[arg(long)]
    pub smart_host: bool,

    /// The SMTP port [default: 25]. A port in TARGET is the same thing; give only one.
    #[arg(long)]
    pub port: Option<u16>,

    /// How to use STARTTLS.
    #[arg(long, value_enum, default_value_t = TlsMode::Opportunistic)]
    pub tls: TlsMode,

    /// Offer only this TLS version, to reproduce an old or a strict sender.
    #[arg(long, value_enum, default_value_t = TlsVersion::Any)]
    pub tls_version: TlsVersion,

    /// Trust the roots in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// The name the certificate must be for [default: the MX host's name, or TARGET].
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// The name to give in EHLO [default: this machine's name if fully qualified, else
    /// probe.smtp-fault.test].
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,

    /// The envelope sender.
    #[arg(long, value_name = "ADDRESS", default_value = "probe@smtp-fault.test")]
    pub from: String,

    /// The recipient.
    #[arg(
        long,
        value_name = "ADDRESS",
        help = "The recipient [default: postmaster@TARGET, or probe@lab.test for an IP address]"
    )]
    pub to: Option<String>,

    /// Send a small test message; without it the probe stops after RCPT with RSET and QUIT.
    #[arg(long)]
    pub send: bool,

    /// Seconds to wait for a TCP connection to open.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub timeout_connect: Duration,

    /// Seconds to wait for each reply, write and TLS handshake.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub timeout_command: Duration,

    /// Seconds to wait for each DNS query.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_secs)]
    pub timeout_dns: Duration,

    /// The DNS server to ask (UDP and TCP), such as 127.0.0.1:5353 [default: the system's].
    #[arg(long, value_name = "ADDR", value_parser = parse_dns_server)]
    pub dns: Option<SocketAddr>,

    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Why arguments could not become options.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// The arguments contradict each other or name something invalid.
    #[error("{0}")]
    Usage(String),
    /// Something on this machine is missing, such as the `--ca` file.
    #[error("{0}")]
    Local(String),
}

impl ArgsError {
    /// The exit status this error calls for.
    pub fn exit_code(&self) -> i32 {
        match self {
            ArgsError::Usage(_) => EXIT_USAGE,
            ArgsError::Local(_) => EXIT_LOCAL,
        }
    }
}

impl ProbeArgs {
    /// The probe options these arguments ask for. Trusted roots are loaded here, so that an
    /// unreadable `--ca` is reported before any traffic is sent.
    pub fn to_options(&self) -> Result<ProbeOptions, ArgsError> {
        let (target, target_port) = Target::parse(&self.target, self.smart_host)
            .map_err(|e| ArgsError::Usage(e.to_string()))?;
        let port = match (target_port, self.port) {
            (Some(_), Some(_)) => {
                return Err(ArgsError::Usage(format!(
                    "target {:?} has a port and --port gives another; give only one",
                    self.target
                )));
            }
            (Some(port), None) | (None, Some(port)) => port,
            (None, None) => 25,
        };
        if let Some(name) = &self.hostname
            && name.parse::<IpAddr>().is_err()
        {
            host_name(name).map_err(|reason| {
                ArgsError::Usage(format!("invalid --hostname {name:?}: {reason}"))
            })?;
        }
        if let Some(name) = &self.helo {
            host_name(name.trim_start_matches('[').trim_end_matches(']'))
                .map_err(|reason| ArgsError::Usage(format!("invalid --helo {name:?}: {reason}")))?;
        }

        mailbox("--from", &self.from, true)?;
        if let Some(to) = &self.to {
            mailbox("--to", to, false)?;
        }

        let roots = match (&self.ca, self.tls) {
            (Some(path), _) => Roots::Store(Arc::new(
                load_ca_file(path).map_err(|e| ArgsError::Local(e.to_string()))?,
            )),
            (None, TlsMode::Off) => Roots::System,
            (None, _) => Roots::Store(Arc::new(
                system_roots().map_err(|e| ArgsError::Local(e.to_string()))?,
            )),
        };

        Ok(ProbeOptions {
            target,
            port,
            tls: self.tls,
            tls_version: self.tls_version,
            roots,
            hostname: self.hostname.clone(),
            helo: self.helo.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            send: self.send,
            timeout_connect: self.timeout_connect,
            timeout_command: self.timeout_command,
            dns: self.dns,
            dns_timeout: self.timeout_dns,
            ..ProbeOptions::default()
        })
    }
}

/// Runs the probe these arguments ask for, prints its report on standard output (errors in the
/// arguments on standard error) and returns the exit status.
pub async fn run_cli(args: ProbeArgs) -> i32 {
    let opts = match args.to_options() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };

    let report = probe(&opts).await;
    if args.json {
        match serde_json::to_string(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: cannot write the report as json: {e}");
                return EXIT_LOCAL;
            }
        }
    } else {
        print!("{}", report.to_text());
    }
    report.exit_code()
}

/// Checks that `address` can go between the brackets of MAIL FROM or RCPT TO as it is: no
/// spaces, controls or brackets, and an `@` (the sender may be empty, for the null path).
fn mailbox(option: &str, address: &str, may_be_empty: bool) -> Result<(), ArgsError> {
    if address.is_empty() && may_be_empty {
        return Ok(());
    }
    let bad = |reason: &str| ArgsError::Usage(format!("invalid {option} {address:?}: {reason}"));
    if let Some(c) = address
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || *c == '<' || *c == '>')
    {
        return Err(bad(&format!("{c:?} is not allowed in an address")));
    }
    match address.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(()),
        _ => Err(bad("expected local-part@domain")),
    }
}

/// [`run_cli`] on a single-threaded runtime of its own, for a `main` that has none; the exit
/// status comes back as an [`ExitCode`].
pub fn run_cli_blocking(args: ProbeArgs) -> ExitCode {
    let status = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run_cli(args)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            EXIT_LOCAL
        }
    };
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}

/// A number of seconds, whole or not, above zero and at most a day.
fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{text:?} is not between 0 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A DNS server: an address with a port, or a bare address meaning port 53.
fn parse_dns_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{text:?} is not an address such as 127.0.0.1:5353 or [::1]:53"))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ProbeArgs,
    }

    fn args(argv: &[&str]) -> ProbeArgs {
        let argv = std::iter::once("probe").chain(argv.iter().copied());
        Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{e}"))
            .args
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_follow_the_documented_values() {
        let opts = args(&["127.0.0.1:2525", "--tls", "off"])
            .to_options()
            .unwrap();
        assert_eq!(opts.port, 2525);
        assert_eq!(opts.tls, TlsMode::Off);
        assert_eq!(opts.from, "probe@smtp-fault.test");
        assert_eq!(opts.timeout_connect, Duration::from_secs(10));
        assert_eq!(opts.timeout_command, Duration::from_secs(30));
        assert!(!opts.send);
        assert_eq!(opts.target.default_recipient(), "probe@lab.test");
    }

    #[test]
    fn a_port_in_the_target_and_another_in_port_is_a_usage_error() {
        let error = args(&["127.0.0.1:2525", "--port", "25", "--tls", "off"])
            .to_options()
            .unwrap_err();
        assert_eq!(error.exit_code(), EXIT_USAGE);
    }

    #[test]
    fn addresses_that_would_break_a_command_line_are_usage_errors() {
        for bad in [
            &["127.0.0.1", "--tls", "off", "--to", "a@b\r\nRCPT TO:<c@d>"][..],
            &["127.0.0.1", "--tls", "off", "--to", "<a@b>"],
            &["127.0.0.1", "--tls", "off", "--from", "nobody"],
        ] {
            let error = args(bad).to_options().unwrap_err();
            assert_eq!(error.exit_code(), EXIT_USAGE, "{bad:?}");
        }
        let null_sender = args(&["127.0.0.1", "--tls", "off", "--from", ""]);
        assert_eq!(null_sender.to_options().unwrap().from, "");
    }

    #[test]
    fn an_unreadable_ca_file_is_a_local_error() {
        let error = args(&["127.0.0.1", "--ca", "/nonexistent/ca.pem"])
            .to_options()
            .unwrap_err();
        assert_eq!(error.exit_code(), EXIT_LOCAL);
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn timeouts_and_dns_servers_parse_in_their_documented_forms() {
        assert_eq!(parse_secs("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("soon").is_err());
        assert_eq!(
            parse_dns_server("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(parse_dns_server("::1"), Ok("[::1]:53".parse().unwrap()));
        let smart = args(&["relay.lab.test", "--smart-host", "--tls", "off"])
            .to_options()
            .unwrap();
        assert_eq!(smart.target, Target::SmartHost("relay.lab.test".into()));
        assert_eq!(smart.port, 25);
    }
}
