//! Checks on the tree, the group geometry, block allocation and block maps
//! (extent trees and indirect blocks).

use rootforge_common::{Content, Error, Result, View, display_path};

use crate::ExtEncoder;
use rootforge_common::bytes::RecordWriter;

use crate::disk::{
    self, EXTENT_MAX_LEN, LINK_MAX, RO_COMPAT_HUGE_FILE, RO_COMPAT_SPARSE_SUPER, crc32c, hi32,
    in_block, lo16, lo32, mem,
};
use crate::raw::extent::{Extent, ExtentHeader, ExtentIdx, ExtentTail};
use crate::raw::superblock::GroupDesc;
use crate::raw::{Record, le32s};
use crate::xattr;

fn limit(enc: &ExtEncoder, path: &[u8], what: &'static str, value: u64, max: u64) -> Error {
    Error::Limit {
        path: display_path(path),
        format: enc.variant.name(),
        what,
        value,
        limit: max,
    }
}

/// The largest file, in blocks, a block map reaches (12 direct, then
/// single, double and triple indirect).
fn blockmap_max_blocks(bs: u64) -> u64 {
    let p = bs / 4;
    12 + p + p * p + p * p * p
}

/// Rejects, before any byte is written, every entry the image cannot hold.
pub(crate) fn check_tree(enc: &ExtEncoder, view: &View<'_>) -> Result<()> {
    let bs = u64::from(enc.block_size);
    let extents = enc.features.has_incompat(disk::INCOMPAT_EXTENTS);
    let max_blocks = if extents {
        1u64 << 32
    } else {
        blockmap_max_blocks(bs)
    };
    let max_size = if enc.features.has_ro_compat(RO_COMPAT_HUGE_FILE) {
        max_blocks.saturating_mul(bs)
    } else {
        // i_blocks counts 512-byte sectors in 32 bits.
        max_blocks.saturating_mul(bs).min(u64::from(u32::MAX) * 512)
    };
    let inode_room = xattr_room(enc.inode_size());
    for e in view.sorted_entries() {
        let path = &e.path;
        if let Some(name) = path.rsplit(|&b| b == b'/').next()
            && name.len() > 255
        {
            return Err(limit(enc, path, "name length", name.len() as u64, 255));
        }
        let inode = view.inode(e.ino);
        match &inode.content {
            Content::Symlink(t) if t.len() as u64 >= bs => {
                return Err(limit(
                    enc,
                    path,
                    "symlink target length",
                    t.len() as u64,
                    bs - 1,
                ));
            }
            Content::File(d) if d.size() > max_size => {
                return Err(limit(enc, path, "file size", d.size(), max_size));
            }
            Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
                if *major > 0xfff {
                    return Err(limit(enc, path, "device major", u64::from(*major), 0xfff));
                }
                if *minor > 0xf_ffff {
                    return Err(limit(
                        enc,
                        path,
                        "device minor",
                        u64::from(*minor),
                        0xf_ffff,
                    ));
                }
            }
            _ => {}
        }
        if matches!(inode.content, Content::Dir(_))
            && e.nlink > LINK_MAX
            && !enc.features.has_ro_compat(disk::RO_COMPAT_DIR_NLINK)
        {
            return Err(limit(
                enc,
                path,
                "directory link count (without dir_nlink)",
                u64::from(e.nlink),
                u64::from(LINK_MAX),
            ));
        }
        if !matches!(inode.content, Content::Dir(_)) && e.nlink > LINK_MAX {
            return Err(limit(
                enc,
                path,
                "hard link count",
                u64::from(e.nlink),
                u64::from(LINK_MAX),
            ));
        }
        if !inode.xattrs.is_empty() && !enc.features.has_compat(disk::COMPAT_EXT_ATTR) {
            return Err(Error::Unsupported {
                path: display_path(path),
                format: enc.variant.name(),
                what: "extended attributes without the ext_attr feature".into(),
            });
        }
        if !inode.xattrs.is_empty() {
            let (_, block) = xattrs_of(enc, inode, path, inode_room)?;
            let need = xattr::block_need(&block) as u64;
            if need > bs {
                return Err(limit(enc, path, "extended attribute bytes", need, bs));
            }
        }
    }
    Ok(())
}

