//! `openssl s_client` against every certificate variant, both listeners and both TLS version
//! limits: each verdict here is the one OpenSSL 3 itself reached and printed.

mod tls_support;

use std::net::SocketAddr;
use std::process::Stdio;

use smtp_fault::capture::Direction;
use tls_support::{HOST, Run, ca_file, last_session, run, said_by, smtp_port, smtps_port, start};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

/// Which listener a client talks to.
#[derive(Clone, Copy, Debug)]
enum Listener {
    /// The SMTP port, upgraded with STARTTLS.
    Starttls,
    /// The implicit-TLS port.
    Implicit,
}

/// Runs `openssl s_client` against `port`, verifying the server as [`HOST`] against the lab CA,
/// with `extra` arguments and `stdin` as its input.
async fn s_client(listener: Listener, port: u16, extra: &[&str], stdin: &[u8]) -> Run {
    let connect = format!("127.0.0.1:{port}");
    let ca = ca_file();
    let mut args = vec![
        "s_client",
        "-connect",
        &connect,
        "-CAfile",
        &ca,
        "-verify_hostname",
        HOST,
        "-servername",
        HOST,
    ];
    if let Listener::Starttls = listener {
        args.extend(["-starttls", "smtp", "-name", "client.lab.test"]);
    }
    args.extend(extra);
    run("openssl", &args, stdin).await
}

/// Starts `scenario` and has `s_client` check the certificate on both listeners, with nothing
/// to say after the handshake.
async fn verdicts(scenario: &str) -> [(Listener, Run); 2] {
    let server = start(scenario).await;
    let starttls = s_client(Listener::Starttls, smtp_port(&server), &[], b"").await;
    let implicit = s_client(Listener::Implicit, smtps_port(&server), &[], b"").await;
    [
        (Listener::Starttls, starttls),
        (Listener::Implicit, implicit),
    ]
}

/// Checks that `s_client` met each of `errors` while verifying and ended on `verdict`, on both
/// listeners.
async fn assert_rejected(scenario: &str, errors: &[&str], verdict: &str) {
    for (listener, run) in verdicts(scenario).await {
        for error in errors {
            assert!(
                run.stdout.contains(&format!("verify error:{error}\n"))
                    || run.stderr.contains(&format!("verify error:{error}\n")),
                "{scenario} over {listener:?}: expected verify error {error:?} in:\n{}",
                run.output()
            );
        }
        assert!(
            run.stdout
                .contains(&format!("Verify return code: {verdict}\n")),
            "{scenario} over {listener:?}: expected {verdict:?} in:\n{}",
            run.output()
        );
        assert!(
            run.stdout.contains("subject=CN = "),
            "{scenario} over {listener:?}: the server sent no certificate:\n{}",
            run.output()
        );
    }
}

#[tokio::test]
async fn s_client_verifies_the_valid_certificate_on_both_listeners() {
    for (listener, run) in verdicts("accept").await {
        assert!(
            run.stdout.contains("Verify return code: 0 (ok)\n")
                && run.stdout.contains("Verified peername: mx.lab.test\n"),
            "over {listener:?}:\n{}",
            run.output()
        );
        run.assert_not_said("verify error:");
        run.assert_said("subject=CN = mx.lab.test\nissuer=CN = smtp-fault lab CA\n");
    }
}

#[tokio::test]
async fn s_client_verifies_the_rsa_certificate_and_sees_its_2048_bit_key() {
    for (listener, run) in verdicts("cert-valid-rsa").await {
        assert!(
            run.stdout.contains("Verify return code: 0 (ok)\n")
                && run.stdout.contains("Server public key is 2048 bit"),
            "over {listener:?}:\n{}",
            run.output()
        );
    }
}

#[tokio::test]
async fn an_expired_certificate_is_verify_error_10() {
    assert_rejected(
        "cert-expired",
        &["num=10:certificate has expired"],
        "10 (certificate has expired)",
    )
    .await;
}

#[tokio::test]
async fn a_not_yet_valid_certificate_is_verify_error_9() {
    assert_rejected(
        "cert-not-yet-valid",
        &["num=9:certificate is not yet valid"],
        "9 (certificate is not yet valid)",
    )
    .await;
}

#[tokio::test]
async fn a_certificate_for_another_host_is_verify_error_62() {
    assert_rejected(
        "cert-wrong-host",
        &["num=62:hostname mismatch"],
        "62 (hostname mismatch)",
    )
    .await;
}

