//! RSA with a private key a caller holds wrapped (Google Workspace CSE's Gmail keys): the
//! key's normal form, its public half, decryption of a key encrypted to it, and signing of
//! a digest the caller computed.
//!
//! aws-lc-rs decrypts with RSA (OAEP with a label, PKCS #1 v1.5) but signs whole messages
//! only, hashing them itself; S/MIME clients send the digest of the DER-encoded
//! SignedAttributes instead. [`sign_digest`] signs such a digest with aws-lc's
//! `EVP_PKEY_sign` (the same aws-lc build aws-lc-rs links), behind the small safe wrapper
//! below. Private key bytes stay in zeroizing buffers; errors never carry key material.

use std::ptr;

use arca_core::{Error, Result};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair, OaepPrivateDecryptingKey, Pkcs1PrivateDecryptingKey, PrivateDecryptingKey,
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
};
use aws_lc_sys as sys;
use zeroize::Zeroizing;

/// The hash a digest was computed with (the signature's DigestInfo and PSS's MGF1 hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestHash {
    Sha256,
    Sha384,
    Sha512,
}

impl DigestHash {
    /// The digest length the hash produces: a digest of another length is refused.
    pub fn digest_len(self) -> usize {
        match self {
            DigestHash::Sha256 => 32,
            DigestHash::Sha384 => 48,
            DigestHash::Sha512 => 64,
        }
    }

    fn md(self) -> *const sys::EVP_MD {
        // SAFETY: the EVP_sha* functions return pointers to static, immutable method tables.
        unsafe {
            match self {
                DigestHash::Sha256 => sys::EVP_sha256(),
                DigestHash::Sha384 => sys::EVP_sha384(),
                DigestHash::Sha512 => sys::EVP_sha512(),
            }
        }
    }
}

/// How a digest is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestSignScheme {
    /// RSASSA-PKCS1-v1_5.
    Pkcs1(DigestHash),
    /// RSASSA-PSS with MGF1 over the same hash and the given salt length in bytes.
    Pss(DigestHash, u32),
}

impl DigestSignScheme {
    fn hash(self) -> DigestHash {
        match self {
            DigestSignScheme::Pkcs1(h) | DigestSignScheme::Pss(h, _) => h,
        }
    }
}

/// How a data encryption key was encrypted to an RSA public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaKeyTransport {
    /// RSAES-PKCS1-v1_5 (S/MIME's usual key transport).
    Pkcs1,
    /// RSAES-OAEP with MGF1 over the same hash.
    Oaep(OaepHash),
}

/// The hash of RSAES-OAEP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OaepHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// An RSA private key as PKCS #8 DER, from PKCS #8 or PKCS #1 DER (the two forms PEM files
/// carry as `PRIVATE KEY` and `RSA PRIVATE KEY`). Anything else, or a key of another type
/// or under 2048 bits, is refused.
pub fn rsa_private_key_pkcs8(der: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let kp = KeyPair::from_pkcs8(der)
        .or_else(|_| KeyPair::from_der(der))
        .map_err(|_| {
            Error::invalid(
                "private_key",
                "not an RSA private key of 2048 bits or more (PKCS #8 or PKCS #1)",
            )
        })?;
    let out = kp
        .as_der()
        .map_err(|_| Error::internal("could not encode the private key"))?;
    Ok(Zeroizing::new(out.as_ref().to_vec()))
}

/// The DER SubjectPublicKeyInfo of a PKCS #8 RSA private key: what Google's `spki_hash`
/// is a digest of.
pub fn rsa_public_key_spki(pkcs8: &[u8]) -> Result<Vec<u8>> {
    let k = PrivateDecryptingKey::from_pkcs8(pkcs8)
        .map_err(|_| Error::internal("a wrapped private key that is not RSA PKCS #8"))?;
    let der = k
        .public_key()
        .as_der()
        .map_err(|_| Error::internal("could not encode the public key"))?;
    Ok(der.as_ref().to_vec())
}

