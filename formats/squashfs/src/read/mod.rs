//! The SquashFS 4.0 reader, following the Linux kernel (`fs/squashfs`) and
//! squashfs-tools, so that it reads mksquashfs images as well as ours.
//!
//! The superblock, the inode, directory and xattr tables and the lookup
//! tables are decoded when the image is opened, each bounded by the next
//! table's start, so what they unpack to is bounded by the image's size
//! (at most 8 KiB per 3 bytes of metadata block). File contents
//! stay compressed: every regular file is a [`Blob`] that decompresses the
//! blocks a read touches, so a large image costs its metadata in memory,
//! not its unpacked size. A malformed table is an [`Error::Malformed`] from
//! [`read`]; a corrupt data block is an I/O error when it is read.
//!
//! [`meta`] unpacks metadata blocks and tables, [`inode`] decodes inodes,
//! [`walk`] follows the directories from the root, [`file`] reads file
//! data and [`xattr`] an inode's xattrs.
//!
//! [`Blob`]: rootforge_common::Blob

mod codec;
mod file;
mod inode;
mod meta;
mod walk;
mod xattr;

use std::cell::Cell;
use std::sync::{Arc, Mutex};

use rootforge_common::bytes::{RecordReader, le16_at, le32_at, le64_at};
use rootforge_common::{Backing, Error, Result, Tree};

use crate::meta::META_SIZE;
use crate::records::{FragmentEntry, Record, XattrId, XattrIdTable};
use crate::superblock::{MAGIC, SUPERBLOCK_SIZE, Superblock};
use crate::{BLOCK_RAW, FORMAT, NONE64};
use codec::Codec;
use file::Shared;
use meta::{Image, Table};

/// Xattr bytes (names and values) the tree may hold beyond 4 per image
/// byte: shared xattr sets are copied into every inode that uses them.
const XATTR_BUDGET: u64 = 64 << 20;

fn malformed(offset: u64, reason: impl Into<String>) -> Error {
    Error::malformed(FORMAT, offset, reason)
}

/// Whether `data` starts with a SquashFS 4.0 superblock.
pub fn is_squashfs(data: &[u8]) -> bool {
    data.len() >= SUPERBLOCK_SIZE
        && le32_at(data, 0) == Some(MAGIC)
        && le16_at(data, 28) == Some(4)
        && le16_at(data, 30) == Some(0)
}

/// The superblock at the start of `b`, checked for what the reader relies on.
fn parse_superblock(b: &[u8], image_len: u64) -> Result<Superblock> {
    let sb =
        Superblock::decode(b).ok_or_else(|| malformed(0, "no squashfs superblock (magic hsqs)"))?;
    let (major, minor) = sb.version;
    if (major, minor) != (4, 0) {
        return Err(malformed(
            28,
            format!("version {major}.{minor}; only 4.0 is read"),
        ));
    }
    let bs = sb.block_size;
    if !bs.is_power_of_two() || !(4096..=1 << 20).contains(&bs) {
        return Err(malformed(
            12,
            format!("block size {bs} (a power of two from 4 KiB to 1 MiB expected)"),
        ));
    }
    let log = sb.block_log;
    if u32::from(log) != bs.trailing_zeros() {
        return Err(malformed(
            22,
            format!("block log {log} does not match block size {bs}"),
        ));
    }
    if sb.bytes_used < SUPERBLOCK_SIZE as u64 || sb.bytes_used > image_len {
        return Err(malformed(
            40,
            format!(
                "{} bytes used, but the image holds {image_len}",
                sb.bytes_used
            ),
        ));
    }
    if sb.id_count == 0 {
        return Err(malformed(26, "no uid/gid table entries"));
    }
    if sb.root & 0xffff >= META_SIZE as u64 {
        return Err(malformed(32, "root inode offset past its metadata block"));
    }
    if !(sb.inode_table < sb.dir_table && sb.dir_table <= sb.bytes_used) {
        return Err(malformed(
            64,
            format!(
                "inode table at {} and directory table at {} are out of order \
                     or past the end",
                sb.inode_table, sb.dir_table
            ),
        ));
    }
    Ok(sb)
}

/// Everything decoded at open time.
struct Reader {
    shared: Arc<Shared>,
    inodes: Table,
    dirs: Table,
    ids: Vec<u32>,
    xattr_kv: Option<Table>,
    xattr_ids: Vec<XattrId>,
    /// Xattr bytes the tree may still take.
    xattr_budget: Cell<u64>,
}