#[tokio::test]
async fn a_self_signed_certificate_is_verify_error_18() {
    assert_rejected(
        "cert-self-signed",
        &["num=18:self-signed certificate"],
        "18 (self-signed certificate)",
    )
    .await;
}

// For a lone leaf whose issuer is not in the trust store, OpenSSL reports error 20 at depth 0,
// then, because s_client carries on past verify errors, error 21 for the same certificate; the
// return code it prints at the end is the last error, 21.

#[tokio::test]
async fn a_certificate_from_an_untrusted_root_is_verify_error_20_then_21() {
    assert_rejected(
        "cert-untrusted-root",
        &[
            "num=20:unable to get local issuer certificate",
            "num=21:unable to verify the first certificate",
        ],
        "21 (unable to verify the first certificate)",
    )
    .await;
}

#[tokio::test]
async fn a_certificate_sent_without_its_intermediate_is_verify_error_20_then_21() {
    assert_rejected(
        "cert-incomplete-chain",
        &[
            "num=20:unable to get local issuer certificate",
            "num=21:unable to verify the first certificate",
        ],
        "21 (unable to verify the first certificate)",
    )
    .await;
}

#[tokio::test]
async fn a_strict_s_client_aborts_the_handshake_on_a_bad_certificate() {
    let server = start("cert-expired").await;

    let run = s_client(
        Listener::Starttls,
        smtp_port(&server),
        &["-verify_return_error"],
        b"",
    )
    .await;

    run.assert_exit(1);
    run.assert_said("verify error:num=10:certificate has expired");
    run.assert_said("certificate verify failed");
    let transcript = last_session(&server).await;
    assert!(
        transcript.tls.is_none(),
        "no TLS session was made: {transcript:#?}"
    );
}

/// Asserts that the version-limited built-in `scenario` refuses s_client forced to the version
/// flag `refused` with a protocol-version alert, and serves s_client forced to `served`, which
/// prints `session` for the session it gets.
async fn assert_only_version(scenario: &str, refused: &str, served: &str, session: &str) {
    let server = start(scenario).await;
    let port = smtp_port(&server);

    let run = s_client(Listener::Starttls, port, &[refused], b"").await;
    run.assert_exit(1);
    run.assert_said("tlsv1 alert protocol version");
    run.assert_said("SSL alert number 70");
    run.assert_said("New, (NONE), Cipher is (NONE)");

    let run = s_client(Listener::Starttls, port, &[served], b"").await;
    run.assert_exit(0);
    run.assert_said(session);
    run.assert_said("Verify return code: 0 (ok)");
}

#[tokio::test]
async fn a_tls12_only_server_refuses_s_client_forced_to_tls13_and_serves_tls12() {
    let session = "New, TLSv1.2, Cipher is ECDHE-ECDSA-AES256-GCM-SHA384";
    assert_only_version("tls12-only", "-tls1_3", "-tls1_2", session).await;
}

#[tokio::test]
async fn a_tls13_only_server_refuses_s_client_forced_to_tls12_and_serves_tls13() {
    let session = "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384";
    assert_only_version("tls13-only", "-tls1_2", "-tls1_3", session).await;
}

#[tokio::test]
async fn s_client_finds_no_starttls_when_it_is_not_offered_and_the_handshake_fails() {
    let server = start("tls-not-offered").await;

    let run = s_client(Listener::Starttls, smtp_port(&server), &[], b"").await;

    run.assert_exit(1);
    run.assert_said("Didn't find STARTTLS in server response, trying anyway...");
    run.assert_said("wrong version number");
    run.assert_said("no peer certificate available");
}

#[tokio::test]
async fn the_implicit_listener_greets_only_after_the_handshake() {
    let server = start("accept").await;

    let run = s_client(
        Listener::Implicit,
        smtps_port(&server),
        &["-crlf", "-ign_eof"],
        b"EHLO client.lab.test\nQUIT\n",
    )
    .await;

    run.assert_exit(0);
    let after_handshake = run
        .stdout
        .split_once("Verify return code: 0 (ok)\n")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no verified handshake:\n{}", run.output()));
    assert!(
        after_handshake.contains("220 mx.lab.test ESMTP smtp-fault ready\r\n"),
        "{}",
        run.output()
    );
    assert!(
        after_handshake.contains("250 SMTPUTF8\r\n"),
        "{}",
        run.output()
    );
    assert!(
        !after_handshake.contains("STARTTLS"),
        "STARTTLS is not offered inside TLS:\n{}",
        run.output()
    );
    assert!(
        after_handshake.contains("221 2.0.0 mx.lab.test closing connection\r\n"),
        "{}",
        run.output()
    );
}

