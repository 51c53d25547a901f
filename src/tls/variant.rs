//! The named ways a server certificate can be wrong, as scenarios and the command line spell them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::TlsError;

/// Which certificate a server presents, and so which validation failure a sender meets.
///
/// Every variant except [`CertVariant::Valid`] fails for a client that trusts only the lab CA and
/// checks the name it connected to; each fails for a different reason, so that each of the
/// causes of "450 4.7.320 Certificate validation failed" can be reproduced on its own.
///
/// Every leaf has an ECDSA P-256 key generated at start-up, except `valid-rsa`, whose RSA-2048
/// key is committed in `certs/` because the *ring* provider cannot generate RSA keys. There is
/// no variant with a weak (1024-bit RSA) key: a server has to sign its handshake with the leaf's
/// key, and *ring* does not sign with an RSA key shorter than 2048 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertVariant {
    /// Signed by the lab CA, for the hostname, and in date.
    Valid,
    /// Signed by the lab CA, for the hostname, but its validity ended yesterday.
    Expired,
    /// Signed by the lab CA, for the hostname, but valid only from thirty days from now.
    NotYetValid,
    /// Signed by the lab CA and in date, but issued for another host.
    WrongHost,
    /// For the hostname and in date, but signed by its own key.
    SelfSigned,
    /// For the hostname and in date, but signed by a CA that nobody trusts.
    UntrustedRoot,
    /// Signed by an intermediate CA under the lab CA, which the server leaves out of the chain.
    IncompleteChain,
    /// Like `Valid`, with an RSA-2048 key, for senders that want or only accept RSA.
    ValidRsa,
}

impl CertVariant {
    /// Every variant, in the order they are documented and generated.
    pub const ALL: &'static [CertVariant] = &[
        Self::Valid,
        Self::Expired,
        Self::NotYetValid,
        Self::WrongHost,
        Self::SelfSigned,
        Self::UntrustedRoot,
        Self::IncompleteChain,
        Self::ValidRsa,
    ];

    /// The variant's name as scenarios, file names and the command line spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::WrongHost => "wrong-host",
            Self::SelfSigned => "self-signed",
            Self::UntrustedRoot => "untrusted-root",
            Self::IncompleteChain => "incomplete-chain",
            Self::ValidRsa => "valid-rsa",
        }
    }

    /// The variant with this name, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }

    /// One sentence saying what is wrong with the certificate, for listings and lab notes.
    pub fn description(self) -> &'static str {
        match self {
            Self::Valid => "A certificate for the hostname, signed by the lab CA and in date.",
            Self::Expired => {
                "A certificate for the hostname, signed by the lab CA, that expired \
                              yesterday."
            }
            Self::NotYetValid => {
                "A certificate for the hostname, signed by the lab CA, that \
                                  becomes valid only in thirty days."
            }
            Self::WrongHost => {
                "A certificate signed by the lab CA and in date, but issued for \
                                another host name."
            }
            Self::SelfSigned => {
                "A certificate for the hostname that is signed by its own key \
                                 rather than by any CA."
            }
            Self::UntrustedRoot => {
                "A certificate for the hostname signed by a CA that no sender \
                                    trusts."
            }
            Self::IncompleteChain => {
                "A certificate for the hostname signed by an intermediate CA \
                                      that the server leaves out of the chain it sends."
            }
            Self::ValidRsa => {
                "A certificate for the hostname, signed by the lab CA and in date, with an \
                 RSA-2048 key."
            }
        }
    }

    /// The position of the variant in [`CertVariant::ALL`], for indexing per-variant tables.
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CertVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CertVariant {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| TlsError::UnknownVariant(s.to_string()))
    }
}

/// The variant names joined for an error message.
pub(super) fn names() -> String {
    CertVariant::ALL
        .iter()
        .map(|v| v.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_its_name() {
        for &variant in CertVariant::ALL {
            assert_eq!(CertVariant::from_name(variant.name()), Some(variant));
            assert_eq!(variant.name().parse::<CertVariant>().unwrap(), variant);
        }
    }

    #[test]
    fn all_lists_variants_in_index_order() {
        for (i, variant) in CertVariant::ALL.iter().enumerate() {
            assert_eq!(variant.index(), i);
        }
    }

    #[test]
    fn serde_spells_variants_by_their_names() {
        for &variant in CertVariant::ALL {
            let json = serde_json::to_string(&variant).unwrap();
            assert_eq!(json, format!("\"{}\"", variant.name()));
            assert_eq!(serde_json::from_str::<CertVariant>(&json).unwrap(), variant);
        }
    }

    #[test]
    fn an_unknown_name_is_rejected_with_the_known_names() {
        assert_eq!(CertVariant::from_name("Valid"), None);
        let err = "weak-key".parse::<CertVariant>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown certificate variant \"weak-key\": expected one of valid, expired, \
             not-yet-valid, wrong-host, self-signed, untrusted-root, incomplete-chain, valid-rsa"
        );
    }

    #[test]
    fn every_description_is_one_sentence() {
        for &variant in CertVariant::ALL {
            let text = variant.description();
            assert!(text.ends_with('.'), "{variant}: {text}");
            assert_eq!(text.matches(". ").count(), 0, "{variant}: {text}");
        }
    }
}
