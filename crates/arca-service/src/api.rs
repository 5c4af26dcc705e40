//! The requests and responses of the service's operations.
//!
//! These types are the service's vocabulary; the REST door uses them as its JSON bodies as
//! they are (binary fields in standard base64), and other doors map their own messages onto
//! them. Unknown fields are rejected so that a typo never silently changes a request.

use std::collections::BTreeMap;

use arca_core::access::{
    ApprovalRequest, ApprovalStatus, KeyPolicy, Role, Statement, TenantSettings,
};
use arca_core::encoding::KeyEncoding;
use arca_core::model::{
    DeactivationReason, DigestAlgorithm, EncryptionAlgorithm, KeySpec, KeyState, KeyUsage,
    MacAlgorithm, MessageType, Origin, Principal, ProtectionLevel, SigningAlgorithm,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;
use zeroize::Zeroizing;

fn b64_schema(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
        .description(Some(description))
        .into()
}

/// Public binary data (ciphertexts, signatures, public keys), base64 on the wire.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Bytes)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

impl PartialSchema for Bytes {
    fn schema() -> RefOr<Schema> {
        b64_schema("base64 (standard alphabet, padded)")
    }
}
impl ToSchema for Bytes {}

/// Secret binary data (plaintexts, data keys, exported material): base64 on the wire,
/// zeroized when dropped, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps bytes that are already in a zeroizing buffer.
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        Secret(bytes)
    }
    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let enc = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&self.0[..]));
        s.serialize_str(&enc)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(|v| Secret(Zeroizing::new(v)))
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

impl PartialSchema for Secret {
    fn schema() -> RefOr<Schema> {
        b64_schema("secret bytes, base64 (standard alphabet, padded)")
    }
}
impl ToSchema for Secret {}

/// An encryption context: string pairs bound to a ciphertext that must be given again,
/// exactly, to decrypt it (as in AWS KMS).
pub type EncryptionContext = BTreeMap<String, String>;

/// Creates a key, generating its material or importing the caller's.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Unique within the tenant: A-Z a-z 0-9 _ - . / and not a UUID.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Default `AES_256`.
    #[serde(default)]
    pub spec: Option<KeySpec>,
    /// Default: the spec's first usage (ENCRYPT_DECRYPT for AES, SIGN_VERIFY for EC, ...).
    /// One direction of a pair (ENCRYPT, DECRYPT, ...) makes a key that does only that.
    #[serde(default)]
    pub usage: Option<Vec<KeyUsage>>,
    /// Whether the material may ever leave Arca through export. Default false.
    #[serde(default)]
    pub extractable: bool,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub meta: Option<serde_json::Value>,
    /// A future date creates the key PRE_ACTIVE; it becomes ACTIVE by itself then.
    #[serde(default)]
    pub activation_date: Option<DateTime<Utc>>,
    /// Create PRE_ACTIVE with no activation date; `activate` moves it on.
    #[serde(default)]
    pub pre_active: bool,
    /// After this date the key applies no new protection (encrypt, sign, MAC).
    #[serde(default)]
    pub protect_stop_date: Option<DateTime<Utc>>,
    /// Before this date the key processes nothing (decrypt, verify, MAC verification).
    #[serde(default)]
    pub process_start_date: Option<DateTime<Utc>>,
    /// At this date the key becomes DEACTIVATED (reason EXPIRED) by itself.
    #[serde(default)]
    pub deactivation_date: Option<DateTime<Utc>>,
    /// Rotate automatically every this many days (1–3650).
    #[serde(default)]
    pub rotation_period_days: Option<u32>,
    /// Material to import instead of generating: raw bytes for symmetric specs, PKCS#8 or
    /// SPKI (DER or PEM) for asymmetric ones.
    #[serde(default)]
    pub material: Option<Secret>,
    /// The form `material` is in, when it is not one the import recognises by itself:
    /// `Pkcs1Private` or `Pkcs1Public` for an RSA key in PKCS#1 (KMIP's PKCS_1 Key Format
    /// Type), which the service converts. `None` (or `Raw`, `Pkcs8`, `Spki`): as `material`
    /// says. Not on the REST API, whose clients send PKCS#8 or SPKI.
    #[serde(skip)]
    pub material_encoding: Option<KeyEncoding>,
    /// The key's policy statements. Default: the tenant's `default_key_policy`.
    #[serde(default)]
    pub policy: Option<Vec<Statement>>,
    /// `SOFTWARE` (default) or `HSM`: generated in the server's HSM and used only there
    /// (AES_256 and ECC_NIST_P256; needs `root.mode = "hsm"`).
    #[serde(default)]
    pub protection_level: Option<ProtectionLevel>,
    /// Create the key without material, to receive it wrapped (bring your own key:
    /// `import-parameters`, then `import`). It is PRE_ACTIVE and unusable until then.
    #[serde(default)]
    pub pending_import: bool,
    /// Make an AES key for raw block-cipher use (KMIP Encrypt/Decrypt in ECB, CBC, CTR, with
    /// the caller's IV). Such a key never serves Arca's own ciphertexts, the AWS door or
    /// XKS. Default false: raw use of an ordinary key is GCM with a server-drawn IV only.
    #[serde(default)]
    pub raw_cipher_modes: bool,
    /// The most protection the key may ever apply: `{"unit": "BYTE", "total": N}` bytes
    /// encrypted, signed or MACed, or `{"unit": "OBJECT", "total": N}` protecting requests
    /// (KMIP's Usage Limits). Past it every protecting use is refused (403 `not_permitted`);
    /// decrypting and verifying go on. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limits: Option<UsageLimit>,
}

