//! The legacy ciphers: Triple DES (ECB, CBC), raw ChaCha20 and ChaCha20-Poly1305 with a
//! caller's nonce and tag length.
//!
//! aws-lc-rs offers none of them (Triple DES and raw ChaCha20 are below its API, and its
//! ChaCha20-Poly1305 makes only full 16-byte tags), so this module calls the same aws-lc
//! build through aws-lc-sys, behind safe functions that check every length before the
//! library sees a pointer. The service runs them only for keys of the legacy specs, in
//! tenants that allow legacy algorithms ([`arca_core::access::LegacyAlgorithm`]).

use std::os::raw::c_int;

use crate::aead_params::{AeadAlg, AeadCtx};
use arca_core::cipher::CHACHA20_POLY1305_TAG_LENS;
use arca_core::{Error, Result};
use aws_lc_sys as sys;
use zeroize::Zeroizing;

/// The Triple DES key length (three 8-byte DES keys, parity bits included).
pub const TDES_KEY_LEN: usize = 24;
/// The Triple DES block (and CBC IV) length.
pub const TDES_BLOCK: usize = 8;
/// ChaCha20 key length.
pub const CHACHA_KEY_LEN: usize = 32;

/// Sets each byte's low bit so that the byte has odd parity, as DES keys carry it.
pub fn set_odd_parity(key: &mut [u8]) {
    for b in key.iter_mut() {
        let high = *b & 0xfe;
        *b = high | u8::from(high.count_ones() % 2 == 0);
    }
}

/// Checks Triple DES key material: 24 bytes whose three DES keys differ pairwise in their
/// key bits (K1 = K2 or K2 = K3 makes Triple DES single DES, a 56-bit key). Errors name
/// `field`.
pub fn check_tdes_key(field: &str, key: &[u8]) -> Result<()> {
    if key.len() != TDES_KEY_LEN {
        return Err(Error::invalid(
            field,
            format!(
                "not valid TRIPLE_DES key material: expected {TDES_KEY_LEN} raw bytes, got {}",
                key.len()
            ),
        ));
    }
    let k = |i: usize| -> [u8; 8] {
        let mut out = [0u8; 8];
        for (o, b) in out.iter_mut().zip(&key[i * 8..i * 8 + 8]) {
            *o = b & 0xfe;
        }
        out
    };
    if k(0) == k(1) || k(1) == k(2) {
        return Err(Error::invalid(
            field,
            "not valid TRIPLE_DES key material: two adjacent DES keys are equal, which makes it single DES",
        ));
    }
    Ok(())
}

/// An EVP cipher context, freed on drop.
struct CipherCtx(*mut sys::EVP_CIPHER_CTX);

impl Drop for CipherCtx {
    fn drop(&mut self) {
        // SAFETY: the pointer came from EVP_CIPHER_CTX_new, is not null (checked when made)
        // and is freed once, here; EVP_CIPHER_CTX_free also cleanses the key schedule.
        unsafe { sys::EVP_CIPHER_CTX_free(self.0) }
    }
}

