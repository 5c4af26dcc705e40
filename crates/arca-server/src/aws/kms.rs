//! The AWS KMS JSON 1.1 protocol (`X-Amz-Target: TrentService.<Operation>`), mapped onto
//! the service. Names, shapes and error `__type`s follow botocore's model
//! (`kms/2014-11-01/service-2.json`) so that AWS SDKs and the `aws` CLI work unchanged;
//! where Arca's model differs, the mapping is in `docs/aws.md`.
//!
//! This is an adapter: it parses, calls one service operation (two for the few AWS
//! operations that are two of Arca's), and shapes the answer. Authorization, lifecycle,
//! encryption context and audit all happen in the service.

use std::collections::BTreeMap;

use arca_core::model::{
    EncryptionAlgorithm, KeySpec, KeyState, KeyUsage, MacAlgorithm, MessageType, Origin,
    SigningAlgorithm,
};
use arca_core::{Error, Fault, StateDetail};
use arca_service::api::{
    Bytes, CreateAliasRequest, CreateKeyRequest, DataKeySpec, DecryptRequest, EncryptRequest,
    GenerateDataKeyPairRequest, GenerateDataKeyRequest, KeyInfo, ListKeysQuery, MacRequest,
    MacVerifyRequest, MoveAliasRequest, RandomRequest, ReEncryptRequest, RotateRequest, Secret,
    SignRequest, UpdateKeyRequest, VerifyRequest,
};
use arca_service::Caller;
use arca_service::LifecycleAction;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::AwsDoor;

/// An AWS-shaped error: the `__type` name and HTTP status botocore expects.
#[derive(Debug)]
pub struct AwsError {
    pub status: u16,
    pub error: &'static str,
    pub message: String,
    /// True when the service refused (and so already audited the refusal); false when
    /// the adapter refused before calling it.
    pub audited: bool,
}

impl AwsError {
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
            Fault::Unsupported | Fault::Parameter => "ValidationException",
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
        other => parse_enum(field, other),
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
    pub door: &'a AwsDoor,
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

/// DescribeCustomKeyStores: Arca has none. A question about the server, as KMIP's Query
/// is: authorised and recorded as one (it answered, unrecorded, before the access matrix).
async fn custom_key_stores(call: &Call<'_>) -> Out {
    call.door
        .svc
        .query_server(call.caller)
        .await
        .map_err(map_error)?;
    Ok(json!({"CustomKeyStores": [], "Truncated": false}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdOnly {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateKeyInput {
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    key_usage: Option<String>,
    #[serde(default)]
    customer_master_key_spec: Option<String>,
    #[serde(default)]
    key_spec: Option<String>,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    custom_key_store_id: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    multi_region: Option<bool>,
}

async fn create_key(call: &Call<'_>, body: &Value) -> Out {
    let i: CreateKeyInput = input(body)?;
    let policy = match &i.policy {
        Some(doc) => Some(super::policy::from_aws(doc, &call.account())?),
        None => None,
    };
    if i.custom_key_store_id.is_some() {
        return Err(AwsError::new(
            "CustomKeyStoreNotFoundException",
            "Arca has no custom key stores",
        ));
    }
    if i.multi_region == Some(true) {
        return Err(AwsError::unsupported(
            "multi-Region keys are not supported by Arca",
        ));
    }
    let pending_import = match i.origin.as_deref() {
        None | Some("AWS_KMS") => false,
        Some("EXTERNAL") => true,
        Some("AWS_CLOUDHSM") | Some("EXTERNAL_KEY_STORE") => {
            return Err(AwsError::unsupported(format!(
                "Origin {} is not supported by Arca yet",
                i.origin.unwrap_or_default()
            )))
        }
        Some(o) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{o}' at 'origin' failed to satisfy constraint: Member must satisfy enum value set: [AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE]"
            )))
        }
    };
    let spec = match (i.key_spec.as_deref(), i.customer_master_key_spec.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(AwsError::validation(
                "You cannot specify both KeySpec and CustomerMasterKeySpec",
            ))
        }
        (Some(s), None) | (None, Some(s)) => arca_spec("keySpec", s)?,
        (None, None) => KeySpec::Aes256,
    };
    let usage = match i.key_usage.as_deref() {
        Some(u) => arca_usage(u)?,
        None if spec.family() == arca_core::model::KeyFamily::Hmac => {
            return Err(AwsError::validation(
                "KeyUsage GENERATE_VERIFY_MAC is required for HMAC key specs",
            ))
        }
        None => KeyUsage::EncryptDecrypt,
    };
    let req = CreateKeyRequest {
        // AWS keys have no name; Arca's must be unique and not a UUID.
        name: format!("aws-{}", Uuid::new_v4().simple()),
        description: i.description,
        spec: Some(spec),
        usage: Some(vec![usage]),
        tags: tags_in(i.tags),
        pending_import,
        policy,
        ..Default::default()
    };
    let k = call
        .door
        .svc
        .create_key(call.caller, req)
        .await
        .map_err(map_error)?;
    Ok(json!({"KeyMetadata": call.metadata(&k)}))
}

