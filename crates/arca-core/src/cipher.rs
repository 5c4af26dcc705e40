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
