//! swaks, which prints every line of the conversation, against each TLS fault: with `--tls`
//! (STARTTLS required) on the SMTP port and `--tls-on-connect` on the implicit-TLS port.
//!
//! swaks 20201014 verifies the chain with `--tls-verify` but not the host name, and its
//! `--timeout` covers SMTP replies but not the TLS handshake. The tests below show both, since
//! they decide what a lab sees when it uses swaks as its sender.

mod tls_support;

use std::process::Stdio;
use std::time::Duration;

use smtp_fault::capture::Direction;
use tls_support::{
    HOST, Run, ca_file, last_session, only_message, run, said_by, smtp_port, smtps_port, start,
};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How swaks starts TLS.
#[derive(Clone, Copy)]
enum Mode {
    /// `--tls`: STARTTLS, and give up if it cannot be done.
    Starttls,
    /// `--tls-on-connect`: TLS from the first byte.
    OnConnect,
    /// No TLS at all.
    Plain,
}

/// The arguments for one delivery from a@lab.test to b@lab.test, verifying against the lab CA
/// when TLS is used, with swaks giving up on a reply after `timeout_secs`.
fn swaks_args(mode: Mode, port: u16, timeout_secs: u32, extra: &[&str]) -> Vec<String> {
    let port = port.to_string();
    let timeout = timeout_secs.to_string();
    let ca = ca_file();
    let mut args = vec![
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--from",
        "a@lab.test",
        "--to",
        "b@lab.test",
        "--helo",
        "client.lab.test",
        "--timeout",
        &timeout,
    ];
    let verify = ["--tls-verify", "--tls-ca-path", &ca, "--tls-sni", HOST];
    match mode {
        Mode::Starttls => args.extend(["--tls"].iter().chain(&verify)),
        Mode::OnConnect => args.extend(["--tls-on-connect"].iter().chain(&verify)),
        Mode::Plain => {}
    }
    args.extend(extra);
    args.into_iter().map(str::to_string).collect()
}

