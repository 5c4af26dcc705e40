//! The nouns: key specs, usages, states, keys, versions, their history.
//!
//! Names follow AWS KMS where Arca offers the same thing (`AES_256`, `ECC_NIST_P256`,
//! `ENCRYPT_DECRYPT`) and KMIP / NIST SP 800-57 for the lifecycle, so that what users
//! already know carries over.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::LegacyAlgorithm;
use crate::error::{Error, Result};

/// The kind and size of a key. Fixed for the key's life: every version has the same spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeySpec {
    #[serde(rename = "AES_128")]
    Aes128,
    #[serde(rename = "AES_192")]
    Aes192,
    #[serde(rename = "AES_256")]
    Aes256,
    #[serde(rename = "HMAC_256")]
    Hmac256,
    #[serde(rename = "HMAC_384")]
    Hmac384,
    #[serde(rename = "HMAC_512")]
    Hmac512,
    /// RSA-1024: a legacy key ([`crate::access::LegacyAlgorithm::RsaBelow2048`]) that only
    /// tenants allowing legacy algorithms make or use, for KMIP clients that still need it.
    #[serde(rename = "RSA_1024")]
    Rsa1024,
    #[serde(rename = "RSA_2048")]
    Rsa2048,
    #[serde(rename = "RSA_3072")]
    Rsa3072,
    #[serde(rename = "RSA_4096")]
    Rsa4096,
    #[serde(rename = "ECC_NIST_P256")]
    EccNistP256,
    #[serde(rename = "ECC_NIST_P384")]
    EccNistP384,
    #[serde(rename = "ECC_NIST_P521")]
    EccNistP521,
    #[serde(rename = "ED25519")]
    Ed25519,
    #[serde(rename = "ML_KEM_768")]
    MlKem768,
    #[serde(rename = "ML_KEM_1024")]
    MlKem1024,
    #[serde(rename = "ML_DSA_44")]
    MlDsa44,
    #[serde(rename = "ML_DSA_65")]
    MlDsa65,
    #[serde(rename = "ML_DSA_87")]
    MlDsa87,
    /// Opaque secret bytes (a password, a seed, a key of an algorithm Arca does not run):
    /// stored, protected and returned on export like any key material, used for nothing
    /// else. KMIP's Secret Data and Opaque Object.
    #[serde(rename = "SECRET_DATA")]
    SecretData,
    /// Triple DES (TDEA, keying option 1: three independent 56-bit keys, 24 bytes with
    /// parity): a legacy cipher ([`LegacyAlgorithm::TripleDes`]) for appliances that still
    /// speak it, only in tenants that allow legacy algorithms, and only raw (KMIP's ECB
    /// and CBC), never Arca's own ciphertexts.
    #[serde(rename = "TRIPLE_DES")]
    TripleDes,
    /// A 256-bit ChaCha20 key for the raw stream cipher with a client's nonce
    /// ([`LegacyAlgorithm::ChaCha20`]); only in tenants that allow legacy algorithms.
    #[serde(rename = "CHACHA20")]
    ChaCha20,
    /// A 256-bit key for the ChaCha20-Poly1305 AEAD (RFC 8439) with a client's nonce
    /// ([`LegacyAlgorithm::ChaCha20`]); only in tenants that allow legacy algorithms.
    #[serde(rename = "CHACHA20_POLY1305")]
    ChaCha20Poly1305,
    /// DSA keys (FIPS 186: a 512-bit prime p and a 160-bit q), the size FIPS 186-2 began
    /// with, which KMIP clients and the OASIS profiles still register
    /// ([`LegacyAlgorithm::Dsa`]); only registered, never generated, and only in tenants that
    /// allow legacy algorithms.
    #[serde(rename = "DSA_512")]
    Dsa512,
    /// DSA with a 1024-bit p and a 160-bit q ([`LegacyAlgorithm::Dsa`]).
    #[serde(rename = "DSA_1024")]
    Dsa1024,
    /// DSA with a 2048-bit p and a 256-bit q ([`LegacyAlgorithm::Dsa`]).
    #[serde(rename = "DSA_2048")]
    Dsa2048,
    /// DSA with a 3072-bit p and a 256-bit q ([`LegacyAlgorithm::Dsa`]).
    #[serde(rename = "DSA_3072")]
    Dsa3072,
}

/// The family a spec belongs to; decides which operations make sense at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Aes,
    Hmac,
    Rsa,
    Ec,
    Ed25519,
    MlKem,
    MlDsa,
    Secret,
    TripleDes,
    ChaCha20,
    Dsa,
}

