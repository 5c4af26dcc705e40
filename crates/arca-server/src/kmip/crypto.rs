//! KMIP's cryptographic operations: Encrypt, Decrypt, Sign, Signature Verify, MAC, MAC
//! Verify and Hash, mapped onto the service's raw-cipher, signing and MAC operations.
//!
//! What is translated here is the Cryptographic Parameters structure: block cipher mode,
//! padding, hashing algorithm, digital signature algorithm, tag length, random IV. A
//! combination Arca does not offer is refused with Invalid Field (2.x: Bad or Unsupported
//! Cryptographic Parameters) naming it, never approximated.

use arca_core::cipher::{LegacyCipher, OaepHash, OaepParams, PssSalt, RawMode};
use arca_core::model::{
    DigestAlgorithm, Key, KeyFamily, KeySpec, MacAlgorithm, MessageType, SigningAlgorithm,
};
use arca_kmip::enums::{
    block_cipher_mode as bcm, cryptographic_algorithm as alg, digital_signature_algorithm as dsa,
    hashing_algorithm as hash, mask_generator, padding_method as pad, result_reason as reason,
    validity_indicator,
};
use arca_kmip::{tags, Failure, Item, Value};
use arca_service::api::{
    Bytes, HashRequest, MacRequest, MacVerifyRequest, RawCipher, RawDecryptRequest,
    RawEncryptRequest, RawStream, Secret, SignRequest, VerifyRequest,
};
use zeroize::Zeroizing;

use super::attrs::{Attr, Extras};
use super::ops::{failure, payload, uid_item, Ctx, Kept, OpResult};

/// Cryptographic Parameters as given (or as stored on the object).
#[derive(Debug, Default, Clone)]
struct Params {
    mode: Option<u32>,
    padding: Option<u32>,
    hashing: Option<u32>,
    signature: Option<u32>,
    algorithm: Option<u32>,
    random_iv: Option<bool>,
    tag_length: Option<i32>,
    mgf_hashing: Option<u32>,
    initial_counter: Option<i32>,
    mask_generator: Option<u32>,
    salt_length: Option<i32>,
    p_source: Option<Vec<u8>>,
}

fn bad_params(message: impl Into<String>) -> Failure {
    Failure::new(reason::INVALID_FIELD, message)
}

impl Params {
    fn read(item: Option<&Item>) -> Result<Params, Failure> {
        let Some(i) = item else {
            return Ok(Params::default());
        };
        let e = |tag| i.child(tag).map(Item::enumeration).transpose();
        Ok(Params {
            mode: e(tags::BLOCK_CIPHER_MODE)?,
            padding: e(tags::PADDING_METHOD)?,
            hashing: e(tags::HASHING_ALGORITHM)?,
            signature: e(tags::DIGITAL_SIGNATURE_ALGORITHM)?,
            algorithm: e(tags::CRYPTOGRAPHIC_ALGORITHM)?,
            random_iv: i.child(tags::RANDOM_IV).map(Item::boolean).transpose()?,
            tag_length: i.child(tags::TAG_LENGTH).map(Item::integer).transpose()?,
            mgf_hashing: e(tags::MASK_GENERATOR_HASHING_ALGORITHM)?,
            initial_counter: i
                .child(tags::INITIAL_COUNTER_VALUE)
                .map(Item::integer)
                .transpose()?,
            mask_generator: e(tags::MASK_GENERATOR)?,
            salt_length: i.child(tags::SALT_LENGTH).map(Item::integer).transpose()?,
            p_source: i
                .child(tags::P_SOURCE)
                .map(|b| b.byte_string().map(|b| b.to_vec()))
                .transpose()?,
        })
    }

    /// The request's parameters, else the object's Cryptographic Parameters attribute.
    fn for_request(p: &Item, key: &Key) -> Result<Params, Failure> {
        if let Some(given) = p.child(tags::CRYPTOGRAPHIC_PARAMETERS) {
            return Params::read(Some(given));
        }
        let stored = Extras::of_meta(&key.meta).other_attrs();
        let from_object = stored.iter().find_map(|a| match a {
            Attr::Std(i) if i.tag == tags::CRYPTOGRAPHIC_PARAMETERS => Some(i.clone()),
            _ => None,
        });
        Params::read(from_object.as_ref())
    }

