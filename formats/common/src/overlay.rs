//! Per-image changes over a frozen base tree.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::tree::{Inode, InodeId, Meta, Store, Tree};
use crate::view::{Layer, View};

/// A copy-on-write layer over a shared [`Tree`]: an inode is copied into the
/// overlay only when the overlay changes it (for a directory, that is one
/// directory's entry map, never a subtree), and new inodes get ids above the
/// base's. Edits go through [`crate::Edit`].
#[derive(Debug, Clone)]
pub struct Overlay {
    base: Arc<Tree>,
    layer: Layer,
    implicit_dir: Meta,
}

impl Overlay {
    /// An empty overlay; `implicit_dir` is the metadata of directories the
    /// overlay has to create as parents.
    pub fn new(base: Arc<Tree>, implicit_dir: Meta) -> Self {
        Overlay {
            base,
            layer: Layer::default(),
            implicit_dir,
        }
    }

    /// The shared tree the overlay sits on.
    pub fn base(&self) -> &Arc<Tree> {
        &self.base
    }

    /// Whether the overlay changes nothing.
    pub fn is_empty(&self) -> bool {
        self.layer.changed.is_empty() && self.layer.added.is_empty()
    }

    /// What encoders read: the base with this overlay's changes.
    pub fn view(&self) -> View<'_> {
        View::new(&self.base, Some(&self.layer))
    }
}

impl Store for Overlay {
    fn get(&self, id: InodeId) -> &Inode {
        self.layer
            .get(self.base.len(), id)
            .unwrap_or_else(|| self.base.inode(id))
    }

    fn get_mut(&mut self, id: InodeId) -> &mut Inode {
        let base_len = self.base.len();
        match (id.0 as usize).checked_sub(base_len) {
            Some(i) => &mut self.layer.added[i],
            None => self
                .layer
                .changed
                .entry(id)
                .or_insert_with(|| self.base.inode(id).clone()),
        }
    }

    fn push(&mut self, inode: Inode) -> Result<InodeId> {
        let id = self
            .base
            .len()
            .checked_add(self.layer.added.len())
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n < u32::MAX)
            .ok_or_else(|| Error::tree("/", "more than 2^32 - 1 inodes"))?;
        self.layer.added.push(inode);
        Ok(InodeId(id))
    }

    fn implicit_dir(&self) -> Meta {
        self.implicit_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileData;
    use crate::tree::{Content, Edit, Replace, Time, TreeBuilder};

    #[test]
    fn overlay_changes_only_its_view() {
        let m = Meta::new(0o755, 0, 0, Time::from_secs(1));
        let mut b = TreeBuilder::new(m);
        b.insert(
            b"dev/null",
            Inode::new(m, Content::CharDev { major: 1, minor: 3 }),
            Replace::Always,
        )
        .unwrap();
        b.insert(
            b"bin/sh",
            Inode::new(m, Content::File(FileData::bytes(&b"x"[..]))),
            Replace::Always,
        )
        .unwrap();
        let base = Arc::new(b.finish());
        let mut o = Overlay::new(base.clone(), m);
        o.insert(
            b"dev/console",
            Inode::new(m, Content::CharDev { major: 5, minor: 1 }),
            Replace::Always,
        )
        .unwrap();
        o.remove(b"bin").unwrap();
        o.modify(b"dev/null", &mut |i| i.meta.perm = 0o666).unwrap();

        let v = o.view();
        assert!(v.lookup(b"dev/console").is_some());
        assert!(v.lookup(b"bin/sh").is_none());
        assert_eq!(v.inode(v.lookup(b"dev/null").unwrap()).meta.perm, 0o666);

        let bv = base.view();
        assert!(bv.lookup(b"dev/console").is_none());
        assert!(bv.lookup(b"bin/sh").is_some());
        assert_eq!(bv.inode(bv.lookup(b"dev/null").unwrap()).meta.perm, 0o755);
        // Only the two touched directories and one device were copied.
        assert_eq!(o.layer.changed.len(), 3);
    }
}
