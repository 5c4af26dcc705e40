//! The Arca key service: every operation that any door (REST, KMIP, AWS-compatible) offers,
//! in one place, in one order: authenticate -> authorize -> lifecycle check -> crypto ->
//! persist -> audit.
//!
//! Doors decode their protocol into the types of [`api`], call a method of [`Service`] with
//! a [`Caller`], and encode the result or map the [`arca_core::Error`] (by its typed
//! [`arca_core::Fault`] and [`arca_core::StateDetail`], never by its text). No business rule
//! lives in a door, and no door reads the store or calls the crypto library.
//!
//! # Rooms
//!
//! `Service` is one type; its methods live in the room that owns their state, one file each:
//!
//! | room | file | what it owns |
//! |---|---|---|
//! | keys and versions | `keys.rs` | create (and key pairs), describe, list, update, rotate, the lifecycle transitions, aliases, history |
//! | crypto operations | `crypto_ops.rs` | encrypt, decrypt, re-encrypt, data keys, sign, verify, MAC, raw modes, exports |
//! | key transfer | `byok.rs`, `encoding.rs` | import parameters and wrapped import, transfer to clouds, key-material forms |
//! | access | `policies.rs`, `grants.rs`, `approvals.rs` | key policies, grants, the M-of-N quorum gate |
//! | identity | `identity.rs`, `bindings.rs`, `auth.rs`, `aws_auth.rs`, `sessions.rs`, `certs.rs` | tenants, principals, API tokens, certificate and JWT bindings, trust anchors, SigV4 credentials, sessions |
//! | custody | `custody.rs`, `bootstrap.rs`, `backup.rs` | the root key (dev, Shamir, HSM), seal and unseal, rekey, backup and restore |
//! | audit | `audit.rs`, `trail.rs`, `follow.rs`, `retention.rs` | the audit writer, the chain and its checkpoints, reports, verification, sinks' reading, archived segments and pruning |
//! | background | `tasks.rs` | the lifecycle task (due transitions, rotations, destructions), the retention task and the change feed |
//!
//! Every operation runs through `Service::audited` (or `audited_as` when no caller is
//! authenticated): authorization, the approval gate and the record of the result, allowed
//! or refused, are never left to the operation to remember. The cryptography of a key is
//! done by the [`CryptoProvider`] of its protection level, chosen in one place
//! (`Service::provider`).

use arca_core::Action;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use arca_core::access::Door;
use arca_core::access::{CertInfo, Decision, RequestFacts};
use arca_core::audit::AuditEvent;
use arca_core::model::{Key, KeyVersion, Principal, ProtectionLevel};
use arca_core::names::KeyRef;
use arca_core::{Error, Result, StateDetail};
use arca_crypto::{CryptoProvider, KeyHandle, KeyMaterial, RootOfTrust};
use arca_store::KeyStore;
use uuid::Uuid;
use zeroize::Zeroizing;

pub mod api;
mod approvals;
pub mod audit;
pub mod auth;
pub mod aws_auth;
pub mod backup;
mod bindings;
pub mod bootstrap;
pub mod byok;
pub mod cache;
pub mod certs;
pub mod clock;
pub mod custody;
mod encoding;
pub mod follow;
pub mod grants;
mod identity;
pub mod kacls;
pub(crate) mod keys;
pub mod limits;
pub mod metrics;
mod policies;
pub mod retention;
pub mod sessions;
pub use keys::LifecycleAction;
mod crypto_ops;
pub mod delegated;
mod tasks;
pub mod trail;
mod usage_limits;

pub use auth::IssuedToken;
pub use cache::KeyEntry;
pub use clock::{Clock, ManualClock, SystemClock};
pub use identity::SYSTEM_TENANT;
pub use limits::LimitsConfig;
pub use sessions::JwtIssuer;

/// How often the store probe checks the store ([`Service::spawn_store_probe`]).
pub const STORE_PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long the store probe (and `/readyz`) waits for the store to answer.
pub const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Server-wide values sealed by the root key, re-wrapped when the root key rotates.
pub(crate) const ROOT_WRAPPED_META: [&str; 2] = [sessions::SESSION_KEY_META, trail::AUDIT_KEY_META];

/// Settings of the service (the `[service]` table of the configuration file).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// Whether callers may import plaintext key material.
    pub allow_plaintext_import: bool,
    /// Most keys (and tokens) held in the in-memory caches.
    pub cache_capacity: usize,
    /// Seconds a cached key or token is trusted before it is read again.
    pub cache_ttl_secs: u64,
    /// Largest plaintext accepted by encrypt, and message by sign and MAC, in bytes.
    pub max_plaintext_bytes: usize,
    /// Seconds between runs of the lifecycle task (dates, destruction, rotation).
    pub lifecycle_interval_secs: u64,
    /// Lifetime of a session access token, in seconds (default 300).
    pub session_ttl_secs: u64,
    /// Lifetime of a session's refresh token, in seconds (default 8 h).
    pub refresh_ttl_secs: u64,
    /// Seconds a client may go on using an object whose material it was given before it
    /// must ask again (KMIP's Lease Time, granted by Get and Obtain Lease; default 3600).
    pub lease_time_secs: u32,
    /// Rate limits and authentication back-off.
    pub limits: limits::LimitsConfig,
    /// Issuers whose JWTs are accepted as credentials.
    pub jwt_issuers: Vec<sessions::JwtIssuer>,
    /// Whether an answer waits for its audit event to be committed (`[audit] durability`,
    /// set by the server from that table, not from `[service]`).
    #[serde(skip)]
    pub audit_durability: audit::Durability,
    /// How long a request waits for its audit event to be stored before it is refused
    /// (503 `unavailable`), and how long the writer keeps trying one batch (`[audit]
    /// write_timeout_secs`; set by the server).
    #[serde(skip, default = "audit::default_write_timeout")]
    pub audit_write_timeout: Duration,
    /// Where segments of the trail are archived and when they are archived and pruned
    /// (`[audit] archive_dir`, `archive_interval_secs`, `prune_after_secs`, set by the
    /// server from that table).
    #[serde(skip)]
    pub audit_retention: retention::RetentionConfig,
}

