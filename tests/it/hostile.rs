//! Crafted hostile tarballs: each gives either a clear error (exit 1, the
//! member named, nothing left behind) or a faithful image, never a panic,
//! and costs memory in proportion to its metadata, not its declared sizes.

use std::io::Write;
use std::path::Path;
use std::process::Output;
use std::time::Instant;

use crate::bad_input::Ustar;
use crate::util::{assert_same, inspect, require_tool, rootforge};

/// One member with a byte-string name and link (`Ustar::entry` takes text).
fn raw(mut t: Ustar, name: &[u8], kind: u8, data: &[u8], link: &[u8]) -> Ustar {
    t.0.extend_from_slice(&Ustar::header(name, kind, data.len() as u64, link));
    t.0.extend_from_slice(data);
    t.0.resize(t.0.len().next_multiple_of(512), 0);
    t
}

/// A pax extended header (`x`) holding `records`, for the next member.
fn pax(t: Ustar, records: &[(&[u8], &[u8])]) -> Ustar {
    let mut data = Vec::new();
    for (k, v) in records {
        data.extend_from_slice(&pax_record(k, v));
    }
    raw(t, b"PaxHeader", b'x', &data, b"")
}

/// `"<len> <key>=<value>\n"`, where `len` counts itself.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} ").into_bytes();
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// A header whose 12-byte size field is replaced by `size`.
fn with_size_field(name: &str, size: [u8; 12]) -> Vec<u8> {
    let mut h = Ustar::header(name.as_bytes(), b'0', 0, b"");
    h[124..136].copy_from_slice(&size);
    Ustar::fix_checksum(&mut h);
    let mut t = Ustar::new();
    t.0.extend_from_slice(&h);
    t.0.extend_from_slice(&[0u8; 512]);
    t.finish()
}

fn mode(mut t: Ustar, perm: &[u8; 8]) -> Ustar {
    let at = t.0.len() - 512;
    let h: &mut [u8; 512] = (&mut t.0[at..]).try_into().unwrap();
    h[100..108].copy_from_slice(perm);
    Ustar::fix_checksum(h);
    t
}

/// A rootforge run measured by `/usr/bin/time`: its output, peak RSS in KiB
/// and wall time in seconds.
pub(crate) fn measured(args: &[&std::ffi::OsStr]) -> (Output, u64, f64) {
    let time = require_tool("time");
    let report = tempfile::NamedTempFile::new().unwrap();
    let start = Instant::now();
    let out = std::process::Command::new(time)
        .args(["-f", "%M", "-o"])
        .arg(report.path())
        .arg(rootforge().get_program())
        .args(args)
        .output()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(report.path()).unwrap();
    // On failure `time` writes "Command exited with non-zero status" first.
    let rss = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("unreadable /usr/bin/time report {text:?}"));
    (out, rss, secs)
}

/// Writes `tar` to a temporary directory and builds `formats` from it.
fn build(tar: &[u8], formats: &str) -> (tempfile::TempDir, Output, u64) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.tar");
    std::fs::write(&input, tar).unwrap();
    let out = dir.path().join("out");
    let (res, rss, _) = measured(&[
        "build".as_ref(),
        "-q".as_ref(),
        "-f".as_ref(),
        formats.as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        input.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (dir, res, rss)
}

/// Builds `formats` and expects an exit status of 1, nothing in
/// the output directory and a peak RSS under `max_mib`. Returns stderr.
fn fails(tar: &[u8], formats: &str, max_mib: u64) -> String {
    let (dir, res, rss) = build(tar, formats);
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert_eq!(res.status.code(), Some(1), "expected exit 1: {stderr}");
    let out = dir.path().join("out");
    if let Ok(rd) = std::fs::read_dir(&out) {
        let left: Vec<_> = rd.map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "output left behind: {left:?}");
    }
    assert!(rss < max_mib << 10, "peak RSS {rss} KiB over {max_mib} MiB");
    stderr
}

