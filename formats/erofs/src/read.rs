//! Reads an EROFS image back into a tree: the superblock (checksum
//! checked), then a walk from the root directory with every offset and
//! size checked against the image, loops and linked directories refused.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rootforge_common::bytes::{RecordReader, le16_at};
use rootforge_common::{
    Backing, Content, Edit, Error, FileData, Inode, Kind, Meta, Replace, Result, Time, Tree,
    TreeBuilder, Xattr, display_path,
};

use crate::FORMAT;
use crate::comp::decompress;
use crate::records::{
    Dirent, DiskInode, EROFS_FEATURE_COMPAT_SB_CHKSUM, EROFS_FEATURE_INCOMPAT_COMPR_CFGS,
    EROFS_FEATURE_INCOMPAT_ZERO_PADDING, EROFS_INODE_COMPRESSED_COMPACT,
    EROFS_INODE_COMPRESSED_FULL, EROFS_INODE_FLAT_INLINE, EROFS_INODE_FLAT_PLAIN,
    EROFS_SUPER_MAGIC_V1, EROFS_SUPER_OFFSET, LclusterIndex, MapHeader, Record, SuperBlock,
    XattrEntry, XattrIbodyHeader, Z_EROFS_ADVISE_BIG_PCLUSTER_1, Z_EROFS_ADVISE_COMPACTED_2B,
    Z_EROFS_LI_D0_CBLKCNT, full_index_start,
};
use crate::xattr::full_name;
use crate::zmap::{self, Lcluster};

/// The longest path the walk follows.
const PATH_MAX: usize = 4096;
/// What a compressed file may claim to hold per byte of image (the kernel's
/// extents are at most 12 MiB per block): bounds the memory a hostile
/// image can ask for.
const MAX_RATIO: u64 = 4096;
/// The incompatible features this reader knows.
const KNOWN_INCOMPAT: u32 = EROFS_FEATURE_INCOMPAT_ZERO_PADDING | EROFS_FEATURE_INCOMPAT_COMPR_CFGS;

fn malformed(offset: u64, reason: impl Into<String>) -> Error {
    Error::malformed(FORMAT, offset, reason)
}

/// Whether `head` (the image's first bytes) starts an EROFS image.
pub fn is_erofs(head: &[u8]) -> bool {
    le16_at(head, 1024).is_some()
        && rootforge_common::bytes::le32_at(head, 1024) == Some(EROFS_SUPER_MAGIC_V1)
}

struct Image {
    backing: Backing,
    len: u64,
    blksz: u64,
    sb: SuperBlock,
    /// The bytes compressed files may still decompress to.
    budget: u64,
}

impl Image {
    fn bytes(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| malformed(offset, format!("{len} bytes run past the image's end")))?;
        let n = usize::try_from(end - offset).map_err(|_| malformed(offset, "too large"))?;
        let mut buf = vec![0u8; n];
        self.backing
            .read_at(offset, &mut buf)
            .map_err(|e| Error::io("reading the erofs image", e))?;
        Ok(buf)
    }

    fn block(&self, blkaddr: u32) -> Result<u64> {
        u64::from(blkaddr)
            .checked_mul(self.blksz)
            .ok_or_else(|| malformed(0, "block address overflow"))
    }

    fn inode_at(&self, nid: u64) -> Result<u64> {
        nid.checked_mul(32)
            .and_then(|o| o.checked_add(u64::from(self.sb.meta_blkaddr).checked_mul(self.blksz)?))
            .ok_or_else(|| malformed(0, format!("nid {nid} is out of range")))
    }
}

/// One inode as read.
struct Raw {
    at: u64,
    disk: DiskInode,
    meta: Meta,
    xattrs: Vec<Xattr>,
    /// Where the data after the inode and its xattrs starts.
    after: u64,
}

