//! In-memory TLS handshakes for the tests: a rustls client and server connected by nothing but
//! byte buffers, so a test sees exactly the error a real rustls client would report.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ConnectionCommon, ServerConfig, ServerConnection};

use super::{TlsVersions, crypto_provider, lab_root_store};

/// How a handshake ended when it did not complete.
#[derive(Debug)]
pub(super) struct Failure {
    /// The first error the client reported, if it reported one.
    pub client: Option<rustls::Error>,
    /// The first error the server reported, if it reported one.
    pub server: Option<rustls::Error>,
}

/// A client configuration that trusts only the committed lab CA and offers `versions`.
pub(super) fn lab_client_config(versions: TlsVersions) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions.protocol_versions())
        .unwrap()
        .with_root_certificates(lab_root_store())
        .with_no_client_auth();
    Arc::new(config)
}

/// Runs a handshake between `client_config`, connecting to `server_name`, and `server_config`,
/// and returns both connections once it has completed.
pub(super) fn handshake(
    client_config: Arc<ClientConfig>,
    server_name: &str,
    server_config: Arc<ServerConfig>,
) -> Result<(ClientConnection, ServerConnection), Box<Failure>> {
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let mut client = ClientConnection::new(client_config, name).unwrap();
    let mut server = ServerConnection::new(server_config).unwrap();
    let mut failure = Failure {
        client: None,
        server: None,
    };

    // Each round moves everything one side has to say to the other. A round in which neither
    // side has anything to say ends the exchange, whether or not the handshake completed.
    loop {
        let to_server = transfer(&mut client, &mut server);
        if failure.server.is_none() {
            failure.server = server.process_new_packets().err();
        }
        let to_client = transfer(&mut server, &mut client);
        if failure.client.is_none() {
            failure.client = client.process_new_packets().err();
        }

        let failed = failure.client.is_some() || failure.server.is_some();
        if !failed && !client.is_handshaking() && !server.is_handshaking() {
            return Ok((client, server));
        }
        if to_server == 0 && to_client == 0 {
            return Err(Box::new(failure));
        }
    }
}

/// Moves every TLS record `from` wants to send into `to`, returning the number of bytes moved.
fn transfer<A, B>(from: &mut ConnectionCommon<A>, to: &mut ConnectionCommon<B>) -> usize {
    let mut moved = 0;
    while from.wants_write() {
        let mut buf = Vec::new();
        if from.write_tls(&mut buf).is_err() || buf.is_empty() {
            break;
        }
        moved += buf.len();

        let mut rest = &buf[..];
        while !rest.is_empty() {
            match to.read_tls(&mut rest) {
                Ok(0) | Err(_) => return moved,
                Ok(_) => {}
            }
        }
    }
    moved
}
