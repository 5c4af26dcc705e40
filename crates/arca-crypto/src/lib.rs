//! Arca's cryptography: the [`CryptoProvider`] trait and its software implementation on
//! aws-lc-rs, the key hierarchy's wrapping ([`RootOfTrust`], tenant KEKs, sealed material),
//! and the self-describing ciphertext format.

pub mod aead_params;
pub mod backup;
pub mod ciphertext;
pub mod der;
pub mod digest;
pub mod digest_sign;
pub mod dsa;
pub mod hsm;
pub mod legacy;
pub(crate) mod pkey;
pub mod provider;
pub mod raw;
pub mod rsa_params;
pub mod shamir;
pub mod software;
pub mod wrap;

pub use provider::{CryptoProvider, KeyHandle, KeyMaterial};
pub use software::SoftwareProvider;
pub use wrap::{DevUnsealFile, RootOfTrust, SoftwareRoot};

/// Known-answer vectors in the crate's tests are written in hex, as the specifications
/// print them.
#[cfg(test)]
mod test_hex {
    /// The bytes of a hex string (test vectors only: panics on anything else).
    pub fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
