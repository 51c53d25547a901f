//! Is each documented error reproduced on demand? This file answers that in one place: it
//! starts every built-in scenario, points `probe` at it the way a connector would meet it, and
//! checks that the verdict is the error the scenario file declares (and, for "other", the
//! reply it declares).
//!
//! All scenarios run at once, each with its own server, so the whole proof takes as long as
//! the slowest scenario (a greeting delayed by ten seconds).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_fault::probe::{self, ProbeOptions, ProbeReport, Roots, Target, TlsMode, TlsVersion};
use smtp_fault::scenario::{self, DocumentedError};
use smtp_fault::{Server, ServerConfig};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const LAB_CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/certs/ca.pem");

/// How a scenario is probed: what the connector is set to, and what happens before the probe.
#[derive(Clone, Copy, Default)]
struct Probe {
    tls: Option<TlsMode>,
    tls_version: Option<TlsVersion>,
    to: Option<&'static str>,
    send: bool,
    timeout_command_secs: Option<u64>,
    /// Sessions held open at the greeting while the probe runs.
    hold_sessions: usize,
    /// Probes sent first (each with a message when `send` is set), to use up a limit.
    warm_up: usize,
    /// Probe again, up to this many times, while the message is delivered: for faults drawn
    /// by chance, the first affected message is found by sending until it comes.
    until_refused: usize,
}

/// The probe each built-in scenario needs; every built-in must have an entry.
fn how(name: &str) -> Option<Probe> {
    let plain = Probe::default();
    let require_tls = Probe {
        tls: Some(TlsMode::Require),
        ..plain
    };
    let send = Probe {
        send: true,
        ..plain
    };
    let patient = Probe {
        timeout_command_secs: Some(1),
        ..plain
    };
    Some(match name {
        "accept" | "connection-refused" | "connection-timed-out" | "service-not-available" => plain,
        "close-on-connect" | "reset-on-connect" | "close-on-mail" | "ehlo-rejected" => plain,
        "starttls-refused" | "starttls-dropped" | "tls-dropped-after-handshake" => plain,
        "greylisting" | "flaky-first-two" | "outage-window" => plain,
        "greeting-timeout" | "tls-handshake-stall" => patient,
        "stall-after-data" => Probe {
            send: true,
            ..patient
        },
        "slow-greeting" => Probe {
            timeout_command_secs: Some(15),
            ..plain
        },
        "tls-not-offered" => require_tls,
        name if name.starts_with("cert-") => require_tls,
        "tls12-only" => Probe {
            tls_version: Some(TlsVersion::Tls13),
            ..require_tls
        },
        "tls13-only" => Probe {
            tls_version: Some(TlsVersion::Tls12),
            ..require_tls
        },
        "tls-required" => Probe {
            tls: Some(TlsMode::Off),
            ..plain
        },
        "mailbox-full" => Probe {
            to: Some("someone@full.example"),
            ..plain
        },
        "unknown-user" => Probe {
            to: Some("someone@nobody.example"),
            ..plain
        },
        "reset-during-body" | "close-after-final-dot" | "message-rejected" => send,
        "connection-cap" => Probe {
            hold_sessions: 2,
            ..plain
        },
        "rate-limited" => Probe {
            warm_up: 3,
            ..plain
        },
        "random-deferrals" => Probe {
            until_refused: 20,
            ..send
        },
        name if name.starts_with("dns-") => plain,
        _ => return None,
    })
}

fn options(server: &Server, how: Probe) -> ProbeOptions {
    let smtp = server.smtp_addr();
    let mut options = match server.dns_addr() {
        // With a lab zone the connector starts from the domain, as it would in production.
        Some(dns) => ProbeOptions {
            dns: Some(dns),
            dns_timeout: Duration::from_secs(1),
            dns_attempts: 1,
            ..ProbeOptions::new(Target::Domain("lab.test".to_string()), smtp.port())
        },
        None => ProbeOptions::new(Target::Address(smtp.ip()), smtp.port()),
    };
    let roots = probe::load_ca_file(LAB_CA.as_ref()).expect("the lab CA loads");
    options.roots = Roots::Store(Arc::new(roots));
    options.hostname = Some("mx.lab.test".to_string());
    options.helo = Some("connector.lab.test".to_string());
    options.timeout_connect = Duration::from_secs(1);
    options.timeout_command = Duration::from_secs(how.timeout_command_secs.unwrap_or(5));
    options.tls = how.tls.unwrap_or_default();
    options.tls_version = how.tls_version.unwrap_or_default();
    options.send = how.send;
    if let Some(to) = how.to {
        options.to = Some(to.to_string());
    }
    options
}

