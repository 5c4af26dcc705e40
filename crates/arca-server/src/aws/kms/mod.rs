//! The AWS KMS JSON 1.1 protocol (`X-Amz-Target: TrentService.<Operation>`), mapped onto
//! the service. Names, shapes and error `__type`s follow botocore's model
//! (`kms/2014-11-01/service-2.json`) so that AWS SDKs and the `aws` CLI work unchanged;
//! where Arca's model differs, the mapping is in `docs/aws.md`.
//!
//! This is an adapter: it parses, calls one service operation (two for the few AWS
//! operations that are two of Arca's), and shapes the answer. Authorization, lifecycle,
//! encryption context and audit all happen in the service.
//!
//! This module holds what every operation shares: [`dispatch`] and [`Operation`], input
//! parsing, the AWS shapes of keys, and the one error mapping ([`map_error`]). The
//! operations live by kind: `keys` (a key's life and settings), `crypto` (its uses),
//! `aliases`, `tags`, `import` (imported material), `policies` and `grants`.

use std::collections::BTreeMap;

use arca_core::model::{KeySpec, KeyState, KeyUsage, Origin};
use arca_core::{Error, Fault, StateDetail};
use arca_service::api::KeyInfo;
use arca_service::Caller;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::AwsDoor;

mod aliases;
mod crypto;
mod grants;
mod import;
mod keys;
mod policies;
mod tags;

use aliases::{alias, delete_alias, list_aliases};
use crypto::{
    data_key, data_key_pair, decrypt, encrypt, mac, public_key, random, re_encrypt, sign, verify,
    verify_mac,
};
use grants::{create_grant, list_grants, remove_grant};
use import::{delete_material, import_material, import_parameters};
use keys::{
    cancel_deletion, create_key, custom_key_stores, describe_key, enable_disable, list_keys,
    list_rotations, rotate, rotation_status, schedule_deletion, set_rotation, update_description,
};
use policies::{get_policy, list_policies, put_policy};
use tags::{list_tags, tag, untag};

/// An AWS-shaped error: the `__type` name and HTTP status botocore expects.
#[derive(Debug)]
pub struct AwsError {
    /// The HTTP status botocore expects with this `__type` (it retries on 5xx).
    pub status: u16,
    /// The `__type`: the name SDKs raise as an exception class.
    pub error: &'static str,
    /// The message shown to the caller (never an internal error's detail).
    pub message: String,
    /// True when the service refused (and so already audited the refusal); false when
    /// the adapter refused before calling it.
    pub audited: bool,
}

