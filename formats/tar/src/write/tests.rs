//! The writer's tests: byte layout against GNU tar, read-back with the
//! `tar` crate and with our reader.

use std::collections::BTreeMap;
use std::io::Read;

use rootforge_common::{
    Content, Edit, FileData, Inode, Meta, Plain, Replace, Time, Tree, TreeBuilder,
};

use super::*;

const T0: i64 = 1_700_000_000;

/// The layout tests compare with GNU tar without `--sparse`.
const DENSE: TarEncoder = TarEncoder {
    sparse: Sparse::Dense,
};

fn meta(perm: u16) -> Meta {
    Meta::new(perm, 0, 0, Time::from_secs(T0))
}

fn put(b: &mut TreeBuilder, path: &str, meta: Meta, content: Content) -> InodeId {
    b.insert(path.as_bytes(), Inode::new(meta, content), Replace::Always)
        .unwrap()
}

fn file(data: &[u8]) -> Content {
    Content::File(FileData::bytes(data.to_vec()))
}

fn rep(c: char, n: usize) -> String {
    c.to_string().repeat(n)
}

const CAPABILITY: &[u8] =
    b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";

/// A 148-byte member name that splits into prefix and name.
fn split_path() -> String {
    format!("long/{}/{}", rep('d', 60), rep('e', 80))
}

/// A 301-byte member name that cannot be split.
fn unsplit_path() -> String {
    format!("deep/{}/{}", rep('g', 200), rep('h', 93))
}

/// A directory whose 129-byte name splits before its last component.
fn split_dir() -> String {
    format!("dirs/{}/{}", rep('m', 60), rep('n', 60))
}

/// Every kind of entry, and every case that needs a pax record.
fn sample() -> Tree {
    let mut b = TreeBuilder::new(meta(0o755));
    put(&mut b, "bin", meta(0o755), Content::Dir(BTreeMap::new()));
    let busybox = put(
        &mut b,
        "bin/busybox",
        meta(0o4755),
        file(&b"busybox\n".repeat(75)),
    );
    b.inode_mut(busybox)
        .set_xattr(b"security.capability", CAPABILITY);
    b.inode_mut(busybox).set_xattr(b"user.comment", b"hi");
    b.hard_link(b"sbin/init", b"bin/busybox").unwrap();
    b.hard_link(b"usr/bin/env", b"bin/busybox").unwrap();
    put(
        &mut b,
        "bin/sh",
        meta(0o777),
        Content::Symlink((*b"busybox").into()),
    );
    put(
        &mut b,
        "dev/console",
        meta(0o600),
        Content::CharDev { major: 5, minor: 1 },
    );
    b.hard_link(b"dev/console-again", b"dev/console").unwrap();
    put(
        &mut b,
        "dev/sda",
        Meta::new(0o660, 0, 6, Time::from_secs(T0)),
        Content::BlockDev { major: 8, minor: 0 },
    );
    put(
        &mut b,
        "dev/huge",
        meta(0o600),
        Content::CharDev {
            major: 3_000_000,
            minor: 4_000_000,
        },
    );
    put(&mut b, "dev/initctl", meta(0o600), Content::Fifo);
    put(&mut b, "run/socket", meta(0o755), Content::Socket);
    put(&mut b, "etc/empty", meta(0o644), file(b""));
    let at = |sec, nsec| Meta::new(0o644, 0, 0, Time { sec, nsec });
    put(&mut b, "etc/nanos", at(T0, 123_450_000), file(b"n"));
    put(&mut b, "etc/negative", at(-2, 500_000_000), file(b"-"));
    put(&mut b, "etc/negative-whole", at(-100, 0), file(b"-"));
    put(&mut b, "etc/y2038", at(4_000_000_000, 0), file(b"y"));
    put(&mut b, "etc/far", at(10_000_000_000, 0), file(b"f"));
    let id = |uid, gid| Meta::new(0o640, uid, gid, Time::from_secs(T0));
    put(
        &mut b,
        "etc/owner",
        id(4_000_000_000, 4_000_000_001),
        file(b"o"),
    );
    put(&mut b, "etc/maxid", id(0o7777777, 0o7777777), file(b"m"));
    let pattern: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    put(&mut b, "data/direct", meta(0o644), file(&pattern));
    put(
        &mut b,
        "data/zeros",
        meta(0o644),
        Content::File(FileData::zeros(100_000)),
    );
    put(&mut b, &split_path(), meta(0o644), file(b"split"));
    put(&mut b, &unsplit_path(), meta(0o644), file(b"unsplit"));
    put(
        &mut b,
        &split_dir(),
        meta(0o700),
        Content::Dir(BTreeMap::new()),
    );
    put(
        &mut b,
        "links/far",
        meta(0o777),
        Content::Symlink(rep('t', 200).into_bytes().into()),
    );
    put(
        &mut b,
        "links/near",
        meta(0o777),
        Content::Symlink(rep('u', 100).into_bytes().into()),
    );
    b.hard_link(b"links/hard-to-deep", unsplit_path().as_bytes())
        .unwrap();
    b.finish()
}

