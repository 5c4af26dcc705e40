//! Bring your own key, the import side: keys whose material is made outside Arca and
//! brought in wrapped, as AWS KMS's `GetParametersForImport` / `ImportKeyMaterial` /
//! `DeleteImportedKeyMaterial` define it.
//!
//! 1. A key is created to receive material (`pending_import`, origin IMPORTED): it exists,
//!    has an id and a policy, and cannot be used.
//! 2. `get_import_parameters` makes a one-off RSA wrapping key pair (2048–4096) and an import
//!    token that names it, bound to the key and the wrapping algorithm and valid 24 hours.
//!    The private half is sealed under the tenant KEK in an `import-token` record.
//! 3. The caller wraps its material under the public half: RSAES-OAEP (SHA-1 or SHA-256),
//!    or RSA-AES key wrap (CKM_RSA_AES_KEY_WRAP: an ephemeral AES key under RSA-OAEP, the
//!    material under it with AES-KWP, RFC 5649).
//! 4. `import_key_material` unwraps it in the service, checks it fits the key's spec, and
//!    seals it under the tenant KEK like any version. The material may carry an expiry: at
//!    that date the lifecycle task deletes it and the key is pending import again.
//!
//! Deleted material is not destroyed material: the version keeps its digest, and importing
//! the same material again restores it (other material is refused).

use arca_core::Action;
use std::sync::Arc;

use arca_core::lifecycle;
use arca_core::model::{Key, KeyEvent, KeySpec, KeyState, KeyVersion, Origin};
use arca_core::{Error, Result, StateDetail};
use arca_crypto::provider::{KeyHandle, KeyMaterial, OaepHash};
use arca_store::{MaterialChange, Record, VersionWrite};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::api::{Bytes, KeyInfo};
use crate::keys::event;
use crate::{Caller, Note, Service};

/// The record family of import tokens.
const IMPORT_TOKEN: &str = "import-token";

/// How long an import token (and its wrapping key) is valid: AWS's 24 hours.
pub const IMPORT_TOKEN_TTL_HOURS: i64 = 24;

/// The longest expiry imported material may carry (AWS: 365 days).
pub const MAX_MATERIAL_VALIDITY_DAYS: i64 = 365;

/// The message of a refused import token that has expired (AWS tells it apart:
/// ExpiredImportTokenException). Its home is `arca_core::error`, beside the error that
/// carries it; it is named here too because it is the import's text.
pub use arca_core::error::IMPORT_TOKEN_EXPIRED;

/// How the caller wraps the material it imports (AWS's `WrappingAlgorithm` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum WrappingAlgorithm {
    #[serde(rename = "RSAES_OAEP_SHA_1")]
    RsaesOaepSha1,
    #[serde(rename = "RSAES_OAEP_SHA_256")]
    RsaesOaepSha256,
    #[serde(rename = "RSA_AES_KEY_WRAP_SHA_1")]
    RsaAesKeyWrapSha1,
    #[serde(rename = "RSA_AES_KEY_WRAP_SHA_256")]
    RsaAesKeyWrapSha256,
}

impl WrappingAlgorithm {
    fn hash(self) -> OaepHash {
        match self {
            WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaAesKeyWrapSha1 => {
                OaepHash::Sha1
            }
            _ => OaepHash::Sha256,
        }
    }

    fn key_wrap(self) -> bool {
        matches!(
            self,
            WrappingAlgorithm::RsaAesKeyWrapSha1 | WrappingAlgorithm::RsaAesKeyWrapSha256
        )
    }
}

/// Asks for a wrapping key and an import token for a key that takes imported material.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportParametersRequest {
    pub wrapping_algorithm: WrappingAlgorithm,
    /// RSA_2048, RSA_3072 or RSA_4096.
    pub wrapping_key_spec: KeySpec,
}

/// A wrapping public key and the token to send back with the wrapped material.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportParameters {
    pub key_id: Uuid,
    /// Opaque; valid until `parameters_valid_to`, for this key and algorithm only.
    pub import_token: Bytes,
    /// The wrapping key, SubjectPublicKeyInfo DER.
    pub public_key: Bytes,
    pub public_key_pem: String,
    pub wrapping_algorithm: WrappingAlgorithm,
    pub parameters_valid_to: DateTime<Utc>,
}

