//! Images of in-memory trees read back by our reader, and mkfs.jffs2's
//! images read by it.

use std::process::Command;
use std::sync::Arc;

use rootforge_common::listing::of_view;
use rootforge_common::{
    Buffer, Content, Edit, Encoder, Error, FileData, Inode, Meta, Replace, Time, Tree, TreeBuilder,
};

use crate::records::{NODETYPE_CLEANMARKER, UNKNOWN_NODE_LEN};
use crate::{Compr, Endian, Jffs2Encoder, Pad, is_jffs2, read};

const T0: Time = Time::from_secs(1_700_000_000);

fn meta(perm: u16, uid: u32, gid: u32) -> Meta {
    Meta::new(perm, uid, gid, T0)
}

fn file(data: Vec<u8>) -> Inode {
    Inode::new(meta(0o644, 0, 0), Content::File(FileData::bytes(data)))
}

/// Pseudo-random bytes that do not compress.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sample_tree() -> Tree {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0));
    b.insert(
        b"",
        Inode::dir(Meta::new(0o711, 1, 2, Time::from_secs(5))),
        Replace::Always,
    )
    .unwrap();
    b.insert(b"etc/hostname", file(b"box\n".to_vec()), Replace::Always)
        .unwrap();
    b.insert(b"empty", file(Vec::new()), Replace::Always)
        .unwrap();
    let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog\n".repeat(3000);
    b.insert(b"usr/share/text", file(text), Replace::Always)
        .unwrap();
    b.insert(b"usr/lib/blob", file(noise(300_000, 7)), Replace::Always)
        .unwrap();
    b.insert(b"usr/lib/page", file(noise(4096, 8)), Replace::Always)
        .unwrap();
    b.hard_link(b"usr/bin/link", b"usr/share/text").unwrap();
    b.insert(
        b"bin/sh",
        Inode::new(meta(0o777, 0, 0), Content::Symlink(b"busybox"[..].into())),
        Replace::Always,
    )
    .unwrap();
    for (name, c) in [
        (&b"dev/console"[..], Content::CharDev { major: 5, minor: 1 }),
        (b"dev/sda", Content::BlockDev { major: 8, minor: 0 }),
        (
            b"dev/big",
            Content::CharDev {
                major: 300,
                minor: 70000,
            },
        ),
        (b"run/fifo", Content::Fifo),
        (b"run/sock", Content::Socket),
    ] {
        b.insert(name, Inode::new(meta(0o600, 3, 4), c), Replace::Always)
            .unwrap();
    }
    let mut x = file(b"#!/bin/sh\n".to_vec());
    x.set_xattr(b"security.capability", &[1, 0, 0, 2, 0x20, 0, 0, 0]);
    x.set_xattr(b"user.note", b"hello");
    b.insert(b"bin/ping", x, Replace::Always).unwrap();
    let mut d = Inode::dir(meta(0o750, 1000, 1000));
    d.set_xattr(b"user.note", b"hello");
    d.set_xattr(b"trusted.t", b"");
    b.insert(b"home/user", d, Replace::Always).unwrap();
    for i in 0..200 {
        let name = format!("many/f{i:03}");
        b.insert(
            name.as_bytes(),
            file(format!("{i}\n").into_bytes()),
            Replace::Always,
        )
        .unwrap();
    }
    b.finish()
}

fn encode(tree: &Tree, enc: &Jffs2Encoder) -> Vec<u8> {
    let mut out = Buffer::default();
    let report = enc.write(&tree.view(), &mut out).unwrap();
    assert_eq!(report.bytes, out.0.len() as u64);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    out.0
}

fn round_trip(enc: &Jffs2Encoder) -> Vec<u8> {
    let tree = sample_tree();
    let img = encode(&tree, enc);
    assert!(is_jffs2(&img));
    let back = read(Arc::new(img.clone())).unwrap();
    assert_eq!(
        of_view(&back.view()).unwrap(),
        of_view(&tree.view()).unwrap()
    );
    img
}

#[test]
fn round_trips_with_every_option() {
    for compr in Compr::ALL {
        for endian in [Endian::Little, Endian::Big] {
            for cleanmarkers in [true, false] {
                for eb in [16 << 10, 64 << 10, 128 << 10] {
                    round_trip(&Jffs2Encoder {
                        erase_block: eb,
                        endian,
                        cleanmarkers,
                        compr,
                        ..Jffs2Encoder::default()
                    });
                }
            }
        }
    }
}

