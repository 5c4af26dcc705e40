//! Raw AES: a caller-chosen mode and IV, bare ciphertext out.
//!
//! Arca's own ciphertexts name their key and version and carry their nonce; KMIP and
//! PKCS#11 clients instead manage IVs and layout themselves and ask a key manager for the
//! block-cipher operation only. These functions give them that, with aws-lc-rs doing the
//! cipher, and refuse what would be unsafe or ambiguous (a wrong IV length, a partial
//! block without padding, a GCM tag that does not verify) with an error that says which
//! field is wrong.

use arca_core::{Error, Result};
use aws_lc_rs::cipher::{
    self, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext,
    PaddedBlockDecryptingKey, PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use zeroize::Zeroizing;

use crate::provider::RawMode;

pub use arca_core::cipher::GCM_TAG_LEN;

fn cipher_alg(key: &[u8]) -> Result<&'static cipher::Algorithm> {
    Ok(match key.len() {
        16 => &cipher::AES_128,
        24 => &cipher::AES_192,
        32 => &cipher::AES_256,
        _ => return Err(Error::internal("AES key of an unexpected length")),
    })
}

fn check_iv(mode: RawMode, iv: &[u8]) -> Result<()> {
    let want = mode.iv_len();
    if !mode.iv_len_ok(iv.len()) {
        if mode == RawMode::Gcm {
            return Err(Error::invalid(
                "iv",
                format!(
                    "a GCM IV is 1 to {} bytes (12 recommended), not {}",
                    arca_core::cipher::GCM_MAX_IV_LEN,
                    iv.len()
                ),
            ));
        }
        return Err(Error::invalid(
            "iv",
            format!("{mode:?} needs a {want}-byte IV, not {} bytes", iv.len()),
        ));
    }
    Ok(())
}

fn iv128(iv: &[u8]) -> Result<FixedLength<16>> {
    FixedLength::<16>::try_from(iv).map_err(|_| Error::invalid("iv", "needs 16 bytes"))
}

fn unbound(key: &[u8]) -> Result<UnboundCipherKey> {
    UnboundCipherKey::new(cipher_alg(key)?, key).map_err(|_| Error::internal("AES key"))
}

fn whole_blocks(mode: RawMode, len: usize, field: &str) -> Result<()> {
    if !len.is_multiple_of(16) {
        return Err(Error::invalid(
            field,
            format!("{mode:?} without padding needs whole 16-byte blocks, not {len} bytes"),
        ));
    }
    Ok(())
}

/// Encrypts; returns the ciphertext and the tag (empty except for GCM, whose tag is the
/// full 16 bytes: a caller that wants a shorter one keeps its leading bytes).
pub fn encrypt(
    key: &[u8],
    mode: RawMode,
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>)> {
    check_iv(mode, iv)?;
    if !aad.is_empty() && mode != RawMode::Gcm {
        return Err(Error::invalid(
            "aad",
            "only GCM authenticates additional data",
        ));
    }
    let fail = |_| Error::internal("AES encryption");
    match mode {
        RawMode::Gcm => crate::aead_params::seal(key, iv, aad, plaintext, GCM_TAG_LEN),
        RawMode::Cbc { pkcs7: true } | RawMode::Ecb { pkcs7: true } => {
            let k = if matches!(mode, RawMode::Cbc { .. }) {
                PaddedBlockEncryptingKey::cbc_pkcs7(unbound(key)?)
            } else {
                PaddedBlockEncryptingKey::ecb_pkcs7(unbound(key)?)
            }
            .map_err(fail)?;
            let ctx = if iv.is_empty() {
                EncryptionContext::None
            } else {
                EncryptionContext::Iv128(iv128(iv)?)
            };
            let mut out = plaintext.to_vec();
            k.less_safe_encrypt(&mut out, ctx).map_err(fail)?;
            Ok((out, vec![]))
        }
        RawMode::Cbc { pkcs7: false } | RawMode::Ecb { pkcs7: false } | RawMode::Ctr => {
            if mode != RawMode::Ctr {
                whole_blocks(mode, plaintext.len(), "data")?;
            }
            let k = match mode {
                RawMode::Ctr => EncryptingKey::ctr(unbound(key)?),
                RawMode::Cbc { .. } => EncryptingKey::cbc(unbound(key)?),
                _ => EncryptingKey::ecb(unbound(key)?),
            }
            .map_err(fail)?;
            let ctx = if iv.is_empty() {
                EncryptionContext::None
            } else {
                EncryptionContext::Iv128(iv128(iv)?)
            };
            let mut out = plaintext.to_vec();
            k.less_safe_encrypt(&mut out, ctx).map_err(fail)?;
            Ok((out, vec![]))
        }
    }
}

