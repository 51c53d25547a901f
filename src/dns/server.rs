//! The DNS server handle: binds UDP and TCP on one port and serves until shutdown.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use super::DnsConfig;
use super::handler::{Handler, Shared};

/// How long a TCP connection may sit without a query before the server closes it.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many responses may wait to be written on one TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;

/// How many fresh ports to try when port 0 is asked for and TCP cannot have UDP's port.
const BIND_ATTEMPTS: usize = 8;

/// A running lab DNS server.
///
/// It serves until the `shutdown` token given to [`start`](Self::start) is cancelled;
/// dropping the handle does not stop it.
pub struct DnsServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl DnsServer {
    /// Binds UDP and TCP on `addr` and serves `config` until `shutdown` is cancelled.
    ///
    /// Both transports share one port, as resolvers expect: UDP is bound first and TCP then
    /// takes the port UDP got. When `addr` has port 0 and that port is taken for TCP, a fresh
    /// port is tried, a few times. A config that does not pass [`DnsConfig::validate`] is an
    /// [`io::ErrorKind::InvalidInput`] error.
    pub async fn start(
        addr: SocketAddr,
        config: DnsConfig,
        shutdown: CancellationToken,
    ) -> io::Result<DnsServer> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let (udp, tcp) = bind(addr).await?;
        let local_addr = udp.local_addr()?;

        let zone = config.zone.clone();
        let fault = config.fault.map(|f| f.name());
        let shared = Arc::new(Shared::new(config, ns_ip(local_addr.ip())));
        let mut server = hickory_server::Server::new(Handler {
            shared: shared.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        let task = tokio::spawn(serve(server, shutdown, local_addr));
        info!(%local_addr, zone, fault, "dns server listening on udp and tcp");

        Ok(DnsServer {
            local_addr,
            shared,
            task,
        })
    }

    /// The address both transports listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The configuration in force.
    pub fn config(&self) -> DnsConfig {
        self.shared.config()
    }

    /// Puts `config` in force; it takes effect for the next query, and the SOA serial moves
    /// on so the change is visible.
    ///
    /// A config that does not pass [`DnsConfig::validate`] is still put in force: every query
    /// then gets SERVFAIL, and the reason is logged at error level. Validate first to catch it.
    pub fn set_config(&self, config: DnsConfig) {
        self.shared.set_config(config);
    }

    /// Waits until the server has stopped, which it does once `shutdown` is cancelled.
    pub async fn stopped(self) {
        if let Err(error) = self.task.await {
            error!(%error, "dns server task failed");
        }
    }
}

impl fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

async fn serve(
    mut server: hickory_server::Server<Handler>,
    shutdown: CancellationToken,
    local_addr: SocketAddr,
) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        result = server.block_until_done() => {
            match result {
                Ok(()) => error!(%local_addr, "dns server stopped before shutdown"),
                Err(error) => error!(%local_addr, %error, "dns server failed"),
            }
            return;
        }
    }
    if let Err(error) = server.shutdown_gracefully().await {
        error!(%local_addr, %error, "dns server did not shut down cleanly");
    }
    debug!(%local_addr, "dns server stopped");
}

async fn bind(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut attempt = 1;
    loop {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind udp {addr}: {e}")))?;
        let udp_addr = udp.local_addr()?;
        match TcpListener::bind(udp_addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e)
                if addr.port() == 0
                    && e.kind() == io::ErrorKind::AddrInUse
                    && attempt < BIND_ATTEMPTS =>
            {
                debug!(%udp_addr, attempt, "tcp port taken; trying another udp port");
                attempt += 1;
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot bind tcp {udp_addr}: {e}"),
                ));
            }
        }
    }
}

/// The address the zone gives its name server: the one it listens on, or loopback when it
/// listens on every address, since the wildcard is not an address anyone can reach.
fn ns_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}
