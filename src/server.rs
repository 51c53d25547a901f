//! The server: listeners, the accept loop, the session limit, and shutdown, all in one place.
//!
//! [`Server::start`] binds the listeners and returns a [`Server`] handle at once; sessions run
//! on tracked tasks that all watch one cancellation token. The SMTP listener follows the
//! scenario's listener mode, which may change while the server runs:
//!
//! - `accept`: a normal listening socket whose connections become sessions;
//! - `refuse`: the port is bound but never listens, so the kernel answers each SYN with an RST
//!   and the client sees "connection refused";
//! - `blackhole`: the socket listens with a backlog of zero and its accept queue is filled by
//!   connections the server makes to itself and never accepts. Linux drops a SYN that arrives
//!   at a listener whose accept queue is full, so the client's SYNs go unanswered and its
//!   connect times out. No root and no firewall rule are needed, only loopback.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream as StdTcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use socket2::{Domain, Protocol, SockAddr, Socket as RawSocket, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::capture::{CaptureStore, Message, Transcript};
use crate::dns::{DnsConfig, DnsServer};
use crate::faults::History;
use crate::protocol::Reply;
use crate::scenario::{DnsSettings, ListenerMode, Scenario, ScenarioError};
use crate::session::{self, SessionEnv};

/// How a server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The scenario in force at the start.
    pub scenario: Scenario,
    /// Where the SMTP listener binds; port 0 picks a free port.
    pub smtp: SocketAddr,
    /// Where the implicit-TLS listener binds, if there is one.
    pub smtps: Option<SocketAddr>,
    /// The name the server gives itself in its greeting and certificates.
    pub hostname: String,
    /// A directory to write each accepted message to, as well as keeping it in memory.
    pub capture_dir: Option<PathBuf>,
    /// The most sessions at once; past it, a connection gets 421 4.7.0 and is closed.
    pub max_sessions: usize,
    /// The most session transcripts kept in memory.
    pub max_transcripts: usize,
    /// The HTTP control API, if it should run.
    pub control: Option<ControlConfig>,
    /// Where the lab DNS server binds. It runs when this is set or when the scenario has a
    /// `[dns]` part (then on 127.0.0.1:0 unless this says otherwise).
    pub dns: Option<SocketAddr>,
}

/// Where the HTTP control API listens and what it asks of callers.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// The address; a non-loopback one needs a token.
    pub addr: SocketAddr,
    /// When set, every request must carry `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            scenario: Scenario::default(),
            smtp: SocketAddr::from(([127, 0, 0, 1], 0)),
            smtps: None,
            hostname: "mx.lab.test".to_string(),
            capture_dir: None,
            max_sessions: 16_384,
            max_transcripts: 1000,
            control: None,
            dns: None,
        }
    }
}

/// What the server has counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Connections accepted on any listener since the server started.
    pub connections: u64,
    /// Connections accepted since the current scenario took effect: the attempt number the
    /// next connection's faults will see, less one.
    pub attempts: u64,
    /// Sessions running now.
    pub active_sessions: u64,
    /// Connections turned away at the session limit.
    pub over_limit: u64,
    /// Messages stored.
    pub messages: u64,
}

#[derive(Default)]
struct AtomicCounters {
    connections: AtomicU64,
    active_sessions: AtomicU64,
    over_limit: AtomicU64,
}

/// The scenario in force and what it remembers; replaced together.
#[derive(Clone)]
struct Active {
    scenario: Arc<Scenario>,
    history: Arc<History>,
    /// Counts the scenarios the server has had, so the listener can say which is in effect.
    generation: u64,
}

impl Active {
    fn new(scenario: Arc<Scenario>, generation: u64) -> Self {
        Self {
            scenario,
            history: Arc::new(History::new()),
            generation,
        }
    }
}

/// What every task of one server shares.
struct Shared {
    hostname: Arc<str>,
    scenario: watch::Sender<Active>,
    /// The generation of the scenario whose listener mode is in effect.
    listener_generation: watch::Sender<u64>,
    capture: Arc<CaptureStore>,
    counters: AtomicCounters,
    sessions: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    tls: RwLock<Option<TlsAcceptor>>,
}

/// A running server. Dropping it shuts the server down; [`Server::shutdown`] does so and waits.
///
/// Everything that reads or steers the running server is on [`ServerHandle`], which `Server`
/// dereferences to and which can be cloned into other tasks.
pub struct Server {
    handle: ServerHandle,
}

