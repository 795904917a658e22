//! Broken images of every format given to `rootforge inspect`: truncated,
//! with flipped bytes, with huge counts and offsets, with directory loops.
//! Each gives exit status 1 and a clear message, or exit status 0 and the
//! intact image's listing when the damage is in bytes the reader does not
//! use; never a panic, and memory bounded by the image's size.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use crate::bad_input::Ustar;
use crate::hostile::measured;
use crate::util::{inspect, rootforge, run};

/// The formats, as `-f` names them and as the image is named.
const FORMATS: [(&str, &str); 7] = [
    ("cpio", "rootfs.cpio"),
    ("tar", "rootfs.tar"),
    ("squashfs", "rootfs.squashfs"),
    ("ext2", "rootfs.ext2"),
    ("ext3", "rootfs.ext3"),
    ("ext4", "rootfs.ext4"),
    ("iso9660", "rootfs.iso9660"),
];

/// `inspect` reads an image whole: a few MiB here. Anything near this
/// bound means a reader allocated from a count or size it was given.
const MAX_RSS_MIB: u64 = 64;

/// An intact image and its listing.
struct Good {
    name: String,
    bytes: Vec<u8>,
    listing: Vec<String>,
}

/// A small tree with every kind of entry the readers walk: nested
/// directories (`outer/loopdir`), a file spanning several 4 KiB blocks and
/// a fragment, a hard link, a fast and a slow symlink.
fn tree() -> Vec<u8> {
    let busybox: Vec<u8> = (0..9000u32).map(|i| (i * 7 % 251) as u8).collect();
    let far = "../".repeat(30) + "usr/lib/target";
    Ustar::new()
        .entry("outer/", b'5', b"", "")
        .entry("outer/loopdir/", b'5', b"", "")
        .file("outer/loopdir/f", b"inside\n")
        .file("etc/hostname", b"rootforge\n")
        .file("bin/busybox", &busybox)
        .entry("bin/sh", b'2', b"", "busybox")
        .entry("bin/ls", b'1', b"", "bin/busybox")
        .entry("bin/far", b'2', b"", &far)
        .finish()
}

/// Builds every format from [`tree`], plus an uncompressed squashfs
/// (`rootfs.squashfs-raw`) whose metadata can be patched in place.
fn good_images(dir: &Path) -> Vec<Good> {
    let input = dir.join("in.tar");
    std::fs::write(&input, tree()).unwrap();
    let all: Vec<&str> = FORMATS.iter().map(|f| f.0).collect();
    let out = dir.join("good");
    run(rootforge()
        .args(["build", "-q", "--squashfs-block-size", "4K", "-f"])
        .arg(all.join(","))
        .arg("-o")
        .arg(&out)
        .arg(&input));
    let raw = dir.join("raw");
    run(rootforge()
        .args(["build", "-q", "-f", "squashfs", "--squashfs-comp", "none"])
        .args(["--squashfs-block-size", "4K", "-o"])
        .arg(&raw)
        .arg(&input));
    let mut images: Vec<_> = FORMATS
        .iter()
        .map(|(_, file)| (file.to_string(), out.join(file)))
        .collect();
    images.push(("rootfs.squashfs-raw".into(), raw.join("rootfs.squashfs")));
    images
        .into_iter()
        .map(|(name, path)| Good {
            name,
            bytes: std::fs::read(&path).unwrap(),
            listing: inspect(&path),
        })
        .collect()
}

fn good<'a>(images: &'a [Good], name: &str) -> &'a Good {
    images.iter().find(|g| g.name == name).unwrap()
}

/// What `inspect` made of a broken image.
struct Outcome {
    code: i32,
    stderr: String,
}