    /// RSA-OAEP's parameters: the Hashing Algorithm (PKCS#1's and KMIP's default, SHA-1),
    /// the Mask Generator Hashing Algorithm (default: the same hash) and the P Source (the
    /// label, default empty).
    fn oaep_params(&self) -> Result<OaepParams, Failure> {
        let oaep_hash = |h: u32, field: &str| {
            Ok(match h {
                hash::SHA_1 => OaepHash::Sha1,
                hash::SHA_256 => OaepHash::Sha256,
                hash::SHA_384 => OaepHash::Sha384,
                hash::SHA_512 => OaepHash::Sha512,
                _ => {
                    return Err(bad_params(format!(
                        "{field}: RSA-OAEP takes SHA-1, SHA-256, SHA-384 or SHA-512"
                    )))
                }
            })
        };
        if self
            .mask_generator
            .is_some_and(|m| m != mask_generator::MGF1)
        {
            return Err(bad_params("MaskGenerator: RSA-OAEP here uses MGF1"));
        }
        let h = self.hashing.unwrap_or(hash::SHA_1);
        Ok(OaepParams {
            hash: oaep_hash(h, "HashingAlgorithm")?,
            mgf1: oaep_hash(
                self.mgf_hashing.unwrap_or(h),
                "MaskGeneratorHashingAlgorithm",
            )?,
            label: self.p_source.clone().unwrap_or_default(),
        })
    }

    /// The legacy cipher these parameters name for a key of a legacy spec (Triple DES:
    /// CBC by default, or ECB, padded with PKCS5 or not; ChaCha20: the stream cipher from
    /// the Initial Counter Value, default 0; ChaCha20-Poly1305: the AEAD, with a Tag Length
    /// of 12 to 16 bytes, default 16); `None` for other specs.
    fn legacy_cipher(&self, spec: KeySpec) -> Result<Option<LegacyCipher>, Failure> {
        Ok(Some(match spec.family() {
            KeyFamily::TripleDes => {
                let pkcs7 = match self.padding {
                    None | Some(pad::NONE) => false,
                    Some(pad::PKCS5) => true,
                    Some(_) => return Err(bad_params("Triple DES padding is None or PKCS5")),
                };
                let cbc = match self.mode {
                    None | Some(bcm::CBC) => true,
                    Some(bcm::ECB) => false,
                    Some(_) => return Err(bad_params("Triple DES modes here are CBC and ECB")),
                };
                LegacyCipher::TripleDes { cbc, pkcs7 }
            }
            KeyFamily::ChaCha20 if spec == KeySpec::ChaCha20 => {
                if self.mode.is_some() || self.padding.is_some() || self.tag_length.is_some() {
                    return Err(bad_params(
                        "ChaCha20 is a stream cipher: no BlockCipherMode, PaddingMethod or TagLength (a ChaCha20Poly1305 key runs the AEAD)",
                    ));
                }
                let initial_counter = u32::try_from(self.initial_counter.unwrap_or(0))
                    .map_err(|_| bad_params("InitialCounterValue is 0 or more"))?;
                LegacyCipher::ChaCha20 { initial_counter }
            }
            KeyFamily::ChaCha20 => {
                if !matches!(self.mode, None | Some(bcm::AEAD)) {
                    return Err(bad_params(
                        "a ChaCha20Poly1305 key runs the AEAD (BlockCipherMode AEAD) only",
                    ));
                }
                let tag_len = self.tag_length.unwrap_or(16);
                match usize::try_from(tag_len) {
                    Ok(t) if arca_core::cipher::CHACHA20_POLY1305_TAG_LENS.contains(&t) => {
                        LegacyCipher::ChaCha20Poly1305 { tag_len: t }
                    }
                    // The profiles' answer to a tag length the server does not make.
                    _ => {
                        return Err(Failure::new(
                            reason::GENERAL_FAILURE,
                            format!(
                                "invalid-tag-length: ChaCha20-Poly1305 tags are {} to {} bytes, not {tag_len}",
                                arca_core::cipher::CHACHA20_POLY1305_TAG_LENS.start(),
                                arca_core::cipher::CHACHA20_POLY1305_TAG_LENS.end()
                            ),
                        ))
                    }
                }
            }
            _ => return Ok(None),
        }))
    }

