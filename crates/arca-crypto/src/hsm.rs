//! The root of trust in an HSM, over PKCS#11.
//!
//! The root key is an AES-256 secret key generated inside the token as a persistent,
//! sensitive, non-extractable object; it never leaves the HSM. Tenant KEKs are encrypted and
//! decrypted by the HSM with AES-GCM under that key (C_Encrypt / C_Decrypt), with a random
//! 96-bit IV and a fixed AAD that names the purpose. A copy of the data directory on a
//! machine without the token therefore opens nothing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arca_core::model::{KeySpec, MessageType, SigningAlgorithm};
use arca_core::{Error, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::provider::{KeyHandle, RawMode};
use crate::wrap::RootOfTrust;

/// Marks a tenant KEK blob wrapped by an HSM root key (then the IV, then the ciphertext).
const BLOB_TAG: &[u8; 4] = b"HSM1";
const AAD: &[u8] = b"arca/tenant-kek/hsm/v1";
const IV_LEN: usize = 12;

/// Where the HSM root key lives.
#[derive(Clone)]
pub struct HsmSettings {
    /// The PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label (slot ids change; labels do not).
    pub token_label: String,
    /// The user PIN.
    pub pin: Zeroizing<String>,
    /// The label of the root key object in the token.
    pub key_label: String,
}

impl std::fmt::Debug for HsmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmSettings")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

/// What the token says about the root key object (for checks and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProtection {
    pub token: bool,
    pub sensitive: bool,
    pub extractable: bool,
    pub never_extractable: bool,
    pub always_sensitive: bool,
}

/// An HSM holding the root key.
pub struct HsmRoot {
    ctx: Pkcs11,
    session: Mutex<Option<Session>>,
    key: ObjectHandle,
    description: String,
}

fn hsm_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable {
        message: format!("HSM: {what}: {e}"),
    }
}

impl HsmRoot {
    /// Opens the token, logs in and finds the root key; with `create`, generates it when it
    /// is not there (first start). Without `create` a missing key is an error: a server must
    /// never make a new root key for a store whose tenant KEKs were wrapped by another.
    pub fn open(s: &HsmSettings, create: bool) -> Result<Self> {
        let ctx = Pkcs11::new(&s.module)
            .map_err(|e| hsm_err(&format!("cannot load {}", s.module.display()), e))?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => {}
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::CryptokiAlreadyInitialized,
                _,
            )) => {}
            Err(e) => return Err(hsm_err("initialize", e)),
        }
        let slot = ctx
            .get_slots_with_token()
            .map_err(|e| hsm_err("list slots", e))?
            .into_iter()
            .find(|slot| {
                ctx.get_token_info(*slot)
                    .map(|i| i.label().trim_end() == s.token_label)
                    .unwrap_or(false)
            })
            .ok_or_else(|| Error::Unavailable {
                message: format!(
                    "HSM: no token labelled {:?} in {}: the root key is not reachable",
                    s.token_label,
                    s.module.display()
                ),
            })?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(|e| hsm_err("open session", e))?;
        let pin = AuthPin::new(s.pin.as_str().into());
        session
            .login(UserType::User, Some(&pin))
            .map_err(|e| hsm_err("login (check the PIN)", e))?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(s.key_label.as_bytes().to_vec()),
        ];
        let found = session
            .find_objects(&template)
            .map_err(|e| hsm_err("find the root key", e))?;
        let key = match (found.as_slice(), create) {
            ([k], _) => *k,
            ([], true) => session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &aes_key_template(&s.key_label),
                )
                .map_err(|e| hsm_err("generate the root key", e))?,
            ([], false) => {
                return Err(Error::Unavailable {
                    message: format!(
                        "HSM: token {:?} has no key labelled {:?}: this is not the token that holds this store's root key",
                        s.token_label, s.key_label
                    ),
                })
            }
            _ => {
                return Err(Error::Unavailable {
                    message: format!(
                        "HSM: token {:?} has several keys labelled {:?}; refusing to guess",
                        s.token_label, s.key_label
                    ),
                })
            }
        };
        Ok(HsmRoot {
            ctx,
            session: Mutex::new(Some(session)),
            key,
            description: format!(
                "HSM token {:?} via {} (key {:?})",
                s.token_label,
                s.module.display(),
                s.key_label
            ),
        })
    }

    fn with_session<T>(&self, f: impl FnOnce(&Session) -> Result<T>) -> Result<T> {
        let guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let s = guard
            .as_ref()
            .ok_or_else(|| Error::internal("HSM session closed"))?;
        f(s)
    }

    /// The protection attributes of the root key, as the token reports them.
    pub fn key_protection(&self) -> Result<KeyProtection> {
        self.protection_of(self.key)?
            .ok_or_else(|| hsm_err("read key attributes", "not a key"))
    }

    /// The protection attributes of a private or secret key object (`None` for a public
    /// key, which has no sensitivity).
    fn protection_of(&self, h: ObjectHandle) -> Result<Option<KeyProtection>> {
        self.with_session(|s| {
            let class = s
                .get_attributes(h, &[AttributeType::Class])
                .map_err(|e| hsm_err("read key attributes", e))?;
            if class
                .iter()
                .any(|a| matches!(a, Attribute::Class(c) if *c == ObjectClass::PUBLIC_KEY))
            {
                return Ok(None);
            }
            let attrs = s
                .get_attributes(
                    h,
                    &[
                        AttributeType::Token,
                        AttributeType::Sensitive,
                        AttributeType::Extractable,
                        AttributeType::NeverExtractable,
                        AttributeType::AlwaysSensitive,
                    ],
                )
                .map_err(|e| hsm_err("read key attributes", e))?;
            let mut p = KeyProtection {
                token: false,
                sensitive: false,
                extractable: true,
                never_extractable: false,
                always_sensitive: false,
            };
            for a in attrs {
                match a {
                    Attribute::Token(v) => p.token = v,
                    Attribute::Sensitive(v) => p.sensitive = v,
                    Attribute::Extractable(v) => p.extractable = v,
                    Attribute::NeverExtractable(v) => p.never_extractable = v,
                    Attribute::AlwaysSensitive(v) => p.always_sensitive = v,
                    _ => {}
                }
            }
            Ok(Some(p))
        })
    }
}

