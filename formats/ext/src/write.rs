//! The planner and the writer: inode numbers, directory blocks, sizing,
//! allocation, then the image in increasing offset order.

use std::collections::HashMap;
use std::io;

use rayon::prelude::*;
use rootforge_common::{
    Content, Error, FileData, ImagePlan, Inode, InodeId, Kind, Report, Result, Sink, Time, View,
    display_path, write_zeros,
};
use sha2::{Digest, Sha256};

use crate::disk::{
    self, COMPAT_DIR_INDEX, COMPAT_HAS_JOURNAL, EXTENTS_FL, EXTRA_ISIZE, FIRST_INO,
    INCOMPAT_EXTENTS, INCOMPAT_FILETYPE, INDEX_FL, JOURNAL_INO, LINK_MAX, RO_COMPAT_DIR_NLINK,
    RO_COMPAT_HUGE_FILE, RO_COMPAT_LARGE_FILE, RO_COMPAT_METADATA_CSUM, ROOT_INO, crc32c, pad4,
    put16, put32,
};
use crate::hash::dx_hash;
use crate::layout::{self, Alloc, Geometry, Mapped, NeedBlocks, Run};
use crate::{ExtEncoder, Size, Variant, xattr};

const LOST_FOUND: &[u8] = b"lost+found";

/// A directory entry: name, inode number, file type.
type Dirent<'a> = (&'a [u8], u32, u8);

/// What an inode number stands for.
#[derive(Debug, Clone, Copy)]
enum Src<'a> {
    Tree(&'a Inode),
    LostFound,
    Journal,
}

#[derive(Debug)]
struct Node<'a> {
    ino: u32,
    src: Src<'a>,
    path: Box<[u8]>,
    links: u32,
    /// The parent directory's inode number (directories only).
    parent: u32,
    /// Directory entries, in name order.
    children: Vec<Dirent<'a>>,
}

/// An inode's contents before blocks are placed.
#[derive(Debug, Default)]
struct Prepared {
    /// Rendered blocks (directories, slow symlinks).
    blocks: Vec<u8>,
    /// Non-zero runs of a regular file: (first logical block, count).
    data: Vec<(u64, u64)>,
    htree: bool,
    xattr_area: Vec<u8>,
    xattr_block: Vec<xattr::Entry>,
}

/// Where an inode's blocks went.
#[derive(Debug, Default)]
struct Placed {
    runs: Vec<Run>,
    mapped: Mapped,
    xattr_block: Option<u64>,
}

/// Everything fixed by the options and the tree, before sizing.
struct Plan<'a> {
    enc: &'a ExtEncoder,
    bs: u64,
    nodes: Vec<Node<'a>>,
    prepared: Vec<Prepared>,
    /// Inode numbers in use: 1 up to this.
    max_ino: u32,
    uuid: [u8; 16],
    hash_seed: [u32; 4],
    csum_seed: Option<u32>,
    fs_time: u32,
    large_file: bool,
}

fn io_err(e: io::Error) -> Error {
    Error::io("writing the ext image", e)
}

fn file_type(kind: Kind) -> u8 {
    match kind {
        Kind::File => disk::FT_REG,
        Kind::Dir => disk::FT_DIR,
        Kind::CharDev => disk::FT_CHR,
        Kind::BlockDev => disk::FT_BLK,
        Kind::Fifo => disk::FT_FIFO,
        Kind::Socket => disk::FT_SOCK,
        Kind::Symlink => disk::FT_SYMLINK,
    }
}

/// An ext image planned and sized: what [`ImagePlan::write`] emits.
pub(crate) struct Planned<'a> {
    plan: Plan<'a>,
    geo: Geometry,
    placed: Vec<Placed>,
}

/// Plans and sizes the image of `view`: a fixed size too small for the
/// tree fails here, before any output exists.
pub(crate) fn plan<'a>(enc: &'a ExtEncoder, view: &View<'a>) -> Result<Planned<'a>> {
    let plan = Plan::new(enc, view)?;
    let (geo, placed) = plan.size()?;
    Ok(Planned { plan, geo, placed })
}

impl ImagePlan for Planned<'_> {
    fn size(&self) -> Option<u64> {
        self.geo.blocks.checked_mul(self.plan.bs)
    }

    fn write(self: Box<Self>, out: &mut dyn Sink) -> Result<Report> {
        self.plan.emit(&self.geo, &self.placed, out)
    }
}

/// The journal size mke2fs picks for a filesystem of `blocks` blocks.
fn journal_blocks(blocks: u64) -> u64 {
    const TIERS: [(u64, u64); 7] = [
        (32768, 1024),
        (262_144, 4096),
        (524_288, 8192),
        (4_194_304, 16384),
        (8_388_608, 32768),
        (16_777_216, 65536),
        (33_554_432, 131_072),
    ];
    TIERS
        .iter()
        .find(|(below, _)| blocks < *below)
        .map_or(262_144, |t| t.1)
}

fn mix_time(h: &mut Sha256, t: Time) {
    h.update(t.sec.to_le_bytes());
    h.update(t.nsec.to_le_bytes());
}

impl<'a> Plan<'a> {
    fn new(enc: &'a ExtEncoder, view: &View<'a>) -> Result<Plan<'a>> {
        let bs = u64::from(enc.block_size);
        let entries = view.sorted_entries();
        let f = &enc.features;
        let journal = f.has_compat(COMPAT_HAS_JOURNAL);
        let root = view.inode(view.root());
        let add_lost_found = root.children().is_none_or(|c| !c.contains_key(LOST_FOUND));

