//! Split-key custody of the root key (Shamir unseal).
//!
//! `arca init` makes a root key, splits it into N shares with threshold M, and gives each
//! custodian one share (encrypted to the custodian's RSA public key, or shown once). The
//! root key itself is never stored: the store keeps only, per share, a salted SHA-256
//! commitment (so that a wrong share is named at once, not after M have been pooled) and an
//! HMAC check value of the root key. Every start is sealed; custodians submit shares one by
//! one (`POST /v1/sys/unseal`, audited with the custodian's name, never the share) and the
//! M-th valid share unseals. `seal` drops the root key and every key derived from it from
//! memory.

use arca_core::Action;
use std::sync::Arc;

use arca_core::{Error, Result};
use arca_crypto::shamir::{self, Share};
use arca_crypto::SoftwareRoot;
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{Caller, Note, RequestMeta, Service};

/// The store's name for the root-of-trust mode (`dev` when absent, or `shamir`).
pub(crate) const ROOT_MODE: &str = "root.mode";
/// The store's name for the custody record.
pub(crate) const CUSTODY: &str = "root.shamir";
/// How a share is written out: `arca-share-v1:<x>:<base64>`.
const SHARE_PREFIX: &str = "arca-share-v1:";

/// The stored description of the custody (never a share, never the root key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustodyRecord {
    pub threshold: u8,
    pub shares: u8,
    pub custodians: Vec<Custodian>,
    /// Salt of the share commitments (hex).
    salt: String,
    /// HMAC-SHA-256 of a fixed label under the root key (hex): tells a right root key.
    check: String,
    pub created_at: DateTime<Utc>,
}

/// One custodian: the x coordinate of its share, its name, the commitment to its share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Custodian {
    pub x: u8,
    pub name: String,
    commitment: String,
}

/// What a custodian receives at init.
pub struct IssuedShare {
    pub custodian: String,
    pub x: u8,
    /// The share as text (`arca-share-v1:…`), or encrypted to the custodian's key.
    pub text: Zeroizing<String>,
    /// True when `text` is base64 of an RSA-OAEP-SHA-256 ciphertext of the share.
    pub encrypted: bool,
}

impl std::fmt::Debug for IssuedShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedShare")
            .field("custodian", &self.custodian)
            .field("x", &self.x)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

/// A custodian as given to init: a name and, optionally, an RSA public key (SPKI DER) to
/// encrypt its share to.
pub struct CustodianSpec {
    pub name: String,
    pub rsa_public_key: Option<Vec<u8>>,
}

/// Where unsealing stands (`GET /v1/sys/status`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealStatus {
    pub sealed: bool,
    /// Where the root key is kept: `dev` (unseal-key file), `shamir` (split among
    /// custodians) or `hsm` (in a PKCS#11 token).
    pub mode: String,
    pub threshold: Option<u8>,
    pub shares: Option<u8>,
    /// Valid shares submitted so far in this unseal.
    pub progress: u8,
    /// Custodians whose shares are in (names only).
    pub submitted_by: Vec<String>,
}

/// A share submission.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnsealRequest {
    /// The share as written at init: `arca-share-v1:<x>:<base64>`.
    #[schema(value_type = String)]
    #[serde(deserialize_with = "zeroizing_string")]
    pub share: Zeroizing<String>,
}

/// Reads a string straight into a zeroizing buffer (the `String` serde builds is moved,
/// not copied).
fn zeroizing_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Zeroizing<String>, D::Error> {
    String::deserialize(d).map(Zeroizing::new)
}

/// How long a rekey attempt waits for the custodians' shares before it is forgotten.
pub const REKEY_ATTEMPT_TTL_SECS: i64 = 3600;
/// The smallest threshold outside dev mode: one person alone must never hold the root key.
pub const MIN_THRESHOLD: u8 = 2;

/// The start of a rekey (`POST /v1/sys/rekey`): the custody the root key should have. Nothing
/// changes until the current custodians present a quorum of their shares
/// (`POST /v1/sys/rekey/share`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RekeyRequest {
    /// How many of the new shares unseal the server (at least 2).
    pub threshold: u8,
    /// The new custodians, each with the RSA public key its new share is encrypted to.
    pub custodians: Vec<CustodianInput>,
    /// Make a new root key and re-wrap every tenant KEK under it.
    #[serde(default)]
    pub rotate_root: bool,
}

/// A new custodian: a name and the RSA public key (PEM "PUBLIC KEY", SPKI, at least 2048
/// bits) its share is encrypted to. The key is required: the server never hands a share out
/// in clear.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustodianInput {
    pub name: String,
    /// Required (an absent or empty one is refused, naming this field).
    #[serde(default)]
    pub rsa_public_key_pem: String,
}

/// One current custodian's share presented for the rekey in progress.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RekeyShareRequest {
    /// The nonce of the rekey in progress (`GET /v1/sys/rekey`): the share approves that
    /// plan and no other.
    pub nonce: String,
    /// The custodian's current share: `arca-share-v1:<x>:<base64>`.
    #[schema(value_type = String)]
    #[serde(deserialize_with = "zeroizing_string")]
    pub share: Zeroizing<String>,
}

