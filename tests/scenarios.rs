//! Each built-in scenario that does not need TLS, driven in-process by lettre and by a raw client,
//! asserting what the client saw: the reply codes, how the connection ended, and what was kept.

mod common;

use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use smtp_fault::faults::{Delay, FaultKind, Stage};
use tokio::net::TcpStream;

/// How long an impatient client waits in these tests.
const PATIENCE: Duration = Duration::from_secs(1);

/// How far over an expected duration a measurement may run on a busy machine.
const SLACK: Duration = Duration::from_millis(900);

/// A short message in the form lettre sends: lettre ends the data with CRLF . CRLF, so the last
/// line is left without its CRLF here and the stored copy has it.
const NOTE: &[u8] = b"Subject: note\r\n\r\nhello\r\nbye";

/// The sender and recipient of every message these tests send.
const FROM: &str = "from@a.test";
const TO: &str = "to@b.test";

fn stored_form(sent_by_lettre: &[u8]) -> Vec<u8> {
    [sent_by_lettre, b"\r\n"].concat()
}

/// The transcript of the only session, as text, for asserting on what the server saw.
fn only_transcript(server: &smtp_fault::Server) -> String {
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 1, "one session expected: {sessions:#?}");
    sessions[0]
        .entries
        .iter()
        .map(|e| format!("{:?} {}", e.direction, e.text))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends [`NOTE`] with lettre from [`FROM`] to [`TO`].
async fn send_note(server: &smtp_fault::Server) -> Sent {
    send(server.smtp_addr(), FROM, &[TO], NOTE).await
}

/// Has a raw client and lettre wait on the server at once, each giving up after [`PATIENCE`],
/// and asserts that neither got a reply and that both waited the whole time. `raw` brings the
/// raw client to the point where it waits for a reply; its time starts after that.
async fn both_wait_in_vain(addr: SocketAddr, raw: impl Future<Output = Client>) {
    let raw = async {
        let mut client = raw.await;
        timed(client.read_reply(PATIENCE)).await
    };
    let lettre = timed(send_within(addr, FROM, &[TO], NOTE, PATIENCE));
    let ((read, raw_took), (sent, lettre_took)) = tokio::join!(raw, lettre);

    assert_eq!(read.expect_err("no reply").kind(), ErrorKind::TimedOut);
    assert_took(raw_took, PATIENCE, SLACK);
    assert!(sent.is_err(), "lettre finished: {sent:?}");
    assert_took(lettre_took, PATIENCE, SLACK);
}

/// Waits until the server has closed every session, so its transcripts are final.
async fn sessions_closed(server: &smtp_fault::Server) {
    for _ in 0..200 {
        if server.sessions().iter().all(|t| !t.open) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("sessions still open: {:#?}", server.sessions());
}

#[tokio::test]
async fn accept_delivers_and_keeps_the_envelope_and_the_message() {
    let server = start(builtin("accept")).await;

    let response = send_note(&server).await.expect("delivered");

    assert_eq!(response.code().to_string(), "250");
    assert!(
        response
            .first_line()
            .is_some_and(|l| l.starts_with("2.0.0 OK: queued as 0000000000000001")),
        "{response:?}"
    );
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.helo, "client.test");
    assert_eq!(message.mail_from, "from@a.test");
    assert_eq!(message.rcpt_to, vec!["to@b.test".to_string()]);
    assert_eq!(message.data.as_ref(), stored_form(NOTE).as_slice());
}

#[tokio::test]
async fn a_client_that_connects_as_soon_as_start_returns_is_greeted() {
    // The listener must be listening by the time `start` returns, or a test that connects at
    // once is refused.
    for _ in 0..20 {
        let server = start(builtin("accept")).await;
        Client::greeted(server.smtp_addr()).await;
    }
}