/// A cloneable view of a running server: its addresses, its capture, its scenario.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    smtp_addr: SocketAddr,
    smtps_addr: Option<SocketAddr>,
    control_addr: Option<SocketAddr>,
    dns: Option<Arc<DnsServer>>,
}

impl Server {
    /// Starts building a server: by default the `accept` scenario on 127.0.0.1:0.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Binds the listeners and starts serving.
    pub async fn start(config: ServerConfig) -> io::Result<Server> {
        let control = config.control.clone();
        check_hostname(&config.hostname)?;
        let needs_tls = config.smtps.is_some() || config.scenario.needs_tls();
        if needs_tls && let Err(e) = crate::tls::try_catalogue(&config.hostname) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "scenario {:?} needs TLS, but {e}; give a --hostname under .test such as \
                     mx.lab.test",
                    config.scenario.name
                ),
            ));
        }
        let scenario = Arc::new(config.scenario);
        let hostname: Arc<str> = Arc::from(config.hostname.as_str());
        let shared = Arc::new(Shared {
            tls: RwLock::new(tls_acceptor(&hostname, &scenario)),
            hostname,
            scenario: watch::Sender::new(Active::new(scenario, 0)),
            listener_generation: watch::Sender::new(0),
            capture: Arc::new(CaptureStore::new(
                config.capture_dir,
                config.max_transcripts,
            )),
            counters: AtomicCounters::default(),
            sessions: Arc::new(Semaphore::new(config.max_sessions.max(1))),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });

        let smtp = bind(config.smtp)?;
        let smtp_addr = local_addr(&smtp)?;
        let smtps = match config.smtps {
            Some(addr) => {
                let socket = bind(addr)?;
                socket.listen(1024)?;
                Some(socket)
            }
            None => None,
        };
        let smtps_addr = smtps.as_ref().map(local_addr).transpose()?;
        let control_listener = match &control {
            Some(control) => Some(crate::control::bind(control).await?),
            None => None,
        };
        let control_addr = control_listener
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()?;

        let dns_settings = scenario_dns(&shared);
        let dns = match (config.dns, dns_settings) {
            (None, None) => None,
            (addr, settings) => {
                let addr = addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
                let settings = settings.unwrap_or_default();
                let config = dns_config(&settings, &shared.hostname, smtp_addr);
                let server = DnsServer::start(addr, config, shared.shutdown.clone()).await?;
                Some(Arc::new(server))
            }
        };

        let handle = ServerHandle {
            shared: shared.clone(),
            smtp_addr,
            smtps_addr,
            control_addr,
            dns,
        };
        // The first listener mode is in effect before `start` returns, so that a client that
        // connects at once meets the scenario and not a socket that is not listening yet.
        let (ready, listening) = tokio::sync::oneshot::channel();
        shared
            .tracker
            .spawn(smtp_listener(shared.clone(), smtp, smtp_addr, ready));
        listening
            .await
            .map_err(|_| io::Error::other(format!("the SMTP listener on {smtp_addr} failed")))?;
        if let Some(socket) = smtps {
            let listener = TcpListener::from_std(socket.into())?;
            shared
                .tracker
                .spawn(accept_loop(shared.clone(), listener, true));
        }
        if let (Some(listener), Some(control)) = (control_listener, control) {
            let serve = crate::control::serve(listener, handle.clone(), control.token);
            shared.tracker.spawn(serve);
        }
        Ok(Server { handle })
    }

    /// A handle that can be cloned into other tasks.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Stops accepting, tells sessions in progress (421 4.3.2, unless they are stalled), and
    /// waits for every task to finish.
    pub async fn shutdown(self) {
        let shared = self.handle.shared.clone();
        drop(self);
        shared.tracker.close();
        shared.tracker.wait().await;
    }
}

impl std::ops::Deref for Server {
    type Target = ServerHandle;

    fn deref(&self) -> &ServerHandle {
        &self.handle
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shared.shutdown.cancel();
    }
}