/// Runs `inspect` on `bytes` and checks the contract: exit status 0 with
/// the intact listing or 1 with an `error:` line, no panic, peak RSS under
/// [`MAX_RSS_MIB`].
fn inspect_broken(what: &str, bytes: &[u8], intact: &[String]) -> Outcome {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let (out, rss, secs) = measured(&["inspect".as_ref(), file.path().as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    let code = out.status.code().unwrap_or(-1);
    match code {
        0 => {
            let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned)
                .collect();
            assert!(
                got == intact,
                "{what}: exit status 0 but the listing differs:\n{}",
                crate::util::diff(intact, &got)
            );
        }
        1 => {
            let msg = stderr.strip_prefix("error: ").unwrap_or("");
            assert!(
                msg.trim().len() > 10 && out.stdout.is_empty(),
                "{what}: exit status 1 without a clear message: {stderr:?}"
            );
        }
        _ => panic!("{what}: exit status {:?}: {stderr}", out.status),
    }
    assert!(
        rss < MAX_RSS_MIB << 10,
        "{what}: peak RSS {rss} KiB over {MAX_RSS_MIB} MiB"
    );
    if secs > 2.0 {
        eprintln!("{what}: inspect took {secs:.1} s");
    }
    Outcome { code, stderr }
}

/// Expects exit status 1 with every one of `expected` in the message.
fn refused(what: &str, bytes: &[u8], intact: &[String], expected: &[&str]) {
    let o = inspect_broken(what, bytes, intact);
    assert_eq!(o.code, 1, "{what}: read as intact");
    for e in expected {
        assert!(o.stderr.contains(e), "{what}: {e:?} not in {}", o.stderr);
    }
}

fn put(bytes: &mut [u8], at: usize, value: &[u8]) {
    bytes[at..at + value.len()].copy_from_slice(value);
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The offset of the only occurrence of `needle` in `hay`.
fn only(hay: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{:?} found at {hits:?}",
        String::from_utf8_lossy(needle)
    );
    hits[0]
}

/// The primary directory record of `ident`, told apart from the path
/// table entries that hold the same identifier: a record has its
/// identifier's length just before it and its flags 8 bytes before, a
/// path table entry its length 8 bytes before.
fn iso_record(img: &[u8], ident: &[u8]) -> usize {
    let len = ident.len() as u8;
    let hits: Vec<usize> = img
        .windows(ident.len())
        .enumerate()
        .filter(|&(h, w)| w == ident && h >= 33 && img[h - 1] == len && img[h - 8] != len)
        .map(|(h, _)| h - 33)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{:?} records at {hits:?}",
        String::from_utf8_lossy(ident)
    );
    hits[0]
}

#[test]
fn truncated_images() {
    let tmp = tempfile::tempdir().unwrap();
    for g in good_images(tmp.path()) {
        let len = g.bytes.len();
        for cut in [0, 1, 512, 2048, len / 2, len - 1] {
            let o = inspect_broken(
                &format!("{} cut to {cut} of {len} bytes", g.name),
                &g.bytes[..cut],
                &g.listing,
            );
            // Beyond the first sector, the cut may fall in padding no
            // reader needs (squashfs pads to 4 KiB): then the listing must
            // be intact, which `inspect_broken` checks.
            if cut <= 512 {
                assert_eq!(o.code, 1, "{} cut to {cut} bytes read as intact", g.name);
            }
        }
    }
}

/// Flips bytes all over every image and reads it in-process: no reader
/// may panic, whatever it returns. The candidates are every non-zero byte
/// and the three after it (the high bytes of small numbers); an even
/// sample of [`FLIPS`] of them per image is flipped, one at a time, all
/// bits or the top one in turn.
#[test]
fn flipped_bytes_never_panic() {
    const FLIPS: usize = 2500;
    let tmp = tempfile::tempdir().unwrap();
    let images = good_images(tmp.path());
    let mut panics = Vec::new();
    for g in &images {
        let candidates: Vec<usize> = (0..g.bytes.len())
            .filter(|&i| (i.saturating_sub(3)..=i).any(|j| g.bytes[j] != 0))
            .collect();
        let step = candidates.len().div_ceil(FLIPS).max(1);
        for (n, &at) in candidates.iter().step_by(step).enumerate() {
            let mask = if n % 2 == 0 { 0xff } else { 0x80 };
            let mut bad = g.bytes.clone();
            bad[at] ^= mask;
            if catch_unwind(AssertUnwindSafe(|| read_listing(&g.name, bad))).is_err() {
                panics.push(format!("{} byte {at} ^ {mask:#x}", g.name));
            }
        }
        eprintln!(
            "{}: {} of {} candidate bytes flipped",
            g.name,
            candidates.len().div_ceil(step),
            candidates.len()
        );
    }
    assert!(panics.is_empty(), "readers panicked on: {panics:#?}");
}

/// What `inspect` does, in-process: the reader of `name`'s format, then
/// the listing (which reads every file's data).
fn read_listing(name: &str, bytes: Vec<u8>) -> bool {
    use rootforge::common::{Backing, listing};
    let data: Backing = Arc::new(bytes);
    let tree = match name.trim_start_matches("rootfs.") {
        "cpio" => rootforge::cpio::read(data),
        "tar" => {
            let opts = rootforge::tar::ReadOptions {
                implicit_dir: rootforge::common::Meta::new(0o755, 0, 0, Default::default()),
                clamp_mtime: None,
                ..Default::default()
            };
            rootforge::tar::read(data, &opts).map(|r| r.tree)
        }
        "squashfs" | "squashfs-raw" => rootforge::squashfs::read(data),
        "ext2" | "ext3" | "ext4" => rootforge::ext::read(data),
        "iso9660" => rootforge::iso9660::read(data),
        other => panic!("unknown image {other}"),
    };
    tree.is_ok_and(|t| listing::of_view(&t.view()).is_ok())
}

