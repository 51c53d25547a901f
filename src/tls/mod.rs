//! Certificates that fail validation on purpose, and the rustls configurations that serve them.
//!
//! A sender that meets "450 4.7.320 Certificate validation failed" met a destination whose
//! certificate was expired, not yet valid, issued for another name, or not trusted. This module
//! reproduces each of those with real certificates, so that every client's own verifier reaches
//! its own verdict:
//!
//! - the **lab CA** ([`LAB_CA_PEM`]) is committed in `certs/` and is the one root a lab's senders
//!   are told to trust. It is name-constrained to `.test`, so its key, which is public on purpose,
//!   cannot vouch for any real host;
//! - a [`Catalogue`] holds one [`Leaf`] per [`CertVariant`] for a single hostname, generated with
//!   ECDSA P-256 keys the first time [`catalogue`] is asked for that hostname and kept for the
//!   life of the process;
//! - [`Catalogue::server_config`] hands the session a ready [`rustls::ServerConfig`] for a variant
//!   and a choice of [`TlsVersions`], for STARTTLS or implicit TLS alike;
//! - once a handshake completes, [`TlsInfo`] records what was negotiated for the capture store.
//!
//! Everything here uses the *ring* provider explicitly, through [`crypto_provider`], so the
//! outcome never depends on which provider some other part of the process installed as default.

mod ca;
mod catalogue;
mod info;
mod variant;

#[cfg(test)]
mod testing;

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

pub use ca::{LAB_CA_KEY_PEM, LAB_CA_PEM, generate_ca};
pub use catalogue::{Catalogue, Leaf, WRONG_HOST_NAME, catalogue, try_catalogue};
pub use info::{TlsInfo, TlsVersions};
pub use variant::CertVariant;

/// Why a certificate, a catalogue or a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The hostname is not a syntactically valid DNS name.
    #[error("invalid hostname {0:?}: expected a dns name such as \"mx.lab.test\"")]
    InvalidHostname(String),

    /// The hostname is valid but not under `.test`, the only names the lab CA may sign.
    #[error("hostname {0:?} is not under .test, the only names the lab ca signs")]
    HostnameOutsideLab(String),

    /// A certificate variant name did not match any [`CertVariant`].
    #[error("unknown certificate variant {0:?}: expected one of {names}", names = variant::names())]
    UnknownVariant(String),

    /// A TLS versions name did not match any [`TlsVersions`].
    #[error("unknown tls versions {0:?}: expected \"any\", \"1.2\" or \"1.3\"")]
    UnknownVersions(String),

    /// The CA certificate or key given to [`Catalogue::with_ca`] could not be used.
    #[error("unusable ca: {0}")]
    UnusableCa(String),

    /// rcgen refused to generate or sign a certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),

    /// rustls refused a configuration.
    #[error("tls configuration failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The *ring* crypto provider every configuration in this module is built with.
///
/// Building configurations through one explicit provider, instead of the process default, keeps
/// the cipher suites and signature algorithms the same whatever else is linked into the process.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A root store holding only the committed lab CA: what a client in an in-process test trusts.
pub fn lab_root_store() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(LAB_CA_PEM.as_bytes())
        .expect("the committed lab ca is a pem certificate");
    roots
        .add(ca)
        .expect("the committed lab ca is a valid trust anchor");
    roots
}
