//! The HTTP control API of the `smtp-fault` binary, as a test in another language would use
//! it: start the binary on port 0, read the addresses from its `listening` lines, send mail,
//! and read and steer the server over plain HTTP/1.1.

mod fixture;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fixture::{Client, as_sent, full_mailboxes_toml, letter, letter_to, mailer};
use lettre::AsyncTransport;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BINARY: &str = env!("CARGO_BIN_EXE_smtp-fault");

/// How long the binary may take to say it is listening, or to exit when it should.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The binary, running until dropped.
struct Serving {
    child: Child,
    smtp: SocketAddr,
    control: SocketAddr,
}

impl Serving {
    /// Starts `smtp-fault serve` on 127.0.0.1:0 with the control API and `extra` arguments,
    /// and waits for its `listening` lines.
    fn start(extra: &[&str]) -> Serving {
        let mut child = Command::new(BINARY)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the smtp-fault binary starts");

        // Lines are read on a thread of their own, so that a silent binary fails the test
        // after START_TIMEOUT instead of blocking it.
        let stdout = child.stdout.take().unwrap();
        let (lines, listening) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut smtp, mut control) = (None, None);
        while smtp.is_none() || control.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = listening.recv_timeout(left) else {
                let _ = child.kill();
                panic!("smtp-fault did not print its listening lines in time");
            };
            // Other listeners (smtps, dns) have lines of their own; only these two matter here.
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("listening"), Some("smtp"), Some(addr)) => smtp = addr.parse().ok(),
                (Some("listening"), Some("control"), Some(addr)) => control = addr.parse().ok(),
                (Some("listening"), Some(_), Some(_)) => {}
                _ => panic!("unexpected line before the listening lines: {line:?}"),
            }
        }
        Serving {
            child,
            smtp: smtp.unwrap(),
            control: loopback(control.unwrap()),
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The loopback address to reach a listener on, whatever address it is bound to.
fn loopback(addr: SocketAddr) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], addr.port()))
}

/// An HTTP response as read off the socket.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the whole response.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut wire = request.into_bytes();
    wire.extend_from_slice(body);

    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(&wire).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let raw = tokio::time::timeout(fixture::READ_TIMEOUT, exchange)
        .await
        .expect("the control API answered in time")
        .expect("the control API answered");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&raw[..split]).expect("an ASCII response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut response = Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    };
    if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        response.body = dechunk(&response.body);
    }
    response
}

