//! The `CryptoProvider` and `KeyHandle` traits: what the service asks of whatever performs
//! the cryptography, one provider per protection level: [`crate::SoftwareProvider`] for
//! SOFTWARE, [`crate::hsm::HsmProvider`] (PKCS#11) for HSM.
//!
//! A provider turns a spec into material (`generate_version`, `import`) and material into a
//! loaded [`KeyHandle`] (`load`). The service keeps handles in a bounded cache, so the hot
//! path never parses a key twice; the HSM provider's handle holds token object handles
//! instead of bytes, behind the same trait. The service picks a key's provider once, by
//! its protection level, and never branches on the level itself.

use std::sync::Arc;

use arca_core::model::{KeySpec, MacAlgorithm, MessageType, SigningAlgorithm};
use arca_core::{Error, Result};
use zeroize::Zeroizing;

/// Key material as the store keeps it (encrypted) and providers read it (in memory).
///
/// `secret` is the raw key for AES and HMAC, PKCS#8 v1 DER for RSA, EC, Ed25519 and ML-DSA,
/// and the FIPS 203 decapsulation key for ML-KEM. It is empty for a public-only key.
pub struct KeyMaterial {
    pub secret: Zeroizing<Vec<u8>>,
    /// SubjectPublicKeyInfo DER of an asymmetric key; never secret.
    pub public_spki: Option<Vec<u8>>,
    /// True when only the public half is held (an imported SPKI).
    pub public_only: bool,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("secret", &"<redacted>")
            .field("public_only", &self.public_only)
            .finish()
    }
}

/// Performs cryptography for Arca. Implementations must keep secrets in zeroizing buffers.
pub trait CryptoProvider: Send + Sync + 'static {
    /// A short name for logs and `describe` ("software", "pkcs11").
    fn name(&self) -> &'static str;
    /// Generates fresh material for `spec`.
    fn generate(&self, spec: KeySpec) -> Result<KeyMaterial>;
    /// Validates caller-supplied material for `spec`: raw bytes for symmetric specs, PKCS#8
    /// or SPKI (DER or PEM) for asymmetric ones. Errors name `field`.
    fn import(&self, spec: KeySpec, field: &str, bytes: &[u8]) -> Result<KeyMaterial>;
    /// Loads material into a handle that performs operations.
    fn load(&self, spec: KeySpec, material: &KeyMaterial) -> Result<Arc<dyn KeyHandle>>;
    /// Cryptographically secure random bytes.
    fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>>;

    /// Whether this provider can hold a key of `spec` whose material comes from the
    /// caller (`imported`) or may leave it (`extractable`). The service asks before it
    /// writes anything, so a refusal leaves no half-made key. Errors name the field.
    fn admit(&self, _spec: KeySpec, _imported: bool, _extractable: bool) -> Result<()> {
        Ok(())
    }

    /// Fresh material for one key version. `label` names the version where a provider that
    /// keeps keys itself stores them (an HSM token object's label); the "material" it then
    /// returns is a reference to that object, sealed by the service like any material. A
    /// provider whose material lives only in the store ignores the label.
    fn generate_version(&self, spec: KeySpec, _label: &str) -> Result<KeyMaterial> {
        self.generate(spec)
    }

    /// Destroys what the provider itself keeps of the version labelled `label` (an HSM's
    /// token objects); nothing for a provider whose material lives only in the store, where
    /// the service erases it.
    fn destroy_version(&self, _label: &str) -> Result<()> {
        Ok(())
    }

    /// KMIP's Digest of a version's material ([`kmip_digest`]), or `None` when the provider
    /// never shows the key in its plain form (an HSM-held key).
    fn digest(&self, spec: KeySpec, material: &KeyMaterial) -> Option<String> {
        kmip_digest(spec, material)
    }
}

