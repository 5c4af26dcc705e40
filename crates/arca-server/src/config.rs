//! Configuration: one TOML file, every field overridable by an `ARCA_` environment variable,
//! and defaults that make `arca serve` with no file work.
//!
//! Environment names are the field's path in upper case, nested tables joined by a double
//! underscore: `ARCA_DATA_DIR`, `ARCA_LISTEN`, `ARCA_TLS__CERT`, `ARCA_SERVICE__CACHE_TTL_SECS`.
//! Only names whose first part is a configuration key are read, so the CLI's own variables
//! (`ARCA_SERVER`, `ARCA_TOKEN`, ...) never disturb the server.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use arca_service::ServiceConfig;
use serde::{Deserialize, Serialize};

/// The whole server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the store, the unseal-key file (dev mode) and the dev TLS files live.
    pub data_dir: PathBuf,
    /// Address of the HTTPS listener.
    pub listen: String,
    pub tls: TlsConfig,
    pub http: HttpConfig,
    pub service: ServiceConfig,
    pub log: LogConfig,
    pub root: RootConfig,
    pub audit: AuditConfig,
    pub metrics: MetricsConfig,
    pub kmip: KmipConfig,
    pub aws: AwsConfig,
    pub dke: DkeConfig,
    pub cse: CseConfig,
    pub store: StoreConfig,
    pub console: ConsoleConfig,
    pub server: ServerConfig,
}

/// How the server stops (SIGTERM, Ctrl-C): within two bounds, so that a service manager's
/// own timeout (systemd 90 s, Kubernetes 30 s by default) is not what ends it. Past either
/// bound it exits anyway, non-zero, after logging what it could not do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Seconds requests in flight get to finish once the listeners stop accepting (at
    /// least 1; default 10). Connections still open after it are cut.
    pub shutdown_grace_secs: u64,
    /// Seconds to store the queued audit events, sign the closing checkpoint and close the
    /// store after that (at least 1; default 10).
    pub shutdown_flush_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            shutdown_grace_secs: 10,
            shutdown_flush_secs: 10,
        }
    }
}

impl ServerConfig {
    /// The grace bound in force.
    pub fn grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_secs.max(1))
    }

    /// The flush bound in force.
    pub fn flush(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_flush_secs.max(1))
    }
}

/// Where Arca keeps its state. Unset, it is the embedded SQLite file `<data_dir>/arca.db`
/// (one node). A `postgres://` URL makes it a shared PostgreSQL database that several nodes
/// use at once (docs/ha.md); TLS to the database is set in the URL (`sslmode=verify-full&
/// sslrootcert=/path/ca.pem`). Prefer `ARCA_STORE__URL` to the file for a URL with a password.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Written out (the configuration is recorded at every start) without its password.
    #[serde(serialize_with = "url_without_password")]
    pub url: Option<String>,
}

fn url_without_password<S: serde::Serializer>(
    url: &Option<String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    url.as_deref()
        .map(arca_store::postgres::url_without_password)
        .serialize(s)
}

/// The AWS-compatible door: the AWS KMS API (JSON 1.1, SigV4-signed with access key pairs
/// Arca issues) on an HTTPS listener of its own, so AWS SDKs and the `aws` CLI work by
/// changing only their endpoint. Off by default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    pub enabled: bool,
    /// Address of the listener (same TLS certificate as the main one).
    pub listen: String,
    /// The region in ARNs, and the one request signatures must be scoped to.
    pub region: String,
    /// External key stores served on this listener (the XKS proxy API), one per path
    /// prefix.
    pub xks: Vec<XksStoreConfig>,
}

/// One external key store: AWS KMS reaches it at
/// `https://<host>:<port><path_prefix>/kms/xks/v1`, signing with access key pairs of
/// principals of `tenant` (any number may be active at once, for rotation).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XksStoreConfig {
    /// The part of the path before `/kms/xks/v1` (empty, or `/` followed by
    /// `a-z A-Z 0-9 / - _`), what AWS calls the optional path prefix.
    pub path_prefix: String,
    /// The tenant whose keys the store serves.
    pub tenant: String,
}

