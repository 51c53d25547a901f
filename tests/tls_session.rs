//! STARTTLS spoken by hand, byte for byte, with a rustls client that trusts only the lab CA:
//! what happens to commands sent in the clear behind STARTTLS, what state the session is in
//! once TLS is up, and what the server records about the handshake.

mod tls_support;

use std::io::ErrorKind;

use rustls::version::{TLS12, TLS13};
use rustls::{AlertDescription, ProtocolVersion};
use smtp_fault::capture::{Direction, Transcript};
use tls_support::{
    HOST, LIMIT, Smtp, handshake, last_session, over_tls13, ready_for_tls, said_by, start,
};
use tokio::io::AsyncReadExt;

/// The event the server records when it throws away what came after STARTTLS.
fn discarded(octets: usize) -> String {
    format!("discarded {octets} octets pipelined after STARTTLS")
}

/// Asserts the session threw nothing away after STARTTLS.
fn assert_nothing_discarded(transcript: &Transcript) {
    let events = said_by(transcript, Direction::Event);
    assert!(
        events.iter().all(|e| !e.starts_with("discarded")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_command_pipelined_behind_starttls_is_never_answered_over_tls() {
    let injections = [
        "RSET\r\n",
        "NOOP\r\n",
        "MAIL FROM:<mallory@lab.test>\r\n",
        "MAIL FROM:<mallory@lab.test>\r\nRCPT TO:<b@lab.test>\r\n",
    ];
    for injected in injections {
        let server = start("accept").await;
        let mut smtp = Smtp::connect(&server).await;
        assert!(smtp.reply().await.starts_with("220 "));
        smtp.command("EHLO client.lab.test").await;

        // STARTTLS and the injected commands leave in one write, so they arrive together.
        smtp.send(&format!("STARTTLS\r\n{injected}")).await;
        assert_eq!(
            smtp.reply().await,
            "220 2.0.0 Ready to start TLS",
            "{injected:?}"
        );
        let tls = handshake(smtp.into_stream(), &[&TLS13]).await.unwrap();
        let mut smtp = Smtp::new(tls);

        // The first reply over TLS is the one to the client's own EHLO, not one to the injection.
        let ehlo = smtp.command("EHLO client.lab.test").await;
        assert!(
            ehlo.starts_with("250-mx.lab.test greets client.lab.test\n"),
            "{injected:?}: {ehlo}"
        );
        // An injected MAIL did not open a transaction either.
        assert_eq!(
            smtp.command("RCPT TO:<b@lab.test>").await,
            "503 5.5.1 Error: need MAIL command",
            "{injected:?}"
        );
        assert_eq!(
            smtp.command("QUIT").await,
            "221 2.0.0 mx.lab.test closing connection"
        );
        drop(smtp);

        let transcript = last_session(&server).await;
        assert_eq!(
            said_by(&transcript, Direction::Client),
            [
                "EHLO client.lab.test",
                "STARTTLS",
                "EHLO client.lab.test",
                "RCPT TO:<b@lab.test>",
                "QUIT"
            ],
            "{injected:?}"
        );
        assert!(
            said_by(&transcript, Direction::Event).contains(&discarded(injected.len()).as_str()),
            "{injected:?}: {transcript:#?}"
        );
    }
}

#[tokio::test]
async fn starttls_sent_alone_discards_nothing() {
    let server = start("accept").await;

    let mut smtp = over_tls13(&server).await;
    smtp.command("QUIT").await;
    drop(smtp);

    let transcript = last_session(&server).await;
    assert_nothing_discarded(&transcript);
}

#[tokio::test]
async fn mail_straight_after_the_handshake_gets_503_until_the_client_says_ehlo_again() {
    let server = start("accept").await;
    let mut smtp = over_tls13(&server).await;

    assert_eq!(
        smtp.command("MAIL FROM:<a@lab.test>").await,
        "503 5.5.1 Error: send HELO/EHLO first"
    );
    let ehlo = smtp.command("EHLO client.lab.test").await;
    assert!(ehlo.starts_with("250-"), "{ehlo}");
    assert_eq!(
        smtp.command("MAIL FROM:<a@lab.test>").await,
        "250 2.1.0 Sender OK"
    );
}

#[tokio::test]
async fn starttls_is_neither_offered_nor_accepted_once_tls_is_up() {
    let server = start("accept").await;
    let mut smtp = over_tls13(&server).await;

    let ehlo = smtp.command("EHLO client.lab.test").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(
        smtp.command("STARTTLS").await,
        "503 5.5.1 Error: TLS already active"
    );
}

#[tokio::test]
async fn the_server_records_exactly_what_the_client_negotiated() {
    for versions in [&[&TLS13][..], &[&TLS12][..]] {
        let server = start("accept").await;
        let tls = handshake(ready_for_tls(&server).await, versions)
            .await
            .unwrap();
        let (_, client) = tls.get_ref();
        let version = match client.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
            other => panic!("unexpected version {other:?}"),
        };
        let cipher = client
            .negotiated_cipher_suite()
            .and_then(|suite| suite.suite().as_str())
            .expect("a named cipher suite")
            .to_string();
        let mut smtp = Smtp::new(tls);
        smtp.command("QUIT").await;
        drop(smtp);

        let recorded = last_session(&server).await.tls.expect("TLS facts");
        assert_eq!(recorded.version, version);
        assert_eq!(recorded.cipher, cipher);
        assert_eq!(recorded.sni.as_deref(), Some(HOST));
    }
}

#[tokio::test]
async fn a_client_limited_to_the_version_the_server_lacks_gets_a_protocol_version_alert() {
    for (scenario, client) in [("tls12-only", &TLS13), ("tls13-only", &TLS12)] {
        let server = start(scenario).await;

        let err = handshake(ready_for_tls(&server).await, &[client])
            .await
            .unwrap_err();

        let cause = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        assert!(
            matches!(
                cause,
                Some(rustls::Error::AlertReceived(
                    AlertDescription::ProtocolVersion
                ))
            ),
            "{scenario}: {err}"
        );
        let transcript = last_session(&server).await;
        let events = said_by(&transcript, Direction::Event);
        assert!(
            events
                .iter()
                .any(|e| e.starts_with("TLS handshake failed: ")),
            "{scenario}: {events:?}"
        );
        assert!(transcript.tls.is_none(), "{scenario}");
    }
}

#[tokio::test]
async fn pipelining_ehlo_with_starttls_still_upgrades() {
    let server = start("accept").await;
    let mut smtp = Smtp::connect(&server).await;
    assert!(smtp.reply().await.starts_with("220 "));

    smtp.send("EHLO client.lab.test\r\nSTARTTLS\r\n").await;
    assert!(smtp.reply().await.ends_with("\n250 STARTTLS"));
    assert_eq!(smtp.reply().await, "220 2.0.0 Ready to start TLS");
    let tls = handshake(smtp.into_stream(), &[&TLS13]).await.unwrap();
    let mut smtp = Smtp::new(tls);
    smtp.command("QUIT").await;
    drop(smtp);

    let transcript = last_session(&server).await;
    assert!(transcript.tls.is_some());
    assert_nothing_discarded(&transcript);
}

#[tokio::test]
async fn quit_over_tls_ends_with_close_notify() {
    let server = start("accept").await;
    let mut smtp = over_tls13(&server).await;
    smtp.command("EHLO client.lab.test").await;
    assert_eq!(
        smtp.command("QUIT").await,
        "221 2.0.0 mx.lab.test closing connection"
    );

    let mut rest = Vec::new();
    let end = tokio::time::timeout(LIMIT, smtp.into_stream().read_to_end(&mut rest))
        .await
        .expect("the server closes in time");

    // rustls reports a clean end only when close_notify came before the FIN.
    assert_eq!(end.unwrap(), 0);
}

#[tokio::test]
async fn a_session_dropped_after_the_handshake_ends_without_close_notify() {
    let server = start("tls-dropped-after-handshake").await;
    let mut smtp = over_tls13(&server).await;

    smtp.send("EHLO client.lab.test\r\n").await;
    let mut rest = Vec::new();
    let end = tokio::time::timeout(LIMIT, smtp.into_stream().read_to_end(&mut rest))
        .await
        .expect("the server closes in time");

    let err = end.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
    assert!(rest.is_empty(), "no reply to EHLO: {rest:?}");
}
