//! Which TLS versions a server offers, and what a completed handshake negotiated.

use std::fmt;
use std::str::FromStr;

use rustls::{ProtocolVersion, ServerConnection, SupportedProtocolVersion};
use serde::{Deserialize, Serialize};

use super::TlsError;

/// The TLS protocol versions a server accepts.
///
/// Restricting the versions reproduces a destination that a sender cannot agree a protocol with,
/// such as an old server that stops at TLS 1.2 facing a sender that requires TLS 1.3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TlsVersions {
    /// TLS 1.2 and TLS 1.3; a client that offers both gets TLS 1.3.
    #[default]
    #[serde(rename = "any")]
    Any,
    /// TLS 1.2 only.
    #[serde(rename = "1.2")]
    Tls12Only,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13Only,
}

impl TlsVersions {
    /// Every choice: any, TLS 1.2 only, TLS 1.3 only.
    pub const ALL: &'static [TlsVersions] = &[Self::Any, Self::Tls12Only, Self::Tls13Only];

    /// The choice's name: "any", "1.2" or "1.3".
    pub fn name(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::Tls12Only => "1.2",
            Self::Tls13Only => "1.3",
        }
    }

    /// The choice with this name, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }

    /// The rustls protocol versions for this choice.
    pub fn protocol_versions(self) -> &'static [&'static SupportedProtocolVersion] {
        // Statics, not constants: the rustls versions are statics, and only a static may borrow
        // one for the life of the program.
        static ANY: &[&SupportedProtocolVersion] =
            &[&rustls::version::TLS13, &rustls::version::TLS12];
        static TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
        static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

        match self {
            Self::Any => ANY,
            Self::Tls12Only => TLS12_ONLY,
            Self::Tls13Only => TLS13_ONLY,
        }
    }

    /// The position of the choice in [`TlsVersions::ALL`], for indexing per-choice tables.
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for TlsVersions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TlsVersions {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| TlsError::UnknownVersions(s.to_string()))
    }
}

/// What a TLS handshake negotiated, as the capture store records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// The protocol version: "TLSv1.2" or "TLSv1.3".
    pub version: String,
    /// The cipher suite as rustls names it, such as "TLS13_AES_128_GCM_SHA256".
    pub cipher: String,
    /// The server name the client sent (SNI), if it sent one.
    pub sni: Option<String>,
}

impl TlsInfo {
    /// Reads the negotiated parameters from a server connection.
    ///
    /// It is meant for a connection whose handshake has completed; before that, rustls may not
    /// know the version or the cipher suite yet, and they read as "unknown".
    pub fn from_server_connection(conn: &ServerConnection) -> Self {
        let version = match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_string(),
        };
        let cipher = match conn.negotiated_cipher_suite() {
            Some(suite) => {
                let suite = suite.suite();
                suite
                    .as_str()
                    .map_or_else(|| format!("{suite:?}"), str::to_string)
            }
            None => "unknown".to_string(),
        };
        Self {
            version,
            cipher,
            sni: conn.server_name().map(str::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_through_their_names() {
        for &versions in TlsVersions::ALL {
            assert_eq!(TlsVersions::from_name(versions.name()), Some(versions));
            let json = serde_json::to_string(&versions).unwrap();
            assert_eq!(json, format!("\"{}\"", versions.name()));
        }
        assert_eq!(TlsVersions::from_name("any"), Some(TlsVersions::Any));
        assert_eq!(TlsVersions::from_name("1.2"), Some(TlsVersions::Tls12Only));
        assert_eq!(TlsVersions::from_name("1.3"), Some(TlsVersions::Tls13Only));
    }

    #[test]
    fn all_lists_versions_in_index_order() {
        for (i, versions) in TlsVersions::ALL.iter().enumerate() {
            assert_eq!(versions.index(), i);
        }
    }

    #[test]
    fn an_unknown_versions_name_is_rejected() {
        assert_eq!(TlsVersions::from_name("1.1"), None);
        assert_eq!(
            "tls1.3".parse::<TlsVersions>().unwrap_err().to_string(),
            "unknown tls versions \"tls1.3\": expected \"any\", \"1.2\" or \"1.3\""
        );
    }
}
