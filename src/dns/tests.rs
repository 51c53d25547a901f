//! Tests over the wire: a [`DnsServer`] on loopback port 0, asked by a real client.
//!
//! Three clients look at it. A bare hickory client shows each response whole (rcode, AA bit,
//! every section). A hickory resolver configured with this server as its only name server,
//! with no system configuration, no hosts file and no cache, shows what a sender's resolver
//! concludes. `dig`, when installed, shows what an administrator sees; tests that need it say
//! so on stderr and pass when it is missing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::client::{Client, ClientHandle};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::tcp::TcpClientStream;
use hickory_resolver::net::udp::UdpClientStream;
use hickory_resolver::net::{DnsError, NetError};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::zone::tests::addresses;
use super::{DnsConfig, DnsFault, DnsServer, MX_PREFERENCE};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LOOPBACK_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
const STALE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// How long the bare client waits for a response that should come.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the resolver waits for each response.
const RESOLVER_TIMEOUT: Duration = Duration::from_millis(500);

/// A running server and the token that stops it, cancelled when the lab is dropped.
struct Lab {
    server: DnsServer,
    shutdown: CancellationToken,
    _stop_on_drop: DropGuard,
}

impl Lab {
    async fn start(fault: Option<DnsFault>) -> Lab {
        Self::with_config(DnsConfig::default().with_fault(fault)).await
    }

    async fn with_config(config: DnsConfig) -> Lab {
        Self::on(LOOPBACK, config).await
    }

