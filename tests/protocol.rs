//! The healthy receiver's strictness, seen from a raw TCP client: every reply's code and enhanced
//! code, the limits, pipelining, and the handling of bare newlines and broken clients.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn healthy() -> smtp_fault::Scenario {
    builtin("accept")
}

/// A scenario that is healthy apart from the `[server]` settings given.
fn with_server_settings(settings: &str) -> smtp_fault::Scenario {
    scenario(&format!(
        "name = \"strict\"\nsummary = \"A healthy receiver with other limits.\"\n\n\
         [reproduces]\nerror = \"none\"\nsender_log = \"status=sent\"\n\n\
         [server]\n{settings}\n"
    ))
}

#[tokio::test]
async fn the_greeting_is_220_with_the_server_name() {
    let server = start(healthy()).await;

    let mut client = Client::connect(server.smtp_addr()).await;
    let greeting = client.reply().await;

    greeting.expect_code(220);
    assert!(
        greeting.lines[0].starts_with("mx.lab.test "),
        "{greeting:?}"
    );
}

#[tokio::test]
async fn ehlo_lists_every_extension_the_server_supports() {
    let server = start(healthy()).await;
    let mut client = Client::greeted(server.smtp_addr()).await;

    let ehlo = client.command("EHLO client.test").await;

    ehlo.expect_code(250);
    assert_eq!(ehlo.lines[0], "mx.lab.test greets client.test");
    assert_eq!(
        &ehlo.lines[1..],
        [
            "PIPELINING",
            "SIZE 10485760",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
            "STARTTLS"
        ]
    );
}

#[tokio::test]
async fn helo_gets_a_one_line_250_and_a_transaction_may_follow() {
    let server = start(healthy()).await;
    let mut client = Client::greeted(server.smtp_addr()).await;

    let helo = client.command("HELO client.test").await;

    helo.expect_code(250);
    assert_eq!(helo.lines, ["mx.lab.test greets client.test"]);
    let reply = transaction(&mut client, "a@b.test", &["c@d.test"], b"x\r\n.\r\n").await;
    reply.expect(250, "2.0.0");
    assert_eq!(server.messages()[0].helo, "client.test");
}

#[tokio::test]
async fn an_unknown_command_gets_500_5_5_2() {
    let server = start(healthy()).await;
    let mut client = Client::ready(server.smtp_addr()).await;

    client.command("XYZZY").await.expect(500, "5.5.2");
    client.command("NOOP").await.expect(250, "2.0.0");
}

#[tokio::test]
async fn commands_out_of_sequence_get_503_5_5_1() {
    let server = start(healthy()).await;
    let mut client = Client::greeted(server.smtp_addr()).await;

    client
        .command("MAIL FROM:<a@b.test>")
        .await
        .expect(503, "5.5.1");
    client
        .command("RCPT TO:<c@d.test>")
        .await
        .expect(503, "5.5.1");
    client.command("DATA").await.expect(503, "5.5.1");
    client.command("EHLO client.test").await.expect_code(250);
    client
        .command("RCPT TO:<c@d.test>")
        .await
        .expect(503, "5.5.1");
    client.mail("a@b.test").await;
    client.command("DATA").await.expect(503, "5.5.1");
    client
        .command("MAIL FROM:<a@b.test>")
        .await
        .expect(503, "5.5.1");
}

#[tokio::test]
async fn bad_arguments_get_501_5_5_4() {
    let server = start(healthy()).await;
    let mut client = Client::ready(server.smtp_addr()).await;

    for line in [
        "MAIL FROM:bad@address.test",
        "MAIL TO:<a@b.test>",
        "MAIL FROM:<a@b.test> SIZE=12x",
        "DATA now",
        "HELO",
    ] {
        let reply = client.command(line).await;
        assert_eq!(
            (reply.code, reply.enhanced()),
            (501, Some("5.5.4")),
            "{line:?} got {reply:?}"
        );
    }
    client.mail("a@b.test").await;
    client.command("RCPT TO:<>").await.expect(501, "5.5.4");
}