fn encode(tree: &Tree) -> (Vec<u8>, Report) {
    let mut out = Plain(Vec::new());
    let report = DENSE.write(&tree.view(), &mut out).unwrap();
    (out.0, report)
}

type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Pax records parsed by their length prefix, as POSIX defines them (the
/// `tar` crate splits at newlines, which values may hold).
fn parse_records(mut data: &[u8]) -> Records {
    let mut out = Vec::new();
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ').unwrap();
        let len: usize = std::str::from_utf8(&data[..space])
            .unwrap()
            .parse()
            .unwrap();
        let rec = &data[space + 1..len];
        assert_eq!(data[len - 1], b'\n', "record ends in a newline");
        let eq = rec.iter().position(|&b| b == b'=').unwrap();
        out.push((rec[..eq].to_vec(), rec[eq + 1..rec.len() - 1].to_vec()));
        data = &data[len..];
    }
    out
}

fn octal(field: &[u8]) -> u64 {
    let digits = field.split(|&b| b == 0).next().unwrap();
    u64::from_str_radix(std::str::from_utf8(digits).unwrap(), 8).unwrap()
}

fn cstr(field: &[u8]) -> &[u8] {
    field.split(|&b| b == 0).next().unwrap()
}

/// One header block and what follows it, straight from the bytes.
struct Raw {
    header: [u8; BLOCK],
    data: Vec<u8>,
}

impl Raw {
    fn typeflag(&self) -> u8 {
        self.header[156]
    }

    fn name(&self) -> Vec<u8> {
        let prefix = cstr(&self.header[345..500]);
        let name = cstr(&self.header[..100]);
        if prefix.is_empty() {
            name.to_vec()
        } else {
            [prefix, b"/", name].concat()
        }
    }
}

/// Walks the archive block by block up to the first zero block, checking
/// every header's magic and checksum on the way.
fn raw_members(bytes: &[u8]) -> (Vec<Raw>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let header: [u8; BLOCK] = bytes[at..at + BLOCK].try_into().unwrap();
        if header == [0; BLOCK] {
            return (out, at);
        }
        assert_eq!(&header[257..265], b"ustar\x0000");
        let mut blank = header;
        blank[148..156].fill(b' ');
        let sum: u32 = blank.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(&header[148..156], format!("{sum:06o}\0 ").as_bytes());
        let size = usize::try_from(octal(&header[124..136])).unwrap();
        let start = at + BLOCK;
        out.push(Raw {
            header,
            data: bytes[start..start + size].to_vec(),
        });
        at = start + size.div_ceil(BLOCK) * BLOCK;
    }
}

/// The members that carry an extended header, by member name.
fn pax_of(members: &[Raw]) -> BTreeMap<Vec<u8>, (Raw, Records)> {
    let mut out = BTreeMap::new();
    for pair in members.windows(2) {
        if pair[0].typeflag() == b'x' {
            let records = parse_records(&pair[0].data);
            let name = records
                .iter()
                .find(|(k, _)| k == b"path")
                .map_or_else(|| pair[1].name(), |(_, v)| v.clone());
            let x = Raw {
                header: pair[0].header,
                data: pair[0].data.clone(),
            };
            out.insert(name, (x, records));
        }
    }
    out
}