impl XksStoreConfig {
    /// Checks the prefix against the spec's rules for `XksProxyUriPath` (at most 128
    /// characters with `/kms/xks/v1`, of `a-z A-Z 0-9 / - _`).
    pub fn validate(&self) -> Result<()> {
        let p = &self.path_prefix;
        if !(p.is_empty() || p.starts_with('/'))
            || p.ends_with('/')
            || p.len() + "/kms/xks/v1".len() > 128
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_'))
        {
            bail!(
                "aws.xks path_prefix {p:?}: empty, or starting with / and of a-z A-Z 0-9 / - _, not ending with /, at most 117 characters"
            );
        }
        if self.tenant.is_empty() {
            bail!("aws.xks tenant: name the tenant whose keys the store serves");
        }
        Ok(())
    }
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            enabled: false,
            listen: "127.0.0.1:8444".into(),
            region: "us-east-1".into(),
            xks: Vec::new(),
        }
    }
}

/// Microsoft Purview Double Key Encryption: Arca as the customer's DKE key service, on the
/// HTTPS listener under `path_prefix` (docs/cse.md). Office fetches a key's public half at
/// `GET <prefix>/<name>` and asks for decryptions at `POST <prefix>/<name>/<version>/decrypt`
/// with an Entra ID token. Off while `keys` is empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DkeConfig {
    /// The path before the key names (`/` followed by `a-z A-Z 0-9 / - _`, not ending
    /// with `/`): what the sensitivity label's DKE URL ends with.
    pub path_prefix: String,
    /// How many days Office may cache a public key before it asks again (the answer's
    /// `cache.exp`); 0 for no caching, so a suspended key stops new encryption at once.
    pub public_key_cache_days: u32,
    /// The keys served, one per label.
    pub keys: Vec<DkeKeyConfig>,
}

impl Default for DkeConfig {
    fn default() -> Self {
        DkeConfig {
            path_prefix: "/dke".into(),
            public_key_cache_days: 1,
            keys: Vec::new(),
        }
    }
}

/// One DKE key: the name in its URL, the Arca RSA key behind it and who may use it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkeKeyConfig {
    /// The `{keyName}` of the URL (`a-z A-Z 0-9 - _`, at most 64).
    pub name: String,
    /// The Arca key (id, name or alias): an RSA-2048 key whose usage includes decrypt.
    pub key: String,
    /// As whom the door acts, which Entra issuer it trusts and which users it allows.
    pub access: arca_service::delegated::DelegatedAccess,
}

impl DkeConfig {
    /// Checks the prefix, the names and the access rules before the listener opens.
    pub fn validate(&self) -> Result<()> {
        check_prefix("dke.path_prefix", &self.path_prefix)?;
        for (i, k) in self.keys.iter().enumerate() {
            check_dke_key_name(&format!("dke.keys[{i}].name"), &k.name)?;
            if self.keys[..i].iter().any(|o| o.name == k.name) {
                bail!("dke.keys[{i}].name {:?} is used twice", k.name);
            }
            if k.key.is_empty() {
                bail!("dke.keys[{i}].key: name the Arca key");
            }
            k.access
                .validate(&format!("dke.keys[{i}].access"))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    }
}

/// The rule for a DKE key's name, the `{keyName}` of its URL: 1 to 64 of `a-z A-Z 0-9 - _`.
/// `what` names the setting (or the CLI flag) in the error.
pub fn check_dke_key_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        bail!("{what} {name:?}: 1 to 64 of a-z A-Z 0-9 - _");
    }
    Ok(())
}