impl ServiceConfig {
    /// Checks what serde cannot: a JWT issuer needs exactly one JWKS source, and a JWKS URL
    /// must be HTTPS (plain HTTP only to this machine, for tests and sidecars), since
    /// whoever can change the JWKS in transit can sign in as anyone.
    pub fn validate(&self) -> Result<()> {
        for (i, j) in self.jwt_issuers.iter().enumerate() {
            let f = |x: &str| format!("service.jwt_issuers[{i}].{x}");
            match (&j.jwks_file, &j.jwks_url) {
                (Some(_), None) => {}
                (None, Some(u)) => {
                    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                        .iter()
                        .any(|p| {
                            u.starts_with(&format!("{p}:")) || u.starts_with(&format!("{p}/"))
                        });
                    if !u.starts_with("https://") && !loopback {
                        return Err(Error::invalid(
                            f("jwks_url"),
                            "must be an https:// URL (http:// only to 127.0.0.1 or localhost)",
                        ));
                    }
                }
                _ => {
                    return Err(Error::invalid(
                        f("jwks_file"),
                        "set exactly one of jwks_file and jwks_url",
                    ))
                }
            }
            if j.issuer.is_empty() || j.audience.is_empty() {
                return Err(Error::invalid(
                    f("issuer"),
                    "issuer and audience must be set",
                ));
            }
            if let Some(a) = j.algorithms.iter().find(|a| {
                ![
                    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
                ]
                .contains(&a.as_str())
            }) {
                return Err(Error::invalid(
                    f("algorithms"),
                    format!("{a:?} is not an accepted JWT algorithm (HMAC and none never are)"),
                ));
            }
        }
        Ok(())
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            allow_plaintext_import: true,
            cache_capacity: 10_000,
            cache_ttl_secs: 30,
            max_plaintext_bytes: 64 * 1024,
            lifecycle_interval_secs: 10,
            session_ttl_secs: 300,
            refresh_ttl_secs: 8 * 3600,
            lease_time_secs: 3600,
            limits: Default::default(),
            jwt_issuers: Vec::new(),
            audit_durability: audit::Durability::Sync,
            audit_write_timeout: audit::DEFAULT_WRITE_TIMEOUT,
            audit_retention: Default::default(),
        }
    }
}

/// Facts about a request that are known before authentication.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    /// The client's address (`ip:port` or `ip`).
    pub source: String,
    pub door: Door,
    /// The verified client certificate of the connection, if the client sent one.
    pub client_cert: Option<Arc<CertInfo>>,
    /// When the request arrived (for the latency metric).
    pub started: std::time::Instant,
    /// Set once the service has recorded this request's outcome in the audit trail. A door
    /// reads it after answering: a refusal that never reached an operation (an unknown
    /// route, a framing error, a body too large) is then recorded by the door, so that
    /// every request, allowed or refused, leaves a record.
    pub audited: Arc<std::sync::atomic::AtomicBool>,
}

/// The longest client log message (KMIP Log) kept, in bytes.
pub const MAX_LOG_MESSAGE: usize = 4096;

impl RequestMeta {
    /// Meta for a request without a client certificate.
    pub fn new(request_id: impl Into<String>, source: impl Into<String>, door: Door) -> Self {
        RequestMeta {
            request_id: request_id.into(),
            source: source.into(),
            door,
            client_cert: None,
            started: std::time::Instant::now(),
            audited: Arc::default(),
        }
    }