/// Triple DES in CBC (`iv` of 8 bytes) or ECB (`iv` empty), encrypting or decrypting,
/// with PKCS#5 padding when `pkcs7`, else whole 8-byte blocks only.
pub fn triple_des(
    key: &[u8],
    cbc: bool,
    pkcs7: bool,
    iv: &[u8],
    data: &[u8],
    encrypt: bool,
) -> Result<Zeroizing<Vec<u8>>> {
    if key.len() != TDES_KEY_LEN {
        return Err(Error::internal("Triple DES key of an unexpected length"));
    }
    let want_iv = if cbc { TDES_BLOCK } else { 0 };
    if iv.len() != want_iv {
        return Err(Error::invalid(
            "iv",
            format!(
                "Triple DES {} needs {}, not {} bytes",
                if cbc { "CBC" } else { "ECB" },
                if cbc { "an 8-byte IV" } else { "no IV" },
                iv.len()
            ),
        ));
    }
    if (!pkcs7 || !encrypt) && !data.len().is_multiple_of(TDES_BLOCK) {
        return Err(Error::invalid(
            "data",
            format!(
                "Triple DES {} needs whole 8-byte blocks, not {} bytes",
                if pkcs7 {
                    "ciphertext"
                } else {
                    "without padding"
                },
                data.len()
            ),
        ));
    }
    let in_len = c_int::try_from(data.len()).map_err(|_| Error::invalid("data", "too long"))?;
    // SAFETY: EVP_des_ede3_cbc/EVP_des_ede3 return pointers to static cipher tables.
    let cipher = unsafe {
        if cbc {
            sys::EVP_des_ede3_cbc()
        } else {
            sys::EVP_des_ede3()
        }
    };
    // SAFETY: allocates a fresh context; a null result is checked before any use.
    let ctx = CipherCtx(unsafe { sys::EVP_CIPHER_CTX_new() });
    if ctx.0.is_null() {
        return Err(Error::internal("Triple DES context"));
    }
    let fail = || Error::internal("Triple DES");
    // SAFETY: ctx is a live context; `key` is 24 bytes (checked above), what
    // des_ede3 reads; `iv` is 8 bytes for CBC (checked above) and null for ECB, which
    // reads none.
    let ok = unsafe {
        sys::EVP_CipherInit_ex(
            ctx.0,
            cipher,
            std::ptr::null_mut(),
            key.as_ptr(),
            if cbc { iv.as_ptr() } else { std::ptr::null() },
            c_int::from(encrypt),
        )
    };
    if ok != 1 {
        return Err(fail());
    }
    // SAFETY: ctx is a live, initialised context.
    if unsafe { sys::EVP_CIPHER_CTX_set_padding(ctx.0, c_int::from(pkcs7)) } != 1 {
        return Err(fail());
    }
    // Update writes at most in_len + one block less one byte, Final at most one block.
    let mut out = Zeroizing::new(vec![0u8; data.len() + 2 * TDES_BLOCK]);
    let mut n: c_int = 0;
    // SAFETY: `out` has room for in_len + 2 blocks, more than Update can write; `data` is
    // in_len readable bytes; `n` is a valid out-parameter.
    let ok =
        unsafe { sys::EVP_CipherUpdate(ctx.0, out.as_mut_ptr(), &mut n, data.as_ptr(), in_len) };
    if ok != 1 {
        return Err(fail());
    }
    let written = usize::try_from(n).map_err(|_| fail())?;
    let mut last: c_int = 0;
    // SAFETY: at least two blocks of `out` remain after `written` bytes (Update writes at
    // most in_len + 7), and Final writes at most one block.
    let ok = unsafe { sys::EVP_CipherFinal_ex(ctx.0, out.as_mut_ptr().add(written), &mut last) };
    if ok != 1 {
        return Err(if encrypt {
            fail()
        } else {
            Error::bad_ciphertext("data", "the padding is not valid PKCS#5")
        });
    }
    out.truncate(written + usize::try_from(last).map_err(|_| fail())?);
    Ok(out)
}

