//! The inode arena and the path operations shared by the base tree builder
//! and overlays.

use std::collections::BTreeMap;

use crate::data::FileData;
use crate::error::{Error, Result};
use crate::path::{display_path, normalize_path};

/// Index of an inode in a [`Tree`] (or in an overlay above it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InodeId(pub u32);

/// Seconds since the epoch (may be negative or past 2038) and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time {
    /// Whole seconds; negative before 1970.
    pub sec: i64,
    /// Nanoseconds within the second.
    pub nsec: u32,
}

impl Time {
    /// A time of `sec` whole seconds.
    pub const fn from_secs(sec: i64) -> Self {
        Time { sec, nsec: 0 }
    }
}

/// Ownership, permission bits (including setuid, setgid and sticky: the low
/// 12 bits of `st_mode`) and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Meta {
    /// Permission bits: the low 12 bits of `st_mode`.
    pub perm: u16,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time.
    pub mtime: Time,
}

impl Meta {
    /// Metadata with only the low 12 bits of `perm` kept.
    pub const fn new(perm: u16, uid: u32, gid: u32, mtime: Time) -> Self {
        Meta {
            perm: perm & 0o7777,
            uid,
            gid,
            mtime,
        }
    }
}

/// One extended attribute, with its full name (`security.capability`,
/// `user.foo`, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Xattr {
    /// Full name with its namespace prefix.
    pub name: Box<[u8]>,
    /// Raw value bytes.
    pub value: Box<[u8]>,
}

/// What an inode is, with what only that kind of inode has.
#[derive(Debug, Clone)]
pub enum Content {
    /// Entries by raw name bytes; iteration is in byte order.
    Dir(BTreeMap<Box<[u8]>, InodeId>),
    /// A regular file and where its bytes are.
    File(FileData),
    /// The raw target bytes.
    Symlink(Box<[u8]>),
    /// A character device and its device numbers.
    CharDev {
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// A block device and its device numbers.
    BlockDev {
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
    /// A Unix domain socket (only its name and metadata are stored).
    Socket,
}

/// The file type alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Character device.
    CharDev,
    /// Block device.
    BlockDev,
    /// Named pipe.
    Fifo,
    /// Unix domain socket.
    Socket,
}

impl Kind {
    /// The `S_IFMT` bits of `st_mode`.
    pub const fn mode_bits(self) -> u32 {
        match self {
            Kind::Fifo => 0o010000,
            Kind::CharDev => 0o020000,
            Kind::Dir => 0o040000,
            Kind::BlockDev => 0o060000,
            Kind::File => 0o100000,
            Kind::Symlink => 0o120000,
            Kind::Socket => 0o140000,
        }
    }

    /// The kind whose `S_IFMT` bits are in `mode`.
    pub const fn from_mode(mode: u32) -> Option<Kind> {
        Some(match mode & 0o170000 {
            0o010000 => Kind::Fifo,
            0o020000 => Kind::CharDev,
            0o040000 => Kind::Dir,
            0o060000 => Kind::BlockDev,
            0o100000 => Kind::File,
            0o120000 => Kind::Symlink,
            0o140000 => Kind::Socket,
            _ => return None,
        })
    }

    /// One letter, as `find -printf %y` prints it.
    pub const fn letter(self) -> char {
        match self {
            Kind::File => 'f',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::CharDev => 'c',
            Kind::BlockDev => 'b',
            Kind::Fifo => 'p',
            Kind::Socket => 's',
        }
    }

    /// The kind in words, for error messages (`regular file`, `directory`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::File => "regular file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::CharDev => "character device",
            Kind::BlockDev => "block device",
            Kind::Fifo => "fifo",
            Kind::Socket => "socket",
        }
    }
}

/// One inode: metadata, xattrs sorted by name, and content.
#[derive(Debug, Clone)]
pub struct Inode {
    /// Ownership, permissions and mtime.
    pub meta: Meta,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<Xattr>,
    /// The kind and what belongs to it.
    pub content: Content,
}

impl Inode {
    /// An inode without xattrs.
    pub fn new(meta: Meta, content: Content) -> Self {
        Inode {
            meta,
            xattrs: Vec::new(),
            content,
        }
    }

    /// An empty directory.
    pub fn dir(meta: Meta) -> Self {
        Inode::new(meta, Content::Dir(BTreeMap::new()))
    }

