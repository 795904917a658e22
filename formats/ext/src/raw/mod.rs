//! The on-disk records, one type per structure of the kernel's
//! `fs/ext4/ext4.h`, `fs/ext4/xattr.h` and `include/linux/jbd2.h`, with
//! the fields named as there: the superblock and group descriptor
//! ([`superblock`]), the inode ([`inode`]), directory entries and the
//! htree index ([`dir`]), extent headers, indexes and leaves ([`extent`]),
//! xattr headers and entries ([`xattr`]) and the jbd2 superblock
//! ([`journal`]).
//!
//! Each record writes itself in field order with a [`RecordWriter`]
//! (`encode`) and reads itself back with a [`RecordReader`] (`decode`), so
//! the writer and the reader share one layout. What follows a record (a
//! name, a value) depends on its fields, so the caller writes and reads
//! it, as the kernel does.

use rootforge_common::bytes::{RecordReader, RecordWriter};

pub(crate) mod dir;
pub(crate) mod extent;
pub(crate) mod inode;
pub(crate) mod journal;
pub(crate) mod superblock;
pub(crate) mod xattr;

/// A record's fixed-size part, encoded and decoded field by field.
pub(crate) trait Record: Sized {
    /// Its size on disk.
    const SIZE: usize;
    /// Appends the record.
    fn encode(&self, w: &mut RecordWriter);
    /// The record at the reader, or `None` when the input is too short,
    /// which the caller reports as a corrupt image where it is.
    fn decode(r: &mut RecordReader<'_>) -> Option<Self>;

    /// The record as bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_capacity(Self::SIZE);
        self.encode(&mut w);
        w.into_bytes()
    }

    /// The record at the start of `bytes`, if they hold it.
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Self::decode(&mut RecordReader::new(bytes))
    }
}

/// Encodes `le32` words in order.
pub(crate) fn le32s(w: &mut RecordWriter, words: &[u32]) {
    for &v in words {
        w.le32(v);
    }
}

/// Decodes `N` `le32` words.
pub(crate) fn read_le32s<const N: usize>(r: &mut RecordReader<'_>) -> Option<[u32; N]> {
    let mut out = [0u32; N];
    for v in &mut out {
        *v = r.le32()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::dir::{DirEntry2, DirEntryTail, DxCountLimit, DxEntry, DxRootInfo, DxTail};
    use super::extent::{Extent, ExtentHeader, ExtentIdx, ExtentTail};
    use super::inode::{Ext4Inode, Ext4InodeExtra};
    use super::journal::JournalSuperblock;
    use super::superblock::{GroupDesc, GroupDescHi, SuperBlock};
    use super::xattr::{XattrEntry, XattrHeader, XattrIbodyHeader};
    use super::*;

    /// Every record is `SIZE` bytes, reads back as itself, and a cut one
    /// reads as `None`.
    fn round_trip<T: Record + PartialEq + std::fmt::Debug>(record: T) {
        let b = record.to_bytes();
        assert_eq!(b.len(), T::SIZE);
        assert_eq!(T::from_bytes(&b), Some(record));
        assert_eq!(T::from_bytes(&b[..T::SIZE - 1]), None);
    }

    #[test]
    fn records_round_trip() {
        let mut sb = SuperBlock {
            s_inodes_count: 1,
            s_magic: 0xEF53,
            s_checksum: 9,
            ..SuperBlock::default()
        };
        sb.s_uuid[3] = 7;
        sb.s_jnl_blocks[16] = 5;
        round_trip(sb);
        round_trip(GroupDesc {
            bg_inode_table_lo: 3,
            bg_checksum: 4,
            ..GroupDesc::default()
        });
        round_trip(GroupDescHi {
            bg_inode_table_hi: 3,
            ..GroupDescHi::default()
        });
        let mut i = Ext4Inode {
            i_mode: 0o100644,
            l_i_checksum_lo: 2,
            ..Ext4Inode::default()
        };
        i.i_block[59] = 1;
        round_trip(i);
        round_trip(Ext4InodeExtra {
            i_extra_isize: 32,
            i_projid: 1,
            ..Ext4InodeExtra::default()
        });
        round_trip(DirEntry2 {
            inode: 2,
            rec_len: 12,
            name_len: 1,
            file_type: 2,
        });
        round_trip(DirEntryTail { det_checksum: 1 });
        round_trip(DxRootInfo {
            hash_version: 1,
            indirect_levels: 1,
        });
        round_trip(DxCountLimit {
            limit: 3,
            count: 2,
            block: 1,
        });
        round_trip(DxEntry { hash: 4, block: 5 });
        round_trip(DxTail { dt_checksum: 6 });
        round_trip(ExtentHeader {
            eh_entries: 1,
            eh_max: 4,
            eh_depth: 0,
        });
        round_trip(Extent {
            ee_block: 1,
            ee_len: 2,
            ee_start_hi: 3,
            ee_start_lo: 4,
        });
        round_trip(ExtentIdx {
            ei_block: 1,
            ei_leaf_lo: 2,
            ei_leaf_hi: 3,
        });
        round_trip(ExtentTail { et_checksum: 1 });
        round_trip(XattrHeader {
            h_hash: 1,
            h_checksum: 2,
            ..XattrHeader::default()
        });
        round_trip(XattrIbodyHeader::default());
        round_trip(XattrEntry {
            e_name_len: 1,
            e_name_index: 2,
            e_value_offs: 3,
            e_value_inum: 0,
            e_value_size: 4,
            e_hash: 5,
        });
        round_trip(JournalSuperblock {
            s_blocksize: 4096,
            s_maxlen: 1024,
            ..JournalSuperblock::default()
        });
    }
}
