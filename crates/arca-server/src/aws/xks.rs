//! The AWS KMS External Key Store (XKS) proxy API, version 1
//! (aws/aws-kms-xksproxy-api-spec): AWS KMS calls Arca to encrypt and decrypt with Arca
//! AES-256 keys that never leave it.
//!
//! `POST <prefix>/kms/xks/v1/keys/<externalKeyId>/{metadata,encrypt,decrypt}` and
//! `POST <prefix>/kms/xks/v1/health`, JSON, SigV4-signed with service `kms-xks-proxy` by an
//! access key pair of a principal of the prefix's tenant. The external key id is an Arca
//! key id, name or alias. Every call runs the service's raw AES-GCM operations, so key
//! policies, lifecycle and audit apply as to any other use.

use arca_core::cipher::RawMode;
use arca_core::model::{KeySpec, KeyUsage};
use arca_core::Error;
use arca_service::api::{
    Bytes, IntegrityCheck, KeyInfo, RawCipher, RawDecryptRequest, RawEncryptRequest, Secret,
};
use arca_service::Caller;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::AwsDoor;

/// The part of every XKS path after the configured prefix.
pub const API_PATH: &str = "/kms/xks/v1";

/// The largest AAD the spec's length prefix can carry (2 bytes).
const MAX_AAD: usize = u16::MAX as usize;

/// `ciphertextMetadata` Arca writes: a format byte and the key version (5 bytes; the spec
/// allows 20). It is covered by the GCM tag, so a changed version does not decrypt.
const METADATA_V1: u8 = 1;

/// An XKS error: `errorName` and its HTTP status, from the spec's table.
#[derive(Debug)]
pub struct XksError {
    pub status: u16,
    pub name: &'static str,
    pub message: String,
    /// True when the service refused (and audited the refusal itself).
    pub audited: bool,
}

impl XksError {
    pub fn new(name: &'static str, message: impl Into<String>) -> Self {
        let status = match name {
            "AuthenticationFailedException" => 401,
            "AccessDeniedException" => 403,
            "KeyNotFoundException" | "InvalidUriPathException" => 404,
            "ThrottlingException" => 429,
            "UnsupportedOperationException" => 501,
            "DependencyTimeoutException" => 503,
            "InternalException" => 500,
            _ => 400,
        };
        // The spec: under 512 characters, printable ASCII only.
        let mut message: String = message
            .into()
            .chars()
            .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
            .collect();
        message.truncate(500);
        XksError {
            status,
            name,
            message,
            audited: false,
        }
    }

    /// The error body the spec defines.
    pub fn body(&self) -> Value {
        json!({"errorName": self.name, "errorMessage": self.message})
    }
}

/// Maps the service's error to the spec's names, once.
pub fn map_error(e: Error) -> XksError {
    use arca_core::Fault;
    let name = match &e {
        Error::NotFound { .. } => "KeyNotFoundException",
        Error::InvalidInput { .. } | Error::Conflict { .. } => "ValidationException",
        Error::Unprocessable { fault, .. } => match fault {
            Fault::Ciphertext => "InvalidCiphertextException",
            Fault::UnsuitableKey | Fault::Usage | Fault::Unsupported => "InvalidKeyUsageException",
            Fault::EncryptionContext
            | Fault::IncorrectKey
            | Fault::IncorrectKeyMaterial
            | Fault::Encoding
            | Fault::InvalidImportToken
            | Fault::ExpiredImportToken
            | Fault::Parameter => "ValidationException",
        },
        Error::WrongState { .. } | Error::Sealed => "InvalidStateException",
        Error::Unauthenticated { .. } => "AuthenticationFailedException",
        Error::NotPermitted { .. } | Error::NeedsApproval { .. } => "AccessDeniedException",
        Error::RateLimited { .. } => "ThrottlingException",
        Error::Unavailable { .. } => "DependencyTimeoutException",
        Error::Internal { .. } => "InternalException",
    };
    let message = match &e {
        Error::Internal { .. } => {
            "an internal error occurred; the server's log has the detail".into()
        }
        _ => e.to_string(),
    };
    XksError {
        audited: true,
        ..XksError::new(name, message)
    }
}