/// Reads an EROFS image into a tree; file data stays in the image where it
/// is stored as it is, and is decompressed into memory otherwise.
///
/// # Errors
///
/// [`Error::Malformed`] for anything the image does not hold as EROFS
/// lays it out, or a feature this reader does not know.
pub fn read(image: Backing) -> Result<Tree> {
    let len = image.len();
    let mut head = vec![0u8; SuperBlock::SIZE];
    image
        .read_at(EROFS_SUPER_OFFSET, &mut head)
        .map_err(|_| malformed(EROFS_SUPER_OFFSET, "no erofs superblock"))?;
    let sb = SuperBlock::parse(&head).ok_or_else(|| malformed(EROFS_SUPER_OFFSET, "short"))?;
    if sb.magic != EROFS_SUPER_MAGIC_V1 {
        return Err(malformed(EROFS_SUPER_OFFSET, "no erofs magic"));
    }
    if !(9..=16).contains(&sb.blkszbits) {
        return Err(malformed(
            EROFS_SUPER_OFFSET + 12,
            format!("block size 2^{} (512 to 65536 expected)", sb.blkszbits),
        ));
    }
    let blksz = 1u64 << sb.blkszbits;
    let unknown = sb.feature_incompat & !KNOWN_INCOMPAT;
    if unknown != 0 {
        return Err(malformed(
            EROFS_SUPER_OFFSET + 80,
            format!("incompatible features {unknown:#x} this reader does not know"),
        ));
    }
    let mut img = Image {
        backing: image,
        len,
        blksz,
        sb,
        budget: len.saturating_mul(MAX_RATIO),
    };
    if img.sb.feature_compat & EROFS_FEATURE_COMPAT_SB_CHKSUM != 0 {
        let n = if blksz > EROFS_SUPER_OFFSET {
            blksz - EROFS_SUPER_OFFSET
        } else {
            blksz
        };
        let mut block = img.bytes(EROFS_SUPER_OFFSET, n)?;
        block[4..8].fill(0);
        let crc = !crc32c::crc32c(&block);
        if crc != img.sb.checksum {
            return Err(malformed(
                EROFS_SUPER_OFFSET + 4,
                format!(
                    "superblock checksum {:#010x}, computed {crc:#010x}",
                    img.sb.checksum
                ),
            ));
        }
    }
    walk(&mut img)
}

fn walk(img: &mut Image) -> Result<Tree> {
    let root_nid = u64::from(img.sb.root_nid);
    let root = read_inode(img, root_nid)?;
    if Kind::from_mode(u32::from(root.disk.i_mode)) != Some(Kind::Dir) {
        return Err(malformed(root.at, "the root inode is not a directory"));
    }
    let mut tree = TreeBuilder::new(root.meta);
    let mut top = Inode::dir(root.meta);
    top.xattrs = root.xattrs.clone();
    tree.insert(b"", top, Replace::Always)
        .map_err(|e| malformed(root.at, e.to_string()))?;
    let mut dirs_seen = HashSet::from([root_nid]);
    let mut first_names: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut stack: Vec<(Vec<u8>, Raw)> = vec![(Vec::new(), root)];
    while let Some((path, dir)) = stack.pop() {
        let data = file_bytes(img, &dir)?;
        for (name, nid) in dirents(&data, img.blksz, dir.at)? {
            if name == b"." || name == b".." {
                continue;
            }
            let mut child = path.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&name);
            if child.len() > PATH_MAX {
                return Err(malformed(
                    dir.at,
                    format!("a path is longer than {PATH_MAX} bytes"),
                ));
            }
            let place = |e: Error| malformed(dir.at, format!("{}: {e}", display_path(&child)));
            if let Some(first) = first_names.get(&nid) {
                tree.hard_link(&child, first).map_err(place)?;
                continue;
            }
            let raw = read_inode(img, nid)?;
            let kind = Kind::from_mode(u32::from(raw.disk.i_mode))
                .ok_or_else(|| malformed(raw.at, format!("mode {:#o}", raw.disk.i_mode)))?;
            if kind == Kind::Dir {
                if !dirs_seen.insert(nid) {
                    return Err(malformed(
                        raw.at,
                        format!(
                            "{}: a directory is reached twice (a loop or a linked directory)",
                            display_path(&child)
                        ),
                    ));
                }
                let mut inode = Inode::dir(raw.meta);
                inode.xattrs = raw.xattrs.clone();
                tree.insert(&child, inode, Replace::Always).map_err(place)?;
                stack.push((child, raw));
                continue;
            }
            let content = match kind {
                Kind::File => Content::File(file_data(img, &raw)?),
                Kind::Symlink => Content::Symlink(file_bytes(img, &raw)?.into()),
                Kind::CharDev | Kind::BlockDev => {
                    let (major, minor) = decode_dev(raw.disk.i_u);
                    if kind == Kind::CharDev {
                        Content::CharDev { major, minor }
                    } else {
                        Content::BlockDev { major, minor }
                    }
                }
                Kind::Fifo => Content::Fifo,
                Kind::Socket | Kind::Dir => Content::Socket,
            };
            let mut inode = Inode::new(raw.meta, content);
            inode.xattrs = raw.xattrs;
            tree.insert(&child, inode, Replace::Always).map_err(place)?;
            first_names.insert(nid, child);
        }
    }
    Ok(tree.finish())
}

