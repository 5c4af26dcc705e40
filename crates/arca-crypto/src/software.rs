//! The software crypto provider, on aws-lc-rs.
//!
//! Every key family is one variant of [`SoftwareKey`]; parsed key objects are built once in
//! [`SoftwareProvider::load`] and reused by every operation through the service's cache.

use std::sync::Arc;

use arca_core::model::{KeyFamily, KeySpec, MacAlgorithm, MessageType, SigningAlgorithm};
use arca_core::{Error, Result};
use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::kem::{self, AlgorithmId, DecapsulationKey, EncapsulationKey};
use aws_lc_rs::rand::{self, SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{
    self, OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384,
    OAEP_SHA512_MGF1SHA512,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, PqdsaKeyPair};
use aws_lc_rs::{constant_time, hmac};
use zeroize::Zeroizing;

use crate::ciphertext::{NONCE_LEN, TAG_LEN};
use crate::der;
use crate::legacy;
use crate::provider::{
    CryptoProvider, KeyHandle, KeyMaterial, LegacyCipher, OaepHash, OaepParams, PssSalt, RawMode,
};
use crate::rsa_params::{RsaHash, RsaKey, RsaScheme};

/// The software provider. Stateless: every call is independent.
#[derive(Debug, Default, Clone)]
pub struct SoftwareProvider;

fn internal(what: &str) -> Error {
    Error::internal(format!("crypto failure: {what}"))
}

fn rejected(field: &str, spec: KeySpec, why: &str) -> Error {
    Error::invalid(field, format!("not valid {spec} key material: {why}"))
}

fn aead_alg(spec: KeySpec) -> &'static aead::Algorithm {
    match spec {
        KeySpec::Aes128 => &aead::AES_128_GCM,
        KeySpec::Aes192 => &aead::AES_192_GCM,
        _ => &aead::AES_256_GCM,
    }
}

fn hmac_alg(spec: KeySpec) -> hmac::Algorithm {
    match spec {
        KeySpec::Hmac384 => hmac::HMAC_SHA384,
        KeySpec::Hmac512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    }
}

fn ecdsa_signing(spec: KeySpec) -> &'static signature::EcdsaSigningAlgorithm {
    match spec {
        KeySpec::EccNistP384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        KeySpec::EccNistP521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        _ => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
    }
}

fn ecdsa_verify(spec: KeySpec) -> &'static signature::EcdsaVerificationAlgorithm {
    match spec {
        KeySpec::EccNistP384 => &signature::ECDSA_P384_SHA384_ASN1,
        KeySpec::EccNistP521 => &signature::ECDSA_P521_SHA512_ASN1,
        _ => &signature::ECDSA_P256_SHA256_ASN1,
    }
}

fn mldsa_signing(spec: KeySpec) -> &'static signature::PqdsaSigningAlgorithm {
    match spec {
        KeySpec::MlDsa44 => &signature::ML_DSA_44_SIGNING,
        KeySpec::MlDsa87 => &signature::ML_DSA_87_SIGNING,
        _ => &signature::ML_DSA_65_SIGNING,
    }
}

fn mldsa_verify(spec: KeySpec) -> &'static signature::PqdsaVerificationAlgorithm {
    match spec {
        KeySpec::MlDsa44 => &signature::ML_DSA_44,
        KeySpec::MlDsa87 => &signature::ML_DSA_87,
        _ => &signature::ML_DSA_65,
    }
}

fn mlkem_alg(spec: KeySpec) -> &'static kem::Algorithm<AlgorithmId> {
    match spec {
        KeySpec::MlKem1024 => &kem::ML_KEM_1024,
        _ => &kem::ML_KEM_768,
    }
}

/// ML-KEM parameter k (3 for 768, 4 for 1024): the FIPS 203 decapsulation key is
/// `dk_pke (384k) || ek (384k + 32) || H(ek) (32) || z (32)`.
fn mlkem_k(spec: KeySpec) -> usize {
    if spec == KeySpec::MlKem1024 {
        4
    } else {
        3
    }
}

fn rsa_bits(spec: KeySpec) -> usize {
    match spec {
        KeySpec::Rsa1024 => 1024,
        KeySpec::Rsa3072 => 3072,
        KeySpec::Rsa4096 => 4096,
        _ => 2048,
    }
}

fn rsa_size(spec: KeySpec) -> rsa::KeySize {
    match spec {
        KeySpec::Rsa3072 => rsa::KeySize::Rsa3072,
        KeySpec::Rsa4096 => rsa::KeySize::Rsa4096,
        _ => rsa::KeySize::Rsa2048,
    }
}

fn rsa_encoding(alg: SigningAlgorithm) -> Option<&'static signature::RsaSignatureEncoding> {
    use SigningAlgorithm::*;
    Some(match alg {
        RsassaPssSha256 => &signature::RSA_PSS_SHA256,
        RsassaPssSha384 => &signature::RSA_PSS_SHA384,
        RsassaPssSha512 => &signature::RSA_PSS_SHA512,
        RsassaPkcs1V15Sha256 => &signature::RSA_PKCS1_SHA256,
        RsassaPkcs1V15Sha384 => &signature::RSA_PKCS1_SHA384,
        RsassaPkcs1V15Sha512 => &signature::RSA_PKCS1_SHA512,
        _ => return None,
    })
}

fn rsa_verification(alg: SigningAlgorithm) -> Option<&'static signature::RsaParameters> {
    use SigningAlgorithm::*;
    Some(match alg {
        RsassaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
        RsassaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
        RsassaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
        RsassaPkcs1V15Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        RsassaPkcs1V15Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        RsassaPkcs1V15Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        _ => return None,
    })
}

fn digest_alg(alg: SigningAlgorithm) -> Option<&'static digest::Algorithm> {
    match alg.digest_len() {
        Some(32) => Some(&digest::SHA256),
        Some(48) => Some(&digest::SHA384),
        Some(64) => Some(&digest::SHA512),
        _ => None,
    }
}

/// Wraps caller bytes as a digest of the algorithm's hash, checking its length.
fn import_digest(alg: SigningAlgorithm, msg: &[u8]) -> Result<digest::Digest> {
    let d = digest_alg(alg).ok_or_else(|| {
        Error::unprocessable(
            "message_type",
            format!(
                "{} signs whole messages only; use message_type RAW",
                alg.as_str()
            ),
        )
    })?;
    digest::Digest::import_less_safe(msg, d).map_err(|_| {
        Error::invalid(
            "message",
            format!(
                "a DIGEST message for {} must be {} bytes, got {}",
                alg.as_str(),
                d.output_len(),
                msg.len()
            ),
        )
    })
}

