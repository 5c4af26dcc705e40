//! The ciphertext format: self-describing, so decrypt finds the right key version after
//! rotations, and authenticated, so tampering fails cleanly.
//!
//! ```text
//! offset  size  field
//! 0       1     format version (1)
//! 1       1     algorithm: 1 = AES-GCM, 2 = RSA-OAEP-SHA-256
//! 2       16    key id (UUID bytes)
//! 18      4     key version (big-endian u32)
//! 22      ...   AES-GCM: nonce (12) || ciphertext || tag (16); RSA-OAEP: the OAEP block
//! ```
//!
//! For AES-GCM the 22-byte header is part of the additional authenticated data, so a changed
//! key id, version or algorithm byte fails authentication like a changed ciphertext byte.
//! This module is a pure function over bytes: no keys, no I/O.

use std::collections::BTreeMap;

use arca_core::{Error, Result};
use uuid::Uuid;

/// The current format version.
pub const FORMAT_V1: u8 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 22;
/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// The algorithm byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiphertextAlg {
    AesGcm = 1,
    RsaOaepSha256 = 2,
}

/// The decoded header of a ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: CiphertextAlg,
    pub key_id: Uuid,
    pub key_version: u32,
}

impl Header {
    /// The 22 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = FORMAT_V1;
        h[1] = self.alg as u8;
        h[2..18].copy_from_slice(self.key_id.as_bytes());
        h[18..22].copy_from_slice(&self.key_version.to_be_bytes());
        h
    }
}

fn bad(message: &str) -> Error {
    Error::bad_ciphertext("ciphertext", message)
}

/// Splits a ciphertext blob into its header and body, checking lengths; never panics.
pub fn decode(blob: &[u8]) -> Result<(Header, &[u8])> {
    if blob.len() < HEADER_LEN {
        return Err(bad("too short to be an Arca ciphertext"));
    }
    if blob[0] != FORMAT_V1 {
        return Err(bad("unknown ciphertext format version"));
    }
    let alg = match blob[1] {
        1 => CiphertextAlg::AesGcm,
        2 => CiphertextAlg::RsaOaepSha256,
        _ => return Err(bad("unknown ciphertext algorithm")),
    };
    let mut id = [0u8; 16];
    id.copy_from_slice(&blob[2..18]);
    let mut v = [0u8; 4];
    v.copy_from_slice(&blob[18..22]);
    let body = &blob[HEADER_LEN..];
    if alg == CiphertextAlg::AesGcm && body.len() < NONCE_LEN + TAG_LEN {
        return Err(bad("too short to be an Arca ciphertext"));
    }
    Ok((
        Header {
            alg,
            key_id: Uuid::from_bytes(id),
            key_version: u32::from_be_bytes(v),
        },
        body,
    ))
}

/// The additional authenticated data for AES-GCM: the header, the caller's AAD and the
/// encryption context, each length-prefixed so that no two inputs give the same bytes.
pub fn aad(
    header: &[u8; HEADER_LEN],
    caller_aad: &[u8],
    context: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 8 + caller_aad.len() + 64);
    out.extend_from_slice(header);
    out.extend_from_slice(&(caller_aad.len() as u32).to_be_bytes());
    out.extend_from_slice(caller_aad);
    out.extend_from_slice(&(context.len() as u32).to_be_bytes());
    for (k, v) in context {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_truncation() {
        let h = Header {
            alg: CiphertextAlg::AesGcm,
            key_id: Uuid::new_v4(),
            key_version: 7,
        };
        let mut blob = h.encode().to_vec();
        blob.extend_from_slice(&[0u8; 40]);
        let (d, body) = decode(&blob).unwrap();
        assert_eq!(d, h);
        assert_eq!(body.len(), 40);
        for n in 0..HEADER_LEN + NONCE_LEN + TAG_LEN {
            assert!(decode(&blob[..n]).is_err(), "len {n}");
        }
        let mut b2 = blob.clone();
        b2[0] = 9;
        assert!(decode(&b2).is_err());
        b2[0] = 1;
        b2[1] = 77;
        assert!(decode(&b2).is_err());
    }

    #[test]
    fn aad_is_injective_on_context_boundaries() {
        let h = [0u8; HEADER_LEN];
        let a: BTreeMap<_, _> = [("ab".to_string(), "c".to_string())].into();
        let b: BTreeMap<_, _> = [("a".to_string(), "bc".to_string())].into();
        assert_ne!(aad(&h, b"", &a), aad(&h, b"", &b));
        assert_ne!(
            aad(&h, b"x", &BTreeMap::new()),
            aad(&h, b"", &BTreeMap::new())
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The decoder never panics, whatever the bytes, and accepts exactly what it can
        /// re-encode.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok((h, body)) = decode(&bytes) {
                prop_assert_eq!(&h.encode()[..], &bytes[..HEADER_LEN]);
                prop_assert_eq!(body, &bytes[HEADER_LEN..]);
            }
        }

        #[test]
        fn header_round_trips(id in any::<[u8; 16]>(), v in any::<u32>(), rsa in any::<bool>(), body in proptest::collection::vec(any::<u8>(), 28..64)) {
            let h = Header { alg: if rsa { CiphertextAlg::RsaOaepSha256 } else { CiphertextAlg::AesGcm }, key_id: Uuid::from_bytes(id), key_version: v };
            let mut blob = h.encode().to_vec();
            blob.extend_from_slice(&body);
            let (d, b) = decode(&blob).unwrap();
            prop_assert_eq!(d, h);
            prop_assert_eq!(b, &body[..]);
        }

        /// Distinct (AAD, context) pairs never give the same authenticated bytes.
        #[test]
        fn aad_is_injective(a1 in proptest::collection::vec(any::<u8>(), 0..8), a2 in proptest::collection::vec(any::<u8>(), 0..8),
                            c1 in proptest::collection::btree_map("[a-c]{0,3}", "[a-c]{0,3}", 0..3), c2 in proptest::collection::btree_map("[a-c]{0,3}", "[a-c]{0,3}", 0..3)) {
            let h = [0u8; HEADER_LEN];
            if (a1.clone(), c1.clone()) != (a2.clone(), c2.clone()) {
                prop_assert_ne!(aad(&h, &a1, &c1), aad(&h, &a2, &c2));
            }
        }
    }
}
