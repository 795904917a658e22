//! Bytes → UBI reader (PEBs of 2 KiB to 128 KiB) → volumes: no panic on any
//! input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for peb in [2048, 16 << 10, 128 << 10] {
        let _ = rootforge_ubi::read(data, peb);
    }
});
