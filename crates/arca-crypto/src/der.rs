//! The few DER structures Arca builds itself: the SubjectPublicKeyInfo of ML-KEM keys (which
//! aws-lc-rs hands out as raw bytes), and a shape check for SPKI.

use arca_core::model::KeySpec;

/// OID body of id-alg-ml-kem-768 (2.16.840.1.101.3.4.4.2) and -1024 (…4.4.3), FIPS 203 / NIST CSOR.
fn mlkem_oid(spec: KeySpec) -> [u8; 9] {
    let last = if spec == KeySpec::MlKem1024 { 3 } else { 2 };
    [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, last]
}

pub(crate) fn push_len(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else if n < 0x10000 {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    } else {
        out.extend_from_slice(&[0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
}

pub(crate) fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(tag);
    push_len(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// The SubjectPublicKeyInfo prefix of a P-256 public key (id-ecPublicKey, prime256v1,
/// BIT STRING of 66 bytes); the 65-byte uncompressed point follows.
pub const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The DER OID of prime256v1, as PKCS#11's CKA_EC_PARAMS wants it.
pub const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

pub(crate) fn der_uint(be: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}

/// An ECDSA signature as PKCS#11 returns it (`r || s`, each `n` bytes) in the DER form
/// (`ECDSA-Sig-Value`) that software keys and AWS KMS return.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = der_uint(r);
    body.extend_from_slice(&der_uint(s));
    tlv(0x30, &body)
}

/// The other way: `ECDSA-Sig-Value` to `r || s` of `n` bytes each; `None` if malformed.
pub fn ecdsa_der_to_raw(der: &[u8], n: usize) -> Option<Vec<u8>> {
    fn take(b: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        if b.len() < 2 || b[0] != tag || b[1] & 0x80 != 0 {
            return None;
        }
        let len = b[1] as usize;
        let body = b.get(2..2 + len)?;
        Some((body, &b[2 + len..]))
    }
    let (seq, rest) = take(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (r, seq) = take(seq, 0x02)?;
    let (s, seq) = take(seq, 0x02)?;
    if !seq.is_empty() {
        return None;
    }
    let mut out = vec![0u8; 2 * n];
    for (i, int) in [r, s].into_iter().enumerate() {
        let int: Vec<u8> = int.iter().copied().skip_while(|b| *b == 0).collect();
        if int.len() > n {
            return None;
        }
        out[(i + 1) * n - int.len()..(i + 1) * n].copy_from_slice(&int);
    }
    Some(out)
}

/// `SEQUENCE { SEQUENCE { OID }, BIT STRING { 0, ek } }`.
pub fn mlkem_spki(spec: KeySpec, ek: &[u8]) -> Vec<u8> {
    let alg = tlv(0x30, &tlv(0x06, &mlkem_oid(spec)));
    let mut bits = Vec::with_capacity(ek.len() + 1);
    bits.push(0);
    bits.extend_from_slice(ek);
    let mut body = alg;
    body.extend_from_slice(&tlv(0x03, &bits));
    tlv(0x30, &body)
}

/// The raw encapsulation key inside an ML-KEM SPKI built by [`mlkem_spki`] (or an identical
/// one from elsewhere), or `None` if the bytes are not exactly that structure.
pub fn mlkem_raw_from_spki(spec: KeySpec, spki: &[u8]) -> Option<&[u8]> {
    let k = if spec == KeySpec::MlKem1024 { 4 } else { 3 };
    let ek_len = 384 * k + 32;
    let expected = mlkem_spki(spec, &vec![0u8; ek_len]);
    if spki.len() != expected.len()
        || spki[..expected.len() - ek_len] != expected[..expected.len() - ek_len]
    {
        return None;
    }
    Some(&spki[spki.len() - ek_len..])
}

/// The AlgorithmIdentifier of rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters.
const RSA_ALG_ID: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// Reads one TLV with a definite length (short or long form, up to 4 length bytes):
/// `(tag, body, rest)`, or `None` if malformed.
pub(crate) fn read_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let l = *b.get(1)?;
    let (len, hl) = if l < 0x80 {
        (l as usize, 2)
    } else {
        let n = (l & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let body = b.get(hl..hl.checked_add(len)?)?;
    Some((tag, body, &b[hl + len..]))
}

/// Builds `tag || len || parts...` into a zeroizing buffer allocated once (no copy of a
/// private key is left behind in a grown vector).
pub(crate) fn tlv_secret(tag: u8, parts: &[&[u8]]) -> zeroize::Zeroizing<Vec<u8>> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(len + 6));
    out.push(tag);
    push_len(&mut out, len);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// An RSA private key in PKCS#1 (`RSAPrivateKey`) wrapped as PKCS#8 `PrivateKeyInfo`, the
/// form Arca stores; KMIP clients send and ask for both.
pub fn rsa_pkcs1_to_pkcs8(pkcs1: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let (tag, _, rest) = read_tlv(pkcs1)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let octets = tlv_secret(0x04, &[pkcs1]);
    Some(tlv_secret(
        0x30,
        &[&[0x02, 0x01, 0x00], &RSA_ALG_ID, &octets],
    ))
}

/// The `RSAPrivateKey` inside an RSA PKCS#8 key, or `None` if it is not one.
pub fn rsa_pkcs8_to_pkcs1(pkcs8: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let (tag, body, rest) = read_tlv(pkcs8)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (t, _version, body) = read_tlv(body)?;
    if t != 0x02 {
        return None;
    }
    let (t, alg, body) = read_tlv(body)?;
    if t != 0x30 || alg != &RSA_ALG_ID[2..] {
        return None;
    }
    let (t, key, _) = read_tlv(body)?;
    (t == 0x04).then(|| zeroize::Zeroizing::new(key.to_vec()))
}

/// An RSA public key in PKCS#1 (`RSAPublicKey`) as a SubjectPublicKeyInfo.
pub fn rsa_pkcs1_public_to_spki(pkcs1: &[u8]) -> Option<Vec<u8>> {
    let (tag, _, rest) = read_tlv(pkcs1)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let mut bits = Vec::with_capacity(pkcs1.len() + 1);
    bits.push(0);
    bits.extend_from_slice(pkcs1);
    let mut body = RSA_ALG_ID.to_vec();
    body.extend_from_slice(&tlv(0x03, &bits));
    Some(tlv(0x30, &body))
}

/// The `RSAPublicKey` inside an RSA SubjectPublicKeyInfo, or `None` if it is not one.
pub fn rsa_spki_to_pkcs1(spki: &[u8]) -> Option<Vec<u8>> {
    let (tag, body, rest) = read_tlv(spki)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (t, alg, body) = read_tlv(body)?;
    if t != 0x30 || alg != &RSA_ALG_ID[2..] {
        return None;
    }
    let (t, bits, _) = read_tlv(body)?;
    if t != 0x03 || bits.first() != Some(&0) {
        return None;
    }
    Some(bits[1..].to_vec())
}

/// True if the bytes start like an SPKI: `SEQUENCE { SEQUENCE { OID ...`.
pub fn is_spki(der: &[u8]) -> bool {
    fn skip_header(b: &[u8]) -> Option<&[u8]> {
        if b.len() < 2 || b[0] != 0x30 {
            return None;
        }
        let l = b[1];
        let hl = if l < 0x80 { 2 } else { 2 + (l & 0x7f) as usize };
        b.get(hl..)
    }
    skip_header(der)
        .and_then(skip_header)
        .is_some_and(|inner| inner.first() == Some(&0x06))
}

/// The modulus and public exponent (big-endian, no leading zeros) of an RSA public key
/// given as SubjectPublicKeyInfo or PKCS#1 DER: what a JWK's `n` and `e` carry (Microsoft
/// DKE's public-key answer, Google CSE's).
pub fn rsa_public_components(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let pk = aws_lc_rs::rsa::PublicKey::from_der(der).ok()?;
    Some((
        pk.modulus().big_endian_without_leading_zero().to_vec(),
        pk.exponent().big_endian_without_leading_zero().to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_pkcs1_and_pkcs8_and_spki_convert_both_ways() {
        use crate::provider::CryptoProvider;
        let m = crate::software::SoftwareProvider
            .generate(KeySpec::Rsa2048)
            .unwrap();
        let pkcs1 = rsa_pkcs8_to_pkcs1(&m.secret).expect("PKCS#8 holds an RSAPrivateKey");
        assert_eq!(&rsa_pkcs1_to_pkcs8(&pkcs1).unwrap()[..], &m.secret[..]);
        let spki = m.public_spki.unwrap();
        let pub1 = rsa_spki_to_pkcs1(&spki).unwrap();
        assert_eq!(rsa_pkcs1_public_to_spki(&pub1).unwrap(), spki);
        // aws-lc-rs reads the converted forms.
        assert!(aws_lc_rs::rsa::KeyPair::from_der(&pkcs1).is_ok());
        assert!(rsa_pkcs1_to_pkcs8(b"\x30\x05junk").is_none());
        assert!(rsa_pkcs8_to_pkcs1(&spki).is_none());
    }

    #[test]
    fn ecdsa_signature_forms_round_trip() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero in DER
        raw[40] = 0x01; // s has leading zeros to drop
        raw[63] = 0x7f;
        let der = ecdsa_raw_to_der(&raw);
        assert_eq!(der[0], 0x30);
        assert_eq!(ecdsa_der_to_raw(&der, 32).unwrap(), raw);
        assert!(ecdsa_der_to_raw(&der[..der.len() - 1], 32).is_none());
    }

    #[test]
    fn mlkem_spki_round_trip() {
        let ek = vec![7u8; 1184];
        let spki = mlkem_spki(KeySpec::MlKem768, &ek);
        assert!(is_spki(&spki));
        assert_eq!(mlkem_raw_from_spki(KeySpec::MlKem768, &spki), Some(&ek[..]));
        assert_eq!(mlkem_raw_from_spki(KeySpec::MlKem1024, &spki), None);
    }
}

/// A DER SEQUENCE of non-negative INTEGERs from their big-endian magnitudes (leading zeros
/// dropped, one added where the top bit is set), in a zeroizing buffer: PKCS#1's
/// `RSAPublicKey` (n, e) and `RSAPrivateKey` (version, n, e, d, p, q, dp, dq, qinv) from the
/// integers KMIP's Transparent RSA formats carry. `None` for an empty list.
pub fn integer_sequence(magnitudes: &[&[u8]]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    if magnitudes.is_empty() {
        return None;
    }
    let ints: Vec<zeroize::Zeroizing<Vec<u8>>> = magnitudes
        .iter()
        .map(|m| {
            let start = m.iter().position(|b| *b != 0).unwrap_or(m.len());
            let v = &m[start..];
            let pad: &[u8] = if v.first().is_none_or(|b| b & 0x80 != 0) {
                &[0]
            } else {
                &[]
            };
            tlv_secret(0x02, &[pad, v])
        })
        .collect();
    let parts: Vec<&[u8]> = ints.iter().map(|i| i.as_slice()).collect();
    Some(tlv_secret(0x30, &parts))
}

/// The other way: the magnitudes of a DER SEQUENCE that holds only non-negative INTEGERs
/// (the sign byte dropped), each in a zeroizing buffer; `None` if it is anything else.
pub fn integers_of_sequence(der: &[u8]) -> Option<Vec<zeroize::Zeroizing<Vec<u8>>>> {
    let (tag, mut body, rest) = read_tlv(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    while !body.is_empty() {
        let (t, v, next) = read_tlv(body)?;
        if t != 0x02 || v.is_empty() || v[0] & 0x80 != 0 {
            return None;
        }
        let v = if v.len() > 1 && v[0] == 0 { &v[1..] } else { v };
        out.push(zeroize::Zeroizing::new(v.to_vec()));
        body = next;
    }
    Some(out)
}

#[cfg(test)]
mod integer_sequence_tests {
    use super::*;

    #[test]
    fn integers_round_trip() {
        let n = [0xC3u8; 256];
        let der = integer_sequence(&[&[0, 0, 0], &n, &[1, 0, 1]]).unwrap();
        // SEQUENCE (long length) { INTEGER 0, INTEGER n with a sign byte, INTEGER 65537 }.
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x0D]);
        assert_eq!(&der[4..7], &[0x02, 0x01, 0x00]);
        assert_eq!(&der[7..12], &[0x02, 0x82, 0x01, 0x01, 0x00]);
        let back = integers_of_sequence(&der).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0].as_slice(), &[0]);
        assert_eq!(back[1].as_slice(), &n);
        assert_eq!(back[2].as_slice(), &[1, 0, 1]);
        assert!(integers_of_sequence(&der[..der.len() - 1]).is_none());
        assert!(
            integers_of_sequence(&[0x30, 0x03, 0x02, 0x01, 0x80]).is_none(),
            "negative"
        );
        assert!(integer_sequence(&[]).is_none());
    }
}