/// Google Workspace client-side encryption: Arca as the customer's Key Access Control List
/// Service (KACLS), on the HTTPS listener under `path_prefix` (docs/cse.md). Off while
/// `access` is unset.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CseConfig {
    /// The path of the KACLS URL on this listener (`/` followed by `a-z A-Z 0-9 / - _`).
    pub path_prefix: String,
    /// The Arca AES-256 key that wraps Google's data encryption keys.
    pub key: String,
    /// The KACLS URL as pasted into the Google admin console (`https://host/cse`):
    /// authorization tokens naming another `kacls_url` are refused.
    pub kacls_url: String,
    /// The `iss` of Google's authorization tokens accepted (each also in
    /// `[[service.jwt_issuers]]` with audience `cse-authorization`).
    pub authorization_issuers: Vec<String>,
    /// As whom the door acts, the identity provider of authentication tokens, and which
    /// users it allows.
    pub access: Option<arca_service::delegated::DelegatedAccess>,
    /// The Google Workspace domain that owns this KACLS: authorization tokens whose
    /// `kacls_owner_domain` claim names another domain are refused (unset: not checked).
    pub owner_domain: Option<String>,
    /// The KACLS URLs whose wrapped keys `rewrap` opens: this service's own URLs, past and
    /// present (default: `kacls_url` alone). A `rewrap` naming another original KACLS is
    /// refused, since only keys this Arca wrapped can be unwrapped here.
    pub rewrap_sources: Vec<String>,
    /// Who may call the privileged methods (`privilegedwrap`, `privilegedunwrap`,
    /// `privilegedprivatekeydecrypt`, `wrapprivatekey`), which take an authentication token
    /// alone, and as which Arca principal the door then acts (give it its own principal,
    /// so the key policy grants the privileged methods apart from the everyday ones).
    /// Unset: the privileged methods are not served.
    pub privileged: Option<arca_service::delegated::DelegatedAccess>,
    /// The Arca ED25519 key that signs the delegated authentication tokens of `delegate`
    /// (whose public half `<path_prefix>/jwks` publishes). Unset: `delegate` is not served.
    pub delegate_key: Option<String>,
    /// How long a delegated authentication token lasts, at most (never beyond the original
    /// authentication token's expiry).
    pub delegate_ttl_seconds: u32,
}

impl Default for CseConfig {
    fn default() -> Self {
        CseConfig {
            path_prefix: "/cse".into(),
            key: String::new(),
            kacls_url: String::new(),
            authorization_issuers: [
                "gsuitecse-tokenissuer-drive@system.gserviceaccount.com",
                "gsuitecse-tokenissuer-meet@system.gserviceaccount.com",
                "gsuitecse-tokenissuer-calendar@system.gserviceaccount.com",
            ]
            .map(String::from)
            .to_vec(),
            access: None,
            owner_domain: None,
            rewrap_sources: Vec::new(),
            privileged: None,
            delegate_key: None,
            delegate_ttl_seconds: 3600,
        }
    }
}

