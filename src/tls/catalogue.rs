//! The catalogue of leaf certificates for one hostname, generated once per process, and the
//! rustls server configurations that present them.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, DnsName, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::NoServerSessionStorage;
use time::{Duration, OffsetDateTime};

use super::ca::{LAB_CA_KEY_PEM, LAB_CA_PEM, runtime_ca_params};
use super::{CertVariant, TlsError, TlsVersions, crypto_provider};

/// The host name the [`CertVariant::WrongHost`] certificate is issued for.
///
/// It is under `.test`, so the lab CA may sign it, and under `.invalid.test`, so it plainly names
/// no host a lab would run. A catalogue for this very name uses `other-host.invalid.test` instead.
pub const WRONG_HOST_NAME: &str = "wrong-host.invalid.test";

/// The wrong host for a catalogue whose own hostname is [`WRONG_HOST_NAME`].
const OTHER_WRONG_HOST_NAME: &str = "other-host.invalid.test";

/// The common name of the CA that signs [`CertVariant::UntrustedRoot`].
const UNTRUSTED_CA_NAME: &str = "smtp-fault untrusted CA";

/// The RSA-2048 key of the `valid-rsa` leaf. It is committed because *ring* cannot generate
/// RSA keys; like the lab CA's key it protects nothing but lab certificates.
const LAB_RSA_KEY_PEM: &str = include_str!("../../certs/leaf-rsa-key.pem");

/// The common name of the intermediate CA that signs [`CertVariant::IncompleteChain`].
const INTERMEDIATE_CA_NAME: &str = "smtp-fault lab intermediate CA";

/// One leaf certificate of a catalogue, in the forms a server and a file on disk need.
pub struct Leaf {
    /// Which variant this is.
    pub variant: CertVariant,
    /// The host name the certificate is issued for (its subject CN and only SAN).
    pub subject: String,
    /// The certificate chain exactly as the server sends it, PEM encoded, leaf first.
    pub chain_pem: String,
    /// The leaf's private key, PEM encoded (PKCS#8).
    pub key_pem: String,
    /// The chain as the server sends it, DER encoded, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key, DER encoded (PKCS#8).
    pub key: PrivatePkcs8KeyDer<'static>,
}

impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaf")
            .field("variant", &self.variant)
            .field("subject", &self.subject)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Every [`CertVariant`] for one hostname, with the CAs around them and a server configuration
/// for each variant and each [`TlsVersions`].
///
/// Use [`catalogue`] to get the shared, cached catalogue signed by the committed lab CA, or
/// [`Catalogue::with_ca`] to generate one under another lab CA.
pub struct Catalogue {
    hostname: String,
    ca_pem: String,
    ca_key_pem: String,
    untrusted_ca_pem: String,
    intermediate_pem: String,
    /// Indexed by [`CertVariant::index`].
    leaves: Vec<Leaf>,
    /// Indexed by [`CertVariant::index`], then by [`TlsVersions::index`].
    configs: Vec<Vec<Arc<ServerConfig>>>,
}

impl fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalogue")
            .field("hostname", &self.hostname)
            .field("leaves", &self.leaves)
            .finish_non_exhaustive()
    }
}

/// The catalogue for `hostname`, signed by the committed lab CA.
///
/// The first call for a hostname generates every certificate and server configuration; later
/// calls for the same hostname, from any thread, return the same catalogue. Hostnames are
/// compared without regard to ASCII case.
///
/// # Panics
///
/// Panics if `hostname` is not a DNS name under `.test`; see [`try_catalogue`] to get that as an
/// error instead.
pub fn catalogue(hostname: &str) -> Arc<Catalogue> {
    try_catalogue(hostname).unwrap_or_else(|e| panic!("{e}"))
}

