//! How key material is laid out in bytes, on its way in (import) and out (export).
//!
//! Arca keeps one form per key: raw bytes for symmetric keys and secret data, PKCS#8 for
//! private keys, SubjectPublicKeyInfo for public-only keys (and raw bytes for ML-KEM's
//! decapsulation key). Protocols also speak other forms of the same key (KMIP clients send
//! and ask for RSA keys in PKCS#1): naming the form as a type lets a door ask the service
//! for it, and leaves the conversion, which is cryptographic parsing, to the service.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::KeySpec;

/// A layout of key material. Serialized as the export's `format`: `RAW`, `PKCS8`, `SPKI`
/// (the forms Arca keeps), `PKCS1_PRIVATE`, `PKCS1_PUBLIC` (converted on request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum KeyEncoding {
    /// The key's bytes themselves: symmetric keys, secret data, ML-KEM decapsulation keys.
    #[serde(rename = "RAW")]
    Raw,
    /// PKCS#8 `PrivateKeyInfo` DER: private keys, as Arca keeps them.
    #[serde(rename = "PKCS8")]
    Pkcs8,
    /// X.509 `SubjectPublicKeyInfo` DER: public-only keys, as Arca keeps them.
    #[serde(rename = "SPKI")]
    Spki,
    /// PKCS#1 `RSAPrivateKey` DER: an RSA private key without PKCS#8's algorithm wrapper.
    #[serde(rename = "PKCS1_PRIVATE")]
    Pkcs1Private,
    /// PKCS#1 `RSAPublicKey` DER: an RSA public key without SPKI's algorithm wrapper.
    #[serde(rename = "PKCS1_PUBLIC")]
    Pkcs1Public,
}

impl KeyEncoding {
    /// The form Arca keeps a key's material in (and exports it in unless asked for
    /// another): what every export used to name by string, decided in one place.
    pub fn kept(spec: KeySpec, public_only: bool) -> KeyEncoding {
        if spec.symmetric_len().is_some() || spec == KeySpec::SecretData {
            KeyEncoding::Raw
        } else if public_only {
            KeyEncoding::Spki
        } else if matches!(spec, KeySpec::MlKem768 | KeySpec::MlKem1024) {
            KeyEncoding::Raw
        } else {
            KeyEncoding::Pkcs8
        }
    }

    /// The form a key kept in `self` converts to for `wanted`, when it is one of PKCS#1's:
    /// `Some(true)` when the conversion exists for this spec, `Some(false)` when only the
    /// spec stands in the way (PKCS#1 is for RSA keys), `None` when the forms do not
    /// correspond at all (a private key asked for as a public one, raw bytes as DER...).
    /// The same form is always `Some(true)`.
    pub fn converts_to(self, wanted: KeyEncoding, spec: KeySpec) -> Option<bool> {
        let rsa = spec.family() == crate::model::KeyFamily::Rsa;
        match (self, wanted) {
            (a, b) if a == b => Some(true),
            (KeyEncoding::Pkcs8, KeyEncoding::Pkcs1Private)
            | (KeyEncoding::Spki, KeyEncoding::Pkcs1Public) => Some(rsa),
            _ => None,
        }
    }

    /// The name it is serialized under.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEncoding::Raw => "RAW",
            KeyEncoding::Pkcs8 => "PKCS8",
            KeyEncoding::Spki => "SPKI",
            KeyEncoding::Pkcs1Private => "PKCS1_PRIVATE",
            KeyEncoding::Pkcs1Public => "PKCS1_PUBLIC",
        }
    }
}

impl fmt::Display for KeyEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_form_follows_the_spec_and_whether_the_key_is_public_only() {
        assert_eq!(KeyEncoding::kept(KeySpec::Aes256, false), KeyEncoding::Raw);
        assert_eq!(
            KeyEncoding::kept(KeySpec::SecretData, false),
            KeyEncoding::Raw
        );
        assert_eq!(
            KeyEncoding::kept(KeySpec::Rsa2048, false),
            KeyEncoding::Pkcs8
        );
        assert_eq!(KeyEncoding::kept(KeySpec::Rsa2048, true), KeyEncoding::Spki);
        assert_eq!(
            KeyEncoding::kept(KeySpec::MlKem768, false),
            KeyEncoding::Raw
        );
        assert_eq!(
            KeyEncoding::kept(KeySpec::MlKem768, true),
            KeyEncoding::Spki
        );
    }

    #[test]
    fn pkcs1_is_offered_for_rsa_keys_in_the_matching_form() {
        use KeyEncoding::*;
        assert_eq!(
            Pkcs8.converts_to(Pkcs1Private, KeySpec::Rsa3072),
            Some(true)
        );
        assert_eq!(Spki.converts_to(Pkcs1Public, KeySpec::Rsa3072), Some(true));
        assert_eq!(
            Pkcs8.converts_to(Pkcs1Private, KeySpec::EccNistP256),
            Some(false)
        );
        assert_eq!(Spki.converts_to(Pkcs1Private, KeySpec::Rsa2048), None);
        assert_eq!(Raw.converts_to(Pkcs1Private, KeySpec::MlKem768), None);
        assert_eq!(Raw.converts_to(Raw, KeySpec::Aes256), Some(true));
    }

    #[test]
    fn serialized_names_are_the_export_formats() {
        use KeyEncoding::*;
        for e in [Raw, Pkcs8, Spki, Pkcs1Private, Pkcs1Public] {
            let s = serde_json::to_string(&e).unwrap();
            assert_eq!(s, format!("\"{}\"", e.as_str()));
            assert_eq!(serde_json::from_str::<KeyEncoding>(&s).unwrap(), e);
        }
    }
}