    /// The file type of the content.
    pub fn kind(&self) -> Kind {
        match self.content {
            Content::Dir(_) => Kind::Dir,
            Content::File(_) => Kind::File,
            Content::Symlink(_) => Kind::Symlink,
            Content::CharDev { .. } => Kind::CharDev,
            Content::BlockDev { .. } => Kind::BlockDev,
            Content::Fifo => Kind::Fifo,
            Content::Socket => Kind::Socket,
        }
    }

    /// The full `st_mode`: type bits and permission bits.
    pub fn mode(&self) -> u32 {
        self.kind().mode_bits() | u32::from(self.meta.perm & 0o7777)
    }

    /// Device numbers of a character or block device.
    pub fn rdev(&self) -> Option<(u32, u32)> {
        match self.content {
            Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
                Some((major, minor))
            }
            _ => None,
        }
    }

    /// A directory's entries by name; `None` for other kinds.
    pub fn children(&self) -> Option<&BTreeMap<Box<[u8]>, InodeId>> {
        match &self.content {
            Content::Dir(c) => Some(c),
            _ => None,
        }
    }

    /// Sets an xattr, keeping the list sorted by name.
    pub fn set_xattr(&mut self, name: &[u8], value: &[u8]) {
        match self.xattrs.binary_search_by(|x| (*x.name).cmp(name)) {
            Ok(i) => self.xattrs[i].value = value.into(),
            Err(i) => self.xattrs.insert(
                i,
                Xattr {
                    name: name.into(),
                    value: value.into(),
                },
            ),
        }
    }

    /// Removes an xattr; returns whether it was there.
    pub fn remove_xattr(&mut self, name: &[u8]) -> bool {
        match self.xattrs.binary_search_by(|x| (*x.name).cmp(name)) {
            Ok(i) => {
                self.xattrs.remove(i);
                true
            }
            Err(_) => false,
        }
    }
}

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name, one path component.
    pub name: Box<[u8]>,
    /// The inode it names.
    pub ino: InodeId,
}

/// A frozen rootfs tree. The root directory is always inode 0.
#[derive(Debug, Clone)]
pub struct Tree {
    pub(crate) inodes: Vec<Inode>,
}

impl Tree {
    /// The root directory's id.
    pub const ROOT: InodeId = InodeId(0);

    /// The inode `id`. Panics if `id` is not from this tree.
    pub fn inode(&self, id: InodeId) -> &Inode {
        &self.inodes[id.0 as usize]
    }

    /// Number of inodes in the arena (including any no longer named).
    pub fn len(&self) -> usize {
        self.inodes.len()
    }

    /// Always false: a tree holds at least its root.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Reopens the tree for editing (consumes it; nothing is copied).
    pub fn into_builder(self, implicit_dir: Meta) -> TreeBuilder {
        TreeBuilder {
            inodes: self.inodes,
            implicit_dir,
        }
    }
}

/// Storage that path edits work on: the base tree while it is built, or an
/// overlay over a frozen tree (which copies an inode only when it changes).
pub(crate) trait Store {
    fn get(&self, id: InodeId) -> &Inode;
    fn get_mut(&mut self, id: InodeId) -> &mut Inode;
    fn push(&mut self, inode: Inode) -> Result<InodeId>;
    /// Metadata for a directory that only appears as the parent of an entry.
    fn implicit_dir(&self) -> Meta;
}

/// How [`Edit::insert`] treats an existing entry at the same path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// A later entry wins, as when extracting an archive. A directory over a
    /// directory keeps the children and takes the new metadata.
    Always,
    /// Leave an existing entry alone.
    IfAbsent,
}

fn lookup_in<S: Store + ?Sized>(s: &S, comps: &[&[u8]]) -> Option<InodeId> {
    let mut cur = Tree::ROOT;
    for c in comps {
        cur = *s.get(cur).children()?.get(*c)?;
    }
    Some(cur)
}

fn join(comps: &[&[u8]]) -> String {
    display_path(&comps.join(&b'/'))
}

/// Walks to the directory `comps`, creating missing ones with the implicit
/// metadata. A non-directory on the way is an error.
fn ensure_dir<S: Store + ?Sized>(s: &mut S, comps: &[&[u8]]) -> Result<InodeId> {
    let mut cur = Tree::ROOT;
    for (i, c) in comps.iter().enumerate() {
        let next = s.get(cur).children().and_then(|ch| ch.get(*c).copied());
        cur = match next {
            Some(id) => {
                let kind = s.get(id).kind();
                if kind != Kind::Dir {
                    return Err(Error::tree(
                        join(&comps[..=i]),
                        format!("is a {} but is used as a parent directory", kind.name()),
                    ));
                }
                id
            }
            None => {
                let meta = s.implicit_dir();
                let id = s.push(Inode::dir(meta))?;
                bind(s, cur, c, id);
                id
            }
        };
    }
    Ok(cur)
}

