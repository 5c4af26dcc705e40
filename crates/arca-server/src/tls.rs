//! TLS for the listeners: the configured certificate, or a dev CA and server certificate
//! generated once in `<data_dir>/tls` and reused on every start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// Where the dev TLS files are.
pub struct DevTlsFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl DevTlsFiles {
    pub fn in_dir(data_dir: &Path) -> Self {
        let d = data_dir.join("tls");
        DevTlsFiles {
            ca_cert: d.join("ca.pem"),
            server_cert: d.join("server.pem"),
            server_key: d.join("server.key"),
        }
    }
}

/// Makes the dev CA and a server certificate for 127.0.0.1, ::1 and localhost unless they
/// exist. The CA's private key is not kept: nothing else is ever signed with it.
pub fn ensure_dev_certs(data_dir: &Path) -> Result<DevTlsFiles> {
    let files = DevTlsFiles::in_dir(data_dir);
    if files.ca_cert.exists() && files.server_cert.exists() && files.server_key.exists() {
        return Ok(files);
    }
    let dir = files.ca_cert.parent().context("tls dir")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let year = chrono::Utc::now().year();

    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "Arca dev CA");
    ca.distinguished_name
        .push(DnType::OrganizationName, "Arca (development only)");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    ca.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(year + 5, 1, 1);
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    std::fs::write(&files.ca_cert, ca_cert.pem())?;
    std::fs::write(
        &files.server_cert,
        format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
    )?;
    let _ = std::fs::remove_file(&files.server_key);
    arca_crypto::wrap::write_secret_file(&files.server_key, leaf_key.serialize_pem().as_bytes())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(files)
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot open {}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = zeroize::Zeroizing::new(
        std::fs::read(path).with_context(|| format!("cannot open {}", path.display()))?,
    );
    PrivateKeyDer::from_pem_slice(&pem)
        .with_context(|| format!("{} holds no PEM private key", path.display()))
}

/// The rustls provider Arca uses everywhere: aws-lc-rs only.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds the HTTPS server configuration. Returns it and the CA path to show users when
/// the dev CA is in use.
pub fn server_config(cfg: &Config) -> Result<(Arc<rustls::ServerConfig>, Option<PathBuf>)> {
    // Optional at the TLS layer: a request may still carry a bearer credential; a
    // certificate that is sent must chain to the client CAs or the handshake fails.
    let (mut sc, ca) = build(cfg, false)?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(sc), ca))
}

/// Builds the KMIP listener's configuration: the same server certificate, and a client
/// certificate that chains to `tls.client_ca` required in the handshake. `None` when no
/// client CA is configured (KMIP clients have no other credential).
pub fn kmip_server_config(cfg: &Config) -> Result<Option<Arc<rustls::ServerConfig>>> {
    if cfg.tls.client_ca.is_none() {
        return Ok(None);
    }
    let (sc, _) = build(cfg, true)?;
    Ok(Some(Arc::new(sc)))
}

fn build(cfg: &Config, require_client: bool) -> Result<(rustls::ServerConfig, Option<PathBuf>)> {
    let (cert, key, ca) = match (&cfg.tls.cert, &cfg.tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), None),
        (None, None) => {
            let f = ensure_dev_certs(&cfg.data_dir)?;
            (f.server_cert, f.server_key, Some(f.ca_cert))
        }
        _ => anyhow::bail!("tls.cert and tls.key must be set together"),
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = match &cfg.tls.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in load_certs(ca)? {
                roots.add(c).with_context(|| {
                    format!("{} holds an unusable CA certificate", ca.display())
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            );
            let verifier = if require_client {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(verifier.build().context("client CA configuration")?)
        }
        None => builder.with_no_client_auth(),
    };
    let sc = builder
        .with_single_cert(load_certs(&cert)?, load_key(&key)?)
        .context("the TLS certificate and key do not match")?;
    Ok((sc, ca))
}

/// The public keys of the client CAs (`tls.client_ca`), kept to find which of them signed
/// a client certificate: that key is the certificate's trust anchor, and the anchor decides
/// the tenant it may authenticate into.
#[derive(Debug, Default, Clone)]
pub struct ClientRoots {
    /// (SHA-256 hex of the SPKI DER, the raw public key bytes) of each client CA.
    keys: Vec<(String, Vec<u8>)>,
}

