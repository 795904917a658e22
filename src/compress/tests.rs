use std::io::{Read, Write};

use rootforge_common::Sink;

use super::*;

/// Deterministic data that compresses like a rootfs: text lines, binary-ish
/// noise and runs of zeros.
fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words: [&[u8]; 8] = [
        b"usr/lib/",
        b"libc.so.6 ",
        b"#include <stdio.h>\n",
        b"root:x:0:0:",
        b"busybox ",
        b"\x7fELF\x02\x01\x01",
        b"0755 ",
        b"etc/init.d/rcS\n",
    ];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let r = next();
        match r % 4 {
            0 | 1 => {
                for _ in 0..(r >> 8) % 40 {
                    out.extend_from_slice(words[usize::try_from(next() % 8).unwrap()]);
                }
            }
            2 => {
                for _ in 0..(r >> 8) % 512 {
                    out.push(next().to_le_bytes()[3]);
                }
            }
            _ => out.resize(out.len() + usize::try_from((r >> 8) % 4096).unwrap(), 0),
        }
    }
    out.truncate(len);
    out
}

fn decode(c: Compression, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    decoder(c, data)?.read_to_end(&mut out)?;
    Ok(out)
}

/// A fast level for each algorithm, so tests stay quick at opt-level 1.
fn quick_level(c: Compression) -> Option<u32> {
    match c {
        Compression::Xz | Compression::Lzma => Some(1),
        Compression::Zstd => Some(3),
        Compression::Gzip => Some(6),
        _ => None,
    }
}

enum Marks {
    None,
    Every(usize),
    /// Irregular marks, like cpio entries of varied sizes.
    Irregular,
    Anywhere,
}

/// Writes `data` in odd-sized pieces, marking boundaries as asked.
fn compress_with(c: Compression, data: &[u8], marks: &Marks, chunk: usize, run: usize) -> Vec<u8> {
    let mut sink = CompressSink::new(c, quick_level(c), Vec::new())
        .unwrap()
        .with_sizes(chunk, run);
    if matches!(marks, Marks::Anywhere) {
        sink = sink.cut_anywhere();
    }
    let mut pos = 0;
    let mut step = 1;
    while pos < data.len() {
        let piece = match marks {
            Marks::Every(n) => *n,
            Marks::Irregular => 1 + (step * 7919) % 20_000,
            Marks::None | Marks::Anywhere => 1 + (step * 104_729) % 70_000,
        };
        let end = (pos + piece).min(data.len());
        // Two writes per piece: the cut points must not depend on slicing.
        let mid = pos + (end - pos) / 3;
        sink.write_all(&data[pos..mid]).unwrap();
        sink.write_all(&data[mid..end]).unwrap();
        if !matches!(marks, Marks::None) {
            sink.boundary().unwrap();
        }
        pos = end;
        step += 1;
    }
    sink.finish().unwrap()
}

const PATTERNS: [Marks; 5] = [
    Marks::None,
    Marks::Every(4096),
    Marks::Every(100_000),
    Marks::Irregular,
    Marks::Anywhere,
];

#[test]
fn round_trip_every_algorithm_and_mark_pattern() {
    let data = sample(700_000, 7);
    for c in Compression::ALL {
        for marks in &PATTERNS {
            // Small chunks and runs: many members, and the streamed fallback
            // for the runs without marks.
            let packed = compress_with(c, &data, marks, 64 << 10, 256 << 10);
            assert_eq!(decode(c, &packed).unwrap(), data, "{c}");
            if c != Compression::None {
                assert_eq!(sniff(&packed), Some(c), "{c}");
                assert!(packed.len() < data.len(), "{c} did not compress");
            }
        }
    }
}

