//! One delivery attempt to one address, as a sending connector makes it, written by hand over
//! tokio so that every failure is seen as it happened on the wire.
//!
//! A library SMTP client folds "the server sent RST", "the server sent FIN" and "the server went
//! quiet" into one error; a connector reports them differently, so the probe must tell them
//! apart. The attempt runs greeting, EHLO (HELO if EHLO is refused), STARTTLS and the handshake,
//! EHLO again, MAIL, RCPT and, with `--send`, DATA, the message and the final dot, one command at
//! a time with a timeout on every read and write. Each failure becomes a [`Failure`] carrying
//! the documented error, the stage and the words for the report.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::debug;

use super::message::test_message;
use super::reply::{ReplyError, ServerReply, parse_reply};
use super::report::{ProbeStage, Transcript};
use super::tls::{ProbeVerifier, classify_handshake_error, client_config};
use super::{ProbeOptions, TlsMode};
use crate::scenario::DocumentedError;

/// How long the courtesy QUIT after a failure may take: the verdict is already known, and a
/// server that has gone quiet must not hold the report back.
const QUIT_GRACE: Duration = Duration::from_secs(2);

/// Why an attempt did not succeed.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub verdict: DocumentedError,
    pub stage: ProbeStage,
    pub detail: String,
}

impl Failure {
    pub(crate) fn new(verdict: DocumentedError, stage: ProbeStage, detail: String) -> Self {
        Self {
            verdict,
            stage,
            detail,
        }
    }
}

/// How an attempt that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Success {
    /// The message was accepted after its final dot.
    Delivered,
    /// The recipient was accepted and no message was sent.
    WouldDeliver,
}

/// What one attempt produced besides its result.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// The last reply before the verdict, verbatim.
    pub last_reply: Option<String>,
    /// Things worth knowing that did not decide the verdict.
    pub warnings: Vec<String>,
}

/// Connects to `addr` and runs one session; `tls_name` is the name the certificate must be for.
pub(crate) async fn attempt(
    opts: &ProbeOptions,
    addr: SocketAddr,
    tls_name: &str,
    log: &mut Transcript,
    findings: &mut Findings,
) -> Result<Success, Failure> {
    log.note(format!("connecting to {addr}"));
    let tcp = match tokio::time::timeout(opts.timeout_connect, TcpStream::connect(addr)).await {
        Err(_) => {
            let detail = format!(
                "no answer from {addr} within {} s: the connection attempt timed out",
                secs(opts.timeout_connect)
            );
            log.note(detail.clone());
            return Err(Failure::new(
                DocumentedError::ConnectionTimedOut,
                ProbeStage::Connect,
                detail,
            ));
        }
        Ok(Err(e)) => {
            let (verdict, detail) = match e.kind() {
                io::ErrorKind::ConnectionRefused => (
                    DocumentedError::ConnectionRefused,
                    format!("{addr} refused the connection (RST to the SYN)"),
                ),
                io::ErrorKind::TimedOut => (
                    DocumentedError::ConnectionTimedOut,
                    format!("the connection attempt to {addr} timed out: {e}"),
                ),
                // The handshake completed and the reset came before connect() returned: the
                // server accepted the connection and dropped it, which is a closed session,
                // not a refusal.
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => (
                    DocumentedError::ConnectionClosed,
                    format!("{addr} accepted the connection and reset it at once: {e}"),
                ),
                _ => (
                    DocumentedError::CannotConnect,
                    format!("cannot connect to {addr}: {e}"),
                ),
            };
            log.note(detail.clone());
            return Err(Failure::new(verdict, ProbeStage::Connect, detail));
        }
        Ok(Ok(tcp)) => tcp,
    };
    log.note(format!("connected to {addr}"));
    // Every write is a whole command or the whole message, so there is nothing for Nagle's
    // algorithm to coalesce; left on, it holds the final dot back for a delayed ACK.
    let _ = tcp.set_nodelay(true);

    let mut session = Session {
        conn: Connection::new(Stream::Plain(tcp)),
        helo: opts.helo_name(),
        opts,
        log,
        findings,
        tls_name,
    };
    let result = session.run().await;
    if let Err(failure) = &result {
        session.quit_after(failure).await;
    }
    result
}

/// The session on an open connection.
struct Session<'a> {
    conn: Connection,
    /// The name given in EHLO, and in the test message's Message-ID.
    helo: String,
    opts: &'a ProbeOptions,
    log: &'a mut Transcript,
    findings: &'a mut Findings,
    tls_name: &'a str,
}

