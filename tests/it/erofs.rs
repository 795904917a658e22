//! erofs images checked three ways: erofs-utils (`fsck.erofs --extract`
//! extracts the input's tree, `dump.erofs` reads the superblock), our own
//! reader, and the Linux kernel, which mounts an image of the tiny corpus
//! and of the corner tree with every compressor.

use std::path::{Path, PathBuf};
use std::process::Command;

use rootforge::common::listing::Line;

use crate::util::{assert_same, build, corner_tar, dir_listing, require_tool, tiny_corpus};
use crate::vm::{assert_same_listing, vm_listing_disks};

/// The inputs: the tiny corpus and the corner tree.
fn inputs(tmp: &Path) -> Vec<PathBuf> {
    vec![tiny_corpus(), corner_tar(tmp, &[])]
}

/// Lines with the setuid and setgid bits cleared: fsck.erofs 1.5 restores
/// the mode before the owner, and the chown clears them (the kernel's
/// listing checks them).
fn without_set_id(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| {
            let mut parts: Vec<String> = l.splitn(3, ' ').map(str::to_owned).collect();
            if let Some(perm) = parts.get_mut(1).and_then(|p| {
                let v = u16::from_str_radix(p, 8).ok()?;
                Some((p, v))
            }) {
                let (p, v) = perm;
                *p = format!("{:04o}", v & !0o6000);
            }
            parts.join(" ")
        })
        .collect()
}

fn listing(path: &Path) -> Vec<String> {
    rootforge::inspect::listing(path)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Builds `input` as erofs with `args` into `dir` and returns the image.
fn erofs(input: &Path, dir: &Path, args: &[&str]) -> PathBuf {
    let mut all = vec!["-f", "erofs"];
    all.extend_from_slice(args);
    build(input, dir, &all);
    dir.join("rootfs.erofs")
}

/// erofs-utils 1.5 (Debian's) decompresses lz4 and lzma only; deflate and
/// zstd images are checked by our reader and the kernel.
#[test]
fn fsck_erofs_extracts_the_input_tree() {
    require_tool("fsck.erofs");
    let tmp = tempfile::tempdir().unwrap();
    for (n, input) in inputs(tmp.path()).iter().enumerate() {
        let want = listing(input);
        for args in [
            &["--erofs-compress", "none"][..],
            &["--erofs-compress", "lz4"],
            &["--erofs-compress", "lz4hc", "--erofs-pcluster-size", "64K"],
        ] {
            let dir = tmp.path().join(format!("{n}-{}", args.join("-")));
            let image = erofs(input, &dir, args);
            let out = dir.join("x");
            let res = Command::new("fsck.erofs")
                .arg(format!("--extract={}", out.display()))
                .arg(&image)
                .output()
                .unwrap();
            assert!(
                res.status.success(),
                "fsck.erofs {args:?} of {}: {}{}",
                input.display(),
                String::from_utf8_lossy(&res.stdout),
                String::from_utf8_lossy(&res.stderr)
            );
            assert_same(
                &format!("fsck.erofs --extract of {} ({args:?})", input.display()),
                &without_set_id(want.clone()),
                &without_set_id(dir_listing(&out)),
            );
            // Our reader agrees too.
            assert_same(
                &format!("{} read back", image.display()),
                &want,
                &listing(&image),
            );
        }
    }
}

/// Our reader reads what mkfs.erofs writes (compact indexes by default):
/// the tiny corpus, extracted as root and packed by mkfs.erofs, lists as the
/// tarball.
#[test]
fn our_reader_reads_mkfs_erofs_images() {
    require_tool("mkfs.erofs");
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let st = Command::new("tar")
        .args(["-xpf"])
        .arg(tiny_corpus())
        .arg("-C")
        .arg(&tree)
        .arg("--numeric-owner")
        .status()
        .unwrap();
    assert!(st.success());
    let want = dir_listing(&tree);
    for args in [&[][..], &["-zlz4"], &["-zlz4hc,12", "-C65536"]] {
        let image = tmp.path().join(format!("m{}.erofs", args.len()));
        let out = Command::new("mkfs.erofs")
            .args(args)
            .arg(&image)
            .arg(&tree)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // mkfs.erofs stamps the root with the time it ran; the rest is the
        // extracted tree.
        let strip = |l: Vec<String>| -> Vec<String> {
            l.into_iter().filter(|l| !l.ends_with(" /")).collect()
        };
        assert_same(
            &format!("mkfs.erofs {args:?}"),
            &strip(want.clone()),
            &strip(listing(&image)),
        );
    }
}

#[test]
fn dump_erofs_reads_the_superblock() {
    require_tool("dump.erofs");
    let tmp = tempfile::tempdir().unwrap();
    let image = erofs(
        &tiny_corpus(),
        tmp.path(),
        &["--erofs-uuid", "01234567-89ab-cdef-0123-456789abcdef"],
    );
    let out = Command::new("dump.erofs")
        .arg("-s")
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let blocks = std::fs::metadata(&image).unwrap().len() / 4096;
    assert!(text.contains("0xE0F5E1E2"), "{text}");
    assert!(
        text.contains(&format!(
            "Filesystem blocks:                            {blocks}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("01234567-89ab-cdef-0123-456789abcdef"),
        "{text}"
    );
    assert!(text.contains("sb_csum"), "{text}");
}

/// Every compressor, and big pclusters, mounted by Debian's kernel: the
/// listing matches the input's entry for entry.
#[test]
fn kernel_mounts_every_compressor() {
    let tmp = tempfile::tempdir().unwrap();
    let variants: [&[&str]; 10] = [
        &["--erofs-compress", "none", "--erofs-block-size", "512"],
        &["--erofs-compress", "none", "--erofs-block-size", "1K"],
        &["--erofs-compress", "lz4", "--erofs-block-size", "2K"],
        &["--erofs-compress", "none"],
        &["--erofs-compress", "lz4"],
        &["--erofs-compress", "lz4hc"],
        &["--erofs-compress", "deflate"],
        &["--erofs-compress", "zstd"],
        &["--erofs-compress", "lz4hc", "--erofs-pcluster-size", "64K"],
        &[
            "--erofs-compress",
            "zstd",
            "--erofs-pcluster-size",
            "1M",
            "--erofs-level",
            "19",
        ],
    ];
    let mut images = Vec::new();
    let mut wants: Vec<Vec<Line>> = Vec::new();
    for (n, input) in inputs(tmp.path()).iter().enumerate() {
        let want = rootforge::inspect::listing(input).unwrap();
        for (k, args) in variants.iter().enumerate() {
            let dir = tmp.path().join(format!("{n}-{k}"));
            images.push(erofs(input, &dir, args));
            wants.push(want.clone());
        }
    }
    let disks: Vec<(&Path, &str)> = images.iter().map(|p| (p.as_path(), "erofs")).collect();
    for (((image, _), got), want) in disks.iter().zip(vm_listing_disks(&disks)).zip(&wants) {
        assert_same_listing(&image.display().to_string(), &got, want);
    }
}