    /// The RSA-PSS salt length: the Salt Length given, else the hash length to sign and
    /// any length to verify (KMIP names no default; a signature from a client that salted
    /// with another length, often the longest the key allows, then still verifies).
    fn pss_salt(&self, alg: SigningAlgorithm, verifying: bool) -> Result<Option<PssSalt>, Failure> {
        match self.salt_length {
            Some(n) => u32::try_from(n)
                .map(|n| Some(PssSalt::Bytes(n)))
                .map_err(|_| bad_params("SaltLength must not be negative")),
            None if verifying && alg.is_pss() => Ok(Some(PssSalt::Any)),
            None => Ok(None),
        }
    }

    /// The raw cipher these parameters name for a key of `spec`.
    fn cipher(&self, spec: KeySpec) -> Result<RawCipher, Failure> {
        if let Some(c) = self.legacy_cipher(spec)? {
            return Ok(RawCipher::Legacy(c));
        }
        if spec.is_asymmetric() {
            return match self.padding {
                None | Some(pad::OAEP) => Ok(RawCipher::RsaOaep(self.oaep_params()?)),
                Some(_) => Err(bad_params(
                    "RSA encryption here is RSA-OAEP only (PKCS#1 v1.5 encryption is not offered: it invites padding-oracle attacks)",
                )),
            };
        }
        let pkcs7 = match self.padding {
            None | Some(pad::NONE) => false,
            Some(pad::PKCS5) => true,
            Some(_) => return Err(bad_params("AES padding is None or PKCS5")),
        };
        Ok(RawCipher::Aes(match self.mode {
            None | Some(bcm::GCM) | Some(bcm::AEAD) => RawMode::Gcm,
            Some(bcm::CBC) => RawMode::Cbc { pkcs7 },
            Some(bcm::ECB) => RawMode::Ecb { pkcs7 },
            Some(bcm::CTR) => RawMode::Ctr,
            Some(m) => {
                let name = arca_kmip::enum_name(bcm::ALL, m).unwrap_or("?");
                return Err(bad_params(format!(
                    "BlockCipherMode {name} is not offered: use GCM, CBC, ECB or CTR"
                )));
            }
        }))
    }

    /// The signing algorithm these parameters name for a key of `spec`.
    fn signing(&self, spec: KeySpec) -> Result<SigningAlgorithm, Failure> {
        use SigningAlgorithm::*;
        let by_dsa = match self.signature {
            Some(dsa::SHA256_WITH_RSA_ENCRYPTION) => Some(RsassaPkcs1V15Sha256),
            Some(dsa::SHA384_WITH_RSA_ENCRYPTION) => Some(RsassaPkcs1V15Sha384),
            Some(dsa::SHA512_WITH_RSA_ENCRYPTION) => Some(RsassaPkcs1V15Sha512),
            Some(dsa::ECDSA_WITH_SHA256) => Some(EcdsaSha256),
            Some(dsa::ECDSA_WITH_SHA384) => Some(EcdsaSha384),
            Some(dsa::ECDSA_WITH_SHA512) => Some(EcdsaSha512),
            Some(dsa::DSA_WITH_SHA256) => Some(DsaSha256),
            Some(dsa::RSASSA_PSS) => Some(match self.hashing {
                Some(hash::SHA_1) => RsassaPssSha1,
                Some(hash::SHA_384) => RsassaPssSha384,
                Some(hash::SHA_512) => RsassaPssSha512,
                _ => RsassaPssSha256,
            }),
            Some(other) => {
                let name = arca_kmip::enum_name(dsa::ALL, other).unwrap_or("?");
                return Err(bad_params(format!(
                    "DigitalSignatureAlgorithm {name} is not offered"
                )));
            }
            None => None,
        };
        let chosen = match by_dsa {
            Some(a) => a,
            None => match (spec, self.padding, self.hashing) {
                (KeySpec::Ed25519, _, _) => Ed25519Sha512,
                (KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87, _, _) => MlDsaShake256,
                (_, Some(pad::PSS), h) if spec.family() == arca_core::model::KeyFamily::Rsa => {
                    match h {
                        // SHA-1 is a legacy algorithm: the service asks the tenant.
                        Some(hash::SHA_1) => RsassaPssSha1,
                        Some(hash::SHA_384) => RsassaPssSha384,
                        Some(hash::SHA_512) => RsassaPssSha512,
                        None | Some(hash::SHA_256) => RsassaPssSha256,
                        _ => {
                            return Err(bad_params(
                                "RSA-PSS takes SHA-1 (legacy), SHA-256, SHA-384 or SHA-512",
                            ))
                        }
                    }
                }
                (_, Some(pad::PKCS1V15), h)
                    if spec.family() == arca_core::model::KeyFamily::Rsa =>
                {
                    match h {
                        Some(hash::SHA_384) => RsassaPkcs1V15Sha384,
                        Some(hash::SHA_512) => RsassaPkcs1V15Sha512,
                        None | Some(hash::SHA_256) => RsassaPkcs1V15Sha256,
                        _ => {
                            return Err(bad_params(
                                "RSA PKCS#1 v1.5 signatures take SHA-256, SHA-384 or SHA-512",
                            ))
                        }
                    }
                }
                _ => match SigningAlgorithm::for_spec(spec).first() {
                    Some(a) => *a,
                    None => return Err(bad_params(format!("a {spec} key does not sign"))),
                },
            },
        };
        Ok(chosen)
    }
}