/// A usage limit asked for at creation ([`CreateKeyRequest::usage_limits`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageLimit {
    pub unit: arca_core::model::UsageUnit,
    pub total: u64,
}

/// Changes a key's descriptive fields, schedule and dates. Absent fields stay as they are;
/// `null` clears an optional one.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Replaces all tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub meta: Option<serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<u32>)]
    pub rotation_period_days: Option<Option<u32>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub protect_stop_date: Option<Option<DateTime<Utc>>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub process_start_date: Option<Option<DateTime<Utc>>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub deactivation_date: Option<Option<DateTime<Utc>>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub activation_date: Option<Option<DateTime<Utc>>>,
}

fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// One version of a key as callers see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    pub version: u32,
    pub state: KeyState,
    pub deactivation_reason: Option<DeactivationReason>,
    pub archived: bool,
    pub primary: bool,
    pub created_at: DateTime<Utc>,
    pub destroy_after: Option<DateTime<Utc>>,
    pub destroyed_at: Option<DateTime<Utc>>,
    /// SHA-256 of the version's material, hex (absent for HSM-held material).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A key's metadata. Never contains material.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub spec: KeySpec,
    pub usage: Vec<KeyUsage>,
    pub origin: Origin,
    pub extractable: bool,
    /// `SOFTWARE` or `HSM`.
    pub protection_level: String,
    pub tags: BTreeMap<String, String>,
    #[schema(value_type = Object)]
    pub meta: serde_json::Value,
    /// The state now, with dates taken into account.
    pub state: KeyState,
    /// What the key's lifecycle allows now (state, dates, archive, a scheduled destruction,
    /// imported material), by direction; usages and permissions come on top. Computed by
    /// the rule every use is checked with, so a door that reports it reports what it does.
    #[serde(default)]
    pub usable_now: arca_core::lifecycle::UsableNow,
    pub deactivation_reason: Option<DeactivationReason>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub activation_date: Option<DateTime<Utc>>,
    pub protect_stop_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start_date: Option<DateTime<Utc>>,
    pub deactivation_date: Option<DateTime<Utc>>,
    pub compromise_date: Option<DateTime<Utc>>,
    /// When a scheduled destruction falls due.
    pub destroy_after: Option<DateTime<Utc>>,
    pub destroyed_at: Option<DateTime<Utc>>,
    pub rotation_period_days: Option<u32>,
    pub next_rotation_at: Option<DateTime<Utc>>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub primary_version: u32,
    /// True once the material has left Arca through an export.
    #[serde(default)]
    pub exported: bool,
    /// An imported key waiting for its material (made so, or after the material was
    /// deleted or expired): nothing uses it until an import.
    #[serde(default)]
    pub pending_import: bool,
    /// A key made for raw block-cipher use (KMIP ECB, CBC, CTR, caller IVs); it serves no
    /// Arca ciphertext, no AWS and no XKS request.
    #[serde(default)]
    pub raw_cipher_modes: bool,
    /// The protection the key may still apply, if it was made with a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limits: Option<arca_core::model::UsageLimits>,
    /// When the imported material is deleted by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material_expires_at: Option<DateTime<Utc>>,
    pub aliases: Vec<String>,
    pub versions: Vec<VersionInfo>,
}