impl KeySpec {
    /// Every spec, in a stable order (for documentation and exhaustive tests).
    pub const ALL: [KeySpec; 27] = [
        KeySpec::Aes128,
        KeySpec::Aes192,
        KeySpec::Aes256,
        KeySpec::Hmac256,
        KeySpec::Hmac384,
        KeySpec::Hmac512,
        KeySpec::Rsa1024,
        KeySpec::Rsa2048,
        KeySpec::Rsa3072,
        KeySpec::Rsa4096,
        KeySpec::EccNistP256,
        KeySpec::EccNistP384,
        KeySpec::EccNistP521,
        KeySpec::Ed25519,
        KeySpec::MlKem768,
        KeySpec::MlKem1024,
        KeySpec::MlDsa44,
        KeySpec::MlDsa65,
        KeySpec::MlDsa87,
        KeySpec::SecretData,
        KeySpec::TripleDes,
        KeySpec::ChaCha20,
        KeySpec::ChaCha20Poly1305,
        KeySpec::Dsa512,
        KeySpec::Dsa1024,
        KeySpec::Dsa2048,
        KeySpec::Dsa3072,
    ];

    /// The spec's family.
    pub fn family(self) -> KeyFamily {
        use KeySpec::*;
        match self {
            Aes128 | Aes192 | Aes256 => KeyFamily::Aes,
            Hmac256 | Hmac384 | Hmac512 => KeyFamily::Hmac,
            Rsa1024 | Rsa2048 | Rsa3072 | Rsa4096 => KeyFamily::Rsa,
            EccNistP256 | EccNistP384 | EccNistP521 => KeyFamily::Ec,
            Ed25519 => KeyFamily::Ed25519,
            MlKem768 | MlKem1024 => KeyFamily::MlKem,
            MlDsa44 | MlDsa65 | MlDsa87 => KeyFamily::MlDsa,
            SecretData => KeyFamily::Secret,
            TripleDes => KeyFamily::TripleDes,
            ChaCha20 | ChaCha20Poly1305 => KeyFamily::ChaCha20,
            Dsa512 | Dsa1024 | Dsa2048 | Dsa3072 => KeyFamily::Dsa,
        }
    }

    /// True for specs whose material is a private/public pair.
    pub fn is_asymmetric(self) -> bool {
        !matches!(
            self.family(),
            KeyFamily::Aes
                | KeyFamily::Hmac
                | KeyFamily::Secret
                | KeyFamily::TripleDes
                | KeyFamily::ChaCha20
        )
    }

    /// Length in bytes of raw symmetric material, `None` for asymmetric specs.
    pub fn symmetric_len(self) -> Option<usize> {
        match self {
            KeySpec::Aes128 => Some(16),
            KeySpec::Aes192 => Some(24),
            KeySpec::Aes256 => Some(32),
            KeySpec::Hmac256 => Some(32),
            KeySpec::Hmac384 => Some(48),
            KeySpec::Hmac512 => Some(64),
            KeySpec::TripleDes => Some(24),
            KeySpec::ChaCha20 | KeySpec::ChaCha20Poly1305 => Some(32),
            _ => None,
        }
    }

    /// The legacy algorithm a key of this spec is ([`LegacyAlgorithm`]): it is made and
    /// used only in tenants that allow legacy algorithms. `None` for Arca's own specs.
    pub fn legacy(self) -> Option<LegacyAlgorithm> {
        if self == KeySpec::Rsa1024 {
            return Some(LegacyAlgorithm::RsaBelow2048);
        }
        match self.family() {
            KeyFamily::TripleDes => Some(LegacyAlgorithm::TripleDes),
            KeyFamily::ChaCha20 => Some(LegacyAlgorithm::ChaCha20),
            KeyFamily::Dsa => Some(LegacyAlgorithm::Dsa),
            _ => None,
        }
    }

    /// The legacy algorithm a usage of a key of this spec amounts to, beyond what the
    /// spec itself can do: an AES key that computes HMACs serves two algorithms
    /// ([`LegacyAlgorithm::CrossAlgorithmHmac`]), which KMIP clients ask for by registering
    /// an AES key with MAC bits in its usage mask. Such a usage is possible only in tenants
    /// that allow legacy algorithms.
    pub fn legacy_usage(self, usage: KeyUsage) -> Option<LegacyAlgorithm> {
        (self.family() == KeyFamily::Aes && usage.pair() == KeyUsage::GenerateVerifyMac)
            .then_some(LegacyAlgorithm::CrossAlgorithmHmac)
    }

    /// The sizes (bits of p, bits of q) of a DSA spec, `None` for other specs.
    pub fn dsa_sizes(self) -> Option<(u32, u32)> {
        match self {
            KeySpec::Dsa512 => Some((512, 160)),
            KeySpec::Dsa1024 => Some((1024, 160)),
            KeySpec::Dsa2048 => Some((2048, 256)),
            KeySpec::Dsa3072 => Some((3072, 256)),
            _ => None,
        }
    }

    /// True for specs whose keys serve only the raw cipher operations (a client's mode,
    /// IV or nonce, bare ciphertext): Triple DES and ChaCha20 have no place in Arca's own
    /// ciphertext format, so their keys are always made with `raw_cipher_modes`.
    pub fn raw_only(self) -> bool {
        matches!(self.family(), KeyFamily::TripleDes | KeyFamily::ChaCha20)
    }