fn bytes_of(p: &Item, tag: u32) -> Result<Option<Vec<u8>>, Failure> {
    p.child(tag)
        .map(|i| i.byte_string().map(|b| b.to_vec()))
        .transpose()
}

impl Ctx<'_> {
    pub(super) async fn encrypt(&mut self, p: &Item) -> OpResult {
        let stream = stream_part(p)?;
        let id = self.target(p)?;
        let data = p.req(tags::DATA)?.byte_string()?.clone();
        let iv = bytes_of(p, tags::IV_COUNTER_NONCE)?;
        let aad = bytes_of(p, tags::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA)?.unwrap_or_default();
        let mut kept = Kept(None);
        let r = self
            .svc
            .encrypt_raw_with(self.caller()?, &id, |key| {
                kept.wrap((|| {
                    let params = Params::for_request(p, key)?;
                    if iv.is_some() && params.random_iv == Some(true) {
                        return Err(bad_params(
                            "IVCounterNonce and RandomIV true exclude each other",
                        ));
                    }
                    let cipher = params.cipher(key.spec)?;
                    // A legacy AEAD (ChaCha20-Poly1305) carries its Tag Length in its cipher;
                    // for AES the service checks it (GCM only).
                    let tag_length = match cipher {
                        RawCipher::Legacy(_) => None,
                        // A negative Tag Length is out of range like any other.
                        _ => params.tag_length.map(|t| usize::try_from(t).unwrap_or(0)),
                    };
                    Ok(RawEncryptRequest {
                        cipher,
                        data: Secret::new(data),
                        iv,
                        aad,
                        tag_length,
                        stream,
                        integrity_check: None,
                    })
                })())
            })
            .await;
        let r = match r {
            Ok(r) => r,
            // The OASIS cases expect General Failure for a Tag Length out of range.
            Err(arca_core::Error::InvalidInput { field, message }) if field == "tag_length" => {
                return Err(Failure::new(
                    reason::GENERAL_FAILURE,
                    format!("TagLength: {message}"),
                ))
            }
            Err(e) => return Err(kept.or(e, failure)),
        };
        let mut out = vec![uid_item(&id), Item::new(tags::DATA, Value::bytes(r.data.0))];
        // The IV goes back when the server chose it.
        if p.child(tags::IV_COUNTER_NONCE).is_none() {
            if let Some(iv) = r.iv {
                out.push(Item::new(tags::IV_COUNTER_NONCE, Value::bytes(iv.0)));
            }
        }
        if let Some(t) = r.tag {
            out.push(Item::new(
                tags::AUTHENTICATED_ENCRYPTION_TAG,
                Value::bytes(t.0),
            ));
        }
        if let Some(c) = r.correlation {
            out.push(Item::new(tags::CORRELATION_VALUE, Value::bytes(c.0)));
        }
        self.placeholder = Some(id);
        Ok(payload(out))
    }

    pub(super) async fn decrypt(&mut self, p: &Item) -> OpResult {
        one_shot(p, "Decrypt")?;
        let id = self.target(p)?;
        let data = Bytes(p.req(tags::DATA)?.byte_string()?.to_vec());
        let iv = bytes_of(p, tags::IV_COUNTER_NONCE)?;
        let aad = bytes_of(p, tags::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA)?.unwrap_or_default();
        let tag = bytes_of(p, tags::AUTHENTICATED_ENCRYPTION_TAG)?;
        let mut kept = Kept(None);
        let r = self
            .svc
            .decrypt_raw_with(self.caller()?, &id, |key| {
                kept.wrap((|| {
                    let params = Params::for_request(p, key)?;
                    let cipher = params.cipher(key.spec)?;
                    if let (Some(t), Some(given)) = (params.tag_length, &tag) {
                        if usize::try_from(t).ok() != Some(given.len()) {
                            return Err(bad_params(format!(
                                "TagLength is {t} but the Authenticated Encryption Tag has {} bytes",
                                given.len()
                            )));
                        }
                    }
                    if let RawCipher::Aes(mode) = cipher {
                        if mode.iv_len() > 0 && iv.is_none() {
                            return Err(Failure::invalid_message(format!(
                                "IVCounterNonce is required to decrypt in {mode:?}"
                            )));
                        }
                    }
                    if let RawCipher::Legacy(c) = cipher {
                        if !c.iv_lens().contains(&0) && iv.is_none() {
                            return Err(Failure::invalid_message(format!(
                                "IVCounterNonce is required to decrypt with {c:?}"
                            )));
                        }
                    }
                    Ok(RawDecryptRequest {
                        cipher,
                        data,
                        iv,
                        aad,
                        tag,
                        key_version: None,
                    })
                })())
            })
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => return Err(kept.or(e, |e| crypto_failure(e, reason::CRYPTOGRAPHIC_FAILURE))),
        };
        self.placeholder = Some(id.clone());
        Ok(payload(vec![
            uid_item(&id),
            Item::new(tags::DATA, Value::ByteString(r.data.0.clone())),
        ]))
    }

    /// The message to sign or verify: `Data` (the whole message) or `DigestedData`.
    fn message(p: &Item) -> Result<(Zeroizing<Vec<u8>>, MessageType), Failure> {
        if let Some(d) = p.child(tags::DIGESTED_DATA) {
            return Ok((
                Zeroizing::new(d.byte_string()?.to_vec()),
                MessageType::Digest,
            ));
        }
        Ok((
            Zeroizing::new(p.req(tags::DATA)?.byte_string()?.to_vec()),
            MessageType::Raw,
        ))
    }

    pub(super) async fn sign(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        let (message, message_type) = Self::message(p)?;
        let mut kept = Kept(None);
        let r = self
            .svc
            .sign_with(self.caller()?, &id, |key| {
                let (algorithm, pss_salt) =
                    kept.wrap(Params::for_request(p, key).and_then(|x| {
                        let a = x.signing(key.spec)?;
                        Ok((a, x.pss_salt(a, false)?))
                    }))?;
                Ok(SignRequest {
                    message: Secret::new(message),
                    message_type,
                    signing_algorithm: Some(algorithm),
                    pss_salt,
                })
            })
            .await
            .map_err(|e| kept.or(e, failure))?;
        self.placeholder = Some(id.clone());
        Ok(payload(vec![
            uid_item(&id),
            Item::new(tags::SIGNATURE_DATA, Value::bytes(r.signature.0)),
        ]))
    }

    pub(super) async fn signature_verify(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        let (message, message_type) = Self::message(p)?;
        let signature = p.req(tags::SIGNATURE_DATA)?.byte_string()?.to_vec();
        let mut kept = Kept(None);
        let r = self
            .svc
            .verify_with(self.caller()?, &id, |key| {
                let (algorithm, pss_salt) =
                    kept.wrap(Params::for_request(p, key).and_then(|x| {
                        let a = x.signing(key.spec)?;
                        Ok((a, x.pss_salt(a, true)?))
                    }))?;
                Ok(VerifyRequest {
                    message: Secret::new(message),
                    message_type,
                    signature: Bytes(signature),
                    signing_algorithm: Some(algorithm),
                    key_version: None,
                    pss_salt,
                })
            })
            .await
            .map_err(|e| kept.or(e, failure))?;
        self.placeholder = Some(id.clone());
        Ok(validity(&id, r.valid))
    }

    fn mac_algorithm(p: &Item, key: &Key) -> Result<Option<MacAlgorithm>, Failure> {
        let params = Params::for_request(p, key)?;
        Ok(match params.algorithm {
            None => None,
            Some(alg::HMAC_SHA256) => Some(MacAlgorithm::HmacSha256),
            Some(alg::HMAC_SHA384) => Some(MacAlgorithm::HmacSha384),
            Some(alg::HMAC_SHA512) => Some(MacAlgorithm::HmacSha512),
            Some(other) => {
                let name = arca_kmip::enum_name(alg::ALL, other).unwrap_or("?");
                return Err(bad_params(format!(
                    "MAC algorithm {name} is not offered: HMAC_SHA256/384/512"
                )));
            }
        })
    }

    pub(super) async fn mac(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        let data = p.req(tags::DATA)?.byte_string()?.to_vec();
        let mut kept = Kept(None);
        let r = self
            .svc
            .generate_mac_with(self.caller()?, &id, |key| {
                Ok(MacRequest {
                    message: Secret::new(Zeroizing::new(data)),
                    mac_algorithm: kept.wrap(Self::mac_algorithm(p, key))?,
                })
            })
            .await
            .map_err(|e| kept.or(e, failure))?;
        self.placeholder = Some(id.clone());
        Ok(payload(vec![
            uid_item(&id),
            Item::new(tags::MAC_DATA, Value::bytes(r.mac.0)),
        ]))
    }

    pub(super) async fn mac_verify(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        let data = p.req(tags::DATA)?.byte_string()?.to_vec();
        let mac = p.req(tags::MAC_DATA)?.byte_string()?.to_vec();
        let mut kept = Kept(None);
        let r = self
            .svc
            .verify_mac_with(self.caller()?, &id, |key| {
                Ok(MacVerifyRequest {
                    message: Secret::new(Zeroizing::new(data)),
                    mac: Bytes(mac),
                    mac_algorithm: kept.wrap(Self::mac_algorithm(p, key))?,
                    key_version: None,
                })
            })
            .await
            .map_err(|e| kept.or(e, failure))?;
        self.placeholder = Some(id.clone());
        Ok(validity(&id, r.valid))
    }

    /// Hash: the digest of the request's Data under its Hashing Algorithm, keyless. One
    /// request carries all the data: the streaming form (Correlation Value, an Init
    /// Indicator without a Final Indicator) is refused rather than half-served.
    pub(super) async fn hash(&mut self, p: &Item) -> OpResult {
        one_shot(p, "Hash")?;
        let params = Params::read(p.child(tags::CRYPTOGRAPHIC_PARAMETERS))?;
        let algorithm = match params.hashing {
            Some(hash::SHA_1) => DigestAlgorithm::Sha1,
            Some(hash::SHA_224) => DigestAlgorithm::Sha224,
            Some(hash::SHA_256) => DigestAlgorithm::Sha256,
            Some(hash::SHA_384) => DigestAlgorithm::Sha384,
            Some(hash::SHA_512) => DigestAlgorithm::Sha512,
            Some(hash::SHA_512_256) => DigestAlgorithm::Sha512_256,
            Some(hash::SHA3_256) => DigestAlgorithm::Sha3_256,
            Some(hash::SHA3_384) => DigestAlgorithm::Sha3_384,
            Some(hash::SHA3_512) => DigestAlgorithm::Sha3_512,
            None => {
                return Err(bad_params(
                    "Hash needs Cryptographic Parameters with a Hashing Algorithm",
                ))
            }
            Some(_) => {
                return Err(bad_params(
                    "Hashing Algorithm: Hash offers SHA-1, SHA-224, SHA-256, SHA-384, SHA-512, SHA-512/256 and SHA3-256/384/512",
                ))
            }
        };
        let data = p.req(tags::DATA)?.byte_string()?.to_vec();
        let r = self
            .svc
            .hash(
                self.caller()?,
                HashRequest {
                    algorithm,
                    data: Secret::new(Zeroizing::new(data)),
                },
            )
            .await
            .map_err(failure)?;
        Ok(payload(vec![Item::new(
            tags::DATA,
            Value::bytes(r.digest.0),
        )]))
    }
}