#[test]
fn reads_back_with_the_tar_crate() {
    let tree = sample();
    let view = tree.view();
    let (bytes, report) = encode(&tree);
    assert_eq!(bytes.len() as u64 % RECORD, 0);
    assert_eq!(report.bytes, bytes.len() as u64);
    assert_eq!(
        report.warnings,
        ["tar cannot store sockets: skipped 1 (first: /run/socket)"]
    );

    let mut archive = tar::Archive::new(&bytes[..]);
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path_bytes().into_owned();
        names.push(String::from_utf8(name.clone()).unwrap());
        let mut pax: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        if let Some(exts) = entry.pax_extensions().unwrap() {
            for ext in exts {
                let ext = ext.unwrap();
                pax.insert(ext.key_bytes().to_vec(), ext.value_bytes().to_vec());
            }
        }
        assert!(!pax.contains_key(&b"atime"[..]) && !pax.contains_key(&b"ctime"[..]));
        let h = entry.header().clone();
        let kind = h.entry_type();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();

        let path = name.strip_prefix(b"./").unwrap();
        let is_dir = kind == tar::EntryType::Directory;
        assert_eq!(name.ends_with(b"/"), is_dir, "{}", names.last().unwrap());
        let inode = view.inode(view.lookup(path).unwrap());
        let m = inode.meta;

        // A pax record wins over its field, which holds the seconds if
        // they fit.
        let number = |key: &[u8], field: u64, fallback: u64| match pax.get(key) {
            Some(v) => {
                assert_eq!(field, fallback, "{key:?} field");
                String::from_utf8(v.clone()).unwrap()
            }
            None => field.to_string(),
        };
        let sec = m.mtime.sec;
        let mtime_field = if (0..=0o77777777777).contains(&sec) {
            sec as u64
        } else {
            0
        };
        assert_eq!(h.mode().unwrap(), u32::from(m.perm));
        // The tar crate applies pax uid and gid to the header itself.
        assert_eq!(h.uid().unwrap(), u64::from(m.uid));
        assert_eq!(h.gid().unwrap(), u64::from(m.gid));
        let mtime = number(b"mtime", h.mtime().unwrap(), mtime_field);
        let want_mtime = match (m.mtime.sec, m.mtime.nsec) {
            (s, 0) => s.to_string(),
            (T0, 123_450_000) => "1700000000.12345".to_owned(),
            (-2, 500_000_000) => "-1.5".to_owned(),
            other => panic!("unexpected mtime {other:?}"),
        };
        assert_eq!(mtime, want_mtime);
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));

        let xattrs: Vec<(Vec<u8>, Vec<u8>)> = pax
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(b"SCHILY.xattr.")?.to_vec(), v.clone())))
            .collect();
        if kind == tar::EntryType::Link {
            assert!(xattrs.is_empty());
            assert!(data.is_empty());
            continue;
        }
        let want: Vec<_> = inode
            .xattrs
            .iter()
            .map(|x| (x.name.to_vec(), x.value.to_vec()))
            .collect();
        assert_eq!(xattrs, want);
        match &inode.content {
            Content::Dir(_) => assert!(is_dir),
            Content::File(d) => {
                assert_eq!(kind, tar::EntryType::Regular);
                assert_eq!(data, d.to_vec().unwrap());
            }
            Content::Symlink(t) => {
                assert_eq!(kind, tar::EntryType::Symlink);
                assert_eq!(link.as_deref(), Some(&t[..]));
            }
            Content::CharDev { .. } | Content::BlockDev { .. } => {
                let block = matches!(inode.content, Content::BlockDev { .. });
                assert_eq!(kind.is_block_special(), block);
                assert_eq!(kind.is_character_special(), !block);
                // The tar crate reads device fields as octal only; the
                // base-256 ones of dev/huge are checked byte by byte.
                if path != b"dev/huge" {
                    let (major, minor) = inode.rdev().unwrap();
                    assert_eq!(h.device_major().unwrap(), Some(major));
                    assert_eq!(h.device_minor().unwrap(), Some(minor));
                }
            }
            Content::Fifo => assert_eq!(kind, tar::EntryType::Fifo),
            Content::Socket => panic!("socket stored"),
        }
    }

    let mut want: Vec<String> = [
        "./",
        "./bin/",
        "./bin/busybox",
        "./bin/sh",
        "./data/",
        "./data/direct",
        "./data/zeros",
        "./deep/",
    ]
    .map(String::from)
    .to_vec();
    want.push(format!("./deep/{}/", rep('g', 200)));
    want.push(format!("./{}", unsplit_path()));
    want.extend(
        [
            "./dev/",
            "./dev/console",
            "./dev/console-again",
            "./dev/huge",
        ]
        .map(String::from),
    );
    want.extend(["./dev/initctl", "./dev/sda", "./dirs/"].map(String::from));
    want.push(format!("./dirs/{}/", rep('m', 60)));
    want.push(format!("./{}/", split_dir()));
    want.push("./etc/".into());
    for f in [
        "empty",
        "far",
        "maxid",
        "nanos",
        "negative",
        "negative-whole",
        "owner",
        "y2038",
    ] {
        want.push(format!("./etc/{f}"));
    }
    want.extend(
        [
            "./links/",
            "./links/far",
            "./links/hard-to-deep",
            "./links/near",
        ]
        .map(String::from),
    );
    want.push("./long/".into());
    want.push(format!("./long/{}/", rep('d', 60)));
    want.push(format!("./{}", split_path()));
    want.extend(
        [
            "./run/",
            "./sbin/",
            "./sbin/init",
            "./usr/",
            "./usr/bin/",
            "./usr/bin/env",
        ]
        .map(String::from),
    );
    assert_eq!(names, want);
}

