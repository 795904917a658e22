//! The Linux kernel's view: our cpio images booted as the initramfs of a
//! Debian kernel under qemu, listed from inside the VM and compared with the
//! input tarball entry for entry.

use std::path::{Path, PathBuf};

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

/// Attaches each image as a read-only disk of its file system type, boots
/// once, and checks that the kernel lists each image's input tarball entry
/// for entry (`lost+found`, which every ext image has, aside).
fn kernel_lists_the_inputs(disks: &[(PathBuf, PathBuf, &str)]) {
    let attached: Vec<(&Path, &str)> = disks
        .iter()
        .map(|(_, img, fs)| (img.as_path(), *fs))
        .collect();
    let listings = crate::vm::vm_listing_disks(&attached);
    for ((input, img, fs), got) in disks.iter().zip(&listings) {
        let got: Vec<_> = got
            .iter()
            .filter(|l| !(fs.starts_with("ext") && l.path == "/lost+found"))
            .cloned()
            .collect();
        assert_same_listing(
            &format!("{} as {}", input.display(), img.display()),
            &got,
            &expected(input),
        );
    }
}

/// The kernel mounts our squashfs images read-only and lists the same tree
/// as the input: the tiny corpus and the corner cases, with every
/// compressor, and the corner cases with small blocks, tail ends in
/// fragments, and the extreme settings (LZ4 HC, xz with BCJ filters).
#[test]
fn kernel_mounts_our_squashfs() {
    let tmp = tempfile::tempdir().unwrap();
    let corner = corner_tar(tmp.path(), &[]);
    let tiny = tiny_corpus();
    let mut runs: Vec<(&Path, Vec<&str>)> = Vec::new();
    for comp in ["gzip", "lzo", "xz", "lz4", "zstd", "none"] {
        runs.push((&tiny, vec!["--squashfs-comp", comp]));
        runs.push((&corner, vec!["--squashfs-comp", comp]));
    }
    runs.push((
        &corner,
        vec!["--squashfs-block-size", "4K", "--squashfs-always-fragments"],
    ));
    runs.push((
        &corner,
        vec![
            "--squashfs-block-size",
            "4K",
            "--squashfs-no-exports",
            "--squashfs-no-pad",
        ],
    ));
    for comp in ["lz4", "xz", "zstd"] {
        runs.push((&tiny, vec!["--squashfs-comp", comp, "--squashfs-extreme"]));
    }
    runs.push((
        &tiny,
        vec![
            "--squashfs-comp",
            "xz",
            // The filters this kernel decodes: Debian's amd64 kernel has
            // only the x86, arm64 and riscv BCJ decoders, so an image with
            // an ARM-filtered block is for an ARM kernel (the crate's
            // tests read those with unsquashfs).
            "--squashfs-bcj",
            "x86",
        ],
    ));
    let mut disks = Vec::new();
    for (input, args) in &runs {
        let out = tmp.path().join(format!("out-{}", disks.len()));
        build(
            input,
            &out,
            &[&["-f", "squashfs"], args.as_slice()].concat(),
        );
        let image = out.join("rootfs.squashfs");
        if args.contains(&"--squashfs-no-pad") {
            // Unpadded, the image ends mid-sector, where a block device
            // cannot reach: pad it as a partition holding it would be.
            let len = std::fs::metadata(&image).unwrap().len();
            assert_ne!(len % 4096, 0, "--squashfs-no-pad still padded");
            let file = std::fs::OpenOptions::new()
                .append(true)
                .open(&image)
                .unwrap();
            file.set_len(len.next_multiple_of(4096)).unwrap();
        }
        disks.push((input.to_path_buf(), image, "squashfs"));
    }
    kernel_lists_the_inputs(&disks);
}

/// The kernel mounts our ext2, ext3 and ext4 images read-only, each with
/// its own type, and lists the same tree as the input: the corner cases
/// and the tiny corpus at 4 KiB blocks, the tiny corpus at 1 KiB too.
/// (`lost+found`, which every ext image has, is not in the input.)
#[test]
fn kernel_mounts_our_ext_images() {
    let tmp = tempfile::tempdir().unwrap();
    let corner = corner_tar(tmp.path(), &[]);
    let tiny = tiny_corpus();
    let mut disks = Vec::new();
    for (input, bs) in [(&corner, "4K"), (&tiny, "4K"), (&tiny, "1K")] {
        let out = tmp.path().join(format!("out-{}", disks.len()));
        build(
            input,
            &out,
            &["-f", "ext2,ext3,ext4", "--ext-block-size", bs],
        );
        for v in ["ext2", "ext3", "ext4"] {
            disks.push((input.clone(), out.join(format!("rootfs.{v}")), v));
        }
    }
    kernel_lists_the_inputs(&disks);
}

/// The kernel mounts our ISO9660 images (isofs with Rock Ridge) read-only
/// and lists the same tree as the input: the corner cases (with names cut
/// to the 253 bytes Linux reads) and the tiny corpus, plain and with zisofs.
#[test]
fn kernel_mounts_our_iso9660() {
    let tmp = tempfile::tempdir().unwrap();
    // Linux reads Rock Ridge names of at most 253 bytes.
    let corner = corner_tar(tmp.path(), &["--name-max", "253"]);
    let tiny = tiny_corpus();
    let mut disks = Vec::new();
    for (input, args) in [
        (&corner, &[][..]),
        (&tiny, &[][..]),
        (&corner, &["--iso-zisofs"][..]),
        (&tiny, &["--iso-zisofs", "--iso-no-joliet"][..]),
    ] {
        let out = tmp.path().join(format!("out-{}", disks.len()));
        build(input, &out, &[&["-f", "iso9660"], args].concat());
        disks.push((input.clone(), out.join("rootfs.iso9660"), "iso9660"));
    }
    kernel_lists_the_inputs(&disks);
}