/// The catalogue for `hostname`, as [`catalogue`], or an error if the hostname is not a DNS name
/// under `.test`.
pub fn try_catalogue(hostname: &str) -> Result<Arc<Catalogue>, TlsError> {
    static CATALOGUES: OnceLock<Mutex<HashMap<String, Arc<Catalogue>>>> = OnceLock::new();

    let hostname = lab_hostname(hostname)?;

    // Generation happens with the lock held, so that two threads asking for a new hostname at
    // once do not both pay for it; it takes milliseconds, once per hostname.
    // A panic while the lock was held cannot have left a half-built entry, because entries are
    // inserted whole, so a poisoned map is still good.
    let mut catalogues = CATALOGUES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(catalogue) = catalogues.get(&hostname) {
        return Ok(Arc::clone(catalogue));
    }

    let catalogue = Arc::new(Catalogue::with_ca(&hostname, LAB_CA_PEM, LAB_CA_KEY_PEM)?);
    catalogues.insert(hostname, Arc::clone(&catalogue));
    Ok(catalogue)
}

impl Catalogue {
    /// Generates a catalogue for `hostname` under the lab CA given by its certificate and key.
    ///
    /// This is for a CA made with [`super::generate_ca`]; the result is not cached. The hostname
    /// must be a DNS name under `.test`, because lab CAs are constrained to those names.
    pub fn with_ca(hostname: &str, ca_pem: &str, ca_key_pem: &str) -> Result<Self, TlsError> {
        let hostname = lab_hostname(hostname)?;
        let now = OffsetDateTime::now_utc();

        let ca_key =
            KeyPair::from_pem(ca_key_pem).map_err(|e| TlsError::UnusableCa(format!("key: {e}")))?;
        let ca = Issuer::from_ca_cert_pem(ca_pem, ca_key)
            .map_err(|e| TlsError::UnusableCa(format!("certificate: {e}")))?;

        let untrusted_key = KeyPair::generate()?;
        let untrusted_params =
            runtime_ca_params(UNTRUSTED_CA_NAME, now, BasicConstraints::Unconstrained);
        let untrusted_pem = untrusted_params.self_signed(&untrusted_key)?.pem();
        let untrusted = Issuer::new(untrusted_params, untrusted_key);

        let intermediate_key = KeyPair::generate()?;
        let intermediate_params =
            runtime_ca_params(INTERMEDIATE_CA_NAME, now, BasicConstraints::Constrained(0));
        let intermediate_pem = intermediate_params.signed_by(&intermediate_key, &ca)?.pem();
        let intermediate = Issuer::new(intermediate_params, intermediate_key);

        let wrong_host = if hostname == WRONG_HOST_NAME {
            OTHER_WRONG_HOST_NAME
        } else {
            WRONG_HOST_NAME
        };

        let provider = crypto_provider();
        let mut leaves = Vec::with_capacity(CertVariant::ALL.len());
        let mut configs = Vec::with_capacity(CertVariant::ALL.len());
        for &variant in CertVariant::ALL {
            let subject = match variant {
                CertVariant::WrongHost => wrong_host,
                _ => &hostname,
            };
            let (not_before, not_after) = match variant {
                CertVariant::Expired => (now - Duration::days(30), now - Duration::DAY),
                CertVariant::NotYetValid => (now + Duration::days(30), now + Duration::days(365)),
                _ => (now - Duration::DAY, now + Duration::days(365)),
            };
            let params = leaf_params(subject, not_before, not_after)?;

            let key = match variant {
                CertVariant::ValidRsa => {
                    KeyPair::from_pem_and_sign_algo(LAB_RSA_KEY_PEM, &rcgen::PKCS_RSA_SHA256)?
                }
                _ => KeyPair::generate()?,
            };
            let cert = match variant {
                CertVariant::SelfSigned => params.self_signed(&key)?,
                CertVariant::UntrustedRoot => params.signed_by(&key, &untrusted)?,
                CertVariant::IncompleteChain => params.signed_by(&key, &intermediate)?,
                _ => params.signed_by(&key, &ca)?,
            };

            // Every variant sends the leaf alone: the lab CA is the root the client already has,
            // and leaving the intermediate out is the whole point of the incomplete chain.
            let leaf = Leaf {
                variant,
                subject: subject.to_string(),
                chain_pem: cert.pem(),
                key_pem: key.serialize_pem(),
                chain: vec![cert.der().clone()],
                key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            };

            let per_versions = TlsVersions::ALL
                .iter()
                .map(|&versions| build_server_config(&provider, &leaf, versions))
                .collect::<Result<Vec<_>, _>>()?;
            configs.push(per_versions);
            leaves.push(leaf);
        }

        Ok(Self {
            hostname,
            ca_pem: ca_pem.to_string(),
            ca_key_pem: ca_key_pem.to_string(),
            untrusted_ca_pem: untrusted_pem,
            intermediate_pem,
            leaves,
            configs,
        })
    }

