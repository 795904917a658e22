//! Images of in-memory trees, checked against squashfs-tools' `unsquashfs`.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rootforge_common::{
    Buffer, Content, Edit, Encoder, Error, FileData, Inode, Kind, Meta, Replace, Time, Tree,
    TreeBuilder,
};

use crate::{Bcj, Comp, SquashfsEncoder};

pub(crate) const T0: i64 = 1_700_000_000;

pub(crate) fn meta(perm: u16, uid: u32, gid: u32, sec: i64) -> Meta {
    Meta::new(perm, uid, gid, Time::from_secs(sec))
}

pub(crate) fn file(perm: u16, bytes: Vec<u8>) -> Inode {
    Inode::new(
        meta(perm, 0, 0, T0 + 60),
        Content::File(FileData::bytes(bytes)),
    )
}

/// Bytes no compressor can shrink.
pub(crate) fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Every inode type, hard links, holes, block-sized and empty files, a
/// 1000-entry directory and one whose listing needs an extended inode.
fn sample_tree() -> Tree {
    sample_builder().finish()
}

/// [`sample_tree`] before `finish`, for tests that add to it.
pub(crate) fn sample_builder() -> TreeBuilder {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    let mut put = |path: &str, inode: Inode| {
        b.insert(path.as_bytes(), inode, Replace::Always).unwrap();
    };
    put("bin", Inode::dir(meta(0o755, 0, 0, T0 + 1)));
    put("bin/sh", file(0o4755, b"#!shell ".repeat(700)));
    put(
        "etc/passwd",
        file(0o644, b"root:x:0:0::/root:/bin/sh\n".to_vec()),
    );
    put(
        "empty",
        Inode::new(
            meta(0o600, 4_000_000_000, 4_000_000_001, T0 + 120),
            Content::File(FileData::empty()),
        ),
    );
    put("exact", file(0o644, b"0123456789abcdef".repeat(256)));
    let mut big = noise(3 * 4096 + 100, 7);
    big.extend_from_slice(&b"tail".repeat(10));
    put("big", file(0o640, big.clone()));
    // Duplicates of a multi-block file and of a fragment-only file.
    put("dup/big", file(0o600, big));
    put(
        "dup/passwd",
        file(0o600, b"root:x:0:0::/root:/bin/sh\n".to_vec()),
    );
    let mut sparse = noise(4096, 9);
    sparse.extend_from_slice(&[0u8; 2 * 4096]);
    sparse.extend_from_slice(b"end of sparse");
    put("sparse", file(0o644, sparse));
    put(
        "zeros",
        Inode::new(
            meta(0o644, 0, 0, T0),
            Content::File(FileData::zeros(3 * 4096)),
        ),
    );
    // With 4 KiB blocks, a short last block that is a hole.
    put(
        "zeros-tail",
        Inode::new(
            meta(0o644, 0, 0, T0),
            Content::File(FileData::zeros(2 * 4096 + 700)),
        ),
    );
    put("hl/a", file(0o755, b"linked".to_vec()));
    put(
        "sym",
        Inode::new(
            meta(0o777, 0, 0, T0 + 5),
            Content::Symlink(b"etc/passwd"[..].into()),
        ),
    );
    put(
        "dev/null",
        Inode::new(
            meta(0o666, 0, 0, T0),
            Content::CharDev { major: 1, minor: 3 },
        ),
    );
    put(
        "dev/sda",
        Inode::new(
            meta(0o660, 0, 6, T0),
            Content::BlockDev { major: 8, minor: 0 },
        ),
    );
    put(
        "dev/wide",
        Inode::new(
            meta(0o600, 0, 0, T0),
            // The widest major; unsquashfs 4.5 lists rdev as a signed int,
            // so minors of 2^19 and more would print as negative there.
            Content::CharDev {
                major: 0xfff,
                minor: 0x7_ffff,
            },
        ),
    );
    put(
        "fifo",
        Inode::new(meta(0o644, 1000, 1000, T0), Content::Fifo),
    );
    put("sock", Inode::new(meta(0o755, 0, 0, T0), Content::Socket));
    put("e", Inode::dir(meta(0o700, 5, 5, T0 + 2)));
    for i in 0..1000 {
        put(
            &format!("many/f{i:04}"),
            file(0o644, format!("{i}\n").into_bytes()),
        );
    }
    for i in 0..300 {
        let name = format!("{i:03}{}", "n".repeat(247));
        put(&format!("long/{name}"), file(0o644, vec![b'x'; i]));
    }
    put(&"m".repeat(255), file(0o644, b"max name".to_vec()));
    b.hard_link(b"hl/b", b"hl/a").unwrap();
    b.hard_link(b"c-link", b"hl/a").unwrap();
    // File capabilities (binary), and the same set on two inodes so they
    // share an id; user xattrs only where Linux allows them (files, dirs).
    let caps = b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    for (path, name, value) in [
        ("bin/sh", "security.capability", &caps[..]),
        ("bin/sh", "user.mime", b"text/x-shellscript"),
        ("etc/passwd", "security.capability", &caps[..]),
        ("etc/passwd", "user.mime", b"text/x-shellscript"),
        ("hl/a", "trusted.linked", b"yes"),
        ("e", "user.dir", b""),
        ("sym", "trusted.overlay.opaque", b"y"),
        (
            "dev/null",
            "security.selinux",
            b"system_u:object_r:null_device_t:s0\0",
        ),
        ("fifo", "trusted.big", &[0xa5; 3000]),
        // Over 8 KiB in all (ext4 takes at most 4 KiB per inode), so pairs
        // straddle metadata blocks.
        ("many", "user.big", &[0x5a; 3000]),
        ("exact", "user.big", &[0x3c; 3500]),
    ] {
        b.modify(path.as_bytes(), &mut |i| {
            i.set_xattr(name.as_bytes(), value)
        })
        .unwrap();
    }
    b
}

