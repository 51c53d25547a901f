//! One SMTP conversation: a state machine over any byte stream that asks the scenario, at every
//! stage, what to do.
//!
//! With no fault in the way the session is a strict RFC 5321 receiver. At each stage it asks
//! [`faults::select`] which faults apply; delays and throttles adjust what follows, and the first
//! reply, stall, close or reset decides the stage. Commands that arrive together are answered
//! in order and their replies written together, as a pipelining server does. STARTTLS swaps the
//! plain stream for a TLS one over the same socket, so the rest of the session does not change.

mod data;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use stream::{Socket, Stream};

use crate::capture::{CaptureStore, Direction, TranscriptHandle};
use crate::faults::{
    self, Facts, Fault, FaultKind, History, ReplyFault, Stage, Stall, Then, Throttle, Triplet,
};
use crate::protocol::{BodyType, Command, EnhancedCode, LineOutcome, LineReader, Reply};
use crate::scenario::Scenario;

/// After this many protocol errors in one session the server answers 421 and hangs up, as
/// Postfix does, so a confused or hostile client cannot keep a session busy for ever.
const MAX_ERRORS: u32 = 20;

/// How long a close with FIN waits for the client to close its side before dropping the socket.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Everything a session needs from the server that runs it.
#[derive(Clone)]
pub struct SessionEnv {
    /// This session's number, from 1.
    pub id: u64,
    /// The attempt number faults match on: connections accepted so far, this one included.
    pub attempt: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// The name the server gives itself.
    pub hostname: Arc<str>,
    /// The scenario in force when the connection was accepted.
    pub scenario: Arc<Scenario>,
    /// Where accepted messages and transcripts go.
    pub capture: Arc<CaptureStore>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// What the scenario remembers across sessions.
    pub history: Arc<History>,
    /// The TLS acceptor for STARTTLS and implicit TLS, when TLS is available.
    pub tls: Option<TlsAcceptor>,
    /// The listener is implicit TLS: the handshake comes before the greeting.
    pub implicit_tls: bool,
}

/// What the session is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The greeting was refused; only QUIT is answered normally.
    Refusing,
    /// EHLO or HELO.
    Helo,
    /// MAIL FROM.
    Mail,
    /// RCPT TO, or DATA once a recipient is accepted.
    Rcpt,
}

/// The transaction between MAIL FROM and the final dot.
#[derive(Debug, Default)]
struct Transaction {
    from: Option<String>,
    rcpts: Vec<String>,
    rcpt_attempted: bool,
    smtputf8: bool,
    number: u64,
}

/// How the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Close politely after the last reply: close_notify over TLS, then a FIN.
    Close,
    /// Close with a FIN and nothing else: no reply, no close_notify.
    Fin,
    /// Reset with an RST.
    Reset,
    /// The client went away; nothing more to send.
    ClientGone,
}

/// What a stage's faults decided.
enum Decision {
    /// No terminal fault: behave normally.
    Normal,
    /// Send this reply in place of the normal one.
    Reply(ReplyFault),
    /// End the session this way, without a reply.
    End(Ending),
}

type Flow = Result<(), Ending>;

/// Runs one session to its end over `socket`.
pub async fn run<S: Socket>(socket: S, env: SessionEnv) {
    let transcript = TranscriptHandle::new(env.id, env.peer, env.attempt);
    env.capture.add_session(transcript.clone());
    let settings = &env.scenario.server;
    let mut session = Session {
        lines: LineReader::new(settings.max_line_octets),
        io: Some(Stream::Plain(socket)),
        rbuf: BytesMut::new(),
        wbuf: BytesMut::new(),
        transcript,
        state: State::Helo,
        helo: None,
        esmtp: false,
        tx: Transaction::default(),
        throttle: None,
        errors: 0,
        env,
    };
    let ending = match session.converse().await {
        Ok(()) => Ending::Close,
        Err(ending) => ending,
    };
    // Boxed, like the other rare phases below, so that the future every session keeps while
    // it waits stays small: 10,000 stalled sessions should cost little memory.
    Box::pin(session.finish(ending)).await;
}

struct Session<S> {
    env: SessionEnv,
    io: Option<Stream<S>>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    lines: LineReader,
    transcript: TranscriptHandle,
    state: State,
    helo: Option<String>,
    esmtp: bool,
    tx: Transaction,
    throttle: Option<Throttle>,
    errors: u32,
}