    /// The hostname the catalogue was generated for, in lower case.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The leaf certificate for a variant.
    pub fn leaf(&self, v: CertVariant) -> &Leaf {
        &self.leaves[v.index()]
    }

    /// The PEM certificate of the lab CA that signed this catalogue.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The PEM certificate of the CA that signed [`CertVariant::UntrustedRoot`].
    pub fn untrusted_ca_pem(&self) -> &str {
        &self.untrusted_ca_pem
    }

    /// The PEM certificate of the intermediate CA that signed [`CertVariant::IncompleteChain`],
    /// which the server leaves out of the chain.
    pub fn intermediate_pem(&self) -> &str {
        &self.intermediate_pem
    }

    /// The server configuration that presents `v`, accepting the protocol versions `versions`.
    ///
    /// The configurations are built with the catalogue, so this is a lookup. They offer no ALPN
    /// protocols and ask for no client certificate.
    pub fn server_config(&self, v: CertVariant, versions: TlsVersions) -> Arc<ServerConfig> {
        Arc::clone(&self.configs[v.index()][versions.index()])
    }

    /// Writes the catalogue's certificates and keys as PEM files into `dir`, creating it if
    /// needed, and returns the paths written.
    ///
    /// The files are `ca.pem` and `ca-key.pem` (the lab CA), for each variant `NAME.pem` (the
    /// chain exactly as the server sends it) and `NAME-key.pem`, and `untrusted-ca.pem` and
    /// `intermediate.pem` (the CAs behind `untrusted-root` and `incomplete-chain`). Each is
    /// written under a temporary name and renamed into place, so that a reader never sees a
    /// partly written file.
    pub fn write_pem_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        fs::create_dir_all(dir)?;

        let mut files: Vec<(String, &str)> = vec![
            ("ca.pem".into(), &self.ca_pem),
            ("ca-key.pem".into(), &self.ca_key_pem),
        ];
        for leaf in &self.leaves {
            let name = leaf.variant.name();
            files.push((format!("{name}.pem"), &leaf.chain_pem));
            files.push((format!("{name}-key.pem"), &leaf.key_pem));
        }
        files.push(("untrusted-ca.pem".into(), &self.untrusted_ca_pem));
        files.push(("intermediate.pem".into(), &self.intermediate_pem));

        files
            .into_iter()
            .map(|(name, contents)| {
                let secret = name.ends_with("-key.pem");
                write_atomically(&dir.join(name), contents, secret)
            })
            .collect()
    }
}

/// Checks that `hostname` is a DNS name under `.test` and returns it in lower case.
fn lab_hostname(hostname: &str) -> Result<String, TlsError> {
    let hostname = hostname.to_ascii_lowercase();

    // An IP address is no name the lab CA can sign; saying it is not a DNS name is clearer than
    // saying it is outside `.test`.
    if hostname.parse::<std::net::IpAddr>().is_ok() || DnsName::try_from(hostname.as_str()).is_err()
    {
        return Err(TlsError::InvalidHostname(hostname));
    }
    if !hostname.ends_with(".test") {
        return Err(TlsError::HostnameOutsideLab(hostname));
    }
    Ok(hostname)
}