    async fn on(ip: IpAddr, config: DnsConfig) -> Lab {
        let shutdown = CancellationToken::new();
        let server = DnsServer::start(SocketAddr::new(ip, 0), config, shutdown.clone())
            .await
            .expect("start dns server");
        Lab {
            server,
            _stop_on_drop: shutdown.clone().drop_guard(),
            shutdown,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    async fn udp(&self, name: &str, qtype: RecordType) -> Message {
        let stream = UdpClientStream::builder(self.addr(), TokioRuntimeProvider::default())
            .with_timeout(Some(CLIENT_TIMEOUT))
            .build();
        let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
        tokio::spawn(background);
        ask(client, name, qtype).await.expect("udp query")
    }

    async fn tcp(&self, name: &str, qtype: RecordType) -> Result<Message, NetError> {
        let (stream, handle) = TcpClientStream::new(
            self.addr(),
            None,
            Some(CLIENT_TIMEOUT),
            TokioRuntimeProvider::default(),
        );
        let stream = stream.await.expect("tcp connect");
        let (client, background) =
            Client::<TokioRuntimeProvider>::with_timeout(stream, handle, CLIENT_TIMEOUT);
        tokio::spawn(background);
        ask(client, name, qtype).await
    }

    /// A fresh resolver that asks only this server, over UDP and TCP on its port.
    fn resolver(&self) -> TokioResolver {
        let mut udp = ConnectionConfig::udp();
        udp.port = self.addr().port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = self.addr().port();
        let name_server = NameServerConfig::new(self.addr().ip(), true, vec![udp, tcp]);
        let config = ResolverConfig::from_parts(None, Vec::new(), vec![name_server]);

        let mut options = ResolverOpts::default();
        options.timeout = RESOLVER_TIMEOUT;
        // No retries, so a server that never answers costs exactly one timeout.
        options.attempts = 0;
        // Nothing cached, so every lookup reaches the server and sees the config in force.
        options.cache_size = 0;
        options.use_hosts_file = ResolveHosts::Never;
        options.num_concurrent_reqs = 1;
        options.recursion_desired = false;

        TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .expect("build resolver")
    }
}

async fn ask(
    mut client: Client<TokioRuntimeProvider>,
    name: &str,
    qtype: RecordType,
) -> Result<Message, NetError> {
    let name = Name::from_ascii(name).expect("query name");
    let response = client.query(name, DNSClass::IN, qtype).await?;
    Ok(response.into_message())
}

/// What `dig` printed, cut into the parts the tests look at.
#[derive(Debug)]
struct Dig {
    exit: Option<i32>,
    status: Option<String>,
    flags: Vec<String>,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
    output: String,
}

impl Dig {
    /// Runs `dig @SERVER -p PORT NAME TYPE +tries=1 +time=1 EXTRA...`, or returns `None` when
    /// dig is not installed.
    async fn run(server: SocketAddr, name: &str, qtype: &str, extra: &[&str]) -> Dig {
        let output = tokio::process::Command::new("dig")
            .arg(format!("@{}", server.ip()))
            .args([
                "-p",
                &server.port().to_string(),
                name,
                qtype,
                "+tries=1",
                "+time=1",
            ])
            .args(extra)
            .output()
            .await;
        let output = match output {
            Ok(output) => output,
            Err(error) => panic!("cannot run dig (Debian package dnsutils): {error}"),
        };
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        Dig::parse(output.status.code(), text)
    }

    fn parse(exit: Option<i32>, output: String) -> Dig {
        let status = output
            .split_once("status: ")
            .and_then(|(_, rest)| rest.split(',').next())
            .map(str::to_string);
        let flags = output
            .split_once(";; flags: ")
            .and_then(|(_, rest)| rest.split(';').next())
            .map(|flags| flags.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let section = |title: &str| -> Vec<String> {
            let Some((_, rest)) = output.split_once(&format!(";; {title} SECTION:\n")) else {
                return Vec::new();
            };
            rest.lines()
                .take_while(|line| !line.trim().is_empty())
                .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect()
        };
        Dig {
            exit,
            status,
            flags,
            answer: section("ANSWER"),
            authority: section("AUTHORITY"),
            additional: section("ADDITIONAL"),
            output,
        }
    }

    fn is_authoritative(&self) -> bool {
        self.flags.iter().any(|flag| flag == "aa")
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn mx(records: &[Record]) -> Vec<(u16, Name)> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
            _ => None,
        })
        .collect()
}

fn soa_owners(records: &[Record]) -> Vec<Name> {
    records
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .map(|r| r.name.clone())
        .collect()
}

fn soa_serial(records: &[Record]) -> u32 {
    records
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .expect("an SOA record")
}

/// Asserts the shape of a negative answer: no answers, the AA bit, and one SOA owned by
/// `soa_owner` in the authority section.
fn assert_negative(message: &Message, rcode: ResponseCode, soa_owner: &str) {
    assert_eq!(message.response_code, rcode);
    assert!(message.authoritative, "AA bit");
    assert!(message.answers.is_empty(), "{:?}", message.answers);
    assert_eq!(soa_owners(&message.authorities), [name(soa_owner)]);
}

/// Asserts a bare error: the rcode, no AA bit, and no records at all.
fn assert_bare(message: &Message, rcode: ResponseCode) {
    assert_eq!(message.response_code, rcode);
    assert!(!message.authoritative, "AA bit");
    assert!(message.answers.is_empty(), "{:?}", message.answers);
    assert!(message.authorities.is_empty(), "{:?}", message.authorities);
    assert!(message.additionals.is_empty(), "{:?}", message.additionals);
}

/// The response code a resolver's error carries, whether it saw an error code or no records.
fn resolver_rcode(error: &NetError) -> Option<ResponseCode> {
    match error {
        NetError::Dns(DnsError::ResponseCode(code)) => Some(*code),
        NetError::Dns(DnsError::NoRecordsFound(no_records)) => Some(no_records.response_code),
        _ => None,
    }
}

/// Asserts that `records` hold one MX record, naming `exchanger` at the usual preference.
fn assert_mx(records: &[Record], exchanger: &str) {
    assert_eq!(mx(records), [(MX_PREFERENCE, name(exchanger))]);
}

/// Asserts that `records` hold one address record, giving `host` the address `ip`.
fn assert_addresses(records: &[Record], host: &str, ip: IpAddr) {
    assert_eq!(addresses(records), [(name(host), ip)]);
}

/// Asserts that a resolver's A lookup of `host` finds the one address `ip`.
async fn assert_a_lookup(resolver: &TokioResolver, host: &str, ip: IpAddr) {
    let lookup = resolver
        .ipv4_lookup(host)
        .await
        .unwrap_or_else(|e| panic!("A lookup of {host}: {e:?}"));
    assert_addresses(lookup.answers(), host, ip);
}

/// Asserts that a resolver's error carries `rcode`.
fn assert_resolver_rcode(error: &NetError, rcode: ResponseCode) {
    assert_eq!(resolver_rcode(error), Some(rcode), "{error:?}");
}

/// Asserts that a resolver found the name but no records of the type asked for.
fn assert_nodata(error: &NetError) {
    assert!(
        error.is_no_records_found() && !error.is_nx_domain(),
        "{error:?}"
    );
}

/// Asserts that under `fault` every query in the zone gets a bare `rcode`, and so does a
/// resolver's MX lookup.
async fn assert_every_query_bare(fault: DnsFault, rcode: ResponseCode) {
    let lab = Lab::start(Some(fault)).await;
    for (qname, qtype) in [
        ("lab.test.", RecordType::MX),
        ("mx.lab.test.", RecordType::A),
    ] {
        assert_bare(&lab.udp(qname, qtype).await, rcode);
    }
    let error = lab.resolver().mx_lookup("lab.test.").await.unwrap_err();
    assert_resolver_rcode(&error, rcode);
}

// The healthy zone.

#[tokio::test]
async fn a_healthy_mx_query_names_the_exchanger_with_its_address_as_additional_data() {
    let lab = Lab::start(None).await;
    let response = lab.udp("lab.test.", RecordType::MX).await;
    assert_eq!(response.response_code, ResponseCode::NoError);
    assert!(response.authoritative);
    assert!(!response.recursion_available);
    assert_mx(&response.answers, "mx.lab.test.");
    assert_eq!(response.answers[0].ttl, 300);
    assert_addresses(&response.additionals, "mx.lab.test.", LOOPBACK);
}

#[tokio::test]
async fn a_resolver_finds_the_exchanger_and_its_address_in_the_healthy_zone() {
    let lab = Lab::start(None).await;
    let resolver = lab.resolver();

    let lookup = resolver.mx_lookup("lab.test.").await.expect("mx lookup");
    assert_mx(lookup.answers(), "mx.lab.test.");

    assert_a_lookup(&resolver, "mx.lab.test.", LOOPBACK).await;
}

#[tokio::test]
async fn the_exchanger_has_no_aaaa_record_which_is_nodata_with_the_zone_soa() {
    let lab = Lab::start(None).await;
    let response = lab.udp("mx.lab.test.", RecordType::AAAA).await;
    assert_negative(&response, ResponseCode::NoError, "lab.test.");

    let error = lab
        .resolver()
        .ipv6_lookup("mx.lab.test.")
        .await
        .unwrap_err();
    assert_nodata(&error);
    assert_eq!(resolver_rcode(&error), Some(ResponseCode::NoError));
}

#[tokio::test]
async fn a_name_in_the_zone_with_no_records_is_nxdomain_with_the_zone_soa() {
    let lab = Lab::start(None).await;
    let response = lab.udp("nothing.lab.test.", RecordType::A).await;
    assert_negative(&response, ResponseCode::NXDomain, "lab.test.");

    let error = lab
        .resolver()
        .ipv4_lookup("nothing.lab.test.")
        .await
        .unwrap_err();
    assert!(error.is_nx_domain(), "{error:?}");
}

#[tokio::test]
async fn a_name_outside_the_zone_is_refused_because_the_server_does_not_recurse() {
    let lab = Lab::start(None).await;
    let response = lab.udp("example.com.", RecordType::MX).await;
    assert_bare(&response, ResponseCode::Refused);

    let error = lab.resolver().mx_lookup("example.com.").await.unwrap_err();
    assert_resolver_rcode(&error, ResponseCode::Refused);
}

#[tokio::test]
async fn tcp_queries_are_answered_on_the_same_port_as_udp() {
    let lab = Lab::start(None).await;
    let response = lab
        .tcp("lab.test.", RecordType::MX)
        .await
        .expect("tcp query");
    assert_eq!(response.response_code, ResponseCode::NoError);
    assert!(response.authoritative);
    assert_mx(&response.answers, "mx.lab.test.");
    assert_addresses(&response.additionals, "mx.lab.test.", LOOPBACK);
}

#[tokio::test]
async fn an_ipv6_smtp_listener_is_published_as_an_aaaa_record() {
    let smtp_ip = LOOPBACK_V6;
    let lab = Lab::with_config(DnsConfig::new("lab.test", smtp_ip)).await;
    let lookup = lab
        .resolver()
        .ipv6_lookup("mx.lab.test.")
        .await
        .expect("aaaa lookup");
    assert_addresses(lookup.answers(), "mx.lab.test.", smtp_ip);
    let response = lab.udp("mx.lab.test.", RecordType::A).await;
    assert_negative(&response, ResponseCode::NoError, "lab.test.");
}

// Each fault.

#[tokio::test]
async fn servfail_answers_every_query_in_the_zone_with_servfail() {
    assert_every_query_bare(DnsFault::ServFail, ResponseCode::ServFail).await;
}

#[tokio::test]
async fn refused_answers_every_query_in_the_zone_with_refused() {
    assert_every_query_bare(DnsFault::Refused, ResponseCode::Refused).await;
}

#[tokio::test]
async fn nxdomain_makes_the_domain_and_its_exchanger_not_exist() {
    let lab = Lab::start(Some(DnsFault::NxDomain)).await;
    for (qname, qtype) in [
        ("lab.test.", RecordType::MX),
        ("mx.lab.test.", RecordType::A),
    ] {
        let response = lab.udp(qname, qtype).await;
        assert_negative(&response, ResponseCode::NXDomain, "test.");
    }
    let resolver = lab.resolver();
    let error = resolver.mx_lookup("lab.test.").await.unwrap_err();
    assert!(error.is_nx_domain(), "{error:?}");
    let error = resolver.ipv4_lookup("mx.lab.test.").await.unwrap_err();
    assert!(error.is_nx_domain(), "{error:?}");
}

#[tokio::test]
async fn no_mx_leaves_the_domain_without_mx_or_address_while_the_exchanger_resolves() {
    let lab = Lab::start(Some(DnsFault::NoMx)).await;
    let response = lab.udp("lab.test.", RecordType::MX).await;
    assert_negative(&response, ResponseCode::NoError, "lab.test.");
    let response = lab.udp("lab.test.", RecordType::A).await;
    assert_negative(&response, ResponseCode::NoError, "lab.test.");

    let resolver = lab.resolver();
    let error = resolver.mx_lookup("lab.test.").await.unwrap_err();
    assert_nodata(&error);
    assert_a_lookup(&resolver, "mx.lab.test.", LOOPBACK).await;
}

#[tokio::test]
async fn timeout_never_answers_so_the_resolver_times_out_within_its_timeout() {
    let lab = Lab::start(Some(DnsFault::Timeout)).await;
    let started = Instant::now();
    let error = lab.resolver().mx_lookup("lab.test.").await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(error, NetError::Timeout), "{error:?}");
    assert!(waited >= RESOLVER_TIMEOUT, "gave up after {waited:?}");
    assert!(waited < RESOLVER_TIMEOUT * 4, "gave up after {waited:?}");
}

#[tokio::test]
async fn timeout_leaves_a_tcp_query_unanswered_too() {
    let lab = Lab::start(Some(DnsFault::Timeout)).await;
    let error = lab.tcp("lab.test.", RecordType::MX).await.unwrap_err();
    assert!(matches!(error, NetError::Timeout), "{error:?}");
}

#[tokio::test]
async fn mx_without_address_names_an_exchanger_whose_address_is_nodata() {
    let lab = Lab::start(Some(DnsFault::MxWithoutAddress)).await;
    let response = lab.udp("lab.test.", RecordType::MX).await;
    assert_eq!(response.response_code, ResponseCode::NoError);
    assert_mx(&response.answers, "mx.lab.test.");
    assert!(addresses(&response.additionals).is_empty());
    for qtype in [RecordType::A, RecordType::AAAA] {
        let response = lab.udp("mx.lab.test.", qtype).await;
        assert_negative(&response, ResponseCode::NoError, "lab.test.");
    }

    let error = lab.resolver().lookup_ip("mx.lab.test.").await.unwrap_err();
    assert_nodata(&error);
}

#[tokio::test]
async fn stale_mx_points_at_the_old_host_while_the_current_one_still_resolves() {
    let lab = Lab::start(Some(DnsFault::StaleMx)).await;
    let response = lab.udp("lab.test.", RecordType::MX).await;
    assert_eq!(response.response_code, ResponseCode::NoError);
    assert!(response.authoritative);
    assert_mx(&response.answers, "old-mx.lab.test.");
    assert_addresses(&response.additionals, "old-mx.lab.test.", STALE_IP);

    let resolver = lab.resolver();
    assert_a_lookup(&resolver, "old-mx.lab.test.", STALE_IP).await;
    assert_a_lookup(&resolver, "mx.lab.test.", LOOPBACK).await;
}

// Configuration and lifetime.

#[tokio::test]
async fn set_config_changes_the_answer_to_the_next_query_and_moves_the_serial_on() {
    let lab = Lab::start(None).await;
    let before = lab.udp("lab.test.", RecordType::SOA).await;
    assert_eq!(
        lab.udp("lab.test.", RecordType::MX).await.response_code,
        ResponseCode::NoError
    );

    lab.server
        .set_config(DnsConfig::default().with_fault(DnsFault::ServFail));
    assert_eq!(lab.server.config().fault, Some(DnsFault::ServFail));
    assert_bare(
        &lab.udp("lab.test.", RecordType::MX).await,
        ResponseCode::ServFail,
    );

    lab.server.set_config(DnsConfig::default());
    let after = lab.udp("lab.test.", RecordType::SOA).await;
    assert!(soa_serial(&after.answers) > soa_serial(&before.answers));
    let response = lab.udp("lab.test.", RecordType::MX).await;
    assert_mx(&response.answers, "mx.lab.test.");
}

#[tokio::test]
async fn an_invalid_config_at_start_is_an_invalid_input_error() {
    let config = DnsConfig {
        mx_host: "mx.elsewhere.test".to_string(),
        ..DnsConfig::default()
    };
    let addr = SocketAddr::new(LOOPBACK, 0);
    let Err(error) = DnsServer::start(addr, config, CancellationToken::new()).await else {
        panic!("started with an exchanger outside the zone");
    };
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("mx.elsewhere.test"), "{error}");
}