#[tokio::test]
async fn a_line_over_1000_octets_gets_500_5_5_6_and_the_session_goes_on() {
    let server = start(healthy()).await;
    let mut client = Client::ready(server.smtp_addr()).await;

    // 1000 octets with the CRLF is the limit itself, and allowed.
    let longest = format!("NOOP {}", "x".repeat(1000 - 5 - 2));
    assert_eq!(longest.len() + 2, 1000);
    client.command(&longest).await.expect(250, "2.0.0");

    let too_long = format!("NOOP {}", "x".repeat(1000 - 5 - 2 + 1));
    client.command(&too_long).await.expect(500, "5.5.6");
    let far_too_long = format!("MAIL FROM:<{}@b.test>", "a".repeat(100_000));
    client.command(&far_too_long).await.expect(500, "5.5.6");

    client.mail("a@b.test").await;
    client.rcpt("c@d.test").await;
}

#[tokio::test]
async fn mail_with_a_size_over_the_limit_gets_552_5_3_4() {
    let server = start(healthy()).await;
    let mut client = Client::ready(server.smtp_addr()).await;

    client
        .command("MAIL FROM:<a@b.test> SIZE=10485761")
        .await
        .expect(552, "5.3.4");
    client
        .command("MAIL FROM:<a@b.test> SIZE=10485760")
        .await
        .expect(250, "2.1.0");
}

#[tokio::test]
async fn a_message_over_the_advertised_size_gets_552_5_3_4_and_is_not_kept() {
    let server = start(with_server_settings("max_message_bytes = 100")).await;
    let mut client = Client::greeted(server.smtp_addr()).await;
    let ehlo = client.command("EHLO client.test").await;
    assert!(ehlo.lines.iter().any(|l| l == "SIZE 100"), "{ehlo:?}");

    let big = [
        b"Subject: big\r\n\r\n".as_slice(),
        &[b'x'; 200],
        b"\r\n.\r\n",
    ]
    .concat();
    let reply = transaction(&mut client, "a@b.test", &["c@d.test"], &big).await;
    reply.expect(552, "5.3.4");
    assert!(server.messages().is_empty());

    // The same session can still send a message within the limit.
    let small = b"Subject: small\r\n\r\nok\r\n.\r\n";
    let reply = transaction(&mut client, "a@b.test", &["c@d.test"], small).await;
    reply.expect(250, "2.0.0");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn one_recipient_past_the_limit_gets_452_4_5_3() {
    let server = start(with_server_settings("max_recipients = 2")).await;
    let mut client = Client::ready(server.smtp_addr()).await;

    client.mail("a@b.test").await;
    client.rcpt("one@d.test").await;
    client.rcpt("two@d.test").await;
    client
        .command("RCPT TO:<three@d.test>")
        .await
        .expect(452, "4.5.3");
    client.command("DATA").await.expect_code(354);
    client.send(b"x\r\n.\r\n").await;
    client.reply().await.expect(250, "2.0.0");

    assert_eq!(server.messages()[0].rcpt_to, ["one@d.test", "two@d.test"]);
}

#[tokio::test]
async fn an_idle_client_gets_421_4_4_2_and_is_disconnected() {
    let server = start(with_server_settings("idle_timeout_ms = 300")).await;
    let mut client = Client::ready(server.smtp_addr()).await;

    let started = Instant::now();
    let reply = client.reply().await;

    reply.expect(421, "4.4.2");
    assert_took(
        started.elapsed(),
        Duration::from_millis(300),
        Duration::from_millis(700),
    );
    client.expect_fin().await;
}

#[tokio::test]
async fn a_client_idle_in_the_middle_of_a_message_gets_421_4_4_2_and_nothing_is_kept() {
    let server = start(with_server_settings("idle_timeout_ms = 300")).await;
    let mut client = Client::ready(server.smtp_addr()).await;
    client.start_data("a@b.test", &["c@d.test"]).await;

    client.send(b"Subject: half\r\n\r\nhalf a mess").await;
    client.reply().await.expect(421, "4.4.2");

    client.expect_fin().await;
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn pipelined_commands_in_one_write_are_answered_in_order() {
    let server = start(healthy()).await;
    let mut client = Client::greeted(server.smtp_addr()).await;

    client
        .send(
            b"EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<one@d.test>\r\n\
              RCPT TO:<>\r\nRCPT TO:<two@d.test>\r\nDATA\r\n",
        )
        .await;
    client.reply().await.expect_code(250);
    client.reply().await.expect(250, "2.1.0");
    client.reply().await.expect(250, "2.1.5");
    client.reply().await.expect(501, "5.5.4");
    client.reply().await.expect(250, "2.1.5");
    client.reply().await.expect_code(354);

    // The message, the next transaction and QUIT, all in one write as well.
    client
        .send(
            b"first\r\n.\r\nMAIL FROM:<e@f.test>\r\nRCPT TO:<g@h.test>\r\nDATA\r\n\
              second\r\n.\r\nQUIT\r\n",
        )
        .await;
    client.reply().await.expect(250, "2.0.0");
    client.reply().await.expect(250, "2.1.0");
    client.reply().await.expect(250, "2.1.5");
    client.reply().await.expect_code(354);
    client.reply().await.expect(250, "2.0.0");
    client.reply().await.expect(221, "2.0.0");
    client.expect_fin().await;

    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].data.as_ref(), b"first\r\n");
    assert_eq!(messages[0].rcpt_to, ["one@d.test", "two@d.test"]);
    assert_eq!(messages[1].data.as_ref(), b"second\r\n");
    assert_eq!(messages[1].mail_from, "e@f.test");
}

