//! Key material in the forms the doors speak ([`KeyEncoding`]), converted from and to the
//! forms Arca keeps. The conversions are DER rewriting done by `arca_crypto`: a door names
//! the form it has or wants, and never parses key material itself.

use arca_core::encoding::KeyEncoding;
use arca_core::model::KeySpec;
use arca_core::{Error, Result};
use zeroize::Zeroizing;

/// Runs `f` on import material in a form the import reads (raw, PKCS#8 or SPKI): the bytes
/// as given, or their conversion from PKCS#1, which stays in a zeroizing buffer. A
/// conversion that fails is a [`arca_core::Fault::Encoding`] on the field `material_encoding`.
pub(crate) fn with_importable<T>(
    material: &[u8],
    encoding: Option<KeyEncoding>,
    f: impl FnOnce(&[u8]) -> Result<T>,
) -> Result<T> {
    match encoding {
        None | Some(KeyEncoding::Raw | KeyEncoding::Pkcs8 | KeyEncoding::Spki) => f(material),
        Some(KeyEncoding::Pkcs1Private) => {
            let pkcs8 = arca_crypto::der::rsa_pkcs1_to_pkcs8(material).ok_or_else(|| {
                Error::encoding(
                    "material_encoding",
                    "the key material is not a PKCS#1 RSAPrivateKey",
                )
            })?;
            f(&pkcs8)
        }
        Some(KeyEncoding::Pkcs1Public) => {
            let spki = arca_crypto::der::rsa_pkcs1_public_to_spki(material).ok_or_else(|| {
                Error::encoding(
                    "material_encoding",
                    "the key material is not a PKCS#1 RSAPublicKey",
                )
            })?;
            f(&spki)
        }
    }
}

/// Refuses an export in a form the key does not convert to, before anything is gated or
/// handed out: PKCS#1 for a key that is not RSA, or forms that do not correspond (PKCS#1
/// `RSAPrivateKey` of a public-only key, DER of raw bytes). Both are
/// [`arca_core::Fault::Encoding`] naming the field `encoding`.
pub(crate) fn check_export(
    key: uuid::Uuid,
    spec: KeySpec,
    kept: KeyEncoding,
    wanted: KeyEncoding,
) -> Result<()> {
    match kept.converts_to(wanted, spec) {
        Some(true) => Ok(()),
        Some(false) => Err(Error::encoding(
            "encoding",
            format!("PKCS#1 is for RSA keys; key {key} is {spec}"),
        )),
        None => Err(Error::encoding(
            "encoding",
            format!("key {key} is kept as {kept} and is not exported as {wanted}"),
        )),
    }
}

/// Material kept as `kept`, in the form `wanted` (which [`check_export`] accepted). The
/// private forms stay in zeroizing buffers.
pub(crate) fn export_as(
    material: Zeroizing<Vec<u8>>,
    kept: KeyEncoding,
    wanted: KeyEncoding,
) -> Result<Zeroizing<Vec<u8>>> {
    let converted = match (kept, wanted) {
        (a, b) if a == b => return Ok(material),
        (KeyEncoding::Pkcs8, KeyEncoding::Pkcs1Private) => {
            arca_crypto::der::rsa_pkcs8_to_pkcs1(&material)
        }
        (KeyEncoding::Spki, KeyEncoding::Pkcs1Public) => {
            arca_crypto::der::rsa_spki_to_pkcs1(&material).map(Zeroizing::new)
        }
        _ => None,
    };
    converted.ok_or_else(|| {
        Error::internal(format!(
            "key material kept as {kept} did not convert to {wanted}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A syntactically minimal PKCS#1 RSAPublicKey: SEQUENCE { INTEGER 3, INTEGER 3 }.
    const PKCS1_PUBLIC: &[u8] = &[0x30, 0x06, 0x02, 0x01, 0x03, 0x02, 0x01, 0x03];

    #[test]
    fn pkcs1_material_is_converted_for_the_import_and_back_for_the_export() {
        let spki = with_importable(PKCS1_PUBLIC, Some(KeyEncoding::Pkcs1Public), |b| {
            Ok(b.to_vec())
        })
        .unwrap();
        assert_ne!(spki, PKCS1_PUBLIC);
        let back = export_as(
            Zeroizing::new(spki),
            KeyEncoding::Spki,
            KeyEncoding::Pkcs1Public,
        )
        .unwrap();
        assert_eq!(back.as_slice(), PKCS1_PUBLIC);
        let pkcs8 = with_importable(PKCS1_PUBLIC, Some(KeyEncoding::Pkcs1Private), |b| {
            Ok(Zeroizing::new(b.to_vec()))
        })
        .unwrap();
        let back = export_as(pkcs8, KeyEncoding::Pkcs8, KeyEncoding::Pkcs1Private).unwrap();
        assert_eq!(back.as_slice(), PKCS1_PUBLIC);
    }

    #[test]
    fn material_that_is_not_pkcs1_is_an_encoding_fault_naming_the_field() {
        let e =
            with_importable(b"not DER", Some(KeyEncoding::Pkcs1Private), |_| Ok(())).unwrap_err();
        assert_eq!(e.field(), Some("material_encoding"));
        assert!(matches!(
            e,
            Error::Unprocessable {
                fault: arca_core::Fault::Encoding,
                ..
            }
        ));
        let e =
            with_importable(b"not DER", Some(KeyEncoding::Pkcs1Public), |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("RSAPublicKey"), "{e}");
        // Without an encoding the bytes go to the import as they are.
        with_importable(b"as is", None, |b| {
            assert_eq!(b, b"as is");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn an_export_in_a_form_the_key_lacks_is_refused() {
        let id = uuid::Uuid::nil();
        let ec = check_export(
            id,
            KeySpec::EccNistP256,
            KeyEncoding::Pkcs8,
            KeyEncoding::Pkcs1Private,
        )
        .unwrap_err();
        assert!(ec.to_string().starts_with("PKCS#1 is for RSA keys"), "{ec}");
        let public = check_export(
            id,
            KeySpec::Rsa2048,
            KeyEncoding::Spki,
            KeyEncoding::Pkcs1Private,
        )
        .unwrap_err();
        for e in [&ec, &public] {
            assert!(
                matches!(
                    e,
                    Error::Unprocessable {
                        fault: arca_core::Fault::Encoding,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert_eq!(e.field(), Some("encoding"));
        }
        check_export(
            id,
            KeySpec::Rsa2048,
            KeyEncoding::Pkcs8,
            KeyEncoding::Pkcs1Private,
        )
        .unwrap();
    }
}