#[tokio::test]
async fn an_invalid_config_set_later_makes_every_query_servfail() {
    let lab = Lab::start(None).await;
    lab.server.set_config(DnsConfig {
        zone: String::new(),
        ..DnsConfig::default()
    });
    assert_bare(
        &lab.udp("lab.test.", RecordType::MX).await,
        ResponseCode::ServFail,
    );
}

// This one listens on ::1, where no other test binds or connects, so the port it frees cannot
// be taken in the meantime by a socket from a test running beside it.
#[tokio::test]
async fn cancelling_shutdown_stops_the_server_and_frees_its_port() {
    let lab = Lab::on(LOOPBACK_V6, DnsConfig::default()).await;
    let addr = lab.addr();
    let response = lab.udp("lab.test.", RecordType::MX).await;
    assert_mx(&response.answers, "mx.lab.test.");

    let Lab {
        server, shutdown, ..
    } = lab;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server.stopped())
        .await
        .expect("stopped in time");
    // The sockets are closed by tasks that are ending as this runs; on a loaded machine that
    // can take a moment, so both binds are given up to two seconds.
    let udp = bound_soon(|| std::net::UdpSocket::bind(addr).map(drop)).await;
    udp.expect("udp port free");
    let tcp = bound_soon(|| std::net::TcpListener::bind(addr).map(drop)).await;
    tcp.expect("tcp port free");
}