/// Every format rootforge writes, as `-f` names them.
const ALL: &str = "cpio,tar,squashfs,ext2,ext3,ext4,iso9660";

/// Peak RSS allowed for a small crafted tarball and every image of it
/// (7 MiB measured for a few entries: the ext3 and ext4 images, 4 MiB,
/// are the largest); anything near this bound means a declared size was
/// believed.
const SMALL_MIB: u64 = 32;

fn fails_with(tar: &[u8], expected: &[&str]) {
    let err = fails(tar, ALL, SMALL_MIB);
    for e in expected {
        assert!(err.contains(e), "{e:?} not in: {err}");
    }
}

/// Builds every image and checks that each lists exactly as the input
/// does. Returns that listing.
fn faithful(tar: &[u8]) -> Vec<String> {
    faithful_in(tar, ALL)
}

/// Builds `formats` and checks that each image lists exactly as the input
/// does (ext images add `/lost+found`). Returns that listing.
fn faithful_in(tar: &[u8], formats: &str) -> Vec<String> {
    let (dir, res, rss) = build(tar, formats);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(
        rss < SMALL_MIB << 10,
        "peak RSS {rss} KiB over {SMALL_MIB} MiB"
    );
    let expected = inspect(&dir.path().join("in.tar"));
    for format in formats.split(',') {
        let image = format!("rootfs.{format}");
        let got = inspect(&dir.path().join("out").join(&image));
        assert_same(&image, &expected, &without_lost_found(format, got));
    }
    expected
}

/// An ext image's listing without the `/lost+found` mke2fs-style images
/// always have; other listings unchanged.
fn without_lost_found(format: &str, lines: Vec<String>) -> Vec<String> {
    if !format.starts_with("ext") {
        return lines;
    }
    let before = lines.len();
    let rest: Vec<String> = lines
        .into_iter()
        .filter(|l| !l.ends_with(" /lost+found"))
        .collect();
    assert_eq!(rest.len() + 1, before, "{format}: no /lost+found");
    rest
}

/// The listing line of `path`, if any.
fn line<'a>(listing: &'a [String], path: &str) -> Option<&'a str> {
    listing
        .iter()
        .map(String::as_str)
        // The path is the last field; it and a symlink target may hold
        // spaces, but no test path has one before a `/`.
        .find(|l| l.strip_suffix(path).is_some_and(|r| r.ends_with(' ')))
}

#[test]
fn path_traversal_is_refused() {
    for name in ["../x", "a/../../x", "./../x", "a/b/../c"] {
        let tar = Ustar::new().file(name, b"x").finish();
        let shown = format!("/{name}");
        fails_with(&tar, &["`..`", &shown]);
    }
}

#[test]
fn absolute_paths_are_rooted() {
    let tar = Ustar::new()
        .file("/etc/x", b"abs")
        .file("//etc///y", b"y")
        .finish();
    let listing = faithful(&tar);
    assert!(line(&listing, "/etc/x").is_some_and(|l| l.starts_with("f 0644 ")));
    assert!(line(&listing, "/etc/y").is_some());
    assert!(line(&listing, "/etc").is_some_and(|l| l.starts_with("d ")));
}

#[test]
fn symlink_to_root_used_as_parent() {
    let tar = Ustar::new()
        .entry("etc", b'2', b"", "/")
        .file("etc/passwd", b"root::0:0::/:/bin/sh\n")
        .finish();
    fails_with(
        &tar,
        &["/etc: is a symlink but is used as a parent directory"],
    );
}

#[test]
fn later_entry_replaces_symlink() {
    let tar = Ustar::new()
        .entry("bin/sh", b'2', b"", "busybox")
        .file("bin/sh", b"#!real\n")
        .finish();
    let listing = faithful(&tar);
    assert!(line(&listing, "/bin/sh").is_some_and(|l| l.starts_with("f ")));
    assert_eq!(listing.iter().filter(|l| l.starts_with("l ")).count(), 0);
}