fn encode(tree: &Tree, enc: &SquashfsEncoder) -> Vec<u8> {
    let mut out = Buffer::default();
    let report = enc.write(&tree.view(), &mut out).unwrap();
    assert_eq!(report.bytes, out.0.len() as u64);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    out.0
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("rootforge-squashfs-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs unsquashfs; a missing tool fails the test.
fn unsquashfs(args: &[&str], image: &Path) -> String {
    let out = Command::new("unsquashfs")
        .args(args)
        .arg(image)
        .output()
        .expect("unsquashfs (apt-get install squashfs-tools) must be installed");
    assert!(
        out.status.success(),
        "unsquashfs {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ls -l`'s mode column.
fn mode_string(kind: Kind, perm: u16) -> String {
    let mut s = String::new();
    s.push(match kind {
        Kind::File => '-',
        k => k.letter(),
    });
    let bit = |b: u16, c: char| if perm & b != 0 { c } else { '-' };
    let special = |x: u16, sp: u16, lower: char, upper: char, plain: char| match (
        perm & x != 0,
        perm & sp != 0,
    ) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => plain,
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S', 'x'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S', 'x'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T', 'x'));
    s
}

/// `YYYY-MM-DD HH:MM` in UTC.
fn minute(sec: i64) -> String {
    let days = sec.div_euclid(86400);
    let rem = sec.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// What `unsquashfs -lln -UTC` prints for each entry of the tree, by path,
/// without the size of directories (which is the listing's size).
fn expected_listing(tree: &Tree) -> HashMap<String, String> {
    let view = tree.view();
    let mut out = HashMap::new();
    for e in view.sorted_entries() {
        let inode = view.inode(e.ino);
        let size = match &inode.content {
            Content::Dir(_) => "-".to_owned(),
            Content::File(d) => d.size().to_string(),
            Content::Symlink(t) => t.len().to_string(),
            Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
                // unsquashfs lists the stored word as `word >> 8, word & 0xff`
                // (right only for minors below 256); extraction decodes it
                // properly, and `check_extracted` compares that.
                let word = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
                format!("{},{}", word >> 8, word & 0xff)
            }
            Content::Fifo | Content::Socket => "0".to_owned(),
        };
        let mut path = String::from("squashfs-root");
        if !e.path.is_empty() {
            path.push('/');
            path.push_str(std::str::from_utf8(&e.path).unwrap());
        }
        if let Content::Symlink(t) = &inode.content {
            path.push_str(" -> ");
            path.push_str(std::str::from_utf8(t).unwrap());
        }
        let line = format!(
            "{} {}/{} {size} {} {path}",
            mode_string(inode.kind(), inode.meta.perm),
            inode.meta.uid,
            inode.meta.gid,
            minute(inode.meta.mtime.sec),
        );
        out.insert(String::from_utf8(e.path.to_vec()).unwrap(), line);
    }
    out
}

/// The listing lines by path, with whitespace runs collapsed, device
/// numbers as `major,minor` and directory sizes as `-`.
fn actual_listing(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| l.contains("squashfs-root")) {
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let dev;
        if words[2].ends_with(',') {
            dev = format!("{}{}", words[2], words[3]);
            words.splice(2..4, [dev.as_str()]);
        }
        if words[0].starts_with('d') {
            words[2] = "-";
        }
        let path = words[5]
            .strip_prefix("squashfs-root")
            .unwrap()
            .trim_start_matches('/')
            .to_owned();
        out.insert(path, words.join(" "));
    }
    out
}

/// Extracts the image as root and compares every entry with the tree:
/// type, mode, owner, mtime, contents, link targets, devices, hard links.
fn check_extracted(tree: &Tree, image: &Path, dir: &Path) {
    let root = dir.join("x");
    unsquashfs(&["-d", root.to_str().unwrap()], image);
    let view = tree.view();
    let mut by_ino: HashMap<_, u64> = HashMap::new();
    for e in view.sorted_entries() {
        let inode = view.inode(e.ino);
        let p = root.join(std::str::from_utf8(&e.path).unwrap());
        let md = fs::symlink_metadata(&p).unwrap();
        let name = p.display();
        assert_eq!(md.mode(), inode.mode(), "{name}");
        assert_eq!(
            (md.uid(), md.gid()),
            (inode.meta.uid, inode.meta.gid),
            "{name}"
        );
        assert_eq!(md.mtime(), inode.meta.mtime.sec, "{name}");
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = xattr::list(&p)
            .unwrap()
            .map(|n| {
                let v = xattr::get(&p, &n).unwrap().unwrap_or_default();
                (n.as_encoded_bytes().to_vec(), v)
            })
            .collect();
        xattrs.sort();
        let want: Vec<(Vec<u8>, Vec<u8>)> = inode
            .xattrs
            .iter()
            .map(|x| (x.name.to_vec(), x.value.to_vec()))
            .collect();
        assert_eq!(xattrs, want, "{name}");
        match &inode.content {
            Content::File(d) => {
                assert_eq!(fs::read(&p).unwrap(), d.to_vec().unwrap(), "{name}");
                assert_eq!(md.nlink(), u64::from(e.nlink), "{name}");
                let ino = *by_ino.entry(e.ino).or_insert(md.ino());
                assert_eq!(ino, md.ino(), "{name} is not hard-linked");
            }
            Content::Symlink(t) => {
                assert_eq!(
                    fs::read_link(&p).unwrap().as_os_str().as_encoded_bytes(),
                    &**t
                );
            }
            Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
                let rdev = md.rdev();
                let (maj, min) = (
                    ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff),
                    (rdev & 0xff) | ((rdev >> 12) & !0xff),
                );
                assert_eq!((maj, min), (u64::from(*major), u64::from(*minor)), "{name}");
            }
            Content::Fifo => assert!(md.file_type().is_fifo(), "{name}"),
            Content::Socket => assert!(md.file_type().is_socket(), "{name}"),
            Content::Dir(_) => assert!(md.is_dir(), "{name}"),
        }
    }
}

/// Writes the sample tree, checks unsquashfs's listing, extraction and
/// statistics against it, and returns `unsquashfs -stat`.
fn roundtrip(name: &str, enc: SquashfsEncoder) -> String {
    let tree = sample_tree();
    let bytes = encode(&tree, &enc);
    assert_eq!(bytes.len() % 4096 == 0, enc.pad, "{}", bytes.len());
    let dir = scratch(name);
    let image = dir.join("img.sqfs");
    fs::write(&image, &bytes).unwrap();
    let listed = actual_listing(&unsquashfs(&["-lln", "-UTC"], &image));
    let expected = expected_listing(&tree);
    assert_eq!(listed.len(), expected.len());
    for (path, line) in &expected {
        assert_eq!(listed.get(path), Some(line), "{path}");
    }
    check_extracted(&tree, &image, &dir);
    let stat = unsquashfs(&["-stat"], &image);
    let exportable = stat.contains("Filesystem is exportable via NFS");
    assert_eq!(exportable, enc.exportable, "{stat}");
    let inodes: std::collections::HashSet<_> =
        tree.view().sorted_entries().iter().map(|e| e.ino).collect();
    assert!(
        stat.contains(&format!("Number of inodes {}\n", inodes.len())),
        "{stat}"
    );
    let compression = match enc.comp {
        Comp::None => "gzip",
        c => c.name(),
    };
    assert!(
        stat.contains(&format!("Compression {compression}\n")),
        "{stat}"
    );
    fs::remove_dir_all(&dir).unwrap();
    stat
}

#[test]
fn gzip_small_blocks_no_exports_no_pad_roundtrip() {
    roundtrip(
        "gzip",
        SquashfsEncoder {
            block_size: 4096,
            exportable: false,
            pad: false,
            ..SquashfsEncoder::new(Comp::Gzip)
        },
    );
}

#[test]
fn tail_ends_in_fragments_or_short_blocks_roundtrip() {
    for always_fragments in [false, true] {
        let stat = roundtrip(
            &format!("tails-{always_fragments}"),
            SquashfsEncoder {
                block_size: 4096,
                always_fragments,
                ..SquashfsEncoder::new(Comp::Zstd)
            },
        );
        let said = stat.contains("Always-use-fragments option is specified");
        assert_eq!(said, always_fragments, "{stat}");
    }
}

#[test]
fn every_compressor_roundtrips() {
    for comp in Comp::ALL {
        roundtrip(comp.name(), SquashfsEncoder::new(comp));
    }
}

/// The options block says what squashfs-tools would: only what differs
/// from its defaults, always for lz4.
#[test]
fn compressor_options_roundtrip() {
    let stat = roundtrip("lz4hc", SquashfsEncoder::new(Comp::Lz4).extreme("x86_64"));
    assert!(stat.contains("High Compression option specified"), "{stat}");
    let stat = roundtrip("lz4", SquashfsEncoder::new(Comp::Lz4));
    assert!(!stat.contains("High Compression"), "{stat}");
    let stat = roundtrip(
        "xz-bcj",
        SquashfsEncoder {
            bcj: Bcj::parse("x86,arm,armthumb").unwrap(),
            ..SquashfsEncoder::new(Comp::Xz)
        },
    );
    assert!(
        stat.contains("Filters selected: x86, arm, armthumb"),
        "{stat}"
    );
    let stat = roundtrip("xz-arm", SquashfsEncoder::new(Comp::Xz).extreme("arm"));
    assert!(stat.contains("Filters selected: arm, armthumb"), "{stat}");
    let stat = roundtrip(
        "gzip4",
        SquashfsEncoder {
            level: 4,
            ..SquashfsEncoder::new(Comp::Gzip)
        },
    );
    assert!(stat.contains("compression-level 4\n"), "{stat}");
    let stat = roundtrip("zstd22", SquashfsEncoder::new(Comp::Zstd).extreme("x86_64"));
    assert!(stat.contains("compression-level 22\n"), "{stat}");
    let stat = roundtrip("lzo", SquashfsEncoder::new(Comp::Lzo).extreme("x86_64"));
    assert!(stat.contains("Compression lzo"), "{stat}");
}

#[test]
fn same_bytes_for_any_thread_count() {
    let tree = sample_tree();
    let enc = SquashfsEncoder {
        block_size: 4096,
        ..SquashfsEncoder::new(Comp::Zstd)
    };
    let with = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
            .install(|| encode(&tree, &enc))
    };
    let one = with(1);
    assert_eq!(one, with(4));
    assert_eq!(one, encode(&tree, &enc));
}