/// Query parameters of the key listing.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListKeysQuery {
    /// Substring of the key name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub state: Option<KeyState>,
    #[serde(default)]
    pub spec: Option<KeySpec>,
    /// `key=value`; repeat to require several tags.
    #[serde(default)]
    pub tag: Vec<String>,
    /// 1–1000, default 100.
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A page of keys.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
    /// Present when there may be more: pass it as `cursor`.
    pub next_cursor: Option<String>,
}

/// Creates an alias pointing at a key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAliasRequest {
    pub alias: String,
    /// Id, name or alias of the target key.
    pub key: String,
}

/// Points an existing alias at another key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveAliasRequest {
    pub key: String,
}

/// An alias and its key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AliasInfo {
    pub alias: String,
    pub key_id: Uuid,
}

/// A list of aliases.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AliasList {
    pub aliases: Vec<AliasInfo>,
}

/// Rotates a key now. Imported keys must bring the new material.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    #[serde(default)]
    pub material: Option<Secret>,
}

/// A lifecycle move (activate, suspend, resume, report-compromise, archive, recover,
/// cancel-destruction) with an optional free-text reason for the history.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

/// Deactivates a key or version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeactivateRequest {
    pub reason: DeactivationReason,
    #[serde(default)]
    pub comment: Option<String>,
}

/// Schedules destruction after a waiting period during which it can be cancelled.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDestructionRequest {
    /// 1–365 days, default 30.
    #[serde(default)]
    pub pending_window_days: Option<u32>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A key's history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyHistory {
    pub events: Vec<arca_core::model::KeyEvent>,
}

/// Encrypts up to 64 KiB under a key's primary version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptRequest {
    pub plaintext: Secret,
    /// Extra authenticated data that must be given again to decrypt (AES keys only).
    #[serde(default)]
    pub aad: Option<Bytes>,
    #[serde(default)]
    pub encryption_context: EncryptionContext,
    #[serde(default)]
    pub encryption_algorithm: Option<EncryptionAlgorithm>,
}

/// The result of an encryption.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EncryptResponse {
    /// Self-describing: names the key and version that decrypt it.
    pub ciphertext: Bytes,
    pub key_id: Uuid,
    pub key_version: u32,
    pub encryption_algorithm: EncryptionAlgorithm,
}

/// A cipher for raw encryption: a caller-chosen AES mode and IV, or RSA-OAEP with
/// caller-chosen parameters. The output is bare ciphertext, not Arca's self-describing
/// format: for protocols whose clients keep IVs and layout themselves (KMIP's
/// Encrypt/Decrypt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawCipher {
    Aes(arca_core::cipher::RawMode),
    RsaOaep(arca_core::cipher::OaepParams),
    /// Triple DES, ChaCha20 or ChaCha20-Poly1305 on a key of that spec, in a tenant that
    /// allows legacy algorithms.
    Legacy(arca_core::cipher::LegacyCipher),
}

/// Raw encryption under a key's primary version.
#[derive(Debug)]
pub struct RawEncryptRequest {
    pub cipher: RawCipher,
    pub data: Secret,
    /// The IV; generated (and returned) when absent.
    pub iv: Option<Vec<u8>>,
    /// Additional authenticated data (GCM only).
    pub aad: Vec<u8>,
    /// The GCM tag's length in bytes, 12 to 16 (default 16): KMIP's Tag Length.
    pub tag_length: Option<usize>,
    /// One part of a GCM encryption given in several requests (KMIP's Init Indicator,
    /// Correlation Value and Final Indicator); `None` for the whole message at once.
    pub stream: Option<RawStream>,
    /// Check the encryption and vouch for it (XKS's ciphertext data integrity value,
    /// Appendix C of its spec): see [`IntegrityCheck`]. AES only. The key must also be able
    /// to decrypt, so an encrypt-only key refuses such a request.
    pub integrity_check: Option<IntegrityCheck>,
}

