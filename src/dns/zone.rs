//! The zone's records, and the answer to one query, with no I/O.
//!
//! A [`Zone`] is built from a [`DnsConfig`] once per configuration change. Faults that change
//! what the zone holds (`no_mx`, `mx_without_address`, `stale_mx`) are built into its records,
//! and the healthy records are kept beside them so each answer can say whether the fault
//! shaped it. Faults that change how the server behaves (`servfail`, `refused`, `nxdomain`,
//! `timeout`) take over every query in the zone before the records are looked at.

use std::net::IpAddr;

use hickory_proto::op::{LowerQuery, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, NS, SOA, TXT};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::config::ZoneNames;
use super::{DnsConfig, DnsConfigError, DnsFault, MX_PREFERENCE};

/// How often a secondary would check the SOA, in seconds; no secondary ever does.
const SOA_REFRESH: i32 = 3600;
/// How long a secondary would wait to retry a failed refresh, in seconds.
const SOA_RETRY: i32 = 600;
/// How long a secondary would keep serving without a refresh, in seconds.
const SOA_EXPIRE: i32 = 86_400;
/// The mailbox label of the SOA's responsible person.
const SOA_MAILBOX: &str = "hostmaster";
/// The text the exchanger holds under `mx_without_address`, in place of its address.
const WITHOUT_ADDRESS_TEXT: &str = "this exchanger has no address (dns fault mx_without_address)";

/// The records of one configuration, ready to answer queries.
#[derive(Debug, Clone)]
pub(super) struct Zone {
    apex: LowerName,
    fault: Option<DnsFault>,
    soa: Record,
    parent_soa: Record,
    served: Vec<Entry>,
    healthy: Vec<Entry>,
}

/// A record with its owner name lowercased once, for comparisons.
#[derive(Debug, Clone)]
struct Entry {
    name: LowerName,
    record: Record,
}

/// What to do with one query.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Outcome {
    /// Send nothing at all.
    Drop,
    /// Send this response.
    Reply(Reply),
}

/// The parts of a response that depend on the zone.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reply {
    pub(super) rcode: ResponseCode,
    pub(super) authoritative: bool,
    pub(super) answers: Vec<Record>,
    pub(super) authorities: Vec<Record>,
    pub(super) additionals: Vec<Record>,
}

