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
    /// `dev` (unseal-key file) or `shamir`.
    pub mode: String,
    pub threshold: Option<u8>,
    pub shares: Option<u8>,
    /// Valid shares submitted so far in this unseal.
    pub progress: u8,
    /// Custodians whose shares are in (names only).
    pub submitted_by: Vec<String>,
}

/// A share submission.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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

/// New custody for the same root key, or for a new one (`rotate_root`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RekeyRequest {
    pub threshold: u8,
    pub custodians: Vec<CustodianInput>,
    /// Make a new root key and re-wrap every tenant KEK under it.
    #[serde(default)]
    pub rotate_root: bool,
}

/// A custodian: a name and, optionally, an RSA public key (PEM SPKI) to encrypt its share to.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustodianInput {
    pub name: String,
    #[serde(default)]
    pub rsa_public_key_pem: Option<String>,
}

/// The new shares, each shown once.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RekeyResponse {
    pub threshold: u8,
    pub rotated: bool,
    pub shares: Vec<ShareOut>,
}

/// One custodian's new share (plaintext `arca-share-v1:…`, or base64 RSA-OAEP ciphertext).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShareOut {
    pub custodian: String,
    pub index: u8,
    pub share: String,
    pub encrypted: bool,
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
            self.record_server_event("InitRootKey", d).await;
        }
        let root = Arc::new(root);
        *self.hsm.write().unwrap_or_else(|e| e.into_inner()) = Some(root.clone());
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
    pub async fn init_shamir(
        &self,
        threshold: u8,
        custodians: Vec<CustodianSpec>,
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
        let (record, issued) = self.split_root(&root, threshold, &custodians)?;
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
        d.insert(
            "custodians".into(),
            custodians
                .iter()
                .map(|c| serde_json::Value::from(c.name.clone()))
                .collect(),
        );
        self.record_server_event("InitRootKey", d).await;
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
    ) -> Result<(CustodyRecord, Vec<IssuedShare>)> {
        let n = u8::try_from(custodians.len())
            .map_err(|_| Error::invalid("custodians", "at most 255 custodians"))?;
        if threshold < 1 || threshold > n {
            return Err(Error::invalid(
                "threshold",
                format!("must be 1 to the number of custodians ({n})"),
            ));
        }
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

    /// Puts a custody root key in service (and keeps its bytes for re-sharing).
    fn install_custody_root(&self, root: Zeroizing<[u8; 32]>, threshold: u8, n: u8) {
        *self.custody_root.lock().unwrap_or_else(|e| e.into_inner()) = Some(root.clone());
        self.unseal_with(Arc::new(SoftwareRoot::new(
            root,
            format!("Shamir custody ({threshold} of {n})"),
        )));
    }

    /// Re-shares the root key among new custodians (a new threshold, new or replaced
    /// custodians), or, with `rotate_root`, makes a new root key, re-wraps every tenant KEK
    /// and the session key under it (key versions are untouched: they are sealed by the
    /// KEKs), and shares the new one. Old shares stop working either way. One transaction:
    /// a crash leaves the old custody or the new one, never half. System operators only.
    pub async fn rekey_custody(&self, caller: &Caller, req: RekeyRequest) -> Result<RekeyResponse> {
        let action = if req.rotate_root {
            "RotateRootKey"
        } else {
            "ReshareRootKey"
        };
        let mut note = Note::default();
        let r = async {
            self.authorize(caller, action, None)?;
            let old_doc = self
                .store
                .get_meta(CUSTODY)
                .await?
                .ok_or_else(|| Error::conflict("this server is not under Shamir custody"))?;
            let old_root = self
                .custody_root
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .ok_or(Error::Sealed)?;
            let specs = req
                .custodians
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let rsa_public_key = match &c.rsa_public_key_pem {
                        Some(p) => Some(
                            pem::parse(p)
                                .ok()
                                .filter(|p| p.tag() == "PUBLIC KEY")
                                .map(|p| p.contents().to_vec())
                                .ok_or_else(|| {
                                    Error::invalid(
                                        format!("custodians[{i}].rsa_public_key_pem"),
                                        "not a PEM \"PUBLIC KEY\" (SPKI)",
                                    )
                                })?,
                        ),
                        None => None,
                    };
                    Ok(CustodianSpec {
                        name: c.name.clone(),
                        rsa_public_key,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let new_root = if req.rotate_root {
                self.new_root_key()?
            } else {
                old_root.clone()
            };
            let (record, issued) = self.split_root(&new_root, req.threshold, &specs)?;
            let mut keks = Vec::new();
            let mut meta = vec![(
                CUSTODY.to_string(),
                serde_json::to_vec(&record).map_err(|e| Error::internal(e.to_string()))?,
            )];
            if req.rotate_root {
                use arca_crypto::RootOfTrust;
                let old = SoftwareRoot::new(old_root, "old root");
                let new = SoftwareRoot::new(new_root.clone(), "new root");
                for (id, wrapped) in self.store.tenant_keks().await? {
                    keks.push((id, new.wrap(&old.unwrap(&wrapped)?)?));
                }
                for name in crate::ROOT_WRAPPED_META {
                    if let Some(w) = self.store.get_meta(name).await? {
                        meta.push((name.to_string(), new.wrap(&old.unwrap(&w)?)?));
                    }
                }
                note.set("tenant_keks_rewrapped", keks.len());
            }
            note.set("threshold", record.threshold);
            note.set(
                "custodians",
                record
                    .custodians
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>(),
            );
            let audit = self.change_event(caller, action, &mut note);
            self.store
                .replace_root_material(&keks, &meta, (CUSTODY, &old_doc), &audit)
                .await?;
            if req.rotate_root {
                self.cache.keks.clear();
                self.cache.keys.clear();
                *self.session_key.write().unwrap_or_else(|e| e.into_inner()) = None;
                self.audit_signer_reset();
            }
            self.install_custody_root(new_root, record.threshold, record.shares);
            Ok(RekeyResponse {
                threshold: record.threshold,
                rotated: req.rotate_root,
                shares: issued
                    .iter()
                    .map(|s| ShareOut {
                        custodian: s.custodian.clone(),
                        index: s.x,
                        share: s.text.to_string(),
                        encrypted: s.encrypted,
                    })
                    .collect(),
            })
        }
        .await;
        self.done(caller, action, note, r).await
    }

    /// Where unsealing stands.
    pub async fn seal_status(&self) -> Result<SealStatus> {
        let custody = self.custody().await?;
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
            mode: if custody.is_some() { "shamir" } else { "dev" }.into(),
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
        let mut note = Note::default();
        let r = async {
            self.limits.admit_source(meta.source_ip(), self.now())?;
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
            let salt = unhex(&custody.salt).ok_or_else(|| Error::internal("custody salt"))?;
            let ok = aws_lc_rs::constant_time::verify_slices_are_equal(
                commitment(&salt, &share).as_bytes(),
                custodian.commitment.as_bytes(),
            )
            .is_ok();
            if !ok {
                return Err(Error::invalid(
                    "share",
                    format!(
                        "this is not {}'s share of this server's root key (wrong or mistyped)",
                        custodian.name
                    ),
                ));
            }
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
        }
        .await;
        self.finish(meta, None, "Unseal", note, r).await
    }

    /// Seals: forgets the root key, every unwrapped tenant KEK and loaded key, and any
    /// partial unseal. System operators only; the server then serves status and unseal.
    pub async fn seal_server(&self, caller: &Caller) -> Result<SealStatus> {
        let r = async {
            self.authorize(caller, "Seal", None)?;
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
        }
        .await;
        self.done(caller, "Seal", Note::default(), r).await
    }

    /// Drops the root key and everything unwrapped with it (no authorization, no audit:
    /// for the end of `arca init` and for [`Service::seal_server`]).
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

    pub fn seal_now(&self) {
        *self.root.write().unwrap_or_else(|e| e.into_inner()) = None;
        *self.custody_root.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.session_key.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.audit_signer_reset();
        self.unseal_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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
