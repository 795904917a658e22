//! The walk from the root directory: listings, hard links and the checks
//! that the directories form a tree.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use rootforge_common::bytes::usize_from_u32;
use rootforge_common::{Edit, Error, Inode, Replace, Result, Tree, TreeBuilder, display_path};

use super::inode::{Body, DirRef};
use super::{Reader, malformed};
use crate::PATH_MAX;
use crate::records::{DirEntry, DirHeader};

/// Entries one directory header may cover.
const DIR_RUN: u32 = 256;
/// The longest name a listing holds (the kernel's `SQUASHFS_NAME_LEN`).
const NAME_LEN: usize = 256;

/// One directory entry as stored.
struct Dirent<'a> {
    name: &'a [u8],
    /// The inode's position in the inode table's unpacked bytes.
    inode: usize,
    number: u32,
    basic: u16,
}

/// Where a non-directory inode was first placed, for its hard links.
struct FirstName<'a> {
    parent: Rc<[u8]>,
    name: &'a [u8],
    basic: u16,
}

/// The directory table's bytes already listed, by start: a listing read
/// twice (directories sharing or overlapping listings) would multiply its
/// entries.
#[derive(Default)]
struct Listed(BTreeMap<usize, usize>);

impl Listed {
    /// Whether `start..end` overlaps no earlier listing; it is now taken.
    fn claim(&mut self, start: usize, end: usize) -> bool {
        // The ranges are disjoint: only the last one starting before `end`
        // can reach past `start`.
        if self
            .0
            .range(..end)
            .next_back()
            .is_some_and(|(_, &e)| e > start)
        {
            return false;
        }
        self.0.insert(start, end);
        true
    }
}

/// `parent/name`, or `name` in the root.
fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(parent.len() + 1 + name.len());
    path.extend_from_slice(parent);
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

impl Reader {
    /// The tree under the root inode at `root_ref`.
    pub(super) fn walk(self, root_ref: u64) -> Result<Tree> {
        let root_at = self.inodes.resolve_ref(root_ref)?;
        let root = self.inode(root_at)?;
        let Body::Dir(root_dir) = root.body else {
            return Err(malformed(32, "the root inode is not a directory"));
        };
        let mut tree = TreeBuilder::new(root.meta);
        let mut top = Inode::dir(root.meta);
        top.xattrs = self.xattrs(root.xattr)?;
        tree.insert(b"", top, Replace::Always)
            .map_err(|e| malformed(0, e.to_string()))?;
        // Inode positions already placed: directories (to refuse loops)
        // and the first name of every other inode (for hard links).
        let mut dirs_seen = HashSet::from([root_at]);
        let mut first_names: HashMap<usize, FirstName<'_>> = HashMap::new();
        let mut listed = Listed::default();
        // The kernel keys inodes by number: one number, one inode.
        let mut numbers: HashMap<u32, usize> = HashMap::from([(root.number, root_at)]);
        let mut stack: Vec<(Rc<[u8]>, DirRef)> = vec![(Rc::from(&[][..]), root_dir)];
        while let Some((path, dir)) = stack.pop() {
            let entries = self.listing(dir, &mut listed).map_err(|e| match e {
                Error::Malformed {
                    format,
                    offset,
                    reason,
                } => Error::Malformed {
                    format,
                    offset,
                    reason: format!("{}: {reason}", display_path(&path)),
                },
                e => e,
            })?;
            for e in entries {
                let offset = self.inodes.image_offset(e.inode);
                let child = join(&path, e.name);
                if child.len() > PATH_MAX {
                    return Err(malformed(
                        offset,
                        format!("a path is longer than {PATH_MAX} bytes"),
                    ));
                }
                if *numbers.entry(e.number).or_insert(e.inode) != e.inode {
                    return Err(malformed(
                        offset,
                        format!("inode number {} names two different inodes", e.number),
                    ));
                }
                let place_err = |err: Error| malformed(offset, err.to_string());
                let type_error = |basic: u16| {
                    malformed(
                        offset,
                        format!(
                            "directory entry of type {} for an inode of type {basic}",
                            e.basic
                        ),
                    )
                };
                if let Some(first) = first_names.get(&e.inode) {
                    if first.basic != e.basic {
                        return Err(type_error(first.basic));
                    }
                    tree.hard_link(&child, &join(&first.parent, first.name))
                        .map_err(place_err)?;
                    continue;
                }
                let raw = self.inode(e.inode)?;
                if raw.basic != e.basic {
                    return Err(type_error(raw.basic));
                }
                let xattrs = self.xattrs(raw.xattr)?;
                match raw.body {
                    Body::Dir(listing) => {
                        if !dirs_seen.insert(e.inode) {
                            return Err(malformed(
                                offset,
                                format!(
                                    "{}: a directory is reached twice (a loop or a linked directory)",
                                    display_path(&child)
                                ),
                            ));
                        }
                        let mut inode = Inode::dir(raw.meta);
                        inode.xattrs = xattrs;
                        tree.insert(&child, inode, Replace::Always)
                            .map_err(place_err)?;
                        stack.push((child.into(), listing));
                    }
                    Body::Other(content) => {
                        let mut inode = Inode::new(raw.meta, content);
                        inode.xattrs = xattrs;
                        tree.insert(&child, inode, Replace::Always)
                            .map_err(place_err)?;
                        first_names.insert(
                            e.inode,
                            FirstName {
                                parent: path.clone(),
                                name: e.name,
                                basic: raw.basic,
                            },
                        );
                    }
                }
            }
        }
        Ok(tree.finish())
    }