#[test]
fn long_names_fail_check_before_any_byte() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    let name = format!("d/{}", "x".repeat(256));
    b.insert(name.as_bytes(), file(0o644, Vec::new()), Replace::Always)
        .unwrap();
    let tree = b.finish();
    let enc = SquashfsEncoder::default();
    let err = enc.check(&tree.view()).unwrap_err();
    assert!(
        matches!(&err, Error::Limit { what: "name length", value: 256, limit: 255, path, .. }
            if path.starts_with("/d/xxx")),
        "{err}"
    );
    let mut out = Buffer::default();
    assert!(enc.write(&tree.view(), &mut out).is_err());
    assert!(out.0.is_empty());
}

#[test]
fn bad_options_are_rejected() {
    let tree = sample_tree();
    for enc in [
        SquashfsEncoder {
            block_size: 3000,
            ..SquashfsEncoder::default()
        },
        SquashfsEncoder {
            block_size: 2 << 20,
            ..SquashfsEncoder::default()
        },
        SquashfsEncoder {
            level: 23,
            ..SquashfsEncoder::new(Comp::Zstd)
        },
        SquashfsEncoder {
            level: 8,
            ..SquashfsEncoder::new(Comp::Lzo)
        },
        SquashfsEncoder {
            bcj: Bcj::X86,
            ..SquashfsEncoder::new(Comp::Zstd)
        },
    ] {
        assert!(
            matches!(enc.check(&tree.view()), Err(Error::Unsupported { .. })),
            "{enc:?}"
        );
    }
}

