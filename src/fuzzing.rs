//! Arbitrary rootfs trees for fuzzers (feature `arbitrary`).
//!
//! [`ArbitraryTree`] turns fuzzer bytes into a valid tree with every file
//! type, hard links, xattrs, odd names, owners and times, which
//! [`crate::image::build_in_memory`] turns into an image: a source of valid
//! images for people who fuzz kernel filesystem drivers or image parsers.
//!
//! ```
//! use arbitrary::{Arbitrary, Unstructured};
//! use rootforge::fuzzing::ArbitraryTree;
//! use rootforge::image::{build_in_memory, Format};
//!
//! let bytes = [7u8; 256]; // a fuzzer's input
//! let tree = ArbitraryTree::arbitrary(&mut Unstructured::new(&bytes))?.0;
//! for format in Format::ALL {
//!     // Some trees do not fit a format (e.g. a name too long for cpio).
//!     if let Ok((image, _)) = build_in_memory(&tree.view(), format) {
//!         assert!(!image.is_empty());
//!     }
//! }
//! # Ok::<(), arbitrary::Error>(())
//! ```

use arbitrary::{Arbitrary, Unstructured};
use rootforge_common::{Content, Edit, FileData, Inode, Meta, Replace, Time, Tree, TreeBuilder};

/// A tree built from fuzzer input.
#[derive(Debug)]
pub struct ArbitraryTree(pub Tree);

#[derive(Debug, Arbitrary)]
enum Kind {
    File(Vec<u8>),
    Zeros(u16),
    Dir,
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
    Socket,
    HardLink(u8),
}

#[derive(Debug, Arbitrary)]
struct Op {
    path: Vec<u8>,
    kind: Kind,
    perm: u16,
    uid: u32,
    gid: u32,
    mtime: i64,
    nsec: u32,
    xattr: Option<(u8, Vec<u8>)>,
}

const XATTR_NAMES: [&[u8]; 4] = [
    b"security.capability",
    b"security.selinux",
    b"user.fuzz",
    b"trusted.x",
];

/// Path components from a small alphabet, so entries collide, nest and sort
/// around `-` and `/`; bytes with the top bit set add raw non-UTF-8 bytes.
fn path(raw: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    for (i, b) in raw.iter().take(8).enumerate() {
        if i > 0 {
            p.push(b'/');
        }
        p.push(b"abc-_ "[usize::from(*b) % 6]);
        if b & 0x80 != 0 {
            p.push(*b);
        }
    }
    p
}

impl<'a> Arbitrary<'a> for ArbitraryTree {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let ops: Vec<Op> = u.arbitrary()?;
        let mut b = TreeBuilder::new(Meta::new(0o755, 0, 0, Time::default()));
        let mut files: Vec<Vec<u8>> = Vec::new();
        for op in ops {
            let p = path(&op.path);
            if p.is_empty() {
                continue;
            }
            let mtime = Time {
                sec: op.mtime,
                nsec: op.nsec % 1_000_000_000,
            };
            let meta = Meta::new(op.perm, op.uid, op.gid, mtime);
            let content = match op.kind {
                Kind::File(d) => Content::File(FileData::bytes(d)),
                Kind::Zeros(n) => Content::File(FileData::zeros(u64::from(n) * 97)),
                Kind::Dir => Content::Dir(Default::default()),
                Kind::Symlink(t) if !t.is_empty() && !t.contains(&0) => Content::Symlink(t.into()),
                Kind::Symlink(_) => continue,
                Kind::Char(major, minor) => Content::CharDev { major, minor },
                Kind::Block(major, minor) => Content::BlockDev { major, minor },
                Kind::Fifo => Content::Fifo,
                Kind::Socket => Content::Socket,
                Kind::HardLink(i) => {
                    if let Some(target) = files.get(usize::from(i) % files.len().max(1)) {
                        // A target replaced by a directory since is skipped.
                        let _ = b.hard_link(&p, target);
                    }
                    continue;
                }
            };
            let is_file = matches!(content, Content::File(_));
            let mut inode = Inode::new(meta, content);
            if let Some((n, value)) = op.xattr {
                inode.set_xattr(XATTR_NAMES[usize::from(n) % XATTR_NAMES.len()], &value);
            }
            // Paths through a non-directory are skipped, as a fuzzer wants
            // valid trees.
            if b.insert(&p, inode, Replace::Always).is_ok() && is_file {
                files.push(p);
            }
        }
        Ok(ArbitraryTree(b.finish()))
    }
}
