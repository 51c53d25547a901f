//! What the lab zone holds and which fault is in force.

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::rr::{LowerName, Name};

use super::{DnsFault, NS_LABEL, STALE_MX_LABEL};

/// The largest TTL a record may carry (RFC 2181, section 8).
const MAX_TTL: u32 = i32::MAX as u32;

/// What the lab DNS server serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The zone the server is authoritative for, such as `lab.test`.
    pub zone: String,
    /// The exchanger's name, a name below the zone; normally the SMTP server's hostname.
    pub mx_host: String,
    /// Where the exchanger's A record (AAAA, for IPv6) points: the SMTP listener's IP.
    pub smtp_ip: IpAddr,
    /// Where [`DnsFault::StaleMx`]'s old exchanger points. The default, 127.0.0.2, is a
    /// loopback address where nothing listens, so connections to it are refused.
    pub stale_ip: IpAddr,
    /// The misbehaviour in force; `None` serves a healthy zone.
    pub fault: Option<DnsFault>,
    /// The TTL of every record, and the SOA minimum that bounds negative caching, in seconds.
    pub ttl: u32,
}

impl DnsConfig {
    /// The zone used when none is given.
    pub const DEFAULT_ZONE: &'static str = "lab.test";

    /// A healthy zone whose exchanger is `mx.<zone>` at `smtp_ip`.
    pub fn new(zone: impl Into<String>, smtp_ip: IpAddr) -> Self {
        let zone = zone.into();
        let apex = zone.trim_end_matches('.');
        Self {
            mx_host: format!("mx.{apex}"),
            zone,
            smtp_ip,
            stale_ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            fault: None,
            ttl: 300,
        }
    }

    /// The same zone with `fault` in force.
    pub fn with_fault(mut self, fault: impl Into<Option<DnsFault>>) -> Self {
        self.fault = fault.into();
        self
    }

    /// The old exchanger's name that [`DnsFault::StaleMx`] points at: `old-mx.<zone>`.
    pub fn stale_mx_host(&self) -> String {
        format!("{STALE_MX_LABEL}.{}", self.zone.trim_end_matches('.'))
    }

    /// Checks that the names parse, that the exchanger is below the zone and does not clash
    /// with the zone's own names, and that the TTL is in range.
    pub fn validate(&self) -> Result<(), DnsConfigError> {
        self.names().map(|_| ())
    }

    /// The parsed names, once they pass [`validate`](Self::validate).
    pub(super) fn names(&self) -> Result<ZoneNames, DnsConfigError> {
        let apex = parse_name("zone", &self.zone)?;
        if apex.is_root() {
            return Err(DnsConfigError::RootZone);
        }
        let mx_host = parse_name("mx_host", &self.mx_host)?;
        let below_zone = LowerName::from(&apex).zone_of(&LowerName::from(&mx_host));
        if !below_zone || LowerName::from(&apex) == LowerName::from(&mx_host) {
            return Err(DnsConfigError::MxHostOutsideZone {
                mx_host: self.mx_host.clone(),
                zone: self.zone.clone(),
            });
        }
        let ns_host = below(&apex, NS_LABEL)?;
        let stale_mx_host = below(&apex, STALE_MX_LABEL)?;
        let mx = LowerName::from(&mx_host);
        if mx == LowerName::from(&ns_host) || mx == LowerName::from(&stale_mx_host) {
            return Err(DnsConfigError::MxHostTaken {
                mx_host: self.mx_host.clone(),
            });
        }
        if self.ttl > MAX_TTL {
            return Err(DnsConfigError::TtlTooLarge(self.ttl));
        }
        Ok(ZoneNames {
            apex,
            mx_host,
            ns_host,
            stale_mx_host,
        })
    }
}