    /// True for specs a key may be made for raw cipher use with (`raw_cipher_modes`).
    pub fn offers_raw_modes(self) -> bool {
        self.family() == KeyFamily::Aes || self.raw_only()
    }

    /// The usages this spec can have at all, as pairs: either direction of a pair listed
    /// here is possible too (see [`KeyUsage::pair`]).
    pub fn possible_usages(self) -> &'static [KeyUsage] {
        use KeyUsage::*;
        match self.family() {
            KeyFamily::Aes => &[EncryptDecrypt, WrapUnwrap, Derive],
            KeyFamily::Hmac => &[GenerateVerifyMac, Derive],
            KeyFamily::Rsa => &[EncryptDecrypt, SignVerify, WrapUnwrap],
            KeyFamily::Ec => &[SignVerify],
            KeyFamily::Ed25519 => &[SignVerify],
            KeyFamily::MlKem => &[KeyEncapsulation],
            KeyFamily::MlDsa => &[SignVerify],
            // Secret data takes part in no cryptographic operation of Arca's; what a client
            // derives from it happens outside.
            KeyFamily::Secret => &[Derive],
            KeyFamily::TripleDes | KeyFamily::ChaCha20 => &[EncryptDecrypt],
            KeyFamily::Dsa => &[SignVerify],
        }
    }

    /// The usage a key of this spec gets when the request names none.
    pub fn default_usage(self) -> KeyUsage {
        self.possible_usages()[0]
    }

    /// The wire name (`AES_256`, `ECC_NIST_P256`, ...).
    pub fn as_str(self) -> &'static str {
        use KeySpec::*;
        match self {
            Aes128 => "AES_128",
            Aes192 => "AES_192",
            Aes256 => "AES_256",
            Hmac256 => "HMAC_256",
            Hmac384 => "HMAC_384",
            Hmac512 => "HMAC_512",
            Rsa1024 => "RSA_1024",
            Rsa2048 => "RSA_2048",
            Rsa3072 => "RSA_3072",
            Rsa4096 => "RSA_4096",
            EccNistP256 => "ECC_NIST_P256",
            EccNistP384 => "ECC_NIST_P384",
            EccNistP521 => "ECC_NIST_P521",
            Ed25519 => "ED25519",
            MlKem768 => "ML_KEM_768",
            MlKem1024 => "ML_KEM_1024",
            MlDsa44 => "ML_DSA_44",
            MlDsa65 => "ML_DSA_65",
            MlDsa87 => "ML_DSA_87",
            SecretData => "SECRET_DATA",
            TripleDes => "TRIPLE_DES",
            ChaCha20 => "CHACHA20",
            ChaCha20Poly1305 => "CHACHA20_POLY1305",
            Dsa512 => "DSA_512",
            Dsa1024 => "DSA_1024",
            Dsa2048 => "DSA_2048",
            Dsa3072 => "DSA_3072",
        }
    }

    /// Parses a wire name; the error names the field and lists what is accepted.
    pub fn parse(field: &str, s: &str) -> Result<Self> {
        KeySpec::ALL
            .iter()
            .copied()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    format!(
                        "unknown key spec {s:?}; expected one of {}",
                        KeySpec::ALL.map(|k| k.as_str()).join(", ")
                    ),
                )
            })
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a key may be used for. A key has one or more usages, fixed at creation.
///
/// A pair (`ENCRYPT_DECRYPT`, ...) grants both directions; a one-direction usage
/// (`ENCRYPT`, `DECRYPT`, ...) grants one, so that a key can be made that only encrypts
/// (a producer that must never read back) or only decrypts. Every door maps its own notion
/// onto these (KMIP's Cryptographic Usage Mask bit by bit, AWS's `KeyUsage` pairs, XKS's
/// `keyUsage` directions), and the service checks them with [`Key::can`] on every door.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyUsage {
    EncryptDecrypt,
    SignVerify,
    WrapUnwrap,
    GenerateVerifyMac,
    Derive,
    KeyEncapsulation,
    Encrypt,
    Decrypt,
    Sign,
    Verify,
    Wrap,
    Unwrap,
    GenerateMac,
    VerifyMac,
}