// A share is never Debug-printed: these say only that one is there.
impl std::fmt::Debug for UnsealRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsealRequest").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RekeyShareRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RekeyShareRequest")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

/// A new custodian as the rekey in progress names it (what the current custodians approve).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlannedCustodian {
    pub name: String,
    /// SHA-256 of the custodian's public key (SPKI DER), hex: each custodian checks it is
    /// theirs before the current custodians approve.
    pub key_sha256: String,
}

/// A rekey waiting for the current custodians' shares. Never holds a share.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RekeyAttemptView {
    pub nonce: String,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The system operator who started it.
    pub started_by: String,
    pub rotate_root: bool,
    /// The threshold of the new shares.
    pub new_threshold: u8,
    pub new_custodians: Vec<PlannedCustodian>,
    /// How many current shares must be presented (the current threshold).
    pub required: u8,
    pub progress: u8,
    /// Current custodians whose shares are in (names only).
    pub submitted_by: Vec<String>,
}

/// Where rekeying stands: the attempt in progress, and the outcome of the last one that
/// completed since this server was unsealed (its encrypted shares, so that they can be
/// fetched again until the next rekey starts, the server seals or stops).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RekeyStatus {
    pub attempt: Option<RekeyAttemptView>,
    pub result: Option<RekeyResponse>,
}

/// The outcome of a completed rekey: the new shares, each encrypted to its custodian.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RekeyResponse {
    pub nonce: String,
    pub threshold: u8,
    pub rotated: bool,
    pub completed_at: DateTime<Utc>,
    pub shares: Vec<ShareOut>,
}

/// One custodian's new share, encrypted to its RSA public key (never in clear).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShareOut {
    pub custodian: String,
    pub index: u8,
    /// Base64 of the RSA-OAEP-SHA-256 ciphertext of `arca-share-v1:<x>:<base64>`.
    pub encrypted_share: String,
    pub key_sha256: String,
}

/// A rekey in progress, in memory only (forgotten on seal and restart).
pub(crate) struct RekeyAttempt {
    nonce: String,
    started_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    started_by: Arc<arca_core::model::Principal>,
    started_request: String,
    /// The custody record the attempt began under: completion replaces exactly this one.
    custody_doc: Vec<u8>,
    threshold: u8,
    rotate_root: bool,
    custodians: Vec<CustodianSpec>,
    /// Current shares presented so far (zeroized on drop).
    shares: Vec<Share>,
}

/// The rekey state of a service.
#[derive(Default)]
pub(crate) struct RekeySlot {
    attempt: Option<RekeyAttempt>,
    last: Option<RekeyResponse>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn commitment(salt: &[u8], s: &Share) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"arca/share-commitment/v1");
    ctx.update(salt);
    ctx.update(&[s.x]);
    ctx.update(&s.y);
    hex(ctx.finish().as_ref())
}

fn check_value(root: &[u8]) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, root);
    hex(hmac::sign(&k, b"arca/root-check/v1").as_ref())
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Formats a share for a custodian.
pub fn share_text(s: &Share) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "{SHARE_PREFIX}{}:{}",
        s.x,
        base64::engine::general_purpose::STANDARD.encode(&s.y[..])
    ))
}

/// Parses a share typed or pasted by a custodian (surrounding whitespace ignored).
pub fn parse_share(text: &str) -> Result<Share> {
    let bad = || {
        Error::invalid(
            "share",
            "not an Arca root-key share (arca-share-v1:<number>:<base64>)",
        )
    };
    let rest = text.trim().strip_prefix(SHARE_PREFIX).ok_or_else(bad)?;
    let (x, y) = rest.split_once(':').ok_or_else(bad)?;
    let x: u8 = x.parse().ok().filter(|x| *x > 0).ok_or_else(bad)?;
    let y = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(y)
            .map_err(|_| bad())?,
    );
    if y.len() != 32 {
        return Err(bad());
    }
    Ok(Share { x, y })
}

