//! Images of in-memory trees: the writer's options, limits and warnings,
//! and the bytes it writes. `tests/it/squashfs_tools.rs` checks the images
//! with squashfs-tools.

use rootforge_common::{Buffer, Content, Edit, Encoder, Error, Inode, Replace, Tree, TreeBuilder};

use crate::sample::{T0, file, meta, noise, sample_builder};
use crate::{Bcj, Comp, SquashfsEncoder};

/// Every inode type, hard links, holes, block-sized and empty files, a
/// 1000-entry directory and one whose listing needs an extended inode.
fn sample_tree() -> Tree {
    sample_builder().finish()
}

fn encode(tree: &Tree, enc: &SquashfsEncoder) -> Vec<u8> {
    let mut out = Buffer::default();
    let report = enc.write(&tree.view(), &mut out).unwrap();
    assert_eq!(report.bytes, out.0.len() as u64);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    out.0
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
    let back = crate::read(std::sync::Arc::new(out.0)).unwrap();
    let v = back.view();
    let mtime = |name: &str| v.inode(v.lookup(name.as_bytes()).unwrap()).meta.mtime.sec;
    assert_eq!((mtime("old"), mtime("new")), (0, u32::MAX.into()));
}
