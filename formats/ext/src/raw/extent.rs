//! Extent trees: `struct ext4_extent_header`, `struct ext4_extent_idx`,
//! `struct ext4_extent` and `struct ext4_extent_tail` of
//! `fs/ext4/ext4_extents.h`.

use rootforge_common::bytes::{RecordReader, RecordWriter};

use super::Record;
use crate::disk::EXTENT_MAGIC;

/// `struct ext4_extent_header`: the start of `i_block` and of every tree
/// block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExtentHeader {
    /// Entries in use.
    pub(crate) eh_entries: u16,
    /// Entries the node has room for.
    pub(crate) eh_max: u16,
    /// 0 for a leaf, else the levels below.
    pub(crate) eh_depth: u16,
}

impl Record for ExtentHeader {
    const SIZE: usize = 12;

    fn encode(&self, w: &mut RecordWriter) {
        // eh_magic first, eh_generation last.
        w.le16(EXTENT_MAGIC)
            .le16(self.eh_entries)
            .le16(self.eh_max)
            .le16(self.eh_depth)
            .le32(0);
    }

    /// `None` also when `eh_magic` is wrong.
    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        if r.le16()? != EXTENT_MAGIC {
            return None;
        }
        let h = ExtentHeader {
            eh_entries: r.le16()?,
            eh_max: r.le16()?,
            eh_depth: r.le16()?,
        };
        r.skip(4)?;
        Some(h)
    }
}

/// `struct ext4_extent_idx`: an interior entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExtentIdx {
    /// The first logical block below.
    pub(crate) ei_block: u32,
    /// The child node's block (low 32 bits).
    pub(crate) ei_leaf_lo: u32,
    /// The child node's block (high 16 bits).
    pub(crate) ei_leaf_hi: u16,
}

impl Record for ExtentIdx {
    const SIZE: usize = 12;

    fn encode(&self, w: &mut RecordWriter) {
        // ei_unused last.
        w.le32(self.ei_block)
            .le32(self.ei_leaf_lo)
            .le16(self.ei_leaf_hi)
            .le16(0);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        let e = ExtentIdx {
            ei_block: r.le32()?,
            ei_leaf_lo: r.le32()?,
            ei_leaf_hi: r.le16()?,
        };
        r.skip(2)?;
        Some(e)
    }
}

impl ExtentIdx {
    /// The child node's block.
    pub(crate) fn leaf(&self) -> u64 {
        (u64::from(self.ei_leaf_hi) << 32) | u64::from(self.ei_leaf_lo)
    }
}

/// `struct ext4_extent`: a leaf entry, `ee_len` blocks from `ee_block` at
/// the physical block `ee_start`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Extent {
    /// The first logical block.
    pub(crate) ee_block: u32,
    /// Blocks covered; above 32768, an unwritten extent of `ee_len - 32768`.
    pub(crate) ee_len: u16,
    /// The first physical block (high 16 bits).
    pub(crate) ee_start_hi: u16,
    /// The first physical block (low 32 bits).
    pub(crate) ee_start_lo: u32,
}

impl Record for Extent {
    const SIZE: usize = 12;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.ee_block)
            .le16(self.ee_len)
            .le16(self.ee_start_hi)
            .le32(self.ee_start_lo);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(Extent {
            ee_block: r.le32()?,
            ee_len: r.le16()?,
            ee_start_hi: r.le16()?,
            ee_start_lo: r.le32()?,
        })
    }
}

impl Extent {
    /// The first physical block.
    pub(crate) fn start(&self) -> u64 {
        (u64::from(self.ee_start_hi) << 32) | u64::from(self.ee_start_lo)
    }
}

/// `struct ext4_extent_tail`: after `eh_max` entries of a tree block
/// (`metadata_csum`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExtentTail {
    /// crc32c of the block up to the tail.
    pub(crate) et_checksum: u32,
}

impl Record for ExtentTail {
    const SIZE: usize = 4;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.et_checksum);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(ExtentTail {
            et_checksum: r.le32()?,
        })
    }
}
