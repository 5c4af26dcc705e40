//! A request message, from bytes to the model: decoding and reading the header and batch
//! items must never panic, and whatever fails must give a KMIP error response that encodes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(item) = arca_kmip::decode(data, &arca_kmip::Limits::default()) else {
        return;
    };
    match arca_kmip::message::parse_request(&item) {
        Ok(req) => {
            for b in &req.items {
                // Payload accessors the operations use.
                let _ = b.payload.child(arca_kmip::tags::UNIQUE_IDENTIFIER).map(|i| i.text());
                let _ = arca_kmip::xml::to_xml(&b.payload);
            }
        }
        Err(e) => {
            let resp = arca_kmip::message::error_response(0, &e);
            let bytes = arca_kmip::encode(&resp);
            assert!(arca_kmip::decode(&bytes, &arca_kmip::Limits::default()).is_ok());
        }
    }
});
