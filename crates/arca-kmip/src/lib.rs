//! KMIP (OASIS Key Management Interoperability Protocol) without I/O.
//!
//! - [`ttlv`]: the binary encoding, strict and bounded, that the KMIP door reads from its
//!   sockets;
//! - [`tags`] and [`enums`]: the specification's tag numbers and enumerations, with the
//!   names the XML encoding uses;
//! - [`xml`]: the XML encoding (KMIP Profiles "XML Encoding"), which the OASIS conformance
//!   test cases are written in;
//! - [`message`]: request and response messages, batch items, and the helpers that read
//!   payloads.
//!
//! The service's rules live elsewhere: this crate only says what bytes mean.

pub mod enums;
pub mod message;
pub mod tags;
pub mod ttlv;
pub mod xml;

pub use message::Failure;
pub use ttlv::{decode, encode, item_size, Bytes, Item, ItemType, Limits, TtlvError, Value};

/// A name in its comparable form: lower case without `_`, `-` or spaces, so that the XML
/// name `SymmetricKey`, the specification's "Symmetric Key" and `SYMMETRIC_KEY` agree.
pub fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The XML name of a tag, if the tag is one of the specification's.
pub fn tag_name(tag: u32) -> Option<&'static str> {
    tags::TAGS
        .binary_search_by_key(&tag, |(t, _)| *t)
        .ok()
        .map(|i| tags::TAGS[i].1)
}

/// The tag of a name in any of its spellings (`CryptographicAlgorithm`, "Cryptographic
/// Algorithm", `0x420028`).
pub fn tag_by_name(name: &str) -> Option<u32> {
    if let Some(hex) = name.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16).ok();
    }
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<String, u32>> =
        std::sync::OnceLock::new();
    BY_NAME
        .get_or_init(|| tags::TAGS.iter().map(|(t, n)| (normalize(n), *t)).collect())
        .get(&normalize(name))
        .copied()
}

/// A tag's display name: its XML name, or its number for unknown (extension) tags.
pub fn tag_label(tag: u32) -> String {
    tag_name(tag)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("0x{tag:06X}"))
}

/// The enumeration (value, name) table that items with this tag take, if any.
pub fn enumeration_for_tag(tag: u32) -> Option<&'static [(u32, &'static str)]> {
    use enums::*;
    Some(match tag {
        tags::OBJECT_TYPE => object_type::ALL,
        tags::OPERATION => operation::ALL,
        tags::CRYPTOGRAPHIC_ALGORITHM => cryptographic_algorithm::ALL,
        tags::STATE => state::ALL,
        tags::KEY_FORMAT_TYPE => key_format_type::ALL,
        tags::RESULT_STATUS => result_status::ALL,
        tags::RESULT_REASON => result_reason::ALL,
        tags::NAME_TYPE => name_type::ALL,
        tags::LINK_TYPE => link_type::ALL,
        tags::BLOCK_CIPHER_MODE => block_cipher_mode::ALL,
        tags::PADDING_METHOD => padding_method::ALL,
        tags::HASHING_ALGORITHM | tags::MASK_GENERATOR_HASHING_ALGORITHM => hashing_algorithm::ALL,
        tags::MASK_GENERATOR => mask_generator::ALL,
        tags::KEY_ROLE_TYPE => key_role_type::ALL,
        tags::DIGITAL_SIGNATURE_ALGORITHM => digital_signature_algorithm::ALL,
        tags::RECOMMENDED_CURVE => recommended_curve::ALL,
        tags::QUERY_FUNCTION => query_function::ALL,
        tags::REVOCATION_REASON_CODE => revocation_reason_code::ALL,
        tags::WRAPPING_METHOD => wrapping_method::ALL,
        tags::KEY_COMPRESSION_TYPE => key_compression_type::ALL,
        tags::SECRET_DATA_TYPE => secret_data_type::ALL,
        tags::OPAQUE_DATA_TYPE => opaque_data_type::ALL,
        tags::CERTIFICATE_TYPE => certificate_type::ALL,
        tags::VALIDITY_INDICATOR => validity_indicator::ALL,
        tags::INTEROP_FUNCTION => interop_function::ALL,
        tags::BATCH_ERROR_CONTINUATION_OPTION => batch_error_continuation_option::ALL,
        tags::USAGE_LIMITS_UNIT => usage_limits_unit::ALL,
        tags::RNG_ALGORITHM => rng_algorithm::ALL,
        tags::DRBG_ALGORITHM => drbg_algorithm::ALL,
        tags::FIPS186_VARIATION => fips186_variation::ALL,
        tags::PROTECTION_LEVEL => protection_level::ALL,
        tags::ALTERNATIVE_NAME_TYPE => alternative_name_type::ALL,
        tags::KEY_WRAP_TYPE => key_wrap_type::ALL,
        tags::ENCODING_OPTION => encoding_option::ALL,
        tags::DERIVATION_METHOD => derivation_method::ALL,
        tags::CREDENTIAL_TYPE => credential_type::ALL,
        tags::CANCELLATION_RESULT => cancellation_result::ALL,
        tags::PUT_FUNCTION => put_function::ALL,
        tags::SPLIT_KEY_METHOD => split_key_method::ALL,
        tags::OBJECT_GROUP_MEMBER => object_group_member::ALL,
        tags::CERTIFICATE_REQUEST_TYPE => certificate_request_type::ALL,
        tags::DESTROY_ACTION => destroy_action::ALL,
        tags::SHREDDING_ALGORITHM => shredding_algorithm::ALL,
        tags::RNG_MODE => rng_mode::ALL,
        tags::UNWRAP_MODE => unwrap_mode::ALL,
        tags::KEY_VALUE_LOCATION_TYPE => key_value_location_type::ALL,
        tags::ATTESTATION_TYPE => attestation_type::ALL,
        tags::ASYNCHRONOUS_INDICATOR => asynchronous_indicator::ALL,
        tags::ADJUSTMENT_TYPE => adjustment_type::ALL,
        tags::ENDPOINT_ROLE => endpoint_role::ALL,
        tags::TICKET_TYPE => ticket_type::ALL,
        tags::VALIDATION_AUTHORITY_TYPE => validation_authority_type::ALL,
        tags::VALIDATION_TYPE => validation_type::ALL,
        tags::CLIENT_REGISTRATION_METHOD => client_registration_method::ALL,
        tags::NIST_KEY_TYPE => nist_key_type::ALL,
        _ => return None,
    })
}

