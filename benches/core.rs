//! Criterion benches: tarball ingest and the cpio and tar encoders on
//! deterministic synthetic trees (many small files; a few large ones).
//! The comparison with other tools is `benches/peers.sh`.

use std::hint::black_box;
use std::io;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rootforge::common::{
    Backing, Content, Edit, Encoder, FileData, Inode, Meta, Plain, Replace, Time, Tree, TreeBuilder,
};

/// A tree of `files` files of `size` bytes in directories of 100, with
/// pseudo-random content so nothing compresses to nothing.
fn synthetic(files: u32, size: usize) -> Tree {
    let meta = Meta::new(0o755, 0, 0, Time::from_secs(1_700_000_000));
    let mut b = TreeBuilder::new(meta);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..files {
        let data: Vec<u8> = (0..size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 56) as u8
            })
            .collect();
        let path = format!("usr/share/d{:04}/file{i:06}", i / 100);
        let inode = Inode::new(
            Meta::new(0o644, 0, 0, Time::from_secs(1_700_000_000)),
            Content::File(FileData::bytes(data)),
        );
        b.insert(path.as_bytes(), inode, Replace::Always)
            .expect("synthetic tree");
    }
    b.finish()
}

fn tarball(tree: &Tree) -> Backing {
    let mut out = Plain(Vec::new());
    rootforge_tar::TarEncoder
        .write(&tree.view(), &mut out)
        .expect("tar");
    Arc::new(out.0)
}

fn benches(c: &mut Criterion) {
    let shapes = [
        ("small-files", synthetic(20_000, 2_000)),
        ("large-files", synthetic(8, 8 << 20)),
    ];
    for (name, tree) in &shapes {
        let tar = tarball(tree);
        let bytes = tar.len();
        let mut g = c.benchmark_group(*name);
        g.throughput(Throughput::Bytes(bytes));
        g.sample_size(10);
        g.bench_function("ingest", |b| {
            let opts = rootforge_tar::ReadOptions {
                implicit_dir: Meta::new(0o755, 0, 0, Time::default()),
                clamp_mtime: None,
            };
            b.iter(|| black_box(rootforge_tar::read(tar.clone(), &opts).expect("ingest")));
        });
        // Into a reused buffer, so every byte is copied once, as into a file
        // (an io::sink would measure nothing for in-memory data).
        let capacity = usize::try_from(bytes).unwrap_or(0) + (1 << 20);
        let mut out = Plain(Vec::with_capacity(capacity));
        g.bench_function("cpio", |b| {
            let enc = rootforge_cpio::CpioEncoder::default();
            b.iter(|| {
                out.0.clear();
                enc.write(&tree.view(), &mut out).expect("cpio")
            });
        });
        g.bench_function("tar", |b| {
            let enc = rootforge_tar::TarEncoder;
            b.iter(|| {
                out.0.clear();
                enc.write(&tree.view(), &mut out).expect("tar")
            });
        });
        g.bench_function("cpio+gzip", |b| {
            let enc = rootforge_cpio::CpioEncoder::default();
            b.iter(|| {
                let mut sink = rootforge::compress::CompressSink::new(
                    rootforge::compress::Compression::Gzip,
                    None,
                    io::sink(),
                )
                .expect("gzip");
                enc.write(&tree.view(), &mut sink).expect("cpio");
                sink.finish().expect("finish")
            });
        });
        g.finish();
    }
}

criterion_group!(core, benches);
criterion_main!(core);