#[test]
fn unstorable_xattrs_are_dropped_with_a_warning() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    b.insert(b"f", file(0o644, b"x".to_vec()), Replace::Always)
        .unwrap();
    b.modify(b"f", &mut |i| {
        i.set_xattr(b"system.posix_acl_access", b"\x02\0\0\0");
        i.set_xattr(b"user.kept", b"1");
    })
    .unwrap();
    let tree = b.finish();
    let mut out = Buffer::default();
    let report = SquashfsEncoder::default()
        .write(&tree.view(), &mut out)
        .unwrap();
    assert_eq!(
        report.warnings,
        [
            "squashfs stores only user., trusted. and security. xattrs: dropped 1 \
          (first: /f system.posix_acl_access)"
        ]
    );
    // The superblock points at an xattr table and lacks the "no xattrs" flag.
    let flags = u16::from_le_bytes([out.0[24], out.0[25]]);
    assert_eq!(flags & 0x0200, 0);
    assert_ne!(&out.0[56..64], &[0xff; 8]);
}

#[test]
fn files_over_4_gib_and_holes_use_extended_inodes() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    let size = (5u64 << 30) + 1;
    b.insert(
        b"huge",
        Inode::new(meta(0o644, 0, 0, T0), Content::File(FileData::zeros(size))),
        Replace::Always,
    )
    .unwrap();
    let tree = b.finish();
    let bytes = encode(&tree, &SquashfsEncoder::new(Comp::Zstd));
    // Every block is a hole: only metadata and one fragment remain.
    assert!(bytes.len() < 64 << 10, "{} bytes", bytes.len());
    let dir = scratch("huge");
    let image = dir.join("img.sqfs");
    fs::write(&image, &bytes).unwrap();
    let listed = actual_listing(&unsquashfs(&["-lln", "-UTC"], &image));
    assert_eq!(listed, expected_listing(&tree));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn limits_fail_check() {
    let enc = SquashfsEncoder::default();
    let fails = |inode: Inode, what: &str| {
        let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
        b.insert(b"x", inode, Replace::Always).unwrap();
        let tree = b.finish();
        match enc.check(&tree.view()) {
            Err(Error::Limit { what: w, path, .. }) => {
                assert_eq!((w, path.as_str()), (what, "/x"));
            }
            other => panic!("{what}: {other:?}"),
        }
    };
    let m = meta(0o644, 0, 0, T0);
    fails(
        Inode::new(
            m,
            Content::CharDev {
                major: 0x1000,
                minor: 0,
            },
        ),
        "device major",
    );
    fails(
        Inode::new(
            m,
            Content::BlockDev {
                major: 0,
                minor: 0x10_0000,
            },
        ),
        "device minor",
    );
    fails(
        Inode::new(m, Content::Symlink(vec![b'a'; 4097].into())),
        "symlink target length",
    );
    let mut big_value = file(0o644, Vec::new());
    big_value.set_xattr(b"user.x", &vec![0; 65537]);
    fails(big_value, "xattr value size");
}