#[test]
fn cuts_fall_only_on_marks_unless_cut_anywhere() {
    let data = sample(300_000, 3);
    // Marks every 10 000 bytes, chunks of 25 000: members end at 30 000,
    // 60 000, ... Decoding member by member proves where the cuts fell.
    let packed = compress_with(
        Compression::Gzip,
        &data,
        &Marks::Every(10_000),
        25_000,
        1 << 20,
    );
    let mut rest = &packed[..];
    let mut ends = Vec::new();
    let mut total = 0;
    while !rest.is_empty() {
        let mut member = flate2::bufread::GzDecoder::new(rest);
        let mut out = Vec::new();
        member.read_to_end(&mut out).unwrap();
        total += out.len();
        ends.push(total);
        rest = member.into_inner();
    }
    let expected: Vec<usize> = (1..=10).map(|i| i * 30_000).collect();
    assert_eq!(ends, expected);

    let packed = compress_with(Compression::Gzip, &data, &Marks::Anywhere, 25_000, 1 << 20);
    let mut rest = &packed[..];
    let mut sizes = Vec::new();
    while !rest.is_empty() {
        let mut member = flate2::bufread::GzDecoder::new(rest);
        let mut out = Vec::new();
        member.read_to_end(&mut out).unwrap();
        sizes.push(out.len());
        rest = member.into_inner();
    }
    assert_eq!(sizes, [25_000; 12]);
}

#[test]
fn long_run_without_marks_is_one_streamed_member() {
    // A mark at 40 000, then 500 000 bytes without one, then a mark: the
    // chunk before the mark, one streamed member for the run, then the rest.
    let data = sample(600_000, 11);
    let mut sink = CompressSink::new(Compression::Gzip, None, Vec::new())
        .unwrap()
        .with_sizes(64 << 10, 128 << 10);
    sink.write_all(&data[..40_000]).unwrap();
    sink.boundary().unwrap();
    sink.write_all(&data[40_000..540_000]).unwrap();
    sink.boundary().unwrap();
    sink.write_all(&data[540_000..]).unwrap();
    let packed = sink.finish().unwrap();
    let mut rest = &packed[..];
    let mut ends = Vec::new();
    let mut total = 0;
    while !rest.is_empty() {
        let mut member = flate2::bufread::GzDecoder::new(rest);
        let mut out = Vec::new();
        member.read_to_end(&mut out).unwrap();
        total += out.len();
        ends.push(total);
        rest = member.into_inner();
    }
    assert_eq!(ends, [40_000, 540_000, 600_000]);
    assert_eq!(decode(Compression::Gzip, &packed).unwrap(), data);
}

#[test]
fn lzma_is_always_one_stream() {
    // xz and lzma read only the first of concatenated .lzma streams.
    let data = sample(400_000, 31);
    for marks in &PATTERNS {
        for run in [64 << 10, 1 << 20] {
            let packed = compress_with(Compression::Lzma, &data, marks, 16 << 10, run);
            let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX).unwrap();
            let mut out = Vec::new();
            liblzma::read::XzDecoder::new_stream(&packed[..], stream)
                .read_to_end(&mut out)
                .unwrap();
            assert!(out == data);
        }
    }
}

#[test]
fn same_bytes_for_any_thread_count() {
    let data = sample(900_000, 5);
    for c in Compression::ALL {
        for marks in &PATTERNS {
            let run = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| compress_with(c, &data, marks, 32 << 10, 200 << 10))
            };
            assert!(run(1) == run(4), "{c} differs between 1 and 4 threads");
        }
    }
}

#[test]
fn empty_input_gives_a_valid_empty_file() {
    for c in Compression::ALL {
        let packed = compress_all(c, None, b"").unwrap();
        assert_eq!(packed.is_empty(), c == Compression::None, "{c}");
        if c != Compression::None {
            assert_eq!(decode(c, &packed).unwrap(), b"", "{c}");
        }
    }
}

#[test]
fn default_levels_round_trip() {
    let data = sample(200_000, 13);
    for c in Compression::ALL {
        let packed = compress_all(c, None, &data).unwrap();
        assert_eq!(decode(c, &packed).unwrap(), data, "{c}");
    }
}