async fn describe_key(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let k = call.describe(&i.key_id).await?;
    Ok(json!({"KeyMetadata": call.metadata(&k)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Page {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    marker: Option<String>,
}

async fn list_keys(call: &Call<'_>, body: &Value) -> Out {
    let i: Page = input(body)?;
    let limit = limit(i.limit, 1000)?;
    let page = call
        .door
        .svc
        .list_keys(
            call.caller,
            ListKeysQuery {
                limit: Some(limit),
                cursor: i.marker,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| match e {
            Error::InvalidInput { field, .. } if field == "cursor" => AwsError::new(
                "InvalidMarkerException",
                "the Marker is not one this listing returned",
            ),
            e => map_error(e),
        })?;
    let keys: Vec<Value> = page
        .keys
        .iter()
        .filter(|k| !k.state.is_destroyed())
        .map(|k| json!({"KeyId": k.id.to_string(), "KeyArn": call.key_arn(k.id)}))
        .collect();
    let mut out = json!({"Keys": keys, "Truncated": page.next_cursor.is_some()});
    if let Some(c) = page.next_cursor {
        out["NextMarker"] = json!(c);
    }
    Ok(out)
}

async fn lifecycle(
    call: &Call<'_>,
    key: &str,
    action: LifecycleAction,
) -> Result<KeyInfo, AwsError> {
    call.door
        .svc
        .lifecycle(call.caller, key, None, action, None)
        .await
        .map_err(map_error)
}

async fn enable_disable(call: &Call<'_>, enable: bool, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let k = call.describe(&i.key_id).await?;
    let id = k.id.to_string();
    if k.destroy_after.is_some() {
        return Err(AwsError::new(
            "KMSInvalidStateException",
            format!("{} is pending deletion.", call.key_arn(k.id)),
        ));
    }
    // AWS's two states map onto Arca's: Enabled is ACTIVE, Disabled is SUSPENDED (or any
    // state that applies no protection). Enabling or disabling twice changes nothing.
    let action = match (enable, k.state) {
        (true, KeyState::Active) | (false, KeyState::Suspended) => {
            // Nothing to change, but only for a caller who may make the change.
            let a = if enable {
                arca_core::Action::ResumeKey
            } else {
                arca_core::Action::SuspendKey
            };
            call.door
                .svc
                .acknowledge_unchanged(call.caller, &id, a)
                .await
                .map_err(map_error)?;
            return Ok(json!({}));
        }
        (true, KeyState::PreActive) => LifecycleAction::Activate,
        (true, _) => LifecycleAction::Resume,
        (false, _) => LifecycleAction::Suspend,
    };
    lifecycle(call, &id, action).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleInput {
    key_id: String,
    #[serde(default)]
    pending_window_in_days: Option<u32>,
}

async fn schedule_deletion(call: &Call<'_>, body: &Value) -> Out {
    let i: ScheduleInput = input(body)?;
    let days = i.pending_window_in_days.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30"
        )));
    }
    let k = call.describe(&i.key_id).await?;
    if k.destroy_after.is_some() {
        return Err(AwsError::new(
            "KMSInvalidStateException",
            format!("{} is pending deletion.", call.key_arn(k.id)),
        ));
    }
    let k = lifecycle(
        call,
        &k.id.to_string(),
        LifecycleAction::ScheduleDestruction {
            pending_window_days: Some(days),
            suspend_if_active: true,
        },
    )
    .await?;
    let mut out = json!({
        "KeyId": call.key_arn(k.id),
        "KeyState": "PendingDeletion",
        "PendingWindowInDays": days,
    });
    if let Some(d) = k.destroy_after {
        out["DeletionDate"] = epoch(d);
    }
    Ok(out)
}

async fn cancel_deletion(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let k = call.describe(&i.key_id).await?;
    // The service decides, authorization first: a key not pending deletion is its wrong
    // state (KMSInvalidStateException), told only to a caller who may cancel.
    // The key stays disabled (suspended), as AWS leaves it.
    let k = lifecycle(call, &k.id.to_string(), LifecycleAction::CancelDestruction).await?;
    Ok(json!({"KeyId": call.key_arn(k.id)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptInput {
    key_id: String,
    plaintext: Secret,
    #[serde(default)]
    encryption_context: BTreeMap<String, String>,
    #[serde(default)]
    encryption_algorithm: Option<String>,
}

fn algorithm(a: Option<&str>) -> Result<Option<EncryptionAlgorithm>, AwsError> {
    match a {
        None => Ok(None),
        Some("RSAES_OAEP_SHA_1") | Some("SM2PKE") => Err(AwsError::unsupported(format!(
            "EncryptionAlgorithm {} is not supported by Arca",
            a.unwrap_or_default()
        ))),
        Some(a) => parse_enum("encryptionAlgorithm", a).map(Some),
    }
}

async fn encrypt(call: &Call<'_>, body: &Value) -> Out {
    let i: EncryptInput = input(body)?;
    let key = call.key_ref(&i.key_id)?;
    let r = call
        .door
        .svc
        .encrypt(
            call.caller,
            &key,
            EncryptRequest {
                plaintext: i.plaintext,
                aad: None,
                encryption_context: i.encryption_context,
                encryption_algorithm: algorithm(i.encryption_algorithm.as_deref())?,
            },
        )
        .await
        .map_err(map_error)?;
    Ok(json!({
        "CiphertextBlob": b64(&r.ciphertext.0),
        "KeyId": call.key_arn(r.key_id),
        "EncryptionAlgorithm": name_of(&r.encryption_algorithm),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptInput {
    ciphertext_blob: Bytes,
    #[serde(default)]
    encryption_context: BTreeMap<String, String>,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    encryption_algorithm: Option<String>,
}

async fn decrypt(call: &Call<'_>, body: &Value) -> Out {
    let i: DecryptInput = input(body)?;
    let key = match &i.key_id {
        Some(k) => Some(call.key_ref(k)?),
        None => None,
    };
    algorithm(i.encryption_algorithm.as_deref())?;
    let r = call
        .door
        .svc
        .decrypt(
            call.caller,
            key.as_deref(),
            DecryptRequest {
                ciphertext: i.ciphertext_blob,
                aad: None,
                encryption_context: i.encryption_context,
            },
        )
        .await
        .map_err(map_error)?;
    Ok(json!({
        "KeyId": call.key_arn(r.key_id),
        "Plaintext": b64(&r.plaintext.0),
        "EncryptionAlgorithm": i.encryption_algorithm.as_deref().unwrap_or("SYMMETRIC_DEFAULT"),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReEncryptInput {
    ciphertext_blob: Bytes,
    #[serde(default)]
    source_encryption_context: BTreeMap<String, String>,
    #[serde(default)]
    source_key_id: Option<String>,
    destination_key_id: String,
    #[serde(default)]
    destination_encryption_context: BTreeMap<String, String>,
    #[serde(default)]
    source_encryption_algorithm: Option<String>,
    #[serde(default)]
    destination_encryption_algorithm: Option<String>,
}

async fn re_encrypt(call: &Call<'_>, body: &Value) -> Out {
    let i: ReEncryptInput = input(body)?;
    let source = match &i.source_key_id {
        Some(k) => Some(call.key_ref(k)?),
        None => None,
    };
    algorithm(i.source_encryption_algorithm.as_deref())?;
    if algorithm(i.destination_encryption_algorithm.as_deref())?
        .is_some_and(|a| a != EncryptionAlgorithm::SymmetricDefault)
    {
        return Err(AwsError::unsupported(
            "ReEncrypt to an asymmetric key is not supported by Arca",
        ));
    }
    let dest = call.key_ref(&i.destination_key_id)?;
    let r = call
        .door
        .svc
        .re_encrypt(
            call.caller,
            &dest,
            ReEncryptRequest {
                ciphertext: i.ciphertext_blob,
                source_key: source,
                source_aad: None,
                source_encryption_context: i.source_encryption_context,
                destination_aad: None,
                destination_encryption_context: i.destination_encryption_context,
            },
        )
        .await
        .map_err(map_error)?;
    Ok(json!({
        "CiphertextBlob": b64(&r.ciphertext.0),
        "SourceKeyId": call.key_arn(r.source_key_id),
        "KeyId": call.key_arn(r.key_id),
        "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyInput {
    key_id: String,
    #[serde(default)]
    encryption_context: BTreeMap<String, String>,
    #[serde(default)]
    number_of_bytes: Option<u32>,
    #[serde(default)]
    key_spec: Option<String>,
}

async fn data_key(call: &Call<'_>, body: &Value, with_plaintext: bool) -> Out {
    let i: DataKeyInput = input(body)?;
    let key_spec = match i.key_spec.as_deref() {
        None => None,
        Some("AES_256") => Some(DataKeySpec::Aes256),
        Some("AES_128") => Some(DataKeySpec::Aes128),
        Some(o) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{o}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
            )))
        }
    };
    if key_spec.is_none() && i.number_of_bytes.is_none() {
        return Err(AwsError::validation(
            "Please specify either number of bytes or key spec.",
        ));
    }
    let key = call.key_ref(&i.key_id)?;
    let r = call
        .door
        .svc
        .generate_data_key(
            call.caller,
            &key,
            GenerateDataKeyRequest {
                key_spec,
                number_of_bytes: i.number_of_bytes,
                aad: None,
                encryption_context: i.encryption_context,
            },
            with_plaintext,
        )
        .await
        .map_err(map_error)?;
    let mut out = json!({
        "CiphertextBlob": b64(&r.ciphertext.0),
        "KeyId": call.key_arn(r.key_id),
    });
    if let Some(p) = &r.plaintext {
        out["Plaintext"] = b64(&p.0);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyPairInput {
    key_id: String,
    key_pair_spec: String,
    #[serde(default)]
    encryption_context: BTreeMap<String, String>,
}

async fn data_key_pair(call: &Call<'_>, body: &Value, with_plaintext: bool) -> Out {
    let i: DataKeyPairInput = input(body)?;
    let spec = arca_spec("keyPairSpec", &i.key_pair_spec)?;
    let key = call.key_ref(&i.key_id)?;
    let r = call
        .door
        .svc
        .generate_data_key_pair(
            call.caller,
            &key,
            GenerateDataKeyPairRequest {
                key_pair_spec: spec,
                aad: None,
                encryption_context: i.encryption_context,
            },
            with_plaintext,
        )
        .await
        .map_err(map_error)?;
    let mut out = json!({
        "PrivateKeyCiphertextBlob": b64(&r.private_key_ciphertext.0),
        "PublicKey": b64(&r.public_key.0),
        "KeyId": call.key_arn(r.key_id),
        "KeyPairSpec": aws_spec(r.key_pair_spec),
    });
    if let Some(p) = &r.private_key_plaintext {
        out["PrivateKeyPlaintext"] = b64(&p.0);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RandomInput {
    #[serde(default)]
    number_of_bytes: Option<u32>,
    #[serde(default)]
    custom_key_store_id: Option<String>,
}

async fn random(call: &Call<'_>, body: &Value) -> Out {
    let i: RandomInput = input(body)?;
    if i.custom_key_store_id.is_some() {
        return Err(AwsError::new(
            "CustomKeyStoreNotFoundException",
            "Arca has no custom key stores",
        ));
    }
    let n = i.number_of_bytes.ok_or_else(|| {
        AwsError::validation("1 validation error detected: NumberOfBytes is required")
    })?;
    let r = call
        .door
        .svc
        .generate_random(call.caller, RandomRequest { number_of_bytes: n })
        .await
        .map_err(map_error)?;
    Ok(json!({"Plaintext": b64(&r.random.0)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignInput {
    key_id: String,
    message: Secret,
    #[serde(default)]
    message_type: Option<String>,
    signing_algorithm: String,
    #[serde(default)]
    signature: Option<Bytes>,
}

fn message_type(t: Option<&str>) -> Result<MessageType, AwsError> {
    match t {
        None | Some("RAW") => Ok(MessageType::Raw),
        Some("DIGEST") => Ok(MessageType::Digest),
        Some("EXTERNAL_MU") => Err(AwsError::unsupported(
            "MessageType EXTERNAL_MU is not supported by Arca",
        )),
        Some(o) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{o}' at 'messageType' failed to satisfy constraint: Member must satisfy enum value set: [RAW, DIGEST, EXTERNAL_MU]"
        ))),
    }
}

async fn sign(call: &Call<'_>, body: &Value) -> Out {
    let i: SignInput = input(body)?;
    let alg: SigningAlgorithm = parse_enum("signingAlgorithm", &i.signing_algorithm)?;
    let key = call.key_ref(&i.key_id)?;
    let r = call
        .door
        .svc
        .sign(
            call.caller,
            &key,
            SignRequest {
                message: i.message,
                message_type: message_type(i.message_type.as_deref())?,
                signing_algorithm: Some(alg),
            },
        )
        .await
        .map_err(map_error)?;
    Ok(json!({
        "KeyId": call.key_arn(r.key_id),
        "Signature": b64(&r.signature.0),
        "SigningAlgorithm": name_of(&r.signing_algorithm),
    }))
}

async fn verify(call: &Call<'_>, body: &Value) -> Out {
    let i: SignInput = input(body)?;
    let alg: SigningAlgorithm = parse_enum("signingAlgorithm", &i.signing_algorithm)?;
    let signature = i.signature.ok_or_else(|| {
        AwsError::validation("1 validation error detected: Signature is required")
    })?;
    let key = call.key_ref(&i.key_id)?;
    let r = call
        .door
        .svc
        .verify(
            call.caller,
            &key,
            VerifyRequest {
                message: i.message,
                message_type: message_type(i.message_type.as_deref())?,
                signature,
                signing_algorithm: Some(alg),
                key_version: None,
            },
        )
        .await
        .map_err(map_error)?;
    if !r.valid {
        // AWS answers an invalid signature with an error, not with `false`.
        return Err(AwsError::new(
            "KMSInvalidSignatureException",
            "the signature does not verify with this key and algorithm",
        ));
    }
    Ok(json!({
        "KeyId": call.key_arn(r.key_id),
        "SignatureValid": true,
        "SigningAlgorithm": i.signing_algorithm,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MacInput {
    key_id: String,
    message: Secret,
    mac_algorithm: String,
    #[serde(default)]
    mac: Option<Bytes>,
}

async fn mac(call: &Call<'_>, body: &Value) -> Out {
    let i: MacInput = input(body)?;
    let alg: MacAlgorithm = parse_enum("macAlgorithm", &i.mac_algorithm)?;
    let key = call.key_ref(&i.key_id)?;
    let r = call
        .door
        .svc
        .generate_mac(
            call.caller,
            &key,
            MacRequest {
                message: i.message,
                mac_algorithm: Some(alg),
            },
        )
        .await
        .map_err(map_error)?;
    Ok(json!({
        "Mac": b64(&r.mac.0),
        "MacAlgorithm": name_of(&r.mac_algorithm),
        "KeyId": call.key_arn(r.key_id),
    }))
}

async fn verify_mac(call: &Call<'_>, body: &Value) -> Out {
    let i: MacInput = input(body)?;
    let alg: MacAlgorithm = parse_enum("macAlgorithm", &i.mac_algorithm)?;
    let mac = i
        .mac
        .ok_or_else(|| AwsError::validation("1 validation error detected: Mac is required"))?;
    let key = call.key_ref(&i.key_id)?;
    let r = call
        .door
        .svc
        .verify_mac(
            call.caller,
            &key,
            MacVerifyRequest {
                message: i.message,
                mac,
                mac_algorithm: Some(alg),
                key_version: None,
            },
        )
        .await
        .map_err(map_error)?;
    if !r.valid {
        return Err(AwsError::new(
            "KMSInvalidMacException",
            "the MAC does not verify with this key and algorithm",
        ));
    }
    Ok(json!({
        "KeyId": call.key_arn(r.key_id),
        "MacValid": true,
        "MacAlgorithm": i.mac_algorithm,
    }))
}

async fn public_key(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let key = call.key_ref(&i.key_id)?;
    let r = call
        .door
        .svc
        .get_public_key(call.caller, &key, None)
        .await
        .map_err(map_error)?;
    let usage = if r.usage.iter().any(|u| u.pair() == KeyUsage::SignVerify) {
        "SIGN_VERIFY"
    } else if r.usage.iter().any(|u| u.pair() == KeyUsage::EncryptDecrypt) {
        "ENCRYPT_DECRYPT"
    } else {
        "KEY_AGREEMENT"
    };
    let mut out = json!({
        "KeyId": call.key_arn(r.key_id),
        "PublicKey": b64(&r.public_key.0),
        "CustomerMasterKeySpec": aws_spec(r.spec),
        "KeySpec": aws_spec(r.spec),
        "KeyUsage": usage,
    });
    if !r.signing_algorithms.is_empty() {
        out["SigningAlgorithms"] =
            json!(r.signing_algorithms.iter().map(name_of).collect::<Vec<_>>());
    }
    if !r.encryption_algorithms.is_empty() {
        out["EncryptionAlgorithms"] = json!(r
            .encryption_algorithms
            .iter()
            .map(name_of)
            .collect::<Vec<_>>());
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotationInput {
    key_id: String,
    #[serde(default)]
    rotation_period_in_days: Option<u32>,
}

async fn update(call: &Call<'_>, id: Uuid, req: UpdateKeyRequest) -> Result<KeyInfo, AwsError> {
    call.door
        .svc
        .update_key(call.caller, &id.to_string(), req)
        .await
        .map_err(map_error)
}

async fn set_rotation(call: &Call<'_>, body: &Value, enable: bool) -> Out {
    let i: RotationInput = input(body)?;
    let days = if enable {
        let d = i.rotation_period_in_days.unwrap_or(365);
        if !(90..=2560).contains(&d) {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{d}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between 90 and 2560"
            )));
        }
        Some(d)
    } else {
        None
    };
    let k = call.describe(&i.key_id).await?;
    update(
        call,
        k.id,
        UpdateKeyRequest {
            rotation_period_days: Some(days),
            ..Default::default()
        },
    )
    .await?;
    Ok(json!({}))
}

async fn rotation_status(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let k = call.describe(&i.key_id).await?;
    let mut out = json!({
        "KeyId": call.key_arn(k.id),
        "KeyRotationEnabled": k.rotation_period_days.is_some(),
    });
    if let Some(d) = k.rotation_period_days {
        out["RotationPeriodInDays"] = json!(d);
    }
    if let Some(n) = k.next_rotation_at {
        out["NextRotationDate"] = epoch(n);
    }
    Ok(out)
}

async fn rotate(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let k = call.describe(&i.key_id).await?;
    let k = call
        .door
        .svc
        .rotate_key(call.caller, &k.id.to_string(), RotateRequest::default())
        .await
        .map_err(map_error)?;
    Ok(json!({"KeyId": call.key_arn(k.id)}))
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

async fn list_rotations(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyPage = input(body)?;
    let limit = limit(i.limit, 1000)?;
    let k = call.describe(&i.key_id).await?;
    let history = call
        .door
        .svc
        .key_history(call.caller, &k.id.to_string())
        .await
        .map_err(map_error)?;
    // Every version after the first is a rotation; the history says who made it.
    let rotations: Vec<Value> = k
        .versions
        .iter()
        .filter(|v| v.version > 1)
        .map(|v| {
            let automatic = history.events.iter().any(|e| {
                e.version == Some(v.version) && e.actor == "system" && e.action == "rotate"
            });
            json!({
                "KeyId": call.key_arn(k.id),
                "RotationDate": epoch(v.created_at),
                "RotationType": if automatic { "AUTOMATIC" } else { "ON_DEMAND" },
            })
        })
        .collect();
    let (items, next) = page(&rotations, limit, i.marker.as_deref())?;
    Ok(paged(json!({"Rotations": items}), next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasInput {
    alias_name: String,
    #[serde(default)]
    target_key_id: Option<String>,
}

fn alias_name(a: &str) -> Result<&str, AwsError> {
    let Some(n) = a.strip_prefix("alias/") else {
        return Err(AwsError::validation(format!(
            "Alias must start with the prefix \"alias/\": {a}"
        )));
    };
    if n.starts_with("aws/") {
        return Err(AwsError::new(
            "NotAuthorizedException",
            "alias/aws/ is reserved for AWS managed keys",
        ));
    }
    Ok(n)
}

async fn alias(call: &Call<'_>, body: &Value, update: bool) -> Out {
    let i: AliasInput = input(body)?;
    let name = alias_name(&i.alias_name)?;
    let target = i.target_key_id.ok_or_else(|| {
        AwsError::validation("1 validation error detected: TargetKeyId is required")
    })?;
    let target = call.key_ref(&target)?;
    let svc = &call.door.svc;
    let r = if update {
        svc.move_alias(call.caller, name, MoveAliasRequest { key: target })
            .await
    } else {
        svc.create_alias(
            call.caller,
            CreateAliasRequest {
                alias: name.to_string(),
                key: target,
            },
        )
        .await
    };
    r.map_err(|e| match e {
        Error::InvalidInput { field, message } if field == "alias" => {
            AwsError::new("InvalidAliasNameException", message)
        }
        e => map_error(e),
    })?;
    Ok(json!({}))
}

async fn delete_alias(call: &Call<'_>, body: &Value) -> Out {
    let i: AliasInput = input(body)?;
    let name = alias_name(&i.alias_name)?;
    call.door
        .svc
        .delete_alias(call.caller, name)
        .await
        .map_err(map_error)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListAliasesInput {
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    marker: Option<String>,
}

async fn list_aliases(call: &Call<'_>, body: &Value) -> Out {
    let i: ListAliasesInput = input(body)?;
    let limit = limit(i.limit, 100)?;
    let key = match &i.key_id {
        Some(k) => Some(call.describe(k).await?.id.to_string()),
        None => None,
    };
    let list = call
        .door
        .svc
        .list_aliases(call.caller, key.as_deref())
        .await
        .map_err(map_error)?;
    let all: Vec<Value> = list
        .aliases
        .iter()
        .map(|a| {
            json!({
                "AliasName": format!("alias/{}", a.alias),
                "AliasArn": call.alias_arn(&a.alias),
                "TargetKeyId": a.key_id.to_string(),
            })
        })
        .collect();
    let (items, next) = page(&all, limit, i.marker.as_deref())?;
    Ok(paged(json!({"Aliases": items}), next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagInput {
    key_id: String,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

fn tag_error(e: Error) -> AwsError {
    match e {
        Error::InvalidInput { field, message } if field.starts_with("tags") => {
            AwsError::new("TagException", format!("{field}: {message}"))
        }
        e => map_error(e),
    }
}

/// Changes a key's tags: read, change, write back (Arca replaces the whole map).
async fn retag(
    call: &Call<'_>,
    key_id: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>),
) -> Out {
    let k = call.describe(key_id).await?;
    let mut tags = k.tags.clone();
    change(&mut tags);
    call.door
        .svc
        .update_key(
            call.caller,
            &k.id.to_string(),
            UpdateKeyRequest {
                tags: Some(tags),
                ..Default::default()
            },
        )
        .await
        .map_err(tag_error)?;
    Ok(json!({}))
}

async fn tag(call: &Call<'_>, body: &Value) -> Out {
    let i: TagInput = input(body)?;
    let added = tags_in(i.tags);
    retag(call, &i.key_id, |t| t.extend(added)).await
}

async fn untag(call: &Call<'_>, body: &Value) -> Out {
    let i: TagInput = input(body)?;
    retag(call, &i.key_id, |t| {
        for k in &i.tag_keys {
            t.remove(k);
        }
    })
    .await
}

async fn list_tags(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyPage = input(body)?;
    let limit = limit(i.limit, 50)?;
    let k = call.describe(&i.key_id).await?;
    let all: Vec<(String, String)> = k.tags.into_iter().collect();
    let (items, next) = page(&all, limit, i.marker.as_deref())?;
    Ok(paged(
        json!({"Tags": tags_out(&items.into_iter().collect())}),
        next,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescriptionInput {
    key_id: String,
    description: String,
}

async fn update_description(call: &Call<'_>, body: &Value) -> Out {
    let i: DescriptionInput = input(body)?;
    let k = call.describe(&i.key_id).await?;
    update(
        call,
        k.id,
        UpdateKeyRequest {
            description: Some(i.description),
            ..Default::default()
        },
    )
    .await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportParametersInput {
    key_id: String,
    wrapping_algorithm: String,
    wrapping_key_spec: String,
}

/// Only keys of origin EXTERNAL take imported material (AWS says UnsupportedOperation).
fn import_error(e: Error) -> AwsError {
    match e {
        Error::Unprocessable {
            fault: Fault::UnsuitableKey,
            message,
            ..
        } => AwsError {
            audited: true,
            ..AwsError::unsupported(message)
        },
        e => map_error(e),
    }
}

async fn import_parameters(call: &Call<'_>, body: &Value) -> Out {
    let i: ImportParametersInput = input(body)?;
    let wrapping_algorithm = match i.wrapping_algorithm.as_str() {
        "SM2PKE" => {
            return Err(AwsError::unsupported(
                "WrappingAlgorithm SM2PKE is not supported by Arca",
            ))
        }
        a => parse_enum("wrappingAlgorithm", a)?,
    };
    let wrapping_key_spec = match i.wrapping_key_spec.as_str() {
        s @ ("RSA_2048" | "RSA_3072" | "RSA_4096") => parse_enum("wrappingKeySpec", s)?,
        "SM2" => {
            return Err(AwsError::unsupported(
                "WrappingKeySpec SM2 is not supported by Arca",
            ))
        }
        s => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{s}' at 'wrappingKeySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, SM2]"
            )))
        }
    };
    let k = call.describe(&i.key_id).await?;
    let p = call
        .door
        .svc
        .get_import_parameters(
            call.caller,
            &k.id.to_string(),
            arca_service::byok::ImportParametersRequest {
                wrapping_algorithm,
                wrapping_key_spec,
            },
        )
        .await
        .map_err(import_error)?;
    Ok(json!({
        "KeyId": call.key_arn(p.key_id),
        "ImportToken": b64(&p.import_token.0),
        "PublicKey": b64(&p.public_key.0),
        "ParametersValidTo": epoch(p.parameters_valid_to),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportMaterialInput {
    key_id: String,
    import_token: Bytes,
    encrypted_key_material: Bytes,
    #[serde(default)]
    valid_to: Option<f64>,
    #[serde(default)]
    expiration_model: Option<String>,
    #[serde(default)]
    import_type: Option<String>,
}

async fn import_material(call: &Call<'_>, body: &Value) -> Out {
    let i: ImportMaterialInput = input(body)?;
    if i.import_type.as_deref() == Some("NEW_KEY_MATERIAL") {
        return Err(AwsError::unsupported(
            "ImportType NEW_KEY_MATERIAL is not supported by Arca: rotate imported keys over REST with their new material",
        ));
    }
    let valid_to = match (i.expiration_model.as_deref(), i.valid_to) {
        (Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), Some(_)) => {
            return Err(AwsError::validation(
                "ValidTo must not be given with ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE",
            ))
        }
        (Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), None) => None,
        (None | Some("KEY_MATERIAL_EXPIRES"), Some(t)) => Some(
            chrono::DateTime::from_timestamp_millis((t * 1000.0) as i64)
                .ok_or_else(|| AwsError::validation("ValidTo is not a valid time"))?,
        ),
        (Some("KEY_MATERIAL_EXPIRES"), None) => {
            return Err(AwsError::validation(
                "ValidTo is required with ExpirationModel KEY_MATERIAL_EXPIRES",
            ))
        }
        (None, None) => None,
        (Some(m), _) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{m}' at 'expirationModel' failed to satisfy constraint: Member must satisfy enum value set: [KEY_MATERIAL_EXPIRES, KEY_MATERIAL_DOES_NOT_EXPIRE]"
            )))
        }
    };
    let k = call.describe(&i.key_id).await?;
    let k = call
        .door
        .svc
        .import_key_material(
            call.caller,
            &k.id.to_string(),
            arca_service::byok::ImportMaterialRequest {
                import_token: i.import_token,
                encrypted_key_material: i.encrypted_key_material,
                valid_to,
            },
        )
        .await
        .map_err(import_error)?;
    Ok(json!({"KeyId": call.key_arn(k.id)}))
}

async fn delete_material(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let k = call.describe(&i.key_id).await?;
    call.door
        .svc
        .delete_imported_material(call.caller, &k.id.to_string())
        .await
        .map_err(import_error)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyInput {
    key_id: String,
    #[serde(default)]
    policy_name: Option<String>,
    #[serde(default)]
    policy: Option<String>,
}

fn policy_name(n: Option<&str>) -> Result<(), AwsError> {
    match n {
        None | Some("default") => Ok(()),
        Some(other) => Err(AwsError::new(
            "NotFoundException",
            format!("a key has one policy, \"default\", not {other:?}"),
        )),
    }
}

/// The service's refusal of a translated policy, in AWS's words.
fn policy_error(e: Error) -> AwsError {
    match e {
        Error::InvalidInput { field, message } if field.starts_with("statements") => AwsError {
            audited: true,
            ..AwsError::new(
                "MalformedPolicyDocumentException",
                format!("{field}: {message}"),
            )
        },
        e => map_error(e),
    }
}

async fn get_policy(call: &Call<'_>, body: &Value) -> Out {
    let i: PolicyInput = input(body)?;
    policy_name(i.policy_name.as_deref())?;
    let k = call.describe(&i.key_id).await?;
    let p = call
        .door
        .svc
        .get_key_policy(call.caller, &k.id.to_string())
        .await
        .map_err(map_error)?;
    Ok(json!({
        "Policy": super::policy::to_aws(&p.statements, &call.account()).to_string(),
        "PolicyName": "default",
    }))
}

async fn put_policy(call: &Call<'_>, body: &Value) -> Out {
    let i: PolicyInput = input(body)?;
    policy_name(i.policy_name.as_deref())?;
    let doc = i
        .policy
        .ok_or_else(|| AwsError::validation("1 validation error detected: Policy is required"))?;
    let mut statements = super::policy::from_aws(&doc, &call.account())?;
    let k = call.describe(&i.key_id).await?;
    // Grants are not part of an AWS key policy document: the new policy keeps them.
    let current = call
        .door
        .svc
        .get_key_policy(call.caller, &k.id.to_string())
        .await
        .map_err(map_error)?;
    statements.extend(current.statements.into_iter().filter(|s| s.grant.is_some()));
    call.door
        .svc
        .put_key_policy(call.caller, &k.id.to_string(), statements, None)
        .await
        .map_err(policy_error)?;
    Ok(json!({}))
}

async fn list_policies(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    call.describe(&i.key_id).await?;
    Ok(json!({"PolicyNames": ["default"], "Truncated": false}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GrantConstraints {
    #[serde(default)]
    encryption_context_subset: Option<BTreeMap<String, String>>,
    #[serde(default)]
    encryption_context_equals: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateGrantInput {
    key_id: String,
    grantee_principal: String,
    #[serde(default)]
    retiring_principal: Option<String>,
    operations: Vec<String>,
    #[serde(default)]
    constraints: Option<GrantConstraints>,
    #[serde(default)]
    name: Option<String>,
}

/// A grant token names the key and the grant: RetireGrant takes it alone.
fn grant_token(key: Uuid, grant_id: &str) -> String {
    format!("{key}.{grant_id}")
}

async fn create_grant(call: &Call<'_>, body: &Value) -> Out {
    let i: CreateGrantInput = input(body)?;
    let account = call.account();
    let subject =
        |p: &str| super::policy::subject(p, &account).map_err(|e| AwsError::validation(e.message));
    let grantee = subject(&i.grantee_principal)?;
    let retiring = match &i.retiring_principal {
        Some(r) => Some(subject(r)?),
        None => None,
    };
    let subset = match i.constraints {
        Some(GrantConstraints {
            encryption_context_equals: Some(_),
            ..
        }) => {
            return Err(AwsError::unsupported(
                "EncryptionContextEquals is not supported by Arca: use EncryptionContextSubset",
            ))
        }
        Some(c) => c.encryption_context_subset.unwrap_or_default(),
        None => BTreeMap::new(),
    };
    let k = call.describe(&i.key_id).await?;
    let g = call
        .door
        .svc
        .create_grant(
            call.caller,
            &k.id.to_string(),
            arca_service::grants::CreateGrantRequest {
                grantee,
                operations: i.operations,
                retiring_principal: retiring,
                encryption_context_subset: subset,
                name: i.name,
            },
        )
        .await
        .map_err(map_error)?;
    Ok(json!({"GrantToken": grant_token(k.id, &g.grant_id), "GrantId": g.grant_id}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListGrantsInput {
    key_id: String,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    marker: Option<String>,
    #[serde(default)]
    grant_id: Option<String>,
    #[serde(default)]
    grantee_principal: Option<String>,
}

async fn list_grants(call: &Call<'_>, body: &Value) -> Out {
    let i: ListGrantsInput = input(body)?;
    let limit = limit(i.limit, 100)?;
    let k = call.describe(&i.key_id).await?;
    let account = call.account();
    let grants = call
        .door
        .svc
        .list_grants(call.caller, &k.id.to_string())
        .await
        .map_err(map_error)?;
    let all: Vec<Value> = grants
        .iter()
        .filter(|g| i.grant_id.as_deref().is_none_or(|id| id == g.grant_id))
        .filter(|g| {
            i.grantee_principal
                .as_deref()
                .is_none_or(|p| super::policy::principal_arn(&g.grantee, &account) == p)
        })
        .map(|g| {
            let mut v = json!({
                "KeyId": call.key_arn(g.key_id),
                "GrantId": g.grant_id,
                "CreationDate": epoch(g.created_at),
                "GranteePrincipal": super::policy::principal_arn(&g.grantee, &account),
                "IssuingAccount": format!("arn:aws:iam::{account}:root"),
                "Operations": g.operations,
            });
            if let Some(n) = &g.name {
                v["Name"] = json!(n);
            }
            if let Some(r) = &g.retiring_principal {
                v["RetiringPrincipal"] = json!(super::policy::principal_arn(r, &account));
            }
            if !g.encryption_context_subset.is_empty() {
                v["Constraints"] = json!({"EncryptionContextSubset": g.encryption_context_subset});
            }
            v
        })
        .collect();
    let (items, next) = page(&all, limit, i.marker.as_deref())?;
    Ok(paged(json!({"Grants": items}), next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RemoveGrantInput {
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    grant_id: Option<String>,
    #[serde(default)]
    grant_token: Option<String>,
}

async fn remove_grant(call: &Call<'_>, body: &Value, retire: bool) -> Out {
    let i: RemoveGrantInput = input(body)?;
    let (key, grant) = match (i.grant_token.as_deref(), i.key_id, i.grant_id) {
        (Some(t), _, _) if retire => {
            let (k, g) = t.split_once('.').ok_or_else(|| {
                AwsError::new(
                    "InvalidGrantTokenException",
                    "not a grant token Arca issued",
                )
            })?;
            (k.to_string(), g.to_string())
        }
        (_, Some(k), Some(g)) => (k, g),
        _ => {
            return Err(AwsError::validation(if retire {
                "give GrantToken, or KeyId and GrantId"
            } else {
                "KeyId and GrantId are required"
            }))
        }
    };
    let key = call.key_ref(&key)?;
    call.door
        .svc
        .remove_grant(call.caller, &key, &grant, retire)
        .await
        .map_err(|e| match e {
            Error::NotFound { kind: "grant", .. } => AwsError {
                audited: true,
                ..AwsError::new("InvalidGrantIdException", "no such grant on this key")
            },
            e => map_error(e),
        })?;
    Ok(json!({}))
}
