//! The built-in scenarios served by the `smtp-fault` binary and driven by real mail clients,
//! swaks and curl, asserting each client's exit status, its error text and the replies it logged.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// How far over its own timeout a client may take on a busy machine.
const SLACK: Duration = Duration::from_millis(900);

const MESSAGE: &[u8] = b"Subject: hello\r\n\r\nhello from curl\r\n";

/// swaks with a one-second timeout of its own; `to` may list several recipients with commas.
async fn swaks(serve: &Serve, to: &str, extra: &[&str]) -> (Output, Duration) {
    let port = serve.port().to_string();
    let mut command = Command::new("swaks");
    command
        .args(["--server", "127.0.0.1", "--port", &port])
        .args(["--from", "from@a.test", "--to", to, "--helo", "client.test"])
        .args(["--timeout", "1s"])
        .args(extra);
    let started = Instant::now();
    let output = run(&mut command, STEP).await;
    (output, started.elapsed())
}

/// curl, verbose so that its stderr shows every reply, with a one-second connect timeout and
/// `max_time` overall.
fn curl_command(serve: &Serve, rcpts: &[&str], file: &Path, max_time: &str) -> Command {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-v", "--connect-timeout", "1", "-m", max_time])
        .arg(format!("smtp://127.0.0.1:{}/client.test", serve.port()))
        .args(["--mail-from", "from@a.test"]);
    for rcpt in rcpts {
        command.args(["--mail-rcpt", rcpt]);
    }
    command.arg("-T").arg(file);
    command
}

async fn curl(serve: &Serve, rcpts: &[&str], message: &[u8], extra: &[&str]) -> (Output, Duration) {
    let (_dir, file) = message_file(message);
    let mut command = curl_command(serve, rcpts, &file, "5");
    command.args(extra);
    let started = Instant::now();
    let output = run(&mut command, STEP).await;
    (output, started.elapsed())
}

/// Everything a client printed, standard output then standard error.
fn printed(output: &Output) -> String {
    format!("{}{}", text(&output.stdout), text(&output.stderr))
}

/// Asserts the exit status and that the output holds each of `needles`.
fn assert_exit(output: &Output, code: i32, needles: &[&str]) {
    let printed = printed(output);
    assert_eq!(output.status.code(), Some(code), "{printed}");
    for needle in needles {
        assert!(printed.contains(needle), "{needle:?} not in:\n{printed}");
    }
}

/// A capture directory for the server, and the `--capture-dir` arguments for it.
fn capture_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let arg = dir.path().display().to_string();
    (dir, arg)
}

/// Asserts that the capture directory holds no message.
fn assert_nothing_kept(dir: &tempfile::TempDir) {
    let files = files_in(dir.path());
    assert!(files.is_empty(), "{files:?}");
}

#[tokio::test]
async fn accept_delivers_from_swaks_and_curl() {
    let serve = Serve::start(&["--scenario", "accept"]).await;

    let (output, _) = swaks(&serve, "to@b.test", &[]).await;
    assert_exit(
        &output,
        0,
        &["<-  250 2.0.0 OK: queued as 0000000000000001"],
    );

    let (output, _) = curl(&serve, &["to@b.test"], MESSAGE, &[]).await;
    assert_exit(&output, 0, &["< 250 2.0.0 OK: queued as 0000000000000002"]);
}

#[tokio::test]
async fn connection_refused_makes_curl_exit_7_and_swaks_report_a_refusal() {
    let serve = Serve::start(&["--scenario", "connection-refused"]).await;

    let (output, took) = curl(&serve, &["to@b.test"], MESSAGE, &[]).await;
    assert_exit(
        &output,
        7,
        &["Failed to connect", "Couldn't connect to server"],
    );
    assert!(
        took < Duration::from_secs(1),
        "a refusal is immediate: {took:?}"
    );

    let (output, _) = swaks(&serve, "to@b.test", &[]).await;
    assert_exit(&output, 2, &["Connection refused"]);
}