/// Decrypts `ciphertext`, a key encrypted to the public half of `pkcs8`. A ciphertext that
/// does not decrypt is refused as `encrypted_data_encryption_key`.
pub fn rsa_decrypt(
    pkcs8: &[u8],
    transport: RsaKeyTransport,
    ciphertext: &[u8],
    label: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>> {
    let k = PrivateDecryptingKey::from_pkcs8(pkcs8)
        .map_err(|_| Error::internal("a wrapped private key that is not RSA PKCS #8"))?;
    let bad = || {
        Error::unprocessable(
            "encrypted_data_encryption_key",
            "does not decrypt under this private key",
        )
    };
    if ciphertext.len() != k.key_size_bytes() {
        return Err(bad());
    }
    let mut out = Zeroizing::new(vec![0u8; k.key_size_bytes()]);
    let n = match transport {
        RsaKeyTransport::Pkcs1 => {
            let d = Pkcs1PrivateDecryptingKey::new(k).map_err(|_| bad())?;
            d.decrypt(ciphertext, &mut out).map_err(|_| bad())?.len()
        }
        RsaKeyTransport::Oaep(h) => {
            let alg = match h {
                OaepHash::Sha1 => &OAEP_SHA1_MGF1SHA1,
                OaepHash::Sha256 => &OAEP_SHA256_MGF1SHA256,
                OaepHash::Sha384 => &OAEP_SHA384_MGF1SHA384,
                OaepHash::Sha512 => &OAEP_SHA512_MGF1SHA512,
            };
            let d = OaepPrivateDecryptingKey::new(k).map_err(|_| bad())?;
            d.decrypt(alg, ciphertext, &mut out, label)
                .map_err(|_| bad())?
                .len()
        }
    };
    out.truncate(n);
    Ok(out)
}

/// Owns an `EVP_PKEY` and frees it.
struct Pkey(*mut sys::EVP_PKEY);

impl Drop for Pkey {
    fn drop(&mut self) {
        // SAFETY: the pointer came from d2i_AutoPrivateKey, is non-null (checked at
        // construction) and is freed once, here; EVP_PKEY_free also clears the key.
        unsafe { sys::EVP_PKEY_free(self.0) }
    }
}

/// Owns an `EVP_PKEY_CTX` and frees it.
struct PkeyCtx(*mut sys::EVP_PKEY_CTX);

impl Drop for PkeyCtx {
    fn drop(&mut self) {
        // SAFETY: the pointer came from EVP_PKEY_CTX_new, is non-null (checked at
        // construction) and is freed once, here.
        unsafe { sys::EVP_PKEY_CTX_free(self.0) }
    }
}

/// Signs `digest` (already hashed with the scheme's hash) with the RSA key `pkcs8`. A digest
/// of the wrong length or a salt longer than the key allows is refused naming the field.
pub fn sign_digest(pkcs8: &[u8], scheme: DigestSignScheme, digest: &[u8]) -> Result<Vec<u8>> {
    let hash = scheme.hash();
    if digest.len() != hash.digest_len() {
        return Err(Error::invalid(
            "digest",
            format!("a {:?} digest is {} bytes", hash, hash.digest_len()),
        ));
    }
    let len = std::os::raw::c_long::try_from(pkcs8.len())
        .map_err(|_| Error::internal("private key too long"))?;
    let mut p = pkcs8.as_ptr();
    // SAFETY: `p` points at `len` readable bytes of `pkcs8`, which outlives the call;
    // d2i_AutoPrivateKey reads at most `len` bytes, advances `p` (a local copy) and
    // returns a new EVP_PKEY we own, or null.
    let pkey = unsafe { sys::d2i_AutoPrivateKey(ptr::null_mut(), &mut p, len) };
    if pkey.is_null() {
        return Err(Error::internal("a wrapped private key that does not parse"));
    }
    let pkey = Pkey(pkey);
    // SAFETY: pkey.0 is a valid EVP_PKEY owned by `pkey`.
    if unsafe { sys::EVP_PKEY_id(pkey.0) } != sys::EVP_PKEY_RSA {
        return Err(Error::invalid("algorithm", "the private key is not RSA"));
    }
    // SAFETY: pkey.0 is valid; a null engine is allowed; the context takes its own
    // reference to the key.
    let ctx = unsafe { sys::EVP_PKEY_CTX_new(pkey.0, ptr::null_mut()) };
    if ctx.is_null() {
        return Err(Error::internal("EVP_PKEY_CTX_new failed"));
    }
    let ctx = PkeyCtx(ctx);
    let failed = |what: &str| Error::internal(format!("RSA signing: {what} failed"));
    // SAFETY (this block): ctx.0 is a valid context for an RSA key; the md pointers are
    // static; each call only configures the context and reports success as 1.
    unsafe {
        if sys::EVP_PKEY_sign_init(ctx.0) != 1 {
            return Err(failed("sign init"));
        }
        match scheme {
            DigestSignScheme::Pkcs1(_) => {
                if sys::EVP_PKEY_CTX_set_rsa_padding(ctx.0, sys::RSA_PKCS1_PADDING) != 1 {
                    return Err(failed("padding"));
                }
            }
            DigestSignScheme::Pss(_, salt) => {
                let salt = std::os::raw::c_int::try_from(salt)
                    .map_err(|_| Error::invalid("rsa_pss_salt_length", "too long"))?;
                if sys::EVP_PKEY_CTX_set_rsa_padding(ctx.0, sys::RSA_PKCS1_PSS_PADDING) != 1 {
                    return Err(failed("padding"));
                }
                if sys::EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.0, salt) != 1 {
                    return Err(Error::invalid(
                        "rsa_pss_salt_length",
                        "not a salt length this key can sign with",
                    ));
                }
                if sys::EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.0, hash.md()) != 1 {
                    return Err(failed("MGF1 hash"));
                }
            }
        }
        if sys::EVP_PKEY_CTX_set_signature_md(ctx.0, hash.md()) != 1 {
            return Err(failed("hash"));
        }
    }
    let mut sig_len = 0usize;
    // SAFETY: a null output asks for the maximum signature length, written to sig_len.
    if unsafe {
        sys::EVP_PKEY_sign(
            ctx.0,
            ptr::null_mut(),
            &mut sig_len,
            digest.as_ptr(),
            digest.len(),
        )
    } != 1
    {
        return Err(failed("size"));
    }
    let mut sig = vec![0u8; sig_len];
    // SAFETY: `sig` has sig_len writable bytes, `digest` digest.len() readable ones; on
    // success sig_len is set to the bytes written (at most the buffer's length).
    let ok = unsafe {
        sys::EVP_PKEY_sign(
            ctx.0,
            sig.as_mut_ptr(),
            &mut sig_len,
            digest.as_ptr(),
            digest.len(),
        )
    };
    if ok != 1 {
        return Err(Error::invalid(
            "rsa_pss_salt_length",
            "the key cannot sign this digest with this salt length",
        ));
    }
    sig.truncate(sig_len);
    Ok(sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};

    fn key() -> Zeroizing<Vec<u8>> {
        let kp = KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        Zeroizing::new(kp.as_der().unwrap().as_ref().to_vec())
    }

    #[test]
    fn signs_a_digest_that_verifies_over_its_message() {
        let k = key();
        let kp = KeyPair::from_pkcs8(&k).unwrap();
        let msg = b"signed attributes";
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, msg);
        let pk = kp.public_key().as_ref().to_vec();
        let s = sign_digest(&k, DigestSignScheme::Pkcs1(DigestHash::Sha256), d.as_ref()).unwrap();
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &pk)
            .verify(msg, &s)
            .unwrap();
        let s = sign_digest(
            &k,
            DigestSignScheme::Pss(DigestHash::Sha256, 32),
            d.as_ref(),
        )
        .unwrap();
        UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, &pk)
            .verify(msg, &s)
            .unwrap();
        // A digest of the wrong length is refused, naming the field.
        let e =
            sign_digest(&k, DigestSignScheme::Pkcs1(DigestHash::Sha384), d.as_ref()).unwrap_err();
        assert!(e.to_string().contains("digest"), "{e}");
    }

    #[test]
    fn pkcs1_keys_are_normalised_and_decrypt() {
        let k = key();
        // The same key as PKCS #1 normalises to a key with the same public half.
        let pk1 = rsa_public_key_spki(&k).unwrap();
        let back = rsa_private_key_pkcs8(&k).unwrap();
        assert_eq!(rsa_public_key_spki(&back).unwrap(), pk1);
        assert!(rsa_private_key_pkcs8(b"not a key").is_err());
        let pubkey = PrivateDecryptingKey::from_pkcs8(&k).unwrap().public_key();
        let enc = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(pubkey).unwrap();
        let mut ct = vec![0u8; enc.ciphertext_size()];
        let ct = enc
            .encrypt(&OAEP_SHA256_MGF1SHA256, &[9u8; 32], &mut ct, Some(b"L"))
            .unwrap()
            .to_vec();
        let dek =
            rsa_decrypt(&k, RsaKeyTransport::Oaep(OaepHash::Sha256), &ct, Some(b"L")).unwrap();
        assert_eq!(&dek[..], &[9u8; 32]);
        assert!(rsa_decrypt(&k, RsaKeyTransport::Oaep(OaepHash::Sha256), &ct, None).is_err());
    }
}