/// Bytes for xattrs in an inode's spare area, after the magic.
pub(crate) fn xattr_room(inode_size: u16) -> usize {
    usize::from(inode_size).saturating_sub(128 + usize::from(disk::EXTRA_ISIZE) + 4)
}

/// An inode's xattrs, split between its spare area and a block.
pub(crate) fn xattrs_of(
    enc: &ExtEncoder,
    inode: &rootforge_common::Inode,
    path: &[u8],
    room: usize,
) -> Result<(Vec<u8>, Vec<xattr::Entry>)> {
    let mut entries = Vec::with_capacity(inode.xattrs.len());
    for x in &inode.xattrs {
        let e = xattr::encode(&x.name, &x.value).map_err(|err| match err {
            xattr::XattrError::NameTooLong(n) => {
                limit(enc, path, "extended attribute name length", n as u64, 255)
            }
            xattr::XattrError::BadAcl => Error::Unsupported {
                path: display_path(path),
                format: enc.variant.name(),
                what: format!(
                    "the malformed POSIX ACL in {}",
                    String::from_utf8_lossy(&x.name)
                ),
            },
        })?;
        entries.push(e);
    }
    Ok(xattr::place(entries, room))
}

/// Where the groups and their metadata lie.
#[derive(Debug, Clone)]
pub(crate) struct Geometry {
    pub blocks: u64,
    pub first_data_block: u64,
    pub bpg: u64,
    pub groups: u64,
    pub ipg: u32,
    /// Inode table blocks per group.
    pub itb: u64,
    pub gdt_blocks: u64,
    pub sparse: bool,
    pub flex: u64,
    /// Block bitmap, inode bitmap and inode table of each group.
    pub meta: Vec<[u64; 3]>,
}

/// The geometry does not fit: try again with at least this many blocks.
#[derive(Debug)]
pub(crate) struct NeedBlocks(pub u64);

fn is_power_of(mut n: u64, base: u64) -> bool {
    while n % base == 0 && n > 1 {
        n /= base;
    }
    n == 1
}

impl Geometry {
    /// Lays out `blocks` blocks holding at least `inodes` inodes. With
    /// `shrink`, a last group too small for its metadata is dropped (a fixed
    /// size image); otherwise the caller is told to grow.
    pub(crate) fn new(
        enc: &ExtEncoder,
        mut blocks: u64,
        inodes: u64,
        shrink: bool,
    ) -> Result<Geometry, NeedBlocks> {
        let bs = u64::from(enc.block_size);
        let isz = u64::from(enc.inode_size());
        let fdb = u64::from(bs == 1024);
        let bpg = 8 * bs;
        let flex = if enc.features.has_incompat(disk::INCOMPAT_FLEX_BG) {
            16
        } else {
            1
        };
        let sparse = enc.features.has_ro_compat(RO_COMPAT_SPARSE_SUPER);
        let align = (bs / isz).max(8);
        loop {
            if blocks <= fdb + 8 {
                return Err(NeedBlocks(fdb + 64));
            }
            let groups = (blocks - fdb).div_ceil(bpg);
            let ipg = inodes.div_ceil(groups).next_multiple_of(align).max(align);
            if ipg > bpg {
                let groups = inodes.div_ceil(bpg);
                return Err(NeedBlocks(fdb + groups * bpg));
            }
            // Below `bpg`, so within 32 bits.
            let Ok(ipg32) = u32::try_from(ipg) else {
                return Err(NeedBlocks(fdb + inodes.div_ceil(bpg) * bpg));
            };
            let itb = ipg * isz / bs;
            let gdt_blocks = (groups * GroupDesc::SIZE as u64).div_ceil(bs);
            let mut geo = Geometry {
                blocks,
                first_data_block: fdb,
                bpg,
                groups,
                ipg: ipg32,
                itb,
                gdt_blocks,
                sparse,
                flex,
                meta: Vec::new(),
            };
            let last = groups - 1;
            let own_meta = if flex == 1 { 2 + itb } else { 0 };
            let need_last = geo.backup_len(last) + own_meta + 1;
            if geo.group_len(last) < need_last {
                if shrink && groups > 1 {
                    blocks = geo.start(last);
                    continue;
                }
                return Err(NeedBlocks(geo.start(last) + need_last + 16));
            }
            geo.place_metadata()?;
            return Ok(geo);
        }
    }

