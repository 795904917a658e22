use std::io::{self, Write};
use std::sync::Arc;

use rootforge_common::{
    Backing, Content, Edit, Encoder, Error, Extent, FileData, Inode, Meta, Plain, Replace, Report,
    Sink, Time, Tree, TreeBuilder, listing,
};

use crate::header::{CpioFormat, HEADER_LEN, Header, byte_sum};
use crate::read::{Members, Raw};
use crate::{CpioEncoder, read};

fn meta(perm: u16, uid: u32, gid: u32, sec: i64) -> Meta {
    Meta::new(perm, uid, gid, Time::from_secs(sec))
}

fn file(perm: u16, data: impl Into<Arc<[u8]>>) -> Inode {
    Inode::new(
        meta(perm, 0, 0, 1_700_000_000),
        Content::File(FileData::bytes(data)),
    )
}

fn node(content: Content) -> Inode {
    Inode::new(meta(0o644, 0, 0, 1_700_000_000), content)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..=u8::MAX)
        .cycle()
        .take(len)
        .map(|i| i.wrapping_mul(31).wrapping_add(seed))
        .collect()
}

const BUSYBOX_LEN: usize = 1000;

enum Op {
    Insert(&'static str, Inode),
    Link(&'static str, &'static str),
}

/// Every file type, a hard-link group across directories, names that sort
/// differently as paths and as tree walks, extreme ids and device numbers.
fn sample_ops() -> Vec<Op> {
    use Op::{Insert, Link};
    vec![
        Insert("bin/busybox", file(0o4755, pattern(BUSYBOX_LEN, 7))),
        Link("sbin/init", "bin/busybox"),
        Link("usr/bin/sh", "bin/busybox"),
        Insert("a-b", file(0o644, &b"four"[..])),
        Insert("a/x", file(0o600, &b""[..])),
        Insert("etc/motd", file(0o644, pattern(513, 1))),
        Insert("big", file(0o644, pattern(100_000, 3))),
        Insert("dev/console", node(Content::CharDev { major: 5, minor: 1 })),
        Insert(
            "dev/big",
            node(Content::CharDev {
                major: 4095,
                minor: 1_048_575,
            }),
        ),
        Insert(
            "dev/max",
            node(Content::BlockDev {
                major: u32::MAX,
                minor: u32::MAX,
            }),
        ),
        Insert("dev/sda", node(Content::BlockDev { major: 8, minor: 0 })),
        Insert("run/fifo", node(Content::Fifo)),
        Insert("run/sock", node(Content::Socket)),
        Insert(
            "lib/libc.so",
            Inode::new(
                meta(0o777, 0, 0, 1_700_000_001),
                Content::Symlink(b"libc.so.6"[..].into()),
            ),
        ),
        Insert(
            "home/user/notes",
            Inode::new(
                meta(0o640, 4_000_000_000, 4_000_000_001, i64::from(u32::MAX)),
                Content::File(FileData::bytes(&b"hi\n"[..])),
            ),
        ),
        Insert("tmp", Inode::dir(meta(0o1777, 0, 0, 0))),
    ]
}

fn build(ops: impl IntoIterator<Item = Op>) -> Tree {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_600_000_000));
    for op in ops {
        match op {
            Op::Insert(path, inode) => {
                b.insert(path.as_bytes(), inode, Replace::Always).unwrap();
            }
            Op::Link(path, target) => {
                b.hard_link(path.as_bytes(), target.as_bytes()).unwrap();
            }
        }
    }
    b.finish()
}

fn sample() -> Tree {
    build(sample_ops())
}

fn write_with(tree: &Tree, format: CpioFormat) -> (Vec<u8>, Report) {
    let mut sink = Plain(Vec::new());
    let report = CpioEncoder { format }
        .write(&tree.view(), &mut sink)
        .unwrap();
    (sink.0, report)
}

fn write(tree: &Tree) -> Vec<u8> {
    write_with(tree, CpioFormat::Newc).0
}