#[tokio::test]
async fn connection_timed_out_makes_both_clients_time_out_connecting_after_their_timeout() {
    let serve = Serve::start(&["--scenario", "connection-timed-out"]).await;

    let (output, took) = curl(&serve, &["to@b.test"], MESSAGE, &[]).await;
    assert_exit(&output, 28, &["Failed to connect", "Timeout was reached"]);
    assert!(
        !printed(&output).contains("Connected to"),
        "{}",
        printed(&output)
    );
    assert_took(took, Duration::from_secs(1), SLACK);

    let (output, took) = swaks(&serve, "to@b.test", &[]).await;
    assert_exit(&output, 2, &["Error connecting", "connect: timeout"]);
    assert!(
        !printed(&output).contains("refused"),
        "{}",
        printed(&output)
    );
    assert_took(took, Duration::from_secs(1), SLACK);
}

#[tokio::test]
async fn greeting_timeout_connects_and_both_clients_time_out_waiting_for_the_greeting() {
    let serve = Serve::start(&["--scenario", "greeting-timeout"]).await;

    let (output, took) = curl(&serve, &["to@b.test"], MESSAGE, &["-m", "1"]).await;
    assert_exit(&output, 28, &["Connected to", "with 0 bytes received"]);
    assert_took(took, Duration::from_secs(1), SLACK);

    // swaks waits its timeout for the greeting, then once more for the reply to its QUIT.
    let (output, took) = swaks(&serve, "to@b.test", &[]).await;
    assert_exit(
        &output,
        21,
        &[
            "Connected to",
            "Timeout (1 secs) waiting for server response",
        ],
    );
    assert_took(took, Duration::from_secs(1), Duration::from_secs(2));
}

#[tokio::test]
async fn service_not_available_shows_both_clients_421() {
    let serve = Serve::start(&["--scenario", "service-not-available"]).await;

    let (output, _) = swaks(&serve, "to@b.test", &[]).await;
    assert_exit(
        &output,
        21,
        &["<** 421 4.3.2 Service not available, closing transmission channel"],
    );

    let (output, _) = curl(&serve, &["to@b.test"], MESSAGE, &[]).await;
    assert_exit(&output, 8, &["Got unexpected smtp-server response: 421"]);
}

#[tokio::test]
async fn close_on_connect_is_an_unexpected_close_before_the_greeting() {
    let serve = Serve::start(&["--scenario", "close-on-connect"]).await;

    let (output, _) = swaks(&serve, "to@b.test", &[]).await;
    assert_exit(&output, 6, &["Remote host closed connection unexpectedly"]);
    assert!(
        !printed(&output).contains("<-  220"),
        "{}",
        printed(&output)
    );

    let (output, _) = curl(&serve, &["to@b.test"], MESSAGE, &[]).await;
    assert_exit(&output, 56, &["response reading failed"]);
}

#[tokio::test]
async fn reset_on_connect_is_a_connection_reset_before_the_greeting() {
    let serve = Serve::start(&["--scenario", "reset-on-connect"]).await;

    // swaks names the reset when it lands during its connect (2); once connected, it reports any
    // end of the connection the same way (6).
    let (output, _) = swaks(&serve, "to@b.test", &[]).await;
    match output.status.code() {
        Some(2) => assert_exit(&output, 2, &["connect: Connection reset by peer"]),
        _ => assert_exit(&output, 6, &["Remote host closed connection unexpectedly"]),
    }
    assert!(
        !printed(&output).contains("<-  220"),
        "{}",
        printed(&output)
    );

    // The reset can land before curl has seen its connect complete (7) or after (56); either
    // way it is a reset and not a refusal.
    let (output, _) = curl(&serve, &["to@b.test"], MESSAGE, &[]).await;
    let code = output.status.code();
    assert!(matches!(code, Some(7 | 56)), "{code:?}");
    assert_exit(&output, code.unwrap(), &["Connection reset by peer"]);
    assert!(
        !printed(&output).contains("refused"),
        "{}",
        printed(&output)
    );
}

