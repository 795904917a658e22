//! The plan: inode numbers, link counts, ids and xattr sets, decided from
//! the view before anything is written, with every limit checked.

use std::collections::HashMap;

use rootforge_common::{Content, Error, Inode, InodeId, Result, View, display_path};

use crate::xattr::Xattrs;
use crate::{NAME_MAX, PATH_MAX, limit};

/// The kernel rejects symlinks longer than a page; this is the smallest page.
const SYMLINK_MAX: usize = 4096;

/// An inode in the order the inode table holds them (its number is its
/// index plus one).
pub(crate) struct Node {
    pub(crate) id: InodeId,
    /// The first name it was reached by, for messages.
    pub(crate) path: Box<[u8]>,
    /// Names of a non-directory; 2 plus subdirectories for a directory.
    pub(crate) nlink: u32,
    /// The parent of a directory other than the root.
    pub(crate) parent: Option<InodeId>,
    pub(crate) mtime: u32,
    pub(crate) uid: u16,
    pub(crate) gid: u16,
    /// The xattr id, if it has xattrs the format can store.
    pub(crate) xattr: Option<u32>,
}

/// Everything decided before a byte is written.
pub(crate) struct Plan<'v> {
    pub(crate) nodes: Vec<Node>,
    pub(crate) numbers: HashMap<InodeId, u32>,
    pub(crate) ids: Vec<u32>,
    pub(crate) xattrs: Xattrs<'v>,
    /// The newest inode mtime, used as the image's time.
    pub(crate) newest: u32,
    pub(crate) warnings: Vec<String>,
}

/// A directory being walked.
struct Frame<'v> {
    id: InodeId,
    path: Vec<u8>,
    kids: Vec<(&'v [u8], InodeId)>,
    next: usize,
    subdirs: u32,
}

/// Collects the inode table's order while the tree is walked.
#[derive(Default)]
struct Planner<'v> {
    nodes: Vec<Node>,
    numbers: HashMap<InodeId, u32>,
    ids: IdTable,
    clamped: Clamped,
    xattrs: Xattrs<'v>,
}

impl<'v> Planner<'v> {
    fn push(
        &mut self,
        inode: &'v Inode,
        id: InodeId,
        path: Vec<u8>,
        nlink: u32,
        parent: Option<InodeId>,
    ) -> Result<()> {
        check_inode(inode, &path)?;
        let number = u32::try_from(self.nodes.len())
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| {
                limit(
                    &path,
                    "inode count",
                    u64::from(u32::MAX) + 1,
                    u64::from(u32::MAX),
                )
            })?;
        self.numbers.insert(id, number);
        let sec = inode.meta.mtime.sec;
        let mtime = u32::try_from(sec).unwrap_or_else(|_| {
            self.clamped.note(&path, sec);
            if sec < 0 { 0 } else { u32::MAX }
        });
        self.nodes.push(Node {
            id,
            nlink,
            parent,
            mtime,
            uid: self.ids.index(inode.meta.uid, &path)?,
            gid: self.ids.index(inode.meta.gid, &path)?,
            xattr: self.xattrs.id(&inode.xattrs, &path)?,
            path: path.into(),
        });
        Ok(())
    }
}

/// Orders the inodes for the inode table: each directory after everything
/// under it, so its listing can point at its children, and a hard-linked
/// inode at its first name. Checks every entry against the format's limits.
pub(crate) fn plan<'v>(view: &View<'v>) -> Result<Plan<'v>> {
    let mut p = Planner::default();
    let mut stack = vec![frame(view, view.root(), Vec::new())];
    while let Some(top) = stack.last_mut() {
        let Some(&(name, child)) = top.kids.get(top.next) else {
            let done = stack
                .pop()
                .ok_or_else(|| Error::tree("/", "walk underflow"))?;
            let parent = stack.last().map(|f| f.id);
            let nlink = done.subdirs.saturating_add(2);
            p.push(view.inode(done.id), done.id, done.path, nlink, parent)?;
            continue;
        };
        top.next += 1;
        let mut path = top.path.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        if name.len() > NAME_MAX {
            return Err(limit(
                &path,
                "name length",
                name.len() as u64,
                NAME_MAX as u64,
            ));
        }
        if path.len() > PATH_MAX {
            return Err(limit(
                &path,
                "path length",
                path.len() as u64,
                PATH_MAX as u64,
            ));
        }
        let inode = view.inode(child);
        if inode.children().is_some() {
            top.subdirs = top.subdirs.saturating_add(1);
            stack.push(frame(view, child, path));
        } else if let Some(&n) = p.numbers.get(&child) {
            if let Some(node) = p.nodes.get_mut((n as usize).wrapping_sub(1)) {
                node.nlink = node.nlink.saturating_add(1);
            }
        } else {
            p.push(inode, child, path, 1, None)?;
        }
    }
    let newest = p.nodes.iter().map(|n| n.mtime).max().unwrap_or(0);
    let warnings = [p.clamped.warning(), p.xattrs.warning()]
        .into_iter()
        .flatten()
        .collect();
    Ok(Plan {
        nodes: p.nodes,
        numbers: p.numbers,
        ids: p.ids.ids,
        xattrs: p.xattrs,
        newest,
        warnings,
    })
}

fn frame<'v>(view: &View<'v>, id: InodeId, path: Vec<u8>) -> Frame<'v> {
    Frame {
        id,
        path,
        kids: view.children(id).collect(),
        next: 0,
        subdirs: 0,
    }
}

fn check_inode(inode: &Inode, path: &[u8]) -> Result<()> {
    match &inode.content {
        Content::Symlink(target) if target.len() > SYMLINK_MAX => Err(limit(
            path,
            "symlink target length",
            target.len() as u64,
            SYMLINK_MAX as u64,
        )),
        Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
            if *major > 0xfff {
                return Err(limit(path, "device major", u64::from(*major), 0xfff));
            }
            if *minor > 0xf_ffff {
                return Err(limit(path, "device minor", u64::from(*minor), 0xf_ffff));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The uid/gid table: 32-bit ids in order of first use, at most 65535
/// (the superblock counts them in 16 bits).
#[derive(Default)]
struct IdTable {
    ids: Vec<u32>,
    index: HashMap<u32, u16>,
}

impl IdTable {
    fn index(&mut self, id: u32, path: &[u8]) -> Result<u16> {
        if let Some(&i) = self.index.get(&id) {
            return Ok(i);
        }
        let i = u16::try_from(self.ids.len())
            .ok()
            .filter(|&i| i < u16::MAX)
            .ok_or_else(|| limit(path, "number of distinct uids and gids", 65536, 65535))?;
        self.ids.push(id);
        self.index.insert(id, i);
        Ok(i)
    }
}

/// Counts mtimes outside the 32-bit unsigned range, for one warning.
#[derive(Default)]
struct Clamped {
    count: u64,
    first: Option<(String, i64)>,
}

impl Clamped {
    fn note(&mut self, path: &[u8], sec: i64) {
        self.count = self.count.saturating_add(1);
        self.first.get_or_insert_with(|| (display_path(path), sec));
    }

    fn warning(self) -> Option<String> {
        let (path, sec) = self.first?;
        Some(format!(
            "squashfs stores mtimes as unsigned 32-bit seconds (1970 to 2106): clamped {} \
             entries (first: {path} at {sec})",
            self.count
        ))
    }
}