/// The mask (bit, name) table that Integer items with this tag take, if any.
pub fn mask_for_tag(tag: u32) -> Option<&'static [(u32, &'static str)]> {
    Some(match tag {
        tags::CRYPTOGRAPHIC_USAGE_MASK => enums::cryptographic_usage_mask::ALL,
        tags::PROTECTION_STORAGE_MASK | tags::PROTECTION_STORAGE_MASKS => {
            enums::protection_storage_mask::ALL
        }
        tags::STORAGE_STATUS_MASK => enums::storage_status_mask::ALL,
        _ => return None,
    })
}

/// The tag whose value type a KMIP 1.x attribute carries, by the attribute's name
/// ("Cryptographic Algorithm" gives [`tags::CRYPTOGRAPHIC_ALGORITHM`]); `AttributeValue`
/// items are interpreted as that tag's values.
pub fn attribute_tag(attribute_name: &str) -> Option<u32> {
    tag_by_name(attribute_name)
}

/// The value of an enumeration name (or `0x…` number) in a table.
pub fn enum_value(table: &[(u32, &str)], name: &str) -> Option<u32> {
    if let Some(hex) = name.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16).ok();
    }
    let n = normalize(name);
    table
        .iter()
        .find(|(_, t)| normalize(t) == n)
        .map(|(v, _)| *v)
}

/// The name of an enumeration value in a table.
pub fn enum_name(table: &[(u32, &'static str)], value: u32) -> Option<&'static str> {
    table.iter().find(|(v, _)| *v == value).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(tag_name(0x420057), Some("ObjectType"));
        assert_eq!(tag_by_name("Cryptographic Algorithm"), Some(0x420028));
        assert_eq!(tag_by_name("PKCS_11Function"), Some(tags::PKCS11_FUNCTION));
        assert_eq!(tag_by_name("NoSuchTag"), None);
        let ot = enumeration_for_tag(tags::OBJECT_TYPE).unwrap();
        assert_eq!(enum_value(ot, "SymmetricKey"), Some(2));
        assert_eq!(enum_value(ot, "OpaqueObject"), Some(8));
        assert_eq!(enum_name(ot, 2), Some("SymmetricKey"));
        let alg = enumeration_for_tag(tags::CRYPTOGRAPHIC_ALGORITHM).unwrap();
        assert_eq!(enum_value(alg, "DES3"), Some(2));
        assert_eq!(enum_value(alg, "AES"), Some(3));
        // Sorted, so binary search is right.
        assert!(tags::TAGS.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