fn members(image: &[u8]) -> Vec<Raw> {
    let image: Backing = Arc::new(image.to_vec());
    Members::new(&*image).collect::<Result<_, _>>().unwrap()
}

/// A member's stored data.
fn data<'a>(image: &'a [u8], m: &Raw) -> &'a [u8] {
    let at = usize::try_from(m.data_offset).unwrap();
    &image[at..at + usize::try_from(m.data_len).unwrap()]
}

fn backing(image: Vec<u8>) -> Backing {
    Arc::new(image)
}

fn listing_of(tree: &Tree) -> String {
    listing::to_text(&listing::of_view(&tree.view()).unwrap())
}

#[test]
fn roundtrip_keeps_every_entry() {
    let tree = sample();
    for format in [CpioFormat::Newc, CpioFormat::Crc] {
        let (image, report) = write_with(&tree, format);
        assert_eq!(report.bytes, image.len() as u64);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let back = read(backing(image)).unwrap();
        assert_eq!(listing_of(&back), listing_of(&tree));
        let v = back.view();
        let busybox = v.lookup(b"bin/busybox").unwrap();
        assert_eq!(v.lookup(b"sbin/init"), Some(busybox));
        assert_eq!(v.lookup(b"usr/bin/sh"), Some(busybox));
    }
}

#[test]
fn read_refers_to_the_image_without_copying() {
    let image = backing(write(&sample()));
    let tree = read(image.clone()).unwrap();
    let v = tree.view();
    let Content::File(data) = &v.inode(v.lookup(b"etc/motd").unwrap()).content else {
        panic!("not a file");
    };
    let slice = data.as_slice().unwrap();
    let buf: &[u8] = image.as_slice().unwrap();
    assert!(buf.as_ptr_range().contains(&slice.as_ptr()));
    assert_eq!(slice, pattern(513, 1));
}

#[test]
fn members_follow_find_sort_order_with_reproducible_fields() {
    let tree = sample();
    let (image, _) = write_with(&tree, CpioFormat::Newc);
    let raw = members(&image);
    let names: Vec<&str> = raw
        .iter()
        .map(|m| std::str::from_utf8(&m.name).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            ".",
            "a",
            "a-b",
            "a/x",
            "big",
            "bin",
            "bin/busybox",
            "dev",
            "dev/big",
            "dev/console",
            "dev/max",
            "dev/sda",
            "etc",
            "etc/motd",
            "home",
            "home/user",
            "home/user/notes",
            "lib",
            "lib/libc.so",
            "run",
            "run/fifo",
            "run/sock",
            "sbin",
            "sbin/init",
            "tmp",
            "usr",
            "usr/bin",
            "usr/bin/sh",
            "TRAILER!!!",
        ]
    );
    let by_name = |n: &str| raw.iter().find(|m| *m.name == *n.as_bytes()).unwrap();

    // Inodes count up from 1 in member order; the link group shares one.
    let mut next = 1;
    for m in &raw[..raw.len() - 1] {
        if *m.name == *b"sbin/init" || *m.name == *b"usr/bin/sh" {
            assert_eq!(m.header.ino, by_name("bin/busybox").header.ino);
        } else {
            assert_eq!(m.header.ino, next, "{:?}", m.name);
            next += 1;
        }
        assert_eq!((m.header.dev_major, m.header.dev_minor), (0, 0));
        assert_eq!(m.header.check, 0);
        assert_eq!(m.offset % 4, 0);
        assert_eq!(m.data_offset % 4, 0);
        let at = usize::try_from(m.offset).unwrap();
        assert_eq!(&image[at..at + 6], b"070701");
    }

    // Hard-link data goes with the last name only.
    let group = ["bin/busybox", "sbin/init", "usr/bin/sh"].map(by_name);
    for m in &group {
        assert_eq!(m.header.nlink, 3);
        assert_eq!(m.header.ino, group[0].header.ino);
        assert_eq!(m.header.mode, 0o104755);
    }
    assert_eq!(
        group.map(|m| m.header.filesize),
        [0, 0, u32::try_from(BUSYBOX_LEN).unwrap()]
    );
    assert_eq!(data(&image, group[2]), pattern(BUSYBOX_LEN, 7));

    // Directories count their subdirectories.
    let dot = by_name(".");
    assert_eq!(dot.header.nlink, 2 + 10);
    assert_eq!(dot.header.mode, 0o040755);
    assert_eq!(dot.header.mtime, 1_600_000_000);
    assert_eq!(by_name("home").header.nlink, 3);
    assert_eq!(by_name("tmp").header.mode, 0o041777);

    let dev = by_name("dev/big").header;
    assert_eq!(
        (dev.mode, dev.rdev_major, dev.rdev_minor),
        (0o020644, 4095, 1_048_575)
    );
    assert_eq!(dev.filesize, 0);
    let max = by_name("dev/max").header;
    assert_eq!(
        (max.mode, max.rdev_major, max.rdev_minor),
        (0o060644, u32::MAX, u32::MAX)
    );
    assert_eq!(by_name("run/fifo").header.mode, 0o010644);
    assert_eq!(by_name("run/sock").header.mode, 0o140644);

    let link = by_name("lib/libc.so");
    assert_eq!((link.header.mode, link.header.filesize), (0o120777, 9));
    assert_eq!(data(&image, link), b"libc.so.6");

    let notes = by_name("home/user/notes").header;
    assert_eq!(
        (notes.uid, notes.gid, notes.mtime),
        (4_000_000_000, 4_000_000_001, u32::MAX)
    );
    assert_eq!(by_name("a/x").header.filesize, 0);
    assert_eq!(data(&image, by_name("a-b")), b"four");
    assert_eq!(by_name("etc/motd").data_len, 513);

    let trailer = raw.last().unwrap();
    assert_eq!(
        trailer.header,
        Header {
            nlink: 1,
            namesize: 11,
            ..Header::default()
        }
    );
    // Nothing but zeros after the trailer, up to a 512-byte block.
    assert_eq!(image.len() % 512, 0);
    let end = usize::try_from(trailer.data_offset).unwrap();
    assert!(image[end..].iter().all(|&b| b == 0));
    assert!(image.len() - end < 512);
}

