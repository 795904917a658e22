//! Bytes → erofs reader → tree → listing and file contents: no panic on
//! any input.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

#[path = "common/read_all.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = rootforge_erofs::read(Arc::new(data.to_vec())) {
        common::read_all(&tree);
    }
});
