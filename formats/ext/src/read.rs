//! Reading ext2/3/4 images back into a tree (tests, fuzzing, `inspect`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rootforge_common::{
    Backing, Content, Edit, Error, Extent, FileData, Inode, Kind, Meta, Replace, Result, Time,
    Tree, TreeBuilder, display_path,
};

use crate::disk::{
    self, EXTENT_MAGIC, EXTENTS_FL, INCOMPAT_64BIT, ROOT_INO, SUPER_MAGIC, XATTR_MAGIC, get16,
    get32,
};
use crate::xattr;

/// Whether `data` starts like an ext2/3/4 image (the superblock magic).
pub fn is_ext(data: &[u8]) -> bool {
    get16(data, 1024 + 0x38) == SUPER_MAGIC
}

fn bad(offset: u64, reason: impl Into<String>) -> Error {
    Error::malformed("ext", offset, reason)
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
        Ok(&self.buf[at as usize..end as usize])
    }

    fn inode(&self, ino: u32) -> Result<&'a [u8]> {
        let idx = u64::from(ino)
            .checked_sub(1)
            .filter(|&i| i < self.inodes)
            .ok_or_else(|| bad(0, format!("inode {ino} out of range")))?;
        let table = self.tables[(idx / self.ipg) as usize];
        let at = table
            .checked_mul(self.bs)
            .and_then(|t| t.checked_add((idx % self.ipg) * self.isz as u64))
            .ok_or_else(|| bad(0, "inode table offset overflows"))?;
        self.range(at, self.isz as u64)
    }

    /// An inode's mapped runs: (logical block, physical block, count).
    fn runs(&self, raw: &[u8]) -> Result<Vec<(u64, u64, u64)>> {
        let mut out = Vec::new();
        if get32(raw, 0x20) & EXTENTS_FL != 0 {
            self.extents(&raw[0x28..0x28 + 60], 0, &mut out)?;
        } else {
            for i in 0..12 {
                let p = u64::from(get32(raw, 0x28 + 4 * i));
                if p != 0 {
                    out.push((i as u64, p, 1));
                }
            }
            let per = self.bs / 4;
            let mut base = 12;
            for (slot, level) in [(12, 1u32), (13, 2), (14, 3)] {
                let p = u64::from(get32(raw, 0x28 + 4 * slot));
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
        for i in 0..per {
            let p = u64::from(get32(b, (4 * i) as usize));
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
        if get16(node, 0) != EXTENT_MAGIC || depth_seen > 5 {
            return Err(bad(0, "bad extent header"));
        }
        let entries = usize::from(get16(node, 2));
        let depth = get16(node, 6);
        for i in 0..entries {
            let e = node
                .get(12 + 12 * i..24 + 12 * i)
                .ok_or_else(|| bad(0, "extent entries overflow their node"))?;
            let lblk = u64::from(get32(e, 0));
            if out.len() as u64 > self.buf.len() as u64 / self.bs {
                return Err(bad(0, "more extents than the image has blocks"));
            }
            if depth == 0 {
                let len = u64::from(get16(e, 4));
                if len > disk::EXTENT_MAX_LEN {
                    // An unwritten extent reads as zeros, like a hole.
                    continue;
                }
                let p = (u64::from(get16(e, 6)) << 32) | u64::from(get32(e, 8));
                out.push((lblk, p, len));
            } else {
                let p = (u64::from(get16(e, 8)) << 32) | u64::from(get32(e, 4));
                let child = self.block(p)?;
                self.extents(child, depth_seen + 1, out)?;
            }
        }
        Ok(())
    }

    /// The bytes of an inode's first `len` logical bytes (directories,
    /// slow symlinks).
    fn contents(&self, raw: &[u8], len: u64) -> Result<Vec<u8>> {
        if len > self.buf.len() as u64 {
            return Err(bad(0, "inode larger than the image"));
        }
        let mut v = vec![0u8; len as usize];
        for (l, p, n) in self.runs(raw)? {
            for k in 0..n {
                let at = (l + k) * self.bs;
                if at >= len {
                    break;
                }
                let take = (len - at).min(self.bs) as usize;
                let b = self.block(p + k)?;
                v[at as usize..at as usize + take].copy_from_slice(&b[..take]);
            }
        }
        Ok(v)
    }

    fn xattrs(&self, raw: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        if self.isz > 128 {
            let extra = usize::from(get16(raw, 0x80));
            let start = 128 + extra;
            if start + 4 <= self.isz && get32(raw, start) == XATTR_MAGIC {
                let area = &raw[start + 4..];
                entries(area, 0, area, &mut out)?;
            }
        }
        let acl = u64::from(get32(raw, 0x68)) | (u64::from(get16(raw, 0x76)) << 32);
        if acl != 0 {
            let b = self.block(acl)?;
            if get32(b, 0) != XATTR_MAGIC {
                return Err(bad(acl * self.bs, "bad xattr block magic"));
            }
            entries(b, 32, b, &mut out)?;
        }
        Ok(out)
    }
}

/// Parses xattr entries from `at` in `list`; values are at offsets in `values`.
fn entries(
    list: &[u8],
    mut at: usize,
    values: &[u8],
    out: &mut Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<()> {
    while at + 16 <= list.len() && get32(list, at) != 0 {
        let name_len = usize::from(list[at]);
        let index = list[at + 1];
        let offs = usize::from(get16(list, at + 2));
        let size = get32(list, at + 8) as usize;
        let name = list
            .get(at + 16..at + 16 + name_len)
            .ok_or_else(|| bad(0, "xattr name overflows"))?;
        let value = values
            .get(offs..offs.saturating_add(size))
            .ok_or_else(|| bad(0, "xattr value overflows"))?;
        let (n, v) =
            xattr::decode(index, name, value).ok_or_else(|| bad(0, "undecodable xattr"))?;
        out.push((n, v));
        at += disk::pad4(16 + name_len);
    }
    Ok(())
}

fn time(raw: &[u8], base: usize, extra_at: Option<usize>) -> Time {
    let sec = i64::from(get32(raw, base) as i32);
    match extra_at {
        Some(x) => {
            let extra = get32(raw, x);
            Time {
                sec: sec + (i64::from(extra & 3) << 32),
                nsec: (extra >> 2).min(999_999_999),
            }
        }
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
    let sb = &buf[1024..2048];
    let log = get32(sb, 0x18);
    if log > 6 {
        return Err(bad(1024 + 0x18, "block size too large"));
    }
    let bs = 1024u64 << log;
    let ipg = u64::from(get32(sb, 0x28));
    let inodes = u64::from(get32(sb, 0));
    let isz = if get32(sb, 0x4C) == 0 {
        128
    } else {
        usize::from(get16(sb, 0x58))
    };
    // The kernel's geometry checks: one bitmap block per group for blocks
    // and for inodes, and as many inodes as the groups hold.
    if ipg == 0 || ipg > bs * 8 || !(128..=bs as usize).contains(&isz) {
        return Err(bad(1024, "bad inode geometry"));
    }
    let is_64bit = get32(sb, 0x60) & INCOMPAT_64BIT != 0;
    let blocks_hi = if is_64bit { get32(sb, 0x150) } else { 0 };
    let blocks = u64::from(get32(sb, 0x04)) | (u64::from(blocks_hi) << 32);
    let bpg = u64::from(get32(sb, 0x20));
    if bpg == 0 || bpg > bs * 8 {
        return Err(bad(1024 + 0x20, "bad blocks per group"));
    }
    let groups = blocks
        .checked_sub(u64::from(get32(sb, 0x14)))
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
        usize::from(get16(sb, 0xFE)).max(32)
    } else {
        32
    };
    let gdt_at = (u64::from(get32(sb, 0x14)) + 1) * bs;
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
            let hi = if desc >= 64 {
                u64::from(get32(d, 0x28))
            } else {
                0
            };
            u64::from(get32(d, 8)) | (hi << 32)
        })
        .collect();

    let root_raw = img.inode(ROOT_INO)?;
    if Kind::from_mode(u32::from(get16(root_raw, 0))) != Some(Kind::Dir) {
        return Err(bad(0, "the root inode is not a directory"));
    }
    let mut tree = TreeBuilder::new(meta_of(root_raw, isz));
    let mut root = Inode::dir(meta_of(root_raw, isz));
    for (n, v) in img.xattrs(root_raw)? {
        root.set_xattr(&n, &v);
    }
    tree.insert(b"", root, Replace::Always)?;
    let mut first_path: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut seen_dirs: HashSet<u32> = HashSet::from([ROOT_INO]);
    let mut stack: Vec<(u32, Vec<u8>)> = vec![(ROOT_INO, Vec::new())];
    while let Some((dir, path)) = stack.pop() {
        let raw = img.inode(dir)?;
        let size = u64::from(get32(raw, 4)) | (u64::from(get32(raw, 0x6C)) << 32);
        let blocks = img.contents(raw, size)?;
        for block in blocks.chunks(bs as usize) {
            let mut at = 0usize;
            while at + 8 <= block.len() {
                let ino = get32(block, at);
                let rec = usize::from(get16(block, at + 4));
                let name_len = usize::from(block[at + 6]);
                if rec < 8 {
                    return Err(bad(0, "directory entry with a bad length"));
                }
                let name = block
                    .get(at + 8..at + 8 + name_len)
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
                let inode = inode_of(&img, craw, &data)?;
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

fn meta_of(raw: &[u8], isz: usize) -> Meta {
    let uid = u32::from(get16(raw, 2)) | (u32::from(get16(raw, 0x78)) << 16);
    let gid = u32::from(get16(raw, 0x18)) | (u32::from(get16(raw, 0x7A)) << 16);
    let extra = isz > 128 && get16(raw, 0x80) >= 12;
    let mtime = time(raw, 0x10, extra.then_some(0x88));
    Meta::new(get16(raw, 0) & 0o7777, uid, gid, mtime)
}

fn inode_of(img: &Image<'_>, raw: &[u8], data: &Backing) -> Result<Inode> {
    let mode = u32::from(get16(raw, 0));
    let size = u64::from(get32(raw, 4)) | (u64::from(get32(raw, 0x6C)) << 32);
    let kind = Kind::from_mode(mode).ok_or_else(|| bad(0, format!("unknown mode {mode:o}")))?;
    let dev = || {
        let old = get32(raw, 0x28);
        if old != 0 {
            (old >> 8 & 0xff, old & 0xff)
        } else {
            let new = get32(raw, 0x2C);
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
            let acl_sectors = if get32(raw, 0x68) != 0 {
                img.bs / 512
            } else {
                0
            };
            let fast = size < 60
                && get32(raw, 0x20) & EXTENTS_FL == 0
                && u64::from(get32(raw, 0x1C)) == acl_sectors;
            let target = if fast {
                raw[0x28..0x28 + size as usize].to_vec()
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
