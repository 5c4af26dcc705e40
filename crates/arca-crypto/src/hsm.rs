//! The root of trust in an HSM, over PKCS#11.
//!
//! The root key is an AES-256 secret key generated inside the token as a persistent,
//! sensitive, non-extractable object; it never leaves the HSM. Tenant KEKs are encrypted and
//! decrypted by the HSM with AES-GCM under that key (C_Encrypt / C_Decrypt), with a random
//! 96-bit IV and a fixed AAD that names the purpose. A copy of the data directory on a
//! machine without the token therefore opens nothing.

use std::path::PathBuf;
use std::sync::Mutex;

use arca_core::{Error, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

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
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::ValueLen(32.into()),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                        Attribute::Label(s.key_label.as_bytes().to_vec()),
                    ],
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
        self.with_session(|s| {
            let attrs = s
                .get_attributes(
                    self.key,
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
            Ok(p)
        })
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