impl ServerHandle {
    /// The SMTP listener's address.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp_addr
    }

    /// The implicit-TLS listener's address, if there is one.
    pub fn smtps_addr(&self) -> Option<SocketAddr> {
        self.smtps_addr
    }

    /// The control API's address, if it runs.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// The lab DNS server's address (UDP and TCP), if it runs.
    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.dns.as_ref().map(|d| d.local_addr())
    }

    /// The name the server gives itself.
    pub fn hostname(&self) -> &str {
        &self.shared.hostname
    }

    /// The lab CA certificate, PEM: trust it in the client under test.
    pub fn ca_pem(&self) -> &'static str {
        crate::tls::LAB_CA_PEM
    }

    /// The scenario new sessions get.
    pub fn scenario(&self) -> Arc<Scenario> {
        self.shared.scenario.borrow().scenario.clone()
    }

    /// Replaces the scenario for new sessions; sessions already running keep theirs. Attempt
    /// and message numbers, greylisting and rate limits start afresh, and the lab DNS server
    /// takes the new scenario's zone. A change of listener mode follows within moments, on the
    /// listener's own task; [`switch_scenario`](Self::switch_scenario) waits for it.
    pub fn set_scenario(&self, scenario: Scenario) {
        let scenario = Arc::new(scenario);
        *self.shared.tls.write().expect("tls lock") =
            tls_acceptor(&self.shared.hostname, &scenario);
        info!(scenario = %scenario.name, "scenario replaced");
        let generation = self.shared.scenario.borrow().generation + 1;
        self.shared
            .scenario
            .send_replace(Active::new(scenario, generation));
        if let Some(dns) = &self.dns {
            let settings = self.scenario().dns.clone().unwrap_or_default();
            dns.set_config(dns_config(&settings, &self.shared.hostname, self.smtp_addr));
        }
    }

    /// Replaces the scenario like [`set_scenario`](Self::set_scenario), then waits until the
    /// SMTP listener follows its listener mode, so that the next connection meets it: a switch
    /// to `refuse` is refused from the moment this returns.
    pub async fn switch_scenario(&self, scenario: Scenario) {
        self.set_scenario(scenario);
        let generation = self.shared.scenario.borrow().generation;
        let mut applied = self.shared.listener_generation.subscribe();
        let wait = applied.wait_for(|g| *g >= generation);
        if tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .is_err()
        {
            warn!("the SMTP listener did not follow the new scenario within 5 s");
        }
    }

    /// The capture store.
    pub fn capture(&self) -> &Arc<CaptureStore> {
        &self.shared.capture
    }

    /// Every message stored so far, oldest first.
    pub fn messages(&self) -> Vec<Arc<Message>> {
        self.shared.capture.messages()
    }

    /// Forgets the stored messages and finished transcripts; files on disk stay.
    pub fn clear(&self) {
        self.shared.capture.clear();
    }

    /// Waits until `n` messages are stored; on timeout, returns those stored by then as the
    /// error.
    pub async fn wait_for_messages(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Arc<Message>>, Vec<Arc<Message>>> {
        self.shared.capture.wait_for(n, timeout).await
    }

    /// The transcripts of recent sessions, oldest first.
    pub fn sessions(&self) -> Vec<Transcript> {
        self.shared.capture.sessions()
    }

    /// What the server has counted.
    pub fn counters(&self) -> Counters {
        let c = &self.shared.counters;
        Counters {
            connections: c.connections.load(Ordering::Relaxed),
            attempts: self.shared.scenario.borrow().history.attempts(),
            active_sessions: c.active_sessions.load(Ordering::Relaxed),
            over_limit: c.over_limit.load(Ordering::Relaxed),
            messages: self.shared.capture.len() as u64,
        }
    }

    /// Resolves once shutdown has begun.
    pub async fn shutdown_started(&self) {
        self.shared.shutdown.cancelled().await;
    }
}

fn bind(addr: SocketAddr) -> io::Result<RawSocket> {
    let socket = RawSocket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket
        .bind(&SockAddr::from(addr))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
    Ok(socket)
}

fn local_addr(socket: &RawSocket) -> io::Result<SocketAddr> {
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listener has no IP address"))
}

