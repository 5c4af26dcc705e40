//! The KMIP door: TTLV messages over mutual TLS (port 5696), and over HTTPS (`POST /kmip`).
//!
//! This module is the transport: it frames messages off the stream (8 header bytes, then
//! the announced length, refused beyond the limit before anything is read), bounds how long
//! a connection may idle or trickle, and hands each decoded message to [`ops`]. A message
//! that is not valid TTLV gets a KMIP error response and the connection is closed, since
//! its framing can no longer be trusted. Nothing here decides what a client may do: that is
//! the service's, reached through [`ops`].

pub mod attrs;
mod crypto;
pub mod ops;
mod pairs;

use arca_core::Action;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arca_core::access::Door;
use arca_kmip::message::{error_response, RequestError, LATEST};
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
                let resp = refuse(svc, &meta, Failure::invalid_message(e.to_string())).await;
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
        let (resp, keep) = handle_bytes(svc, meta, &buf, &limits.ttlv).await;
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
    bytes: &[u8],
    limits: &Limits,
) -> (Bytes, bool) {
    match arca_kmip::decode(bytes, limits) {
        Ok(item) => (
            arca_kmip::encode(&ops::handle(svc, meta, &item).await),
            true,
        ),
        Err(e) => (
            refuse(svc, &meta, Failure::invalid_message(e.to_string())).await,
            false,
        ),
    }
}

/// Answers (and audits) a message that could not be read.
async fn refuse(svc: &Service, meta: &RequestMeta, failure: Failure) -> Bytes {
    let _ = svc
        .audit_refusal(
            meta,
            None,
            Action::KmipRequest,
            arca_core::Error::invalid("message", failure.message.clone()),
        )
        .await;
    let err = RequestError {
        version: LATEST,
        failure,
    };
    arca_kmip::encode(&error_response(svc.now().timestamp(), &err))
}

fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