    /// True once the service has recorded this request's outcome.
    pub fn was_audited(&self) -> bool {
        self.audited.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The client's IP address, when the source is one.
    pub fn source_ip(&self) -> Option<std::net::IpAddr> {
        self.source
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .or_else(|_| self.source.parse())
            .ok()
    }
}

/// How a caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API token, by its public id.
    ApiToken(String),
    /// A session access token, by session id.
    Session(Uuid),
    /// A client certificate, by SHA-256 fingerprint.
    Certificate(String),
    /// A JWT from a configured issuer: the issuer, and when the token expires.
    Jwt(String, Option<chrono::DateTime<chrono::Utc>>),
    /// An AWS-style access key pair (SigV4), by access key id.
    AwsAccessKey(String),
    /// None: a delegated door's protocol call that carries no credential (Microsoft DKE's
    /// public-key fetch, Google's KACLS `status`), made as the door's configured principal.
    /// Only [`Service::delegated_public_key`] and [`Service::delegated_query`] make a
    /// caller with it.
    DoorDefault(&'static str),
}

impl Credential {
    /// The kind, for audit and `whoami`.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ApiToken(_) => "api_token",
            Credential::Session(_) => "session",
            Credential::Certificate(_) => "certificate",
            Credential::Jwt(..) => "jwt",
            Credential::AwsAccessKey(_) => "aws_access_key",
            Credential::DoorDefault(_) => "none",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    pub meta: RequestMeta,
    pub credential: Credential,
    /// Set only while the service executes an approved request on its requester's behalf.
    pub(crate) approval: Option<Uuid>,
    /// The end user a delegated door acts for (the email of a Microsoft Entra or Google
    /// Workspace user): the audit trail names them beside the door's principal.
    pub(crate) end_user: Option<String>,
    /// The provider's resource the end user acts on (a Google Workspace CSE document's
    /// `resource_name`), named in the record too.
    pub(crate) resource: Option<String>,
    /// The reason a delegated door's client gave for the request (Google CSE's `reason`),
    /// kept to [`MAX_REASON_NOTE`] bytes and named in the record.
    pub(crate) reason: Option<String>,
    /// What else a door's request names for the trail (Google CSE's `delegated_to`).
    pub(crate) notes: Vec<(&'static str, String)>,
}

/// The most of a client's `reason` an audit record keeps (Google CSE's limit for it).
pub const MAX_REASON_NOTE: usize = 1024;

impl Caller {
    /// The tenant every lookup of this caller is confined to.
    pub fn tenant(&self) -> Uuid {
        self.principal.tenant_id
    }
    /// Records the reason the end user's client gave for this request in every record the
    /// request writes (cut to [`MAX_REASON_NOTE`] bytes at a character boundary; an empty
    /// reason is not recorded).
    pub fn note_reason(&mut self, reason: &str) {
        if reason.is_empty() {
            return;
        }
        let mut end = reason.len().min(MAX_REASON_NOTE);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        self.reason = Some(reason[..end].to_string());
    }
    /// Names `value` as `key` in every record this request writes: what a door's protocol
    /// says of the request that the trail must keep (Google CSE's `delegated_to`). `key`
    /// is one of the door's own, never one the service writes.
    pub fn note(&mut self, key: &'static str, value: String) {
        self.notes.push((key, value));
    }
    /// Adds what the audit trail says of the caller beyond its principal.
    pub(crate) fn annotate(&self, note: &mut Note) {
        note.set("credential", self.credential.kind());
        if let Some(a) = self.approval {
            note.set("approval_id", a.to_string());
        }
        if let Some(u) = &self.end_user {
            note.set("end_user", u.clone());
        }
        if let Some(r) = &self.resource {
            note.set("resource", r.clone());
        }
        if let Some(r) = &self.reason {
            note.set("reason", r.clone());
        }
        for (k, v) in &self.notes {
            note.set(k, v.clone());
        }
    }
    /// The end user a delegated door acts for, if this caller is one.
    pub fn end_user(&self) -> Option<&str> {
        self.end_user.as_deref()
    }
    /// The actor name written to history and audit.
    pub fn actor(&self) -> String {
        format!("{}:{}", self.principal.name, self.principal.id)
    }
}

/// On whose behalf a change is made, for its audit event.
pub enum Actor<'a> {
    Caller(&'a Caller),
    /// The server itself (first start, background tasks), with the meta it records.
    Server(&'a RequestMeta),
}

/// What an operation tells the audit trail beside its outcome.
#[derive(Debug, Default, Clone)]
pub(crate) struct Note {
    pub key_id: Option<Uuid>,
    pub key_version: Option<u32>,
    /// Set once the request's change was committed together with its event.
    pub committed: bool,
    /// The tenant the record belongs to when there is no caller (the lifecycle task).
    pub tenant_id: Option<Uuid>,
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl Note {
    /// A note holding one field, for the event a change carries with it (see
    /// [`Service::change_event`]): built in one expression rather than from an empty
    /// note filled line by line. An operation's own record starts from the note that
    /// [`Service::audited`] hands it. More fields with [`Note::and`].
    pub fn with(k: &str, v: impl Into<serde_json::Value>) -> Self {
        Note::default().and(k, v)
    }
    /// This note, saying one more thing (see [`Note::with`]).
    pub fn and(mut self, k: &str, v: impl Into<serde_json::Value>) -> Self {
        self.set(k, v);
        self
    }
    /// A note on a key for an event written without a caller (a background task): with
    /// no principal to say whose it is, the record takes its tenant from the key.
    pub fn for_key(key: &Key) -> Self {
        Note {
            key_id: Some(key.id),
            tenant_id: Some(key.tenant_id),
            ..Default::default()
        }
    }
    pub fn key(&mut self, id: Uuid) {
        self.key_id = Some(id);
    }
    pub fn set(&mut self, k: &str, v: impl Into<serde_json::Value>) {
        self.detail.insert(k.to_string(), v.into());
    }
}

/// What a ready server reports about itself (see [`Service::readiness`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Readiness {
    /// The store, as it describes itself (its kind and where it is, no credentials).
    pub store: String,
    /// The root-of-trust mode the store records: `dev`, `shamir` or `hsm`.
    pub root: String,
    /// The crypto providers in use ([`Service::crypto_name`]).
    pub crypto: String,
}

/// The key service.
pub struct Service {
    store: Arc<dyn KeyStore>,
    crypto: Arc<dyn CryptoProvider>,
    root: RwLock<Option<Arc<dyn RootOfTrust>>>,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
    cache: cache::Caches,
    audit: audit::AuditWriter,
    limits: limits::Limits,
    session_key: RwLock<Option<Arc<sessions::SessionKey>>>,
    metrics: metrics::Metrics,
    /// The provider of each protection level a key may have: SOFTWARE always, HSM once the
    /// root of trust is an HSM. A key's provider is chosen by its level in one place
    /// ([`Service::provider`]); nothing else in the service asks which level a key has.
    providers: RwLock<Vec<(ProtectionLevel, Arc<dyn CryptoProvider>)>>,
    /// A staged restore waiting for the root key.
    pending_restore: std::sync::Mutex<Option<std::path::PathBuf>>,
    /// The audit signing key while unsealed.
    audit_signer: RwLock<Option<Arc<aws_lc_rs::signature::Ed25519KeyPair>>>,
    jwks: sessions::JwksCache,
    /// Shares submitted towards the current unseal (Shamir custody), in memory only.
    unseal_progress: std::sync::Mutex<Vec<arca_crypto::shamir::Share>>,
    /// The rekey waiting for the current custodians' shares, and the last one completed
    /// (memory only: forgotten on seal and restart).
    rekey: std::sync::Mutex<custody::RekeySlot>,
    /// Archiving and pruning take turns in this process (nodes sharing a store take turns
    /// through the retention lease and the store's checks).
    retention: tokio::sync::Mutex<()>,
}

impl Service {
    /// Builds a service over its providers. Must run inside a Tokio runtime (it starts the
    /// audit writer). The service is sealed until [`Service::unseal_with`] gives it a root.
    pub fn new(
        store: Arc<dyn KeyStore>,
        crypto: Arc<dyn CryptoProvider>,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> Self {
        let metrics = metrics::Metrics::new();
        let cache = cache::Caches::new(
            config.cache_capacity,
            Duration::from_secs(config.cache_ttl_secs),
            &metrics,
        );
        let audit = audit::AuditWriter::start(store.clone(), 65_536, config.audit_write_timeout);
        Service {
            providers: RwLock::new(vec![(ProtectionLevel::Software, crypto.clone())]),
            store,
            crypto,
            root: RwLock::new(None),
            clock,
            limits: limits::Limits::new(&config.limits),
            config,
            cache,
            audit,
            session_key: RwLock::new(None),
            audit_signer: RwLock::new(None),
            pending_restore: std::sync::Mutex::new(None),
            metrics,
            jwks: Default::default(),
            unseal_progress: std::sync::Mutex::new(Vec::new()),
            rekey: std::sync::Mutex::new(Default::default()),
            retention: tokio::sync::Mutex::new(()),
        }
    }

    /// Installs the root of trust: the service can now unwrap tenant KEKs.
    pub fn unseal_with(&self, root: Arc<dyn RootOfTrust>) {
        tracing::info!(root = %root.describe(), "root of trust installed; service unsealed");
        *self.root.write().unwrap_or_else(|e| e.into_inner()) = Some(root);
    }

    /// True when no root key is in memory.
    pub fn is_sealed(&self) -> bool {
        self.root
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// The store, for start-up wiring and tests that inspect what was written. Doors ask the
    /// service ([`Service::readiness`], [`Service::trail_follower`]), never the store.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    /// Whether a request could be served now: the root key is in memory and the store is
    /// reachable, as the store probe ([`Service::spawn_store_probe`]) and the audit writer
    /// last found it. What `/readyz` and XKS health report; a load balancer takes a node
    /// whose answer is an error out of rotation.
    pub async fn readiness(&self) -> Result<Readiness> {
        if self.is_sealed() {
            return Err(Error::Sealed);
        }
        // The store probe's finding (a ping each second, and the audit writer's failures),
        // then one read of the store within the probe's bound: the answer never waits on
        // a store that is gone.
        let not_ready = |why: String| Error::Unavailable {
            message: format!("store not ready: {why}"),
        };
        if let Some(reason) = self.audit.store_down() {
            return Err(not_ready(reason));
        }
        let root = match tokio::time::timeout(STORE_PROBE_TIMEOUT, self.root_mode()).await {
            Ok(Ok(mode)) => mode,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!(
                        "the store did not answer within {} s",
                        STORE_PROBE_TIMEOUT.as_secs()
                    ),
                };
                // A finding like the probe's: requests (this answer's own record too) are
                // refused at once from now on, not after waiting on the store.
                self.audit.mark_store_down(&why);
                return Err(not_ready(why));
            }
        };
        Ok(Readiness {
            store: self.store.describe(),
            root,
            crypto: self.crypto_name(),
        })
    }

    /// The crypto in use: the providers' names, `software` and `pkcs11` beside it when the
    /// root of trust is an HSM (which holds the root key and keys of protection level HSM).
    pub fn crypto_name(&self) -> String {
        self.providers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(_, p)| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The settings in force.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The provider of keys of protection level `level`: chosen once per key, here.
    pub(crate) fn provider(&self, level: ProtectionLevel) -> Result<Arc<dyn CryptoProvider>> {
        self.providers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(l, _)| *l == level)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| {
                Error::unprocessable(
                    "protection_level",
                    format!(
                        "this server has no provider for protection level {} (HSM needs an HSM root of trust, root.mode = \"hsm\")",
                        level.as_str()
                    ),
                )
            })
    }

    /// Adds the provider of a protection level (the HSM's, when the root of trust opens one).
    pub(crate) fn add_provider(&self, level: ProtectionLevel, provider: Arc<dyn CryptoProvider>) {
        let mut ps = self.providers.write().unwrap_or_else(|e| e.into_inner());
        ps.retain(|(l, _)| *l != level);
        ps.push((level, provider));
    }

    fn root(&self) -> Result<Arc<dyn RootOfTrust>> {
        self.root
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(Error::Sealed)
    }

    /// The metrics in the Prometheus text format, with the values read at scrape time:
    /// sealed, audit backlog and unsigned tail, keys by state.
    pub async fn render_metrics(&self) -> String {
        let audit = metrics::AuditGauges {
            backlog: self.audit.backlog(),
            store_unreachable: self.audit.store_down().is_some(),
            not_stored: self.audit.unsaved(),
        };
        if audit.store_unreachable {
            // Nothing is read from a store that is gone: the scrape answers at once.
            return self.metrics.render(self.is_sealed(), &audit, None);
        }
        let unsigned = async {
            let head = self.store.audit_head().await?.map(|h| h.0).unwrap_or(0);
            let signed = self
                .store
                .last_checkpoint()
                .await?
                .map(|c| c.seq)
                .unwrap_or(0);
            Ok::<_, Error>(head.saturating_sub(signed))
        }
        .await
        .unwrap_or(0);
        let keys = self.store.count_keys_by_state().await.unwrap_or_default();
        self.metrics
            .render(self.is_sealed(), &audit, Some((unsigned, &keys)))
    }

    /// Records something the server did by itself (start with its configuration, stop).
    /// False when the event was refused (with `[audit] durability = "sync"`, not stored).
    pub async fn record_server_event(
        &self,
        operation: Action,
        detail: serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        let meta = RequestMeta::new(format!("server-{}", Uuid::now_v7()), "local", Door::System);
        let note = Note {
            detail,
            ..Default::default()
        };
        self.finish(&meta, None, operation, note, Ok(()))
            .await
            .is_ok()
    }

    /// Waits until all audit records queued so far are stored.
    pub async fn flush_audit(&self) {
        self.audit.flush().await;
    }

    /// Audit events this process could not store: given up while the store was
    /// unreachable (and not yet counted in the trail by a [`Action::ResumeAudit`] event),
    /// and still queued. What a shutdown that could not finish reports.
    pub fn audit_unsaved(&self) -> u64 {
        self.audit.unsaved()
    }

    /// The first check of every request that presents a credential or a share: refused at
    /// once (503 `unavailable`) while the store is unreachable, so that no request waits
    /// on a store that is gone or is served without its audit event; then the source's
    /// authentication back-off.
    pub(crate) fn admit_source(&self, ip: Option<std::net::IpAddr>) -> Result<()> {
        self.audit.check_writable()?;
        self.limits.admit_source(ip, self.now())
    }

    /// Why the store is taken as unreachable, while it is (requests are then refused).
    pub fn store_down(&self) -> Option<String> {
        self.audit.store_down()
    }

    /// Watches the store every [`STORE_PROBE_INTERVAL`]: a ping that fails or does not
    /// answer within [`STORE_PROBE_TIMEOUT`] takes it as unreachable (as does the audit
    /// writer when a batch cannot be stored); while it is, a [`Action::ResumeAudit`] event
    /// is tried each round, and the first one stored (it counts the events the outage cost)
    /// makes the node serve again. No restart needed. Events refused while that trial was
    /// on its way are counted by one more `ResumeAudit` the next round, so that every event
    /// not stored is counted in the trail.
    pub fn spawn_store_probe(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let svc = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(STORE_PROBE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // When the current (or the last) outage began, and whether one is on.
            let mut since = None;
            let mut in_outage = false;
            loop {
                tick.tick().await;
                let Some(s) = svc.upgrade() else { break };
                let resume = |lost: u64, since: chrono::DateTime<chrono::Utc>| {
                    let meta = RequestMeta::new(
                        format!("server-{}", Uuid::now_v7()),
                        "local",
                        Door::System,
                    );
                    let mut detail = serde_json::Map::new();
                    detail.insert("events_not_stored".into(), lost.into());
                    detail.insert("unreachable_since".into(), since.to_rfc3339().into());
                    let note = Note {
                        detail,
                        ..Default::default()
                    };
                    s.event(&meta, None, Action::ResumeAudit, &note, Ok(()))
                };
                if s.audit.store_down().is_none() {
                    in_outage = false;
                    let problem =
                        match tokio::time::timeout(STORE_PROBE_TIMEOUT, s.store.ping()).await {
                            Ok(Ok(())) => {
                                // Events refused while the outage was ending (after the
                                // trial's count was taken) are counted by one more event:
                                // an outage's ResumeAudit counts add up to what it cost.
                                let late = s.audit.take_not_stored();
                                if late > 0 {
                                    let at = *since.get_or_insert_with(|| s.now());
                                    if s.audit.record_durably(resume(late, at)).await.is_err() {
                                        s.audit.give_back(late);
                                    }
                                }
                                continue;
                            }
                            Ok(Err(e)) => e.to_string(),
                            Err(_) => format!(
                                "the store did not answer within {} s",
                                STORE_PROBE_TIMEOUT.as_secs()
                            ),
                        };
                    s.audit.mark_store_down(&problem);
                }
                if !in_outage {
                    in_outage = true;
                    since = Some(s.now());
                }
                let at = *since.get_or_insert_with(|| s.now());
                let lost = s.audit.take_not_stored();
                if s.audit.record_trial(resume(lost, at)).await {
                    in_outage = false;
                    tracing::info!(
                        events_not_stored = lost,
                        "the audit trail resumes; ResumeAudit records the events the outage cost"
                    );
                } else {
                    s.audit.give_back(lost);
                }
            }
        })
    }