/// Joins the chunks of a chunked body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    // Every chunk is at least one byte of the body, so this bounds the loop.
    for _ in 0..=body.len() {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size");
        let size_text = std::str::from_utf8(&body[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
    panic!("a chunked body without its last chunk");
}

async fn get(addr: SocketAddr, path: &str) -> Response {
    http(addr, "GET", path, &[], b"").await
}

/// Waits, within a bound, until the counters say no session is running.
async fn until_idle(control: SocketAddr) -> Value {
    for _ in 0..200 {
        let counters = get(control, "/api/counters").await.json();
        if counters["active_sessions"] == 0 {
            return counters;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("sessions still running");
}

#[tokio::test]
async fn health_says_ok_and_names_the_scenario() {
    let serving = Serving::start(&["--scenario", "mailbox-full", "--control", "127.0.0.1:0"]);

    let response = get(serving.control, "/api/health").await;

    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(
        response.json(),
        json!({"status": "ok", "scenario": "mailbox-full"})
    );
}

#[tokio::test]
async fn an_unknown_path_gets_404_with_a_json_error() {
    let serving = Serving::start(&["--control", "127.0.0.1:0"]);

    let response = get(serving.control, "/api/nothing-here").await;

    assert_eq!(response.status, 404);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains("no such endpoint")
    );
}

#[tokio::test]
async fn a_delivered_message_is_listed_parsed_and_served_raw_until_deleted() {
    let serving = Serving::start(&["--control", "127.0.0.1:0"]);
    let message = letter("seen through the API");
    let sent = as_sent(&message);
    mailer(serving.smtp).send(message).await.unwrap();

    let listed = get(serving.control, "/api/messages").await;
    assert_eq!(listed.status, 200);
    let listed = listed.json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let entry = &listed[0];
    assert_eq!(entry["id"], 1);
    assert_eq!(entry["mail_from"], "alice@client.test");
    assert_eq!(entry["rcpt_to"], json!(["bob@dest.test"]));
    assert_eq!(entry["helo"], fixture::CLIENT_NAME);
    assert_eq!(entry["tls"], Value::Null);
    assert_eq!(entry["size"], sent.len());
    assert!(entry["peer"].as_str().unwrap().starts_with("127.0.0.1:"));

    let parsed = get(serving.control, "/api/messages/1").await;
    assert_eq!(parsed.status, 200);
    let parsed = parsed.json();
    assert_eq!(parsed["id"], 1);
    assert_eq!(parsed["subject"], "seen through the API");
    assert_eq!(parsed["from"], json!(["alice@client.test"]));
    assert_eq!(parsed["to"], json!(["bob@dest.test"]));
    let subject = json!({"name": "Subject", "value": "seen through the API"});
    assert!(
        parsed["headers"].as_array().unwrap().contains(&subject),
        "{parsed}"
    );
    let text = parsed["text"][0].as_str().unwrap();
    assert!(
        text.starts_with("This is seen through the API."),
        "{text:?}"
    );
    assert!(text.contains(".A line that starts with a dot."), "{text:?}");

    let raw = get(serving.control, "/api/messages/1/raw").await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("message/rfc822"));
    assert_eq!(
        String::from_utf8_lossy(&raw.body),
        String::from_utf8_lossy(&sent)
    );
    assert_eq!(raw.body, sent);

    let missing = get(serving.control, "/api/messages/99").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "no message with id 99");
    let missing_raw = get(serving.control, "/api/messages/99/raw").await;
    assert_eq!(missing_raw.status, 404);
    let not_a_number = get(serving.control, "/api/messages/first").await;
    assert_eq!(not_a_number.status, 400);

    let deleted = http(serving.control, "DELETE", "/api/messages", &[], b"").await;
    assert!(matches!(deleted.status, 200 | 204), "{deleted:?}");
    assert_eq!(
        get(serving.control, "/api/messages").await.json(),
        json!([])
    );
    assert_eq!(get(serving.control, "/api/messages/1").await.status, 404);
}

#[tokio::test]
async fn sessions_carry_the_transcript_of_each_conversation() {
    let serving = Serving::start(&["--scenario", "mailbox-full", "--control", "127.0.0.1:0"]);
    let refused = mailer(serving.smtp)
        .send(letter_to("carol@full.example", "to a full mailbox"))
        .await
        .unwrap_err();
    assert_eq!(refused.status().map(u16::from), Some(452));
    until_idle(serving.control).await;

    let sessions = get(serving.control, "/api/sessions").await;
    assert_eq!(sessions.status, 200);
    let sessions = sessions.json();
    let session = &sessions.as_array().unwrap()[0];
    assert_eq!(session["session_id"], 1);
    assert_eq!(session["attempt"], 1);
    assert_eq!(session["open"], false);
    assert_eq!(session["faults"], json!(["rcpt: reply 452 4.2.2"]));
    let entries = session["entries"].as_array().unwrap();
    let said = |direction: &str, text: &str| {
        entries
            .iter()
            .any(|e| e["direction"] == direction && e["text"] == text)
    };
    assert!(
        said("server", "220 mx.lab.test ESMTP smtp-fault ready"),
        "{session}"
    );
    assert!(said("client", "RCPT TO:<carol@full.example>"), "{session}");
    assert!(said("fault", "rcpt: reply 452 4.2.2"), "{session}");
    assert!(said("server", "452 4.2.2 Mailbox full"), "{session}");
    let offsets: Vec<f64> = entries
        .iter()
        .map(|e| e["at_ms"].as_f64().unwrap())
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{offsets:?}");
}

#[tokio::test]
async fn counters_count_connections_attempts_and_messages() {
    let serving = Serving::start(&["--control", "127.0.0.1:0"]);
    let none = get(serving.control, "/api/counters").await;
    assert_eq!(none.status, 200);
    assert_eq!(
        none.json(),
        json!({"connections": 0, "attempts": 0, "active_sessions": 0, "over_limit": 0,
               "messages": 0})
    );

    mailer(serving.smtp).send(letter("one")).await.unwrap();
    mailer(serving.smtp).send(letter("two")).await.unwrap();

    assert_eq!(
        until_idle(serving.control).await,
        json!({"connections": 2, "attempts": 2, "active_sessions": 0, "over_limit": 0,
               "messages": 2})
    );
}

/// The reply a new session gets to RCPT TO `to`.
async fn rcpt_reply(smtp: SocketAddr, to: &str) -> String {
    let (client, reply) = Client::rcpt_to(smtp, to).await.unwrap();
    client.quit().await.unwrap();
    reply.last().to_string()
}

#[tokio::test]
async fn the_scenario_is_shown_and_replaced_with_toml_or_json_for_new_sessions() {
    let serving = Serving::start(&["--control", "127.0.0.1:0"]);
    let shown = get(serving.control, "/api/scenario").await;
    assert_eq!(shown.status, 200);
    let shown = shown.json();
    assert_eq!(shown["name"], "accept");
    assert_eq!(shown["faults"], json!([]));
    assert_eq!(shown["reproduces"]["error"], "none");
    assert!(
        shown["toml"]
            .as_str()
            .unwrap()
            .contains("name = \"accept\""),
        "{shown}"
    );

    let full_toml = full_mailboxes_toml("full-over-http");
    let put = http(
        serving.control,
        "PUT",
        "/api/scenario",
        &[("Content-Type", "application/toml")],
        full_toml.as_bytes(),
    )
    .await;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(put.json()["name"], "full-over-http");
    let shown = get(serving.control, "/api/scenario").await.json();
    assert_eq!(shown["name"], "full-over-http");
    assert_eq!(shown["faults"], json!(["rcpt: reply 452 4.2.2"]));
    assert_eq!(shown["toml"], full_toml.as_str());
    assert_eq!(
        rcpt_reply(serving.smtp, "carol@full.test").await,
        "452 4.2.2 Mailbox full"
    );
    assert_eq!(
        rcpt_reply(serving.smtp, "bob@dest.test").await,
        "250 2.1.5 Recipient OK"
    );

    let unknown_user = json!({
        "name": "unknown-user-over-http",
        "summary": "Nobody lives here.",
        "reproduces": {"error": "other", "reply": "550 5.1.1", "sender_log": "550 5.1.1"},
        "faults": [{
            "stage": "rcpt", "kind": "reply", "code": 550, "enhanced": "5.1.1",
            "text": "User unknown",
        }],
    });
    let put = http(
        serving.control,
        "PUT",
        "/api/scenario",
        &[("Content-Type", "application/json")],
        unknown_user.to_string().as_bytes(),
    )
    .await;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    let health = get(serving.control, "/api/health").await.json();
    assert_eq!(health["scenario"], "unknown-user-over-http");
    assert_eq!(
        rcpt_reply(serving.smtp, "bob@dest.test").await,
        "550 5.1.1 User unknown"
    );
}

#[tokio::test]
async fn a_bad_scenario_gets_400_naming_line_column_and_key_and_the_old_one_runs_on() {
    let serving = Serving::start(&["--scenario", "mailbox-full", "--control", "127.0.0.1:0"]);
    let bad = "name = \"typo\"\nsummary = \"s\"\n[reproduces]\nerror = \"other\"\n\
               sender_log = \"l\"\n[[faults]]\nstage = \"rcpt\"\nkind = \"reply\"\n\
               code = 452\ncolour = \"red\"\n";

    let put = http(serving.control, "PUT", "/api/scenario", &[], bad.as_bytes()).await;

    assert_eq!(put.status, 400);
    let error = put.json()["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("request body:10:1: "), "{error}");
    assert!(error.contains("`colour`"), "{error}");

    let bad_json = json!({
        "name": "typo",
        "summary": "s",
        "reproduces": {"error": "other", "sender_log": "l"},
        "faults": [{"stage": "rcpt", "kind": "reply", "code": 452, "colour": "red"}],
    });
    let headers = [("Content-Type", "application/json")];
    let body = bad_json.to_string();
    let put = http(
        serving.control,
        "PUT",
        "/api/scenario",
        &headers,
        body.as_bytes(),
    )
    .await;
    assert_eq!(put.status, 400);
    let error = put.json()["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("request body"), "{error}");
    assert!(error.contains("`colour`"), "{error}");

    assert_eq!(
        get(serving.control, "/api/scenario").await.json()["name"],
        "mailbox-full"
    );
    let reply = rcpt_reply(serving.smtp, "carol@full.example").await;
    assert_eq!(reply, "452 4.2.2 Mailbox full");
}

#[test]
fn a_control_api_off_loopback_without_a_token_stops_the_binary_with_a_reason() {
    let mut child = Command::new(BINARY)
        .args(["serve", "--listen", "127.0.0.1:0", "--control", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("smtp-fault kept running with an unprotected control API on 0.0.0.0");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();

    assert!(!status.success(), "{status}");
    assert!(!stdout.contains("listening"), "{stdout}");
    assert!(
        stderr.contains("0.0.0.0:0, which is not loopback"),
        "{stderr}"
    );
    assert!(stderr.contains("--control-token"), "{stderr}");
}

#[tokio::test]
async fn with_a_token_every_request_needs_the_bearer_token() {
    let serving = Serving::start(&["--control", "127.0.0.1:0", "--control-token", "s3cret"]);

    let without = get(serving.control, "/api/health").await;
    assert_eq!(without.status, 401);
    assert_eq!(without.json()["error"], "missing or wrong bearer token");
    let wrong = [("Authorization", "Bearer guess")];
    let response = http(serving.control, "GET", "/api/messages", &wrong, b"").await;
    assert_eq!(response.status, 401);
    let no_scheme = [("Authorization", "s3cret")];
    let response = http(serving.control, "GET", "/api/health", &no_scheme, b"").await;
    assert_eq!(response.status, 401);
    let put = http(serving.control, "PUT", "/api/scenario", &wrong, b"{}").await;
    assert_eq!(put.status, 401);

    let right = [("Authorization", "Bearer s3cret")];
    let response = http(serving.control, "GET", "/api/health", &right, b"").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["status"], "ok");
    // RFC 9110: the scheme is case-insensitive.
    let lower = [("Authorization", "bearer s3cret")];
    let response = http(serving.control, "GET", "/api/health", &lower, b"").await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn a_method_an_endpoint_does_not_take_gets_405_with_a_json_error() {
    let serving = Serving::start(&["--control", "127.0.0.1:0"]);

    let response = http(serving.control, "POST", "/api/health", &[], b"").await;

    assert_eq!(response.status, 405);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains("not allowed")
    );
}

#[tokio::test]
async fn with_a_token_the_control_api_may_listen_off_loopback() {
    let serving = Serving::start(&["--control", "0.0.0.0:0", "--control-token", "s3cret"]);

    let right = [("Authorization", "Bearer s3cret")];
    let response = http(serving.control, "GET", "/api/health", &right, b"").await;
    assert_eq!(response.status, 200);
    assert_eq!(get(serving.control, "/api/health").await.status, 401);
}
