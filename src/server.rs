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
use std::net::{SocketAddr, TcpStream as StdTcpStream};
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
use crate::protocol::Reply;
use crate::scenario::{ListenerMode, Scenario};
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
        }
    }
}

/// What the server has counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Connections accepted on any listener.
    pub connections: u64,
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

/// What every task of one server shares.
struct Shared {
    hostname: Arc<str>,
    scenario: watch::Sender<Arc<Scenario>>,
    capture: Arc<CaptureStore>,
    counters: AtomicCounters,
    sessions: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    tls: RwLock<Option<TlsAcceptor>>,
}

/// A running server. Dropping it shuts the server down.
pub struct Server {
    shared: Arc<Shared>,
    smtp_addr: SocketAddr,
    smtps_addr: Option<SocketAddr>,
}

impl Server {
    /// Binds the listeners and starts serving.
    pub async fn start(config: ServerConfig) -> io::Result<Server> {
        let scenario = Arc::new(config.scenario);
        let hostname: Arc<str> = Arc::from(config.hostname.as_str());
        let shared = Arc::new(Shared {
            tls: RwLock::new(tls_acceptor(&hostname, &scenario)),
            hostname,
            scenario: watch::Sender::new(scenario),
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

        // The first listener mode is in effect before `start` returns, so that a client that
        // connects at once meets the scenario and not a socket that is not listening yet.
        let (ready, listening) = tokio::sync::oneshot::channel();
        let task = smtp_listener(shared.clone(), smtp, smtp_addr, ready);
        shared.tracker.spawn(task);
        listening
            .await
            .map_err(|_| io::Error::other(format!("the SMTP listener on {smtp_addr} failed")))?;
        if let Some(socket) = smtps {
            let listener = TcpListener::from_std(socket.into())?;
            shared
                .tracker
                .spawn(accept_loop(shared.clone(), listener, true));
        }
        Ok(Server {
            shared,
            smtp_addr,
            smtps_addr,
        })
    }

    /// The SMTP listener's address.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp_addr
    }

    /// The implicit-TLS listener's address, if there is one.
    pub fn smtps_addr(&self) -> Option<SocketAddr> {
        self.smtps_addr
    }

    /// The name the server gives itself.
    pub fn hostname(&self) -> &str {
        &self.shared.hostname
    }

    /// The scenario new sessions get.
    pub fn scenario(&self) -> Arc<Scenario> {
        self.shared.scenario.borrow().clone()
    }

    /// Replaces the scenario for new sessions; sessions already running keep theirs. A change
    /// of listener mode takes effect at once.
    pub fn set_scenario(&self, scenario: Scenario) {
        let scenario = Arc::new(scenario);
        *self.shared.tls.write().expect("tls lock") =
            tls_acceptor(&self.shared.hostname, &scenario);
        info!(scenario = %scenario.name, "scenario replaced");
        self.shared.scenario.send_replace(scenario);
    }

    /// The capture store.
    pub fn capture(&self) -> &Arc<CaptureStore> {
        &self.shared.capture
    }

    /// Every message stored so far.
    pub fn messages(&self) -> Vec<Arc<Message>> {
        self.shared.capture.messages()
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
            active_sessions: c.active_sessions.load(Ordering::Relaxed),
            over_limit: c.over_limit.load(Ordering::Relaxed),
            messages: self.shared.capture.messages().len() as u64,
        }
    }

    /// Resolves once shutdown has begun.
    pub async fn shutdown_started(&self) {
        self.shared.shutdown.cancelled().await;
    }

    /// Stops accepting, tells sessions in progress (421 4.3.2, unless they are stalled), and
    /// waits for every task to finish.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        self.shared.tracker.close();
        self.shared.tracker.wait().await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
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
    let mut in_effect = || {
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
    };
    loop {
        let mode = changes.borrow_and_update().server.listener;
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
                if changes.borrow().server.listener != mode {
                    return;
                }
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
                in_effect();
                tokio::select! {
                    _ = accept_loop(shared.clone(), listener, false) => return,
                    _ = changed => {}
                }
            }
            ListenerMode::Refuse => {
                // Bound and silent: holding the socket keeps the port ours.
                in_effect();
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
                in_effect();
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
        let attempt = shared.counters.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = stream.set_nodelay(true);
        let Ok(permit) = shared.sessions.clone().try_acquire_owned() else {
            shared.counters.over_limit.fetch_add(1, Ordering::Relaxed);
            shared
                .tracker
                .spawn(turn_away(stream, shared.hostname.clone()));
            continue;
        };
        let env = SessionEnv {
            id: attempt,
            attempt,
            peer,
            hostname: shared.hostname.clone(),
            scenario: shared.scenario.borrow().clone(),
            capture: shared.capture.clone(),
            shutdown: shared.shutdown.clone(),
            tls: shared.tls.read().expect("tls lock").clone(),
            implicit_tls,
        };
        let span = info_span!("session", id = attempt, %peer, tls = implicit_tls);
        let task_shared = shared.clone();
        shared.tracker.spawn(
            async move {
                task_shared
                    .counters
                    .active_sessions
                    .fetch_add(1, Ordering::Relaxed);
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
