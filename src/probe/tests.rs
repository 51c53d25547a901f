//! The probe against the fault server, in-process, one behaviour at a time: verdicts, stages,
//! details and exit statuses. `tests/proof.rs` runs every built-in scenario in one place.
//! DNS is tested against a small responder on a loopback socket that each test binds itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX};
use hickory_proto::rr::{Name, RData, Record};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::task::JoinHandle;

use super::*;
use crate::scenario::{Scenario, builtin};
use crate::{Server, ServerConfig};

const LAB_CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/certs/ca.pem");

fn lab_roots() -> Roots {
    Roots::Store(Arc::new(load_ca_file(LAB_CA.as_ref()).unwrap()))
}

async fn start(scenario: Scenario, hostname: &str) -> Server {
    Server::start(ServerConfig {
        scenario,
        hostname: hostname.to_string(),
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

/// Options for probing `addr` directly, trusting the lab CA for `mx.lab.test`.
fn options_for(addr: SocketAddr) -> ProbeOptions {
    ProbeOptions {
        roots: lab_roots(),
        hostname: Some("mx.lab.test".to_string()),
        helo: Some("probe.lab.test".to_string()),
        timeout_connect: Duration::from_secs(5),
        timeout_command: Duration::from_secs(5),
        ..ProbeOptions::new(Target::Address(addr.ip()), addr.port())
    }
}

/// Starts the built-in scenario `name` for `mx.lab.test`, with options for probing it.
async fn start_builtin(name: &str) -> (Server, ProbeOptions) {
    let scenario = builtin(name).unwrap_or_else(|| panic!("no built-in scenario {name}"));
    let server = start(scenario, "mx.lab.test").await;
    let opts = options_for(server.smtp_addr());
    (server, opts)
}

/// Asserts the verdict, showing the whole report when it is not the one expected.
fn assert_verdict(report: &ProbeReport, expected: DocumentedError) {
    assert_eq!(report.verdict, expected, "{}", report.to_text());
}

/// Asserts that the report's detail mentions `needle`.
fn assert_detail(report: &ProbeReport, needle: &str) {
    assert!(report.detail.contains(needle), "{}", report.detail);
}

/// Asserts that at most `limit` has passed since `started`.
fn assert_within(started: Instant, limit: Duration) {
    let took = started.elapsed();
    assert!(took < limit, "took {took:?}, over {limit:?}");
}

/// The probe arguments a command line gives.
fn probe_args(argv: &[&str]) -> ProbeArgs {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ProbeArgs,
    }

    Cli::try_parse_from(argv).unwrap().args
}

fn require_lab_tls(opts: &mut ProbeOptions) {
    opts.tls = TlsMode::Require;
}

/// Starts the built-in scenario `name`, probes it with options changed by `adjust`, and checks
/// that the verdict is the error the scenario declares, and for "other" the reply it declares.
async fn reproduce(name: &str, adjust: impl FnOnce(&mut ProbeOptions)) -> ProbeReport {
    let (server, mut opts) = start_builtin(name).await;
    let expected = server.scenario().reproduces.clone();
    adjust(&mut opts);

    let report = probe(&opts).await;
    assert_eq!(
        report.verdict,
        expected.error,
        "{name}:\n{}",
        report.to_text()
    );
    if let Some(reply) = &expected.reply {
        let last = report.last_reply.as_deref().unwrap_or_default();
        assert!(
            last.starts_with(reply.as_str()),
            "{name}: last reply {last:?}"
        );
    }
    report
}

#[tokio::test]
async fn a_healthy_receiver_would_take_the_message() {
    let report = reproduce("accept", |_| {}).await;
    assert!(!report.delivered);
    assert_eq!(report.verdict_line(), "would be delivered");
    assert_eq!(report.exit_code(), 0);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let sent: Vec<&str> = client_lines(&report);
    assert_eq!(
        sent,
        [
            "EHLO probe.lab.test",
            "STARTTLS",
            "EHLO probe.lab.test",
            "MAIL FROM:<probe@smtp-fault.test>",
            "RCPT TO:<probe@lab.test>",
            "RSET",
            "QUIT"
        ]
    );
}

#[tokio::test]
async fn a_healthy_receiver_takes_a_sent_message_and_stores_it() {
    let (server, mut opts) = start_builtin("accept").await;
    opts.send = true;
    require_lab_tls(&mut opts);

    let report = probe(&opts).await;
    assert_verdict(&report, DocumentedError::None);
    assert!(report.delivered);
    assert_eq!(report.verdict_line(), "delivered");
    assert!(report.last_reply.as_deref().unwrap().starts_with("250"));
    let stored = server
        .wait_for_messages(1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
}

#[tokio::test]
async fn a_port_that_refuses_is_connection_refused() {
    let report = reproduce("connection-refused", |_| {}).await;
    assert_eq!(report.stage, ProbeStage::Connect);
    assert_eq!(report.exit_code(), 16);
    assert_eq!(report.last_reply, None);
}

#[tokio::test]
async fn a_connection_nobody_answers_is_connection_timed_out() {
    let (_server, mut opts) = start_builtin("connection-timed-out").await;
    opts.timeout_connect = Duration::from_secs(1);

    let started = Instant::now();
    let report = probe(&opts).await;
    assert_verdict(&report, DocumentedError::ConnectionTimedOut);
    assert_eq!(report.stage, ProbeStage::Connect);
    assert_eq!(report.exit_code(), 15);
    assert_within(started, Duration::from_secs(3));
}

#[tokio::test]
async fn a_greeting_that_never_comes_is_a_closed_connection() {
    let report = reproduce("greeting-timeout", |o| {
        o.timeout_command = Duration::from_secs(1);
    })
    .await;
    assert_eq!(report.stage, ProbeStage::Greeting);
    assert_detail(&report, "no reply within 1 s");
}

#[tokio::test]
async fn an_error_greeting_is_cannot_connect_with_the_reply() {
    let report = reproduce("service-not-available", |_| {}).await;
    assert_eq!(report.stage, ProbeStage::Greeting);
    assert!(
        report
            .last_reply
            .as_deref()
            .unwrap()
            .starts_with("421 4.3.2")
    );
    // After a 421 the server has hung up, so the probe does not say QUIT.
    assert!(client_lines(&report).is_empty());
}

#[tokio::test]
async fn required_tls_that_is_not_offered_is_cannot_connect() {
    let report = reproduce("tls-not-offered", require_lab_tls).await;
    assert_eq!(report.stage, ProbeStage::Starttls);
}

#[tokio::test]
async fn a_close_before_the_greeting_is_a_closed_connection_by_fin() {
    let report = reproduce("close-on-connect", |_| {}).await;
    assert_eq!(report.stage, ProbeStage::Greeting);
    assert_detail(&report, "FIN");
}

#[tokio::test]
async fn a_reset_before_the_greeting_is_a_closed_connection_by_rst() {
    let report = reproduce("reset-on-connect", |_| {}).await;
    assert_eq!(report.stage, ProbeStage::Greeting);
    assert_detail(&report, "RST");
}

#[tokio::test]
async fn a_close_at_mail_from_is_a_closed_connection_at_mail() {
    let report = reproduce("close-on-mail", |_| {}).await;
    assert_eq!(report.stage, ProbeStage::Mail);
}

#[tokio::test]
async fn a_reset_during_the_body_is_a_closed_connection() {
    let report = reproduce("reset-during-body", |o| o.send = true).await;
    // The whole test message fits in the socket's buffers, so the reset may be seen while it is
    // written or only while the reply to the final dot is awaited.
    assert!(
        matches!(report.stage, ProbeStage::Body | ProbeStage::EndOfData),
        "{:?}",
        report.stage
    );
    assert!(
        report.detail.contains("RST") || report.detail.contains("gone"),
        "{}",
        report.detail
    );
}

#[tokio::test]
async fn a_close_after_the_final_dot_is_a_closed_connection_at_end_of_data() {
    let report = reproduce("close-after-final-dot", |o| o.send = true).await;
    assert_eq!(report.stage, ProbeStage::EndOfData);
    assert_detail(&report, "send it again");
}

#[tokio::test]
async fn no_reply_to_the_final_dot_is_a_closed_connection_at_end_of_data() {
    let report = reproduce("stall-after-data", |o| {
        o.send = true;
        o.timeout_command = Duration::from_secs(1);
    })
    .await;
    assert_eq!(report.stage, ProbeStage::EndOfData);
}

#[tokio::test]
async fn a_full_mailbox_is_other_with_its_452() {
    let report = reproduce("mailbox-full", |o| o.to = Some("x@full.example".into())).await;
    assert_eq!(report.stage, ProbeStage::Rcpt);
    assert_eq!(report.verdict_line(), "other: 452 4.2.2 Mailbox full");
    assert_eq!(report.exit_code(), 30);
}

#[tokio::test]
async fn an_unknown_user_is_other_with_its_550() {
    let report = reproduce("unknown-user", |o| o.to = Some("x@nobody.example".into())).await;
    assert_eq!(report.stage, ProbeStage::Rcpt);
    assert_eq!(report.exit_code(), 31);
}

#[tokio::test]
async fn a_message_refused_after_the_final_dot_is_other_with_its_554() {
    let report = reproduce("message-rejected", |o| o.send = true).await;
    assert_eq!(report.stage, ProbeStage::EndOfData);
    assert!(!report.delivered);
}

#[tokio::test]
async fn ehlo_and_helo_refused_is_cannot_connect() {
    let report = reproduce("ehlo-rejected", |_| {}).await;
    assert_eq!(report.stage, ProbeStage::Ehlo);
    let sent = client_lines(&report);
    assert_eq!(sent[..2], ["EHLO probe.lab.test", "HELO probe.lab.test"]);
}

#[tokio::test]
async fn a_slow_greeting_within_the_command_timeout_is_delivered() {
    let report = reproduce("slow-greeting", |o| {
        o.timeout_command = Duration::from_secs(15);
    })
    .await;
    assert_eq!(report.verdict_line(), "would be delivered");
}

#[tokio::test]
async fn a_slow_greeting_beyond_the_command_timeout_is_a_closed_connection() {
    let (_server, mut opts) = start_builtin("slow-greeting").await;
    opts.timeout_command = Duration::from_secs(1);
    let report = probe(&opts).await;
    assert_verdict(&report, DocumentedError::ConnectionClosed);
    assert_eq!(report.stage, ProbeStage::Greeting);
}

#[tokio::test]
async fn an_expired_certificate_fails_validation_when_tls_is_required() {
    let report = reproduce("cert-expired", require_lab_tls).await;
    assert_eq!(report.stage, ProbeStage::TlsHandshake);
    assert_detail(&report, "expired");
    assert_eq!(report.exit_code(), 20);
}

#[tokio::test]
async fn a_certificate_not_yet_valid_fails_validation_when_tls_is_required() {
    let report = reproduce("cert-not-yet-valid", require_lab_tls).await;
    assert_detail(&report, "not yet valid");
}

#[tokio::test]
async fn a_certificate_for_another_host_fails_validation_when_tls_is_required() {
    let report = reproduce("cert-wrong-host", require_lab_tls).await;
    assert_detail(&report, "another name");
    assert_detail(&report, "expected mx.lab.test");
}

#[tokio::test]
async fn a_self_signed_certificate_fails_validation_and_is_called_self_signed() {
    let report = reproduce("cert-self-signed", require_lab_tls).await;
    assert_detail(&report, "self-signed");
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_root_fails_validation_as_unknown_issuer() {
    let report = reproduce("cert-untrusted-root", require_lab_tls).await;
    assert_detail(&report, "unknown authority");
}

#[tokio::test]
async fn a_certificate_without_its_intermediate_fails_validation_as_unknown_issuer() {
    let report = reproduce("cert-incomplete-chain", require_lab_tls).await;
    assert_detail(&report, "unknown authority");
}

#[tokio::test]
async fn an_expired_certificate_is_only_a_warning_with_opportunistic_tls() {
    let (_server, opts) = start_builtin("cert-expired").await;
    assert_eq!(opts.tls, TlsMode::Opportunistic);

    let report = probe(&opts).await;
    assert_verdict(&report, DocumentedError::None);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("expired"),
        "{:?}",
        report.warnings
    );
}

#[tokio::test]
async fn a_refused_starttls_is_cannot_connect() {
    let report = reproduce("starttls-refused", |_| {}).await;
    assert_eq!(report.stage, ProbeStage::Starttls);
    assert!(
        report
            .last_reply
            .as_deref()
            .unwrap()
            .starts_with("454 4.7.0")
    );
}

#[tokio::test]
async fn a_drop_right_after_starttls_is_a_closed_connection_in_the_handshake() {
    let report = reproduce("starttls-dropped", |_| {}).await;
    assert_eq!(report.stage, ProbeStage::TlsHandshake);
}

#[tokio::test]
async fn a_handshake_that_stalls_is_a_closed_connection_in_the_handshake() {
    let report = reproduce("tls-handshake-stall", |o| {
        o.timeout_command = Duration::from_secs(1);
    })
    .await;
    assert_eq!(report.stage, ProbeStage::TlsHandshake);
}

#[tokio::test]
async fn a_drop_after_the_handshake_is_a_closed_connection_at_ehlo() {
    let report = reproduce("tls-dropped-after-handshake", |_| {}).await;
    assert_eq!(report.stage, ProbeStage::Ehlo);
}

#[tokio::test]
async fn mail_without_starttls_where_tls_is_required_is_other_with_its_530() {
    let report = reproduce("tls-required", |o| o.tls = TlsMode::Off).await;
    assert_eq!(report.stage, ProbeStage::Mail);
}

#[tokio::test]
async fn a_tls_1_3_client_cannot_connect_to_a_tls_1_2_only_server() {
    let report = reproduce("tls12-only", |o| o.tls_version = TlsVersion::Tls13).await;
    assert_eq!(report.stage, ProbeStage::TlsHandshake);
    assert_detail(&report, "alert");
}

#[tokio::test]
async fn a_tls_1_2_client_cannot_connect_to_a_tls_1_3_only_server() {
    let report = reproduce("tls13-only", |o| o.tls_version = TlsVersion::Tls12).await;
    assert_eq!(report.stage, ProbeStage::TlsHandshake);
}

#[tokio::test]
async fn the_text_report_gives_verdict_stage_reply_causes_and_a_timed_transcript() {
    let report = reproduce("mailbox-full", |o| o.to = Some("x@full.example".into())).await;
    let text = report.to_text();
    assert!(
        text.starts_with("other: 452 4.2.2 Mailbox full\n"),
        "{text}"
    );
    assert!(text.contains("  stage:      rcpt\n"), "{text}");
    assert!(
        text.contains("  last reply: 452 4.2.2 Mailbox full\n"),
        "{text}"
    );
    assert!(text.contains("Likely causes and fixes:\n  - "), "{text}");
    assert!(
        text.contains(" ms  C: RCPT TO:<x@full.example>\n"),
        "{text}"
    );
    assert!(text.contains(" ms  S: 452 4.2.2 Mailbox full\n"), "{text}");
    assert!(text.contains(" ms  *: TLS established"), "{text}");
}

#[tokio::test]
async fn run_cli_returns_the_exit_status_of_the_verdict() {
    let (server, _) = start_builtin("connection-refused").await;
    let target = server.smtp_addr().to_string();
    let args = probe_args(&["probe", &target, "--ca", LAB_CA, "--json"]);
    assert_eq!(run_cli(args).await, 16);
}

fn client_lines(report: &ProbeReport) -> Vec<&str> {
    report
        .transcript
        .iter()
        .filter(|l| l.direction == Direction::Client)
        .map(|l| l.text.as_str())
        .collect()
}

// DNS.

/// A DNS responder on a loopback UDP socket, answering from a fixed zone until dropped.
struct FakeDns {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How the fake zone answers one name.
#[derive(Clone)]
enum Entry {
    Records(Vec<RData>),
    ServFail,
}

async fn fake_dns(zone: Vec<(&'static str, Entry)>) -> FakeDns {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        // Far more queries than any test asks; the bound keeps the loop finite.
        for _ in 0..1000 {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(request) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let response = answer(&request, &zone);
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, from).await;
            }
        }
    });
    FakeDns { addr, task }
}

fn answer(request: &Message, zone: &[(&'static str, Entry)]) -> Message {
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.authoritative = true;
    response.add_queries(request.queries.clone());

    let Some(query) = request.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    let asked = query.name().to_ascii().to_ascii_lowercase();
    let asked = asked.trim_end_matches('.');
    let entries: Vec<&Entry> = zone
        .iter()
        .filter(|(name, _)| *name == asked)
        .map(|(_, entry)| entry)
        .collect();

    if entries.is_empty() {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    for entry in entries {
        match entry {
            Entry::ServFail => response.metadata.response_code = ResponseCode::ServFail,
            Entry::Records(records) => {
                for rdata in records
                    .iter()
                    .filter(|r| r.record_type() == query.query_type())
                {
                    response.add_answer(Record::from_rdata(
                        query.name().clone(),
                        60,
                        rdata.clone(),
                    ));
                }
            }
        }
    }
    response
}

fn mx(preference: u16, exchange: &str) -> RData {
    RData::MX(MX::new(preference, Name::from_ascii(exchange).unwrap()))
}

fn a(ip: Ipv4Addr) -> RData {
    RData::A(A(ip))
}

fn aaaa(ip: Ipv6Addr) -> RData {
    RData::AAAA(AAAA(ip))
}

/// Options for probing `domain` on `port`, asking only `dns`.
fn domain_options(domain: &str, port: u16, dns: &FakeDns) -> ProbeOptions {
    ProbeOptions {
        dns: Some(dns.addr),
        dns_timeout: Duration::from_secs(2),
        dns_attempts: 1,
        roots: lab_roots(),
        helo: Some("probe.lab.test".to_string()),
        timeout_connect: Duration::from_secs(5),
        timeout_command: Duration::from_secs(5),
        ..ProbeOptions::new(Target::Domain(domain.to_string()), port)
    }
}

/// Probes `domain` on `port`, asking a fake DNS server that answers from `zone`.
async fn probe_zone(domain: &str, port: u16, zone: Vec<(&'static str, Entry)>) -> ProbeReport {
    let dns = fake_dns(zone).await;
    probe(&domain_options(domain, port, &dns)).await
}

/// A port on `ip` that refuses connections: bound, never listening.
fn refusing(ip: IpAddr, port: u16) -> TcpSocket {
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .unwrap();
    socket.bind(SocketAddr::new(ip, port)).unwrap();
    socket
}

#[tokio::test]
async fn a_resolver_that_never_answers_is_dns_query_failed_within_its_timeout() {
    // A UDP socket and a TCP listener on the same loopback port, neither of which ever answers:
    // the resolver's queries over both transports go unanswered.
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let _udp = UdpSocket::bind(addr).await.unwrap();

    let mut opts = ProbeOptions::new(Target::Domain("lab.test".into()), 25);
    opts.dns = Some(addr);
    opts.dns_timeout = Duration::from_millis(500);
    opts.dns_attempts = 1;

    let started = Instant::now();
    let report = probe(&opts).await;
    assert_verdict(&report, DocumentedError::DnsQueryFailed);
    assert_eq!(report.stage, ProbeStage::Resolve);
    assert_eq!(report.exit_code(), 12);
    assert_within(started, Duration::from_secs(4));
}

#[tokio::test]
async fn a_domain_that_does_not_exist_is_dns_query_failed_with_nxdomain() {
    let report = probe_zone("gone.test", 25, vec![]).await;
    assert_verdict(&report, DocumentedError::DnsQueryFailed);
    assert_detail(&report, "NXDOMAIN");
}

#[tokio::test]
async fn a_failing_dns_server_is_dns_query_failed_with_servfail() {
    let report = probe_zone("lab.test", 25, vec![("lab.test", Entry::ServFail)]).await;
    assert_verdict(&report, DocumentedError::DnsQueryFailed);
    assert_detail(&report, "SERVFAIL");
}

#[tokio::test]
async fn a_domain_with_neither_mx_nor_address_records_is_dns_query_failed() {
    let report = probe_zone("lab.test", 25, vec![("lab.test", Entry::Records(vec![]))]).await;
    assert_verdict(&report, DocumentedError::DnsQueryFailed);
    assert_detail(&report, "no A/AAAA records");
}

#[tokio::test]
async fn a_domain_without_mx_is_its_own_mail_exchanger() {
    let server = start(Scenario::default(), "lab.test").await;
    let dns = fake_dns(vec![(
        "lab.test",
        Entry::Records(vec![a(Ipv4Addr::LOCALHOST)]),
    )])
    .await;
    let mut opts = domain_options("lab.test", server.smtp_addr().port(), &dns);
    opts.tls = TlsMode::Require;

    let report = probe(&opts).await;
    assert_verdict(&report, DocumentedError::None);
    assert!(client_lines(&report).contains(&"RCPT TO:<postmaster@lab.test>"));
}

#[tokio::test]
async fn mx_hosts_are_tried_by_preference_and_a_refusing_one_is_passed_over() {
    // The preferred exchanger has only an IPv6 address, where the port refuses; the other is
    // the server, whose certificate is for its MX name, which is what the probe checks.
    let server = start(Scenario::default(), "good.lab.test").await;
    let port = server.smtp_addr().port();
    let _refusing = refusing(IpAddr::V6(Ipv6Addr::LOCALHOST), port);
    let dns = fake_dns(vec![
        (
            "lab.test",
            Entry::Records(vec![mx(20, "good.lab.test."), mx(10, "bad.lab.test.")]),
        ),
        (
            "bad.lab.test",
            Entry::Records(vec![aaaa(Ipv6Addr::LOCALHOST)]),
        ),
        (
            "good.lab.test",
            Entry::Records(vec![a(Ipv4Addr::LOCALHOST)]),
        ),
    ])
    .await;
    let mut opts = domain_options("lab.test", port, &dns);
    opts.tls = TlsMode::Require;

    let report = probe(&opts).await;
    assert_verdict(&report, DocumentedError::None);
    assert_eq!(report.tried.len(), 2, "{:?}", report.tried);
    assert!(
        report.tried[0].starts_with("bad.lab.test[::1]"),
        "{:?}",
        report.tried
    );
    assert!(report.tried[0].contains("refused"), "{:?}", report.tried);
    assert!(
        report.tried[1].starts_with("good.lab.test[127.0.0.1]"),
        "{:?}",
        report.tried
    );
}

#[tokio::test]
async fn when_every_mx_host_fails_the_verdict_is_the_last_failure() {
    let refusing = refusing(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let port = refusing.local_addr().unwrap().port();
    let zone = |first: &'static str, second: &'static str| {
        vec![
            (
                "lab.test",
                Entry::Records(vec![mx(10, first), mx(20, second)]),
            ),
            ("up.lab.test", Entry::Records(vec![a(Ipv4Addr::LOCALHOST)])),
        ]
    };

    // An unresolvable host, then a refusing one: refused.
    let report = probe_zone("lab.test", port, zone("missing.lab.test.", "up.lab.test.")).await;
    assert_verdict(&report, DocumentedError::ConnectionRefused);
    assert_eq!(report.tried.len(), 2, "{:?}", report.tried);

    // A refusing host, then an unresolvable one: the DNS failure.
    let report = probe_zone("lab.test", port, zone("up.lab.test.", "missing.lab.test.")).await;
    assert_verdict(&report, DocumentedError::DnsQueryFailed);
    assert_detail(&report, "missing.lab.test");
}

#[tokio::test]
async fn a_null_mx_is_other_and_final() {
    let report = probe_zone(
        "lab.test",
        25,
        vec![("lab.test", Entry::Records(vec![mx(0, ".")]))],
    )
    .await;
    assert_verdict(&report, DocumentedError::Other);
    assert_detail(&report, "null MX");
    assert_eq!(report.exit_code(), 31);
}

#[tokio::test]
async fn a_smart_host_is_looked_up_by_address_only() {
    let server = start(Scenario::default(), "relay.lab.test").await;
    // No MX for the name: were it looked up as a domain the answer would still work, so the
    // zone gives it an MX that leads nowhere, which a smart host must ignore.
    let dns = fake_dns(vec![(
        "relay.lab.test",
        Entry::Records(vec![mx(10, "nowhere.lab.test."), a(Ipv4Addr::LOCALHOST)]),
    )])
    .await;
    let mut opts = domain_options("relay.lab.test", server.smtp_addr().port(), &dns);
    opts.target = Target::SmartHost("relay.lab.test".into());
    opts.tls = TlsMode::Require;

    let report = probe(&opts).await;
    assert_verdict(&report, DocumentedError::None);
    assert_eq!(report.tried.len(), 1, "{:?}", report.tried);
}

#[test]
fn run_cli_blocking_probes_on_a_runtime_of_its_own() {
    let refusing = refusing(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let target = refusing.local_addr().unwrap().to_string();
    let args = probe_args(&["probe", &target, "--tls", "off"]);
    assert_eq!(run_cli_blocking(args), std::process::ExitCode::from(16));
}