/// The digest a DSA signature covers: the message's SHA-256, or the caller's digest.
fn dsa_digest(alg: SigningAlgorithm, kind: MessageType, msg: &[u8]) -> Result<Vec<u8>> {
    Ok(match kind {
        MessageType::Raw => digest::digest(&digest::SHA256, msg).as_ref().to_vec(),
        MessageType::Digest => import_digest(alg, msg)?.as_ref().to_vec(),
    })
}

/// Decodes PEM if the input looks like PEM, returning the DER bytes and the PEM tag.
fn maybe_pem(field: &str, bytes: &[u8]) -> Result<(Zeroizing<Vec<u8>>, Option<String>)> {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let p = pem::parse(trimmed)
            .map_err(|e| Error::invalid(field, format!("not valid PEM: {e}")))?;
        let tag = p.tag().to_string();
        Ok((Zeroizing::new(p.into_contents()), Some(tag)))
    } else {
        Ok((Zeroizing::new(bytes.to_vec()), None))
    }
}

fn check_alg_for_spec(spec: KeySpec, alg: SigningAlgorithm) -> Result<()> {
    if SigningAlgorithm::for_spec(spec).contains(&alg)
        || SigningAlgorithm::legacy_for_spec(spec).contains(&alg)
    {
        Ok(())
    } else {
        Err(Error::unprocessable(
            "signing_algorithm",
            format!(
                "{} is not valid for a {spec} key; use one of {}",
                alg.as_str(),
                SigningAlgorithm::for_spec(spec)
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

/// The largest secret data Arca keeps (a password, a seed, a foreign key).
pub const MAX_SECRET_DATA: usize = 8192;

impl CryptoProvider for SoftwareProvider {
    fn name(&self) -> &'static str {
        "software"
    }

    fn generate(&self, spec: KeySpec) -> Result<KeyMaterial> {
        let (secret, public): (Vec<u8>, Option<Vec<u8>>) = match spec.family() {
            KeyFamily::Aes | KeyFamily::Hmac | KeyFamily::Secret => {
                let len = spec.symmetric_len().unwrap_or(32);
                return Ok(KeyMaterial {
                    secret: self.random(len)?,
                    public_spki: None,
                    public_only: false,
                });
            }
            KeyFamily::ChaCha20 => {
                return Ok(KeyMaterial {
                    secret: self.random(legacy::CHACHA_KEY_LEN)?,
                    public_spki: None,
                    public_only: false,
                });
            }
            KeyFamily::TripleDes => {
                // Three DES keys with their parity bits set, drawn again in the (2^-56)
                // case that two adjacent ones are equal.
                loop {
                    let mut k = self.random(legacy::TDES_KEY_LEN)?;
                    legacy::set_odd_parity(&mut k);
                    if legacy::check_tdes_key("material", &k).is_ok() {
                        return Ok(KeyMaterial {
                            secret: k,
                            public_spki: None,
                            public_only: false,
                        });
                    }
                }
            }
            KeyFamily::Dsa => {
                let (pkcs8, spki) = crate::dsa::generate(spec)?;
                return Ok(KeyMaterial {
                    secret: pkcs8,
                    public_spki: Some(spki),
                    public_only: false,
                });
            }
            KeyFamily::Rsa if rsa_bits(spec) < 2048 => {
                // Below aws-lc-rs's smallest size: generated by aws-lc itself.
                let (der, spki) = RsaKey::generate(rsa_bits(spec))?;
                return Ok(KeyMaterial {
                    secret: der,
                    public_spki: Some(spki),
                    public_only: false,
                });
            }
            KeyFamily::Rsa => {
                let kp =
                    rsa::KeyPair::generate(rsa_size(spec)).map_err(|_| internal("RSA keygen"))?;
                let der = kp.as_der().map_err(|_| internal("RSA PKCS#8"))?;
                let spki = kp.public_key().as_der().map_err(|_| internal("RSA SPKI"))?;
                (der.as_ref().to_vec(), Some(spki.as_ref().to_vec()))
            }
            KeyFamily::Ec => {
                let kp = EcdsaKeyPair::generate(ecdsa_signing(spec))
                    .map_err(|_| internal("EC keygen"))?;
                let der = kp.to_pkcs8v1().map_err(|_| internal("EC PKCS#8"))?;
                let spki = kp.public_key().as_der().map_err(|_| internal("EC SPKI"))?;
                (der.as_ref().to_vec(), Some(spki.as_ref().to_vec()))
            }
            KeyFamily::Ed25519 => {
                let kp = Ed25519KeyPair::generate().map_err(|_| internal("Ed25519 keygen"))?;
                let der = kp.to_pkcs8v1().map_err(|_| internal("Ed25519 PKCS#8"))?;
                let spki = kp
                    .public_key()
                    .as_der()
                    .map_err(|_| internal("Ed25519 SPKI"))?;
                (der.as_ref().to_vec(), Some(spki.as_ref().to_vec()))
            }
            KeyFamily::MlDsa => {
                let kp = PqdsaKeyPair::generate(mldsa_signing(spec))
                    .map_err(|_| internal("ML-DSA keygen"))?;
                let der = kp.to_pkcs8v1().map_err(|_| internal("ML-DSA PKCS#8"))?;
                let spki = kp
                    .public_key()
                    .as_der()
                    .map_err(|_| internal("ML-DSA SPKI"))?;
                (der.as_ref().to_vec(), Some(spki.as_ref().to_vec()))
            }
            KeyFamily::MlKem => {
                let dk = DecapsulationKey::generate(mlkem_alg(spec))
                    .map_err(|_| internal("ML-KEM keygen"))?;
                let ek = dk.encapsulation_key().map_err(|_| internal("ML-KEM ek"))?;
                let ek_bytes = ek.key_bytes().map_err(|_| internal("ML-KEM ek bytes"))?;
                let dk_bytes = dk.key_bytes().map_err(|_| internal("ML-KEM dk bytes"))?;
                (
                    dk_bytes.as_ref().to_vec(),
                    Some(der::mlkem_spki(spec, ek_bytes.as_ref())),
                )
            }
        };
        Ok(KeyMaterial {
            secret: Zeroizing::new(secret),
            public_spki: public,
            public_only: false,
        })
    }

    fn import(&self, spec: KeySpec, field: &str, bytes: &[u8]) -> Result<KeyMaterial> {
        if spec.family() == KeyFamily::Secret {
            if bytes.is_empty() || bytes.len() > MAX_SECRET_DATA {
                return Err(rejected(
                    field,
                    spec,
                    &format!("secret data is 1 to {MAX_SECRET_DATA} bytes"),
                ));
            }
            return Ok(KeyMaterial {
                secret: Zeroizing::new(bytes.to_vec()),
                public_spki: None,
                public_only: false,
            });
        }
        if spec.family() == KeyFamily::TripleDes {
            legacy::check_tdes_key(field, bytes)?;
        }
        if let Some(len) = spec.symmetric_len() {
            if bytes.len() != len {
                return Err(rejected(
                    field,
                    spec,
                    &format!("expected {len} raw bytes, got {}", bytes.len()),
                ));
            }
            return Ok(KeyMaterial {
                secret: Zeroizing::new(bytes.to_vec()),
                public_spki: None,
                public_only: false,
            });
        }
        let (der, tag) = maybe_pem(field, bytes)?;
        let public_hint = tag.as_deref() == Some("PUBLIC KEY");
        if !public_hint {
            if let Ok(m) = self.import_private(spec, field, &der) {
                return Ok(m);
            }
        }
        match self.import_public(spec, &der) {
            Ok(spki) => Ok(KeyMaterial {
                secret: Zeroizing::new(Vec::new()),
                public_spki: Some(spki),
                public_only: true,
            }),
            Err(_) if !public_hint => self.import_private(spec, field, &der),
            Err(e) => Err(rejected(field, spec, &e)),
        }
    }

    fn load(&self, spec: KeySpec, m: &KeyMaterial) -> Result<Arc<dyn KeyHandle>> {
        let bad = || internal("stored material does not load");
        let inner = match spec.family() {
            KeyFamily::Aes => {
                let k = UnboundKey::new(aead_alg(spec), &m.secret).map_err(|_| bad())?;
                Inner::Aes {
                    gcm: LessSafeKey::new(k),
                    raw: Zeroizing::new(m.secret.to_vec()),
                }
            }
            KeyFamily::Hmac => Inner::Hmac(Box::new(hmac::Key::new(hmac_alg(spec), &m.secret))),
            KeyFamily::Secret => Inner::Secret,
            KeyFamily::TripleDes | KeyFamily::ChaCha20 => {
                if Some(m.secret.len()) != spec.symmetric_len() {
                    return Err(bad());
                }
                Inner::Legacy(Zeroizing::new(m.secret.to_vec()))
            }
            KeyFamily::Dsa => Inner::Dsa {
                pkcs8: (!m.public_only).then(|| Zeroizing::new(m.secret.to_vec())),
                spki: m.public_spki.clone().ok_or_else(bad)?,
            },
            KeyFamily::Rsa => {
                let spki = m.public_spki.as_deref().ok_or_else(bad)?;
                let evp = if m.public_only {
                    RsaKey::from_spki(spki)
                } else {
                    RsaKey::from_pkcs8(&m.secret)
                }
                .ok_or_else(bad)?;
                // aws-lc-rs takes RSA keys of 2048 bits and more; a legacy RSA-1024 key
                // does everything through `evp`.
                let (sign, dec, enc) = if evp.bits() < 2048 {
                    (None, None, None)
                } else {
                    let public = PublicEncryptingKey::from_der(spki).map_err(|_| bad())?;
                    let enc = OaepPublicEncryptingKey::new(public).map_err(|_| bad())?;
                    if m.public_only {
                        (None, None, Some(enc))
                    } else {
                        let kp = rsa::KeyPair::from_pkcs8(&m.secret).map_err(|_| bad())?;
                        let pd = PrivateDecryptingKey::from_pkcs8(&m.secret).map_err(|_| bad())?;
                        (
                            Some(kp),
                            Some(OaepPrivateDecryptingKey::new(pd).map_err(|_| bad())?),
                            Some(enc),
                        )
                    }
                };
                Inner::Rsa {
                    sign,
                    dec,
                    enc,
                    evp,
                    spki: spki.to_vec(),
                }
            }
            KeyFamily::Ec => {
                let spki = m.public_spki.clone().ok_or_else(bad)?;
                let pair = if m.public_only {
                    None
                } else {
                    Some(
                        EcdsaKeyPair::from_pkcs8(ecdsa_signing(spec), &m.secret)
                            .map_err(|_| bad())?,
                    )
                };
                Inner::Ec { pair, spki }
            }
            KeyFamily::Ed25519 => {
                let spki = m.public_spki.clone().ok_or_else(bad)?;
                let pair = if m.public_only {
                    None
                } else {
                    Some(Ed25519KeyPair::from_pkcs8_maybe_unchecked(&m.secret).map_err(|_| bad())?)
                };
                Inner::Ed { pair, spki }
            }
            KeyFamily::MlDsa => {
                let spki = m.public_spki.clone().ok_or_else(bad)?;
                let pair = if m.public_only {
                    None
                } else {
                    Some(
                        PqdsaKeyPair::from_pkcs8(mldsa_signing(spec), &m.secret)
                            .map_err(|_| bad())?,
                    )
                };
                Inner::MlDsa { pair, spki }
            }
            KeyFamily::MlKem => {
                let spki = m.public_spki.clone().ok_or_else(bad)?;
                let raw = der::mlkem_raw_from_spki(spec, &spki).ok_or_else(bad)?;
                let ek = EncapsulationKey::new(mlkem_alg(spec), raw).map_err(|_| bad())?;
                let dk = if m.public_only {
                    None
                } else {
                    Some(DecapsulationKey::new(mlkem_alg(spec), &m.secret).map_err(|_| bad())?)
                };
                Inner::MlKem { dk, ek }
            }
        };
        Ok(Arc::new(SoftwareKey {
            spec,
            public_only: m.public_only,
            inner,
        }))
    }

    fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        SystemRandom::new()
            .fill(&mut out)
            .map_err(|_| internal("random"))?;
        Ok(out)
    }
}

impl SoftwareProvider {
    fn import_private(&self, spec: KeySpec, field: &str, der: &[u8]) -> Result<KeyMaterial> {
        let no = |why: &str| rejected(field, spec, why);
        let (secret, spki) = match spec.family() {
            KeyFamily::Rsa if rsa_bits(spec) < 2048 => {
                let k = RsaKey::from_pkcs8(der).ok_or_else(|| {
                    no("expected an RSA PKCS#8 private key or an SPKI public key")
                })?;
                if k.bits() != rsa_bits(spec) {
                    return Err(no(&format!(
                        "the modulus is {} bits, the spec says {}",
                        k.bits(),
                        rsa_bits(spec)
                    )));
                }
                let d = k.pkcs8()?;
                (d.to_vec(), k.spki()?)
            }
            KeyFamily::Rsa => {
                let kp = rsa::KeyPair::from_pkcs8(der)
                    .map_err(|_| no("expected an RSA PKCS#8 private key or an SPKI public key"))?;
                if kp.public_modulus_len() * 8 != rsa_bits(spec) {
                    return Err(no(&format!(
                        "the modulus is {} bits, the spec says {}",
                        kp.public_modulus_len() * 8,
                        rsa_bits(spec)
                    )));
                }
                let spki = kp.public_key().as_der().map_err(|_| internal("RSA SPKI"))?;
                let d = kp.as_der().map_err(|_| internal("RSA PKCS#8"))?;
                (d.as_ref().to_vec(), spki.as_ref().to_vec())
            }
            KeyFamily::Dsa => {
                let (pkcs8, spki) = crate::dsa::import_private(spec, der).map_err(|e| no(&e))?;
                return Ok(KeyMaterial {
                    secret: pkcs8,
                    public_spki: Some(spki),
                    public_only: false,
                });
            }
            KeyFamily::Ec => {
                let kp = EcdsaKeyPair::from_pkcs8(ecdsa_signing(spec), der).map_err(|_| {
                    no("expected a PKCS#8 private key on this curve or an SPKI public key")
                })?;
                let spki = kp.public_key().as_der().map_err(|_| internal("EC SPKI"))?;
                let d = kp.to_pkcs8v1().map_err(|_| internal("EC PKCS#8"))?;
                (d.as_ref().to_vec(), spki.as_ref().to_vec())
            }
            KeyFamily::Ed25519 => {
                let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| {
                    no("expected an Ed25519 PKCS#8 private key or an SPKI public key")
                })?;
                let spki = kp
                    .public_key()
                    .as_der()
                    .map_err(|_| internal("Ed25519 SPKI"))?;
                let d = kp.to_pkcs8v1().map_err(|_| internal("Ed25519 PKCS#8"))?;
                (d.as_ref().to_vec(), spki.as_ref().to_vec())
            }
            KeyFamily::MlDsa => {
                let kp = PqdsaKeyPair::from_pkcs8(mldsa_signing(spec), der).map_err(|_| {
                    no("expected an ML-DSA PKCS#8 private key or an SPKI public key")
                })?;
                let spki = kp
                    .public_key()
                    .as_der()
                    .map_err(|_| internal("ML-DSA SPKI"))?;
                let d = kp.to_pkcs8v1().map_err(|_| internal("ML-DSA PKCS#8"))?;
                (d.as_ref().to_vec(), spki.as_ref().to_vec())
            }
            KeyFamily::MlKem => {
                let k = mlkem_k(spec);
                let dk = DecapsulationKey::new(mlkem_alg(spec), der).map_err(|_| {
                    no("expected a raw FIPS 203 decapsulation key or an SPKI public key")
                })?;
                drop(dk);
                let ek = &der[384 * k..384 * k + 384 * k + 32];
                EncapsulationKey::new(mlkem_alg(spec), ek)
                    .map_err(|_| no("the embedded encapsulation key is not valid"))?;
                (der.to_vec(), der::mlkem_spki(spec, ek))
            }
            KeyFamily::Aes
            | KeyFamily::Hmac
            | KeyFamily::Secret
            | KeyFamily::TripleDes
            | KeyFamily::ChaCha20 => return Err(internal("symmetric import path")),
        };
        Ok(KeyMaterial {
            secret: Zeroizing::new(secret),
            public_spki: Some(spki),
            public_only: false,
        })
    }

    fn import_public(&self, spec: KeySpec, der: &[u8]) -> std::result::Result<Vec<u8>, String> {
        match spec.family() {
            KeyFamily::Secret => Err("secret data has no public part".into()),
            KeyFamily::Dsa => crate::dsa::import_public(spec, der),
            KeyFamily::Rsa if rsa_bits(spec) < 2048 => {
                let k = RsaKey::from_spki(der).ok_or_else(|| {
                    "expected an RSA SPKI public key or a PKCS#8 private key".to_string()
                })?;
                if k.bits() != rsa_bits(spec) {
                    return Err(format!(
                        "the modulus is {} bits, the spec says {}",
                        k.bits(),
                        rsa_bits(spec)
                    ));
                }
                k.spki().map_err(|_| "cannot encode SPKI".to_string())
            }
            KeyFamily::Rsa => {
                let pk = PublicEncryptingKey::from_der(der).map_err(|_| {
                    "expected an RSA SPKI public key or a PKCS#8 private key".to_string()
                })?;
                if pk.key_size_bits() != rsa_bits(spec) {
                    return Err(format!(
                        "the modulus is {} bits, the spec says {}",
                        pk.key_size_bits(),
                        rsa_bits(spec)
                    ));
                }
                let spki = pk.as_der().map_err(|_| "cannot encode SPKI".to_string())?;
                Ok(spki.as_ref().to_vec())
            }
            KeyFamily::Ec | KeyFamily::Ed25519 | KeyFamily::MlDsa => {
                let alg: &'static dyn signature::VerificationAlgorithm = match spec.family() {
                    KeyFamily::Ec => ecdsa_verify(spec),
                    KeyFamily::Ed25519 => &signature::ED25519,
                    _ => mldsa_verify(spec),
                };
                if !der::is_spki(der) {
                    return Err("expected an SPKI public key or a PKCS#8 private key".into());
                }
                let parsed = signature::UnparsedPublicKey::new(alg, der)
                    .parse()
                    .map_err(|_| "the public key does not match the spec".to_string())?;
                let spki = parsed
                    .as_der()
                    .map_err(|_| "cannot encode SPKI".to_string())?;
                Ok(spki.as_ref().to_vec())
            }
            KeyFamily::MlKem => {
                let raw = der::mlkem_raw_from_spki(spec, der)
                    .ok_or("expected an ML-KEM SPKI public key or a raw decapsulation key")?;
                EncapsulationKey::new(mlkem_alg(spec), raw)
                    .map_err(|_| "the public key does not match the spec".to_string())?;
                Ok(der.to_vec())
            }
            KeyFamily::Aes | KeyFamily::Hmac | KeyFamily::TripleDes | KeyFamily::ChaCha20 => {
                Err("symmetric keys have no public half".into())
            }
        }
    }
}

enum Inner {
    /// The GCM key for Arca's own ciphertexts, and the bytes for the raw modes (KMIP's
    /// CBC, ECB, CTR and caller-IV GCM), which aws-lc-rs keys per call.
    Aes {
        gcm: LessSafeKey,
        raw: Zeroizing<Vec<u8>>,
    },
    Hmac(Box<hmac::Key>),
    /// aws-lc-rs's objects (none for a key under 2048 bits, which aws-lc-rs refuses) for
    /// the common parameters, and the same key in [`RsaKey`] for the others.
    Rsa {
        sign: Option<rsa::KeyPair>,
        dec: Option<OaepPrivateDecryptingKey>,
        enc: Option<OaepPublicEncryptingKey>,
        evp: RsaKey,
        spki: Vec<u8>,
    },
    Ec {
        pair: Option<EcdsaKeyPair>,
        spki: Vec<u8>,
    },
    Ed {
        pair: Option<Ed25519KeyPair>,
        spki: Vec<u8>,
    },
    MlDsa {
        pair: Option<PqdsaKeyPair>,
        spki: Vec<u8>,
    },
    MlKem {
        dk: Option<DecapsulationKey<AlgorithmId>>,
        ek: EncapsulationKey<AlgorithmId>,
    },
    /// Secret data: kept for export, used for nothing.
    Secret,
    /// The bytes of a Triple DES or ChaCha20 key, which [`crate::legacy`] keys per call.
    Legacy(Zeroizing<Vec<u8>>),
    /// A DSA key's DER (PKCS#8 unless public-only, and SPKI), which [`crate::dsa`] parses
    /// per call.
    Dsa {
        pkcs8: Option<Zeroizing<Vec<u8>>>,
        spki: Vec<u8>,
    },
}

/// The [`RsaKey`] scheme of an RSA signing algorithm and the digest to sign: the message
/// hashed, or the caller's digest checked for length.
fn evp_scheme(
    alg: SigningAlgorithm,
    salt: PssSalt,
    kind: MessageType,
    msg: &[u8],
) -> Result<(RsaScheme, Vec<u8>)> {
    use SigningAlgorithm::*;
    let (hash, pss) = match alg {
        RsassaPssSha1 => (RsaHash::Sha1, true),
        RsassaPssSha256 => (RsaHash::Sha256, true),
        RsassaPssSha384 => (RsaHash::Sha384, true),
        RsassaPssSha512 => (RsaHash::Sha512, true),
        RsassaPkcs1V15Sha256 => (RsaHash::Sha256, false),
        RsassaPkcs1V15Sha384 => (RsaHash::Sha384, false),
        RsassaPkcs1V15Sha512 => (RsaHash::Sha512, false),
        _ => return Err(internal("RSA scheme")),
    };
    let scheme = if pss {
        RsaScheme::Pss(hash, salt)
    } else if salt != PssSalt::HashLength {
        return Err(salt_not_pss(alg));
    } else {
        RsaScheme::Pkcs1(hash)
    };
    let digest = match kind {
        MessageType::Raw => hash.digest(msg),
        MessageType::Digest if msg.len() == hash.output_len() => msg.to_vec(),
        MessageType::Digest => {
            return Err(Error::invalid(
                "message",
                format!(
                    "a DIGEST message for {} must be {} bytes, got {}",
                    alg.as_str(),
                    hash.output_len(),
                    msg.len()
                ),
            ))
        }
    };
    Ok((scheme, digest))
}

fn salt_not_pss(alg: SigningAlgorithm) -> Error {
    Error::invalid(
        "salt_length",
        format!(
            "a salt length applies to RSASSA-PSS only, not {}",
            alg.as_str()
        ),
    )
}

fn oaep_alg(h: OaepHash) -> &'static OaepAlgorithm {
    match h {
        OaepHash::Sha1 => &OAEP_SHA1_MGF1SHA1,
        OaepHash::Sha256 => &OAEP_SHA256_MGF1SHA256,
        OaepHash::Sha384 => &OAEP_SHA384_MGF1SHA384,
        OaepHash::Sha512 => &OAEP_SHA512_MGF1SHA512,
    }
}

