//! Starting Arca: open the store, unseal, make the default tenant, load TLS, listen.
//!
//! The HTTPS listener is an accept loop over tokio-rustls and hyper, so that each request
//! carries its connection's facts (peer address now, the client certificate for mTLS later)
//! into the axum router.

use arca_core::Action;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use arca_crypto::SoftwareProvider;
use arca_service::bootstrap::FirstStart;
use arca_service::{Clock, Door, Service, ServiceConfig, SystemClock};
use arca_store::KeyStore;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::Config;
use crate::rest::{self, AppState, ClientCert, PeerAddr};

/// A running server.
pub struct Running {
    /// The address the HTTPS listener is bound to (useful with port 0).
    pub addr: SocketAddr,
    /// The address of the KMIP listener, when KMIP is served.
    pub kmip_addr: Option<SocketAddr>,
    /// The address of the AWS-compatible listener, when it is served.
    pub aws_addr: Option<SocketAddr>,
    /// The dev CA certificate clients must trust, when the dev CA is in use.
    pub ca_cert: Option<PathBuf>,
    /// Set on the first start only: the admin token to show once.
    pub first_start: Option<FirstStart>,
    pub service: Arc<Service>,
    shutdown: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    kmip: Option<tokio::task::JoinHandle<()>>,
    aws: Option<tokio::task::JoinHandle<()>>,
    lifecycle: tokio::task::JoinHandle<()>,
    changes: Option<tokio::task::JoinHandle<()>>,
    checkpoints: tokio::task::JoinHandle<()>,
    retention: Option<tokio::task::JoinHandle<()>>,
    sinks: Vec<tokio::task::JoinHandle<()>>,
    probe: tokio::task::JoinHandle<()>,
    store: Arc<dyn KeyStore>,
    bounds: crate::config::ServerConfig,
    data_dir: PathBuf,
}

/// What a shutdown did not get done within its bounds (`[server] shutdown_grace_secs` and
/// `shutdown_flush_secs`), for the one line an operator reads and for the next start, whose
/// `StartServer` event carries it into the trail.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShutdownReport {
    /// Requests were still running when the grace bound ran out (their connections cut).
    pub requests_cut: bool,
    /// Audit events this process could not store (given up while the store was
    /// unreachable, or still queued when the flush bound ran out).
    pub events_not_stored: u64,
    /// No closing checkpoint was signed although the trail had unsigned events (or could
    /// not be read to say so).
    pub no_closing_checkpoint: bool,
    /// The store's connections were not closed within the flush bound.
    pub store_not_closed: bool,
}

impl ShutdownReport {
    /// True when everything was done within the bounds.
    pub fn complete(&self) -> bool {
        *self == ShutdownReport::default()
    }

    /// The one line that names what was not done.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.events_not_stored > 0 {
            parts.push(format!(
                "{} audit events were not stored",
                self.events_not_stored
            ));
        }
        if self.no_closing_checkpoint {
            parts.push("no closing checkpoint was signed".to_string());
        }
        if self.requests_cut {
            parts.push("requests still in flight at the grace bound were cut".to_string());
        }
        if self.store_not_closed {
            parts.push("the store was not closed".to_string());
        }
        format!("shutdown incomplete: {}", parts.join("; "))
    }
}

/// Where an incomplete shutdown leaves its report for the next start (in the data dir).
const LAST_SHUTDOWN: &str = "last-shutdown-incomplete.json";

