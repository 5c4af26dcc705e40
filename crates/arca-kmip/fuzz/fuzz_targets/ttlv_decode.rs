//! The TTLV decoder must never panic, and what it accepts must re-encode to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = arca_kmip::decode(data, &arca_kmip::Limits::default()) {
        assert_eq!(&arca_kmip::encode(&item)[..], data);
    }
});