impl AwsError {
    /// An error of AWS's name `error`, with the status that name has in AWS: the one way
    /// to make one, so that a name always comes with its status.
    pub fn new(error: &'static str, message: impl Into<String>) -> Self {
        let status = match error {
            "KMSInternalException" | "KeyUnavailableException" => 500,
            "DependencyTimeoutException" => 503,
            _ => 400,
        };
        AwsError {
            status,
            error,
            message: message.into(),
            audited: false,
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        AwsError::new("ValidationException", message)
    }

    fn unsupported(message: impl Into<String>) -> Self {
        AwsError::new("UnsupportedOperationException", message)
    }
}

/// Maps the service's error to AWS's name for it, once, for every operation.
pub fn map_error(e: Error) -> AwsError {
    // An internal error's detail is for the server's log, not for the caller.
    let message = match &e {
        Error::Internal { .. } => {
            "an internal error occurred; the server's log has the detail".into()
        }
        _ => e.to_string(),
    };
    let name = match &e {
        Error::NotFound { .. } => "NotFoundException",
        Error::InvalidInput { .. } => "ValidationException",
        Error::Unprocessable { fault, .. } => match fault {
            Fault::ExpiredImportToken => "ExpiredImportTokenException",
            Fault::InvalidImportToken => "InvalidImportTokenException",
            Fault::Ciphertext | Fault::EncryptionContext => "InvalidCiphertextException",
            Fault::IncorrectKey => "IncorrectKeyException",
            Fault::IncorrectKeyMaterial => "IncorrectKeyMaterialException",
            Fault::UnsuitableKey | Fault::Usage => "InvalidKeyUsageException",
            Fault::Unsupported | Fault::Encoding | Fault::Parameter => "ValidationException",
        },
        // AWS refuses a key pending deletion or import as an invalid state, not a
        // disabled key.
        Error::WrongState { detail, state, .. } => match detail {
            Some(StateDetail::PendingDestruction | StateDetail::PendingImport) => {
                "KMSInvalidStateException"
            }
            Some(StateDetail::MaterialDestroyed | StateDetail::Other(_)) | None => match state {
                KeyState::Destroyed | KeyState::DestroyedCompromised => "NotFoundException",
                KeyState::Active => "KMSInvalidStateException",
                _ => "DisabledException",
            },
        },
        Error::Conflict { .. } => "AlreadyExistsException",
        Error::Unauthenticated { .. } => "UnrecognizedClientException",
        Error::NotPermitted { .. } | Error::NeedsApproval { .. } => "AccessDeniedException",
        Error::RateLimited { .. } => "ThrottlingException",
        Error::Sealed => "KeyUnavailableException",
        Error::Unavailable { .. } => "DependencyTimeoutException",
        Error::Internal { .. } => "KMSInternalException",
    };
    AwsError {
        audited: true,
        ..AwsError::new(name, message)
    }
}

type Out = Result<Value, AwsError>;

/// Parses a request body into an operation's input shape. A missing required member is
/// a ValidationException naming it, a member of the wrong type a SerializationException.
fn input<T: DeserializeOwned>(body: &Value) -> Result<T, AwsError> {
    serde_path_to_error::deserialize(body.clone()).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        if inner.starts_with("missing field") {
            AwsError::validation(format!("1 validation error detected: {inner}"))
        } else {
            AwsError::new(
                "SerializationException",
                format!("{}: {inner}", if path == "." { "body" } else { &path }),
            )
        }
    })
}

fn b64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

fn epoch(t: chrono::DateTime<chrono::Utc>) -> Value {
    json!(t.timestamp_millis() as f64 / 1000.0)
}

fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn parse_enum<T: DeserializeOwned>(field: &str, v: &str) -> Result<T, AwsError> {
    serde_json::from_value(Value::String(v.to_string())).map_err(|_| {
        AwsError::validation(format!(
            "1 validation error detected: Value '{v}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set"
        ))
    })
}

/// AWS's key spec names for Arca's specs (the same names but for the three below).
fn aws_spec(s: KeySpec) -> String {
    match s {
        KeySpec::Aes256 => "SYMMETRIC_DEFAULT".into(),
        KeySpec::Ed25519 => "ECC_NIST_EDWARDS25519".into(),
        other => name_of(&other),
    }
}

fn arca_spec(field: &str, s: &str) -> Result<KeySpec, AwsError> {
    match s {
        "SYMMETRIC_DEFAULT" => Ok(KeySpec::Aes256),
        "ECC_NIST_EDWARDS25519" => Ok(KeySpec::Ed25519),
        "ECC_SECG_P256K1" | "SM2" | "HMAC_224" => Err(AwsError::unsupported(format!(
            "{field} {s} is not supported by Arca"
        ))),
        other => {
            let spec: KeySpec = parse_enum(field, other)?;
            // Legacy specs are for the KMIP clients that still need them, never AWS's.
            if spec.legacy().is_some() {
                return Err(AwsError::unsupported(format!(
                    "{field} {s} is not supported by Arca's AWS-compatible API: it is a legacy key spec offered to KMIP clients only, in tenants that turn on allow_legacy_algorithms"
                )));
            }
            Ok(spec)
        }
    }
}

/// AWS's `KeyUsage` names pairs; a one-direction key reports its pair (AWS has no word
/// for an encrypt-only key) and refuses the other direction with InvalidKeyUsageException.
fn aws_usage(k: &KeyInfo) -> &'static str {
    match k.usage.first().map(|u| u.pair()) {
        Some(KeyUsage::SignVerify) => "SIGN_VERIFY",
        Some(KeyUsage::GenerateVerifyMac) => "GENERATE_VERIFY_MAC",
        Some(KeyUsage::KeyEncapsulation | KeyUsage::Derive) => "KEY_AGREEMENT",
        _ => "ENCRYPT_DECRYPT",
    }
}