#[tokio::test]
async fn close_on_mail_drops_both_clients_right_after_mail_from() {
    let serve = Serve::start(&["--scenario", "close-on-mail"]).await;

    let (output, _) = swaks(&serve, "to@b.test", &[]).await;
    assert_exit(
        &output,
        6,
        &[
            "-> MAIL FROM:<from@a.test>",
            "Remote host closed connection unexpectedly",
        ],
    );
    let after_mail = printed(&output);
    let after_mail = &after_mail[after_mail.find("-> MAIL FROM").unwrap()..];
    assert!(
        !after_mail.contains("<-  250"),
        "no reply to MAIL:\n{after_mail}"
    );

    let (output, _) = curl(&serve, &["to@b.test"], MESSAGE, &[]).await;
    assert_exit(
        &output,
        56,
        &["> MAIL FROM:<from@a.test>", "response reading failed"],
    );
}

/// A 64 KiB message body.
fn big_message() -> Vec<u8> {
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    while message.len() < 64 * 1024 {
        message.extend_from_slice(&[b'B'; 76]);
        message.extend_from_slice(b"\r\n");
    }
    message
}

#[tokio::test]
async fn reset_during_body_breaks_both_transfers_and_keeps_nothing() {
    let (dir, capture) = capture_dir();
    let serve = Serve::start(&["--scenario", "reset-during-body", "--capture-dir", &capture]).await;

    // curl meets the reset sending (55) or receiving (56), whichever it is doing when it lands.
    let (output, _) = curl(&serve, &["to@b.test"], &big_message(), &[]).await;
    let code = output.status.code();
    assert!(matches!(code, Some(55 | 56)), "{code:?}");
    assert_exit(
        &output,
        code.unwrap(),
        &["< 354", "failure: Connection reset by peer"],
    );

    let (_body_dir, body) = message_file(&big_message());
    let body = format!("@{}", body.display());
    let (output, _) = swaks(&serve, "to@b.test", &["--body", &body]).await;
    assert_exit(
        &output,
        6,
        &["<-  354", "Remote host closed connection unexpectedly"],
    );

    assert_nothing_kept(&dir);
}

#[tokio::test]
async fn close_after_final_dot_leaves_both_clients_without_a_reply_and_keeps_nothing() {
    let (dir, capture) = capture_dir();
    let serve = Serve::start(&[
        "--scenario",
        "close-after-final-dot",
        "--capture-dir",
        &capture,
    ])
    .await;

    let (output, _) = swaks(&serve, "to@b.test", &[]).await;
    assert_exit(
        &output,
        6,
        &[" -> .\n", "Remote host closed connection unexpectedly"],
    );

    let (output, _) = curl(&serve, &["to@b.test"], MESSAGE, &[]).await;
    assert_exit(
        &output,
        56,
        &["We are completely uploaded", "response reading failed"],
    );

    assert_nothing_kept(&dir);
}

#[tokio::test]
async fn stall_after_data_makes_swaks_time_out_waiting_for_the_final_reply() {
    let serve = Serve::start(&["--scenario", "stall-after-data"]).await;

    let (output, took) = swaks(&serve, "to@b.test", &[]).await;
    assert_exit(
        &output,
        26,
        &[
            "<-  354",
            " -> .\n",
            "Timeout (1 secs) waiting for server response",
        ],
    );
    // One timeout for the final dot, one more for the QUIT that follows.
    assert_took(took, Duration::from_secs(1), Duration::from_secs(2));
}

