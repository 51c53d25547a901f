//! The ways the lab DNS server misbehaves, each registered by a snake_case name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which misbehaviour the lab DNS server shows.
///
/// Each one is a way a real sender ends up with "450 4.4.312 DNS query failed": the authority
/// is broken or unreachable (`servfail`, `refused`, `timeout`), the domain is gone (`nxdomain`,
/// `no_mx`), or the records lead nowhere (`mx_without_address`, `stale_mx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DnsFault {
    /// Every query in the zone gets SERVFAIL.
    #[serde(rename = "servfail")]
    ServFail,
    /// Every query in the zone gets REFUSED.
    #[serde(rename = "refused")]
    Refused,
    /// The domain expired: the apex and every name under it are NXDOMAIN.
    #[serde(rename = "nxdomain")]
    NxDomain,
    /// The zone exists but its apex has no MX (NODATA) and no address.
    #[serde(rename = "no_mx")]
    NoMx,
    /// No query is ever answered. Over TCP the connection stays open, unanswered, until it has
    /// been idle for ten seconds, when the server closes it; a resolver that waits longer than
    /// that sees a closed connection rather than a timeout.
    #[serde(rename = "timeout")]
    Timeout,
    /// The MX names the exchanger, which has no A or AAAA record.
    #[serde(rename = "mx_without_address")]
    MxWithoutAddress,
    /// The MX names the old exchanger, whose address refuses connections.
    #[serde(rename = "stale_mx")]
    StaleMx,
}

impl DnsFault {
    /// Every fault, in the order they are documented.
    pub const ALL: &'static [DnsFault] = &[
        DnsFault::ServFail,
        DnsFault::Refused,
        DnsFault::NxDomain,
        DnsFault::NoMx,
        DnsFault::Timeout,
        DnsFault::MxWithoutAddress,
        DnsFault::StaleMx,
    ];

    /// The name used in scenario files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DnsFault::ServFail => "servfail",
            DnsFault::Refused => "refused",
            DnsFault::NxDomain => "nxdomain",
            DnsFault::NoMx => "no_mx",
            DnsFault::Timeout => "timeout",
            DnsFault::MxWithoutAddress => "mx_without_address",
            DnsFault::StaleMx => "stale_mx",
        }
    }

    /// The fault with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// What the server does, and what in the real world looks like it, in one sentence.
    pub fn description(self) -> &'static str {
        match self {
            DnsFault::ServFail => {
                "every query in the zone gets SERVFAIL, as from a broken or unreachable authority"
            }
            DnsFault::Refused => {
                "every query in the zone gets REFUSED, as from a server that is no longer \
                 authoritative for it"
            }
            DnsFault::NxDomain => {
                "the domain expired: the apex and every name under it are NXDOMAIN, with the \
                 parent zone's SOA"
            }
            DnsFault::NoMx => {
                "the domain exists but its apex has no MX and no address, so neither the MX nor \
                 the implicit MX gives a host; the exchanger's own address still resolves"
            }
            DnsFault::Timeout => {
                "every query is read and dropped without an answer, so resolvers time out"
            }
            DnsFault::MxWithoutAddress => {
                "the MX names the exchanger, but the exchanger has no A or AAAA record; its name \
                 still exists (it keeps a TXT record), so address queries get NODATA"
            }
            DnsFault::StaleMx => {
                "the MX still names the old host old-mx.<zone>, whose address refuses \
                 connections; the current exchanger resolves only when asked for directly"
            }
        }
    }
}

impl fmt::Display for DnsFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a name that is not a [`DnsFault`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dns fault {0:?}")]
pub struct UnknownDnsFault(pub String);

impl FromStr for DnsFault {
    type Err = UnknownDnsFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| UnknownDnsFault(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_is_found_by_its_own_name() {
        for &fault in DnsFault::ALL {
            assert_eq!(DnsFault::from_name(fault.name()), Some(fault));
            assert_eq!(fault.name().parse::<DnsFault>(), Ok(fault));
            assert_eq!(fault.to_string(), fault.name());
        }
    }

    #[test]
    fn serde_uses_the_same_names_as_scenario_files() {
        for &fault in DnsFault::ALL {
            let json = serde_json::to_string(&fault).unwrap();
            assert_eq!(json, format!("\"{}\"", fault.name()));
            assert_eq!(serde_json::from_str::<DnsFault>(&json).unwrap(), fault);
        }
    }

    #[test]
    fn an_unknown_name_is_an_error_that_quotes_it() {
        assert_eq!(DnsFault::from_name("serv_fail"), None);
        let error = "slow".parse::<DnsFault>().unwrap_err();
        assert_eq!(error.to_string(), "unknown dns fault \"slow\"");
    }

    #[test]
    fn every_fault_has_a_description() {
        for &fault in DnsFault::ALL {
            assert!(!fault.description().is_empty(), "{fault}");
        }
    }
}