    /// The audit event of a request: who, from where, through which door, what, on which
    /// key, and how it ended. Refusal messages are kept (they never hold secrets); an
    /// internal error's message is not.
    pub(crate) fn event(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        action: Action,
        note: &Note,
        outcome: std::result::Result<(), &Error>,
    ) -> AuditEvent {
        let mut detail = note.detail.clone();
        let outcome = match outcome {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                let msg = match e {
                    Error::Internal { .. } => "internal error".to_string(),
                    other => other.to_string(),
                };
                detail.insert("error".into(), msg.into());
                e.code().to_string()
            }
        };
        let credential = detail
            .remove("credential")
            .and_then(|c| c.as_str().map(str::to_string));
        AuditEvent {
            at: self.now(),
            request_id: meta.request_id.clone(),
            tenant_id: principal.map(|p| p.tenant_id).or(note.tenant_id),
            principal_id: principal.map(|p| p.id),
            principal: principal.map(|p| p.name.clone()).unwrap_or_else(|| {
                if meta.door == Door::System {
                    "system"
                } else {
                    "anonymous"
                }
                .into()
            }),
            credential,
            source: meta.source.clone(),
            door: meta.door.as_str().to_string(),
            operation: action.to_string(),
            key_id: note.key_id,
            key_version: note.key_version,
            outcome,
            detail,
        }
    }

