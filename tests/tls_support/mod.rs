//! What the TLS integration tests share: a server on loopback with both listeners, the lab CA on
//! disk for command-line clients, a bounded way to run those clients, and a small SMTP client
//! over any byte stream for the tests that speak the protocol by hand.
//!
//! Every wait here has a limit, so a server that misbehaves fails a test instead of hanging it.

// Each test binary uses only part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, SupportedProtocolVersion};
use smtp_fault::capture::{Direction, Transcript};
use smtp_fault::{Scenario, Server, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The name the server gives itself and its certificates are for.
pub const HOST: &str = "mx.lab.test";

/// The longest any one client run, reply or wait may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A message in the form a sender puts on the wire: CRLF line ends, and a line that starts with a
/// dot, so the client has to dot-stuff it and the server has to undo that.
pub const MESSAGE: &[u8] = b"From: a@lab.test\r\n\
    To: b@lab.test\r\n\
    Subject: over tls\r\n\
    \r\n\
    first line\r\n\
    .a line that starts with a dot\r\n\
    last line\r\n";

/// Starts a built-in scenario with a STARTTLS listener and an implicit-TLS listener, both on
/// loopback ports the kernel picks.
pub async fn start(scenario: &str) -> Server {
    let scenario = Scenario::resolve(scenario).expect("a built-in scenario");
    start_with(scenario).await
}

/// Starts `scenario` as [`start`] does.
pub async fn start_with(scenario: Scenario) -> Server {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    Server::start(ServerConfig {
        scenario,
        smtp: loopback,
        smtps: Some(loopback),
        ..ServerConfig::default()
    })
    .await
    .expect("the server binds to loopback")
}

/// The port of the server's STARTTLS listener.
pub fn smtp_port(server: &Server) -> u16 {
    server.smtp_addr().port()
}

/// The port of the server's implicit-TLS listener.
pub fn smtps_port(server: &Server) -> u16 {
    server
        .smtps_addr()
        .expect("an implicit-TLS listener")
        .port()
}

/// The committed lab CA, as a file a command-line client can be given.
pub fn ca_file() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("certs/ca.pem");
    path.to_str().expect("a UTF-8 path").to_string()
}

/// What a finished client process said.
#[derive(Debug)]
pub struct Run {
    /// The exit code; none when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both streams, standard output first, for checks that do not care which one a line is on.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Fails the test, showing everything the client said, unless `text` appears in its output.
    #[track_caller]
    pub fn assert_said(&self, text: &str) {
        assert!(
            self.output().contains(text),
            "expected {text:?} in the client's output:\n{}",
            self.output()
        );
    }

    /// Fails the test, showing everything the client said, if `text` appears in its output.
    #[track_caller]
    pub fn assert_not_said(&self, text: &str) {
        assert!(
            !self.output().contains(text),
            "did not expect {text:?} in the client's output:\n{}",
            self.output()
        );
    }

    /// Fails the test, showing everything the client said, unless it exited with `code`.
    #[track_caller]
    pub fn assert_exit(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit status; the client said:\n{}",
            self.output()
        );
    }
}