impl Service {
    /// The custody record, if this store uses Shamir custody.
    pub async fn custody(&self) -> Result<Option<CustodyRecord>> {
        match self.store.get_meta(CUSTODY).await? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::internal(format!("custody record: {e}"))),
        }
    }

    /// HSM mode: on a new store, generates the root key in the token (first start) and
    /// records the mode; on an HSM store, finds the key in the token and unseals with it. A
    /// store under another custody, or a token without the key, is refused: a server never
    /// makes a second root key for a store.
    pub async fn unseal_hsm(&self, s: &arca_crypto::hsm::HsmSettings) -> Result<()> {
        let mode = self.store.get_meta(ROOT_MODE).await?;
        let first = match mode.as_deref() {
            Some(b"hsm") => false,
            None if self
                .store
                .get_meta(crate::bootstrap::SEALED_ROOT)
                .await?
                .is_none() =>
            {
                true
            }
            _ => {
                return Err(Error::conflict(
                    "this data directory's root key is not in an HSM (it is in dev mode or under Shamir custody); root.mode = \"hsm\" cannot open it",
                ))
            }
        };
        let root = arca_crypto::hsm::HsmRoot::open(s, first)?;
        if first && !self.store.put_meta_if_absent(ROOT_MODE, b"hsm").await? {
            return Err(Error::conflict("another process initialised this store"));
        }
        if first {
            let mut d = serde_json::Map::new();
            d.insert("custody".into(), "hsm".into());
            d.insert("token_label".into(), s.token_label.clone().into());
            d.insert("key_label".into(), s.key_label.clone().into());
            self.record_server_event(Action::InitRootKey, d).await;
        }
        let root = Arc::new(root);
        self.add_provider(
            arca_core::model::ProtectionLevel::Hsm,
            Arc::new(arca_crypto::hsm::HsmProvider::new(root.clone())),
        );
        self.unseal_with(root);
        Ok(())
    }

    /// The root-of-trust mode the store records (`dev` when none is recorded).
    pub async fn root_mode(&self) -> Result<String> {
        Ok(match self.store.get_meta(ROOT_MODE).await? {
            Some(m) => String::from_utf8_lossy(&m).into_owned(),
            None => "dev".into(),
        })
    }

    /// True when the store was initialised for Shamir custody (so a start stays sealed).
    pub async fn uses_shamir(&self) -> Result<bool> {
        Ok(self.store.get_meta(ROOT_MODE).await?.as_deref() == Some(b"shamir"))
    }

    /// Initialises a new store for Shamir custody: makes the root key, splits it, records
    /// the commitments, and leaves the service unsealed (so the caller can bootstrap the
    /// first tenants). Refuses a store that already has a root key.
    ///
    /// A threshold below 2 lets one person hold the root key alone: it is refused unless
    /// `dev_single_custodian` says this is a throwaway development server.
    pub async fn init_shamir(
        &self,
        threshold: u8,
        custodians: Vec<CustodianSpec>,
        dev_single_custodian: bool,
    ) -> Result<Vec<IssuedShare>> {
        let n = u8::try_from(custodians.len())
            .map_err(|_| Error::invalid("custodians", "at most 255 custodians"))?;
        if self.store.get_meta(ROOT_MODE).await?.is_some()
            || self
                .store
                .get_meta(crate::bootstrap::SEALED_ROOT)
                .await?
                .is_some()
        {
            return Err(Error::conflict(
                "this data directory already has a root key; init only makes new ones",
            ));
        }
        let root = self.new_root_key()?;
        let min = if dev_single_custodian {
            1
        } else {
            MIN_THRESHOLD
        };
        let (record, issued) = self.split_root(&root, threshold, &custodians, min)?;
        let doc = serde_json::to_vec(&record).map_err(|e| Error::internal(e.to_string()))?;
        if !self.store.put_meta_if_absent(CUSTODY, &doc).await?
            || !self.store.put_meta_if_absent(ROOT_MODE, b"shamir").await?
        {
            return Err(Error::conflict("another process initialised this store"));
        }
        self.install_custody_root(root, threshold, n);
        tracing::info!(
            threshold,
            shares = n,
            "initialised Shamir custody of the root key"
        );
        let mut d = serde_json::Map::new();
        d.insert("custody".into(), "shamir".into());
        d.insert("threshold".into(), threshold.into());
        if threshold < MIN_THRESHOLD {
            d.insert("dev_single_custodian".into(), true.into());
            tracing::warn!(
                "INSECURE: threshold {threshold}: one custodian alone holds the root key (dev only)"
            );
        }
        d.insert(
            "custodians".into(),
            custodians
                .iter()
                .map(|c| serde_json::Value::from(c.name.clone()))
                .collect(),
        );
        self.record_server_event(Action::InitRootKey, d).await;
        Ok(issued)
    }

    fn new_root_key(&self) -> Result<Zeroizing<[u8; 32]>> {
        Ok(Zeroizing::new(
            <[u8; 32]>::try_from(&self.crypto.random(32)?[..])
                .map_err(|_| Error::internal("rng"))?,
        ))
    }

    /// Splits a root key among custodians: the record to store and the shares to hand out.
    fn split_root(
        &self,
        root: &[u8; 32],
        threshold: u8,
        custodians: &[CustodianSpec],
        min_threshold: u8,
    ) -> Result<(CustodyRecord, Vec<IssuedShare>)> {
        let n = u8::try_from(custodians.len())
            .map_err(|_| Error::invalid("custodians", "at most 255 custodians"))?;
        check_threshold(threshold, n, min_threshold)?;
        let mut names: Vec<&str> = custodians.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) || names.iter().any(|n| n.is_empty()) {
            return Err(Error::invalid(
                "custodians",
                "custodian names must be distinct and not empty",
            ));
        }
        let crypto = self.crypto.clone();
        let mut rng = move |b: &mut [u8]| {
            let r = crypto.random(b.len())?;
            b.copy_from_slice(&r);
            Ok(())
        };
        let shares = shamir::split(&root[..], threshold, n, &mut rng)?;
        let salt = self.crypto.random(16)?;
        let record = CustodyRecord {
            threshold,
            shares: n,
            custodians: custodians
                .iter()
                .zip(&shares)
                .map(|(c, s)| Custodian {
                    x: s.x,
                    name: c.name.clone(),
                    commitment: commitment(&salt, s),
                })
                .collect(),
            salt: hex(&salt),
            check: check_value(&root[..]),
            created_at: self.now(),
        };
        let mut issued = Vec::new();
        for (c, s) in custodians.iter().zip(&shares) {
            let text = share_text(s);
            issued.push(match &c.rsa_public_key {
                Some(spki) => IssuedShare {
                    custodian: c.name.clone(),
                    x: s.x,
                    text: Zeroizing::new(encrypt_to(spki, text.as_bytes()).map_err(|e| {
                        Error::invalid("custodians", format!("public key of {}: {e}", c.name))
                    })?),
                    encrypted: true,
                },
                None => IssuedShare {
                    custodian: c.name.clone(),
                    x: s.x,
                    text,
                    encrypted: false,
                },
            });
        }
        Ok((record, issued))
    }

    /// Puts a custody root key in service. No other copy of its bytes is kept: re-sharing
    /// rebuilds it from the custodians' shares.
    fn install_custody_root(&self, root: Zeroizing<[u8; 32]>, threshold: u8, n: u8) {
        self.unseal_with(Arc::new(SoftwareRoot::new(
            root,
            format!("Shamir custody ({threshold} of {n})"),
        )));
    }

    /// Starts a rekey (system operators): records what the new custody should be (a new
    /// threshold of at least 2, new custodians each with an RSA public key, optionally a new
    /// root key) and changes nothing else. The change happens only when the current
    /// custodians present their threshold of shares ([`Service::submit_rekey_share`]): an
    /// operator alone can neither re-share nor rotate the root key. One attempt at a time;
    /// it expires after [`REKEY_ATTEMPT_TTL_SECS`] and is forgotten on seal and restart.
    pub async fn start_rekey(&self, caller: &Caller, req: RekeyRequest) -> Result<RekeyStatus> {
        self.audited(caller, Action::StartRootRekey, async |note: &mut Note| {
            self.authorize(caller, Action::StartRootRekey, None)?;
            note.set("rotate_root", req.rotate_root);
            let custody_doc = self
                .store
                .get_meta(CUSTODY)
                .await?
                .ok_or_else(|| Error::conflict("this server is not under Shamir custody"))?;
            let custody: CustodyRecord = serde_json::from_slice(&custody_doc)
                .map_err(|e| Error::internal(format!("custody record: {e}")))?;
            let n = req.custodians.len();
            if n > 255 {
                return Err(Error::invalid("custodians", "at most 255 custodians"));
            }
            check_threshold(req.threshold, n as u8, MIN_THRESHOLD)?;
            let mut specs: Vec<CustodianSpec> = Vec::with_capacity(n);
            for (i, c) in req.custodians.iter().enumerate() {
                check_custodian_name(&format!("custodians[{i}].name"), &c.name)?;
                if specs.iter().any(|s| s.name == c.name) {
                    return Err(Error::invalid(
                        format!("custodians[{i}].name"),
                        format!("custodian {:?} is named twice", c.name),
                    ));
                }
                let field = format!("custodians[{i}].rsa_public_key_pem");
                let spki = pem::parse(&c.rsa_public_key_pem)
                    .ok()
                    .filter(|p| p.tag() == "PUBLIC KEY")
                    .map(|p| p.contents().to_vec())
                    .ok_or_else(|| {
                        Error::invalid(
                            field.clone(),
                            "not a PEM \"PUBLIC KEY\" (SPKI); every new custodian needs one: the new shares are only ever handed out encrypted",
                        )
                    })?;
                check_rsa_key(&spki).map_err(|e| Error::invalid(field.clone(), e))?;
                if let Some(other) = specs
                    .iter()
                    .find(|s| s.rsa_public_key.as_deref() == Some(spki.as_slice()))
                {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "the same public key as {}: each custodian needs their own key",
                            other.name
                        ),
                    ));
                }
                specs.push(CustodianSpec {
                    name: c.name.clone(),
                    rsa_public_key: Some(spki),
                });
            }
            let now = self.now();
            let nonce = uuid::Uuid::new_v4().to_string();
            let attempt = RekeyAttempt {
                nonce: nonce.clone(),
                started_at: now,
                expires_at: now + chrono::Duration::seconds(REKEY_ATTEMPT_TTL_SECS),
                started_by: caller.principal.clone(),
                started_request: caller.meta.request_id.clone(),
                custody_doc,
                threshold: req.threshold,
                rotate_root: req.rotate_root,
                custodians: specs,
                shares: Vec::new(),
            };
            {
                let mut slot = self.rekey.lock().unwrap_or_else(|e| e.into_inner());
                expire_rekey(&mut slot, now);
                if let Some(a) = &slot.attempt {
                    return Err(Error::conflict(format!(
                        "a rekey is already in progress (nonce {}, started by {}); cancel it first (DELETE /v1/sys/rekey)",
                        a.nonce, a.started_by.name
                    )));
                }
                slot.last = None;
                slot.attempt = Some(attempt);
            }
            note.set("nonce", nonce);
            note.set("threshold", req.threshold);
            note.set("required", custody.threshold);
            note.set(
                "custodians",
                req.custodians
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>(),
            );
            Ok(self.rekey_status_now(&custody))
        })
        .await
    }

    /// Where rekeying stands (no credential needed: the custodians read the plan they are
    /// asked to approve; no share is ever in it).
    pub async fn rekey_status(&self) -> Result<RekeyStatus> {
        let custody = self
            .custody()
            .await?
            .ok_or_else(|| Error::conflict("this server is not under Shamir custody"))?;
        Ok(self.rekey_status_now(&custody))
    }

    fn rekey_status_now(&self, custody: &CustodyRecord) -> RekeyStatus {
        let mut slot = self.rekey.lock().unwrap_or_else(|e| e.into_inner());
        expire_rekey(&mut slot, self.now());
        RekeyStatus {
            attempt: slot.attempt.as_ref().map(|a| RekeyAttemptView {
                nonce: a.nonce.clone(),
                started_at: a.started_at,
                expires_at: a.expires_at,
                started_by: a.started_by.name.clone(),
                rotate_root: a.rotate_root,
                new_threshold: a.threshold,
                new_custodians: a
                    .custodians
                    .iter()
                    .map(|c| PlannedCustodian {
                        name: c.name.clone(),
                        key_sha256: c
                            .rsa_public_key
                            .as_deref()
                            .map(sha256_hex)
                            .unwrap_or_default(),
                    })
                    .collect(),
                required: custody.threshold,
                progress: a.shares.len() as u8,
                submitted_by: a
                    .shares
                    .iter()
                    .filter_map(|s| custody.custodians.iter().find(|c| c.x == s.x))
                    .map(|c| c.name.clone())
                    .collect(),
            }),
            result: slot.last.clone(),
        }
    }

    /// Cancels the rekey in progress (system operators): the shares presented so far are
    /// dropped from memory and nothing changes.
    pub async fn cancel_rekey(&self, caller: &Caller) -> Result<RekeyStatus> {
        self.audited(caller, Action::CancelRootRekey, async |note: &mut Note| {
            self.authorize(caller, Action::CancelRootRekey, None)?;
            let custody = self
                .custody()
                .await?
                .ok_or_else(|| Error::conflict("this server is not under Shamir custody"))?;
            let dropped = {
                let mut slot = self.rekey.lock().unwrap_or_else(|e| e.into_inner());
                expire_rekey(&mut slot, self.now());
                slot.attempt.take()
            };
            let a = dropped.ok_or_else(|| Error::conflict("no rekey is in progress"))?;
            note.set("nonce", a.nonce.clone());
            note.set("progress", a.shares.len());
            drop(a);
            Ok(self.rekey_status_now(&custody))
        })
        .await
    }

    /// Takes one current custodian's share for the rekey in progress. The share is the
    /// credential (as at unseal: no token, rate-limited per address, audited with the
    /// custodian's name, never the share); it is checked against its commitment at once.
    /// When the current threshold of distinct valid shares is in, they are combined, the
    /// result is checked against the root key's check value, and only then the root key is
    /// re-shared (or rotated) in one transaction. The answer then carries the new shares,
    /// each encrypted to its custodian's key; the presented shares are dropped.
    pub async fn submit_rekey_share(
        &self,
        meta: &RequestMeta,
        req: RekeyShareRequest,
    ) -> Result<RekeyStatus> {
        self.audited_as(meta, None, Action::SubmitRootRekeyShare, async |note: &mut Note| {
            self.admit_source(meta.source_ip())?;
            let custody = self
                .custody()
                .await?
                .ok_or_else(|| Error::conflict("this server is not under Shamir custody"))?;
            let share = parse_share(&req.share)?;
            let custodian = custody
                .custodians
                .iter()
                .find(|c| c.x == share.x)
                .ok_or_else(|| {
                    Error::invalid("share", "no current custodian holds a share with this number")
                })?;
            note.set("custodian", custodian.name.clone());
            note.set("share_index", share.x);
            let ready = {
                let mut slot = self.rekey.lock().unwrap_or_else(|e| e.into_inner());
                expire_rekey(&mut slot, self.now());
                let a = slot
                    .attempt
                    .as_mut()
                    .ok_or_else(|| Error::conflict("no rekey is in progress"))?;
                if aws_lc_rs::constant_time::verify_slices_are_equal(
                    a.nonce.as_bytes(),
                    req.nonce.trim().as_bytes(),
                )
                .is_err()
                {
                    return Err(Error::invalid(
                        "nonce",
                        "not the nonce of the rekey in progress (GET /v1/sys/rekey shows it and its plan)",
                    ));
                }
                note.set("nonce", a.nonce.clone());
                verify_share(&custody, custodian, &share)?;
                if a.shares.iter().any(|s| s.x == share.x) {
                    return Err(Error::conflict(format!(
                        "{}'s share was already presented for this rekey",
                        custodian.name
                    )));
                }
                a.shares.push(share);
                note.set("progress", a.shares.len());
                if a.shares.len() >= custody.threshold as usize {
                    slot.attempt.take()
                } else {
                    None
                }
            };
            if let Some(attempt) = ready {
                let presented: Vec<String> = attempt
                    .shares
                    .iter()
                    .filter_map(|s| custody.custodians.iter().find(|c| c.x == s.x))
                    .map(|c| c.name.clone())
                    .collect();
                let result = self.complete_rekey(meta, &custody, attempt, &presented).await?;
                note.set("completed", true);
                note.set(
                    if result.rotated {
                        "RotateRootKey"
                    } else {
                        "ReshareRootKey"
                    },
                    true,
                );
                self.rekey.lock().unwrap_or_else(|e| e.into_inner()).last = Some(result.clone());
                return Ok(RekeyStatus {
                    attempt: None,
                    result: Some(result),
                });
            }
            Ok(self.rekey_status_now(&custody))
        })
        .await
    }

    /// The quorum is in: rebuilds the current root key from the presented shares, checks
    /// it, and re-shares or rotates it in one transaction whose audit event names the
    /// operator who asked and the custodians who approved.
    async fn complete_rekey(
        &self,
        meta: &RequestMeta,
        custody: &CustodyRecord,
        attempt: RekeyAttempt,
        presented: &[String],
    ) -> Result<RekeyResponse> {
        let action = if attempt.rotate_root {
            Action::RotateRootKey
        } else {
            Action::ReshareRootKey
        };
        self.audited_as(meta, Some(&attempt.started_by), action, async |note: &mut Note| {
            let current = self
                .store
                .get_meta(CUSTODY)
                .await?
                .ok_or_else(|| Error::conflict("this server is not under Shamir custody"))?;
            if current != attempt.custody_doc {
                return Err(Error::conflict(
                    "the custody changed since this rekey started (another node rekeyed): start again",
                ));
            }
            let combined = shamir::combine(&attempt.shares)?;
            if aws_lc_rs::constant_time::verify_slices_are_equal(
                check_value(&combined).as_bytes(),
                custody.check.as_bytes(),
            )
            .is_err()
            {
                return Err(Error::internal(
                    "the shares combine to a wrong root key although each matched its commitment",
                ));
            }
            let old_root = Zeroizing::new(
                <[u8; 32]>::try_from(&combined[..]).map_err(|_| Error::internal("root length"))?,
            );
            drop(combined);
            let new_root = if attempt.rotate_root {
                self.new_root_key()?
            } else {
                old_root.clone()
            };
            let (record, issued) =
                self.split_root(&new_root, attempt.threshold, &attempt.custodians, MIN_THRESHOLD)?;
            if issued.iter().any(|s| !s.encrypted) {
                return Err(Error::internal("a new share would leave the server in clear"));
            }
            let mut keks = Vec::new();
            let mut metas = vec![(
                CUSTODY.to_string(),
                serde_json::to_vec(&record).map_err(|e| Error::internal(e.to_string()))?,
            )];
            if attempt.rotate_root {
                use arca_crypto::RootOfTrust;
                let old = SoftwareRoot::new(old_root, "old root");
                let new = SoftwareRoot::new(new_root.clone(), "new root");
                for (id, wrapped) in self.store.tenant_keks().await? {
                    keks.push((id, new.wrap(&old.unwrap(&wrapped)?)?));
                }
                for name in crate::ROOT_WRAPPED_META {
                    if let Some(w) = self.store.get_meta(name).await? {
                        metas.push((name.to_string(), new.wrap(&old.unwrap(&w)?)?));
                    }
                }
                note.set("tenant_keks_rewrapped", keks.len());
            }
            note.set("nonce", attempt.nonce.clone());
            note.set("started_request", attempt.started_request.clone());
            note.set("approved_by_custodians", presented.to_vec());
            note.set("threshold", record.threshold);
            note.set(
                "custodians",
                record
                    .custodians
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>(),
            );
            // The change is the operator's request, approved by the custodians' quorum:
            // the event names both, and is one transaction with the change.
            note.committed = true;
            let audit = vec![self.event(
                meta,
                Some(&attempt.started_by),
                action,
                note,
                Ok(()),
            )];
            self.store
                .replace_root_material(&keks, &metas, (CUSTODY, &attempt.custody_doc), &audit)
                .await?;
            if attempt.rotate_root {
                self.cache.keks.clear();
                self.cache.keys.clear();
                *self.session_key.write().unwrap_or_else(|e| e.into_inner()) = None;
                self.audit_signer_reset();
            }
            self.install_custody_root(new_root, record.threshold, record.shares);
            tracing::info!(
                threshold = record.threshold,
                shares = record.shares,
                rotated = attempt.rotate_root,
                "the custodians' quorum re-shared the root key"
            );
            Ok(RekeyResponse {
                nonce: attempt.nonce.clone(),
                threshold: record.threshold,
                rotated: attempt.rotate_root,
                completed_at: self.now(),
                shares: issued
                    .iter()
                    .zip(&attempt.custodians)
                    .map(|(s, c)| ShareOut {
                        custodian: s.custodian.clone(),
                        index: s.x,
                        encrypted_share: s.text.to_string(),
                        key_sha256: c.rsa_public_key.as_deref().map(sha256_hex).unwrap_or_default(),
                    })
                    .collect(),
            })
        })
        .await
    }

    /// Where unsealing stands.
    pub async fn seal_status(&self) -> Result<SealStatus> {
        let custody = self.custody().await?;
        let mode = match custody {
            Some(_) => "shamir".to_string(),
            None => self.root_mode().await?,
        };
        let progress = self
            .unseal_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let submitted_by = custody
            .as_ref()
            .map(|c| {
                progress
                    .iter()
                    .filter_map(|s| c.custodians.iter().find(|k| k.x == s.x))
                    .map(|k| k.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        Ok(SealStatus {
            sealed: self.is_sealed(),
            mode,
            threshold: custody.as_ref().map(|c| c.threshold),
            shares: custody.as_ref().map(|c| c.shares),
            progress: progress.len() as u8,
            submitted_by,
        })
    }

    /// Takes one custodian's share. A share that does not match its commitment is refused
    /// at once (and audited with the custodian's name); the threshold-th valid share
    /// unseals. Shares stay in memory only until then.
    pub async fn submit_share(&self, meta: &RequestMeta, req: UnsealRequest) -> Result<SealStatus> {
        self.audited_as(meta, None, Action::Unseal, async |note: &mut Note| {
            self.admit_source(meta.source_ip())?;
            let custody = self
                .custody()
                .await?
                .ok_or_else(|| Error::conflict("this server is not under Shamir custody"))?;
            if !self.is_sealed() {
                return Err(Error::conflict("the server is already unsealed"));
            }
            let share = parse_share(&req.share)?;
            let custodian = custody
                .custodians
                .iter()
                .find(|c| c.x == share.x)
                .ok_or_else(|| Error::invalid("share", "no custodian holds a share with this number"))?;
            note.set("custodian", custodian.name.clone());
            note.set("share_index", share.x);
            verify_share(&custody, custodian, &share)?;
            let ready = {
                let mut p = self.unseal_progress.lock().unwrap_or_else(|e| e.into_inner());
                if p.iter().any(|s| s.x == share.x) {
                    return Err(Error::conflict(format!(
                        "{}'s share was already submitted",
                        custodian.name
                    )));
                }
                p.push(share);
                if p.len() >= custody.threshold as usize {
                    Some(std::mem::take(&mut *p))
                } else {
                    None
                }
            };
            if let Some(shares) = ready {
                let root = shamir::combine(&shares)?;
                if check_value(&root) != custody.check {
                    return Err(Error::internal(
                        "the shares combine to a wrong root key although each matched its commitment",
                    ));
                }
                let key = Zeroizing::new(
                    <[u8; 32]>::try_from(&root[..]).map_err(|_| Error::internal("root length"))?,
                );
                self.install_custody_root(key, custody.threshold, custody.shares);
                // A staged restore goes in now that the root key is back; if it does not
                // verify, the server seals again and says why.
                if let Err(e) = self.apply_pending_restore().await {
                    self.seal_now();
                    return Err(e);
                }
                note.set("unsealed", true);
            }
            self.seal_status().await
        })
        .await
    }

    /// Seals: forgets the root key, every unwrapped tenant KEK and loaded key, and any
    /// partial unseal. System operators only; the server then serves status and unseal.
    pub async fn seal_server(&self, caller: &Caller) -> Result<SealStatus> {
        self.audited(caller, Action::Seal, async |_: &mut Note| {
            self.authorize(caller, Action::Seal, None)?;
            if !self.uses_shamir().await? {
                return Err(Error::conflict(
                    "a dev-mode server unseals itself from its unseal-key file; sealing it would not protect anything",
                ));
            }
            // Vouch for everything up to the seal while the signing key is still here.
            if let Err(e) = self.checkpoint_audit().await {
                tracing::warn!(error = %e, "no audit checkpoint before sealing");
            }
            self.seal_now();
            self.seal_status().await
        })
        .await
    }

    /// Another node replaced what the root key protects. Values wrapped under the root are
    /// re-read; if this node's root no longer opens the tenant KEKs (the root was rotated),
    /// it seals itself, so that it refuses requests (and `/readyz` sends traffic elsewhere)
    /// until it is unsealed with the new root's shares.
    pub async fn root_material_changed(&self) {
        *self.session_key.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.audit_signer_reset();
        let Ok(root) = self.root() else { return };
        let keks = match self.store.tenant_keks().await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-check the tenant KEKs after a root change");
                return;
            }
        };
        if let Some((tenant, wrapped)) = keks.first() {
            if root.unwrap(wrapped).is_err() {
                tracing::warn!(%tenant, "the root key was rotated on another node: this node seals itself; unseal it with the new shares");
                self.seal_now();
            }
        }
    }

    /// Drops the root key and everything unwrapped with it (no authorization, no audit:
    /// for the end of `arca init` and for [`Service::seal_server`]).
    pub fn seal_now(&self) {
        *self.root.write().unwrap_or_else(|e| e.into_inner()) = None;
        *self.session_key.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.audit_signer_reset();
        self.unseal_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        *self.rekey.lock().unwrap_or_else(|e| e.into_inner()) = RekeySlot::default();
        self.cache.keks.clear();
        self.cache.keys.clear();
        tracing::warn!("sealed: the root key and every key unwrapped with it are gone from memory");
    }
}