    /// The event of a change a caller is about to commit: handed to the store so that the
    /// change and its event are one transaction. Marks the note, so that the request's
    /// success is not recorded a second time.
    pub(crate) fn change_event(
        &self,
        caller: &Caller,
        action: Action,
        note: &mut Note,
    ) -> Vec<AuditEvent> {
        note.committed = true;
        let mut n = note.clone();
        caller.annotate(&mut n);
        vec![self.event(&caller.meta, Some(&caller.principal), action, &n, Ok(()))]
    }

    /// The event of a change made on behalf of `by` (a caller, or the server itself at
    /// first start), with its own operation name: one request may make several changes.
    pub(crate) fn event_by(&self, by: &Actor, action: Action, note: &Note) -> Vec<AuditEvent> {
        match by {
            Actor::Caller(c) => {
                let mut n = note.clone();
                c.annotate(&mut n);
                vec![self.event(&c.meta, Some(&c.principal), action, &n, Ok(()))]
            }
            Actor::Server(meta) => vec![self.event(meta, None, action, note, Ok(()))],
        }
    }

    /// Records the outcome of an operation and passes the result through. A success whose
    /// change already carried its event (see [`Service::change_event`]) adds nothing.
    pub(crate) async fn finish<T>(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        action: Action,
        note: Note,
        result: Result<T>,
    ) -> Result<T> {
        meta.audited
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.metrics.request(
            meta.door.as_str(),
            action.name(),
            match &result {
                Ok(_) => "ok",
                Err(e) => e.code(),
            },
            meta.started.elapsed().as_secs_f64(),
        );
        if let Err(e) = &result {
            // A refusal because the store is unreachable is logged once for the outage (by
            // the audit writer), not once per request.
            let outage =
                matches!(e, Error::Unavailable { .. }) && self.audit.store_down().is_some();
            if matches!(e, Error::Internal { .. } | Error::Unavailable { .. }) && !outage {
                tracing::error!(request_id = %meta.request_id, action = action.name(), error = %e, "operation failed");
            } else {
                tracing::debug!(request_id = %meta.request_id, action = action.name(), code = e.code(), error = %e, "operation refused");
            }
        } else if note.committed {
            return result;
        }
        let ev = self.event(meta, principal, action, &note, result.as_ref().map(|_| ()));
        match self.config.audit_durability {
            // Durable before acknowledged: an answer (a use, a read, a refusal) leaves only
            // once its event is committed; a trail that cannot be written refuses it.
            audit::Durability::Sync => self.audit.record_durably(ev).await?,
            audit::Durability::Async => {
                // Not waiting is no licence to serve what cannot be recorded at all.
                if let Err(e) = self.audit.check_writable() {
                    self.audit.record(ev).await;
                    return Err(e);
                }
                self.audit.record(ev).await
            }
        }
        result
    }