/// The ChaCha20 stream cipher over `data` (encryption and decryption are the same): an
/// 8-byte nonce is the original ChaCha20's (a 64-bit nonce after a 64-bit block counter
/// from 0), a 12-byte one RFC 8439's (after a 32-bit block counter from
/// `initial_counter`).
pub fn chacha20(
    key: &[u8],
    nonce: &[u8],
    initial_counter: u32,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if key.len() != CHACHA_KEY_LEN {
        return Err(Error::internal("ChaCha20 key of an unexpected length"));
    }
    // The original layout (counter words 12-13, nonce words 14-15) is RFC 8439's with the
    // counter's high word as the nonce's first word: a 64-bit counter from 0 is a 32-bit
    // counter from 0 after four zero bytes, until 2^32 blocks (256 GiB), far beyond the
    // largest message a request can carry.
    let mut n12 = [0u8; 12];
    let counter = match nonce.len() {
        8 => {
            if initial_counter != 0 {
                return Err(Error::invalid(
                    "initial_counter",
                    "ChaCha20 with an 8-byte nonce counts blocks from 0",
                ));
            }
            n12[4..].copy_from_slice(nonce);
            0
        }
        12 => {
            n12.copy_from_slice(nonce);
            initial_counter
        }
        other => {
            return Err(Error::invalid(
                "iv",
                format!("ChaCha20 takes an 8-byte or a 12-byte nonce, not {other} bytes"),
            ))
        }
    };
    let blocks = (data.len() as u64).div_ceil(64);
    if u64::from(counter) + blocks > 1 << 32 {
        return Err(Error::invalid(
            "data",
            "the block counter would wrap: too much data for this initial counter",
        ));
    }
    let mut out = Zeroizing::new(vec![0u8; data.len()]);
    // SAFETY: `out` and `data` are data.len() bytes each, `key` 32 bytes (checked above),
    // the nonce 12 bytes; CRYPTO_chacha_20 reads and writes exactly those and cannot fail.
    unsafe {
        sys::CRYPTO_chacha_20(
            out.as_mut_ptr(),
            data.as_ptr(),
            data.len(),
            key.as_ptr(),
            n12.as_ptr(),
            counter,
        )
    };
    Ok(out)
}

fn check_tag_len(tag_len: usize) -> Result<()> {
    if !CHACHA20_POLY1305_TAG_LENS.contains(&tag_len) {
        return Err(Error::invalid(
            "tag_length",
            format!(
                "ChaCha20-Poly1305 tags are {} to {} bytes, not {tag_len}",
                CHACHA20_POLY1305_TAG_LENS.start(),
                CHACHA20_POLY1305_TAG_LENS.end()
            ),
        ));
    }
    Ok(())
}

fn aead_ctx(key: &[u8], nonce: &[u8], tag_len: usize) -> Result<AeadCtx> {
    if nonce.len() != 12 {
        return Err(Error::invalid(
            "iv",
            format!(
                "ChaCha20-Poly1305 takes a 12-byte nonce, not {} bytes",
                nonce.len()
            ),
        ));
    }
    check_tag_len(tag_len)?;
    AeadCtx::new(AeadAlg::ChaCha20Poly1305, key, tag_len)
}

/// ChaCha20-Poly1305 encryption (RFC 8439) with the caller's 12-byte nonce; returns the
/// ciphertext and a tag of `tag_len` bytes.
pub fn chacha20_poly1305_seal(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    tag_len: usize,
) -> Result<(Vec<u8>, Vec<u8>)> {
    aead_ctx(key, nonce, tag_len)?
        .seal(nonce, aad, plaintext, tag_len)
        .ok_or_else(|| Error::internal("ChaCha20-Poly1305 encryption"))
}