#[test]
fn cpio_huge_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let images = good_images(tmp.path());
    let g = good(&images, "rootfs.cpio");
    // newc: "070701", then 8 hex digits each: ino, mode, uid, gid, nlink,
    // mtime, filesize (54), devmajor, devminor, rdevmajor, rdevminor,
    // namesize (94), check.
    for (at, field, expected) in [
        (94, b"FFFFFFFF", "name size 4294967295 is outside"),
        (94, b"00000000", "name size 0 is outside"),
        (54, b"FFFFFFFF", "4294967295 bytes of data run past the end"),
        (54, b"0000zzzz", "cpio"),
    ] {
        let mut bad = g.bytes.clone();
        put(&mut bad, at, field);
        let what = format!("cpio field at {at} = {}", String::from_utf8_lossy(field));
        refused(&what, &bad, &g.listing, &[expected]);
    }
}

#[test]
fn tar_huge_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let images = good_images(tmp.path());
    let g = good(&images, "rootfs.tar");
    // The first regular file's size: the size fields of directories and
    // other header-only members are not read, as GNU tar and Go do.
    let mut bad = g.bytes.clone();
    let mut at = 0;
    loop {
        let h = &bad[at..at + 512];
        let size_text = std::str::from_utf8(&h[124..135])
            .unwrap()
            .trim_matches('\0');
        let size = u64::from_str_radix(size_text.trim(), 8).unwrap();
        if matches!(h[156], b'0' | 0) && size > 0 {
            break;
        }
        at += 512 + usize::try_from(size.next_multiple_of(512)).unwrap();
    }
    let header: &mut [u8; 512] = (&mut bad[at..at + 512]).try_into().unwrap();
    header[124..136].copy_from_slice(b"77777777777\0");
    Ustar::fix_checksum(header);
    refused("tar size field 8 GiB", &bad, &g.listing, &["past the end"]);

    let mut bad = g.bytes.clone();
    bad[0] ^= 1;
    refused(
        "tar header checksum",
        &bad,
        &g.listing,
        // With a bad checksum the bytes are not sniffed as tar at all.
        &["not an image rootforge can read"],
    );
}

#[test]
fn squashfs_huge_counts_and_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let images = good_images(tmp.path());
    let g = good(&images, "rootfs.squashfs");
    let len = g.bytes.len() as u64;
    // Superblock: inode_count at 4, block_size 12, id_count 26, root inode
    // 32, bytes_used 40, id table 48, inode table 64, directory table 72.
    let cases: [(&str, usize, Vec<u8>); 10] = [
        ("inode_count", 4, u32::MAX.to_le_bytes().to_vec()),
        ("block_size", 12, (1u32 << 31).to_le_bytes().to_vec()),
        ("id_count", 26, u16::MAX.to_le_bytes().to_vec()),
        ("root inode", 32, u64::MAX.to_le_bytes().to_vec()),
        ("bytes_used", 40, u64::MAX.to_le_bytes().to_vec()),
        ("bytes_used", 40, (len + 1).to_le_bytes().to_vec()),
        ("bytes_used", 40, 96u64.to_le_bytes().to_vec()),
        ("id table", 48, (len - 2).to_le_bytes().to_vec()),
        ("inode table", 64, u64::MAX.to_le_bytes().to_vec()),
        ("directory table", 72, 96u64.to_le_bytes().to_vec()),
    ];
    for (field, at, value) in cases {
        let mut bad = g.bytes.clone();
        put(&mut bad, at, &value);
        let o = inspect_broken(
            &format!("squashfs {field} = {value:02x?}"),
            &bad,
            &g.listing,
        );
        // The kernel ignores inode_count too: the walk finds every inode.
        if field != "inode_count" {
            assert_eq!(o.code, 1, "squashfs {field} = {value:02x?}: read as intact");
            assert!(o.stderr.contains("squashfs"), "{}", o.stderr);
        }
    }
}