/// Reads a SquashFS 4.0 image into a tree. Regular files decompress their
/// blocks from `image` when read; nothing else of the image is kept.
///
/// As the kernel: names under one inode are hard links of it, and a
/// directory's `.`/`..` are implied, never stored. Tables must lie where the
/// superblock says, in the kernel's order; directories must form a tree
/// (a directory reached twice is an error), and paths are at most 4096
/// bytes. Images compressed with lzma (id 2), which only squashfs-tools
/// reads, are refused.
pub fn read(image: Backing) -> Result<Tree> {
    let head = {
        let mut b = vec![0u8; SUPERBLOCK_SIZE.min(usize::try_from(image.len()).unwrap_or(0))];
        image
            .read_at(0, &mut b)
            .map_err(|e| Error::io("reading the squashfs superblock", e))?;
        b
    };
    let sb = parse_superblock(&head, image.len())?;
    let image = Image {
        backing: image,
        end: sb.bytes_used,
        codec: Codec::from_id(sb.compressor)?,
        block_size: sb.block_size,
    };
    let reader = Reader::open(image, &sb)?;
    reader.walk(sb.root)
}

impl Reader {
    fn open(image: Image, sb: &Superblock) -> Result<Reader> {
        let (id_bytes, id_first) =
            image.lookup("uid/gid table", sb.id_table, u64::from(sb.id_count), 4)?;
        let mut ids = Vec::with_capacity(id_bytes.len() / 4);
        let mut r = RecordReader::new(&id_bytes);
        while let Some(id) = r.le32() {
            ids.push(id);
        }
        // Where each table's blocks begin: the directory table runs to the
        // first of them after it.
        let mut starts = vec![sb.id_table, id_first, sb.bytes_used];
        let mut fragments = Vec::new();
        if sb.frag_count > 0 {
            let (bytes, first) = image.lookup(
                "fragment table",
                sb.frag_table,
                u64::from(sb.frag_count),
                FragmentEntry::SIZE as u64,
            )?;
            let mut r = RecordReader::new(&bytes);
            while let Some(frag) = FragmentEntry::decode(&mut r) {
                let i = fragments.len();
                let len = frag.size & !BLOCK_RAW;
                if len == 0
                    || len > sb.block_size
                    || frag.start_block.saturating_add(u64::from(len)) > sb.bytes_used
                {
                    return Err(malformed(
                        first,
                        format!(
                            "fragment {i}: {len} bytes at {} do not fit a block or the image",
                            frag.start_block
                        ),
                    ));
                }
                fragments.push(frag);
            }
            starts.extend([sb.frag_table, first]);
        }
        if sb.export_table != NONE64 {
            let index = image.bytes(sb.export_table, 8, "export table index")?;
            let first = le64_at(&index, 0).unwrap_or_default();
            starts.extend([sb.export_table, first]);
        }
        let mut xattr_kv = None;
        let mut xattr_ids = Vec::new();
        if sb.xattr_table != NONE64 {
            let header = image.bytes(sb.xattr_table, XattrIdTable::SIZE, XattrIdTable::NAME)?;
            let XattrIdTable {
                xattr_table_start: kv_start,
                xattr_ids: count,
            } = XattrIdTable::decode(&mut RecordReader::new(&header))
                .ok_or_else(|| malformed(sb.xattr_table, "a short xattr table header"))?;
            let ids_index = sb
                .xattr_table
                .checked_add(XattrIdTable::SIZE as u64)
                .ok_or_else(|| malformed(sb.xattr_table, "an xattr table past the image"))?;
            let (bytes, first) = image.lookup(
                "xattr id table",
                ids_index,
                u64::from(count),
                XattrId::SIZE as u64,
            )?;
            if count == 0 {
                return Err(malformed(sb.xattr_table, "an xattr table without ids"));
            }
            if kv_start > first {
                return Err(malformed(
                    sb.xattr_table,
                    format!("xattr pairs at {kv_start} start after their ids at {first}"),
                ));
            }
            xattr_kv = Some(image.table("xattr table", kv_start, first)?);
            // The size field is informational; the pairs are counted.
            let mut r = RecordReader::new(&bytes);
            while let Some(id) = XattrId::decode(&mut r) {
                xattr_ids.push(id);
            }
            starts.extend([sb.xattr_table, kv_start]);
        }
        let dir_end = starts
            .into_iter()
            .filter(|&s| s >= sb.dir_table)
            .min()
            .unwrap_or(sb.bytes_used);
        let inodes = image.table("inode table", sb.inode_table, sb.dir_table)?;
        let dirs = image.table("directory table", sb.dir_table, dir_end)?;
        let xattr_budget = image.end.saturating_mul(4).saturating_add(XATTR_BUDGET);
        Ok(Reader {
            shared: Arc::new(Shared {
                image,
                fragments,
                cache: Mutex::new(Vec::new()),
            }),
            inodes,
            dirs,
            ids,
            xattr_kv,
            xattr_ids,
            xattr_budget: Cell::new(xattr_budget),
        })
    }
}

#[cfg(test)]
mod tests;