/// A raw encryption checked and vouched for. The service decrypts the ciphertext before
/// answering and fails if it does not give the plaintext back, which catches a corrupted
/// encryption before anyone relies on it; then it answers with SHA-256 over `prefix`, the
/// IV, the ciphertext and the tag, which a peer recomputes to catch corruption on the way
/// (XKS's Ciphertext Data Integrity Value, whose prefix is the request's AAD followed by
/// the ciphertext metadata). Computed by the service so that no door hashes.
#[derive(Debug, Clone, Default)]
pub struct IntegrityCheck {
    /// The bytes hashed before the IV: what the caller's protocol binds beside the
    /// ciphertext.
    pub prefix: Vec<u8>,
}

/// A part of a multi-request GCM encryption. The first part names the IV and the AAD and
/// gets a correlation value back; each later part names it; the final part also gets the
/// tag. What the server keeps between parts is not secret (the IV, the AAD and the
/// ciphertext already returned): each part recovers the plaintext so far from the
/// ciphertext it answered before, so no key stream or cipher state waits in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawStream {
    Init,
    Continue(Vec<u8>),
    Final(Vec<u8>),
}

/// The result of a raw encryption.
#[derive(Debug)]
pub struct RawEncryptResponse {
    pub data: Bytes,
    /// The IV used, when the mode has one.
    pub iv: Option<Bytes>,
    /// The GCM tag.
    pub tag: Option<Bytes>,
    pub key_id: Uuid,
    pub key_version: u32,
    /// SHA-256 over the [`IntegrityCheck`]'s prefix, the IV, the ciphertext and the tag,
    /// when the request asked for the check (and it passed).
    pub integrity_value: Option<Bytes>,
    /// The correlation value of a multi-request encryption, until its final part.
    pub correlation: Option<Bytes>,
}

/// Raw decryption under a key's primary version.
#[derive(Debug)]
pub struct RawDecryptRequest {
    pub cipher: RawCipher,
    pub data: Bytes,
    pub iv: Option<Vec<u8>>,
    pub aad: Vec<u8>,
    /// The GCM tag.
    pub tag: Option<Vec<u8>>,
    /// The version that encrypted (the caller keeps it beside the ciphertext); default the
    /// primary one.
    pub key_version: Option<u32>,
}

/// The result of a raw decryption.
#[derive(Debug)]
pub struct RawDecryptResponse {
    pub data: Secret,
    pub key_id: Uuid,
    pub key_version: u32,
    /// True when the key is COMPROMISED.
    pub key_compromised: bool,
}

/// Decrypts a ciphertext produced by Arca.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecryptRequest {
    pub ciphertext: Bytes,
    #[serde(default)]
    pub aad: Option<Bytes>,
    #[serde(default)]
    pub encryption_context: EncryptionContext,
}

/// The result of a decryption.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DecryptResponse {
    pub plaintext: Secret,
    pub key_id: Uuid,
    pub key_version: u32,
    /// True when the key or version is COMPROMISED: the data should be re-protected.
    #[serde(default)]
    pub key_compromised: bool,
}

/// Decrypts under the key named in the ciphertext and encrypts under another key, without
/// the plaintext leaving the service.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReEncryptRequest {
    pub ciphertext: Bytes,
    /// When given, the ciphertext must have been made with this key (id, name or alias).
    #[serde(default)]
    pub source_key: Option<String>,
    #[serde(default)]
    pub source_aad: Option<Bytes>,
    #[serde(default)]
    pub source_encryption_context: EncryptionContext,
    #[serde(default)]
    pub destination_aad: Option<Bytes>,
    #[serde(default)]
    pub destination_encryption_context: EncryptionContext,
}