async fn swaks(mode: Mode, port: u16, extra: &[&str]) -> Run {
    let args = swaks_args(mode, port, 5, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("swaks", &args, b"").await
}

#[tokio::test]
async fn swaks_delivers_over_starttls_and_the_capture_records_tls13() {
    let server = start("accept").await;

    let run = swaks(Mode::Starttls, smtp_port(&server), &[]).await;

    run.assert_exit(0);
    run.assert_said("<-  220 2.0.0 Ready to start TLS");
    run.assert_said("=== TLS started with cipher TLSv1.3:TLS_AES_256_GCM_SHA384:256");
    run.assert_said("<~  250 2.0.0 OK: queued as");
    let message = only_message(&server).await;
    assert!(message.data.starts_with(b"Date: "), "{:?}", message.data);
    let tls = message.tls.as_ref().expect("TLS facts");
    assert_eq!(tls.version, "TLSv1.3");
    assert_eq!(tls.cipher, "TLS13_AES_256_GCM_SHA384");
    assert_eq!(tls.sni.as_deref(), Some(HOST));
}

#[tokio::test]
async fn swaks_delivers_over_tls_on_connect_and_is_greeted_inside_tls() {
    let server = start("accept").await;

    let run = swaks(Mode::OnConnect, smtps_port(&server), &[]).await;

    run.assert_exit(0);
    run.assert_said("=== TLS started with cipher TLSv1.3:TLS_AES_256_GCM_SHA384:256");
    run.assert_said("<~  220 mx.lab.test ESMTP smtp-fault ready");
    run.assert_not_said("STARTTLS");
    assert!(only_message(&server).await.tls.is_some());
}

#[tokio::test]
async fn swaks_fails_the_tls_startup_for_each_untrusted_or_out_of_date_certificate() {
    let scenarios = [
        "cert-expired",
        "cert-not-yet-valid",
        "cert-self-signed",
        "cert-untrusted-root",
        "cert-incomplete-chain",
    ];
    for scenario in scenarios {
        let server = start(scenario).await;

        let starttls = swaks(Mode::Starttls, smtp_port(&server), &[]).await;
        let on_connect = swaks(Mode::OnConnect, smtps_port(&server), &[]).await;

        for run in [&starttls, &on_connect] {
            assert_eq!(run.code, Some(29), "{scenario}:\n{}", run.output());
            assert!(
                run.output().contains(
                    "*** TLS startup failed (connect(): error:0A000086:SSL routines::certificate \
                     verify failed)"
                ),
                "{scenario}:\n{}",
                run.output()
            );
        }
        starttls.assert_said("<-  220 2.0.0 Ready to start TLS");
        starttls.assert_said("*** STARTTLS attempted but failed");
        assert!(server.messages().is_empty(), "{scenario}");
    }
}

#[tokio::test]
async fn swaks_does_not_check_the_host_name_so_a_wrong_host_certificate_delivers() {
    let server = start("cert-wrong-host").await;

    let run = swaks(Mode::Starttls, smtp_port(&server), &[]).await;

    run.assert_exit(0);
    run.assert_said("=== TLS peer DN=\"/CN=wrong-host.invalid.test\"");
    let message = only_message(&server).await;
    assert_eq!(
        message.tls.as_ref().and_then(|t| t.sni.as_deref()),
        Some(HOST)
    );
}

#[tokio::test]
async fn swaks_sees_454_when_starttls_is_refused() {
    let server = start("starttls-refused").await;

    let run = swaks(Mode::Starttls, smtp_port(&server), &[]).await;

    run.assert_exit(29);
    run.assert_said("<-  250 STARTTLS");
    run.assert_said(" -> STARTTLS");
    run.assert_said("<** 454 4.7.0 TLS not available due to temporary reason");
    run.assert_said("*** STARTTLS attempted but failed");
    run.assert_not_said("TLS started");
}

#[tokio::test]
async fn swaks_loses_the_connection_after_the_220_when_starttls_is_dropped() {
    let server = start("starttls-dropped").await;

    let run = swaks(Mode::Starttls, smtp_port(&server), &[]).await;

    run.assert_exit(29);
    run.assert_said("<-  220 2.0.0 Ready to start TLS");
    run.assert_said(
        "*** TLS startup failed (connect(): error:0A000126:SSL routines::unexpected eof while \
         reading)",
    );
    let transcript = last_session(&server).await;
    assert!(transcript.tls.is_none(), "{transcript:#?}");
}

#[tokio::test]
async fn swaks_waits_in_a_stalled_handshake_past_its_own_timeout() {
    let server = start("tls-handshake-stall").await;
    let args = swaks_args(Mode::Starttls, smtp_port(&server), 1, &[]);
    let mut child = Command::new("swaks")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("swaks runs");

    // Three times its one-second timeout: swaks is still in the handshake.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still_running = child.try_wait().expect("swaks can be waited for").is_none();
    child.kill().await.expect("swaks stops");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("a piped stdout")
        .read_to_string(&mut stdout)
        .await
        .expect("readable output");

    assert!(still_running, "swaks gave up on its own:\n{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("<-  220 2.0.0 Ready to start TLS"),
        "the last thing swaks saw is the 220:\n{stdout}"
    );
    let transcript = server.sessions().pop().expect("a session");
    assert!(
        transcript.open,
        "the server is still stalling: {transcript:#?}"
    );
    assert_eq!(transcript.faults.len(), 1, "{transcript:#?}");
}

#[tokio::test]
async fn swaks_sees_the_connection_close_after_the_handshake_at_its_second_ehlo() {
    let server = start("tls-dropped-after-handshake").await;

    let run = swaks(Mode::Starttls, smtp_port(&server), &[]).await;

    run.assert_exit(6);
    run.assert_said("=== TLS started with cipher TLSv1.3:TLS_AES_256_GCM_SHA384:256");
    run.assert_said(" ~> EHLO client.lab.test");
    run.assert_said("*** Remote host closed connection unexpectedly.");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn swaks_without_tls_gets_530_at_mail_and_with_tls_delivers() {
    let server = start("tls-required").await;

    let plain = swaks(Mode::Plain, smtp_port(&server), &[]).await;
    plain.assert_exit(23);
    plain.assert_said(" -> MAIL FROM:<a@lab.test>");
    plain.assert_said("<** 530 5.7.0 Must issue a STARTTLS command first");
    assert!(server.messages().is_empty());

    let starttls = swaks(Mode::Starttls, smtp_port(&server), &[]).await;
    starttls.assert_exit(0);
    starttls.assert_said(" ~> MAIL FROM:<a@lab.test>");
    starttls.assert_said("<~  250 2.1.0 Sender OK");
    only_message(&server).await;
}

#[tokio::test]
async fn swaks_gives_up_when_starttls_is_not_offered() {
    let server = start("tls-not-offered").await;

    let run = swaks(Mode::Starttls, smtp_port(&server), &[]).await;

    run.assert_exit(29);
    run.assert_said("<-  250 SMTPUTF8");
    run.assert_said("*** Host did not advertise STARTTLS");
    let transcript = last_session(&server).await;
    assert_eq!(
        said_by(&transcript, Direction::Client),
        ["EHLO client.lab.test", "QUIT"]
    );
}

#[tokio::test]
async fn swaks_speaks_only_the_version_each_restricted_server_allows() {
    let cases = [
        (
            "tls12-only",
            "tlsv1_2",
            "tlsv1_3",
            "TLSv1.2:ECDHE-ECDSA-AES256-GCM-SHA384:256",
        ),
        (
            "tls13-only",
            "tlsv1_3",
            "tlsv1_2",
            "TLSv1.3:TLS_AES_256_GCM_SHA384:256",
        ),
    ];
    for (scenario, allowed, refused, cipher) in cases {
        let server = start(scenario).await;
        let port = smtp_port(&server);

        let run = swaks(Mode::Starttls, port, &["--tls-protocol", refused]).await;
        assert_eq!(
            run.code,
            Some(29),
            "{scenario} {refused}:\n{}",
            run.output()
        );
        assert!(
            run.output().contains(
                "*** TLS startup failed (connect(): error:0A00042E:SSL routines::tlsv1 alert \
                 protocol version)"
            ),
            "{scenario} {refused}:\n{}",
            run.output()
        );

        let run = swaks(Mode::Starttls, port, &["--tls-protocol", allowed]).await;
        assert_eq!(run.code, Some(0), "{scenario} {allowed}:\n{}", run.output());
        assert!(
            run.output()
                .contains(&format!("=== TLS started with cipher {cipher}")),
            "{scenario} {allowed}:\n{}",
            run.output()
        );
        assert_eq!(server.messages().len(), 1, "{scenario}");
    }
}
