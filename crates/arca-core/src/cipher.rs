//! The parameters of raw cipher operations, as the service offers them to every door: what
//! a KMIP client (or another protocol that names modes) may ask for. They are domain types,
//! not the crypto provider's, so that a door describes a request without depending on the
//! crypto implementation (arca-crypto re-exports them).

/// AES modes for raw encryption. GCM takes a 12-byte IV and makes a 16-byte tag; CBC and
/// CTR take a 16-byte IV; ECB none. CBC and ECB pad with PKCS#7 (PKCS#5) or need whole
/// blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawMode {
    Gcm,
    Cbc { pkcs7: bool },
    Ecb { pkcs7: bool },
    Ctr,
}

impl RawMode {
    /// The IV length the mode needs (0 for ECB).
    pub fn iv_len(self) -> usize {
        match self {
            RawMode::Gcm => 12,
            RawMode::Cbc { .. } | RawMode::Ctr => 16,
            RawMode::Ecb { .. } => 0,
        }
    }
}

/// The hash of RSA-OAEP (used for MGF1 too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OaepHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// The length of every GCM tag Arca makes and accepts (the full 16 bytes: shorter tags
/// weaken authentication, and no client of Arca's needs them).
pub const GCM_TAG_LEN: usize = 16;

/// The raw ciphers of the legacy key specs (Triple DES, ChaCha20, ChaCha20-Poly1305), which
/// only tenants that allow legacy algorithms run. Kept apart from [`RawMode`] (AES's) so
/// that a request names its algorithm as well as its mode, and a key of one spec can never
/// be asked for another's cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyCipher {
    /// Triple DES in CBC (8-byte IV) or ECB, with PKCS#5 padding or whole 8-byte blocks.
    TripleDes { cbc: bool, pkcs7: bool },
    /// The ChaCha20 stream cipher. The nonce is 8 bytes (the original ChaCha20: a 64-bit
    /// nonce and a 64-bit block counter that starts at 0) or 12 bytes (RFC 8439: a 96-bit
    /// nonce and a 32-bit block counter that starts at `initial_counter`).
    ChaCha20 { initial_counter: u32 },
    /// The ChaCha20-Poly1305 AEAD (RFC 8439): a 12-byte nonce, and a tag of `tag_len`
    /// bytes ([`CHACHA20_POLY1305_TAG_LENS`]; shorter tags are Poly1305's first bytes).
    ChaCha20Poly1305 { tag_len: usize },
}

/// The ChaCha20-Poly1305 tag lengths Arca makes and accepts: the full 16 bytes, or a tag
/// truncated to no fewer than 12 (as for GCM in NIST SP 800-38D; shorter tags are forgeable
/// by trial).
pub const CHACHA20_POLY1305_TAG_LENS: std::ops::RangeInclusive<usize> = 12..=16;

impl LegacyCipher {
    /// The IV or nonce lengths the cipher takes (none for ECB).
    pub fn iv_lens(self) -> &'static [usize] {
        match self {
            LegacyCipher::TripleDes { cbc: true, .. } => &[8],
            LegacyCipher::TripleDes { cbc: false, .. } => &[0],
            LegacyCipher::ChaCha20 { .. } => &[8, 12],
            LegacyCipher::ChaCha20Poly1305 { .. } => &[12],
        }
    }

    /// The key spec whose keys run this cipher.
    pub fn spec(self) -> crate::model::KeySpec {
        match self {
            LegacyCipher::TripleDes { .. } => crate::model::KeySpec::TripleDes,
            LegacyCipher::ChaCha20 { .. } => crate::model::KeySpec::ChaCha20,
            LegacyCipher::ChaCha20Poly1305 { .. } => crate::model::KeySpec::ChaCha20Poly1305,
        }
    }
}
