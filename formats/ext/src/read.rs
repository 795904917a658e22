//! Reading ext2/3/4 images back into a tree (tests, fuzzing, `inspect`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rootforge_common::bytes::{RecordReader, le16_at, usize_from_u32};
use rootforge_common::{
    Backing, Content, Edit, Error, Extent, FileData, Inode, Kind, Meta, Replace, Result, Time,
    Tree, TreeBuilder, display_path,
};

use crate::disk::{self, EXTENTS_FL, INCOMPAT_64BIT, ROOT_INO, SUPER_MAGIC, XATTR_MAGIC};
use crate::raw::Record;
use crate::raw::dir::DirEntry2;
use crate::raw::extent::{self, ExtentHeader, ExtentIdx};
use crate::raw::inode::{Ext4Inode, Ext4InodeExtra};
use crate::raw::superblock::{GroupDesc, GroupDescHi, S_MAGIC_OFFSET, SuperBlock};
use crate::raw::xattr::{XattrEntry, XattrHeader, XattrIbodyHeader};
use crate::xattr;

/// Where the primary superblock starts.
const SUPERBLOCK_AT: usize = 1024;

/// Whether `data` starts like an ext2/3/4 image (the superblock magic).
pub fn is_ext(data: &[u8]) -> bool {
    le16_at(data, SUPERBLOCK_AT + S_MAGIC_OFFSET) == Some(SUPER_MAGIC)
}

fn bad(offset: u64, reason: impl Into<String>) -> Error {
    Error::malformed("ext", offset, reason)
}

/// An inode as read: its fields, its extra fields (zero where the inode
/// is too short for them) and its bytes, whose spare area holds xattrs.
struct RawInode<'a> {
    i: Ext4Inode,
    extra: Ext4InodeExtra,
    raw: &'a [u8],
}

impl RawInode<'_> {
    fn size(&self) -> u64 {
        self.i.size()
    }

    /// The four-byte words of `i_block`.
    fn i_block_words(&self) -> [u32; 15] {
        let mut w = [0u32; 15];
        for (v, b) in w.iter_mut().zip(self.i.i_block.chunks_exact(4)) {
            *v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        w
    }
}

struct Image<'a> {
    buf: &'a [u8],
    /// Metadata blocks left to read: a hostile image with cycles in its
    /// block maps runs out instead of looping.
    budget: std::cell::Cell<u64>,
    bs: u64,
    ipg: u64,
    isz: usize,
    inodes: u64,
    tables: Vec<u64>,
}