#[test]
fn header_bytes_are_exact() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 0x5f5e_1000));
    b.insert(b"f", file(0o644, &b"abcde"[..]), Replace::Always)
        .unwrap();
    let image = write(&b.finish());
    let zero = "00000000";
    #[rustfmt::skip]
    let expected = [
        // magic, ino, mode, uid, gid, nlink, mtime, size,
        // dev major/minor, rdev major/minor, name size, check, name
        "070701", "00000001", "000041ED", zero, zero, "00000002", "5F5E1000", zero,
        zero, zero, zero, zero, "00000002", zero, ".\0",
        "070701", "00000002", "000081A4", zero, zero, "00000001", "6553F100", "00000005",
        zero, zero, zero, zero, "00000002", zero, "f\0", "abcde\0\0\0",
        "070701", zero, zero, zero, zero, "00000001", zero, zero,
        zero, zero, zero, zero, "0000000B", zero, "TRAILER!!!\0",
    ]
    .concat();
    assert_eq!(String::from_utf8_lossy(&image[..expected.len()]), expected);
    assert_eq!(image.len(), 512);
    assert!(image[expected.len()..].iter().all(|&b| b == 0));
}

#[test]
fn crc_sums_regular_file_data() {
    let tree = sample();
    let (image, _) = write_with(&tree, CpioFormat::Crc);
    let raw = members(&image);
    let mut files = 0;
    for m in &raw {
        let at = usize::try_from(m.offset).unwrap();
        assert_eq!(&image[at..at + 6], b"070702");
        let is_file = m.header.mode & 0o170000 == 0o100000;
        let expected = if is_file {
            byte_sum(0, data(&image, m))
        } else {
            0
        };
        assert_eq!(m.header.check, expected, "{:?}", m.name);
        if is_file && m.data_len != 0 {
            assert_ne!(m.header.check, 0);
            files += 1;
        }
    }
    assert_eq!(files, 5);
    let motd = raw.iter().find(|m| *m.name == *b"etc/motd").unwrap();
    assert_eq!(motd.header.check, byte_sum(0, &pattern(513, 1)));

    // The reader verifies the sums.
    let mut bad = image.clone();
    bad[usize::try_from(motd.data_offset).unwrap() + 100] ^= 1;
    let err = read(backing(bad)).unwrap_err().to_string();
    assert!(err.contains("bad data checksum"), "{err}");
}