#[test]
fn hard_link_to_symlink() {
    let tar = Ustar::new()
        .entry("lib/ld.so", b'2', b"", "ld-2.36.so")
        .entry("lib64/ld.so", b'1', b"", "lib/ld.so")
        .finish();
    let listing = faithful(&tar);
    for p in ["/lib/ld.so", "/lib64/ld.so"] {
        let l = line(&listing, p).unwrap_or_else(|| panic!("{p} missing: {listing:?}"));
        assert!(l.starts_with("l 0644 0 0 10 ld-2.36.so "), "{l}");
    }
}

#[test]
fn hard_link_through_symlinked_parent() {
    let base = || {
        Ustar::new()
            .file("usr/lib/libc.so", b"elf")
            .entry("lib", b'2', b"", "usr/lib")
    };
    // The target is only reachable by following the symlink.
    fails_with(
        &base().entry("libc", b'1', b"", "lib/libc.so").finish(),
        &["/libc", "/lib/libc.so", "does not exist"],
    );
    // The link's own parent is the symlink.
    fails_with(
        &base()
            .entry("lib/libc2.so", b'1', b"", "usr/lib/libc.so")
            .finish(),
        &["/lib: is a symlink but is used as a parent directory"],
    );
}

#[test]
fn duplicate_entries_of_different_types() {
    // A file over a directory drops the directory and its children.
    let listing = faithful(
        &Ustar::new()
            .entry("a/", b'5', b"", "")
            .file("a/child", b"c")
            .file("a", b"now a file")
            .finish(),
    );
    assert!(line(&listing, "/a").is_some_and(|l| l.starts_with("f 0644 0 0 10 ")));
    assert!(line(&listing, "/a/child").is_none(), "{listing:?}");

    // A directory over a file.
    let listing = faithful(
        &Ustar::new()
            .file("a", b"file")
            .entry("a/", b'5', b"", "")
            .file("a/child", b"c")
            .finish(),
    );
    assert!(line(&listing, "/a").is_some_and(|l| l.starts_with("d ")));
    assert!(line(&listing, "/a/child").is_some());

    // A directory over a directory keeps the children, takes the new mode.
    let t = mode(Ustar::new().entry("a/", b'5', b"", ""), b"0000700\0").file("a/child", b"c");
    let listing = faithful(&mode(t.entry("a/", b'5', b"", ""), b"0000750\0").finish());
    assert!(line(&listing, "/a").is_some_and(|l| l.starts_with("d 0750 ")));
    assert!(line(&listing, "/a/child").is_some(), "{listing:?}");
}

#[test]
fn giant_declared_sizes() {
    let mut base256_max = [0xffu8; 12];
    base256_max[..4].copy_from_slice(&[0x80, 0, 0, 0]);
    let mut base256_2_63 = [0u8; 12];
    base256_2_63[0] = 0x80;
    base256_2_63[4] = 0x80;
    for size in [*b"77777777777\0", base256_2_63, base256_max] {
        fails_with(&with_size_field("huge", size), &["/huge", "past the end"]);
    }
    let mut base256_over_u64 = [0u8; 12];
    base256_over_u64[0] = 0x80;
    base256_over_u64[3] = 1;
    fails_with(
        &with_size_field("huge", base256_over_u64),
        &["/huge: bad size field"],
    );
    let pax_2_63 = pax(Ustar::new(), &[(b"size", b"9223372036854775808")])
        .file("pax-huge", b"")
        .finish();
    fails_with(&pax_2_63, &["/pax-huge", "past the end"]);
}