impl KeyUsage {
    /// Every usage, pairs first.
    pub const ALL: [KeyUsage; 14] = [
        KeyUsage::EncryptDecrypt,
        KeyUsage::SignVerify,
        KeyUsage::WrapUnwrap,
        KeyUsage::GenerateVerifyMac,
        KeyUsage::Derive,
        KeyUsage::KeyEncapsulation,
        KeyUsage::Encrypt,
        KeyUsage::Decrypt,
        KeyUsage::Sign,
        KeyUsage::Verify,
        KeyUsage::Wrap,
        KeyUsage::Unwrap,
        KeyUsage::GenerateMac,
        KeyUsage::VerifyMac,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        use KeyUsage::*;
        match self {
            EncryptDecrypt => "ENCRYPT_DECRYPT",
            SignVerify => "SIGN_VERIFY",
            WrapUnwrap => "WRAP_UNWRAP",
            GenerateVerifyMac => "GENERATE_VERIFY_MAC",
            Derive => "DERIVE",
            KeyEncapsulation => "KEY_ENCAPSULATION",
            Encrypt => "ENCRYPT",
            Decrypt => "DECRYPT",
            Sign => "SIGN",
            Verify => "VERIFY",
            Wrap => "WRAP",
            Unwrap => "UNWRAP",
            GenerateMac => "GENERATE_MAC",
            VerifyMac => "VERIFY_MAC",
        }
    }

    /// The one-direction usages this usage grants: both halves of a pair, or itself.
    /// (`DERIVE` and `KEY_ENCAPSULATION` have no halves: encapsulating and decapsulating
    /// are one usage, as in AWS's and KMIP's models.)
    pub fn directions(self) -> &'static [KeyUsage] {
        use KeyUsage::*;
        match self {
            EncryptDecrypt => &[Encrypt, Decrypt],
            SignVerify => &[Sign, Verify],
            WrapUnwrap => &[Wrap, Unwrap],
            GenerateVerifyMac => &[GenerateMac, VerifyMac],
            Derive => &[Derive],
            KeyEncapsulation => &[KeyEncapsulation],
            Encrypt => &[Encrypt],
            Decrypt => &[Decrypt],
            Sign => &[Sign],
            Verify => &[Verify],
            Wrap => &[Wrap],
            Unwrap => &[Unwrap],
            GenerateMac => &[GenerateMac],
            VerifyMac => &[VerifyMac],
        }
    }

    /// The pair a usage belongs to (itself for a pair, `DERIVE` and `KEY_ENCAPSULATION`):
    /// what a spec's possible usages are stated in.
    pub fn pair(self) -> KeyUsage {
        use KeyUsage::*;
        match self {
            Encrypt | Decrypt => EncryptDecrypt,
            Sign | Verify => SignVerify,
            Wrap | Unwrap => WrapUnwrap,
            GenerateMac | VerifyMac => GenerateVerifyMac,
            other => other,
        }
    }

    /// The usages `usages` grants, in canonical form: sorted, without repeats, and with a
    /// pair wherever both of its directions are granted (`[ENCRYPT, DECRYPT]` is
    /// `[ENCRYPT_DECRYPT]`), so that two keys that can do the same report the same.
    pub fn canonical(usages: &[KeyUsage]) -> Vec<KeyUsage> {
        let mut dirs: Vec<KeyUsage> = usages
            .iter()
            .flat_map(|u| u.directions().iter().copied())
            .collect();
        dirs.sort();
        dirs.dedup();
        let mut out: Vec<KeyUsage> = Vec::new();
        for d in &dirs {
            let pair = d.pair();
            if pair.directions().iter().all(|h| dirs.contains(h)) {
                if !out.contains(&pair) {
                    out.push(pair);
                }
            } else {
                out.push(*d);
            }
        }
        out.sort();
        out
    }
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a key's usage limit counts (KMIP's Usage Limits Unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UsageUnit {
    /// Bytes of data protected (encrypted, signed, MACed) under the key.
    Byte,
    /// Protecting operations, one per request.
    Object,
}

/// A budget of protection a key may apply in its life (KMIP's Usage Limits): a key meant
/// to encrypt at most so much data (a block cipher's safe volume, a policy's "one key per
/// N gigabytes") refuses every protecting use past it, on every door, while it still
/// decrypts and verifies what it protected. `remaining` only goes down; each protecting
/// use is written to the store before it is performed, so a crash never gives uses back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageLimits {
    pub unit: UsageUnit,
    /// The budget the key was made with (KMIP's Usage Limits Total).
    pub total: u64,
    /// What is left of it (KMIP's Usage Limits Count).
    pub remaining: u64,
}

impl UsageLimits {
    /// A fresh budget of `total` units; `total` must be at least 1.
    pub fn new(unit: UsageUnit, total: u64) -> Result<UsageLimits> {
        if total == 0 || total > i64::MAX as u64 {
            return Err(Error::invalid(
                "usage_limits.total",
                format!("must be 1 to {}", i64::MAX),
            ));
        }
        Ok(UsageLimits {
            unit,
            total,
            remaining: total,
        })
    }

    /// What one protecting use of `bytes` bytes costs.
    pub fn cost(&self, bytes: usize) -> u64 {
        match self.unit {
            UsageUnit::Byte => bytes as u64,
            UsageUnit::Object => 1,
        }
    }
}