/// The kernel's `new_decode_dev`.
fn decode_dev(dev: u32) -> (u32, u32) {
    ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))
}

fn read_inode(img: &Image, nid: u64) -> Result<Raw> {
    let at = img.inode_at(nid)?;
    let avail = img.len.saturating_sub(at).min(64);
    let bytes = img.bytes(at, avail)?;
    let disk = DiskInode::decode(&mut RecordReader::new(&bytes))
        .ok_or_else(|| malformed(at, "a truncated inode"))?;
    let isize = disk.size_on_disk() as u64;
    let mtime = if disk.extended() {
        Time {
            sec: disk.i_mtime as i64,
            nsec: disk.i_mtime_nsec,
        }
    } else {
        Time {
            sec: img.sb.build_time as i64,
            nsec: img.sb.build_time_nsec,
        }
    };
    if mtime.nsec >= 1_000_000_000 {
        return Err(malformed(at, format!("nanoseconds {}", mtime.nsec)));
    }
    let meta = Meta::new(disk.i_mode & 0o7777, disk.i_uid, disk.i_gid, mtime);
    let xsize = if disk.i_xattr_icount == 0 {
        0
    } else {
        XattrIbodyHeader::SIZE as u64 + 4 * (u64::from(disk.i_xattr_icount) - 1)
    };
    let xstart = at + isize;
    let xattrs = if xsize > 0 {
        read_xattrs(img, xstart, xsize)?
    } else {
        Vec::new()
    };
    Ok(Raw {
        at,
        disk,
        meta,
        xattrs,
        after: xstart + xsize,
    })
}

fn read_xattrs(img: &Image, at: u64, size: u64) -> Result<Vec<Xattr>> {
    let body = img.bytes(at, size)?;
    let mut r = RecordReader::new(&body);
    let h = XattrIbodyHeader::decode(&mut r).ok_or_else(|| malformed(at, "short xattr header"))?;
    let mut out = Vec::new();
    for _ in 0..h.h_shared_count {
        let id = r
            .le32()
            .ok_or_else(|| malformed(at, "short shared xattr ids"))?;
        let base = img.block(img.sb.xattr_blkaddr)?;
        let pos = base
            .checked_add(u64::from(id) * 4)
            .ok_or_else(|| malformed(at, "shared xattr id out of range"))?;
        let head = img.bytes(pos, 4)?;
        let e = XattrEntry::parse(&head).ok_or_else(|| malformed(pos, "short xattr"))?;
        let len = u64::from(e.e_name_len) + u64::from(e.e_value_size);
        let rest = img.bytes(pos + 4, len)?;
        push_xattr(&mut out, e, &rest, pos)?;
    }
    while !r.rest().is_empty() {
        let pos = at + (body.len() - r.rest().len()) as u64;
        let e = XattrEntry::decode(&mut r).ok_or_else(|| malformed(pos, "short xattr entry"))?;
        let len = usize::from(e.e_name_len) + usize::from(e.e_value_size);
        let rest = r
            .bytes(len)
            .ok_or_else(|| malformed(pos, "xattr entry runs past its inode's xattrs"))?;
        push_xattr(&mut out, e, rest, pos)?;
        let pad = (4 + len).next_multiple_of(4) - (4 + len);
        r.skip(pad.min(r.rest().len()));
    }
    out.sort();
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}

fn push_xattr(out: &mut Vec<Xattr>, e: XattrEntry, rest: &[u8], pos: u64) -> Result<()> {
    let (name, value) = rest.split_at(usize::from(e.e_name_len).min(rest.len()));
    let full = full_name(e.e_name_index, name)
        .ok_or_else(|| malformed(pos, format!("xattr name index {}", e.e_name_index)))?;
    out.push(Xattr {
        name: full.into(),
        value: value.into(),
    });
    Ok(())
}