impl Default for DnsConfig {
    /// `lab.test`, with the exchanger `mx.lab.test` at 127.0.0.1, healthy.
    fn default() -> Self {
        Self::new(Self::DEFAULT_ZONE, IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

/// The names of the zone, parsed and fully qualified.
#[derive(Debug, Clone)]
pub(super) struct ZoneNames {
    pub(super) apex: Name,
    pub(super) mx_host: Name,
    pub(super) ns_host: Name,
    pub(super) stale_mx_host: Name,
}

/// Why a [`DnsConfig`] cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsConfigError {
    /// A name does not parse as a domain name.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidName {
        /// The field that holds it.
        field: &'static str,
        /// The name as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The zone is the root, which would make the server answer for every name.
    #[error("zone must not be the root")]
    RootZone,
    /// The exchanger is not a name below the zone, so the server could not answer for it.
    #[error("mx_host {mx_host:?} is not a name below the zone {zone:?}")]
    MxHostOutsideZone {
        /// The exchanger as given.
        mx_host: String,
        /// The zone as given.
        zone: String,
    },
    /// The exchanger is the name server's name or the stale exchanger's name.
    #[error("mx_host {mx_host:?} is one of the zone's own names (ns, old-mx)")]
    MxHostTaken {
        /// The exchanger as given.
        mx_host: String,
    },
    /// The TTL is above 2147483647 seconds.
    #[error("ttl {0} is larger than 2147483647 seconds")]
    TtlTooLarge(u32),
}

fn parse_name(field: &'static str, value: &str) -> Result<Name, DnsConfigError> {
    let invalid = |reason: String| DnsConfigError::InvalidName {
        field,
        value: value.to_string(),
        reason,
    };
    if value.is_empty() {
        return Err(invalid("empty name".to_string()));
    }
    let mut name = Name::from_ascii(value).map_err(|e| invalid(e.to_string()))?;
    name.set_fqdn(true);
    Ok(name)
}

fn below(apex: &Name, label: &str) -> Result<Name, DnsConfigError> {
    apex.prepend_label(label)
        .map_err(|e| DnsConfigError::InvalidName {
            field: "zone",
            value: apex.to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_a_healthy_lab_test_with_mx_on_loopback() {
        let config = DnsConfig::default();
        assert_eq!(config.zone, "lab.test");
        assert_eq!(config.mx_host, "mx.lab.test");
        assert_eq!(config.smtp_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.stale_ip, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(config.fault, None);
        assert_eq!(config.ttl, 300);
        assert_eq!(config.stale_mx_host(), "old-mx.lab.test");
        config.validate().unwrap();
    }

    #[test]
    fn a_trailing_dot_on_the_zone_does_not_double_up_in_derived_names() {
        let config = DnsConfig::new("example.test.", IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.mx_host, "mx.example.test");
        assert_eq!(config.stale_mx_host(), "old-mx.example.test");
        config.validate().unwrap();
    }

    #[test]
    fn an_exchanger_outside_the_zone_is_rejected_with_both_names() {
        let config = DnsConfig {
            mx_host: "mail.other.test".to_string(),
            ..DnsConfig::default()
        };
        let error = config.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "mx_host \"mail.other.test\" is not a name below the zone \"lab.test\""
        );
    }

    #[test]
    fn the_apex_itself_is_not_accepted_as_the_exchanger() {
        let config = DnsConfig {
            mx_host: "lab.test".to_string(),
            ..DnsConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(DnsConfigError::MxHostOutsideZone { .. })
        ));
    }

    #[test]
    fn an_exchanger_named_like_the_zones_own_hosts_is_rejected() {
        for taken in ["ns.lab.test", "OLD-MX.lab.test."] {
            let config = DnsConfig {
                mx_host: taken.to_string(),
                ..DnsConfig::default()
            };
            assert!(
                matches!(config.validate(), Err(DnsConfigError::MxHostTaken { .. })),
                "{taken}"
            );
        }
    }

    #[test]
    fn a_root_or_empty_zone_is_rejected() {
        let root = DnsConfig {
            zone: ".".to_string(),
            mx_host: "mx.".to_string(),
            ..DnsConfig::default()
        };
        assert_eq!(root.validate(), Err(DnsConfigError::RootZone));

        let empty = DnsConfig {
            zone: String::new(),
            ..DnsConfig::default()
        };
        assert!(matches!(
            empty.validate(),
            Err(DnsConfigError::InvalidName { field: "zone", .. })
        ));
    }

    #[test]
    fn a_ttl_beyond_rfc_2181_is_rejected() {
        let config = DnsConfig {
            ttl: u32::MAX,
            ..DnsConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(DnsConfigError::TtlTooLarge(u32::MAX))
        );
    }
}