impl CseConfig {
    /// Checks the prefix, the key, the URL and the access rule before the listener opens.
    pub fn validate(&self) -> Result<()> {
        let Some(access) = &self.access else {
            return Ok(());
        };
        check_prefix("cse.path_prefix", &self.path_prefix)?;
        if self.key.is_empty() {
            bail!("cse.key: name the Arca AES-256 key that wraps Google's keys");
        }
        if !self.kacls_url.starts_with("https://") {
            bail!("cse.kacls_url: the https:// URL pasted into the Google admin console");
        }
        if self.authorization_issuers.is_empty() {
            bail!("cse.authorization_issuers: at least one of Google's token issuers");
        }
        if let Some(u) = self
            .rewrap_sources
            .iter()
            .find(|u| !u.starts_with("https://"))
        {
            bail!("cse.rewrap_sources: {u} is not an https:// KACLS URL");
        }
        if self.delegate_key.as_deref() == Some("") {
            bail!("cse.delegate_key: name the Arca ED25519 key, or leave it out");
        }
        if self.delegate_ttl_seconds == 0 || self.delegate_ttl_seconds > 86_400 {
            bail!("cse.delegate_ttl_seconds: 1 to 86400");
        }
        if let Some(p) = &self.privileged {
            p.validate("cse.privileged")
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        access
            .validate("cse.access")
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Whether `url` is one of the KACLS URLs whose wrapped keys this service opens
    /// (`rewrap_sources`, else `kacls_url`), trailing slashes aside.
    pub fn opens_keys_of(&self, url: &str) -> bool {
        let url = url.trim_end_matches('/');
        if self.rewrap_sources.is_empty() {
            return url == self.kacls_url.trim_end_matches('/');
        }
        self.rewrap_sources
            .iter()
            .any(|u| u.trim_end_matches('/') == url)
    }
}

/// The rule for a delegated door's path prefix: `/` followed by `a-z A-Z 0-9 / - _`, not
/// ending with `/`, and clear of the REST API and the console. `what` names the setting (or
/// the CLI flag) in the error.
pub fn check_prefix(what: &str, p: &str) -> Result<()> {
    if !p.starts_with('/')
        || p.ends_with('/')
        || !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_'))
        || p == "/v1"
        || p.starts_with("/v1/")
        || p.starts_with("/ui")
    {
        bail!("{what} {p:?}: / followed by a-z A-Z 0-9 / - _, not ending with /, and not under /v1 or /ui");
    }
    Ok(())
}

/// The KMIP door: TTLV over mutual TLS (OASIS KMIP 1.0-1.4, 2.0, 2.1), as databases,
/// storage arrays and hypervisors speak it. Clients authenticate by certificate only, so the
/// door opens only when `tls.client_ca` is set; each client certificate is bound to a
/// principal like any other (`arca binding create --kind certificate-...`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KmipConfig {
    /// Serve KMIP when `tls.client_ca` is set.
    pub enabled: bool,
    /// Address of the KMIP listener (IANA's port for KMIP is 5696).
    pub listen: String,
    /// Largest request message, in bytes (refused as Invalid Message beyond, and the
    /// connection closed).
    pub max_message_bytes: usize,
    /// Seconds a connection may wait between messages before it is closed.
    pub idle_timeout_secs: u64,
    /// Seconds a message may take to arrive once its first byte has (slow senders are cut).
    pub read_timeout_secs: u64,
}

impl Default for KmipConfig {
    fn default() -> Self {
        KmipConfig {
            enabled: true,
            listen: "127.0.0.1:5696".into(),
            max_message_bytes: 1024 * 1024,
            idle_timeout_secs: 120,
            read_timeout_secs: 10,
        }
    }
}

/// The Prometheus endpoint (`GET /metrics`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` without a credential (for a scraper on a trusted network). By
    /// default it needs a system operator's token, like Vault's.
    pub unauthenticated: bool,
}

/// The web console (`/ui/` on the HTTPS listener).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console. It is only a client of the REST API (no privilege of its own),
    /// so turning it off removes a user interface, not a way in.
    pub enabled: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig { enabled: true }
    }
}

