//! lettre with rustls as an application's mail library: `Tls::Required` for STARTTLS and
//! `Tls::Wrapper` for implicit TLS, trusting only the lab CA, against a server in the same
//! process.
//!
//! lettre reports a failed handshake as a connection error, not a TLS one; the tests find the
//! rustls error it carries and check that it names the certificate's real fault.

mod tls_support;

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, Tls, TlsParameters, TlsParametersBuilder, TlsVersion,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rustls::{AlertDescription, CertificateError};
use smtp_fault::tls::LAB_CA_PEM;
use tls_support::{
    HOST, MESSAGE, assert_lost_after_handshake, assert_no_mail, assert_only_message_over_tls13,
    last_session, only_message, smtp_port, smtps_port, start,
};

type SmtpError = lettre::transport::smtp::Error;

/// TLS settings for [`HOST`] that trust the lab CA and nothing else.
fn lab_tls() -> TlsParametersBuilder {
    let ca = Certificate::from_pem(LAB_CA_PEM.as_bytes()).expect("the lab CA is PEM");
    TlsParameters::builder(HOST.to_string())
        .certificate_store(CertificateStore::None)
        .add_root_certificate(ca)
}

fn required() -> Tls {
    Tls::Required(lab_tls().build().expect("TLS settings"))
}

fn wrapper() -> Tls {
    Tls::Wrapper(lab_tls().build().expect("TLS settings"))
}

/// Sends [`MESSAGE`] from a@lab.test to b@lab.test to 127.0.0.1:`port`.
async fn send(port: u16, tls: Tls) -> Result<(), SmtpError> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .tls(tls)
        .hello_name(ClientId::Domain("client.lab.test".to_string()))
        .timeout(Some(Duration::from_secs(10)))
        .build();
    let envelope = Envelope::new(
        Some("a@lab.test".parse().unwrap()),
        vec!["b@lab.test".parse().unwrap()],
    )
    .unwrap();
    // lettre ends the data with CRLF.CRLF whatever the message ends with, so it is given the
    // message without its last CRLF, and that CRLF arrives as the end of the message.
    let body = MESSAGE
        .strip_suffix(b"\r\n")
        .expect("a message ending in CRLF");
    let sent = tokio::time::timeout(tls_support::LIMIT, transport.send_raw(&envelope, body))
        .await
        .expect("lettre finishes in time");
    sent.map(|_| ())
}

/// The rustls error somewhere in the causes of `err`.
fn rustls_cause(err: &SmtpError) -> Option<&rustls::Error> {
    let mut cause = std::error::Error::source(err);
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // An io::Error hides the error it wraps from `source`; only `get_ref` reaches it.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(tls) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(tls);
        }
        cause = e.source();
    }
    None
}

/// What is wrong with the certificate, as the rustls error in `err` says it.
fn certificate_fault(err: &SmtpError) -> &'static str {
    match rustls_cause(err) {
        Some(rustls::Error::InvalidCertificate(problem)) => match problem {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired",
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "not yet valid"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "not valid for name"
            }
            CertificateError::UnknownIssuer => "unknown issuer",
            _ => "another certificate error",
        },
        Some(_) => "a TLS error that is not about the certificate",
        None => "no TLS error",
    }
}

#[tokio::test]
async fn lettre_delivers_over_starttls_and_the_capture_records_the_tls_facts() {
    let server = start("accept").await;

    send(smtp_port(&server), required()).await.unwrap();

    let message = only_message(&server).await;
    assert_eq!(&message.data[..], MESSAGE);
    assert_eq!(message.helo, "client.lab.test");
    let tls = message.tls.as_ref().expect("TLS facts");
    assert_eq!(tls.version, "TLSv1.3");
    assert!(tls.cipher.starts_with("TLS13_"), "{tls:?}");
    assert_eq!(tls.sni.as_deref(), Some(HOST));
    assert_eq!(last_session(&server).await.tls.as_ref(), Some(tls));
}

#[tokio::test]
async fn lettre_delivers_over_implicit_tls() {
    let server = start("accept").await;

    send(smtps_port(&server), wrapper()).await.unwrap();

    assert_only_message_over_tls13(&server).await;
}