#[tokio::test]
async fn rset_noop_vrfy_help_and_quit_get_their_replies() {
    let server = start(healthy()).await;
    let mut client = Client::ready(server.smtp_addr()).await;

    client.mail("a@b.test").await;
    client.rcpt("c@d.test").await;
    client.command("RSET").await.expect(250, "2.0.0");
    // RSET forgot the transaction.
    client.command("DATA").await.expect(503, "5.5.1");
    client.command("NOOP").await.expect(250, "2.0.0");
    client.command("VRFY postmaster").await.expect(252, "2.5.0");
    let help = client.command("HELP").await;
    help.expect(214, "2.0.0");
    assert!(help.lines.len() > 1, "{help:?}");
    client.command("QUIT").await.expect(221, "2.0.0");
    client.expect_fin().await;
}

#[tokio::test]
async fn a_bare_lf_in_the_data_gets_550_5_5_2_and_nothing_is_kept() {
    let server = start(healthy()).await;
    let mut client = Client::ready(server.smtp_addr()).await;

    let data = b"Subject: lf\r\n\r\nline one\nline two\r\n.\r\n";
    let reply = transaction(&mut client, "a@b.test", &["c@d.test"], data).await;
    reply.expect(550, "5.5.2");

    let data = b"Subject: cr\r\n\r\nline one\rline two\r\n.\r\n";
    let reply = transaction(&mut client, "a@b.test", &["c@d.test"], data).await;
    reply.expect(550, "5.5.2");

    assert!(server.messages().is_empty());
    client.command("NOOP").await.expect(250, "2.0.0");
}

#[tokio::test]
async fn with_bare_newlines_accepted_a_bare_lf_is_kept_as_sent() {
    let server = start(with_server_settings("bare_newlines = \"accept\"")).await;
    let mut client = Client::ready(server.smtp_addr()).await;

    let data = b"Subject: lf\r\n\r\nline one\nline two\r\n.\r\n";
    let reply = transaction(&mut client, "a@b.test", &["c@d.test"], data).await;
    reply.expect(250, "2.0.0");

    assert_eq!(
        server.messages()[0].data.as_ref(),
        b"Subject: lf\r\n\r\nline one\nline two\r\n"
    );
}