/// Where the key material came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Origin {
    /// Generated inside Arca.
    Generated,
    /// Imported by a caller; Arca cannot vouch for who else holds it.
    Imported,
}

/// Lifecycle state of a key or of one of its versions (NIST SP 800-57, KMIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyState {
    PreActive,
    Active,
    Suspended,
    Deactivated,
    Compromised,
    Destroyed,
    DestroyedCompromised,
}

impl KeyState {
    /// Every state, in lifecycle order.
    pub const ALL: [KeyState; 7] = [
        KeyState::PreActive,
        KeyState::Active,
        KeyState::Suspended,
        KeyState::Deactivated,
        KeyState::Compromised,
        KeyState::Destroyed,
        KeyState::DestroyedCompromised,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::PreActive => "PRE_ACTIVE",
            KeyState::Active => "ACTIVE",
            KeyState::Suspended => "SUSPENDED",
            KeyState::Deactivated => "DEACTIVATED",
            KeyState::Compromised => "COMPROMISED",
            KeyState::Destroyed => "DESTROYED",
            KeyState::DestroyedCompromised => "DESTROYED_COMPROMISED",
        }
    }

    /// Parses a wire name (case-insensitive).
    pub fn parse(field: &str, s: &str) -> Result<Self> {
        KeyState::ALL
            .iter()
            .copied()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    format!(
                        "unknown state {s:?}; expected one of {}",
                        KeyState::ALL.map(|k| k.as_str()).join(", ")
                    ),
                )
            })
    }

    /// True once the material is gone.
    pub fn is_destroyed(self) -> bool {
        matches!(self, KeyState::Destroyed | KeyState::DestroyedCompromised)
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a key was deactivated (the CSA Tier 2 reasons that apply to deactivation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeactivationReason {
    Expired,
    Revoked,
    Superseded,
}

impl DeactivationReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeactivationReason::Expired => "EXPIRED",
            DeactivationReason::Revoked => "REVOKED",
            DeactivationReason::Superseded => "SUPERSEDED",
        }
    }
}

/// A tenant: the isolation boundary that owns keys and principals.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// A disabled tenant's principals cannot authenticate; its keys stay intact.
    pub disabled: bool,
    /// True for the built-in tenant of system operators, which holds no keys.
    #[serde(default)]
    pub system: bool,
    /// A deleted tenant is a tombstone: its name and id are never reused.
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub settings: crate::access::TenantSettings,
}

/// A user or service that calls Arca.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Principal {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub roles: Vec<crate::access::Role>,
    /// Group names, for key policies and approval rules.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `user` or `service`: informative only.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// A disabled principal cannot authenticate.
    #[serde(default)]
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

fn default_kind() -> String {
    "user".into()
}

/// A key's metadata. The material lives in its [`KeyVersion`]s, encrypted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub description: String,
    pub spec: KeySpec,
    pub usage: Vec<KeyUsage>,
    pub origin: Origin,
    pub extractable: bool,
    pub tags: BTreeMap<String, String>,
    pub meta: serde_json::Value,
    pub state: KeyState,
    pub deactivation_reason: Option<DeactivationReason>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub activation_date: Option<DateTime<Utc>>,
    pub protect_stop_date: Option<DateTime<Utc>>,
    /// Before this date the key processes nothing (decrypt, verify): NIST SP 800-57's
    /// process start, KMIP's Process Start Date.
    #[serde(default)]
    pub process_start_date: Option<DateTime<Utc>>,
    pub deactivation_date: Option<DateTime<Utc>>,
    pub compromise_date: Option<DateTime<Utc>>,
    pub destroy_after: Option<DateTime<Utc>>,
    pub destroyed_at: Option<DateTime<Utc>>,
    pub rotation_period_days: Option<u32>,
    pub next_rotation_at: Option<DateTime<Utc>>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub primary_version: u32,
    /// Who may do what with this key (versioned; see [`crate::access::decide`]).
    #[serde(default)]
    pub policy: crate::access::KeyPolicy,
    /// Where the key's material lives and is used (GCP's protection levels).
    #[serde(default)]
    pub protection_level: ProtectionLevel,
    /// True once the material has left Arca (an export, plain or wrapped); KMIP's Fresh
    /// attribute is its negation.
    #[serde(default)]
    pub exported: bool,
    /// An imported key whose material is not in Arca: made to receive an import, or after
    /// its material was deleted or expired. Nothing uses the key until material is imported
    /// (AWS's PendingImport).
    #[serde(default)]
    pub pending_import: bool,
    /// When imported material is deleted by itself (AWS's `ValidTo`); then the key is
    /// pending import again.
    #[serde(default)]
    pub material_expires_at: Option<DateTime<Utc>>,
    /// A key made for raw block-cipher use (KMIP's Encrypt and Decrypt in ECB, CBC, CTR,
    /// with a caller's IV). Fixed at creation. Such a key never serves Arca's own
    /// ciphertexts, the AWS door or XKS; a key that does (the default) offers raw AES only as
    /// GCM with an IV the server draws. The split exists because one AES key used both ways
    /// leaks: a caller-chosen GCM nonce or a raw CTR/ECB block reveals the keystream (or
    /// GHASH key) of the authenticated ciphertexts that other principals rely on.
    #[serde(default)]
    pub raw_cipher_modes: bool,
    /// The protection this key may still apply (KMIP's Usage Limits); none is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limits: Option<UsageLimits>,
    /// Optimistic-concurrency counter: bumped on every write, checked by the store.
    pub revision: i64,
}

