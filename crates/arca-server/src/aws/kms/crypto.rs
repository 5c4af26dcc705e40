//! The cryptographic operations: encrypt, decrypt, re-encrypt, data keys and key pairs,
//! random bytes, sign and verify, MACs and the public key. Each is one service call on a
//! key; apart so that what a key does is read apart from how it is kept.

use std::collections::BTreeMap;

use arca_core::model::{
    EncryptionAlgorithm, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm,
};
use arca_service::api::{
    Bytes, DataKeySpec, DecryptRequest, EncryptRequest, GenerateDataKeyPairRequest,
    GenerateDataKeyRequest, MacRequest, MacVerifyRequest, RandomRequest, ReEncryptRequest, Secret,
    SignRequest, VerifyRequest,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    arca_spec, aws_spec, b64, input, map_error, name_of, parse_enum, AwsError, Call, KeyIdOnly, Out,
};

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

/// Encrypt; the service binds the encryption context.
pub(super) async fn encrypt(call: &Call<'_>, body: &Value) -> Out {
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

/// Decrypt; the ciphertext names its key, and a `KeyId` given must be that key.
pub(super) async fn decrypt(call: &Call<'_>, body: &Value) -> Out {
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

/// ReEncrypt, to a symmetric key only.
pub(super) async fn re_encrypt(call: &Call<'_>, body: &Value) -> Out {
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

/// GenerateDataKey, or GenerateDataKeyWithoutPlaintext when not `with_plaintext`.
pub(super) async fn data_key(call: &Call<'_>, body: &Value, with_plaintext: bool) -> Out {
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

/// GenerateDataKeyPair, or GenerateDataKeyPairWithoutPlaintext when not
/// `with_plaintext`.
pub(super) async fn data_key_pair(call: &Call<'_>, body: &Value, with_plaintext: bool) -> Out {
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

/// GenerateRandom.
pub(super) async fn random(call: &Call<'_>, body: &Value) -> Out {
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

/// AWS's signing algorithms: Arca's, but for the legacy ones AWS KMS does not have
/// (RSASSA-PSS with SHA-1, which only KMIP clients use, in tenants that allow it).
pub(super) fn aws_signing_algorithm(name: &str) -> Result<SigningAlgorithm, AwsError> {
    let alg: SigningAlgorithm = parse_enum("signingAlgorithm", name)?;
    if alg.legacy().is_some() {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{name}' at 'signingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set (a legacy algorithm Arca offers over KMIP only)"
        )));
    }
    Ok(alg)
}

/// Sign.
pub(super) async fn sign(call: &Call<'_>, body: &Value) -> Out {
    let i: SignInput = input(body)?;
    let alg = aws_signing_algorithm(&i.signing_algorithm)?;
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
                pss_salt: None,
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

/// Verify: an invalid signature is an error (KMSInvalidSignatureException), as AWS
/// answers it.
pub(super) async fn verify(call: &Call<'_>, body: &Value) -> Out {
    let i: SignInput = input(body)?;
    let alg = aws_signing_algorithm(&i.signing_algorithm)?;
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
                pss_salt: None,
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

/// GenerateMac.
pub(super) async fn mac(call: &Call<'_>, body: &Value) -> Out {
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

/// VerifyMac: an invalid MAC is an error (KMSInvalidMacException), as AWS answers it.
pub(super) async fn verify_mac(call: &Call<'_>, body: &Value) -> Out {
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

/// GetPublicKey.
pub(super) async fn public_key(call: &Call<'_>, body: &Value) -> Out {
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
