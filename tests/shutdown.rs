//! Shutting down: what each kind of session is told, that nothing waits past it, and that the
//! binary exits cleanly on SIGTERM.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::*;
use smtp_fault::Server;
use tokio::net::TcpStream;

/// Shuts the server down on its own task and returns a handle that ends when shutdown is done.
fn shut_down(server: Server) -> tokio::task::JoinHandle<Duration> {
    tokio::spawn(async move {
        let started = Instant::now();
        server.shutdown().await;
        started.elapsed()
    })
}

/// Waits for a shutdown begun by [`shut_down`] and asserts it did not linger.
async fn finished(shutdown: tokio::task::JoinHandle<Duration>) {
    let took = tokio::time::timeout(STEP, shutdown)
        .await
        .expect("shutdown finishes")
        .expect("shutdown task");
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
}

#[tokio::test]
async fn shutdown_tells_a_session_waiting_for_a_command_421_4_3_2_and_closes_it() {
    let server = start(builtin("accept")).await;
    let addr = server.smtp_addr();
    let mut client = Client::ready(addr).await;

    let shutdown = shut_down(server);

    client.reply().await.expect(421, "4.3.2");
    client.expect_fin().await;
    finished(shutdown).await;
    let err = TcpStream::connect(addr)
        .await
        .expect_err("no longer listening");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn shutdown_in_the_middle_of_a_message_says_421_4_3_2_and_keeps_nothing() {
    let server = start(builtin("accept")).await;
    let capture = server.capture().clone();
    let mut client = Client::ready(server.smtp_addr()).await;
    client.start_data("a@b.test", &["c@d.test"]).await;
    client.send(b"Subject: half\r\n\r\nhalf a mess").await;
    // The server must have read the partial data before shutdown, for the test to mean much.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let shutdown = shut_down(server);

    client.reply().await.expect(421, "4.3.2");
    client.expect_fin().await;
    finished(shutdown).await;
    assert!(capture.messages().is_empty());
}

#[tokio::test]
async fn a_stalled_session_is_closed_at_shutdown_without_a_421() {
    let server = start(builtin("stall-after-data")).await;
    let mut client = Client::ready(server.smtp_addr()).await;
    let reply = transaction(&mut client, "a@b.test", &["c@d.test"], b"x\r\n.\r\n");
    let stalled = tokio::time::timeout(Duration::from_millis(300), reply).await;
    assert!(stalled.is_err(), "the server stalls after the final dot");

    let shutdown = shut_down(server);

    // A bare FIN: the session was not going to say anything, and does not now.
    client.expect_fin().await;
    finished(shutdown).await;
}

#[tokio::test]
async fn a_session_stalled_before_its_greeting_is_closed_at_shutdown_without_a_421() {
    let server = start(builtin("greeting-timeout")).await;
    let mut client = Client::connect(server.smtp_addr()).await;
    client.expect_silence(Duration::from_millis(200)).await;

    let shutdown = shut_down(server);

    client.expect_fin().await;
    finished(shutdown).await;
}

#[tokio::test]
async fn a_delay_is_cut_short_by_shutdown_with_a_421_4_3_2() {
    let server = start(scenario(
        r#"
        name = "long-delay"
        summary = "Holds every RCPT reply for a minute."
        [reproduces]
        error = "none"
        sender_log = "slow"
        [[faults]]
        stage = "rcpt"
        kind = "delay"
        delay_ms = 60000
        "#,
    ))
    .await;
    let mut client = Client::ready(server.smtp_addr()).await;
    client.mail("a@b.test").await;
    client.send(b"RCPT TO:<c@d.test>\r\n").await;
    client.expect_silence(Duration::from_millis(200)).await;

    let shutdown = shut_down(server);

    client.reply().await.expect(421, "4.3.2");
    client.expect_fin().await;
    finished(shutdown).await;
}

#[tokio::test]
async fn the_binary_exits_0_on_sigterm_after_telling_a_connected_client_421_4_3_2() {
    let mut serve = Serve::start(&["--scenario", "accept"]).await;
    let mut client = Client::ready(serve.addr()).await;

    let status = serve.terminate().await;

    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        serve.stderr()
    );
    client.reply().await.expect(421, "4.3.2");
    client.expect_fin().await;
    assert!(
        serve.stderr().contains("shutting down"),
        "{}",
        serve.stderr()
    );
    assert_eq!(
        serve.rest_of_stdout().await,
        "",
        "nothing after the listening line"
    );
}
