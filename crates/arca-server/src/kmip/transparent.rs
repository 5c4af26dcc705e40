//! KMIP's Transparent RSA key formats: a key as its integers (Modulus and Public Exponent;
//! for a private key also the Private Exponent, the primes, their exponents and the CRT
//! coefficient), each a Big Integer.
//!
//! The door only re-lays them out: on Register it writes the integers as the PKCS#1 DER
//! structure they come from (RFC 8017 A.1; `arca_crypto::der`, in zeroizing buffers) and
//! hands that to the service as PKCS#1, which
//! checks the key with aws-lc and keeps it as any imported RSA key; on Get it asks the
//! service for PKCS#1 and reads the integers back out of it. No arithmetic on the key is
//! done here (never the `rsa` crate: RUSTSEC-2023-0071).

use arca_crypto::der;
use arca_kmip::{tags, Bytes, Failure, Item, Value};

/// The fields of a Transparent RSA Private Key, in PKCS#1's order after the version.
const PRIVATE_FIELDS: [u32; 8] = [
    tags::MODULUS,
    tags::PUBLIC_EXPONENT,
    tags::PRIVATE_EXPONENT,
    tags::P,
    tags::Q,
    tags::PRIME_EXPONENT_P,
    tags::PRIME_EXPONENT_Q,
    tags::CRT_COEFFICIENT,
];

/// The fields of a Transparent RSA Public Key.
const PUBLIC_FIELDS: [u32; 2] = [tags::MODULUS, tags::PUBLIC_EXPONENT];

/// PKCS#1 RSAPublicKey DER from a Transparent RSA Public Key's Key Material.
pub fn rsa_public_to_pkcs1(material: &Item) -> Result<Bytes, Failure> {
    let ints = PUBLIC_FIELDS
        .iter()
        .map(|t| magnitude(material, *t))
        .collect::<Result<Vec<_>, _>>()?;
    let parts: Vec<&[u8]> = ints.iter().map(|i| i.as_slice()).collect();
    der::integer_sequence(&parts).ok_or_else(not_pkcs1)
}