impl Session<'_> {
    async fn run(&mut self) -> Result<Success, Failure> {
        let greeting = self.reply(ProbeStage::Greeting).await?;
        if !greeting.is_success() {
            return Err(self.refused_to_talk(ProbeStage::Greeting, "greeted with an error"));
        }

        let mut extensions = self.hello().await?;
        let offers_starttls = extensions.iter().any(|e| e == "STARTTLS");
        match (self.opts.tls, offers_starttls) {
            (TlsMode::Off, _) => {}
            (TlsMode::Opportunistic, false) => {
                self.log.note(
                    "STARTTLS not offered; continuing without TLS, as opportunistic TLS does",
                );
            }
            (TlsMode::Require, false) => {
                return Err(Failure::new(
                    DocumentedError::CannotConnect,
                    ProbeStage::Starttls,
                    "TLS is required, but the server does not offer STARTTLS".to_string(),
                ));
            }
            (TlsMode::Opportunistic | TlsMode::Require, true) => {
                self.start_tls().await?;
                extensions = self.hello().await?;
            }
        }
        debug!(?extensions, "session established");

        let from = format!("MAIL FROM:<{}>", self.opts.from);
        let reply = self.command(ProbeStage::Mail, &from).await?;
        if !reply.is_success() {
            return Err(self.rejected(ProbeStage::Mail, "MAIL FROM"));
        }
        let to = format!("RCPT TO:<{}>", self.recipient());
        let reply = self.command(ProbeStage::Rcpt, &to).await?;
        if !reply.is_success() {
            return Err(self.rejected(ProbeStage::Rcpt, "RCPT TO"));
        }

        if !self.opts.send {
            // The verdict stands once the recipient is accepted; what RSET and QUIT meet is
            // reported but does not change it.
            self.courtesy("RSET", self.opts.timeout_command).await;
            self.courtesy("QUIT", self.opts.timeout_command).await;
            return Ok(Success::WouldDeliver);
        }

        let reply = self.command(ProbeStage::Data, "DATA").await?;
        if !reply.is_intermediate() {
            return Err(self.rejected(ProbeStage::Data, "DATA"));
        }
        let message = test_message(&self.opts.from, &self.recipient(), &self.helo);
        self.log.client(format!(
            "(message: {} octets in {} lines)",
            message.len(),
            message.split(|&b| b == b'\n').count() - 1
        ));
        self.write(ProbeStage::Body, &message).await?;
        let reply = self.command(ProbeStage::EndOfData, ".").await?;
        if !reply.is_success() {
            return Err(self.rejected(ProbeStage::EndOfData, "the end of data"));
        }

        self.courtesy("QUIT", self.opts.timeout_command).await;
        Ok(Success::Delivered)
    }

    fn recipient(&self) -> String {
        self.opts
            .to
            .clone()
            .unwrap_or_else(|| self.opts.target.default_recipient())
    }

    /// EHLO, or HELO when EHLO is refused permanently; the extensions the server lists.
    async fn hello(&mut self) -> Result<Vec<String>, Failure> {
        let helo = self.helo.clone();
        let reply = self
            .command(ProbeStage::Ehlo, &format!("EHLO {helo}"))
            .await?;
        if reply.is_success() {
            return Ok(reply
                .reply
                .lines
                .iter()
                .skip(1)
                .filter_map(|line| line.split(' ').next())
                .map(str::to_ascii_uppercase)
                .collect());
        }

        // RFC 5321 section 4.1.4: a server that does not know EHLO answers 5xx, and the client
        // falls back to HELO. A 4xx, and 421 above all, is not about EHLO but about the session.
        if reply.code() < 500 {
            return Err(self.refused_to_talk(ProbeStage::Ehlo, "refused EHLO"));
        }
        let reply = self
            .command(ProbeStage::Ehlo, &format!("HELO {helo}"))
            .await?;
        if reply.is_success() {
            return Ok(Vec::new());
        }
        Err(self.refused_to_talk(ProbeStage::Ehlo, "refused EHLO and HELO"))
    }

    async fn start_tls(&mut self) -> Result<(), Failure> {
        let reply = self.command(ProbeStage::Starttls, "STARTTLS").await?;
        if reply.code() != 220 {
            return Err(self.refused_to_talk(ProbeStage::Starttls, "refused STARTTLS"));
        }

        // Anything the server sent after its 220 arrived in plain text and must not be read as
        // if it came through TLS: that is how STARTTLS command injection works.
        if !self.conn.buf.is_empty() {
            let warning = format!(
                "the server sent {} octets after its 220 to STARTTLS; discarded",
                self.conn.buf.len()
            );
            self.log.note(warning.clone());
            self.findings.warnings.push(warning);
            self.conn.buf.clear();
        }

        let name = ServerName::try_from(self.tls_name.to_string()).map_err(|_| {
            Failure::new(
                DocumentedError::CannotConnect,
                ProbeStage::TlsHandshake,
                format!(
                    "cannot check a certificate against {:?}: not a dns name or ip address",
                    self.tls_name
                ),
            )
        })?;
        let (roots, roots_warning) = self.opts.roots.store();
        if let Some(warning) = roots_warning {
            self.findings.warnings.push(warning);
        }
        let enforce = self.opts.tls == TlsMode::Require;
        let verifier = Arc::new(ProbeVerifier::new(roots, enforce));
        let config = client_config(self.opts.tls_version, verifier.clone()).map_err(|e| {
            Failure::new(
                DocumentedError::CannotConnect,
                ProbeStage::TlsHandshake,
                format!("cannot configure TLS: {e}"),
            )
        })?;

        let Stream::Plain(tcp) = std::mem::replace(&mut self.conn.stream, Stream::Detached) else {
            unreachable!("STARTTLS is only sent on a plain connection");
        };
        self.log.note(format!(
            "TLS handshake, checking the certificate against {}",
            self.tls_name
        ));
        let connector = TlsConnector::from(Arc::new(config));
        let handshake = connector.connect(name, tcp);
        let tls = match tokio::time::timeout(self.opts.timeout_command, handshake).await {
            Err(_) => {
                let detail = format!(
                    "the TLS handshake did not finish within {} s",
                    secs(self.opts.timeout_command)
                );
                self.log.note(detail.clone());
                return Err(Failure::new(
                    DocumentedError::ConnectionClosed,
                    ProbeStage::TlsHandshake,
                    detail,
                ));
            }
            Ok(Err(e)) => {
                let (verdict, detail) = classify_handshake_error(&e, verifier.problem());
                self.log.note(detail.clone());
                return Err(Failure::new(verdict, ProbeStage::TlsHandshake, detail));
            }
            Ok(Ok(tls)) => tls,
        };

        let (_, connection) = tls.get_ref();
        let version = connection
            .protocol_version()
            .map_or_else(|| "unknown version".to_string(), |v| format!("{v:?}"));
        let suite = connection.negotiated_cipher_suite().map_or_else(
            || "unknown suite".to_string(),
            |s| format!("{:?}", s.suite()),
        );
        self.log
            .note(format!("TLS established: {version}, {suite}"));
        if let Some(problem) = verifier.problem() {
            let warning = format!(
                "{}; used anyway, as opportunistic TLS does (--tls require would fail with \
                 4.7.320)",
                problem.detail
            );
            self.log.note(warning.clone());
            self.findings.warnings.push(warning);
        } else {
            self.log.note("certificate valid");
        }

        self.conn.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Sends one command line and reads its reply.
    async fn command(&mut self, stage: ProbeStage, line: &str) -> Result<ServerReply, Failure> {
        // A CR or LF inside the line would make it two commands. The command line refuses such
        // addresses; this keeps the wire form one line whatever a library caller passes.
        let line = line.replace(['\r', '\n'], " ");
        self.log.client(line.as_str());
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.write(stage, &bytes).await?;
        self.reply(stage).await
    }

    async fn write(&mut self, stage: ProbeStage, bytes: &[u8]) -> Result<(), Failure> {
        let timeout = self.opts.timeout_command;
        match self.conn.write(bytes, timeout).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.lost(stage, e)),
        }
    }

    /// Reads a reply, writing it to the transcript and keeping it as the last reply.
    async fn reply(&mut self, stage: ProbeStage) -> Result<ServerReply, Failure> {
        match self.conn.read_reply(self.opts.timeout_command).await {
            Ok(reply) => {
                for line in &reply.raw {
                    self.log.server(line.clone());
                }
                self.findings.last_reply = Some(reply.text());
                Ok(reply)
            }
            Err(e) => Err(self.lost(stage, e)),
        }
    }

    /// A command whose outcome does not change the verdict: RSET and QUIT after success, or QUIT
    /// after a failure.
    async fn courtesy(&mut self, verb: &str, timeout: Duration) {
        self.log.client(verb);
        let line = format!("{verb}\r\n");
        let result = match self.conn.write(line.as_bytes(), timeout).await {
            Ok(()) => self.conn.read_reply(timeout).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(reply) => {
                for line in &reply.raw {
                    self.log.server(line.clone());
                }
            }
            Err(e) => self.log.note(format!("{verb}: {}", e.describe(timeout))),
        }
    }

    /// Says goodbye after a failure when the connection is still worth talking to.
    async fn quit_after(&mut self, failure: &Failure) {
        let connection_gone = matches!(
            failure.verdict,
            DocumentedError::ConnectionClosed | DocumentedError::CertificateValidationFailed
        ) || failure.stage == ProbeStage::TlsHandshake;
        let closing = self
            .findings
            .last_reply
            .as_deref()
            .is_some_and(|r| r.starts_with("421"));
        if connection_gone || closing || matches!(self.conn.stream, Stream::Detached) {
            return;
        }
        self.courtesy("QUIT", QUIT_GRACE.min(self.opts.timeout_command))
            .await;
    }

    /// The server would not start a session: 4.4.317 with its reply.
    fn refused_to_talk(&self, stage: ProbeStage, what: &str) -> Failure {
        let reply = self.findings.last_reply.as_deref().unwrap_or_default();
        let first = reply.lines().next().unwrap_or_default();
        Failure::new(
            DocumentedError::CannotConnect,
            stage,
            format!("the server {what}: {first}"),
        )
    }

    /// The server refused a transaction command: "other", with its reply.
    fn rejected(&self, stage: ProbeStage, what: &str) -> Failure {
        let code = self
            .findings
            .last_reply
            .as_deref()
            .and_then(|r| r.get(..3))
            .unwrap_or("the reply");
        let kind = if code.starts_with('4') {
            "temporarily"
        } else {
            "permanently"
        };
        Failure::new(
            DocumentedError::Other,
            stage,
            format!("the server {kind} refused {what} with {code}"),
        )
    }

    /// The connection failed part-way.
    fn lost(&mut self, stage: ProbeStage, error: IoFailure) -> Failure {
        let timeout = self.opts.timeout_command;
        let verdict = match (&error, stage) {
            // Something that does not speak SMTP at all is a server the sender cannot talk to;
            // a server that breaks the protocol later has broken an established session.
            (IoFailure::Malformed(_), ProbeStage::Greeting | ProbeStage::Ehlo) => {
                DocumentedError::CannotConnect
            }
            _ => DocumentedError::ConnectionClosed,
        };
        let detail = format!("{} {}", error.describe(timeout), stage.while_doing());
        self.log.note(detail.clone());
        Failure::new(verdict, stage, detail)
    }
}

