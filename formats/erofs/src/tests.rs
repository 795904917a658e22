//! Images of in-memory trees read back through our reader: every
//! compressor, block and pcluster size, the inode forms, xattrs and ACLs.
//! `tests/it/erofs.rs` checks the images with erofs-utils and the kernel.

use std::sync::Arc;

use rootforge_common::listing::of_view;
use rootforge_common::{
    Backing, Buffer, Content, Edit, Encoder, Error, FileData, Inode, Replace, Time, Tree,
    TreeBuilder, View,
};

use crate::{Comp, ErofsEncoder, read};

#[path = "../../squashfs/src/sample.rs"]
#[allow(dead_code, unreachable_pub)]
mod sample;

use sample::{T0, file, meta, noise, sample_builder};

/// A POSIX ACL in the xattr form (`posix_acl_xattr_header` version 2):
/// user::rwx, user:1000:r-x, group::r-x, mask::r-x, other::r-x.
const ACL: &[u8] = &[
    2, 0, 0, 0, // version
    1, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, // ACL_USER_OBJ rwx
    2, 0, 5, 0, 0xe8, 3, 0, 0, // ACL_USER 1000 r-x
    4, 0, 5, 0, 0xff, 0xff, 0xff, 0xff, // ACL_GROUP_OBJ r-x
    0x10, 0, 5, 0, 0xff, 0xff, 0xff, 0xff, // ACL_MASK r-x
    0x20, 0, 5, 0, 0xff, 0xff, 0xff, 0xff, // ACL_OTHER r-x
];

/// The squashfs sample tree, plus ACLs, nanosecond times, large ids, a
/// compressible multi-megabyte file and a file over one segment.
fn sample_tree() -> Tree {
    let mut b = sample_builder();
    let put = |b: &mut TreeBuilder, path: &str, inode: Inode| {
        b.insert(path.as_bytes(), inode, Replace::Always).unwrap();
    };
    let text: Vec<u8> = (0..300_000)
        .flat_map(|i: u32| format!("line {i} of a text that compresses well\n").into_bytes())
        .collect();
    put(&mut b, "text", file(0o644, text));
    let mut mixed = noise(20_000, 3);
    mixed.extend_from_slice(&b"abc".repeat(50_000));
    mixed.extend_from_slice(&noise(9000, 4));
    put(&mut b, "mixed", file(0o644, mixed));
    put(
        &mut b,
        "nano",
        Inode::new(
            rootforge_common::Meta::new(
                0o644,
                70000,
                3,
                Time {
                    sec: T0,
                    nsec: 123_456_789,
                },
            ),
            Content::File(FileData::bytes(b"ns".to_vec())),
        ),
    );
    put(
        &mut b,
        "old",
        Inode::new(
            meta(0o644, 0, 0, -86_400),
            Content::File(FileData::bytes(b"1969".to_vec())),
        ),
    );
    put(
        &mut b,
        "long-link",
        Inode::new(
            meta(0o777, 0, 0, T0),
            Content::Symlink(vec![b'x'; 4095].into()),
        ),
    );
    for (path, name) in [
        ("e", "system.posix_acl_access"),
        ("e", "system.posix_acl_default"),
        ("bin/sh", "system.posix_acl_access"),
    ] {
        b.modify(path.as_bytes(), &mut |i| i.set_xattr(name.as_bytes(), ACL))
            .unwrap();
    }
    b.finish()
}

fn encode(tree: &Tree, enc: &ErofsEncoder) -> Vec<u8> {
    let mut out = Buffer::default();
    let report = enc.write(&tree.view(), &mut out).unwrap();
    assert_eq!(report.bytes, out.0.len() as u64);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(out.0.len() % enc.block_size as usize, 0);
    out.0
}

fn xattrs(view: &View<'_>) -> Vec<(Box<[u8]>, Vec<rootforge_common::Xattr>)> {
    view.sorted_entries()
        .into_iter()
        .map(|e| (e.path, view.inode(e.ino).xattrs.clone()))
        .collect()
}

/// Writes `tree`, reads it back and compares listings, xattrs and
/// nanoseconds; returns the image.
fn round_trip(tree: &Tree, enc: &ErofsEncoder) -> Vec<u8> {
    let image = encode(tree, enc);
    if let Ok(dir) = std::env::var("ROOTFORGE_EROFS_DUMP") {
        let name = format!(
            "{dir}/sample-{}-{}-{}.erofs",
            enc.comp,
            enc.block_size,
            enc.pcluster_size.unwrap_or(0)
        );
        std::fs::write(name, &image).unwrap();
    }
    let backing: Backing = Arc::new(image.clone());
    let back = read(backing).unwrap();
    let want = of_view(&tree.view()).unwrap();
    let got = of_view(&back.view()).unwrap();
    assert_eq!(want.len(), got.len());
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w, g, "{enc:?}");
    }
    assert_eq!(xattrs(&tree.view()), xattrs(&back.view()));
    let nano = back.view().lookup(b"nano").unwrap();
    assert_eq!(back.view().inode(nano).meta.mtime.nsec, 123_456_789);
    image
}

#[test]
fn every_compressor_reads_back() {
    let tree = sample_tree();
    let plain = round_trip(&tree, &ErofsEncoder::default());
    for comp in Comp::ALL {
        let image = round_trip(&tree, &ErofsEncoder::new(comp));
        if comp != Comp::None {
            assert!(
                image.len() < plain.len(),
                "{comp}: {} >= {}",
                image.len(),
                plain.len()
            );
        }
    }
}