/// The audit trail: how often its head is signed, and where events are shipped.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Sign a checkpoint after this many events...
    pub checkpoint_every_events: u64,
    /// ...or after this many seconds with unsigned events, whichever comes first.
    pub checkpoint_interval_secs: u64,
    /// Copies of the trail for SIEMs (`[[audit.sinks]]`).
    pub sinks: Vec<crate::sinks::SinkConfig>,
    /// `sync` (default): no request is answered before its audit event is committed, and
    /// requests are refused (503) while the trail cannot be written. `async`: answers do
    /// not wait, and a crash loses the last events.
    pub durability: arca_service::audit::Durability,
    /// How long a request waits for its audit event to be stored before it is refused
    /// with 503 (at least 1): a store that is locked, full or unreachable makes requests
    /// fail within this bound instead of queueing without end.
    pub write_timeout_secs: u64,
    /// Where archived segments of the trail are written (`arca audit archive` and the
    /// retention task); default `<data_dir>/audit-archive`.
    pub archive_dir: Option<PathBuf>,
    /// Seconds between runs of the retention task that seals and archives a segment
    /// (0, the default: only `arca audit archive` archives).
    pub archive_interval_secs: u64,
    /// Archived segments whose last record is older than this many seconds are pruned from
    /// the store by the retention task (0, the default: only `arca audit prune` prunes).
    pub prune_after_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_every_events: 1000,
            checkpoint_interval_secs: 60,
            sinks: Vec::new(),
            durability: Default::default(),
            write_timeout_secs: arca_service::audit::DEFAULT_WRITE_TIMEOUT.as_secs(),
            archive_dir: None,
            archive_interval_secs: 0,
            prune_after_secs: 0,
        }
    }
}

impl AuditConfig {
    /// The retention settings the service runs with, the archive directory resolved.
    pub fn retention(
        &self,
        data_dir: &std::path::Path,
    ) -> arca_service::retention::RetentionConfig {
        arca_service::retention::RetentionConfig {
            archive_dir: Some(
                self.archive_dir
                    .clone()
                    .unwrap_or_else(|| data_dir.join("audit-archive")),
            ),
            archive_interval_secs: self.archive_interval_secs,
            prune_after_secs: self.prune_after_secs,
            followers: self.sinks.iter().map(|s| s.name.clone()).collect(),
        }
    }
}

/// Where the root key lives. A data directory made by `arca init` is under Shamir custody
/// whatever this says; otherwise `dev` (an unseal-key file) or `hsm`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RootConfig {
    /// `dev` or `hsm`.
    pub mode: String,
    pub hsm: HsmConfig,
}

impl Default for RootConfig {
    fn default() -> Self {
        RootConfig {
            mode: "dev".into(),
            hsm: HsmConfig::default(),
        }
    }
}

/// The HSM holding the root key (`[root] mode = "hsm"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HsmConfig {
    /// The PKCS#11 module.
    pub module: PathBuf,
    /// The token's label (found by label: slot ids change).
    pub token_label: String,
    /// The name of an environment variable holding the user PIN...
    pub pin_env: Option<String>,
    /// ...or a file holding it (first line).
    pub pin_file: Option<PathBuf>,
    /// The label of the root key object in the token.
    pub key_label: String,
}

impl Default for HsmConfig {
    fn default() -> Self {
        HsmConfig {
            module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
            token_label: "arca".into(),
            pin_env: Some("ARCA_HSM_PIN".into()),
            pin_file: None,
            key_label: "arca-root".into(),
        }
    }
}

impl HsmConfig {
    /// The settings with the PIN read from its variable or file.
    pub fn settings(&self) -> Result<arca_crypto::hsm::HsmSettings> {
        let pin = match (&self.pin_file, &self.pin_env) {
            (Some(f), _) => zeroize::Zeroizing::new(
                std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read the HSM PIN file {}", f.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
            (None, Some(var)) => {
                zeroize::Zeroizing::new(std::env::var(var).with_context(|| {
                    format!("the HSM PIN variable {var} is not set (root.hsm.pin_env)")
                })?)
            }
            (None, None) => bail!("set root.hsm.pin_env or root.hsm.pin_file"),
        };
        Ok(arca_crypto::hsm::HsmSettings {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            pin,
            key_label: self.key_label.clone(),
        })
    }
}

/// TLS of the HTTPS listener. With no certificate configured, a dev CA and a server
/// certificate for 127.0.0.1/localhost are generated in `<data_dir>/tls`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    pub cert: Option<PathBuf>,
    /// PEM private key of the server.
    pub key: Option<PathBuf>,
    /// PEM certificates of the CAs whose client certificates are accepted (mutual TLS).
    /// With it, a client may authenticate by certificate alone, through a binding of the
    /// certificate to a principal; without it, no client certificate is asked for.
    pub client_ca: Option<PathBuf>,
}