        // Inode numbers: the root is 2, lost+found 11, the rest from 12 in
        // path order (hard links take the number of their first name).
        let mut ino_of: HashMap<InodeId, u32> = HashMap::with_capacity(entries.len());
        ino_of.insert(view.root(), ROOT_INO);
        let mut next = if add_lost_found {
            FIRST_INO + 1
        } else {
            FIRST_INO
        };
        let mut order = Vec::new();
        for e in &entries {
            if let std::collections::hash_map::Entry::Vacant(v) = ino_of.entry(e.ino) {
                v.insert(next);
                next = next.checked_add(1).ok_or_else(|| {
                    Error::tree("/", "more inodes than ext can number (2^32 - 1)")
                })?;
                order.push(e);
            }
        }
        let max_ino = next - 1;
        let mut slots: Vec<Option<Node<'a>>> = (0..max_ino).map(|_| None).collect();
        let mut parents: HashMap<u32, u32> = HashMap::new();
        let mut links: HashMap<u32, u32> = HashMap::new();
        let ftype = |k: Kind| {
            if f.has_incompat(INCOMPAT_FILETYPE) {
                file_type(k)
            } else {
                0
            }
        };
        for e in &entries {
            let ino = ino_of[&e.ino];
            links.insert(ino, e.nlink);
            let inode = view.inode(e.ino);
            let mut children: Vec<Dirent<'a>> = Vec::new();
            for (name, id) in view.children(e.ino) {
                let kind = view.inode(id).kind();
                if kind == Kind::Dir {
                    parents.insert(ino_of[&id], ino);
                }
                children.push((name, ino_of[&id], ftype(kind)));
            }
            if ino == ROOT_INO && add_lost_found {
                let at = children.partition_point(|c| c.0 < LOST_FOUND);
                children.insert(at, (LOST_FOUND, FIRST_INO, ftype(Kind::Dir)));
            }
            if slots[ino as usize - 1].is_none() {
                slots[ino as usize - 1] = Some(Node {
                    ino,
                    src: Src::Tree(inode),
                    path: e.path.clone(),
                    links: 0,
                    parent: 0,
                    children,
                });
            }
        }
        for n in slots.iter_mut().flatten() {
            n.links = links.get(&n.ino).copied().unwrap_or(1);
            n.parent = parents.get(&n.ino).copied().unwrap_or(ROOT_INO);
            if n.ino == ROOT_INO && add_lost_found {
                n.links += 1;
            }
        }
        if add_lost_found {
            slots[FIRST_INO as usize - 1] = Some(Node {
                ino: FIRST_INO,
                src: Src::LostFound,
                path: LOST_FOUND.into(),
                links: 2,
                parent: ROOT_INO,
                children: Vec::new(),
            });
        }
        if journal {
            slots[JOURNAL_INO as usize - 1] = Some(Node {
                ino: JOURNAL_INO,
                src: Src::Journal,
                path: b"<journal>"[..].into(),
                links: 1,
                parent: 0,
                children: Vec::new(),
            });
        }
        let nodes: Vec<Node<'a>> = slots.into_iter().flatten().collect();

        // File data is read once here: for holes, and for a checksum that
        // makes the UUID depend on the contents too.
        let scans: Vec<(Vec<(u64, u64)>, u32)> = nodes
            .par_iter()
            .map(|n| match n.src {
                Src::Tree(Inode {
                    content: Content::File(d),
                    ..
                }) => nonzero_runs(d, bs)
                    .map_err(|e| Error::io(format!("reading {}", display_path(&n.path)), e)),
                _ => Ok((Vec::new(), 0)),
            })
            .collect::<Result<_>>()?;

