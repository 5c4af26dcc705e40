//! RSA with the parameters aws-lc-rs's API does not expose: OAEP whose MGF1 hash differs
//! from its label hash, or with a label; PSS with a salt length other than the hash's, or
//! with SHA-1; and keys under 2048 bits (RSA-1024, which only tenants that allow legacy
//! algorithms hold).
//!
//! KMIP clients name these (Mask Generator Hashing Algorithm, P Source, Salt Length) and
//! the OASIS profiles test them. aws-lc does them all through its `EVP_PKEY` interface,
//! which this module wraps: [`RsaKey`] owns one parsed key, and each operation sets up an
//! `EVP_PKEY_CTX` for one call. aws-lc keeps the private key's numbers in `BIGNUM`s that
//! it clears when the key is freed; the DER this module returns from key generation is in
//! zeroizing buffers, and aws-lc's `OPENSSL_free` cleanses the buffers it hands back.

use crate::pkey::Pkey;
use arca_core::cipher::{OaepHash, OaepParams, PssSalt};
use arca_core::{Error, Result};
use aws_lc_sys as sys;
use std::os::raw::c_int;
use zeroize::Zeroizing;

/// A hash of an RSA scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl RsaHash {
    fn md(self) -> *const sys::EVP_MD {
        // SAFETY: these return pointers to static, immutable digest descriptions.
        unsafe {
            match self {
                RsaHash::Sha1 => sys::EVP_sha1(),
                RsaHash::Sha256 => sys::EVP_sha256(),
                RsaHash::Sha384 => sys::EVP_sha384(),
                RsaHash::Sha512 => sys::EVP_sha512(),
            }
        }
    }

    /// The digest's length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            RsaHash::Sha1 => 20,
            RsaHash::Sha256 => 32,
            RsaHash::Sha384 => 48,
            RsaHash::Sha512 => 64,
        }
    }

    /// The digest of `msg` (by aws-lc-rs).
    pub fn digest(self, msg: &[u8]) -> Vec<u8> {
        use aws_lc_rs::digest;
        let alg = match self {
            RsaHash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            RsaHash::Sha256 => &digest::SHA256,
            RsaHash::Sha384 => &digest::SHA384,
            RsaHash::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, msg).as_ref().to_vec()
    }
}

impl From<OaepHash> for RsaHash {
    fn from(h: OaepHash) -> RsaHash {
        match h {
            OaepHash::Sha1 => RsaHash::Sha1,
            OaepHash::Sha256 => RsaHash::Sha256,
            OaepHash::Sha384 => RsaHash::Sha384,
            OaepHash::Sha512 => RsaHash::Sha512,
        }
    }
}

/// An RSA signature scheme over a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaScheme {
    /// RSASSA-PSS with MGF1 over the same hash, and this salt length.
    Pss(RsaHash, PssSalt),
    /// RSASSA-PKCS1-v1_5.
    Pkcs1(RsaHash),
}

fn failed(what: &str) -> Error {
    // SAFETY: clears this thread's aws-lc error queue; no pointers involved.
    unsafe { sys::ERR_clear_error() };
    Error::internal(what)
}

/// One RSA key (private, or public only) in aws-lc.
pub struct RsaKey {
    pkey: Pkey,
    private: bool,
}

// SAFETY: the EVP_PKEY is never mutated after it is parsed or generated; aws-lc's RSA
// operations on a shared key are thread-safe (its blinding and Montgomery caches take
// their own locks), which is how aws-lc-rs shares its RSA keys too.
unsafe impl Send for RsaKey {}
// SAFETY: as above.
unsafe impl Sync for RsaKey {}

/// One of aws-lc's `EVP_PKEY_*_init` functions.
type PkeyInit = unsafe extern "C" fn(*mut sys::EVP_PKEY_CTX) -> c_int;

/// aws-lc's `EVP_PKEY_encrypt`, `EVP_PKEY_decrypt` or `EVP_PKEY_sign`: context, output,
/// output length (in: room, out: written), input, input length.
type PkeyOp =
    unsafe extern "C" fn(*mut sys::EVP_PKEY_CTX, *mut u8, *mut usize, *const u8, usize) -> c_int;

/// A per-call `EVP_PKEY_CTX`, freed on drop.
struct Ctx(*mut sys::EVP_PKEY_CTX);

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: from `EVP_PKEY_CTX_new`, non-null, freed once.
        unsafe { sys::EVP_PKEY_CTX_free(self.0) }
    }
}