#[test]
fn a_4gib_file_is_refused_before_writing() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 0));
    b.insert(b"ok", file(0o644, &b"x"[..]), Replace::Always)
        .unwrap();
    let huge = Inode::new(
        meta(0o644, 0, 0, 0),
        Content::File(FileData::zeros(4 << 30)),
    );
    b.insert(b"var/huge", huge, Replace::Always).unwrap();
    let tree = b.finish();
    let mut sink = Plain(Vec::new());
    let err = CpioEncoder::default()
        .write(&tree.view(), &mut sink)
        .unwrap_err();
    assert!(matches!(err, Error::Limit { .. }));
    assert_eq!(
        err.to_string(),
        "/var/huge: file size is 4294967296, but cpio allows at most 4294967295"
    );
    assert!(sink.0.is_empty());

    let mut b = tree.into_builder(meta(0o755, 0, 0, 0));
    let largest = Inode::new(
        meta(0o644, 0, 0, 0),
        Content::File(FileData::zeros(u64::from(u32::MAX))),
    );
    b.insert(b"var/huge", largest, Replace::Always).unwrap();
    CpioEncoder::default().check(&b.finish().view()).unwrap();
}

#[test]
fn names_and_targets_longer_than_path_max_are_refused() {
    let dirs = format!("{}/", "x".repeat(254)).repeat(16);
    let name = |n: usize| format!("{dirs}{}", "y".repeat(n - dirs.len()));
    let check = |path: &str, content: Content| {
        let mut b = TreeBuilder::new(meta(0o755, 0, 0, 0));
        b.insert(path.as_bytes(), node(content), Replace::Always)
            .unwrap();
        CpioEncoder::default().check(&b.finish().view())
    };
    let empty = || Content::File(FileData::empty());
    check(&name(4095), empty()).unwrap();
    let err = check(&name(4096), empty()).unwrap_err().to_string();
    assert!(
        err.ends_with("name length is 4096, but cpio allows at most 4095"),
        "{err}"
    );

    let target = |n: usize| Content::Symlink("t".repeat(n).into_bytes().into());
    check("l", target(4095)).unwrap();
    let err = check("l", target(4096)).unwrap_err().to_string();
    assert_eq!(
        err,
        "/l: symlink target length is 4096, but cpio allows at most 4095"
    );
    let err = check("l", Content::Symlink(b"a\0b"[..].into())).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
}

#[test]
fn out_of_range_mtimes_are_clamped_with_one_warning() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 10));
    let at = |sec| Inode::new(meta(0o644, 0, 0, sec), Content::Fifo);
    b.insert(b"old", at(-5), Replace::Always).unwrap();
    b.insert(b"new", at(1 << 33), Replace::Always).unwrap();
    b.insert(b"now", at(7), Replace::Always).unwrap();
    let (image, report) = write_with(&b.finish(), CpioFormat::Newc);
    assert_eq!(
        report.warnings,
        [
            "cpio stores mtimes as unsigned 32-bit seconds (1970 to 2106): clamped 2 entries \
          (first: /new at 8589934592)"
        ]
    );
    let back = read(backing(image)).unwrap();
    let v = back.view();
    let mtime = |p: &[u8]| v.inode(v.lookup(p).unwrap()).meta.mtime.sec;
    assert_eq!(
        [mtime(b"old"), mtime(b"new"), mtime(b"now")],
        [0, i64::from(u32::MAX), 7]
    );
}