impl<'a> Image<'a> {
    fn block(&self, n: u64) -> Result<&'a [u8]> {
        let left = self.budget.get();
        if left == 0 {
            return Err(bad(0, "block maps refer to more blocks than the image has"));
        }
        self.budget.set(left - 1);
        let at = n
            .checked_mul(self.bs)
            .ok_or_else(|| bad(0, "block number overflows"))?;
        self.range(at, self.bs)
    }

    fn range(&self, at: u64, len: u64) -> Result<&'a [u8]> {
        let end = at
            .checked_add(len)
            .filter(|&e| e <= self.buf.len() as u64)
            .ok_or_else(|| bad(at, "points past the end of the image"))?;
        let (at, end) = (to_usize(at)?, to_usize(end)?);
        self.buf
            .get(at..end)
            .ok_or_else(|| bad(at as u64, "points past the end of the image"))
    }

    fn inode(&self, ino: u32) -> Result<RawInode<'a>> {
        let idx = u64::from(ino)
            .checked_sub(1)
            .filter(|&i| i < self.inodes)
            .ok_or_else(|| bad(0, format!("inode {ino} out of range")))?;
        let table = to_usize(idx / self.ipg)
            .ok()
            .and_then(|g| self.tables.get(g))
            .copied()
            .ok_or_else(|| bad(0, format!("inode {ino} out of range")))?;
        let at = table
            .checked_mul(self.bs)
            .and_then(|t| t.checked_add((idx % self.ipg) * self.isz as u64))
            .ok_or_else(|| bad(0, "inode table offset overflows"))?;
        let raw = self.range(at, self.isz as u64)?;
        let i = Ext4Inode::from_bytes(raw).ok_or_else(|| bad(at, "inode is truncated"))?;
        Ok(RawInode {
            i,
            extra: Ext4InodeExtra::of(raw),
            raw,
        })
    }

    /// An inode's mapped runs: (logical block, physical block, count).
    fn runs(&self, ino: &RawInode<'_>) -> Result<Vec<(u64, u64, u64)>> {
        let mut out = Vec::new();
        if ino.i.i_flags & EXTENTS_FL != 0 {
            self.extents(&ino.i.i_block, 0, &mut out)?;
        } else {
            let words = ino.i_block_words();
            for (i, &p) in (0u64..).zip(&words[..12]) {
                if p != 0 {
                    out.push((i, u64::from(p), 1));
                }
            }
            let per = self.bs / 4;
            let mut base = 12;
            for (slot, level) in [(12, 1u32), (13, 2), (14, 3)] {
                let p = u64::from(words[slot]);
                let span = per.pow(level);
                if p != 0 {
                    self.indirect(p, level, base, &mut out)?;
                }
                base += span;
            }
        }
        Ok(out)
    }

    fn indirect(
        &self,
        blk: u64,
        level: u32,
        base: u64,
        out: &mut Vec<(u64, u64, u64)>,
    ) -> Result<()> {
        let per = self.bs / 4;
        let span = per.pow(level - 1);
        let b = self.block(blk)?;
        for (i, w) in (0u64..).zip(b.chunks_exact(4)) {
            let p = u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
            if p == 0 {
                continue;
            }
            if out.len() as u64 > self.buf.len() as u64 / self.bs {
                return Err(bad(blk * self.bs, "more mapped blocks than the image has"));
            }
            if level == 1 {
                out.push((base + i, p, 1));
            } else {
                self.indirect(p, level - 1, base + i * span, out)?;
            }
        }
        Ok(())
    }

    fn extents(&self, node: &[u8], depth_seen: u32, out: &mut Vec<(u64, u64, u64)>) -> Result<()> {
        let mut r = RecordReader::new(node);
        let h = ExtentHeader::decode(&mut r)
            .filter(|_| depth_seen <= 5)
            .ok_or_else(|| bad(0, "bad extent header"))?;
        for _ in 0..h.eh_entries {
            let e = r
                .bytes(extent::Extent::SIZE)
                .ok_or_else(|| bad(0, "extent entries overflow their node"))?;
            if out.len() as u64 > self.buf.len() as u64 / self.bs {
                return Err(bad(0, "more extents than the image has blocks"));
            }
            if h.eh_depth == 0 {
                let x = extent::Extent::from_bytes(e)
                    .ok_or_else(|| bad(0, "extent entries overflow their node"))?;
                let len = u64::from(x.ee_len);
                if len > disk::EXTENT_MAX_LEN {
                    // An unwritten extent reads as zeros, like a hole.
                    continue;
                }
                out.push((u64::from(x.ee_block), x.start(), len));
            } else {
                let x = ExtentIdx::from_bytes(e)
                    .ok_or_else(|| bad(0, "extent entries overflow their node"))?;
                let child = self.block(x.leaf())?;
                self.extents(child, depth_seen + 1, out)?;
            }
        }
        Ok(())
    }

    /// The bytes of an inode's first `len` logical bytes (directories,
    /// slow symlinks).
    fn contents(&self, ino: &RawInode<'_>, len: u64) -> Result<Vec<u8>> {
        if len > self.buf.len() as u64 {
            return Err(bad(0, "inode larger than the image"));
        }
        let mut v = vec![0u8; to_usize(len)?];
        for (l, p, n) in self.runs(ino)? {
            for k in 0..n {
                let at = (l + k) * self.bs;
                if at >= len {
                    break;
                }
                let take = to_usize((len - at).min(self.bs))?;
                let b = self.block(p + k)?;
                let at = to_usize(at)?;
                v[at..at + take].copy_from_slice(&b[..take]);
            }
        }
        Ok(v)
    }

    fn xattrs(&self, ino: &RawInode<'_>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        if self.isz > Ext4Inode::SIZE {
            let start = Ext4Inode::SIZE + usize::from(ino.extra.i_extra_isize);
            let body = ino.raw.get(start..).unwrap_or_default();
            if XattrIbodyHeader::from_bytes(body).is_some_and(|h| h.h_magic == XATTR_MAGIC) {
                let area = &body[XattrIbodyHeader::SIZE..];
                entries(area, 0, area, &mut out)?;
            }
        }
        let acl = ino.i.file_acl();
        if acl != 0 {
            let b = self.block(acl)?;
            if XattrHeader::from_bytes(b).is_none_or(|h| h.h_magic != XATTR_MAGIC) {
                return Err(bad(acl * self.bs, "bad xattr block magic"));
            }
            entries(b, XattrHeader::SIZE, b, &mut out)?;
        }
        Ok(out)
    }
}