impl Reply {
    /// A response with no records: an error, or a refusal.
    pub(super) fn bare(rcode: ResponseCode) -> Self {
        Self {
            rcode,
            authoritative: false,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

/// The answer to one query, and the fault that shaped it, if one did.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Answer {
    pub(super) outcome: Outcome,
    pub(super) fault: Option<DnsFault>,
}

impl Zone {
    /// Builds the records of `config`; `ns_ip` is the name server's own address and `serial`
    /// the SOA serial, which changes with every configuration.
    pub(super) fn new(
        config: &DnsConfig,
        ns_ip: IpAddr,
        serial: u32,
    ) -> Result<Self, DnsConfigError> {
        let names = config.names()?;
        let ttl = config.ttl;
        let soa = soa_record(&names.apex, &names.ns_host, serial, ttl);
        let parent = names.apex.base_name();
        let parent_ns = parent
            .prepend_label(super::NS_LABEL)
            .unwrap_or_else(|_| parent.clone());
        let parent_soa = soa_record(&parent, &parent_ns, serial, ttl);

        let healthy = records(&names, config, ns_ip, &soa, None);
        let served = match config.fault {
            Some(fault @ (DnsFault::NoMx | DnsFault::MxWithoutAddress | DnsFault::StaleMx)) => {
                records(&names, config, ns_ip, &soa, Some(fault))
            }
            _ => healthy.clone(),
        };

        Ok(Self {
            apex: LowerName::from(&names.apex),
            fault: config.fault,
            soa,
            parent_soa,
            served,
            healthy,
        })
    }

    /// Answers one query.
    pub(super) fn answer(&self, query: &LowerQuery) -> Answer {
        let normal = |reply| Answer {
            outcome: Outcome::Reply(reply),
            fault: None,
        };
        if !self.apex.zone_of(query.name()) {
            return normal(Reply::bare(ResponseCode::Refused));
        }
        if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
            return normal(Reply::bare(ResponseCode::Refused));
        }

        let Some(fault) = self.fault else {
            return normal(self.lookup(&self.served, query));
        };
        let outcome = match fault {
            DnsFault::Timeout => Outcome::Drop,
            DnsFault::ServFail => Outcome::Reply(Reply::bare(ResponseCode::ServFail)),
            DnsFault::Refused => Outcome::Reply(Reply::bare(ResponseCode::Refused)),
            // An expired domain is answered by its parent, so the negative answer carries the
            // parent's SOA; the zone's own SOA would claim the zone still exists.
            DnsFault::NxDomain => Outcome::Reply(Reply {
                rcode: ResponseCode::NXDomain,
                authoritative: true,
                answers: Vec::new(),
                authorities: vec![self.parent_soa.clone()],
                additionals: Vec::new(),
            }),
            DnsFault::NoMx | DnsFault::MxWithoutAddress | DnsFault::StaleMx => {
                let served = self.lookup(&self.served, query);
                let shaped = served != self.lookup(&self.healthy, query);
                return Answer {
                    outcome: Outcome::Reply(served),
                    fault: shaped.then_some(fault),
                };
            }
        };
        Answer {
            outcome,
            fault: Some(fault),
        }
    }

    fn lookup(&self, records: &[Entry], query: &LowerQuery) -> Reply {
        let name = query.name();
        let qtype = query.query_type();
        let at_name = records.iter().filter(|e| e.name == *name);
        let answers: Vec<Record> = at_name
            .clone()
            .filter(|e| qtype == RecordType::ANY || e.record.record_type() == qtype)
            .map(|e| {
                // Keep the question's spelling, so resolvers that randomise the case of the
                // name they ask (0x20 encoding) find it unchanged in the answer.
                let mut record = e.record.clone();
                record.name = query.original().name().clone();
                record
            })
            .collect();

        if answers.is_empty() {
            // A name with no records of its own still exists when a record lives below it
            // (an empty non-terminal, RFC 8020), and the apex always exists.
            let exists = at_name.count() > 0
                || *name == self.apex
                || records.iter().any(|e| name.zone_of(&e.name));
            let rcode = if exists {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            };
            return Reply {
                rcode,
                authoritative: true,
                answers,
                authorities: vec![self.soa.clone()],
                additionals: Vec::new(),
            };
        }

        let additionals = answers
            .iter()
            .filter_map(|record| match &record.data {
                RData::MX(mx) => Some(LowerName::from(&mx.exchange)),
                RData::NS(ns) => Some(LowerName::from(&ns.0)),
                _ => None,
            })
            .flat_map(|target| {
                records
                    .iter()
                    .filter(move |e| e.name == target)
                    .filter(|e| matches!(e.record.data, RData::A(_) | RData::AAAA(_)))
                    .map(|e| e.record.clone())
            })
            .collect();

        Reply {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers,
            authorities: Vec::new(),
            additionals,
        }
    }
}

/// The zone's records, with a record-shaping fault applied.
fn records(
    names: &ZoneNames,
    config: &DnsConfig,
    ns_ip: IpAddr,
    soa: &Record,
    fault: Option<DnsFault>,
) -> Vec<Entry> {
    let ttl = config.ttl;
    let apex = &names.apex;
    let mut records = vec![
        soa.clone(),
        Record::from_rdata(apex.clone(), ttl, RData::NS(NS(names.ns_host.clone()))),
        address(&names.ns_host, ns_ip, ttl),
    ];

    let exchange = match fault {
        Some(DnsFault::NoMx) => None,
        Some(DnsFault::StaleMx) => Some(&names.stale_mx_host),
        _ => Some(&names.mx_host),
    };
    if let Some(exchange) = exchange {
        let mx = MX::new(MX_PREFERENCE, exchange.clone());
        records.push(Record::from_rdata(apex.clone(), ttl, RData::MX(mx)));
    }
    if fault == Some(DnsFault::MxWithoutAddress) {
        // The exchanger keeps a record of another type so that its name still exists and an
        // address query is NODATA rather than NXDOMAIN; the text says why, for whoever digs.
        let txt = TXT::new(vec![WITHOUT_ADDRESS_TEXT.to_string()]);
        records.push(Record::from_rdata(
            names.mx_host.clone(),
            ttl,
            RData::TXT(txt),
        ));
    } else {
        records.push(address(&names.mx_host, config.smtp_ip, ttl));
    }
    if fault == Some(DnsFault::StaleMx) {
        records.push(address(&names.stale_mx_host, config.stale_ip, ttl));
    }

    records
        .into_iter()
        .map(|record| Entry {
            name: LowerName::from(&record.name),
            record,
        })
        .collect()
}

fn soa_record(owner: &Name, ns_host: &Name, serial: u32, ttl: u32) -> Record {
    let mailbox = owner
        .prepend_label(SOA_MAILBOX)
        .unwrap_or_else(|_| owner.clone());
    let soa = SOA::new(
        ns_host.clone(),
        mailbox,
        serial,
        SOA_REFRESH,
        SOA_RETRY,
        SOA_EXPIRE,
        ttl,
    );
    Record::from_rdata(owner.clone(), ttl, RData::SOA(soa))
}

fn address(name: &Name, ip: IpAddr, ttl: u32) -> Record {
    let rdata = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name.clone(), ttl, rdata)
}