#[test]
fn hard_links_point_at_the_first_name() {
    let (bytes, _) = encode(&sample());
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut links = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        if entry.header().entry_type() == tar::EntryType::Link {
            assert_eq!(entry.size(), 0);
            let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let target = entry.link_name_bytes().unwrap().into_owned();
            links.insert(name, String::from_utf8(target).unwrap());
        }
    }
    let want = BTreeMap::from([
        ("./dev/console-again".to_owned(), "./dev/console".to_owned()),
        (
            "./links/hard-to-deep".to_owned(),
            format!("./{}", unsplit_path()),
        ),
        ("./sbin/init".to_owned(), "./bin/busybox".to_owned()),
        ("./usr/bin/env".to_owned(), "./bin/busybox".to_owned()),
    ]);
    assert_eq!(links, want);
}

#[test]
fn raw_layout_follows_gnu_tar() {
    let (bytes, _) = encode(&sample());
    let (members, end) = raw_members(&bytes);
    // Two zero blocks end the archive, then zeros to the record size.
    assert!(bytes.len() - end >= 2 * BLOCK);
    assert!(bytes[end..].iter().all(|&b| b == 0));

    let pax = pax_of(&members);
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, (x, records)) in &pax {
        let name = String::from_utf8(name.clone()).unwrap();
        keys.insert(
            name.clone(),
            records
                .iter()
                .map(|(k, _)| String::from_utf8(k.clone()).unwrap())
                .collect(),
        );
        // GNU tar's extended header fields.
        let h = &x.header;
        assert_eq!(&h[100..124], b"0000644\x000000000\x000000000\x00");
        assert_eq!(&h[329..345], &[0; 16]);
        assert_eq!(&h[265..329], &[0; 64]);
        assert_eq!(octal(&h[124..136]), x.data.len() as u64);
        let path = name.trim_start_matches("./").trim_end_matches('/');
        let (dir, base) = match path.rsplit_once('/') {
            Some((d, b)) => (format!("./{d}"), b),
            None if path.is_empty() => (".".to_owned(), "."),
            None => (".".to_owned(), path),
        };
        let xname = format!("{dir}/PaxHeaders/{base}");
        let cut = &xname.as_bytes()[..xname.len().min(100)];
        assert_eq!(cstr(&h[..100]), cut, "{name}");
    }
    let mtime = |n: &str| (n.to_owned(), vec!["mtime".to_owned()]);
    let want = BTreeMap::from([
        (
            "./bin/busybox".to_owned(),
            vec![
                "SCHILY.xattr.security.capability".to_owned(),
                "SCHILY.xattr.user.comment".to_owned(),
            ],
        ),
        (
            format!("./deep/{}/", rep('g', 200)),
            vec!["path".to_owned()],
        ),
        (format!("./{}", unsplit_path()), vec!["path".to_owned()]),
        mtime("./etc/far"),
        mtime("./etc/nanos"),
        mtime("./etc/negative"),
        mtime("./etc/negative-whole"),
        (
            "./etc/owner".to_owned(),
            vec!["uid".to_owned(), "gid".to_owned()],
        ),
        ("./links/far".to_owned(), vec!["linkpath".to_owned()]),
        (
            "./links/hard-to-deep".to_owned(),
            vec!["linkpath".to_owned()],
        ),
    ]);
    assert_eq!(keys, want);

    let value = |name: &str, key: &str| {
        let (_, records) = &pax[name.as_bytes()];
        records
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(
        value("./bin/busybox", "SCHILY.xattr.security.capability"),
        CAPABILITY
    );
    assert_eq!(value("./etc/nanos", "mtime"), b"1700000000.12345");
    assert_eq!(value("./etc/negative", "mtime"), b"-1.5");
    assert_eq!(value("./etc/negative-whole", "mtime"), b"-100");
    assert_eq!(value("./etc/far", "mtime"), b"10000000000");
    assert_eq!(value("./etc/owner", "uid"), b"4000000000");
    assert_eq!(value("./etc/owner", "gid"), b"4000000001");
    assert_eq!(value("./links/far", "linkpath"), rep('t', 200).as_bytes());

    let by_name = |name: &str| {
        members
            .iter()
            .find(|m| m.typeflag() != b'x' && m.name() == name.as_bytes())
            .unwrap()
    };
    // Extended headers carry the entry's mtime, clamped to the field.
    let x_mtime = |name: &str| octal(&pax[name.as_bytes()].0.header[136..148]);
    assert_eq!(x_mtime("./etc/nanos"), T0 as u64);
    assert_eq!(x_mtime("./etc/negative"), 0);
    assert_eq!(x_mtime("./etc/far"), MAX_OCTAL_11);
    assert_eq!(octal(&by_name("./etc/far").header[136..148]), 0);
    assert_eq!(octal(&by_name("./etc/negative").header[136..148]), 0);
    assert_eq!(
        octal(&by_name("./etc/y2038").header[136..148]),
        4_000_000_000
    );
    assert_eq!(octal(&by_name("./etc/maxid").header[108..116]), 0o7777777);
    assert_eq!(
        &by_name("./etc/owner").header[108..124],
        b"0000000\x000000000\x00"
    );

    // 148 bytes: prefix and name, no pax record.
    let split = by_name(&format!("./{}", split_path()));
    assert_eq!(
        cstr(&split.header[345..500]),
        format!("./long/{}", rep('d', 60)).as_bytes()
    );
    assert_eq!(cstr(&split.header[..100]), rep('e', 80).as_bytes());
    let dir = by_name(&format!("./{}/", split_dir()));
    assert_eq!(
        cstr(&dir.header[..100]),
        format!("{}/", rep('n', 60)).as_bytes()
    );
    // Too long to split: the first 100 bytes, the rest in `path`.
    let deep = format!("./{}", unsplit_path());
    let unsplit = members
        .iter()
        .find(|m| m.typeflag() == b'0' && m.header[..100] == deep.as_bytes()[..100])
        .unwrap();
    assert_eq!(cstr(&unsplit.header[345..500]), b"");
    assert_eq!(value(&deep, "path"), deep.as_bytes());
    // A long symlink target: the first 100 bytes in the field.
    assert_eq!(
        &by_name("./links/far").header[157..257],
        rep('t', 100).as_bytes()
    );
    assert_eq!(
        &by_name("./links/near").header[157..257],
        rep('u', 100).as_bytes()
    );

    // Numeric field formats, as GNU tar writes them.
    let sda = by_name("./dev/sda");
    assert_eq!(
        &sda.header[100..148],
        b"0000660\x000000000\x000000006\x0000000000000\x0014524770400\x00"
    );
    assert_eq!(&sda.header[329..345], b"0000010\x000000000\x00");
    assert_eq!(
        &by_name("./bin/").header[329..345],
        b"0000000\x000000000\x00"
    );
    // Device numbers beyond 7 octal digits: base-256.
    let huge = by_name("./dev/huge");
    assert_eq!(&huge.header[329..337], b"\x80\0\0\0\0\x2d\xc6\xc0");
    assert_eq!(&huge.header[337..345], b"\x80\0\0\0\0\x3d\x09\x00");
}