fn arca_usage(u: &str) -> Result<KeyUsage, AwsError> {
    match u {
        "ENCRYPT_DECRYPT" => Ok(KeyUsage::EncryptDecrypt),
        "SIGN_VERIFY" => Ok(KeyUsage::SignVerify),
        "GENERATE_VERIFY_MAC" => Ok(KeyUsage::GenerateVerifyMac),
        "KEY_AGREEMENT" => Err(AwsError::unsupported(
            "KeyUsage KEY_AGREEMENT is not supported by Arca's AWS door",
        )),
        other => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{other}' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT]"
        ))),
    }
}

fn signing_algorithms(s: KeySpec) -> Vec<&'static str> {
    match s {
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => vec![
            "RSASSA_PSS_SHA_256",
            "RSASSA_PSS_SHA_384",
            "RSASSA_PSS_SHA_512",
            "RSASSA_PKCS1_V1_5_SHA_256",
            "RSASSA_PKCS1_V1_5_SHA_384",
            "RSASSA_PKCS1_V1_5_SHA_512",
        ],
        KeySpec::EccNistP256 => vec!["ECDSA_SHA_256"],
        KeySpec::EccNistP384 => vec!["ECDSA_SHA_384"],
        KeySpec::EccNistP521 => vec!["ECDSA_SHA_512"],
        KeySpec::Ed25519 => vec!["ED25519_SHA_512"],
        KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => vec!["ML_DSA_SHAKE_256"],
        _ => vec![],
    }
}

fn mac_algorithms(s: KeySpec) -> Vec<&'static str> {
    match s {
        KeySpec::Hmac256 => vec!["HMAC_SHA_256"],
        KeySpec::Hmac384 => vec!["HMAC_SHA_384"],
        KeySpec::Hmac512 => vec!["HMAC_SHA_512"],
        _ => vec![],
    }
}

fn encryption_algorithms(k: &KeyInfo) -> Vec<&'static str> {
    if !(arca_core::model::can(&k.usage, KeyUsage::Encrypt)
        || arca_core::model::can(&k.usage, KeyUsage::Decrypt))
    {
        return vec![];
    }
    match k.spec {
        KeySpec::Aes128 | KeySpec::Aes192 | KeySpec::Aes256 => vec!["SYMMETRIC_DEFAULT"],
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => vec!["RSAES_OAEP_SHA_256"],
        _ => vec![],
    }
}

/// A tag list: `[{"TagKey": ..., "TagValue": ...}]`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    tag_key: String,
    tag_value: String,
}

fn tags_in(tags: Vec<Tag>) -> BTreeMap<String, String> {
    tags.into_iter().map(|t| (t.tag_key, t.tag_value)).collect()
}

fn tags_out(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
            .collect(),
    )
}

/// An AWS `Marker`: Arca's cursors and offsets are opaque strings already.
fn limit(l: Option<u32>, max: u32) -> Result<u32, AwsError> {
    match l {
        None => Ok(max.min(100)),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        ))),
    }
}

/// One operation's context.
pub struct Call<'a> {
    /// The door: the service, and the region and account ids that ARNs carry.
    pub door: &'a AwsDoor,
    /// Who calls, as the SigV4 signature proved it.
    pub caller: &'a Caller,
}