#[test]
fn deep_trees() {
    // 10,000 levels, a 20,001-byte path: no Linux filesystem holds it, so
    // the input refuses it (PATH_MAX) before any image is planned.
    let deep = format!("{}f", "d/".repeat(10_000));
    let tar = pax(Ustar::new(), &[(b"path", deep.as_bytes())])
        .file("placeholder", b"deep")
        .finish();
    let err = fails(&tar, ALL, 64);
    assert!(
        err.contains("(20002 bytes): the path length is 20001, but Linux allows at most 4096"),
        "{err}"
    );

    // 2,047 levels and a 4,096-byte path, the longest Linux holds.
    let dirs = "d/".repeat(2047);
    let deep = format!("{dirs}ff");
    assert_eq!(deep.len(), 4096);
    let tar = pax(Ustar::new(), &[(b"path", deep.as_bytes())])
        .file("placeholder", b"deep")
        .finish();
    // cpio names are at most 4095 bytes (4096 with their NUL).
    let err = fails(&tar, "cpio", 64);
    assert!(
        err.contains("rootfs.cpio: /d/d/")
            && err.contains("d/ff (4097 bytes): name length is 4096, but cpio allows at most 4095"),
        "{err}"
    );
    // iso9660's reader recurses, at most 1,024 directories deep.
    let err = fails(&tar, "iso9660", 64);
    // The 1,025th directory, `/d/…/d` of 2,050 bytes.
    assert!(
        err.contains("/d/d (2050 bytes): directory depth is 1025, but iso9660 allows at most 1024"),
        "{err}"
    );
    // All at once: one refusal is enough to leave nothing.
    fails(&tar, ALL, 128);

    let mut expected = None;
    for format in ["tar", "squashfs", "ext2", "ext3", "ext4"] {
        let (dir, res, rss) = build(&tar, format);
        assert!(
            res.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        eprintln!("2,047 levels: {format} peak RSS {} MiB", rss >> 10);
        assert!(rss < 128 << 10, "{format}: peak RSS {rss} KiB over 128 MiB");
        let expected = expected.get_or_insert_with(|| inspect(&dir.path().join("in.tar")));
        assert_eq!(expected.len(), 2049, "root, 2,047 directories, the file");
        assert!(line(expected, &format!("/{deep}")).is_some());
        let image = format!("rootfs.{format}");
        let got = inspect(&dir.path().join("out").join(&image));
        assert_same(&image, expected, &without_lost_found(format, got));
    }
}

/// 1,000 directories of 1,000 empty files each.
fn million_entries(path: &Path) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for d in 0..1000 {
        let dir = format!("d{d:03}/");
        w.write_all(&Ustar::header(dir.as_bytes(), b'5', 0, b""))
            .unwrap();
        for f in 0..1000 {
            let name = format!("{dir}f{f:03}");
            w.write_all(&Ustar::header(name.as_bytes(), b'0', 0, b""))
                .unwrap();
        }
    }
    w.write_all(&[0u8; 1024]).unwrap();
    w.flush().unwrap();
}