/// Tries `bind` every 50 ms for up to two seconds; the last error if it never succeeds.
async fn bound_soon(bind: impl Fn() -> std::io::Result<()>) -> std::io::Result<()> {
    let mut last = bind();
    for _ in 0..40 {
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = bind();
    }
    last
}

// What dig shows.

#[tokio::test]
async fn dig_sees_the_healthy_mx_as_authoritative_with_the_address_as_additional_data() {
    let lab = Lab::start(None).await;
    let dig = Dig::run(lab.addr(), "lab.test", "MX", &[]).await;
    assert_eq!(dig.exit, Some(0), "{}", dig.output);
    assert_eq!(dig.status.as_deref(), Some("NOERROR"), "{}", dig.output);
    assert!(dig.is_authoritative(), "{}", dig.output);
    assert_eq!(dig.answer, ["lab.test. 300 IN MX 10 mx.lab.test."]);
    assert_eq!(dig.additional, ["mx.lab.test. 300 IN A 127.0.0.1"]);
}

#[tokio::test]
async fn dig_over_tcp_and_without_edns_gets_the_same_answer() {
    let lab = Lab::start(None).await;
    for extra in [&["+tcp"][..], &["+noedns"], &["+tcp", "+noedns"]] {
        let dig = Dig::run(lab.addr(), "lab.test", "MX", extra).await;
        assert_eq!(
            dig.status.as_deref(),
            Some("NOERROR"),
            "{extra:?}: {}",
            dig.output
        );
        assert_eq!(
            dig.answer,
            ["lab.test. 300 IN MX 10 mx.lab.test."],
            "{extra:?}"
        );
        assert_eq!(
            dig.additional,
            ["mx.lab.test. 300 IN A 127.0.0.1"],
            "{extra:?}"
        );
    }
}