#[test]
fn dropped_xattrs_are_counted_in_one_warning() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 0));
    let mut ping = file(0o4755, &b"elf"[..]);
    ping.set_xattr(b"security.capability", b"\x01\x00\x00\x02");
    b.insert(b"bin/ping", ping, Replace::Always).unwrap();
    b.hard_link(b"bin/ping6", b"bin/ping").unwrap();
    let mut other = file(0o644, &b""[..]);
    other.set_xattr(b"user.b", b"2");
    other.set_xattr(b"user.a", b"1");
    b.insert(b"usr/x", other, Replace::Always).unwrap();
    let (_, report) = write_with(&b.finish(), CpioFormat::Newc);
    assert_eq!(
        report.warnings,
        ["cpio cannot store xattrs: dropped 3 xattrs on 2 entries \
          (first: /bin/ping security.capability)"]
    );
}

#[test]
fn output_depends_only_on_the_tree() {
    let first = write(&sample());
    assert_eq!(first, write(&sample()));

    // The same tree built in another order (links after their target).
    let (links, mut inserts): (Vec<Op>, Vec<Op>) = sample_ops()
        .into_iter()
        .partition(|op| matches!(op, Op::Link(..)));
    inserts.reverse();
    let reordered = build(inserts.into_iter().chain(links.into_iter().rev()));
    assert_eq!(write(&reordered), first);
}

/// Records what an outer compressor would see.
#[derive(Default)]
struct Recorder {
    data: Vec<u8>,
    writes: usize,
    marks: Vec<usize>,
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for Recorder {
    fn boundary(&mut self) -> io::Result<()> {
        self.marks.push(self.data.len());
        Ok(())
    }
}

#[test]
fn writes_are_batched_and_boundaries_fall_between_entries() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 0));
    for i in 0..4000 {
        let path = format!("d{}/f{i}", i % 7);
        b.insert(
            path.as_bytes(),
            file(0o644, pattern(100, u8::try_from(i % 256).unwrap())),
            Replace::Always,
        )
        .unwrap();
    }
    b.insert(
        b"d3/large",
        file(0o644, pattern(300_000, 9)),
        Replace::Always,
    )
    .unwrap();
    let tree = b.finish();
    let mut rec = Recorder::default();
    let report = CpioEncoder::default()
        .write(&tree.view(), &mut rec)
        .unwrap();
    assert_eq!(report.bytes, rec.data.len() as u64);
    assert_eq!(rec.data, write(&tree));

    let raw = members(&rec.data);
    assert!(rec.writes < raw.len() / 50, "{} writes", rec.writes);
    let starts: Vec<usize> = raw
        .iter()
        .map(|m| usize::try_from(m.offset).unwrap())
        .collect();
    assert!(rec.marks.len() >= 3, "{:?}", rec.marks);
    assert_eq!(rec.marks.last(), Some(&rec.data.len()));
    for w in rec.marks.windows(2) {
        assert!(w[0] < w[1]);
    }
    for &mark in &rec.marks[..rec.marks.len() - 1] {
        assert!(
            starts.binary_search(&mark).is_ok(),
            "mark {mark} inside an entry"
        );
    }
    let large = raw.iter().find(|m| *m.name == *b"d3/large").unwrap();
    let after_large = usize::try_from(large.data_offset).unwrap() + 300_000;
    assert!(rec.marks.contains(&after_large));
}