/// Decrypts; for GCM, `tag` (12 to 16 bytes) must verify.
pub fn decrypt(
    key: &[u8],
    mode: RawMode,
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    check_iv(mode, iv)?;
    if !aad.is_empty() && mode != RawMode::Gcm {
        return Err(Error::invalid(
            "aad",
            "only GCM authenticates additional data",
        ));
    }
    let fail = |_| Error::internal("AES decryption");
    let ctx = || -> Result<DecryptionContext> {
        Ok(if iv.is_empty() {
            DecryptionContext::None
        } else {
            DecryptionContext::Iv128(iv128(iv)?)
        })
    };
    match mode {
        RawMode::Gcm => crate::aead_params::open(key, iv, aad, ciphertext, tag),
        RawMode::Cbc { pkcs7: true } | RawMode::Ecb { pkcs7: true } => {
            whole_blocks(mode, ciphertext.len(), "data")?;
            let k = if matches!(mode, RawMode::Cbc { .. }) {
                PaddedBlockDecryptingKey::cbc_pkcs7(unbound(key)?)
            } else {
                PaddedBlockDecryptingKey::ecb_pkcs7(unbound(key)?)
            }
            .map_err(fail)?;
            let mut buf = Zeroizing::new(ciphertext.to_vec());
            let n = k
                .decrypt(&mut buf, ctx()?)
                .map_err(|_| Error::bad_ciphertext("data", "the padding is not valid PKCS#7"))?
                .len();
            buf.truncate(n);
            Ok(buf)
        }
        RawMode::Cbc { pkcs7: false } | RawMode::Ecb { pkcs7: false } | RawMode::Ctr => {
            if mode != RawMode::Ctr {
                whole_blocks(mode, ciphertext.len(), "data")?;
            }
            let k = match mode {
                RawMode::Ctr => DecryptingKey::ctr(unbound(key)?),
                RawMode::Cbc { .. } => DecryptingKey::cbc(unbound(key)?),
                _ => DecryptingKey::ecb(unbound(key)?),
            }
            .map_err(fail)?;
            let mut buf = Zeroizing::new(ciphertext.to_vec());
            let n = k.decrypt(&mut buf, ctx()?).map_err(fail)?.len();
            buf.truncate(n);
            Ok(buf)
        }
    }
}

/// AES Key Wrap (RFC 3394) of `data` under `kek`, or with padding (RFC 5649) when
/// `padded`. Unpadded wrapping takes whole 8-byte blocks of at least 16 bytes.
pub fn key_wrap(kek: &[u8], padded: bool, data: &[u8]) -> Result<Vec<u8>> {
    use aws_lc_rs::key_wrap::{AesKek, KeyWrap, KeyWrapPadded, AES_128, AES_256};
    let alg = match kek.len() {
        16 => &AES_128,
        32 => &AES_256,
        _ => {
            return Err(Error::unprocessable(
                "wrapping_key",
                "AES Key Wrap takes an AES-128 or AES-256 wrapping key",
            ))
        }
    };
    let k = AesKek::new(alg, kek).map_err(|_| Error::internal("AES-KW key"))?;
    let mut out = vec![0u8; data.len() + 16];
    let n = if padded {
        k.wrap_with_padding(data, &mut out)
            .map_err(|_| Error::internal("AES-KWP wrap"))?
            .len()
    } else {
        if data.len() < 16 || !data.len().is_multiple_of(8) {
            return Err(Error::unprocessable(
                "material",
                "AES Key Wrap without padding needs whole 8-byte blocks (16 bytes or more); use AES Key Wrap with padding",
            ));
        }
        k.wrap(data, &mut out)
            .map_err(|_| Error::internal("AES-KW wrap"))?
            .len()
    };
    out.truncate(n);
    Ok(out)
}