impl Key {
    /// True if the key may be used in this direction (`Encrypt`, `Decrypt`, `Sign`, ...;
    /// a pair asks for both). The one usage check of every door.
    pub fn can(&self, usage: KeyUsage) -> bool {
        can(&self.usage, usage)
    }
}

/// True if `usages` grant every direction of `usage`.
pub fn can(usages: &[KeyUsage], usage: KeyUsage) -> bool {
    usage
        .directions()
        .iter()
        .all(|d| usages.iter().any(|u| u.directions().contains(d)))
}

/// One generation of a key's material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyVersion {
    pub key_id: Uuid,
    pub version: u32,
    pub state: KeyState,
    pub deactivation_reason: Option<DeactivationReason>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub destroy_after: Option<DateTime<Utc>>,
    pub destroyed_at: Option<DateTime<Utc>>,
    /// The public half (SPKI DER) of an asymmetric version; never secret.
    pub public_key: Option<Vec<u8>>,
    /// True when the version holds only a public key (imported SPKI).
    pub public_only: bool,
    /// SHA-256 of the material as it is exported (raw bytes, PKCS#8 or SPKI), hex: KMIP's
    /// Digest attribute, so that a client can tell two copies of a key apart without the
    /// key. `None` for HSM-held material, which Arca never sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Imported material deleted (not destroyed): importing the same material again
    /// restores it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub material_deleted: bool,
}

/// One entry of a key's history: every transition, rotation and change, with who and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyEvent {
    pub key_id: Uuid,
    pub version: Option<u32>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_state: Option<KeyState>,
    pub to_state: Option<KeyState>,
    pub reason: Option<String>,
}

/// Where a key's material lives and where its operations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProtectionLevel {
    /// Sealed by the tenant KEK in the store; used in the server's memory.
    #[default]
    Software,
    /// Generated in the HSM, never leaves it; every operation runs in the token.
    Hsm,
}

impl ProtectionLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectionLevel::Software => "SOFTWARE",
            ProtectionLevel::Hsm => "HSM",
        }
    }
}

/// Signature schemes, with AWS KMS's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SigningAlgorithm {
    #[serde(rename = "RSASSA_PSS_SHA_256")]
    RsassaPssSha256,
    #[serde(rename = "RSASSA_PSS_SHA_384")]
    RsassaPssSha384,
    #[serde(rename = "RSASSA_PSS_SHA_512")]
    RsassaPssSha512,
    #[serde(rename = "RSASSA_PKCS1_V1_5_SHA_256")]
    RsassaPkcs1V15Sha256,
    #[serde(rename = "RSASSA_PKCS1_V1_5_SHA_384")]
    RsassaPkcs1V15Sha384,
    #[serde(rename = "RSASSA_PKCS1_V1_5_SHA_512")]
    RsassaPkcs1V15Sha512,
    #[serde(rename = "ECDSA_SHA_256")]
    EcdsaSha256,
    #[serde(rename = "ECDSA_SHA_384")]
    EcdsaSha384,
    #[serde(rename = "ECDSA_SHA_512")]
    EcdsaSha512,
    /// Pure Ed25519 (RFC 8032); the message is hashed with SHA-512 inside the scheme.
    #[serde(rename = "ED25519_SHA_512")]
    Ed25519Sha512,
    /// Pure ML-DSA (FIPS 204).
    #[serde(rename = "ML_DSA_SHAKE_256")]
    MlDsaShake256,
    /// DSA (FIPS 186) over SHA-256, the digest truncated to q's length; DER signatures. A
    /// legacy algorithm ([`LegacyAlgorithm::Dsa`]).
    #[serde(rename = "DSA_SHA_256")]
    DsaSha256,
    /// RSASSA-PSS with SHA-1 (and MGF1-SHA-1): a legacy algorithm
    /// ([`crate::access::LegacyAlgorithm::Sha1Signature`]) that KMIP clients may use in a
    /// tenant that allows legacy algorithms; never a default, never listed as a key's
    /// algorithm, and not offered by the AWS door (AWS KMS has no such algorithm).
    #[serde(rename = "RSASSA_PSS_SHA_1")]
    RsassaPssSha1,
}