/// How reading or writing failed.
#[derive(Debug)]
enum IoFailure {
    /// The server closed its side (FIN) before a whole reply arrived.
    Closed,
    /// The server reset the connection (RST).
    Reset,
    /// Writing found the connection already gone.
    BrokenPipe,
    /// Nothing arrived, or nothing could be written, within the timeout.
    TimedOut { writing: bool },
    /// The server sent something that is not an acceptable reply.
    Malformed(ReplyError),
    /// Any other I/O error.
    Other(io::Error),
}

impl IoFailure {
    fn from_io(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::UnexpectedEof => IoFailure::Closed,
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => IoFailure::Reset,
            io::ErrorKind::BrokenPipe => IoFailure::BrokenPipe,
            _ => IoFailure::Other(error),
        }
    }

    fn describe(&self, timeout: Duration) -> String {
        match self {
            IoFailure::Closed => "the server closed the connection (FIN)".to_string(),
            IoFailure::Reset => "the connection was reset (RST)".to_string(),
            IoFailure::BrokenPipe => "the connection was gone when the probe wrote".to_string(),
            IoFailure::TimedOut { writing: false } => {
                format!("no reply within {} s", secs(timeout))
            }
            IoFailure::TimedOut { writing: true } => {
                format!("the server stopped reading for {} s", secs(timeout))
            }
            IoFailure::Malformed(e) => format!("the server's reply is not valid SMTP ({e})"),
            IoFailure::Other(e) => format!("the connection failed ({e})"),
        }
    }
}