impl<S: Socket> Session<S> {
    fn io(&mut self) -> &mut Stream<S> {
        self.io
            .as_mut()
            .expect("the stream is present while the session runs")
    }

    fn facts(&self) -> Facts<'_> {
        Facts {
            attempt: self.env.attempt,
            helo: self.helo.as_deref(),
            mail_from: self.tx.from.as_deref(),
            rcpt: None,
            rcpts: &self.tx.rcpts,
            tls: self.io.as_ref().is_some_and(Stream::is_tls),
            message: self.tx.number,
            uptime_ms: self.env.history.uptime_ms(),
            seed: self.env.scenario.server.seed,
        }
    }

    /// The whole conversation, from the connection to the end.
    async fn converse(&mut self) -> Flow {
        if self.env.implicit_tls {
            Box::pin(self.start_tls()).await?;
        }

        let greeting = Reply::greeting(&self.env.hostname);
        match self.decide(Stage::Connect, None).await? {
            Decision::Normal => self.reply(greeting),
            Decision::Reply(fault) => {
                if !fault.reply.is_positive() {
                    self.state = State::Refusing;
                }
                self.reply_then(fault)?;
            }
            Decision::End(ending) => return Err(ending),
        }

        loop {
            let line = match self.lines.next_line(&mut self.rbuf) {
                LineOutcome::Line(line) => line,
                LineOutcome::TooLong => {
                    warn!(
                        "command line longer than {} octets",
                        self.env.scenario.server.max_line_octets
                    );
                    self.transcript
                        .record(Direction::Client, "<line too long, discarded>");
                    self.error(Reply::line_too_long(
                        self.env.scenario.server.max_line_octets,
                    ))?;
                    continue;
                }
                LineOutcome::NeedMore => {
                    self.fill().await?;
                    continue;
                }
            };
            let command = crate::protocol::parse_command(&line);
            self.transcript
                .record(Direction::Client, redact(&line, &command));
            // Boxed: a command is short-lived, and the future a waiting session keeps should not
            // carry room for the largest one.
            Box::pin(self.command(command)).await?;
        }
    }

    /// Reads more from the client, first writing any replies waiting. Ends the session on EOF,
    /// a read error, the idle timeout or shutdown.
    async fn fill(&mut self) -> Flow {
        self.flush().await?;
        let idle = Duration::from_millis(self.env.scenario.server.idle_timeout_ms);
        let shutdown = self.env.shutdown.clone();
        self.rbuf.reserve(4096);
        let read = {
            let (io, rbuf) = (self.io.as_mut().expect("stream"), &mut self.rbuf);
            tokio::select! {
                read = tokio::time::timeout(idle, io.read_buf(rbuf)) => Some(read),
                _ = shutdown.cancelled() => None,
            }
        };
        match read {
            None => {
                self.reply(Reply::shutting_down(&self.env.hostname));
                Err(Ending::Close)
            }
            Some(Err(_)) => {
                info!("client idle for {} ms", idle.as_millis());
                self.transcript.record(Direction::Event, "idle timeout");
                self.reply(Reply::idle_timeout(&self.env.hostname));
                Err(Ending::Close)
            }
            Some(Ok(Ok(0))) => {
                debug!("client closed the connection");
                self.transcript
                    .record(Direction::Event, "client closed the connection");
                Err(Ending::ClientGone)
            }
            Some(Ok(Ok(_))) => Ok(()),
            Some(Ok(Err(e))) => {
                debug!("read failed: {e}");
                self.transcript
                    .record(Direction::Event, format!("read failed: {e}"));
                Err(Ending::ClientGone)
            }
        }
    }

    /// Queues a reply; it is written when the session next waits for the client.
    fn reply(&mut self, reply: Reply) {
        let start = self.wbuf.len();
        reply.write_to(&mut self.wbuf);
        // The transcript takes the reply as written, CRLFs between lines turned into `\n`.
        let written = &self.wbuf[start..self.wbuf.len().saturating_sub(2)];
        let text = String::from_utf8_lossy(written);
        let text = if reply.lines.len() > 1 {
            text.replace("\r\n", "\n")
        } else {
            text.into_owned()
        };
        self.transcript.record(Direction::Server, text);
    }

    /// Queues a fault's reply and carries out what follows it.
    fn reply_then(&mut self, fault: ReplyFault) -> Flow {
        let then = fault.effective_then();
        self.reply(fault.reply);
        match then {
            Then::Continue => Ok(()),
            Then::Close => Err(Ending::Close),
            Then::Reset => Err(Ending::Reset),
        }
    }

    /// Queues a reply to a protocol error, hanging up once the client has made too many.
    fn error(&mut self, reply: Reply) -> Flow {
        self.reply(reply);
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            warn!("too many protocol errors; closing");
            self.reply(Reply::new(
                421,
                Some(EnhancedCode::new(4, 7, 0)),
                format!("{} Error: too many errors", self.env.hostname),
            ));
            return Err(Ending::Close);
        }
        Ok(())
    }

    /// Writes the queued replies, throttled if a throttle fault fired.
    async fn flush(&mut self) -> Flow {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let pending = self.wbuf.split().freeze();
        let result = match self.throttle {
            None => self.io().write_all(&pending).await,
            Some(throttle) => self.write_throttled(&pending, throttle).await,
        };
        let result = match result {
            Ok(()) => self.io().flush().await,
            Err(e) => Err(e),
        };
        result.map_err(|e| {
            debug!("write failed: {e}");
            self.transcript
                .record(Direction::Event, format!("write failed: {e}"));
            Ending::ClientGone
        })
    }

    async fn write_throttled(&mut self, bytes: &[u8], throttle: Throttle) -> std::io::Result<()> {
        let shutdown = self.env.shutdown.clone();
        for piece in bytes.chunks(throttle.chunk_bytes()) {
            self.io().write_all(piece).await?;
            self.io().flush().await?;
            tokio::select! {
                _ = tokio::time::sleep(throttle.pause_after(piece.len())) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        Ok(())
    }

    /// Asks the scenario what to do at `stage`, carrying out delays, throttles and omissions on
    /// the way. `rcpt` is the recipient being given, at the `rcpt` stage.
    async fn decide(&mut self, stage: Stage, rcpt: Option<&str>) -> Result<Decision, Ending> {
        let scenario = self.env.scenario.clone();
        if !scenario.has_faults_at(stage) {
            return Ok(Decision::Normal);
        }
        let facts = Facts {
            rcpt,
            ..self.facts()
        };
        // Indices into the scenario, which this function holds: cloning the faults would make
        // every waiting session carry a copy.
        let chosen: Vec<usize> = faults::select(&scenario.faults, stage, &facts)
            .into_iter()
            .filter_map(|f| scenario.faults.iter().position(|g| std::ptr::eq(f, g)))
            .collect();
        let rcpt = rcpt.map(str::to_string);
        let mut decision = Decision::Normal;
        for index in chosen {
            let fault = &scenario.faults[index];
            decision = match &fault.kind {
                FaultKind::Greylist(greylist) => {
                    let triplet = Triplet::new(
                        self.env.peer.ip(),
                        self.tx.from.as_deref().unwrap_or(""),
                        rcpt.as_deref().unwrap_or(""),
                    );
                    let state = self.env.history.greylist(triplet, greylist.min_delay());
                    match greylist.refusal(state) {
                        Some(reply) => {
                            self.fired(fault);
                            Decision::Reply(ReplyFault::new(reply))
                        }
                        None => {
                            debug!("greylisting passed");
                            continue;
                        }
                    }
                }
                FaultKind::RateLimit(limit) => {
                    if self
                        .env
                        .history
                        .within_rate(index, limit.messages, limit.window())
                    {
                        continue;
                    }
                    self.fired(fault);
                    Decision::Reply(ReplyFault::new(limit.refusal()))
                }
                FaultKind::Delay(delay) => {
                    self.fired(fault);
                    Box::pin(self.flush()).await?;
                    if !Box::pin(delay.wait(&self.env.shutdown)).await {
                        self.reply(Reply::shutting_down(&self.env.hostname));
                        return Err(Ending::Close);
                    }
                    continue;
                }
                FaultKind::Throttle(throttle) => {
                    self.fired(fault);
                    self.throttle = Some(*throttle);
                    continue;
                }
                FaultKind::OmitExtension(_) => {
                    self.fired(fault);
                    continue;
                }
                FaultKind::Reply(reply) => {
                    self.fired(fault);
                    Decision::Reply(reply.clone())
                }
                FaultKind::Close(_) => {
                    self.fired(fault);
                    Decision::End(Ending::Fin)
                }
                FaultKind::Reset(_) => {
                    self.fired(fault);
                    Decision::End(Ending::Reset)
                }
                FaultKind::Stall(stall) => {
                    self.fired(fault);
                    self.stall(*stall).await?;
                    Decision::End(Ending::Fin)
                }
            };
            break;
        }
        Ok(decision)
    }

    /// Logs and records a fault that fired; described only then, since most matches of a
    /// greylist or rate limit let the command through.
    fn fired(&self, fault: &Fault) {
        let description = fault.describe();
        info!(fault = %description, "fault fired");
        self.transcript.fault(&description);
    }

    /// Sends what was queued before the stall, then goes silent. The flush is boxed and the
    /// wait is not: a stalled session keeps only the small wait while it stalls.
    async fn stall(&mut self, stall: Stall) -> Flow {
        Box::pin(self.flush()).await?;
        match stall.wait(&self.env.shutdown).await {
            faults::StallEnd::Elapsed => {
                self.transcript.record(Direction::Event, "stall ended");
                Ok(())
            }
            // A stalled session is not told about the shutdown: it was not going to hear
            // anything from this server.
            faults::StallEnd::Shutdown => Err(Ending::Fin),
        }
    }

    /// Runs one command through its stage's faults and the healthy receiver.
    async fn command(&mut self, command: Command) -> Flow {
        if self.state == State::Refusing && command != Command::Quit {
            return self.error(Reply::bad_sequence("no SMTP service here"));
        }
        match command {
            Command::Ehlo(name) => self.greeted(name, true).await,
            Command::Helo(name) => self.greeted(name, false).await,
            Command::Mail { from, params } => {
                // A `mail` fault sees the address being given and the new message number.
                let number = self.env.history.next_message();
                let trial = Transaction {
                    from: Some(from.clone()),
                    number,
                    ..Transaction::default()
                };
                let previous = std::mem::replace(&mut self.tx, trial);
                let decision = self.decide(Stage::Mail, None).await;
                self.tx = previous;
                let decision = decision?;
                self.apply(decision, |s| s.mail(from, params, number))
            }
            Command::Rcpt { to, params } => {
                let decision = self.decide(Stage::Rcpt, Some(&to)).await?;
                self.apply(decision, |s| s.rcpt(to, params))
            }
            Command::Data => {
                let decision = self.decide(Stage::Data, None).await?;
                let mut start = false;
                self.apply(decision, |s| {
                    let reply = s.data_command();
                    start = reply.code == 354;
                    reply
                })?;
                if start {
                    Box::pin(self.receive_message()).await
                } else {
                    Ok(())
                }
            }
            Command::Rset => {
                self.staged(Stage::Rset, None, |s| {
                    s.reset_transaction();
                    Reply::ok()
                })
                .await
            }
            Command::Quit => {
                let decision = self.decide(Stage::Quit, None).await?;
                let hostname = self.env.hostname.clone();
                self.apply(decision, |_| Reply::bye(&hostname))?;
                Err(Ending::Close)
            }
            Command::Noop => {
                self.reply(Reply::ok());
                Ok(())
            }
            Command::Vrfy(_) => {
                self.reply(Reply::cannot_verify());
                Ok(())
            }
            Command::Help(_) => {
                self.reply(Reply::help());
                Ok(())
            }
            Command::StartTls => Box::pin(self.starttls()).await,
            Command::Auth { .. } => {
                let decision = self.decide(Stage::Auth, None).await?;
                match decision {
                    Decision::Normal => self.error(Reply::not_implemented()),
                    other => self.apply(other, |_| Reply::not_implemented()),
                }
            }
            Command::NotImplemented(_) => self.error(Reply::not_implemented()),
            Command::Unknown(verb) => {
                warn!(verb = ?verb, "unknown command");
                self.error(Reply::unknown_command())
            }
            Command::Invalid { verb, reason } => {
                warn!(verb, reason = ?reason, "syntax error");
                self.error(Reply::syntax_error(&reason))
            }
        }
    }

    /// EHLO or HELO through the `ehlo` stage. The HELO pattern of an `ehlo` fault matches the
    /// name being given, as the sender pattern of a `mail` fault matches the sender.
    async fn greeted(&mut self, name: String, esmtp: bool) -> Flow {
        let previous = self.helo.replace(name.clone());
        let decision = self.decide(Stage::Ehlo, None).await;
        self.helo = previous;
        let decision = decision?;
        self.apply(decision, |s| s.ehlo(name, esmtp))
    }

    /// Decides `stage`, then applies the decision to the normal handling in `normal`.
    async fn staged(
        &mut self,
        stage: Stage,
        rcpt: Option<&str>,
        normal: impl FnOnce(&mut Self) -> Reply,
    ) -> Flow {
        let decision = self.decide(stage, rcpt).await?;
        self.apply(decision, normal)
    }

    /// With no fault, `normal` runs and its reply is sent. A fault's positive reply lets the
    /// command take effect but is sent in place of the normal reply; a negative one refuses the
    /// command outright.
    fn apply(&mut self, decision: Decision, normal: impl FnOnce(&mut Self) -> Reply) -> Flow {
        match decision {
            Decision::Normal => {
                let reply = normal(self);
                if reply.code >= 500 && !matches!(reply.code, 550..=554) {
                    self.error(reply)
                } else {
                    self.reply(reply);
                    Ok(())
                }
            }
            Decision::Reply(fault) => {
                if fault.reply.is_positive() {
                    let _ = normal(self);
                }
                self.reply_then(fault)
            }
            Decision::End(ending) => Err(ending),
        }
    }

    fn ehlo(&mut self, name: String, esmtp: bool) -> Reply {
        self.reset_transaction();
        // Set first, so that an `omit_extension` fault with a HELO pattern sees this name.
        self.helo = Some(name.clone());
        let reply = if esmtp {
            let extensions = self.extensions();
            Reply::ehlo(&self.env.hostname, &name, &extensions)
        } else {
            Reply::helo(&self.env.hostname, &name)
        };
        self.esmtp = esmtp;
        self.state = State::Mail;
        reply
    }

    /// The EHLO keywords, less any an `omit_extension` fault that applies now leaves out.
    fn extensions(&self) -> Vec<String> {
        let scenario = &self.env.scenario;
        let mut extensions = vec![
            "PIPELINING".to_string(),
            format!("SIZE {}", scenario.server.max_message_bytes),
            "8BITMIME".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "SMTPUTF8".to_string(),
        ];
        if self.starttls_offered() {
            extensions.push("STARTTLS".to_string());
        }
        let facts = self.facts();
        for fault in scenario.faults_at(Stage::Ehlo) {
            if let FaultKind::OmitExtension(omit) = &fault.kind
                && fault.when.matches(&facts)
            {
                extensions.retain(|line| !omit.hides(line));
            }
        }
        extensions
    }

    fn starttls_offered(&self) -> bool {
        self.env.tls.is_some()
            && self.env.scenario.tls.starttls
            && !self.env.implicit_tls
            && !self.io.as_ref().is_some_and(Stream::is_tls)
    }

    fn mail(&mut self, from: String, params: crate::protocol::MailParams, number: u64) -> Reply {
        match self.state {
            State::Helo | State::Refusing => return Reply::bad_sequence("send HELO/EHLO first"),
            State::Rcpt => return Reply::bad_sequence("nested MAIL command"),
            State::Mail => {}
        }
        if self.env.scenario.tls.required && !self.io.as_ref().is_some_and(Stream::is_tls) {
            return Reply::new(
                530,
                Some(EnhancedCode::new(5, 7, 0)),
                "Must issue a STARTTLS command first",
            );
        }
        if let Some(unknown) = params.unknown.first() {
            return Reply::unsupported_parameter(&unknown.keyword);
        }
        if params.body == Some(BodyType::BinaryMime) {
            return Reply::unsupported_parameter("BODY=BINARYMIME");
        }
        if !from.is_ascii() && !params.smtputf8 {
            return Reply::utf8_address_without_smtputf8();
        }
        let limit = self.env.scenario.server.max_message_bytes;
        if params.size.is_some_and(|size| size > limit) {
            return Reply::message_too_big(limit);
        }
        self.tx = Transaction {
            from: Some(from),
            smtputf8: params.smtputf8,
            number,
            ..Transaction::default()
        };
        self.state = State::Rcpt;
        Reply::sender_ok()
    }

    fn rcpt(&mut self, to: String, params: Vec<crate::protocol::Param>) -> Reply {
        if self.state != State::Rcpt {
            return Reply::bad_sequence("need MAIL command");
        }
        self.tx.rcpt_attempted = true;
        if let Some(param) = params.first() {
            return Reply::unsupported_parameter(&param.keyword);
        }
        if !to.is_ascii() && !self.tx.smtputf8 {
            return Reply::utf8_address_without_smtputf8();
        }
        if self.tx.rcpts.len() >= self.env.scenario.server.max_recipients {
            return Reply::too_many_recipients();
        }
        self.tx.rcpts.push(to);
        Reply::recipient_ok()
    }

    fn data_command(&mut self) -> Reply {
        match self.state {
            State::Rcpt if !self.tx.rcpts.is_empty() => Reply::start_data(),
            State::Rcpt if self.tx.rcpt_attempted => Reply::no_valid_recipients(),
            State::Rcpt => Reply::bad_sequence("need RCPT command"),
            _ => Reply::bad_sequence("need MAIL command"),
        }
    }

    fn reset_transaction(&mut self) {
        self.tx = Transaction::default();
        if matches!(self.state, State::Rcpt) {
            self.state = State::Mail;
        }
    }

    /// Handles STARTTLS: the `starttls` stage, `220 2.0.0`, then the handshake.
    async fn starttls(&mut self) -> Flow {
        let decision = self.decide(Stage::Starttls, None).await?;
        let offered = self.starttls_offered();
        let mut go = false;
        self.apply(decision, |s| {
            if s.io.as_ref().is_some_and(Stream::is_tls) {
                Reply::bad_sequence("TLS already active")
            } else if !offered {
                Reply::not_implemented()
            } else if s.state == State::Helo {
                Reply::bad_sequence("send EHLO first")
            } else {
                go = true;
                Reply::ready_to_start_tls()
            }
        })?;
        if !go {
            return Ok(());
        }
        self.flush().await?;

        // Whatever the client sent after STARTTLS, before the handshake, came in the clear and
        // must not be taken as commands over TLS.
        if !self.rbuf.is_empty() {
            warn!(
                octets = self.rbuf.len(),
                "discarding data pipelined after STARTTLS"
            );
            self.transcript.record(
                Direction::Event,
                format!(
                    "discarded {} octets pipelined after STARTTLS",
                    self.rbuf.len()
                ),
            );
            self.rbuf.clear();
        }
        self.lines = LineReader::new(self.env.scenario.server.max_line_octets);
        self.start_tls().await?;

        // RFC 3207: the client must start over with EHLO.
        self.helo = None;
        self.esmtp = false;
        self.tx = Transaction::default();
        self.state = State::Helo;
        Ok(())
    }

    /// The TLS handshake, through the `tls_handshake` stage's faults.
    async fn start_tls(&mut self) -> Flow {
        match self.decide(Stage::TlsHandshake, None).await? {
            Decision::Normal => {}
            Decision::Reply(fault) => {
                // A reply instead of a handshake: the client reads it as garbage and fails.
                self.reply_then(fault)?;
                self.flush().await?;
                return Err(Ending::Close);
            }
            Decision::End(ending) => return Err(ending),
        }
        let Some(acceptor) = self.env.tls.clone() else {
            return Err(Ending::Close);
        };
        let Some(Stream::Plain(socket)) = self.io.take() else {
            return Err(Ending::Close);
        };
        let shutdown = self.env.shutdown.clone();
        let idle = Duration::from_millis(self.env.scenario.server.idle_timeout_ms);
        let handshake = tokio::select! {
            result = tokio::time::timeout(idle, acceptor.accept(socket)) => result,
            _ = shutdown.cancelled() => return Err(Ending::ClientGone),
        };
        match handshake {
            Ok(Ok(tls)) => {
                let stream = Stream::Tls(Box::new(tls));
                if let Some(info) = stream.tls_info() {
                    debug!(version = %info.version, cipher = %info.cipher, "TLS established");
                    self.transcript.record(
                        Direction::Event,
                        format!("TLS established: {} {}", info.version, info.cipher),
                    );
                    self.transcript.set_tls(info);
                }
                self.io = Some(stream);
                Ok(())
            }
            Ok(Err(e)) => {
                warn!("TLS handshake failed: {e}");
                self.transcript
                    .record(Direction::Event, format!("TLS handshake failed: {e}"));
                Err(Ending::ClientGone)
            }
            Err(_) => {
                self.transcript
                    .record(Direction::Event, "TLS handshake timed out");
                Err(Ending::ClientGone)
            }
        }
    }

    /// Ends the session: writes what is queued, then closes as `ending` says.
    async fn finish(&mut self, ending: Ending) {
        let Some(mut io) = self.io.take() else {
            self.transcript.close("closed during the TLS handshake");
            return;
        };
        match ending {
            Ending::Reset => {
                if !self.wbuf.is_empty() {
                    let _ = io.write_all(&self.wbuf).await;
                    let _ = io.flush().await;
                }
                io.socket().arm_reset();
                self.transcript.close("reset by server (RST)");
            }
            Ending::ClientGone => self.transcript.close("connection ended by the client"),
            Ending::Close | Ending::Fin => {
                if !self.wbuf.is_empty() {
                    self.io = Some(io);
                    let flushed = self.flush().await;
                    io = self.io.take().expect("stream");
                    if flushed.is_err() {
                        self.transcript.close("connection ended by the client");
                        return;
                    }
                }
                // A polite close over TLS sends close_notify; a fault's close does not.
                if ending == Ending::Close && io.is_tls() {
                    let _ = io.shutdown().await;
                } else {
                    let _ = io.socket_mut().shutdown().await;
                }
                drain(&mut io, &self.env.shutdown).await;
                self.transcript.close("closed by server (FIN)");
            }
        }
    }
}

/// Reads and discards until the client closes, so that closing our socket sends a FIN and not
/// an RST for unread data. Bounded by [`CLOSE_GRACE`] and by shutdown.
async fn drain<S: Socket>(io: &mut Stream<S>, shutdown: &CancellationToken) {
    let mut scratch = vec![0u8; 2048];
    let until = tokio::time::Instant::now() + CLOSE_GRACE;
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout_at(until, io.socket_mut().read(&mut scratch)) => r,
            _ = shutdown.cancelled() => return,
        };
        match read {
            Ok(Ok(n)) if n > 0 => continue,
            _ => return,
        }
    }
}

