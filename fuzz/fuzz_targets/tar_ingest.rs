//! Bytes → tarball reader → tree → listing (which reads every file's data):
//! no panic, no unbounded allocation, whatever the bytes.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rootforge_common::{Meta, Time, listing};

fuzz_target!(|data: &[u8]| {
    let opts = rootforge_tar::ReadOptions {
        implicit_dir: Meta::new(0o755, 0, 0, Time::default()),
        clamp_mtime: None,
        ..Default::default()
    };
    if let Ok(ingest) = rootforge_tar::read(Arc::new(data.to_vec()), &opts) {
        let _ = listing::of_view(&ingest.tree.view());
    }
});