/// RSA-OAEP-SHA-256 encryption of a share to a custodian's public key (SPKI DER), base64.
/// The custodian decrypts with `openssl pkeyutl -decrypt -inkey key.pem -pkeyopt
/// rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256`.
fn encrypt_to(spki: &[u8], plaintext: &[u8]) -> std::result::Result<String, String> {
    use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
    let key = PublicEncryptingKey::from_der(spki).map_err(|_| "not an RSA public key (SPKI)")?;
    if key.key_size_bits() < 2048 {
        return Err("an RSA key of at least 2048 bits is needed".into());
    }
    let key = OaepPublicEncryptingKey::new(key).map_err(|_| "unusable RSA key")?;
    let mut out = vec![0u8; key.ciphertext_size()];
    let ct = key
        .encrypt(&OAEP_SHA256_MGF1SHA256, plaintext, &mut out, None)
        .map_err(|_| "RSA-OAEP encryption failed")?;
    Ok(base64::engine::general_purpose::STANDARD.encode(ct))
}

/// Checks a threshold: at least `min` (2 outside dev mode) and at most the number of
/// custodians.
fn check_threshold(threshold: u8, n: u8, min: u8) -> Result<()> {
    if threshold < min {
        return Err(Error::invalid(
            "threshold",
            format!(
                "must be at least {min}: with a threshold of 1 one person alone holds the root key \
                 (only `arca init --dev-single-custodian` makes such a throwaway dev server)"
            ),
        ));
    }
    if threshold > n {
        return Err(Error::invalid(
            "threshold",
            format!("must not exceed the number of custodians ({n})"),
        ));
    }
    Ok(())
}

