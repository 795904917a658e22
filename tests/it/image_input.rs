//! Every image rootforge reads is an input: each format built from each
//! other format lists the same tree, and the kernel agrees on a few pairs.

use std::path::{Path, PathBuf};

use rootforge::common::listing::Line;
use rootforge::format::Format;

use crate::util::{build, inspect, rootforge, run, tiny_corpus};
use crate::vm::{assert_same_listing, vm_listing_disks};

/// The formats a tree goes through: cpio (also gzip-compressed), tar,
/// squashfs, ext2/3/4 and ISO9660.
const SOURCES: [(&str, &[&str], &str); 8] = [
    ("cpio", &[], "rootfs.cpio"),
    ("cpio", &["--cpio-compress", "gzip"], "rootfs.cpio.gz"),
    ("tar", &[], "rootfs.tar"),
    ("squashfs", &[], "rootfs.squashfs"),
    ("ext2", &[], "rootfs.ext2"),
    ("ext3", &[], "rootfs.ext3"),
    ("ext4", &[], "rootfs.ext4"),
    ("iso9660", &[], "rootfs.iso9660"),
];

/// A listing without what the format adds itself (ext's lost+found, which
/// the tiny corpus lacks).
fn without_implicit(lines: Vec<String>, format: Format) -> Vec<String> {
    let implicit = format.spec().implicit_entries;
    lines
        .into_iter()
        .filter(|l| !implicit.iter().any(|p| l.ends_with(&format!(" {p}"))))
        .collect()
}

fn format_of(name: &str) -> Format {
    name.parse().unwrap()
}

#[test]
fn every_format_builds_from_every_other() {
    let tmp = tempfile::tempdir().unwrap();
    let want = inspect(&tiny_corpus());
    for (src, args, file) in SOURCES {
        let first = tmp.path().join(format!("from-{file}"));
        build(&tiny_corpus(), &first, &[&["-f", src], args].concat());
        let image = first.join(file);
        assert_eq!(
            without_implicit(inspect(&image), format_of(src)),
            want,
            "{file} lists the input"
        );
        let second = tmp.path().join(format!("to-{file}"));
        build(&image, &second, &[]);
        for target in Format::DEFAULT {
            let out = second.join(target.output_name());
            assert_eq!(
                without_implicit(without_implicit(inspect(&out), target), format_of(src)),
                want,
                "{file} → {target}"
            );
        }
    }
}

#[test]
fn the_input_line_names_the_format_read() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("a");
    build(&tiny_corpus(), &out, &["-f", "squashfs"]);
    let res = rootforge()
        .args(["build", "-f", "tar", "-o"])
        .arg(tmp.path().join("b"))
        .arg(out.join("rootfs.squashfs"))
        .output()
        .unwrap();
    assert!(res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("(squashfs)"), "{err}");
}

/// An image whose data is read in place: a plain ext4 input to squashfs and
/// an ISO input to ext4 read files from the image, and the kernel lists the
/// results as the original tarball.
#[test]
fn kernel_mounts_images_built_from_images() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    build(&tiny_corpus(), &a, &["-f", "ext4,iso9660"]);
    let from_ext: PathBuf = tmp.path().join("from-ext");
    build(&a.join("rootfs.ext4"), &from_ext, &["-f", "squashfs"]);
    let from_iso: PathBuf = tmp.path().join("from-iso");
    build(&a.join("rootfs.iso9660"), &from_iso, &["-f", "ext4"]);
    let disks: [(&Path, &str); 2] = [
        (&from_ext.join("rootfs.squashfs"), "squashfs"),
        (&from_iso.join("rootfs.ext4"), "ext4"),
    ];
    let want = rootforge::inspect::listing(&tiny_corpus()).unwrap();
    for ((image, _), got) in disks.iter().zip(vm_listing_disks(&disks)) {
        // Both came through an ext image (the ext4 input, the ext4 output),
        // which has its lost+found; the tiny corpus has none.
        let got: Vec<Line> = got
            .into_iter()
            .filter(|l| l.path != "/lost+found")
            .collect();
        assert_same_listing(&image.display().to_string(), &got, &want);
    }
}

#[test]
fn a_broken_image_input_is_an_error_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    build(&tiny_corpus(), &a, &["-f", "squashfs"]);
    let image = a.join("rootfs.squashfs");
    let mut bytes = std::fs::read(&image).unwrap();
    bytes.truncate(bytes.len() / 2);
    let cut = tmp.path().join("cut.squashfs");
    std::fs::write(&cut, bytes).unwrap();
    let out = tmp.path().join("out");
    let res = rootforge()
        .args(["build", "-q", "-f", "ext4", "-o"])
        .arg(&out)
        .arg(&cut)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("cut.squashfs"), "{err}");
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
    // The same image whole is fine.
    run(rootforge()
        .args(["build", "-q", "-f", "ext4", "-o"])
        .arg(&out)
        .arg(&image));
}
