//! The KMIP door: TTLV messages over mutual TLS (port 5696), and over HTTPS (`POST /kmip`).
//!
//! This module is the transport: it frames messages off the stream (8 header bytes, then
//! the announced length, refused beyond the limit before anything is read), bounds how long
//! a connection may idle or trickle, and hands each decoded message to [`ops`]. A message
//! that is not valid TTLV gets a KMIP error response and the connection is closed, since
//! its framing can no longer be trusted. Nothing here decides what a client may do: that is
//! the service's, reached through [`ops`].

mod attribute_ops;
pub mod attrs;
mod certificates;
mod create;
mod crypto;
mod get;
mod lifecycle;
mod locate;
pub mod ops;
mod pairs;
mod query;
mod transparent;
mod wrapping;

use arca_core::Action;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arca_core::access::Door;
use arca_core::model::Principal;
use arca_kmip::message::{error_response, ProtocolVersion, RequestError, LATEST};
use arca_kmip::{Bytes, Failure, Limits};
use arca_service::{RequestMeta, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::KmipConfig;

/// What a connection is allowed.
#[derive(Debug, Clone, Copy)]
pub struct DoorLimits {
    pub ttlv: Limits,
    pub idle: Duration,
    pub read: Duration,
}

impl DoorLimits {
    pub fn from_config(c: &KmipConfig) -> Self {
        DoorLimits {
            ttlv: Limits {
                max_message: c.max_message_bytes.max(1024),
                ..Limits::default()
            },
            idle: Duration::from_secs(c.idle_timeout_secs.max(1)),
            read: Duration::from_secs(c.read_timeout_secs.max(1)),
        }
    }
}

/// Accepts KMIP connections until `stop` changes.
pub async fn accept_loop(
    listener: TcpListener,
    tls: TlsAcceptor,
    svc: Arc<Service>,
    limits: DoorLimits,
    roots: Arc<crate::tls::ClientRoots>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "KMIP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let svc = svc.clone();
        let roots = roots.clone();
        let mut stop_conn = stop.clone();
        conns.spawn(async move {
            let stream = match tokio::time::timeout(limits.read, tls.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "KMIP TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            tokio::select! {
                _ = connection(stream, peer, &svc, limits, &roots) => {}
                _ = stop_conn.changed() => {}
            }
        });
        while conns.try_join_next().is_some() {}
    }
    // In-flight messages finish; idle connections are dropped with their tasks.
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn connection(
    mut stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    peer: SocketAddr,
    svc: &Service,
    limits: DoorLimits,
    roots: &crate::tls::ClientRoots,
) {
    let cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| crate::tls::cert_info(c, roots))
        .map(Arc::new);
    // Who the certificate names, for the records of refusals: one per connection.
    let peer_id = Peer::default();
    loop {
        let mut head = [0u8; 8];
        match tokio::time::timeout(limits.idle, stream.read_exact(&mut head)).await {
            Ok(Ok(_)) => {}
            // Closed, reset, or idle too long.
            _ => return,
        }
        let mut meta = RequestMeta::new(new_request_id(), peer.to_string(), Door::Kmip);
        meta.client_cert = cert.clone();
        let size = match arca_kmip::item_size(&head, &limits.ttlv) {
            Ok(n) => n,
            Err(e) => {
                let resp = refuse(
                    svc,
                    &meta,
                    &peer_id,
                    Failure::invalid_message(e.to_string()),
                )
                .await;
                let _ = stream.write_all(&resp).await;
                let _ = stream.shutdown().await;
                return;
            }
        };
        let mut buf = Bytes::new(vec![0u8; size]);
        buf[..8].copy_from_slice(&head);
        match tokio::time::timeout(limits.read, stream.read_exact(&mut buf[8..])).await {
            Ok(Ok(_)) => {}
            _ => {
                tracing::debug!(%peer, "KMIP message not received in time; connection closed");
                return;
            }
        }
        let (resp, keep) = handle_bytes(svc, meta, &peer_id, &buf, &limits.ttlv).await;
        if stream.write_all(&resp).await.is_err() || stream.flush().await.is_err() || !keep {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Handles one message's bytes: the response bytes, and whether the connection may go on
/// (false after a message that was not valid TTLV).
pub async fn handle_bytes(
    svc: &Service,
    meta: RequestMeta,
    peer: &Peer,
    bytes: &[u8],
    limits: &Limits,
) -> (Bytes, bool) {
    match arca_kmip::decode(bytes, limits) {
        Ok(item) => (
            arca_kmip::encode(&ops::handle(svc, meta, peer, &item).await),
            true,
        ),
        Err(e) => (
            refuse(svc, &meta, peer, Failure::invalid_message(e.to_string())).await,
            false,
        ),
    }
}

/// Answers (and audits) a message that could not be read.
async fn refuse(svc: &Service, meta: &RequestMeta, peer: &Peer, failure: Failure) -> Bytes {
    let principal = peer.principal(svc, meta).await;
    audit_refusal(svc, meta, principal.as_deref(), None, None, &failure).await;
    let err = RequestError {
        version: LATEST,
        failure,
    };
    arca_kmip::encode(&error_response(svc.now().timestamp(), &err))
}

/// The principal a KMIP client's certificate is bound to, as far as the records of its
/// refusals need it. It is resolved lazily, at most once per connection (or per HTTPS
/// request): a successful operation hands over the principal its authentication found,
/// so a client that is never refused costs no lookup here, and one that sends a stream of
/// malformed messages costs one.
#[derive(Default)]
pub struct Peer(std::sync::OnceLock<Option<Arc<Principal>>>);

impl Peer {
    /// The principal of the connection's certificate, or `None` when there is no
    /// certificate or it is bound to nobody (a failure the service records itself).
    pub(crate) async fn principal(
        &self,
        svc: &Service,
        meta: &RequestMeta,
    ) -> Option<Arc<Principal>> {
        if let Some(p) = self.0.get() {
            return p.clone();
        }
        let p = svc.certificate_principal(meta).await;
        let _ = self.0.set(p.clone());
        p
    }

    /// Remembers what an operation's authentication found.
    pub(crate) fn remember(&self, principal: &Arc<Principal>) {
        if self.0.get().is_none() {
            let _ = self.0.set(Some(principal.clone()));
        }
    }
}

/// Records a KMIP refusal that no service operation recorded: a message that could not be
/// read or parsed, a protocol version Arca does not speak, a batch item refused by the door
/// itself (an operation it does not support, a payload it cannot translate). The record
/// is `KmipRequest`, naming the principal when the certificate is bound to one, with what
/// the door could tell: the KMIP operation, the Result Reason and the protocol version.
/// Never the payload: it may carry key material.
pub(crate) async fn audit_refusal(
    svc: &Service,
    meta: &RequestMeta,
    principal: Option<&Principal>,
    operation: Option<u32>,
    version: Option<ProtocolVersion>,
    failure: &Failure,
) {
    use arca_kmip::enums::{operation as op, result_reason as reason};
    let mut detail = serde_json::Map::new();
    if let Some(o) = operation {
        let name = arca_kmip::enum_name(op::ALL, o)
            .map(str::to_string)
            .unwrap_or_else(|| format!("0x{o:08X}"));
        detail.insert("kmip_operation".into(), name.into());
    }
    let reason_name = arca_kmip::enum_name(reason::ALL, failure.reason)
        .map(str::to_string)
        .unwrap_or_else(|| format!("0x{:08X}", failure.reason));
    detail.insert("result_reason".into(), reason_name.into());
    if let Some(v) = version {
        detail.insert("protocol_version".into(), v.to_string().into());
    }
    let message = failure.message.clone();
    let e = match failure.reason {
        reason::AUTHENTICATION_NOT_SUCCESSFUL => arca_core::Error::Unauthenticated { message },
        reason::PERMISSION_DENIED => arca_core::Error::NotPermitted { message },
        reason::OPERATION_NOT_SUPPORTED => arca_core::Error::invalid("operation", message),
        reason::UNSUPPORTED_PROTOCOL_VERSION => {
            arca_core::Error::invalid("protocol_version", message)
        }
        reason::INVALID_MESSAGE => arca_core::Error::invalid("message", message),
        _ => arca_core::Error::invalid("request", message),
    };
    svc.audit_door_refusal(meta, principal, Action::KmipRequest, detail, e)
        .await;
}

fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
