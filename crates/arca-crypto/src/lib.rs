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
pub mod provider;
pub mod raw;
pub mod rsa_params;
pub mod shamir;
pub mod software;
pub mod wrap;

pub use provider::{CryptoProvider, KeyHandle, KeyMaterial};
pub use software::SoftwareProvider;
pub use wrap::{DevUnsealFile, RootOfTrust, SoftwareRoot};
