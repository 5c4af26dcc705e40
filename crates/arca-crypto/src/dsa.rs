//! DSA (FIPS 186) keys: generation, import checks, signatures, and the DER layouts KMIP's
//! Transparent DSA key formats map onto.
//!
//! aws-lc-rs has no DSA; aws-lc's libcrypto does, and this module reaches it through
//! aws-lc-sys behind safe functions. Keys are kept as everywhere else: PKCS#8 for private
//! keys (parameters and x; aws-lc recomputes y when it parses one), SubjectPublicKeyInfo
//! for public ones. A handle keeps those bytes and parses them per operation, so nothing
//! of libcrypto's outlives a call. The service runs DSA only in tenants that allow legacy
//! algorithms ([`arca_core::access::LegacyAlgorithm::Dsa`]).

use std::os::raw::c_int;

use arca_core::model::KeySpec;
use arca_core::{Error, Result};
use aws_lc_sys as sys;
use zeroize::Zeroizing;

use crate::der::{push_len, read_tlv, tlv};
use crate::pkey::Pkey;

/// DER of the OID id-dsa (1.2.840.10040.4.1).
const DSA_OID: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];

fn internal(what: &str) -> Error {
    Error::internal(format!("crypto failure: DSA {what}"))
}

/// Parses PKCS#8 (`private`) or SPKI DER; `None` unless it is exactly one DSA key.
fn parse(der: &[u8], private: bool) -> Option<Pkey> {
    Pkey::parse(der, private, sys::EVP_PKEY_DSA)
}

/// The DSA inside a key [`parse`] or [`generate`] made (borrowed: valid while it lives).
fn dsa_of(key: &Pkey) -> *const sys::DSA {
    // SAFETY: `key` is a live EVP_PKEY of type DSA (checked when made).
    unsafe { sys::EVP_PKEY_get0_DSA(key.as_ptr()) }
}

/// The bit lengths of p and q.
fn sizes(key: &Pkey) -> Option<(u32, u32)> {
    let dsa = dsa_of(key);
    if dsa.is_null() {
        return None;
    }
    let (mut p, mut q, mut g) = (std::ptr::null(), std::ptr::null(), std::ptr::null());
    // SAFETY: `dsa` is live; the out-pointers receive borrowed BIGNUMs (or null).
    unsafe { sys::DSA_get0_pqg(dsa, &mut p, &mut q, &mut g) };
    if p.is_null() || q.is_null() || g.is_null() {
        return None;
    }
    // SAFETY: p and q are live BIGNUMs owned by `dsa`.
    Some(unsafe { (sys::BN_num_bits(p), sys::BN_num_bits(q)) })
}

fn check_sizes(spec: KeySpec, key: &Pkey) -> std::result::Result<(), String> {
    let (l, n) = spec
        .dsa_sizes()
        .ok_or_else(|| format!("{spec} is not a DSA spec"))?;
    match sizes(key) {
        Some((p, q)) if p == l && q == n => Ok(()),
        Some((p, q)) => Err(format!(
            "p is {p} bits and q {q} bits; {spec} has {l} and {n}"
        )),
        None => Err("the DSA parameters are incomplete".into()),
    }
}