/// Wrapped material to import into a key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportMaterialRequest {
    pub import_token: Bytes,
    /// The material wrapped as the token's algorithm says: raw bytes for symmetric keys,
    /// PKCS#8 DER for private keys.
    pub encrypted_key_material: Bytes,
    /// When the material is deleted by itself (at most 365 days on); none: never.
    #[serde(default)]
    pub valid_to: Option<DateTime<Utc>>,
}

/// The stored import token.
#[derive(Debug, Serialize, Deserialize)]
struct StoredToken {
    key_id: Uuid,
    wrapping_algorithm: WrappingAlgorithm,
    wrapping_key_spec: KeySpec,
    /// The wrapping private key (PKCS#8) sealed under the tenant KEK, base64.
    sealed_private_key: String,
    public_key: Vec<u8>,
    expires_at: DateTime<Utc>,
}

fn token_label(tenant: Uuid, id: &str) -> Vec<u8> {
    let mut l = b"arca/import-token/v1/".to_vec();
    l.extend_from_slice(tenant.as_bytes());
    l.extend_from_slice(id.as_bytes());
    l
}

fn invalid_token() -> Error {
    Error::invalid_import_token(
        "the import token is not valid for this key (get import parameters for it)",
    )
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Marks a key's imported material deleted: every version's material is erased but its
/// digest kept, and the key waits for an import. Shared by the operation and the lifecycle
/// task (when the material expires).
pub(crate) fn delete_material(
    key: &mut Key,
    versions: &mut [KeyVersion],
    now: DateTime<Utc>,
    actor: &str,
    reason: &str,
) -> (Vec<VersionWrite>, KeyEvent) {
    key.pending_import = true;
    key.material_expires_at = None;
    let mut writes = Vec::new();
    for v in versions
        .iter_mut()
        .filter(|v| !v.state.is_destroyed() && !v.material_deleted)
    {
        v.material_deleted = true;
        writes.push(VersionWrite {
            version: v.clone(),
            material: MaterialChange::Erase,
        });
    }
    let ev = event(
        key,
        None,
        now,
        actor,
        "delete-imported-material",
        Some(key.state),
        Some(key.state),
        Some(reason.to_string()),
    );
    (writes, ev)
}

impl Service {
    /// Makes a wrapping key pair and an import token for a key that takes imported material.
    pub async fn get_import_parameters(
        &self,
        caller: &Caller,
        reference: &str,
        req: ImportParametersRequest,
    ) -> Result<ImportParameters> {
        self.audited(
            caller,
            Action::GetParametersForImport,
            async |note: &mut Note| {
                let (key, _) = self.fresh(caller, reference).await?;
                note.key(key.id);
                self.authorize(caller, Action::GetParametersForImport, Some(&key))?;
                importable(&key)?;
                if !matches!(
                    req.wrapping_key_spec,
                    KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096
                ) {
                    return Err(Error::invalid(
                        "wrapping_key_spec",
                        "RSA_2048, RSA_3072 or RSA_4096",
                    ));
                }
                let pair = self.crypto.generate(req.wrapping_key_spec)?;
                let public_key = pair
                    .public_spki
                    .clone()
                    .ok_or_else(|| Error::internal("an RSA key without its public half"))?;
                let id: String = self
                    .crypto
                    .random(16)?
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let kek = self.tenant_kek(key.tenant_id).await?;
                let sealed = arca_crypto::wrap::seal_labeled(
                    &kek,
                    &token_label(key.tenant_id, &id),
                    &pair.secret,
                )?;
                let now = self.now();
                let expires_at = now + Duration::hours(IMPORT_TOKEN_TTL_HOURS);
                let stored = StoredToken {
                    key_id: key.id,
                    wrapping_algorithm: req.wrapping_algorithm,
                    wrapping_key_spec: req.wrapping_key_spec,
                    sealed_private_key: base64::Engine::encode(&b64(), sealed),
                    public_key: public_key.clone(),
                    expires_at,
                };
                note.set("import_token", id.clone());
                note.set(
                    "wrapping_algorithm",
                    serde_json::to_value(req.wrapping_algorithm).unwrap_or_default(),
                );
                let audit = self.change_event(caller, Action::GetParametersForImport, note);
                self.store
                    .put_record(
                        &Record {
                            kind: IMPORT_TOKEN.into(),
                            id: id.clone(),
                            tenant_id: Some(key.tenant_id),
                            revision: 1,
                            doc: serde_json::to_value(&stored)
                                .map_err(|e| Error::internal(e.to_string()))?,
                            updated_at: now,
                        },
                        None,
                        &audit,
                    )
                    .await?;
                let mut token = b"arca-import-v1:".to_vec();
                token.extend_from_slice(id.as_bytes());
                Ok(ImportParameters {
                    key_id: key.id,
                    import_token: Bytes(token),
                    public_key_pem: crate::crypto_ops::pem_encode("PUBLIC KEY", &public_key),
                    public_key: Bytes(public_key),
                    wrapping_algorithm: req.wrapping_algorithm,
                    parameters_valid_to: expires_at,
                })
            },
        )
        .await
    }

    /// Unwraps material with an import token's key and imports it into the key.
    pub async fn import_key_material(
        &self,
        caller: &Caller,
        reference: &str,
        req: ImportMaterialRequest,
    ) -> Result<KeyInfo> {
        self.audited(caller, Action::ImportKeyMaterial, async |note: &mut Note| {
            let (mut key, mut versions) = self.fresh(caller, reference).await?;
            note.key(key.id);
            self.authorize(caller, Action::ImportKeyMaterial, Some(&key))?;
            importable(&key)?;
            let now = self.now();
            if let Some(v) = req.valid_to {
                if v <= now || v > now + Duration::days(MAX_MATERIAL_VALIDITY_DAYS) {
                    return Err(Error::invalid(
                        "valid_to",
                        format!("must be in the future, at most {MAX_MATERIAL_VALIDITY_DAYS} days on"),
                    ));
                }
            }
            let id = std::str::from_utf8(&req.import_token.0)
                .ok()
                .and_then(|t| t.strip_prefix("arca-import-v1:"))
                .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(invalid_token)?
                .to_string();
            note.set("import_token", id.clone());
            let rec = self
                .store
                .get_record(IMPORT_TOKEN, &id)
                .await?
                .filter(|r| r.tenant_id == Some(key.tenant_id))
                .ok_or_else(invalid_token)?;
            let token: StoredToken = serde_json::from_value(rec.doc)
                .map_err(|e| Error::internal(format!("stored import token does not decode: {e}")))?;
            if token.key_id != key.id {
                return Err(invalid_token());
            }
            if token.expires_at <= now {
                return Err(Error::expired_import_token());
            }
            let material = self.unwrap_import(&key, &id, &token, &req.encrypted_key_material.0).await?;
            let m = self.provider(key.protection_level)?.import(key.spec, "key_material", &material).map_err(|e| {
                Error::incorrect_key_material(format!("the unwrapped material does not fit a {} key: {e}", key.spec))
            })?;
            if m.public_only {
                return Err(Error::incorrect_key_material("import a private key (PKCS#8), not a public one",
                ));
            }
            let digest = self.material_digest(&key, &m)?;
            let from = key.state;
            let mut writes = Vec::new();
            let action;
            if versions.is_empty() {
                // The first material: version 1, and a key made to wait for it goes live.
                let vw = self.new_version(&key, 1, &m, now).await?;
                versions.push(vw.version.clone());
                writes.push(vw);
                key.primary_version = 1;
                if key.state == KeyState::PreActive && key.activation_date.is_none() {
                    key.state = lifecycle::apply(key.state, lifecycle::Transition::Activate, "key")?;
                    key.activation_date = Some(now);
                }
                action = "import";
            } else {
                // The same material again: restores deleted versions, or renews the expiry.
                let primary = versions
                    .iter()
                    .find(|v| v.version == key.primary_version)
                    .ok_or_else(|| Error::internal("a key without its primary version"))?;
                if primary.digest.is_none() || primary.digest != digest {
                    return Err(Error::incorrect_key_material("this is not the material the key had: a key takes back only its own material",
                    ));
                }
                let kek = self.tenant_kek(key.tenant_id).await?;
                for v in versions.iter_mut().filter(|v| v.material_deleted && v.digest == digest) {
                    v.material_deleted = false;
                    writes.push(VersionWrite {
                        version: v.clone(),
                        material: MaterialChange::Set(arca_crypto::wrap::seal_material(
                            &kek,
                            key.tenant_id,
                            key.id,
                            v.version,
                            &m.secret,
                        )?),
                    });
                }
                action = "reimport";
            }
            key.pending_import = false;
            key.material_expires_at = req.valid_to;
            let ev = event(
                &key,
                Some(key.primary_version),
                now,
                &caller.actor(),
                action,
                Some(from),
                Some(key.state),
                req.valid_to.map(|v| format!("material valid to {}", v.to_rfc3339())),
            );
            note.key_version = Some(key.primary_version);
            let audit = self.change_event(caller, Action::ImportKeyMaterial, note);
            let rev = key.revision;
            let key = self
                .commit(key, Some(rev), &versions, writes, vec![ev], audit)
                .await?;
            self.info(&key, &versions).await
        })
        .await
    }

    /// Deletes a key's imported material (it can be imported again); the key is pending
    /// import until then.
    pub async fn delete_imported_material(
        &self,
        caller: &Caller,
        reference: &str,
    ) -> Result<KeyInfo> {
        self.audited(
            caller,
            Action::DeleteImportedKeyMaterial,
            async |note: &mut Note| {
                let (mut key, mut versions) = self.fresh(caller, reference).await?;
                note.key(key.id);
                self.authorize(caller, Action::DeleteImportedKeyMaterial, Some(&key))?;
                importable(&key)?;
                if key.pending_import {
                    return Err(Error::WrongState {
                        operation: "delete imported material".into(),
                        target: format!("key {}", key.id),
                        state: key.state,
                        detail: Some(StateDetail::PendingImport),
                    });
                }
                let now = self.now();
                let (writes, ev) =
                    delete_material(&mut key, &mut versions, now, &caller.actor(), "on request");
                let audit = self.change_event(caller, Action::DeleteImportedKeyMaterial, note);
                let rev = key.revision;
                let key = self
                    .commit(key, Some(rev), &versions, writes, vec![ev], audit)
                    .await?;
                self.info(&key, &versions).await
            },
        )
        .await
    }

    /// Opens the token's wrapping key and unwraps the material with it.
    async fn unwrap_import(
        &self,
        key: &Key,
        id: &str,
        token: &StoredToken,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let sealed = base64::Engine::decode(&b64(), &token.sealed_private_key)
            .map_err(|_| Error::internal("an import token's sealed key does not decode"))?;
        let kek = self.tenant_kek(key.tenant_id).await?;
        let secret =
            arca_crypto::wrap::open_labeled(&kek, &token_label(key.tenant_id, id), &sealed)?;
        let handle: Arc<dyn KeyHandle> = self.crypto.load(
            token.wrapping_key_spec,
            &KeyMaterial {
                secret,
                public_spki: Some(token.public_key.clone()),
                public_only: false,
            },
        )?;
        let bad = || {
            Error::bad_ciphertext(
                "encrypted_key_material",
                "the wrapped material does not unwrap with this import token's key and algorithm",
            )
        };
        let hash = token.wrapping_algorithm.hash();
        if !token.wrapping_algorithm.key_wrap() {
            return handle.oaep_decrypt_with(hash, wrapped).map_err(|_| bad());
        }
        // CKM_RSA_AES_KEY_WRAP: RSA-OAEP(ephemeral AES key) || AES-KWP(material).
        let n = match token.wrapping_key_spec {
            KeySpec::Rsa2048 => 256,
            KeySpec::Rsa3072 => 384,
            KeySpec::Rsa4096 => 512,
            _ => return Err(Error::internal("an import token with a non-RSA key")),
        };
        if wrapped.len() <= n {
            return Err(bad());
        }
        let (head, tail) = wrapped.split_at(n);
        let aes = handle.oaep_decrypt_with(hash, head).map_err(|_| bad())?;
        // AES-256, as AWS's RSA_AES_KEY_WRAP_SHA_* uses.
        if aes.len() != 32 {
            return Err(bad());
        }
        arca_crypto::wrap::kwp_unwrap(&aes, tail).map_err(|_| bad())
    }
}

/// Only keys made to take imported material take it (their provider admitted imported
/// material when the key was made).
fn importable(key: &Key) -> Result<()> {
    if key.origin != Origin::Imported {
        return Err(Error::unsuitable_key(format!(
            "key {} was not created to take imported material (create it with pending_import)",
            key.id
        )));
    }
    if key.state.is_destroyed() {
        return Err(Error::WrongState {
            operation: "import".into(),
            target: format!("key {}", key.id),
            state: key.state,
            detail: None,
        });
    }
    Ok(())
}

/// Where a wrapped export goes, which fixes its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum TransferTarget {
    /// Another Arca (or any AES key holder): AES-KWP (RFC 5649) under an Arca AES key.
    Arca,
    /// AWS KMS `ImportKeyMaterial`: `EncryptedKeyMaterial` under the public key of
    /// `GetParametersForImport`.
    Aws,
    /// Google Cloud KMS import jobs: `wrappedKey` for `ImportCryptoKeyVersion`.
    Gcp,
    /// Azure Key Vault BYOK: a `.byok` key transfer blob under the key-exchange key.
    Azure,
}