/// The result of a re-encryption.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReEncryptResponse {
    pub ciphertext: Bytes,
    pub source_key_id: Uuid,
    pub source_key_version: u32,
    pub key_id: Uuid,
    pub key_version: u32,
}

/// Data key sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum DataKeySpec {
    #[serde(rename = "AES_128")]
    Aes128,
    #[serde(rename = "AES_256")]
    Aes256,
}

/// Generates a data key encrypted under a key (envelope encryption).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateDataKeyRequest {
    /// Default AES_256.
    #[serde(default)]
    pub key_spec: Option<DataKeySpec>,
    /// A data key of this many bytes (1–1024) instead of an AES key size.
    #[serde(default)]
    pub number_of_bytes: Option<u32>,
    #[serde(default)]
    pub aad: Option<Bytes>,
    #[serde(default)]
    pub encryption_context: EncryptionContext,
}

/// A data key: its ciphertext to store beside the data, and (unless asked otherwise) its
/// plaintext to use once and forget.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DataKeyResponse {
    pub ciphertext: Bytes,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub plaintext: Option<Secret>,
    pub key_id: Uuid,
    pub key_version: u32,
}

/// Generates an asymmetric data key pair whose private key is encrypted under a key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateDataKeyPairRequest {
    /// An asymmetric spec: RSA_*, ECC_NIST_*, ED25519, ML_DSA_*.
    pub key_pair_spec: KeySpec,
    #[serde(default)]
    pub aad: Option<Bytes>,
    #[serde(default)]
    pub encryption_context: EncryptionContext,
}

/// A data key pair.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DataKeyPairResponse {
    pub key_pair_spec: KeySpec,
    /// SPKI DER.
    pub public_key: Bytes,
    /// The PKCS#8 private key encrypted under the key.
    pub private_key_ciphertext: Bytes,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub private_key_plaintext: Option<Secret>,
    pub key_id: Uuid,
    pub key_version: u32,
}

/// Signs a message or digest with the key's primary version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    pub message: Secret,
    #[serde(default)]
    pub message_type: MessageType,
    /// Default: the spec's first algorithm.
    #[serde(default)]
    pub signing_algorithm: Option<SigningAlgorithm>,
    /// The RSA-PSS salt length (default: the hash length): set by doors whose protocol
    /// names it (KMIP's Salt Length); REST and AWS sign with the default.
    #[serde(skip)]
    pub pss_salt: Option<arca_core::cipher::PssSalt>,
}

/// A signature.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignResponse {
    pub signature: Bytes,
    pub signing_algorithm: SigningAlgorithm,
    pub key_id: Uuid,
    pub key_version: u32,
}

/// Verifies a signature.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub message: Secret,
    #[serde(default)]
    pub message_type: MessageType,
    pub signature: Bytes,
    #[serde(default)]
    pub signing_algorithm: Option<SigningAlgorithm>,
    /// Default: the primary version.
    #[serde(default)]
    pub key_version: Option<u32>,
    /// The RSA-PSS salt length to verify with (default: the hash length; `Any` accepts
    /// any): set by doors whose protocol names it (KMIP's Salt Length).
    #[serde(skip)]
    pub pss_salt: Option<arca_core::cipher::PssSalt>,
}

/// The verdict on a signature or MAC.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyResponse {
    pub valid: bool,
    pub key_id: Uuid,
    pub key_version: u32,
    #[serde(default)]
    pub key_compromised: bool,
}

/// Computes an HMAC.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MacRequest {
    pub message: Secret,
    #[serde(default)]
    pub mac_algorithm: Option<MacAlgorithm>,
}

/// An HMAC.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MacResponse {
    pub mac: Bytes,
    pub mac_algorithm: MacAlgorithm,
    pub key_id: Uuid,
    pub key_version: u32,
}

/// Verifies an HMAC (in constant time).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MacVerifyRequest {
    pub message: Secret,
    pub mac: Bytes,
    #[serde(default)]
    pub mac_algorithm: Option<MacAlgorithm>,
    /// Default: the primary version.
    #[serde(default)]
    pub key_version: Option<u32>,
}

