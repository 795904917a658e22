//! ext2/ext3/ext4 images end to end: e2fsck, our reader, debugfs, xattrs,
//! and the errors for what does not fit.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use crate::util::*;

const VARIANTS: [&str; 3] = ["ext2", "ext3", "ext4"];

fn without_lost_found(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .filter(|l| !l.ends_with(" /lost+found"))
        .collect()
}

fn e2fsck_clean(image: &Path) {
    let out = Command::new(require_tool("e2fsck"))
        .args(["-fn"])
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "e2fsck -fn {}: {}\n{}",
        image.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Each variant at 1 KiB and 4 KiB blocks, on the corner cases and the
/// tiny corpus: e2fsck finds nothing, and our reader gives back the input
/// entry for entry, xattrs included. (The corner cases' 4095-byte symlink
/// target needs 4 KiB blocks: see `what_does_not_fit_is_refused`.)
#[test]
fn ext_images_are_clean_and_read_back_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = [
        (corner_tar(tmp.path(), &[]), &["4096"][..]),
        (tiny_corpus(), &["1024", "4096"][..]),
    ];
    for (input, sizes) in runs {
        let expected = inspect(&input);
        let want_xattrs = xattrs(&tar_tree(&input));
        for &bs in sizes {
            let out = tmp.path().join(format!("out-{bs}"));
            build(
                &input,
                &out,
                &["-f", "ext2,ext3,ext4", "--ext-block-size", bs],
            );
            for v in VARIANTS {
                let image = out.join(format!("rootfs.{v}"));
                e2fsck_clean(&image);
                let what = format!("{} {v} {bs}", input.display());
                assert_same(&what, &expected, &without_lost_found(inspect(&image)));
                let data: rootforge::common::Backing = Arc::new(std::fs::read(&image).unwrap());
                let tree = rootforge::ext::read(data).unwrap();
                assert_eq!(xattrs(&tree), want_xattrs, "{what}");
            }
            std::fs::remove_dir_all(&out).unwrap();
        }
    }
}

/// debugfs, e2fsprogs' own reader, sees the capability, the owners and the
/// features each variant should have.
#[test]
fn debugfs_sees_what_we_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let input = corner_tar(tmp.path(), &[]);
    let out = tmp.path().join("out");
    build(
        &input,
        &out,
        &["-f", "ext2,ext3,ext4", "--ext-label", "corner"],
    );
    let debugfs = require_tool("debugfs");
    let want_cap = {
        let x = xattrs(&tar_tree(&input));
        let list = &x[&b"xattrs/capability".to_vec()];
        list.iter()
            .find(|(n, _)| n == b"security.capability")
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    for v in VARIANTS {
        let image = out.join(format!("rootfs.{v}"));
        let dump = Command::new(&debugfs)
            .args([
                "-R",
                "ea_get -f /dev/stdout /xattrs/capability security.capability",
            ])
            .arg(&image)
            .output()
            .unwrap();
        assert!(dump.status.success(), "{v}");
        assert_eq!(dump.stdout, want_cap, "{v}: security.capability");
        let stats = String::from_utf8(
            Command::new(&debugfs)
                .args(["-R", "stats"])
                .arg(&image)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(
            stats.contains("Filesystem volume name:   corner"),
            "{stats}"
        );
        let features = stats
            .lines()
            .find(|l| l.starts_with("Filesystem features:"))
            .unwrap();
        assert_eq!(
            features.contains("has_journal"),
            v != "ext2",
            "{v}: {features}"
        );
        assert_eq!(features.contains("extent"), v == "ext4", "{v}: {features}");
        assert_eq!(
            features.contains("metadata_csum"),
            v == "ext4",
            "{v}: {features}"
        );
        assert!(!features.contains("64bit"), "{v}: {features}");
    }
}

/// A fixed size is the file's exact length, sparse where nothing was
/// written; --ext-features edits the feature set like mke2fs -O.
#[test]
fn fixed_size_and_feature_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tiny_corpus();
    let out = tmp.path().join("out");
    build(
        &input,
        &out,
        &[
            "-f",
            "ext4",
            "--ext-size",
            "64M",
            "--ext-features",
            "^metadata_csum",
        ],
    );
    let image = out.join("rootfs.ext4");
    let meta = std::fs::metadata(&image).unwrap();
    assert_eq!(meta.len(), 64 << 20);
    use std::os::unix::fs::MetadataExt;
    assert!(
        meta.blocks() * 512 < 32 << 20,
        "not sparse: {} blocks",
        meta.blocks()
    );
    e2fsck_clean(&image);
    let stats = String::from_utf8(
        Command::new(require_tool("dumpe2fs"))
            .arg("-h")
            .arg(&image)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let features = stats
        .lines()
        .find(|l| l.starts_with("Filesystem features:"))
        .unwrap();
    assert!(
        features.contains("extent") && !features.contains("metadata_csum"),
        "{features}"
    );
}

/// What ext cannot hold fails before any file appears, naming the path
/// and the limit.
#[test]
fn what_does_not_fit_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let input = corner_tar(tmp.path(), &[]);
    let out = tmp.path().join("out");
    let res = rootforge()
        .args(["build", "-q", "-f", "ext4", "--ext-block-size", "1K", "-o"])
        .arg(&out)
        .arg(&input)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert!(
        err.contains("/symlinks/len-4095") && err.contains("1023"),
        "{err}"
    );
    assert!(!out.join("rootfs.ext4").exists());
}

/// Too small a size or inode count fails before any file appears, saying
/// what the tree needs.
#[test]
fn too_small_says_what_it_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tiny_corpus();
    for args in [&["--ext-size", "1M"][..], &["--ext-inodes", "10"][..]] {
        let out = tmp.path().join("out");
        let res = rootforge()
            .args(["build", "-q", "-f", "cpio,ext4", "-o"])
            .arg(&out)
            .arg(&input)
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "{args:?}");
        assert!(
            err.contains("needs") && err.contains("bytes") && err.contains("inodes"),
            "{err}"
        );
        let left: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}