impl SigningAlgorithm {
    /// The algorithms a spec can sign with; the first is the default.
    pub fn for_spec(spec: KeySpec) -> &'static [SigningAlgorithm] {
        use SigningAlgorithm::*;
        match spec {
            KeySpec::Rsa1024 | KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => &[
                RsassaPssSha256,
                RsassaPssSha384,
                RsassaPssSha512,
                RsassaPkcs1V15Sha256,
                RsassaPkcs1V15Sha384,
                RsassaPkcs1V15Sha512,
            ],
            KeySpec::EccNistP256 => &[EcdsaSha256],
            KeySpec::EccNistP384 => &[EcdsaSha384],
            KeySpec::EccNistP521 => &[EcdsaSha512],
            KeySpec::Ed25519 => &[Ed25519Sha512],
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => &[MlDsaShake256],
            KeySpec::Dsa512 | KeySpec::Dsa1024 | KeySpec::Dsa2048 | KeySpec::Dsa3072 => {
                &[DsaSha256]
            }
            _ => &[],
        }
    }

    /// The legacy algorithms a spec also signs with, in a tenant that allows them.
    pub fn legacy_for_spec(spec: KeySpec) -> &'static [SigningAlgorithm] {
        match spec.family() {
            KeyFamily::Rsa => &[SigningAlgorithm::RsassaPssSha1],
            _ => &[],
        }
    }

    /// The legacy algorithm this one is, if it is one: the tenant must allow it.
    pub fn legacy(self) -> Option<crate::access::LegacyAlgorithm> {
        match self {
            SigningAlgorithm::RsassaPssSha1 => Some(crate::access::LegacyAlgorithm::Sha1Signature),
            _ => None,
        }
    }

    /// True for the RSASSA-PSS algorithms (whose salt length a caller may name).
    pub fn is_pss(self) -> bool {
        use SigningAlgorithm::*;
        matches!(
            self,
            RsassaPssSha1 | RsassaPssSha256 | RsassaPssSha384 | RsassaPssSha512
        )
    }

    /// The digest length a `DIGEST` message must have, or `None` when the scheme signs only
    /// whole messages (Ed25519, ML-DSA).
    pub fn digest_len(self) -> Option<usize> {
        use SigningAlgorithm::*;
        match self {
            RsassaPssSha1 => Some(20),
            RsassaPssSha256 | RsassaPkcs1V15Sha256 | EcdsaSha256 | DsaSha256 => Some(32),
            RsassaPssSha384 | RsassaPkcs1V15Sha384 | EcdsaSha384 => Some(48),
            RsassaPssSha512 | RsassaPkcs1V15Sha512 | EcdsaSha512 => Some(64),
            Ed25519Sha512 | MlDsaShake256 => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        use SigningAlgorithm::*;
        match self {
            RsassaPssSha256 => "RSASSA_PSS_SHA_256",
            RsassaPssSha384 => "RSASSA_PSS_SHA_384",
            RsassaPssSha512 => "RSASSA_PSS_SHA_512",
            RsassaPkcs1V15Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
            RsassaPkcs1V15Sha384 => "RSASSA_PKCS1_V1_5_SHA_384",
            RsassaPkcs1V15Sha512 => "RSASSA_PKCS1_V1_5_SHA_512",
            EcdsaSha256 => "ECDSA_SHA_256",
            EcdsaSha384 => "ECDSA_SHA_384",
            EcdsaSha512 => "ECDSA_SHA_512",
            Ed25519Sha512 => "ED25519_SHA_512",
            MlDsaShake256 => "ML_DSA_SHAKE_256",
            DsaSha256 => "DSA_SHA_256",
            RsassaPssSha1 => "RSASSA_PSS_SHA_1",
        }
    }
}

/// Whether a signing request carries the whole message or its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageType {
    #[default]
    Raw,
    Digest,
}

/// Encryption schemes, with AWS KMS's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum EncryptionAlgorithm {
    /// AES-GCM with the key's size, a random 96-bit nonce and a 128-bit tag.
    #[serde(rename = "SYMMETRIC_DEFAULT")]
    SymmetricDefault,
    /// RSA-OAEP with SHA-256 and MGF1-SHA-256.
    #[serde(rename = "RSAES_OAEP_SHA_256")]
    RsaesOaepSha256,
}

impl EncryptionAlgorithm {
    /// The algorithm a spec encrypts with.
    pub fn for_spec(spec: KeySpec) -> Option<Self> {
        match spec.family() {
            KeyFamily::Aes => Some(EncryptionAlgorithm::SymmetricDefault),
            KeyFamily::Rsa => Some(EncryptionAlgorithm::RsaesOaepSha256),
            _ => None,
        }
    }
}

