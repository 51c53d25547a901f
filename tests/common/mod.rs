//! What the integration tests share: a server on port 0 in-process, a raw SMTP client that
//! reports exactly what came back on the wire, a lettre transport, and a guard around the
//! `smtp-fault` binary.
//!
//! Every wait here is bounded, so a server that hangs fails a test instead of hanging it.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use smtp_fault::{Scenario, Server, ServerConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};

/// The longest a healthy step (a connect, a reply, a child process start) may take before the
/// test gives up. Generous, because the machine may be busy building.
pub const STEP: Duration = Duration::from_secs(10);

/// A scenario from TOML text, panicking with the file:line:column message if it is bad.
pub fn scenario(toml: &str) -> Scenario {
    Scenario::from_toml(toml, "<test>").unwrap_or_else(|e| panic!("{e}"))
}

/// A built-in scenario by name.
pub fn builtin(name: &str) -> Scenario {
    smtp_fault::scenario::builtin(name).unwrap_or_else(|| panic!("no built-in {name:?}"))
}

/// A server on 127.0.0.1, port 0, running `scenario`.
pub async fn start(scenario: Scenario) -> Server {
    start_with(ServerConfig {
        scenario,
        ..ServerConfig::default()
    })
    .await
}

/// A server with a full configuration; its SMTP address should be on port 0.
pub async fn start_with(config: ServerConfig) -> Server {
    Server::start(config).await.expect("the server starts")
}

/// A reply as the client read it: the code, and each line's text after `NNN-` or `NNN `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The enhanced status code at the start of the first line, if there is one.
    pub fn enhanced(&self) -> Option<&str> {
        let first = self.lines.first()?.split(' ').next()?;
        let parts: Vec<&str> = first.split('.').collect();
        let numeric = parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        numeric.then_some(first)
    }

    /// Panics unless the reply has this code and enhanced code, on every line.
    pub fn expect(&self, code: u16, enhanced: &str) -> &Self {
        assert_eq!(
            (self.code, self.enhanced()),
            (code, Some(enhanced)),
            "unexpected reply {self:?}"
        );
        for line in &self.lines {
            assert!(
                line.starts_with(enhanced),
                "every line carries {enhanced}: {self:?}"
            );
        }
        self
    }

    /// Panics unless the reply has this code (for replies with no enhanced code).
    pub fn expect_code(&self, code: u16) -> &Self {
        assert_eq!(self.code, code, "unexpected reply {self:?}");
        self
    }

    /// True when some line, after the code, starts with `keyword` (an EHLO extension).
    pub fn has_line_starting(&self, keyword: &str) -> bool {
        self.lines.iter().any(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(keyword))
        })
    }
}