#[tokio::test]
async fn a_smuggled_end_of_data_does_not_end_the_message_under_the_default_policy() {
    let server = start(healthy()).await;
    let mut client = Client::ready(server.smtp_addr()).await;

    // Each of these ends the data for some receiver; here none of them does, so the command
    // after it is still message text and the whole message is refused once, at its real end.
    for ending in [
        b"\n.\n".as_slice(),
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r.\r\n",
        b"\r\n.\r",
    ] {
        let data = [
            b"Subject: smuggle\r\n\r\nbody".as_slice(),
            ending,
            b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@y.test>\r\nDATA\r\nsmuggled\r\n.\r\n",
        ]
        .concat();
        let reply = transaction(&mut client, "a@b.test", &["c@d.test"], &data).await;
        assert_eq!(
            (reply.code, reply.enhanced()),
            (550, Some("5.5.2")),
            "{ending:?} got {reply:?}"
        );
        // The next reply answers the next command: no reply was given to a smuggled one.
        client.command("NOOP").await.expect(250, "2.0.0");
    }
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn with_bare_newlines_accepted_lf_dot_lf_ends_the_data_as_old_receivers_do() {
    let server = start(with_server_settings("bare_newlines = \"accept\"")).await;
    let mut client = Client::ready(server.smtp_addr()).await;

    let data = b"Subject: smuggle\r\n\r\nbody\n.\nMAIL FROM:<evil@x.test>\r\n";
    let reply = transaction(&mut client, "a@b.test", &["c@d.test"], data).await;

    reply.expect(250, "2.0.0");
    client.reply().await.expect(250, "2.1.0");
    assert_eq!(
        server.messages()[0].data.as_ref(),
        b"Subject: smuggle\r\n\r\nbody\n"
    );
}

#[tokio::test]
async fn twenty_protocol_errors_get_421_and_the_connection_closed() {
    let server = start(healthy()).await;
    let mut client = Client::ready(server.smtp_addr()).await;

    for n in 1..=19 {
        let reply = client.command("XYZZY").await;
        assert_eq!((reply.code, n), (500, n), "{reply:?}");
    }
    client.command("XYZZY").await.expect(500, "5.5.2");
    client.reply().await.expect(421, "4.7.0");
    client.expect_fin().await;
}

#[tokio::test]
async fn broken_clients_never_disturb_a_healthy_session_running_beside_them() {
    let server = start(healthy()).await;
    let addr = server.smtp_addr();

    let mut healthy = Client::ready(addr).await;
    healthy.mail("a@b.test").await;

    // A 64 KiB line of binary garbage, then garbage lines until the server has had enough.
    let mut garbage = Client::greeted(addr).await;
    let noise: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i * 7 % 251) as u8 | 0x80)
        .collect();
    garbage.send(&noise).await;
    garbage.send(b"\r\n").await;
    garbage.reply().await.expect(500, "5.5.6");
    for _ in 0..19 {
        garbage.send(b"\xff\xfe\x00garbage\r\n").await;
    }
    assert!(
        matches!(garbage.end(STEP).await, Ok(n) if n > 0),
        "the server answers the garbage, then hangs up"
    );

    // A client that resets in the middle of a command, and one that resets before the greeting.
    let mut half = Client::ready(addr).await;
    half.send(b"MAIL FROM:<half").await;
    half.reset();
    Client::connect(addr).await.reset();

    // A client that resets in the middle of a message.
    let mut mid = Client::ready(addr).await;
    mid.start_data("a@b.test", &["c@d.test"]).await;
    mid.send(b"Subject: cut\r\n\r\nhalf").await;
    mid.reset();

    healthy.rcpt("c@d.test").await;
    healthy.command("DATA").await.expect_code(354);
    healthy.send(b"Subject: fine\r\n\r\nfine\r\n.\r\n").await;
    healthy.reply().await.expect(250, "2.0.0");
    healthy.command("QUIT").await.expect(221, "2.0.0");

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].data.as_ref(), b"Subject: fine\r\n\r\nfine\r\n");
    // And the server still takes new sessions.
    Client::ready(addr).await;
}