/// A key loaded into aws-lc-rs objects (which cleanse their memory on drop).
pub struct SoftwareKey {
    spec: KeySpec,
    public_only: bool,
    inner: Inner,
}

impl SoftwareKey {
    /// The bytes of a legacy key, for a cipher of its own spec only.
    fn legacy_key(&self, cipher: LegacyCipher) -> Result<&[u8]> {
        match &self.inner {
            Inner::Legacy(k) if cipher.spec() == self.spec => Ok(k),
            _ => Err(Error::unsuitable_key(format!(
                "a {} key cannot run {cipher:?}",
                self.spec
            ))),
        }
    }

    /// An HMAC key made of an AES key's bytes.
    fn hmac_of_aes(&self, alg: MacAlgorithm) -> Result<hmac::Key> {
        let Inner::Aes { raw, .. } = &self.inner else {
            return Err(Error::unsuitable_key(format!(
                "a {} key computes no HMAC keyed by its bytes",
                self.spec
            )));
        };
        let a = match alg {
            MacAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
            MacAlgorithm::HmacSha384 => hmac::HMAC_SHA384,
            MacAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
        };
        Ok(hmac::Key::new(a, raw))
    }
}

/// Additional data is authenticated by ChaCha20-Poly1305 only.
fn no_aad_unless_aead(cipher: LegacyCipher, aad: &[u8]) -> Result<()> {
    if !aad.is_empty() && !matches!(cipher, LegacyCipher::ChaCha20Poly1305 { .. }) {
        return Err(Error::invalid(
            "aad",
            "only ChaCha20-Poly1305 authenticates additional data",
        ));
    }
    Ok(())
}

