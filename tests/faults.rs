//! Faults written as inline TOML scenarios, checked on the wire: replies of any shape, what
//! follows them, measured delays, stalls, throttles, omitted extensions and conditions.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::*;
use smtp_fault::Server;

/// How far over an expected duration a measurement may run on a busy machine.
const SLACK: Duration = Duration::from_millis(700);

/// A server whose scenario is healthy apart from the `[[faults]]` tables given.
async fn with_faults(faults: &str) -> Server {
    start(scenario(&format!(
        "name = \"inline\"\nsummary = \"A scenario written in a test.\"\n\n\
         [reproduces]\nerror = \"other\"\nsender_log = \"whatever the fault makes it\"\n\n\
         {faults}"
    )))
    .await
}

#[tokio::test]
async fn a_reply_fault_can_send_a_multi_line_reply_with_its_enhanced_code_on_every_line() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "mail"
        kind = "reply"
        code = 451
        enhanced = "4.7.1"
        lines = ["Greylisted for 5 minutes", "see https://postmaster.test/greylisting"]
        "#,
    )
    .await;
    let mut client = Client::ready(server.smtp_addr()).await;

    let reply = client.command("MAIL FROM:<a@b.test>").await;

    reply.expect(451, "4.7.1");
    assert_eq!(
        reply.lines,
        [
            "4.7.1 Greylisted for 5 minutes",
            "4.7.1 see https://postmaster.test/greylisting"
        ]
    );
    // A refusal means the command did not take effect, and the session goes on.
    client
        .command("RCPT TO:<c@d.test>")
        .await
        .expect(503, "5.5.1");
    client.command("NOOP").await.expect(250, "2.0.0");
}

#[tokio::test]
async fn a_reply_then_close_sends_the_reply_then_a_fin() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "rcpt"
        kind = "reply"
        code = 550
        enhanced = "5.7.1"
        text = "Relaying denied"
        then = "close"
        "#,
    )
    .await;
    let mut client = Client::ready(server.smtp_addr()).await;
    client.mail("a@b.test").await;

    client
        .command("RCPT TO:<c@d.test>")
        .await
        .expect(550, "5.7.1");

    client.expect_fin().await;
}

#[tokio::test]
async fn a_reply_then_reset_sends_the_reply_then_an_rst() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "data"
        kind = "reply"
        code = 451
        enhanced = "4.3.0"
        text = "Temporary failure"
        then = "reset"
        "#,
    )
    .await;
    let mut client = Client::ready(server.smtp_addr()).await;
    client.mail("a@b.test").await;
    client.rcpt("c@d.test").await;

    client.command("DATA").await.expect(451, "4.3.0");

    let end = client.end(STEP).await.expect_err("reset, not closed");
    assert_eq!(end.kind(), ErrorKind::ConnectionReset, "{end}");
}

#[tokio::test]
async fn a_421_reply_closes_even_when_the_scenario_says_continue() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "mail"
        kind = "reply"
        code = 421
        enhanced = "4.7.0"
        text = "Too many connections from your address"
        then = "continue"
        "#,
    )
    .await;
    let mut client = Client::ready(server.smtp_addr()).await;

    client
        .command("MAIL FROM:<a@b.test>")
        .await
        .expect(421, "4.7.0");

    client.expect_fin().await;
}

#[tokio::test]
async fn a_delay_at_rcpt_holds_that_reply_for_delay_ms_and_no_other() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "rcpt"
        kind = "delay"
        delay_ms = 300
        "#,
    )
    .await;
    let mut client = Client::ready(server.smtp_addr()).await;

    let ((), mail_took) = timed(client.mail("a@b.test")).await;
    let ((), rcpt_took) = timed(client.rcpt("c@d.test")).await;

    assert!(
        mail_took < Duration::from_millis(300),
        "MAIL took {mail_took:?}"
    );
    assert_took(rcpt_took, Duration::from_millis(300), SLACK);
}

#[tokio::test]
async fn a_stall_with_a_duration_stays_silent_then_closes_with_a_fin() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "mail"
        kind = "stall"
        duration_ms = 400
        "#,
    )
    .await;
    let mut client = Client::ready(server.smtp_addr()).await;

    let started = Instant::now();
    client.send(b"MAIL FROM:<a@b.test>\r\n").await;
    client.expect_closed_without_reply().await;

    assert_took(started.elapsed(), Duration::from_millis(400), SLACK);
}

