//! Key import parses raw bytes, DER and PEM of caller-supplied material: it must never panic,
//! and what it accepts must load.
#![no_main]
use arca_core::model::KeySpec;
use arca_crypto::{CryptoProvider, SoftwareProvider};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let spec = KeySpec::ALL[data[0] as usize % KeySpec::ALL.len()];
    if let Ok(m) = SoftwareProvider.import(spec, "material", &data[1..]) {
        SoftwareProvider.load(spec, &m).expect("accepted material loads");
    }
});
