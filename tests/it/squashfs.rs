//! squashfs images end to end: our reader, unsquashfs (listing and
//! extraction as root, with xattrs), for every compressor.

use std::process::Command;
use std::sync::Arc;

use crate::util::*;

const COMPRESSORS: [&str; 6] = ["gzip", "lzo", "xz", "lz4", "zstd", "none"];

/// The corner cases and the tiny corpus with every compressor: our reader
/// gives back the input entry for entry with its xattrs; `unsquashfs -lln`
/// lists every entry; unsquashfs extracts (as root, with xattrs) a tree
/// whose listing and xattrs are the input's.
#[test]
fn squashfs_images_read_back_the_input() {
    let unsquashfs = require_tool("unsquashfs");
    let tmp = tempfile::tempdir().unwrap();
    for input in [corner_tar(tmp.path(), &[]), tiny_corpus()] {
        let expected = inspect(&input);
        let want_xattrs = xattrs(&tar_tree(&input));
        for comp in COMPRESSORS {
            let what = format!("{} {comp}", input.display());
            let out = tmp.path().join("out");
            build(&input, &out, &["-f", "squashfs", "--squashfs-comp", comp]);
            let image = out.join("rootfs.squashfs");
            assert_same(&what, &expected, &inspect(&image));
            let data: rootforge::common::Backing = Arc::new(std::fs::read(&image).unwrap());
            let tree = rootforge::squashfs::read(data).unwrap();
            assert_eq!(xattrs(&tree), want_xattrs, "{what}: our reader's xattrs");

            let listed = run(Command::new(&unsquashfs).arg("-lln").arg(&image));
            // One line per entry below the root, which it names squashfs-root.
            let lines = String::from_utf8_lossy(&listed)
                .lines()
                .filter(|l| l.contains("squashfs-root"))
                .count();
            assert_eq!(lines, expected.len(), "{what}: unsquashfs -lln");

            let x = tmp.path().join("x");
            run(Command::new(&unsquashfs)
                .args(["-q", "-n", "-d"])
                .arg(&x)
                .arg(&image));
            assert_same(&format!("unsquashfs {what}"), &expected, &dir_listing(&x));
            let opts = rootforge::input::Options::default();
            let host = rootforge::input::read_dir(&x, &opts).unwrap().tree;
            assert_eq!(xattrs(&host), want_xattrs, "{what}: extracted xattrs");
            for d in [&out, &x] {
                std::fs::remove_dir_all(d).unwrap();
            }
        }
    }
}