impl Running {
    /// Stops accepting at once, lets in-flight requests finish within `[server]
    /// shutdown_grace_secs`, then stores the queued audit events, signs the closing
    /// checkpoint and closes the store within `shutdown_flush_secs`. Past a bound it goes
    /// on without: the report says what was not done (and is kept in the data dir for the
    /// next start's `StartServer` event).
    pub async fn shutdown(self) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        let _ = self.shutdown.send(true);
        let grace_end = tokio::time::Instant::now() + self.bounds.grace();
        let mut listeners: Vec<_> = [Some(self.accept), self.kmip, self.aws]
            .into_iter()
            .flatten()
            .collect();
        for task in &mut listeners {
            if tokio::time::timeout_at(grace_end, &mut *task)
                .await
                .is_err()
            {
                report.requests_cut = true;
            }
        }
        for task in &listeners {
            task.abort();
        }
        self.lifecycle.abort();
        self.checkpoints.abort();
        self.probe.abort();
        if let Some(r) = &self.retention {
            r.abort();
        }
        if let Some(c) = &self.changes {
            c.abort();
        }
        let flush_end = tokio::time::Instant::now() + self.bounds.flush();
        let svc = self.service.clone();
        let closing = tokio::time::timeout_at(flush_end, async {
            svc.record_server_event(Action::StopServer, Default::default())
                .await;
            // Sign the head so that the trail ends on a checkpoint (a cut tail shows).
            svc.checkpoint_audit().await
        })
        .await;
        report.no_closing_checkpoint = match closing {
            Ok(Ok(_)) => false,
            // Sealed: there is no signing key to sign with, and nothing was served.
            Ok(Err(_)) if self.service.is_sealed() => false,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "no audit checkpoint at shutdown");
                true
            }
            Err(_) => true,
        };
        report.events_not_stored = self.service.audit_unsaved();
        for s in &self.sinks {
            s.abort();
        }
        let close_end = flush_end.max(tokio::time::Instant::now() + Duration::from_secs(1));
        report.store_not_closed = tokio::time::timeout_at(close_end, self.store.close())
            .await
            .is_err();
        let file = self.data_dir.join(LAST_SHUTDOWN);
        if !report.complete() {
            match serde_json::to_vec(&report) {
                Ok(b) => {
                    if let Err(e) = std::fs::write(&file, b) {
                        tracing::warn!(file = %file.display(), error = %e, "cannot keep the shutdown report for the next start");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot encode the shutdown report"),
            }
        }
        report
    }
}

