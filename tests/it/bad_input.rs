//! Broken and hostile tarballs: each gives a clear error naming the member,
//! exit status 1, no panic, and nothing in the output directory.

use std::path::Path;

use crate::util::rootforge;

/// A minimal ustar writer for crafting archives byte by byte.
pub struct Ustar(pub Vec<u8>);

impl Ustar {
    pub fn new() -> Self {
        Ustar(Vec::new())
    }

    pub fn header(name: &[u8], kind: u8, size: u64, link: &[u8]) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"14755534400\0");
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        Self::fix_checksum(&mut h);
        h
    }

    pub fn fix_checksum(h: &mut [u8; 512]) {
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    pub fn entry(mut self, name: &str, kind: u8, data: &[u8], link: &str) -> Self {
        self.0.extend_from_slice(&Self::header(
            name.as_bytes(),
            kind,
            data.len() as u64,
            link.as_bytes(),
        ));
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(512), 0);
        self
    }

    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name, b'0', data, "")
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0u8; 1024]);
        self.0
    }
}

/// Runs `rootforge build` on `tar` and returns (status, stderr), checking
/// that the output directory holds nothing afterwards.
fn build_fails(tar: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.tar");
    std::fs::write(&input, tar).unwrap();
    let out = dir.path().join("out");
    let res = rootforge()
        .args(["build", "-q", "-f", "cpio,tar", "-o"])
        .arg(&out)
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert_eq!(
        res.status.code(),
        Some(1),
        "expected exit 1, stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_empty(&out);
    stderr
}

fn assert_empty(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        let left: Vec<_> = rd.map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "output left behind: {left:?}");
    }
}

#[test]
fn empty_file() {
    let err = build_fails(b"");
    assert!(err.contains("the input is empty"), "{err}");
}

#[test]
fn truncated_in_data() {
    let mut tar = Ustar::new().file("etc/big", &[7u8; 5000]).finish();
    tar.truncate(512 + 1000);
    let err = build_fails(&tar);
    assert!(
        err.contains("/etc/big") && err.contains("past the end"),
        "{err}"
    );
}

/// Cut at a header boundary the archive is read with a warning
/// (tar_input.rs); cut inside a header it is an error.
#[test]
fn truncated_inside_a_header() {
    let mut tar = Ustar::new().file("a", b"x").file("b", b"y").finish();
    tar.truncate(1024 + 300);
    let err = build_fails(&tar);
    assert!(
        err.contains("truncated") && err.contains("byte 1024"),
        "{err}"
    );
}

#[test]
fn bad_header_checksum() {
    let mut tar = Ustar::new()
        .file("etc/group", b"x")
        .file("etc/passwd", b"root")
        .finish();
    tar[1024] = b'E';
    let err = build_fails(&tar);
    assert!(
        err.contains("checksum mismatch") && err.contains("byte 1024"),
        "{err}"
    );
}

#[test]
fn not_a_tarball() {
    let err = build_fails(&[b'x'; 4096]);
    assert!(err.contains("not a tar archive"), "{err}");
}

#[test]
fn dotdot_component() {
    let err = build_fails(&Ustar::new().file("a/../../etc/shadow", b"x").finish());
    assert!(
        err.contains("`..`") && err.contains("/a/../../etc/shadow"),
        "{err}"
    );
}

#[test]
fn hard_link_to_missing_path() {
    let err = build_fails(
        &Ustar::new()
            .entry("bin/sh", b'1', b"", "bin/nowhere")
            .finish(),
    );
    assert!(
        err.contains("/bin/sh") && err.contains("/bin/nowhere") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn file_used_as_parent() {
    let err = build_fails(
        &Ustar::new()
            .file("etc", b"x")
            .file("etc/passwd", b"y")
            .finish(),
    );
    assert!(
        err.contains("/etc: is a regular file but is used as a parent directory"),
        "{err}"
    );
}

#[test]
fn symlink_used_as_parent() {
    let tar = Ustar::new()
        .entry("lib", b'2', b"", "/usr/lib")
        .file("lib/libc.so", b"y")
        .finish();
    let err = build_fails(&tar);
    assert!(
        err.contains("/lib: is a symlink but is used as a parent directory"),
        "{err}"
    );
}

#[test]
fn size_field_beyond_the_end() {
    let mut tar = Ustar::new().file("huge", b"").finish();
    let mut h: [u8; 512] = tar[..512].try_into().unwrap();
    h[124..136].copy_from_slice(b"77777777777\0");
    Ustar::fix_checksum(&mut h);
    tar[..512].copy_from_slice(&h);
    let err = build_fails(&tar);
    assert!(
        err.contains("/huge") && err.contains("past the end"),
        "{err}"
    );
}

#[test]
fn undecodable_compression() {
    // A gzip magic followed by garbage.
    let err = build_fails(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage garbage garbage");
    assert!(err.contains("gzip"), "{err}");
}

#[test]
fn missing_input_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let res = rootforge()
        .args(["build", "-q", "-o"])
        .arg(&out)
        .arg(dir.path().join("nope.tar"))
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("nope.tar"));
    assert_empty(&out);
}