#[tokio::test]
async fn connection_refused_answers_the_syn_with_a_reset() {
    let server = start(builtin("connection-refused")).await;

    let started = Instant::now();
    let err = TcpStream::connect(server.smtp_addr())
        .await
        .expect_err("the connect is refused");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(started.elapsed() < PATIENCE, "a refusal is immediate");

    let err = send_note(&server).await.expect_err("lettre cannot connect");
    assert_eq!(io_kind(&err), Some(ErrorKind::ConnectionRefused), "{err}");
    assert_eq!(server.counters().connections, 0);
}

#[tokio::test]
async fn connection_timed_out_never_answers_the_syn_so_the_connect_itself_times_out() {
    let server = start(builtin("connection-timed-out")).await;
    let addr = server.smtp_addr();

    let raw = timed(tokio::time::timeout(PATIENCE, TcpStream::connect(addr)));
    let lettre = async {
        let transport = lettre(addr, PATIENCE);
        let envelope = envelope(FROM, &[TO]);
        timed(tokio::time::timeout(
            STEP,
            transport.send_raw(&envelope, NOTE),
        ))
        .await
    };
    let ((connect, raw_took), (sent, lettre_took)) = tokio::join!(raw, lettre);

    // Neither connected nor refused: the connect was still waiting for a SYN-ACK.
    assert!(connect.is_err(), "connect finished: {connect:?}");
    assert_took(raw_took, PATIENCE, SLACK);

    let err = sent
        .expect("lettre gives up by itself")
        .expect_err("lettre cannot connect");
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("connection timed out"), "{err}");
    assert_took(lettre_took, PATIENCE, SLACK);
    assert_eq!(server.counters().connections, 0);
}

#[tokio::test]
async fn greeting_timeout_accepts_the_connection_and_never_greets() {
    let server = start(builtin("greeting-timeout")).await;
    let addr = server.smtp_addr();

    both_wait_in_vain(addr, Client::connect(addr)).await;

    assert_eq!(server.counters().connections, 2);
}

#[tokio::test]
async fn service_not_available_greets_with_421_and_closes() {
    let server = start(builtin("service-not-available")).await;

    let mut client = Client::connect(server.smtp_addr()).await;
    client.reply().await.expect(421, "4.3.2");
    client.expect_fin().await;

    let err = send_note(&server).await.expect_err("refused");
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.status().map(|c| c.to_string()), Some("421".into()));
    assert!(
        err.to_string().contains("4.3.2 Service not available"),
        "{err}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn tls_not_offered_leaves_starttls_out_so_a_sender_that_requires_tls_gives_up() {
    let server = start(builtin("tls-not-offered")).await;
    let healthy = start(builtin("accept")).await;

    let mut client = Client::greeted(server.smtp_addr()).await;
    let ehlo = client.command("EHLO client.test").await;
    ehlo.expect_code(250);
    assert!(!ehlo.has_line_starting("STARTTLS"), "{ehlo:?}");
    assert!(ehlo.has_line_starting("PIPELINING"), "{ehlo:?}");
    client.command("STARTTLS").await.expect(502, "5.5.1");

    // The same EHLO from the healthy scenario does offer it, so the assertion above has teeth.
    let mut client = Client::greeted(healthy.smtp_addr()).await;
    assert!(
        client
            .command("EHLO client.test")
            .await
            .has_line_starting("STARTTLS")
    );

    let tls = TlsParameters::new("mx.lab.test".to_string()).expect("tls parameters");
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.smtp_addr().port())
        .timeout(Some(STEP))
        .tls(Tls::Required(tls))
        .build();
    let sent = tokio::time::timeout(STEP, transport.send_raw(&envelope(FROM, &[TO]), NOTE))
        .await
        .expect("lettre finishes");
    let err = sent.expect_err("lettre requires TLS");
    assert!(
        err.to_string().contains("STARTTLS is not supported"),
        "{err}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn close_on_connect_sends_a_fin_before_any_greeting() {
    let server = start(builtin("close-on-connect")).await;

    let mut client = Client::connect(server.smtp_addr()).await;
    client.expect_closed_without_reply().await;

    let err = send_note(&server).await.expect_err("no greeting");
    assert!(err.is_response(), "{err}");
    assert!(err.to_string().contains("incomplete response"), "{err}");
}