#[tokio::test]
async fn stall_after_data_makes_curl_time_out_after_its_own_timeout() {
    let mut serve = Some(Serve::start(&["--scenario", "stall-after-data"]).await);
    let (_dir, file) = message_file(MESSAGE);
    let mut command = curl_command(serve.as_ref().unwrap(), &["to@b.test"], &file, "1");
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command.spawn().expect("curl starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();

    // curl reports the timeout, then waits for a reply to its QUIT, which a stalled server
    // never sends; the report is what is timed, and stopping the server lets curl exit.
    let mut seen = String::new();
    let took = loop {
        let line = tokio::time::timeout(STEP, lines.next_line())
            .await
            .expect("curl keeps talking")
            .expect("read stderr")
            .unwrap_or_else(|| panic!("curl ended without a timeout:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("curl: (28)") {
            break started.elapsed();
        }
    };
    assert!(seen.contains("< 354"), "{seen}");
    assert!(
        seen.contains("curl: (28) server response timeout"),
        "{seen}"
    );
    assert_took(took, Duration::from_secs(1), SLACK);

    drop(serve.take());
    let status = tokio::time::timeout(STEP, child.wait())
        .await
        .expect("curl exits once the server is gone")
        .expect("wait");
    assert_eq!(status.code(), Some(28));
}

#[tokio::test]
async fn slow_greeting_loses_impatient_clients_and_delivers_for_a_patient_one() {
    // The built-in waits ten seconds; a copy of it that waits 1.5 seconds behaves the same.
    let builtin = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/slow-greeting.toml"
    ))
    .expect("the built-in file");
    assert!(builtin.contains("delay_ms = 10000"), "{builtin}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow-greeting.toml");
    std::fs::write(
        &file,
        builtin.replace("delay_ms = 10000", "delay_ms = 1500"),
    )
    .unwrap();
    let serve = Serve::start(&["--scenario", &file.display().to_string()]).await;

    let (output, _) = swaks(&serve, "to@b.test", &[]).await;
    assert_exit(
        &output,
        21,
        &["Timeout (1 secs) waiting for server response"],
    );

    // curl counts the wait for the greeting as part of connecting.
    let (output, _) = curl(&serve, &["to@b.test"], MESSAGE, &[]).await;
    assert_exit(&output, 28, &["Connected to", "with 0 bytes received"]);

    let patient = ["--connect-timeout", "5"];
    let (output, took) = curl(&serve, &["to@b.test"], MESSAGE, &patient).await;
    assert_exit(&output, 0, &["< 220 mx.lab.test", "< 250 2.0.0 OK"]);
    assert_took(took, Duration::from_millis(1500), SLACK);
}

