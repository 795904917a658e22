//! The first byte picks a decoder; the rest is fed to it. Decoding may fail
//! but must not panic, and output is capped so a valid bomb only costs time.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use rootforge::compress::{Compression, decoder};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let c = Compression::ALL[usize::from(pick) % Compression::ALL.len()];
    if let Ok(d) = decoder(c, rest) {
        let mut out = Vec::new();
        let _ = d.take(64 << 20).read_to_end(&mut out);
    }
});