#[tokio::test]
async fn dig_sees_each_fault_in_the_mx_answer() {
    const ZONE_SOA: &str =
        "lab.test. 300 IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 300";
    struct Expected {
        fault: DnsFault,
        status: &'static str,
        authoritative: bool,
        answer: &'static [&'static str],
        authority: &'static [&'static str],
        additional: &'static [&'static str],
    }
    let expected = [
        Expected {
            fault: DnsFault::ServFail,
            status: "SERVFAIL",
            authoritative: false,
            answer: &[],
            authority: &[],
            additional: &[],
        },
        Expected {
            fault: DnsFault::Refused,
            status: "REFUSED",
            authoritative: false,
            answer: &[],
            authority: &[],
            additional: &[],
        },
        Expected {
            fault: DnsFault::NxDomain,
            status: "NXDOMAIN",
            authoritative: true,
            answer: &[],
            authority: &["test. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300"],
            additional: &[],
        },
        Expected {
            fault: DnsFault::NoMx,
            status: "NOERROR",
            authoritative: true,
            answer: &[],
            authority: &[ZONE_SOA],
            additional: &[],
        },
        Expected {
            fault: DnsFault::MxWithoutAddress,
            status: "NOERROR",
            authoritative: true,
            answer: &["lab.test. 300 IN MX 10 mx.lab.test."],
            authority: &[],
            additional: &[],
        },
        Expected {
            fault: DnsFault::StaleMx,
            status: "NOERROR",
            authoritative: true,
            answer: &["lab.test. 300 IN MX 10 old-mx.lab.test."],
            authority: &[],
            additional: &["old-mx.lab.test. 300 IN A 127.0.0.2"],
        },
    ];
    for expected in expected {
        let fault = expected.fault;
        let lab = Lab::start(Some(fault)).await;
        let dig = Dig::run(lab.addr(), "lab.test", "MX", &[]).await;
        assert_eq!(
            dig.status.as_deref(),
            Some(expected.status),
            "{fault}: {}",
            dig.output
        );
        assert_eq!(
            dig.is_authoritative(),
            expected.authoritative,
            "{fault}: {}",
            dig.output
        );
        assert_eq!(dig.answer, expected.answer, "{fault}");
        assert_eq!(dig.authority, expected.authority, "{fault}");
        assert_eq!(dig.additional, expected.additional, "{fault}");
    }
}

