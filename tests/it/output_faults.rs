//! Faults on the output side: a full disk, a read-only directory, an output
//! path that is a file, one image of several failing. Each gives a clear
//! error, exit status 1, and leaves nothing of any image behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::bad_input::Ustar;
use crate::util::{require_tool, rootforge};

/// A tmpfs mounted for one test, unmounted when dropped (even when the test
/// fails).
struct Mount {
    dir: tempfile::TempDir,
}

impl Mount {
    /// Mounts a tmpfs with `options` (e.g. `size=1m`). Tests run as root
    /// here and in CI; a refused mount fails the test rather than skipping.
    fn tmpfs(options: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "rootforge-test"])
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs ({options}) on {}: {} (these tests need root and mount permission)",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Mount { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A tarball with one `size`-byte file of incompressible bytes.
fn tarball_with(dir: &Path, size: usize) -> PathBuf {
    let mut data = vec![0u8; size];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in &mut data {
        // xorshift: incompressible, deterministic.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let path = dir.join("in.tar");
    std::fs::write(&path, Ustar::new().file("blob", &data).finish()).unwrap();
    path
}

fn build(input: &Path, out: &Path, formats: &str) -> Output {
    rootforge()
        .args(["build", "-q", "-f", formats, "-o"])
        .arg(out)
        .arg(input)
        .output()
        .unwrap()
}

/// Expects exit status 1 and no panic; returns stderr.
fn failed(res: &Output) -> String {
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert_eq!(res.status.code(), Some(1), "expected exit 1: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every format rootforge writes.
const ALL: &str = "cpio,tar,squashfs,ext2,ext3,ext4,iso9660";

#[test]
fn full_disk() {
    let src = tempfile::tempdir().unwrap();
    let input = tarball_with(src.path(), 4 << 20);
    let disk = Mount::tmpfs("size=1m");
    let err = failed(&build(&input, disk.path(), ALL));
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("rootfs."), "{err}");
    assert_eq!(names_in(disk.path()), Vec::<String>::new());
}

/// Each format alone, with the disk full halfway through its image: a 4
/// MiB incompressible file and 2 MiB of room, so the failure comes after
/// the first megabytes are written (squashfs before its superblock, ext
/// after sparse skips, iso9660 in its file data).
#[test]
fn full_disk_in_the_middle_of_each_image() {
    let src = tempfile::tempdir().unwrap();
    let input = tarball_with(src.path(), 4 << 20);
    for format in ALL.split(',') {
        let disk = Mount::tmpfs("size=2m");
        let err = failed(&build(&input, disk.path(), format));
        assert!(err.contains("No space left on device"), "{format}: {err}");
        assert!(err.contains(&format!("rootfs.{format}")), "{format}: {err}");
        assert_eq!(names_in(disk.path()), Vec::<String>::new(), "{format}");
    }
}

#[test]
fn full_disk_after_one_image_fits() {
    // Either image fits on its own; both do not. Whichever fails, the other
    // must not be left behind.
    let src = tempfile::tempdir().unwrap();
    let input = tarball_with(src.path(), 600 << 10);
    let disk = Mount::tmpfs("size=1m");
    let err = failed(&build(&input, disk.path(), "cpio,tar"));
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(names_in(disk.path()), Vec::<String>::new());

    // The same input fits one image at a time.
    let ok = build(&input, disk.path(), "cpio");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(names_in(disk.path()), ["rootfs.cpio"]);
}

/// Room for the squashfs image (600 KiB, incompressible) but not for it
/// and an ext4 image as well: whichever is written first, neither stays.
#[test]
fn full_disk_after_a_squashfs_image_fits() {
    let src = tempfile::tempdir().unwrap();
    let input = tarball_with(src.path(), 600 << 10);
    let disk = Mount::tmpfs("size=1m");
    let err = failed(&build(&input, disk.path(), "squashfs,ext4,iso9660"));
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(names_in(disk.path()), Vec::<String>::new());

    let ok = build(&input, disk.path(), "squashfs");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(names_in(disk.path()), ["rootfs.squashfs"]);
}

#[test]
fn read_only_output_directory() {
    let src = tempfile::tempdir().unwrap();
    let input = tarball_with(src.path(), 4 << 10);
    // Root ignores permission bits, so a read-only mount it is.
    let ro = Mount::tmpfs("ro,size=1m");
    for formats in std::iter::once(ALL).chain(ALL.split(',')) {
        let err = failed(&build(&input, ro.path(), formats));
        assert!(err.contains("Read-only file system"), "{formats}: {err}");
        assert!(
            err.contains(&ro.path().display().to_string()),
            "{formats}: {err}"
        );
        assert_eq!(names_in(ro.path()), Vec::<String>::new());
    }

    // A missing output directory under it cannot be created either.
    let sub = ro.path().join("images");
    let err = failed(&build(&input, &sub, ALL));
    assert!(
        err.contains("Read-only file system") && err.contains("images"),
        "{err}"
    );
}

#[test]
fn output_path_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = tarball_with(dir.path(), 4 << 10);
    let file = dir.path().join("images");
    std::fs::write(&file, b"precious").unwrap();
    for formats in std::iter::once(ALL).chain(ALL.split(',')) {
        let err = failed(&build(&input, &file, formats));
        assert!(
            err.contains(&file.display().to_string()),
            "{formats}: {err}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"precious");
        assert_eq!(names_in(dir.path()), ["images", "in.tar"]);
    }
}

#[test]
fn image_name_taken_by_a_directory() {
    // One image cannot be renamed over a directory: no other image may be
    // put in place either.
    let dir = tempfile::tempdir().unwrap();
    let input = tarball_with(dir.path(), 4 << 10);
    for format in ALL.split(',') {
        let out = dir.path().join("out");
        let taken = format!("rootfs.{format}");
        std::fs::create_dir_all(out.join(&taken).join("keep")).unwrap();
        let err = failed(&build(&input, &out, ALL));
        assert!(err.contains(&taken), "{err}");
        assert_eq!(names_in(&out), [taken.as_str()]);
        assert_eq!(names_in(&out.join(&taken)), ["keep"]);
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn one_image_refused_leaves_nothing() {
    // A 5 GiB sparse file: tar holds it, newc cpio (32-bit sizes) cannot.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("var")).unwrap();
    std::fs::File::create(root.join("var/big"))
        .unwrap()
        .set_len(5 << 30)
        .unwrap();
    let out = dir.path().join("out");
    let err = failed(&build(&root, &out, "cpio,tar"));
    assert!(
        err.contains("rootfs.cpio") && err.contains("/var/big") && err.contains("5368709120"),
        "{err}"
    );
    if out.exists() {
        assert_eq!(names_in(&out), Vec::<String>::new());
    }
}

#[test]
fn one_image_of_every_format_refused_leaves_nothing() {
    // A 254-byte name: every format holds it but iso9660, whose Rock Ridge
    // names Linux cuts at 253 bytes.
    let dir = tempfile::tempdir().unwrap();
    let name = "n".repeat(254);
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc").join(&name), b"long").unwrap();
    let out = dir.path().join("out");
    let err = failed(&build(&root, &out, ALL));
    // Long paths are elided in messages: their start, their end, their length.
    assert!(
        err.contains("rootfs.iso9660: /etc/nnnn")
            && err.contains("nnnn (259 bytes): name length is 254, but iso9660 allows at most 253"),
        "{err}"
    );
    if out.exists() {
        assert_eq!(names_in(&out), Vec::<String>::new());
    }
}

/// Planning errors come before any output exists: traced with strace, a
/// refused build opens no file for writing in the output directory.
#[test]
fn planning_errors_open_no_output_file() {
    let strace = require_tool("strace");
    let dir = tempfile::tempdir().unwrap();
    let input = tarball_with(dir.path(), 64 << 10);
    let long = dir.path().join("long");
    std::fs::create_dir_all(long.join("etc")).unwrap();
    std::fs::write(long.join("etc").join("n".repeat(254)), b"long").unwrap();
    let cases: [(&Path, &[&str], &str); 3] = [
        (
            &input,
            &["-f", "cpio,ext4", "--ext-size", "64K"],
            "ext4 cannot store the tree in 65536 bytes",
        ),
        (
            &input,
            &[
                "-f",
                "cpio,iso9660",
                "--iso-initrd",
                "--iso-kernel",
                "/nonexistent/bzImage",
            ],
            "--iso-kernel /nonexistent/bzImage",
        ),
        (&long, &["-f", ALL], "iso9660 allows at most 253"),
    ];
    for (input, args, expected) in cases {
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let log = dir.path().join("strace.log");
        let res = Command::new(&strace)
            .args(["-f", "-qq", "-e", "trace=open,openat,openat2,creat", "-o"])
            .arg(&log)
            .arg(env!("CARGO_BIN_EXE_rootforge"))
            .args(["build", "-q"])
            .args(args)
            .arg("-o")
            .arg(&out)
            .arg(input)
            .output()
            .unwrap();
        let err = failed(&res);
        assert!(err.contains(expected), "{args:?}: {err}");
        let trace = std::fs::read_to_string(&log).unwrap();
        let out_text = out.to_str().unwrap();
        let writes: Vec<&str> = trace
            .lines()
            .filter(|l| l.contains(out_text))
            .filter(|l| {
                ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TMPFILE"]
                    .iter()
                    .any(|f| l.contains(f))
            })
            .collect();
        assert!(
            writes.is_empty(),
            "{args:?}: opened for writing: {writes:#?}"
        );
        // The trace saw the process at all: it opened its input.
        assert!(trace.contains("openat("), "{args:?}: empty trace");
        assert_eq!(names_in(&out), Vec::<String>::new());
        std::fs::remove_dir_all(&out).unwrap();
    }
}