#[tokio::test]
async fn attempts_1_to_2_turn_away_the_first_two_connections_and_the_third_delivers() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "connect"
        kind = "reply"
        code = 421
        enhanced = "4.3.2"
        text = "Try again later"

        [faults.when]
        attempts = "1-2"
        "#,
    )
    .await;
    let addr = server.smtp_addr();

    for attempt in 1..=2 {
        let err = send(addr, "a@b.test", &["c@d.test"], b"x")
            .await
            .expect_err("turned away");
        assert_eq!(
            err.status().map(|c| c.to_string()),
            Some("421".into()),
            "attempt {attempt}: {err}"
        );
        assert!(err.to_string().contains("4.3.2 Try again later"), "{err}");
    }
    send(addr, "a@b.test", &["c@d.test"], b"x")
        .await
        .expect("the third attempt delivers");

    assert_eq!(server.messages().len(), 1);
    let attempts: Vec<u64> = server.sessions().iter().map(|t| t.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
}

#[tokio::test]
async fn a_helo_condition_refuses_only_the_clients_that_give_that_name() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "ehlo"
        kind = "reply"
        code = 550
        enhanced = "5.7.1"
        text = "Your HELO name is not welcome"

        [faults.when]
        helo = "*.bad.test"
        "#,
    )
    .await;

    let mut bad = Client::greeted(server.smtp_addr()).await;
    bad.command("EHLO host.bad.test").await.expect(550, "5.7.1");
    bad.command("HELO host.bad.test").await.expect(550, "5.7.1");

    let mut good = Client::greeted(server.smtp_addr()).await;
    good.command("EHLO host.good.test").await.expect_code(250);
}

#[tokio::test]
async fn a_helo_condition_on_a_later_stage_matches_the_name_given_earlier() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "mail"
        kind = "reply"
        code = 550
        enhanced = "5.7.1"
        text = "Not from that host"

        [faults.when]
        helo = "*.bad.test"
        "#,
    )
    .await;

    let mut bad = Client::greeted(server.smtp_addr()).await;
    bad.command("EHLO host.bad.test").await.expect_code(250);
    bad.command("MAIL FROM:<a@b.test>")
        .await
        .expect(550, "5.7.1");

    let mut good = Client::greeted(server.smtp_addr()).await;
    good.command("EHLO host.good.test").await.expect_code(250);
    good.mail("a@b.test").await;
}

#[tokio::test]
async fn omit_extension_takes_size_out_of_the_ehlo_reply_and_leaves_the_rest() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "ehlo"
        kind = "omit_extension"
        extension = "SIZE"
        "#,
    )
    .await;
    let mut client = Client::greeted(server.smtp_addr()).await;

    let ehlo = client.command("EHLO client.test").await;

    ehlo.expect_code(250);
    assert!(!ehlo.has_line_starting("SIZE"), "{ehlo:?}");
    assert_eq!(
        &ehlo.lines[1..],
        [
            "PIPELINING",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
            "STARTTLS"
        ]
    );
}

#[tokio::test]
async fn a_throttle_dribbles_every_reply_from_its_stage_on() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "ehlo"
        kind = "throttle"
        bytes_per_second = 200
        "#,
    )
    .await;
    let mut client = Client::greeted(server.smtp_addr()).await;

    let (ehlo, ehlo_took) = timed(client.command("EHLO client.test")).await;
    ehlo.expect_code(250);
    let (help, help_took) = timed(client.command("HELP")).await;
    help.expect(214, "2.0.0");

    assert_took(ehlo_took, throttled(&ehlo), SLACK);
    assert_took(help_took, throttled(&help), SLACK);
}

/// How long a reply takes to arrive at 200 bytes a second: it goes in 20-byte pieces a tenth
/// of a second apart, and the client has it once the last piece is written.
fn throttled(reply: &Reply) -> Duration {
    // Each line is the code, a separator, the text and CRLF.
    let octets: usize = reply.lines.iter().map(|l| 3 + 1 + l.len() + 2).sum();
    let pieces = u32::try_from(octets.div_ceil(20)).unwrap();
    assert!(pieces > 2, "a reply long enough to measure");
    Duration::from_millis(100) * (pieces - 1)
}