    /// A directory's entries, with their names checked.
    fn listing(&self, dir: DirRef, listed: &mut Listed) -> Result<Vec<Dirent<'_>>> {
        // The size counts the "." and ".." the kernel synthesises.
        let Some(len) = dir.size.checked_sub(3).filter(|&l| l > 0) else {
            return Ok(Vec::new());
        };
        let start = self
            .dirs
            .resolve(u64::from(dir.block), u64::from(dir.offset))?;
        let mut c = self.dirs.cursor(start, "directory listing");
        let end = start
            .checked_add(usize_from_u32(len))
            .filter(|&end| end <= self.dirs.data.len())
            .ok_or_else(|| c.error(format_args!("{len} bytes run past the table's end")))?;
        if !listed.claim(start, end) {
            return Err(c.error("it overlaps another directory's listing"));
        }
        let mut out = Vec::new();
        let mut names = HashSet::new();
        while c.pos < end {
            let header: DirHeader = c.record()?;
            if header.count >= DIR_RUN {
                return Err(c.error(format_args!(
                    "a header of {} entries",
                    u64::from(header.count) + 1
                )));
            }
            for _ in 0..=header.count {
                if c.pos >= end {
                    return Err(c.error("a header counts more entries than the listing holds"));
                }
                let entry: DirEntry = c.record()?;
                let name_len = usize::from(entry.size) + 1;
                if name_len > NAME_LEN {
                    return Err(c.error(format_args!("a name of {name_len} bytes")));
                }
                let name = c.take(name_len)?;
                if name == b"." || name == b".." || name.iter().any(|&b| b == b'/' || b == 0) {
                    return Err(c.error(format_args!(
                        "the name {:?} cannot be a path component",
                        String::from_utf8_lossy(name)
                    )));
                }
                if !names.insert(name) {
                    return Err(c.error(format_args!(
                        "the name {:?} appears twice",
                        String::from_utf8_lossy(name)
                    )));
                }
                let number =
                    u32::try_from(i64::from(header.inode_number) + i64::from(entry.inode_number))
                        .map_err(|_| c.error("an inode number out of range"))?;
                out.push(Dirent {
                    name,
                    inode: self
                        .inodes
                        .resolve(u64::from(header.start_block), u64::from(entry.offset))?,
                    number,
                    basic: entry.r#type,
                });
            }
        }
        if c.pos != end {
            return Err(c.error("the last entry runs past the listing's size"));
        }
        Ok(out)
    }
}
