//! A build that is killed leaves nothing in its output directory: images
//! are unnamed files (`O_TMPFILE`) until every one of them is written, so
//! neither SIGKILL nor a file-size limit can leave a partial image, and
//! SIGINT and SIGTERM end the build the same way.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bad_input::Ustar;
use crate::util::rootforge;

/// A tarball with one `size`-byte file of incompressible bytes.
fn incompressible_tarball(dir: &Path, size: usize) -> PathBuf {
    let mut data = vec![0u8; size];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for b in &mut data {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> 32) as u8;
    }
    let path = dir.join("in.tar");
    std::fs::write(&path, Ustar::new().file("blob", &data).finish()).unwrap();
    path
}

fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Waits until `child` holds a file open in `dir` (an unnamed one shows
/// in /proc as `DIR/#INODE (deleted)`), so it is killed mid-write.
fn wait_for_output(child: &mut Child, dir: &Path) {
    let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
    let start = Instant::now();
    loop {
        let writing = std::fs::read_dir(&fds).is_ok_and(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .any(|target| target.starts_with(dir))
        });
        if writing {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the build ended ({status}) before it was seen writing");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the build opened no file in {} within 120 s",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_file_size_limit_kills_the_build_and_leaves_nothing() {
    // The limit (1 MiB) falls inside every image: the process gets SIGXFSZ,
    // which kills it, mid-write.
    let dir = tempfile::tempdir().unwrap();
    let input = incompressible_tarball(dir.path(), 4 << 20);
    let out = dir.path().join("out");
    let status = Command::new("bash")
        .arg("-c")
        .arg("ulimit -f 1024; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_rootforge"))
        .args(["build", "-q", "-f", "cpio,tar,squashfs,ext4,iso9660", "-o"])
        .arg(&out)
        .arg(&input)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(25), "killed by SIGXFSZ: {status}");
    assert_eq!(entries(&out), Vec::<String>::new());
}

#[test]
fn a_build_killed_mid_write_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // xz over 48 MiB of noise on one thread: several seconds of writing.
    let input = incompressible_tarball(dir.path(), 48 << 20);
    for (signal, number) in [("KILL", 9), ("TERM", 15), ("INT", 2)] {
        let out = dir.path().join(format!("out-{signal}"));
        std::fs::create_dir(&out).unwrap();
        // An older image of the same name stays as it was.
        std::fs::write(out.join("rootfs.squashfs"), b"old").unwrap();
        let mut child = rootforge()
            .args(["build", "-q", "-j", "1", "-f", "squashfs,tar"])
            .args(["--squashfs-comp", "xz", "-o"])
            .arg(&out)
            .arg(&input)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_output(&mut child, &out);
        let kill = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(number), "SIG{signal}: {status}");
        assert_eq!(entries(&out), ["rootfs.squashfs"], "SIG{signal}");
        assert_eq!(std::fs::read(out.join("rootfs.squashfs")).unwrap(), b"old");
    }
}
