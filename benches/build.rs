//! The whole multi-image step of a Buildroot build, through the pipeline
//! `rootforge build` runs (`pipeline::build`: checks, five images written
//! concurrently into temporary files, renamed into place), on one thread
//! and on all of them. The images are Buildroot's five with
//! `--profile buildroot`: cpio + gzip -9 with `/init` and `/dev/console`
//! added, tar, squashfs (gzip 9), ext4 and iso9660.

mod common;

use std::sync::Arc;
use std::thread;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rootforge::common::{Encoder, Meta, Overlay, Time, Tree};
use rootforge::compress::Compression;
use rootforge::pipeline::{self, ImageJob, ProgressMode};
use rootforge::squashfs::{Comp, SquashfsEncoder};

fn job(name: &str, encoder: Box<dyn Encoder>) -> ImageJob {
    ImageJob {
        name: name.to_owned(),
        encoder,
        overlay: None,
        compression: Compression::None,
        level: None,
        cut_anywhere: true,
        keep_uncompressed: false,
        uimage: None,
    }
}

fn buildroot_jobs(base: &Arc<Tree>) -> Vec<ImageJob> {
    let mut init = Overlay::new(base.clone(), Meta::new(0o755, 0, 0, Time::default()));
    rootforge::overlay::add_cpio_init(&mut init, Time::default()).expect("cpio overlay");
    vec![
        ImageJob {
            overlay: Some(init),
            compression: Compression::Gzip,
            level: Some(9),
            // An initramfs: members end between entries.
            cut_anywhere: false,
            ..job(
                "rootfs.cpio",
                Box::new(rootforge::cpio::CpioEncoder::default()),
            )
        },
        job(
            "rootfs.tar",
            Box::new(rootforge::tar::TarEncoder::default()),
        ),
        job(
            "rootfs.squashfs",
            Box::new(SquashfsEncoder {
                level: 9,
                ..SquashfsEncoder::new(Comp::Gzip)
            }),
        ),
        job(
            "rootfs.ext4",
            Box::new(rootforge::ext::ExtEncoder::new(
                rootforge::ext::Variant::Ext4,
            )),
        ),
        job(
            "rootfs.iso9660",
            Box::new(rootforge::iso9660::IsoEncoder::default()),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = vec![1];
    if cores > 1 {
        threads.push(cores);
    }
    let out = tempfile::tempdir().expect("output directory");
    for shape in common::shapes() {
        let jobs = buildroot_jobs(&shape.tree);
        let mut g = c.benchmark_group(format!("build/{}", shape.name));
        g.throughput(Throughput::Bytes(shape.bytes()));
        g.sampling_mode(SamplingMode::Flat);
        for &n in &threads {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .expect("thread pool");
            g.bench_function(format!("5-images/{n}-threads"), |b| {
                b.iter(|| {
                    pool.install(|| {
                        pipeline::build(&shape.tree, &jobs, out.path(), ProgressMode::Quiet)
                    })
                    .expect("build")
                });
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