#[tokio::test]
async fn reset_on_connect_sends_an_rst_before_any_greeting() {
    let server = start(builtin("reset-on-connect")).await;

    let mut client = Client::connect(server.smtp_addr()).await;
    let err = client.read_reply(STEP).await.expect_err("no greeting");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");

    let err = send_note(&server).await.expect_err("no greeting");
    assert_eq!(io_kind(&err), Some(ErrorKind::ConnectionReset), "{err}");
}

#[tokio::test]
async fn close_on_mail_sends_a_fin_and_no_reply_to_mail_from() {
    let server = start(builtin("close-on-mail")).await;

    let mut client = Client::ready(server.smtp_addr()).await;
    client.send(b"MAIL FROM:<from@a.test>\r\n").await;
    // End of file, not a reset: the server closed politely, just without a word.
    client.expect_closed_without_reply().await;

    let err = send_note(&server).await.expect_err("no reply to MAIL");
    assert!(err.to_string().contains("incomplete response"), "{err}");
    assert!(server.messages().is_empty());
}

/// A 64 KiB message of base64-like lines.
fn big_message() -> Vec<u8> {
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    let line = [b'A'; 76];
    while message.len() < 64 * 1024 {
        message.extend_from_slice(&line);
        message.extend_from_slice(b"\r\n");
    }
    message
}