/// A custodian's name is shown in status and audit and names the custodian's share file:
/// 1-64 letters, digits, `-`, `_`, `.`, `@`, not starting with `.`.
fn check_custodian_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "use 1-64 letters, digits, '-', '_', '.', '@' (not starting with '.')",
        ))
    }
}

/// Checks that a public key (SPKI DER) is an RSA key a share can be encrypted to.
fn check_rsa_key(spki: &[u8]) -> std::result::Result<(), String> {
    use aws_lc_rs::rsa::PublicEncryptingKey;
    let key = PublicEncryptingKey::from_der(spki).map_err(|_| "not an RSA public key (SPKI)")?;
    if key.key_size_bits() < 2048 {
        return Err("an RSA key of at least 2048 bits is needed".into());
    }
    Ok(())
}

fn sha256_hex(b: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, b).as_ref())
}

/// Checks a share against its custodian's commitment (constant time); a wrong one is
/// named by its custodian.
fn verify_share(custody: &CustodyRecord, custodian: &Custodian, share: &Share) -> Result<()> {
    let salt = unhex(&custody.salt).ok_or_else(|| Error::internal("custody salt"))?;
    aws_lc_rs::constant_time::verify_slices_are_equal(
        commitment(&salt, share).as_bytes(),
        custodian.commitment.as_bytes(),
    )
    .map_err(|_| {
        Error::invalid(
            "share",
            format!(
                "this is not {}'s share of this server's root key (wrong or mistyped)",
                custodian.name
            ),
        )
    })
}