/// Runs the SMTP listener, following the scenario's listener mode as it changes.
async fn smtp_listener(
    shared: Arc<Shared>,
    socket: RawSocket,
    addr: SocketAddr,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut changes = shared.scenario.subscribe();
    let mut socket = Some(socket);
    let mut ready = Some(ready);
    let applied = shared.listener_generation.clone();
    let mut in_effect = |generation: u64| {
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        applied.send_replace(generation);
    };
    loop {
        let (mode, generation) = {
            let active = changes.borrow_and_update();
            (active.scenario.server.listener, active.generation)
        };
        let raw = match socket.take() {
            Some(s) => s,
            None => match bind(addr) {
                Ok(s) => s,
                Err(e) => {
                    error!("cannot rebind {addr}: {e}");
                    return;
                }
            },
        };
        info!(%addr, mode = mode.name(), "SMTP listener");
        let changed = async {
            loop {
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                let (next, generation) = {
                    let active = changes.borrow();
                    (active.scenario.server.listener, active.generation)
                };
                if next != mode {
                    return;
                }
                // Same mode: the listener already serves the new scenario.
                shared.listener_generation.send_replace(generation);
            }
        };
        match mode {
            ListenerMode::Accept => {
                let listener = match raw
                    .listen(1024)
                    .and_then(|()| TcpListener::from_std(raw.into()))
                {
                    Ok(l) => l,
                    Err(e) => {
                        error!("cannot listen on {addr}: {e}");
                        return;
                    }
                };
                in_effect(generation);
                tokio::select! {
                    _ = accept_loop(shared.clone(), listener, false) => return,
                    _ = changed => {}
                }
            }
            ListenerMode::Refuse => {
                // Bound and silent: holding the socket keeps the port ours.
                in_effect(generation);
                tokio::select! {
                    _ = shared.shutdown.cancelled() => return,
                    _ = changed => {}
                }
                drop(raw);
            }
            ListenerMode::Blackhole => {
                let fillers = match blackhole(&raw, addr).await {
                    Ok(fillers) => fillers,
                    Err(e) => {
                        error!("cannot make {addr} a black hole: {e}");
                        return;
                    }
                };
                debug!(fillers = fillers.len(), "accept queue filled");
                in_effect(generation);
                tokio::select! {
                    _ = shared.shutdown.cancelled() => return,
                    _ = changed => {}
                }
                drop(fillers);
                drop(raw);
            }
        }
    }
}

/// Listens with a zero backlog and fills the accept queue with connections of our own, until a
/// further connection attempt goes unanswered.
async fn blackhole(socket: &RawSocket, addr: SocketAddr) -> io::Result<Vec<StdTcpStream>> {
    socket.listen(0)?;
    let target = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    };
    tokio::task::spawn_blocking(move || {
        let mut fillers = Vec::new();
        for _ in 0..16 {
            match StdTcpStream::connect_timeout(&target, Duration::from_millis(200)) {
                Ok(stream) => fillers.push(stream),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(fillers),
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("the accept queue never filled"))
    })
    .await
    .map_err(io::Error::other)?
}

/// Accepts connections and runs each as a session, until shutdown.
async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, implicit_tls: bool) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shared.shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Running out of file descriptors must not end the server; wait and go on.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let id = shared.counters.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let active = shared.scenario.borrow().clone();
        let attempt = active.history.next_attempt();
        let _ = stream.set_nodelay(true);
        let cap = active.scenario.server.max_sessions;
        let over_cap = cap.is_some_and(|cap| {
            shared.counters.active_sessions.load(Ordering::Relaxed) >= cap as u64
        });
        let permit = match shared.sessions.clone().try_acquire_owned() {
            Ok(permit) if !over_cap => permit,
            _ => {
                shared.counters.over_limit.fetch_add(1, Ordering::Relaxed);
                info!(%peer, "session limit reached; 421 at the greeting");
                shared
                    .tracker
                    .spawn(turn_away(stream, shared.hostname.clone()));
                continue;
            }
        };
        // Counted here, not in the task, so that the next accept already sees this session.
        shared
            .counters
            .active_sessions
            .fetch_add(1, Ordering::Relaxed);
        let env = SessionEnv {
            id,
            attempt,
            peer,
            hostname: shared.hostname.clone(),
            scenario: active.scenario,
            history: active.history,
            capture: shared.capture.clone(),
            shutdown: shared.shutdown.clone(),
            tls: shared.tls.read().expect("tls lock").clone(),
            implicit_tls,
        };
        let span = info_span!("session", id, %peer, tls = implicit_tls);
        let task_shared = shared.clone();
        shared.tracker.spawn(
            async move {
                session::run(stream, env).await;
                task_shared
                    .counters
                    .active_sessions
                    .fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// Answers a connection past the session limit with 421 4.7.0 and closes it.
async fn turn_away(mut stream: TcpStream, hostname: Arc<str>) {
    let mut out = bytes::BytesMut::new();
    Reply::too_many_sessions(&hostname).write_to(&mut out);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

/// The server's name goes into every greeting and certificate: it must be a host name.
fn check_hostname(hostname: &str) -> io::Result<()> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if hostname.len() <= 253 && hostname.split('.').all(label_ok) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid hostname {hostname:?}: expected a host name such as mx.lab.test"),
    ))
}