        let mut large_file = false;
        let uuid = match enc.uuid {
            Some(u) => u,
            None => {
                // From the options and every entry's metadata: the same
                // tree gives the same UUID, another tree almost surely not.
                let mut h = Sha256::new();
                h.update(enc.variant.name());
                h.update(bs.to_le_bytes());
                h.update(enc.label.as_bytes());
                for e in &entries {
                    let i = view.inode(e.ino);
                    h.update((e.path.len() as u64).to_le_bytes());
                    h.update(&e.path);
                    h.update(i.mode().to_le_bytes());
                    h.update(i.meta.uid.to_le_bytes());
                    h.update(i.meta.gid.to_le_bytes());
                    mix_time(&mut h, i.meta.mtime);
                    match &i.content {
                        Content::File(d) => h.update(d.size().to_le_bytes()),
                        Content::Symlink(t) => h.update(t),
                        _ => {}
                    }
                    if let Some((a, b)) = i.rdev() {
                        h.update(a.to_le_bytes());
                        h.update(b.to_le_bytes());
                    }
                    for x in &i.xattrs {
                        h.update(&x.name);
                        h.update(&x.value);
                    }
                }
                for (_, crc) in &scans {
                    h.update(crc.to_le_bytes());
                }
                let d = h.finalize();
                let mut u = [0u8; 16];
                u.copy_from_slice(&d[..16]);
                // An RFC 4122 version 4 layout, as mke2fs's UUIDs have.
                u[6] = (u[6] & 0x0f) | 0x40;
                u[8] = (u[8] & 0x3f) | 0x80;
                u
            }
        };
        // The filesystem's own times (creation, last write and check)
        // are the root directory's mtime.
        let fs_time = root.meta.mtime.sec;
        for e in &entries {
            let i = view.inode(e.ino);
            if let Content::File(d) = &i.content {
                large_file |= d.size() >= 1 << 31;
            }
        }
        let seed_digest = Sha256::new()
            .chain_update(uuid)
            .chain_update(b"htree hash seed")
            .finalize();
        let mut hash_seed = [0u32; 4];
        for (i, w) in hash_seed.iter_mut().enumerate() {
            *w = u32::from_le_bytes([
                seed_digest[4 * i],
                seed_digest[4 * i + 1],
                seed_digest[4 * i + 2],
                seed_digest[4 * i + 3],
            ]);
        }
        let csum_seed = f
            .has_ro_compat(RO_COMPAT_METADATA_CSUM)
            .then(|| crc32c(!0, &uuid));
        let mut plan = Plan {
            enc,
            bs,
            nodes,
            prepared: Vec::new(),
            max_ino,
            uuid,
            hash_seed,
            csum_seed,
            fs_time: fs_time.clamp(0, i64::from(u32::MAX)) as u32,
            large_file,
        };
        plan.prepared = plan
            .nodes
            .par_iter()
            .zip(scans.into_par_iter())
            .map(|(n, (runs, _))| plan.prepare(n, runs))
            .collect::<Result<_>>()?;
        Ok(plan)
    }

    fn inode_seed(&self, ino: u32) -> Option<u32> {
        self.csum_seed
            .map(|s| crc32c(crc32c(s, &ino.to_le_bytes()), &0u32.to_le_bytes()))
    }

    fn prepare(&self, n: &Node<'a>, data: Vec<(u64, u64)>) -> Result<Prepared> {
        let bs = self.bs as usize;
        let mut p = Prepared::default();
        match n.src {
            // Sized with the filesystem, in `place`.
            Src::Journal => {}
            Src::LostFound => {
                let mut d = self.dir_blocks(n, &[], false);
                // mke2fs gives lost+found 16 KiB so e2fsck has room to
                // reconnect files without allocating.
                let extra = (16384 / bs).saturating_sub(1);
                for _ in 0..extra {
                    d.extend_from_slice(&self.empty_dir_block(n.ino));
                }
                p.blocks = d;
            }
            Src::Tree(inode) => {
                if !inode.xattrs.is_empty() {
                    let room = layout::xattr_room(self.enc.inode_size());
                    let (area, block) = layout::xattrs_of(self.enc, inode, &n.path, room)?;
                    p.xattr_area = area;
                    p.xattr_block = block;
                }
                match &inode.content {
                    Content::Dir(_) => {
                        let htree = self.enc.variant != Variant::Ext2
                            && self.enc.features.has_compat(COMPAT_DIR_INDEX);
                        let linear = self.dir_blocks(n, &n.children, false);
                        if htree && linear.len() > bs {
                            p.blocks = self.htree_blocks(n)?;
                            p.htree = true;
                        } else {
                            p.blocks = linear;
                        }
                    }
                    Content::Symlink(t) if t.len() >= 60 => {
                        let mut b = t.to_vec();
                        b.resize(bs, 0);
                        p.blocks = b;
                    }
                    Content::File(_) => p.data = data,
                    _ => {}
                }
            }
        }
        Ok(p)
    }

    fn csum_tail(&self) -> usize {
        if self.csum_seed.is_some() { 12 } else { 0 }
    }

    fn finish_dir_block(&self, block: &mut [u8], last: usize, ino: u32) {
        let usable = block.len() - self.csum_tail();
        put16(block, last + 4, (usable - last) as u16);
        if let Some(seed) = self.inode_seed(ino) {
            put32(block, usable, 0);
            put16(block, usable + 4, 12);
            block[usable + 6] = 0;
            block[usable + 7] = 0xDE;
            let crc = crc32c(seed, &block[..usable]);
            put32(block, usable + 8, crc);
        }
    }

    fn empty_dir_block(&self, ino: u32) -> Vec<u8> {
        let mut b = vec![0u8; self.bs as usize];
        self.finish_dir_block(&mut b, 0, ino);
        b
    }

    /// Linear directory blocks: ".", ".." (unless `leaves_only`) and the
    /// entries, packed in order.
    fn dir_blocks(&self, n: &Node<'_>, entries: &[Dirent<'_>], leaves_only: bool) -> Vec<u8> {
        let bs = self.bs as usize;
        let usable = bs - self.csum_tail();
        let ft_dir = if self.enc.features.has_incompat(INCOMPAT_FILETYPE) {
            disk::FT_DIR
        } else {
            0
        };
        let dots: [(&[u8], u32, u8); 2] = [(b".", n.ino, ft_dir), (b"..", n.parent, ft_dir)];
        let head: &[(&[u8], u32, u8)] = if leaves_only { &[] } else { &dots };
        let mut out = vec![0u8; bs];
        let mut base = 0;
        let mut off = 0;
        let mut last = 0;
        for &(name, ino, ft) in head.iter().chain(entries) {
            let rec = pad4(8 + name.len());
            if off + rec > usable {
                self.finish_dir_block(&mut out[base..base + bs], last, n.ino);
                base += bs;
                out.resize(base + bs, 0);
                off = 0;
            }
            let b = &mut out[base..base + bs];
            put32(b, off, ino);
            put16(b, off + 4, rec as u16);
            b[off + 6] = name.len() as u8;
            b[off + 7] = ft;
            b[off + 8..off + 8 + name.len()].copy_from_slice(name);
            last = off;
            off += rec;
        }
        self.finish_dir_block(&mut out[base..base + bs], last, n.ino);
        out
    }

    /// An htree directory: the dx root, interior nodes if needed, then the
    /// leaves with entries sorted by hash.
    fn htree_blocks(&self, n: &Node<'_>) -> Result<Vec<u8>> {
        let bs = self.bs as usize;
        let mut hashed: Vec<(u32, u32, &[u8], u32, u8)> = n
            .children
            .iter()
            .map(|&(name, ino, ft)| {
                let (h, minor) = dx_hash(name, &self.hash_seed);
                (h, minor, name, ino, ft)
            })
            .collect();
        hashed.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        // Pack leaves, remembering each leaf's first and last hash.
        let usable = bs - self.csum_tail();
        let mut leaves: Vec<(u32, u32, Vec<Dirent<'_>>)> = Vec::new();
        let mut off = usable;
        for &(h, _, name, ino, ft) in &hashed {
            let rec = pad4(8 + name.len());
            if off + rec > usable {
                leaves.push((h, h, Vec::new()));
                off = 0;
            }
            if let Some(leaf) = leaves.last_mut() {
                leaf.1 = h;
                leaf.2.push((name, ino, ft));
            }
            off += rec;
        }
        // Index entries for the leaves: hash (with the collision bit when a
        // hash continues from the previous leaf) and logical block.
        let tail = if self.csum_seed.is_some() { 8 } else { 0 };
        let root_limit = (bs - 32 - tail) / 8;
        let node_limit = (bs - 8 - tail) / 8;
        let levels = if leaves.len() <= root_limit { 0 } else { 1 };
        let nodes = if levels == 0 {
            0
        } else {
            leaves.len().div_ceil(node_limit)
        };
        if nodes > root_limit {
            return Err(Error::Limit {
                path: display_path(&n.path),
                format: self.enc.variant.name(),
                what: "directory index leaf blocks",
                value: leaves.len() as u64,
                limit: (root_limit * node_limit) as u64,
            });
        }
        let first_leaf = 1 + nodes;
        let leaf_index: Vec<(u32, u32)> = leaves
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let collision = i > 0 && leaves[i - 1].1 == l.0;
                (l.0 | u32::from(collision), (first_leaf + i) as u32)
            })
            .collect();
        let total = first_leaf + leaves.len();
        let mut out = vec![0u8; total * bs];
        let ft_dir = if self.enc.features.has_incompat(INCOMPAT_FILETYPE) {
            disk::FT_DIR
        } else {
            0
        };
        // The root: "." and ".." (spanning the block), then the dx info.
        {
            let b = &mut out[..bs];
            put32(b, 0, n.ino);
            put16(b, 4, 12);
            b[6] = 1;
            b[7] = ft_dir;
            b[8] = b'.';
            put32(b, 12, n.parent);
            put16(b, 16, (bs - 12) as u16);
            b[18] = 2;
            b[19] = ft_dir;
            b[20] = b'.';
            b[21] = b'.';
            b[28] = 1; // half_md4
            b[29] = 8;
            b[30] = levels as u8;
        }
        let root_entries: Vec<(u32, u32)> = if levels == 0 {
            leaf_index.clone()
        } else {
            leaf_index
                .chunks(node_limit)
                .enumerate()
                .map(|(i, c)| (c[0].0, (1 + i) as u32))
                .collect()
        };
        self.dx_entries(&mut out[..bs], 32, root_limit, &root_entries, n.ino);
        if levels == 1 {
            for (i, chunk) in leaf_index.chunks(node_limit).enumerate() {
                let b = &mut out[(1 + i) * bs..(2 + i) * bs];
                put16(b, 4, bs as u16);
                self.dx_entries(b, 8, node_limit, chunk, n.ino);
            }
        }
        for (i, (_, _, entries)) in leaves.iter().enumerate() {
            let rendered = self.dir_blocks(n, entries, true);
            let at = (first_leaf + i) * bs;
            out[at..at + bs].copy_from_slice(&rendered[..bs]);
        }
        Ok(out)
    }

    /// A dx count/limit header at `at` followed by `(hash, block)` entries;
    /// the first entry's hash slot holds the count and limit.
    fn dx_entries(&self, b: &mut [u8], at: usize, limit: usize, entries: &[(u32, u32)], ino: u32) {
        put16(b, at, limit as u16);
        put16(b, at + 2, entries.len() as u16);
        for (i, &(h, blk)) in entries.iter().enumerate() {
            if i > 0 {
                put32(b, at + 8 * i, h);
            }
            put32(b, at + 8 * i + 4, blk);
        }
        if let Some(seed) = self.inode_seed(ino) {
            let used = at + 8 * entries.len();
            let crc = crc32c(crc32c(seed, &b[..used]), &[0u8; 8]);
            let tail = at + 8 * limit;
            put32(b, tail, 0);
            put32(b, tail + 4, crc);
        }
    }

    fn needed_inodes(&self) -> u64 {
        u64::from(self.max_ino)
    }

    /// Picks the block count and places every inode's blocks.
    fn size(&self) -> Result<(Geometry, Vec<Placed>)> {
        let want_inodes = |blocks: u64| -> u64 {
            match (self.enc.inodes, self.enc.size) {
                (Some(n), _) => u64::from(n),
                // Room for new files in proportion to the free space asked
                // for, at mke2fs's one inode per 16 KiB.
                (None, Size::Auto { headroom }) => self.needed_inodes() + headroom / 16384,
                (None, Size::Fixed(_)) => self
                    .needed_inodes()
                    .max(blocks.saturating_mul(self.bs) / 16384),
            }
        };
        if let Some(n) = self.enc.inodes
            && u64::from(n) < self.needed_inodes()
        {
            return Err(self.too_small(format!("{n} inodes")));
        }
        match self.enc.size {
            Size::Auto { headroom } => self.auto_size(headroom.div_ceil(self.bs), &want_inodes),
            Size::Fixed(bytes) => {
                let blocks = bytes / self.bs;
                if blocks > u64::from(u32::MAX) {
                    return Err(self.limit_blocks(blocks));
                }
                let err = || self.too_small(format!("{bytes} bytes"));
                let geo = Geometry::new(self.enc, blocks, want_inodes(blocks), true)
                    .map_err(|_| err())?;
                if geo.inodes() > u64::from(u32::MAX) {
                    return Err(self.limit_blocks(blocks));
                }
                let (placed, alloc) = self.place(&geo);
                if alloc.short > 0 {
                    return Err(err());
                }
                Ok((geo, placed))
            }
        }
    }

    fn limit_blocks(&self, blocks: u64) -> Error {
        Error::Limit {
            path: "/".into(),
            format: self.enc.variant.name(),
            what: "block count (without 64bit)",
            value: blocks,
            limit: u64::from(u32::MAX),
        }
    }

    fn auto_size(
        &self,
        headroom: u64,
        want_inodes: &dyn Fn(u64) -> u64,
    ) -> Result<(Geometry, Vec<Placed>)> {
        let data: u64 = self
            .prepared
            .iter()
            .map(|p| {
                (p.blocks.len() as u64 / self.bs)
                    + p.data.iter().map(|r| r.1).sum::<u64>()
                    + u64::from(!p.xattr_block.is_empty())
            })
            .sum();
        let inode_blocks = (want_inodes(0) * u64::from(self.enc.inode_size())).div_ceil(self.bs);
        let mut blocks = data + inode_blocks + headroom + 16;
        if self.enc.features.has_compat(COMPAT_HAS_JOURNAL) {
            blocks += journal_blocks(blocks);
        }
        loop {
            if blocks > u64::from(u32::MAX) {
                return Err(self.limit_blocks(blocks));
            }
            let geo = match Geometry::new(self.enc, blocks, want_inodes(blocks), false) {
                Ok(g) => g,
                Err(NeedBlocks(n)) => {
                    blocks = n.max(blocks + 1);
                    continue;
                }
            };
            let (placed, alloc) = self.place(&geo);
            let free = alloc.free();
            if alloc.short == 0 && free >= headroom {
                return Ok((geo, placed));
            }
            blocks += alloc.short + headroom.saturating_sub(free);
        }
    }

    fn too_small(&self, given: String) -> Error {
        let need = self
            .auto_size(0, &|_| self.needed_inodes())
            .map(|(g, _)| g.blocks * self.bs);
        let what = match need {
            Ok(bytes) => format!(
                "the tree in {given}: it needs {bytes} bytes and {} inodes",
                self.needed_inodes()
            ),
            Err(e) => format!("the tree in {given}: {e}"),
        };
        Error::Unsupported {
            path: "/".into(),
            format: self.enc.variant.name(),
            what,
        }
    }

    /// Allocates every inode's blocks in inode order.
    fn place(&self, geo: &Geometry) -> (Vec<Placed>, Alloc) {
        let mut alloc = Alloc::new(geo);
        let bs = self.bs as usize;
        let extents = self.enc.features.has_incompat(INCOMPAT_EXTENTS);
        let mut placed = Vec::with_capacity(self.nodes.len());
        for (n, p) in self.nodes.iter().zip(&self.prepared) {
            let mut runs = Vec::new();
            let mut pieces = Vec::new();
            let mut add = |lblk: u64, count: u64, alloc: &mut Alloc| {
                pieces.clear();
                alloc.take(count, &mut pieces);
                let mut l = lblk;
                for &(pblk, len) in &pieces {
                    runs.push(Run { lblk: l, pblk, len });
                    l += len;
                }
            };
            let dir_blocks = p.blocks.len() as u64 / self.bs;
            if dir_blocks > 0 {
                add(0, dir_blocks, &mut alloc);
            }
            for &(l, c) in &p.data {
                add(l, c, &mut alloc);
            }
            if matches!(n.src, Src::Journal) {
                add(0, journal_blocks(geo.blocks), &mut alloc);
            }
            // Devices, FIFOs, sockets and fast symlinks use `i_block` for
            // themselves: no extent header, no block pointers.
            let unmapped = runs.is_empty()
                && matches!(n.src, Src::Tree(i) if !matches!(i.content, Content::File(_) | Content::Dir(_)));
            let mapped = if unmapped {
                Mapped::default()
            } else if extents {
                layout::extent_tree(&runs, bs, &mut alloc, self.inode_seed(n.ino))
            } else {
                layout::block_map(&runs, bs, &mut alloc)
            };
            let xattr_block = (!p.xattr_block.is_empty()).then(|| alloc.one());
            placed.push(Placed {
                runs,
                mapped,
                xattr_block,
            });
        }
        (placed, alloc)
    }

    fn emit(&self, geo: &Geometry, placed: &[Placed], out: &mut dyn Sink) -> Result<Report> {
        let bs = self.bs as usize;
        let isz = usize::from(self.enc.inode_size());
        let ipg = u64::from(geo.ipg);
        let groups = geo.groups as usize;

        // Inodes, rendered in parallel, then gathered per group.
        let journal_len = journal_blocks(geo.blocks);
        let rendered: Vec<(u32, Vec<u8>)> = self
            .nodes
            .par_iter()
            .zip(placed.par_iter())
            .zip(self.prepared.par_iter())
            .map(|((n, pl), pr)| (n.ino, self.render_inode(n, pl, pr, journal_len)))
            .collect();
        let mut tables: Vec<Vec<u8>> = vec![Vec::new(); groups];
        let mut used_dirs = vec![0u32; groups];
        let mut top_ino = vec![0u64; groups];
        for ((ino, buf), n) in rendered.iter().zip(&self.nodes) {
            let idx = u64::from(*ino - 1);
            let g = (idx / ipg) as usize;
            let local = (idx % ipg) as usize;
            let t = &mut tables[g];
            if t.len() < (local + 1) * isz {
                t.resize((local + 1) * isz, 0);
            }
            t[local * isz..(local + 1) * isz].copy_from_slice(buf);
            top_ino[g] = top_ino[g].max(local as u64 + 1);
            let is_dir = match n.src {
                Src::Tree(i) => i.kind() == Kind::Dir,
                Src::LostFound => true,
                Src::Journal => false,
            };
            if is_dir {
                used_dirs[g] += 1;
            }
        }
        // Reserved inodes below the first free one count as used.
        top_ino[0] = top_ino[0].max(u64::from(FIRST_INO - 1));

        // Block usage, then each group's slice of it.
        let mut bitmap = vec![0u8; (geo.blocks as usize).div_ceil(8)];
        mark(&mut bitmap, 0, geo.first_data_block);
        for (s, l) in geo.used_ranges() {
            mark(&mut bitmap, s, l);
        }
        for pl in placed {
            for r in &pl.runs {
                mark(&mut bitmap, r.pblk, r.len);
            }
            for (b, _) in &pl.mapped.meta {
                mark(&mut bitmap, *b, 1);
            }
            if let Some(b) = pl.xattr_block {
                mark(&mut bitmap, b, 1);
            }
        }
        let mut free_blocks = vec![0u32; groups];
        let mut block_bitmaps = vec![vec![0u8; bs]; groups];
        for g in 0..geo.groups {
            let len = geo.group_len(g);
            let bm = &mut block_bitmaps[g as usize];
            copy_bits(&bitmap, geo.start(g), len, bm);
            let used: u32 = bm.iter().map(|b| b.count_ones()).sum();
            // Bits past the end of the filesystem are set.
            mark(bm, len, geo.bpg - len);
            free_blocks[g as usize] = len as u32 - used;
        }
        let mut inode_bitmaps = vec![vec![0u8; bs]; groups];
        let mut free_inodes = vec![0u32; groups];
        for g in 0..groups {
            let bm = &mut inode_bitmaps[g];
            mark(bm, 0, top_ino[g]);
            mark(bm, ipg, (bs * 8) as u64 - ipg);
            free_inodes[g] = (ipg - top_ino[g]) as u32;
        }

        // Group descriptors.
        let csum = self.csum_seed;
        let mut gdt = vec![0u8; geo.gdt_blocks as usize * bs];
        for g in 0..groups {
            let d = &mut gdt[g * disk::DESC_SIZE..(g + 1) * disk::DESC_SIZE];
            let [bb, ib, it] = geo.meta[g];
            put32(d, 0, bb as u32);
            put32(d, 4, ib as u32);
            put32(d, 8, it as u32);
            put16(d, 0xC, free_blocks[g] as u16);
            put16(d, 0xE, free_inodes[g] as u16);
            put16(d, 0x10, used_dirs[g] as u16);
            if let Some(seed) = csum {
                put16(d, 0x12, 4); // inode table zeroed
                let bcrc = crc32c(seed, &block_bitmaps[g][..(geo.bpg / 8) as usize]);
                let icrc = crc32c(seed, &inode_bitmaps[g][..(ipg / 8) as usize]);
                put16(d, 0x18, bcrc as u16);
                put16(d, 0x1A, icrc as u16);
                put16(d, 0x1C, (ipg - top_ino[g]) as u16);
                let crc = crc32c(crc32c(seed, &(g as u32).to_le_bytes()), d);
                put16(d, 0x1E, crc as u16);
            }
        }
        let total_free_blocks: u64 = free_blocks.iter().map(|&f| u64::from(f)).sum();
        let total_free_inodes: u64 = free_inodes.iter().map(|&f| u64::from(f)).sum();
        let journal_iblock = self
            .nodes
            .iter()
            .zip(placed)
            .find(|(n, _)| n.ino == JOURNAL_INO)
            .map(|(_, p)| p.mapped.i_block);
        let sb_args = SbArgs {
            geo,
            free_blocks: total_free_blocks,
            free_inodes: total_free_inodes,
            journal: journal_iblock.map(|ib| (ib, journal_len * self.bs)),
        };

        // Regions in block order.
        let mut regions: Vec<(u64, Fill<'_>)> = Vec::new();
        for g in 0..geo.groups {
            if geo.has_backup(g) {
                let mut b = vec![0u8; bs];
                let at = if g == 0 && bs > 1024 { 1024 } else { 0 };
                b[at..at + 1024].copy_from_slice(&self.superblock(&sb_args, g));
                b.extend_from_slice(&gdt);
                regions.push((geo.start(g), Fill::Own(b)));
            }
            let [bb, ib, it] = geo.meta[g as usize];
            regions.push((bb, Fill::Mem(&block_bitmaps[g as usize])));
            regions.push((ib, Fill::Mem(&inode_bitmaps[g as usize])));
            if !tables[g as usize].is_empty() {
                regions.push((it, Fill::Mem(&tables[g as usize])));
            }
        }
        for ((n, pl), pr) in self.nodes.iter().zip(placed).zip(&self.prepared) {
            for r in &pl.runs {
                let fill = match n.src {
                    Src::Journal if r.lblk == 0 => {
                        regions.push((r.pblk, Fill::Own(self.journal_super(journal_len))));
                        if r.len > 1 {
                            regions.push((r.pblk + 1, Fill::Skip(r.len - 1)));
                        }
                        continue;
                    }
                    Src::Journal => Fill::Skip(r.len),
                    Src::Tree(Inode {
                        content: Content::File(d),
                        ..
                    }) => Fill::Data(d, r.lblk * self.bs, r.len * self.bs),
                    _ => {
                        let s = (r.lblk * self.bs) as usize;
                        Fill::Mem(&pr.blocks[s..s + (r.len * self.bs) as usize])
                    }
                };
                regions.push((r.pblk, fill));
            }
            for (b, data) in &pl.mapped.meta {
                regions.push((*b, Fill::Mem(data)));
            }
            if let Some(b) = pl.xattr_block {
                regions.push((
                    b,
                    Fill::Own(xattr::render_block(&pr.xattr_block, bs, b, self.csum_seed)),
                ));
            }
        }
        regions.sort_by_key(|r| r.0);

        let total = match self.enc.size {
            Size::Fixed(bytes) => bytes,
            Size::Auto { .. } => geo.blocks * self.bs,
        };
        let mut w = Writer::new(out);
        for (blk, fill) in &regions {
            let at = blk * self.bs;
            w.skip_to(at).map_err(io_err)?;
            match fill {
                Fill::Mem(b) => w.put(b),
                Fill::Own(b) => w.put(b),
                Fill::Skip(n) => w.skip(n * self.bs),
                Fill::Data(d, off, len) => w.data(d, *off, *len),
            }
            .map_err(io_err)?;
        }
        w.skip_to(total).map_err(io_err)?;
        w.flush().map_err(io_err)?;
        Ok(Report {
            bytes: total,
            warnings: Vec::new(),
        })
    }

    fn render_inode(&self, n: &Node<'_>, pl: &Placed, pr: &Prepared, journal_len: u64) -> Vec<u8> {
        let isz = usize::from(self.enc.inode_size());
        let f = &self.enc.features;
        let mut b = vec![0u8; isz];
        let (mode, uid, gid, mtime, size) = match n.src {
            Src::Journal => (
                0o100600,
                0,
                0,
                Time::from_secs(i64::from(self.fs_time)),
                journal_len * self.bs,
            ),
            Src::LostFound => (
                0o40700,
                0,
                0,
                Time::from_secs(i64::from(self.fs_time)),
                pr.blocks.len() as u64,
            ),
            Src::Tree(i) => {
                let size = match &i.content {
                    Content::File(d) => d.size(),
                    Content::Symlink(t) => t.len() as u64,
                    Content::Dir(_) => pr.blocks.len() as u64,
                    _ => 0,
                };
                (i.mode(), i.meta.uid, i.meta.gid, i.meta.mtime, size)
            }
        };
        let extra = isz > 128;
        let (t, t_extra) = encode_time(mtime, extra);
        put16(&mut b, 0, mode as u16);
        put16(&mut b, 2, uid as u16);
        put32(&mut b, 4, size as u32);
        put32(&mut b, 8, t);
        put32(&mut b, 0xC, t);
        put32(&mut b, 0x10, t);
        put16(&mut b, 0x18, gid as u16);
        let is_dir = mode & 0o170000 == 0o040000;
        let links = if is_dir && n.links > LINK_MAX && f.has_ro_compat(RO_COMPAT_DIR_NLINK) {
            1
        } else {
            n.links.min(LINK_MAX)
        };
        put16(&mut b, 0x1A, links as u16);
        let blocks: u64 = pl.runs.iter().map(|r| r.len).sum::<u64>()
            + pl.mapped.meta.len() as u64
            + u64::from(pl.xattr_block.is_some());
        let sectors = blocks * (self.bs / 512);
        put32(&mut b, 0x1C, sectors as u32);
        if f.has_ro_compat(RO_COMPAT_HUGE_FILE) {
            put16(&mut b, 0x74, (sectors >> 32) as u16);
        }
        let mut flags = 0;
        let has_map = match n.src {
            Src::Journal | Src::LostFound => true,
            Src::Tree(i) => match &i.content {
                Content::File(_) | Content::Dir(_) => true,
                Content::Symlink(t) => t.len() >= 60,
                _ => false,
            },
        };
        if has_map {
            if f.has_incompat(INCOMPAT_EXTENTS) {
                flags |= EXTENTS_FL;
            }
            b[0x28..0x28 + 60].copy_from_slice(&pl.mapped.i_block);
        } else if let Src::Tree(i) = n.src {
            match &i.content {
                Content::Symlink(t) => b[0x28..0x28 + t.len()].copy_from_slice(t),
                Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
                    if *major < 256 && *minor < 256 {
                        put32(&mut b, 0x28, (major << 8) | minor);
                    } else {
                        let dev = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
                        put32(&mut b, 0x2C, dev);
                    }
                }
                _ => {}
            }
        }
        if pr.htree {
            flags |= INDEX_FL;
        }
        put32(&mut b, 0x20, flags);
        if let Some(x) = pl.xattr_block {
            put32(&mut b, 0x68, x as u32);
        }
        put32(&mut b, 0x6C, (size >> 32) as u32);
        put16(&mut b, 0x78, (uid >> 16) as u16);
        put16(&mut b, 0x7A, (gid >> 16) as u16);
        if extra {
            put16(&mut b, 0x80, EXTRA_ISIZE);
            put32(&mut b, 0x84, t_extra);
            put32(&mut b, 0x88, t_extra);
            put32(&mut b, 0x8C, t_extra);
            put32(&mut b, 0x90, t);
            put32(&mut b, 0x94, t_extra);
            let at = 128 + usize::from(EXTRA_ISIZE);
            b[at..at + pr.xattr_area.len()].copy_from_slice(&pr.xattr_area);
        }
        if let Some(seed) = self.inode_seed(n.ino) {
            let crc = crc32c(seed, &b);
            put16(&mut b, 0x7C, crc as u16);
            if extra {
                put16(&mut b, 0x82, (crc >> 16) as u16);
            }
        }
        b
    }

    fn superblock(&self, a: &SbArgs<'_>, group: u64) -> [u8; 1024] {
        let geo = a.geo;
        let f = &self.enc.features;
        let mut s = [0u8; 1024];
        let reserved = geo.blocks * u64::from(self.enc.reserved_percent) / 100;
        put32(&mut s, 0, geo.inodes() as u32);
        put32(&mut s, 4, geo.blocks as u32);
        put32(&mut s, 8, reserved as u32);
        put32(&mut s, 0xC, a.free_blocks as u32);
        put32(&mut s, 0x10, a.free_inodes as u32);
        put32(&mut s, 0x14, geo.first_data_block as u32);
        let log = (self.bs / 1024).trailing_zeros();
        put32(&mut s, 0x18, log);
        put32(&mut s, 0x1C, log);
        put32(&mut s, 0x20, geo.bpg as u32);
        put32(&mut s, 0x24, geo.bpg as u32);
        put32(&mut s, 0x28, geo.ipg);
        put32(&mut s, 0x30, self.fs_time);
        put16(&mut s, 0x36, 0xFFFF);
        put16(&mut s, 0x38, disk::SUPER_MAGIC);
        put16(&mut s, 0x3A, 1); // clean
        put16(&mut s, 0x3C, 1); // continue on errors
        put32(&mut s, 0x40, self.fs_time);
        put32(&mut s, 0x4C, 1); // dynamic revision
        put32(&mut s, 0x54, FIRST_INO);
        put16(&mut s, 0x58, self.enc.inode_size());
        put16(&mut s, 0x5A, group as u16);
        let mut ro = f.ro_compat;
        if self.large_file {
            ro |= RO_COMPAT_LARGE_FILE;
        }
        put32(&mut s, 0x5C, f.compat);
        put32(&mut s, 0x60, f.incompat & !disk::INCOMPAT_64BIT);
        put32(&mut s, 0x64, ro);
        s[0x68..0x78].copy_from_slice(&self.uuid);
        let label = self.enc.label.as_bytes();
        s[0x78..0x78 + label.len()].copy_from_slice(label);
        if let Some((iblock, size)) = a.journal {
            put32(&mut s, 0xE0, JOURNAL_INO);
            s[0xFD] = 1; // s_jnl_blocks holds a copy of i_block
            s[0x10C..0x10C + 60].copy_from_slice(&iblock);
            put32(&mut s, 0x10C + 60, (size >> 32) as u32);
            put32(&mut s, 0x10C + 64, size as u32);
        }
        for (i, w) in self.hash_seed.iter().enumerate() {
            put32(&mut s, 0xEC + 4 * i, *w);
        }
        s[0xFC] = 1; // half_md4
        put32(&mut s, 0x100, 0x0C); // user_xattr, acl
        put32(&mut s, 0x108, self.fs_time);
        if self.enc.inode_size() > 128 {
            put16(&mut s, 0x15C, EXTRA_ISIZE);
            put16(&mut s, 0x15E, EXTRA_ISIZE);
        }
        put32(&mut s, 0x160, 0x1); // directory hashes use signed chars
        if f.has_incompat(disk::INCOMPAT_FLEX_BG) {
            s[0x174] = 4; // 16 groups per flex group
        }
        if f.has_ro_compat(RO_COMPAT_METADATA_CSUM) {
            s[0x175] = 1; // crc32c
            let crc = crc32c(!0, &s[..0x3FC]);
            put32(&mut s, 0x3FC, crc);
        }
        s
    }

    /// A clean, empty jbd2 (version 2) superblock, big-endian.
    fn journal_super(&self, len: u64) -> Vec<u8> {
        let mut j = vec![0u8; self.bs as usize];
        let mut be = |at: usize, v: u32| j[at..at + 4].copy_from_slice(&v.to_be_bytes());
        be(0, 0xC03B_3998);
        be(4, 4);
        be(0xC, self.bs as u32);
        be(0x10, len as u32);
        be(0x14, 1);
        be(0x18, 1);
        be(0x40, 1);
        j[0x30..0x40].copy_from_slice(&self.uuid);
        j
    }
}