/// The inverse of [`key_wrap`]: an integrity failure is refused (field `wrapped`).
pub fn key_unwrap(kek: &[u8], padded: bool, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use aws_lc_rs::key_wrap::{AesKek, KeyWrap, KeyWrapPadded, AES_128, AES_256};
    let alg = match kek.len() {
        16 => &AES_128,
        32 => &AES_256,
        _ => {
            return Err(Error::unprocessable(
                "wrapping_key",
                "AES Key Wrap takes an AES-128 or AES-256 wrapping key",
            ))
        }
    };
    let bad = || {
        Error::bad_ciphertext("wrapped", "the wrapped key does not unwrap with this key (altered, or wrapped under another key or mode)")
    };
    if wrapped.len() < 16 || !wrapped.len().is_multiple_of(8) {
        return Err(bad());
    }
    let k = AesKek::new(alg, kek).map_err(|_| Error::internal("AES-KW key"))?;
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let n = if padded {
        k.unwrap_with_padding(wrapped, &mut out)
            .map_err(|_| bad())?
            .len()
    } else {
        k.unwrap(wrapped, &mut out).map_err(|_| bad())?.len()
    };
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::hex;

    /// NIST SP 800-38A F.2.1 (CBC-AES128.Encrypt), F.1.1 (ECB), F.5.1 (CTR), first block.
    #[test]
    fn sp800_38a_vectors() {
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let pt = hex("6bc1bee22e409f96e93d7e117393172a");
        let iv = hex("000102030405060708090a0b0c0d0e0f");
        let (ct, _) = encrypt(&key, RawMode::Cbc { pkcs7: false }, &iv, &[], &pt).unwrap();
        assert_eq!(ct, hex("7649abac8119b246cee98e9b12e9197d"));
        let (ct, _) = encrypt(&key, RawMode::Ecb { pkcs7: false }, &[], &[], &pt).unwrap();
        assert_eq!(ct, hex("3ad77bb40d7a3660a89ecaf32466ef97"));
        let ctr_iv = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        let (ct, _) = encrypt(&key, RawMode::Ctr, &ctr_iv, &[], &pt).unwrap();
        assert_eq!(ct, hex("874d6191b620e3261bef6864990db6ce"));
        for (mode, iv) in [
            (RawMode::Cbc { pkcs7: false }, &iv[..]),
            (RawMode::Ecb { pkcs7: false }, &[][..]),
            (RawMode::Ctr, &ctr_iv[..]),
            (RawMode::Cbc { pkcs7: true }, &iv[..]),
            (RawMode::Ecb { pkcs7: true }, &[][..]),
        ] {
            let (ct, _) = encrypt(&key, mode, iv, &[], &pt).unwrap();
            assert_eq!(
                &decrypt(&key, mode, iv, &[], &ct, &[]).unwrap()[..],
                &pt[..]
            );
        }
    }

    /// The GCM test case 4 of the GCM specification (McGrew and Viega), AES-128.
    #[test]
    fn gcm_round_trip_and_tamper() {
        let key = hex("feffe9928665731c6d6a8f9467308308");
        let iv = hex("cafebabefacedbaddecaf888");
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        let (ct, tag) = encrypt(&key, RawMode::Gcm, &iv, &aad, &pt).unwrap();
        assert_eq!(tag, hex("5bc94fbc3221a5db94fae95ae7121a47"));
        assert_eq!(
            &decrypt(&key, RawMode::Gcm, &iv, &aad, &ct, &tag).unwrap()[..],
            &pt[..]
        );
        let mut bad = tag.clone();
        bad[0] ^= 1;
        assert!(decrypt(&key, RawMode::Gcm, &iv, &aad, &ct, &bad).is_err());
    }

    /// RFC 3394 §4.6 (256-bit data, 256-bit KEK) and RFC 5649 §6 (20 bytes, 192-bit KEK is
    /// not offered; the padded case checks a round trip length instead).
    #[test]
    fn key_wrap_vectors() {
        let kek = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        let data = hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        assert_eq!(
            key_wrap(&kek, false, &data).unwrap(),
            hex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
        );
        assert_eq!(key_wrap(&kek, true, &[7u8; 20]).unwrap().len(), 32);
        assert!(key_wrap(&kek, false, &[7u8; 20]).is_err());
    }

    #[test]
    fn refuses_bad_parameters() {
        let key = [7u8; 32];
        assert!(encrypt(&key, RawMode::Cbc { pkcs7: true }, &[0; 12], &[], b"x").is_err());
        assert!(encrypt(&key, RawMode::Cbc { pkcs7: false }, &[0; 16], &[], b"x").is_err());
        assert!(encrypt(&key, RawMode::Cbc { pkcs7: true }, &[0; 16], b"aad", b"x").is_err());
        let (ct, _) = encrypt(&key, RawMode::Cbc { pkcs7: true }, &[0; 16], &[], b"x").unwrap();
        assert_eq!(ct.len(), 16);
        assert!(decrypt(
            &key,
            RawMode::Cbc { pkcs7: true },
            &[0; 16],
            &[],
            &ct[..15],
            &[]
        )
        .is_err());
    }
}