#[tokio::test]
async fn dig_gets_no_answer_under_timeout_and_gives_up_after_its_own_timeout() {
    let lab = Lab::start(Some(DnsFault::Timeout)).await;
    for extra in [&[][..], &["+tcp"]] {
        let started = Instant::now();
        let dig = Dig::run(lab.addr(), "lab.test", "MX", extra).await;
        let waited = started.elapsed();
        // dig exits with 9 when no reply came from any server.
        assert_eq!(dig.exit, Some(9), "{extra:?}: {}", dig.output);
        assert!(
            dig.output.contains("timed out"),
            "{extra:?}: {}",
            dig.output
        );
        assert_eq!(dig.status, None, "{extra:?}: {}", dig.output);
        assert!(
            waited < Duration::from_secs(5),
            "{extra:?}: took {waited:?}"
        );
    }
}

#[tokio::test]
async fn requests_the_server_does_not_serve_get_the_standard_error_codes() {
    let lab = Lab::start(None).await;
    // Without +noednsneg, dig answers BADVERS by retrying with version 0, as it should.
    for (extra, status) in [
        (&["+edns=1", "+noednsneg"][..], "BADVERS"),
        (&["+opcode=status"], "NOTIMP"),
    ] {
        let dig = Dig::run(lab.addr(), "lab.test", "MX", extra).await;
        assert_eq!(
            dig.status.as_deref(),
            Some(status),
            "{extra:?}: {}",
            dig.output
        );
        assert!(dig.answer.is_empty(), "{extra:?}: {}", dig.output);
    }
}