/// A regular file's data: in place when it is one run of blocks.
fn file_data(img: &mut Image, raw: &Raw) -> Result<FileData> {
    let size = raw.disk.i_size;
    if raw.disk.datalayout() == EROFS_INODE_FLAT_PLAIN && size > 0 {
        let start = img.block(raw.disk.i_u)?;
        return FileData::range(img.backing.clone(), start, size)
            .ok_or_else(|| malformed(raw.at, "file data past the image's end"));
    }
    let bytes = file_bytes(img, raw)?;
    Ok(FileData::bytes(Arc::<[u8]>::from(bytes)))
}

/// An inode's data, whatever its layout.
fn file_bytes(img: &mut Image, raw: &Raw) -> Result<Vec<u8>> {
    let size = raw.disk.i_size;
    let blksz = img.blksz;
    match raw.disk.datalayout() {
        EROFS_INODE_FLAT_PLAIN => {
            if size == 0 {
                return Ok(Vec::new());
            }
            img.bytes(img.block(raw.disk.i_u)?, size)
        }
        EROFS_INODE_FLAT_INLINE => {
            let blocks = size.div_ceil(blksz);
            let full = blocks.saturating_sub(1) * blksz;
            let tail = size - full;
            if raw.after % blksz + tail > blksz {
                return Err(malformed(raw.after, "an inline tail crosses a block"));
            }
            let mut out = if full > 0 {
                img.bytes(img.block(raw.disk.i_u)?, full)?
            } else {
                Vec::new()
            };
            out.extend_from_slice(&img.bytes(raw.after, tail)?);
            Ok(out)
        }
        EROFS_INODE_COMPRESSED_FULL | EROFS_INODE_COMPRESSED_COMPACT => decompress_file(img, raw),
        other => Err(malformed(
            raw.at,
            format!("data layout {other} is not read"),
        )),
    }
}

