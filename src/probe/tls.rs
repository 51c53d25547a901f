//! TLS for the sending side: which roots to trust, a certificate verifier that says exactly what
//! is wrong with a certificate, and how a failed handshake maps to a documented error.
//!
//! The verifier wraps rustls's WebPKI verifier. When that verifier refuses a certificate, the
//! reason is kept, so that the report can say "expired" or "issued for another name" rather than
//! "handshake failed". In opportunistic mode the certificate is then accepted anyway, as
//! opportunistic senders do, and the reason becomes a warning; in `require` mode the refusal
//! stands and ends the handshake.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};

use crate::scenario::DocumentedError;
use crate::tls::crypto_provider;

/// Where the system's trusted roots are read from when no `--ca` is given: the bundle that
/// Debian, Ubuntu, Alpine and their derivatives keep up to date.
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The roots a probe trusts.
#[derive(Debug, Clone, Default)]
pub enum Roots {
    /// The system bundle at [`SYSTEM_BUNDLE`], read when a handshake needs it.
    #[default]
    System,
    /// These roots only.
    Store(Arc<RootCertStore>),
}

/// Why a set of roots could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    /// The file could not be read.
    #[error("cannot read ca file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The system bundle is not where it is expected.
    #[error(
        "the system's trusted roots were not found at {SYSTEM_BUNDLE} ({source}); install the \
         ca-certificates package or give --ca FILE"
    )]
    NoSystemBundle {
        /// Why it could not be read.
        source: io::Error,
    },
    /// The file holds no usable certificate.
    #[error("ca file {} holds no usable pem certificate", path.display())]
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
}

/// Loads the PEM certificates in `path` as the only trusted roots.
pub fn load_ca_file(path: &Path) -> Result<RootCertStore, RootsError> {
    let pem = std::fs::read(path).map_err(|source| RootsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    roots_from_pem(&pem).ok_or_else(|| RootsError::NoCertificates {
        path: path.to_path_buf(),
    })
}

/// Loads the system's trusted roots from [`SYSTEM_BUNDLE`].
pub fn system_roots() -> Result<RootCertStore, RootsError> {
    let pem =
        std::fs::read(SYSTEM_BUNDLE).map_err(|source| RootsError::NoSystemBundle { source })?;
    roots_from_pem(&pem).ok_or_else(|| RootsError::NoCertificates {
        path: PathBuf::from(SYSTEM_BUNDLE),
    })
}

/// The certificates in a PEM bundle that make usable trust anchors; `None` if there are none.
fn roots_from_pem(pem: &[u8]) -> Option<RootCertStore> {
    let mut reader = pem;
    // A bundle may hold a certificate that fails to parse; like other TLS clients, skip it and
    // trust the rest.
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut reader)
        .filter_map(Result::ok)
        .collect();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    (added > 0).then_some(roots)
}

impl Roots {
    /// The root store, and a warning when the system bundle had to be replaced by nothing.
    pub(crate) fn store(&self) -> (Arc<RootCertStore>, Option<String>) {
        match self {
            Roots::Store(store) => (store.clone(), None),
            Roots::System => match system_roots() {
                Ok(store) => (Arc::new(store), None),
                Err(e) => (
                    Arc::new(RootCertStore::empty()),
                    Some(format!("{e}; no certificate can validate")),
                ),
            },
        }
    }
}

/// The TLS versions the probe offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3, as a current sender offers.
    #[default]
    #[value(name = "any")]
    Any,
    /// TLS 1.2 only, as an older sender.
    #[value(name = "1.2")]
    Tls12,
    /// TLS 1.3 only, as a sender that insists on it.
    #[value(name = "1.3")]
    Tls13,
}

static TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

impl TlsVersion {
    fn protocol_versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        match self {
            TlsVersion::Any => rustls::ALL_VERSIONS,
            TlsVersion::Tls12 => TLS12_ONLY,
            TlsVersion::Tls13 => TLS13_ONLY,
        }
    }
}