fn public_only_error(spec: KeySpec, what: &str) -> Error {
    Error::unsuitable_key(format!(
        "this {spec} key holds only a public key and cannot {what}"
    ))
}

impl KeyHandle for SoftwareKey {
    fn spec(&self) -> KeySpec {
        self.spec
    }

    fn public_only(&self) -> bool {
        self.public_only
    }

    fn aead_seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let Inner::Aes { gcm: k, .. } = &self.inner else {
            return Err(Error::unsuitable_key(format!(
                "a {} key cannot encrypt with AES-GCM",
                self.spec
            )));
        };
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| internal("random"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = k
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| internal("AES-GCM seal"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    fn aead_open(&self, aad: &[u8], body: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let Inner::Aes { gcm: k, .. } = &self.inner else {
            return Err(Error::unsuitable_key(format!(
                "a {} key cannot decrypt with AES-GCM",
                self.spec
            )));
        };
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::bad_ciphertext("ciphertext", "too short"));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&body[..NONCE_LEN]);
        let mut buf = Zeroizing::new(body[NONCE_LEN..].to_vec());
        let n = k
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| {
                Error::bad_ciphertext("ciphertext",
                    "the ciphertext does not authenticate: it was altered, or the encryption context or AAD differ from those used to encrypt",
                )
            })?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    fn oaep_encrypt_with(&self, hash: OaepHash, plaintext: &[u8]) -> Result<Vec<u8>> {
        let alg = oaep_alg(hash);
        let Inner::Rsa { enc, evp, .. } = &self.inner else {
            return Err(Error::unsuitable_key(format!(
                "a {} key cannot encrypt with RSA-OAEP",
                self.spec
            )));
        };
        let Some(enc) = enc else {
            return evp.oaep_encrypt(&OaepParams::plain(hash), plaintext);
        };
        if plaintext.len() > enc.max_plaintext_size(alg) {
            return Err(Error::invalid(
                "plaintext",
                format!(
                    "at most {} bytes for RSA-OAEP-{hash:?} with this key",
                    enc.max_plaintext_size(alg)
                ),
            ));
        }
        let mut out = vec![0u8; enc.ciphertext_size()];
        let n = enc
            .encrypt(alg, plaintext, &mut out, None)
            .map_err(|_| internal("RSA-OAEP encrypt"))?
            .len();
        out.truncate(n);
        Ok(out)
    }