impl Call<'_> {
    fn account(&self) -> String {
        self.door.account_id(self.caller.tenant())
    }

    fn key_arn(&self, id: Uuid) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/{id}",
            self.door.region,
            self.account()
        )
    }

    fn alias_arn(&self, alias: &str) -> String {
        format!(
            "arn:aws:kms:{}:{}:alias/{alias}",
            self.door.region,
            self.account()
        )
    }

    /// A `KeyId` as AWS accepts it (key id, key ARN, `alias/name`, alias ARN) as the
    /// service's key reference. An ARN of another region or account names nothing here.
    fn key_ref(&self, key_id: &str) -> Result<String, AwsError> {
        if key_id.is_empty() || key_id.len() > 2048 {
            return Err(AwsError::validation(
                "1 validation error detected: Value at 'keyId' failed to satisfy constraint: Member must have length between 1 and 2048",
            ));
        }
        if let Some(rest) = key_id.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            if parts.len() != 5 || parts[1] != "kms" {
                return Err(AwsError::new(
                    "InvalidArnException",
                    format!("{key_id} is not a KMS key or alias ARN"),
                ));
            }
            if parts[2] != self.door.region || parts[3] != self.account() {
                return Err(AwsError::new(
                    "NotFoundException",
                    format!("Key '{key_id}' does not exist"),
                ));
            }
            let resource = parts[4];
            if let Some(id) = resource.strip_prefix("key/") {
                return Ok(id.to_string());
            }
            if resource.starts_with("alias/") {
                return Ok(resource.to_string());
            }
            return Err(AwsError::new(
                "InvalidArnException",
                format!("{key_id} is not a KMS key or alias ARN"),
            ));
        }
        Ok(key_id.to_string())
    }

    /// A key as AWS describes it (`KeyMetadata`).
    fn metadata(&self, k: &KeyInfo) -> Value {
        let pending_deletion = k.destroy_after.is_some() && !k.state.is_destroyed();
        let (state, enabled) = if pending_deletion {
            ("PendingDeletion", false)
        } else if k.pending_import {
            ("PendingImport", false)
        } else if k.usable_now.protect && k.usable_now.process {
            // The service's own rule: this door serves a key only while it serves both
            // directions, so Enabled is exactly "encrypts and decrypts now".
            ("Enabled", true)
        } else if k.state.is_destroyed() {
            ("Unavailable", false)
        } else {
            ("Disabled", false)
        };
        let mut m = Map::new();
        m.insert("AWSAccountId".into(), json!(self.account()));
        m.insert("KeyId".into(), json!(k.id.to_string()));
        m.insert("Arn".into(), json!(self.key_arn(k.id)));
        m.insert("CreationDate".into(), epoch(k.created_at));
        m.insert("Enabled".into(), json!(enabled));
        m.insert("Description".into(), json!(k.description));
        m.insert("KeyUsage".into(), json!(aws_usage(k)));
        m.insert("KeyState".into(), json!(state));
        if pending_deletion {
            if let Some(d) = k.destroy_after {
                m.insert("DeletionDate".into(), epoch(d));
            }
        }
        if let Some(d) = k.material_expires_at.or(k.deactivation_date) {
            m.insert("ValidTo".into(), epoch(d));
        }
        if k.origin == Origin::Imported {
            m.insert(
                "ExpirationModel".into(),
                json!(if k.material_expires_at.is_some() {
                    "KEY_MATERIAL_EXPIRES"
                } else {
                    "KEY_MATERIAL_DOES_NOT_EXPIRE"
                }),
            );
        }
        m.insert(
            "Origin".into(),
            json!(match k.origin {
                Origin::Generated => "AWS_KMS",
                Origin::Imported => "EXTERNAL",
            }),
        );
        m.insert("KeyManager".into(), json!("CUSTOMER"));
        m.insert("CustomerMasterKeySpec".into(), json!(aws_spec(k.spec)));
        m.insert("KeySpec".into(), json!(aws_spec(k.spec)));
        let enc = encryption_algorithms(k);
        if !enc.is_empty() {
            m.insert("EncryptionAlgorithms".into(), json!(enc));
        }
        if k.usage.iter().any(|u| u.pair() == KeyUsage::SignVerify) {
            m.insert(
                "SigningAlgorithms".into(),
                json!(signing_algorithms(k.spec)),
            );
        }
        if k.usage
            .iter()
            .any(|u| u.pair() == KeyUsage::GenerateVerifyMac)
        {
            m.insert("MacAlgorithms".into(), json!(mac_algorithms(k.spec)));
        }
        m.insert("MultiRegion".into(), json!(false));
        Value::Object(m)
    }

    async fn describe(&self, key_id: &str) -> Result<KeyInfo, AwsError> {
        let r = self.key_ref(key_id)?;
        let k = self
            .door
            .svc
            .describe_key(self.caller, &r)
            .await
            .map_err(map_error)?;
        if k.state.is_destroyed() {
            // AWS forgets deleted keys; Arca keeps their metadata for the record.
            return Err(AwsError::new(
                "NotFoundException",
                format!("Key '{}' does not exist", self.key_arn(k.id)),
            ));
        }
        Ok(k)
    }
}

