//! Google Workspace client-side encryption: the key service's operations that use what the
//! Arca key unwraps without handing it out (Google's resource key hash of a data encryption
//! key; a user's wrapped RSA private key decrypting a key or signing a digest). The door
//! (`arca-server`'s `cse`) parses the wrapped blob into the raw decryption; the service
//! decrypts it as an audited use of the Arca key and, inside that one operation, computes
//! what leaves: the plaintext stays in zeroizing buffers here.

use arca_core::{Error, Result};
use arca_crypto::digest_sign::{self, DigestSignScheme, RsaKeyTransport};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;

use crate::api::{RawDecryptRequest, Secret};
use crate::{Caller, Service};

/// What to do with an unwrapped key.
pub enum KaclsUse {
    /// Answer Google's resource key hash of the unwrapped data encryption key (`digest`).
    ResourceKeyHash {
        resource_name: String,
        perimeter_id: String,
    },
    /// Answer the data encryption key and its resource key hash (`rewrap` wraps the key
    /// anew under the current key version).
    KeyAndHash {
        resource_name: String,
        perimeter_id: String,
    },
    /// The unwrapped key is a user's RSA private key (PKCS #8): decrypt `ciphertext`, a key
    /// encrypted to its public half (`privatekeydecrypt`).
    PrivateKeyDecrypt {
        transport: RsaKeyTransport,
        ciphertext: Vec<u8>,
        label: Option<Vec<u8>>,
        /// The SHA-256 of the key pair's SubjectPublicKeyInfo the authorization is for:
        /// another key is refused.
        spki_sha256: Option<Vec<u8>>,
    },
    /// The unwrapped key is a user's RSA private key: sign `digest` (`privatekeysign`).
    PrivateKeySign {
        scheme: DigestSignScheme,
        digest: Vec<u8>,
        spki_sha256: Option<Vec<u8>>,
    },
}

impl KaclsUse {
    fn name(&self) -> &'static str {
        match self {
            KaclsUse::ResourceKeyHash { .. } => "resource_key_hash",
            KaclsUse::KeyAndHash { .. } => "rewrap",
            KaclsUse::PrivateKeyDecrypt { .. } => "private_key_decrypt",
            KaclsUse::PrivateKeySign { .. } => "private_key_sign",
        }
    }
}

/// What leaves the service.
pub enum KaclsOutput {
    /// A resource key hash.
    Hash(Vec<u8>),
    /// A data encryption key (zeroized when dropped) and its resource key hash.
    KeyAndHash(Secret, Vec<u8>),
    /// A data encryption key decrypted with a user's private key.
    Key(Secret),
    /// A signature.
    Signature(Vec<u8>),
}

/// Google's resource key hash: HMAC-SHA256 keyed by the unwrapped data encryption key over
/// `"ResourceKeyDigest:" || resource_name || ":" || perimeter_id` (UTF-8), which lets
/// Google check a wrapped key's integrity without the key.
pub fn resource_key_hash(dek: &[u8], resource_name: &str, perimeter_id: &str) -> Vec<u8> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, dek);
    let mut ctx = hmac::Context::with_key(&k);
    ctx.update(b"ResourceKeyDigest:");
    ctx.update(resource_name.as_bytes());
    ctx.update(b":");
    ctx.update(perimeter_id.as_bytes());
    ctx.sign().as_ref().to_vec()
}

/// Refuses a private key that is not the one the authorization token names by its
/// SubjectPublicKeyInfo's SHA-256.
fn check_spki(pkcs8: &[u8], want: Option<&[u8]>) -> Result<()> {
    let Some(want) = want else {
        return Ok(());
    };
    let spki = digest_sign::rsa_public_key_spki(pkcs8)?;
    let got = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki);
    verify_slices_are_equal(got.as_ref(), want).map_err(|_| Error::NotPermitted {
        message: "the authorization token is for another key pair (spki_hash)".into(),
    })
}

impl Service {
    /// Decrypts a wrapped key under `key` (an audited use: `Decrypt`, naming the end user,
    /// the resource and the use) and uses it as `build` says, inside the operation: `build`
    /// (the door's reading of the blob and of the request's fields) answers the raw
    /// decryption and the use, so that a refusal of the key (suspended, disabled, not
    /// permitted), of the blob, of a field or of the use is audited as the decryption's.
    pub async fn kacls_unwrap_use(
        &self,
        caller: &Caller,
        key: &str,
        build: impl FnOnce(&arca_core::model::Key) -> Result<(RawDecryptRequest, KaclsUse)> + Send,
    ) -> Result<KaclsOutput> {
        let slot = std::sync::Mutex::new(None);
        let put = &slot;
        let take = &slot;
        let build = move |k: &arca_core::model::Key| {
            let (req, what) = build(k)?;
            *put.lock().map_err(|_| Error::internal("poisoned"))? = Some(what);
            Ok(req)
        };
        self.decrypt_raw_then(caller, key, build, move |r, note| {
            let what = take
                .lock()
                .map_err(|_| Error::internal("poisoned"))?
                .take()
                .ok_or_else(|| Error::internal("a KACLS use without its request"))?;
            note.set("kacls_use", what.name());
            let plain = r.data.expose();
            Ok(match what {
                KaclsUse::ResourceKeyHash {
                    resource_name,
                    perimeter_id,
                } => KaclsOutput::Hash(resource_key_hash(plain, &resource_name, &perimeter_id)),
                KaclsUse::KeyAndHash {
                    resource_name,
                    perimeter_id,
                } => {
                    let h = resource_key_hash(plain, &resource_name, &perimeter_id);
                    KaclsOutput::KeyAndHash(r.data, h)
                }
                KaclsUse::PrivateKeyDecrypt {
                    transport,
                    ciphertext,
                    label,
                    spki_sha256,
                } => {
                    check_spki(plain, spki_sha256.as_deref())?;
                    let dek =
                        digest_sign::rsa_decrypt(plain, transport, &ciphertext, label.as_deref())?;
                    KaclsOutput::Key(Secret::new(dek))
                }
                KaclsUse::PrivateKeySign {
                    scheme,
                    digest,
                    spki_sha256,
                } => {
                    check_spki(plain, spki_sha256.as_deref())?;
                    KaclsOutput::Signature(digest_sign::sign_digest(plain, scheme, &digest)?)
                }
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_key_hash_is_googles_example() {
        // The reference's example: resource "my_resource", perimeter "my_perimeter", DEK
        // 0xf00d, i.e. `echo -n "ResourceKeyDigest:my_resource:my_perimeter" | openssl
        // sha256 -mac HMAC -macopt hexkey:f00d`, computed here independently of
        // resource_key_hash with aws-lc-rs's one-shot HMAC.
        let k = hmac::Key::new(hmac::HMAC_SHA256, &[0xf0, 0x0d]);
        let want = hmac::sign(&k, b"ResourceKeyDigest:my_resource:my_perimeter");
        assert_eq!(
            resource_key_hash(&[0xf0, 0x0d], "my_resource", "my_perimeter"),
            want.as_ref()
        );
        assert_ne!(
            resource_key_hash(&[0xf0, 0x0d], "my_resource", ""),
            want.as_ref()
        );
    }
}
