//! Bytes → squashfs reader → tree → file contents: no panic on any input.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rootforge_common::{Content, listing};

/// Holes let a small image claim terabytes of file data: past this total,
/// only each file's first and last bytes are read.
const READ_ALL: u64 = 16 << 20;
const EDGE: u64 = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(tree) = rootforge_squashfs::read(Arc::new(data.to_vec())) else {
        return;
    };
    let view = tree.view();
    let files: Vec<_> = view
        .sorted_entries()
        .into_iter()
        .filter_map(|e| match &view.inode(e.ino).content {
            Content::File(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    let total = files.iter().fold(0u64, |t, d| t.saturating_add(d.size()));
    if total <= READ_ALL {
        let _ = listing::of_view(&view);
        return;
    }
    let mut buf = vec![0u8; EDGE as usize];
    for d in files {
        let n = d.size().min(EDGE);
        let _ = d.read_at(0, &mut buf[..n as usize]);
        let _ = d.read_at(d.size() - n, &mut buf[..n as usize]);
    }
});