/// Digest algorithms a caller may ask for by name (KMIP's Hash operation), with KMIP's
/// Hashing Algorithm names. SHA-1 is here for digests of data a client already has (it is
/// not a key algorithm); MD2, MD4, MD5, RIPEMD-160, Tiger and Whirlpool are not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum DigestAlgorithm {
    #[serde(rename = "SHA_1")]
    Sha1,
    #[serde(rename = "SHA_224")]
    Sha224,
    #[serde(rename = "SHA_256")]
    Sha256,
    #[serde(rename = "SHA_384")]
    Sha384,
    #[serde(rename = "SHA_512")]
    Sha512,
    #[serde(rename = "SHA_512_256")]
    Sha512_256,
    #[serde(rename = "SHA3_256")]
    Sha3_256,
    #[serde(rename = "SHA3_384")]
    Sha3_384,
    #[serde(rename = "SHA3_512")]
    Sha3_512,
}

/// MAC schemes, with AWS KMS's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum MacAlgorithm {
    #[serde(rename = "HMAC_SHA_256")]
    HmacSha256,
    #[serde(rename = "HMAC_SHA_384")]
    HmacSha384,
    #[serde(rename = "HMAC_SHA_512")]
    HmacSha512,
}

impl MacAlgorithm {
    /// The one MAC algorithm of an HMAC spec.
    pub fn for_spec(spec: KeySpec) -> Option<Self> {
        match spec {
            KeySpec::Hmac256 => Some(MacAlgorithm::HmacSha256),
            KeySpec::Hmac384 => Some(MacAlgorithm::HmacSha384),
            KeySpec::Hmac512 => Some(MacAlgorithm::HmacSha512),
            _ => None,
        }
    }
}

#[cfg(test)]
mod legacy_tests {
    use super::{KeySpec, KeyUsage};
    use crate::access::{LegacyAlgorithm, TenantSettings};

    /// The legacy specs and the one legacy usage are named, refused by the default
    /// settings naming the setting, allowed once it is on; raw-only specs offer raw modes
    /// and have no other usage than a cipher's.
    #[test]
    fn legacy_specs_and_usages_need_the_setting() {
        let legacy: Vec<KeySpec> = KeySpec::ALL
            .into_iter()
            .filter(|s| s.legacy().is_some())
            .collect();
        assert_eq!(legacy.len(), 8, "{legacy:?}");
        let off = TenantSettings::default();
        let on = TenantSettings {
            allow_legacy_algorithms: true,
            ..TenantSettings::default()
        };
        for s in &legacy {
            let what = s.legacy().unwrap();
            let e = off.permit_legacy(what, "spec").unwrap_err();
            assert!(e.to_string().contains("allow_legacy_algorithms"), "{e}");
            assert!(on.permit_legacy(what, "spec").is_ok());
            if s.raw_only() {
                assert!(s.offers_raw_modes());
                assert_eq!(s.possible_usages(), &[KeyUsage::EncryptDecrypt]);
            }
        }
        assert_eq!(
            KeySpec::Aes256.legacy_usage(KeyUsage::VerifyMac),
            Some(LegacyAlgorithm::CrossAlgorithmHmac)
        );
        assert_eq!(KeySpec::Aes256.legacy_usage(KeyUsage::Encrypt), None);
        assert_eq!(KeySpec::Hmac256.legacy_usage(KeyUsage::GenerateMac), None);
        assert!(!KeySpec::Rsa2048.offers_raw_modes() && KeySpec::Aes128.offers_raw_modes());
    }
}

#[cfg(test)]
mod usage_tests {
    use super::KeyUsage::{self, *};
    use super::{can, KeySpec};

    /// Halves merge into their pair, a pair grants both halves, and a half grants only
    /// itself: an encrypt-only key cannot decrypt by any spelling of its usages.
    #[test]
    fn directions_and_pairs() {
        assert_eq!(
            KeyUsage::canonical(&[Decrypt, Encrypt]),
            vec![EncryptDecrypt]
        );
        assert_eq!(
            KeyUsage::canonical(&[EncryptDecrypt, Encrypt, Sign]),
            vec![EncryptDecrypt, Sign]
        );
        assert_eq!(KeyUsage::canonical(&[Encrypt]), vec![Encrypt]);
        assert!(can(&[EncryptDecrypt], Decrypt) && can(&[EncryptDecrypt], EncryptDecrypt));
        assert!(can(&[Encrypt], Encrypt) && !can(&[Encrypt], Decrypt));
        assert!(
            !can(&[Encrypt], EncryptDecrypt),
            "a pair asks for both directions"
        );
        assert!(!can(&[WrapUnwrap, Derive], Encrypt));
        for u in KeyUsage::ALL {
            assert!(u.directions().iter().all(|d| d.pair() == u.pair()), "{u}");
            let back: KeyUsage = serde_json::from_value(serde_json::json!(u.as_str())).unwrap();
            assert_eq!(back, u);
        }
        assert!(KeySpec::Aes256.possible_usages().contains(&Encrypt.pair()));
        assert!(!KeySpec::EccNistP256
            .possible_usages()
            .contains(&Encrypt.pair()));
    }
}