struct SbArgs<'a> {
    geo: &'a Geometry,
    free_blocks: u64,
    free_inodes: u64,
    journal: Option<([u8; 60], u64)>,
}

/// What goes at a block.
enum Fill<'a> {
    Mem(&'a [u8]),
    Own(Vec<u8>),
    /// `len` bytes of a file from byte `offset`, zero-padded past its end.
    Data(&'a FileData, u64, u64),
    Skip(u64),
}

/// Sets bits `start..start + len`, whole bytes at a time in the middle.
fn mark(bits: &mut [u8], start: u64, len: u64) {
    let (mut b, end) = (start, start + len);
    while b < end && b % 8 != 0 {
        bits[(b / 8) as usize] |= 1 << (b % 8);
        b += 1;
    }
    let whole = (end - b) / 8;
    bits[(b / 8) as usize..(b / 8 + whole) as usize].fill(0xff);
    b += whole * 8;
    while b < end {
        bits[(b / 8) as usize] |= 1 << (b % 8);
        b += 1;
    }
}

/// Copies bits `start..start + len` of `src` to the start of `dst`.
fn copy_bits(src: &[u8], start: u64, len: u64, dst: &mut [u8]) {
    let shift = (start % 8) as u32;
    let first = (start / 8) as usize;
    let bytes = len.div_ceil(8) as usize;
    for (i, d) in dst[..bytes].iter_mut().enumerate() {
        let lo = src.get(first + i).copied().unwrap_or(0);
        let hi = src.get(first + i + 1).copied().unwrap_or(0);
        *d = if shift == 0 {
            lo
        } else {
            (lo >> shift) | (hi << (8 - shift))
        };
    }
    // Bits past `len` in the last byte belong to the next group.
    if len % 8 != 0 {
        dst[bytes - 1] &= (1u8 << (len % 8)) - 1;
    }
}

/// Seconds and the `_extra` word (nanoseconds and two epoch bits).
fn encode_time(t: Time, extra: bool) -> (u32, u32) {
    if !extra {
        let s = t.sec.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        return (s as i32 as u32, 0);
    }
    let s = t
        .sec
        .clamp(i64::from(i32::MIN), (3i64 << 32) + i64::from(i32::MAX));
    let low = s as i32;
    let epoch = (((s - i64::from(low)) >> 32) & 3) as u32;
    (low as u32, (t.nsec.min(999_999_999) << 2) | epoch)
}

/// The runs of non-zero blocks of a file (zero blocks become holes), and a
/// crc32c of the bytes read.
fn nonzero_runs(d: &FileData, bs: u64) -> io::Result<(Vec<(u64, u64)>, u32)> {
    let mut crc = 0u32;
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut push = |blk: u64| match runs.last_mut() {
        Some(r) if r.0 + r.1 == blk => r.1 += 1,
        _ => runs.push((blk, 1)),
    };
    let mut scan = |start: u64, bytes: &[u8]| {
        crc = crc32c(crc, bytes);
        for (i, chunk) in bytes.chunks(bs as usize).enumerate() {
            if chunk.iter().any(|&b| b != 0) {
                push(start / bs + i as u64);
            }
        }
    };
    match d.source() {
        rootforge_common::Source::Zeros => {}
        rootforge_common::Source::Sparse { extents, .. } => {
            // Only the stored ranges can hold non-zero bytes; read them
            // block-aligned.
            let mut buf = Vec::new();
            let mut next = 0u64;
            for e in extents.iter() {
                let from = (e.logical / bs * bs).max(next);
                let to = (e.logical + e.len).div_ceil(bs) * bs;
                let to = to.min(d.size().div_ceil(bs) * bs);
                let mut at = from;
                while at < to {
                    let n = (to - at).min(1 << 20);
                    let real = n.min(d.size() - at);
                    buf.resize(n as usize, 0);
                    buf.fill(0);
                    d.read_at(at, &mut buf[..real as usize])?;
                    scan(at, &buf);
                    at += n;
                }
                next = next.max(to);
            }
        }
        _ => {
            let mut at = 0u64;
            d.for_each_chunk(&mut |chunk| {
                scan(at, chunk);
                at += chunk.len() as u64;
                Ok(())
            })?;
        }
    }
    Ok((runs, crc))
}

/// Buffers small writes and turns gaps into `skip`s.
struct Writer<'a> {
    out: &'a mut dyn Sink,
    buf: Vec<u8>,
    pos: u64,
}

