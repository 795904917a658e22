//! Extended attributes: `struct ext4_xattr_header` (an xattr block),
//! `struct ext4_xattr_ibody_header` (an inode's spare area) and
//! `struct ext4_xattr_entry` of `fs/ext4/xattr.h`.

use rootforge_common::bytes::{RecordReader, RecordWriter};

use super::Record;
use crate::disk::XATTR_MAGIC;

/// `struct ext4_xattr_header`: the first 32 bytes of an xattr block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XattrHeader {
    /// `0xEA020000`.
    pub(crate) h_magic: u32,
    /// Inodes sharing the block.
    pub(crate) h_refcount: u32,
    /// Blocks used (always 1).
    pub(crate) h_blocks: u32,
    /// Hash of the entries' hashes.
    pub(crate) h_hash: u32,
    /// crc32c of the block number and the block (`metadata_csum`).
    pub(crate) h_checksum: u32,
}

impl Default for XattrHeader {
    fn default() -> Self {
        XattrHeader {
            h_magic: XATTR_MAGIC,
            h_refcount: 0,
            h_blocks: 0,
            h_hash: 0,
            h_checksum: 0,
        }
    }
}

impl Record for XattrHeader {
    const SIZE: usize = 32;

    fn encode(&self, w: &mut RecordWriter) {
        // h_reserved[3] last.
        w.le32(self.h_magic)
            .le32(self.h_refcount)
            .le32(self.h_blocks)
            .le32(self.h_hash)
            .le32(self.h_checksum)
            .zeros(12);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        let h = XattrHeader {
            h_magic: r.le32()?,
            h_refcount: r.le32()?,
            h_blocks: r.le32()?,
            h_hash: r.le32()?,
            h_checksum: r.le32()?,
        };
        r.skip(12)?;
        Some(h)
    }
}

/// `struct ext4_xattr_ibody_header`: the start of the xattrs in an
/// inode's spare area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XattrIbodyHeader {
    /// `0xEA020000`.
    pub(crate) h_magic: u32,
}

impl Default for XattrIbodyHeader {
    fn default() -> Self {
        XattrIbodyHeader {
            h_magic: XATTR_MAGIC,
        }
    }
}

impl Record for XattrIbodyHeader {
    const SIZE: usize = 4;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.h_magic);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(XattrIbodyHeader { h_magic: r.le32()? })
    }
}

/// `struct ext4_xattr_entry` without its name, which follows it
/// (`e_name_len` bytes, padded to 4). A list ends at four zero bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct XattrEntry {
    /// The name's length after its prefix.
    pub(crate) e_name_len: u8,
    /// The name's prefix (1: `user.`, 2 and 3: POSIX ACLs, ...).
    pub(crate) e_name_index: u8,
    /// Where the value starts: from the first entry in an inode, from the
    /// block's start in a block.
    pub(crate) e_value_offs: u16,
    /// The inode holding the value (`ea_inode`), else 0.
    pub(crate) e_value_inum: u32,
    /// The value's length.
    pub(crate) e_value_size: u32,
    /// Hash of the name and value.
    pub(crate) e_hash: u32,
}

impl Record for XattrEntry {
    const SIZE: usize = 16;

    fn encode(&self, w: &mut RecordWriter) {
        w.u8(self.e_name_len)
            .u8(self.e_name_index)
            .le16(self.e_value_offs)
            .le32(self.e_value_inum)
            .le32(self.e_value_size)
            .le32(self.e_hash);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(XattrEntry {
            e_name_len: r.u8()?,
            e_name_index: r.u8()?,
            e_value_offs: r.le16()?,
            e_value_inum: r.le32()?,
            e_value_size: r.le32()?,
            e_hash: r.le32()?,
        })
    }
}

impl XattrEntry {
    /// The four zero bytes that end a list.
    pub(crate) fn is_end(&self) -> bool {
        self.e_name_len == 0 && self.e_name_index == 0 && self.e_value_offs == 0
    }
}