/// The transcript form of a client line: AUTH arguments are hidden.
fn redact(line: &[u8], command: &Command) -> String {
    match command {
        Command::Auth { mechanism, .. } => format!("AUTH {mechanism} <redacted>"),
        _ => {
            let mut text = String::from_utf8_lossy(line).into_owned();
            if text.len() > 256 {
                text.truncate(text.floor_char_boundary(256));
                text.push_str("...");
            }
            text
        }
    }
}

impl<S> Drop for Session<S> {
    fn drop(&mut self) {
        if self.transcript.is_open() {
            self.transcript.close("session ended");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureStore;

    fn env() -> SessionEnv {
        SessionEnv {
            id: 1,
            attempt: 1,
            peer: "127.0.0.1:1".parse().unwrap(),
            hostname: Arc::from("mx.lab.test"),
            scenario: Arc::new(Scenario::default()),
            history: Arc::new(History::new()),
            capture: Arc::new(CaptureStore::new(None, 10)),
            shutdown: CancellationToken::new(),
            tls: None,
            implicit_tls: false,
        }
    }

    /// Every open session keeps this future for as long as it lasts, so its size is most of
    /// what 10,000 stalled sessions cost. The rare, large phases (a command, a message, TLS,
    /// the close) are boxed so as not to count here.
    #[test]
    fn a_waiting_session_keeps_a_small_future() {
        let (server, _client) = tokio::io::duplex(64);
        let future = run(server, env());
        let size = std::mem::size_of_val(&future);
        assert!(size <= 1536, "the session future grew to {size} bytes");
    }
}