/// Exports a key wrapped for another key manager (bring your own key to a cloud).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub target: TransferTarget,
    /// ARCA: the id, name or alias of the Arca AES key that wraps.
    #[serde(default)]
    pub wrapping_key: Option<String>,
    /// AWS, GCP, AZURE: the cloud's RSA wrapping public key, PEM (`PUBLIC KEY`) or base64
    /// SubjectPublicKeyInfo DER.
    #[serde(default)]
    pub wrapping_public_key: Option<String>,
    /// AWS: `RSAES_OAEP_SHA_1`, `RSAES_OAEP_SHA_256`, `RSA_AES_KEY_WRAP_SHA_1`,
    /// `RSA_AES_KEY_WRAP_SHA_256` (default: OAEP-SHA-256 for symmetric keys, RSA-AES for
    /// private keys). GCP: the import job's method, `RSA_OAEP_3072_SHA256_AES_256` and
    /// friends (default: the RSA-AES SHA-256 one of the key's size). AZURE: always
    /// `CKM_RSA_AES_KEY_WRAP`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// AZURE: the key-exchange key's identifier (its `kid` URL), written into the blob.
    #[serde(default)]
    pub kid: Option<String>,
    /// Default: the primary version.
    #[serde(default)]
    pub key_version: Option<u32>,
}

