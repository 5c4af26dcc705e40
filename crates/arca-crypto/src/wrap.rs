//! The key hierarchy's wrapping: root key -> tenant KEK -> each version's material.
//!
//! * Tenant KEKs are wrapped by the root of trust ([`RootOfTrust`]), with AES-KWP (RFC 5649)
//!   in software.
//! * Version material is sealed by the tenant KEK with AES-256-GCM; the AAD binds it to
//!   `(tenant, key id, version)`, so a row copied onto another key or version does not open.

use std::path::{Path, PathBuf};

use arca_core::{Error, Result};
use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use aws_lc_rs::rand;
use uuid::Uuid;
use zeroize::Zeroizing;

const MATERIAL_AAD_TAG: &[u8] = b"arca/material/v1";
const NONCE_LEN: usize = 12;

/// Holds the root key (RK) and wraps tenant KEKs with it. Software: RK in memory.
/// An HSM implementation keeps RK inside the HSM and calls it over PKCS#11.
pub trait RootOfTrust: Send + Sync + 'static {
    /// Where the root key lives, for logs and status ("dev unseal-key file", "HSM ...").
    fn describe(&self) -> String;
    /// Wraps a tenant KEK.
    fn wrap(&self, kek: &[u8]) -> Result<Vec<u8>>;
    /// Unwraps a tenant KEK; fails if the blob was not wrapped by this root key.
    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
}

/// AES-KWP (RFC 5649) wrap with a 256-bit key-encryption key.
pub fn kwp_wrap(kek: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let k = AesKek::new(&AES_256, kek).map_err(|_| Error::internal("AES-KWP key"))?;
    let mut out = vec![0u8; plaintext.len() + 16];
    let n = k
        .wrap_with_padding(plaintext, &mut out)
        .map_err(|_| Error::internal("AES-KWP wrap"))?
        .len();
    out.truncate(n);
    Ok(out)
}

/// AES-KWP (RFC 5649) unwrap; an integrity failure is an error.
pub fn kwp_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let k = AesKek::new(&AES_256, kek).map_err(|_| Error::internal("AES-KWP key"))?;
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let n = k
        .unwrap_with_padding(wrapped, &mut out)
        .map_err(|_| Error::internal("AES-KWP unwrap failed: wrong root key or corrupted blob"))?
        .len();
    out.truncate(n);
    Ok(out)
}

/// A root key held in memory, as the software root of trust and dev mode use it.
pub struct SoftwareRoot {
    key: Zeroizing<[u8; 32]>,
    description: String,
}

impl SoftwareRoot {
    /// Wraps an existing 32-byte root key.
    pub fn new(key: Zeroizing<[u8; 32]>, description: impl Into<String>) -> Self {
        SoftwareRoot {
            key,
            description: description.into(),
        }
    }
}

impl RootOfTrust for SoftwareRoot {
    fn describe(&self) -> String {
        self.description.clone()
    }
    fn wrap(&self, kek: &[u8]) -> Result<Vec<u8>> {
        kwp_wrap(&self.key[..], kek)
    }
    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        kwp_unwrap(&self.key[..], wrapped)
    }
}

/// Dev mode: the root key is sealed (AES-KWP) by a random unseal key kept in a file of mode
/// 0600 beside the store. Anyone who can read that file and the store can read every key,
/// which is why the server says plainly that it runs in dev mode.
pub struct DevUnsealFile {
    pub path: PathBuf,
}

impl DevUnsealFile {
    /// The unseal-key file in `data_dir`.
    pub fn in_dir(data_dir: &Path) -> Self {
        DevUnsealFile {
            path: data_dir.join("unseal.key"),
        }
    }

    /// Creates a fresh root key and unseal file; returns the root and the sealed root blob
    /// for the store. Fails if the file exists (never overwrite a key).
    pub fn create(&self) -> Result<(SoftwareRoot, Vec<u8>)> {
        let mut unseal = Zeroizing::new([0u8; 32]);
        let mut root = Zeroizing::new([0u8; 32]);
        rand::fill(&mut unseal[..]).map_err(|_| Error::internal("random"))?;
        rand::fill(&mut root[..]).map_err(|_| Error::internal("random"))?;
        write_secret_file(&self.path, &unseal[..])?;
        let sealed = kwp_wrap(&unseal[..], &root[..])?;
        Ok((SoftwareRoot::new(root, self.describe()), sealed))
    }

