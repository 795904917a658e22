//! Trees the ISO9660 tests build images of. Shared by the unit tests and
//! the tool-driven integration tests (`tests/it/iso_tools.rs`), which
//! include this file by path; it uses only `rootforge_common`.

#![allow(dead_code)]

use std::sync::Arc;

use rootforge_common::listing::{self, Line};
use rootforge_common::{Content, Edit, FileData, Inode, Meta, Replace, Time, Tree, TreeBuilder};

/// Metadata with a whole-second mtime.
pub(crate) fn meta(perm: u16, uid: u32, gid: u32, sec: i64) -> Meta {
    Meta::new(perm, uid, gid, Time::from_secs(sec))
}

/// A regular file owned by 1000:100.
pub(crate) fn file(perm: u16, data: impl Into<Arc<[u8]>>) -> Inode {
    Inode::new(
        meta(perm, 1000, 100, 1_700_000_000),
        Content::File(FileData::bytes(data)),
    )
}

/// A special file (device, fifo, socket).
pub(crate) fn node(content: Content) -> Inode {
    Inode::new(meta(0o640, 0, 6, 1_600_000_000), content)
}

/// `len` bytes that do not repeat within a block, from `seed`.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let [low, ..] = i.to_le_bytes();
            let [high, ..] = (i >> 9).to_le_bytes();
            low.wrapping_mul(31).wrapping_add(seed) ^ high
        })
        .collect()
}

/// Every file type, hard links across directories, names that clash after
/// mapping, long and non-ASCII names, a deep tree, large device numbers.
pub(crate) fn sample() -> Tree {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_500_000_000));
    let mut ins = |p: &[u8], i: Inode| {
        b.insert(p, i, Replace::Always).unwrap();
    };
    ins(b"bin/busybox", file(0o4755, pattern(70_000, 7)));
    ins(b"etc/motd", file(0o644, pattern(513, 1)));
    ins(b"empty", file(0o600, &b""[..]));
    ins(b"README", file(0o644, &b"upper"[..]));
    ins(b"Readme", file(0o644, &b"mixed"[..]));
    ins(b"readme", file(0o644, &b"lower"[..]));
    ins(b"readme.", file(0o644, &b"dot"[..]));
    ins(b"a.tar.gz", file(0o644, &b"tgz"[..]));
    ins(b"a_tar.gz", file(0o644, &b"clash"[..]));
    let long = "L".repeat(120) + &"o".repeat(100) + ".conf";
    ins(long.as_bytes(), file(0o644, &b"long name"[..]));
    let long2 = "L".repeat(120) + &"o".repeat(100) + ".conf2";
    ins(long2.as_bytes(), file(0o644, &b"long name 2"[..]));
    ins(
        "usr/share/ünïcödé/日本語.txt".as_bytes(),
        file(0o644, &b"utf8"[..]),
    );
    ins(b"usr/share/bad\xffname", file(0o644, &b"latin1"[..]));
    ins(
        b"d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/deep.txt",
        file(0o644, &b"deep"[..]),
    );
    ins(
        b"dev/console",
        node(Content::CharDev { major: 5, minor: 1 }),
    );
    ins(b"dev/sda", node(Content::BlockDev { major: 8, minor: 0 }));
    ins(
        b"dev/nvme",
        node(Content::BlockDev {
            major: 259,
            minor: 300,
        }),
    );
    ins(
        b"dev/hi",
        node(Content::CharDev {
            major: 4000,
            minor: 255,
        }),
    );
    ins(b"run/fifo", node(Content::Fifo));
    ins(b"run/sock", node(Content::Socket));
    ins(b"tmp", Inode::dir(meta(0o1777, 0, 0, 1_400_000_000)));
    ins(
        b"lib/libc.so",
        Inode::new(
            meta(0o777, 0, 0, 1),
            Content::Symlink(b"libc.so.6"[..].into()),
        ),
    );
    ins(
        b"lib/abs",
        Inode::new(
            meta(0o777, 0, 0, 1),
            Content::Symlink(b"/usr/../lib/./x"[..].into()),
        ),
    );
    let target = format!("/{}", vec!["component"; 60].join("/"));
    ins(
        b"lib/longlink",
        Inode::new(
            meta(0o777, 0, 0, 1),
            Content::Symlink(target.as_bytes().into()),
        ),
    );
    ins(
        b"home/user/notes",
        Inode::new(
            meta(0o640, 4_000_000_000, 4_000_000_001, 2_000_000_000),
            Content::File(FileData::bytes(&b"hi\n"[..])),
        ),
    );
    b.hard_link(b"sbin/init", b"bin/busybox").unwrap();
    b.hard_link(b"usr/bin/sh", b"bin/busybox").unwrap();
    b.finish()
}

/// The tree of an EFI boot image: a loader, a grub configuration, a
/// long name, an empty file, and a startup script for the UEFI shell.
pub(crate) fn efi_tree() -> Tree {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_500_000_000));
    b.insert(
        b"EFI/BOOT/BOOTX64.EFI",
        file(0o644, pattern(100_000, 3)),
        Replace::Always,
    )
    .unwrap();
    b.insert(
        b"EFI/BOOT/grub.cfg",
        file(0o644, &b"set timeout=0\n"[..]),
        Replace::Always,
    )
    .unwrap();
    b.insert(
        b"startup-with-a-long-name.nsh",
        file(0o644, &b"fs0:\n"[..]),
        Replace::Always,
    )
    .unwrap();
    b.insert(b"empty", file(0o644, &b""[..]), Replace::Always)
        .unwrap();
    let script = "echo rootforge-efi-ok\r\nreset -s\r\n";
    b.insert(
        b"startup.nsh",
        file(0o644, script.as_bytes().to_vec()),
        Replace::Always,
    )
    .unwrap();
    b.finish()
}

/// Files zisofs compresses well, a small one it leaves alone, and a
/// hard link.
pub(crate) fn zisofs_tree() -> Tree {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_500_000_000));
    b.insert(
        b"text",
        file(0o644, "hello world\n".repeat(20_000).into_bytes()),
        Replace::Always,
    )
    .unwrap();
    b.insert(b"small", file(0o644, &b"tiny"[..]), Replace::Always)
        .unwrap();
    b.insert(b"zeros", file(0o644, vec![0u8; 200_000]), Replace::Always)
        .unwrap();
    b.hard_link(b"link", b"text").unwrap();
    b.finish()
}

/// The listing of a tree.
pub(crate) fn listing_of(tree: &Tree) -> Vec<Line> {
    listing::of_view(&tree.view()).unwrap()
}

/// A listing as text, for readable diffs.
pub(crate) fn text(lines: &[Line]) -> String {
    listing::to_text(lines)
}