/// With summaries, every erase block ends with the marker that points at
/// its summary node, whose entries list the block's nodes.
#[test]
fn summaries_end_every_block() {
    for (endian, cleanmarkers) in [(Endian::Little, true), (Endian::Big, false)] {
        let eb = 16 << 10;
        let img = round_trip(&Jffs2Encoder {
            erase_block: eb,
            endian,
            cleanmarkers,
            summary: true,
            ..Jffs2Encoder::default()
        });
        assert_eq!(img.len() % eb as usize, 0);
        let r32 = |b: &[u8]| endian.r32([b[0], b[1], b[2], b[3]]);
        for block in img.chunks(eb as usize) {
            let n = block.len();
            assert_eq!(r32(&block[n - 4..]), crate::records::SUM_MAGIC);
            let at = r32(&block[n - 8..]) as usize;
            let sum = &block[at..];
            assert_eq!(
                endian.r16([sum[2], sum[3]]),
                crate::records::NODETYPE_SUMMARY
            );
            assert_eq!(r32(&sum[4..]) as usize, n - at);
            assert!(r32(&sum[12..]) > 0);
            assert_eq!(r32(&sum[16..]), if cleanmarkers { 12 } else { 0 });
            assert_eq!(r32(&sum[24..]), crate::records::crc(&sum[32..]));
            assert_eq!(r32(&sum[28..]), crate::records::crc(&sum[..24]));
        }
    }
}

/// Every erase block starts with a cleanmarker, or none does; no node
/// crosses a block's end (the reader would not find the next one).
#[test]
fn erase_blocks_start_clean_and_pad() {
    let eb = 16 << 10;
    let img = round_trip(&Jffs2Encoder {
        erase_block: eb,
        pad: Pad::Block,
        ..Jffs2Encoder::default()
    });
    assert_eq!(img.len() % eb as usize, 0);
    for block in img.chunks(eb as usize) {
        assert_eq!(&block[..2], &0x1985u16.to_le_bytes());
        assert_eq!(&block[2..4], &NODETYPE_CLEANMARKER.to_le_bytes());
        assert_eq!(&block[4..8], &(UNKNOWN_NODE_LEN as u32).to_le_bytes());
    }
    let nand = round_trip(&Jffs2Encoder {
        erase_block: eb,
        cleanmarkers: false,
        pad: Pad::To(4 << 20),
        ..Jffs2Encoder::default()
    });
    assert_eq!(nand.len(), 4 << 20);
    assert!(nand.iter().rev().take(1000).all(|&b| b == 0xff));
    let err = Jffs2Encoder {
        pad: Pad::To(4096),
        ..Jffs2Encoder::default()
    }
    .check(&sample_tree().view())
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                what: "image size",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn same_bytes_for_any_thread_count() {
    let tree = sample_tree();
    let enc = Jffs2Encoder::default();
    let with = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
            .install(|| encode(&tree, &enc))
    };
    assert_eq!(with(1), with(3));
}

#[test]
fn limits_name_the_entry() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0));
    b.insert(
        b"d/f",
        Inode::new(meta(0o644, 70000, 0), Content::Fifo),
        Replace::Always,
    )
    .unwrap();
    let err = Jffs2Encoder::default()
        .check(&b.finish().view())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Limit { what: "uid", path, .. } if path == "/d/f"),
        "{err}"
    );
    let mut b = TreeBuilder::new(meta(0o755, 0, 0));
    let long = "x".repeat(255);
    b.insert(long.as_bytes(), file(Vec::new()), Replace::Always)
        .unwrap();
    let err = Jffs2Encoder::default()
        .check(&b.finish().view())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Limit {
                what: "name length",
                value: 255,
                ..
            }
        ),
        "{err}"
    );
}

/// Flipping any byte of a node is caught by a CRC (or leaves a node the
/// reader skips), and never panics.
#[test]
fn corrupt_images_fail_cleanly() {
    let img = encode(&sample_tree(), &Jffs2Encoder::default());
    for at in (0..img.len()).step_by(97) {
        let mut bad = img.clone();
        bad[at] ^= 0x5a;
        let _ = read(Arc::new(bad));
    }
    for len in (0..img.len()).step_by(1013) {
        let _ = read(Arc::new(img[..len].to_vec()));
    }
}

