//! A lab DNS server that is authoritative for one zone and fails on purpose.
//!
//! The documented error "450 4.4.312 DNS query failed" happens before any SMTP is spoken: the
//! sender cannot turn the smart host's or the recipient domain's name into an address. To
//! reproduce it, a test points the sender's resolver at a [`DnsServer`] and picks a
//! [`DnsFault`]; with no fault the server answers like a correct authority, so the happy path
//! can be checked against the same server.
//!
//! The healthy zone (`lab.test` by default) holds:
//!
//! ```text
//! lab.test.        SOA   ns.lab.test. hostmaster.lab.test. SERIAL 3600 600 86400 TTL
//! lab.test.        NS    ns.lab.test.
//! lab.test.        MX    10 mx.lab.test.
//! ns.lab.test.     A     the DNS server's own address
//! mx.lab.test.     A     the SMTP listener's address (AAAA when it is IPv6)
//! ```
//!
//! Every answer from the zone has the AA bit set. A name in the zone that holds no record is
//! NXDOMAIN; a name that exists but lacks the asked type is NODATA (NOERROR, no answer); both
//! carry the zone's SOA in the authority section so resolvers cache the negative answer for
//! the configured TTL. A name outside the zone is REFUSED, because the server is an authority
//! and not a recursive resolver. The apex deliberately has no address of its own: a sender
//! that finds no MX falls back to the apex's address (the implicit MX of RFC 5321, section
//! 5.1), and under [`DnsFault::NoMx`] that fallback must fail too.
//!
//! The parts: `fault` names the misbehaviours ([`DnsFault`]); `config` says what the zone
//! holds ([`DnsConfig`]); `zone` builds the records and answers one query with no I/O, so every
//! answer shape is tested without a socket; `handler` puts those answers on the wire through
//! hickory-server, which does all the encoding; `server` binds UDP and TCP on one port and
//! serves until the shutdown token is cancelled ([`DnsServer`]).

mod config;
mod fault;
mod handler;
mod server;
mod zone;

#[cfg(test)]
mod tests;

pub use config::{DnsConfig, DnsConfigError};
pub use fault::{DnsFault, UnknownDnsFault};
pub use server::DnsServer;

/// The preference of the zone's single MX record.
pub const MX_PREFERENCE: u16 = 10;

/// The label of the old exchanger that [`DnsFault::StaleMx`] points at, below the zone.
pub const STALE_MX_LABEL: &str = "old-mx";

/// The label of the zone's name server, below the zone.
pub const NS_LABEL: &str = "ns";