#[tokio::test]
async fn a_positive_reply_after_the_final_dot_still_stores_the_message_first() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "end_of_data"
        kind = "reply"
        code = 250
        enhanced = "2.6.0"
        text = "Queued as CUSTOM-ID"
        "#,
    )
    .await;
    let mut client = Client::ready(server.smtp_addr()).await;

    let reply = transaction(&mut client, "a@b.test", &["c@d.test"], b"kept\r\n.\r\n").await;

    reply.expect(250, "2.6.0");
    assert_eq!(reply.lines, ["2.6.0 Queued as CUSTOM-ID"]);
    assert_eq!(server.messages()[0].data.as_ref(), b"kept\r\n");
}

#[tokio::test]
async fn a_reply_in_the_middle_of_the_data_is_the_only_reply_to_that_message() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "body"
        after_bytes = 10
        kind = "reply"
        code = 552
        enhanced = "5.3.4"
        text = "Too much"
        "#,
    )
    .await;
    let mut client = Client::ready(server.smtp_addr()).await;
    client.start_data("a@b.test", &["c@d.test"]).await;

    client.send(b"Subject: more than ten octets\r\n").await;
    client.reply().await.expect(552, "5.3.4");
    client
        .send(b"the rest is read and thrown away\r\n.\r\n")
        .await;

    // The next reply answers NOOP: the final dot got no second reply.
    client.command("NOOP").await.expect(250, "2.0.0");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_new_scenario_applies_to_new_sessions_while_running_ones_keep_theirs() {
    let server = start(builtin("accept")).await;
    let mut before = Client::ready(server.smtp_addr()).await;

    server.set_scenario(builtin("mailbox-full"));
    let mut after = Client::ready(server.smtp_addr()).await;

    before.mail("a@b.test").await;
    before.rcpt("x@full.example").await;
    after.mail("a@b.test").await;
    after
        .command("RCPT TO:<x@full.example>")
        .await
        .expect(452, "4.2.2");
    assert_eq!(server.scenario().name, "mailbox-full");
}

#[tokio::test]
async fn an_omitted_extension_with_a_helo_condition_is_hidden_from_that_client_only() {
    let server = with_faults(
        r#"
        [[faults]]
        stage = "ehlo"
        kind = "omit_extension"
        extension = "STARTTLS"

        [faults.when]
        helo = "legacy.*"
        "#,
    )
    .await;

    let mut legacy = Client::greeted(server.smtp_addr()).await;
    let ehlo = legacy.command("EHLO legacy.client.test").await;
    assert!(!ehlo.has_line_starting("STARTTLS"), "{ehlo:?}");

    let mut modern = Client::greeted(server.smtp_addr()).await;
    let ehlo = modern.command("EHLO modern.client.test").await;
    assert!(ehlo.has_line_starting("STARTTLS"), "{ehlo:?}");
}

#[tokio::test]
async fn switching_the_listener_to_refuse_takes_effect_once_switch_scenario_returns() {
    let server = start(builtin("accept")).await;
    let mut running = Client::ready(server.smtp_addr()).await;

    server.switch_scenario(builtin("connection-refused")).await;

    let err = tokio::net::TcpStream::connect(server.smtp_addr())
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    running.command("NOOP").await.expect(250, "2.0.0");
}

/// Connects until the connect is refused; the listener changes mode on its own task.
async fn refused_soon(addr: std::net::SocketAddr) {
    for _ in 0..100 {
        match tokio::net::TcpStream::connect(addr).await {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    panic!("{addr} still not refusing after a second");
}

/// Connects until a connect succeeds.
async fn accepting_soon(addr: std::net::SocketAddr) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{addr} still not accepting after a second");
}

#[tokio::test]
async fn the_listener_can_switch_to_refuse_and_back_while_sessions_run() {
    let server = start(builtin("accept")).await;
    let addr = server.smtp_addr();
    let mut running = Client::ready(addr).await;

    server.set_scenario(builtin("connection-refused"));
    refused_soon(addr).await;
    running.command("NOOP").await.expect(250, "2.0.0");

    server.set_scenario(builtin("accept"));
    accepting_soon(addr).await;
    Client::greeted(addr).await;
    running.command("QUIT").await.expect(221, "2.0.0");
}