/// The part of a multi-request Encrypt this request is: Init Indicator alone begins one
/// (GCM only), a Correlation Value continues it and, with Final Indicator, ends it. Both
/// indicators, or neither, with no Correlation Value: the whole message at once.
fn stream_part(p: &Item) -> Result<Option<RawStream>, Failure> {
    let flag = |tag| p.child(tag).map(Item::boolean).transpose();
    let (init, last) = (
        flag(tags::INIT_INDICATOR)?.unwrap_or(false),
        flag(tags::FINAL_INDICATOR)?.unwrap_or(false),
    );
    let correlation = p
        .child(tags::CORRELATION_VALUE)
        .map(|c| c.byte_string().map(|b| b.to_vec()))
        .transpose()?;
    Ok(match (init, last, correlation) {
        (true, true, None) | (false, false, None) => None,
        (true, false, None) => Some(RawStream::Init),
        (false, false, Some(c)) => Some(RawStream::Continue(c)),
        (false, true, Some(c)) => Some(RawStream::Final(c)),
        _ => {
            return Err(Failure::invalid_message(
                "Init Indicator begins a multi-request Encrypt and takes no Correlation Value; later parts name the Correlation Value, the last with Final Indicator",
            ))
        }
    })
}

/// Refuses the streaming form of an operation (a Correlation Value, or an Init Indicator
/// without a Final Indicator or the reverse): Arca keeps no cryptographic state between
/// requests, so all the data comes in one request, rather than being half-served.
fn one_shot(p: &Item, op: &str) -> Result<(), Failure> {
    let flag = |tag| p.child(tag).map(Item::boolean).transpose();
    let (init, last) = (flag(tags::INIT_INDICATOR)?, flag(tags::FINAL_INDICATOR)?);
    if p.child(tags::CORRELATION_VALUE).is_some()
        || init == Some(true) && last != Some(true)
        || last == Some(true) && init != Some(true)
    {
        return Err(Failure::new(
            reason::OPERATION_NOT_SUPPORTED,
            format!("streaming {op} is not offered: send all the data in one request"),
        ));
    }
    Ok(())
}

/// The answer of a verification: the object and a Validity Indicator.
fn validity(id: &str, valid: bool) -> Item {
    payload(vec![
        uid_item(id),
        Item::enum_item(
            tags::VALIDITY_INDICATOR,
            if valid {
                validity_indicator::VALID
            } else {
                validity_indicator::INVALID
            },
        ),
    ])
}

/// A decryption that does not authenticate is a Cryptographic Failure in KMIP.
fn crypto_failure(e: arca_core::Error, r: u32) -> Failure {
    use arca_core::Fault;
    match e {
        arca_core::Error::Unprocessable { fault, .. } => match fault {
            // A usage the key does not have is a usage mask refusal, not a failure.
            Fault::Usage => failure(e),
            Fault::UnsuitableKey
            | Fault::Unsupported
            | Fault::Ciphertext
            | Fault::EncryptionContext
            | Fault::IncorrectKey
            | Fault::IncorrectKeyMaterial
            | Fault::Encoding
            | Fault::InvalidImportToken
            | Fault::ExpiredImportToken
            | Fault::Parameter => Failure::new(r, e.to_string()),
        },
        e => failure(e),
    }
}
