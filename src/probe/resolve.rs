//! DNS for the sending side: MX records of a domain and address records of a host, with each
//! failure told apart (NXDOMAIN, no records, SERVFAIL, REFUSED, no answer) for the report.
//!
//! Names are looked up as fully qualified, without the resolver's search list, as mail servers
//! do: `lab.test` never becomes `lab.test.example.com`. Address lookups ask for A and AAAA and list
//! IPv4 addresses first. With `--dns`, only that server is asked and the hosts file is ignored, so
//! what is tested is exactly what that server answers.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;

/// What a domain's MX lookup said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MxAnswer {
    /// The exchangers' names, most preferred first, with their preferences.
    Exchangers(Vec<(u16, String)>),
    /// The domain exists but has no MX records: it is its own implicit MX.
    NoMx,
    /// The domain publishes a null MX (RFC 7505): it accepts no mail at all.
    NullMx,
}

/// Why a lookup gave nothing usable, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DnsFailure {
    pub detail: String,
}

/// A resolver configured from the probe's options.
pub(crate) struct Resolver {
    inner: TokioResolver,
    /// A bound on one whole lookup, whatever the resolver's own retries add up to.
    deadline: Duration,
    timeout: Duration,
}

impl Resolver {
    /// A resolver asking `server` if given, else the system's configured resolvers, with a
    /// per-query `timeout` and `attempts` tries.
    pub(crate) fn new(
        server: Option<SocketAddr>,
        timeout: Duration,
        attempts: usize,
    ) -> Result<Self, DnsFailure> {
        let mut builder = match server {
            Some(addr) => {
                let mut name_server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut name_server.connections {
                    connection.port = addr.port();
                }
                let config = ResolverConfig::from_name_servers(vec![name_server]);
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            }
            None => TokioResolver::builder_tokio().map_err(|e| DnsFailure {
                detail: format!("cannot read the system's resolver configuration: {e}"),
            })?,
        };

        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = timeout;
        options.attempts = attempts.max(1);
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // Each probe is a fresh look at the zone; a cached answer would hide a change.
        options.cache_size = 0;
        if server.is_some() {
            options.use_hosts_file = ResolveHosts::Never;
        }

        let inner = builder.build().map_err(|e| DnsFailure {
            detail: format!("cannot set up the resolver: {e}"),
        })?;
        // Attempts against a name server with UDP and TCP, plus slack for the answer itself.
        let tries = u32::try_from(attempts.max(1) * 2).unwrap_or(u32::MAX);
        Ok(Self {
            inner,
            deadline: timeout.saturating_mul(tries) + Duration::from_secs(1),
            timeout,
        })
    }

    /// The MX records of `domain`.
    pub(crate) async fn mx(&self, domain: &str) -> Result<MxAnswer, DnsFailure> {
        let lookup = tokio::time::timeout(self.deadline, self.inner.mx_lookup(fqdn(domain))).await;
        let lookup = match lookup {
            Err(_) => return Err(self.no_answer(domain, "MX")),
            Ok(Err(e)) if is_nodata(&e) => return Ok(MxAnswer::NoMx),
            Ok(Err(e)) => return Err(self.failure(domain, "MX", &e)),
            Ok(Ok(lookup)) => lookup,
        };

        let mut exchangers: Vec<(u16, String)> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::MX(mx) => Some((mx.preference, unqualified(&mx.exchange.to_ascii()))),
                _ => None,
            })
            .collect();
        if exchangers.is_empty() {
            return Ok(MxAnswer::NoMx);
        }
        if exchangers.len() == 1 && exchangers[0].1.is_empty() {
            return Ok(MxAnswer::NullMx);
        }
        // RFC 5321 section 5.1 asks senders to shuffle exchangers of equal preference; the probe
        // keeps the order of the answer so that a run can be repeated exactly.
        exchangers.retain(|(_, name)| !name.is_empty());
        exchangers.sort_by_key(|(preference, _)| *preference);
        Ok(MxAnswer::Exchangers(exchangers))
    }

    /// The addresses of `host`, IPv4 first.
    pub(crate) async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        let lookup = tokio::time::timeout(self.deadline, self.inner.lookup_ip(fqdn(host))).await;
        match lookup {
            Err(_) => Err(self.no_answer(host, "A/AAAA")),
            Ok(Err(e)) => Err(self.failure(host, "A/AAAA", &e)),
            Ok(Ok(lookup)) => {
                let addrs: Vec<IpAddr> = lookup.iter().collect();
                if addrs.is_empty() {
                    Err(DnsFailure {
                        detail: format!("no A or AAAA records for {host}"),
                    })
                } else {
                    Ok(addrs)
                }
            }
        }
    }

    fn no_answer(&self, name: &str, rtype: &str) -> DnsFailure {
        DnsFailure {
            detail: format!(
                "the resolver gave no answer for {name} {rtype} (timeout of {} s per query)",
                self.timeout.as_secs_f64()
            ),
        }
    }

    fn failure(&self, name: &str, rtype: &str, error: &NetError) -> DnsFailure {
        let detail = if error.is_nx_domain() {
            format!("NXDOMAIN: {name} does not exist")
        } else if error.is_no_records_found() {
            format!("no {rtype} records for {name}")
        } else {
            match error {
                NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
                    format!("SERVFAIL: the DNS server failed to answer for {name} {rtype}")
                }
                NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => {
                    format!("REFUSED: the DNS server refused to answer for {name} {rtype}")
                }
                NetError::Dns(DnsError::ResponseCode(code)) => {
                    format!("the DNS server answered {code} for {name} {rtype}")
                }
                NetError::Timeout => return self.no_answer(name, rtype),
                other => format!("the lookup of {name} {rtype} failed: {other}"),
            }
        };
        DnsFailure { detail }
    }
}

/// True for a NOERROR answer with no records of the type asked: the name exists without them.
fn is_nodata(error: &NetError) -> bool {
    matches!(
        error,
        NetError::Dns(DnsError::NoRecordsFound(no_records))
            if no_records.response_code == ResponseCode::NoError
    )
}

fn fqdn(name: &str) -> String {
    format!("{}.", unqualified(name))
}

fn unqualified(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_string()
}
