//! Streamed input (the `-`/stdin path: compression sniffed, decompressed,
//! spooled, read as a tarball) fed in reads of fuzzer-chosen sizes must give
//! exactly what it gives read in one piece: the same tree, or the same
//! error. The first byte is how many of the following bytes are read sizes
//! (1 + b², so from 1 byte to 64 KiB, used in turn); the rest is the stream.
#![no_main]

use std::io::{self, Cursor, Read};

use libfuzzer_sys::fuzz_target;
use rootforge::input::{self, Loaded, Options, Source};

#[path = "common/state.rs"]
mod common;

/// Hands out `data` in reads of the given sizes, cycling through them.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    next: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let b = usize::from(self.sizes[self.next % self.sizes.len()]);
        self.next = self.next.wrapping_add(1);
        let n = (1 + b * b).min(buf.len()).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        buf[..n].copy_from_slice(head);
        self.data = rest;
        Ok(n)
    }
}

/// The tree (as its full state) with the other outcomes, or the error text.
fn outcome(
    r: Result<Loaded, input::InputError>,
) -> Result<impl PartialEq + std::fmt::Debug, String> {
    r.map(|l| {
        (
            common::state(&l.tree.view()),
            l.entries,
            l.compression,
            l.warnings,
        )
    })
    .map_err(|e| e.to_string())
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 16) + 1;
    if rest.len() < n {
        return;
    }
    let (sizes, stream) = rest.split_at(n);
    let opts = Options::default();
    let whole = input::load_stream(&Source::Stdin, &mut Cursor::new(stream), &opts);
    let mut chunked = Chunked {
        data: stream,
        sizes,
        next: 0,
    };
    let split = input::load_stream(&Source::Stdin, &mut chunked, &opts);
    assert_eq!(outcome(whole), outcome(split));
});
