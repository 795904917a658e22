//! Every encoder on both synthetic shapes, writing into a reused in-memory
//! buffer (seekable, as a file is: squashfs writes its superblock last) on
//! the global rayon pool, i.e. all cores. Throughput is against the input
//! tarball's size.

mod common;

use std::io;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rootforge::common::{Buffer, Encoder};
use rootforge::compress::{CompressSink, Compression};
use rootforge::ext::{ExtEncoder, Variant};
use rootforge::iso9660::IsoEncoder;
use rootforge::squashfs::{Comp, SquashfsEncoder};

fn encoders() -> Vec<(&'static str, Box<dyn Encoder>)> {
    let squashfs = |comp, level| {
        Box::new(SquashfsEncoder {
            level,
            ..SquashfsEncoder::new(comp)
        }) as Box<dyn Encoder>
    };
    vec![
        ("cpio", Box::new(rootforge::cpio::CpioEncoder::default())),
        ("tar", Box::new(rootforge::tar::TarEncoder::default())),
        ("squashfs-gzip9", squashfs(Comp::Gzip, 9)),
        ("squashfs-zstd15", squashfs(Comp::Zstd, 15)),
        ("squashfs-xz6", squashfs(Comp::Xz, 6)),
        ("squashfs-lz4", squashfs(Comp::Lz4, 0)),
        ("squashfs-none", squashfs(Comp::None, 0)),
        ("ext2", Box::new(ExtEncoder::new(Variant::Ext2))),
        ("ext3", Box::new(ExtEncoder::new(Variant::Ext3))),
        ("ext4", Box::new(ExtEncoder::new(Variant::Ext4))),
        ("iso9660", Box::new(IsoEncoder::default())),
        (
            "iso9660-zisofs",
            Box::new(IsoEncoder {
                zisofs: true,
                ..IsoEncoder::default()
            }),
        ),
    ]
}

/// The slowest encoders run on the small-files shape only, which keeps the
/// suite to minutes on 2 cores.
const SMALL_FILES_ONLY: [&str; 3] = ["squashfs-zstd15", "squashfs-xz6", "iso9660-zisofs"];

fn bench(c: &mut Criterion) {
    for shape in common::shapes() {
        let view = shape.tree.view();
        let mut g = c.benchmark_group(format!("encode/{}", shape.name));
        g.throughput(Throughput::Bytes(shape.bytes()));
        // One iteration per sample: most of these take 0.1 s to seconds.
        g.sampling_mode(SamplingMode::Flat);
        // Reused, so every byte is copied once, as into a file, and no
        // iteration pays for growing it (an io::sink would measure nothing
        // for data already in memory).
        let capacity = usize::try_from(shape.bytes()).unwrap_or(0) * 2;
        let mut out = Buffer(Vec::with_capacity(capacity));
        for (name, enc) in encoders() {
            if shape.name != "small-files" && SMALL_FILES_ONLY.contains(&name) {
                continue;
            }
            g.bench_function(name, |b| {
                b.iter(|| {
                    out.0.clear();
                    enc.write(&view, &mut out).expect(name)
                });
            });
        }
        // The initramfs: cpio through the outer gzip -9, in 1 MiB members
        // compressed on all cores.
        g.bench_function("cpio+gzip9", |b| {
            let enc = rootforge::cpio::CpioEncoder::default();
            b.iter(|| {
                let mut sink =
                    CompressSink::new(Compression::Gzip, Some(9), io::sink()).expect("gzip");
                enc.write(&view, &mut sink).expect("cpio");
                sink.finish().expect("finish")
            });
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