/// ML-KEM encapsulation result.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EncapsulateResponse {
    pub ciphertext: Bytes,
    pub shared_secret: Secret,
    pub key_id: Uuid,
    pub key_version: u32,
}

/// ML-KEM decapsulation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecapsulateRequest {
    pub ciphertext: Bytes,
    /// Default: the primary version.
    #[serde(default)]
    pub key_version: Option<u32>,
}

/// The shared secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DecapsulateResponse {
    pub shared_secret: Secret,
    pub key_id: Uuid,
    pub key_version: u32,
    #[serde(default)]
    pub key_compromised: bool,
}

/// A public key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicKeyResponse {
    pub key_id: Uuid,
    pub key_version: u32,
    pub spec: KeySpec,
    pub usage: Vec<KeyUsage>,
    /// SubjectPublicKeyInfo, DER.
    pub public_key: Bytes,
    /// The same, PEM.
    pub public_key_pem: String,
    pub signing_algorithms: Vec<SigningAlgorithm>,
    pub encryption_algorithms: Vec<EncryptionAlgorithm>,
}

/// Random bytes from the server's CSPRNG.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomRequest {
    /// 1–1024.
    pub number_of_bytes: u32,
}

/// Random bytes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RandomResponse {
    pub random: Secret,
}

/// A digest of caller data (KMIP's Hash): keyless, authorised and audited like random bytes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HashRequest {
    pub algorithm: DigestAlgorithm,
    /// 1 byte up to the server's `max_plaintext_bytes`.
    pub data: Secret,
}

/// The digest.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HashResponse {
    pub algorithm: DigestAlgorithm,
    pub digest: Bytes,
}

/// Exports a version's material (keys created extractable only).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// Default: the primary version.
    #[serde(default)]
    pub key_version: Option<u32>,
    /// The form to export in. Default: the one the key is kept in ([`KeyEncoding::kept`]).
    /// An RSA key can also be had in PKCS#1 (`Pkcs1Private` for a private key,
    /// `Pkcs1Public` for a public-only one), as KMIP's Get asks. Not on the REST API, which
    /// exports in the kept form, and not kept in an approval of the export either.
    #[serde(skip)]
    pub encoding: Option<KeyEncoding>,
}

/// Exported material: `RAW` bytes for symmetric keys, `PKCS8` DER for private keys,
/// `SPKI` DER for public-only keys (or the PKCS#1 form the request asked for).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportResponse {
    pub key_id: Uuid,
    pub key_version: u32,
    pub spec: KeySpec,
    pub format: KeyEncoding,
    pub material: Secret,
}

/// How a wrapped export wraps: AES Key Wrap (RFC 3394, NIST SP 800-38F KW), with padding
/// (RFC 5649, KWP), or RSA-OAEP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapCipher {
    AesKeyWrap,
    AesKeyWrapPadded,
    RsaOaep(arca_core::cipher::OaepHash),
}

/// Exports a key wrapped under another key.
#[derive(Debug)]
pub struct WrappedExportRequest {
    /// Id, name or alias of the key that wraps.
    pub wrapping_key: String,
    pub cipher: WrapCipher,
    pub key_version: Option<u32>,
}

/// A wrapped export: the material, in `format`, wrapped; public, since only the wrapping
/// key's holder can open it.
#[derive(Debug)]
pub struct WrappedExportResponse {
    pub key_id: Uuid,
    pub key_version: u32,
    pub spec: KeySpec,
    pub format: KeyEncoding,
    pub wrapped: Bytes,
    pub wrapping_key_id: Uuid,
    pub wrapping_key_version: u32,
}

/// Who the caller is, as the server sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub principal_id: Uuid,
    pub principal: String,
    pub tenant_id: Uuid,
    /// The tenant's name (`system` for operators and system auditors).
    pub tenant: String,
    pub roles: Vec<Role>,
    pub groups: Vec<String>,
    /// How the caller proved who it is: `api_token`, `session`, `certificate`, `jwt`.
    pub credential: String,
    /// With `include=actions`: the actions the caller's roles cover (key policies may
    /// still refuse a key action), so that a user interface offers only what could be
    /// allowed. The server decides again on every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
}