#[test]
fn headers_match_the_tools() {
    let data = sample(10_000, 17);
    // gzip -9 -n: no name, mtime 0, XFL 2 (slowest), OS 3 (Unix).
    let gz = compress_all(Compression::Gzip, None, &data).unwrap();
    assert_eq!(&gz[..10], &[0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 2, 3]);
    // xz: stream flags name check 1, CRC32.
    let xz = compress_all(Compression::Xz, Some(1), &data).unwrap();
    assert_eq!(&xz[6..8], &[0, 1]);
    // lzma-alone: lc=3 lp=0 pb=2, a dictionary that fits the input, and an
    // unknown size with an end marker.
    let lzma = compress_all(Compression::Lzma, Some(9), &data).unwrap();
    assert_eq!(lzma[0], 0x5D);
    assert_eq!(u32::from_le_bytes(lzma[1..5].try_into().unwrap()), 16 << 10);
    assert_eq!(&lzma[5..13], &[0xFF; 8]);
    // lz4 legacy magic, then one block.
    let lz4 = compress_all(Compression::Lz4, None, &data).unwrap();
    assert_eq!(&lz4[..4], &[0x02, 0x21, 0x4C, 0x18]);
    // lzop: version 1.040, LZO 2.10, needs 0.940, LZO1X-999 level 9, Unix
    // with adler32 of the decompressed blocks only (the kernel skips exactly
    // one checksum), mode 0644, mtime 0, no name.
    let lzo = compress_all(Compression::Lzo, None, &data).unwrap();
    assert_eq!(
        &lzo[9..34],
        &[
            0x10, 0x40, 0x20, 0xA0, 0x09, 0x40, 3, 9, 0x03, 0, 0, 0x01, 0, 0, 0x81, 0xA4, 0, 0, 0,
            0, 0, 0, 0, 0, 0
        ]
    );
    // zstd: frame with a checksum (descriptor bit 2).
    let zst = compress_all(Compression::Zstd, Some(3), &data).unwrap();
    assert_eq!(&zst[..4], &[0x28, 0xB5, 0x2F, 0xFD]);
    assert_ne!(zst[4] & 0b100, 0);
}

#[test]
fn truncated_input_is_an_error() {
    let data = sample(300_000, 19);
    for c in Compression::ALL.into_iter().skip(1) {
        let packed = compress_with(c, &data, &Marks::Every(50_000), 100_000, 1 << 20);
        for cut in [
            1,
            3,
            7,
            12,
            packed.len() / 3,
            packed.len() / 2,
            packed.len() - 1,
        ] {
            let err = decode(c, &packed[..cut]);
            assert!(
                err.is_err(),
                "{c} accepted input cut at {cut} of {}",
                packed.len()
            );
        }
    }
}

#[test]
fn corrupt_input_never_panics() {
    for c in Compression::ALL.into_iter().skip(1) {
        let packed = compress_all(c, quick_level(c), &sample(100_000, 23)).unwrap();
        let mut x = 0x9E37_79B9_u32;
        for i in 0..200 {
            let mut bad = packed.clone();
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let at = usize::try_from(x).unwrap() % bad.len();
            bad[at] ^= 1 << (i % 8);
            // Formats without checksums may decode to other bytes, and a
            // flip in a field nobody checks (gzip's mtime) changes nothing:
            // the property is that decoding ends, without a panic.
            let _ = decode(c, &bad);
        }
        // Garbage after the last member ends gzip, bzip2, lz4, lzma and
        // lzop streams, counted as `gzip -d` ignores it; xz and zstd
        // refuse it, as `xz -d` and `zstd -d` do.
        let mut tail = packed.clone();
        tail.extend_from_slice(b"garbage!garbage!");
        let mut d = decoder(c, &tail[..]).unwrap();
        let mut out = Vec::new();
        let res = d.read_to_end(&mut out);
        if matches!(c, Compression::Xz | Compression::Zstd) {
            assert!(res.is_err(), "{c} accepted trailing garbage");
        } else {
            res.unwrap();
            assert_eq!(out, sample(100_000, 23), "{c}");
            assert_eq!(d.trailing(), Some(16), "{c}");
        }
        // A member that starts like one but is not is still an error.
        if c == Compression::Gzip {
            let mut two = packed.clone();
            two.extend_from_slice(&[0x1F, 0x8B, 0, 0]);
            assert!(decode(c, &two).is_err());
        }
    }
}

