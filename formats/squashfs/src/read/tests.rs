//! The reader against our writer and backhand, and on broken images
//! (`tests/it/squashfs_tools.rs` reads mksquashfs's images).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;

use rootforge_common::listing::{self, Line};
use rootforge_common::{
    Backing, Buffer, Content, Edit, Encoder, Error, FileBlob, Inode, Replace, Tree, TreeBuilder,
    View, Xattr,
};

use super::{is_squashfs, read};
use crate::sample::{T0, file, meta, noise, sample_builder};
use crate::{Comp, SquashfsEncoder};

const ALL: [Comp; 6] = Comp::ALL;

/// The writer tests' sample tree plus what the reader must also get right:
/// files of several 128 KiB blocks with a long hole, the widest device
/// minor, a hard link to a fifo and xattrs on the root and on a file with
/// holes.
fn rich_tree() -> Tree {
    let mut b = sample_builder();
    let mut put = |path: &str, inode: Inode| {
        b.insert(path.as_bytes(), inode, Replace::Always).unwrap();
    };
    let mut huge = noise(300_000, 11);
    huge.extend_from_slice(&b"tail".repeat(10));
    put("huge", file(0o640, huge.clone()));
    put("dup/huge", file(0o600, huge));
    let mut holes = noise(4096, 13);
    holes.extend_from_slice(&[0u8; 300_000]);
    holes.extend_from_slice(b"end of holes");
    put("holes", file(0o644, holes));
    put(
        "dev/widest",
        Inode::new(
            meta(0o600, 0, 0, T0),
            Content::CharDev {
                major: 0xfff,
                minor: 0xf_ffff,
            },
        ),
    );
    b.hard_link(b"many/link-to-fifo", b"fifo").unwrap();
    for (path, name, value) in [("", "user.root", &b"r"[..]), ("holes", "user.a", b"1")] {
        b.modify(path.as_bytes(), &mut |i| {
            i.set_xattr(name.as_bytes(), value)
        })
        .unwrap();
    }
    b.finish()
}

fn encode(tree: &Tree, enc: &SquashfsEncoder) -> Vec<u8> {
    let mut out = Buffer(Vec::new());
    enc.write(&tree.view(), &mut out).unwrap();
    out.0
}

fn read_bytes(image: Vec<u8>) -> rootforge_common::Result<Tree> {
    read(Arc::new(image))
}

/// Each path's xattrs.
fn xattrs(view: &View<'_>) -> BTreeMap<Vec<u8>, Vec<Xattr>> {
    view.sorted_entries()
        .into_iter()
        .map(|e| (e.path.to_vec(), view.inode(e.ino).xattrs.clone()))
        .collect()
}

/// The groups of paths naming one non-directory inode, for inodes with
/// several names.
fn link_groups(view: &View<'_>) -> Vec<Vec<Vec<u8>>> {
    let mut by_ino: HashMap<_, Vec<Vec<u8>>> = HashMap::new();
    for e in view.sorted_entries() {
        if view.inode(e.ino).children().is_none() {
            by_ino.entry(e.ino).or_default().push(e.path.to_vec());
        }
    }
    let mut groups: Vec<_> = by_ino.into_values().filter(|g| g.len() > 1).collect();
    groups.sort();
    groups
}

/// The reader gives back the listing, the xattrs and the hard links.
fn assert_same(want: &Tree, got: &Tree) {
    let (w, g) = (want.view(), got.view());
    let (wl, gl) = (listing::of_view(&w).unwrap(), listing::of_view(&g).unwrap());
    assert_eq!(wl.len(), gl.len());
    for (a, b) in wl.iter().zip(&gl) {
        assert_eq!(a, b);
    }
    assert_eq!(xattrs(&w), xattrs(&g));
    assert_eq!(link_groups(&w), link_groups(&g));
}

#[test]
fn our_images_read_back_with_every_compressor() {
    let tree = rich_tree();
    assert!(!link_groups(&tree.view()).is_empty());
    let mut encoders = Vec::new();
    for comp in ALL {
        for block_size in [4096, 128 << 10, 1 << 20] {
            encoders.push(SquashfsEncoder {
                block_size,
                exportable: block_size == 4096,
                pad: block_size != 4096,
                ..SquashfsEncoder::new(comp)
            });
        }
        // LZ4 HC, xz with BCJ filters.
        encoders.push(SquashfsEncoder::new(comp).extreme("x86_64"));
    }
    for enc in encoders {
        let image = encode(&tree, &enc);
        assert!(is_squashfs(&image));
        let back = read_bytes(image).unwrap_or_else(|e| panic!("{enc:?}: {e}"));
        assert_same(&tree, &back);
    }
}

