//! A server for tests without an async runtime: it brings its own.
//!
//! [`BlockingServer`] runs a [`Server`] on a small tokio runtime that it owns, and offers the
//! same reads and controls as blocking calls. Dropping it shuts the server down and waits.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use std::net::TcpStream;
//!
//! let server = smtp_fault::Server::builder().builtin("accept")?.start_blocking()?;
//! let stream = TcpStream::connect(server.smtp_addr())?;
//! let mut reader = BufReader::new(stream.try_clone()?);
//! let mut greeting = String::new();
//! reader.read_line(&mut greeting)?;
//! assert!(greeting.starts_with("220 "));
//! (&stream).write_all(b"QUIT\r\n")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::capture::{Message, Transcript};
use crate::scenario::Scenario;
use crate::server::{Counters, Server, ServerConfig, ServerHandle};

/// A running server with its own runtime.
pub struct BlockingServer {
    server: Option<Server>,
    handle: ServerHandle,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingServer {
    /// Starts a server on a runtime of its own.
    pub fn start(config: ServerConfig) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("smtp-fault")
            .enable_all()
            .build()?;
        let server = runtime.block_on(Server::start(config))?;
        let handle = server.handle();
        Ok(Self {
            server: Some(server),
            handle,
            runtime: Some(runtime),
        })
    }

    /// The SMTP listener's address.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.handle.smtp_addr()
    }

    /// The implicit-TLS listener's address, if there is one.
    pub fn smtps_addr(&self) -> Option<SocketAddr> {
        self.handle.smtps_addr()
    }

    /// The control API's address, if it runs.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.handle.control_addr()
    }

    /// The lab CA certificate, PEM.
    pub fn ca_pem(&self) -> &'static str {
        self.handle.ca_pem()
    }

    /// Every message stored so far.
    pub fn messages(&self) -> Vec<Arc<Message>> {
        self.handle.messages()
    }

    /// Blocks until `n` messages are stored or `timeout` passes.
    pub fn wait_for_messages(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Arc<Message>>, Vec<Arc<Message>>> {
        let runtime = self.runtime.as_ref().expect("runtime");
        runtime.block_on(self.handle.wait_for_messages(n, timeout))
    }

    /// The transcripts of recent sessions.
    pub fn sessions(&self) -> Vec<Transcript> {
        self.handle.sessions()
    }

    /// What the server has counted.
    pub fn counters(&self) -> Counters {
        self.handle.counters()
    }

    /// Replaces the scenario for new sessions.
    pub fn set_scenario(&self, scenario: Scenario) {
        self.handle.set_scenario(scenario);
    }

    /// Forgets the stored messages.
    pub fn clear(&self) {
        self.handle.clear();
    }

    /// The async handle, for code that has a runtime after all.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }
}

impl Drop for BlockingServer {
    fn drop(&mut self) {
        if let (Some(server), Some(runtime)) = (self.server.take(), self.runtime.take()) {
            runtime.block_on(server.shutdown());
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}
