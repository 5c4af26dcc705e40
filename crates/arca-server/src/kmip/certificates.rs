//! KMIP Certificate objects: X.509 certificates that clients (storage arrays, hypervisors,
//! appliances) register next to their keys and fetch back, linked to their key pairs.
//!
//! A certificate is public, but it is still a managed object: it is kept like an opaque
//! object (one Arca object of spec `SECRET_DATA`, with its own id, lifecycle, policy and
//! audit history), made by the service's `CreateKey` and read back by its `ExportKey`, so
//! roles, key policies, approvals and the audit trail apply as to any object. The door
//! parses the DER with x509-parser before anything is made (anything else is Invalid Field)
//! and derives the attributes KMIP defines from it; those are the server's (Attribute Read
//! Only).

use arca_kmip::enums::certificate_type;
use arca_kmip::{tags, Failure, Item, Value};

use super::attrs::Attr;

/// The attributes derived from a certificate, which only the server sets.
pub const DERIVED: &[u32] = &[
    tags::CERTIFICATE_TYPE,
    tags::CERTIFICATE_LENGTH,
    tags::X_509_CERTIFICATE_IDENTIFIER,
    tags::X_509_CERTIFICATE_SUBJECT,
    tags::X_509_CERTIFICATE_ISSUER,
    tags::CERTIFICATE_SUBJECT_CN,
    tags::CERTIFICATE_SUBJECT_O,
    tags::CERTIFICATE_SUBJECT_OU,
    tags::CERTIFICATE_SUBJECT_C,
];

/// A Register's Certificate structure: its DER (checked to be one X.509 certificate and
/// nothing more) and the attributes derived from it.
pub fn read(cert: &Item) -> Result<(Vec<u8>, Vec<Attr>), Failure> {
    let ty = cert.req(tags::CERTIFICATE_TYPE)?.enumeration()?;
    if ty != certificate_type::X_509 {
        return Err(Failure::invalid_field(
            "only X.509 certificates are accepted (CertificateType X_509)",
        ));
    }
    let der = cert.req(tags::CERTIFICATE_VALUE)?.byte_string()?.to_vec();
    let attrs = derived(&der)?;
    Ok((der, attrs))
}

/// The attributes KMIP derives from an X.509 certificate: its type and length, its
/// identifier (issuer and serial number), subject and issuer (distinguished names, DER, and
/// alternative names) and the subject's common name, organisation, unit and country.
pub fn derived(der: &[u8]) -> Result<Vec<Attr>, Failure> {
    use x509_parser::prelude::*;
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| {
        Failure::invalid_field(format!("CertificateValue is not an X.509 certificate: {e}"))
    })?;
    if !rest.is_empty() {
        return Err(Failure::invalid_field(
            "CertificateValue has bytes after the certificate",
        ));
    }
    let bytes = |tag, b: &[u8]| Item::new(tag, Value::bytes(b.to_vec()));
    let mut out = vec![
        Item::enum_item(tags::CERTIFICATE_TYPE, certificate_type::X_509),
        Item::int_item(tags::CERTIFICATE_LENGTH, der.len() as i32),
        Item::structure(
            tags::X_509_CERTIFICATE_IDENTIFIER,
            vec![
                bytes(tags::ISSUER_DISTINGUISHED_NAME, cert.issuer().as_raw()),
                bytes(tags::CERTIFICATE_SERIAL_NUMBER, cert.raw_serial()),
            ],
        ),
    ];
    let alt = |ext: Option<&SubjectAlternativeName>| -> Vec<String> {
        ext.map(|s| s.general_names.iter().map(|g| g.to_string()).collect())
            .unwrap_or_default()
    };
    let mut subject = vec![bytes(
        tags::SUBJECT_DISTINGUISHED_NAME,
        cert.subject().as_raw(),
    )];
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in alt(Some(san.value)) {
            subject.push(Item::text_item(tags::SUBJECT_ALTERNATIVE_NAME, n));
        }
    }
    out.push(Item::structure(tags::X_509_CERTIFICATE_SUBJECT, subject));
    out.push(Item::structure(
        tags::X_509_CERTIFICATE_ISSUER,
        vec![bytes(
            tags::ISSUER_DISTINGUISHED_NAME,
            cert.issuer().as_raw(),
        )],
    ));
    use x509_parser::oid_registry as oids;
    for (tag, oid) in [
        (tags::CERTIFICATE_SUBJECT_CN, oids::OID_X509_COMMON_NAME),
        (
            tags::CERTIFICATE_SUBJECT_O,
            oids::OID_X509_ORGANIZATION_NAME,
        ),
        (
            tags::CERTIFICATE_SUBJECT_OU,
            oids::OID_X509_ORGANIZATIONAL_UNIT,
        ),
        (tags::CERTIFICATE_SUBJECT_C, oids::OID_X509_COUNTRY_NAME),
    ] {
        for v in cert.subject().iter_by_oid(&oid) {
            if let Ok(s) = v.as_str() {
                out.push(Item::text_item(tag, s));
            }
        }
    }
    Ok(out.into_iter().map(Attr::Std).collect())
}

/// Get's Certificate structure.
pub fn answer(der: &[u8]) -> Vec<Item> {
    vec![
        Item::enum_item(tags::CERTIFICATE_TYPE, certificate_type::X_509),
        Item::new(tags::CERTIFICATE_VALUE, Value::bytes(der.to_vec())),
    ]
}
