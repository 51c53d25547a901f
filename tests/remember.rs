//! Faults that depend on what the scenario remembers between sessions: attempt and message
//! numbers, greylisting triplets, time since the scenario took effect, seeded chance, the
//! number of open sessions and the rate of arrivals. Each test drives real clients over
//! loopback sockets and uses short delays set through TOML.

mod fixture;

use std::time::{Duration, Instant};

use fixture::{Client, greeting_codes, letter, mailer, start_builtin, until_active};
use lettre::AsyncTransport;
use smtp_fault::{Scenario, Server, ServerHandle};

const WAIT: Duration = Duration::from_secs(5);

/// A scenario head that every TOML scenario below shares.
const HEAD: &str = r#"
summary = "A scenario for one test."
[reproduces]
error = "other"
sender_log = "what the sender logs"
"#;

fn scenario(name: &str, rest: &str) -> Scenario {
    Scenario::from_toml(&format!("name = \"{name}\"\n{HEAD}{rest}"), name).unwrap()
}

async fn start(scenario: Scenario) -> Server {
    Server::builder().scenario(scenario).start().await.unwrap()
}

/// Sleeps until `delay` has passed since `since`.
async fn sleep_until(since: Instant, delay: Duration) {
    tokio::time::sleep(delay.saturating_sub(since.elapsed())).await;
}