fn no_dry_run(body: &Value) -> Result<(), AwsError> {
    if body.get("DryRun").and_then(Value::as_bool) == Some(true) {
        return Err(AwsError::unsupported("DryRun is not supported by Arca"));
    }
    if body.get("Recipient").is_some() {
        return Err(AwsError::unsupported(
            "Recipient (Nitro Enclaves attestation) is not supported by Arca",
        ));
    }
    Ok(())
}

macro_rules! operations {
    ($($op:ident,)*) => {
        /// An operation of the AWS KMS API that this door performs. [`dispatch`] matches
        /// on this type, so an operation cannot be performed without being listed here,
        /// and the access matrix (`tests/aws_clients.rs`) covers each one of the list.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($op,)*
        }

        impl Operation {
            /// Every operation the door performs.
            pub const ALL: &'static [Operation] = &[$(Operation::$op,)*];

            /// The operation's name in `X-Amz-Target` (`TrentService.<name>`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Operation::$op => stringify!($op),)*
                }
            }

            /// The operation of a name, exactly as AWS spells it.
            pub fn parse(name: &str) -> Option<Operation> {
                match name {
                    $(stringify!($op) => Some(Operation::$op),)*
                    _ => None,
                }
            }
        }
    };
}

operations! {
    CreateKey,
    DescribeKey,
    ListKeys,
    EnableKey,
    DisableKey,
    ScheduleKeyDeletion,
    CancelKeyDeletion,
    Encrypt,
    Decrypt,
    ReEncrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateRandom,
    Sign,
    Verify,
    GenerateMac,
    VerifyMac,
    GetPublicKey,
    EnableKeyRotation,
    DisableKeyRotation,
    GetKeyRotationStatus,
    RotateKeyOnDemand,
    ListKeyRotations,
    CreateAlias,
    UpdateAlias,
    DeleteAlias,
    ListAliases,
    TagResource,
    UntagResource,
    ListResourceTags,
    UpdateKeyDescription,
    DescribeCustomKeyStores,
    GetParametersForImport,
    GetKeyPolicy,
    PutKeyPolicy,
    ListKeyPolicies,
    CreateGrant,
    ListGrants,
    RetireGrant,
    RevokeGrant,
    ImportKeyMaterial,
    DeleteImportedKeyMaterial,
}

/// Operations of the KMS API that Arca knows and does not offer: they answer
/// UnsupportedOperationException (any other name, UnknownOperationException).
pub const UNSUPPORTED: &[&str] = &[
    "CancelKeyDeletionForReplica",
    "ConnectCustomKeyStore",
    "CreateCustomKeyStore",
    "DeleteCustomKeyStore",
    "DisconnectCustomKeyStore",
    "UpdateCustomKeyStore",
    "ReplicateKey",
    "UpdatePrimaryRegion",
    "DeriveSharedSecret",
    "ListRetirableGrants",
    "GenerateDataKeyPairForRecipient",
];