    pub(crate) fn start(&self, g: u64) -> u64 {
        self.first_data_block + g * self.bpg
    }

    pub(crate) fn group_len(&self, g: u64) -> u64 {
        (self.blocks - self.start(g)).min(self.bpg)
    }

    pub(crate) fn has_backup(&self, g: u64) -> bool {
        !self.sparse || g <= 1 || is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7)
    }

    /// Blocks the superblock copy and descriptors take at a group's start.
    pub(crate) fn backup_len(&self, g: u64) -> u64 {
        if self.has_backup(g) {
            1 + self.gdt_blocks
        } else {
            0
        }
    }

    /// The first block at or after `p` where `n` blocks fit without
    /// covering a superblock copy.
    fn skip_backups(&self, mut p: u64, n: u64) -> u64 {
        loop {
            let g = (p - self.first_data_block) / self.bpg;
            let bl = self.backup_len(g);
            if p < self.start(g) + bl {
                p = self.start(g) + bl;
                continue;
            }
            let next = g + 1;
            if next < self.groups && p + n > self.start(next) && self.backup_len(next) > 0 {
                p = self.start(next) + self.backup_len(next);
                continue;
            }
            return p;
        }
    }

    /// Packs bitmaps and inode tables at the start of each flex group (of
    /// each group without flex_bg).
    fn place_metadata(&mut self) -> Result<(), NeedBlocks> {
        let mut meta = vec![[0u64; 3]; mem(self.groups)];
        let mut unit = 0;
        while unit < self.groups {
            let end = (unit + self.flex).min(self.groups);
            let mut cur = self.start(unit) + self.backup_len(unit);
            for (kind, len) in [(0, 1), (1, 1), (2, self.itb)] {
                for m in &mut meta[mem(unit)..mem(end)] {
                    let p = self.skip_backups(cur, len);
                    m[kind] = p;
                    cur = p + len;
                }
            }
            let bound = if self.flex == 1 {
                self.start(unit) + self.group_len(unit)
            } else {
                self.blocks
            };
            if cur >= bound {
                return Err(NeedBlocks(self.blocks + (cur - bound) + self.bpg));
            }
            unit = end;
        }
        self.meta = meta;
        Ok(())
    }

    /// Every block range the metadata occupies, sorted.
    pub(crate) fn used_ranges(&self) -> Vec<(u64, u64)> {
        let mut r = Vec::new();
        for g in 0..self.groups {
            let bl = self.backup_len(g);
            if bl > 0 {
                r.push((self.start(g), bl));
            }
            let [bb, ib, it] = self.meta[mem(g)];
            r.push((bb, 1));
            r.push((ib, 1));
            r.push((it, self.itb));
        }
        r.sort_unstable();
        r
    }

    /// The inode count.
    pub(crate) fn inodes(&self) -> u64 {
        self.groups * u64::from(self.ipg)
    }
}

/// Hands out free blocks with one forward cursor.
#[derive(Debug)]
pub(crate) struct Alloc {
    free: Vec<(u64, u64)>,
    idx: usize,
    /// Blocks asked for beyond the end of the filesystem.
    pub short: u64,
}