    /// Runs one operation audited: `op` fills the audit note (the key, the version, what
    /// the record should say) and its result, allowed or refused, becomes the operation's
    /// record under `action`. The one way a service operation is written, so that none can
    /// forget its record.
    pub(crate) async fn audited<T>(
        &self,
        caller: &Caller,
        action: Action,
        op: impl AsyncFnOnce(&mut Note) -> Result<T>,
    ) -> Result<T> {
        self.audited_from(caller, action, Note::default(), op).await
    }

    /// [`Service::audited`] starting from a note already begun: the second record of a
    /// request that writes two (a key pair's public half, prepared with the first).
    pub(crate) async fn audited_from<T>(
        &self,
        caller: &Caller,
        action: Action,
        mut note: Note,
        op: impl AsyncFnOnce(&mut Note) -> Result<T>,
    ) -> Result<T> {
        let r = op(&mut note).await;
        self.done(caller, action, note, r).await
    }

    /// [`Service::audited`] for an operation with no authenticated caller (a custodian's
    /// share, a refresh token, a failed authentication, a staged restore): the record
    /// names `principal` when the operation knows one before it runs, and `meta`'s
    /// request, source and door.
    pub(crate) async fn audited_as<T>(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        action: Action,
        op: impl AsyncFnOnce(&mut Note) -> Result<T>,
    ) -> Result<T> {
        let mut note = Note::default();
        let r = op(&mut note).await;
        self.finish(meta, principal, action, note, r).await
    }

