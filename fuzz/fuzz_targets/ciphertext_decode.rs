//! The ciphertext decoder must never panic and must accept only what re-encodes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((h, body)) = arca_crypto::ciphertext::decode(data) {
        assert_eq!(&h.encode()[..], &data[..arca_crypto::ciphertext::HEADER_LEN]);
        assert_eq!(body.len(), data.len() - arca_crypto::ciphertext::HEADER_LEN);
    }
});
