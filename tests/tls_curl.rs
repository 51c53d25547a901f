//! curl as a sender that requires TLS: it delivers when the certificate is good, and otherwise
//! gives up with its own exit code and message, which are what these tests check.

mod tls_support;

use smtp_fault::capture::Direction;
use smtp_fault::tls::TlsInfo;
use tls_support::{
    HOST, MESSAGE, Run, assert_lost_after_handshake, assert_no_mail,
    assert_only_message_over_tls13, ca_file, last_session, only_message, run, said_by, smtp_port,
    smtps_port, start,
};

/// How curl reaches the server.
#[derive(Clone, Copy)]
enum Url {
    /// `smtp://` on the SMTP port, with STARTTLS required by `--ssl-reqd`.
    Starttls,
    /// `smtp://` on the SMTP port, with no TLS asked for.
    Plain,
    /// `smtps://` on the implicit-TLS port.
    Implicit,
}

/// Sends [`MESSAGE`] with curl, from a@lab.test to b@lab.test, trusting the lab CA. The name
/// mx.lab.test is mapped to 127.0.0.1 with `--resolve`, so curl looks nothing up.
async fn curl(url: Url, port: u16, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("message.eml");
    std::fs::write(&file, MESSAGE).expect("the message is written");

    let (scheme, tls) = match url {
        Url::Starttls => ("smtp", Some("--ssl-reqd")),
        Url::Plain => ("smtp", None),
        Url::Implicit => ("smtps", None),
    };
    let target = format!("{scheme}://{HOST}:{port}");
    let resolve = format!("{HOST}:{port}:127.0.0.1");
    let ca = ca_file();
    let file = file.to_str().expect("a UTF-8 path");
    // `-q` keeps any curlrc out of it; `--max-time` bounds every run.
    let mut args = vec![
        "-q",
        "--silent",
        "--show-error",
        "--max-time",
        "10",
        "--cacert",
        &ca,
        "--resolve",
        &resolve,
        "--mail-from",
        "a@lab.test",
        "--mail-rcpt",
        "b@lab.test",
        "--upload-file",
        file,
    ];
    args.extend(tls);
    args.extend(extra);
    args.push(&target);
    run("curl", &args, b"").await
}

#[tokio::test]
async fn curl_delivers_over_starttls_and_the_message_arrives_byte_for_byte() {
    let server = start("accept").await;

    let run = curl(Url::Starttls, smtp_port(&server), &[]).await;

    run.assert_exit(0);
    let message = only_message(&server).await;
    assert_eq!(&message.data[..], MESSAGE);
    assert_eq!(message.mail_from, "a@lab.test");
    assert_eq!(message.rcpt_to, ["b@lab.test"]);
}

#[tokio::test]
async fn curl_delivers_over_implicit_tls_with_smtps() {
    let server = start("accept").await;

    let run = curl(Url::Implicit, smtps_port(&server), &[]).await;

    run.assert_exit(0);
    assert_only_message_over_tls13(&server).await;
}

#[tokio::test]
async fn a_starttls_delivery_records_tls13_its_cipher_and_the_server_name_curl_sent() {
    let server = start("accept").await;

    curl(Url::Starttls, smtp_port(&server), &[])
        .await
        .assert_exit(0);

    let expected = TlsInfo {
        version: "TLSv1.3".to_string(),
        cipher: "TLS13_AES_256_GCM_SHA384".to_string(),
        sni: Some(HOST.to_string()),
    };
    assert_eq!(only_message(&server).await.tls, Some(expected.clone()));
    assert_eq!(last_session(&server).await.tls, Some(expected));
}

#[tokio::test]
async fn a_delivery_forced_to_tls12_records_tls12_and_its_cipher() {
    let server = start("accept").await;

    curl(Url::Starttls, smtp_port(&server), &["--tls-max", "1.2"])
        .await
        .assert_exit(0);

    let expected = TlsInfo {
        version: "TLSv1.2".to_string(),
        cipher: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_string(),
        sni: Some(HOST.to_string()),
    };
    assert_eq!(only_message(&server).await.tls, Some(expected.clone()));
    assert_eq!(last_session(&server).await.tls, Some(expected));
}

#[tokio::test]
async fn curl_refuses_every_bad_certificate_with_exit_60_and_its_reason() {
    let cases = [
        (
            "cert-expired",
            "SSL certificate problem: certificate has expired",
        ),
        (
            "cert-not-yet-valid",
            "SSL certificate problem: certificate is not yet valid",
        ),
        (
            "cert-wrong-host",
            "SSL: no alternative certificate subject name matches target host name 'mx.lab.test'",
        ),
        (
            "cert-self-signed",
            "SSL certificate problem: self-signed certificate",
        ),
        (
            "cert-untrusted-root",
            "SSL certificate problem: unable to get local issuer certificate",
        ),
        (
            "cert-incomplete-chain",
            "SSL certificate problem: unable to get local issuer certificate",
        ),
    ];
    for (scenario, reason) in cases {
        let server = start(scenario).await;

        for (url, port) in [
            (Url::Starttls, smtp_port(&server)),
            (Url::Implicit, smtps_port(&server)),
        ] {
            let run = curl(url, port, &[]).await;

            assert_eq!(run.code, Some(60), "{scenario}:\n{}", run.output());
            assert!(
                run.stderr.contains(&format!("curl: (60) {reason}\n")),
                "{scenario}:\n{}",
                run.output()
            );
            let transcript = last_session(&server).await;
            assert!(
                !said_by(&transcript, Direction::Client)
                    .iter()
                    .any(|line| line.starts_with("MAIL")),
                "{scenario}: nothing is sent over a rejected connection: {transcript:#?}"
            );
        }
        assert!(server.messages().is_empty(), "{scenario}");
    }
}