    /// [`Service::finish`] for an authenticated caller.
    pub(crate) async fn done<T>(
        &self,
        caller: &Caller,
        action: Action,
        note: Note,
        result: Result<T>,
    ) -> Result<T> {
        let mut note = note;
        caller.annotate(&mut note);
        self.finish(&caller.meta, Some(&caller.principal), action, note, result)
            .await
    }

    /// The authorization check every operation passes through: the caller's roles, then
    /// the key's policy (see [`arca_core::access::decide`]). Lookups are already confined
    /// to the caller's tenant, so another tenant's key never reaches here.
    pub(crate) fn authorize(
        &self,
        caller: &Caller,
        action: Action,
        key: Option<&Key>,
    ) -> Result<()> {
        self.authorize_ctx(caller, action, key, None)
    }

    /// [`Service::authorize`] for an operation that carries an encryption context, which
    /// policy conditions may test.
    pub(crate) fn authorize_ctx(
        &self,
        caller: &Caller,
        action: Action,
        key: Option<&Key>,
        ctx: Option<&api::EncryptionContext>,
    ) -> Result<()> {
        match self.decide(caller, action, key, ctx) {
            Decision::Allow(_) => Ok(()),
            Decision::Deny(message) => Err(Error::NotPermitted { message }),
        }
    }

    /// The decision without the error, for filters (a listing shows what may be described).
    pub(crate) fn decide(
        &self,
        caller: &Caller,
        action: Action,
        key: Option<&Key>,
        ctx: Option<&api::EncryptionContext>,
    ) -> Decision {
        let p = &caller.principal;
        let facts = RequestFacts {
            principal_id: p.id,
            principal_name: &p.name,
            roles: &p.roles,
            groups: &p.groups,
            source: caller.meta.source_ip(),
            door: caller.meta.door,
            cert: caller.meta.client_cert.as_deref(),
            now: self.now(),
            encryption_context: ctx,
        };
        arca_core::access::decide(&facts, action, key.map(|k| &k.policy))
    }

    /// A tenant's KEK, unwrapped by the root of trust (cached).
    pub(crate) async fn tenant_kek(&self, tenant: Uuid) -> Result<Arc<Zeroizing<Vec<u8>>>> {
        if let Some(k) = self.cache.keks.get(&tenant) {
            return Ok(k);
        }
        let root = self.root()?;
        let (_, wrapped) = self
            .store
            .get_tenant(tenant)
            .await?
            .ok_or_else(|| Error::not_found("tenant", tenant.to_string()))?;
        let kek = Arc::new(root.unwrap(&wrapped)?);
        self.cache.keks.insert(tenant, kek.clone());
        Ok(kek)
    }

    /// Looks a key up by id, name or alias within the caller's tenant, through the cache.
    pub(crate) async fn resolve(
        &self,
        tenant: Uuid,
        field: &str,
        reference: &str,
    ) -> Result<Arc<KeyEntry>> {
        let id = match KeyRef::parse(field, reference)? {
            KeyRef::Id(id) => id,
            KeyRef::Name(n) => match self.cache.names.get(&(tenant, n.clone())) {
                Some(id) => id,
                None => {
                    let key = self
                        .store
                        .find_key(tenant, &n)
                        .await?
                        .ok_or_else(|| Error::not_found("key", reference))?;
                    self.cache.names.insert((tenant, n), key.id);
                    key.id
                }
            },
        };
        self.entry(tenant, id, reference).await
    }

    /// A key by id, through the cache; another tenant's key is "not found".
    pub(crate) async fn entry(
        &self,
        tenant: Uuid,
        id: Uuid,
        shown_as: &str,
    ) -> Result<Arc<KeyEntry>> {
        if let Some(e) = self.cache.keys.get(&id) {
            if e.key.tenant_id == tenant {
                return Ok(e);
            }
            return Err(Error::not_found("key", shown_as));
        }
        let key = self
            .store
            .get_key(tenant, id)
            .await?
            .ok_or_else(|| Error::not_found("key", shown_as))?;
        let versions = self.store.get_versions(id).await?;
        let e = Arc::new(KeyEntry::new(key, versions));
        self.cache.keys.insert(id, e.clone());
        Ok(e)
    }