/// The Digest of key material as KMIP defines it: SHA-256 of the key in its plain form,
/// the raw bytes of symmetric keys and secret data, PKCS#1 for RSA keys (private or
/// public), PKCS#8 or SPKI for the others; lower-case hex.
pub fn kmip_digest(spec: KeySpec, m: &KeyMaterial) -> Option<String> {
    let rsa = spec.family() == arca_core::model::KeyFamily::Rsa;
    let plain: Zeroizing<Vec<u8>> = match (m.public_only, rsa) {
        (true, true) => Zeroizing::new(crate::der::rsa_spki_to_pkcs1(m.public_spki.as_deref()?)?),
        (true, false) => Zeroizing::new(m.public_spki.clone()?),
        (false, true) => crate::der::rsa_pkcs8_to_pkcs1(&m.secret)?,
        (false, false) => Zeroizing::new(m.secret.to_vec()),
    };
    Some(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &plain)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

fn unsupported(spec: KeySpec, what: &str) -> Error {
    Error::unsupported(format!("a {spec} key cannot {what}"))
}

pub use arca_core::cipher::{LegacyCipher, OaepHash, OaepParams, PssSalt, RawMode};

/// A loaded key. Every method has a default that refuses, so each key family implements
/// only what it can do and the refusal text is the same everywhere.
pub trait KeyHandle: Send + Sync {
    /// The key's spec.
    fn spec(&self) -> KeySpec;
    /// True when only the public half is loaded.
    fn public_only(&self) -> bool {
        false
    }
    /// AES-GCM seal with a fresh random nonce; returns `nonce || ciphertext || tag`.
    fn aead_seal(&self, _aad: &[u8], _plaintext: &[u8]) -> Result<Vec<u8>> {
        Err(unsupported(self.spec(), "encrypt with AES-GCM"))
    }
    /// AES-GCM open of `nonce || ciphertext || tag`.
    fn aead_open(&self, _aad: &[u8], _body: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Err(unsupported(self.spec(), "decrypt with AES-GCM"))
    }
    /// RSA-OAEP-SHA-256 encryption.
    fn oaep_encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.oaep_encrypt_with(OaepHash::Sha256, plaintext)
    }
    /// RSA-OAEP-SHA-256 decryption.
    fn oaep_decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.oaep_decrypt_with(OaepHash::Sha256, ciphertext)
    }
    /// RSA-OAEP encryption with the hash (and MGF1 hash) a caller names.
    fn oaep_encrypt_with(&self, _hash: OaepHash, _plaintext: &[u8]) -> Result<Vec<u8>> {
        Err(unsupported(self.spec(), "encrypt with RSA-OAEP"))
    }
    /// RSA-OAEP decryption with the hash (and MGF1 hash) a caller names.
    fn oaep_decrypt_with(&self, _hash: OaepHash, _ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Err(unsupported(self.spec(), "decrypt with RSA-OAEP"))
    }
    /// RSA-OAEP with every parameter a caller names (an MGF1 hash of its own, a label).
    /// A handle that offers only [`OaepParams::plain`] ones refuses the others.
    fn oaep_encrypt_params(&self, p: &OaepParams, plaintext: &[u8]) -> Result<Vec<u8>> {
        if p.is_plain() {
            return self.oaep_encrypt_with(p.hash, plaintext);
        }
        Err(unsupported(
            self.spec(),
            "encrypt with RSA-OAEP whose MGF1 hash differs from its label hash, or with a label",
        ))
    }
    /// The inverse of [`KeyHandle::oaep_encrypt_params`].
    fn oaep_decrypt_params(&self, p: &OaepParams, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if p.is_plain() {
            return self.oaep_decrypt_with(p.hash, ciphertext);
        }
        Err(unsupported(
            self.spec(),
            "decrypt with RSA-OAEP whose MGF1 hash differs from its label hash, or with a label",
        ))
    }
    /// AES in a caller-chosen mode with a caller-given IV, returning bare ciphertext and
    /// (for GCM) the tag: the raw encryption KMIP and PKCS#11 clients ask for.
    fn raw_encrypt(
        &self,
        _mode: RawMode,
        _iv: &[u8],
        _aad: &[u8],
        _plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        Err(unsupported(
            self.spec(),
            "encrypt with caller-chosen AES modes",
        ))
    }
    /// AES Key Wrap of key material under this AES key: RFC 3394 (KW), or RFC 5649 (KWP)
    /// when `padded`.
    fn key_wrap(&self, _padded: bool, _material: &[u8]) -> Result<Vec<u8>> {
        Err(unsupported(self.spec(), "wrap keys with AES Key Wrap"))
    }
    /// The inverse of [`KeyHandle::key_wrap`].
    fn key_unwrap(&self, _padded: bool, _wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Err(unsupported(self.spec(), "unwrap keys with AES Key Wrap"))
    }
    /// The inverse of [`KeyHandle::raw_encrypt`]; `tag` is GCM's.
    fn raw_decrypt(
        &self,
        _mode: RawMode,
        _iv: &[u8],
        _aad: &[u8],
        _ciphertext: &[u8],
        _tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        Err(unsupported(
            self.spec(),
            "decrypt with caller-chosen AES modes",
        ))
    }
    /// Signs a message or a digest.
    fn sign(&self, _alg: SigningAlgorithm, _kind: MessageType, _msg: &[u8]) -> Result<Vec<u8>> {
        Err(unsupported(self.spec(), "sign"))
    }
    /// Verifies a signature; `Ok(false)` when it does not verify.
    fn verify(
        &self,
        _alg: SigningAlgorithm,
        _kind: MessageType,
        _msg: &[u8],
        _sig: &[u8],
    ) -> Result<bool> {
        Err(unsupported(self.spec(), "verify signatures"))
    }
    /// [`KeyHandle::sign`] with an RSA-PSS salt length; a handle that signs only with the
    /// hash length refuses the others.
    fn sign_with_salt(
        &self,
        alg: SigningAlgorithm,
        salt: PssSalt,
        kind: MessageType,
        msg: &[u8],
    ) -> Result<Vec<u8>> {
        if salt == PssSalt::HashLength {
            return self.sign(alg, kind, msg);
        }
        Err(unsupported(
            self.spec(),
            "sign with an RSA-PSS salt other than the hash length",
        ))
    }
    /// [`KeyHandle::verify`] with an RSA-PSS salt length ([`PssSalt::Any`]: any).
    fn verify_with_salt(
        &self,
        alg: SigningAlgorithm,
        salt: PssSalt,
        kind: MessageType,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool> {
        if salt == PssSalt::HashLength {
            return self.verify(alg, kind, msg, sig);
        }
        Err(unsupported(
            self.spec(),
            "verify an RSA-PSS signature with a salt other than the hash length",
        ))
    }
    /// HMAC of `msg`.
    fn mac(&self, _msg: &[u8]) -> Result<Vec<u8>> {
        Err(unsupported(self.spec(), "generate a MAC"))
    }
    /// Constant-time HMAC verification.
    fn mac_verify(&self, _msg: &[u8], _mac: &[u8]) -> Result<bool> {
        Err(unsupported(self.spec(), "verify a MAC"))
    }
    /// A legacy cipher of this key's spec (Triple DES, ChaCha20, ChaCha20-Poly1305) with a
    /// caller's IV or nonce; returns the ciphertext and (for ChaCha20-Poly1305) the tag.
    /// The service runs it only in tenants that allow legacy algorithms.
    fn legacy_encrypt(
        &self,
        _cipher: LegacyCipher,
        _iv: &[u8],
        _aad: &[u8],
        _plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        Err(unsupported(self.spec(), "encrypt with a legacy cipher"))
    }
    /// The inverse of [`KeyHandle::legacy_encrypt`]; `tag` is ChaCha20-Poly1305's.
    fn legacy_decrypt(
        &self,
        _cipher: LegacyCipher,
        _iv: &[u8],
        _aad: &[u8],
        _ciphertext: &[u8],
        _tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        Err(unsupported(self.spec(), "decrypt with a legacy cipher"))
    }
    /// An HMAC keyed by the bytes of a key made for another algorithm (an AES key), with
    /// the hash the caller names: what KMIP clients ask of an AES key registered with MAC
    /// usage. The service runs it only in tenants that allow legacy algorithms; a provider
    /// that cannot key an HMAC with such a key's bytes refuses.
    fn hmac_with(&self, _alg: MacAlgorithm, _msg: &[u8]) -> Result<Vec<u8>> {
        Err(unsupported(
            self.spec(),
            "compute an HMAC keyed by its bytes",
        ))
    }
    /// Constant-time verification of [`KeyHandle::hmac_with`].
    fn hmac_verify_with(&self, _alg: MacAlgorithm, _msg: &[u8], _mac: &[u8]) -> Result<bool> {
        Err(unsupported(
            self.spec(),
            "verify an HMAC keyed by its bytes",
        ))
    }
    /// ML-KEM encapsulation: `(ciphertext, shared secret)`.
    fn encapsulate(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        Err(unsupported(self.spec(), "encapsulate"))
    }
    /// ML-KEM decapsulation.
    fn decapsulate(&self, _ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Err(unsupported(self.spec(), "decapsulate"))
    }
}
