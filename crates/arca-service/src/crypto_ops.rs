//! Cryptographic operations. Each one: resolve the key (cache), authorize, check usage and
//! lifecycle for the version it needs, run the crypto through a loaded handle, audit.
//! None of them touches the store when the key is cached.

use arca_core::Action;
use std::sync::Arc;

use arca_core::encoding::KeyEncoding;
use arca_core::lifecycle::{self, Use};
use arca_core::model::{
    EncryptionAlgorithm, KeyFamily, KeyUsage, KeyVersion, MacAlgorithm, SigningAlgorithm,
};
use arca_core::{Error, Result, StateDetail};
use arca_crypto::ciphertext::{self, CiphertextAlg, Header};
use zeroize::Zeroizing;

use crate::api::*;
use crate::cache::KeyEntry;
use crate::{Caller, Note, Service};

fn no_iv_for_rsa(iv: &Option<Vec<u8>>, aad: &[u8]) -> Result<()> {
    if iv.is_some() {
        return Err(Error::invalid("iv", "RSA-OAEP takes no IV"));
    }
    if !aad.is_empty() {
        return Err(Error::invalid(
            "aad",
            "RSA-OAEP authenticates no additional data",
        ));
    }
    Ok(())
}

/// The key's usages must allow `usage` (one direction). The refusal names the field
/// `usage`, which every door maps to its own word for it (AWS and XKS
/// InvalidKeyUsageException, KMIP Incompatible Cryptographic Usage Mask, REST 422).
fn need_usage(e: &KeyEntry, usage: KeyUsage, op: &str) -> Result<()> {
    if e.key.can(usage) {
        Ok(())
    } else {
        Err(Error::wrong_usage(format!(
            "key {} has usage {} and cannot {op} (needs {usage})",
            e.key.id,
            e.key
                .usage
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// Refuses Arca's own ciphertext format (and the doors built on it) on a key made for raw
/// block-cipher use: such a key's keystream may be exposed through caller IVs and raw modes.
fn not_raw(e: &KeyEntry, op: &str) -> Result<()> {
    if e.key.raw_cipher_modes {
        return Err(Error::unsuitable_key(format!(
                "key {} was made for raw block-cipher use (raw_cipher_modes) and cannot {op} in Arca's ciphertext format; use a key made without it",
                e.key.id
            ),
        ));
    }
    Ok(())
}

/// The rules of raw AES on a key (see [`arca_core::model::Key::raw_cipher_modes`]): modes
/// other than GCM, and a caller's GCM IV, need a raw-use key (on a key that serves Arca's
/// ciphertexts the server draws every GCM IV, so no caller can repeat a nonce under it);
/// and on a key that serves Arca's ciphertexts the additional data may not begin with that
/// format's header for this key, which would let a raw call open or forge an Arca
/// ciphertext around the encryption-context conditions of the key's policy.
fn check_raw_aes(
    e: &KeyEntry,
    mode: arca_core::cipher::RawMode,
    caller_iv: bool,
    encrypting: bool,
    aad: &[u8],
    door: arca_core::access::Door,
) -> Result<()> {
    use arca_core::cipher::RawMode;
    if mode == RawMode::Gcm && caller_iv && encrypting && !e.key.raw_cipher_modes {
        return Err(Error::invalid(
            "iv",
            format!(
                "key {} serves Arca's ciphertexts, so its GCM IVs are drawn by the server: a caller-chosen IV could repeat a nonce and reveal the keystream and authentication key; omit the IV and keep the one returned, or use a key made for raw use (raw_cipher_modes)",
                e.key.id
            ),
        ));
    }
    if e.key.raw_cipher_modes {
        if door == arca_core::access::Door::Xks {
            return Err(Error::unsuitable_key(format!(
                    "key {} was made for raw block-cipher use (raw_cipher_modes) and does not serve as an external key",
                    e.key.id
                ),
            ));
        }
        return Ok(());
    }
    if mode != RawMode::Gcm {
        return Err(Error::unprocessable(
            "cryptographic_parameters",
            format!(
                "{mode:?} is offered only on keys made for raw block-cipher use (raw_cipher_modes); key {} serves authenticated ciphertexts and offers GCM with a server-drawn IV",
                e.key.id
            ),
        ));
    }
    if aad.len() >= 18
        && aad[0] == ciphertext::FORMAT_V1
        && aad[1] == CiphertextAlg::AesGcm as u8
        && aad[2..18] == *e.key.id.as_bytes()
    {
        return Err(Error::invalid(
            "aad",
            "additional data that begins with an Arca ciphertext header of this key is refused on raw calls",
        ));
    }
    Ok(())
}

/// The rules of a legacy cipher on a key: the cipher must be the key's own spec's (a
/// ChaCha20 key runs no Triple DES), and the key one made for raw use (which every Triple
/// DES and ChaCha20 key is), never an external key on the XKS door. The tenant's setting is
/// checked when the key is resolved.
fn check_raw_legacy(
    e: &KeyEntry,
    cipher: arca_core::cipher::LegacyCipher,
    door: arca_core::access::Door,
) -> Result<()> {
    if cipher.spec() != e.key.spec {
        return Err(Error::unsuitable_key(format!(
            "key {} is a {} key and cannot run {cipher:?}",
            e.key.id, e.key.spec
        )));
    }
    if !e.key.raw_cipher_modes || door == arca_core::access::Door::Xks {
        return Err(Error::unsuitable_key(format!(
            "key {} serves no raw {} calls here",
            e.key.id, e.key.spec
        )));
    }
    Ok(())
}

/// A multi-request GCM encryption in progress ([`RawStream`]): whose it is, and what the
/// next part needs. Nothing here is secret: the IV, the AAD and the ciphertext answered so
/// far (and the tag length asked for).
#[derive(Clone)]
pub(crate) struct GcmStream {
    tenant: uuid::Uuid,
    principal: uuid::Uuid,
    key: uuid::Uuid,
    version: u32,
    iv: Vec<u8>,
    aad: Vec<u8>,
    ciphertext: Vec<u8>,
    tag_len: usize,
}

/// The version a request names, or the primary one.
fn pick_version(e: &KeyEntry, n: Option<u32>) -> Result<&KeyVersion> {
    let n = n.unwrap_or(e.key.primary_version);
    e.version(n)
        .ok_or_else(|| Error::not_found("version", format!("{n} of key {}", e.key.id)))
}

/// A version ready for a use: lifecycle checked, handle loaded.
pub(crate) struct Ready {
    pub(crate) handle: Arc<dyn arca_crypto::KeyHandle>,
    pub(crate) version: u32,
    pub(crate) compromised: bool,
}

impl Service {
    /// The common prologue of every key operation: resolve the key in the caller's tenant,
    /// note it for the audit trail, authorize, and check the key's usage.
    async fn prepare(
        &self,
        caller: &Caller,
        key: &str,
        action: Action,
        usage: Option<(KeyUsage, &str)>,
        note: &mut Note,
    ) -> Result<Arc<KeyEntry>> {
        self.prepare_ctx(caller, key, action, usage, None, note)
            .await
    }

    /// [`Service::prepare`] for an operation with an encryption context, which key policy
    /// conditions may test.
    async fn prepare_ctx(
        &self,
        caller: &Caller,
        key: &str,
        action: Action,
        usage: Option<(KeyUsage, &str)>,
        ctx: Option<&EncryptionContext>,
        note: &mut Note,
    ) -> Result<Arc<KeyEntry>> {
        let e = self.resolve(caller.tenant(), "key", key).await?;
        note.key(e.key.id);
        self.authorize_ctx(caller, action, Some(&e.key), ctx)?;
        if let Some((u, op)) = usage {
            need_usage(&e, u, op)?;
        }
        // A legacy key (Triple DES, ChaCha20, DSA) is used or exported only while its
        // tenant allows legacy algorithms: turning the setting off makes such keys inert.
        if let Some(l) = e.key.spec.legacy() {
            self.permit_legacy(caller, l, "key").await?;
        }
        Ok(e)
    }

    /// The wrapping key of an export, ready to wrap: usable now to protect. Its use is part
    /// of the export's own record (the version, and whether the key is compromised, under
    /// names of their own), not a record of its own.
    pub(crate) async fn ready_to_wrap(
        &self,
        caller: &Caller,
        w: &KeyEntry,
        material_len: usize,
        note: &mut Note,
    ) -> Result<Ready> {
        let mut wnote = Note::for_key(&w.key);
        let r = self
            .ready_to_protect(caller.meta.door, w, material_len, "wrap", &mut wnote)
            .await;
        if let Some(left) = wnote.detail.get("usage_limits_remaining") {
            note.set("wrapping_key_usage_limits_remaining", left.clone());
        }
        let r = r?;
        note.set("wrapping_key_version", r.version);
        if wnote.detail.contains_key("key_compromised") {
            note.set("wrapping_key_compromised", true);
        }
        Ok(r)
    }

    /// Picks a version (default primary), checks the lifecycle for `use_`, loads its handle.
    pub(crate) async fn ready(
        &self,
        door: arca_core::access::Door,
        e: &KeyEntry,
        version: Option<u32>,
        use_: Use,
        op: &str,
        note: &mut Note,
    ) -> Result<Ready> {
        if e.key.pending_import {
            // No material yet (or no more): say so rather than "no version".
            return Err(Error::WrongState {
                operation: op.to_string(),
                target: format!("key {}", e.key.id),
                state: e.key.state,
                detail: Some(StateDetail::PendingImport),
            });
        }
        let v = pick_version(e, version)?;
        let verdict = lifecycle::check_use(&e.key, v, use_, op, self.now(), door)?;
        note.key_version = Some(v.version);
        if verdict.compromised {
            note.set("key_compromised", true);
        }
        Ok(Ready {
            handle: self.handle(e, v).await?,
            version: v.version,
            compromised: verdict.compromised,
        })
    }

    fn check_len(&self, field: &str, len: usize) -> Result<()> {
        if len == 0 {
            return Err(Error::invalid(field, "must not be empty"));
        }
        if len > self.config.max_plaintext_bytes {
            return Err(Error::invalid(
                field,
                format!("at most {} bytes", self.config.max_plaintext_bytes),
            ));
        }
        Ok(())
    }

    /// Encrypts under a key's primary version; the core of encrypt, data keys, re-encrypt.
    #[allow(clippy::too_many_arguments)]
    async fn seal(
        &self,
        caller: &Caller,
        e: &KeyEntry,
        aad: &[u8],
        ctx: &EncryptionContext,
        plaintext: &[u8],
        op: &str,
        note: &mut Note,
    ) -> Result<(Vec<u8>, u32, EncryptionAlgorithm)> {
        need_usage(e, KeyUsage::Encrypt, op)?;
        not_raw(e, op)?;
        let alg = EncryptionAlgorithm::for_spec(e.key.spec)
            .ok_or_else(|| Error::unsuitable_key(format!("a {} key cannot encrypt", e.key.spec)))?;
        let r = self
            .ready_to_protect(caller.meta.door, e, plaintext.len(), op, note)
            .await?;
        let (calg, body) = match alg {
            EncryptionAlgorithm::SymmetricDefault => (CiphertextAlg::AesGcm, None),
            EncryptionAlgorithm::RsaesOaepSha256 => {
                if !aad.is_empty() || !ctx.is_empty() {
                    return Err(Error::unbindable_context(
                        "RSA-OAEP does not bind AAD or an encryption context; use a symmetric key",
                    ));
                }
                (
                    CiphertextAlg::RsaOaepSha256,
                    Some(r.handle.oaep_encrypt(plaintext)?),
                )
            }
        };
        let header = Header {
            alg: calg,
            key_id: e.key.id,
            key_version: r.version,
        }
        .encode();
        let body = match body {
            Some(b) => b,
            None => r
                .handle
                .aead_seal(&ciphertext::aad(&header, aad, ctx), plaintext)?,
        };
        let mut out = header.to_vec();
        out.extend_from_slice(&body);
        Ok((out, r.version, alg))
    }

    /// Decrypts an Arca ciphertext; `expected` is the key the caller named, if any.
    #[allow(clippy::too_many_arguments)]
    async fn open(
        &self,
        caller: &Caller,
        expected: Option<&str>,
        blob: &[u8],
        aad: &[u8],
        ctx: &EncryptionContext,
        op: Action,
        note: &mut Note,
    ) -> Result<(Zeroizing<Vec<u8>>, Arc<KeyEntry>, u32, bool)> {
        let (header, body) = ciphertext::decode(blob)?;
        let shown = header.key_id.to_string();
        let mut e = self.entry(caller.tenant(), header.key_id, &shown).await?;
        note.key(e.key.id);
        if let Some(r) = expected {
            let named = self.resolve(caller.tenant(), "key", r).await?;
            if named.key.id != e.key.id {
                // `key_id`: the key named is the wrong one (AWS's IncorrectKeyException),
                // not a damaged ciphertext.
                return Err(Error::incorrect_key(format!(
                    "the ciphertext was not made with key {r}"
                )));
            }
        }
        self.authorize_ctx(caller, op, Some(&e.key), Some(ctx))?;
        need_usage(&e, KeyUsage::Decrypt, "decrypt")?;
        not_raw(&e, "decrypt")?;
        if e.version(header.key_version).is_none() {
            // A version made since we cached the key (on another node): read again once.
            self.cache.invalidate_key(e.key.id);
            e = self.entry(caller.tenant(), header.key_id, &shown).await?;
        }
        let r = self
            .ready(
                caller.meta.door,
                &e,
                Some(header.key_version),
                Use::Process,
                "decrypt",
                note,
            )
            .await?;
        let pt = match header.alg {
            CiphertextAlg::AesGcm => r
                .handle
                .aead_open(&ciphertext::aad(&header.encode(), aad, ctx), body)?,
            CiphertextAlg::RsaOaepSha256 => {
                if !aad.is_empty() || !ctx.is_empty() {
                    return Err(Error::unbindable_context(
                        "RSA-OAEP ciphertexts carry no AAD or encryption context",
                    ));
                }
                r.handle.oaep_decrypt(body)?
            }
        };
        Ok((pt, e, r.version, r.compromised))
    }

    /// Encrypts up to `max_plaintext_bytes` under the key's primary version.
    pub async fn encrypt(
        &self,
        caller: &Caller,
        key: &str,
        req: EncryptRequest,
    ) -> Result<EncryptResponse> {
        self.audited(caller, Action::Encrypt, async |note: &mut Note| {
            let e = self
                .prepare_ctx(
                    caller,
                    key,
                    Action::Encrypt,
                    None,
                    Some(&req.encryption_context),
                    note,
                )
                .await?;
            self.check_len("plaintext", req.plaintext.expose().len())?;
            if let Some(a) = req.encryption_algorithm {
                if Some(a) != EncryptionAlgorithm::for_spec(e.key.spec) {
                    return Err(Error::unprocessable(
                        "encryption_algorithm",
                        format!("a {} key does not encrypt with {a:?}", e.key.spec),
                    ));
                }
            }
            let aad = req.aad.map(|b| b.0).unwrap_or_default();
            let (ct, version, alg) = self
                .seal(
                    caller,
                    &e,
                    &aad,
                    &req.encryption_context,
                    req.plaintext.expose(),
                    "encrypt",
                    note,
                )
                .await?;
            Ok(EncryptResponse {
                ciphertext: Bytes(ct),
                key_id: e.key.id,
                key_version: version,
                encryption_algorithm: alg,
            })
        })
        .await
    }

    /// Raw encryption (see [`RawCipher`]): the same authorization, lifecycle and audit as
    /// [`Service::encrypt`] (action `Encrypt`), with the caller's cipher parameters.
    pub async fn encrypt_raw(
        &self,
        caller: &Caller,
        key: &str,
        req: RawEncryptRequest,
    ) -> Result<RawEncryptResponse> {
        self.encrypt_raw_with(caller, key, move |_| Ok(req)).await
    }

    /// [`Service::encrypt_raw`] with a request built once the key is resolved and the caller
    /// authorized: for doors whose defaults depend on the key (KMIP's Cryptographic
    /// Parameters, XKS's ciphertext metadata), so that the request is one service call and
    /// one audit record. An error of `build` is refused and audited as the operation's.
    pub async fn encrypt_raw_with(
        &self,
        caller: &Caller,
        key: &str,
        build: impl FnOnce(&arca_core::model::Key) -> Result<RawEncryptRequest> + Send,
    ) -> Result<RawEncryptResponse> {
        self.audited(caller, Action::Encrypt, async |note: &mut Note| {
            let e = self
                .prepare(
                    caller,
                    key,
                    Action::Encrypt,
                    Some((KeyUsage::Encrypt, "encrypt")),
                    note,
                )
                .await?;
            let req = build(&e.key)?;
            if req.integrity_check.is_some() {
                if !matches!(req.cipher, RawCipher::Aes(_)) {
                    return Err(Error::invalid(
                        "integrity_check",
                        "an encryption is checked by decrypting it with AES keys only",
                    ));
                }
                need_usage(
                    &e,
                    KeyUsage::Decrypt,
                    "check an encryption by decrypting it",
                )?;
            }
            // GCM over nothing is GMAC: a tag over the AAD alone.
            let gmac = req.data.expose().is_empty()
                && req.cipher == RawCipher::Aes(arca_core::cipher::RawMode::Gcm);
            if !gmac {
                self.check_len("data", req.data.expose().len())?;
            }
            note.set("cipher", format!("{:?}", req.cipher));
            let tag_len = match (req.tag_length, &req.cipher) {
                (None, _) => arca_core::cipher::GCM_TAG_LEN,
                (Some(n), RawCipher::Aes(arca_core::cipher::RawMode::Gcm)) => {
                    arca_crypto::aead_params::check_tag_len("tag_length", n)?;
                    note.set("tag_length", n);
                    n
                }
                (Some(_), _) => {
                    return Err(Error::invalid(
                        "tag_length",
                        "a tag length applies to GCM only",
                    ))
                }
            };
            let r = self
                .ready_to_protect(
                    caller.meta.door,
                    &e,
                    req.data.expose().len(),
                    "encrypt",
                    note,
                )
                .await?;
            if let Some(part) = req.stream.clone() {
                return self
                    .encrypt_stream_part(caller, &e, &r, req, part, tag_len, note)
                    .await;
            }
            let mut integrity_value = None;
            let (data, iv, tag) = match req.cipher {
                RawCipher::Aes(mode) => {
                    check_raw_aes(&e, mode, req.iv.is_some(), true, &req.aad, caller.meta.door)?;
                    let iv = match req.iv {
                        Some(iv) => iv,
                        None => {
                            let mut iv = vec![0u8; mode.iv_len()];
                            aws_lc_rs::rand::fill(&mut iv)
                                .map_err(|_| Error::internal("random"))?;
                            iv
                        }
                    };
                    let (ct, mut tag) =
                        r.handle
                            .raw_encrypt(mode, &iv, &req.aad, req.data.expose())?;
                    if let Some(check) = &req.integrity_check {
                        let back = r.handle.raw_decrypt(mode, &iv, &req.aad, &ct, &tag);
                        if !back.is_ok_and(|b| {
                            aws_lc_rs::constant_time::verify_slices_are_equal(&b, req.data.expose())
                                .is_ok()
                        }) {
                            return Err(Error::internal(
                                "an encryption did not decrypt to its plaintext",
                            ));
                        }
                        note.set("checked_by_decrypting", true);
                        integrity_value =
                            Some(Bytes(integrity_value_of(&check.prefix, &iv, &ct, &tag)));
                    }
                    // A shorter GCM tag is the full tag's leading bytes (SP 800-38D §7.1).
                    tag.truncate(tag_len);
                    (
                        ct,
                        (!iv.is_empty()).then_some(iv),
                        (!tag.is_empty()).then_some(tag),
                    )
                }
                RawCipher::RsaOaep(p) => {
                    no_iv_for_rsa(&req.iv, &req.aad)?;
                    (
                        r.handle.oaep_encrypt_params(&p, req.data.expose())?,
                        None,
                        None,
                    )
                }
                RawCipher::Legacy(cipher) => {
                    check_raw_legacy(&e, cipher, caller.meta.door)?;
                    // Without a caller's IV or nonce the server draws one of the longest
                    // length the cipher takes, and returns it.
                    let iv = match req.iv {
                        Some(iv) => iv,
                        None => {
                            let len = cipher.iv_lens().iter().copied().max().unwrap_or(0);
                            let mut iv = vec![0u8; len];
                            aws_lc_rs::rand::fill(&mut iv)
                                .map_err(|_| Error::internal("random"))?;
                            iv
                        }
                    };
                    let (ct, tag) =
                        r.handle
                            .legacy_encrypt(cipher, &iv, &req.aad, req.data.expose())?;
                    (
                        ct,
                        (!iv.is_empty()).then_some(iv),
                        (!tag.is_empty()).then_some(tag),
                    )
                }
            };
            Ok(RawEncryptResponse {
                data: Bytes(data),
                iv: iv.map(Bytes),
                tag: tag.map(Bytes),
                key_id: e.key.id,
                key_version: r.version,
                integrity_value,
                correlation: None,
            })
        })
        .await
    }

    /// One part of a multi-request GCM encryption ([`RawStream`]), after the checks every
    /// raw encryption passes (authorization, usage, lifecycle, the key's raw-mode rules).
    /// A later part belongs to the caller, tenant and key that began it, and to the key
    /// version it began with; the tag comes with the final part.
    #[allow(clippy::too_many_arguments)]
    async fn encrypt_stream_part(
        &self,
        caller: &Caller,
        e: &KeyEntry,
        r: &Ready,
        req: RawEncryptRequest,
        part: RawStream,
        tag_len: usize,
        note: &mut Note,
    ) -> Result<RawEncryptResponse> {
        use arca_core::cipher::RawMode;
        if req.cipher != RawCipher::Aes(RawMode::Gcm) || req.integrity_check.is_some() {
            return Err(Error::invalid(
                "stream",
                "only GCM encrypts in several requests",
            ));
        }
        let random = |n: usize| -> Result<Vec<u8>> {
            let mut b = vec![0u8; n];
            aws_lc_rs::rand::fill(&mut b).map_err(|_| Error::internal("random"))?;
            Ok(b)
        };
        let (state, correlation, drawn_iv) = match &part {
            RawStream::Init => {
                note.set("stream", "init");
                check_raw_aes(
                    e,
                    RawMode::Gcm,
                    req.iv.is_some(),
                    true,
                    &req.aad,
                    caller.meta.door,
                )?;
                let (iv, drawn) = match &req.iv {
                    Some(iv) => (iv.clone(), false),
                    None => (random(RawMode::Gcm.iv_len())?, true),
                };
                let state = GcmStream {
                    tenant: caller.tenant(),
                    principal: caller.principal.id,
                    key: e.key.id,
                    version: r.version,
                    iv,
                    aad: req.aad.clone(),
                    ciphertext: Vec::new(),
                    tag_len,
                };
                (state, random(16)?, drawn)
            }
            RawStream::Continue(c) | RawStream::Final(c) => {
                note.set(
                    "stream",
                    if matches!(part, RawStream::Final(_)) {
                        "final"
                    } else {
                        "continue"
                    },
                );
                if req.iv.is_some() || !req.aad.is_empty() {
                    return Err(Error::invalid(
                        "iv",
                        "the IV and the additional data of a multi-request encryption come with its first part",
                    ));
                }
                let s = self
                    .cache
                    .streams
                    .get(c)
                    .filter(|s| {
                        s.tenant == caller.tenant()
                            && s.principal == caller.principal.id
                            && s.key == e.key.id
                    })
                    .ok_or_else(|| {
                        Error::not_found(
                            "correlation_value",
                            "no encryption of this caller and key is in progress by that correlation value (it ended, or was left for ten minutes)",
                        )
                    })?;
                if s.version != r.version {
                    return Err(Error::conflict(
                        "the key's primary version changed during the encryption; begin it again",
                    ));
                }
                ((*s).clone(), c.clone(), false)
            }
        };
        let done = state.ciphertext.len();
        let total = done + req.data.expose().len();
        if total > self.config.max_plaintext_bytes {
            self.cache.streams.remove(&correlation);
            return Err(Error::invalid(
                "data",
                format!(
                    "a multi-request encryption takes at most {} bytes in all",
                    self.config.max_plaintext_bytes
                ),
            ));
        }
        // The plaintext so far, recovered from the ciphertext already answered: GCM's
        // ciphertext is the plaintext XOR a key stream that the key and IV alone decide
        // (the AAD only enters the tag), and the encryption of zeros is that key stream.
        let mut plain = Zeroizing::new(vec![0u8; total]);
        if done > 0 {
            let (stream, _) =
                r.handle
                    .raw_encrypt(RawMode::Gcm, &state.iv, &[], &vec![0u8; done])?;
            let stream = Zeroizing::new(stream);
            for (p, (c, k)) in plain
                .iter_mut()
                .zip(state.ciphertext.iter().zip(stream.iter()))
            {
                *p = c ^ k;
            }
        }
        plain[done..].copy_from_slice(req.data.expose());
        let (ct, mut tag) = r
            .handle
            .raw_encrypt(RawMode::Gcm, &state.iv, &state.aad, &plain)?;
        let out = ct[done..].to_vec();
        let last = matches!(part, RawStream::Final(_));
        if last {
            self.cache.streams.remove(&correlation);
            tag.truncate(state.tag_len);
        } else {
            self.cache.streams.insert(
                correlation.clone(),
                Arc::new(GcmStream {
                    ciphertext: ct,
                    ..state.clone()
                }),
            );
        }
        Ok(RawEncryptResponse {
            data: Bytes(out),
            iv: drawn_iv.then(|| Bytes(state.iv.clone())),
            tag: last.then_some(Bytes(tag)),
            key_id: e.key.id,
            key_version: r.version,
            integrity_value: None,
            correlation: (!last).then_some(Bytes(correlation)),
        })
    }

    /// Raw decryption, the inverse of [`Service::encrypt_raw`] (action `Decrypt`), under
    /// the version the request names, else the key's primary version.
    pub async fn decrypt_raw(
        &self,
        caller: &Caller,
        key: &str,
        req: RawDecryptRequest,
    ) -> Result<RawDecryptResponse> {
        self.decrypt_raw_with(caller, key, move |_| Ok(req)).await
    }

    /// [`Service::decrypt_raw`] with a request built once the key is resolved and the caller
    /// authorized: for doors whose defaults depend on the key (KMIP's Cryptographic
    /// Parameters, XKS's ciphertext metadata), so that the request is one service call and
    /// one audit record. An error of `build` is refused and audited as the operation's.
    pub async fn decrypt_raw_with(
        &self,
        caller: &Caller,
        key: &str,
        build: impl FnOnce(&arca_core::model::Key) -> Result<RawDecryptRequest> + Send,
    ) -> Result<RawDecryptResponse> {
        self.decrypt_raw_then(caller, key, build, |r, _| Ok(r))
            .await
    }

    /// [`Service::decrypt_raw_with`] whose plaintext `then` turns, inside the one audited
    /// operation, into what leaves the service (a digest of it, or the result of using it
    /// as a key): the plaintext itself never does, and an error of `then` is refused and
    /// audited as the decryption's.
    pub(crate) async fn decrypt_raw_then<T: Send>(
        &self,
        caller: &Caller,
        key: &str,
        build: impl FnOnce(&arca_core::model::Key) -> Result<RawDecryptRequest> + Send,
        then: impl FnOnce(RawDecryptResponse, &mut Note) -> Result<T> + Send,
    ) -> Result<T> {
        self.audited(caller, Action::Decrypt, async |note: &mut Note| {
            let e = self
                .prepare(
                    caller,
                    key,
                    Action::Decrypt,
                    Some((KeyUsage::Decrypt, "decrypt")),
                    note,
                )
                .await?;
            let req = build(&e.key)?;
            note.set("cipher", format!("{:?}", req.cipher));
            let r = self
                .ready(
                    caller.meta.door,
                    &e,
                    req.key_version,
                    Use::Process,
                    "decrypt",
                    note,
                )
                .await?;
            let data = match req.cipher {
                RawCipher::Aes(mode) => {
                    check_raw_aes(
                        &e,
                        mode,
                        req.iv.is_some(),
                        false,
                        &req.aad,
                        caller.meta.door,
                    )?;
                    let iv = req.iv.unwrap_or_default();
                    let tag = req.tag.unwrap_or_default();
                    r.handle
                        .raw_decrypt(mode, &iv, &req.aad, &req.data.0, &tag)?
                }
                RawCipher::RsaOaep(p) => {
                    no_iv_for_rsa(&req.iv, &req.aad)?;
                    r.handle.oaep_decrypt_params(&p, &req.data.0)?
                }
                RawCipher::Legacy(cipher) => {
                    check_raw_legacy(&e, cipher, caller.meta.door)?;
                    let iv = req.iv.unwrap_or_default();
                    let tag = req.tag.unwrap_or_default();
                    r.handle
                        .legacy_decrypt(cipher, &iv, &req.aad, &req.data.0, &tag)?
                }
            };
            let out = RawDecryptResponse {
                data: Secret::new(data),
                key_id: e.key.id,
                key_version: r.version,
                key_compromised: r.compromised,
            };
            then(out, note)
        })
        .await
    }

    /// Decrypts; the key and version come from the ciphertext. `key`, when given, must be
    /// the key the ciphertext names.
    pub async fn decrypt(
        &self,
        caller: &Caller,
        key: Option<&str>,
        req: DecryptRequest,
    ) -> Result<DecryptResponse> {
        self.audited(caller, Action::Decrypt, async |note: &mut Note| {
            let aad = req.aad.map(|b| b.0).unwrap_or_default();
            let (pt, e, version, compromised) = self
                .open(
                    caller,
                    key,
                    &req.ciphertext.0,
                    &aad,
                    &req.encryption_context,
                    Action::Decrypt,
                    note,
                )
                .await?;
            Ok(DecryptResponse {
                plaintext: Secret::new(pt),
                key_id: e.key.id,
                key_version: version,
                key_compromised: compromised,
            })
        })
        .await
    }

    /// Decrypts under the source key and encrypts under `key` without releasing plaintext.
    pub async fn re_encrypt(
        &self,
        caller: &Caller,
        key: &str,
        req: ReEncryptRequest,
    ) -> Result<ReEncryptResponse> {
        self.audited(caller, Action::ReEncrypt, async |note: &mut Note| {
            let dest = self
                .prepare_ctx(
                    caller,
                    key,
                    Action::ReEncryptTo,
                    None,
                    Some(&req.destination_encryption_context),
                    note,
                )
                .await?;
            let saad = req.source_aad.map(|b| b.0).unwrap_or_default();
            let (pt, src, sv, _) = self
                .open(
                    caller,
                    req.source_key.as_deref(),
                    &req.ciphertext.0,
                    &saad,
                    &req.source_encryption_context,
                    Action::ReEncryptFrom,
                    note,
                )
                .await?;
            note.set("source_key_id", src.key.id.to_string());
            note.key(dest.key.id);
            let daad = req.destination_aad.map(|b| b.0).unwrap_or_default();
            let (ct, dv, _) = self
                .seal(
                    caller,
                    &dest,
                    &daad,
                    &req.destination_encryption_context,
                    &pt,
                    "re-encrypt",
                    note,
                )
                .await?;
            Ok(ReEncryptResponse {
                ciphertext: Bytes(ct),
                source_key_id: src.key.id,
                source_key_version: sv,
                key_id: dest.key.id,
                key_version: dv,
            })
        })
        .await
    }

    /// The symmetric key that wraps data keys and data key pairs.
    async fn data_key_wrapper(
        &self,
        caller: &Caller,
        key: &str,
        action: Action,
        ctx: &EncryptionContext,
        note: &mut Note,
    ) -> Result<Arc<KeyEntry>> {
        let e = self
            .prepare_ctx(caller, key, action, None, Some(ctx), note)
            .await?;
        if e.key.spec.family() != KeyFamily::Aes {
            return Err(Error::unsuitable_key(
                "data keys are encrypted under symmetric (AES) keys",
            ));
        }
        Ok(e)
    }

    /// Generates a data key and returns it encrypted under `key` (and in plaintext unless
    /// `with_plaintext` is false).
    pub async fn generate_data_key(
        &self,
        caller: &Caller,
        key: &str,
        req: GenerateDataKeyRequest,
        with_plaintext: bool,
    ) -> Result<DataKeyResponse> {
        let action = if with_plaintext {
            Action::GenerateDataKey
        } else {
            Action::GenerateDataKeyWithoutPlaintext
        };
        self.audited(caller, action, async |note: &mut Note| {
            let e = self
                .data_key_wrapper(caller, key, action, &req.encryption_context, note)
                .await?;
            let len = match (req.key_spec, req.number_of_bytes) {
                (Some(_), Some(_)) => {
                    return Err(Error::invalid(
                        "number_of_bytes",
                        "give key_spec or number_of_bytes, not both",
                    ))
                }
                (_, Some(n)) if !(1..=1024).contains(&n) => {
                    return Err(Error::invalid("number_of_bytes", "must be 1 to 1024"))
                }
                (_, Some(n)) => n as usize,
                (Some(DataKeySpec::Aes128), None) => 16,
                (Some(DataKeySpec::Aes256), None) | (None, None) => 32,
            };
            let dk = self.crypto.random(len)?;
            let aad = req.aad.map(|b| b.0).unwrap_or_default();
            let (ct, version, _) = self
                .seal(
                    caller,
                    &e,
                    &aad,
                    &req.encryption_context,
                    &dk,
                    "generate a data key",
                    note,
                )
                .await?;
            Ok(DataKeyResponse {
                ciphertext: Bytes(ct),
                plaintext: with_plaintext.then(|| Secret::new(dk)),
                key_id: e.key.id,
                key_version: version,
            })
        })
        .await
    }

    /// Generates an asymmetric data key pair whose private key is encrypted under `key`.
    pub async fn generate_data_key_pair(
        &self,
        caller: &Caller,
        key: &str,
        req: GenerateDataKeyPairRequest,
        with_plaintext: bool,
    ) -> Result<DataKeyPairResponse> {
        let action = if with_plaintext {
            Action::GenerateDataKeyPair
        } else {
            Action::GenerateDataKeyPairWithoutPlaintext
        };
        self.audited(caller, action, async |note: &mut Note| {
            let e = self
                .data_key_wrapper(caller, key, action, &req.encryption_context, note)
                .await?;
            if !req.key_pair_spec.is_asymmetric() {
                return Err(Error::invalid(
                    "key_pair_spec",
                    format!("{} is not an asymmetric spec", req.key_pair_spec),
                ));
            }
            let m = self.crypto.generate(req.key_pair_spec)?;
            let aad = req.aad.map(|b| b.0).unwrap_or_default();
            let (ct, version, _) = self
                .seal(
                    caller,
                    &e,
                    &aad,
                    &req.encryption_context,
                    &m.secret,
                    "generate a data key pair",
                    note,
                )
                .await?;
            Ok(DataKeyPairResponse {
                key_pair_spec: req.key_pair_spec,
                public_key: Bytes(m.public_spki.clone().unwrap_or_default()),
                private_key_ciphertext: Bytes(ct),
                private_key_plaintext: with_plaintext.then(|| Secret::new(m.secret.clone())),
                key_id: e.key.id,
                key_version: version,
            })
        })
        .await
    }

    fn signing_alg(e: &KeyEntry, requested: Option<SigningAlgorithm>) -> Result<SigningAlgorithm> {
        requested
            .or_else(|| SigningAlgorithm::for_spec(e.key.spec).first().copied())
            .ok_or_else(|| Error::unsuitable_key(format!("a {} key cannot sign", e.key.spec)))
    }

    /// The signing algorithm and PSS salt length of a sign or verify request: a legacy
    /// algorithm (RSASSA-PSS with SHA-1) only where the tenant allows legacy algorithms,
    /// and a salt length only with RSASSA-PSS. Both go into the audit record.
    async fn signing_params(
        &self,
        caller: &Caller,
        e: &KeyEntry,
        requested: Option<SigningAlgorithm>,
        salt: Option<arca_core::cipher::PssSalt>,
        note: &mut Note,
    ) -> Result<(SigningAlgorithm, arca_core::cipher::PssSalt)> {
        let alg = Self::signing_alg(e, requested)?;
        if let Some(legacy) = alg.legacy() {
            note.set("signing_algorithm", alg.as_str());
            self.permit_legacy(caller, legacy, "signing_algorithm")
                .await?;
        }
        let salt = salt.unwrap_or_default();
        if salt != arca_core::cipher::PssSalt::HashLength {
            if !alg.is_pss() {
                return Err(Error::invalid(
                    "salt_length",
                    format!(
                        "a salt length applies to RSASSA-PSS only, not {}",
                        alg.as_str()
                    ),
                ));
            }
            note.set("pss_salt", format!("{salt:?}"));
        }
        Ok((alg, salt))
    }

    /// Signs with the primary version.
    pub async fn sign(&self, caller: &Caller, key: &str, req: SignRequest) -> Result<SignResponse> {
        self.sign_with(caller, key, move |_| Ok(req)).await
    }

    /// [`Service::sign`] with a request built once the key is resolved and the caller
    /// authorized: for doors whose defaults depend on the key (KMIP's Cryptographic
    /// Parameters, XKS's ciphertext metadata), so that the request is one service call and
    /// one audit record. An error of `build` is refused and audited as the operation's.
    pub async fn sign_with(
        &self,
        caller: &Caller,
        key: &str,
        build: impl FnOnce(&arca_core::model::Key) -> Result<SignRequest> + Send,
    ) -> Result<SignResponse> {
        self.audited(caller, Action::Sign, async |note: &mut Note| {
            let e = self
                .prepare(
                    caller,
                    key,
                    Action::Sign,
                    Some((KeyUsage::Sign, "sign")),
                    note,
                )
                .await?;
            let req = build(&e.key)?;
            self.check_len("message", req.message.expose().len())?;
            let (alg, salt) = self
                .signing_params(caller, &e, req.signing_algorithm, req.pss_salt, note)
                .await?;
            let r = self
                .ready_to_protect(
                    caller.meta.door,
                    &e,
                    req.message.expose().len(),
                    "sign",
                    note,
                )
                .await?;
            let sig = r
                .handle
                .sign_with_salt(alg, salt, req.message_type, req.message.expose())?;
            Ok(SignResponse {
                signature: Bytes(sig),
                signing_algorithm: alg,
                key_id: e.key.id,
                key_version: r.version,
            })
        })
        .await
    }

    /// Verifies a signature with a version (default primary).
    pub async fn verify(
        &self,
        caller: &Caller,
        key: &str,
        req: VerifyRequest,
    ) -> Result<VerifyResponse> {
        self.verify_with(caller, key, move |_| Ok(req)).await
    }

    /// [`Service::verify`] with a request built once the key is resolved and the caller
    /// authorized: for doors whose defaults depend on the key (KMIP's Cryptographic
    /// Parameters, XKS's ciphertext metadata), so that the request is one service call and
    /// one audit record. An error of `build` is refused and audited as the operation's.
    pub async fn verify_with(
        &self,
        caller: &Caller,
        key: &str,
        build: impl FnOnce(&arca_core::model::Key) -> Result<VerifyRequest> + Send,
    ) -> Result<VerifyResponse> {
        self.audited(caller, Action::Verify, async |note: &mut Note| {
            let e = self
                .prepare(
                    caller,
                    key,
                    Action::Verify,
                    Some((KeyUsage::Verify, "verify")),
                    note,
                )
                .await?;
            let req = build(&e.key)?;
            self.check_len("message", req.message.expose().len())?;
            let (alg, salt) = self
                .signing_params(caller, &e, req.signing_algorithm, req.pss_salt, note)
                .await?;
            let r = self
                .ready(
                    caller.meta.door,
                    &e,
                    req.key_version,
                    Use::Process,
                    "verify",
                    note,
                )
                .await?;
            let valid = r.handle.verify_with_salt(
                alg,
                salt,
                req.message_type,
                req.message.expose(),
                &req.signature.0,
            )?;
            note.set("valid", valid);
            Ok(VerifyResponse {
                valid,
                key_id: e.key.id,
                key_version: r.version,
                key_compromised: r.compromised,
            })
        })
        .await
    }

    /// The MAC algorithm of a request on a key: an HMAC key's own; or, for a key whose MAC
    /// usage is a legacy one (an AES key registered for HMAC,
    /// [`arca_core::access::LegacyAlgorithm::CrossAlgorithmHmac`]), the one the request
    /// names, in a tenant that allows it. The `bool` is true in the second case: the HMAC
    /// is then keyed by the other algorithm's key bytes ([`arca_crypto::KeyHandle::hmac_with`]).
    async fn check_mac_alg(
        &self,
        caller: &Caller,
        e: &KeyEntry,
        alg: Option<MacAlgorithm>,
    ) -> Result<(MacAlgorithm, bool)> {
        if let Some(l) = e.key.spec.legacy_usage(KeyUsage::GenerateMac) {
            self.permit_legacy(caller, l, "key").await?;
            let a = alg.ok_or_else(|| {
                Error::invalid(
                    "mac_algorithm",
                    format!(
                        "a {} key computes an HMAC with the hash the request names: name HMAC_SHA_256, 384 or 512",
                        e.key.spec
                    ),
                )
            })?;
            return Ok((a, true));
        }
        let own = MacAlgorithm::for_spec(e.key.spec).ok_or_else(|| {
            Error::unsuitable_key(format!("a {} key cannot compute a MAC", e.key.spec))
        })?;
        match alg {
            Some(a) if a != own => Err(Error::unprocessable(
                "mac_algorithm",
                format!("a {} key computes {own:?}, not {a:?}", e.key.spec),
            )),
            _ => Ok((own, false)),
        }
    }

    /// Computes an HMAC with the primary version.
    pub async fn generate_mac(
        &self,
        caller: &Caller,
        key: &str,
        req: MacRequest,
    ) -> Result<MacResponse> {
        self.generate_mac_with(caller, key, move |_| Ok(req)).await
    }

    /// [`Service::generate_mac`] with a request built once the key is resolved and the caller
    /// authorized: for doors whose defaults depend on the key (KMIP's Cryptographic
    /// Parameters, XKS's ciphertext metadata), so that the request is one service call and
    /// one audit record. An error of `build` is refused and audited as the operation's.
    pub async fn generate_mac_with(
        &self,
        caller: &Caller,
        key: &str,
        build: impl FnOnce(&arca_core::model::Key) -> Result<MacRequest> + Send,
    ) -> Result<MacResponse> {
        self.audited(caller, Action::GenerateMac, async |note: &mut Note| {
            let e = self
                .prepare(
                    caller,
                    key,
                    Action::GenerateMac,
                    Some((KeyUsage::GenerateMac, "generate a MAC")),
                    note,
                )
                .await?;
            let req = build(&e.key)?;
            self.check_len("message", req.message.expose().len())?;
            let (alg, by_bytes) = self.check_mac_alg(caller, &e, req.mac_algorithm).await?;
            let r = self
                .ready_to_protect(
                    caller.meta.door,
                    &e,
                    req.message.expose().len(),
                    "generate a MAC",
                    note,
                )
                .await?;
            let mac = if by_bytes {
                r.handle.hmac_with(alg, req.message.expose())?
            } else {
                r.handle.mac(req.message.expose())?
            };
            Ok(MacResponse {
                mac: Bytes(mac),
                mac_algorithm: alg,
                key_id: e.key.id,
                key_version: r.version,
            })
        })
        .await
    }

    /// Verifies an HMAC in constant time with a version (default primary).
    pub async fn verify_mac(
        &self,
        caller: &Caller,
        key: &str,
        req: MacVerifyRequest,
    ) -> Result<VerifyResponse> {
        self.verify_mac_with(caller, key, move |_| Ok(req)).await
    }

    /// [`Service::verify_mac`] with a request built once the key is resolved and the caller
    /// authorized: for doors whose defaults depend on the key (KMIP's Cryptographic
    /// Parameters, XKS's ciphertext metadata), so that the request is one service call and
    /// one audit record. An error of `build` is refused and audited as the operation's.
    pub async fn verify_mac_with(
        &self,
        caller: &Caller,
        key: &str,
        build: impl FnOnce(&arca_core::model::Key) -> Result<MacVerifyRequest> + Send,
    ) -> Result<VerifyResponse> {
        self.audited(caller, Action::VerifyMac, async |note: &mut Note| {
            let e = self
                .prepare(
                    caller,
                    key,
                    Action::VerifyMac,
                    Some((KeyUsage::VerifyMac, "verify a MAC")),
                    note,
                )
                .await?;
            let req = build(&e.key)?;
            self.check_len("message", req.message.expose().len())?;
            let (alg, by_bytes) = self.check_mac_alg(caller, &e, req.mac_algorithm).await?;
            let r = self
                .ready(
                    caller.meta.door,
                    &e,
                    req.key_version,
                    Use::Process,
                    "verify a MAC",
                    note,
                )
                .await?;
            let valid = if by_bytes {
                r.handle
                    .hmac_verify_with(alg, req.message.expose(), &req.mac.0)?
            } else {
                r.handle.mac_verify(req.message.expose(), &req.mac.0)?
            };
            note.set("valid", valid);
            Ok(VerifyResponse {
                valid,
                key_id: e.key.id,
                key_version: r.version,
                key_compromised: r.compromised,
            })
        })
        .await
    }

    /// ML-KEM encapsulation against the primary version's public key.
    pub async fn encapsulate(&self, caller: &Caller, key: &str) -> Result<EncapsulateResponse> {
        self.audited(caller, Action::Encapsulate, async |note: &mut Note| {
            let e = self
                .prepare(
                    caller,
                    key,
                    Action::Encapsulate,
                    Some((KeyUsage::KeyEncapsulation, "encapsulate")),
                    note,
                )
                .await?;
            let r = self
                .ready_to_protect(
                    caller.meta.door,
                    &e,
                    32, // the shared secret ML-KEM hands out
                    "encapsulate",
                    note,
                )
                .await?;
            let (ct, ss) = r.handle.encapsulate()?;
            Ok(EncapsulateResponse {
                ciphertext: Bytes(ct),
                shared_secret: Secret::new(ss),
                key_id: e.key.id,
                key_version: r.version,
            })
        })
        .await
    }

    /// ML-KEM decapsulation with a version (default primary).
    pub async fn decapsulate(
        &self,
        caller: &Caller,
        key: &str,
        req: DecapsulateRequest,
    ) -> Result<DecapsulateResponse> {
        self.audited(caller, Action::Decapsulate, async |note: &mut Note| {
            let e = self
                .prepare(
                    caller,
                    key,
                    Action::Decapsulate,
                    Some((KeyUsage::KeyEncapsulation, "decapsulate")),
                    note,
                )
                .await?;
            let r = self
                .ready(
                    caller.meta.door,
                    &e,
                    req.key_version,
                    Use::Process,
                    "decapsulate",
                    note,
                )
                .await?;
            let ss = r.handle.decapsulate(&req.ciphertext.0)?;
            Ok(DecapsulateResponse {
                shared_secret: Secret::new(ss),
                key_id: e.key.id,
                key_version: r.version,
                key_compromised: r.compromised,
            })
        })
        .await
    }

    /// The public key of an asymmetric key version (default primary), SPKI DER and PEM.
    pub async fn get_public_key(
        &self,
        caller: &Caller,
        key: &str,
        version: Option<u32>,
    ) -> Result<PublicKeyResponse> {
        self.public_key_for(caller, key, version, false).await
    }

    /// [`Service::get_public_key`]; with `to_protect`, only while the version may protect
    /// new data (for a door whose client encrypts under the key it fetches, as Microsoft
    /// DKE's does: a suspended key must stop new encryption, not only decryption).
    pub(crate) async fn public_key_for(
        &self,
        caller: &Caller,
        key: &str,
        version: Option<u32>,
        to_protect: bool,
    ) -> Result<PublicKeyResponse> {
        self.audited(caller, Action::GetPublicKey, async |note: &mut Note| {
            let e = self
                .prepare(caller, key, Action::GetPublicKey, None, note)
                .await?;
            let v = pick_version(&e, version)?;
            if to_protect {
                lifecycle::check_use(
                    &e.key,
                    v,
                    Use::Protect,
                    "get-public-key",
                    self.now(),
                    caller.meta.door,
                )?;
            }
            if v.state.is_destroyed() {
                return Err(Error::WrongState {
                    operation: "get-public-key".into(),
                    target: format!("version {} of key {}", v.version, e.key.id),
                    state: v.state,
                    detail: None,
                });
            }
            let spki = v.public_key.clone().ok_or_else(|| {
                Error::unsuitable_key(format!("a {} key has no public key", e.key.spec))
            })?;
            let pem = pem_encode("PUBLIC KEY", &spki);
            Ok(PublicKeyResponse {
                key_id: e.key.id,
                key_version: v.version,
                spec: e.key.spec,
                usage: e.key.usage.clone(),
                public_key: Bytes(spki),
                public_key_pem: pem,
                signing_algorithms: if e.key.can(KeyUsage::Sign) || e.key.can(KeyUsage::Verify) {
                    SigningAlgorithm::for_spec(e.key.spec).to_vec()
                } else {
                    vec![]
                },
                encryption_algorithms: if e.key.can(KeyUsage::Encrypt)
                    || e.key.can(KeyUsage::Decrypt)
                {
                    EncryptionAlgorithm::for_spec(e.key.spec)
                        .into_iter()
                        .collect()
                } else {
                    vec![]
                },
            })
        })
        .await
    }

    /// Random bytes.
    pub async fn generate_random(
        &self,
        caller: &Caller,
        req: RandomRequest,
    ) -> Result<RandomResponse> {
        self.audited(caller, Action::GenerateRandom, async |_: &mut Note| {
            self.authorize(caller, Action::GenerateRandom, None)?;
            if !(1..=1024).contains(&req.number_of_bytes) {
                return Err(Error::invalid("number_of_bytes", "must be 1 to 1024"));
            }
            Ok(RandomResponse {
                random: Secret::new(self.crypto.random(req.number_of_bytes as usize)?),
            })
        })
        .await
    }

    /// The digest of caller data (KMIP's Hash). No key is involved; the data is the
    /// caller's own, so it is held as a secret and never logged.
    pub async fn hash(&self, caller: &Caller, req: HashRequest) -> Result<HashResponse> {
        self.audited(caller, Action::Hash, async |_: &mut Note| {
            self.authorize(caller, Action::Hash, None)?;
            self.check_len("data", req.data.expose().len())?;
            Ok(HashResponse {
                algorithm: req.algorithm,
                digest: Bytes(arca_crypto::digest::digest(
                    req.algorithm,
                    req.data.expose(),
                )),
            })
        })
        .await
    }

    /// Exports a version's material in plaintext; only keys created extractable.
    pub async fn export_key(
        &self,
        caller: &Caller,
        key: &str,
        req: ExportRequest,
    ) -> Result<ExportResponse> {
        self.audited(caller, Action::ExportKey, async |note: &mut Note| {
            let (e, version, format, material) = self
                .export_material(
                    caller,
                    key,
                    (req.key_version, req.encoding),
                    plain_export,
                    note,
                )
                .await?;
            Ok(ExportResponse {
                key_id: e.key.id,
                key_version: version,
                spec: e.key.spec,
                format,
                material: Secret::new(material),
            })
        })
        .await
    }

    /// Export wrapped under another key of the caller's (KMIP's Get with a Key Wrapping
    /// Specification): the same rules as [`Service::export_key`] for the exported key
    /// (action `ExportKey`, extractable, approvals), and `Encrypt` on the wrapping key, which
    /// must be usable now and allowed to encrypt or wrap. Audited once, as `ExportKey`,
    /// naming the wrapping key.
    pub async fn export_key_wrapped(
        &self,
        caller: &Caller,
        key: &str,
        req: WrappedExportRequest,
    ) -> Result<WrappedExportResponse> {
        self.audited(caller, Action::ExportKey, async |note: &mut Note| {
            let w = self
                .resolve(caller.tenant(), "wrapping_key", &req.wrapping_key)
                .await?;
            self.authorize(caller, Action::Encrypt, Some(&w.key))?;
            if !(w.key.can(KeyUsage::Wrap) || w.key.can(KeyUsage::Encrypt)) {
                return Err(Error::unprocessable(
                    "wrapping_key",
                    format!("key {} may neither wrap nor encrypt", w.key.id),
                ));
            }
            note.set("wrapping_key", w.key.id.to_string());
            let (e, version, format, material) = self
                .export_material(caller, key, (req.key_version, None), plain_export, note)
                .await?;
            let r = self.ready_to_wrap(caller, &w, material.len(), note).await?;
            let wrapped = match req.cipher {
                WrapCipher::AesKeyWrap => r.handle.key_wrap(false, &material)?,
                WrapCipher::AesKeyWrapPadded => r.handle.key_wrap(true, &material)?,
                WrapCipher::RsaOaep(h) => r.handle.oaep_encrypt_with(h, &material)?,
            };
            Ok(WrappedExportResponse {
                key_id: e.key.id,
                key_version: version,
                spec: e.key.spec,
                format,
                wrapped: Bytes(wrapped),
                wrapping_key_id: w.key.id,
                wrapping_key_version: r.version,
            })
        })
        .await
    }

    /// The checks and the approval gate every export goes through, then the material: the
    /// key's entry, the version, the form the material is in and the plaintext material.
    /// `wanted` is the version (default the primary one) and the form (default the one
    /// the key is kept in). `pending` is what an approval of this export will run: the
    /// same export, not a plaintext one.
    pub(crate) async fn export_material(
        &self,
        caller: &Caller,
        key: &str,
        wanted: (Option<u32>, Option<KeyEncoding>),
        pending: impl FnOnce(uuid::Uuid, u32) -> crate::approvals::Pending,
        note: &mut Note,
    ) -> Result<(Arc<KeyEntry>, u32, KeyEncoding, Zeroizing<Vec<u8>>)> {
        let (key_version, encoding) = wanted;
        let req = ExportRequest {
            key_version,
            encoding,
        };
        let e = self
            .prepare(caller, key, Action::ExportKey, None, note)
            .await?;
        if !e.key.extractable {
            return Err(Error::NotPermitted {
                message: format!(
                    "key {} was not created extractable; its material never leaves Arca",
                    e.key.id
                ),
            });
        }
        let v = pick_version(&e, req.key_version)?;
        note.key_version = Some(v.version);
        let (state, _) = lifecycle::effective_state(&e.key, self.now());
        if e.key.archived || v.archived || state.is_destroyed() || v.state.is_destroyed() {
            return Err(Error::WrongState {
                operation: "export".into(),
                target: format!("version {} of key {}", v.version, e.key.id),
                state: if state.is_destroyed() { state } else { v.state },
                detail: if e.key.archived || v.archived {
                    Some(StateDetail::other("archived"))
                } else {
                    None
                },
            });
        }
        if (e.key.destroy_after.is_some() || v.destroy_after.is_some()) && !state.is_destroyed() {
            // A key waiting for its destruction is not used, and not handed out either.
            return Err(Error::WrongState {
                operation: "export".into(),
                target: format!("version {} of key {}", v.version, e.key.id),
                state,
                detail: Some(StateDetail::PendingDestruction),
            });
        }
        // A form the key does not come in is refused before the gate: no approval is asked
        // for an export that cannot be given.
        let kept = KeyEncoding::kept(e.key.spec, v.public_only);
        let format = req.encoding.unwrap_or(kept);
        crate::encoding::check_export(e.key.id, e.key.spec, kept, format)?;
        if format != kept {
            note.set("encoding", format.as_str());
        }
        let version = v.version;
        let key_id = e.key.id;
        self.gate(caller, Action::ExportKey, Some(&e.key), || {
            pending(key_id, version)
        })
        .await?;
        let m = self.load_material(&e.key, v).await?;
        let material = match kept {
            KeyEncoding::Spki => Zeroizing::new(m.public_spki.clone().unwrap_or_default()),
            _ => m.secret,
        };
        let material = crate::encoding::export_as(material, kept, format)?;
        if !e.key.exported && !m.public_only {
            // The first time the secret leaves, the key stops being fresh (KMIP's Fresh):
            // written before the material is handed out, so the record is never behind.
            // Concurrent first exports race on the key's revision; whoever loses re-reads it
            // and finds it marked (or marks it on top of the other change).
            self.update_key_racing(&e.key, &e.versions, |k| {
                let first = !k.exported;
                k.exported = true;
                Ok(first)
            })
            .await?;
        }
        Ok((e.clone(), v.version, format, material))
    }
}

/// PEM with 64-column lines.
pub(crate) fn pem_encode(tag: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {tag}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    out
}

/// The value an [`IntegrityCheck`] answers with: SHA-256 over the prefix, the IV, the
/// ciphertext and the tag.
fn integrity_value_of(prefix: &[u8], iv: &[u8], ciphertext: &[u8], tag: &[u8]) -> Vec<u8> {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [prefix, iv, ciphertext, tag] {
        ctx.update(part);
    }
    ctx.finish().as_ref().to_vec()
}

/// The approval of a plain export runs a plain export (and so does, for now, a KMIP
/// wrapped Get's: its approvers approve the material leaving).
fn plain_export(key: uuid::Uuid, version: u32) -> crate::approvals::Pending {
    crate::approvals::Pending::Export {
        key,
        req: ExportRequest {
            key_version: Some(version),
            encoding: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// The XKS proxy API spec's Appendix C vector: the prefix is the AAD, then the
    /// ciphertext metadata.
    #[test]
    fn the_integrity_value_matches_xks_appendix_c() {
        let aad = hex("70 72 6f 6a 65 63 74 3d 6e 69 6c 65 2c 64 65 70 61 72 74 6d 65 6e 74 3d 6d 61 72 6b 65 74 69 6e 67");
        let metadata = hex("6b 65 79 5f 76 65 72 73 69 6f 6e 3d 31");
        let iv = hex("1c ca e5 47 0f 39 70 02 54 77 90 31");
        let ct = hex("82 1c 64 2b 5b 71 78 33 67 de af 18");
        let tag = hex("bc 1c 4d da 77 07 d6 81 24 47 c5 95 5e 99 b2 61");
        let v = integrity_value_of(&[aad, metadata].concat(), &iv, &ct, &tag);
        assert_eq!(
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v),
            "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="
        );
    }
}