    /// The loaded handle of one version of a cached key.
    pub(crate) async fn handle(
        &self,
        e: &KeyEntry,
        version: &KeyVersion,
    ) -> Result<Arc<dyn KeyHandle>> {
        if let Some(h) = e
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&version.version)
        {
            return Ok(h.clone());
        }
        let m = self.load_material(&e.key, version).await?;
        let h = self
            .provider(e.key.protection_level)?
            .load(e.key.spec, &m)?;
        e.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(version.version, h.clone());
        Ok(h)
    }

    /// Reads and opens a version's material. The plaintext stays in zeroizing buffers.
    pub(crate) async fn load_material(
        &self,
        key: &Key,
        version: &KeyVersion,
    ) -> Result<KeyMaterial> {
        let sealed = self
            .store
            .get_material(key.id, version.version)
            .await?
            .ok_or_else(|| Error::WrongState {
                operation: "use".into(),
                target: format!("version {} of key {}", version.version, key.id),
                state: version.state,
                detail: Some(StateDetail::MaterialDestroyed),
            })?;
        let kek = self.tenant_kek(key.tenant_id).await?;
        let secret = arca_crypto::wrap::open_material(
            &kek,
            key.tenant_id,
            key.id,
            version.version,
            &sealed,
        )?;
        Ok(KeyMaterial {
            secret,
            public_spki: version.public_key.clone(),
            public_only: version.public_only,
        })
    }
}

impl Service {
    /// Records a request that a door refused before any operation ran (HTTP framing,
    /// routing, decoding): `operation` is the door's name for what it could tell of the
    /// request, `detail` what it could read (method and path, never a body or a query).
    pub async fn audit_door_refusal(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        operation: Action,
        detail: serde_json::Map<String, serde_json::Value>,
        e: Error,
    ) {
        let note = Note {
            detail,
            ..Default::default()
        };
        let _ = self
            .finish::<()>(meta, principal, operation, note, Err(e))
            .await;
    }

    /// Records a refusal that a door decided before reaching an operation (a malformed
    /// body, a missing credential) and hands the error back.
    pub async fn audit_refusal(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        action: Action,
        e: Error,
    ) -> Error {
        match self
            .audited_as::<()>(meta, principal, action, async |_: &mut Note| Err(e))
            .await
        {
            Err(e) => e,
            Ok(()) => Error::internal("refusal recorded as success"),
        }
    }
}

impl Service {
    /// Records a question about the server itself (KMIP Query): nothing is read or changed,
    /// but like every request it is authorised for the caller and leaves an audit record.
    pub async fn query_server(&self, caller: &Caller) -> Result<()> {
        self.audited(caller, Action::QueryServer, async |_: &mut Note| {
            self.authorize(caller, Action::QueryServer, None)
        })
        .await
    }

    /// KMIP Discover Versions: like Query, a question about the server that reads and
    /// changes nothing, yet is authorised for the caller and recorded like every request.
    pub async fn discover_versions(&self, caller: &Caller) -> Result<()> {
        self.audited(caller, Action::DiscoverVersions, async |_: &mut Note| {
            self.authorize(caller, Action::DiscoverVersions, None)
        })
        .await
    }

    /// KMIP Interop (begin, end or reset of a conformance test case): there is no server
    /// state to reset, but it is authorised and audited like every request.
    pub async fn interop(&self, caller: &Caller, function: i64) -> Result<()> {
        self.audited(caller, Action::Interop, async |note: &mut Note| {
            note.set("function", function);
            self.authorize(caller, Action::Interop, None)
        })
        .await
    }

    /// KMIP Log: a client's message for the server's records. Authorised (every principal
    /// may log), kept in the audit record (bounded), and written to the server log with its
    /// control characters escaped, so that no client can forge log lines.
    pub async fn client_log(&self, caller: &Caller, message: &str) -> Result<()> {
        self.audited(caller, Action::LogMessage, async |note: &mut Note| {
            self.authorize(caller, Action::LogMessage, None)?;
            if message.len() > MAX_LOG_MESSAGE {
                return Err(Error::invalid(
                    "log_message",
                    format!("at most {MAX_LOG_MESSAGE} bytes"),
                ));
            }
            note.set("message", message);
            tracing::info!(principal = %caller.principal.name, message = %message.escape_debug(), "client log message");
            Ok(())
        })
        .await
    }

    /// The authenticated caller's identity: the cheapest authenticated request, used by
    /// clients to check a credential and by the load generator as its no-op. With
    /// `actions`, what its roles cover too.
    pub async fn whoami(&self, caller: &Caller, actions: bool) -> Result<api::WhoAmI> {
        self.audited(caller, Action::WhoAmI, async |_: &mut Note| {
            Ok(api::WhoAmI {
                principal_id: caller.principal.id,
                principal: caller.principal.name.clone(),
                tenant_id: caller.principal.tenant_id,
                tenant: self.tenant(caller.tenant()).await?.name.clone(),
                roles: caller.principal.roles.clone(),
                groups: caller.principal.groups.clone(),
                credential: caller.credential.kind().to_string(),
                actions: actions.then(|| {
                    arca_core::access::actions_allowed(&caller.principal.roles)
                        .map(str::to_string)
                        .collect()
                }),
            })
        })
        .await
    }
}