#[tokio::test]
async fn reset_during_body_resets_after_1024_bytes_and_keeps_nothing() {
    let server = start(builtin("reset-during-body")).await;

    let mut client = Client::ready(server.smtp_addr()).await;
    client.start_data(FROM, &[TO]).await;

    // The first error the client meets, writing or reading, is the reset.
    let mut first_error = None;
    for piece in big_message().chunks(4096) {
        if let Err(e) = client.try_send(piece).await {
            first_error = Some(e.kind());
            break;
        }
    }
    if first_error.is_none() {
        let _ = client.try_send(b".\r\n").await;
        first_error = client.read_reply(STEP).await.err().map(|e| e.kind());
    }
    assert_eq!(first_error, Some(ErrorKind::ConnectionReset));

    let err = send(server.smtp_addr(), FROM, &[TO], &big_message())
        .await
        .expect_err("reset");
    assert!(
        matches!(
            io_kind(&err),
            Some(ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
        ),
        "{err}"
    );
    assert!(server.messages().is_empty());

    // A message shorter than the threshold never meets the fault.
    let mut client = Client::ready(server.smtp_addr()).await;
    let short = [
        b"Subject: short\r\n\r\n".as_slice(),
        &[b'x'; 900],
        b"\r\n.\r\n",
    ]
    .concat();
    assert!(short.len() < 1024);
    transaction(&mut client, FROM, &[TO], &short)
        .await
        .expect(250, "2.0.0");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn close_after_final_dot_takes_the_whole_message_and_closes_without_a_reply() {
    let server = start(builtin("close-after-final-dot")).await;

    let mut client = Client::ready(server.smtp_addr()).await;
    client.start_data(FROM, &[TO]).await;
    client.send(b"Subject: x\r\n\r\nbody\r\n.\r\n").await;
    client.expect_closed_without_reply().await;

    // The server did read up to the final dot: the close came after it, not during the data.
    sessions_closed(&server).await;
    let transcript = only_transcript(&server);
    assert!(transcript.contains("final dot received"), "{transcript}");
    assert!(server.messages().is_empty(), "no 250 was given");

    let err = send_note(&server)
        .await
        .expect_err("no reply to the final dot");
    assert!(err.to_string().contains("incomplete response"), "{err}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn stall_after_data_says_354_then_never_answers_the_final_dot() {
    let server = start(builtin("stall-after-data")).await;
    let addr = server.smtp_addr();

    let raw = async {
        let mut client = Client::ready(addr).await;
        client.start_data(FROM, &[TO]).await;
        client.send(b"Subject: x\r\n\r\nbody\r\n.\r\n").await;
        client
    };
    both_wait_in_vain(addr, raw).await;

    assert!(server.messages().is_empty());
    let stalled = server
        .sessions()
        .iter()
        .filter(|t| t.faults.iter().any(|f| f.contains("stall")))
        .count();
    assert_eq!(stalled, 2, "both sessions reached the stall");
}

#[tokio::test]
async fn mailbox_full_refuses_full_example_recipients_and_delivers_to_the_others() {
    let server = start(builtin("mailbox-full")).await;

    let mut client = Client::ready(server.smtp_addr()).await;
    client.mail(FROM).await;
    let full = client.command("RCPT TO:<alice@full.example>").await;
    full.expect(452, "4.2.2");
    assert!(full.lines[0].contains("Mailbox full"), "{full:?}");
    client
        .command("RCPT TO:<BOB@Full.Example>")
        .await
        .expect(452, "4.2.2");
    client.rcpt("carol@ok.example").await;
    client.command("DATA").await.expect_code(354);
    client.send(b"Subject: x\r\n\r\nbody\r\n.\r\n").await;
    client.reply().await.expect(250, "2.0.0");

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rcpt_to, vec!["carol@ok.example".to_string()]);

    // lettre gives up on the whole message at the first refused recipient.
    let err = send(
        server.smtp_addr(),
        FROM,
        &["dave@ok.example", "erin@full.example"],
        NOTE,
    )
    .await
    .expect_err("refused");
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.status().map(|c| c.to_string()), Some("452".into()));
    assert!(err.to_string().contains("4.2.2 Mailbox full"), "{err}");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn unknown_user_refuses_nobody_example_permanently_and_delivers_to_the_others() {
    let server = start(builtin("unknown-user")).await;

    let mut client = Client::ready(server.smtp_addr()).await;
    client.mail(FROM).await;
    client
        .command("RCPT TO:<x@nobody.example>")
        .await
        .expect(550, "5.1.1");
    client.rcpt("y@somebody.example").await;
    client.command("DATA").await.expect_code(354);
    client.send(b"Subject: x\r\n\r\nbody\r\n.\r\n").await;
    client.reply().await.expect(250, "2.0.0");
    assert_eq!(
        server.messages()[0].rcpt_to,
        vec!["y@somebody.example".to_string()]
    );

    let err = send(server.smtp_addr(), FROM, &["z@nobody.example"], NOTE)
        .await
        .expect_err("refused");
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().contains("5.1.1 User unknown"), "{err}");
}

#[tokio::test]
async fn message_rejected_takes_the_data_then_refuses_it_with_554() {
    let server = start(builtin("message-rejected")).await;

    let mut client = Client::ready(server.smtp_addr()).await;
    let reply = transaction(&mut client, FROM, &[TO], b"Subject: x\r\n\r\nbody\r\n.\r\n").await;
    reply.expect(554, "5.7.1");
    assert!(
        reply.lines[0].contains("Message rejected as spam"),
        "{reply:?}"
    );
    // A refusal is not the end of the session.
    client.command("NOOP").await.expect(250, "2.0.0");
    client.command("QUIT").await.expect(221, "2.0.0");

    let err = send_note(&server).await.expect_err("rejected");
    assert!(err.is_permanent(), "{err}");
    assert_eq!(err.status().map(|c| c.to_string()), Some("554".into()));
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn ehlo_rejected_refuses_ehlo_and_helo_and_everything_but_quit() {
    let server = start(builtin("ehlo-rejected")).await;

    let mut client = Client::greeted(server.smtp_addr()).await;
    client
        .command("EHLO client.test")
        .await
        .expect(550, "5.7.1");
    client
        .command("HELO client.test")
        .await
        .expect(550, "5.7.1");
    client
        .command("MAIL FROM:<from@a.test>")
        .await
        .expect(503, "5.5.1");
    client.command("QUIT").await.expect(221, "2.0.0");
    client.expect_fin().await;

    let err = send_note(&server).await.expect_err("rejected");
    assert!(err.is_permanent(), "{err}");
    assert!(
        err.to_string().contains("5.7.1 Client host rejected"),
        "{err}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn slow_greeting_delivers_to_a_patient_sender_and_loses_an_impatient_one() {
    // The built-in waits ten seconds; the same scenario with a shorter delay behaves the same.
    let mut scenario = builtin("slow-greeting");
    assert_eq!(scenario.faults.len(), 1);
    assert_eq!(scenario.faults[0].stage, Stage::Connect);
    assert_eq!(
        scenario.faults[0].kind,
        FaultKind::Delay(Delay { delay_ms: 10_000 })
    );
    let delay = Duration::from_millis(600);
    scenario.faults[0].kind = FaultKind::Delay(Delay { delay_ms: 600 });
    let server = start(scenario).await;
    let addr = server.smtp_addr();

    let impatient = async {
        let mut client = Client::connect(addr).await;
        client.expect_silence(Duration::from_millis(200)).await;
    };
    let patient = timed(send(addr, FROM, &[TO], NOTE));
    let ((), (sent, took)) = tokio::join!(impatient, patient);

    sent.expect("the patient sender delivers");
    assert_took(took, delay, SLACK);
    assert_eq!(server.messages().len(), 1);
}

/// Dot-stuffs a message for the wire and appends the final dot.
fn wire_form(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 8);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A message with lines that start with dots, a lone dot, 8-bit UTF-8 and a Latin-1 octet.
fn tricky_message() -> Vec<u8> {
    let mut message = Vec::new();
    message.extend_from_slice(b"Subject: =?utf-8?q?caf=C3=A9?=\r\n");
    message.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n\r\n");
    message.extend_from_slice(".leading dot\r\n..two dots\r\n.\r\n".as_bytes());
    message.extend_from_slice("naïve café, Grüße, 日本語, 🦀\r\n".as_bytes());
    message.extend_from_slice(b"latin-1 \xe9t\xe9\r\n");
    message.extend_from_slice(b" . not at the start\r\n\r\nend\r\n");
    message
}

#[tokio::test]
async fn a_message_is_stored_byte_for_byte_after_dot_unstuffing() {
    let server = start(builtin("accept")).await;
    let message = tricky_message();

    let mut client = Client::ready(server.smtp_addr()).await;
    client
        .command("MAIL FROM:<from@a.test> BODY=8BITMIME")
        .await
        .expect(250, "2.1.0");
    client.rcpt(TO).await;
    client.command("DATA").await.expect_code(354);
    client.send(&wire_form(&message)).await;
    client.reply().await.expect(250, "2.0.0");

    let stored = &server.messages()[0];
    assert_eq!(stored.data.as_ref(), message.as_slice());
    assert_eq!(stored.size, message.len());
}

#[tokio::test]
async fn a_message_written_a_few_bytes_at_a_time_is_stored_the_same() {
    let server = start(builtin("accept")).await;
    let message = tricky_message();

    let mut client = Client::ready(server.smtp_addr()).await;
    client.start_data(FROM, &[TO]).await;
    // Small pieces, each sent on its own, cut the final CR LF . CR LF across writes.
    for piece in wire_form(&message).chunks(3) {
        client.send(piece).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    client.reply().await.expect(250, "2.0.0");

    assert_eq!(server.messages()[0].data.as_ref(), message.as_slice());
}

#[tokio::test]
async fn lettre_dot_stuffing_is_undone_so_the_stored_lines_are_the_lines_sent() {
    let server = start(builtin("accept")).await;
    let sent = "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nnaïve café 🦀\r\nlast";

    send(server.smtp_addr(), FROM, &[TO], sent.as_bytes())
        .await
        .expect("delivered");

    let stored = &server.messages()[0];
    assert_eq!(
        stored.data.as_ref(),
        stored_form(sent.as_bytes()).as_slice()
    );
}