#[test]
fn sniff_recognises_each_format_and_not_text() {
    for c in Compression::ALL.into_iter().skip(1) {
        let packed = compress_all(c, quick_level(c), b"hello").unwrap();
        assert_eq!(sniff(&packed), Some(c));
    }
    let lz4_frame = [0x04, 0x22, 0x4D, 0x18, 0x64, 0x40, 0xA7];
    assert_eq!(sniff(&lz4_frame), Some(Compression::Lz4));
    assert_eq!(sniff(b"070701000000"), None);
    assert_eq!(sniff(b"ustar\0"), None);
    assert_eq!(sniff(b""), None);
    // 0x5D with an odd dictionary size, or a huge stated size, is not .lzma.
    let mut lzma = [0x5D, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(sniff(&lzma), Some(Compression::Lzma));
    lzma[1] = 1;
    assert_eq!(sniff(&lzma), None);
    lzma[1] = 0;
    lzma[12] = 0x40;
    assert_eq!(sniff(&lzma), None);
    assert_eq!(sniff(&lzma[..5]), None);
}

#[test]
fn decoder_reads_lz4_standard_frames() {
    let data = sample(500_000, 29);
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(
        lz4_flex::frame::FrameInfo::new()
            .block_checksums(true)
            .content_checksum(true)
            .block_mode(lz4_flex::frame::BlockMode::Linked),
        Vec::new(),
    );
    enc.write_all(&data).unwrap();
    let mut frame = enc.finish().unwrap();
    // Followed by a legacy frame of our own.
    frame.extend_from_slice(&compress_all(Compression::Lz4, None, &data).unwrap());
    let mut both = data.clone();
    both.extend_from_slice(&data);
    assert_eq!(decode(Compression::Lz4, &frame).unwrap(), both);
}

#[test]
fn names_suffixes_and_levels() {
    for c in Compression::ALL {
        assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
        assert!(c.levels().contains(&c.default_level()));
    }
    assert!("gz".parse::<Compression>().is_err());
    assert_eq!(Compression::Zstd.suffix(), ".zst");
    assert_eq!(Compression::Zstd.default_level(), 19);
    assert_eq!(Compression::Bzip2.suffix(), ".bz2");
    assert!(CompressSink::new(Compression::Bzip2, Some(10), Vec::new()).is_err());
    assert!(CompressSink::new(Compression::Gzip, Some(0), Vec::new()).is_err());
}

#[test]
fn skippable_frames_are_looked_past() {
    let zstd = compress_all(Compression::Zstd, Some(1), b"hello").unwrap();
    let lz4 = lz4_frame_of(b"hello");
    for (inner, want) in [(&zstd, Compression::Zstd), (&lz4, Compression::Lz4)] {
        let mut s = vec![0x5E, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3];
        s.extend_from_slice(inner);
        assert_eq!(sniff(&s), Some(want));
        let head = read_head(&mut &s[..]).unwrap();
        assert_eq!(head, s[..s.len().min(11 + 16)]);
        let mut out = Vec::new();
        decoder(want, &s[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
    }
    // A frame longer than the head: read on to the frame after it.
    let mut big = vec![0x50, 0x2A, 0x4D, 0x18, 0, 0x10, 0, 0];
    big.resize(8 + 4096, 0xAA);
    big.extend_from_slice(&lz4);
    assert_eq!(
        sniff(&read_head(&mut &big[..]).unwrap()),
        Some(Compression::Lz4)
    );
    assert_eq!(unsupported(&[0x1F, 0x9D, 0x90]), Some("compress (.Z)"));
    assert_eq!(unsupported(b"LRZI\0\x06"), Some("lrzip"));
    assert_eq!(unsupported(&zstd), None);
}

/// A standard LZ4 frame, as `lz4` writes it (not the legacy one we write).
fn lz4_frame_of(data: &[u8]) -> Vec<u8> {
    let flg = 0b0110_0000u8; // version 1, independent blocks
    let bd = 0b0100_0000u8; // 64 KiB blocks
    let hc = twox_hash::XxHash32::oneshot(0, &[flg, bd]).to_le_bytes()[1];
    let mut f = vec![0x04, 0x22, 0x4D, 0x18, flg, bd, hc];
    let len = u32::try_from(data.len()).unwrap() | 0x8000_0000;
    f.extend_from_slice(&len.to_le_bytes());
    f.extend_from_slice(data);
    f.extend_from_slice(&[0; 4]);
    f
}