fn decompress_file(img: &mut Image, raw: &Raw) -> Result<Vec<u8>> {
    let size = raw.disk.i_size;
    if size > img.budget {
        return Err(malformed(
            raw.at,
            format!("a compressed file of {size} bytes in a small image"),
        ));
    }
    img.budget -= size;
    let blksz = img.blksz;
    let hpos = raw.after.next_multiple_of(8);
    let header = MapHeader::parse(&img.bytes(hpos, 8)?)
        .ok_or_else(|| malformed(hpos, "short map header"))?;
    if header.h_clusterbits & 7 != 0 || header.h_advise & !0x7 != 0 {
        return Err(malformed(
            hpos,
            format!(
                "map header advise {:#x}, cluster bits {}",
                header.h_advise, header.h_clusterbits
            ),
        ));
    }
    let algorithm = header.h_algorithmtype & 0xf;
    let nl = usize::try_from(size.div_ceil(blksz)).map_err(|_| malformed(hpos, "too large"))?;
    let bits = blksz.trailing_zeros();
    let lcs = if raw.disk.datalayout() == EROFS_INODE_COMPRESSED_FULL {
        let start = full_index_start(raw.after).ok_or_else(|| malformed(hpos, "overflow"))?;
        let len = u64::try_from(nl).ok().and_then(|n| n.checked_mul(8));
        let raw_ix = img.bytes(start, len.ok_or_else(|| malformed(start, "overflow"))?)?;
        let ix: Vec<LclusterIndex> = raw_ix
            .chunks_exact(8)
            .filter_map(LclusterIndex::parse)
            .collect();
        zmap::decode_full(&ix)
    } else {
        let ebase = hpos + MapHeader::SIZE as u64;
        let two_b = header.h_advise & Z_EROFS_ADVISE_COMPACTED_2B != 0;
        let (fits, two_fits) = zmap::compact_fits(bits);
        if !fits || (two_b && !two_fits) {
            return Err(malformed(hpos, "compact indexes for this lcluster size"));
        }
        let len = zmap::compact_len(ebase, nl, two_b);
        let bytes = img.bytes(ebase, len as u64)?;
        let big = header.h_advise & Z_EROFS_ADVISE_BIG_PCLUSTER_1 != 0;
        zmap::decode_compact(&bytes, ebase, nl, two_b, big, bits)
    }
    .ok_or_else(|| malformed(hpos, "bad lcluster indexes"))?;
    // Heads: (logical start, plain, blkaddr, blocks).
    let mut heads = Vec::new();
    for (lcn, l) in lcs.iter().enumerate() {
        if let Lcluster::Head {
            plain,
            clusterofs,
            blkaddr,
        } = *l
        {
            if u64::from(clusterofs) >= blksz {
                return Err(malformed(hpos, "cluster offset past its lcluster"));
            }
            let blocks = match lcs.get(lcn + 1) {
                Some(Lcluster::NonHead { delta0, .. }) if delta0 & Z_EROFS_LI_D0_CBLKCNT != 0 => {
                    u64::from(delta0 & !Z_EROFS_LI_D0_CBLKCNT)
                }
                _ => 1,
            };
            heads.push((
                lcn as u64 * blksz + u64::from(clusterofs),
                plain,
                blkaddr,
                blocks,
            ));
        }
    }
    // mkfs.erofs ends a file that stops inside its last lcluster with a
    // head at the end of the data: nothing starts there.
    heads.retain(|h| h.0 < size);
    let start = hpos;
    if heads.first().map(|h| h.0) != Some(0) {
        return Err(malformed(
            start,
            "the first lcluster is not a head at offset 0",
        ));
    }
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    for (k, &(lstart, plain, blkaddr, blocks)) in heads.iter().enumerate() {
        let end = heads.get(k + 1).map_or(size, |h| h.0).min(size);
        if end <= lstart {
            return Err(malformed(start, "extents out of order"));
        }
        let len =
            usize::try_from(end - lstart).map_err(|_| malformed(start, "extent too large"))?;
        let pcl = img.bytes(
            img.block(blkaddr)?,
            blocks
                .checked_mul(blksz)
                .ok_or_else(|| malformed(start, "overflow"))?,
        )?;
        if plain {
            let part = pcl
                .get(..len)
                .ok_or_else(|| malformed(start, "a plain extent longer than its pcluster"))?;
            out.extend_from_slice(part);
        } else {
            let skip = pcl.iter().position(|&b| b != 0).unwrap_or(pcl.len());
            let data = decompress(algorithm, &pcl[skip..], len).ok_or_else(|| {
                malformed(
                    img.block(blkaddr).unwrap_or(0),
                    format!(
                        "a pcluster does not decompress (algorithm {algorithm}) to {len} bytes"
                    ),
                )
            })?;
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// A directory's entries, as (name, nid), checked against its blocks.
fn dirents(data: &[u8], blksz: u64, at: u64) -> Result<Vec<(Vec<u8>, u64)>> {
    let mut out = Vec::new();
    let bs = usize::try_from(blksz).map_err(|_| malformed(at, "block size"))?;
    for block in data.chunks(bs) {
        let first = Dirent::parse(block).ok_or_else(|| malformed(at, "a short directory block"))?;
        let n = usize::from(first.nameoff) / Dirent::SIZE;
        if n == 0
            || usize::from(first.nameoff) % Dirent::SIZE != 0
            || usize::from(first.nameoff) >= block.len()
        {
            return Err(malformed(
                at,
                format!("a directory block's first name offset {}", first.nameoff),
            ));
        }
        let mut ents = Vec::with_capacity(n);
        for i in 0..n {
            let d = Dirent::parse(&block[i * Dirent::SIZE..])
                .ok_or_else(|| malformed(at, "short dirent"))?;
            ents.push(d);
        }
        for (i, d) in ents.iter().enumerate() {
            let s = usize::from(d.nameoff);
            let e = ents
                .get(i + 1)
                .map_or(block.len(), |n| usize::from(n.nameoff));
            let name = block
                .get(s..e)
                .filter(|_| s < e)
                .ok_or_else(|| malformed(at, "directory names out of order"))?;
            let name = if i + 1 == n {
                let z = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                &name[..z]
            } else {
                name
            };
            if name.is_empty()
                || name.len() > crate::NAME_MAX
                || name.contains(&b'/')
                || name.contains(&0)
            {
                return Err(malformed(at, format!("a bad name {}", display_path(name))));
            }
            out.push((name.to_vec(), d.nid));
        }
    }
    Ok(out)
}