/// sumtool (mtd-utils) rewrites our image with its summaries, and the
/// reader reads that back as the tree; ours with summaries holds the same
/// nodes.
#[test]
fn sumtool_images_read_back() {
    let tree = sample_tree();
    let dir = std::env::temp_dir().join(format!("h-flash-sumtool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (flag, endian) in [("-l", Endian::Little), ("-b", Endian::Big)] {
        let img = encode(
            &tree,
            &Jffs2Encoder {
                endian,
                ..Jffs2Encoder::default()
            },
        );
        std::fs::write(dir.join("in"), &img).unwrap();
        let st = Command::new("sumtool")
            .args([flag, "-e", "0x10000", "-i"])
            .arg(dir.join("in"))
            .arg("-o")
            .arg(dir.join("out"))
            .status()
            .expect("sumtool (mtd-utils) is needed");
        assert!(st.success());
        let back = read(Arc::new(std::fs::read(dir.join("out")).unwrap())).unwrap();
        assert_eq!(
            of_view(&back.view()).unwrap(),
            of_view(&tree.view()).unwrap()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// mkfs.jffs2's own images (mtd-utils) read back as the directory they were
/// made of.
#[test]
fn reads_mkfs_jffs2_images() {
    let dir = std::env::temp_dir().join(format!("h-flash-jffs2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root/sub")).unwrap();
    std::fs::write(dir.join("root/sub/a"), b"hello ".repeat(5000)).unwrap();
    std::fs::write(dir.join("root/b"), noise(70_000, 3)).unwrap();
    std::os::unix::fs::symlink("sub/a", dir.join("root/l")).unwrap();
    for (flag, eb) in [("-l", "0x10000"), ("-b", "0x20000")] {
        let out = dir.join("img");
        let st = Command::new("mkfs.jffs2")
            .args([flag, "-n", "-e", eb, "-d"])
            .arg(dir.join("root"))
            .arg("-o")
            .arg(&out)
            .status()
            .expect("mkfs.jffs2 (mtd-utils) is needed");
        assert!(st.success());
        let tree = read(Arc::new(std::fs::read(&out).unwrap())).unwrap();
        let v = tree.view();
        let a = v.lookup(b"sub/a").unwrap();
        let Content::File(d) = &v.inode(a).content else {
            panic!()
        };
        assert_eq!(d.to_vec().unwrap(), b"hello ".repeat(5000));
        let b = v.lookup(b"b").unwrap();
        let Content::File(d) = &v.inode(b).content else {
            panic!()
        };
        assert_eq!(d.to_vec().unwrap(), noise(70_000, 3));
        let l = v.lookup(b"l").unwrap();
        assert!(matches!(&v.inode(l).content, Content::Symlink(t) if &**t == b"sub/a"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// mkfs.jffs2 --with-xattr's xattr and xref nodes read back as the host
/// files' attributes (`setfattr`, from attr, and root for trusted.*).
#[test]
fn reads_mkfs_jffs2_xattrs() {
    let dir = std::env::temp_dir().join(format!("h-flash-jffs2-x-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root/d")).unwrap();
    std::fs::write(dir.join("root/f"), b"hi\n").unwrap();
    let cap = "0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=";
    for (name, value, path) in [
        ("user.note", "hello", "root/f"),
        ("security.capability", cap, "root/f"),
        ("trusted.t", "abc", "root/d"),
    ] {
        let st = Command::new("setfattr")
            .args(["-n", name, "-v", value])
            .arg(dir.join(path))
            .status()
            .expect("setfattr (attr) is needed");
        assert!(st.success(), "setfattr {name} {path}");
    }
    let out = dir.join("img");
    let st = Command::new("mkfs.jffs2")
        .args(["--with-xattr", "-d"])
        .arg(dir.join("root"))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("mkfs.jffs2 (mtd-utils) is needed");
    assert!(st.success());
    let tree = read(Arc::new(std::fs::read(&out).unwrap())).unwrap();
    let v = tree.view();
    let xattrs = |p: &[u8]| -> Vec<(Vec<u8>, Vec<u8>)> {
        v.inode(v.lookup(p).unwrap())
            .xattrs
            .iter()
            .map(|x| (x.name.to_vec(), x.value.to_vec()))
            .collect()
    };
    assert_eq!(
        xattrs(b"f"),
        [
            (
                b"security.capability".to_vec(),
                vec![
                    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
                ]
            ),
            (b"user.note".to_vec(), b"hello".to_vec()),
        ]
    );
    assert_eq!(xattrs(b"d"), [(b"trusted.t".to_vec(), b"abc".to_vec())]);
    let _ = std::fs::remove_dir_all(&dir);
}
