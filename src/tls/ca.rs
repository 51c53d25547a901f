//! The lab certificate authorities: the committed lab CA that senders are told to trust, and the
//! parameters shared by every CA this module makes (the lab CA, its intermediate and the CA that
//! nobody trusts).

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, GeneralSubtree,
    IsCa, KeyPair, KeyUsagePurpose, NameConstraints,
};
use time::{Duration, OffsetDateTime};

use super::TlsError;

/// The committed lab CA certificate, PEM encoded: the root a lab's senders trust.
///
/// It is an ECDSA P-256 CA named "smtp-fault lab CA", valid from 2025-01-01 to 2045-01-01, and
/// name-constrained to DNS names under `.test` with every IP address excluded.
pub const LAB_CA_PEM: &str = include_str!("../../certs/ca.pem");

/// The committed lab CA's private key, PEM encoded (PKCS#8).
///
/// It is public on purpose: it signs nothing but lab certificates for names under `.test`, and
/// the CA's name constraints stop it vouching for anything else. No sender should trust
/// [`LAB_CA_PEM`] outside a lab.
pub const LAB_CA_KEY_PEM: &str = include_str!("../../certs/ca-key.pem");

/// The common name of the lab CA.
pub(super) const LAB_CA_NAME: &str = "smtp-fault lab CA";

/// How long a newly generated lab CA lasts.
const LAB_CA_YEARS: i32 = 20;

/// Generates a brand-new lab CA and returns `(cert_pem, key_pem)`.
///
/// The CA has the same shape as the committed one: ECDSA P-256, named "smtp-fault lab CA",
/// constrained to `.test`, valid from 1 January of the current year (UTC) for twenty years.
/// Starting at the turn of the year rather than now keeps a regenerated CA valid for leaves whose
/// validity starts a little in the past.
pub fn generate_ca() -> Result<(String, String), TlsError> {
    let year = OffsetDateTime::now_utc().year();
    generate_lab_ca(year)
}

/// Generates a lab CA valid from 1 January of `year` for [`LAB_CA_YEARS`] years.
pub(super) fn generate_lab_ca(year: i32) -> Result<(String, String), TlsError> {
    let not_before = rcgen::date_time_ymd(year, 1, 1);
    let not_after = rcgen::date_time_ymd(year + LAB_CA_YEARS, 1, 1);

    let mut params = ca_params(
        LAB_CA_NAME,
        not_before,
        not_after,
        BasicConstraints::Unconstrained,
    );
    params.name_constraints = Some(lab_name_constraints());

    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Parameters for a CA certificate named `common_name`.
pub(super) fn ca_params(
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    path_length: BasicConstraints,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::Ca(path_length);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    params
}

/// Parameters for a CA that exists only for this process, valid from a day ago for two years.
pub(super) fn runtime_ca_params(
    common_name: &str,
    now: OffsetDateTime,
    path_length: BasicConstraints,
) -> CertificateParams {
    ca_params(
        common_name,
        now - Duration::days(1),
        now + Duration::days(730),
        path_length,
    )
}

/// Limits the lab CA to DNS names under `.test` and to no IP address at all.
///
/// The key is published, so anyone can sign with it; the constraints are what keep a sender that
/// trusts the lab CA from accepting a certificate for a real host. Excluding every IP address
/// matters because a constraint on DNS names alone leaves other name forms unconstrained.
fn lab_name_constraints() -> NameConstraints {
    NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName("test".to_string())],
        excluded_subtrees: vec![
            GeneralSubtree::IpAddress(CidrSubnet::V4([0; 4], [0; 4])),
            GeneralSubtree::IpAddress(CidrSubnet::V6([0; 16], [0; 16])),
        ],
    }
}