/// The report an incomplete shutdown left in `data_dir`, for the `StartServer` event (the
/// file is removed once that event is stored).
fn read_last_shutdown(data_dir: &std::path::Path) -> Option<serde_json::Value> {
    let bytes = std::fs::read(data_dir.join(LAST_SHUTDOWN)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Starts Arca on `cfg`: store, service, dev unseal, default tenant, TLS, listener, tasks.
pub async fn start(cfg: &Config) -> Result<Running> {
    start_with_clock(cfg, Arc::new(SystemClock)).await
}

/// [`start`] with an injected clock, so tests can move time (activation dates, waiting
/// periods, rotation schedules) while every request still goes through real HTTPS.
pub async fn start_with_clock(cfg: &Config, clock: Arc<dyn Clock>) -> Result<Running> {
    let (store, svc) = open(cfg, clock).await?;
    let stored_mode = svc.root_mode().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let pending = cfg.data_dir.join(arca_service::backup::PENDING_RESTORE);
    if pending.exists() {
        tracing::warn!(file = %pending.display(), "a staged restore is applied as soon as the root key is available");
        svc.set_pending_restore(Some(pending));
    }
    let first_start = match (stored_mode.as_str(), cfg.root.mode.as_str()) {
        ("shamir", _) => {
            tracing::warn!(
                "SEALED: the root key is under Shamir custody; custodians unseal with `arca unseal` (POST /v1/sys/unseal)"
            );
            if let Ok(Some(c)) = svc.custody().await {
                if c.threshold < arca_service::custody::MIN_THRESHOLD {
                    tracing::warn!(
                        threshold = c.threshold,
                        "INSECURE: one custodian alone holds the root key (a dev-only threshold); move to 2-of-N with `arca rekey start`"
                    );
                }
            }
            None
        }
        (_, "hsm") => {
            let settings = cfg.root.hsm.settings()?;
            svc.unseal_hsm(&settings)
                .await
                .map_err(|e| anyhow::anyhow!("cannot unseal with the HSM: {e}"))?;
            svc.apply_pending_restore()
                .await
                .map_err(|e| anyhow::anyhow!("the staged restore was not applied: {e}"))?;
            svc.ensure_default_tenant()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
        }
        ("hsm", _) => anyhow::bail!(
            "this data directory's root key is in an HSM: set root.mode = \"hsm\" and [root.hsm]"
        ),
        (_, "dev") => {
            svc.unseal_dev(&cfg.data_dir)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            svc.apply_pending_restore()
                .await
                .map_err(|e| anyhow::anyhow!("the staged restore was not applied: {e}"))?;
            svc.ensure_default_tenant()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
        }
        (_, other) => anyhow::bail!("root.mode must be \"dev\" or \"hsm\", not {other:?}"),
    };

    // The configuration in force is part of the record (it holds no secret: PINs and
    // tokens are never in it), so a change between two starts shows in the trail.
    let mut detail = serde_json::Map::new();
    detail.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    detail.insert("custody".into(), stored_mode.clone().into());
    detail.insert(
        "config".into(),
        serde_json::to_value(cfg).unwrap_or(serde_json::Value::Null),
    );
    let last_shutdown = read_last_shutdown(&cfg.data_dir);
    if let Some(r) = last_shutdown.clone() {
        tracing::warn!(report = %r, "the last shutdown of this node was incomplete; the StartServer event records what it did not do");
        detail.insert("last_shutdown_incomplete".into(), r);
    }
    if svc.record_server_event(Action::StartServer, detail).await && last_shutdown.is_some() {
        // In the trail now: the file has done its work.
        let _ = std::fs::remove_file(cfg.data_dir.join(LAST_SHUTDOWN));
    }
    if !svc.is_sealed() {
        // Makes the audit signing key on a new data dir and vouches for what start wrote.
        svc.checkpoint_audit()
            .await
            .map_err(|e| anyhow::anyhow!("cannot sign the audit trail: {e}"))?;
    }

    cfg.validate_delegated_doors()?;
    let (tls, ca_cert) = crate::tls::server_config(cfg)?;
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let app = rest::router(Arc::new(AppState {
        svc: svc.clone(),
        max_body_bytes: cfg.http.max_body_bytes,
        request_timeout: Duration::from_secs(cfg.http.request_timeout_secs.max(1)),
        metrics_unauthenticated: cfg.metrics.unauthenticated,
        data_dir: cfg.data_dir.clone(),
        console: cfg.console.enabled,
        client_certificates: cfg.tls.client_ca.is_some(),
        dke: cfg.dke.clone(),
        cse: cfg.cse.clone(),
    }));
    let (tx, rx) = watch::channel(false);
    let roots = Arc::new(crate::tls::ClientRoots::from_config(cfg)?);
    let accept = tokio::spawn(accept_loop(
        listener,
        TlsAcceptor::from(tls.clone()),
        app,
        (svc.clone(), Door::Rest),
        roots.clone(),
        rx.clone(),
    ));
    let (aws_addr, aws) = if cfg.aws.enabled {
        for x in &cfg.aws.xks {
            x.validate()?;
        }
        let l = TcpListener::bind(&cfg.aws.listen)
            .await
            .with_context(|| format!("cannot listen for the AWS API on {}", cfg.aws.listen))?;
        let a = l.local_addr()?;
        let door = crate::aws::router(Arc::new(crate::aws::AwsDoor {
            svc: svc.clone(),
            region: cfg.aws.region.clone(),
            max_body_bytes: cfg.http.max_body_bytes,
            xks: cfg
                .aws
                .xks
                .iter()
                .map(|x| (x.path_prefix.clone(), x.tenant.clone()))
                .collect(),
        }));
        tracing::info!(addr = %a, region = %cfg.aws.region, "Arca is serving the AWS KMS API");
        let task = tokio::spawn(accept_loop(
            l,
            TlsAcceptor::from(tls),
            door,
            (svc.clone(), Door::Aws),
            roots.clone(),
            rx.clone(),
        ));
        (Some(a), Some(task))
    } else {
        (None, None)
    };
    let (kmip_addr, kmip) = match crate::tls::kmip_server_config(cfg)? {
        Some(kmip_tls) if cfg.kmip.enabled => {
            let l = TcpListener::bind(&cfg.kmip.listen)
                .await
                .with_context(|| format!("cannot listen for KMIP on {}", cfg.kmip.listen))?;
            let a = l.local_addr()?;
            tracing::info!(addr = %a, "Arca is serving KMIP (TTLV over mutual TLS)");
            let task = tokio::spawn(crate::kmip::accept_loop(
                l,
                TlsAcceptor::from(kmip_tls),
                svc.clone(),
                crate::kmip::DoorLimits::from_config(&cfg.kmip),
                roots.clone(),
                rx.clone(),
            ));
            (Some(a), Some(task))
        }
        _ => {
            if cfg.kmip.enabled {
                tracing::info!("KMIP is off: it needs tls.client_ca (KMIP clients authenticate by certificate)");
            }
            (None, None)
        }
    };
    let changes = svc.spawn_change_feed();
    let probe = svc.spawn_store_probe();
    let lifecycle = svc.spawn_lifecycle_task();
    let checkpoints = svc.spawn_checkpoint_task(
        cfg.audit.checkpoint_every_events.max(1),
        cfg.audit.checkpoint_interval_secs.max(1),
    );
    let retention = svc.spawn_retention_task();
    let sinks = crate::sinks::spawn_all(&cfg.audit.sinks, &svc)?;
    tracing::info!(%addr, "Arca is serving HTTPS");
    Ok(Running {
        addr,
        kmip_addr,
        aws_addr,
        ca_cert,
        first_start,
        service: svc,
        shutdown: tx,
        accept,
        kmip,
        aws,
        lifecycle,
        checkpoints,
        retention,
        changes,
        sinks,
        probe,
        store,
        bounds: cfg.server.clone(),
        data_dir: cfg.data_dir.clone(),
    })
}

/// Opens the data directory: creates it (mode 0700), checks the configuration, opens the
/// store and builds the service, still sealed.
async fn open(cfg: &Config, clock: Arc<dyn Clock>) -> Result<(Arc<dyn KeyStore>, Arc<Service>)> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data dir {}", cfg.data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&cfg.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    cfg.service
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let store = arca_store::open(cfg.store.url.as_deref(), &cfg.data_dir.join("arca.db"))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(store = %store.describe(), "store open");
    let svc = Arc::new(Service::new(
        store.clone(),
        Arc::new(SoftwareProvider),
        clock,
        ServiceConfig {
            audit_durability: cfg.audit.durability,
            audit_write_timeout: std::time::Duration::from_secs(
                cfg.audit.write_timeout_secs.max(1),
            ),
            audit_retention: cfg.audit.retention(&cfg.data_dir),
            ..cfg.service.clone()
        },
    ));
    if cfg.audit.durability == arca_service::audit::Durability::Async {
        tracing::warn!("audit.durability = \"async\": answers do not wait for their audit events; a crash loses the events not yet written");
    }
    Ok((store, svc))
}

/// `arca init`: a new data directory whose root key is split among custodians (Shamir, M
/// of N), with the first tenants and their credentials made while the root key is still in
/// memory. Returns each custodian's share (to hand over once) and what the bootstrap made.
/// A threshold below 2 is refused unless `dev_single_custodian` (a throwaway dev server
/// whose one custodian holds the root key alone).
pub async fn init_custody(
    cfg: &Config,
    threshold: u8,
    custodians: Vec<arca_service::custody::CustodianSpec>,
    dev_single_custodian: bool,
) -> Result<(Vec<arca_service::custody::IssuedShare>, Option<FirstStart>)> {
    let (store, svc) = open(cfg, Arc::new(SystemClock)).await?;
    let shares = svc
        .init_shamir(threshold, custodians, dev_single_custodian)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let first = svc
        .ensure_default_tenant()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    svc.flush_audit().await;
    svc.seal_now();
    store.close().await;
    Ok((shares, first))
}

/// Records a request that HTTP itself could not parse (bytes beyond ASCII in the request
/// line, a broken or oversized header block): hyper answers it `400` and closes the
/// connection before any door sees it, so the door's own check never runs. Nothing of the
/// request was read but the connection's client certificate, which names the principal
/// when it is bound to one.
async fn audit_unparsed(
    svc: &Service,
    door: Door,
    peer: SocketAddr,
    cert: Option<Arc<arca_core::access::CertInfo>>,
    e: &hyper::Error,
) {
    let mut meta = arca_service::RequestMeta::new(
        uuid::Uuid::now_v7().to_string(),
        peer.ip().to_string(),
        door,
    );
    meta.client_cert = cert;
    let principal = svc.certificate_principal(&meta).await;
    let (status, what) = if e.is_parse_too_large() {
        (431u16, "the request's header block is too large")
    } else {
        (400, "the request could not be parsed as HTTP/1.1")
    };
    let mut detail = serde_json::Map::new();
    detail.insert("status".into(), status.into());
    let operation = match door {
        Door::Aws => arca_core::Action::AwsRequest,
        _ => arca_core::Action::HttpRequest,
    };
    svc.audit_door_refusal(
        &meta,
        principal.as_deref(),
        operation,
        detail,
        arca_core::Error::invalid("request", what),
    )
    .await;
}

async fn accept_loop(
    listener: TcpListener,
    tls: TlsAcceptor,
    app: axum::Router,
    (svc, door): (Arc<Service>, Door),
    roots: Arc<crate::tls::ClientRoots>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let app = app.clone();
        let svc = svc.clone();
        let roots = roots.clone();
        let mut stop_conn = stop.clone();
        conns.spawn(async move {
            let stream = match tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            // The verified client certificate (if any), once per connection.
            let cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| crate::tls::cert_info(c, &roots))
                .map(|c| ClientCert(Arc::new(c)));
            let cert_info = cert.as_ref().map(|c| c.0.clone());
            let handler = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(PeerAddr(peer));
                    if let Some(c) = &cert {
                        req.extensions_mut().insert(c.clone());
                    }
                    app.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), handler);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                        if e.is_parse() || e.is_parse_too_large() {
                            audit_unparsed(&svc, door, peer, cert_info, &e).await;
                        }
                    }
                }
                _ = stop_conn.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
    while conns.join_next().await.is_some() {}
}