impl Alloc {
    pub(crate) fn new(geo: &Geometry) -> Alloc {
        let mut free = Vec::new();
        let mut pos = geo.first_data_block;
        for (s, l) in geo.used_ranges() {
            if s > pos {
                free.push((pos, s - pos));
            }
            pos = pos.max(s + l);
        }
        if geo.blocks > pos {
            free.push((pos, geo.blocks - pos));
        }
        Alloc {
            free,
            idx: 0,
            short: 0,
        }
    }

    /// `n` blocks as contiguous pieces appended to `out`.
    pub(crate) fn take(&mut self, mut n: u64, out: &mut Vec<(u64, u64)>) {
        while n > 0 {
            let Some(run) = self.free.get_mut(self.idx) else {
                self.short += n;
                // A failed plan is only counted, never written.
                out.push((0, n));
                return;
            };
            let k = n.min(run.1);
            match out.last_mut() {
                Some(last) if last.0 + last.1 == run.0 => last.1 += k,
                _ => out.push((run.0, k)),
            }
            run.0 += k;
            run.1 -= k;
            n -= k;
            if run.1 == 0 {
                self.idx += 1;
            }
        }
    }

    pub(crate) fn one(&mut self) -> u64 {
        let mut v = Vec::with_capacity(1);
        self.take(1, &mut v);
        v[0].0
    }

    /// Free blocks left.
    pub(crate) fn free(&self) -> u64 {
        self.free[self.idx.min(self.free.len())..]
            .iter()
            .map(|r| r.1)
            .sum()
    }
}

/// One mapped run: `len` logical blocks from `lblk` at physical `pblk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub lblk: u64,
    pub pblk: u64,
    pub len: u64,
}

/// The result of mapping an inode's blocks.
#[derive(Debug)]
pub(crate) struct Mapped {
    pub i_block: [u8; 60],
    /// Extent-tree or indirect blocks, with their contents.
    pub meta: Vec<(u64, Vec<u8>)>,
}

/// Builds an extent tree for `runs` (sorted, non-overlapping), allocating
/// index and leaf blocks as needed.
pub(crate) fn extent_tree(
    runs: &[Run],
    bs: usize,
    alloc: &mut Alloc,
    csum_seed: Option<u32>,
) -> Mapped {
    // Leaf entries: (first logical block, the entry's bytes).
    let mut level: Vec<(u32, Vec<u8>)> = Vec::new();
    for r in runs {
        let mut done = 0;
        while done < r.len {
            let len = (r.len - done).min(EXTENT_MAX_LEN);
            let (l, p) = (r.lblk + done, r.pblk + done);
            // Logical blocks fit 32 bits and physical ones 48 (checked).
            let e = Extent {
                ee_block: lo32(l),
                ee_len: lo16(lo32(len)),
                ee_start_hi: lo16(hi32(p)),
                ee_start_lo: lo32(p),
            };
            level.push((e.ee_block, e.to_bytes()));
            done += len;
        }
    }
    let cap = (bs - ExtentHeader::SIZE) / Extent::SIZE;
    let mut out = Mapped::default();
    let mut depth = 0u16;
    while level.len() > 4 {
        let mut up = Vec::with_capacity(level.len().div_ceil(cap));
        for chunk in level.chunks(cap) {
            let p = alloc.one();
            let mut b = node(chunk, cap, depth);
            if let Some(seed) = csum_seed {
                // The tail follows `eh_max` entries.
                b.resize(ExtentHeader::SIZE + Extent::SIZE * cap, 0);
                let et_checksum = crc32c(seed, &b);
                b.extend_from_slice(&ExtentTail { et_checksum }.to_bytes());
            }
            b.resize(bs, 0);
            out.meta.push((p, b));
            let idx = ExtentIdx {
                ei_block: chunk[0].0,
                ei_leaf_lo: lo32(p),
                ei_leaf_hi: lo16(hi32(p)),
            };
            up.push((chunk[0].0, idx.to_bytes()));
        }
        level = up;
        depth += 1;
    }
    let root = node(&level, 4, depth);
    out.i_block[..root.len()].copy_from_slice(&root);
    out
}

