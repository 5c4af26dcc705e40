//! Request bodies: whatever the bytes, decoding into the service's request types returns a
//! value or an error, never a panic.
#![no_main]
use arca_service::api::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<CreateKeyRequest>(data);
    let _ = serde_json::from_slice::<UpdateKeyRequest>(data);
    let _ = serde_json::from_slice::<EncryptRequest>(data);
    let _ = serde_json::from_slice::<DecryptRequest>(data);
    let _ = serde_json::from_slice::<SignRequest>(data);
    let _ = serde_json::from_slice::<GenerateDataKeyPairRequest>(data);
});
