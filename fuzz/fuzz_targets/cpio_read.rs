//! Bytes → cpio reader → tree → listing: no panic on any input.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rootforge_common::listing;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = rootforge_cpio::read(Arc::new(data.to_vec())) {
        let _ = listing::of_view(&tree.view());
    }
});