/// `n` as an index into the image in memory.
fn to_usize(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| bad(0, "offset too large for this machine"))
}

/// Parses xattr entries from `at` in `list`; values are at offsets in `values`.
fn entries(
    list: &[u8],
    mut at: usize,
    values: &[u8],
    out: &mut Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<()> {
    while let Some(e) = list.get(at..).and_then(XattrEntry::from_bytes) {
        if e.is_end() {
            break;
        }
        let name_len = usize::from(e.e_name_len);
        let offs = usize::from(e.e_value_offs);
        let size = usize_from_u32(e.e_value_size);
        let name = list
            .get(at + XattrEntry::SIZE..at + XattrEntry::SIZE + name_len)
            .ok_or_else(|| bad(0, "xattr name overflows"))?;
        let value = values
            .get(offs..offs.saturating_add(size))
            .ok_or_else(|| bad(0, "xattr value overflows"))?;
        let (n, v) = xattr::decode(e.e_name_index, name, value)
            .ok_or_else(|| bad(0, "undecodable xattr"))?;
        out.push((n, v));
        at += disk::pad4(XattrEntry::SIZE + name_len);
    }
    Ok(())
}

/// A time from its seconds and, if the inode has it, its `_extra` word.
fn time(sec: u32, extra: Option<u32>) -> Time {
    let sec = i64::from(i32::from_le_bytes(sec.to_le_bytes()));
    match extra {
        Some(extra) => Time {
            sec: sec + (i64::from(extra & 3) << 32),
            nsec: (extra >> 2).min(999_999_999),
        },
        None => Time { sec, nsec: 0 },
    }
}

/// Reads a whole ext2/3/4 image into a tree. File data refers to the image.
pub fn read(data: Backing) -> Result<Tree> {
    let data: Backing = if data.as_slice().is_some() {
        data
    } else {
        let len = usize::try_from(data.len()).map_err(|_| bad(0, "image too large"))?;
        let mut all = vec![0u8; len];
        data.read_at(0, &mut all)
            .map_err(|e| Error::io("reading the ext image", e))?;
        Arc::new(all)
    };
    let buf: &[u8] = data.as_slice().unwrap_or_default();
    if buf.len() < 2048 || !is_ext(buf) {
        return Err(bad(1024 + 0x38, "no ext superblock magic"));
    }
    let sb = buf
        .get(SUPERBLOCK_AT..)
        .and_then(SuperBlock::from_bytes)
        .ok_or_else(|| bad(1024, "superblock is truncated"))?;
    let log = sb.s_log_block_size;
    if log > 6 {
        return Err(bad(1024 + 0x18, "block size too large"));
    }
    let bs = 1024u64 << log;
    let ipg = u64::from(sb.s_inodes_per_group);
    let inodes = u64::from(sb.s_inodes_count);
    let isz = if sb.s_rev_level == 0 {
        Ext4Inode::SIZE
    } else {
        usize::from(sb.s_inode_size)
    };
    // The kernel's geometry checks: one bitmap block per group for blocks
    // and for inodes, and as many inodes as the groups hold.
    if ipg == 0 || ipg > bs * 8 || !(Ext4Inode::SIZE..=to_usize(bs)?).contains(&isz) {
        return Err(bad(1024, "bad inode geometry"));
    }
    let is_64bit = sb.s_feature_incompat & INCOMPAT_64BIT != 0;
    let blocks_hi = if is_64bit { sb.s_blocks_count_hi } else { 0 };
    let blocks = u64::from(sb.s_blocks_count_lo) | (u64::from(blocks_hi) << 32);
    let bpg = u64::from(sb.s_blocks_per_group);
    if bpg == 0 || bpg > bs * 8 {
        return Err(bad(1024 + 0x20, "bad blocks per group"));
    }
    let groups = blocks
        .checked_sub(u64::from(sb.s_first_data_block))
        .filter(|&n| n > 0)
        .map(|n| n.div_ceil(bpg))
        .ok_or_else(|| bad(1024 + 4, "block count below the first data block"))?;
    if groups.checked_mul(ipg) != Some(inodes) {
        return Err(bad(
            1024,
            format!("{inodes} inodes, but {groups} groups of {ipg} inodes"),
        ));
    }
    let desc = if is_64bit {
        usize::from(sb.s_desc_size).max(GroupDesc::SIZE)
    } else {
        GroupDesc::SIZE
    };
    let gdt_at = (u64::from(sb.s_first_data_block) + 1) * bs;
    let mut img = Image {
        buf,
        budget: std::cell::Cell::new((buf.len() as u64 / bs).saturating_mul(2)),
        bs,
        ipg,
        isz,
        inodes,
        tables: Vec::new(),
    };
    let gdt = img.range(gdt_at, groups.saturating_mul(desc as u64))?;
    img.tables = gdt
        .chunks(desc)
        .map(|d| {
            let lo = GroupDesc::from_bytes(d).map(|g| g.bg_inode_table_lo);
            let hi = if desc >= GroupDesc::SIZE + GroupDescHi::SIZE {
                d.get(GroupDesc::SIZE..)
                    .and_then(GroupDescHi::from_bytes)
                    .map(|g| g.bg_inode_table_hi)
            } else {
                Some(0)
            };
            lo.zip(hi)
                .map(|(lo, hi)| u64::from(lo) | (u64::from(hi) << 32))
                .ok_or_else(|| bad(gdt_at, "group descriptor is truncated"))
        })
        .collect::<Result<_>>()?;

    let root_raw = img.inode(ROOT_INO)?;
    if Kind::from_mode(u32::from(root_raw.i.i_mode)) != Some(Kind::Dir) {
        return Err(bad(0, "the root inode is not a directory"));
    }
    let mut tree = TreeBuilder::new(meta_of(&root_raw, isz));
    let mut root = Inode::dir(meta_of(&root_raw, isz));
    for (n, v) in img.xattrs(&root_raw)? {
        root.set_xattr(&n, &v);
    }
    tree.insert(b"", root, Replace::Always)?;
    let mut first_path: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut seen_dirs: HashSet<u32> = HashSet::from([ROOT_INO]);
    let mut stack: Vec<(u32, Vec<u8>)> = vec![(ROOT_INO, Vec::new())];
    while let Some((dir, path)) = stack.pop() {
        let raw = img.inode(dir)?;
        let size = raw.size();
        let blocks = img.contents(&raw, size)?;
        for block in blocks.chunks(to_usize(bs)?) {
            let mut at = 0usize;
            while let Some(e) = block.get(at..).and_then(DirEntry2::from_bytes) {
                let ino = e.inode;
                let rec = usize::from(e.rec_len);
                let name_len = usize::from(e.name_len);
                if rec < DirEntry2::SIZE {
                    return Err(bad(0, "directory entry with a bad length"));
                }
                let name = block
                    .get(at + DirEntry2::SIZE..at + DirEntry2::SIZE + name_len)
                    .ok_or_else(|| bad(0, "directory entry name overflows"))?;
                at += rec;
                if ino == 0 || name == b"." || name == b".." {
                    continue;
                }
                if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
                    return Err(bad(0, "directory entry with an invalid name"));
                }
                let mut child = path.clone();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(name);
                if let Some(first) = first_path.get(&ino) {
                    tree.hard_link(&child, first)?;
                    continue;
                }
                let craw = img.inode(ino)?;
                let inode = inode_of(&img, &craw, &data)?;
                let is_dir = inode.kind() == Kind::Dir;
                tree.insert(&child, inode, Replace::Always)?;
                if is_dir {
                    if !seen_dirs.insert(ino) {
                        return Err(bad(
                            0,
                            format!(
                                "{}: directory inode {ino} linked twice (a loop or a linked directory)",
                                display_path(&child)
                            ),
                        ));
                    }
                    stack.push((ino, child));
                } else {
                    first_path.insert(ino, child);
                }
            }
        }
    }
    Ok(tree.finish())
}