/// Fresh DSA parameters and key of `spec`'s sizes: `(PKCS#8, SPKI)`. DSA_512 keys are
/// only registered, never made here.
pub fn generate(spec: KeySpec) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let (l, _) = spec
        .dsa_sizes()
        .ok_or_else(|| internal("generation of a spec that is not DSA"))?;
    if l < 1024 {
        return Err(Error::unprocessable(
            "spec",
            format!(
                "{spec} keys are only registered: Arca generates DSA keys of 1024 bits or more"
            ),
        ));
    }
    // SAFETY: allocates a DSA we own until EVP_PKEY_assign_DSA takes it (null checked).
    let dsa = unsafe { sys::DSA_new() };
    if dsa.is_null() {
        return Err(internal("allocation"));
    }
    // SAFETY: `dsa` is live; no seed, counter, h or callback are asked for (null); aws-lc
    // picks q of 160 bits below 2048-bit p, 256 from 2048 on, FIPS 186's pairs.
    let ok = unsafe {
        sys::DSA_generate_parameters_ex(
            dsa,
            l,
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        ) == 1
            && sys::DSA_generate_key(dsa) == 1
    };
    // SAFETY: allocates an EVP_PKEY (null checked); on success EVP_PKEY_assign_DSA takes
    // ownership of `dsa`, otherwise we free it here, once.
    let pkey = unsafe { sys::EVP_PKEY_new() };
    if !ok || pkey.is_null() || unsafe { sys::EVP_PKEY_assign_DSA(pkey, dsa) } != 1 {
        unsafe {
            sys::DSA_free(dsa);
            if !pkey.is_null() {
                sys::EVP_PKEY_free(pkey);
            }
        }
        return Err(internal("key generation"));
    }
    let key = Pkey::from_owned(pkey).ok_or_else(|| internal("key generation"))?;
    check_sizes(spec, &key).map_err(|_| internal("generated sizes"))?;
    let pkcs8 = key.marshal(true).ok_or_else(|| internal("PKCS#8"))?;
    let spki = key.marshal(false).ok_or_else(|| internal("SPKI"))?;
    Ok((pkcs8, spki.to_vec()))
}

/// Checks a PKCS#8 DSA private key of `spec`'s sizes: `(PKCS#8 as aws-lc writes it, SPKI)`.
pub fn import_private(
    spec: KeySpec,
    der: &[u8],
) -> std::result::Result<(Zeroizing<Vec<u8>>, Vec<u8>), String> {
    let key = parse(der, true).ok_or("expected a DSA PKCS#8 private key or an SPKI public key")?;
    check_sizes(spec, &key)?;
    let pkcs8 = key.marshal(true).ok_or("the key does not re-encode")?;
    let spki = key.marshal(false).ok_or("the public key does not encode")?;
    Ok((pkcs8, spki.to_vec()))
}

/// Checks an SPKI DSA public key of `spec`'s sizes; returns it as aws-lc writes it.
pub fn import_public(spec: KeySpec, der: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let key = parse(der, false).ok_or("expected a DSA SPKI public key or a PKCS#8 private key")?;
    check_sizes(spec, &key)?;
    Ok(key
        .marshal(false)
        .ok_or("the key does not re-encode")?
        .to_vec())
}

/// A DER DSA signature of `digest` (truncated to q's length, as FIPS 186 does).
pub fn sign(pkcs8: &[u8], digest: &[u8]) -> Result<Vec<u8>> {
    let key = parse(pkcs8, true).ok_or_else(|| internal("stored key does not load"))?;
    let dsa = dsa_of(&key);
    // SAFETY: `dsa` is live while `key` is.
    let max = unsafe { sys::DSA_size(dsa) };
    let mut sig = vec![0u8; usize::try_from(max).map_err(|_| internal("size"))?];
    let mut len: std::os::raw::c_uint = 0;
    // SAFETY: `sig` has DSA_size bytes, the most DSA_sign writes; `digest` is readable
    // for its length; `dsa` is live and holds a private key (parsed from PKCS#8).
    let ok = unsafe {
        sys::DSA_sign(
            0,
            digest.as_ptr(),
            digest.len(),
            sig.as_mut_ptr(),
            &mut len,
            dsa,
        )
    };
    if ok != 1 {
        return Err(internal("signature"));
    }
    sig.truncate(len as usize);
    Ok(sig)
}

/// Whether `sig` (DER) is a valid DSA signature of `digest` under the SPKI public key.
pub fn verify(spki: &[u8], digest: &[u8], sig: &[u8]) -> Result<bool> {
    let key = parse(spki, false).ok_or_else(|| internal("stored key does not load"))?;
    let mut valid: c_int = 0;
    // SAFETY: `digest` and `sig` are readable for their lengths; `dsa_of(&key)` is live;
    // `valid` receives the verdict. A malformed signature is a failed check, not an error.
    let ok = unsafe {
        sys::DSA_check_signature(
            &mut valid,
            digest.as_ptr(),
            digest.len(),
            sig.as_ptr(),
            sig.len(),
            dsa_of(&key),
        )
    };
    Ok(ok == 1 && valid == 1)
}

