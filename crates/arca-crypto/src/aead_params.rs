//! AES-GCM with the IV and tag lengths a caller names, below aws-lc-rs's AEAD API.
//!
//! aws-lc-rs's `aead` takes 12-byte nonces and makes 16-byte tags only; KMIP clients (and
//! the OASIS profiles) also use GCM with IVs of other lengths (NIST SP 800-38D hashes
//! them with GHASH into the initial counter) and tags truncated to 12..16 bytes. aws-lc's
//! `EVP_AEAD` for AES-GCM takes both, so this module wraps just that: one call seals or
//! opens one message. The `EVP_AEAD_CTX` holds the expanded key; it is freed (and aws-lc's
//! `OPENSSL_free` cleanses what it frees) before each function returns, and this module
//! never copies the key bytes.

use arca_core::cipher::{GCM_MAX_IV_LEN, GCM_MIN_TAG_LEN, GCM_TAG_LEN};
use arca_core::{Error, Result};
use aws_lc_sys as sys;
use zeroize::Zeroizing;

/// The AEADs this crate drives through aws-lc's `EVP_AEAD` (below aws-lc-rs's API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AeadAlg {
    /// AES-GCM; the key's length (16, 24 or 32 bytes) picks AES-128, -192 or -256.
    AesGcm,
    /// ChaCha20-Poly1305 (RFC 8439), a 32-byte key.
    ChaCha20Poly1305,
}

impl AeadAlg {
    fn name(self) -> &'static str {
        match self {
            AeadAlg::AesGcm => "AES-GCM",
            AeadAlg::ChaCha20Poly1305 => "ChaCha20-Poly1305",
        }
    }
}

/// aws-lc's `EVP_AEAD_CTX_seal` or `EVP_AEAD_CTX_open`: context, output, output length
/// written, output room, nonce, nonce length, input, input length, AAD, AAD length.
type AeadOp = unsafe extern "C" fn(
    *const sys::EVP_AEAD_CTX,
    *mut u8,
    *mut usize,
    usize,
    *const u8,
    usize,
    *const u8,
    usize,
    *const u8,
    usize,
) -> std::os::raw::c_int;

/// An `EVP_AEAD_CTX` keyed for one [`AeadAlg`] and tag length, freed on drop: the one
/// wrapper of aws-lc's `EVP_AEAD_CTX_seal`/`_open` (GCM here, ChaCha20-Poly1305 in
/// [`crate::legacy`]).
pub(crate) struct AeadCtx(*mut sys::EVP_AEAD_CTX);

impl AeadCtx {
    /// A context for `alg` under `key`, making (or checking) tags of `tag_len` bytes.
    pub(crate) fn new(alg: AeadAlg, key: &[u8], tag_len: usize) -> Result<AeadCtx> {
        // SAFETY: these return pointers to static, immutable algorithm descriptions.
        let aead = unsafe {
            match (alg, key.len()) {
                (AeadAlg::AesGcm, 16) => sys::EVP_aead_aes_128_gcm(),
                (AeadAlg::AesGcm, 24) => sys::EVP_aead_aes_192_gcm(),
                (AeadAlg::AesGcm, 32) => sys::EVP_aead_aes_256_gcm(),
                (AeadAlg::ChaCha20Poly1305, crate::legacy::CHACHA_KEY_LEN) => {
                    sys::EVP_aead_chacha20_poly1305()
                }
                (AeadAlg::AesGcm, _) => {
                    return Err(Error::internal("AES key of an unexpected length"))
                }
                (AeadAlg::ChaCha20Poly1305, _) => {
                    return Err(Error::internal("ChaCha20 key of an unexpected length"))
                }
            }
        };
        // SAFETY: `aead` is a static table; `key` is valid for `key.len()` bytes for the
        // duration of the call; aws-lc copies what it needs (the key schedule) into the
        // context it allocates, and returns NULL on any failure (an unsupported tag length
        // among them).
        let ctx = unsafe { sys::EVP_AEAD_CTX_new(aead, key.as_ptr(), key.len(), tag_len) };
        if ctx.is_null() {
            // SAFETY: clears this thread's aws-lc error queue; no pointers involved.
            unsafe { sys::ERR_clear_error() };
            return Err(Error::internal(format!("{} key setup", alg.name())));
        }
        Ok(AeadCtx(ctx))
    }

    /// Runs `op` (aws-lc's `EVP_AEAD_CTX_seal` or `_open`, which share one signature) on
    /// `input` into `out`; the length written, or `None` if aws-lc refused (its error
    /// queue is cleared).
    fn run(
        &self,
        op: AeadOp,
        nonce: &[u8],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        let mut out_len = 0usize;
        // SAFETY: `self.0` is a live context; `out` has room for `out.len()` bytes, which
        // the callers size to what `op` writes (plaintext plus tag to seal, the ciphertext
        // to open); `nonce`, `input` and `aad` are valid for their lengths. aws-lc writes
        // the number of bytes produced to `out_len`; on a tag mismatch it returns 0 and
        // leaves no plaintext behind.
        let ok = unsafe {
            op(
                self.0,
                out.as_mut_ptr(),
                &mut out_len,
                out.len(),
                nonce.as_ptr(),
                nonce.len(),
                input.as_ptr(),
                input.len(),
                aad.as_ptr(),
                aad.len(),
            )
        };
        if ok != 1 {
            // SAFETY: clears this thread's aws-lc error queue.
            unsafe { sys::ERR_clear_error() };
            return None;
        }
        Some(out_len)
    }

