//! The request handler: checks the request, asks the [`Zone`] and puts its answer on the wire.
//!
//! hickory-server reads and decodes the messages and encodes and sends the responses; this
//! handler only decides what each response holds, or that there is none.

use std::future::Future;
use std::iter;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tracing::{debug, error, info, warn};

use super::zone::{Outcome, Reply, Zone};
use super::{DnsConfig, DnsConfigError};

/// The EDNS version the server speaks.
const EDNS_VERSION: u8 = 0;

/// The configuration in force, shared by the server handle and every request.
pub(super) struct Shared {
    ns_ip: IpAddr,
    current: RwLock<Arc<Current>>,
}

/// One configuration and the zone built from it.
struct Current {
    config: DnsConfig,
    serial: u32,
    zone: Result<Zone, DnsConfigError>,
}

impl Shared {
    /// Serves `config`, with the name server's own address `ns_ip`.
    pub(super) fn new(config: DnsConfig, ns_ip: IpAddr) -> Self {
        let current = Current::new(config, ns_ip, 1);
        Self {
            ns_ip,
            current: RwLock::new(Arc::new(current)),
        }
    }

    /// The configuration in force.
    pub(super) fn config(&self) -> DnsConfig {
        self.current().config.clone()
    }

    /// Puts `config` in force for the next query, with the next SOA serial.
    pub(super) fn set_config(&self, config: DnsConfig) {
        let mut current = self.current.write().expect("dns config lock");
        let serial = current.serial.wrapping_add(1);
        let next = Current::new(config, self.ns_ip, serial);
        match (&next.zone, next.config.fault) {
            (Err(error), _) => error!(%error, "dns config is invalid; every query gets SERVFAIL"),
            (Ok(_), Some(fault)) => info!(fault = fault.name(), "dns fault in force"),
            (Ok(_), None) => info!("dns zone healthy"),
        }
        *current = Arc::new(next);
    }

    fn current(&self) -> Arc<Current> {
        self.current.read().expect("dns config lock").clone()
    }
}

impl Current {
    fn new(config: DnsConfig, ns_ip: IpAddr, serial: u32) -> Self {
        let zone = Zone::new(&config, ns_ip, serial);
        Self {
            config,
            serial,
            zone,
        }
    }
}

/// Answers requests from the configuration in force.
pub(super) struct Handler {
    pub(super) shared: Arc<Shared>,
}

// The trait is declared with `async_trait`; this is the signature that macro gives it, written
// out so the crate does not depend on the macro for one impl.
impl RequestHandler for Handler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: ResponseHandler + 'async_trait,
        T: Time + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.respond(request, response_handle))
    }
}

impl Handler {
    async fn respond<R: ResponseHandler>(&self, request: &Request, handle: R) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let edns = request.edns.as_ref().map(|requested| {
            let mut edns = Edns::new();
            edns.set_max_payload(requested.max_payload().max(512));
            edns.set_version(EDNS_VERSION);
            edns
        });

        let requested_version = request.edns.as_ref().map_or(0, Edns::version);
        let rejection = if requested_version > EDNS_VERSION {
            Some(ResponseCode::BADVERS)
        } else if request.metadata.op_code != OpCode::Query {
            Some(ResponseCode::NotImp)
        } else {
            None
        };
        if let Some(rcode) = rejection {
            debug!(src = %request.src(), %rcode, "dns request rejected");
            let reply = Reply::bare(rcode);
            return send(request, handle, metadata, edns.as_ref(), &reply).await;
        }
        let Ok(info) = request.request_info() else {
            debug!(src = %request.src(), "dns request without exactly one question");
            let reply = Reply::bare(ResponseCode::FormErr);
            return send(request, handle, metadata, edns.as_ref(), &reply).await;
        };
        let query = info.query;
        debug!(
            src = %request.src(),
            protocol = %request.protocol(),
            name = %query.name(),
            qtype = %query.query_type(),
            "dns query",
        );

        let current = self.shared.current();
        let zone = match &current.zone {
            Ok(zone) => zone,
            Err(error) => {
                error!(%error, name = %query.name(), "dns config is invalid; answering SERVFAIL");
                let reply = Reply::bare(ResponseCode::ServFail);
                return send(request, handle, metadata, edns.as_ref(), &reply).await;
            }
        };

        let answer = zone.answer(query);
        let reply = match answer.outcome {
            Outcome::Drop => {
                info!(
                    fault = answer.fault.map(|f| f.name()),
                    name = %query.name(),
                    qtype = %query.query_type(),
                    "dns fault: query dropped without an answer",
                );
                // Nothing is sent; hickory-server only uses this value for its accounting.
                metadata.response_code = ResponseCode::ServFail;
                return ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                });
            }
            Outcome::Reply(reply) => reply,
        };
        if let Some(fault) = answer.fault {
            info!(
                fault = fault.name(),
                name = %query.name(),
                qtype = %query.query_type(),
                rcode = %reply.rcode,
                answers = reply.answers.len(),
                "dns fault answered",
            );
        }
        send(request, handle, metadata, edns.as_ref(), &reply).await
    }
}

async fn send<R: ResponseHandler>(
    request: &Request,
    mut handle: R,
    mut metadata: Metadata,
    edns: Option<&Edns>,
    reply: &Reply,
) -> ResponseInfo {
    metadata.response_code = reply.rcode;
    metadata.authoritative = reply.authoritative;
    let response = MessageResponseBuilder::new(&request.queries, edns).build(
        metadata,
        reply.answers.iter(),
        reply.authorities.iter(),
        iter::empty(),
        reply.additionals.iter(),
    );
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            warn!(%error, src = %request.src(), "cannot send dns response");
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        }
    }
}
