//! The sample tree the squashfs tests write: the unit tests in the crate
//! and the ones in `tests/it/squashfs_tools.rs` that check it with
//! squashfs-tools, which include this file.

use rootforge_common::{Content, Edit, FileData, Inode, Meta, Replace, Time, TreeBuilder};

/// The sample tree's base time.
pub(crate) const T0: i64 = 1_700_000_000;

/// Metadata with these fields.
pub(crate) fn meta(perm: u16, uid: u32, gid: u32, sec: i64) -> Meta {
    Meta::new(perm, uid, gid, Time::from_secs(sec))
}

/// A file holding `bytes`, a minute after [`T0`].
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
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Every inode type, hard links, holes, block-sized and empty files, a
/// 1000-entry directory and one whose listing needs an extended inode,
/// before `finish`, for tests that add to it.
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