/// A key wrapped for its destination.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferResponse {
    pub key_id: Uuid,
    pub key_version: u32,
    pub spec: KeySpec,
    /// What was wrapped: `RAW` bytes (symmetric) or `PKCS8` DER (private keys).
    pub format: arca_core::encoding::KeyEncoding,
    pub target: TransferTarget,
    pub algorithm: String,
    /// The wrapped material, as the destination takes it.
    pub wrapped: Bytes,
    /// AZURE: the `.byok` file's JSON, to save as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub byok: Option<serde_json::Value>,
    /// ARCA: the wrapping key and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapping_key_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapping_key_version: Option<u32>,
}

/// The RSA public key of a transfer request, DER.
fn public_key_der(req: &TransferRequest) -> Result<Vec<u8>> {
    let text = req
        .wrapping_public_key
        .as_deref()
        .ok_or_else(|| Error::invalid("wrapping_public_key", "required for this target"))?
        .trim();
    if text.starts_with("-----BEGIN") {
        let p = pem::parse(text)
            .map_err(|_| Error::invalid("wrapping_public_key", "not a PEM document"))?;
        if p.tag() != "PUBLIC KEY" {
            return Err(Error::invalid(
                "wrapping_public_key",
                "a PEM PUBLIC KEY (SubjectPublicKeyInfo)",
            ));
        }
        Ok(p.contents().to_vec())
    } else {
        base64::Engine::decode(&b64(), text)
            .map_err(|_| Error::invalid("wrapping_public_key", "PEM, or base64 DER"))
    }
}