/// A header block as GNU tar 1.34 writes it (`--format=posix
/// --numeric-owner`), from its fields as text.
#[allow(clippy::too_many_arguments)]
fn gnu_block(
    name: &str,
    mode: &str,
    size: &str,
    mtime: &str,
    chksum: &str,
    typeflag: u8,
    link: &str,
    dev: (&str, &str),
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    let mut put = |at: usize, s: &str| b[at..at + s.len()].copy_from_slice(s.as_bytes());
    put(0, name);
    put(100, mode);
    put(108, "0000000");
    put(116, "0000000");
    put(124, size);
    put(136, mtime);
    put(148, chksum);
    put(155, " ");
    put(157, link);
    put(257, "ustar");
    put(263, "00");
    put(329, dev.0);
    put(337, dev.1);
    b[156] = typeflag;
    b
}

#[test]
fn headers_are_byte_identical_to_gnu_tar() {
    let t = Time::from_secs(T0);
    let mut b = TreeBuilder::new(Meta::new(0o755, 0, 0, t));
    put(&mut b, "bin", meta(0o755), Content::Dir(BTreeMap::new()));
    let nanos = Time {
        sec: 1_577_836_800,
        nsec: 500_000_000,
    };
    put(
        &mut b,
        "bin/busybox",
        Meta::new(0o644, 0, 0, nanos),
        file(b"hello\n"),
    );
    b.hard_link(b"bin/sh2", b"bin/busybox").unwrap();
    put(
        &mut b,
        "bin/sh",
        meta(0o777),
        Content::Symlink((*b"busybox").into()),
    );
    put(&mut b, "dev", meta(0o755), Content::Dir(BTreeMap::new()));
    put(&mut b, "dev/fifo", meta(0o644), Content::Fifo);
    put(
        &mut b,
        "dev/null",
        meta(0o644),
        Content::CharDev { major: 1, minor: 3 },
    );
    let (bytes, _) = encode(&b.finish());
    let (members, _) = raw_members(&bytes);

    // GNU tar's own output for the same tree, checksums included.
    let z = ("0000000", "0000000");
    let none = "00000000000";
    let t0 = "14524770400";
    let want = [
        gnu_block("./", "0000755", none, t0, "007404", b'5', "", z),
        gnu_block("./bin/", "0000755", none, t0, "010154", b'5', "", z),
        gnu_block(
            "./bin/busybox",
            "0000644",
            "00000000006",
            "13602760400",
            "011561",
            b'0',
            "",
            z,
        ),
        gnu_block(
            "./bin/sh", "0000777", none, t0, "012124", b'2', "busybox", z,
        ),
        gnu_block(
            "./bin/sh2",
            "0000644",
            none,
            "13602760400",
            "013076",
            b'1',
            "./bin/busybox",
            z,
        ),
        gnu_block("./dev/", "0000755", none, t0, "010162", b'5', "", z),
        gnu_block("./dev/fifo", "0000644", none, t0, "011024", b'6', "", z),
        gnu_block(
            "./dev/null",
            "0000644",
            none,
            t0,
            "011054",
            b'3',
            "",
            ("0000001", "0000003"),
        ),
    ];
    let headers: Vec<_> = members.iter().filter(|m| m.typeflag() != b'x').collect();
    assert_eq!(headers.len(), want.len());
    for (got, want) in headers.iter().zip(&want) {
        assert_eq!(
            got.header,
            *want,
            "{}",
            String::from_utf8_lossy(cstr(&want[..100]))
        );
    }
    assert_eq!(headers[2].data, b"hello\n");

    // Only the nanosecond mtimes get an extended header, named as GNU
    // tar names it; GNU tar's adds `ctime=0` and `atime=0`.
    let x: Vec<_> = members.iter().filter(|m| m.typeflag() == b'x').collect();
    assert_eq!(x.len(), 2);
    for m in x {
        let mut want = gnu_block(
            "./bin/PaxHeaders/busybox",
            "0000644",
            "00000000026",
            "13602760400",
            "",
            b'x',
            "",
            ("", ""),
        );
        want[148..156].copy_from_slice(&m.header[148..156]);
        let name = cstr(&m.header[..100]);
        want[..100].fill(0);
        want[..name.len()].copy_from_slice(name);
        assert!(name == b"./bin/PaxHeaders/busybox" || name == b"./bin/PaxHeaders/sh2");
        assert_eq!(m.header, want);
        assert_eq!(m.data, b"22 mtime=1577836800.5\n");
    }
    // GNU tar names the root's extended header `./PaxHeaders/.`.
    assert_eq!(pax_header_name(b""), b"./PaxHeaders/.");
    assert_eq!(pax_header_name(b"bin"), b"./PaxHeaders/bin");
    assert_eq!(pax_header_name(b"bin/ping"), b"./bin/PaxHeaders/ping");
}