fn scenario_dns(shared: &Shared) -> Option<DnsSettings> {
    shared.scenario.borrow().scenario.dns.clone()
}

/// The lab DNS server's view of the scenario: its zone leads to the SMTP listener, through
/// the server's own name when that name is in the zone.
fn dns_config(settings: &DnsSettings, hostname: &str, smtp_addr: SocketAddr) -> DnsConfig {
    let ip = match smtp_addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::from([127, 0, 0, 1]),
        ip if ip.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let mut config = DnsConfig::new(settings.zone.clone(), ip).with_fault(settings.fault);
    config.ttl = settings.ttl;
    let hostname = hostname.to_ascii_lowercase();
    let candidate = DnsConfig {
        mx_host: hostname.clone(),
        ..config.clone()
    };
    if hostname.ends_with(&format!(".{}", settings.zone)) && candidate.validate().is_ok() {
        config = candidate;
    }
    config
}

/// The acceptor for the scenario's certificate and protocol versions, or none when the hostname
/// cannot have a lab certificate (the lab CA only signs names under `.test`).
fn tls_acceptor(hostname: &str, scenario: &Scenario) -> Option<TlsAcceptor> {
    match crate::tls::try_catalogue(hostname) {
        Ok(catalogue) => {
            let config = catalogue.server_config(scenario.tls.certificate, scenario.tls.versions);
            Some(TlsAcceptor::from(config))
        }
        Err(e) => {
            warn!("TLS is off: {e}");
            None
        }
    }
}

/// Builds a [`Server`] step by step; see [`Server::builder`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use smtp_fault::Server;
///
/// let server = Server::builder().builtin("mailbox-full")?.start().await?;
/// assert!(server.smtp_addr().ip().is_loopback());
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ServerBuilder {
    config: ServerConfig,
}

impl ServerBuilder {
    /// Uses this scenario, built in code or loaded by the caller.
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.config.scenario = scenario;
        self
    }

    /// Uses the built-in scenario with this name.
    pub fn builtin(self, name: &str) -> Result<Self, ScenarioError> {
        let scenario =
            crate::scenario::builtin(name).ok_or_else(|| ScenarioError::unknown_builtin(name))?;
        Ok(self.scenario(scenario))
    }

    /// Loads the scenario from a TOML file.
    pub fn scenario_file(self, path: impl AsRef<std::path::Path>) -> Result<Self, ScenarioError> {
        Ok(self.scenario(Scenario::from_file(path)?))
    }

    /// Parses the scenario from TOML text.
    pub fn scenario_toml(self, toml: &str) -> Result<Self, ScenarioError> {
        Ok(self.scenario(Scenario::from_toml(toml, "<inline>")?))
    }

    /// Binds the SMTP listener here instead of 127.0.0.1:0.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.smtp = addr;
        self
    }

    /// Adds an implicit-TLS listener.
    pub fn listen_tls(mut self, addr: SocketAddr) -> Self {
        self.config.smtps = Some(addr);
        self
    }

    /// Sets the name the server gives itself (a name under `.test` for TLS).
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.config.hostname = hostname.into();
        self
    }

    /// Also writes each accepted message to this directory.
    pub fn capture_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.capture_dir = Some(dir.into());
        self
    }

    /// Runs the HTTP control API on this address.
    pub fn control(mut self, addr: SocketAddr, token: Option<String>) -> Self {
        self.config.control = Some(ControlConfig { addr, token });
        self
    }

    /// The configuration built so far.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Starts the server on the current tokio runtime.
    pub async fn start(self) -> io::Result<Server> {
        Server::start(self.config).await
    }

    /// Starts the server on a runtime of its own, for tests that have none.
    pub fn start_blocking(self) -> io::Result<crate::BlockingServer> {
        crate::BlockingServer::start(self.config)
    }
}