/// A raw SMTP client over TCP: writes exactly the bytes it is given and reports exactly what
/// came back, including how the connection ended.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::time::timeout(STEP, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects and reads the 220 greeting.
    pub async fn greeted(addr: SocketAddr) -> Client {
        let mut client = Client::connect(addr).await;
        client.reply().await.expect_code(220);
        client
    }

    /// Connects, reads the greeting and says EHLO.
    pub async fn ready(addr: SocketAddr) -> Client {
        let mut client = Client::greeted(addr).await;
        client.command("EHLO client.test").await.expect_code(250);
        client
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes).await.expect("write failed");
    }

    /// Writes raw bytes, returning the error a write met.
    pub async fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Sends one command line (CRLF added) and reads its reply.
    pub async fn command(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Reads one reply, panicking if none comes within [`STEP`].
    pub async fn reply(&mut self) -> Reply {
        match self.read_reply(STEP).await {
            Ok(reply) => reply,
            Err(e) => panic!("no reply: {e}"),
        }
    }

    /// Reads one whole reply within `limit`. The error says how it failed: `TimedOut` when
    /// nothing complete came in time, `UnexpectedEof` when the server closed (FIN) first, or
    /// whatever the socket reported (`ConnectionReset` for an RST).
    pub async fn read_reply(&mut self, limit: Duration) -> io::Result<Reply> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(reply) = self.take_reply()? {
                return Ok(reply);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply in time"))??;
            if n == 0 {
                let partial = String::from_utf8_lossy(&self.buf).into_owned();
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed; partial reply {partial:?}"),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Takes a whole reply off the front of the buffer, if one is there.
    fn take_reply(&mut self) -> io::Result<Option<Reply>> {
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(end) = self.buf[start..].windows(2).position(|w| w == b"\r\n") {
            let line = &self.buf[start..start + end];
            let text = String::from_utf8_lossy(line).into_owned();
            let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad reply {text:?}"));
            if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            let code: u16 = text[..3].parse().map_err(|_| bad())?;
            let last = match line.get(3) {
                None | Some(b' ') => true,
                Some(b'-') => false,
                Some(_) => return Err(bad()),
            };
            lines.push((code, text.get(4..).unwrap_or("").to_string()));
            start += end + 2;
            if last {
                self.buf.drain(..start);
                let code = lines[0].0;
                if lines.iter().any(|(c, _)| *c != code) {
                    return Err(bad());
                }
                let lines = lines.into_iter().map(|(_, t)| t).collect();
                return Ok(Some(Reply { code, lines }));
            }
        }
        Ok(None)
    }

    /// Waits for the server to end the connection and says how: `Ok(n)` for a FIN after `n`
    /// more bytes (unread replies included), the socket's error for an RST, `TimedOut` if the
    /// connection is still open after `limit`.
    pub async fn end(&mut self, limit: Duration) -> io::Result<usize> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut extra = std::mem::take(&mut self.buf).len();
        loop {
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "still open"))??;
            if n == 0 {
                return Ok(extra);
            }
            extra += n;
        }
    }

    /// Asserts the server closed with a FIN and sent nothing more.
    pub async fn expect_fin(&mut self) {
        match self.end(STEP).await {
            Ok(0) => {}
            other => panic!("expected a bare FIN, got {other:?}"),
        }
    }

    /// Says MAIL FROM and asserts the sender is taken.
    pub async fn mail(&mut self, from: &str) {
        self.command(&format!("MAIL FROM:<{from}>"))
            .await
            .expect(250, "2.1.0");
    }

    /// Says RCPT TO and asserts the recipient is taken.
    pub async fn rcpt(&mut self, to: &str) {
        self.command(&format!("RCPT TO:<{to}>"))
            .await
            .expect(250, "2.1.5");
    }

    /// Says MAIL, RCPT for each of `to` and DATA, asserting each is taken, so that what is sent
    /// next is message data.
    pub async fn start_data(&mut self, from: &str, to: &[&str]) {
        self.mail(from).await;
        for rcpt in to {
            self.rcpt(rcpt).await;
        }
        self.command("DATA").await.expect_code(354);
    }

    /// Asserts the server closed with a FIN before sending any part of a reply.
    pub async fn expect_closed_without_reply(&mut self) {
        let err = self.read_reply(STEP).await.expect_err("no reply");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(err.to_string().contains("partial reply \"\""), "{err}");
    }

    /// Asserts no whole reply comes within `limit`, the connection staying open.
    pub async fn expect_silence(&mut self, limit: Duration) {
        let err = self.read_reply(limit).await.expect_err("no reply yet");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    }

    /// Resets the connection from the client side (SO_LINGER 0, then close).
    pub fn reset(self) {
        let socket = self.stream.into_std().expect("into std");
        socket2::SockRef::from(&socket)
            .set_linger(Some(Duration::ZERO))
            .expect("set linger");
        drop(socket);
    }

    /// The client's own address.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local address")
    }
}

/// Runs the MAIL, RCPT, DATA transaction on a client that said EHLO, sending `data` (already
/// dot-stuffed and ending in `.\r\n`) as is, and returns the reply to the final dot.
pub async fn transaction(client: &mut Client, from: &str, to: &[&str], data: &[u8]) -> Reply {
    client.start_data(from, to).await;
    client.send(data).await;
    client.reply().await
}

/// A lettre transport for the server at `addr`, with no TLS and no connection pool.
///
/// lettre's asynchronous transport applies `connect_timeout` to the TCP connect only; a test
/// that waits for a reply that never comes bounds the whole send with [`send_within`].
pub fn lettre(addr: SocketAddr, connect_timeout: Duration) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(addr.port())
        .timeout(Some(connect_timeout))
        .hello_name(ClientId::Domain("client.test".to_string()))
        .build()
}