/// A DER INTEGER of a non-negative big-endian magnitude, in a zeroizing buffer.
fn uint_secret(be: &[u8]) -> Zeroizing<Vec<u8>> {
    let start = be.iter().position(|b| *b != 0).unwrap_or(be.len());
    let v = &be[start..];
    let pad = v.first().is_none_or(|b| b & 0x80 != 0);
    let len = v.len() + usize::from(pad);
    let mut out = Zeroizing::new(Vec::with_capacity(len + 6));
    out.push(0x02);
    push_len(&mut out, len);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(v);
    out
}

fn alg_id(p: &[u8], q: &[u8], g: &[u8]) -> Vec<u8> {
    let params = [
        &uint_secret(p)[..],
        &uint_secret(q)[..],
        &uint_secret(g)[..],
    ]
    .concat();
    tlv(0x30, &[&DSA_OID[..], &tlv(0x30, &params)].concat())
}

/// PKCS#8 of a DSA private key from its integers (KMIP's Transparent DSA Private Key):
/// only a layout; the import checks it.
pub fn pkcs8_from_integers(p: &[u8], q: &[u8], g: &[u8], x: &[u8]) -> Zeroizing<Vec<u8>> {
    let x = uint_secret(x);
    let mut octets = Zeroizing::new(Vec::with_capacity(x.len() + 6));
    octets.push(0x04);
    push_len(&mut octets, x.len());
    octets.extend_from_slice(&x);
    let body: Zeroizing<Vec<u8>> =
        Zeroizing::new([&[0x02, 0x01, 0x00][..], &alg_id(p, q, g), &octets].concat());
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 6));
    out.push(0x30);
    push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// SPKI of a DSA public key from its integers (KMIP's Transparent DSA Public Key).
pub fn spki_from_integers(p: &[u8], q: &[u8], g: &[u8], y: &[u8]) -> Vec<u8> {
    let bits = [&[0u8][..], &uint_secret(y)].concat();
    tlv(0x30, &[alg_id(p, q, g), tlv(0x03, &bits)].concat())
}

/// The magnitude of a DER INTEGER's body (leading zero bytes dropped).
fn magnitude(body: &[u8]) -> Zeroizing<Vec<u8>> {
    let start = body.iter().position(|b| *b != 0).unwrap_or(body.len());
    Zeroizing::new(body[start..].to_vec())
}

/// The magnitudes of a DSA key's integers (p, q, g and x or y), in zeroizing buffers.
pub type Integers<const N: usize> = [Zeroizing<Vec<u8>>; N];

/// p, q and g of an AlgorithmIdentifier of id-dsa, and what follows it.
fn params_of(der: &[u8]) -> Option<(Integers<3>, &[u8])> {
    let (tag, alg, rest) = read_tlv(der)?;
    if tag != 0x30 || !alg.starts_with(&DSA_OID) {
        return None;
    }
    let (tag, params, after) = read_tlv(&alg[DSA_OID.len()..])?;
    if tag != 0x30 || !after.is_empty() {
        return None;
    }
    let mut ints = Vec::new();
    let mut cur = params;
    while !cur.is_empty() {
        let (tag, body, next) = read_tlv(cur)?;
        if tag != 0x02 {
            return None;
        }
        ints.push(magnitude(body));
        cur = next;
    }
    let [p, q, g]: Integers<3> = ints.try_into().ok()?;
    Some(([p, q, g], rest))
}

/// p, q, g and x of a DSA PKCS#8 private key (the inverse of [`pkcs8_from_integers`]).
pub fn integers_of_pkcs8(pkcs8: &[u8]) -> Option<Integers<4>> {
    let (tag, body, rest) = read_tlv(pkcs8)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (tag, version, body) = read_tlv(body)?;
    if tag != 0x02 || version != [0] {
        return None;
    }
    let ([p, q, g], body) = params_of(body)?;
    let (tag, octets, _) = read_tlv(body)?;
    if tag != 0x04 {
        return None;
    }
    let (tag, x, after) = read_tlv(octets)?;
    if tag != 0x02 || !after.is_empty() {
        return None;
    }
    Some([p, q, g, magnitude(x)])
}