/// Creates a tenant with its first tenant-admin, whose API token is shown once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    pub name: String,
    /// The first tenant-admin's name (default `admin`).
    #[serde(default)]
    pub admin_name: Option<String>,
    /// How the first tenant-admin signs in: an external identity (a certificate or a JWT
    /// subject). With it, no token is issued, so the operator who creates the tenant never
    /// holds a credential of it. Without it, a token valid 24 hours is returned once, for
    /// the tenant's real admin to replace with their own.
    #[serde(default)]
    pub admin_binding: Option<CreateBindingRequest>,
    #[serde(default)]
    pub settings: Option<TenantSettings>,
    /// Trust anchors (client CAs, JWT issuers) assigned to the new tenant, so that
    /// `admin_binding` can name an identity issued under one of them.
    #[serde(default)]
    pub trust: Vec<TrustAnchorRequest>,
}

/// Assigns a trust anchor to a tenant (system operators): a client CA whose certificates,
/// or a JWT issuer whose tokens, authenticate into that tenant and no other. One of the two.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustAnchorRequest {
    /// The CA certificate (PEM) that signs the tenant's client certificates: the CA that
    /// issues them directly (an intermediate, where there is one), which must chain to
    /// `tls.client_ca` for its certificates to pass the handshake.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// A configured JWT issuer (`iss`).
    #[serde(default)]
    pub jwt_issuer: Option<String>,
}

/// A trust anchor and the tenant it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrustAnchorInfo {
    /// `ca:<SHA-256 hex of the CA's SubjectPublicKeyInfo>` or `jwt:<issuer>`.
    pub id: String,
    /// The owning tenant; `None` once withdrawn (the anchor then authenticates no one).
    pub tenant_id: Option<Uuid>,
    /// For a CA: its subject (canonical RFC 4514), to recognise it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_subject: Option<String>,
    pub assigned_at: DateTime<Utc>,
}

/// The trust anchors of a tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrustAnchorList {
    pub anchors: Vec<TrustAnchorInfo>,
    /// Whether the tenant also owns every anchor never assigned to any tenant (the
    /// `default` tenant: the single-tenant and development set-up).
    pub owns_unassigned: bool,
}

/// A tenant as the system operator sees it (never its KEK).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantInfo {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
    pub system: bool,
    #[serde(default)]
    pub deleted: bool,
    pub settings: TenantSettings,
}

/// What creating a tenant made.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantCreated {
    pub tenant: TenantInfo,
    pub admin: Principal,
    /// Shown once, when no `admin_binding` was given; expires after 24 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_binding: Option<BindingInfo>,
}

/// Tenants.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantInfo>,
}

/// Creates a principal (a user or a service) in the caller's tenant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipalRequest {
    pub name: String,
    pub roles: Vec<Role>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// `user` (default) or `service`.
    #[serde(default)]
    pub kind: Option<String>,
}

/// Changes a principal's roles, groups or disabled flag; absent fields stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePrincipalRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Role>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// Principals of a tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PrincipalList {
    pub principals: Vec<Principal>,
}

/// Issues an API token for a principal.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A label for listings.
    #[serde(default)]
    pub name: Option<String>,
    /// Lifetime in seconds (default: no expiry; at most 10 years).
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
}

/// A token as issued: the secret is shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    pub id: String,
    pub principal_id: Uuid,
    pub token: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token's metadata (never its secret or hash).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub principal_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Tokens.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
}

/// An AWS-style access key pair as issued: the secret access key is shown once. Clients sign
/// requests to the AWS-compatible door and the XKS door with it (Signature Version 4).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AwsCredentialCreated {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub principal_id: Uuid,
    pub name: String,
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for AwsCredentialCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentialCreated")
            .field("access_key_id", &self.access_key_id)
            .field("principal_id", &self.principal_id)
            .finish_non_exhaustive()
    }
}

/// An access key pair's metadata (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AwsCredentialInfo {
    pub access_key_id: String,
    pub principal_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Access key pairs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AwsCredentialList {
    pub credentials: Vec<AwsCredentialInfo>,
}

