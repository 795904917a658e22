//! Ingest: a tarball read into a tree, from memory (`rootforge_tar::read`,
//! headers only, file data stays referenced) and from a gzip-compressed file
//! on disk through `rootforge::input::load` (decompression into a temporary
//! file included), as `rootforge build rootfs.tar.gz` reads it.

mod common;

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rootforge::compress::{Compression, compress_all};
use rootforge::input::{self, Source};

fn ingest(c: &mut Criterion) {
    for shape in common::shapes() {
        let mut g = c.benchmark_group(format!("ingest/{}", shape.name));
        g.throughput(Throughput::Bytes(shape.bytes()));
        g.bench_function("tar", |b| {
            let opts = common::read_options();
            b.iter(|| black_box(rootforge::tar::read(shape.tar.clone(), &opts).expect("ingest")));
        });

        let tar = shape.tar.as_slice().expect("the tarball is in memory");
        let gz = compress_all(Compression::Gzip, Some(6), tar).expect("gzip");
        eprintln!(
            "{}: {} entries, tarball {} bytes, gzip -6 {} bytes (ratio {:.2})",
            shape.name,
            shape.tree.len(),
            tar.len(),
            gz.len(),
            tar.len() as f64 / gz.len() as f64
        );
        let mut file = tempfile::NamedTempFile::new().expect("temporary file");
        file.write_all(&gz).expect("write the tarball");
        let source = Source::Path(file.path().to_path_buf());
        let opts = input::Options::default();
        let loaded = input::load(&source, &opts).expect("ingest");
        assert_eq!(
            loaded.tree.len(),
            shape.tree.len(),
            "the same tree from tar.gz"
        );
        g.bench_function("tar.gz", |b| {
            b.iter(|| black_box(input::load(&source, &opts).expect("ingest")));
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = ingest
}
criterion_main!(benches);