#[tokio::test]
async fn flaky_first_two_refuses_two_connections_and_a_retrying_sender_gets_through() {
    let server = start_builtin("flaky-first-two").await;
    let sender = mailer(server.smtp_addr());

    let mut refusals = Vec::new();
    let mut delivered = None;
    for _ in 0..5 {
        match sender.send(letter("retried until it went through")).await {
            Ok(response) => {
                delivered = Some(response);
                break;
            }
            Err(e) => refusals.push(e),
        }
    }

    assert_eq!(refusals.len(), 2, "{refusals:?}");
    for refusal in &refusals {
        assert!(refusal.is_transient(), "{refusal}");
        assert_eq!(refusal.status().map(u16::from), Some(421));
        assert!(
            refusal.to_string().contains("4.3.2 Service not available"),
            "{refusal}"
        );
    }
    assert_eq!(u16::from(delivered.expect("the third attempt").code()), 250);
    let stored = server.wait_for_messages(1, WAIT).await.unwrap();
    assert!(String::from_utf8_lossy(&stored[0].data).contains("Subject: retried until"));

    let faults: Vec<(u64, Vec<String>)> = server
        .sessions()
        .into_iter()
        .map(|s| (s.attempt, s.faults))
        .collect();
    let refused = vec!["connect: reply 421 4.3.2".to_string()];
    assert_eq!(
        faults,
        vec![(1, refused.clone()), (2, refused), (3, vec![])]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn attempt_numbers_start_again_when_the_scenario_is_replaced() {
    let server = start_builtin("flaky-first-two").await;
    assert_eq!(greeting_codes(&server, 3).await, [421, 421, 220]);
    assert_eq!(server.counters().attempts, 3);

    server.set_scenario(smtp_fault::scenario::builtin("flaky-first-two").unwrap());

    assert_eq!(server.counters().attempts, 0);
    assert_eq!(server.counters().connections, 3);
    let (_client, greeting) = Client::connect(server.smtp_addr()).await.unwrap();
    assert!(greeting.last().starts_with("421 4.3.2 "), "{greeting:?}");
    assert_eq!(server.sessions().last().unwrap().attempt, 1);
    assert_eq!(server.counters().attempts, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn every_third_message_is_deferred_and_the_others_delivered() {
    let server = start(scenario(
        "every-third",
        r#"
[[faults]]
stage = "mail"
kind = "reply"
code = 451
enhanced = "4.3.0"
text = "Try again later"
[faults.when]
every_nth_message = 3
"#,
    ))
    .await;
    let sender = mailer(server.smtp_addr());

    let mut outcomes = Vec::new();
    for n in 1..=6 {
        let outcome = sender.send(letter(&format!("message {n}"))).await;
        outcomes.push(match outcome {
            Ok(response) => u16::from(response.code()),
            Err(e) => e.status().map_or(0, u16::from),
        });
    }

    assert_eq!(outcomes, [250, 250, 451, 250, 250, 451]);
    let subjects: Vec<String> = server
        .messages()
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(&m.data).into_owned();
            let line = text.lines().find(|l| l.starts_with("Subject: ")).unwrap();
            line["Subject: ".len()..].to_string()
        })
        .collect();
    assert_eq!(
        subjects,
        ["message 1", "message 2", "message 4", "message 5"]
    );
    server.shutdown().await;
}

/// One try through the greylist: MAIL and RCPT for the same triplet on a new connection. The
/// RCPT reply is returned; the session is left open for the caller.
async fn knock(server: &ServerHandle) -> (Client, fixture::Reply) {
    Client::rcpt_to(server.smtp_addr(), "bob@dest.test")
        .await
        .unwrap()
}

#[tokio::test]
async fn greylisting_refuses_a_new_triplet_and_its_early_retry_then_takes_a_later_one() {
    let server = start(scenario(
        "greylisting-short",
        r#"
[[faults]]
stage = "rcpt"
kind = "greylist"
min_delay_ms = 300
"#,
    ))
    .await;

    // The triplet is first seen between these two instants; the early retry must come within
    // the delay of the first, and the later one after it, however slow the machine.
    let before_first = Instant::now();
    let (first, reply) = knock(&server).await;
    let after_first = Instant::now();
    assert!(
        reply
            .last()
            .starts_with("451 4.7.1 Greylisted, please try again in "),
        "{reply:?}"
    );
    first.quit().await.unwrap();

    let (early, reply) = knock(&server).await;
    assert!(
        before_first.elapsed() < Duration::from_millis(300),
        "the retry came too late"
    );
    assert!(
        reply.last().starts_with("451 4.7.1 Greylisted"),
        "{reply:?}"
    );
    early.quit().await.unwrap();

    sleep_until(after_first, Duration::from_millis(400)).await;
    let (mut later, reply) = knock(&server).await;
    assert_eq!(reply.last(), "250 2.1.5 Recipient OK");
    assert_eq!(later.command("DATA").await.unwrap().code, 354);
    let reply = later
        .data(b"Subject: greylisted once\r\n\r\nhi\r\n")
        .await
        .unwrap();
    assert_eq!(reply.code, 250);
    later.quit().await.unwrap();

    let stored = server.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(stored[0].rcpt_to, ["bob@dest.test"]);
    let faults: Vec<usize> = server.sessions().iter().map(|s| s.faults.len()).collect();
    assert_eq!(faults, [1, 1, 0]);
    server.shutdown().await;
}

#[tokio::test]
async fn an_outage_window_refuses_at_the_greeting_until_it_ends_then_accepts() {
    // The window counts from when the scenario takes effect, between these two instants.
    let before_start = Instant::now();
    let server = start(scenario(
        "short-outage",
        r#"
[[faults]]
stage = "connect"
kind = "reply"
code = 421
enhanced = "4.3.2"
text = "Service not available, closing transmission channel"
[faults.when]
window_ms = [0, 800]
"#,
    ))
    .await;
    let after_start = Instant::now();

    let (mut during, greeting) = Client::connect(server.smtp_addr()).await.unwrap();
    assert!(
        before_start.elapsed() < Duration::from_millis(800),
        "connected after the outage"
    );
    assert_eq!(
        greeting.last(),
        "421 4.3.2 Service not available, closing transmission channel"
    );
    assert!(during.closed_by_server().await);

    sleep_until(after_start, Duration::from_millis(900)).await;
    mailer(server.smtp_addr())
        .send(letter("after the outage"))
        .await
        .unwrap();
    assert_eq!(server.wait_for_messages(1, WAIT).await.unwrap().len(), 1);
    server.shutdown().await;
}

/// The greeting codes of `n` fresh connections to a server whose greeting fails by chance.
async fn greetings_with_seed(seed: u64, n: usize) -> Vec<u16> {
    let server = start(scenario(
        "coin-toss",
        &format!(
            r#"
[server]
seed = {seed}
[[faults]]
stage = "connect"
kind = "reply"
code = 421
enhanced = "4.3.2"
[faults.when]
chance = 0.5
"#
        ),
    ))
    .await;
    let codes = greeting_codes(&server, n).await;
    server.shutdown().await;
    codes
}

#[tokio::test]
async fn a_seeded_chance_fails_the_same_sessions_on_every_run_and_another_seed_differs() {
    let first = greetings_with_seed(7, 16).await;
    let again = greetings_with_seed(7, 16).await;
    let other = greetings_with_seed(8, 16).await;

    assert_eq!(first, again);
    assert_ne!(first, other);
    assert!(first.contains(&421) && first.contains(&220), "{first:?}");
}

/// The replies to the final dot of `n` messages sent in one session to the built-in
/// `random-deferrals`.
async fn random_deferrals(n: usize) -> Vec<u16> {
    let server = start_builtin("random-deferrals").await;
    let mut client = Client::greeted(server.smtp_addr()).await.unwrap();
    let mut codes = Vec::new();
    for i in 0..n {
        let message = format!("Subject: {i}\r\n\r\nbody\r\n");
        let reply = client
            .send_mail("alice@client.test", "bob@dest.test", message.as_bytes())
            .await
            .unwrap();
        codes.push(reply.code);
    }
    client.quit().await.unwrap();
    let stored = server.messages().len();
    assert_eq!(stored, codes.iter().filter(|c| **c == 250).count());
    server.shutdown().await;
    codes
}

#[tokio::test]
async fn the_builtin_random_deferrals_defer_the_same_messages_on_every_run() {
    let first = random_deferrals(20).await;
    let again = random_deferrals(20).await;

    assert_eq!(first, again);
    assert!(first.iter().all(|c| [250, 451].contains(c)), "{first:?}");
    let deferred = first.iter().filter(|c| **c == 451).count();
    assert!((1..20).contains(&deferred), "{first:?}");
}

#[tokio::test]
async fn a_connection_past_the_cap_gets_421_at_the_greeting_until_a_session_ends() {
    let server = start_builtin("connection-cap").await;
    let one = Client::greeted(server.smtp_addr()).await.unwrap();
    let _two = Client::greeted(server.smtp_addr()).await.unwrap();

    let (mut three, greeting) = Client::connect(server.smtp_addr()).await.unwrap();
    assert_eq!(
        greeting.last(),
        "421 4.7.0 mx.lab.test Too many concurrent sessions"
    );
    assert!(three.closed_by_server().await);
    assert_eq!(server.counters().over_limit, 1);

    one.quit().await.unwrap();
    until_active(&server, 1).await;
    let (four, greeting) = Client::connect(server.smtp_addr()).await.unwrap();
    assert_eq!(greeting.code, 220, "{greeting:?}");
    four.quit().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn past_the_rate_limit_mail_gets_451_until_the_window_moves_on() {
    let server = start(scenario(
        "rate-limited-short",
        r#"
[[faults]]
stage = "mail"
kind = "rate_limit"
messages = 2
window_ms = 500
"#,
    ))
    .await;
    let mut client = Client::greeted(server.smtp_addr()).await.unwrap();

    // The arrivals are counted between these two instants: all within the window of the
    // first, and the window has moved past all of them by the time of the later MAIL.
    let before_first = Instant::now();
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.push(client.mail_from_alice().await.unwrap());
        client.command("RSET").await.unwrap();
    }
    let after_last = Instant::now();
    assert!(
        before_first.elapsed() < Duration::from_millis(500),
        "too slow to meet the limit"
    );
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    assert_eq!(codes, [250, 250, 451]);
    assert!(
        replies[2]
            .last()
            .starts_with("451 4.7.1 Rate limit exceeded: at most 2 messages"),
        "{replies:?}"
    );

    sleep_until(after_last, Duration::from_millis(550)).await;
    let reply = client
        .send_mail(
            "alice@client.test",
            "bob@dest.test",
            b"Subject: later\r\n\r\nhi\r\n",
        )
        .await
        .unwrap();
    assert_eq!(reply.code, 250, "{reply:?}");
    client.quit().await.unwrap();
    assert_eq!(server.messages().len(), 1);
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_builtin_greylisting_lets_a_retry_through_once_three_seconds_have_passed() {
    let server = start_builtin("greylisting").await;

    let (first, reply) = knock(&server).await;
    assert_eq!(
        reply.last(),
        "451 4.7.1 Greylisted, please try again in 3 seconds"
    );
    first.quit().await.unwrap();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let (early, reply) = knock(&server).await;
    assert_eq!(
        reply.last(),
        "451 4.7.1 Greylisted, please try again in 2 seconds"
    );
    early.quit().await.unwrap();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let (later, reply) = knock(&server).await;
    assert_eq!(reply.last(), "250 2.1.5 Recipient OK");
    later.quit().await.unwrap();
    server.shutdown().await;
}
