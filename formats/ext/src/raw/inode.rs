//! `struct ext4_inode`: the 128 bytes every inode has, and the extra
//! fields of larger inodes.

use rootforge_common::bytes::{RecordReader, RecordWriter};

use super::Record;

/// The first 128 bytes of `struct ext4_inode` (the Linux `osd1` and `osd2`
/// unions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ext4Inode {
    /// File type and permission bits.
    pub(crate) i_mode: u16,
    /// Owner (low 16 bits).
    pub(crate) i_uid: u16,
    /// Size in bytes (low 32 bits).
    pub(crate) i_size_lo: u32,
    /// Access time.
    pub(crate) i_atime: u32,
    /// Change time.
    pub(crate) i_ctime: u32,
    /// Modification time.
    pub(crate) i_mtime: u32,
    /// Deletion time.
    pub(crate) i_dtime: u32,
    /// Group (low 16 bits).
    pub(crate) i_gid: u16,
    /// Hard links.
    pub(crate) i_links_count: u16,
    /// 512-byte sectors in use (low 32 bits).
    pub(crate) i_blocks_lo: u32,
    /// Inode flags (`EXTENTS_FL`, `INDEX_FL`).
    pub(crate) i_flags: u32,
    /// `l_i_version`.
    pub(crate) l_i_version: u32,
    /// The block map or extent tree root, a fast symlink's target, or a
    /// device number.
    pub(crate) i_block: [u8; 60],
    /// File version (NFS).
    pub(crate) i_generation: u32,
    /// The xattr block (low 32 bits).
    pub(crate) i_file_acl_lo: u32,
    /// Size in bytes (high 32 bits).
    pub(crate) i_size_high: u32,
    /// Obsolete fragment address.
    pub(crate) i_obso_faddr: u32,
    /// Sectors in use (high 16 bits, `huge_file`).
    pub(crate) l_i_blocks_high: u16,
    /// The xattr block (high 16 bits).
    pub(crate) l_i_file_acl_high: u16,
    /// Owner (high 16 bits).
    pub(crate) l_i_uid_high: u16,
    /// Group (high 16 bits).
    pub(crate) l_i_gid_high: u16,
    /// The inode's crc32c (low 16 bits).
    pub(crate) l_i_checksum_lo: u16,
    /// Reserved.
    pub(crate) l_i_reserved: u16,
}

impl Default for Ext4Inode {
    fn default() -> Self {
        Ext4Inode {
            i_mode: 0,
            i_uid: 0,
            i_size_lo: 0,
            i_atime: 0,
            i_ctime: 0,
            i_mtime: 0,
            i_dtime: 0,
            i_gid: 0,
            i_links_count: 0,
            i_blocks_lo: 0,
            i_flags: 0,
            l_i_version: 0,
            i_block: [0; 60],
            i_generation: 0,
            i_file_acl_lo: 0,
            i_size_high: 0,
            i_obso_faddr: 0,
            l_i_blocks_high: 0,
            l_i_file_acl_high: 0,
            l_i_uid_high: 0,
            l_i_gid_high: 0,
            l_i_checksum_lo: 0,
            l_i_reserved: 0,
        }
    }
}

impl Record for Ext4Inode {
    const SIZE: usize = 128;