/// Opens a session and waits for its greeting, so that it counts against a session cap.
async fn held_session(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut greeting = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut greeting))
        .await
        .expect("a greeting in time")
        .expect("read");
    assert!(
        greeting[..n].starts_with(b"220 "),
        "{:?}",
        String::from_utf8_lossy(&greeting[..n])
    );
    stream
}

/// Starts `name`, probes it as `how` says, and returns the verdict's report.
async fn reproduce(name: &'static str, how: Probe) -> ProbeReport {
    let scenario = scenario::builtin(name).expect("a built-in scenario");
    let config = ServerConfig {
        scenario,
        ..ServerConfig::default()
    };
    let server = Server::start(config).await.expect("the server starts");
    let options = options(&server, how);

    let mut held = Vec::new();
    for _ in 0..how.hold_sessions {
        held.push(held_session(server.smtp_addr()).await);
    }
    for _ in 0..how.warm_up {
        let report = probe::probe(&options).await;
        assert_eq!(
            report.verdict,
            DocumentedError::None,
            "{name} warm-up:\n{}",
            report.to_text()
        );
    }
    let mut report = probe::probe(&options).await;
    for _ in 0..how.until_refused {
        if report.verdict != DocumentedError::None {
            break;
        }
        report = probe::probe(&options).await;
    }
    drop(held);
    server.shutdown().await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_built_in_scenario_reproduces_the_error_it_declares() {
    let names = scenario::builtin_names();
    let unprobed: Vec<&str> = names.iter().copied().filter(|n| how(n).is_none()).collect();
    assert!(
        unprobed.is_empty(),
        "scenarios with no probe set-up here: {unprobed:?}"
    );

    let mut runs = tokio::task::JoinSet::new();
    for name in names {
        let how = how(name).expect("checked above");
        runs.spawn(async move { (name, reproduce(name, how).await) });
    }

    let mut failures = Vec::new();
    let mut checked = 0;
    while let Some(run) = runs.join_next().await {
        let (name, report) = run.expect("a probe task");
        let declared = scenario::builtin(name).expect("built-in").reproduces;
        checked += 1;
        if report.verdict != declared.error {
            failures.push(format!(
                "{name}: declares {}, probe says {}\n{}",
                declared.label(),
                report.verdict_line(),
                report.to_text()
            ));
            continue;
        }
        if let Some(reply) = &declared.reply {
            let last = report.last_reply.clone().unwrap_or_default();
            if !last.starts_with(reply.as_str()) {
                failures.push(format!(
                    "{name}: declares reply {reply}, the last reply was {last:?}"
                ));
            }
        }
        // The exit status the README documents for the declared error; for "other", the class
        // of the reply the scenario declares.
        let expected_exit = match declared.error {
            DocumentedError::None => 0,
            DocumentedError::DnsQueryFailed => 12,
            DocumentedError::ConnectionTimedOut => 15,
            DocumentedError::ConnectionRefused => 16,
            DocumentedError::CannotConnect => 17,
            DocumentedError::ConnectionClosed => 18,
            DocumentedError::CertificateValidationFailed => 20,
            DocumentedError::Other => match declared.reply.as_deref().map(|r| &r[..1]) {
                Some("4") => 30,
                _ => 31,
            },
        };
        if report.exit_code() != expected_exit {
            failures.push(format!(
                "{name}: exit status {} for {}, expected {expected_exit}",
                report.exit_code(),
                declared.label()
            ));
        }
    }
    assert_eq!(checked, scenario::builtin_names().len());
    assert!(
        failures.is_empty(),
        "{} of {checked} scenarios differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