    fn oaep_decrypt_with(&self, hash: OaepHash, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let alg = oaep_alg(hash);
        let Inner::Rsa { dec, enc, evp, .. } = &self.inner else {
            return Err(Error::unsuitable_key(format!(
                "a {} key cannot decrypt with RSA-OAEP",
                self.spec
            )));
        };
        if self.public_only {
            return Err(public_only_error(self.spec, "decrypt"));
        }
        if enc.is_none() {
            return evp.oaep_decrypt(&OaepParams::plain(hash), ciphertext);
        }
        let dec = dec
            .as_ref()
            .ok_or_else(|| public_only_error(self.spec, "decrypt"))?;
        let mut out = Zeroizing::new(vec![0u8; dec.min_output_size()]);
        let n = dec
            .decrypt(alg, ciphertext, &mut out, None)
            .map_err(|_| {
                Error::bad_ciphertext(
                    "ciphertext",
                    "the RSA-OAEP ciphertext does not decrypt with this key version",
                )
            })?
            .len();
        out.truncate(n);
        Ok(out)
    }

    fn oaep_encrypt_params(&self, p: &OaepParams, plaintext: &[u8]) -> Result<Vec<u8>> {
        match &self.inner {
            Inner::Rsa { evp, .. } if !p.is_plain() => evp.oaep_encrypt(p, plaintext),
            _ => self.oaep_encrypt_with(p.hash, plaintext),
        }
    }