fn bind<S: Store + ?Sized>(s: &mut S, dir: InodeId, name: &[u8], id: InodeId) {
    if let Content::Dir(children) = &mut s.get_mut(dir).content {
        children.insert(name.into(), id);
    }
}

fn split(path: &[u8]) -> Result<Vec<&[u8]>> {
    normalize_path(path).map_err(|e| Error::tree(display_path(path), e.to_string()))
}

/// Path-level edits, shared by [`TreeBuilder`] and [`crate::Overlay`].
#[allow(private_bounds)]
pub trait Edit: Store {
    /// Looks a path up.
    fn lookup(&self, path: &[u8]) -> Option<InodeId> {
        lookup_in(self, &split(path).ok()?)
    }

    /// Places `inode` at `path`, creating missing parents.
    fn insert(&mut self, path: &[u8], inode: Inode, replace: Replace) -> Result<InodeId> {
        let comps = split(path)?;
        let Some((name, parent)) = comps.split_last() else {
            // The root itself: only its metadata can change.
            if inode.kind() != Kind::Dir {
                return Err(Error::tree(
                    "/",
                    format!("the root cannot be a {}", inode.kind().name()),
                ));
            }
            if replace == Replace::Always {
                let root = self.get_mut(Tree::ROOT);
                root.meta = inode.meta;
                root.xattrs = inode.xattrs;
            }
            return Ok(Tree::ROOT);
        };
        let dir = ensure_dir(self, parent)?;
        let existing = self.get(dir).children().and_then(|c| c.get(*name).copied());
        if let Some(old) = existing {
            if replace == Replace::IfAbsent {
                return Ok(old);
            }
            if self.get(old).kind() == Kind::Dir && inode.kind() == Kind::Dir {
                let cur = self.get_mut(old);
                cur.meta = inode.meta;
                cur.xattrs = inode.xattrs;
                return Ok(old);
            }
        }
        let id = self.push(inode)?;
        bind(self, dir, name, id);
        Ok(id)
    }

    /// Gives the inode at `target` a further name `path`. Directories cannot
    /// be hard-linked.
    fn hard_link(&mut self, path: &[u8], target: &[u8]) -> Result<InodeId> {
        let tcomps = split(target)?;
        let id = lookup_in(self, &tcomps).ok_or_else(|| {
            Error::tree(
                display_path(path),
                format!("hard link to {}, which does not exist (yet)", join(&tcomps)),
            )
        })?;
        if self.get(id).kind() == Kind::Dir {
            return Err(Error::tree(
                display_path(path),
                format!("hard link to directory {}", join(&tcomps)),
            ));
        }
        let comps = split(path)?;
        let Some((name, parent)) = comps.split_last() else {
            return Err(Error::tree("/", "the root cannot be a hard link"));
        };
        let dir = ensure_dir(self, parent)?;
        bind(self, dir, name, id);
        Ok(id)
    }

    /// Removes `path` and everything under it. Returns whether it existed.
    fn remove(&mut self, path: &[u8]) -> Result<bool> {
        let comps = split(path)?;
        let Some((name, parent)) = comps.split_last() else {
            return Err(Error::tree("/", "the root cannot be removed"));
        };
        let Some(dir) = lookup_in(self, parent) else {
            return Ok(false);
        };
        if self
            .get(dir)
            .children()
            .is_none_or(|c| !c.contains_key(*name))
        {
            return Ok(false);
        }
        if let Content::Dir(children) = &mut self.get_mut(dir).content {
            children.remove(*name);
        }
        Ok(true)
    }

    /// Changes an existing inode's metadata and xattrs in place.
    fn modify(&mut self, path: &[u8], f: &mut dyn FnMut(&mut Inode)) -> Result<InodeId> {
        let comps = split(path)?;
        let id =
            lookup_in(self, &comps).ok_or_else(|| Error::tree(join(&comps), "does not exist"))?;
        f(self.get_mut(id));
        Ok(id)
    }
}

impl<S: Store + ?Sized> Edit for S {}

/// Builds a [`Tree`] from entries in any order.
#[derive(Debug)]
pub struct TreeBuilder {
    inodes: Vec<Inode>,
    implicit_dir: Meta,
}

