//! The Linux kernel's view: our cpio images booted as the initramfs of a
//! Debian kernel under qemu, listed from inside the VM and compared with the
//! input tarball entry for entry.

use std::path::Path;

use crate::util::*;
use crate::vm::{assert_same_listing, vm_listing_initramfs};

fn expected(input: &Path) -> Vec<rootforge::common::listing::Line> {
    rootforge::inspect::listing(input).unwrap()
}

fn boot_cpio(input: &Path, args: &[&str], image: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    build(input, &out, &[&["-f", "cpio"], args].concat());
    let got = vm_listing_initramfs(&[&out.join(image)]);
    assert_same_listing(
        &format!("{} as {image} {args:?}", input.display()),
        &got,
        &expected(input),
    );
}

#[test]
fn kernel_unpacks_tiny_corpus_plain_and_gzip() {
    let tiny = tiny_corpus();
    boot_cpio(&tiny, &[], "rootfs.cpio");
    boot_cpio(&tiny, &["--compress", "gzip"], "rootfs.cpio.gz");
}

#[test]
fn kernel_unpacks_corner_cases_plain_and_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    let corner = corner_tar(tmp.path(), &[]);
    boot_cpio(&corner, &[], "rootfs.cpio");
    // crc headers: a wrong sum would abort unpacking.
    boot_cpio(
        &corner,
        &["--cpio-format", "crc", "--compress", "gzip"],
        "rootfs.cpio.gz",
    );
}

/// Every compressor the kernel can unpack, each split into independent
/// members on entry boundaries (small levels and a big enough input give
/// several members).
#[test]
fn kernel_unpacks_every_parallel_compression() {
    let tmp = tempfile::tempdir().unwrap();
    let corner = corner_tar(tmp.path(), &["--files", "20000"]);
    let mut failed = Vec::new();
    for (comp, suffix) in [
        ("bzip2", "bz2"),
        ("lz4", "lz4"),
        ("lzma", "lzma"),
        ("lzo", "lzo"),
        ("xz", "xz"),
        ("zstd", "zst"),
    ] {
        // Boot every compressor even when one fails, to report them all.
        let r = std::panic::catch_unwind(|| {
            boot_cpio(
                &corner,
                &["--compress", comp, "--compress-level", "1"],
                &format!("rootfs.cpio.{suffix}"),
            );
        });
        if r.is_err() {
            failed.push(comp);
        }
    }
    assert!(failed.is_empty(), "the kernel could not unpack: {failed:?}");
}

/// squashfs (groundwork for its own issue): the kernel mounts our image
/// read-only and lists the same tree as the input, for the tiny corpus and
/// the corner cases, with two compressors.
#[test]
fn kernel_mounts_our_squashfs() {
    let tmp = tempfile::tempdir().unwrap();
    let corner = corner_tar(tmp.path(), &[]);
    let tiny = tiny_corpus();
    let mut disks = Vec::new();
    for (input, comp) in [(&tiny, "gzip"), (&corner, "gzip"), (&corner, "zstd")] {
        let out = tmp.path().join(format!("out-{}-{comp}", disks.len()));
        build(input, &out, &["-f", "squashfs", "--squashfs-comp", comp]);
        disks.push((input.clone(), out.join("rootfs.squashfs")));
    }
    let attached: Vec<(&Path, &str)> = disks
        .iter()
        .map(|(_, img)| (img.as_path(), "squashfs"))
        .collect();
    let listings = crate::vm::vm_listing_disks(&attached);
    for ((input, img), got) in disks.iter().zip(&listings) {
        assert_same_listing(
            &format!("{} as {}", input.display(), img.display()),
            got,
            &expected(input),
        );
    }
}