impl<'a> Writer<'a> {
    const FLUSH: usize = 1 << 20;

    fn new(out: &'a mut dyn Sink) -> Self {
        Writer {
            out,
            buf: Vec::with_capacity(Self::FLUSH * 2),
            pos: 0,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        if b.len() >= Self::FLUSH {
            self.flush()?;
            self.out.write_all(b)?;
        } else {
            self.buf.extend_from_slice(b);
            if self.buf.len() >= Self::FLUSH {
                self.flush()?;
            }
        }
        self.pos += b.len() as u64;
        Ok(())
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        if n < 4096 {
            let z = [0u8; 4096];
            return self.put(&z[..n as usize]);
        }
        self.flush()?;
        self.out.skip(n)?;
        self.pos += n;
        Ok(())
    }

    fn skip_to(&mut self, at: u64) -> io::Result<()> {
        if at < self.pos {
            return Err(io::Error::other(format!(
                "ext layout overlaps at byte {at} (written up to {})",
                self.pos
            )));
        }
        self.skip(at - self.pos)
    }

    /// `len` bytes of `d` from `off`, zero-padded past the end of the file.
    fn data(&mut self, d: &FileData, off: u64, len: u64) -> io::Result<()> {
        let real = len.min(d.size().saturating_sub(off));
        if let Some(s) = d.as_slice() {
            let s = &s[off as usize..(off + real) as usize];
            self.put(s)?;
        } else {
            let mut at = off;
            let end = off + real;
            let mut tmp = vec![0u8; (real.min(1 << 20)) as usize];
            while at < end {
                let n = (end - at).min(1 << 20) as usize;
                d.read_at(at, &mut tmp[..n])?;
                self.put(&tmp[..n])?;
                at += n as u64;
            }
        }
        write_zeros(&mut VecSink(&mut self.buf), len - real)?;
        self.pos += len - real;
        Ok(())
    }
}

/// Appends zeros straight into the write buffer.
struct VecSink<'a>(&'a mut Vec<u8>);

impl io::Write for VecSink<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