#[test]
fn data_that_is_not_in_memory_is_streamed() {
    let path = std::env::temp_dir().join(format!("rootforge-cpio-test-{}", std::process::id()));
    let host_bytes = pattern(200_003, 5);
    std::fs::write(&path, &host_bytes).unwrap();
    let sparse_backing: Backing = Arc::new(pattern(70_000, 2));
    let sparse = FileData::sparse(
        sparse_backing,
        vec![
            Extent {
                logical: 10,
                stored: 0,
                len: 5,
            },
            Extent {
                logical: 100_000,
                stored: 5,
                len: 69_995,
            },
        ],
        300_000,
    )
    .unwrap();
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 0));
    let put = |b: &mut TreeBuilder, name: &[u8], data| {
        let inode = Inode::new(meta(0o644, 0, 0, 0), Content::File(data));
        b.insert(name, inode, Replace::Always).unwrap();
    };
    put(&mut b, b"host", FileData::host(path.as_path(), 200_003));
    put(&mut b, b"sparse", sparse);
    put(&mut b, b"zeros", FileData::zeros(300_001));
    let tree = b.finish();
    for format in [CpioFormat::Newc, CpioFormat::Crc] {
        let (image, _) = write_with(&tree, format);
        let raw = members(&image);
        let host = raw.iter().find(|m| *m.name == *b"host").unwrap();
        assert_eq!(data(&image, host), host_bytes);
        let back = read(backing(image.clone())).unwrap();
        assert_eq!(listing_of(&back), listing_of(&tree));
    }

    // A host file that shrank is an error, not a short member.
    std::fs::write(&path, &host_bytes[..10]).unwrap();
    let mut sink = Plain(Vec::new());
    let err = CpioEncoder::default()
        .write(&tree.view(), &mut sink)
        .unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(
        err.to_string()
            .starts_with("copying /host into the cpio image: ")
            && err.to_string().contains("shrank"),
        "{err}"
    );
}

