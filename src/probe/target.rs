//! What the probe is pointed at, parsed from the command line's TARGET.
//!
//! Three forms, told apart by their syntax alone:
//!
//! - an IP address, with or without a port: `127.0.0.1`, `127.0.0.1:2525`, `::1`, `[::1]:2525`
//!   (an SMTP address literal such as `[127.0.0.1]` or `[IPv6:::1]` also works). No DNS is used;
//! - a name, which is a mail **domain** unless the caller says it is a smart host: its MX records
//!   are looked up and tried in preference order, and a domain with no MX records is its own
//!   implicit MX (RFC 5321 section 5.1);
//! - with `--smart-host`, a name is a **smart host**: only its address records are looked up, as a
//!   connector configured with a smart host does.
//!
//! A name may carry a port too (`mx.lab.test:2525`).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A mail domain: its MX hosts, or the domain itself when it has no MX records.
    Domain(String),
    /// A smart host: the name's own address records, no MX lookup.
    SmartHost(String),
    /// An address: no DNS at all.
    Address(IpAddr),
}

/// Why a TARGET could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid target {target:?}: {reason}")]
pub struct TargetError {
    /// The target as given.
    pub target: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Target {
    /// Parses TARGET; a name is a smart host when `smart_host` is true, else a domain. The port,
    /// when TARGET carries one, is returned beside it.
    pub fn parse(text: &str, smart_host: bool) -> Result<(Target, Option<u16>), TargetError> {
        let error = |reason: &str| TargetError {
            target: text.to_string(),
            reason: reason.to_string(),
        };

        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok((Target::Address(ip), None));
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok((Target::Address(addr.ip()), Some(addr.port())));
        }
        if let Some(inner) = text.strip_prefix('[') {
            let (literal, after) = inner
                .split_once(']')
                .ok_or_else(|| error("missing ] after the address"))?;
            let ip = address_literal(literal).ok_or_else(|| error("not an ip address in [ ]"))?;
            let port = match after {
                "" => None,
                _ => Some(port(after.strip_prefix(':').unwrap_or("x")).map_err(|r| error(&r))?),
            };
            return Ok((Target::Address(ip), port));
        }

        let (name, port) = match text.rsplit_once(':') {
            Some((name, p)) => (name, Some(port(p).map_err(|r| error(&r))?)),
            None => (text, None),
        };
        let name = host_name(name).map_err(|r| error(&r))?;
        let target = if smart_host {
            Target::SmartHost(name)
        } else {
            Target::Domain(name)
        };
        Ok((target, port))
    }

    /// The name, for a domain or a smart host.
    pub fn name(&self) -> Option<&str> {
        match self {
            Target::Domain(name) | Target::SmartHost(name) => Some(name),
            Target::Address(_) => None,
        }
    }

    /// The recipient used when none is given: postmaster at the target's name, which every
    /// domain must accept (RFC 5321 section 4.5.1), or a lab address for a bare IP address.
    pub fn default_recipient(&self) -> String {
        match self.name() {
            Some(name) => format!("postmaster@{name}"),
            None => "probe@lab.test".to_string(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Domain(name) => write!(f, "domain {name}"),
            Target::SmartHost(name) => write!(f, "smart host {name}"),
            Target::Address(ip) => write!(f, "address {ip}"),
        }
    }
}

/// The inside of `[...]`: an IPv4 or IPv6 address, the latter optionally tagged `IPv6:` as in an
/// SMTP address literal (RFC 5321 section 4.1.3).
fn address_literal(literal: &str) -> Option<IpAddr> {
    let tagged = literal
        .get(..5)
        .filter(|tag| tag.eq_ignore_ascii_case("IPv6:"))
        .map(|_| &literal[5..]);
    match tagged {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => literal.parse().ok(),
    }
}

fn port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port {text:?} is not a number from 1 to 65535")),
        Ok(port) => Ok(port),
    }
}

/// A host name of letter-digit-hyphen labels (underscores tolerated, as resolvers do), lowered,
/// without a trailing dot.
pub(crate) fn host_name(name: &str) -> Result<String, String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("empty name".to_string());
    }
    if name.len() > 253 {
        return Err("name longer than 253 octets".to_string());
    }
    if !name.is_ascii() {
        return Err("names must be ascii; give an internationalised name in its xn-- form".into());
    }
    for label in name.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(format!("{label:?} is not a valid label of a host name"));
        }
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Target, Option<u16>) {
        Target::parse(text, false).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn addresses_parse_with_and_without_ports() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(parse("127.0.0.1"), (Target::Address(v4), None));
        assert_eq!(parse("127.0.0.1:2525"), (Target::Address(v4), Some(2525)));
        assert_eq!(parse("::1"), (Target::Address(v6), None));
        assert_eq!(parse("[::1]:2525"), (Target::Address(v6), Some(2525)));
        assert_eq!(parse("[::1]"), (Target::Address(v6), None));
        assert_eq!(parse("[127.0.0.1]"), (Target::Address(v4), None));
        assert_eq!(parse("[IPv6:::1]:25"), (Target::Address(v6), Some(25)));
    }

    #[test]
    fn a_name_is_a_domain_unless_it_is_declared_a_smart_host() {
        assert_eq!(
            parse("Lab.Test."),
            (Target::Domain("lab.test".into()), None)
        );
        assert_eq!(
            parse("mx.lab.test:2525"),
            (Target::Domain("mx.lab.test".into()), Some(2525))
        );
        assert_eq!(
            Target::parse("relay.lab.test", true).unwrap(),
            (Target::SmartHost("relay.lab.test".into()), None)
        );
    }

    #[test]
    fn nonsense_targets_are_refused_with_the_reason() {
        for bad in [
            "",
            "[::1",
            "[nope]",
            "[::1]2525",
            "a..b",
            "-a.test",
            "lab.test:0",
            "x:y",
        ] {
            assert!(
                Target::parse(bad, false).is_err(),
                "{bad:?} should be refused"
            );
        }
        let error = Target::parse("lab.test:99999", false).unwrap_err();
        assert!(error.to_string().contains("99999"), "{error}");
    }

    #[test]
    fn the_default_recipient_is_postmaster_at_the_name_or_a_lab_address() {
        assert_eq!(
            parse("lab.test").0.default_recipient(),
            "postmaster@lab.test"
        );
        assert_eq!(parse("127.0.0.1").0.default_recipient(), "probe@lab.test");
    }
}