/// Runs one operation. Every name of the KMS API is known here: the ones Arca does not
/// offer answer UnsupportedOperationException.
pub async fn dispatch(call: &Call<'_>, op: &str, body: &Value) -> Out {
    no_dry_run(body)?;
    let Some(operation) = Operation::parse(op) else {
        if UNSUPPORTED.contains(&op) {
            return Err(AwsError::unsupported(format!(
                "{op} is not supported by Arca (see docs/aws.md)"
            )));
        }
        return Err(AwsError::new(
            "UnknownOperationException",
            format!("{op} is not an operation of TrentService"),
        ));
    };
    use Operation as O;
    match operation {
        O::CreateKey => create_key(call, body).await,
        O::DescribeKey => describe_key(call, body).await,
        O::ListKeys => list_keys(call, body).await,
        O::EnableKey | O::DisableKey => enable_disable(call, operation == O::EnableKey, body).await,
        O::ScheduleKeyDeletion => schedule_deletion(call, body).await,
        O::CancelKeyDeletion => cancel_deletion(call, body).await,
        O::Encrypt => encrypt(call, body).await,
        O::Decrypt => decrypt(call, body).await,
        O::ReEncrypt => re_encrypt(call, body).await,
        O::GenerateDataKey | O::GenerateDataKeyWithoutPlaintext => {
            data_key(call, body, operation == O::GenerateDataKey).await
        }
        O::GenerateDataKeyPair | O::GenerateDataKeyPairWithoutPlaintext => {
            data_key_pair(call, body, operation == O::GenerateDataKeyPair).await
        }
        O::GenerateRandom => random(call, body).await,
        O::Sign => sign(call, body).await,
        O::Verify => verify(call, body).await,
        O::GenerateMac => mac(call, body).await,
        O::VerifyMac => verify_mac(call, body).await,
        O::GetPublicKey => public_key(call, body).await,
        O::EnableKeyRotation | O::DisableKeyRotation => {
            set_rotation(call, body, operation == O::EnableKeyRotation).await
        }
        O::GetKeyRotationStatus => rotation_status(call, body).await,
        O::RotateKeyOnDemand => rotate(call, body).await,
        O::ListKeyRotations => list_rotations(call, body).await,
        O::CreateAlias | O::UpdateAlias => alias(call, body, operation == O::UpdateAlias).await,
        O::DeleteAlias => delete_alias(call, body).await,
        O::ListAliases => list_aliases(call, body).await,
        O::TagResource => tag(call, body).await,
        O::UntagResource => untag(call, body).await,
        O::ListResourceTags => list_tags(call, body).await,
        O::UpdateKeyDescription => update_description(call, body).await,
        O::DescribeCustomKeyStores => custom_key_stores(call).await,
        O::GetParametersForImport => import_parameters(call, body).await,
        O::GetKeyPolicy => get_policy(call, body).await,
        O::PutKeyPolicy => put_policy(call, body).await,
        O::ListKeyPolicies => list_policies(call, body).await,
        O::CreateGrant => create_grant(call, body).await,
        O::ListGrants => list_grants(call, body).await,
        O::RetireGrant | O::RevokeGrant => {
            remove_grant(call, body, operation == O::RetireGrant).await
        }
        O::ImportKeyMaterial => import_material(call, body).await,
        O::DeleteImportedKeyMaterial => delete_material(call, body).await,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdOnly {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyPage {
    key_id: String,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    marker: Option<String>,
}

/// A page over an in-memory list, the marker being the offset.
fn page<T: Clone>(
    items: &[T],
    limit: u32,
    marker: Option<&str>,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let start = match marker {
        None => 0,
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|s| *s <= items.len())
            .ok_or_else(|| {
                AwsError::new(
                    "InvalidMarkerException",
                    "the Marker is not one this listing returned",
                )
            })?,
    };
    let end = (start + limit as usize).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

fn paged(mut out: Value, next: Option<String>) -> Value {
    out["Truncated"] = json!(next.is_some());
    if let Some(n) = next {
        out["NextMarker"] = json!(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrong_state(state: KeyState, detail: Option<StateDetail>) -> Error {
        Error::WrongState {
            operation: "encrypt".into(),
            target: "key k".into(),
            state,
            detail,
        }
    }

    /// The legacy names Arca keeps for KMIP clients are not AWS's: the AWS door refuses
    /// RSA_1024 (a key spec) and RSASSA_PSS_SHA_1 (a signing algorithm), saying why.
    #[test]
    fn the_aws_door_refuses_legacy_names() {
        let e = arca_spec("keySpec", "RSA_1024").unwrap_err();
        assert_eq!(e.error, "UnsupportedOperationException");
        assert!(
            e.message.contains("allow_legacy_algorithms"),
            "{}",
            e.message
        );
        assert_eq!(arca_spec("keySpec", "RSA_2048").unwrap(), KeySpec::Rsa2048);
        let e = crypto::aws_signing_algorithm("RSASSA_PSS_SHA_1").unwrap_err();
        assert_eq!(e.error, "ValidationException");
        assert!(crypto::aws_signing_algorithm("RSASSA_PSS_SHA_256").is_ok());
    }

    /// Each fault has the `__type` AWS gives it: the names the field-name tables gave before
    /// the faults were typed (issue 19).
    #[test]
    fn faults_have_their_aws_names() {
        let cases = [
            (Error::expired_import_token(), "ExpiredImportTokenException"),
            (
                Error::invalid_import_token("m"),
                "InvalidImportTokenException",
            ),
            (
                Error::bad_ciphertext("ciphertext", "m"),
                "InvalidCiphertextException",
            ),
            (
                Error::bad_ciphertext("encrypted_key_material", "m"),
                "InvalidCiphertextException",
            ),
            (Error::unbindable_context("m"), "InvalidCiphertextException"),
            (Error::incorrect_key("m"), "IncorrectKeyException"),
            (
                Error::incorrect_key_material("m"),
                "IncorrectKeyMaterialException",
            ),
            (Error::unsuitable_key("m"), "InvalidKeyUsageException"),
            (Error::wrong_usage("m"), "InvalidKeyUsageException"),
            (Error::unsupported("m"), "ValidationException"),
            (Error::encoding("encoding", "m"), "ValidationException"),
            (Error::unprocessable("spec", "m"), "ValidationException"),
        ];
        for (e, name) in cases {
            let a = map_error(e.clone());
            assert_eq!(a.error, name, "{e:?}");
            assert_eq!(a.status, 400);
            assert!(a.audited);
        }
    }

    /// A key pending deletion or import is an invalid state to AWS, not a disabled key;
    /// any other refusal goes by the state.
    #[test]
    fn state_details_that_aws_tells_apart() {
        use KeyState::*;
        let cases = [
            (
                Suspended,
                Some(StateDetail::PendingDestruction),
                "KMSInvalidStateException",
            ),
            (
                PreActive,
                Some(StateDetail::PendingImport),
                "KMSInvalidStateException",
            ),
            (Suspended, None, "DisabledException"),
            (
                Suspended,
                Some(StateDetail::other("the key is archived")),
                "DisabledException",
            ),
            (
                Active,
                Some(StateDetail::MaterialDestroyed),
                "KMSInvalidStateException",
            ),
            (Destroyed, None, "NotFoundException"),
        ];
        for (state, detail, name) in cases {
            assert_eq!(
                map_error(wrong_state(state, detail.clone())).error,
                name,
                "{state} {detail:?}"
            );
        }
    }

    /// The legacy specs are refused by name on this door (they exist for KMIP clients);
    /// Arca's own specs and AWS's spellings parse.
    #[test]
    fn legacy_specs_are_refused_on_the_aws_door() {
        for s in [
            "TRIPLE_DES",
            "CHACHA20",
            "CHACHA20_POLY1305",
            "DSA_1024",
            "DSA_512",
        ] {
            let e = arca_spec("KeySpec", s).unwrap_err();
            assert_eq!(e.error, "UnsupportedOperationException", "{s}");
            assert!(
                e.message.contains("KMIP clients only"),
                "{s}: {}",
                e.message
            );
        }
        assert_eq!(
            arca_spec("KeySpec", "SYMMETRIC_DEFAULT").unwrap(),
            KeySpec::Aes256
        );
        assert_eq!(arca_spec("KeySpec", "RSA_2048").unwrap(), KeySpec::Rsa2048);
    }
}