/// p, q, g and y of a DSA SPKI public key (the inverse of [`spki_from_integers`]).
pub fn integers_of_spki(spki: &[u8]) -> Option<Integers<4>> {
    let (tag, body, rest) = read_tlv(spki)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let ([p, q, g], body) = params_of(body)?;
    let (tag, bits, after) = read_tlv(body)?;
    if tag != 0x03 || !after.is_empty() || bits.first() != Some(&0) {
        return None;
    }
    let (tag, y, after) = read_tlv(&bits[1..])?;
    if tag != 0x02 || !after.is_empty() {
        return None;
    }
    Some([p, q, g, magnitude(y)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::hex;

    // The 512-bit key of the OASIS profiles' BL-M-12/13 cases.
    const P: &str = "fca682ce8e12caba26efccf7110e526db078b05edecbcd1eb4a208f3ae1617ae01f35b91a47e6df63413c5e12ed0899bcd132acd50d99151bdc43ee737592e17";
    const Q: &str = "962eddcc369cba8ebb260ee6b6a126d9346e38c5";
    const G: &str = "678471b27a9cf44ee91a49c5147db1a9aaf244f05a434d6486931d2d14271b9e35030b71fd73da179069b32e2935630e1c2062354d0da20a6c416e50be794ca4";
    const X: &str = "095411d740d2443fa3f97d1ed9a0411bb45e7131";
    const Y: &str = "b3cb74d988dea7160a64a4edbb7f70404fa4c08a4208c19d76357a6a9df200cce79faecb22e3419be9b01128cbd998a2d9307101705e4a952462f34728ac5fcf";

    /// The integers lay out as PKCS#8 and SPKI that aws-lc reads (computing y = g^x mod p,
    /// which is the public key the case registers), and read back; a signature made with
    /// the private key verifies with the public one, and not over other data.
    #[test]
    fn transparent_layouts_import_sign_and_verify() {
        let (p, q, g, x, y) = (hex(P), hex(Q), hex(G), hex(X), hex(Y));
        let pkcs8 = pkcs8_from_integers(&p, &q, &g, &x);
        let (kept, spki) = import_private(KeySpec::Dsa512, &pkcs8).unwrap();
        let ints = integers_of_pkcs8(&kept).unwrap();
        assert_eq!(
            [&ints[0][..], &ints[1][..], &ints[2][..], &ints[3][..]],
            [&p[..], &q[..], &g[..], &x[..]]
        );
        let public = integers_of_spki(&spki).unwrap();
        assert_eq!(&public[3][..], &y[..], "y = g^x mod p");
        let given = spki_from_integers(&p, &q, &g, &y);
        assert_eq!(import_public(KeySpec::Dsa512, &given).unwrap(), spki);
        assert!(import_private(KeySpec::Dsa1024, &pkcs8).is_err());
        assert!(import_public(KeySpec::Dsa512, b"junk").is_err());
        let digest = [7u8; 32];
        let sig = sign(&kept, &digest).unwrap();
        assert!(verify(&spki, &digest, &sig).unwrap());
        assert!(!verify(&spki, &[8u8; 32], &sig).unwrap());
        assert!(!verify(&spki, &digest, b"not a signature").unwrap());
    }

    #[test]
    fn generates_1024_and_refuses_512() {
        let (pkcs8, spki) = generate(KeySpec::Dsa1024).unwrap();
        assert!(import_private(KeySpec::Dsa1024, &pkcs8).is_ok());
        let sig = sign(&pkcs8, &[1u8; 32]).unwrap();
        assert!(verify(&spki, &[1u8; 32], &sig).unwrap());
        assert!(generate(KeySpec::Dsa512).is_err());
    }
}