/// Forgets an attempt past its expiry (its shares are zeroized as they drop).
fn expire_rekey(slot: &mut RekeySlot, now: DateTime<Utc>) {
    if slot.attempt.as_ref().is_some_and(|a| a.expires_at <= now) {
        slot.attempt = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_below_two_only_in_dev_mode() {
        let e = check_threshold(1, 3, MIN_THRESHOLD).unwrap_err();
        assert!(e.to_string().contains("threshold"), "{e}");
        assert!(check_threshold(0, 1, 1).is_err());
        check_threshold(1, 1, 1).unwrap();
        check_threshold(2, 2, MIN_THRESHOLD).unwrap();
        assert!(check_threshold(3, 2, MIN_THRESHOLD).is_err());
    }

    #[test]
    fn custodian_names() {
        for ok in ["alice", "bob-2", "c.d", "e_f@corp"] {
            check_custodian_name("n", ok).unwrap();
        }
        let long = "x".repeat(65);
        for bad in ["", ".hidden", "a/b", "a b", "x\\y", long.as_str()] {
            assert!(check_custodian_name("n", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn share_requests_do_not_debug_print_the_share() {
        let r: RekeyShareRequest =
            serde_json::from_str(r#"{"nonce": "n1", "share": "arca-share-v1:1:c2VjcmV0"}"#)
                .unwrap();
        let d = format!("{r:?}");
        assert!(d.contains("n1") && !d.contains("c2VjcmV0"), "{d}");
        let u: UnsealRequest =
            serde_json::from_str(r#"{"share": "arca-share-v1:1:c2VjcmV0"}"#).unwrap();
        assert!(!format!("{u:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn rsa_keys_only() {
        assert!(check_rsa_key(b"not der").is_err());
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::KeyPair;
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        check_rsa_key(kp.public_key().as_der().unwrap().as_ref()).unwrap();
    }
}
