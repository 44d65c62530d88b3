//! One request frame (header and body, without the size prefix): the header
//! decode, the supported-version check, the body decode with kafka-protocol
//! at that version, and the validation that needs no running broker, exactly
//! as the broker does them.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vltava_fuzz::serve_offline(bytes::Bytes::copy_from_slice(data));
});