/// Runs `program` with `args`, feeds it `stdin` and closes its input, and waits for it to exit.
/// The process is killed, and the test fails, if it is still running after [`LIMIT`].
pub async fn run(program: &str, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));

    let mut input = child.stdin.take().expect("a piped stdin");
    // A client that exits before reading all its input is not an error here.
    let _ = input.write_all(stdin).await;
    drop(input);

    let output = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} was still running after {LIMIT:?}"))
        .unwrap_or_else(|e| panic!("cannot wait for {program}: {e}"));
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The transcript of the server's most recent session once that session has ended.
///
/// After its last reply the server waits up to two seconds for the client to close its side, so
/// a test that has finished with its client drops it before calling this.
pub async fn last_session(server: &Server) -> Transcript {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Some(last) = server.sessions().pop()
            && !last.open
        {
            return last;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no session ended within {LIMIT:?}: {:#?}",
            server.sessions()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The lines a transcript recorded from one direction, in order.
pub fn said_by(transcript: &Transcript, direction: Direction) -> Vec<&str> {
    transcript
        .entries
        .iter()
        .filter(|e| e.direction == direction)
        .map(|e| e.text.as_str())
        .collect()
}

/// The one message the server has stored, waiting for it if need be.
pub async fn only_message(server: &Server) -> Arc<smtp_fault::capture::Message> {
    let messages = server
        .wait_for_messages(1, LIMIT)
        .await
        .expect("a message is stored");
    assert_eq!(messages.len(), 1, "exactly one message: {messages:#?}");
    messages[0].clone()
}

/// A rustls client that trusts only the lab CA and offers `versions`.
pub fn lab_client(versions: &[&'static SupportedProtocolVersion]) -> TlsConnector {
    let config = ClientConfig::builder_with_provider(smtp_fault::tls::crypto_provider())
        .with_protocol_versions(versions)
        .expect("versions the provider supports")
        .with_root_certificates(smtp_fault::tls::lab_root_store())
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Does the TLS handshake over `socket` as [`HOST`], trusting only the lab CA.
pub async fn handshake(
    socket: TcpStream,
    versions: &[&'static SupportedProtocolVersion],
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(HOST).expect("a DNS name");
    tokio::time::timeout(LIMIT, lab_client(versions).connect(name, socket))
        .await
        .expect("the handshake ends in time")
}

/// Connects to the STARTTLS listener and brings the session up over TLS 1.3 with the lab CA, so
/// that the next command is the first one over TLS.
pub async fn over_tls13(server: &Server) -> Smtp<TlsStream<TcpStream>> {
    let tls = handshake(ready_for_tls(server).await, &[&rustls::version::TLS13])
        .await
        .expect("a TLS 1.3 handshake");
    Smtp::new(tls)
}

/// Asserts the server stored one message, [`MESSAGE`] as sent, and that it came over TLS 1.3.
pub async fn assert_only_message_over_tls13(server: &Server) {
    let message = only_message(server).await;
    assert_eq!(&message.data[..], MESSAGE);
    assert_eq!(
        message.tls.as_ref().map(|t| t.version.as_str()),
        Some("TLSv1.3")
    );
}

/// Asserts the client sent no MAIL in the server's last session and nothing was stored.
pub async fn assert_no_mail(server: &Server) {
    let transcript = last_session(server).await;
    let client = said_by(&transcript, Direction::Client);
    assert!(
        client.iter().all(|line| !line.starts_with("MAIL")),
        "{client:?}"
    );
    assert!(server.messages().is_empty());
}

/// Asserts the handshake of the server's last session completed and nothing was stored: the
/// connection was lost over TLS, not before it.
pub async fn assert_lost_after_handshake(server: &Server) {
    let transcript = last_session(server).await;
    assert!(
        transcript.tls.is_some(),
        "the handshake completed: {transcript:#?}"
    );
    assert!(server.messages().is_empty());
}

/// An SMTP client that sends exactly what it is told and reads replies whole.
pub struct Smtp<S> {
    stream: S,
    buffer: Vec<u8>,
}

impl Smtp<TcpStream> {
    /// Connects to the server's STARTTLS listener.
    pub async fn connect(server: &Server) -> Self {
        let stream = TcpStream::connect(server.smtp_addr())
            .await
            .expect("the server accepts");
        Smtp::new(stream)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<S> {
    pub fn new(stream: S) -> Self {
        Smtp {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Writes `bytes` in one write, as they are.
    pub async fn send(&mut self, bytes: &str) {
        self.stream
            .write_all(bytes.as_bytes())
            .await
            .expect("the server reads");
        self.stream.flush().await.expect("the server reads");
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }

    /// Reads one whole reply, its lines joined by `\n` without their CRLFs.
    pub async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    /// Reads one line, without its CRLF.
    async fn line(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buffer.drain(..end + 2).take(end).collect();
                return String::from_utf8(line).expect("a UTF-8 reply");
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .expect("a reply in time")
                .expect("the connection stays up");
            assert!(
                n > 0,
                "the server closed the connection mid-reply: {:?}",
                String::from_utf8_lossy(&self.buffer)
            );
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Hands back the stream, failing the test if the server sent anything not yet read: a
    /// client about to start TLS must not have read past the server's 220.
    pub fn into_stream(self) -> S {
        assert!(
            self.buffer.is_empty(),
            "the server sent more than asked: {:?}",
            String::from_utf8_lossy(&self.buffer)
        );
        self.stream
    }
}

/// Connects to the STARTTLS listener, says EHLO, and has the 220 to STARTTLS; the stream is
/// ready for the handshake.
pub async fn ready_for_tls(server: &Server) -> TcpStream {
    let mut smtp = Smtp::connect(server).await;
    assert!(smtp.reply().await.starts_with("220 "));
    let ehlo = smtp.command("EHLO client.lab.test").await;
    assert!(
        ehlo.contains("250 STARTTLS") || ehlo.contains("250-STARTTLS"),
        "{ehlo}"
    );
    assert_eq!(
        smtp.command("STARTTLS").await,
        "220 2.0.0 Ready to start TLS"
    );
    smtp.into_stream()
}