/// ChaCha20-Poly1305 decryption: the tag (12 to 16 bytes) must verify, else nothing of the
/// plaintext is returned.
pub fn chacha20_poly1305_open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    aead_ctx(key, nonce, tag.len())?
        .open(nonce, aad, ciphertext, tag)
        .ok_or_else(|| {
            Error::bad_ciphertext(
                "tag",
                "the data does not authenticate: the ciphertext, nonce, AAD or tag differ from those of the encryption",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::hex;

    /// The TDEA example of NIST SP 800-67 (three keys, ECB), and CBC and padded round
    /// trips.
    #[test]
    fn triple_des_known_answer_and_round_trips() {
        let key = hex("0123456789abcdef23456789abcdef01456789abcdef0123");
        let pt = b"The qufck brown fox jump";
        let ct = triple_des(&key, false, false, &[], pt, true).unwrap();
        assert_eq!(
            &ct[..],
            &hex("a826fd8ce53b855fcce21c8112256fe668d5c05dd9b6b900")[..]
        );
        assert_eq!(
            &triple_des(&key, false, false, &[], &ct, false).unwrap()[..],
            pt
        );
        let iv = [7u8; 8];
        for pkcs7 in [false, true] {
            let ct = triple_des(&key, true, pkcs7, &iv, pt, true).unwrap();
            assert_eq!(ct.len(), if pkcs7 { 32 } else { 24 });
            assert_eq!(
                &triple_des(&key, true, pkcs7, &iv, &ct, false).unwrap()[..],
                pt
            );
        }
        assert!(triple_des(&key, true, false, &[0; 16], pt, true).is_err());
        assert!(triple_des(&key, false, false, &[], b"seven b", true).is_err());
        let mut bad = key.clone();
        bad[8..16].copy_from_slice(&key[0..8]);
        assert!(check_tdes_key("material", &bad).is_err());
        assert!(check_tdes_key("material", &key).is_ok());
        let mut k = vec![0u8, 1, 2, 3, 0xfe, 0xff];
        set_odd_parity(&mut k);
        assert!(k.iter().all(|b| b.count_ones() % 2 == 1), "{k:?}");
    }

    /// The original ChaCha20's 8-byte-nonce vectors (all-zero key and nonce, and nonce
    /// ...01) as the OASIS cases use them, and RFC 8439 §2.4.2 with a 12-byte nonce.
    #[test]
    fn chacha20_vectors() {
        let zero = [0u8; 32];
        let ks = chacha20(&zero, &[0; 8], 0, &[0; 64]).unwrap();
        assert_eq!(&ks[..], &hex("76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586")[..]);
        let ks = chacha20(&zero, &[0, 0, 0, 0, 0, 0, 0, 1], 0, &[0; 60]).unwrap();
        assert_eq!(&ks[..], &hex("de9cba7bf3d69ef5e786dc63973f653a0b49e015adbff7134fcb7df137821031e85a050278a7084527214f73efc7fa5b5277062eb7a0433e445f41e3")[..]);
        let key: Vec<u8> = (0u8..32).collect();
        let nonce = hex("000000000000004a00000000");
        let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let ct = chacha20(&key, &nonce, 1, pt).unwrap();
        assert_eq!(&ct[..16], &hex("6e2e359a2568f98041ba0728dd0d6981")[..]);
        assert_eq!(&chacha20(&key, &nonce, 1, &ct).unwrap()[..], &pt[..]);
        assert!(chacha20(&key, &[0; 16], 0, pt).is_err());
        assert!(chacha20(&key, &[0; 8], 1, pt).is_err());
    }

    /// RFC 8439 §2.8.2, with the full tag and a tag truncated to 12 bytes.
    #[test]
    fn chacha20_poly1305_vectors() {
        let key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
        let nonce = hex("070000004041424344454647");
        let aad = hex("50515253c0c1c2c3c4c5c6c7");
        let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let (ct, tag) = chacha20_poly1305_seal(&key, &nonce, &aad, pt, 16).unwrap();
        assert_eq!(tag, hex("1ae10b594f09e26a7e902ecbd0600691"));
        assert_eq!(&ct[..8], &hex("d31a8d34648e60db")[..]);
        assert_eq!(
            &chacha20_poly1305_open(&key, &nonce, &aad, &ct, &tag).unwrap()[..],
            &pt[..]
        );
        assert_eq!(
            &chacha20_poly1305_open(&key, &nonce, &aad, &ct, &tag[..12]).unwrap()[..],
            &pt[..]
        );
        let mut bad = tag.clone();
        bad[0] ^= 0xff;
        assert!(chacha20_poly1305_open(&key, &nonce, &aad, &ct, &bad).is_err());
        assert!(chacha20_poly1305_seal(&key, &nonce, &aad, pt, 1).is_err());
        assert!(chacha20_poly1305_seal(&key, &nonce, &aad, pt, 32).is_err());
        let (_, short) = chacha20_poly1305_seal(&key, &nonce, &aad, pt, 12).unwrap();
        assert_eq!(short, tag[..12]);
    }
}