/// How an external identity maps to a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BindingKind {
    /// SHA-256 of the client certificate (lower-case hex).
    CertificateFingerprint,
    /// The certificate subject as an RFC 4514 string (`CN=app,OU=zone-a,O=Example`, most
    /// specific RDN first), compared in canonical form: `,` `+` `=` inside a value must be
    /// escaped (`CN=svc\\, O\\=Example` is one common name).
    CertificateSubject,
    /// One subject alternative name (DNS name, URI, e-mail or IP address).
    CertificateSan,
    /// The mapped claim of a JWT from a configured issuer (`value` is the claim's value).
    Jwt,
}

impl BindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BindingKind::CertificateFingerprint => "certificate-fingerprint",
            BindingKind::CertificateSubject => "certificate-subject",
            BindingKind::CertificateSan => "certificate-san",
            BindingKind::Jwt => "jwt",
        }
    }
}

/// Maps a certificate or a JWT identity to a principal.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBindingRequest {
    pub kind: BindingKind,
    pub value: String,
    /// For `jwt`: the issuer (`iss`) as configured.
    #[serde(default)]
    pub issuer: Option<String>,
    /// For a certificate binding, optionally: the client certificate itself (PEM). The
    /// value must then be its fingerprint, subject or one of its SANs, and the binding is
    /// refused if any other of its names is bound to another principal of the tenant (a
    /// certificate maps to one principal); its names are kept with the binding, so that a
    /// later subject or SAN binding that would match it for someone else is refused too.
    #[serde(default)]
    pub certificate: Option<String>,
}

/// The names of a certificate a binding was made with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CertificateNames {
    pub fingerprint: String,
    /// Canonical RFC 4514.
    pub subject: String,
    /// Its DNS, URI, e-mail and IP SANs.
    pub sans: Vec<String>,
}

/// A credential binding.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BindingInfo {
    pub id: String,
    pub tenant_id: Uuid,
    pub principal_id: Uuid,
    pub kind: BindingKind,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The certificate it was made with, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateNames>,
    pub created_at: DateTime<Utc>,
}

/// Bindings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BindingList {
    pub bindings: Vec<BindingInfo>,
}

/// Replaces a key's policy statements (a new version).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicyRequest {
    pub statements: Vec<Statement>,
    /// The version the caller read and edited; if the policy has moved on since, the
    /// change is refused (409) instead of silently overwriting someone else's.
    #[serde(default)]
    pub expected_version: Option<u32>,
}

/// Rolls a key's policy back to an earlier version's statements (as a new version).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackPolicyRequest {
    pub version: u32,
}

/// Every version of a key's policy, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyVersions {
    pub versions: Vec<KeyPolicy>,
}

/// Approval requests.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApprovalList {
    pub approvals: Vec<ApprovalRequest>,
    pub next_cursor: Option<String>,
}

/// Lists approval requests.
#[derive(Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListApprovalsQuery {
    #[serde(default)]
    pub status: Option<ApprovalStatus>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// An approver's vote.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteRequest {
    #[serde(default)]
    pub comment: Option<String>,
}

/// The result of executing an approved request: the operation's own response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutedApproval {
    pub approval: ApprovalRequest,
    pub result: ApprovalResult,
}

/// What an approved operation returned, as its own endpoint would have.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ApprovalResult {
    Key(Box<KeyInfo>),
    Principal(Principal),
    Token(TokenCreated),
    AwsCredential(AwsCredentialCreated),
    Transfer(Box<crate::byok::TransferResponse>),
    Binding(BindingInfo),
    Export(ExportResponse),
    Policy(KeyPolicy),
    Grant(crate::grants::Grant),
    Settings(TenantSettings),
    Tenant(TenantInfo),
    TrustAnchor(TrustAnchorInfo),
    AuditPrune(crate::retention::PruneResult),
}

/// Trades a credential (or a refresh token) for a short-lived session.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// `credential` (default): the bearer credential of this request starts a session;
    /// `refresh_token`: the `refresh_token` field continues one.
    #[serde(default)]
    pub grant_type: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// A session's tokens (OAuth 2.0 token response shape).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionTokens {
    pub access_token: String,
    pub token_type: String,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
    pub session_id: Uuid,
}