/// What the verifier found wrong with the server's certificate.
#[derive(Debug, Clone)]
pub(crate) struct CertProblem {
    /// What is wrong, in words: `certificate expired on ...`.
    pub detail: String,
}

/// A server certificate verifier that remembers why it refused a certificate and, unless told to
/// enforce, accepts it anyway.
#[derive(Debug)]
pub(crate) struct ProbeVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    enforce: bool,
    problem: Mutex<Option<CertProblem>>,
}

impl ProbeVerifier {
    /// A verifier trusting `roots`; with `enforce`, a bad certificate fails the handshake.
    pub(crate) fn new(roots: Arc<RootCertStore>, enforce: bool) -> Self {
        let provider = crypto_provider();
        // An empty store cannot make a WebPKI verifier; every certificate is then untrusted.
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .ok();
        Self {
            webpki,
            provider,
            enforce,
            problem: Mutex::new(None),
        }
    }

    /// What was wrong with the certificate, if the handshake got that far and it was wrong.
    pub(crate) fn problem(&self) -> Option<CertProblem> {
        self.problem.lock().expect("verifier lock").clone()
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), CertificateError> {
        let Some(webpki) = &self.webpki else {
            return Err(CertificateError::UnknownIssuer);
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, &[], now) {
            Ok(_) => Ok(()),
            Err(rustls::Error::InvalidCertificate(error)) => Err(error),
            Err(other) => Err(CertificateError::Other(rustls::OtherError(Arc::new(
                io::Error::other(other.to_string()),
            )))),
        }
    }

    /// True when the certificate is its own issuer: it validates, or fails for a reason other
    /// than its issuer, once it is itself the only trusted root.
    fn is_self_signed(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        let mut roots = RootCertStore::empty();
        if roots.add(end_entity.clone().into_owned()).is_err() {
            return false;
        }
        let Ok(alone) =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
        else {
            return false;
        };
        !matches!(
            alone.verify_server_cert(end_entity, &[], server_name, &[], now),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature
            ))
        )
    }
}

impl ServerCertVerifier for ProbeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Err(error) = self.check(end_entity, intermediates, server_name, now) else {
            return Ok(ServerCertVerified::assertion());
        };

        let self_signed = matches!(error, CertificateError::UnknownIssuer)
            && self.is_self_signed(end_entity, server_name, now);
        let detail = if self_signed {
            "certificate is self-signed: no trusted authority vouches for it".to_string()
        } else {
            describe_certificate_error(&error)
        };
        *self.problem.lock().expect("verifier lock") = Some(CertProblem { detail });

        if self.enforce {
            Err(rustls::Error::InvalidCertificate(error))
        } else {
            Ok(ServerCertVerified::assertion())
        }
    }

    // The handshake signatures prove the server holds the certificate's key, whatever is wrong
    // with the certificate; they are always checked.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration offering `versions` and checking certificates with `verifier`.
pub(crate) fn client_config(
    versions: TlsVersion,
    verifier: Arc<ProbeVerifier>,
) -> Result<ClientConfig, rustls::Error> {
    Ok(ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions.protocol_versions())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// What is wrong with a certificate, in words.
pub(crate) fn describe_certificate_error(error: &CertificateError) -> String {
    match error {
        CertificateError::Expired => "certificate expired".to_string(),
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("certificate expired on {}", utc(*not_after))
        }
        CertificateError::NotValidYet => "certificate not yet valid".to_string(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("certificate not yet valid: valid from {}", utc(*not_before))
        }
        CertificateError::NotValidForName => {
            "certificate issued for another name (subject mismatch)".to_string()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "certificate issued for another name (subject mismatch): expected {}, certificate \
             is for {}",
            expected.to_str(),
            if presented.is_empty() {
                "no name at all".to_string()
            } else {
                presented
                    .iter()
                    .map(|name| presented_name(name))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        CertificateError::UnknownIssuer => "certificate issued by an unknown authority: its \
             chain leads to no trusted root (an untrusted CA, or an intermediate the server did \
             not send)"
            .to_string(),
        CertificateError::BadSignature => {
            "certificate signature does not verify against its issuer".to_string()
        }
        CertificateError::Revoked => "certificate revoked".to_string(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate not issued for server authentication".to_string()
        }
        CertificateError::BadEncoding => "certificate is malformed".to_string(),
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "certificate signed with an unsupported algorithm".to_string()
        }
        other => format!("certificate not valid: {other}"),
    }
}

/// A name from a certificate as rustls presents it, `DnsName("mx.lab.test")`, as the bare name.
fn presented_name(name: &str) -> &str {
    match (name.find('"'), name.rfind('"')) {
        (Some(open), Some(close)) if open < close => &name[open + 1..close],
        _ => name,
    }
}

fn utc(time: UnixTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    i64::try_from(time.as_secs())
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|t| t.format(&format).ok())
        .map_or_else(
            || format!("unix time {}", time.as_secs()),
            |t| format!("{t} UTC"),
        )
}