    fn oaep_decrypt_params(&self, p: &OaepParams, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match &self.inner {
            Inner::Rsa { .. } if self.public_only => Err(public_only_error(self.spec, "decrypt")),
            Inner::Rsa { evp, .. } if !p.is_plain() => evp.oaep_decrypt(p, ciphertext),
            _ => self.oaep_decrypt_with(p.hash, ciphertext),
        }
    }

    fn sign_with_salt(
        &self,
        alg: SigningAlgorithm,
        salt: PssSalt,
        kind: MessageType,
        msg: &[u8],
    ) -> Result<Vec<u8>> {
        match &self.inner {
            Inner::Rsa { sign, evp, .. } => {
                check_alg_for_spec(self.spec, alg)?;
                if self.public_only {
                    return Err(public_only_error(self.spec, "sign"));
                }
                if salt == PssSalt::HashLength && sign.is_some() && rsa_encoding(alg).is_some() {
                    return self.sign(alg, kind, msg);
                }
                let (scheme, digest) = evp_scheme(alg, salt, kind, msg)?;
                evp.sign(scheme, &digest)
            }
            _ if salt == PssSalt::HashLength => self.sign(alg, kind, msg),
            _ => Err(salt_not_pss(alg)),
        }
    }

    fn verify_with_salt(
        &self,
        alg: SigningAlgorithm,
        salt: PssSalt,
        kind: MessageType,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool> {
        match &self.inner {
            Inner::Rsa { enc, evp, .. } => {
                check_alg_for_spec(self.spec, alg)?;
                if salt == PssSalt::HashLength && enc.is_some() && rsa_verification(alg).is_some() {
                    return self.verify(alg, kind, msg, sig);
                }
                let (scheme, digest) = evp_scheme(alg, salt, kind, msg)?;
                evp.verify(scheme, &digest, sig)
            }
            _ if salt == PssSalt::HashLength => self.verify(alg, kind, msg, sig),
            _ => Err(salt_not_pss(alg)),
        }
    }

    fn raw_encrypt(
        &self,
        mode: RawMode,
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let Inner::Aes { raw, .. } = &self.inner else {
            return Err(Error::unsuitable_key(format!(
                "a {} key cannot encrypt with AES modes",
                self.spec
            )));
        };
        crate::raw::encrypt(raw, mode, iv, aad, plaintext)
    }

    fn key_wrap(&self, padded: bool, material: &[u8]) -> Result<Vec<u8>> {
        let Inner::Aes { raw, .. } = &self.inner else {
            return Err(Error::unprocessable(
                "wrapping_key",
                format!("a {} key cannot wrap with AES Key Wrap", self.spec),
            ));
        };
        crate::raw::key_wrap(raw, padded, material)
    }

    fn key_unwrap(&self, padded: bool, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let Inner::Aes { raw, .. } = &self.inner else {
            return Err(Error::unprocessable(
                "wrapping_key",
                format!("a {} key cannot unwrap with AES Key Wrap", self.spec),
            ));
        };
        crate::raw::key_unwrap(raw, padded, wrapped)
    }

    fn raw_decrypt(
        &self,
        mode: RawMode,
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let Inner::Aes { raw, .. } = &self.inner else {
            return Err(Error::unsuitable_key(format!(
                "a {} key cannot decrypt with AES modes",
                self.spec
            )));
        };
        crate::raw::decrypt(raw, mode, iv, aad, ciphertext, tag)
    }

    fn sign(&self, alg: SigningAlgorithm, kind: MessageType, msg: &[u8]) -> Result<Vec<u8>> {
        check_alg_for_spec(self.spec, alg)?;
        match &self.inner {
            Inner::Rsa { sign, evp, .. } => {
                if self.public_only {
                    return Err(public_only_error(self.spec, "sign"));
                }
                let (Some(kp), Some(enc)) = (sign.as_ref(), rsa_encoding(alg)) else {
                    let (scheme, digest) = evp_scheme(alg, PssSalt::HashLength, kind, msg)?;
                    return evp.sign(scheme, &digest);
                };
                let mut sig = vec![0u8; kp.public_modulus_len()];
                match kind {
                    MessageType::Raw => kp.sign(enc, &SystemRandom::new(), msg, &mut sig),
                    MessageType::Digest => kp.sign_digest(enc, &import_digest(alg, msg)?, &mut sig),
                }
                .map_err(|_| internal("RSA sign"))?;
                Ok(sig)
            }
            Inner::Ec { pair, .. } => {
                let kp = pair
                    .as_ref()
                    .ok_or_else(|| public_only_error(self.spec, "sign"))?;
                let sig = match kind {
                    MessageType::Raw => kp.sign(&SystemRandom::new(), msg),
                    MessageType::Digest => kp.sign_digest(&import_digest(alg, msg)?),
                }
                .map_err(|_| internal("ECDSA sign"))?;
                Ok(sig.as_ref().to_vec())
            }
            Inner::Ed { pair, .. } => {
                let kp = pair
                    .as_ref()
                    .ok_or_else(|| public_only_error(self.spec, "sign"))?;
                if kind == MessageType::Digest {
                    import_digest(alg, msg)?;
                }
                Ok(kp.sign(msg).as_ref().to_vec())
            }
            Inner::MlDsa { pair, .. } => {
                let kp = pair
                    .as_ref()
                    .ok_or_else(|| public_only_error(self.spec, "sign"))?;
                if kind == MessageType::Digest {
                    import_digest(alg, msg)?;
                }
                let mut sig = vec![0u8; kp.algorithm().signature_len()];
                let n = kp
                    .sign(msg, &mut sig)
                    .map_err(|_| internal("ML-DSA sign"))?;
                sig.truncate(n);
                Ok(sig)
            }
            Inner::Dsa { pkcs8, .. } => {
                let pkcs8 = pkcs8
                    .as_ref()
                    .ok_or_else(|| public_only_error(self.spec, "sign"))?;
                crate::dsa::sign(pkcs8, &dsa_digest(alg, kind, msg)?)
            }
            _ => Err(Error::unsuitable_key(format!(
                "a {} key cannot sign",
                self.spec
            ))),
        }
    }

    fn verify(
        &self,
        alg: SigningAlgorithm,
        kind: MessageType,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool> {
        check_alg_for_spec(self.spec, alg)?;
        if let Inner::Dsa { spki, .. } = &self.inner {
            return crate::dsa::verify(spki, &dsa_digest(alg, kind, msg)?, sig);
        }
        let (valg, spki): (&'static dyn signature::VerificationAlgorithm, &[u8]) = match &self.inner
        {
            Inner::Rsa { spki, enc, evp, .. } => match (enc, rsa_verification(alg)) {
                (Some(_), Some(params)) => (params, spki),
                _ => {
                    let (scheme, digest) = evp_scheme(alg, PssSalt::HashLength, kind, msg)?;
                    return evp.verify(scheme, &digest, sig);
                }
            },
            Inner::Ec { spki, .. } => (ecdsa_verify(self.spec), spki),
            Inner::Ed { spki, .. } => (&signature::ED25519, spki),
            Inner::MlDsa { spki, .. } => (mldsa_verify(self.spec), spki),
            _ => {
                return Err(Error::unsuitable_key(format!(
                    "a {} key cannot verify signatures",
                    self.spec
                )))
            }
        };
        let pk = signature::UnparsedPublicKey::new(valg, spki);
        let ok = match kind {
            MessageType::Raw => pk.verify(msg, sig).is_ok(),
            MessageType::Digest => pk.verify_digest(&import_digest(alg, msg)?, sig).is_ok(),
        };
        Ok(ok)
    }

    fn mac(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let Inner::Hmac(k) = &self.inner else {
            return Err(Error::unsuitable_key(format!(
                "a {} key cannot generate a MAC",
                self.spec
            )));
        };
        Ok(hmac::sign(k, msg).as_ref().to_vec())
    }

    fn mac_verify(&self, msg: &[u8], mac: &[u8]) -> Result<bool> {
        let Inner::Hmac(k) = &self.inner else {
            return Err(Error::unsuitable_key(format!(
                "a {} key cannot verify a MAC",
                self.spec
            )));
        };
        let expected = hmac::sign(k, msg);
        Ok(constant_time::verify_slices_are_equal(expected.as_ref(), mac).is_ok())
    }

    fn legacy_encrypt(
        &self,
        cipher: LegacyCipher,
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let key = self.legacy_key(cipher)?;
        no_aad_unless_aead(cipher, aad)?;
        match cipher {
            LegacyCipher::TripleDes { cbc, pkcs7 } => Ok((
                legacy::triple_des(key, cbc, pkcs7, iv, plaintext, true)?.to_vec(),
                vec![],
            )),
            LegacyCipher::ChaCha20 { initial_counter } => Ok((
                legacy::chacha20(key, iv, initial_counter, plaintext)?.to_vec(),
                vec![],
            )),
            LegacyCipher::ChaCha20Poly1305 { tag_len } => {
                legacy::chacha20_poly1305_seal(key, iv, aad, plaintext, tag_len)
            }
        }
    }

    fn legacy_decrypt(
        &self,
        cipher: LegacyCipher,
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let key = self.legacy_key(cipher)?;
        no_aad_unless_aead(cipher, aad)?;
        match cipher {
            LegacyCipher::TripleDes { cbc, pkcs7 } => {
                legacy::triple_des(key, cbc, pkcs7, iv, ciphertext, false)
            }
            LegacyCipher::ChaCha20 { initial_counter } => {
                legacy::chacha20(key, iv, initial_counter, ciphertext)
            }
            LegacyCipher::ChaCha20Poly1305 { tag_len } => {
                if tag.len() != tag_len {
                    return Err(Error::invalid(
                        "tag",
                        format!("the tag is {} bytes, not the {tag_len} named", tag.len()),
                    ));
                }
                legacy::chacha20_poly1305_open(key, iv, aad, ciphertext, tag)
            }
        }
    }

    fn hmac_with(&self, alg: MacAlgorithm, msg: &[u8]) -> Result<Vec<u8>> {
        let k = self.hmac_of_aes(alg)?;
        Ok(hmac::sign(&k, msg).as_ref().to_vec())
    }

    fn hmac_verify_with(&self, alg: MacAlgorithm, msg: &[u8], mac: &[u8]) -> Result<bool> {
        let k = self.hmac_of_aes(alg)?;
        let expected = hmac::sign(&k, msg);
        Ok(constant_time::verify_slices_are_equal(expected.as_ref(), mac).is_ok())
    }

    fn encapsulate(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        let Inner::MlKem { ek, .. } = &self.inner else {
            return Err(Error::unsuitable_key(format!(
                "a {} key cannot encapsulate",
                self.spec
            )));
        };
        let (ct, ss) = ek
            .encapsulate()
            .map_err(|_| internal("ML-KEM encapsulate"))?;
        Ok((ct.as_ref().to_vec(), Zeroizing::new(ss.as_ref().to_vec())))
    }

    fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let Inner::MlKem { dk, .. } = &self.inner else {
            return Err(Error::unsuitable_key(format!(
                "a {} key cannot decapsulate",
                self.spec
            )));
        };
        let dk = dk
            .as_ref()
            .ok_or_else(|| public_only_error(self.spec, "decapsulate"))?;
        let ss = dk
            .decapsulate(kem::Ciphertext::from(ciphertext))
            .map_err(|_| {
                Error::invalid("ciphertext", "not a valid ML-KEM ciphertext for this key")
            })?;
        Ok(Zeroizing::new(ss.as_ref().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_generates_loads_and_works() {
        let p = SoftwareProvider;
        for spec in KeySpec::ALL {
            if spec == KeySpec::Dsa512 {
                // Registered, never generated.
                assert!(p.generate(spec).is_err());
                continue;
            }
            let m = p.generate(spec).unwrap();
            let h = p.load(spec, &m).unwrap();
            match spec.family() {
                KeyFamily::Aes => {
                    // RFC 4231 keys HMAC with any bytes; an AES key's are as good as any.
                    let mac = h.hmac_with(MacAlgorithm::HmacSha256, b"m").unwrap();
                    let direct = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &m.secret), b"m");
                    assert_eq!(mac, direct.as_ref());
                    assert!(h
                        .hmac_verify_with(MacAlgorithm::HmacSha256, b"m", &mac)
                        .unwrap());
                    assert!(!h
                        .hmac_verify_with(MacAlgorithm::HmacSha384, b"m", &mac)
                        .unwrap());
                    let ct = h.aead_seal(b"aad", b"hello").unwrap();
                    assert_eq!(&h.aead_open(b"aad", &ct).unwrap()[..], b"hello");
                    assert!(h.aead_open(b"other", &ct).is_err());
                }
                KeyFamily::Hmac => {
                    let mac = h.mac(b"m").unwrap();
                    assert!(h.mac_verify(b"m", &mac).unwrap());
                    assert!(!h.mac_verify(b"n", &mac).unwrap());
                }
                KeyFamily::MlKem => {
                    let (ct, ss) = h.encapsulate().unwrap();
                    assert_eq!(h.decapsulate(&ct).unwrap(), ss);
                }
                KeyFamily::TripleDes => {
                    let c = LegacyCipher::TripleDes {
                        cbc: true,
                        pkcs7: true,
                    };
                    let (ct, _) = h.legacy_encrypt(c, &[1; 8], b"", b"hello").unwrap();
                    assert_eq!(
                        &h.legacy_decrypt(c, &[1; 8], b"", &ct, b"").unwrap()[..],
                        b"hello"
                    );
                    assert!(m.secret.iter().all(|b| b.count_ones() % 2 == 1));
                    assert!(h.aead_seal(b"", b"x").is_err());
                }
                KeyFamily::ChaCha20 => {
                    let c = if spec == KeySpec::ChaCha20 {
                        LegacyCipher::ChaCha20 { initial_counter: 0 }
                    } else {
                        LegacyCipher::ChaCha20Poly1305 { tag_len: 16 }
                    };
                    let (ct, tag) = h.legacy_encrypt(c, &[2; 12], b"", b"hello").unwrap();
                    assert_eq!(
                        &h.legacy_decrypt(c, &[2; 12], b"", &ct, &tag).unwrap()[..],
                        b"hello"
                    );
                    assert!(h
                        .legacy_encrypt(
                            LegacyCipher::TripleDes {
                                cbc: false,
                                pkcs7: true
                            },
                            &[],
                            b"",
                            b"x"
                        )
                        .is_err());
                }
                KeyFamily::Secret => {
                    // Kept and exported, used for nothing.
                    assert_eq!(m.secret.len(), 32);
                    assert!(h.aead_seal(b"", b"x").is_err());
                    assert!(h.mac(b"x").is_err());
                    assert!(p.import(spec, "material", b"").is_err());
                    assert_eq!(
                        &p.import(spec, "material", b"password").unwrap().secret[..],
                        b"password"
                    );
                }
                _ => {
                    let alg = SigningAlgorithm::for_spec(spec)[0];
                    let sig = h.sign(alg, MessageType::Raw, b"msg").unwrap();
                    assert!(
                        h.verify(alg, MessageType::Raw, b"msg", &sig).unwrap(),
                        "{spec}"
                    );
                    assert!(
                        !h.verify(alg, MessageType::Raw, b"msh", &sig).unwrap(),
                        "{spec}"
                    );
                    if let Some(d) = digest_alg(alg) {
                        let dg = digest::digest(d, b"msg");
                        assert!(h
                            .verify(alg, MessageType::Digest, dg.as_ref(), &sig)
                            .unwrap());
                        let sig2 = h.sign(alg, MessageType::Digest, dg.as_ref()).unwrap();
                        assert!(h.verify(alg, MessageType::Raw, b"msg", &sig2).unwrap());
                    }
                    if spec.family() == KeyFamily::Rsa {
                        let ct = h.oaep_encrypt(b"secret").unwrap();
                        assert_eq!(&h.oaep_decrypt(&ct).unwrap()[..], b"secret");
                    }
                }
            }
            // Re-import of what we stored gives the same public key and a working key.
            if spec.is_asymmetric() {
                let again = p.import(spec, "material", &m.secret).unwrap();
                assert_eq!(again.public_spki, m.public_spki, "{spec}");
                let pub_only = p
                    .import(spec, "material", m.public_spki.as_ref().unwrap())
                    .unwrap();
                assert!(pub_only.public_only);
                p.load(spec, &pub_only).unwrap();
            }
        }
    }

    #[test]
    fn import_rejects_wrong_material() {
        let p = SoftwareProvider;
        assert!(p.import(KeySpec::Aes256, "material", &[0u8; 16]).is_err());
        let rsa = p.generate(KeySpec::Rsa2048).unwrap();
        let e = p
            .import(KeySpec::Rsa3072, "material", &rsa.secret)
            .unwrap_err();
        assert_eq!(e.field(), Some("material"));
        assert!(p
            .import(KeySpec::EccNistP256, "material", b"garbage")
            .is_err());
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", rsa.secret.to_vec()));
        assert!(
            !p.import(KeySpec::Rsa2048, "material", pem.as_bytes())
                .unwrap()
                .public_only
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Import of arbitrary bytes (raw, DER or PEM-looking) never panics for any spec.
        #[test]
        fn import_never_panics(spec in 0usize..KeySpec::ALL.len(), bytes in proptest::collection::vec(any::<u8>(), 0..300), pem in any::<bool>()) {
            let spec = KeySpec::ALL[spec];
            let input = if pem {
                let mut v = b"-----BEGIN PRIVATE KEY-----\n".to_vec();
                v.extend_from_slice(&bytes);
                v
            } else {
                bytes
            };
            let _ = SoftwareProvider.import(spec, "material", &input);
        }
    }
}