#[test]
fn a_million_entries() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("million.tar");
    million_entries(&input);
    let out = dir.path().join("out");
    // Two jobs, whatever the machine: the buffers of the images being
    // written grow with the jobs.
    let (res, rss, secs) = measured(&[
        "build".as_ref(),
        "-q".as_ref(),
        "-j".as_ref(),
        "2".as_ref(),
        "-f".as_ref(),
        ALL.as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        input.as_os_str(),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    eprintln!(
        "a million entries: every image built in {secs:.2} s, peak RSS {} MiB",
        rss >> 10
    );
    // Measured: 2.9 GiB. About 200 bytes an entry for the tree, 100 more
    // for each image's sorted path list, and the plans: every image is
    // planned, and so checked, before any is written, so all seven plans
    // are held at once, the three ext plans (about 1 KiB an entry, 1.1 GiB
    // each, inode tables included) the largest. The input itself (512 MiB
    // of headers) must not be held.
    assert!(rss < 3584 << 10, "peak RSS {rss} KiB over 3.5 GiB");

    let entries = 1 + 1000 + 1_000_000;
    let cpio = inspect(&out.join("rootfs.cpio"));
    assert_eq!(cpio.len(), entries);
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let want = format!("f 0644 0 0 0 {empty} 1740028160 /d999/f999");
    assert_eq!(cpio.last().map(String::as_str), Some(want.as_str()));
    // The ext images are not read back here: `inspect` loads an image
    // whole, and these are 4 GiB sparse files (35 s and 4.4 GiB each).
    for format in ["tar", "squashfs", "iso9660"] {
        let got = inspect(&out.join(format!("rootfs.{format}")));
        assert!(cpio == got, "cpio and {format} listings differ");
    }
}

#[test]
fn every_byte_in_names() {
    // Every byte but NUL and `/`; a lone `.` is the directory itself.
    let bytes: Vec<u8> = (1..=255u8).filter(|&b| b != b'/').collect();
    let mut t = Ustar::new();
    for &b in &bytes {
        let name = if b == b'.' { vec![b'.'; 3] } else { vec![b] };
        let mut path = b"n/".to_vec();
        path.extend_from_slice(&name);
        t = raw(t, &path, b'0', &[b], b"");
    }
    let mut all = b"n/".to_vec();
    all.extend_from_slice(&bytes);
    t = pax(t, &[(b"path", &all)]);
    t = raw(t, b"placeholder", b'0', b"all", b"");
    // And as a symlink target.
    t = pax(t, &[(b"linkpath", &bytes)]);
    let tar = raw(t, b"n/link", b'2', b"", b"placeholder").finish();
    let listing = faithful_in(&tar, "cpio,tar,squashfs,ext2,ext3,ext4");
    assert_eq!(listing.len(), 2 + bytes.len() + 2);
    // Linux cuts Rock Ridge names at 253 bytes: iso9660 refuses the 254-byte
    // name of every byte.
    let err = fails(&tar, "iso9660", SMALL_MIB);
    assert!(
        err.contains("/n/\\x01\\x02")
            && err.contains("name length is 254, but iso9660 allows at most 253"),
        "{err}"
    );
    for probe in [
        "/n/\\x0a", "/n/\\x80", "/n/\\xff", "/n/\\x5c", "/n/ ", "/n/...",
    ] {
        assert!(line(&listing, probe).is_some(), "{probe} missing");
    }
    assert!(
        line(&listing, "/n/link").is_some_and(|l| l.starts_with("l 0644 0 0 254 \\x01\\x02")),
        "{:?}",
        line(&listing, "/n/link")
    );
}

#[test]
fn pax_numbers_out_of_range() {
    let member =
        |records: &[(&[u8], &[u8])]| pax(Ustar::new(), records).file("etc/victim", b"x").finish();
    fails_with(
        &member(&[(b"uid", b"99999999999999999999")]),
        &["/etc/victim", "bad pax uid value \"99999999999999999999\""],
    );
    fails_with(
        &member(&[(b"uid", b"4294967296")]),
        &["/etc/victim", "bad pax uid"],
    );
    fails_with(
        &member(&[(b"mtime", b"1e30")]),
        &["/etc/victim", "bad pax mtime value \"1e30\""],
    );
    fails_with(
        &member(&[(b"mtime", b"1000000000000000000000000000000")]),
        &["/etc/victim", "bad pax mtime"],
    );
    fails_with(
        &member(&[(b"size", b"-1")]),
        &["/etc/victim", "bad pax size value \"-1\""],
    );
}

#[test]
fn pax_record_lengths_out_of_range() {
    let with_data = |data: &[u8]| {
        raw(Ustar::new(), b"PaxHeader", b'x', data, b"")
            .file("etc/victim", b"x")
            .finish()
    };
    // A length with more digits than any record could need.
    fails_with(
        &with_data(b"99999999999999999999999 path=x\n"),
        &["bad pax record"],
    );
    // A length that fits in 64 bits but points far past the data.
    fails_with(
        &with_data(b"9999999999999999999 path=x\n"),
        &["bad pax record: length out of range"],
    );
    fails_with(&with_data(b"99 path=x\n"), &["length out of range"]);
    // A length that cuts the record short.
    fails_with(&with_data(b"5 path=x\n"), &["bad pax record"]);
}