#[test]
fn big_pclusters_and_levels_read_back() {
    let tree = sample_tree();
    for (comp, level) in [
        (Comp::Lz4, None),
        (Comp::Lz4hc, Some(12)),
        (Comp::Zstd, Some(19)),
        (Comp::Deflate, Some(9)),
    ] {
        for pcl in [16 << 10, 64 << 10] {
            round_trip(
                &tree,
                &ErofsEncoder {
                    level,
                    pcluster_size: Some(pcl),
                    ..ErofsEncoder::new(comp)
                },
            );
        }
    }
}

#[test]
fn other_block_sizes_read_back() {
    let tree = sample_tree();
    for bs in [512, 1024, 2048, 8192, 65536] {
        for comp in [Comp::None, Comp::Lz4] {
            round_trip(
                &tree,
                &ErofsEncoder {
                    block_size: bs,
                    ..ErofsEncoder::new(comp)
                },
            );
        }
    }
}

#[test]
fn same_bytes_for_any_thread_count() {
    let tree = sample_tree();
    let enc = ErofsEncoder::new(Comp::Zstd);
    let with = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
            .install(|| encode(&tree, &enc))
    };
    let one = with(1);
    assert_eq!(one, with(3));
}

#[test]
fn uuid_follows_contents_unless_given() {
    let uuid = |tree: &Tree, enc: &ErofsEncoder| encode(tree, enc)[1024 + 48..1024 + 64].to_vec();
    let a = sample_tree();
    let mut b = sample_tree().into_builder(meta(0o755, 0, 0, T0));
    b.insert(
        b"etc/passwd",
        file(0o644, b"toor:x:0:0::/root:/bin/sh\n".to_vec()),
        Replace::Always,
    )
    .unwrap();
    let b = b.finish();
    let enc = ErofsEncoder::default();
    assert_eq!(uuid(&a, &enc), uuid(&a, &enc));
    assert_ne!(uuid(&a, &enc), uuid(&b, &enc));
    let given = ErofsEncoder {
        uuid: Some([0; 16]),
        ..ErofsEncoder::default()
    };
    assert_eq!(uuid(&b, &given), vec![0; 16]);
}

#[test]
fn compact_inodes_take_the_build_time() {
    let tree = sample_tree();
    let enc = ErofsEncoder {
        build_time: Some(Time::from_secs(T0 + 60)),
        ..ErofsEncoder::default()
    };
    let image = round_trip(&tree, &enc);
    let build = u64::from_le_bytes(image[1024 + 24..1024 + 32].try_into().unwrap());
    assert_eq!(build, (T0 + 60) as u64);
    // The root (mtime T0) is extended; many/f0000 (T0 + 60, small ids) is
    // compact: both read back with their own times, checked above.
}

#[test]
fn limits_fail_before_any_byte() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    b.insert(
        format!("d/{}", "x".repeat(256)).as_bytes(),
        file(0o644, Vec::new()),
        Replace::Always,
    )
    .unwrap();
    let tree = b.finish();
    let enc = ErofsEncoder::default();
    let err = enc.check(&tree.view()).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Limit {
                value: 256,
                limit: 255,
                ..
            }
        ),
        "{err}"
    );
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    b.modify(b"", &mut |i| i.set_xattr(b"user.v", &vec![0; 70_000]))
        .unwrap();
    assert!(matches!(
        enc.check(&b.finish().view()).unwrap_err(),
        Error::Limit { value: 70_000, .. }
    ));
    for bad in [
        ErofsEncoder {
            block_size: 3000,
            ..ErofsEncoder::default()
        },
        ErofsEncoder {
            pcluster_size: Some(6000),
            ..ErofsEncoder::new(Comp::Lz4)
        },
        ErofsEncoder {
            level: Some(23),
            ..ErofsEncoder::new(Comp::Zstd)
        },
    ] {
        assert!(bad.check(&tree.view()).is_err(), "{bad:?}");
    }
}

#[test]
fn names_without_a_prefix_are_dropped_with_a_warning() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    b.insert(b"f", file(0o644, b"x".to_vec()), Replace::Always)
        .unwrap();
    b.modify(b"f", &mut |i| i.set_xattr(b"system.other", b"v"))
        .unwrap();
    let tree = b.finish();
    let mut out = Buffer::default();
    let report = ErofsEncoder::default()
        .write(&tree.view(), &mut out)
        .unwrap();
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("system.other"));
}

#[test]
fn corrupt_images_are_errors_not_panics() {
    let tree = sample_tree();
    let image = encode(&tree, &ErofsEncoder::new(Comp::Lz4));
    // The superblock checksum catches any change there.
    let mut bad = image.clone();
    bad[1024 + 16] ^= 1;
    assert!(read(Arc::new(bad)).is_err());
    // Flipped bytes anywhere else, and truncations: errors or other trees,
    // never a panic.
    let mut x = 12345u32;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let mut bad = image.clone();
        let at = 4096 + (x as usize % (image.len() - 4096));
        bad[at] ^= (x >> 24) as u8 | 1;
        let _ = read(Arc::new(bad));
    }
    for len in [0, 1100, 4096, image.len() / 2, image.len() - 1] {
        let _ = read(Arc::new(image[..len].to_vec()));
    }
}