/// The specs a key of protection level `hsm` may have: the token generates and uses them.
pub const HSM_KEY_SPECS: [KeySpec; 2] = [KeySpec::Aes256, KeySpec::EccNistP256];

/// What the sealed "material" of an HSM-held version starts with; the token label follows.
const HSM_REF: &str = "hsm-ref-v1:";

/// The provider of protection level HSM: keys generated in the token as persistent,
/// sensitive, non-extractable objects, used there, destroyed there. What the store keeps of
/// such a version is only a reference (the object's label), sealed like any material, so a
/// copy of the store without the token can use nothing.
pub struct HsmProvider {
    hsm: Arc<HsmRoot>,
}

impl HsmProvider {
    /// The provider over an open token (the one that holds the root key).
    pub fn new(hsm: Arc<HsmRoot>) -> Self {
        HsmProvider { hsm }
    }
}

impl crate::CryptoProvider for HsmProvider {
    fn name(&self) -> &'static str {
        "pkcs11"
    }

    /// A token key is generated under its version's label: see [`Self::generate_version`].
    fn generate(&self, spec: KeySpec) -> Result<crate::KeyMaterial> {
        Err(not_at_hsm_level(spec, "be generated without a token label"))
    }

    fn import(&self, _spec: KeySpec, field: &str, _bytes: &[u8]) -> Result<crate::KeyMaterial> {
        Err(Error::unprocessable(
            field,
            "an HSM key is generated in the HSM; importing plaintext material is not supported at protection level HSM",
        ))
    }

    fn load(&self, spec: KeySpec, material: &crate::KeyMaterial) -> Result<Arc<dyn KeyHandle>> {
        let label = std::str::from_utf8(&material.secret)
            .ok()
            .and_then(|r| r.strip_prefix(HSM_REF))
            .ok_or_else(|| Error::internal("an HSM key version without its reference"))?;
        self.hsm.load_key(spec, label)
    }

    fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>> {
        crate::CryptoProvider::random(&crate::SoftwareProvider, len)
    }

    fn admit(&self, spec: KeySpec, imported: bool, extractable: bool) -> Result<()> {
        if !HSM_KEY_SPECS.contains(&spec) {
            return Err(Error::unprocessable(
                "spec",
                format!(
                    "{spec} is not supported at protection level HSM (supported: {})",
                    HSM_KEY_SPECS
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if imported {
            return Err(Error::unprocessable(
                "material",
                "an HSM key is generated in the HSM; imported material is not supported at protection level HSM",
            ));
        }
        if extractable {
            return Err(Error::unprocessable(
                "extractable",
                "an HSM key never leaves the HSM; extractable is not supported at protection level HSM",
            ));
        }
        Ok(())
    }

    fn generate_version(&self, spec: KeySpec, label: &str) -> Result<crate::KeyMaterial> {
        let public_spki = self.hsm.generate_key(spec, label)?;
        Ok(crate::KeyMaterial {
            secret: Zeroizing::new(format!("{HSM_REF}{label}").into_bytes()),
            public_spki,
            public_only: false,
        })
    }

    fn destroy_version(&self, label: &str) -> Result<()> {
        self.hsm.destroy_key(label).map(|_| ())
    }

    /// The plain key never leaves the token, so there is nothing to digest.
    fn digest(&self, _spec: KeySpec, _material: &crate::KeyMaterial) -> Option<String> {
        None
    }
}

/// An AES-256 secret key generated in the token: persistent, private, sensitive, never
/// extractable, for encryption and decryption only. The root key and HSM-held keys alike.
fn aes_key_template(label: &str) -> [Attribute; 10] {
    [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// The refusal for what a token-held key cannot do.
fn not_at_hsm_level(spec: KeySpec, what: &str) -> Error {
    Error::unsupported(format!(
        "a {spec} key cannot {what}: not supported at protection level HSM"
    ))
}

impl HsmRoot {
    fn find(&self, s: &Session, class: ObjectClass, label: &str) -> Result<ObjectHandle> {
        let found = s
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(|e| hsm_err("find a key", e))?;
        match found.as_slice() {
            [h] => Ok(*h),
            [] => Err(Error::Unavailable {
                message: format!("HSM: the token has no key labelled {label:?}"),
            }),
            _ => Err(Error::Unavailable {
                message: format!("HSM: several keys labelled {label:?}; refusing to guess"),
            }),
        }
    }

    /// Generates a key of `spec` inside the token as persistent, sensitive, non-extractable
    /// objects labelled `label`. Returns the public key (SPKI DER) of a key pair.
    pub fn generate_key(&self, spec: KeySpec, label: &str) -> Result<Option<Vec<u8>>> {
        let l = || Attribute::Label(label.as_bytes().to_vec());
        self.with_session(|s| match spec {
            KeySpec::Aes256 => {
                s.generate_key(&Mechanism::AesKeyGen, &aes_key_template(label))
                    .map_err(|e| hsm_err("generate an AES key", e))?;
                Ok(None)
            }
            KeySpec::EccNistP256 => {
                let (public, _private) = s
                    .generate_key_pair(
                        &Mechanism::EccKeyPairGen,
                        &[
                            Attribute::Token(true),
                            Attribute::Verify(true),
                            Attribute::EcParams(crate::der::P256_OID.to_vec()),
                            l(),
                        ],
                        &[
                            Attribute::Token(true),
                            Attribute::Private(true),
                            Attribute::Sensitive(true),
                            Attribute::Extractable(false),
                            Attribute::Sign(true),
                            l(),
                        ],
                    )
                    .map_err(|e| hsm_err("generate an EC key pair", e))?;
                let point = s
                    .get_attributes(public, &[AttributeType::EcPoint])
                    .map_err(|e| hsm_err("read the public key", e))?
                    .into_iter()
                    .find_map(|a| match a {
                        Attribute::EcPoint(p) => Some(p),
                        _ => None,
                    })
                    .ok_or_else(|| hsm_err("read the public key", "no CKA_EC_POINT"))?;
                // CKA_EC_POINT is the DER OCTET STRING of the uncompressed point.
                let raw = match point.as_slice() {
                    [0x04, 65, rest @ ..] if rest.len() == 65 => rest.to_vec(),
                    p if p.len() == 65 && p[0] == 0x04 => p.to_vec(),
                    _ => return Err(hsm_err("read the public key", "unexpected EC point")),
                };
                let mut spki = crate::der::P256_SPKI_PREFIX.to_vec();
                spki.extend_from_slice(&raw);
                Ok(Some(spki))
            }
            other => Err(not_at_hsm_level(other, "be generated in the HSM")),
        })
    }

    /// A handle on a key the token holds, for the same operations as a software key.
    pub fn load_key(self: &Arc<Self>, spec: KeySpec, label: &str) -> Result<Arc<dyn KeyHandle>> {
        let (secret, public) = self.with_session(|s| match spec {
            KeySpec::Aes256 => Ok((self.find(s, ObjectClass::SECRET_KEY, label)?, None)),
            KeySpec::EccNistP256 => Ok((
                self.find(s, ObjectClass::PRIVATE_KEY, label)?,
                Some(self.find(s, ObjectClass::PUBLIC_KEY, label)?),
            )),
            other => Err(not_at_hsm_level(other, "be used in the HSM")),
        })?;
        Ok(Arc::new(HsmKey {
            hsm: self.clone(),
            spec,
            secret,
            public,
        }))
    }

    /// Destroys every object labelled `label` (a destroyed key version's material).
    pub fn destroy_key(&self, label: &str) -> Result<usize> {
        self.with_session(|s| {
            let found = s
                .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
                .map_err(|e| hsm_err("find a key", e))?;
            for h in &found {
                s.destroy_object(*h)
                    .map_err(|e| hsm_err("destroy a key", e))?;
            }
            Ok(found.len())
        })
    }

    /// The protection attributes of the objects labelled `label` (for checks and tests).
    pub fn object_protection(&self, label: &str) -> Result<Vec<KeyProtection>> {
        let handles = self.with_session(|s| {
            s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
                .map_err(|e| hsm_err("find a key", e))
        })?;
        handles
            .into_iter()
            .filter_map(|h| self.protection_of(h).transpose())
            .collect()
    }
}

/// A key version held by the token.
struct HsmKey {
    hsm: Arc<HsmRoot>,
    spec: KeySpec,
    /// The secret or private key object.
    secret: ObjectHandle,
    /// The public key object of a pair.
    public: Option<ObjectHandle>,
}

impl HsmKey {
    /// The SHA-256 digest to sign: computed here for a raw message, checked for a digest.
    fn digest(&self, alg: SigningAlgorithm, kind: MessageType, msg: &[u8]) -> Result<Vec<u8>> {
        if alg != SigningAlgorithm::EcdsaSha256 {
            return Err(not_at_hsm_level(self.spec, &format!("sign with {alg:?}")));
        }
        match kind {
            MessageType::Raw => Ok(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, msg)
                .as_ref()
                .to_vec()),
            MessageType::Digest if msg.len() == 32 => Ok(msg.to_vec()),
            MessageType::Digest => Err(Error::invalid("message", "a SHA-256 digest is 32 bytes")),
        }
    }
}

impl KeyHandle for HsmKey {
    fn spec(&self) -> KeySpec {
        self.spec
    }

    fn aead_seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        if self.spec != KeySpec::Aes256 {
            return Err(not_at_hsm_level(self.spec, "encrypt with AES-GCM"));
        }
        let mut iv = [0u8; IV_LEN];
        aws_lc_rs::rand::fill(&mut iv).map_err(|_| Error::internal("rng"))?;
        let ct = self.hsm.with_session(|s| {
            let mut iv_param = iv;
            let params = GcmParams::new(&mut iv_param, aad, 128.into())
                .map_err(|e| hsm_err("GCM parameters", e))?;
            s.encrypt(&Mechanism::AesGcm(params), self.secret, plaintext)
                .map_err(|e| hsm_err("encrypt", e))
        })?;
        let mut out = Vec::with_capacity(IV_LEN + ct.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn aead_open(&self, aad: &[u8], body: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if self.spec != KeySpec::Aes256 {
            return Err(not_at_hsm_level(self.spec, "decrypt with AES-GCM"));
        }
        if body.len() < IV_LEN + 16 {
            return Err(Error::invalid("ciphertext", "too short"));
        }
        let (iv, ct) = body.split_at(IV_LEN);
        self.hsm.with_session(|s| {
            let mut iv = <[u8; IV_LEN]>::try_from(iv).map_err(|_| Error::internal("iv"))?;
            let params = GcmParams::new(&mut iv, aad, 128.into())
                .map_err(|e| hsm_err("GCM parameters", e))?;
            s.decrypt(&Mechanism::AesGcm(params), self.secret, ct)
                .map(Zeroizing::new)
                .map_err(|_| {
                    Error::bad_ciphertext(
                        "ciphertext",
                        "the ciphertext or its context does not verify",
                    )
                })
        })
    }

    /// AES-GCM with the caller's IV and AAD, in the HSM (the XKS proxy API and KMIP ask for
    /// bare GCM). Other raw modes stay in software keys only.
    fn raw_encrypt(
        &self,
        mode: RawMode,
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        if self.spec != KeySpec::Aes256 || mode != RawMode::Gcm {
            return Err(not_at_hsm_level(
                self.spec,
                "encrypt in a raw mode other than AES-GCM",
            ));
        }
        let mut out = self.hsm.with_session(|s| {
            let mut iv_param = iv.to_vec();
            let params = GcmParams::new(&mut iv_param, aad, 128.into())
                .map_err(|e| hsm_err("GCM parameters", e))?;
            s.encrypt(&Mechanism::AesGcm(params), self.secret, plaintext)
                .map_err(|e| hsm_err("encrypt", e))
        })?;
        if out.len() < 16 {
            return Err(Error::internal(
                "the HSM returned a GCM output without a tag",
            ));
        }
        let tag = out.split_off(out.len() - 16);
        Ok((out, tag))
    }

    fn raw_decrypt(
        &self,
        mode: RawMode,
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        if self.spec != KeySpec::Aes256 || mode != RawMode::Gcm {
            return Err(not_at_hsm_level(
                self.spec,
                "decrypt in a raw mode other than AES-GCM",
            ));
        }
        if tag.len() != 16 {
            return Err(not_at_hsm_level(
                self.spec,
                "verify a GCM tag shorter than 16 bytes (the token path checks full tags only)",
            ));
        }
        let mut body = Vec::with_capacity(ciphertext.len() + tag.len());
        body.extend_from_slice(ciphertext);
        body.extend_from_slice(tag);
        self.hsm.with_session(|s| {
            let mut iv_param = iv.to_vec();
            let params = GcmParams::new(&mut iv_param, aad, 128.into())
                .map_err(|e| hsm_err("GCM parameters", e))?;
            s.decrypt(&Mechanism::AesGcm(params), self.secret, &body)
                .map(Zeroizing::new)
                .map_err(|_| {
                    Error::bad_ciphertext(
                        "ciphertext",
                        "the ciphertext, tag, IV or AAD does not verify",
                    )
                })
        })
    }

    fn sign(&self, alg: SigningAlgorithm, kind: MessageType, msg: &[u8]) -> Result<Vec<u8>> {
        if self.spec != KeySpec::EccNistP256 {
            return Err(not_at_hsm_level(self.spec, "sign"));
        }
        let digest = self.digest(alg, kind, msg)?;
        let raw = self.hsm.with_session(|s| {
            s.sign(&Mechanism::Ecdsa, self.secret, &digest)
                .map_err(|e| hsm_err("sign", e))
        })?;
        Ok(crate::der::ecdsa_raw_to_der(&raw))
    }

    fn verify(
        &self,
        alg: SigningAlgorithm,
        kind: MessageType,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool> {
        let Some(public) = self.public else {
            return Err(not_at_hsm_level(self.spec, "verify signatures"));
        };
        let digest = self.digest(alg, kind, msg)?;
        let Some(raw) = crate::der::ecdsa_der_to_raw(sig, 32) else {
            return Ok(false);
        };
        self.hsm.with_session(
            |s| match s.verify(&Mechanism::Ecdsa, public, &digest, &raw) {
                Ok(()) => Ok(true),
                Err(cryptoki::error::Error::Pkcs11(
                    cryptoki::error::RvError::SignatureInvalid
                    | cryptoki::error::RvError::SignatureLenRange,
                    _,
                )) => Ok(false),
                Err(e) => Err(hsm_err("verify", e)),
            },
        )
    }
}

impl RootOfTrust for HsmRoot {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn wrap(&self, kek: &[u8]) -> Result<Vec<u8>> {
        self.with_session(|s| {
            let mut iv = [0u8; IV_LEN];
            aws_lc_rs::rand::fill(&mut iv).map_err(|_| Error::internal("rng"))?;
            let mut iv_param = iv;
            let params = GcmParams::new(&mut iv_param, AAD, 128.into())
                .map_err(|e| hsm_err("GCM parameters", e))?;
            let ct = s
                .encrypt(&Mechanism::AesGcm(params), self.key, kek)
                .map_err(|e| hsm_err("encrypt", e))?;
            let mut out = Vec::with_capacity(4 + IV_LEN + ct.len());
            out.extend_from_slice(BLOB_TAG);
            out.extend_from_slice(&iv);
            out.extend_from_slice(&ct);
            Ok(out)
        })
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let body = wrapped
            .strip_prefix(BLOB_TAG.as_slice())
            .filter(|b| b.len() > IV_LEN + 16)
            .ok_or_else(|| Error::internal("not a KEK wrapped by an HSM root key"))?;
        let (iv, ct) = body.split_at(IV_LEN);
        self.with_session(|s| {
            let mut iv = <[u8; IV_LEN]>::try_from(iv).map_err(|_| Error::internal("iv"))?;
            let params = GcmParams::new(&mut iv, AAD, 128.into())
                .map_err(|e| hsm_err("GCM parameters", e))?;
            let pt = s
                .decrypt(&Mechanism::AesGcm(params), self.key, ct)
                .map_err(|_| {
                    Error::internal("HSM unwrap failed: wrong root key or corrupted blob")
                })?;
            Ok(Zeroizing::new(pt))
        })
    }
}

impl Drop for HsmRoot {
    fn drop(&mut self) {
        // Log out and close before finalizing, so that another open in this process (a
        // restart in tests) starts clean.
        let session = self
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(s) = session {
            let _ = s.logout();
            drop(s);
        }
        let _ = self.ctx.clone().finalize();
    }
}