#[tokio::test]
async fn lettre_rejects_each_bad_certificate_for_its_own_reason_on_both_listeners() {
    let cases = [
        ("cert-expired", "expired"),
        ("cert-not-yet-valid", "not yet valid"),
        ("cert-wrong-host", "not valid for name"),
        ("cert-self-signed", "unknown issuer"),
        ("cert-untrusted-root", "unknown issuer"),
        ("cert-incomplete-chain", "unknown issuer"),
    ];
    for (scenario, fault) in cases {
        let server = start(scenario).await;

        for (listener, port, tls) in [
            ("starttls", smtp_port(&server), required()),
            ("implicit", smtps_port(&server), wrapper()),
        ] {
            let err = send(port, tls).await.unwrap_err();

            assert_eq!(
                certificate_fault(&err),
                fault,
                "{scenario} {listener}: {err}"
            );
            assert!(!err.is_response(), "{scenario} {listener}: {err}");
        }
        assert!(server.messages().is_empty(), "{scenario}");
    }
}

#[tokio::test]
async fn lettre_gets_a_transient_454_when_starttls_is_refused() {
    let server = start("starttls-refused").await;

    let err = send(smtp_port(&server), required()).await.unwrap_err();

    assert!(err.is_transient(), "{err}");
    assert_eq!(
        err.status().map(|code| code.to_string()).as_deref(),
        Some("454")
    );
    assert!(
        err.to_string()
            .contains("TLS not available due to temporary reason"),
        "{err}"
    );
}

#[tokio::test]
async fn lettre_requiring_tls_gives_up_before_mail_when_starttls_is_not_offered() {
    let server = start("tls-not-offered").await;

    let err = send(smtp_port(&server), required()).await.unwrap_err();

    assert!(err.is_client(), "{err}");
    assert!(
        err.to_string()
            .contains("STARTTLS is not supported on this server"),
        "{err}"
    );
    assert_no_mail(&server).await;
}

#[tokio::test]
async fn lettre_sees_the_connection_end_when_starttls_is_dropped() {
    let server = start("starttls-dropped").await;

    let err = send(smtp_port(&server), required()).await.unwrap_err();

    assert!(!err.is_response(), "{err}");
    assert_eq!(certificate_fault(&err), "no TLS error", "{err}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn lettre_sees_the_connection_end_when_it_is_dropped_after_the_handshake() {
    let server = start("tls-dropped-after-handshake").await;

    let err = send(smtp_port(&server), required()).await.unwrap_err();

    assert!(!err.is_response(), "{err}");
    assert!(
        err.to_string()
            .contains("peer closed connection without sending TLS close_notify"),
        "{err}"
    );
    assert_lost_after_handshake(&server).await;
}

#[tokio::test]
async fn lettre_without_tls_gets_530_at_mail_and_with_starttls_delivers() {
    let server = start("tls-required").await;

    let err = send(smtp_port(&server), Tls::None).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert_eq!(
        err.status().map(|code| code.to_string()).as_deref(),
        Some("530")
    );
    assert!(server.messages().is_empty());

    send(smtp_port(&server), required()).await.unwrap();
    assert!(only_message(&server).await.tls.is_some());
}

#[tokio::test]
async fn lettre_insisting_on_tls13_cannot_agree_with_a_tls12_only_server() {
    let server = start("tls12-only").await;
    let tls13 = lab_tls()
        .set_min_tls_version(TlsVersion::Tlsv13)
        .build()
        .unwrap();

    let err = send(smtp_port(&server), Tls::Required(tls13))
        .await
        .unwrap_err();

    assert!(
        matches!(
            rustls_cause(&err),
            Some(rustls::Error::AlertReceived(
                AlertDescription::ProtocolVersion
            ))
        ),
        "{err}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn each_version_limited_server_takes_lettre_mail_over_the_version_it_allows() {
    for (scenario, version) in [("tls12-only", "TLSv1.2"), ("tls13-only", "TLSv1.3")] {
        let server = start(scenario).await;

        send(smtp_port(&server), required()).await.unwrap();

        let message = only_message(&server).await;
        let tls = message.tls.as_ref().expect("TLS facts");
        assert_eq!(tls.version, version, "{scenario}");
    }
}