    /// Reads the unseal file and unseals the stored root.
    pub fn open(&self, sealed_root: &[u8]) -> Result<SoftwareRoot> {
        let bytes = Zeroizing::new(std::fs::read(&self.path).map_err(|e| Error::Unavailable {
            message: format!("cannot read unseal key file {}: {e}", self.path.display()),
        })?);
        if bytes.len() != 32 {
            return Err(Error::Unavailable {
                message: format!("unseal key file {} is not 32 bytes", self.path.display()),
            });
        }
        let root = kwp_unwrap(&bytes, sealed_root).map_err(|_| Error::Unavailable {
            message: format!(
                "unseal key file {} does not open this store's root key",
                self.path.display()
            ),
        })?;
        let mut rk = Zeroizing::new([0u8; 32]);
        if root.len() != 32 {
            return Err(Error::internal("sealed root key has the wrong length"));
        }
        rk.copy_from_slice(&root);
        Ok(SoftwareRoot::new(rk, self.describe()))
    }

    fn describe(&self) -> String {
        format!(
            "dev mode: root key sealed by unseal-key file {}",
            self.path.display()
        )
    }
}

/// Writes a file readable by its owner only (0600), refusing to overwrite.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| Error::internal(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))
}

fn material_aad(tenant: Uuid, key: Uuid, version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(MATERIAL_AAD_TAG.len() + 36);
    aad.extend_from_slice(MATERIAL_AAD_TAG);
    aad.extend_from_slice(tenant.as_bytes());
    aad.extend_from_slice(key.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// Seals version material under a tenant KEK: `nonce || ciphertext || tag`.
pub fn seal_material(
    kek: &[u8],
    tenant: Uuid,
    key: Uuid,
    version: u32,
    secret: &[u8],
) -> Result<Vec<u8>> {
    seal_labeled(kek, &material_aad(tenant, key, version), secret)
}

/// Opens version material sealed by [`seal_material`] for exactly this tenant, key, version.
pub fn open_material(
    kek: &[u8],
    tenant: Uuid,
    key: Uuid,
    version: u32,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    open_labeled(kek, &material_aad(tenant, key, version), sealed)
        .map_err(|_| Error::internal("stored material does not authenticate under its tenant KEK"))
}

/// Seals a small service secret (an AWS secret access key, an import token's private key)
/// under a tenant KEK with AES-256-GCM: `nonce || ciphertext || tag`. `label` is the AAD and
/// must name what the secret is and whose it is, so that a sealed blob copied onto another
/// record does not open there.
pub fn seal_labeled(kek: &[u8], label: &[u8], secret: &[u8]) -> Result<Vec<u8>> {
    let k = LessSafeKey::new(
        UnboundKey::new(&aead::AES_256_GCM, kek).map_err(|_| Error::internal("KEK"))?,
    );
    let mut nonce = [0u8; NONCE_LEN];
    rand::fill(&mut nonce).map_err(|_| Error::internal("random"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + secret.len() + 16);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(secret);
    let tag = k
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(label),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| Error::internal("seal"))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a blob sealed by [`seal_labeled`] with exactly this label.
pub fn open_labeled(kek: &[u8], label: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(Error::internal("sealed secret too short"));
    }
    let k = LessSafeKey::new(
        UnboundKey::new(&aead::AES_256_GCM, kek).map_err(|_| Error::internal("KEK"))?,
    );
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[..NONCE_LEN]);
    let mut buf = Zeroizing::new(sealed[NONCE_LEN..].to_vec());
    let n = k
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(label),
            &mut buf,
        )
        .map_err(|_| Error::internal("a sealed secret does not authenticate under its tenant KEK"))?
        .len();
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labeled_seal_binds_its_label() {
        let kek = [7u8; 32];
        let sealed = seal_labeled(&kek, b"aws-credential/AKID1", b"secret").unwrap();
        assert_eq!(
            &open_labeled(&kek, b"aws-credential/AKID1", &sealed).unwrap()[..],
            b"secret"
        );
        assert!(open_labeled(&kek, b"aws-credential/AKID2", &sealed).is_err());
        assert!(open_labeled(&[8u8; 32], b"aws-credential/AKID1", &sealed).is_err());
        assert!(open_labeled(&kek, b"aws-credential/AKID1", &sealed[..20]).is_err());
    }

    #[test]
    fn rfc5649_vector() {
        // RFC 5649 section 6, 20-octet key data with a 192-bit KEK is not 256-bit; check the
        // round trip and integrity instead, and the length law of KWP.
        let kek = [0x11u8; 32];
        let w = kwp_wrap(&kek, &[0xAB; 20]).unwrap();
        assert_eq!(w.len(), 32);
        assert_eq!(&kwp_unwrap(&kek, &w).unwrap()[..], &[0xAB; 20]);
        let mut bad = w.clone();
        bad[5] ^= 1;
        assert!(kwp_unwrap(&kek, &bad).is_err());
    }

    #[test]
    fn material_is_bound_to_tenant_key_and_version() {
        let kek = [7u8; 32];
        let (t, k) = (Uuid::new_v4(), Uuid::new_v4());
        let s = seal_material(&kek, t, k, 1, b"secret").unwrap();
        assert_eq!(&open_material(&kek, t, k, 1, &s).unwrap()[..], b"secret");
        assert!(open_material(&kek, t, k, 2, &s).is_err());
        assert!(open_material(&kek, t, Uuid::new_v4(), 1, &s).is_err());
        assert!(open_material(&kek, Uuid::new_v4(), k, 1, &s).is_err());
    }
}

