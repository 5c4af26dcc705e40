//! The few DER structures Arca builds itself: the SubjectPublicKeyInfo of ML-KEM keys (which
//! aws-lc-rs hands out as raw bytes), and a shape check for SPKI.

use arca_core::model::KeySpec;

/// OID body of id-alg-ml-kem-768 (2.16.840.1.101.3.4.4.2) and -1024 (…4.4.3), FIPS 203 / NIST CSOR.
fn mlkem_oid(spec: KeySpec) -> [u8; 9] {
    let last = if spec == KeySpec::MlKem1024 { 3 } else { 2 };
    [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, last]
}

fn push_len(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(tag);
    push_len(&mut out, body.len());
    out.extend_from_slice(body);
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlkem_spki_round_trip() {
        let ek = vec![7u8; 1184];
        let spki = mlkem_spki(KeySpec::MlKem768, &ek);
        assert!(is_spki(&spki));
        assert_eq!(mlkem_raw_from_spki(KeySpec::MlKem768, &spki), Some(&ek[..]));
        assert_eq!(mlkem_raw_from_spki(KeySpec::MlKem1024, &spki), None);
    }
}