/// The documented error and the words for a TLS handshake that failed with `error`, given what
/// the verifier found.
pub(crate) fn classify_handshake_error(
    error: &io::Error,
    problem: Option<CertProblem>,
) -> (DocumentedError, String) {
    let tls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());

    match tls_error {
        Some(rustls::Error::InvalidCertificate(e)) => (
            DocumentedError::CertificateValidationFailed,
            problem.map_or_else(|| describe_certificate_error(e), |p| p.detail),
        ),
        Some(rustls::Error::AlertReceived(alert)) => (
            DocumentedError::CannotConnect,
            format!(
                "the server ended the TLS handshake with {}",
                alert_words(*alert)
            ),
        ),
        Some(rustls::Error::PeerIncompatible(why)) => (
            DocumentedError::CannotConnect,
            format!("no TLS parameters in common with the server ({why:?})"),
        ),
        Some(other) => (
            DocumentedError::CannotConnect,
            format!("the TLS handshake failed: {other}"),
        ),
        None => match error.kind() {
            io::ErrorKind::UnexpectedEof => (
                DocumentedError::ConnectionClosed,
                "the server closed the connection during the TLS handshake".to_string(),
            ),
            io::ErrorKind::ConnectionReset => (
                DocumentedError::ConnectionClosed,
                "the connection was reset (RST) during the TLS handshake".to_string(),
            ),
            _ => (
                DocumentedError::ConnectionClosed,
                format!("the connection failed during the TLS handshake: {error}"),
            ),
        },
    }
}

fn alert_words(alert: AlertDescription) -> String {
    let meaning = match alert {
        AlertDescription::ProtocolVersion => " (no TLS version in common)",
        AlertDescription::HandshakeFailure => " (no cipher suite or parameters in common)",
        AlertDescription::InsufficientSecurity => " (the server wants stronger ciphers)",
        AlertDescription::UnrecognisedName => " (the server knows no certificate for the name)",
        _ => "",
    };
    format!("alert {alert:?}{meaning}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_lab_ca_loads_as_a_root_store() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/certs/ca.pem"));
        assert_eq!(load_ca_file(path).unwrap().len(), 1);
    }

    #[test]
    fn an_unreadable_or_empty_ca_file_is_a_local_error_naming_the_file() {
        let missing = load_ca_file(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/ca.pem"),
            "{missing}"
        );

        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = load_ca_file(&empty).unwrap_err();
        assert!(
            matches!(error, RootsError::NoCertificates { .. }),
            "{error}"
        );
    }

    #[test]
    fn certificate_errors_say_what_is_wrong() {
        assert_eq!(
            describe_certificate_error(&CertificateError::ExpiredContext {
                time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000)),
                not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    1_700_000_000
                )),
            }),
            "certificate expired on 2023-11-14 22:13:20 UTC"
        );
        let wrong = describe_certificate_error(&CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("mx.lab.test").unwrap(),
            presented: vec!["DnsName(\"other.lab.test\")".to_string()],
        });
        assert!(wrong.contains("expected mx.lab.test"), "{wrong}");
        assert!(
            wrong.ends_with("certificate is for other.lab.test"),
            "{wrong}"
        );
    }
}