/// How material is wrapped to an RSA public key that is not Arca's (a cloud's import key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaWrap {
    /// RSAES-OAEP, the hash also MGF1's: the material itself under the RSA key (it must
    /// fit: 190 bytes with SHA-256 and a 2048-bit key).
    Oaep(crate::provider::OaepHash),
    /// CKM_RSA_AES_KEY_WRAP: a fresh AES-256 key under RSA-OAEP, then the material under
    /// that key with AES-KWP (RFC 5649); the two concatenated. Any size of material.
    RsaAesKeyWrap(crate::provider::OaepHash),
}

/// The size of an RSA SubjectPublicKeyInfo's modulus in bits, or an error naming `field`.
pub fn rsa_public_bits(field: &str, spki: &[u8]) -> Result<usize> {
    let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(spki)
        .map_err(|_| Error::invalid(field, "not an RSA public key (SubjectPublicKeyInfo)"))?;
    Ok(pk.key_size_bits())
}

/// Wraps `material` to an RSA public key (SPKI DER) as `how` says.
pub fn wrap_to_public(field: &str, spki: &[u8], how: RsaWrap, material: &[u8]) -> Result<Vec<u8>> {
    use crate::provider::OaepHash;
    use aws_lc_rs::rsa::{
        OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
        OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
    };
    let pk = PublicEncryptingKey::from_der(spki)
        .map_err(|_| Error::invalid(field, "not an RSA public key (SubjectPublicKeyInfo)"))?;
    if pk.key_size_bits() < 2048 {
        return Err(Error::invalid(field, "an RSA key of at least 2048 bits"));
    }
    let enc =
        OaepPublicEncryptingKey::new(pk).map_err(|_| Error::invalid(field, "unusable RSA key"))?;
    let hash = match how {
        RsaWrap::Oaep(h) | RsaWrap::RsaAesKeyWrap(h) => h,
    };
    let alg = match hash {
        OaepHash::Sha1 => &OAEP_SHA1_MGF1SHA1,
        OaepHash::Sha256 => &OAEP_SHA256_MGF1SHA256,
        OaepHash::Sha384 => &OAEP_SHA384_MGF1SHA384,
        OaepHash::Sha512 => &OAEP_SHA512_MGF1SHA512,
    };
    let oaep = |data: &[u8]| -> Result<Vec<u8>> {
        if data.len() > enc.max_plaintext_size(alg) {
            return Err(Error::unprocessable(
                "algorithm",
                format!(
                    "the material ({} bytes) does not fit RSA-OAEP with this key (at most {}): use an RSA-AES key wrap algorithm",
                    data.len(),
                    enc.max_plaintext_size(alg)
                ),
            ));
        }
        let mut out = vec![0u8; enc.ciphertext_size()];
        let n = enc
            .encrypt(alg, data, &mut out, None)
            .map_err(|_| Error::internal("RSA-OAEP encrypt"))?
            .len();
        out.truncate(n);
        Ok(out)
    };
    match how {
        RsaWrap::Oaep(_) => oaep(material),
        RsaWrap::RsaAesKeyWrap(_) => {
            let mut aes = Zeroizing::new([0u8; 32]);
            rand::fill(&mut aes[..]).map_err(|_| Error::internal("random"))?;
            let mut out = oaep(&aes[..])?;
            out.extend_from_slice(&kwp_wrap(&aes[..], material)?);
            Ok(out)
        }
    }
}