/// A plain or TLS connection with its receive buffer.
struct Connection {
    stream: Stream,
    buf: BytesMut,
}

impl Connection {
    fn new(stream: Stream) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(4096),
        }
    }

    async fn write(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), IoFailure> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Err(_) => Err(IoFailure::TimedOut { writing: true }),
            Ok(Err(e)) => Err(IoFailure::from_io(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads until one whole reply is buffered, for at most `timeout` in all.
    async fn read_reply(&mut self, timeout: Duration) -> Result<ServerReply, IoFailure> {
        let deadline = Instant::now() + timeout;
        // Each pass either parses a reply, fails, or reads at least one more octet into a buffer
        // that `parse_reply` caps, and the deadline bounds the time: the loop ends.
        loop {
            if let Some(reply) = parse_reply(&mut self.buf).map_err(IoFailure::Malformed)? {
                return Ok(reply);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf));
            match read.await {
                Err(_) => return Err(IoFailure::TimedOut { writing: false }),
                Ok(Err(e)) => return Err(IoFailure::from_io(e)),
                Ok(Ok(0)) => return Err(IoFailure::Closed),
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// The byte stream under a session; STARTTLS swaps `Plain` for `Tls`.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while STARTTLS hands the socket to the handshake, or after the handshake failed.
    Detached,
}

fn detached() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection handed to tls")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Detached => Poll::Ready(Err(detached())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
            Stream::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Detached => Poll::Ready(Ok(())),
        }
    }
}

/// Seconds for the report: `10`, `1.5`.
pub(crate) fn secs(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0}")
    } else {
        format!("{secs}")
    }
}