/// An envelope from `from` to each of `to`.
pub fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope::new(
        Some(from.parse().expect("sender address")),
        to.iter()
            .map(|t| t.parse().expect("recipient address"))
            .collect(),
    )
    .expect("envelope")
}

/// The outcome of one lettre send.
pub type Sent = Result<Response, lettre::transport::smtp::Error>;

/// Sends `data` with lettre, panicking if the send does not finish within [`STEP`].
pub async fn send(addr: SocketAddr, from: &str, to: &[&str], data: &[u8]) -> Sent {
    match send_within(addr, from, to, data, STEP).await {
        Ok(sent) => sent,
        Err(_) => panic!("lettre did not finish within {STEP:?}"),
    }
}

/// Sends `data` with lettre, giving up (as an impatient sender does) after `limit`.
pub async fn send_within(
    addr: SocketAddr,
    from: &str,
    to: &[&str],
    data: &[u8],
    limit: Duration,
) -> Result<Sent, tokio::time::error::Elapsed> {
    let transport = lettre(addr, limit);
    let envelope = envelope(from, to);
    tokio::time::timeout(limit, transport.send_raw(&envelope, data)).await
}

/// The kind of the first I/O error in an error's chain of sources.
pub fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut next = Some(error);
    for _ in 0..16 {
        let e = next?;
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        next = e.source();
    }
    None
}

/// Runs `future` and says how long it took.
pub async fn timed<T>(future: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = std::time::Instant::now();
    let output = future.await;
    (output, started.elapsed())
}

/// Asserts that `elapsed` is at least `expected` and not more than `slack` over it.
pub fn assert_took(elapsed: Duration, expected: Duration, slack: Duration) {
    assert!(
        elapsed >= expected && elapsed <= expected + slack,
        "took {elapsed:?}, expected {expected:?} (+{slack:?})"
    );
}

/// The `smtp-fault` binary built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_smtp-fault")
}

/// Runs a command to completion, killing it if it runs past `limit`.
pub async fn run(command: &mut Command, limit: Duration) -> Output {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("the command starts");
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(output) => output.expect("the command runs"),
        Err(_) => panic!("{command:?} still running after {limit:?}"),
    }
}

/// Runs the `smtp-fault` binary with `args` to completion.
pub async fn run_binary(args: &[&str]) -> Output {
    run(Command::new(binary()).args(args), STEP).await
}

/// Standard output and standard error as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `smtp-fault serve`, killed when dropped.
pub struct Serve {
    child: Child,
    addr: SocketAddr,
    first_line: String,
    stdout: BufReader<ChildStdout>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// Starts `smtp-fault serve --listen 127.0.0.1:0` with the extra `args`, and reads the
    /// address from the first line of its standard output.
    pub async fn start(args: &[&str]) -> Serve {
        let dir = tempfile::tempdir().expect("temporary directory");
        // Logs go to a file: a pipe nobody reads would fill and block the server's logging.
        let stderr = dir.path().join("stderr.log");
        let log = std::fs::File::create(&stderr).expect("log file");
        let mut child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("smtp-fault starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first_line = String::new();
        let read = tokio::time::timeout(STEP, stdout.read_line(&mut first_line)).await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            let log = std::fs::read_to_string(&stderr).unwrap_or_default();
            panic!("smtp-fault printed no first line ({read:?}); stderr:\n{log}");
        }
        let addr = first_line
            .trim_end()
            .strip_prefix("listening smtp ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"));
        Serve {
            child,
            addr,
            first_line,
            stdout,
            stderr,
            _dir: dir,
        }
    }

    /// The SMTP address it printed.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it printed.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The first line it printed on standard output.
    pub fn first_line(&self) -> &str {
        &self.first_line
    }

    /// What it has logged on standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for it to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {pid} failed");
        match tokio::time::timeout(STEP, self.child.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!("smtp-fault still running {STEP:?} after SIGTERM"),
        }
    }

    /// The rest of standard output after the first line, once it has exited.
    pub async fn rest_of_stdout(&mut self) -> String {
        let mut rest = String::new();
        let _ = tokio::time::timeout(STEP, self.stdout.read_to_string(&mut rest)).await;
        rest
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Every file name in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A file with `contents` in a new temporary directory, for clients that read a message file.
pub fn message_file(contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("message.eml");
    std::fs::write(&path, contents).expect("write message file");
    (dir, path)
}