/// One XKS request, routed: which operation on which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Metadata(&'a str),
    Encrypt(&'a str),
    Decrypt(&'a str),
    Health,
}

/// Splits the path after the prefix (`/kms/xks/v1/...`) into an operation, or says why not.
pub fn route(rest: &str) -> Result<Route<'_>, XksError> {
    let bad = || {
        XksError::new(
            "InvalidUriPathException",
            "not an XKS proxy API path: expected .../kms/xks/v1/keys/<externalKeyId>/{metadata,encrypt,decrypt} or .../kms/xks/v1/health",
        )
    };
    let tail = rest.strip_prefix(API_PATH).ok_or_else(bad)?;
    if tail == "/health" {
        return Ok(Route::Health);
    }
    let keyed = tail.strip_prefix("/keys/").ok_or_else(bad)?;
    let (id, op) = keyed.rsplit_once('/').ok_or_else(bad)?;
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(XksError::new(
            "InvalidUriPathException",
            "the externalKeyId must be 1 to 128 of A-Z a-z 0-9 - . _",
        ));
    }
    match op {
        "metadata" => Ok(Route::Metadata(id)),
        "encrypt" => Ok(Route::Encrypt(id)),
        "decrypt" => Ok(Route::Decrypt(id)),
        _ => Err(bad()),
    }
}

/// The AAD given to AES-GCM: `len16_BE(aad) || aad || len8(metadata) || metadata`, so that
/// the tag covers both and neither can be moved into the other.
pub fn gcm_aad(aad: &[u8], metadata: &[u8]) -> Result<Vec<u8>, XksError> {
    if aad.len() > MAX_AAD {
        return Err(XksError::new(
            "UnsupportedOperationException",
            format!("additionalAuthenticatedData is at most {MAX_AAD} bytes here"),
        ));
    }
    if metadata.len() > u8::MAX as usize {
        return Err(XksError::new(
            "InvalidCiphertextException",
            "ciphertextMetadata is too long",
        ));
    }
    let mut out = Vec::with_capacity(3 + aad.len() + metadata.len());
    out.extend_from_slice(&(aad.len() as u16).to_be_bytes());
    out.extend_from_slice(aad);
    out.push(metadata.len() as u8);
    out.extend_from_slice(metadata);
    Ok(out)
}

fn b64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

fn unb64(field: &str, v: Option<&str>) -> Result<Option<Vec<u8>>, XksError> {
    v.map(|s| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| XksError::new("ValidationException", format!("{field} is not base64")))
    })
    .transpose()
}

/// The members of `requestMetadata` that the audit and the log keep.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata {
    #[serde(default)]
    pub aws_principal_arn: Option<String>,
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    #[serde(default)]
    pub kms_operation: Option<String>,
    #[serde(default)]
    pub kms_request_id: Option<String>,
    #[serde(default)]
    pub kms_via_service: Option<String>,
}