#[tokio::test]
async fn curl_gives_up_with_exit_64_when_starttls_is_not_offered() {
    let server = start("tls-not-offered").await;

    let run = curl(Url::Starttls, smtp_port(&server), &[]).await;

    run.assert_exit(64);
    assert_eq!(run.stderr, "curl: (64) STARTTLS not supported.\n");
    assert_no_mail(&server).await;
}

#[tokio::test]
async fn curl_gives_up_with_exit_64_when_starttls_is_refused_with_454() {
    let server = start("starttls-refused").await;

    let run = curl(Url::Starttls, smtp_port(&server), &[]).await;

    run.assert_exit(64);
    assert_eq!(run.stderr, "curl: (64) STARTTLS denied, code 454\n");
    let transcript = last_session(&server).await;
    assert!(
        said_by(&transcript, Direction::Server)
            .contains(&"454 4.7.0 TLS not available due to temporary reason"),
        "{transcript:#?}"
    );
}

#[tokio::test]
async fn curl_sees_the_connection_drop_instead_of_a_handshake_with_exit_35() {
    let server = start("starttls-dropped").await;

    let run = curl(Url::Starttls, smtp_port(&server), &[]).await;

    run.assert_exit(35);
    run.assert_said(
        "curl: (35) OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to mx.lab.test:",
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn curl_times_out_with_exit_28_when_the_handshake_stalls() {
    let server = start("tls-handshake-stall").await;

    let started = tokio::time::Instant::now();
    let (starttls, implicit) = tokio::join!(
        curl(Url::Starttls, smtp_port(&server), &["--max-time", "2"]),
        curl(Url::Implicit, smtps_port(&server), &["--max-time", "2"]),
    );
    let elapsed = started.elapsed();

    starttls.assert_exit(28);
    starttls.assert_said("curl: (28) Operation timed out after 2");
    starttls.assert_said("milliseconds with 0 bytes received");
    // Over implicit TLS the handshake is part of connecting, so curl words it so.
    implicit.assert_exit(28);
    implicit.assert_said("curl: (28) Connection timed out after 2");
    assert!(elapsed.as_secs_f64() < 6.0, "{elapsed:?}");
}

#[tokio::test]
async fn curl_loses_the_connection_with_exit_56_when_it_drops_after_the_handshake() {
    let server = start("tls-dropped-after-handshake").await;

    let run = curl(Url::Starttls, smtp_port(&server), &[]).await;

    run.assert_exit(56);
    run.assert_said("curl: (56) response reading failed");
    assert_lost_after_handshake(&server).await;
}

#[tokio::test]
async fn a_server_that_requires_tls_refuses_plain_curl_with_530_and_takes_it_over_starttls() {
    let server = start("tls-required").await;

    let plain = curl(Url::Plain, smtp_port(&server), &[]).await;
    plain.assert_exit(55);
    assert_eq!(plain.stderr, "curl: (55) MAIL failed: 530\n");
    let transcript = last_session(&server).await;
    assert!(
        said_by(&transcript, Direction::Server)
            .contains(&"530 5.7.0 Must issue a STARTTLS command first"),
        "{transcript:#?}"
    );
    assert!(server.messages().is_empty());

    curl(Url::Starttls, smtp_port(&server), &[])
        .await
        .assert_exit(0);
    assert_eq!(&only_message(&server).await.data[..], MESSAGE);
}

#[tokio::test]
async fn curl_limited_to_the_version_the_server_lacks_fails_with_exit_35() {
    let cases: [(&str, &[&str]); 2] = [
        ("tls12-only", &["--tlsv1.3"]),
        ("tls13-only", &["--tls-max", "1.2"]),
    ];
    for (scenario, limit) in cases {
        let server = start(scenario).await;

        let run = curl(Url::Starttls, smtp_port(&server), limit).await;

        assert_eq!(run.code, Some(35), "{scenario}:\n{}", run.output());
        assert!(
            run.stderr.starts_with("curl: (35) OpenSSL/")
                && run
                    .stderr
                    .ends_with("error:0A00042E:SSL routines::tlsv1 alert protocol version\n"),
            "{scenario}:\n{}",
            run.output()
        );
        assert!(server.messages().is_empty(), "{scenario}");
    }
}