/// HTTP limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Seconds a request may take before it is answered 503.
    pub request_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: `info`, `arca=debug,info`, ...
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./arca-data"),
            listen: "127.0.0.1:8443".into(),
            tls: TlsConfig::default(),
            http: HttpConfig::default(),
            service: ServiceConfig::default(),
            log: LogConfig::default(),
            root: RootConfig::default(),
            audit: AuditConfig::default(),
            metrics: MetricsConfig::default(),
            kmip: KmipConfig::default(),
            aws: AwsConfig::default(),
            dke: DkeConfig::default(),
            cse: CseConfig::default(),
            store: StoreConfig::default(),
            console: ConsoleConfig::default(),
            server: ServerConfig::default(),
        }
    }
}

const KNOWN: &[&str] = &[
    "data_dir", "listen", "tls", "http", "service", "log", "root", "audit", "metrics", "kmip",
    "aws", "dke", "cse", "store", "console", "server",
];

/// The keys of [`KNOWN`] that hold a value rather than a table: only these are set by a
/// variable of one part. `ARCA_SERVER` (the CLI's server URL) names the `[server]` table,
/// so it is not read as configuration.
const VALUES: &[&str] = &["data_dir", "listen"];

impl Config {
    /// Loads the file (if any), then applies `ARCA_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let mut doc: toml::Table = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("config file {} is not valid TOML", p.display()))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("ARCA_") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if !KNOWN.contains(&path[0].as_str())
                || (path.len() == 1 && !VALUES.contains(&path[0].as_str()))
            {
                continue;
            }
            set_path(&mut doc, &path, parse_value(&value))
                .with_context(|| format!("environment variable {name}"))?;
        }
        let cfg: Config = toml::Value::Table(doc)
            .try_into()
            .context("invalid configuration")?;
        Ok(cfg)
    }
}

impl Config {
    /// Checks the delegated doors (`[dke]`, `[cse]`) before the listener opens: each table
    /// on its own, then what spans tables (the issuer entry `delegate` needs, the two
    /// prefixes). `arca serve` runs it at start, `arca cse setup` and `arca dke setup` on
    /// the configuration they print.
    pub fn validate_delegated_doors(&self) -> Result<()> {
        self.dke.validate()?;
        self.cse.validate()?;
        if self.cse.access.is_some()
            && self.cse.delegate_key.is_some()
            && !self.service.jwt_issuers.iter().any(|i| {
                i.issuer == self.cse.kacls_url && i.audience == crate::cse::DELEGATED_AUDIENCE
            })
        {
            bail!(
                "cse.delegate_key: add a [[service.jwt_issuers]] entry with issuer = cse.kacls_url, \
                 audience = \"{}\" and jwks_url = cse.kacls_url + \"/jwks\", so that the \
                 delegated tokens this KACLS issues are accepted back",
                crate::cse::DELEGATED_AUDIENCE
            );
        }
        if self.cse.access.is_some()
            && !self.dke.keys.is_empty()
            && self.cse.path_prefix == self.dke.path_prefix
        {
            bail!("cse.path_prefix and dke.path_prefix must differ");
        }
        Ok(())
    }
}

fn parse_value(s: &str) -> toml::Value {
    if let Ok(i) = s.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match s {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(s.to_string()),
    }
}

