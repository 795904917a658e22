//! The 96-byte superblock, as the writer fills it in and the reader finds
//! it: one layout for both (`struct squashfs_super_block`).

use rootforge_common::bytes::{RecordReader, RecordWriter};

/// `SQUASHFS_MAGIC`: `hsqs` on disk.
pub(crate) const MAGIC: u32 = 0x7371_7368;
/// The superblock's size on disk.
pub(crate) const SUPERBLOCK_SIZE: usize = 96;

/// The superblock's fields after the magic, in their on-disk order; the
/// kernel's names are in each field's doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Superblock {
    /// `inodes`: the number of inodes.
    pub(crate) inode_count: u32,
    /// `mkfs_time`: the image's time, in seconds since 1970.
    pub(crate) mod_time: u32,
    /// `block_size`: the data block size, a power of two from 4 KiB to 1 MiB.
    pub(crate) block_size: u32,
    /// `fragments`: the number of fragment blocks.
    pub(crate) frag_count: u32,
    /// `compression`: the compressor id (1 gzip, 3 lzo, 4 xz, 5 lz4, 6 zstd).
    pub(crate) compressor: u16,
    /// `block_log`: log2 of `block_size`; the reader checks the two agree.
    pub(crate) block_log: u16,
    /// `flags`: the `SQUASHFS_*` flag bits.
    pub(crate) flags: u16,
    /// `no_ids`: the number of entries of the uid/gid table.
    pub(crate) id_count: u16,
    /// `s_major`, `s_minor`: the format version, 4.0.
    pub(crate) version: (u16, u16),
    /// `root_inode`: the root inode's reference (block << 16 | offset).
    pub(crate) root: u64,
    /// `bytes_used`: the image's length before padding.
    pub(crate) bytes_used: u64,
    /// `id_table_start`: the uid/gid table's block positions.
    pub(crate) id_table: u64,
    /// `xattr_id_table_start`: the xattr table's header, or `u64::MAX`.
    pub(crate) xattr_table: u64,
    /// `inode_table_start`: the inode table's first metadata block.
    pub(crate) inode_table: u64,
    /// `directory_table_start`: the directory table's first block.
    pub(crate) dir_table: u64,
    /// `fragment_table_start`: the fragment table's block positions.
    pub(crate) frag_table: u64,
    /// `lookup_table_start`: the export table's block positions, or
    /// `u64::MAX`.
    pub(crate) export_table: u64,
}

impl Superblock {
    /// The 96 bytes of the superblock.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_capacity(SUPERBLOCK_SIZE);
        w.le32(MAGIC)
            .le32(self.inode_count)
            .le32(self.mod_time)
            .le32(self.block_size)
            .le32(self.frag_count)
            .le16(self.compressor)
            .le16(self.block_log)
            .le16(self.flags)
            .le16(self.id_count)
            .le16(self.version.0)
            .le16(self.version.1);
        for v in self.tables() {
            w.le64(v);
        }
        w.into_bytes()
    }

    /// The fields of `b`, if it is long enough and starts with the magic;
    /// nothing else is checked here.
    pub(crate) fn decode(b: &[u8]) -> Option<Superblock> {
        let mut r = RecordReader::new(b);
        if r.le32()? != MAGIC {
            return None;
        }
        Some(Superblock {
            inode_count: r.le32()?,
            mod_time: r.le32()?,
            block_size: r.le32()?,
            frag_count: r.le32()?,
            compressor: r.le16()?,
            block_log: r.le16()?,
            flags: r.le16()?,
            id_count: r.le16()?,
            version: (r.le16()?, r.le16()?),
            root: r.le64()?,
            bytes_used: r.le64()?,
            id_table: r.le64()?,
            xattr_table: r.le64()?,
            inode_table: r.le64()?,
            dir_table: r.le64()?,
            frag_table: r.le64()?,
            export_table: r.le64()?,
        })
    }

    /// The eight 64-bit fields from `root` on, in their on-disk order.
    fn tables(&self) -> [u64; 8] {
        [
            self.root,
            self.bytes_used,
            self.id_table,
            self.xattr_table,
            self.inode_table,
            self.dir_table,
            self.frag_table,
            self.export_table,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_decode_agree() {
        let sb = Superblock {
            inode_count: 1,
            mod_time: 2,
            block_size: 1 << 17,
            frag_count: 3,
            compressor: 4,
            block_log: 17,
            flags: 0x0400,
            id_count: 5,
            version: (4, 0),
            root: 6,
            bytes_used: 7,
            id_table: 8,
            xattr_table: u64::MAX,
            inode_table: 9,
            dir_table: 10,
            frag_table: 11,
            export_table: 12,
        };
        let b = sb.encode();
        assert_eq!(&b[..4], b"hsqs");
        assert_eq!(b[28..32], [4, 0, 0, 0]);
        assert_eq!(Superblock::decode(&b), Some(sb));
        assert_eq!(Superblock::decode(&b[..95]), None);
        let mut bad = b.clone();
        bad[0] = b'x';
        assert_eq!(Superblock::decode(&bad), None);
    }
}
