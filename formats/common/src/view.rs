//! The read-only view encoders consume.

use std::collections::HashMap;

use crate::path::normalize_path;
use crate::tree::{Inode, InodeId, Kind, Tree};

/// A base tree with at most one overlay on top. Cheap to copy and `Sync`, so
/// encoders can read it from many threads.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    base: &'a Tree,
    layer: Option<&'a Layer>,
}

/// The inodes an overlay holds above its base: copies of the base inodes it
/// changed, by id, and the inodes it added, whose ids follow the base's.
/// Kept here rather than in the overlay so that a view reads an overlay
/// without depending on it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layer {
    pub(crate) changed: HashMap<InodeId, Inode>,
    pub(crate) added: Vec<Inode>,
}

impl Layer {
    /// The layer's inode `id` over a base of `base_len` inodes, if it has one.
    pub(crate) fn get(&self, base_len: usize, id: InodeId) -> Option<&Inode> {
        match (id.0 as usize).checked_sub(base_len) {
            Some(i) => self.added.get(i),
            None => self.changed.get(&id),
        }
    }
}

impl Tree {
    /// The tree alone, as encoders read it.
    pub fn view(&self) -> View<'_> {
        View::new(self, None)
    }
}

/// One name in the tree, as a walk yields it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The full path without a leading `/`; the root is the empty path.
    pub path: Box<[u8]>,
    /// The inode the name refers to.
    pub ino: InodeId,
    /// Link count: names of a non-directory; 2 plus subdirectories for a
    /// directory.
    pub nlink: u32,
}

impl<'a> View<'a> {
    pub(crate) fn new(base: &'a Tree, layer: Option<&'a Layer>) -> Self {
        View { base, layer }
    }

    /// The root directory.
    pub fn root(&self) -> InodeId {
        Tree::ROOT
    }

    /// The inode `id`: the overlay's copy when it has one, else the base's.
    pub fn inode(&self, id: InodeId) -> &'a Inode {
        if let Some(i) = self.layer.and_then(|l| l.get(self.base.len(), id)) {
            return i;
        }
        self.base.inode(id)
    }

    /// A directory's entries in byte order of their names (empty for a
    /// non-directory).
    pub fn children(&self, dir: InodeId) -> impl Iterator<Item = (&'a [u8], InodeId)> + 'a {
        self.inode(dir)
            .children()
            .into_iter()
            .flat_map(|c| c.iter().map(|(n, &id)| (&**n, id)))
    }

    /// Looks a path up (a leading `/`, `.` and `//` are allowed); `None`
    /// if a component is missing.
    pub fn lookup(&self, path: &[u8]) -> Option<InodeId> {
        let mut cur = self.root();
        for c in normalize_path(path).ok()? {
            cur = *self.inode(cur).children()?.get(c)?;
        }
        Some(cur)
    }

    /// Every name in the tree, the root first (as the empty path), sorted by
    /// the bytes of the whole path: the order `find . | LC_ALL=C sort` gives,
    /// in which `a-b` sorts before `a/x`.
    pub fn sorted_entries(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut names: HashMap<InodeId, u32> = HashMap::new();
        let mut stack: Vec<(Box<[u8]>, InodeId)> = vec![(Box::default(), self.root())];
        while let Some((path, ino)) = stack.pop() {
            let inode = self.inode(ino);
            let mut nlink = 1;
            if inode.kind() == Kind::Dir {
                nlink = 2u32;
                for (name, child) in self.children(ino) {
                    if self.inode(child).kind() == Kind::Dir {
                        nlink = nlink.saturating_add(1);
                    }
                    let mut p =
                        Vec::with_capacity(path.len().saturating_add(name.len()).saturating_add(1));
                    if !path.is_empty() {
                        p.extend_from_slice(&path);
                        p.push(b'/');
                    }
                    p.extend_from_slice(name);
                    stack.push((p.into(), child));
                }
            } else {
                let n = names.entry(ino).or_insert(0);
                *n = n.saturating_add(1);
            }
            out.push(Entry { path, ino, nlink });
        }
        for e in &mut out {
            if let Some(&n) = names.get(&e.ino) {
                e.nlink = n;
            }
        }
        out.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::FileData;
    use crate::tree::{Content, Edit, Inode, Meta, Replace, Time, TreeBuilder};

    #[test]
    fn find_sort_order_and_link_counts() {
        let m = Meta::new(0o755, 0, 0, Time::from_secs(1));
        let f = || Inode::new(m, Content::File(FileData::bytes(&b"x"[..])));
        let mut b = TreeBuilder::new(m);
        b.insert(b"a/x", f(), Replace::Always).unwrap();
        b.insert(b"a-b", f(), Replace::Always).unwrap();
        b.insert(b"a/sub/y", f(), Replace::Always).unwrap();
        b.hard_link(b"z", b"a/x").unwrap();
        let tree = b.finish();
        let entries = tree.view().sorted_entries();
        let paths: Vec<_> = entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .collect();
        assert_eq!(paths, ["", "a", "a-b", "a/sub", "a/sub/y", "a/x", "z"]);
        let nlink: Vec<_> = entries.iter().map(|e| e.nlink).collect();
        assert_eq!(nlink, [3, 3, 1, 2, 1, 2, 2]);
    }
}