fn set_path(t: &mut toml::Table, path: &[String], v: toml::Value) -> Result<()> {
    match path {
        [] => bail!("empty name"),
        [last] => {
            t.insert(last.clone(), v);
            Ok(())
        }
        [first, rest @ ..] => {
            let e = t
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match e {
                toml::Value::Table(inner) => set_path(inner, rest, v),
                _ => bail!("{first} is not a table"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dke_configuration_is_checked_before_the_listener_opens() {
        let toml = r#"
[dke]
path_prefix = "/dke"
[[dke.keys]]
name = "confidential"
key = "dke-confidential"
[dke.keys.access]
tenant = "default"
principal = "dke-service"
issuer = "https://sts.windows.net/t/"
allowed_domains = ["contoso.com"]
"#;
        let c: Config = toml::from_str(toml).unwrap();
        c.dke.validate().unwrap();
        assert_eq!(c.dke.keys[0].access.allowed_domains, ["contoso.com"]);
        let bad = |f: &dyn Fn(&mut DkeConfig)| {
            let mut d = c.dke.clone();
            f(&mut d);
            d.validate().unwrap_err().to_string()
        };
        assert!(bad(&|d| d.path_prefix = "/v1".into()).contains("path_prefix"));
        assert!(bad(&|d| d.path_prefix = "/dke/".into()).contains("path_prefix"));
        assert!(bad(&|d| d.path_prefix = "dke".into()).contains("path_prefix"));
        assert!(bad(&|d| d.keys[0].name = "a/b".into()).contains("name"));
        assert!(bad(&|d| d.keys.push(d.keys[0].clone())).contains("used twice"));
        assert!(bad(&|d| d.keys[0].access.allowed_domains.clear()).contains("allowed"));
        assert!(bad(&|d| d.keys[0].access.issuer.clear()).contains("issuer"));
        // An unknown field is a mistake, not something to ignore.
        assert!(
            toml::from_str::<Config>(&toml.replace("allowed_domains", "allowed_domain")).is_err()
        );
    }

    #[test]
    fn env_overrides_file_and_ignores_client_variables() {
        let dir = std::env::temp_dir().join(format!("arca-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("arca.toml");
        std::fs::write(
            &f,
            "listen = \"0.0.0.0:9000\"\n[service]\ncache_capacity = 5\n",
        )
        .unwrap();
        let env = vec![
            ("ARCA_DATA_DIR".to_string(), "/tmp/x".to_string()),
            ("ARCA_SERVICE__CACHE_TTL_SECS".to_string(), "7".to_string()),
            ("ARCA_TOKEN".to_string(), "whatever".to_string()),
            ("ARCA_SERVER".to_string(), "https://kms:8443".to_string()),
            (
                "ARCA_SERVER__SHUTDOWN_GRACE_SECS".to_string(),
                "3".to_string(),
            ),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let c = Config::load(Some(&f), env).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.server.shutdown_grace_secs, 3);
        assert_eq!(c.server.shutdown_flush_secs, 10);
        let c2 = Config::load(
            None,
            vec![
                ("ARCA_AWS__ENABLED".to_string(), "true".to_string()),
                ("ARCA_AWS__LISTEN".to_string(), "127.0.0.1:1".to_string()),
            ],
        )
        .unwrap();
        assert!(c2.aws.enabled);
        assert_eq!(c2.aws.listen, "127.0.0.1:1");
        // Every table of the configuration is reachable from the environment.
        let doc = toml::Value::try_from(Config::default()).unwrap();
        for key in doc.as_table().unwrap().keys() {
            assert!(KNOWN.contains(&key.as_str()), "{key} is missing from KNOWN");
        }
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        let with_password = Config {
            store: StoreConfig {
                url: Some("postgres://arca:s3cret-pw@db:5432/arca".into()),
            },
            ..Default::default()
        };
        let shown = serde_json::to_string(&with_password).unwrap();
        assert!(
            !shown.contains("s3cret-pw") && shown.contains("postgres://arca:***@db"),
            "{shown}"
        );
        assert_eq!(c.service.cache_capacity, 5);
        assert_eq!(c.service.cache_ttl_secs, 7);
        let bad = Config::load(
            None,
            vec![("ARCA_SERVICE__NOPE".to_string(), "1".to_string())],
        );
        assert!(bad.is_err());
    }
}