/// Checks that `requestMetadata` carries the members the spec makes REQUIRED for this
/// operation (as strings): `kmsRequestId` and `kmsOperation` always, `awsPrincipalArn` on
/// key operations, `kmsKeyArn` on encrypt and decrypt (KMS omits it from the GetKeyMetadata
/// of a CreateKey). Other members are optional, and unknown `kmsOperation` values are
/// accepted, as the spec requires.
pub fn check_request_metadata(route: Route<'_>, body: &Value) -> Result<(), XksError> {
    let Some(md) = body.get("requestMetadata").and_then(Value::as_object) else {
        return Err(XksError::new(
            "ValidationException",
            "requestMetadata is required and must be an object",
        ));
    };
    let mut required = vec!["kmsRequestId", "kmsOperation"];
    match route {
        Route::Health => {}
        Route::Metadata(_) => required.push("awsPrincipalArn"),
        Route::Encrypt(_) | Route::Decrypt(_) => required.extend(["awsPrincipalArn", "kmsKeyArn"]),
    }
    for member in required {
        if !md.get(member).is_some_and(Value::is_string) {
            return Err(XksError::new(
                "ValidationException",
                format!("requestMetadata.{member} is required (a string)"),
            ));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncryptInput {
    plaintext: Option<String>,
    #[serde(default)]
    additional_authenticated_data: Option<String>,
    encryption_algorithm: Option<String>,
    #[serde(default)]
    ciphertext_data_integrity_value_algorithm: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DecryptInput {
    ciphertext: Option<String>,
    #[serde(default)]
    ciphertext_metadata: Option<String>,
    encryption_algorithm: Option<String>,
    #[serde(default)]
    additional_authenticated_data: Option<String>,
    authentication_tag: Option<String>,
    initialization_vector: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, XksError> {
    serde_json::from_value(body.clone())
        .map_err(|e| XksError::new("ValidationException", format!("the request body: {e}")))
}

fn required<T>(field: &str, v: Option<T>) -> Result<T, XksError> {
    v.ok_or_else(|| XksError::new("ValidationException", format!("{field} is required")))
}

fn aes_gcm(field: Option<&str>) -> Result<(), XksError> {
    match field {
        Some("AES_GCM") => Ok(()),
        None => Err(XksError::new(
            "ValidationException",
            "encryptionAlgorithm is required",
        )),
        Some(other) => Err(XksError::new(
            "ValidationException",
            format!("encryptionAlgorithm must be AES_GCM, not {other}"),
        )),
    }
}

/// The `ciphertextMetadata` of a ciphertext made with `version` of the key.
fn version_metadata(version: u32) -> Vec<u8> {
    let mut m = vec![METADATA_V1];
    m.extend_from_slice(&version.to_be_bytes());
    m
}

/// The `keyUsage` of a key: the directions its usages allow (a key made for raw
/// block-cipher use serves no XKS request, so it lists neither ENCRYPT nor DECRYPT).
fn key_usage(k: &KeyInfo) -> Vec<&'static str> {
    let raw = k.raw_cipher_modes;
    [
        (KeyUsage::Encrypt, "ENCRYPT", raw),
        (KeyUsage::Decrypt, "DECRYPT", raw),
        (KeyUsage::Sign, "SIGN", false),
        (KeyUsage::Verify, "VERIFY", false),
        (KeyUsage::Wrap, "WRAP", false),
        (KeyUsage::Unwrap, "UNWRAP", false),
    ]
    .into_iter()
    .filter(|(u, _, hidden)| !hidden && arca_core::model::can(&k.usage, *u))
    .map(|(_, name, _)| name)
    .collect()
}

/// `keyStatus`: ENABLED exactly when the key's lifecycle lets both an Encrypt and a Decrypt
/// succeed now (the service's own rule, [`arca_core::lifecycle::usable_now`]); what the key
/// may be used for is `keyUsage`'s to say.
fn key_enabled(k: &KeyInfo) -> bool {
    k.usable_now.protect && k.usable_now.process
}

/// Runs one XKS operation for an authenticated caller.
pub async fn dispatch(
    door: &AwsDoor,
    caller: &Caller,
    route: Route<'_>,
    body: &Value,
) -> Result<Value, XksError> {
    let svc = &door.svc;
    match route {
        Route::Health => {
            check_request_metadata(route, body)?;
            // A question about the server, authorised and recorded as KMIP's Query is.
            svc.query_server(caller).await.map_err(map_error)?;
            // The caller's tenant KEK opened (it authenticated, which needs the root key),
            // and the store answers: an encrypt or decrypt now would be served.
            let healthy = svc.readiness().await.is_ok();
            Ok(json!({
                "xksProxyFleetSize": 1,
                "xksProxyVendor": "Arca",
                "xksProxyModel": format!("Arca {}", env!("CARGO_PKG_VERSION")),
                "ekmVendor": "Arca",
                "ekmFleetDetails": [{
                    "id": "arca-1",
                    "model": format!("Arca {} ({})", env!("CARGO_PKG_VERSION"), svc.crypto_name()),
                    "healthStatus": if healthy { "ACTIVE" } else { "UNAVAILABLE" },
                }],
            }))
        }
        Route::Metadata(key) => {
            check_request_metadata(route, body)?;
            let k = svc.describe_key(caller, key).await.map_err(map_error)?;
            Ok(json!({
                "keySpec": if k.spec == KeySpec::Aes256 { "AES_256".to_string() } else { k.spec.to_string() },
                "keyUsage": key_usage(&k),
                "keyStatus": if key_enabled(&k) { "ENABLED" } else { "DISABLED" },
            }))
        }
        Route::Encrypt(key) => {
            check_request_metadata(route, body)?;
            let i: EncryptInput = parse(body)?;
            aes_gcm(i.encryption_algorithm.as_deref())?;
            let check = match i.ciphertext_data_integrity_value_algorithm.as_deref() {
                None => false,
                Some("SHA_256") => true,
                Some(other) => {
                    return Err(XksError::new(
                        "ValidationException",
                        format!(
                            "ciphertextDataIntegrityValueAlgorithm must be SHA_256, not {other}"
                        ),
                    ))
                }
            };
            let plaintext =
                unb64("plaintext", Some(&required("plaintext", i.plaintext)?))?.unwrap_or_default();
            let max = svc.config().max_plaintext_bytes;
            if plaintext.len() > max {
                return Err(XksError::new(
                    "UnsupportedOperationException",
                    format!("plaintext is at most {max} bytes here"),
                ));
            }
            let aad = unb64(
                "additionalAuthenticatedData",
                i.additional_authenticated_data.as_deref(),
            )?
            .unwrap_or_default();
            // Checked before the service call: past this, gcm_aad cannot fail.
            gcm_aad(&aad, &[0; 5])?;
            let data = Secret::new(zeroize::Zeroizing::new(plaintext));
            // One service call: the metadata (which names the version) is made once the
            // key is resolved, from the version that encrypts.
            let mut metadata = Vec::new();
            let r = svc
                .encrypt_raw_with(caller, key, |k| {
                    if k.spec != KeySpec::Aes256 {
                        return Err(Error::unsuitable_key(format!(
                            "external keys are AES_256; {key} is {}",
                            k.spec
                        )));
                    }
                    metadata = version_metadata(k.primary_version);
                    Ok(RawEncryptRequest {
                        cipher: RawCipher::Aes(RawMode::Gcm),
                        data,
                        iv: None,
                        aad: gcm_aad(&aad, &metadata).map_err(|e| {
                            Error::invalid("additionalAuthenticatedData", e.message)
                        })?,
                        tag_length: None,
                        stream: None,
                        // The Ciphertext Data Integrity Value, which AWS KMS recomputes
                        // to catch corruption: SHA-256 over the AAD, the ciphertext
                        // metadata, the IV, the ciphertext and the tag.
                        integrity_check: check.then(|| IntegrityCheck {
                            prefix: [aad.as_slice(), metadata.as_slice()].concat(),
                        }),
                    })
                })
                .await
                .map_err(map_error)?;
            if metadata != version_metadata(r.key_version) {
                return Err(XksError::new(
                    "InternalException",
                    "the key version used is not the one the metadata names",
                ));
            }
            let iv = r.iv.map(|b| b.0).unwrap_or_default();
            let tag = r.tag.map(|b| b.0).unwrap_or_default();
            let mut out = json!({
                "ciphertext": b64(&r.data.0),
                "ciphertextMetadata": b64(&metadata),
                "initializationVector": b64(&iv),
                "authenticationTag": b64(&tag),
            });
            if check {
                let v = r.integrity_value.ok_or_else(|| {
                    XksError::new(
                        "InternalException",
                        "the encryption was not vouched for by an integrity value",
                    )
                })?;
                out["ciphertextDataIntegrityValue"] = b64(&v.0);
            }
            Ok(out)
        }
        Route::Decrypt(key) => {
            check_request_metadata(route, body)?;
            let i: DecryptInput = parse(body)?;
            aes_gcm(i.encryption_algorithm.as_deref())?;
            let ciphertext = unb64("ciphertext", Some(&required("ciphertext", i.ciphertext)?))?
                .unwrap_or_default();
            let tag = unb64(
                "authenticationTag",
                Some(&required("authenticationTag", i.authentication_tag)?),
            )?
            .unwrap_or_default();
            let iv = unb64(
                "initializationVector",
                Some(&required("initializationVector", i.initialization_vector)?),
            )?
            .unwrap_or_default();
            let aad = unb64(
                "additionalAuthenticatedData",
                i.additional_authenticated_data.as_deref(),
            )?
            .unwrap_or_default();
            let metadata =
                unb64("ciphertextMetadata", i.ciphertext_metadata.as_deref())?.unwrap_or_default();
            if tag.len() != 16 || !(iv.len() == 12 || iv.len() == 16) {
                return Err(XksError::new(
                    "InvalidCiphertextException",
                    "the authentication tag is 16 bytes and the IV 12 or 16",
                ));
            }
            if iv.len() != 12 {
                return Err(XksError::new(
                    "InvalidCiphertextException",
                    "this ciphertext was not made by Arca (Arca's IVs are 12 bytes)",
                ));
            }
            let version = match metadata.as_slice() {
                [METADATA_V1, v @ ..] if v.len() == 4 => {
                    u32::from_be_bytes([v[0], v[1], v[2], v[3]])
                }
                _ => {
                    return Err(XksError::new(
                        "InvalidCiphertextException",
                        "ciphertextMetadata is missing or not Arca's",
                    ))
                }
            };
            let r = svc
                .decrypt_raw(
                    caller,
                    key,
                    RawDecryptRequest {
                        cipher: RawCipher::Aes(RawMode::Gcm),
                        data: Bytes(ciphertext),
                        iv: Some(iv),
                        aad: gcm_aad(&aad, &metadata)?,
                        tag: Some(tag),
                        key_version: Some(version),
                    },
                )
                .await
                .map_err(|e| match e {
                    // A version the metadata names that the key does not have: the
                    // metadata was altered.
                    Error::NotFound {
                        kind: "version", ..
                    } => XksError::new(
                        "InvalidCiphertextException",
                        "the ciphertextMetadata names no version of this key",
                    ),
                    e => map_error(e),
                })?;
            Ok(json!({"plaintext": b64(&r.data.0)}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aad_is_length_prefixed() {
        assert_eq!(gcm_aad(b"", b"").unwrap(), vec![0, 0, 0]);
        assert_eq!(
            gcm_aad(b"ab", b"m").unwrap(),
            vec![0, 2, b'a', b'b', 1, b'm']
        );
        // Moving bytes between the two changes the AAD.
        assert_ne!(gcm_aad(b"abm", b"").unwrap(), gcm_aad(b"ab", b"m").unwrap());
        assert_eq!(
            gcm_aad(&vec![0; 70_000], b"").unwrap_err().name,
            "UnsupportedOperationException"
        );
    }

    #[test]
    fn routes() {
        assert_eq!(route("/kms/xks/v1/health").unwrap(), Route::Health);
        assert_eq!(
            route("/kms/xks/v1/keys/abc-1.2_x/encrypt").unwrap(),
            Route::Encrypt("abc-1.2_x")
        );
        assert_eq!(
            route("/kms/xks/v1/keys/k/metadata").unwrap(),
            Route::Metadata("k")
        );
        for bad in [
            "/kms/xks/v1/keys//encrypt",
            "/kms/xks/v1/keys/a/b/encrypt",
            "/kms/xks/v1/keys/k/sign",
            "/kms/xks/v2/health",
            "/kms/xks/v1/keys/k",
        ] {
            assert_eq!(
                route(bad).unwrap_err().name,
                "InvalidUriPathException",
                "{bad}"
            );
        }
        assert_eq!(XksError::new("InvalidUriPathException", "").status, 404);
    }

    #[test]
    fn messages_are_printable_ascii() {
        let e = XksError::new("ValidationException", "é\u{1}ok");
        assert_eq!(e.message, "??ok");
        assert_eq!(e.status, 400);
    }
}