impl Default for Mapped {
    fn default() -> Self {
        Mapped {
            i_block: [0; 60],
            meta: Vec::new(),
        }
    }
}

/// An extent tree node: its header and `entries`, each [`Extent::SIZE`]
/// bytes, with room for `max`.
fn node(entries: &[(u32, Vec<u8>)], max: usize, depth: u16) -> Vec<u8> {
    let mut w = RecordWriter::with_capacity(ExtentHeader::SIZE + Extent::SIZE * entries.len());
    ExtentHeader {
        eh_entries: in_block(entries.len()),
        eh_max: in_block(max),
        eh_depth: depth,
    }
    .encode(&mut w);
    for (_, e) in entries {
        w.bytes(e);
    }
    w.into_bytes()
}

/// Where an indirect block hangs: (inode slot, index in the top block,
/// index in the middle block).
type IndirectKey = (u8, u64, u64);

/// An indirect block: its key, its block number and its pointers.
type Indirect = (IndirectKey, u64, Vec<u32>);

/// Builds the classic block map: 12 direct pointers, then single, double
/// and triple indirect blocks, allocated as first needed.
pub(crate) fn block_map(runs: &[Run], bs: usize, alloc: &mut Alloc) -> Mapped {
    let p = (bs / 4) as u64;
    let mut i_block = [0u32; 15];
    // Indirect blocks by their path from the inode: (slot, i, j).
    let mut blocks: Vec<Indirect> = Vec::new();
    let mut index: std::collections::HashMap<IndirectKey, usize> = std::collections::HashMap::new();
    let mut find = |key: IndirectKey, blocks: &mut Vec<Indirect>| {
        *index.entry(key).or_insert_with(|| {
            blocks.push((key, alloc.one(), vec![0u32; p as usize]));
            blocks.len() - 1
        })
    };
    for r in runs {
        for k in 0..r.len {
            let l = r.lblk + k;
            // Physical blocks fit 32 bits without 64bit (checked).
            let phys = lo32(r.pblk + k);
            if l < 12 {
                i_block[mem(l)] = phys;
                continue;
            }
            let l = l - 12;
            if l < p {
                let a = find((12, 0, 0), &mut blocks);
                i_block[12] = lo32(blocks[a].1);
                blocks[a].2[mem(l)] = phys;
                continue;
            }
            let l = l - p;
            if l < p * p {
                let top = find((13, 0, 0), &mut blocks);
                i_block[13] = lo32(blocks[top].1);
                let leaf = find((13, 1 + l / p, 0), &mut blocks);
                let leaf_blk = lo32(blocks[leaf].1);
                blocks[top].2[mem(l / p)] = leaf_blk;
                blocks[leaf].2[mem(l % p)] = phys;
                continue;
            }
            let l = l - p * p;
            let top = find((14, 0, 0), &mut blocks);
            i_block[14] = lo32(blocks[top].1);
            let mid = find((14, 1 + l / (p * p), 0), &mut blocks);
            let mid_blk = lo32(blocks[mid].1);
            blocks[top].2[mem(l / (p * p))] = mid_blk;
            let leaf = find((14, 1 + l / (p * p), 1 + (l / p) % p), &mut blocks);
            let leaf_blk = lo32(blocks[leaf].1);
            blocks[mid].2[mem((l / p) % p)] = leaf_blk;
            blocks[leaf].2[mem(l % p)] = phys;
        }
    }
    let mut out = Mapped::default();
    let mut w = RecordWriter::with_capacity(60);
    le32s(&mut w, &i_block);
    out.i_block.copy_from_slice(&w.into_bytes());
    out.meta = blocks
        .into_iter()
        .map(|(_, blk, ptrs)| {
            let mut w = RecordWriter::with_capacity(bs);
            le32s(&mut w, &ptrs);
            (blk, w.into_bytes())
        })
        .collect();
    out
}
