//! What the service reads of X.509 certificates: the canonical subject (RFC 4514, see
//! [`arca_core::dn`]) and the trust anchor id of a CA (the SHA-256 of its public key), so
//! that the listeners, which see the client certificates, and the identity operations,
//! which see the CA certificates operators assign, name them the same way; and whether a
//! CA key signed a certificate, so that the listeners verify no signature themselves.

use x509_parser::certificate::X509Certificate;

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// The anchor id of a CA certificate: lower-case hex SHA-256 of its SubjectPublicKeyInfo
/// DER. By key, not by name: a CA that anyone else could name the same way is not the same
/// anchor, and a re-issued CA certificate with the same key still is.
pub fn spki_anchor(cert: &X509Certificate<'_>) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.public_key().raw).as_ref())
}

/// Whether `key` (raw public key bytes) verifies the signature of `cert`, with the
/// algorithms its signature algorithm names (the curve or modulus comes from the key): how
/// the listeners find which CA key a client certificate was issued under.
pub fn signed_by(cert: &X509Certificate<'_>, key: &[u8]) -> bool {
    use aws_lc_rs::signature as sig;
    let algs: &[&dyn sig::VerificationAlgorithm] =
        match cert.signature_algorithm.algorithm.to_id_string().as_str() {
            "1.2.840.10045.4.3.2" => &[&sig::ECDSA_P256_SHA256_ASN1, &sig::ECDSA_P384_SHA256_ASN1],
            "1.2.840.10045.4.3.3" => &[&sig::ECDSA_P384_SHA384_ASN1, &sig::ECDSA_P256_SHA384_ASN1],
            "1.2.840.10045.4.3.4" => &[&sig::ECDSA_P521_SHA512_ASN1],
            "1.2.840.113549.1.1.11" => &[&sig::RSA_PKCS1_2048_8192_SHA256],
            "1.2.840.113549.1.1.12" => &[&sig::RSA_PKCS1_2048_8192_SHA384],
            "1.2.840.113549.1.1.13" => &[&sig::RSA_PKCS1_2048_8192_SHA512],
            "1.2.840.113549.1.1.10" => &[
                &sig::RSA_PSS_2048_8192_SHA256,
                &sig::RSA_PSS_2048_8192_SHA384,
                &sig::RSA_PSS_2048_8192_SHA512,
            ],
            "1.3.101.112" => &[&sig::ED25519],
            _ => &[],
        };
    let tbs = cert.tbs_certificate.as_ref();
    let signature = cert.signature_value.data.as_ref();
    algs.iter().any(|alg| {
        sig::UnparsedPublicKey::new(*alg, key)
            .verify(tbs, signature)
            .is_ok()
    })
}

/// The canonical RFC 4514 string of a name ([`arca_core::dn`]): string values as text,
/// others as the hex of their DER.
pub fn canonical_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    use arca_core::dn::{Ava, AvaValue, Dn};
    let rdns = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|a| Ava {
                    oid: a.attr_type().to_id_string(),
                    value: match a.as_str() {
                        Ok(t) => AvaValue::Text(t.to_string()),
                        Err(_) => AvaValue::Der(hex(&der_of(a.attr_value()))),
                    },
                })
                .collect()
        })
        .collect();
    Dn::from_der_order(rdns).canonical()
}

/// The DER of a parsed value: its tag, length and content.
fn der_of(v: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Vec<u8> {
    let data: &[u8] = v.data;
    let h = &v.header;
    let tag = h.tag().0;
    let first = ((h.class() as u8) << 6) | (u8::from(h.is_constructed()) << 5);
    let mut out = if tag < 31 {
        vec![first | tag as u8]
    } else {
        // Long-form tags do not occur in names; mark them unmistakably rather than guess.
        vec![first | 0x1f, 0xff]
    };
    let n = data.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = n.to_be_bytes();
        let skip = len.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (len.len() - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(data);
    out
}

/// What policies and bindings know of a certificate (`der`, parsed as `cert`): its
/// canonical subject, fingerprint, name attributes and SANs (no trust anchor: that takes
/// the CAs, which the listener has).
pub fn describe(der: &[u8], cert: &X509Certificate<'_>) -> arca_core::access::CertInfo {
    use x509_parser::prelude::*;
    let mut info = arca_core::access::CertInfo {
        subject: canonical_name(cert.subject()),
        fingerprint: hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref()),
        ..Default::default()
    };
    let text = |a: &AttributeTypeAndValue<'_>| a.as_str().ok().map(str::to_string);
    info.cn = cert.subject().iter_common_name().filter_map(text).collect();
    info.o = cert
        .subject()
        .iter_organization()
        .filter_map(text)
        .collect();
    info.ou = cert
        .subject()
        .iter_organizational_unit()
        .filter_map(text)
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => info.san_dns.push(d.to_string()),
                GeneralName::URI(u) => info.san_uri.push(u.to_string()),
                GeneralName::RFC822Name(e) => info.san_email.push(e.to_string()),
                GeneralName::IPAddress(ip) => {
                    let addr = match ip.len() {
                        4 => <[u8; 4]>::try_from(*ip)
                            .ok()
                            .map(|b| std::net::IpAddr::from(b).to_string()),
                        16 => <[u8; 16]>::try_from(*ip)
                            .ok()
                            .map(|b| std::net::IpAddr::from(b).to_string()),
                        _ => None,
                    };
                    info.san_ip.extend(addr);
                }
                _ => {}
            }
        }
    }
    info
}