/// The wrapping a cloud target asks for, and its name.
fn cloud_wrapping(
    req: &TransferRequest,
    spki: &[u8],
    symmetric: bool,
) -> Result<(arca_crypto::wrap::RsaWrap, String)> {
    use arca_crypto::wrap::RsaWrap::{Oaep, RsaAesKeyWrap};
    let bits = arca_crypto::wrap::rsa_public_bits("wrapping_public_key", spki)?;
    let alg = req.algorithm.clone();
    let bad = |what: &str| Error::invalid("algorithm", what.to_string());
    Ok(match req.target {
        TransferTarget::Aws => {
            let name = alg.unwrap_or_else(|| {
                if symmetric {
                    "RSAES_OAEP_SHA_256"
                } else {
                    "RSA_AES_KEY_WRAP_SHA_256"
                }
                .into()
            });
            let how = match name.as_str() {
                "RSAES_OAEP_SHA_1" => Oaep(OaepHash::Sha1),
                "RSAES_OAEP_SHA_256" => Oaep(OaepHash::Sha256),
                "RSA_AES_KEY_WRAP_SHA_1" => RsaAesKeyWrap(OaepHash::Sha1),
                "RSA_AES_KEY_WRAP_SHA_256" => RsaAesKeyWrap(OaepHash::Sha256),
                _ => return Err(bad("RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256")),
            };
            (how, name)
        }
        TransferTarget::Gcp => {
            let name = alg.unwrap_or_else(|| format!("RSA_OAEP_{bits}_SHA256_AES_256"));
            let how = match name.as_str() {
                "RSA_OAEP_3072_SHA1_AES_256" | "RSA_OAEP_4096_SHA1_AES_256" => {
                    RsaAesKeyWrap(OaepHash::Sha1)
                }
                "RSA_OAEP_3072_SHA256_AES_256" | "RSA_OAEP_4096_SHA256_AES_256" => {
                    RsaAesKeyWrap(OaepHash::Sha256)
                }
                "RSA_OAEP_3072_SHA256" | "RSA_OAEP_4096_SHA256" => Oaep(OaepHash::Sha256),
                _ => return Err(bad("a Cloud KMS import method: RSA_OAEP_{3072,4096}_SHA{1,256}_AES_256 or RSA_OAEP_{3072,4096}_SHA256")),
            };
            if !name.starts_with(&format!("RSA_OAEP_{bits}_")) {
                return Err(Error::invalid(
                    "algorithm",
                    format!(
                        "{name} needs the import job's key of its size; this key has {bits} bits"
                    ),
                ));
            }
            (how, name)
        }
        TransferTarget::Azure => {
            if alg.as_deref().is_some_and(|a| a != "CKM_RSA_AES_KEY_WRAP") {
                return Err(bad("Azure's BYOK blob is always CKM_RSA_AES_KEY_WRAP"));
            }
            // Azure's specification: the ephemeral AES key under RSA-OAEP with SHA-1.
            (RsaAesKeyWrap(OaepHash::Sha1), "CKM_RSA_AES_KEY_WRAP".into())
        }
        TransferTarget::Arca => return Err(Error::internal("not a cloud target")),
    })
}