/// Parameters for a server leaf certificate for `name`.
fn leaf_params(
    name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(vec![name.to_string()])?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// Builds the server configuration presenting `leaf` over `versions`.
fn build_server_config(
    provider: &Arc<rustls::crypto::CryptoProvider>,
    leaf: &Leaf,
    versions: TlsVersions,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(versions.protocol_versions())?
        .with_no_client_auth()
        .with_single_cert(
            leaf.chain.clone(),
            PrivateKeyDer::Pkcs8(leaf.key.clone_key()),
        )?;

    // No resumption: every connection does a full handshake and presents the certificate, so a
    // sender meets the same fault on its retry as on its first attempt.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;

    Ok(Arc::new(config))
}

/// Writes `contents` to `path` through a temporary file in the same directory, then renames it.
///
/// Keys are written readable by the owner only, the mode some servers insist on for a key file,
/// even though these keys guard nothing.
fn write_atomically(path: &Path, contents: &str, secret: bool) -> io::Result<PathBuf> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("pem");
    let temp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));

    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;

    let result = options.open(&temp).and_then(|mut file| {
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    });
    if let Err(e) = result.and_then(|()| fs::rename(&temp, path)) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use rustls::pki_types::pem::PemObject;
    use rustls::{CertificateError, ClientConfig, RootCertStore};

    use super::*;
    use crate::tls::testing::{Failure, handshake, lab_client_config};
    use crate::tls::{TlsInfo, generate_ca};

    const HOST: &str = "mx.lab.test";

    /// The error a client trusting only the lab CA reports against `variant`.
    fn client_error(variant: CertVariant) -> rustls::Error {
        let server = catalogue(HOST).server_config(variant, TlsVersions::Any);
        match handshake(lab_client_config(TlsVersions::Any), HOST, server) {
            Ok(_) => panic!("{variant}: the handshake completed"),
            Err(failure) => {
                let Failure { client, server } = *failure;
                client.unwrap_or_else(|| panic!("{variant}: no client error; server: {server:?}"))
            }
        }
    }

    fn certificate_error(variant: CertVariant) -> CertificateError {
        match client_error(variant) {
            rustls::Error::InvalidCertificate(e) => e,
            other => panic!("{variant}: not a certificate error: {other:?}"),
        }
    }

    fn client_trusting(ca_pem: &str) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let config = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
        let output = Command::new("/usr/bin/openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    #[test]
    fn a_catalogue_is_generated_once_per_hostname() {
        let first = catalogue(HOST);
        let second = catalogue("MX.Lab.Test");
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(second.hostname(), HOST);
        assert!(!Arc::ptr_eq(&first, &catalogue("other.lab.test")));
    }

    #[test]
    fn server_configs_are_built_once_per_variant_and_versions() {
        let catalogue = catalogue(HOST);
        for &variant in CertVariant::ALL {
            for &versions in TlsVersions::ALL {
                let a = catalogue.server_config(variant, versions);
                let b = catalogue.server_config(variant, versions);
                assert!(Arc::ptr_eq(&a, &b), "{variant} {versions}");
                assert!(a.alpn_protocols.is_empty());
            }
        }
    }

    #[test]
    fn hostnames_outside_test_are_refused() {
        assert!(matches!(
            try_catalogue("mx.example.com"),
            Err(TlsError::HostnameOutsideLab(_))
        ));
        assert!(matches!(
            try_catalogue("test"),
            Err(TlsError::HostnameOutsideLab(_))
        ));
        assert!(matches!(
            try_catalogue("127.0.0.1"),
            Err(TlsError::InvalidHostname(_))
        ));
        assert!(matches!(
            try_catalogue("mx lab.test"),
            Err(TlsError::InvalidHostname(_))
        ));
        assert_eq!(
            try_catalogue("mx.example.com").unwrap_err().to_string(),
            "hostname \"mx.example.com\" is not under .test, the only names the lab ca signs"
        );
    }

    #[test]
    fn every_leaf_is_sent_alone_and_names_its_subject() {
        let catalogue = catalogue(HOST);
        for &variant in CertVariant::ALL {
            let leaf = catalogue.leaf(variant);
            assert_eq!(leaf.variant, variant);
            assert_eq!(leaf.chain.len(), 1, "{variant}");
            assert_eq!(
                leaf.chain_pem.matches("BEGIN CERTIFICATE").count(),
                1,
                "{variant}"
            );
            assert!(
                leaf.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
                "{variant}"
            );
            let expected = if variant == CertVariant::WrongHost {
                WRONG_HOST_NAME
            } else {
                HOST
            };
            assert_eq!(leaf.subject, expected, "{variant}");
        }
    }

    #[test]
    fn valid_completes_the_handshake() {
        let server = catalogue(HOST).server_config(CertVariant::Valid, TlsVersions::Any);
        handshake(lab_client_config(TlsVersions::Any), HOST, server).unwrap();
    }

    #[test]
    fn valid_rsa_completes_the_handshake_with_an_rsa_key() {
        let server = catalogue(HOST).server_config(CertVariant::ValidRsa, TlsVersions::Any);
        handshake(lab_client_config(TlsVersions::Any), HOST, server).unwrap();
        let catalogue = catalogue(HOST);
        let key = KeyPair::from_pem(&catalogue.leaf(CertVariant::ValidRsa).key_pem).unwrap();
        assert!(
            key.is_compatible(&rcgen::PKCS_RSA_SHA256),
            "{:?}",
            key.algorithm()
        );
    }

    #[test]
    fn expired_is_rejected_as_expired() {
        let error = certificate_error(CertVariant::Expired);
        assert!(
            matches!(
                error,
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn not_yet_valid_is_rejected_as_not_valid_yet() {
        let error = certificate_error(CertVariant::NotYetValid);
        assert!(
            matches!(
                error,
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn wrong_host_is_rejected_as_not_valid_for_the_name() {
        let error = certificate_error(CertVariant::WrongHost);
        assert!(
            matches!(
                error,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn self_signed_untrusted_root_and_incomplete_chain_have_an_unknown_issuer() {
        for variant in [
            CertVariant::SelfSigned,
            CertVariant::UntrustedRoot,
            CertVariant::IncompleteChain,
        ] {
            let error = certificate_error(variant);
            assert_eq!(error, CertificateError::UnknownIssuer, "{variant}");
        }
    }

    #[test]
    fn incomplete_chain_verifies_once_the_intermediate_is_sent() {
        let catalogue = catalogue(HOST);
        let leaf = catalogue.leaf(CertVariant::IncompleteChain);
        let intermediate =
            CertificateDer::from_pem_slice(catalogue.intermediate_pem().as_bytes()).unwrap();
        let server = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.chain[0].clone(), intermediate],
                PrivateKeyDer::Pkcs8(leaf.key.clone_key()),
            )
            .unwrap();
        handshake(lab_client_config(TlsVersions::Any), HOST, Arc::new(server)).unwrap();
    }

    #[test]
    fn untrusted_root_verifies_for_a_client_that_trusts_the_untrusted_ca() {
        let catalogue = catalogue(HOST);
        let client = client_trusting(catalogue.untrusted_ca_pem());
        let server = catalogue.server_config(CertVariant::UntrustedRoot, TlsVersions::Any);
        handshake(client, HOST, server).unwrap();
    }

    #[test]
    fn the_lab_ca_cannot_vouch_for_a_name_outside_test() {
        // Anyone can sign with the published key, so the CA's name constraints must stop the
        // result being accepted for a real host.
        let ca_key = KeyPair::from_pem(LAB_CA_KEY_PEM).unwrap();
        let ca = Issuer::from_ca_cert_pem(LAB_CA_PEM, ca_key).unwrap();
        let now = OffsetDateTime::now_utc();
        let params =
            leaf_params("mx.example.com", now - Duration::DAY, now + Duration::DAY).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();

        let server = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let failure = handshake(
            lab_client_config(TlsVersions::Any),
            "mx.example.com",
            Arc::new(server),
        )
        .unwrap_err();
        let error = format!("{:?}", failure.client);
        assert!(error.contains("NameConstraintViolation"), "{failure:?}");
    }

    #[test]
    fn a_generated_ca_signs_a_catalogue_its_own_clients_trust() {
        let (ca_pem, ca_key_pem) = generate_ca().unwrap();
        assert_ne!(ca_pem, LAB_CA_PEM);
        let catalogue = Catalogue::with_ca("mx.fresh.test", &ca_pem, &ca_key_pem).unwrap();
        let server = catalogue.server_config(CertVariant::Valid, TlsVersions::Any);
        handshake(client_trusting(&ca_pem), "mx.fresh.test", server).unwrap();
    }

    #[test]
    fn an_unusable_ca_is_reported() {
        let error = Catalogue::with_ca(HOST, LAB_CA_PEM, "not a key").unwrap_err();
        assert!(matches!(error, TlsError::UnusableCa(_)), "{error:?}");
    }

    #[test]
    fn a_tls12_only_server_fails_against_a_tls13_only_client() {
        let server = catalogue(HOST).server_config(CertVariant::Valid, TlsVersions::Tls12Only);
        let failure =
            handshake(lab_client_config(TlsVersions::Tls13Only), HOST, server).unwrap_err();
        assert!(
            matches!(failure.server, Some(rustls::Error::PeerIncompatible(_))),
            "{failure:?}"
        );
    }

    #[test]
    fn a_tls13_only_server_negotiates_tls13() {
        let server = catalogue(HOST).server_config(CertVariant::Valid, TlsVersions::Tls13Only);
        let (_, server) = handshake(lab_client_config(TlsVersions::Any), HOST, server).unwrap();
        assert_eq!(TlsInfo::from_server_connection(&server).version, "TLSv1.3");
    }

    #[test]
    fn an_any_server_negotiates_tls13_by_default_and_tls12_with_a_tls12_only_client() {
        let server = catalogue(HOST).server_config(CertVariant::Valid, TlsVersions::Any);

        let (_, conn) = handshake(
            lab_client_config(TlsVersions::Any),
            HOST,
            Arc::clone(&server),
        )
        .unwrap();
        assert_eq!(TlsInfo::from_server_connection(&conn).version, "TLSv1.3");

        let (_, conn) = handshake(lab_client_config(TlsVersions::Tls12Only), HOST, server).unwrap();
        assert_eq!(TlsInfo::from_server_connection(&conn).version, "TLSv1.2");
    }

    #[test]
    fn tls_info_reports_version_cipher_and_sni() {
        let server = catalogue(HOST).server_config(CertVariant::Valid, TlsVersions::Any);
        let (client, server) =
            handshake(lab_client_config(TlsVersions::Any), HOST, server).unwrap();

        let info = TlsInfo::from_server_connection(&server);
        let suite = client.negotiated_cipher_suite().unwrap().suite();
        assert_eq!(info.version, "TLSv1.3");
        assert_eq!(info.cipher, format!("{suite:?}"));
        assert!(info.cipher.starts_with("TLS13_"), "{info:?}");
        assert_eq!(info.sni.as_deref(), Some(HOST));

        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["version"], "TLSv1.3");
        assert_eq!(json["sni"], HOST);
    }

    #[test]
    fn tls_info_names_a_tls12_cipher_suite() {
        let server = catalogue(HOST).server_config(CertVariant::Valid, TlsVersions::Tls12Only);
        let (_, server) = handshake(lab_client_config(TlsVersions::Any), HOST, server).unwrap();
        let info = TlsInfo::from_server_connection(&server);
        assert_eq!(info.version, "TLSv1.2");
        assert!(info.cipher.starts_with("TLS_ECDHE_ECDSA_WITH_"), "{info:?}");
    }

    #[test]
    fn write_pem_files_writes_every_file_as_parseable_pem() {
        let dir = tempfile::tempdir().unwrap();
        let catalogue = catalogue(HOST);
        let paths = catalogue.write_pem_files(dir.path()).unwrap();

        let mut names: Vec<String> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        names.sort();
        let mut expected = vec![
            "ca.pem",
            "ca-key.pem",
            "untrusted-ca.pem",
            "intermediate.pem",
        ]
        .into_iter()
        .map(str::to_string)
        .chain(
            CertVariant::ALL
                .iter()
                .flat_map(|v| [format!("{}.pem", v.name()), format!("{}-key.pem", v.name())]),
        )
        .collect::<Vec<_>>();
        expected.sort();
        assert_eq!(names, expected);

        // Nothing but the files themselves: no temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), expected.len());

        for path in &paths {
            let bytes = fs::read(path).unwrap();
            if path.to_str().unwrap().ends_with("-key.pem") {
                PrivateKeyDer::from_pem_slice(&bytes).unwrap();
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = fs::metadata(path).unwrap().permissions().mode();
                    assert_eq!(mode & 0o777, 0o600, "{}", path.display());
                }
            } else {
                let certs = CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>();
                assert_eq!(certs.unwrap().len(), 1, "{}", path.display());
            }
        }
        let valid = fs::read_to_string(dir.path().join("valid.pem")).unwrap();
        assert_eq!(valid, catalogue.leaf(CertVariant::Valid).chain_pem);
    }

    #[test]
    fn openssl_verifies_the_written_files_as_a_sender_would() {
        let dir = tempfile::tempdir().unwrap();
        catalogue(HOST).write_pem_files(dir.path()).unwrap();
        let dir = dir.path();

        let (ok, text) = openssl(&["verify", "-CAfile", "ca.pem", "valid.pem"], dir);
        assert!(ok, "{text}");

        let (ok, text) = openssl(&["verify", "-CAfile", "ca.pem", "expired.pem"], dir);
        assert!(!ok && text.contains("certificate has expired"), "{text}");

        let (ok, text) = openssl(
            &["verify", "-CAfile", "ca.pem", "incomplete-chain.pem"],
            dir,
        );
        assert!(
            !ok && text.contains("unable to get local issuer certificate"),
            "{text}"
        );

        let args = [
            "verify",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "intermediate.pem",
        ];
        let (ok, text) = openssl(&[&args[..], &["incomplete-chain.pem"]].concat(), dir);
        assert!(ok, "{text}");

        let args = [
            "verify",
            "-CAfile",
            "ca.pem",
            "-verify_hostname",
            HOST,
            "wrong-host.pem",
        ];
        let (ok, text) = openssl(&args, dir);
        assert!(!ok && text.contains("hostname mismatch"), "{text}");
    }

    #[test]
    fn the_committed_lab_ca_is_the_documented_one() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ca.pem"), LAB_CA_PEM).unwrap();
        let args = [
            "x509",
            "-in",
            "ca.pem",
            "-noout",
            "-subject",
            "-startdate",
            "-enddate",
        ];
        let (ok, text) = openssl(&args, dir.path());
        assert!(ok, "{text}");
        assert!(text.contains("subject=CN = smtp-fault lab CA"), "{text}");
        assert!(
            text.contains("notBefore=Jan  1 00:00:00 2025 GMT"),
            "{text}"
        );
        assert!(text.contains("notAfter=Jan  1 00:00:00 2045 GMT"), "{text}");

        let args = ["x509", "-in", "ca.pem", "-noout", "-text"];
        let (ok, text) = openssl(&args, dir.path());
        assert!(ok, "{text}");
        assert!(text.contains("NIST CURVE: P-256"), "{text}");
        assert!(text.contains("CA:TRUE"), "{text}");
        assert!(text.contains("Certificate Sign"), "{text}");
        assert!(text.contains("DNS:test"), "{text}");
    }
}
