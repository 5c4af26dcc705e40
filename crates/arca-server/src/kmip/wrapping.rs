//! Key wrapping as KMIP describes it: a Key Wrapping Data (how a registered Key Block is
//! wrapped) or a Key Wrapping Specification (how Get should wrap), read into the service's
//! wrapping key and cipher. The wrapping itself is the service's.

use arca_kmip::enums::result_reason as reason;
use arca_kmip::{tags, Failure, Item};

/// What a Key Wrapping Data or Key Wrapping Specification says: the wrapping key, the
/// cipher, and whether the wrapped bytes are a TTLV-encoded Key Value (else the material).
pub(super) struct Wrapping {
    pub(super) method: u32,
    pub(super) key: String,
    pub(super) cipher: arca_service::api::WrapCipher,
    pub(super) params: Option<Item>,
    pub(super) ttlv: bool,
}

/// Reads a Key Wrapping Data (Register) or Key Wrapping Specification (Get): only
/// encryption, under NIST Key Wrap, AES Key Wrap Padding or RSA-OAEP, is taken.
pub(super) fn wrapping_of(spec: &Item) -> Result<Wrapping, Failure> {
    use arca_kmip::enums::{
        block_cipher_mode as bcm, encoding_option, padding_method, wrapping_method,
    };
    use arca_service::api::WrapCipher;
    let method = spec.req(tags::WRAPPING_METHOD)?.enumeration()?;
    if method != wrapping_method::ENCRYPT {
        return Err(Failure::new(
            reason::KEY_WRAP_TYPE_NOT_SUPPORTED,
            "Wrapping Method Encrypt is supported (MAC/sign wrapping is not)",
        ));
    }
    if spec.child(tags::MAC_SIGNATURE_KEY_INFORMATION).is_some() {
        return Err(Failure::new(
            reason::KEY_WRAP_TYPE_NOT_SUPPORTED,
            "MAC/Signature Key Information is not supported",
        ));
    }
    // Absent means No Encoding here, as Arca's wrapped Get writes it.
    let ttlv = match spec.child(tags::ENCODING_OPTION) {
        Some(e) => e.enumeration()? != encoding_option::NO_ENCODING,
        None => false,
    };
    let eki = spec.req(tags::ENCRYPTION_KEY_INFORMATION)?;
    let key = eki.req(tags::UNIQUE_IDENTIFIER)?.text()?.to_owned();
    let params = eki.child(tags::CRYPTOGRAPHIC_PARAMETERS);
    let e = |t| {
        params
            .and_then(|p| p.child(t))
            .map(Item::enumeration)
            .transpose()
    };
    let cipher = match (e(tags::BLOCK_CIPHER_MODE)?, e(tags::PADDING_METHOD)?) {
        (Some(bcm::NIST_KEY_WRAP) | None, None) => WrapCipher::AesKeyWrap,
        (Some(bcm::AES_KEY_WRAP_PADDING), _) => WrapCipher::AesKeyWrapPadded,
        (None, Some(padding_method::OAEP)) => {
            use arca_core::cipher::OaepHash;
            use arca_kmip::enums::hashing_algorithm as h;
            WrapCipher::RsaOaep(match e(tags::HASHING_ALGORITHM)?.unwrap_or(h::SHA_1) {
                h::SHA_1 => OaepHash::Sha1,
                h::SHA_256 => OaepHash::Sha256,
                h::SHA_384 => OaepHash::Sha384,
                h::SHA_512 => OaepHash::Sha512,
                _ => {
                    return Err(Failure::invalid_field(
                        "RSA-OAEP wrapping takes SHA-1, SHA-256, SHA-384 or SHA-512",
                    ))
                }
            })
        }
        _ => {
            return Err(Failure::new(
                reason::KEY_WRAP_TYPE_NOT_SUPPORTED,
                "wrapping is NIST Key Wrap, AES Key Wrap Padding or RSA-OAEP",
            ))
        }
    };
    Ok(Wrapping {
        method,
        key,
        cipher,
        params: params.cloned(),
        ttlv,
    })
}