impl Service {
    /// Exports a key wrapped for another key manager: an Arca AES key (AES-KWP), or a
    /// cloud's import public key in that cloud's format. The key must have been created
    /// extractable, and the export passes the tenant's approval rule for `ExportKey`
    /// (an approval runs this same wrapped export).
    pub async fn export_for_transfer(
        &self,
        caller: &Caller,
        reference: &str,
        req: TransferRequest,
    ) -> Result<TransferResponse> {
        self.audited(caller, Action::ExportKey, async |note: &mut Note| {
            note.set(
                "target",
                serde_json::to_value(req.target).unwrap_or_default(),
            );
            // Everything about the destination is checked before the gate, so that an
            // approval is never asked for an export that cannot happen.
            let spki = match req.target {
                TransferTarget::Arca => None,
                _ => Some(public_key_der(&req)?),
            };
            if req.target == TransferTarget::Azure
                && req
                    .kid
                    .as_deref()
                    .is_none_or(|k| k.is_empty() || k.len() > 2048)
            {
                return Err(Error::invalid(
                    "kid",
                    "the Azure key-exchange key's identifier is required",
                ));
            }
            let wrapper = match req.target {
                TransferTarget::Arca => {
                    let w = req.wrapping_key.as_deref().ok_or_else(|| {
                        Error::invalid("wrapping_key", "required for target ARCA")
                    })?;
                    let w = self.resolve(caller.tenant(), "wrapping_key", w).await?;
                    self.authorize(caller, Action::Encrypt, Some(&w.key))?;
                    if w.key.spec.family() != arca_core::model::KeyFamily::Aes {
                        return Err(Error::unprocessable(
                            "wrapping_key",
                            format!("key {} is not an AES key", w.key.id),
                        ));
                    }
                    note.set("wrapping_key", w.key.id.to_string());
                    Some(w)
                }
                _ => None,
            };
            let again = req.clone();
            let (e, version, format, material) = self
                .export_material(
                    caller,
                    reference,
                    (req.key_version, None),
                    |key, v| crate::approvals::Pending::Transfer {
                        key,
                        req: TransferRequest {
                            key_version: Some(v),
                            ..again
                        },
                    },
                    note,
                )
                .await?;
            let symmetric = format == arca_core::encoding::KeyEncoding::Raw;
            let (wrapped, algorithm, wrapping_key_id, wrapping_key_version) =
                match (&wrapper, &spki) {
                    (Some(w), _) => {
                        let r = self.ready_to_wrap(caller, w, material.len(), note).await?;
                        (
                            r.handle.key_wrap(true, &material)?,
                            "AES_KEY_WRAP_PAD".to_string(),
                            Some(w.key.id),
                            Some(r.version),
                        )
                    }
                    (None, Some(spki)) => {
                        let (how, name) = cloud_wrapping(&req, spki, symmetric)?;
                        (
                            arca_crypto::wrap::wrap_to_public(
                                "wrapping_public_key",
                                spki,
                                how,
                                &material,
                            )?,
                            name,
                            None,
                            None,
                        )
                    }
                    (None, None) => return Err(Error::internal("no wrapping for the transfer")),
                };
            note.set("algorithm", algorithm.clone());
            let byok = (req.target == TransferTarget::Azure).then(|| {
                serde_json::json!({
                    "schema_version": "1.0.0",
                    "header": {
                        "kid": req.kid.clone().unwrap_or_default(),
                        "alg": "dir",
                        "enc": "CKM_RSA_AES_KEY_WRAP",
                    },
                    "ciphertext": base64::Engine::encode(
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                        &wrapped,
                    ),
                    "generator": format!("Arca {}", env!("CARGO_PKG_VERSION")),
                })
            });
            Ok(TransferResponse {
                key_id: e.key.id,
                key_version: version,
                spec: e.key.spec,
                format,
                target: req.target,
                algorithm,
                wrapped: Bytes(wrapped),
                byok,
                wrapping_key_id,
                wrapping_key_version,
            })
        })
        .await
    }
}