#[test]
fn at_most_65535_distinct_ids() {
    let enc = SquashfsEncoder::default();
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    // The root uses id 0; these add 65534 more.
    for id in 1..65535u32 {
        let inode = Inode::new(meta(0o644, id, id, T0), Content::Fifo);
        b.insert(format!("f{id}").as_bytes(), inode, Replace::Always)
            .unwrap();
    }
    let tree = b.finish();
    enc.check(&tree.view()).unwrap();
    let mut b = tree.into_builder(meta(0o755, 0, 0, T0));
    let inode = Inode::new(meta(0o644, 65535, 0, T0), Content::Fifo);
    b.insert(b"one-more", inode, Replace::Always).unwrap();
    let err = enc.check(&b.finish().view()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                what: "number of distinct uids and gids",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn mtimes_outside_32_bits_are_clamped_with_a_warning() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    for (name, sec) in [("old", -5), ("new", 1 << 33)] {
        let inode = Inode::new(meta(0o644, 0, 0, sec), Content::Fifo);
        b.insert(name.as_bytes(), inode, Replace::Always).unwrap();
    }
    let tree = b.finish();
    let mut out = Buffer::default();
    let report = SquashfsEncoder::default()
        .write(&tree.view(), &mut out)
        .unwrap();
    assert_eq!(
        report.warnings,
        [
            "squashfs stores mtimes as unsigned 32-bit seconds (1970 to 2106): clamped 2 \
          entries (first: /new at 8589934592)"
        ]
    );
    let dir = scratch("clamp");
    let image = dir.join("img.sqfs");
    fs::write(&image, &out.0).unwrap();
    let listed = actual_listing(&unsquashfs(&["-lln", "-UTC"], &image));
    assert!(listed["old"].contains(&minute(0)), "{}", listed["old"]);
    assert!(
        listed["new"].contains(&minute(u32::MAX.into())),
        "{}",
        listed["new"]
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn identical_files_are_stored_once() {
    let image = |copies: usize| {
        let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
        let data = noise(300_000, 3);
        for i in 0..copies {
            b.insert(
                format!("f{i}").as_bytes(),
                file(0o644, data.clone()),
                Replace::Always,
            )
            .unwrap();
        }
        // Same size, different bytes: not a duplicate.
        let mut other = data;
        other[299_999] ^= 1;
        b.insert(b"other", file(0o644, other), Replace::Always)
            .unwrap();
        encode(&b.finish(), &SquashfsEncoder::new(Comp::Lz4)).len()
    };
    let (one, three) = (image(1), image(3));
    // Both files' two full blocks are stored (their near-identical tails
    // share a fragment block, where LZ4 finds the repeat).
    assert!(one > 4 * 131_072, "{one}");
    assert_eq!(
        one, three,
        "copies take only inode space, under the 4 KiB padding"
    );
}

/// With tail ends in fragments, a tail equal to one already packed is
/// stored once: two files with different blocks but the same random tail
/// take one tail's space, and both read back whole.
#[test]
fn identical_tail_ends_share_a_fragment() {
    let tree = |same_tail: bool| {
        let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
        let tail = noise(3000, 11);
        let other_tail = if same_tail {
            tail.clone()
        } else {
            noise(3000, 12)
        };
        let a = [noise(4096, 13), tail].concat();
        let c = [noise(4096, 14), other_tail].concat();
        b.insert(b"a", file(0o644, a), Replace::Always).unwrap();
        b.insert(b"c", file(0o644, c), Replace::Always).unwrap();
        b.finish()
    };
    let enc = SquashfsEncoder {
        block_size: 4096,
        always_fragments: true,
        pad: false,
        ..SquashfsEncoder::new(Comp::Gzip)
    };
    let shared = encode(&tree(true), &enc);
    let apart = encode(&tree(false), &enc);
    assert!(
        apart.len() >= shared.len() + 2900,
        "shared {} apart {}",
        shared.len(),
        apart.len()
    );
    let back = crate::read(std::sync::Arc::new(shared)).unwrap();
    let want = tree(true);
    assert_eq!(
        rootforge_common::listing::of_view(&back.view()).unwrap(),
        rootforge_common::listing::of_view(&want.view()).unwrap()
    );
}