/// The envelope written beside message `id` in a capture directory.
fn envelope_file(dir: &Path, id: u64) -> serde_json::Value {
    let path = dir.join(format!("{id:06}.json"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("envelope is JSON")
}

#[tokio::test]
async fn mailbox_full_refuses_the_full_recipient_and_delivers_to_the_other() {
    let (dir, capture) = capture_dir();
    let serve = Serve::start(&["--scenario", "mailbox-full", "--capture-dir", &capture]).await;

    let (output, _) = swaks(&serve, "alice@full.example,bob@ok.example", &[]).await;
    assert_exit(
        &output,
        0,
        &[
            "<** 452 4.2.2 Mailbox full",
            "<-  250 2.1.5",
            "<-  250 2.0.0 OK",
        ],
    );
    assert_eq!(
        envelope_file(dir.path(), 1)["rcpt_to"],
        serde_json::json!(["bob@ok.example"])
    );

    // curl gives up on the first refused recipient unless told to carry on.
    let rcpts = ["carol@full.example", "dave@ok.example"];
    let (output, _) = curl(&serve, &rcpts, MESSAGE, &[]).await;
    assert_exit(
        &output,
        55,
        &["< 452 4.2.2 Mailbox full", "RCPT failed: 452"],
    );
    let (output, _) = curl(&serve, &rcpts, MESSAGE, &["--mail-rcpt-allowfails"]).await;
    assert_exit(&output, 0, &["< 452 4.2.2 Mailbox full", "< 250 2.0.0 OK"]);
    assert_eq!(
        envelope_file(dir.path(), 2)["rcpt_to"],
        serde_json::json!(["dave@ok.example"])
    );
}

#[tokio::test]
async fn unknown_user_is_a_permanent_refusal_of_the_recipient() {
    let serve = Serve::start(&["--scenario", "unknown-user"]).await;

    let (output, _) = swaks(&serve, "x@nobody.example", &[]).await;
    assert_exit(&output, 24, &["<** 550 5.1.1 User unknown"]);

    let (output, _) = curl(&serve, &["x@nobody.example"], MESSAGE, &[]).await;
    assert_exit(
        &output,
        55,
        &["< 550 5.1.1 User unknown", "RCPT failed: 550"],
    );
}

#[tokio::test]
async fn message_rejected_refuses_the_data_after_the_final_dot() {
    let (dir, capture) = capture_dir();
    let serve = Serve::start(&["--scenario", "message-rejected", "--capture-dir", &capture]).await;

    let (output, _) = swaks(&serve, "to@b.test", &[]).await;
    assert_exit(&output, 26, &["<** 554 5.7.1 Message rejected as spam"]);

    // curl 7.88 calls a refusal of the data a weird reply; the reply itself is in its log.
    let (output, _) = curl(&serve, &["to@b.test"], MESSAGE, &[]).await;
    assert_exit(&output, 8, &["< 554 5.7.1 Message rejected as spam"]);

    assert_nothing_kept(&dir);
}

#[tokio::test]
async fn ehlo_rejected_refuses_both_clients_at_the_greeting_exchange() {
    let serve = Serve::start(&["--scenario", "ehlo-rejected"]).await;

    let (output, _) = swaks(&serve, "to@b.test", &[]).await;
    assert_exit(
        &output,
        22,
        &["<** 550 5.7.1 Client host rejected", " -> HELO client.test"],
    );

    let (output, _) = curl(&serve, &["to@b.test"], MESSAGE, &[]).await;
    assert_exit(
        &output,
        9,
        &[
            "< 550 5.7.1 Client host rejected",
            "Remote access denied: 550",
        ],
    );
}

#[tokio::test]
async fn tls_not_offered_stops_clients_that_require_tls() {
    let serve = Serve::start(&["--scenario", "tls-not-offered"]).await;

    let (output, _) = swaks(&serve, "to@b.test", &["--tls"]).await;
    assert_exit(&output, 29, &["Host did not advertise STARTTLS"]);

    let (output, _) = curl(&serve, &["to@b.test"], MESSAGE, &["--ssl-reqd"]).await;
    assert_exit(&output, 64, &["STARTTLS not supported"]);

    // Without the requirement the same server delivers.
    let (output, _) = curl(&serve, &["to@b.test"], MESSAGE, &[]).await;
    assert_exit(&output, 0, &["< 250 2.0.0 OK"]);
}

#[tokio::test]
async fn the_capture_dir_holds_each_message_byte_for_byte_beside_its_envelope() {
    let (dir, capture) = capture_dir();
    let serve = Serve::start(&["--scenario", "accept", "--capture-dir", &capture]).await;
    let mut message = b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n".to_vec();
    let body = ".dot first\r\n..two dots\r\n.\r\nnaïve café 🦀\r\nend\r\n";
    message.extend_from_slice(body.as_bytes());

    let (output, _) = curl(&serve, &["to@b.test", "cc@c.test"], &message, &[]).await;
    assert_exit(&output, 0, &["< 250 2.0.0 OK"]);

    assert_eq!(files_in(dir.path()), vec!["000001.eml", "000001.json"]);
    assert_eq!(
        std::fs::read(dir.path().join("000001.eml")).unwrap(),
        message
    );
    let envelope = envelope_file(dir.path(), 1);
    assert_eq!(envelope["id"], 1);
    assert_eq!(envelope["eml"], "000001.eml");
    assert_eq!(envelope["helo"], "client.test");
    assert_eq!(envelope["mail_from"], "from@a.test");
    assert_eq!(
        envelope["rcpt_to"],
        serde_json::json!(["to@b.test", "cc@c.test"])
    );
    assert_eq!(envelope["size"], message.len());
    assert!(
        envelope["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{envelope}"
    );
}
