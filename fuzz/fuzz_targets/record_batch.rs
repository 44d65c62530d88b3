//! A produce request's `records` field: batch validation (`log/batch.rs`),
//! the record checks and recompression (`log/validate.rs`) under a log
//! configuration chosen by the first byte, and the in-place patches.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, records)) = data.split_first() else {
        return;
    };
    let config = vltava_fuzz::log_config_from(selector);
    vltava_fuzz::check_batches(records, &config, 1_700_000_000_000);
});
