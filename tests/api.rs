//! The Rust API as a test uses it: start a server on 127.0.0.1:0 from any scenario source,
//! point a real client at it, and read back what arrived, what was said and what was counted.

mod fixture;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fixture::{
    CLIENT_NAME, Client, as_sent, full_mailboxes_toml, letter, letter_to, mailer, start_builtin,
    tls_mailer, until_active,
};
use lettre::AsyncTransport;
use smtp_fault::capture::{Direction, Message};
use smtp_fault::faults::{Condition, Fault, FaultKind, Pattern, ReplyFault, Stage};
use smtp_fault::protocol::{EnhancedCode, Reply};
use smtp_fault::{Scenario, Server, ServerHandle};

const WAIT: Duration = Duration::from_secs(5);

/// Sends `message` with lettre and checks that the server stored exactly it.
async fn delivers(server: &ServerHandle, message: lettre::Message) -> Arc<Message> {
    let before = server.messages().len();
    let expected = as_sent(&message);
    let response = mailer(server.smtp_addr()).send(message).await.unwrap();
    assert_eq!(u16::from(response.code()), 250);

    let stored = server.wait_for_messages(before + 1, WAIT).await.unwrap();
    let got = stored.last().unwrap().clone();
    // As text first, for a readable difference; then as bytes, which is what counts.
    assert_eq!(
        String::from_utf8_lossy(&got.data),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(got.data, expected);
    assert_eq!(got.size, expected.len());
    got
}

#[tokio::test]
async fn a_builtin_scenario_stores_a_lettre_message_byte_for_byte_with_its_envelope() {
    let server = Server::builder()
        .builtin("accept")
        .unwrap()
        .start()
        .await
        .unwrap();
    assert!(server.smtp_addr().ip().is_loopback());
    assert_eq!(server.scenario().name, "accept");

    let got = delivers(&server, letter("a builtin scenario")).await;

    assert_eq!(got.id, 1);
    assert_eq!(got.mail_from, "alice@client.test");
    assert_eq!(got.rcpt_to, vec!["bob@dest.test"]);
    assert_eq!(got.helo, CLIENT_NAME);
    assert!(got.peer.ip().is_loopback());
    assert_eq!(got.tls, None);
    let text = String::from_utf8_lossy(&got.data);
    assert!(
        text.contains("\r\n.A line that starts with a dot.\r\n"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_scenario_file_is_loaded_and_its_fault_fires_only_where_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.toml");
    std::fs::write(&path, full_mailboxes_toml("full-from-file")).unwrap();
    let server = Server::builder()
        .scenario_file(&path)
        .unwrap()
        .start()
        .await
        .unwrap();
    assert_eq!(server.scenario().name, "full-from-file");

    delivers(&server, letter("a file scenario")).await;

    let refused = mailer(server.smtp_addr())
        .send(letter_to("carol@full.test", "to a full mailbox"))
        .await
        .unwrap_err();
    assert!(refused.is_transient(), "{refused}");
    assert_eq!(refused.status().map(u16::from), Some(452));
    assert!(
        refused.to_string().contains("4.2.2 Mailbox full"),
        "{refused}"
    );
    assert_eq!(server.messages().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_scenario_from_a_toml_string_refuses_only_the_matching_message() {
    let server = Server::builder()
        .scenario_toml(
            r#"
name = "spam-filter"
summary = "Refuses messages from spam.test after the final dot."
[reproduces]
error = "other"
reply = "554 5.7.1"
sender_log = "554 5.7.1 Message rejected as spam"
[[faults]]
stage = "end_of_data"
kind = "reply"
code = 554
enhanced = "5.7.1"
text = "Message rejected as spam"
[faults.when]
mail_from = "*@spam.test"
"#,
        )
        .unwrap()
        .start()
        .await
        .unwrap();
    assert_eq!(server.scenario().name, "spam-filter");

    delivers(&server, letter("a TOML string scenario")).await;

    let mut client = Client::greeted(server.smtp_addr()).await.unwrap();
    let refused = client
        .send_mail(
            "eve@spam.test",
            "bob@dest.test",
            b"Subject: buy\r\n\r\nnow\r\n",
        )
        .await
        .unwrap();
    assert_eq!(refused.last(), "554 5.7.1 Message rejected as spam");
    client.quit().await.unwrap();
    assert_eq!(server.messages().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_scenario_built_in_code_refuses_a_blocked_sender_and_takes_the_rest() {
    let blocked = Reply::new(550, Some(EnhancedCode::new(5, 7, 1)), "Sender blocked");
    let when = Condition {
        mail_from: Some(Pattern::new("*@blocked.test").unwrap()),
        ..Condition::default()
    };
    let scenario = Scenario::builder("blocked-senders")
        .summary("Refuses senders at blocked.test.")
        .fault(Fault::new(Stage::Mail, FaultKind::Reply(ReplyFault::new(blocked))).when(when))
        .build();
    let server = Server::builder().scenario(scenario).start().await.unwrap();
    assert_eq!(server.scenario().name, "blocked-senders");

    delivers(&server, letter("a scenario in code")).await;

    let mut client = Client::greeted(server.smtp_addr()).await.unwrap();
    let reply = client
        .command("MAIL FROM:<mallory@blocked.test>")
        .await
        .unwrap();
    assert_eq!(reply.last(), "550 5.7.1 Sender blocked");
    let reply = client.mail_from_alice().await.unwrap();
    assert_eq!(reply.code, 250);
    client.quit().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn waiting_for_more_messages_than_arrive_times_out_with_those_that_did() {
    let server = Server::builder().start().await.unwrap();
    delivers(&server, letter("the only one")).await;

    let started = Instant::now();
    let arrived = server
        .wait_for_messages(2, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(arrived.len(), 1);
    assert!(String::from_utf8_lossy(&arrived[0].data).contains("Subject: the only one\r\n"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_transcript_shows_commands_and_replies_in_time_order_and_the_fault_that_fired() {
    let server = start_builtin("mailbox-full").await;

    let (mut client, greeting) = Client::connect(server.smtp_addr()).await.unwrap();
    assert_eq!(greeting.last(), "220 mx.lab.test ESMTP smtp-fault ready");
    client.command("EHLO client.test").await.unwrap();
    client.mail_from_alice().await.unwrap();
    let full = client
        .command("RCPT TO:<carol@full.example>")
        .await
        .unwrap();
    assert_eq!(full.last(), "452 4.2.2 Mailbox full");
    client.quit().await.unwrap();
    until_active(&server, 0).await;

    let sessions = server.sessions();
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    assert_eq!((session.session_id, session.attempt), (1, 1));
    assert!(!session.open);
    assert_eq!(session.faults, vec!["rcpt: reply 452 4.2.2"]);

    let said: Vec<(Direction, &str)> = session
        .entries
        .iter()
        .filter(|e| e.direction != Direction::Event)
        .map(|e| (e.direction, e.text.lines().next().unwrap_or("")))
        .collect();
    assert_eq!(
        said,
        vec![
            (Direction::Server, "220 mx.lab.test ESMTP smtp-fault ready"),
            (Direction::Client, "EHLO client.test"),
            (Direction::Server, "250-mx.lab.test greets client.test"),
            (Direction::Client, "MAIL FROM:<alice@client.test>"),
            (Direction::Server, "250 2.1.0 Sender OK"),
            (Direction::Client, "RCPT TO:<carol@full.example>"),
            (Direction::Fault, "rcpt: reply 452 4.2.2"),
            (Direction::Server, "452 4.2.2 Mailbox full"),
            (Direction::Client, "QUIT"),
            (
                Direction::Server,
                "221 2.0.0 mx.lab.test closing connection"
            ),
        ]
    );
    let ehlo = &session
        .entries
        .iter()
        .find(|e| e.text.starts_with("250-"))
        .unwrap()
        .text;
    assert!(ehlo.lines().any(|l| l == "250 STARTTLS"), "{ehlo}");
    let offsets: Vec<f64> = session.entries.iter().map(|e| e.at_ms).collect();
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{offsets:?}");
    assert!(offsets.last() > offsets.first(), "{offsets:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn counters_count_connections_attempts_and_stored_messages() {
    let server = Server::builder().start().await.unwrap();
    assert_eq!(server.counters(), smtp_fault::Counters::default());

    let open = Client::greeted(server.smtp_addr()).await.unwrap();
    assert_eq!(server.counters().active_sessions, 1);
    delivers(&server, letter("counted")).await;
    open.quit().await.unwrap();
    let (bare, _) = Client::connect(server.smtp_addr()).await.unwrap();
    bare.quit().await.unwrap();
    until_active(&server, 0).await;

    let counted = server.counters();
    assert_eq!(counted.connections, 3);
    assert_eq!(counted.attempts, 3);
    assert_eq!(counted.messages, 1);
    assert_eq!((counted.active_sessions, counted.over_limit), (0, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn clear_forgets_messages_and_finished_sessions_but_not_the_count_of_connections() {
    let server = Server::builder().start().await.unwrap();
    delivers(&server, letter("to be forgotten")).await;
    until_active(&server, 0).await;
    assert_eq!(server.sessions().len(), 1);

    server.clear();

    assert!(server.messages().is_empty());
    assert!(server.sessions().is_empty());
    assert_eq!(server.counters().messages, 0);
    assert_eq!(server.counters().connections, 1);
    let next = delivers(&server, letter("after clearing")).await;
    assert_eq!(server.messages().len(), 1);
    assert_eq!(next.id, 2, "ids are not reused after a clear");
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_trusting_the_lab_ca_verifies_starttls_to_mx_lab_test() {
    let server = Server::builder().start().await.unwrap();
    assert!(server.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));

    let sender = tls_mailer(server.smtp_addr(), "mx.lab.test", server.ca_pem());
    let response = sender.send(letter("over STARTTLS")).await.unwrap();
    assert_eq!(u16::from(response.code()), 250);

    let got = server.wait_for_messages(1, WAIT).await.unwrap();
    let tls = got[0].tls.as_ref().expect("the message arrived over TLS");
    assert!(tls.version.starts_with("TLSv1."), "{tls:?}");
    assert_eq!(tls.sni.as_deref(), Some("mx.lab.test"));
    let session = &server.sessions()[0];
    assert!(session.tls.is_some());
    assert!(
        session
            .entries
            .iter()
            .any(|e| e.text.starts_with("TLS established"))
    );

    let (other_ca, _key) = smtp_fault::tls::generate_ca().unwrap();
    let untrusting = tls_mailer(server.smtp_addr(), "mx.lab.test", &other_ca);
    let refused = untrusting.send(letter("to an untrusted server")).await;
    assert!(
        refused.is_err(),
        "a client without the lab CA must not trust the server"
    );
    assert_eq!(server.messages().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_new_scenario_applies_to_new_sessions_while_open_ones_keep_theirs() {
    let server = start_builtin("accept").await;
    let mut before = Client::greeted(server.smtp_addr()).await.unwrap();

    let refuse_mail = Reply::new(550, Some(EnhancedCode::new(5, 7, 1)), "No mail today");
    server.set_scenario(
        Scenario::builder("no-mail")
            .fault(Fault::new(
                Stage::Mail,
                FaultKind::Reply(ReplyFault::new(refuse_mail)),
            ))
            .build(),
    );
    assert_eq!(server.scenario().name, "no-mail");

    let reply = before.mail_from_alice().await.unwrap();
    assert_eq!(reply.last(), "250 2.1.0 Sender OK");
    let mut after = Client::greeted(server.smtp_addr()).await.unwrap();
    let reply = after.mail_from_alice().await.unwrap();
    assert_eq!(reply.last(), "550 5.7.1 No mail today");

    let reply = before.command("RCPT TO:<bob@dest.test>").await.unwrap();
    assert_eq!(reply.code, 250);
    assert_eq!(before.command("DATA").await.unwrap().code, 354);
    let reply = before
        .data(b"Subject: sent under the old scenario\r\n\r\nhi\r\n")
        .await
        .unwrap();
    assert_eq!(reply.code, 250, "{reply:?}");
    before.quit().await.unwrap();
    after.quit().await.unwrap();
    assert_eq!(server.messages().len(), 1);
    server.shutdown().await;
}

/// Connects, within a bound, until the port refuses; true if it did.
async fn refused_within(addr: SocketAddr, bound: Duration) -> bool {
    let until = Instant::now() + bound;
    while Instant::now() < until {
        match tokio::net::TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    false
}

#[tokio::test]
async fn after_shutdown_the_port_refuses_connections_at_once() {
    let server = Server::builder().start().await.unwrap();
    let addr = server.smtp_addr();
    server.shutdown().await;

    let connect = tokio::net::TcpStream::connect(addr).await;
    assert_eq!(
        connect.map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
}

#[tokio::test]
async fn dropping_the_server_tells_open_sessions_and_closes_the_port() {
    let server = Server::builder().start().await.unwrap();
    let addr = server.smtp_addr();
    let mut open = Client::greeted(addr).await.unwrap();

    drop(server);

    let goodbye = open.read_reply().await.unwrap();
    assert!(goodbye.last().starts_with("421 4.3.2 "), "{goodbye:?}");
    assert!(open.closed_by_server().await);
    assert!(refused_within(addr, Duration::from_secs(2)).await);
}

/// A std-only client: reads a reply's lines and returns the last one.
fn std_reply(reader: &mut impl BufRead) -> String {
    for _ in 0..100 {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the server closed the connection"
        );
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.trim_end().to_string();
        }
    }
    panic!("a reply of more than 100 lines");
}

#[test]
fn a_blocking_server_serves_a_plain_test_and_waits_for_the_message() {
    let server = Server::builder().start_blocking().unwrap();
    let addr = server.smtp_addr();

    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let stream = StdTcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut replies = vec![std_reply(&mut reader)];
        for line in [
            "HELO std.test",
            "MAIL FROM:<alice@client.test>",
            "RCPT TO:<bob@dest.test>",
            "DATA",
            "Subject: from std\r\n\r\nhello\r\n.",
            "QUIT",
        ] {
            writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
            replies.push(std_reply(&mut reader));
        }
        replies
    });

    let started = Instant::now();
    let got = server.wait_for_messages(1, WAIT).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(got[0].data.as_ref(), b"Subject: from std\r\n\r\nhello\r\n");
    assert_eq!(got[0].helo, "std.test");

    let replies = sender.join().unwrap();
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(codes, ["220", "250", "250", "250", "354", "250", "221"]);
    assert_eq!(server.counters().messages, 1);
}