impl TreeBuilder {
    /// A tree holding only the root, which gets `implicit_dir` as its metadata
    /// until an entry for it arrives; so do directories that are only implied.
    pub fn new(implicit_dir: Meta) -> Self {
        TreeBuilder {
            inodes: vec![Inode::dir(implicit_dir)],
            implicit_dir,
        }
    }

    /// The inode `id`. Panics if `id` is not from this builder.
    pub fn inode(&self, id: InodeId) -> &Inode {
        self.get(id)
    }

    /// The inode `id`, for changes that are not path edits. Panics if `id`
    /// is not from this builder.
    pub fn inode_mut(&mut self, id: InodeId) -> &mut Inode {
        self.get_mut(id)
    }

    /// Clamps every mtime to `max` (`SOURCE_DATE_EPOCH` semantics).
    pub fn clamp_mtimes(&mut self, max: Time) {
        for inode in &mut self.inodes {
            if inode.meta.mtime > max {
                inode.meta.mtime = max;
            }
        }
    }

    /// Sets every inode's owner to root (`--all-root`, Buildroot's first step).
    pub fn chown_all(&mut self, uid: u32, gid: u32) {
        for inode in &mut self.inodes {
            inode.meta.uid = uid;
            inode.meta.gid = gid;
        }
    }

    /// Freezes the tree.
    pub fn finish(self) -> Tree {
        Tree {
            inodes: self.inodes,
        }
    }
}

impl Store for TreeBuilder {
    fn get(&self, id: InodeId) -> &Inode {
        &self.inodes[id.0 as usize]
    }

    fn get_mut(&mut self, id: InodeId) -> &mut Inode {
        &mut self.inodes[id.0 as usize]
    }

    fn push(&mut self, inode: Inode) -> Result<InodeId> {
        let id = u32::try_from(self.inodes.len())
            .ok()
            .filter(|&n| n < u32::MAX)
            .ok_or_else(|| Error::tree("/", "more than 2^32 - 1 inodes"))?;
        self.inodes.push(inode);
        Ok(InodeId(id))
    }

    fn implicit_dir(&self) -> Meta {
        self.implicit_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(perm: u16) -> Meta {
        Meta::new(perm, 0, 0, Time::from_secs(5))
    }

    fn file(data: &'static [u8]) -> Inode {
        Inode::new(meta(0o644), Content::File(FileData::bytes(data)))
    }

    #[test]
    fn implied_parents_and_replacement() {
        let mut b = TreeBuilder::new(meta(0o755));
        b.insert(b"./a/b/c", file(b"1"), Replace::Always).unwrap();
        b.insert(b"a/b/c", file(b"22"), Replace::Always).unwrap();
        let a = b.lookup(b"a").unwrap();
        assert_eq!(b.inode(a).meta.perm, 0o755);
        b.insert(b"a/", Inode::dir(meta(0o700)), Replace::Always)
            .unwrap();
        assert_eq!(b.lookup(b"a"), Some(a), "dir over dir keeps the inode");
        assert_eq!(b.inode(a).meta.perm, 0o700);
        let c = b.lookup(b"a/b/c").unwrap();
        match &b.inode(c).content {
            Content::File(d) => assert_eq!(d.size(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn file_as_parent_is_an_error() {
        let mut b = TreeBuilder::new(meta(0o755));
        b.insert(b"etc/passwd", file(b"x"), Replace::Always)
            .unwrap();
        let err = b
            .insert(b"etc/passwd/x", file(b"y"), Replace::Always)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/passwd: is a regular file but is used as a parent directory"
        );
    }

    #[test]
    fn hard_links_share_and_dangling_ones_fail() {
        let mut b = TreeBuilder::new(meta(0o755));
        let id = b.insert(b"a", file(b"x"), Replace::Always).unwrap();
        assert_eq!(b.hard_link(b"d/b", b"./a").unwrap(), id);
        assert!(
            b.hard_link(b"c", b"nope")
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        assert!(
            b.hard_link(b"c", b"d")
                .unwrap_err()
                .to_string()
                .contains("directory")
        );
    }

    #[test]
    fn remove_subtree() {
        let mut b = TreeBuilder::new(meta(0o755));
        b.insert(b"a/b/c", file(b"x"), Replace::Always).unwrap();
        assert!(b.remove(b"a/b").unwrap());
        assert!(!b.remove(b"a/b").unwrap());
        assert!(b.lookup(b"a/b/c").is_none());
    }
}