/// `outer/loopdir`'s directory entry made to point at `outer`'s inode: the
/// walk must stop at the second visit rather than loop.
#[test]
fn squashfs_directory_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let images = good_images(tmp.path());
    let g = good(&images, "rootfs.squashfs-raw");
    // Uncompressed: directory entries are offset u16, inode number delta
    // i16, type u16, name length - 1 u16, name. Every inode here sits in
    // the first metadata block, so the offset alone picks the inode.
    let outer = only(&g.bytes, b"outer") - 8;
    let loopdir = only(&g.bytes, b"loopdir") - 8;
    let mut bad = g.bytes.clone();
    bad.copy_within(outer..outer + 2, loopdir);
    refused(
        "squashfs loop",
        &bad,
        &g.listing,
        &["/outer/loopdir", "a directory is reached twice"],
    );
}

/// ext superblock fields at 1024 + offset.
#[test]
fn ext_huge_counts_and_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let images = good_images(tmp.path());
    for name in ["rootfs.ext2", "rootfs.ext4"] {
        let g = good(&images, name);
        // s_inodes_count 0x00, s_blocks_count 0x04, s_first_data_block
        // 0x14, s_log_block_size 0x18, s_inodes_per_group 0x28,
        // s_inode_size 0x58.
        for (field, at, value, must_fail) in [
            ("s_inodes_count", 0x00, u32::MAX, true),
            ("s_blocks_count", 0x04, u32::MAX, true),
            ("s_blocks_count", 0x04, 0, true),
            ("s_blocks_per_group", 0x20, u32::MAX, true),
            ("s_blocks_per_group", 0x20, 0, true),
            ("s_first_data_block", 0x14, u32::MAX, true),
            ("s_log_block_size", 0x18, u32::MAX, true),
            ("s_log_block_size", 0x18, 6, true),
            ("s_inodes_per_group", 0x28, u32::MAX, true),
            ("s_inodes_per_group", 0x28, 1, true),
            ("s_inodes_per_group", 0x28, 0, true),
        ] {
            let mut bad = g.bytes.clone();
            put(&mut bad, 1024 + at, &value.to_le_bytes());
            let what = format!("{name} {field} = {value:#x}");
            let o = inspect_broken(&what, &bad, &g.listing);
            if must_fail {
                assert_eq!(o.code, 1, "{what}: read as intact");
                assert!(o.stderr.contains("ext"), "{what}: {}", o.stderr);
            }
        }
        let mut bad = g.bytes.clone();
        put(&mut bad, 1024 + 0x58, &u16::MAX.to_le_bytes());
        refused(
            &format!("{name} s_inode_size"),
            &bad,
            &g.listing,
            &["bad inode geometry"],
        );
    }
}

/// The root inode, in the first group's inode table: (its offset, the
/// block size).
fn ext_root_inode(img: &[u8]) -> (usize, usize) {
    let sb = &img[1024..2048];
    let bs = 1024usize << le32(sb, 0x18);
    let isz = usize::from(u16::from_le_bytes([sb[0x58], sb[0x59]]));
    let gdt = (le32(sb, 0x14) as usize + 1) * bs;
    let table = le32(img, gdt + 8) as usize * bs;
    (table + isz, bs)
}

#[test]
fn ext_inode_table_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let images = good_images(tmp.path());
    for name in ["rootfs.ext2", "rootfs.ext3", "rootfs.ext4"] {
        let g = good(&images, name);
        let (root, _) = ext_root_inode(&g.bytes);
        assert_eq!(le32(&g.bytes, root) & 0xf000, 0x4000, "{name}: root inode");

        // A root directory larger than the image.
        let mut bad = g.bytes.clone();
        put(&mut bad, root + 4, &u32::MAX.to_le_bytes());
        put(&mut bad, root + 0x6C, &u32::MAX.to_le_bytes());
        refused(
            &format!("{name} root i_size"),
            &bad,
            &g.listing,
            &["inode larger than the image"],
        );

        // The root's first block pointing far away (ext2, ext3), its
        // extent tree without its magic (ext4).
        let mut bad = g.bytes.clone();
        put(&mut bad, root + 0x28, &[0xff; 4]);
        let o = inspect_broken(&format!("{name} root block map"), &bad, &g.listing);
        assert_eq!(o.code, 1, "{name}: root block map read as intact");

        // The root is not a directory.
        let mut bad = g.bytes.clone();
        put(&mut bad, root, &0o100644u16.to_le_bytes());
        refused(
            &format!("{name} root mode"),
            &bad,
            &g.listing,
            &["the root inode is not a directory"],
        );
    }
}

