//! Directory blocks: `struct ext4_dir_entry_2`, the checksum tail
//! `struct ext4_dir_entry_tail`, and the htree index (`struct dx_root_info`,
//! `struct dx_countlimit`, `struct dx_entry`, `struct dx_tail` of
//! `fs/ext4/namei.c`).

use rootforge_common::bytes::{RecordReader, RecordWriter};

use super::Record;

/// `struct ext4_dir_entry_2` without its name, which follows it:
/// `name_len` bytes, padded so that the next entry starts `rec_len` bytes
/// after this one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DirEntry2 {
    /// The entry's inode, 0 for an unused entry.
    pub(crate) inode: u32,
    /// Bytes from this entry to the next.
    pub(crate) rec_len: u16,
    /// The name's length.
    pub(crate) name_len: u8,
    /// The file type (`filetype` feature), else 0.
    pub(crate) file_type: u8,
}

impl Record for DirEntry2 {
    const SIZE: usize = 8;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.inode)
            .le16(self.rec_len)
            .u8(self.name_len)
            .u8(self.file_type);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(DirEntry2 {
            inode: r.le32()?,
            rec_len: r.le16()?,
            name_len: r.u8()?,
            file_type: r.u8()?,
        })
    }
}

/// `struct ext4_dir_entry_tail`: the last 12 bytes of a checksummed leaf
/// block, a fake entry of inode 0 holding the block's crc32c.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DirEntryTail {
    /// crc32c of the block up to the tail.
    pub(crate) det_checksum: u32,
}

impl DirEntryTail {
    /// `EXT4_FT_DIR_CSUM`: the file type that marks the tail.
    const DET_RESERVED_FT: u8 = 0xDE;
}

impl Record for DirEntryTail {
    const SIZE: usize = 12;

    fn encode(&self, w: &mut RecordWriter) {
        // det_reserved_zero1, det_rec_len, det_reserved_zero2, det_reserved_ft.
        w.le32(0)
            .le16(12)
            .u8(0)
            .u8(Self::DET_RESERVED_FT)
            .le32(self.det_checksum);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        r.skip(8)?;
        Some(DirEntryTail {
            det_checksum: r.le32()?,
        })
    }
}

/// `struct dx_root_info`: after the `.` and `..` entries of an htree
/// directory's first block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DxRootInfo {
    /// The hash (1: half MD4).
    pub(crate) hash_version: u8,
    /// Levels of interior nodes below the root (0 or 1 here).
    pub(crate) indirect_levels: u8,
}

impl DxRootInfo {
    /// `info_length`: the record's own size.
    const INFO_LENGTH: u8 = 8;
}

impl Record for DxRootInfo {
    const SIZE: usize = 8;

    fn encode(&self, w: &mut RecordWriter) {
        // reserved_zero, then unused_flags after the levels.
        w.le32(0)
            .u8(self.hash_version)
            .u8(Self::INFO_LENGTH)
            .u8(self.indirect_levels)
            .u8(0);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        r.skip(4)?;
        let hash_version = r.u8()?;
        r.skip(1)?;
        let indirect_levels = r.u8()?;
        r.skip(1)?;
        Some(DxRootInfo {
            hash_version,
            indirect_levels,
        })
    }
}

/// `struct dx_countlimit` with the block of the first `struct dx_entry`,
/// whose hash slot it takes: the head of an index node's entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DxCountLimit {
    /// Entries the node has room for.
    pub(crate) limit: u16,
    /// Entries in use, this one included.
    pub(crate) count: u16,
    /// The block of hashes below the second entry's.
    pub(crate) block: u32,
}

impl Record for DxCountLimit {
    const SIZE: usize = 8;

    fn encode(&self, w: &mut RecordWriter) {
        w.le16(self.limit).le16(self.count).le32(self.block);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(DxCountLimit {
            limit: r.le16()?,
            count: r.le16()?,
            block: r.le32()?,
        })
    }
}

/// `struct dx_entry`: hashes from `hash` on are in `block`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DxEntry {
    /// The least hash in the block (bit 0: the hash continues from the
    /// previous block).
    pub(crate) hash: u32,
    /// The logical block.
    pub(crate) block: u32,
}

impl Record for DxEntry {
    const SIZE: usize = 8;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.hash).le32(self.block);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(DxEntry {
            hash: r.le32()?,
            block: r.le32()?,
        })
    }
}

/// `struct dx_tail`: after `limit` entries of a checksummed index node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DxTail {
    /// crc32c of the node's entries in use and of this tail with a zero
    /// checksum.
    pub(crate) dt_checksum: u32,
}

impl Record for DxTail {
    const SIZE: usize = 8;

    fn encode(&self, w: &mut RecordWriter) {
        // dt_reserved.
        w.le32(0).le32(self.dt_checksum);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        r.skip(4)?;
        Some(DxTail {
            dt_checksum: r.le32()?,
        })
    }
}
