//! Faults on the output side: a full disk, a read-only directory, an output
//! path that is a file, one image of several failing. Each gives a clear
//! error, exit status 1, and leaves nothing of any image behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::bad_input::Ustar;
use crate::util::rootforge;

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

#[test]
fn full_disk() {
    let src = tempfile::tempdir().unwrap();
    let input = tarball_with(src.path(), 4 << 20);
    let disk = Mount::tmpfs("size=1m");
    let err = failed(&build(&input, disk.path(), "cpio,tar"));
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains("rootfs.cpio") || err.contains("rootfs.tar"),
        "{err}"
    );
    assert_eq!(names_in(disk.path()), Vec::<String>::new());
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

#[test]
fn read_only_output_directory() {
    let src = tempfile::tempdir().unwrap();
    let input = tarball_with(src.path(), 4 << 10);
    // Root ignores permission bits, so a read-only mount it is.
    let ro = Mount::tmpfs("ro,size=1m");
    let err = failed(&build(&input, ro.path(), "cpio,tar"));
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(err.contains(&ro.path().display().to_string()), "{err}");
    assert_eq!(names_in(ro.path()), Vec::<String>::new());

    // A missing output directory under it cannot be created either.
    let sub = ro.path().join("images");
    let err = failed(&build(&input, &sub, "cpio"));
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
    let err = failed(&build(&input, &file, "cpio,tar"));
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    assert_eq!(names_in(dir.path()), ["images", "in.tar"]);
}

#[test]
fn image_name_taken_by_a_directory() {
    // rootfs.tar cannot be renamed over a directory: rootfs.cpio must not
    // be put in place either.
    let dir = tempfile::tempdir().unwrap();
    let input = tarball_with(dir.path(), 4 << 10);
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("rootfs.tar/keep")).unwrap();
    let err = failed(&build(&input, &out, "cpio,tar"));
    assert!(err.contains("rootfs.tar"), "{err}");
    assert_eq!(names_in(&out), ["rootfs.tar"]);
    assert_eq!(names_in(&out.join("rootfs.tar")), ["keep"]);
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