/// `outer/loopdir`'s directory entry made to point at `outer` (its parent)
/// and at the root.
#[test]
fn ext_directory_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let images = good_images(tmp.path());
    for name in ["rootfs.ext2", "rootfs.ext4"] {
        let g = good(&images, name);
        // Entries: inode u32, rec_len u16, name_len u8, file_type u8, name.
        let outer = only(&g.bytes, b"outer") - 8;
        let loopdir = only(&g.bytes, b"loopdir") - 8;
        for (target, ino) in [("parent", le32(&g.bytes, outer)), ("root", 2)] {
            let mut bad = g.bytes.clone();
            put(&mut bad, loopdir, &ino.to_le_bytes());
            refused(
                &format!("{name} loopdir -> {target}"),
                &bad,
                &g.listing,
                &[&format!(
                    "/outer/loopdir: directory inode {ino} linked twice"
                )],
            );
        }
    }
}

/// The primary volume descriptor at 32768: volume space size at 80, the
/// root directory record at 156 (extent at +2, size at +10).
#[test]
fn iso_huge_sizes_and_extents() {
    let tmp = tempfile::tempdir().unwrap();
    let images = good_images(tmp.path());
    let g = good(&images, "rootfs.iso9660");
    let pvd = 32768;
    let root = pvd + 156;

    // A volume larger than the image: nothing Linux or we read depends on
    // it, so the listing is intact.
    let mut bad = g.bytes.clone();
    put(&mut bad, pvd + 80, &u32::MAX.to_le_bytes());
    put(&mut bad, pvd + 84, &u32::MAX.to_be_bytes());
    let o = inspect_broken("iso volume space size", &bad, &g.listing);
    assert_eq!(o.code, 0, "{}", o.stderr);

    for (field, at, value) in [
        ("root extent", 2, u32::MAX),
        ("root extent", 2, (g.bytes.len() / 2048) as u32),
        ("root size", 10, u32::MAX),
        ("root size", 10, 0),
    ] {
        let mut bad = g.bytes.clone();
        put(&mut bad, root + at, &value.to_le_bytes());
        put(&mut bad, root + at + 4, &value.to_be_bytes());
        refused(
            &format!("iso {field} = {value:#x}"),
            &bad,
            &g.listing,
            &["iso9660", "directory extent"],
        );
    }

    // Every volume descriptor type byte: no primary one.
    let mut bad = g.bytes.clone();
    bad[pvd] = 2;
    let o = inspect_broken("iso without a primary descriptor", &bad, &g.listing);
    assert_eq!(o.code, 1);
}

/// `outer/loopdir`'s record made to point at `outer`'s extent (its
/// parent) and at the root's.
#[test]
fn iso_directory_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let images = good_images(tmp.path());
    let g = good(&images, "rootfs.iso9660");
    // Records: length at 0, extent (both-endian) at 2, identifier length
    // at 32, identifier at 33. Joliet names are UCS-2, so the ASCII
    // identifiers are the primary tree's.
    let outer = iso_record(&g.bytes, b"OUTER");
    let loopdir = iso_record(&g.bytes, b"LOOPDIR");
    let root = 32768 + 156;
    for (target, rec) in [("parent", outer), ("root", root)] {
        let mut bad = g.bytes.clone();
        bad.copy_within(rec + 2..rec + 10, loopdir + 2);
        refused(
            &format!("iso loopdir -> {target}"),
            &bad,
            &g.listing,
            &["/outer/loopdir: directory loop"],
        );
    }
    assert!(le64(&g.bytes, loopdir + 2) != le64(&g.bytes, outer + 2));
}

/// A zisofs file of 256 MiB of zeros takes a few KiB of image: `inspect`
/// must not hold it unpacked (it held the whole file, 1 GiB for a 1 GiB
/// file in a 184 KiB image, and as much again for every such file).
#[test]
fn iso_zisofs_expands_block_by_block() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    for name in ["zeros", "more-zeros"] {
        std::fs::File::create(root.join(name))
            .unwrap()
            .set_len(256 << 20)
            .unwrap();
    }
    let out = tmp.path().join("out");
    run(rootforge()
        .args(["build", "-q", "-f", "iso9660", "--iso-zisofs", "-o"])
        .arg(&out)
        .arg(&root));
    let image = std::fs::read(out.join("rootfs.iso9660")).unwrap();
    assert!(
        image.len() < 1 << 20,
        "{} bytes: not compressed",
        image.len()
    );
    let zeros = "a6d72ac7690f53be6ae46ba88506bd97302a093f7108472bd9efc3cefda06484";
    let listing: Vec<String> = inspect(&out.join("rootfs.iso9660"));
    for name in ["zeros", "more-zeros"] {
        assert!(
            listing
                .iter()
                .any(|l| l.contains(&format!(" 268435456 {zeros} ")) && l.ends_with(name)),
            "{listing:?}"
        );
    }
    // And through `inspect_broken`'s memory check, as an intact image.
    inspect_broken("zisofs zeros", &image, &listing);
}