impl ClientRoots {
    /// The keys of the client CA bundle of the configuration (none without one).
    pub fn from_config(cfg: &Config) -> Result<ClientRoots> {
        let mut keys = vec![];
        if let Some(ca) = &cfg.tls.client_ca {
            for c in load_certs(ca)? {
                if let Some(k) = ca_key(c.as_ref()) {
                    keys.push(k);
                }
            }
        }
        Ok(ClientRoots { keys })
    }
}

/// The SPKI hash (lower-case hex SHA-256 of the SubjectPublicKeyInfo DER) of a
/// certificate, and its raw public key.
fn ca_key(der: &[u8]) -> Option<(String, Vec<u8>)> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let spki = cert.public_key();
    Some((
        arca_service::certs::spki_anchor(&cert),
        spki.subject_public_key.data.to_vec(),
    ))
}

/// What policies and bindings need to know of a verified client certificate: `chain` is
/// what the client presented (its certificate first), `roots` the client CAs. The trust
/// anchor is the CA key, among the presented intermediates and the client CAs, whose
/// signature the certificate bears (rustls has already verified the whole path).
pub fn cert_info(
    chain: &[CertificateDer<'_>],
    roots: &ClientRoots,
) -> Option<arca_core::access::CertInfo> {
    use x509_parser::prelude::*;
    let der = chain.first()?.as_ref();
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let presented = chain[1..].iter().filter_map(|c| ca_key(c.as_ref()));
    let issuer_anchor = presented
        .chain(roots.keys.iter().cloned())
        .find(|(_, key)| arca_service::certs::signed_by(&cert, key))
        .map(|(anchor, _)| anchor);
    let mut info = arca_service::certs::describe(der, &cert);
    info.issuer_anchor = issuer_anchor;
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_anchors_of_client_certificates() {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let roots = ClientRoots {
            keys: vec![ca_key_of(ca_cert.der())],
        };
        let leaf = |rdns: &[(DnType, &str)]| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            // In push order (rcgen's default name holds a CN already).
            p.distinguished_name = rcgen::DistinguishedName::new();
            for (t, v) in rdns {
                p.distinguished_name.push(t.clone(), *v);
            }
            let k = KeyPair::generate().unwrap();
            p.signed_by(&k, &issuer).unwrap().der().clone()
        };
        let two = leaf(&[
            (DnType::OrganizationName, "Example"),
            (DnType::CommonName, "svc"),
        ]);
        let one = leaf(&[(DnType::CommonName, "svc, O=Example")]);
        let two = cert_info(&[two], &roots).unwrap();
        let one = cert_info(&[one], &roots).unwrap();
        assert_eq!(two.subject, "CN=svc,O=Example");
        assert_eq!(one.subject, "CN=svc\\, O\\=Example");
        assert_eq!(two.issuer_anchor, Some(roots.keys[0].0.clone()));
        // Signed by a key the server does not know: no anchor.
        assert_eq!(
            cert_info(&[leaf(&[])], &ClientRoots::default())
                .unwrap()
                .issuer_anchor,
            None
        );
    }

    #[test]
    fn anchors_of_rsa_ed25519_and_p384_cas() {
        for alg in [
            &rcgen::PKCS_RSA_SHA256,
            &rcgen::PKCS_ED25519,
            &rcgen::PKCS_ECDSA_P384_SHA384,
        ] {
            let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let ca_key = KeyPair::generate_for(alg).unwrap();
            let ca_cert = ca.self_signed(&ca_key).unwrap();
            let issuer = Issuer::new(ca, ca_key);
            let roots = ClientRoots {
                keys: vec![ca_key_of(ca_cert.der())],
            };
            let p = CertificateParams::new(vec!["a.example".to_string()]).unwrap();
            let leaf = p.signed_by(&KeyPair::generate().unwrap(), &issuer).unwrap();
            let info = cert_info(&[leaf.der().clone()], &roots).unwrap();
            assert_eq!(info.issuer_anchor, Some(roots.keys[0].0.clone()), "{alg:?}");
        }
    }

    fn ca_key_of(der: &CertificateDer<'_>) -> (String, Vec<u8>) {
        ca_key(der.as_ref()).unwrap()
    }
}