#[cfg(test)]
pub(super) mod tests {
    use std::iter;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use hickory_proto::op::Query;

    use super::*;

    const NS_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const SMTP_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

    fn zone(fault: Option<DnsFault>) -> Zone {
        let config = DnsConfig::new("lab.test", SMTP_IP).with_fault(fault);
        Zone::new(&config, NS_IP, 7).unwrap()
    }

    fn query(name: &str, qtype: RecordType) -> LowerQuery {
        LowerQuery::query(Query::query(Name::from_ascii(name).unwrap(), qtype))
    }

    fn reply(zone: &Zone, name: &str, qtype: RecordType) -> Reply {
        match zone.answer(&query(name, qtype)).outcome {
            Outcome::Reply(reply) => reply,
            Outcome::Drop => panic!("{name} {qtype} was dropped"),
        }
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn mx(reply: &Reply) -> Vec<(u16, Name)> {
        reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
                _ => None,
            })
            .collect()
    }

    /// The A and AAAA records among `records`, as name and address.
    pub(in crate::dns) fn addresses(records: &[Record]) -> Vec<(Name, IpAddr)> {
        records
            .iter()
            .filter_map(|r| match r.data {
                RData::A(a) => Some((r.name.clone(), IpAddr::V4(a.0))),
                RData::AAAA(aaaa) => Some((r.name.clone(), IpAddr::V6(aaaa.0))),
                _ => None,
            })
            .collect()
    }

    fn assert_negative(reply: &Reply, rcode: ResponseCode, soa_owner: &str) {
        assert_eq!(reply.rcode, rcode);
        assert!(reply.authoritative);
        assert!(reply.answers.is_empty(), "{:?}", reply.answers);
        assert_eq!(reply.authorities.len(), 1, "{:?}", reply.authorities);
        let soa = &reply.authorities[0];
        assert_eq!(soa.record_type(), RecordType::SOA);
        assert_eq!(soa.name, name(soa_owner));
    }

    #[test]
    fn the_healthy_mx_names_the_exchanger_with_its_address_as_additional_data() {
        let reply = reply(&zone(None), "lab.test.", RecordType::MX);
        assert_eq!(reply.rcode, ResponseCode::NoError);
        assert!(reply.authoritative);
        assert_eq!(mx(&reply), [(MX_PREFERENCE, name("mx.lab.test."))]);
        assert_eq!(reply.answers[0].ttl, 300);
        assert_eq!(
            addresses(&reply.additionals),
            [(name("mx.lab.test."), SMTP_IP)]
        );
        assert!(reply.authorities.is_empty());
    }

    #[test]
    fn the_healthy_exchanger_has_an_a_record_and_nodata_for_aaaa() {
        let zone = zone(None);
        let a = reply(&zone, "mx.lab.test.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(addresses(&a.answers), [(name("mx.lab.test."), SMTP_IP)]);

        let aaaa = reply(&zone, "mx.lab.test.", RecordType::AAAA);
        assert_negative(&aaaa, ResponseCode::NoError, "lab.test.");
    }

    #[test]
    fn an_ipv6_smtp_listener_gets_an_aaaa_record_and_nodata_for_a() {
        let config = DnsConfig::new("lab.test", IpAddr::V6(Ipv6Addr::LOCALHOST));
        let zone = Zone::new(&config, NS_IP, 1).unwrap();
        let aaaa = reply(&zone, "mx.lab.test.", RecordType::AAAA);
        assert_eq!(
            addresses(&aaaa.answers),
            [(name("mx.lab.test."), IpAddr::V6(Ipv6Addr::LOCALHOST))]
        );
        assert_negative(
            &reply(&zone, "mx.lab.test.", RecordType::A),
            ResponseCode::NoError,
            "lab.test.",
        );

        let mx = reply(&zone, "lab.test.", RecordType::MX);
        assert_eq!(
            addresses(&mx.additionals),
            [(name("mx.lab.test."), IpAddr::V6(Ipv6Addr::LOCALHOST))]
        );
    }

    #[test]
    fn negative_answers_carry_the_zone_soa_with_the_configured_ttl_as_minimum() {
        let reply = reply(&zone(None), "nothing.lab.test.", RecordType::A);
        assert_negative(&reply, ResponseCode::NXDomain, "lab.test.");
        let soa = &reply.authorities[0];
        assert_eq!(soa.ttl, 300);
        let RData::SOA(soa) = &soa.data else {
            panic!("not an SOA: {soa:?}");
        };
        assert_eq!(soa.mname, name("ns.lab.test."));
        assert_eq!(soa.rname, name("hostmaster.lab.test."));
        assert_eq!(soa.serial, 7);
        assert_eq!(soa.minimum, 300);
    }

    #[test]
    fn a_name_outside_the_zone_is_refused_without_the_aa_bit_whatever_the_fault() {
        for fault in iter_faults() {
            let reply = reply(&zone(fault), "example.com.", RecordType::MX);
            assert_eq!(reply, Reply::bare(ResponseCode::Refused), "{fault:?}");
            let answer = zone(fault).answer(&query("notlab.test.", RecordType::A));
            assert_eq!(answer.fault, None, "{fault:?}");
        }
    }

    #[test]
    fn a_query_in_another_class_is_refused() {
        let mut chaos = Query::query(name("lab.test."), RecordType::TXT);
        chaos.set_query_class(DNSClass::CH);
        let answer = zone(None).answer(&LowerQuery::query(chaos));
        assert_eq!(
            answer.outcome,
            Outcome::Reply(Reply::bare(ResponseCode::Refused))
        );
    }

    #[test]
    fn the_apex_has_no_address_so_an_implicit_mx_finds_nothing() {
        let zone = zone(None);
        for qtype in [RecordType::A, RecordType::AAAA] {
            assert_negative(
                &reply(&zone, "lab.test.", qtype),
                ResponseCode::NoError,
                "lab.test.",
            );
        }
    }

    #[test]
    fn the_apex_names_its_name_server_with_glue() {
        let reply = reply(&zone(None), "lab.test.", RecordType::NS);
        assert_eq!(reply.answers.len(), 1);
        assert_eq!(reply.answers[0].data, RData::NS(NS(name("ns.lab.test."))));
        assert_eq!(
            addresses(&reply.additionals),
            [(name("ns.lab.test."), NS_IP)]
        );
    }

    #[test]
    fn an_empty_non_terminal_above_the_exchanger_is_nodata_not_nxdomain() {
        let config = DnsConfig {
            mx_host: "smtp.site.lab.test".to_string(),
            ..DnsConfig::default()
        };
        let zone = Zone::new(&config, NS_IP, 1).unwrap();
        assert_negative(
            &reply(&zone, "site.lab.test.", RecordType::A),
            ResponseCode::NoError,
            "lab.test.",
        );
        assert_negative(
            &reply(&zone, "other.lab.test.", RecordType::A),
            ResponseCode::NXDomain,
            "lab.test.",
        );
    }

    #[test]
    fn answers_keep_the_spelling_of_the_question() {
        let reply = reply(&zone(None), "Mx.LAB.test.", RecordType::A);
        assert_eq!(reply.answers.len(), 1);
        assert_eq!(reply.answers[0].name.to_string(), "Mx.LAB.test.");
    }

    #[test]
    fn an_any_query_returns_every_record_at_the_name() {
        let reply = reply(&zone(None), "lab.test.", RecordType::ANY);
        let mut types: Vec<RecordType> = reply.answers.iter().map(Record::record_type).collect();
        types.sort();
        let mut expected = vec![RecordType::SOA, RecordType::NS, RecordType::MX];
        expected.sort();
        assert_eq!(types, expected);
    }

    #[test]
    fn healthy_answers_are_never_marked_as_a_fault() {
        let zone = zone(None);
        for (name, qtype) in every_question() {
            assert_eq!(
                zone.answer(&query(name, qtype)).fault,
                None,
                "{name} {qtype}"
            );
        }
    }

    #[test]
    fn servfail_refused_and_timeout_take_over_every_name_in_the_zone() {
        for (fault, expected) in [
            (
                DnsFault::ServFail,
                Outcome::Reply(Reply::bare(ResponseCode::ServFail)),
            ),
            (
                DnsFault::Refused,
                Outcome::Reply(Reply::bare(ResponseCode::Refused)),
            ),
            (DnsFault::Timeout, Outcome::Drop),
        ] {
            let zone = zone(Some(fault));
            for (name, qtype) in every_question() {
                let answer = zone.answer(&query(name, qtype));
                assert_eq!(answer.outcome, expected, "{fault} {name} {qtype}");
                assert_eq!(answer.fault, Some(fault), "{fault} {name} {qtype}");
            }
        }
    }

    #[test]
    fn an_expired_domain_is_nxdomain_from_the_apex_down_with_the_parents_soa() {
        let zone = zone(Some(DnsFault::NxDomain));
        for (name, qtype) in every_question() {
            let answer = zone.answer(&query(name, qtype));
            assert_eq!(answer.fault, Some(DnsFault::NxDomain));
            let Outcome::Reply(reply) = answer.outcome else {
                panic!("{name} {qtype} was dropped");
            };
            assert_negative(&reply, ResponseCode::NXDomain, "test.");
        }
    }

    #[test]
    fn no_mx_leaves_the_apex_without_mx_but_the_exchanger_still_resolves() {
        let zone = zone(Some(DnsFault::NoMx));
        let answer = zone.answer(&query("lab.test.", RecordType::MX));
        assert_eq!(answer.fault, Some(DnsFault::NoMx));
        let Outcome::Reply(mx) = answer.outcome else {
            panic!("dropped");
        };
        assert_negative(&mx, ResponseCode::NoError, "lab.test.");
        assert_negative(
            &reply(&zone, "lab.test.", RecordType::A),
            ResponseCode::NoError,
            "lab.test.",
        );

        let answer = zone.answer(&query("mx.lab.test.", RecordType::A));
        assert_eq!(answer.fault, None);
        let a = reply(&zone, "mx.lab.test.", RecordType::A);
        assert_eq!(addresses(&a.answers), [(name("mx.lab.test."), SMTP_IP)]);
    }

    #[test]
    fn mx_without_address_names_an_exchanger_that_has_no_address() {
        let zone = zone(Some(DnsFault::MxWithoutAddress));
        let mx_reply = reply(&zone, "lab.test.", RecordType::MX);
        assert_eq!(mx(&mx_reply), [(MX_PREFERENCE, name("mx.lab.test."))]);
        assert!(
            mx_reply.additionals.is_empty(),
            "{:?}",
            mx_reply.additionals
        );

        let txt = reply(&zone, "mx.lab.test.", RecordType::TXT);
        assert_eq!(txt.answers.len(), 1, "the name still exists");

        for qtype in [RecordType::A, RecordType::AAAA] {
            let answer = zone.answer(&query("mx.lab.test.", qtype));
            let Outcome::Reply(reply) = &answer.outcome else {
                panic!("dropped");
            };
            assert_negative(reply, ResponseCode::NoError, "lab.test.");
            let shaped = qtype == RecordType::A;
            assert_eq!(answer.fault.is_some(), shaped, "{qtype}");
        }
    }

    #[test]
    fn stale_mx_points_at_the_old_host_while_the_new_one_still_resolves() {
        let zone = zone(Some(DnsFault::StaleMx));
        let stale_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let answer = zone.answer(&query("lab.test.", RecordType::MX));
        assert_eq!(answer.fault, Some(DnsFault::StaleMx));
        let mx_reply = reply(&zone, "lab.test.", RecordType::MX);
        assert_eq!(mx(&mx_reply), [(MX_PREFERENCE, name("old-mx.lab.test."))]);
        assert_eq!(
            addresses(&mx_reply.additionals),
            [(name("old-mx.lab.test."), stale_ip)]
        );

        let old = reply(&zone, "old-mx.lab.test.", RecordType::A);
        assert_eq!(
            addresses(&old.answers),
            [(name("old-mx.lab.test."), stale_ip)]
        );

        let answer = zone.answer(&query("mx.lab.test.", RecordType::A));
        assert_eq!(answer.fault, None);
        let new = reply(&zone, "mx.lab.test.", RecordType::A);
        assert_eq!(addresses(&new.answers), [(name("mx.lab.test."), SMTP_IP)]);
    }

    #[test]
    fn the_old_host_does_not_exist_unless_the_mx_is_stale() {
        let reply = reply(&zone(None), "old-mx.lab.test.", RecordType::A);
        assert_negative(&reply, ResponseCode::NXDomain, "lab.test.");
    }

    fn iter_faults() -> impl Iterator<Item = Option<DnsFault>> {
        iter::once(None).chain(DnsFault::ALL.iter().copied().map(Some))
    }

    fn every_question() -> Vec<(&'static str, RecordType)> {
        let names = [
            "lab.test.",
            "mx.lab.test.",
            "ns.lab.test.",
            "old-mx.lab.test.",
            "x.lab.test.",
        ];
        let types = [
            RecordType::MX,
            RecordType::A,
            RecordType::AAAA,
            RecordType::SOA,
        ];
        names
            .iter()
            .flat_map(|&n| types.iter().map(move |&t| (n, t)))
            .collect()
    }
}
