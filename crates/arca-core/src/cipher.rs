//! The parameters of raw cipher operations, as the service offers them to every door: what
//! a KMIP client (or another protocol that names modes) may ask for. They are domain types,
//! not the crypto provider's, so that a door describes a request without depending on the
//! crypto implementation (arca-crypto re-exports them).

/// AES modes for raw encryption. GCM takes a 12-byte IV by default (the one the server
/// draws; a key made for raw use also takes a caller's IV of 1 to [`GCM_MAX_IV_LEN`]
/// bytes) and makes a tag of 12 to 16 bytes; CBC and CTR take a 16-byte IV; ECB none. CBC
/// and ECB pad with PKCS#7 (PKCS#5) or need whole blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawMode {
    Gcm,
    Cbc { pkcs7: bool },
    Ecb { pkcs7: bool },
    Ctr,
}

impl RawMode {
    /// The IV length the mode needs (0 for ECB); for GCM, the length of the IVs the server
    /// draws (GCM also takes other lengths, [`RawMode::iv_len_ok`]).
    pub fn iv_len(self) -> usize {
        match self {
            RawMode::Gcm => 12,
            RawMode::Cbc { .. } | RawMode::Ctr => 16,
            RawMode::Ecb { .. } => 0,
        }
    }

    /// Whether an IV of `len` bytes suits the mode: GCM takes 1 to [`GCM_MAX_IV_LEN`]
    /// bytes (NIST SP 800-38D hashes IVs other than 12 bytes into the first counter), the
    /// others exactly [`RawMode::iv_len`].
    pub fn iv_len_ok(self, len: usize) -> bool {
        match self {
            RawMode::Gcm => (1..=GCM_MAX_IV_LEN).contains(&len),
            _ => len == self.iv_len(),
        }
    }
}

/// A hash of RSA-OAEP (its label hash, or its MGF1 hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OaepHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// The length of the GCM tags of Arca's own ciphertexts, and the default (and longest) tag
/// of raw GCM.
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
/// The shortest GCM tag raw GCM makes or accepts (KMIP's Tag Length): 12 bytes, the
/// shortest NIST SP 800-38D allows without limits on the number of messages and their
/// lengths, which a key manager serving many clients cannot enforce.
pub const GCM_MIN_TAG_LEN: usize = 12;

/// The longest GCM IV a caller may give (SP 800-38D allows longer, no client needs them).
pub const GCM_MAX_IV_LEN: usize = 128;

/// RSA-OAEP's parameters (PKCS#1 v2.2, RFC 8017 §7.1): the label hash, the MGF1 hash and
/// the label (KMIP's Hashing Algorithm, Mask Generator Hashing Algorithm and P Source).
/// Arca's own RSA ciphertexts use SHA-256 for both and no label ([`OaepParams::plain`]);
/// KMIP clients may name others.
#[derive(Clone, PartialEq, Eq)]
pub struct OaepParams {
    pub hash: OaepHash,
    pub mgf1: OaepHash,
    /// The label `L` (empty by default); not secret.
    pub label: Vec<u8>,
}

impl OaepParams {
    /// OAEP with `hash` for the label and MGF1 and no label: what aws-lc-rs offers.
    pub fn plain(hash: OaepHash) -> OaepParams {
        OaepParams {
            hash,
            mgf1: hash,
            label: Vec::new(),
        }
    }

    /// True when these are [`OaepParams::plain`] ones.
    pub fn is_plain(&self) -> bool {
        self.mgf1 == self.hash && self.label.is_empty()
    }
}

impl std::fmt::Debug for OaepParams {
    // The label's length, not its bytes: this is what audit notes show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Oaep {{ hash: {:?}, mgf1: {:?}, label_len: {} }}",
            self.hash,
            self.mgf1,
            self.label.len()
        )
    }
}

/// The salt length of an RSA-PSS signature (KMIP's Salt Length). Arca signs with a salt
/// as long as the hash unless a caller names another length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PssSalt {
    /// The hash's length (RFC 8017's recommendation, and AWS KMS's).
    #[default]
    HashLength,
    /// Exactly this many bytes.
    Bytes(u32),
    /// Verification only: any salt length, recovered from the signature (RFC 8017's
    /// EMSA-PSS-VERIFY works for any length; the salt adds nothing to an attacker's
    /// power). What KMIP's Signature Verify does when the client names no Salt Length.
    Any,
}