    /// Seals `plaintext` with `nonce` and `aad`: the ciphertext and a tag of `tag_len` bytes
    /// (the context's). `None` if aws-lc refuses.
    pub(crate) fn seal(
        &self,
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        tag_len: usize,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut out = vec![0u8; plaintext.len() + tag_len];
        let n = self.run(sys::EVP_AEAD_CTX_seal, nonce, aad, plaintext, &mut out)?;
        if n != out.len() {
            return None;
        }
        let tag = out.split_off(plaintext.len());
        Some((out, tag))
    }

    /// Opens `ciphertext` and its `tag` with `nonce` and `aad`. `None` if the tag does not
    /// verify.
    pub(crate) fn open(
        &self,
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let input = [ciphertext, tag].concat();
        let mut out = Zeroizing::new(vec![0u8; ciphertext.len()]);
        let n = self.run(sys::EVP_AEAD_CTX_open, nonce, aad, &input, &mut out)?;
        out.truncate(n);
        Some(out)
    }
}

impl Drop for AeadCtx {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `EVP_AEAD_CTX_new`, is non-null and is freed once
        // here; aws-lc cleanses the key schedule as it frees it.
        unsafe { sys::EVP_AEAD_CTX_free(self.0) }
    }
}

fn check_iv(iv: &[u8]) -> Result<()> {
    if iv.is_empty() || iv.len() > GCM_MAX_IV_LEN {
        return Err(Error::invalid(
            "iv",
            format!(
                "a GCM IV is 1 to {GCM_MAX_IV_LEN} bytes (12 recommended), not {}",
                iv.len()
            ),
        ));
    }
    Ok(())
}

/// Checks a GCM tag length: 12 to 16 bytes (NIST SP 800-38D allows shorter ones only for
/// special uses, with limits on the number of messages, which a KMS cannot enforce).
pub fn check_tag_len(field: &str, len: usize) -> Result<()> {
    if !(GCM_MIN_TAG_LEN..=GCM_TAG_LEN).contains(&len) {
        return Err(Error::invalid(
            field,
            format!("a GCM tag is {GCM_MIN_TAG_LEN} to {GCM_TAG_LEN} bytes here, not {len}"),
        ));
    }
    Ok(())
}

/// AES-GCM encryption of `plaintext` under `key` with the caller's IV (1 to
/// [`GCM_MAX_IV_LEN`] bytes) and AAD; returns the ciphertext and a tag of `tag_len` bytes
/// (12 to 16; a shorter tag is the leading bytes of the full one, SP 800-38D §7.1).
pub fn seal(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    tag_len: usize,
) -> Result<(Vec<u8>, Vec<u8>)> {
    check_iv(iv)?;
    check_tag_len("tag_length", tag_len)?;
    AeadCtx::new(AeadAlg::AesGcm, key, tag_len)?
        .seal(iv, aad, plaintext, tag_len)
        .ok_or_else(|| Error::internal("AES-GCM encryption"))
}

/// The inverse of [`seal`]: the tag's length (12 to 16 bytes) is the one it was made with.
/// A tag that does not verify is refused (field `tag`).
pub fn open(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    check_iv(iv)?;
    check_tag_len("tag", tag.len())?;
    AeadCtx::new(AeadAlg::AesGcm, key, tag.len())?
        .open(iv, aad, ciphertext, tag)
        .ok_or_else(|| {
            Error::bad_ciphertext(
                "tag",
                "the data does not authenticate: the ciphertext, IV, AAD or tag differ from those of the encryption",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::hex;

    /// Test cases 4 and 5 of the GCM specification (McGrew and Viega), AES-128: a 12-byte
    /// IV, and an 8-byte one.
    #[test]
    fn gcm_spec_vectors_and_truncated_tags() {
        let key = hex("feffe9928665731c6d6a8f9467308308");
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        let (ct, tag) = seal(&key, &hex("cafebabefacedbaddecaf888"), &aad, &pt, 16).unwrap();
        assert_eq!(tag, hex("5bc94fbc3221a5db94fae95ae7121a47"));
        let iv8 = hex("cafebabefacedbad");
        let (ct8, tag8) = seal(&key, &iv8, &aad, &pt, 16).unwrap();
        assert_eq!(
            ct8,
            hex("61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598")
        );
        assert_eq!(tag8, hex("3612d2e79e3b0785561be14aaca2fccb"));
        assert_eq!(&open(&key, &iv8, &aad, &ct8, &tag8).unwrap()[..], &pt[..]);
        // A 12-byte tag is the full tag's first 12 bytes, and verifies as such.
        let (_, tag12) = seal(&key, &iv8, &aad, &pt, 12).unwrap();
        assert_eq!(tag12, tag8[..12]);
        assert_eq!(&open(&key, &iv8, &aad, &ct8, &tag12).unwrap()[..], &pt[..]);
        let mut bad = tag12.clone();
        bad[11] ^= 1;
        assert!(open(&key, &iv8, &aad, &ct8, &bad).is_err());
        assert!(open(
            &key,
            &hex("cafebabefacedbaddecaf888"),
            &aad,
            &ct,
            &tag[..11]
        )
        .is_err());
        assert!(seal(&key, &iv8, &aad, &pt, 11).is_err());
        assert!(seal(&key, &iv8, &aad, &pt, 17).is_err());
        assert!(seal(&key, &[], &aad, &pt, 16).is_err());
    }
}