fn meta_of(raw: &RawInode<'_>, isz: usize) -> Meta {
    let i = &raw.i;
    let uid = u32::from(i.i_uid) | (u32::from(i.l_i_uid_high) << 16);
    let gid = u32::from(i.i_gid) | (u32::from(i.l_i_gid_high) << 16);
    // i_mtime_extra is in use when i_extra_isize reaches past it.
    let extra = isz > Ext4Inode::SIZE && raw.extra.i_extra_isize >= 12;
    let mtime = time(i.i_mtime, extra.then_some(raw.extra.i_mtime_extra));
    Meta::new(i.i_mode & 0o7777, uid, gid, mtime)
}

fn inode_of(img: &Image<'_>, raw: &RawInode<'_>, data: &Backing) -> Result<Inode> {
    let mode = u32::from(raw.i.i_mode);
    let size = raw.size();
    let kind = Kind::from_mode(mode).ok_or_else(|| bad(0, format!("unknown mode {mode:o}")))?;
    let dev = || {
        let [old, new, ..] = raw.i_block_words();
        if old != 0 {
            (old >> 8 & 0xff, old & 0xff)
        } else {
            ((new >> 8) & 0xfff, (new & 0xff) | ((new >> 12) & 0xfff00))
        }
    };
    let content = match kind {
        Kind::Dir => Content::Dir(Default::default()),
        Kind::Fifo => Content::Fifo,
        Kind::Socket => Content::Socket,
        Kind::CharDev => {
            let (major, minor) = dev();
            Content::CharDev { major, minor }
        }
        Kind::BlockDev => {
            let (major, minor) = dev();
            Content::BlockDev { major, minor }
        }
        Kind::Symlink => {
            // A fast symlink has no data block (only, perhaps, an xattr block).
            let acl_sectors = if raw.i.i_file_acl_lo != 0 {
                img.bs / 512
            } else {
                0
            };
            let fast = size < 60
                && raw.i.i_flags & EXTENTS_FL == 0
                && u64::from(raw.i.i_blocks_lo) == acl_sectors;
            let target = if fast {
                raw.i.i_block[..to_usize(size)?].to_vec()
            } else {
                img.contents(raw, size)?
            };
            Content::Symlink(target.into())
        }
        Kind::File => {
            let mut extents: Vec<Extent> = Vec::new();
            let mut runs = img.runs(raw)?;
            runs.sort_unstable();
            for (l, p, n) in runs {
                let logical = l * img.bs;
                if logical >= size {
                    continue;
                }
                let len = (n * img.bs).min(size - logical);
                let stored = p
                    .checked_mul(img.bs)
                    .ok_or_else(|| bad(0, "block number overflows"))?;
                match extents.last_mut() {
                    Some(e) if e.logical + e.len == logical && e.stored + e.len == stored => {
                        e.len += len;
                    }
                    _ => extents.push(Extent {
                        logical,
                        stored,
                        len,
                    }),
                }
            }
            let fd = if extents.len() == 1 && extents[0].logical == 0 && extents[0].len == size {
                FileData::range(data.clone(), extents[0].stored, size)
            } else {
                FileData::sparse(data.clone(), extents, size)
            };
            Content::File(fd.ok_or_else(|| bad(0, "file blocks outside the image"))?)
        }
    };
    let mut inode = Inode::new(meta_of(raw, img.isz), content);
    for (n, v) in img.xattrs(raw)? {
        inode.set_xattr(&n, &v);
    }
    Ok(inode)
}