impl Service {
    /// Unwraps key material wrapped under an Arca key (AES-KW, AES-KWP or RSA-OAEP), for a
    /// protocol that imports it next (KMIP's Register of a wrapped key). The caller needs
    /// `Decrypt` on the wrapping key, which must be able to wrap or decrypt; the unwrap is
    /// audited as that key's use.
    pub async fn unwrap_for_import(
        &self,
        caller: &Caller,
        wrapping_key: &str,
        cipher: crate::api::WrapCipher,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.audited(caller, Action::Decrypt, async |note: &mut Note| {
            note.set("purpose", "unwrap for import");
            let w = self
                .resolve(caller.tenant(), "wrapping_key", wrapping_key)
                .await?;
            note.key(w.key.id);
            self.authorize(caller, Action::Decrypt, Some(&w.key))?;
            if !(w.key.can(arca_core::model::KeyUsage::Unwrap)
                || w.key.can(arca_core::model::KeyUsage::Decrypt))
            {
                return Err(Error::unprocessable(
                    "wrapping_key",
                    format!("key {} may neither unwrap nor decrypt", w.key.id),
                ));
            }
            let r = self
                .ready(
                    caller.meta.door,
                    &w,
                    None,
                    lifecycle::Use::Process,
                    "unwrap",
                    note,
                )
                .await?;
            match cipher {
                crate::api::WrapCipher::AesKeyWrap => r.handle.key_unwrap(false, wrapped),
                crate::api::WrapCipher::AesKeyWrapPadded => r.handle.key_unwrap(true, wrapped),
                crate::api::WrapCipher::RsaOaep(h) => {
                    r.handle.oaep_decrypt_with(h, wrapped).map_err(|_| {
                        Error::bad_ciphertext(
                            "wrapped",
                            "the wrapped key does not decrypt with this key and hash",
                        )
                    })
                }
            }
        })
        .await
    }
}