#[tokio::test]
async fn mail_straight_after_starttls_gets_503_because_the_session_started_over() {
    let server = start("accept").await;

    // s_client has already said EHLO once, in the clear, before STARTTLS. It prints what the
    // server sends as it comes, CRLFs and all.
    let run = s_client(
        Listener::Starttls,
        smtp_port(&server),
        &["-crlf", "-ign_eof"],
        b"MAIL FROM:<a@lab.test>\nQUIT\n",
    )
    .await;

    run.assert_said("Verify return code: 0 (ok)");
    run.assert_said("503 5.5.1 Error: send HELO/EHLO first\r\n");
    run.assert_said("221 2.0.0 mx.lab.test closing connection\r\n");
    let transcript = last_session(&server).await;
    let client = said_by(&transcript, Direction::Client);
    assert_eq!(
        client,
        [
            "EHLO client.lab.test",
            "STARTTLS",
            "MAIL FROM:<a@lab.test>",
            "QUIT"
        ]
    );
}

#[tokio::test]
async fn the_transcript_records_the_version_cipher_and_name_s_client_negotiated() {
    let cases = [
        (
            "-tls1_3",
            "TLSv1.3",
            "TLS_AES_256_GCM_SHA384",
            "TLS13_AES_256_GCM_SHA384",
        ),
        (
            "-tls1_2",
            "TLSv1.2",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
    ];
    for (flag, version, openssl_cipher, rustls_cipher) in cases {
        let server = start("accept").await;

        let run = s_client(Listener::Starttls, smtp_port(&server), &[flag], b"").await;
        run.assert_said(&format!("New, {version}, Cipher is {openssl_cipher}\n"));

        let tls = last_session(&server)
            .await
            .tls
            .unwrap_or_else(|| panic!("{flag}: no TLS facts recorded"));
        assert_eq!(tls.version, version, "{flag}");
        assert_eq!(tls.cipher, rustls_cipher, "{flag}");
        assert_eq!(tls.sni.as_deref(), Some(HOST), "{flag}");
    }
}

#[tokio::test]
async fn a_client_that_sends_no_server_name_is_recorded_without_one() {
    let server = start("accept").await;
    let connect = format!("127.0.0.1:{}", smtps_port(&server));
    let ca = ca_file();

    let run = run(
        "openssl",
        &[
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            &ca,
            "-noservername",
        ],
        b"",
    )
    .await;

    run.assert_said("Verify return code: 0 (ok)");
    let transcript = last_session(&server).await;
    let tls = transcript.tls.expect("TLS facts");
    assert_eq!(tls.sni, None);
}

#[tokio::test]
async fn the_command_line_server_serves_the_lab_certificate_on_both_listeners() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-fault"))
        .args([
            "serve",
            "--scenario",
            "accept",
            "--listen",
            "127.0.0.1:0",
            "--listen-tls",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the smtp-fault binary runs");
    let mut lines = BufReader::new(child.stdout.take().expect("a piped stdout")).lines();
    let smtp = listening_port(&mut lines, "listening smtp ").await;
    let smtps = listening_port(&mut lines, "listening smtps ").await;

    let starttls = s_client(Listener::Starttls, smtp, &[], b"").await;
    let implicit = s_client(Listener::Implicit, smtps, &[], b"").await;

    starttls.assert_said("Verify return code: 0 (ok)");
    implicit.assert_said("Verify return code: 0 (ok)");
    child.kill().await.expect("smtp-fault stops");
}

/// Reads the next line smtp-fault prints and returns the loopback port it names after `prefix`.
async fn listening_port(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> u16 {
    let line = tokio::time::timeout(tls_support::LIMIT, lines.next_line())
        .await
        .expect("smtp-fault says where it listens in time")
        .expect("readable output")
        .expect("a line before the output ends");
    let addr = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected {prefix:?}, got {line:?}"));
    let addr: SocketAddr = addr.parse().expect("an address");
    assert!(addr.ip().is_loopback(), "{line}");
    addr.port()
}