/// One member, for hand-made archives.
fn member(format: CpioFormat, mut h: Header, name: &[u8], data: &[u8]) -> Vec<u8> {
    h.namesize = u32::try_from(name.len() + 1).unwrap();
    h.filesize = u32::try_from(data.len()).unwrap();
    let mut out = h.encode(format).to_vec();
    out.extend_from_slice(name);
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

fn entry(mode: u32, ino: u32, nlink: u32) -> Header {
    Header {
        ino,
        mode,
        nlink,
        mtime: 100,
        ..Header::default()
    }
}

const REG: u32 = 0o100644;
const DIR: u32 = 0o040755;

fn trailer() -> Vec<u8> {
    member(CpioFormat::Newc, entry(0, 0, 1), b"TRAILER!!!", b"")
}

fn newc(members: &[(Header, &str, &[u8])]) -> Vec<u8> {
    members
        .iter()
        .flat_map(|(h, name, data)| member(CpioFormat::Newc, *h, name.as_bytes(), data))
        .collect()
}

fn file_bytes(tree: &Tree, path: &str) -> Vec<u8> {
    let v = tree.view();
    match &v.inode(v.lookup(path.as_bytes()).unwrap()).content {
        Content::File(d) => d.to_vec().unwrap(),
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn reader_links_by_inode_with_data_on_any_name() {
    let mut second = entry(REG, 7, 2);
    second.mode = 0o100600;
    let image = newc(&[
        (entry(REG, 7, 2), "a", b"abc"),
        (second, "sub/b", b""),
        // Same inode number, other type: not a link.
        (entry(0o020600, 7, 2), "c", b""),
    ]);
    let tree = read(backing(image)).unwrap();
    let v = tree.view();
    let a = v.lookup(b"a").unwrap();
    assert_eq!(v.lookup(b"sub/b"), Some(a));
    assert_ne!(v.lookup(b"c"), Some(a));
    assert_eq!(file_bytes(&tree, "sub/b"), b"abc");
    // chmod of the later name applies to the shared inode.
    assert_eq!(v.inode(a).meta.perm, 0o600);
}

#[test]
fn reader_replaces_earlier_names_and_sets_the_root() {
    let mut root = entry(DIR, 1, 2);
    root.mode = 0o040700;
    root.uid = 42;
    let mut redo = entry(DIR, 4, 2);
    redo.mode = 0o040711;
    let image = [
        newc(&[
            (root, ".", b""),
            (entry(DIR, 2, 2), "./d", b""),
            (entry(REG, 3, 1), "d/f", b"one"),
            (entry(REG, 3, 1), "d/f", b"two!"),
            (redo, "d", b""),
        ]),
        trailer(),
    ]
    .concat();
    let tree = read(backing(image)).unwrap();
    let v = tree.view();
    let r = v.inode(v.root()).meta;
    assert_eq!((r.perm, r.uid, r.mtime.sec), (0o700, 42, 100));
    assert_eq!(file_bytes(&tree, "d/f"), b"two!");
    assert_eq!(v.inode(v.lookup(b"d").unwrap()).meta.perm, 0o711);
}

#[test]
fn reader_resets_links_at_each_trailer_of_concatenated_archives() {
    let first = [newc(&[(entry(REG, 5, 2), "a", b"1")]), trailer()].concat();
    let mut image = first.clone();
    image.resize(image.len().next_multiple_of(512), 0);
    image.extend(newc(&[(entry(REG, 5, 2), "b", b"")]));
    let tree = read(backing(image)).unwrap();
    let v = tree.view();
    assert_ne!(v.lookup(b"a"), v.lookup(b"b"));
    assert_eq!(file_bytes(&tree, "b"), b"");

    // Without a trailer between them they are one archive and linked.
    let joined = newc(&[(entry(REG, 5, 2), "a", b"1"), (entry(REG, 5, 2), "b", b"")]);
    let tree = read(backing(joined)).unwrap();
    assert_eq!(file_bytes(&tree, "b"), b"1");
}

#[test]
fn reader_accepts_gen_init_cpio_and_lowercase_quirks() {
    // gen_init_cpio counts the symlink target's NUL; the trailer is optional,
    // and so is the last member's padding.
    let mut image = newc(&[(entry(0o120777, 1, 1), "l", b"target\0")]);
    let mut last = member(CpioFormat::Newc, entry(REG, 2, 1), b"f", b"x");
    last.truncate(last.len() - 3);
    image.extend(&last);
    image[..HEADER_LEN].make_ascii_lowercase();
    let tree = read(backing(image)).unwrap();
    let v = tree.view();
    match &v.inode(v.lookup(b"l").unwrap()).content {
        Content::Symlink(t) => assert_eq!(&**t, b"target"),
        other => panic!("{other:?}"),
    }
    assert_eq!(file_bytes(&tree, "f"), b"x");
    assert_eq!(
        read(backing(Vec::new()))
            .unwrap()
            .view()
            .sorted_entries()
            .len(),
        1
    );
}

fn malformed(image: Vec<u8>) -> String {
    match read(backing(image)) {
        Err(e @ Error::Malformed { .. }) => e.to_string(),
        other => panic!("expected a malformed error, got {other:?}"),
    }
}

#[test]
fn malformed_images_are_errors() {
    let good = newc(&[(entry(REG, 1, 1), "f", b"data")]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..60].to_vec(), "at byte 0: truncated header"),
        ([b"1".as_slice(), &good[1..]].concat(), "no newc/crc magic"),
        ([b"070707".as_slice(), &good[6..]].concat(), "odc"),
        (
            [&good[..20], b"z".as_slice(), &good[21..]].concat(),
            "field 1 is not 8 hex digits",
        ),
        (good[..111].to_vec(), "at byte 110: name runs past the end"),
        (
            good[..good.len() - 2].to_vec(),
            "at byte 112: 4 bytes of data run past the end",
        ),
        (
            [&[0u8][..], &good].concat(),
            "at byte 1: member does not start on a 4-byte boundary",
        ),
        (
            [good.clone(), vec![0, b'x']].concat(),
            "does not start on a 4-byte boundary",
        ),
        (newc(&[(entry(REG, 1, 1), "a/../b", b"")]), "`..`"),
        (
            newc(&[(entry(DIR, 1, 1), "d", b"data")]),
            "a directory with 4 bytes of data",
        ),
        (
            newc(&[(entry(0o170644, 1, 1), "x", b"")]),
            "unknown file type",
        ),
        (
            newc(&[(entry(0o120777, 1, 1), "l", "t".repeat(4097).as_bytes())]),
            "symlink target longer than 4096",
        ),
        (
            newc(&[(entry(0o100644, 1, 1), ".", b"")]),
            "the root cannot be a regular file",
        ),
    ];
    for (image, want) in cases {
        let err = malformed(image);
        assert!(err.contains(want), "{err:?} lacks {want:?}");
    }

    let mut h = entry(REG, 1, 1);
    h.namesize = 0;
    let mut image = h.encode(CpioFormat::Newc).to_vec();
    image.extend([0; 8]);
    assert!(malformed(image.clone()).contains("name size 0 is outside 1..=4096"));
    image[HEADER_LEN - 16..HEADER_LEN - 8].copy_from_slice(b"00001001");
    assert!(malformed(image.clone()).contains("name size 4097"));
    image[HEADER_LEN - 16..HEADER_LEN - 8].copy_from_slice(b"00000002");
    image.truncate(HEADER_LEN);
    image.extend(b"ab\0\0");
    assert!(malformed(image).contains("not one NUL-terminated string"));

    let mut crc = member(CpioFormat::Crc, entry(REG, 1, 1), b"f", b"data");
    assert!(malformed(crc.clone()).contains("bad data checksum"));
    crc[HEADER_LEN - 8..HEADER_LEN]
        .copy_from_slice(format!("{:08X}", byte_sum(0, b"data")).as_bytes());
    assert_eq!(file_bytes(&read(backing(crc)).unwrap(), "f"), b"data");
}

#[test]
fn damaged_images_never_panic() {
    // Without the large file, to keep this quick.
    let small = build(
        sample_ops()
            .into_iter()
            .filter(|op| !matches!(op, Op::Insert("big", _))),
    );
    let (image, _) = write_with(&small, CpioFormat::Crc);
    assert_eq!(members(&image).len(), 28);
    for len in 0..image.len() {
        let _ = read(backing(image[..len].to_vec()));
    }
    for i in 0..image.len() {
        for byte in [0, b'0', b'7', b'F', b'/', 0xff] {
            let mut bad = image.clone();
            bad[i] = byte;
            let _ = read(backing(bad));
        }
    }
}

/// An image in a file is read in place: in windows, never whole, and
/// newc file data not at all (the tree points into the image).
#[test]
fn file_backed_images_are_read_in_windows() {
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Counting {
        bytes: Vec<u8>,
        largest: AtomicU64,
        total: AtomicU64,
    }
    impl rootforge_common::Blob for Counting {
        fn len(&self) -> u64 {
            self.bytes.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
            self.largest.fetch_max(buf.len() as u64, Ordering::Relaxed);
            self.total.fetch_add(buf.len() as u64, Ordering::Relaxed);
            let at = usize::try_from(offset).unwrap();
            buf.copy_from_slice(&self.bytes[at..at + buf.len()]);
            Ok(())
        }
    }
    let mut b = TreeBuilder::new(Meta::new(0o755, 0, 0, Time::default()));
    for i in 0..8u8 {
        let data = FileData::bytes(vec![i; 1 << 20]);
        b.insert(
            format!("f{i}").as_bytes(),
            Inode::new(Meta::new(0o644, 0, 0, Time::default()), Content::File(data)),
            Replace::Always,
        )
        .unwrap();
    }
    let tree = b.finish();
    for format in [CpioFormat::Newc, CpioFormat::Crc] {
        let (image, _) = write_with(&tree, format);
        let counting = Arc::new(Counting {
            bytes: image.clone(),
            largest: AtomicU64::new(0),
            total: AtomicU64::new(0),
        });
        let back = read(counting.clone()).unwrap();
        let largest = counting.largest.load(Ordering::Relaxed);
        let total = counting.total.load(Ordering::Relaxed);
        assert_eq!(listing_of(&back), listing_of(&tree), "{format:?}");
        assert!(largest <= 64 << 10, "{format:?}: a read of {largest} bytes");
        if format == CpioFormat::Newc {
            // Headers only: the 8 MiB of data is skipped.
            assert!(total < 1 << 20, "{format:?}: {total} bytes read");
        }
    }
}