#[test]
fn a_file_backed_image_reads_the_same() {
    let tree = rich_tree();
    let image = encode(&tree, &SquashfsEncoder::new(Comp::Zstd));
    let dir = scratch("file-backed");
    let path = dir.join("img");
    fs::write(&path, &image).unwrap();
    let blob: Backing = Arc::new(FileBlob::new(fs::File::open(&path).unwrap()).unwrap());
    assert_same(&tree, &read(blob).unwrap());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn partial_reads_cross_blocks_holes_and_fragments() {
    let tree = rich_tree();
    let enc = SquashfsEncoder {
        block_size: 4096,
        ..SquashfsEncoder::new(Comp::Lz4)
    };
    let back = read_bytes(encode(&tree, &enc)).unwrap();
    for path in ["big", "huge", "sparse", "holes", "exact", "bin/sh"] {
        let data = |t: &Tree| match &t
            .view()
            .inode(t.view().lookup(path.as_bytes()).unwrap())
            .content
        {
            Content::File(d) => d.clone(),
            _ => panic!("{path}"),
        };
        let (want, got) = (data(&tree).to_vec().unwrap(), data(&back));
        for (at, len) in [
            (0, 1),
            (4095, 2),
            (100, 9000),
            (want.len() - 3, 3),
            (4096, 4096),
        ] {
            if at + len > want.len() {
                continue;
            }
            let mut buf = vec![0xee; len];
            got.read_at(at as u64, &mut buf).unwrap();
            assert_eq!(buf, want[at..at + len], "{path} at {at}");
        }
        let mut one = [0u8; 1];
        assert!(got.read_at(want.len() as u64, &mut one).is_err());
    }
}

#[test]
fn hard_links_are_one_inode() {
    let back = read_bytes(encode(&rich_tree(), &SquashfsEncoder::default())).unwrap();
    let v = back.view();
    let a = v.lookup(b"hl/a").unwrap();
    assert_eq!(v.lookup(b"hl/b"), Some(a));
    assert_eq!(v.lookup(b"c-link"), Some(a));
    assert_ne!(
        v.lookup(b"dup/big"),
        v.lookup(b"big"),
        "duplicates are not links"
    );
}

/// backhand's listing of an image, in our listing's form (backhand has
/// no hard links or xattrs, so those are left to the other tests).
fn backhand_listing(image: &[u8]) -> Vec<Line> {
    use backhand::{FilesystemReader, InnerNode};
    let fs = FilesystemReader::from_reader(std::io::Cursor::new(image.to_vec())).unwrap();
    let mut lines = Vec::new();
    for node in fs.files() {
        let h = &node.header;
        let path = node.fullpath.to_str().unwrap().to_owned();
        let decode = |d: u32| ((d & 0xf_ff00) >> 8, (d & 0xff) | ((d >> 12) & 0xf_ff00));
        let (kind, size, detail) = match &node.inner {
            InnerNode::File(f) => {
                let mut bytes = Vec::new();
                fs.file(f).reader().read_to_end(&mut bytes).unwrap();
                (
                    rootforge_common::Kind::File,
                    bytes.len() as u64,
                    listing::sha256_hex(&bytes),
                )
            }
            InnerNode::Symlink(s) => {
                let t = s.link.to_str().unwrap().to_owned();
                (rootforge_common::Kind::Symlink, t.len() as u64, t)
            }
            InnerNode::Dir(_) => (rootforge_common::Kind::Dir, 0, "-".to_owned()),
            InnerNode::CharacterDevice(d) => {
                let (ma, mi) = decode(d.device_number);
                (rootforge_common::Kind::CharDev, 0, format!("{ma},{mi}"))
            }
            InnerNode::BlockDevice(d) => {
                let (ma, mi) = decode(d.device_number);
                (rootforge_common::Kind::BlockDev, 0, format!("{ma},{mi}"))
            }
            InnerNode::NamedPipe => (rootforge_common::Kind::Fifo, 0, "-".to_owned()),
            InnerNode::Socket => (rootforge_common::Kind::Socket, 0, "-".to_owned()),
        };
        lines.push(Line {
            path,
            kind,
            perm: h.permissions & 0o7777,
            uid: h.uid,
            gid: h.gid,
            size,
            detail,
            mtime: i64::from(h.mtime),
        });
    }
    lines.sort();
    lines
}

#[test]
fn backhand_agrees_on_our_images() {
    let tree = rich_tree();
    // backhand reads lzo only with a GPL feature.
    for comp in ALL.into_iter().filter(|&c| c != Comp::Lzo) {
        let image = encode(&tree, &SquashfsEncoder::new(comp));
        let ours = listing::of_view(&read_bytes(image.clone()).unwrap().view()).unwrap();
        assert_eq!(backhand_listing(&image), ours, "{comp:?}");
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rootforge-squashfs-read-{}-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads an image and, if that works, every file's contents: neither may
/// panic.
fn survive(image: Vec<u8>) {
    if let Ok(tree) = read_bytes(image) {
        let _ = listing::of_view(&tree.view());
    }
}

/// A small image of every feature, for damaging.
fn small_image(comp: Comp) -> Vec<u8> {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    let mut put = |path: &str, inode: Inode| {
        b.insert(path.as_bytes(), inode, Replace::Always).unwrap();
    };
    put("a/b/file", file(0o644, b"hello ".repeat(2000)));
    put("a/small", file(0o644, b"small".to_vec()));
    put(
        "s",
        Inode::new(
            meta(0o777, 0, 0, T0),
            Content::Symlink(b"a/small"[..].into()),
        ),
    );
    put(
        "c",
        Inode::new(
            meta(0o600, 0, 0, T0),
            Content::CharDev { major: 4, minor: 5 },
        ),
    );
    put("p", Inode::new(meta(0o600, 0, 0, T0), Content::Fifo));
    let mut sparse = vec![0u8; 9000];
    sparse.extend_from_slice(b"x");
    put("sparse", file(0o644, sparse));
    for i in 0..40 {
        put(
            &format!("d/{i:02}{}", "z".repeat(200)),
            file(0o644, vec![b'q'; i]),
        );
    }
    b.hard_link(b"a/link", b"a/small").unwrap();
    b.modify(b"a/small", &mut |i| i.set_xattr(b"user.k", b"v"))
        .unwrap();
    b.modify(b"d", &mut |i| i.set_xattr(b"trusted.big", &[7; 9000]))
        .unwrap();
    let tree = b.finish();
    encode(
        &tree,
        &SquashfsEncoder {
            block_size: 4096,
            exportable: true,
            ..SquashfsEncoder::new(comp)
        },
    )
}

#[test]
fn truncated_images_never_panic() {
    for comp in ALL {
        let image = small_image(comp);
        let used = usize::try_from(u64::from_le_bytes(image[40..48].try_into().unwrap())).unwrap();
        assert!(read_bytes(image.clone()).is_ok());
        for len in (0..used).step_by(7).chain(used - 64..used) {
            let cut = image[..len].to_vec();
            let err = read_bytes(cut).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{len}: {err}");
        }
    }
}

#[test]
fn flipped_bits_never_panic() {
    let mut x = 0x9e37_79b9u32;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for comp in ALL {
        let image = small_image(comp);
        let used = usize::try_from(u64::from_le_bytes(image[40..48].try_into().unwrap())).unwrap();
        for _ in 0..800 {
            let mut bad = image.clone();
            for _ in 0..=next() % 3 {
                let at = next() as usize % used;
                bad[at] ^= 1 << (next() % 8);
            }
            survive(bad);
        }
    }
}

#[test]
fn a_corrupt_data_block_fails_when_read() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    b.insert(
        b"f",
        file(0o644, b"squash ".repeat(50_000)),
        Replace::Always,
    )
    .unwrap();
    let mut image = encode(&b.finish(), &SquashfsEncoder::new(Comp::Gzip));
    // The first data block follows the superblock and the compressor
    // options (at most 10 bytes); corrupt its middle.
    image[96 + 40] ^= 0xff;
    let tree = read_bytes(image).unwrap();
    let v = tree.view();
    let Content::File(data) = &v.inode(v.lookup(b"f").unwrap()).content else {
        panic!("not a file");
    };
    let err = data.to_vec().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(
        err.to_string().contains("squashfs block at byte 1"),
        "{err}"
    );
}

/// The superblock's table positions.
fn table_start(image: &[u8], at: usize) -> usize {
    usize::try_from(u64::from_le_bytes(image[at..at + 8].try_into().unwrap())).unwrap()
}

/// A tree of empty directories as an uncompressed image, whose inodes are
/// 32-byte basic directory inodes in post-order in the raw first block.
fn dirs_image(paths: &[&str]) -> Vec<u8> {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    for p in paths {
        b.insert(
            p.as_bytes(),
            Inode::dir(meta(0o755, 0, 0, T0)),
            Replace::Always,
        )
        .unwrap();
    }
    encode(&b.finish(), &SquashfsEncoder::new(Comp::None))
}

fn malformed_reason(image: Vec<u8>) -> String {
    match read_bytes(image) {
        Err(Error::Malformed { reason, .. }) => reason,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_directory_loop_is_refused() {
    // Inodes: b, a, root. Pointing the empty a/b at the root's listing
    // makes a loop, which shows as a listing read twice.
    let mut image = dirs_image(&["a/b"]);
    let record = |k: usize| table_start(&image, 64) + 2 + 32 * k;
    let (b, root) = (record(0), record(2));
    assert_eq!(&image[b + 12..b + 16], &1u32.to_le_bytes());
    assert_eq!(&image[root + 12..root + 16], &3u32.to_le_bytes());
    let root_listing = image[root + 16..root + 32].to_vec();
    image[b + 16..b + 32].copy_from_slice(&root_listing);
    let reason = malformed_reason(image);
    assert!(
        reason.contains("/a/b: directory listing") && reason.contains("overlaps another"),
        "{reason}"
    );
}

#[test]
fn a_directory_reached_twice_is_refused() {
    // Inodes: a, x, c, root; c's listing (the first in the directory
    // table) names x at inode offset 32. Pointing it at a links a twice.
    let mut image = dirs_image(&["a", "c/x"]);
    let entry = table_start(&image, 72) + 2 + 12;
    assert_eq!(&image[entry..entry + 2], &32u16.to_le_bytes());
    assert_eq!(&image[entry + 8..entry + 9], b"x");
    image[entry..entry + 2].copy_from_slice(&0u16.to_le_bytes());
    image[entry + 2..entry + 4].copy_from_slice(&(-1i16).to_le_bytes());
    let reason = malformed_reason(image);
    assert!(reason.contains("a directory is reached twice"), "{reason}");
}

#[test]
fn a_lookup_table_block_used_twice_is_refused() {
    // 600 files of 3000 bytes: one fragment each, in two metadata blocks
    // of the fragment table. Repeating the first block's position would
    // unpack it twice.
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    for i in 0..600u32 {
        let inode = file(0o644, noise(3000, 2 * i + 1));
        b.insert(format!("f{i}").as_bytes(), inode, Replace::Always)
            .unwrap();
    }
    let enc = SquashfsEncoder {
        block_size: 4096,
        ..SquashfsEncoder::new(Comp::Lz4)
    };
    let mut image = encode(&b.finish(), &enc);
    assert_eq!(u32::from_le_bytes(image[16..20].try_into().unwrap()), 600);
    let index = table_start(&image, 80);
    let first = image[index..index + 8].to_vec();
    assert!(read_bytes(image.clone()).is_ok());
    image[index + 8..index + 16].copy_from_slice(&first);
    let reason = malformed_reason(image);
    assert!(reason.contains("overlaps or precedes"), "{reason}");
}

#[test]
fn bad_superblocks_are_malformed() {
    let image = small_image(Comp::Gzip);
    let patched = |at: usize, bytes: &[u8]| {
        let mut bad = image.clone();
        bad[at..at + bytes.len()].copy_from_slice(bytes);
        read_bytes(bad).unwrap_err().to_string()
    };
    assert!(patched(0, b"hsqt").contains("no squashfs superblock"));
    assert!(patched(28, &3u16.to_le_bytes()).contains("version 3.0"));
    assert!(patched(12, &8192u32.to_le_bytes()).contains("block log 12"));
    assert!(patched(12, &3000u32.to_le_bytes()).contains("block size 3000"));
    assert!(patched(40, &u64::MAX.to_le_bytes()).contains("bytes used"));
    assert!(patched(20, &9u16.to_le_bytes()).contains("unknown compressor id 9"));
    assert!(patched(20, &2u16.to_le_bytes()).contains("lzma compression (id 2)"));
    assert!(!is_squashfs(&image[..95]));
    assert!(!is_squashfs(b"hsqs"));
}