/// PKCS#1 RSAPrivateKey DER (two-prime, version 0) from a Transparent RSA Private Key's Key
/// Material. KMIP makes all but the Modulus optional; Arca needs every one of them, as
/// PKCS#1 does, and says which is missing.
pub fn rsa_private_to_pkcs1(material: &Item) -> Result<Bytes, Failure> {
    let ints = PRIVATE_FIELDS
        .iter()
        .map(|t| magnitude(material, *t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut parts: Vec<&[u8]> = vec![&[0]];
    parts.extend(ints.iter().map(|i| i.as_slice()));
    der::integer_sequence(&parts).ok_or_else(not_pkcs1)
}

/// A Transparent RSA Public Key's Key Material from PKCS#1 RSAPublicKey DER.
pub fn rsa_public_from_pkcs1(pkcs1: &[u8]) -> Result<Item, Failure> {
    match der::integers_of_sequence(pkcs1) {
        Some(ints) if ints.len() == 2 => Ok(material_of(&PUBLIC_FIELDS, &ints)),
        _ => Err(not_pkcs1()),
    }
}

/// A Transparent RSA Private Key's Key Material from PKCS#1 RSAPrivateKey DER.
pub fn rsa_private_from_pkcs1(pkcs1: &[u8]) -> Result<Item, Failure> {
    match der::integers_of_sequence(pkcs1) {
        // Version 0 (two primes) and its eight integers.
        Some(ints) if ints.len() == 9 && ints[0].as_slice() == [0] => {
            Ok(material_of(&PRIVATE_FIELDS, &ints[1..]))
        }
        _ => Err(not_pkcs1()),
    }
}

fn not_pkcs1() -> Failure {
    Failure::new(
        arca_kmip::enums::result_reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
        "the key is not a two-prime PKCS#1 RSA key",
    )
}

/// The fields of a Transparent DSA Private Key.
const DSA_PRIVATE_FIELDS: [u32; 4] = [tags::P, tags::Q, tags::G, tags::X];

/// The fields of a Transparent DSA Public Key.
const DSA_PUBLIC_FIELDS: [u32; 4] = [tags::P, tags::Q, tags::G, tags::Y];

/// PKCS#8 of a DSA private key from a Transparent DSA Private Key's Key Material (P, Q, G,
/// X), laid out by `arca_crypto::dsa`; the service checks it as any imported key.
pub fn dsa_private_to_pkcs8(material: &Item) -> Result<Bytes, Failure> {
    let [p, q, g, x] = DSA_PRIVATE_FIELDS.map(|t| magnitude(material, t));
    let (p, q, g, x) = (p?, q?, g?, x?);
    Ok(arca_crypto::dsa::pkcs8_from_integers(&p, &q, &g, &x))
}

/// SPKI of a DSA public key from a Transparent DSA Public Key's Key Material (P, Q, G, Y).
pub fn dsa_public_to_spki(material: &Item) -> Result<Bytes, Failure> {
    let [p, q, g, y] = DSA_PUBLIC_FIELDS.map(|t| magnitude(material, t));
    let (p, q, g, y) = (p?, q?, g?, y?);
    Ok(Bytes::new(arca_crypto::dsa::spki_from_integers(
        &p, &q, &g, &y,
    )))
}

/// A Transparent DSA Private Key's Key Material from the PKCS#8 the service exports.
pub fn dsa_private_from_pkcs8(pkcs8: &[u8]) -> Result<Item, Failure> {
    let ints = arca_crypto::dsa::integers_of_pkcs8(pkcs8).ok_or_else(not_dsa)?;
    Ok(material_of(&DSA_PRIVATE_FIELDS, &ints))
}

/// A Transparent DSA Public Key's Key Material from the SPKI the service exports.
pub fn dsa_public_from_spki(spki: &[u8]) -> Result<Item, Failure> {
    let ints = arca_crypto::dsa::integers_of_spki(spki).ok_or_else(not_dsa)?;
    Ok(material_of(&DSA_PUBLIC_FIELDS, &ints))
}

fn not_dsa() -> Failure {
    Failure::new(
        arca_kmip::enums::result_reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
        "the key is not a DSA key",
    )
}

/// The Key Material structure of `fields`, each a Big Integer: big-endian, sign-extended
/// to a multiple of 8 bytes (the magnitudes are non-negative: a zero byte goes first only
/// when the top bit is set, then zeros pad to the multiple).
fn material_of(fields: &[u32], ints: &[Bytes]) -> Item {
    Item::structure(
        tags::KEY_MATERIAL,
        fields
            .iter()
            .zip(ints)
            .map(|(t, v)| {
                let sign = usize::from(v.first().is_none_or(|b| b & 0x80 != 0));
                let len = (v.len() + sign).div_ceil(8) * 8;
                let mut b = Bytes::new(vec![0u8; len]);
                b[len - v.len()..].copy_from_slice(v);
                Item::new(*t, Value::BigInteger(b))
            })
            .collect(),
    )
}

/// A Big Integer field's magnitude; negative or zero values are refused.
fn magnitude(material: &Item, tag: u32) -> Result<Bytes, Failure> {
    let name = arca_kmip::tag_label(tag);
    let bytes = match &material.req(tag)?.value {
        Value::BigInteger(b) => b,
        _ => {
            return Err(Failure::invalid_field(format!(
                "{name} must be a Big Integer"
            )))
        }
    };
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(Failure::invalid_field(format!("{name} is negative")));
    }
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    if start == bytes.len() {
        return Err(Failure::invalid_field(format!("{name} is zero")));
    }
    Ok(Bytes::new(bytes[start..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(tag: u32, b: Vec<u8>) -> Item {
        Item::new(tag, Value::BigInteger(Bytes::new(b)))
    }

    #[test]
    fn public_key_integers_round_trip_through_pkcs1() {
        let mut n = vec![0u8; 8];
        n.extend([0xC3u8; 256]);
        let e = vec![0, 0, 0, 0, 0, 1, 0, 1];
        let m = Item::structure(
            tags::KEY_MATERIAL,
            vec![big(tags::MODULUS, n), big(tags::PUBLIC_EXPONENT, e.clone())],
        );
        let der = rsa_public_to_pkcs1(&m).unwrap();
        let back = rsa_public_from_pkcs1(&der).unwrap();
        assert_eq!(
            back.req(tags::PUBLIC_EXPONENT).unwrap().value,
            Value::BigInteger(Bytes::new(e))
        );
        // 256 bytes with the top bit set: 264 bytes, sign-extended.
        match &back.req(tags::MODULUS).unwrap().value {
            Value::BigInteger(b) => {
                assert_eq!(b.len(), 264);
                assert_eq!(&b[..8], &[0; 8]);
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(rsa_public_to_pkcs1(&back).unwrap(), der);
    }

    #[test]
    fn bad_integers_are_refused() {
        let m = Item::structure(
            tags::KEY_MATERIAL,
            vec![big(tags::MODULUS, vec![0xFF, 0, 0, 0, 0, 0, 0, 1])],
        );
        assert!(
            rsa_public_to_pkcs1(&m).is_err(),
            "negative, and no exponent"
        );
        let zero = Item::structure(
            tags::KEY_MATERIAL,
            vec![
                big(tags::MODULUS, vec![0; 8]),
                big(tags::PUBLIC_EXPONENT, vec![0, 0, 0, 0, 0, 1, 0, 1]),
            ],
        );
        assert!(rsa_public_to_pkcs1(&zero).is_err());
        let one_int = der::integer_sequence(&[&[5]]).unwrap();
        assert!(rsa_public_from_pkcs1(&one_int).is_err());
        assert!(rsa_private_from_pkcs1(&one_int).is_err());
    }
}