#[test]
fn output_is_deterministic_and_record_padded() {
    let tree = sample();
    let (a, _) = encode(&tree);
    let (b, _) = encode(&tree);
    assert!(a == b);
    assert_eq!(a.len() % 10240, 0);

    // The smallest archive: the root, two zero blocks, one record.
    let empty = TreeBuilder::new(meta(0o755)).finish();
    let (bytes, report) = encode(&empty);
    assert_eq!(bytes.len(), 10240);
    assert_eq!(report.bytes, 10240);
    assert!(report.warnings.is_empty());
    assert_eq!(cstr(&bytes[..100]), b"./");
    assert!(bytes[BLOCK..].iter().all(|&b| b == 0));
}

/// A sink that records where boundaries are marked.
struct Marks {
    bytes: Vec<u8>,
    marks: Vec<usize>,
    writes: usize,
}

impl std::io::Write for Marks {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for Marks {
    fn boundary(&mut self) -> io::Result<()> {
        self.marks.push(self.bytes.len());
        Ok(())
    }
}

#[test]
fn boundaries_fall_between_members() {
    let tree = sample();
    let mut sink = Marks {
        bytes: Vec::new(),
        marks: Vec::new(),
        writes: 0,
    };
    DENSE.write(&tree.view(), &mut sink).unwrap();
    let (members, end) = raw_members(&sink.bytes);
    // Where each member (with its extended header) ends.
    let mut ends = Vec::new();
    let mut at = 0;
    for m in &members {
        at += BLOCK + m.data.len().div_ceil(BLOCK) * BLOCK;
        if m.typeflag() != b'x' {
            ends.push(at);
        }
    }
    assert_eq!(at, end);
    let (last, inner) = sink.marks.split_last().unwrap();
    assert_eq!(*last, sink.bytes.len());
    assert!(!inner.is_empty());
    for mark in inner {
        assert!(ends.contains(mark), "boundary at {mark} is inside a member");
    }
    // The large files go out directly, the rest in a few big writes.
    assert!(sink.writes < 10, "{} writes", sink.writes);
}

#[test]
fn check_refuses_only_what_pax_cannot_say() {
    let tree = sample();
    TarEncoder::default().check(&tree.view()).unwrap();

    let mut b = TreeBuilder::new(meta(0o755));
    put(
        &mut b,
        "a",
        meta(0o777),
        Content::Symlink((*b"x\0y").into()),
    );
    let err = TarEncoder::default().check(&b.finish().view()).unwrap_err();
    assert!(
        err.to_string().contains("/a: tar cannot store a NUL byte"),
        "{err}"
    );

    let mut b = TreeBuilder::new(meta(0o755));
    let f = put(&mut b, "f", meta(0o644), file(b""));
    b.inode_mut(f).set_xattr(b"user.a=b", b"1");
    let tree = b.finish();
    let err = TarEncoder::default().check(&tree.view()).unwrap_err();
    assert!(
        err.to_string()
            .contains("/f: tar cannot store an xattr name"),
        "{err}"
    );
    let mut out = Plain(Vec::new());
    assert!(TarEncoder::default().write(&tree.view(), &mut out).is_err());
    assert!(out.0.is_empty(), "nothing written before the check");

    let mut b = TreeBuilder::new(meta(0o755));
    let bad = Meta::new(
        0o644,
        0,
        0,
        Time {
            sec: 0,
            nsec: 1_000_000_000,
        },
    );
    put(&mut b, "t", bad, file(b""));
    assert!(TarEncoder::default().check(&b.finish().view()).is_err());
}

#[test]
fn record_lengths_count_themselves() {
    let mut pax = Vec::new();
    // Around every change in the number of digits of the length.
    for n in 0..1100 {
        pax.clear();
        let value = vec![b'v'; n];
        record(&mut pax, b"path", &value);
        let records = parse_records(&pax);
        assert_eq!(records, [(b"path".to_vec(), value)]);
    }
}

#[test]
fn values_may_hold_newlines_and_any_byte() {
    let mut b = TreeBuilder::new(meta(0o755));
    let f = put(&mut b, "f", meta(0o644), file(b"x"));
    let value: Vec<u8> = (0..=255u8).collect();
    b.inode_mut(f).set_xattr(b"user.bytes", &value);
    b.inode_mut(f)
        .set_xattr(b"security.selinux", b"system_u:object_r:bin_t:s0\0");
    let (bytes, _) = encode(&b.finish());
    let (members, _) = raw_members(&bytes);
    let pax = pax_of(&members);
    let (_, records) = &pax[&b"./f"[..]];
    assert_eq!(
        records,
        &[
            (
                b"SCHILY.xattr.security.selinux".to_vec(),
                b"system_u:object_r:bin_t:s0\0".to_vec()
            ),
            (b"SCHILY.xattr.user.bytes".to_vec(), value),
        ]
    );
}

#[test]
fn names_split_only_at_a_slash_that_fits() {
    let name = |s: String| s.into_bytes();
    // 100 bytes fit the name field as they are.
    let n = name(format!("./{}", rep('a', 98)));
    assert_eq!(split_name(&n), Some((&b""[..], &n[..])));
    // The prefix holds at most 155 bytes.
    let n = name(format!("./{}/{}", rep('a', 153), rep('b', 10)));
    assert_eq!(split_name(&n).map(|(p, _)| p.len()), Some(155));
    let n = name(format!("./{}/{}", rep('a', 154), rep('b', 10)));
    assert_eq!(split_name(&n), None);
    // The name part holds at most 100 bytes.
    let n = name(format!("./a/{}", rep('b', 101)));
    assert_eq!(split_name(&n), None);
    // A directory's own trailing slash is not a split point.
    let n = name(format!("./{}/", rep('a', 120)));
    assert_eq!(split_name(&n), None);
    let n = name(format!("./x/{}/", rep('a', 99)));
    assert_eq!(split_name(&n), Some((&b"./x"[..], &n[4..])));
}

/// A file with holes: data at 4096 and 1 MiB in a 3 MiB file, and one that
/// is only a hole.
fn holey() -> Tree {
    let mut b = TreeBuilder::new(meta(0o755));
    let mut backing = vec![0u8; 1024];
    backing[..100].fill(b'A');
    backing[512..522].fill(b'B');
    let backing: rootforge_common::Backing = std::sync::Arc::new(backing);
    let extents = vec![
        rootforge_common::Extent {
            logical: 4096,
            stored: 0,
            len: 100,
        },
        rootforge_common::Extent {
            logical: 1 << 20,
            stored: 512,
            len: 10,
        },
    ];
    let data = FileData::sparse(backing, extents, 3 << 20).unwrap();
    put(&mut b, "var/disk.img", meta(0o600), Content::File(data));
    put(
        &mut b,
        "var/hole",
        meta(0o644),
        Content::File(FileData::zeros(8 << 20)),
    );
    put(&mut b, "var/dense", meta(0o644), file(b"dense"));
    b.finish()
}

#[test]
fn holes_are_written_as_pax_sparse_1_0() {
    let tree = holey();
    let mut out = Plain(Vec::new());
    TarEncoder::default().write(&tree.view(), &mut out).unwrap();
    let bytes = out.0;
    // Two small sparse members, not 11 MiB of zeros.
    assert!(bytes.len() < 20 << 10, "{} bytes", bytes.len());
    let (members, _) = raw_members(&bytes);
    let pax = pax_of(&members);
    let disk = members
        .iter()
        .find(|m| m.name() == b"./var/GNUSparseFile.0/disk.img")
        .unwrap();
    let (_, records) = &pax[&b"./var/GNUSparseFile.0/disk.img"[..]];
    let keys: Vec<_> = records
        .iter()
        .map(|(k, v)| {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (text(k), text(v))
        })
        .collect();
    assert_eq!(
        keys[..4],
        [
            ("GNU.sparse.major".to_owned(), "1".to_owned()),
            ("GNU.sparse.minor".to_owned(), "0".to_owned()),
            ("GNU.sparse.name".to_owned(), "./var/disk.img".to_owned()),
            ("GNU.sparse.realsize".to_owned(), (3u64 << 20).to_string()),
        ]
    );
    // The map (with GNU tar's closing empty run), then the runs' data.
    assert!(
        disk.data
            .starts_with(b"3\n4096\n100\n1048576\n10\n3145728\n0\n\0")
    );
    assert_eq!(disk.data.len(), 512 + 110);
    assert_eq!(&disk.data[512..612], &[b'A'; 100][..]);
    assert_eq!(&disk.data[612..], &[b'B'; 10][..]);

    // Our reader gives the same tree back, holes and all.
    let back = crate::read(std::sync::Arc::new(bytes), &crate::ReadOptions::default()).unwrap();
    let view = back.tree.view();
    let got = |p: &[u8]| match &view.inode(view.lookup(p).unwrap()).content {
        Content::File(d) => d.clone(),
        other => panic!("{other:?}"),
    };
    let disk = got(b"var/disk.img");
    assert_eq!(disk.size(), 3 << 20);
    assert_eq!(sparse::runs(&disk), Some(vec![(4096, 100), (1 << 20, 10)]));
    let want = tree.view();
    let orig = match &want.inode(want.lookup(b"var/disk.img").unwrap()).content {
        Content::File(d) => d.to_vec().unwrap(),
        _ => unreachable!(),
    };
    assert!(disk.to_vec().unwrap() == orig);
    let hole = got(b"var/hole");
    assert_eq!((hole.size(), sparse::runs(&hole)), (8 << 20, Some(vec![])));
    assert_eq!(got(b"var/dense").to_vec().unwrap(), b"dense");
}

#[test]
fn dense_mode_writes_every_byte_and_files_without_holes_are_unchanged() {
    let tree = holey();
    let mut out = Plain(Vec::new());
    DENSE.write(&tree.view(), &mut out).unwrap();
    assert!(out.0.len() > 11 << 20);
    drop(out);
    // Without holes, both modes give the same bytes.
    let tree = sample_without_zeros();
    let (mut a, mut b) = (Plain(Vec::new()), Plain(Vec::new()));
    DENSE.write(&tree.view(), &mut a).unwrap();
    TarEncoder::default().write(&tree.view(), &mut b).unwrap();
    assert!(a.0 == b.0);
    assert_eq!("pax".parse::<Sparse>(), Ok(Sparse::Pax));
    assert_eq!("none".parse::<Sparse>(), Ok(Sparse::Dense));
    assert!("gnu".parse::<Sparse>().is_err());
}

/// The sample tree without its all-zero file.
fn sample_without_zeros() -> Tree {
    let mut b = sample().into_builder(meta(0o755));
    b.remove(b"data/zeros").unwrap();
    b.finish()
}