    fn encode(&self, w: &mut RecordWriter) {
        w.le16(self.i_mode)
            .le16(self.i_uid)
            .le32(self.i_size_lo)
            .le32(self.i_atime)
            .le32(self.i_ctime)
            .le32(self.i_mtime)
            .le32(self.i_dtime)
            .le16(self.i_gid)
            .le16(self.i_links_count)
            .le32(self.i_blocks_lo)
            .le32(self.i_flags)
            .le32(self.l_i_version)
            .bytes(&self.i_block)
            .le32(self.i_generation)
            .le32(self.i_file_acl_lo)
            .le32(self.i_size_high)
            .le32(self.i_obso_faddr)
            .le16(self.l_i_blocks_high)
            .le16(self.l_i_file_acl_high)
            .le16(self.l_i_uid_high)
            .le16(self.l_i_gid_high)
            .le16(self.l_i_checksum_lo)
            .le16(self.l_i_reserved);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(Ext4Inode {
            i_mode: r.le16()?,
            i_uid: r.le16()?,
            i_size_lo: r.le32()?,
            i_atime: r.le32()?,
            i_ctime: r.le32()?,
            i_mtime: r.le32()?,
            i_dtime: r.le32()?,
            i_gid: r.le16()?,
            i_links_count: r.le16()?,
            i_blocks_lo: r.le32()?,
            i_flags: r.le32()?,
            l_i_version: r.le32()?,
            i_block: r.array()?,
            i_generation: r.le32()?,
            i_file_acl_lo: r.le32()?,
            i_size_high: r.le32()?,
            i_obso_faddr: r.le32()?,
            l_i_blocks_high: r.le16()?,
            l_i_file_acl_high: r.le16()?,
            l_i_uid_high: r.le16()?,
            l_i_gid_high: r.le16()?,
            l_i_checksum_lo: r.le16()?,
            l_i_reserved: r.le16()?,
        })
    }
}

impl Ext4Inode {
    /// The size in bytes.
    pub(crate) fn size(&self) -> u64 {
        u64::from(self.i_size_lo) | (u64::from(self.i_size_high) << 32)
    }

    /// The xattr block, 0 for none.
    pub(crate) fn file_acl(&self) -> u64 {
        u64::from(self.i_file_acl_lo) | (u64::from(self.l_i_file_acl_high) << 32)
    }
}

/// The fields of `struct ext4_inode` past the first 128 bytes, which
/// inodes larger than 128 bytes have (`i_extra_isize` says how many are
/// in use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ext4InodeExtra {
    /// Bytes of these fields in use.
    pub(crate) i_extra_isize: u16,
    /// The inode's crc32c (high 16 bits).
    pub(crate) i_checksum_hi: u16,
    /// Change time: nanoseconds and epoch bits.
    pub(crate) i_ctime_extra: u32,
    /// Modification time: nanoseconds and epoch bits.
    pub(crate) i_mtime_extra: u32,
    /// Access time: nanoseconds and epoch bits.
    pub(crate) i_atime_extra: u32,
    /// Creation time.
    pub(crate) i_crtime: u32,
    /// Creation time: nanoseconds and epoch bits.
    pub(crate) i_crtime_extra: u32,
    /// Version (high 32 bits).
    pub(crate) i_version_hi: u32,
    /// Project id.
    pub(crate) i_projid: u32,
}

impl Record for Ext4InodeExtra {
    const SIZE: usize = 32;

    fn encode(&self, w: &mut RecordWriter) {
        w.le16(self.i_extra_isize)
            .le16(self.i_checksum_hi)
            .le32(self.i_ctime_extra)
            .le32(self.i_mtime_extra)
            .le32(self.i_atime_extra)
            .le32(self.i_crtime)
            .le32(self.i_crtime_extra)
            .le32(self.i_version_hi)
            .le32(self.i_projid);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(Ext4InodeExtra {
            i_extra_isize: r.le16()?,
            i_checksum_hi: r.le16()?,
            i_ctime_extra: r.le32()?,
            i_mtime_extra: r.le32()?,
            i_atime_extra: r.le32()?,
            i_crtime: r.le32()?,
            i_crtime_extra: r.le32()?,
            i_version_hi: r.le32()?,
            i_projid: r.le32()?,
        })
    }
}

impl Ext4InodeExtra {
    /// The extra fields of an inode's raw bytes, zero where the inode is
    /// too short to hold them.
    pub(crate) fn of(raw: &[u8]) -> Self {
        let mut b = [0u8; Self::SIZE];
        if let Some(rest) = raw.get(Ext4Inode::SIZE..) {
            let n = rest.len().min(Self::SIZE);
            b[..n].copy_from_slice(&rest[..n]);
        }
        Self::from_bytes(&b).unwrap_or_default()
    }
}