impl RsaKey {
    fn parse(der: &[u8], private: bool) -> Option<RsaKey> {
        let pkey = Pkey::parse(der, private, sys::EVP_PKEY_RSA)?;
        Some(RsaKey { pkey, private })
    }

    /// An RSA private key from PKCS#8 DER; `None` if it is not one.
    pub fn from_pkcs8(der: &[u8]) -> Option<RsaKey> {
        Self::parse(der, true)
    }

    /// An RSA public key from SubjectPublicKeyInfo DER; `None` if it is not one.
    pub fn from_spki(der: &[u8]) -> Option<RsaKey> {
        Self::parse(der, false)
    }

    /// A new key of `bits` bits (public exponent 65537), as PKCS#8 and SPKI DER.
    pub fn generate(bits: usize) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
        // SAFETY: a fresh context for RSA key generation, checked for NULL.
        let ctx = unsafe { sys::EVP_PKEY_CTX_new_id(sys::EVP_PKEY_RSA, std::ptr::null_mut()) };
        if ctx.is_null() {
            return Err(failed("RSA key generation"));
        }
        let ctx = Ctx(ctx);
        let mut pkey: *mut sys::EVP_PKEY = std::ptr::null_mut();
        // SAFETY: `ctx` is live; `pkey` receives a new key owned by us on success.
        let ok = unsafe {
            sys::EVP_PKEY_keygen_init(ctx.0) == 1
                && sys::EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.0, bits as c_int) == 1
                && sys::EVP_PKEY_keygen(ctx.0, &mut pkey) == 1
        };
        // A key aws-lc made is ours to free, even after a later step failed.
        let pkey = Pkey::from_owned(pkey);
        let (true, Some(pkey)) = (ok, pkey) else {
            return Err(failed("RSA key generation"));
        };
        let key = RsaKey {
            pkey,
            private: true,
        };
        Ok((key.marshal(true)?, key.marshal(false)?.to_vec()))
    }

    /// The key as PKCS#8 (`private`) or SPKI DER.
    fn marshal(&self, private: bool) -> Result<Zeroizing<Vec<u8>>> {
        self.pkey
            .marshal(private)
            .ok_or_else(|| Error::internal("RSA key encoding"))
    }

    /// The key as SubjectPublicKeyInfo DER.
    pub fn spki(&self) -> Result<Vec<u8>> {
        Ok(self.marshal(false)?.to_vec())
    }

    /// The key as PKCS#8 DER (a private key only).
    pub fn pkcs8(&self) -> Result<Zeroizing<Vec<u8>>> {
        if !self.private {
            return Err(Error::internal("a public RSA key has no PKCS#8 form"));
        }
        self.marshal(true)
    }

    /// The modulus length in bits.
    pub fn bits(&self) -> usize {
        // SAFETY: `pkey` is a live EVP_PKEY.
        unsafe { sys::EVP_PKEY_bits(self.pkey.as_ptr()) as usize }
    }

    /// The modulus length in bytes (the size of ciphertexts and signatures).
    fn size(&self) -> usize {
        // SAFETY: `pkey` is a live EVP_PKEY.
        unsafe { sys::EVP_PKEY_size(self.pkey.as_ptr()) as usize }
    }

    /// A context for one call on this key, initialised by `init` (one of aws-lc's
    /// `EVP_PKEY_{encrypt,decrypt,sign,verify}_init`); `what` names the operation in errors.
    fn ctx(&self, init: PkeyInit, what: &str) -> Result<Ctx> {
        // SAFETY: `pkey` is live; the context takes its own reference to it.
        let ctx = unsafe { sys::EVP_PKEY_CTX_new(self.pkey.as_ptr(), std::ptr::null_mut()) };
        if ctx.is_null() {
            return Err(failed("RSA context"));
        }
        let ctx = Ctx(ctx);
        // SAFETY: `ctx` is live; `init` is one of aws-lc's EVP_PKEY_*_init functions,
        // which take only the context.
        if unsafe { init(ctx.0) } != 1 {
            return Err(failed(what));
        }
        Ok(ctx)
    }

    /// Runs `op` (aws-lc's `EVP_PKEY_encrypt`, `_decrypt` or `_sign`, which share one
    /// signature) on `input` into `out`, which must hold the modulus size (the most any
    /// of them writes); the length written, or `None` if aws-lc refused.
    fn transform(ctx: &Ctx, op: PkeyOp, input: &[u8], out: &mut [u8]) -> Option<usize> {
        let mut len = out.len();
        // SAFETY: `ctx` is live and initialised for `op`; `out` has room for `len` bytes
        // (the modulus size, RSA's output size); `input` is valid for its length; aws-lc
        // writes the length produced to `len`, at most the room given.
        let ok = unsafe {
            op(
                ctx.0,
                out.as_mut_ptr(),
                &mut len,
                input.as_ptr(),
                input.len(),
            )
        };
        (ok == 1).then_some(len)
    }

    /// Sets OAEP and its parameters on a context initialised to encrypt or decrypt.
    fn set_oaep(ctx: &Ctx, p: &OaepParams) -> Result<()> {
        // SAFETY: `ctx` is live and initialised; the digests are static.
        let ok = unsafe {
            sys::EVP_PKEY_CTX_set_rsa_padding(ctx.0, sys::RSA_PKCS1_OAEP_PADDING) == 1
                && sys::EVP_PKEY_CTX_set_rsa_oaep_md(ctx.0, RsaHash::from(p.hash).md()) == 1
                && sys::EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.0, RsaHash::from(p.mgf1).md()) == 1
        };
        if !ok {
            return Err(failed("RSA-OAEP parameters"));
        }
        if !p.label.is_empty() {
            // SAFETY: the context takes ownership of a buffer from aws-lc's allocator, so
            // the label is copied into one; if the call fails the buffer is still ours
            // and is freed here.
            unsafe {
                let buf = sys::OPENSSL_malloc(p.label.len()).cast::<u8>();
                if buf.is_null() {
                    return Err(failed("RSA-OAEP label"));
                }
                std::ptr::copy_nonoverlapping(p.label.as_ptr(), buf, p.label.len());
                if sys::EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.0, buf, p.label.len()) != 1 {
                    sys::OPENSSL_free(buf.cast());
                    return Err(failed("RSA-OAEP label"));
                }
            }
        }
        Ok(())
    }

    /// The largest plaintext RSA-OAEP takes under this key with `p`'s label hash.
    pub fn oaep_max_plaintext(&self, p: &OaepParams) -> usize {
        self.size()
            .saturating_sub(2 * RsaHash::from(p.hash).output_len() + 2)
    }

    /// RSA-OAEP encryption with `p`'s label hash, MGF1 hash and label.
    pub fn oaep_encrypt(&self, p: &OaepParams, plaintext: &[u8]) -> Result<Vec<u8>> {
        let max = self.oaep_max_plaintext(p);
        if plaintext.len() > max {
            return Err(Error::invalid(
                "plaintext",
                format!(
                    "at most {max} bytes for RSA-OAEP-{:?} with this key",
                    p.hash
                ),
            ));
        }
        let ctx = self.ctx(sys::EVP_PKEY_encrypt_init, "RSA-OAEP encryption")?;
        Self::set_oaep(&ctx, p)?;
        let mut out = vec![0u8; self.size()];
        let len = Self::transform(&ctx, sys::EVP_PKEY_encrypt, plaintext, &mut out)
            .ok_or_else(|| failed("RSA-OAEP encryption"))?;
        out.truncate(len);
        Ok(out)
    }

    /// RSA-OAEP decryption; a ciphertext that does not decrypt under these parameters is
    /// refused (field `ciphertext`), with no hint of why (no padding oracle).
    pub fn oaep_decrypt(&self, p: &OaepParams, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if !self.private {
            return Err(Error::unsuitable_key(
                "this RSA key holds only a public key and cannot decrypt",
            ));
        }
        let ctx = self.ctx(sys::EVP_PKEY_decrypt_init, "RSA-OAEP decryption")?;
        Self::set_oaep(&ctx, p)?;
        let mut out = Zeroizing::new(vec![0u8; self.size()]);
        let Some(len) = Self::transform(&ctx, sys::EVP_PKEY_decrypt, ciphertext, &mut out) else {
            // SAFETY: clears this thread's aws-lc error queue.
            unsafe { sys::ERR_clear_error() };
            return Err(Error::bad_ciphertext(
                "ciphertext",
                "the RSA-OAEP ciphertext does not decrypt with this key version and these parameters",
            ));
        };
        out.truncate(len);
        Ok(out)
    }

    /// Sets a signature scheme on a context initialised to sign or verify.
    fn set_scheme(ctx: &Ctx, scheme: RsaScheme, signing: bool) -> Result<()> {
        let (padding, hash, salt) = match scheme {
            RsaScheme::Pss(h, s) => (sys::RSA_PKCS1_PSS_PADDING, h, Some(s)),
            RsaScheme::Pkcs1(h) => (sys::RSA_PKCS1_PADDING, h, None),
        };
        let salt_len: Option<c_int> = match salt {
            None => None,
            Some(PssSalt::HashLength) => Some(sys::RSA_PSS_SALTLEN_DIGEST),
            Some(PssSalt::Any) if signing => {
                return Err(Error::invalid(
                    "salt_length",
                    "a signature is made with one salt length: name it, or leave the default (the hash length)",
                ))
            }
            Some(PssSalt::Any) => Some(sys::RSA_PSS_SALTLEN_AUTO),
            Some(PssSalt::Bytes(n)) => Some(c_int::try_from(n).map_err(|_| {
                Error::invalid("salt_length", "the salt is longer than the key allows")
            })?),
        };
        // SAFETY: `ctx` is live and initialised; the digest is static.
        let ok = unsafe {
            sys::EVP_PKEY_CTX_set_rsa_padding(ctx.0, padding) == 1
                && sys::EVP_PKEY_CTX_set_signature_md(ctx.0, hash.md()) == 1
                && salt_len.is_none_or(|s| sys::EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.0, s) == 1)
        };
        if !ok {
            return Err(failed("RSA signature parameters"));
        }
        Ok(())
    }

    /// The longest PSS salt, in bytes, this key can sign with under `hash`: EMSA-PSS needs
    /// emLen >= hLen + sLen + 2, where emLen = ceil((modBits - 1) / 8) (RFC 8017 §8.1.1,
    /// §9.1.1): one byte less than the modulus for a modulus of 8k + 1 bits.
    pub fn pss_max_salt(&self, hash: RsaHash) -> usize {
        let em_len = self.bits().saturating_sub(1).div_ceil(8);
        em_len.saturating_sub(hash.output_len() + 2)
    }

    /// Signs `digest` (already hashed with the scheme's hash).
    pub fn sign(&self, scheme: RsaScheme, digest: &[u8]) -> Result<Vec<u8>> {
        if !self.private {
            return Err(Error::unsuitable_key(
                "this RSA key holds only a public key and cannot sign",
            ));
        }
        if let RsaScheme::Pss(h, PssSalt::Bytes(n)) = scheme {
            let most = self.pss_max_salt(h);
            if n as usize > most {
                return Err(Error::invalid(
                    "salt_length",
                    format!("at most {most} bytes of salt with this key and hash"),
                ));
            }
        }
        let ctx = self.ctx(sys::EVP_PKEY_sign_init, "RSA signing")?;
        Self::set_scheme(&ctx, scheme, true)?;
        // aws-lc checks the digest's length against the scheme's hash.
        let mut sig = vec![0u8; self.size()];
        let len = Self::transform(&ctx, sys::EVP_PKEY_sign, digest, &mut sig)
            .ok_or_else(|| failed("RSA signing"))?;
        sig.truncate(len);
        Ok(sig)
    }

    /// Verifies `sig` over `digest`: `Ok(false)` when it does not verify.
    pub fn verify(&self, scheme: RsaScheme, digest: &[u8], sig: &[u8]) -> Result<bool> {
        let ctx = self.ctx(sys::EVP_PKEY_verify_init, "RSA verification")?;
        Self::set_scheme(&ctx, scheme, false)?;
        // SAFETY: `sig` and `digest` are valid for their lengths.
        let ok = unsafe {
            sys::EVP_PKEY_verify(
                ctx.0,
                sig.as_ptr(),
                sig.len(),
                digest.as_ptr(),
                digest.len(),
            )
        };
        if ok != 1 {
            // SAFETY: clears this thread's aws-lc error queue (a bad signature queues one).
            unsafe { sys::ERR_clear_error() };
        }
        Ok(ok == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(hash: OaepHash, mgf1: OaepHash, label: &[u8]) -> OaepParams {
        OaepParams {
            hash,
            mgf1,
            label: label.to_vec(),
        }
    }

    #[test]
    fn oaep_with_distinct_mgf1_and_a_label_round_trips_and_binds_them() {
        let (pkcs8, spki) = RsaKey::generate(2048).unwrap();
        let private = RsaKey::from_pkcs8(&pkcs8).unwrap();
        let public = RsaKey::from_spki(&spki).unwrap();
        assert_eq!(public.bits(), 2048);
        let p = params(OaepHash::Sha384, OaepHash::Sha256, b"Kilroy was here");
        let ct = public.oaep_encrypt(&p, b"secret").unwrap();
        assert_eq!(&private.oaep_decrypt(&p, &ct).unwrap()[..], b"secret");
        for other in [
            params(OaepHash::Sha384, OaepHash::Sha384, b"Kilroy was here"),
            params(OaepHash::Sha384, OaepHash::Sha256, b"another label"),
            params(OaepHash::Sha256, OaepHash::Sha256, b""),
        ] {
            assert!(private.oaep_decrypt(&other, &ct).is_err(), "{other:?}");
        }
        assert!(public.oaep_decrypt(&p, &ct).is_err(), "public only");
    }

    #[test]
    fn pss_salt_lengths_sha1_and_rsa_1024() {
        let (pkcs8, spki) = RsaKey::generate(1024).unwrap();
        let key = RsaKey::from_pkcs8(&pkcs8).unwrap();
        let public = RsaKey::from_spki(&spki).unwrap();
        assert_eq!(key.bits(), 1024);
        assert_eq!(&key.pkcs8().unwrap()[..], &pkcs8[..]);
        for h in [RsaHash::Sha1, RsaHash::Sha256] {
            let d = h.digest(b"message");
            let sig = key.sign(RsaScheme::Pss(h, PssSalt::Bytes(7)), &d).unwrap();
            assert!(public
                .verify(RsaScheme::Pss(h, PssSalt::Bytes(7)), &d, &sig)
                .unwrap());
            assert!(public
                .verify(RsaScheme::Pss(h, PssSalt::Any), &d, &sig)
                .unwrap());
            assert!(!public
                .verify(RsaScheme::Pss(h, PssSalt::HashLength), &d, &sig)
                .unwrap());
            let sig = key.sign(RsaScheme::Pkcs1(h), &d).unwrap();
            assert!(public.verify(RsaScheme::Pkcs1(h), &d, &sig).unwrap());
            assert!(!public
                .verify(RsaScheme::Pkcs1(h), &h.digest(b"other"), &sig)
                .unwrap());
        }
        assert!(key
            .sign(RsaScheme::Pss(RsaHash::Sha256, PssSalt::Any), &[0; 32])
            .is_err());
        assert!(key
            .sign(
                RsaScheme::Pss(RsaHash::Sha256, PssSalt::Bytes(200)),
                &[0; 32]
            )
            .is_err());
        assert!(RsaKey::from_pkcs8(b"not a key").is_none());
        assert!(RsaKey::from_spki(&pkcs8).is_none());
    }

    /// The salt limit follows emLen = ceil((modBits - 1) / 8): a 1024-bit modulus allows
    /// 128 - 32 - 2 bytes with SHA-256, and so does a 1025-bit one (emLen 128, a byte less
    /// than its 129-byte modulus; aws-lc generates no such key, so it is a fixture made
    /// with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1025 -outform DER`, then
    /// `openssl pkcs8 -topk8 -nocrypt -inform DER -outform DER`).
    /// The longest salt signs and verifies; one more is a field error naming salt_length,
    /// never a failure inside aws-lc.
    #[test]
    fn pss_salt_limit_follows_the_encoded_message_length() {
        let generated = RsaKey::generate(1024).unwrap().0;
        let fixture = include_bytes!("testdata/rsa-1025.pkcs8.der");
        for (bits, pkcs8) in [(1024, &generated[..]), (1025, &fixture[..])] {
            let key = RsaKey::from_pkcs8(pkcs8).unwrap();
            assert_eq!(key.bits(), bits);
            let most = key.pss_max_salt(RsaHash::Sha256);
            assert_eq!(most, 128 - 32 - 2, "{bits} bits");
            let d = RsaHash::Sha256.digest(b"message");
            let scheme = RsaScheme::Pss(RsaHash::Sha256, PssSalt::Bytes(most as u32));
            let sig = key.sign(scheme, &d).unwrap();
            assert!(key.verify(scheme, &d, &sig).unwrap(), "{bits} bits");
            let over = RsaScheme::Pss(RsaHash::Sha256, PssSalt::Bytes(most as u32 + 1));
            let e = key.sign(over, &d).unwrap_err();
            assert!(e.to_string().contains("salt_length"), "{e}");
        }
    }
}
