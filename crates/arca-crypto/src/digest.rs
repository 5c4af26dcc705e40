//! Keyless digests of caller data (KMIP's Hash operation), by aws-lc-rs.

use arca_core::model::DigestAlgorithm;
use aws_lc_rs::digest;

/// The digest of `data` under `alg`.
pub fn digest(alg: DigestAlgorithm, data: &[u8]) -> Vec<u8> {
    let a: &'static digest::Algorithm = match alg {
        DigestAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        DigestAlgorithm::Sha224 => &digest::SHA224,
        DigestAlgorithm::Sha256 => &digest::SHA256,
        DigestAlgorithm::Sha384 => &digest::SHA384,
        DigestAlgorithm::Sha512 => &digest::SHA512,
        DigestAlgorithm::Sha512_256 => &digest::SHA512_256,
        DigestAlgorithm::Sha3_256 => &digest::SHA3_256,
        DigestAlgorithm::Sha3_384 => &digest::SHA3_384,
        DigestAlgorithm::Sha3_512 => &digest::SHA3_512,
    };
    digest::digest(a, data).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180-4 / 202 "abc" vectors.
    #[test]
    fn known_answers() {
        let hex = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(digest(DigestAlgorithm::Sha256, b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(digest(DigestAlgorithm::Sha1, b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(digest(DigestAlgorithm::Sha3_256, b"abc")),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
        );
        assert_eq!(digest(DigestAlgorithm::Sha224, b"").len(), 28);
        assert_eq!(digest(DigestAlgorithm::Sha384, b"").len(), 48);
        assert_eq!(digest(DigestAlgorithm::Sha512, b"").len(), 64);
        assert_eq!(digest(DigestAlgorithm::Sha512_256, b"").len(), 32);
        assert_eq!(digest(DigestAlgorithm::Sha3_384, b"").len(), 48);
        assert_eq!(digest(DigestAlgorithm::Sha3_512, b"").len(), 64);
    }
}
