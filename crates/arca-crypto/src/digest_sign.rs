//! RSA with a private key a caller holds wrapped (Google Workspace CSE's Gmail keys): the
//! key's normal form, its public half, decryption of a key encrypted to it, and signing of
//! a digest the caller computed.
//!
//! aws-lc-rs decrypts with RSA (OAEP with a label, PKCS #1 v1.5) but signs whole messages
//! only, hashing them itself; S/MIME clients send the digest of the DER-encoded
//! SignedAttributes instead. [`sign_digest`] signs such a digest with
//! [`RsaKey::sign`](crate::rsa_params::RsaKey::sign), the one safe wrapper over aws-lc's
//! `EVP_PKEY` RSA operations (shared with KMIP). Private key bytes stay in zeroizing
//! buffers; errors never carry key material.

use crate::rsa_params::{RsaHash, RsaKey, RsaScheme};
pub use arca_core::cipher::OaepHash;
use arca_core::cipher::PssSalt;
use arca_core::{Error, Result};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair, OaepPrivateDecryptingKey, Pkcs1PrivateDecryptingKey, PrivateDecryptingKey,
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
};
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
}

impl From<DigestHash> for RsaHash {
    fn from(h: DigestHash) -> RsaHash {
        match h {
            DigestHash::Sha256 => RsaHash::Sha256,
            DigestHash::Sha384 => RsaHash::Sha384,
            DigestHash::Sha512 => RsaHash::Sha512,
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
    let key = RsaKey::from_pkcs8(pkcs8)
        .ok_or_else(|| Error::internal("a wrapped private key that is not RSA PKCS #8"))?;
    let scheme = match scheme {
        DigestSignScheme::Pkcs1(h) => RsaScheme::Pkcs1(h.into()),
        DigestSignScheme::Pss(h, salt) => {
            // CSE names this field `rsa_pss_salt_length`; refuse here, before RsaKey::sign
            // would under KMIP's name for it.
            if salt as usize > key.pss_max_salt(h.into()) {
                return Err(Error::invalid(
                    "rsa_pss_salt_length",
                    "the key cannot sign this digest with this salt length",
                ));
            }
            RsaScheme::Pss(h.into(), PssSalt::Bytes(salt))
        }
    };
    key.sign(scheme, digest)
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
        // A salt longer than a 2048-bit key allows (256 - 32 - 2) is refused under CSE's
        // name for the field; the longest one signs and verifies.
        let e = sign_digest(
            &k,
            DigestSignScheme::Pss(DigestHash::Sha256, 223),
            d.as_ref(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("rsa_pss_salt_length"), "{e}");
        let s = sign_digest(
            &k,
            DigestSignScheme::Pss(DigestHash::Sha256, 222),
            d.as_ref(),
        )
        .unwrap();
        let rk = RsaKey::from_pkcs8(&k).unwrap();
        assert!(rk
            .verify(
                RsaScheme::Pss(RsaHash::Sha256, PssSalt::Bytes(222)),
                d.as_ref(),
                &s
            )
            .unwrap());
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
