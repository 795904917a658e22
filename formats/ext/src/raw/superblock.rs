//! `struct ext4_super_block` and `struct ext4_group_desc`.

use rootforge_common::bytes::{RecordReader, RecordWriter};

use super::{Record, le32s, read_le32s};
use crate::disk::SUPER_MAGIC;

/// Where `s_magic` lies in the superblock, for sniffing an image by its
/// first bytes.
pub(crate) const S_MAGIC_OFFSET: usize = 0x38;

/// `struct ext4_super_block`, at byte 1024 of the image and at the start
/// of each group that holds a backup. The fields past
/// `s_checksum_type` up to `s_checksum` are ones this writer leaves zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SuperBlock {
    /// Inodes in the filesystem.
    pub(crate) s_inodes_count: u32,
    /// Blocks in the filesystem (low 32 bits).
    pub(crate) s_blocks_count_lo: u32,
    /// Blocks reserved for the superuser (low 32 bits).
    pub(crate) s_r_blocks_count_lo: u32,
    /// Free blocks (low 32 bits).
    pub(crate) s_free_blocks_count_lo: u32,
    /// Free inodes.
    pub(crate) s_free_inodes_count: u32,
    /// The first data block: 1 with 1 KiB blocks, else 0.
    pub(crate) s_first_data_block: u32,
    /// The block size is `1024 << s_log_block_size`.
    pub(crate) s_log_block_size: u32,
    /// The cluster size, likewise (equal to the block size without bigalloc).
    pub(crate) s_log_cluster_size: u32,
    /// Blocks per group.
    pub(crate) s_blocks_per_group: u32,
    /// Clusters per group.
    pub(crate) s_clusters_per_group: u32,
    /// Inodes per group.
    pub(crate) s_inodes_per_group: u32,
    /// Last mount time.
    pub(crate) s_mtime: u32,
    /// Last write time.
    pub(crate) s_wtime: u32,
    /// Mounts since the last check.
    pub(crate) s_mnt_count: u16,
    /// Mounts allowed before a check (`0xFFFF`: never).
    pub(crate) s_max_mnt_count: u16,
    /// `0xEF53` (the default).
    pub(crate) s_magic: u16,
    /// 1: cleanly unmounted.
    pub(crate) s_state: u16,
    /// What to do on errors (1: continue).
    pub(crate) s_errors: u16,
    /// Minor revision.
    pub(crate) s_minor_rev_level: u16,
    /// Last check time.
    pub(crate) s_lastcheck: u32,
    /// Seconds between checks.
    pub(crate) s_checkinterval: u32,
    /// 0: Linux.
    pub(crate) s_creator_os: u32,
    /// 1: dynamic inode sizes and features.
    pub(crate) s_rev_level: u32,
    /// Default uid for reserved blocks.
    pub(crate) s_def_resuid: u16,
    /// Default gid for reserved blocks.
    pub(crate) s_def_resgid: u16,
    /// The first inode for ordinary files.
    pub(crate) s_first_ino: u32,
    /// Bytes per inode.
    pub(crate) s_inode_size: u16,
    /// The group this copy sits in.
    pub(crate) s_block_group_nr: u16,
    /// Compatible features.
    pub(crate) s_feature_compat: u32,
    /// Incompatible features.
    pub(crate) s_feature_incompat: u32,
    /// Read-only compatible features.
    pub(crate) s_feature_ro_compat: u32,
    /// The volume UUID.
    pub(crate) s_uuid: [u8; 16],
    /// The volume label, zero-padded.
    pub(crate) s_volume_name: [u8; 16],
    // s_last_mounted[64]: zero.
    /// Compression algorithms in use.
    pub(crate) s_algorithm_usage_bitmap: u32,
    /// Blocks to preallocate for files.
    pub(crate) s_prealloc_blocks: u8,
    /// Blocks to preallocate for directories.
    pub(crate) s_prealloc_dir_blocks: u8,
    /// Blocks reserved for growing the descriptor table.
    pub(crate) s_reserved_gdt_blocks: u16,
    /// UUID of an external journal.
    pub(crate) s_journal_uuid: [u8; 16],
    /// The journal's inode.
    pub(crate) s_journal_inum: u32,
    /// An external journal's device.
    pub(crate) s_journal_dev: u32,
    /// The head of the orphan list.
    pub(crate) s_last_orphan: u32,
    /// The htree hash seed.
    pub(crate) s_hash_seed: [u32; 4],
    /// The default htree hash (1: half MD4).
    pub(crate) s_def_hash_version: u8,
    /// 1: `s_jnl_blocks` holds a copy of the journal's `i_block`.
    pub(crate) s_jnl_backup_type: u8,
    /// Group descriptor size with `64bit`.
    pub(crate) s_desc_size: u16,
    /// Default mount options.
    pub(crate) s_default_mount_opts: u32,
    /// The first meta block group.
    pub(crate) s_first_meta_bg: u32,
    /// Creation time.
    pub(crate) s_mkfs_time: u32,
    /// The journal inode's `i_block`, then its size's high and low words.
    pub(crate) s_jnl_blocks: [u32; 17],
    /// Blocks in the filesystem (high 32 bits, `64bit`).
    pub(crate) s_blocks_count_hi: u32,
    /// Reserved blocks (high 32 bits).
    pub(crate) s_r_blocks_count_hi: u32,
    /// Free blocks (high 32 bits).
    pub(crate) s_free_blocks_count_hi: u32,
    /// Extra inode bytes every inode has.
    pub(crate) s_min_extra_isize: u16,
    /// Extra inode bytes new inodes should have.
    pub(crate) s_want_extra_isize: u16,
    /// Flags (1: directory hashes use signed chars).
    pub(crate) s_flags: u32,
    /// RAID stride.
    pub(crate) s_raid_stride: u16,
    /// MMP update interval.
    pub(crate) s_mmp_update_interval: u16,
    /// MMP block.
    pub(crate) s_mmp_block: u64,
    /// RAID stripe width.
    pub(crate) s_raid_stripe_width: u32,
    /// Groups per flex group, as a power of two.
    pub(crate) s_log_groups_per_flex: u8,
    /// The metadata checksum algorithm (1: crc32c).
    pub(crate) s_checksum_type: u8,
    /// crc32c of the superblock up to this field.
    pub(crate) s_checksum: u32,
}

impl Default for SuperBlock {
    fn default() -> Self {
        SuperBlock {
            s_inodes_count: 0,
            s_blocks_count_lo: 0,
            s_r_blocks_count_lo: 0,
            s_free_blocks_count_lo: 0,
            s_free_inodes_count: 0,
            s_first_data_block: 0,
            s_log_block_size: 0,
            s_log_cluster_size: 0,
            s_blocks_per_group: 0,
            s_clusters_per_group: 0,
            s_inodes_per_group: 0,
            s_mtime: 0,
            s_wtime: 0,
            s_mnt_count: 0,
            s_max_mnt_count: 0,
            s_magic: SUPER_MAGIC,
            s_state: 0,
            s_errors: 0,
            s_minor_rev_level: 0,
            s_lastcheck: 0,
            s_checkinterval: 0,
            s_creator_os: 0,
            s_rev_level: 0,
            s_def_resuid: 0,
            s_def_resgid: 0,
            s_first_ino: 0,
            s_inode_size: 0,
            s_block_group_nr: 0,
            s_feature_compat: 0,
            s_feature_incompat: 0,
            s_feature_ro_compat: 0,
            s_uuid: [0; 16],
            s_volume_name: [0; 16],
            s_algorithm_usage_bitmap: 0,
            s_prealloc_blocks: 0,
            s_prealloc_dir_blocks: 0,
            s_reserved_gdt_blocks: 0,
            s_journal_uuid: [0; 16],
            s_journal_inum: 0,
            s_journal_dev: 0,
            s_last_orphan: 0,
            s_hash_seed: [0; 4],
            s_def_hash_version: 0,
            s_jnl_backup_type: 0,
            s_desc_size: 0,
            s_default_mount_opts: 0,
            s_first_meta_bg: 0,
            s_mkfs_time: 0,
            s_jnl_blocks: [0; 17],
            s_blocks_count_hi: 0,
            s_r_blocks_count_hi: 0,
            s_free_blocks_count_hi: 0,
            s_min_extra_isize: 0,
            s_want_extra_isize: 0,
            s_flags: 0,
            s_raid_stride: 0,
            s_mmp_update_interval: 0,
            s_mmp_block: 0,
            s_raid_stripe_width: 0,
            s_log_groups_per_flex: 0,
            s_checksum_type: 0,
            s_checksum: 0,
        }
    }
}

impl SuperBlock {
    /// Bytes from `s_checksum_type` to `s_checksum` this writer leaves zero
    /// (`s_encryption_level` to `s_reserved`).
    const TAIL_ZEROS: usize = 0x3FC - 0x176;

    /// The bytes `s_checksum` covers: the record up to that field.
    pub(crate) const CHECKSUMMED: usize = Self::SIZE - 4;
}

impl Record for SuperBlock {
    const SIZE: usize = 1024;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.s_inodes_count)
            .le32(self.s_blocks_count_lo)
            .le32(self.s_r_blocks_count_lo)
            .le32(self.s_free_blocks_count_lo)
            .le32(self.s_free_inodes_count)
            .le32(self.s_first_data_block)
            .le32(self.s_log_block_size)
            .le32(self.s_log_cluster_size)
            .le32(self.s_blocks_per_group)
            .le32(self.s_clusters_per_group)
            .le32(self.s_inodes_per_group)
            .le32(self.s_mtime)
            .le32(self.s_wtime)
            .le16(self.s_mnt_count)
            .le16(self.s_max_mnt_count)
            .le16(self.s_magic)
            .le16(self.s_state)
            .le16(self.s_errors)
            .le16(self.s_minor_rev_level)
            .le32(self.s_lastcheck)
            .le32(self.s_checkinterval)
            .le32(self.s_creator_os)
            .le32(self.s_rev_level)
            .le16(self.s_def_resuid)
            .le16(self.s_def_resgid)
            .le32(self.s_first_ino)
            .le16(self.s_inode_size)
            .le16(self.s_block_group_nr)
            .le32(self.s_feature_compat)
            .le32(self.s_feature_incompat)
            .le32(self.s_feature_ro_compat)
            .bytes(&self.s_uuid)
            .bytes(&self.s_volume_name)
            .zeros(64)
            .le32(self.s_algorithm_usage_bitmap)
            .u8(self.s_prealloc_blocks)
            .u8(self.s_prealloc_dir_blocks)
            .le16(self.s_reserved_gdt_blocks)
            .bytes(&self.s_journal_uuid)
            .le32(self.s_journal_inum)
            .le32(self.s_journal_dev)
            .le32(self.s_last_orphan);
        le32s(w, &self.s_hash_seed);
        w.u8(self.s_def_hash_version)
            .u8(self.s_jnl_backup_type)
            .le16(self.s_desc_size)
            .le32(self.s_default_mount_opts)
            .le32(self.s_first_meta_bg)
            .le32(self.s_mkfs_time);
        le32s(w, &self.s_jnl_blocks);
        w.le32(self.s_blocks_count_hi)
            .le32(self.s_r_blocks_count_hi)
            .le32(self.s_free_blocks_count_hi)
            .le16(self.s_min_extra_isize)
            .le16(self.s_want_extra_isize)
            .le32(self.s_flags)
            .le16(self.s_raid_stride)
            .le16(self.s_mmp_update_interval)
            .le64(self.s_mmp_block)
            .le32(self.s_raid_stripe_width)
            .u8(self.s_log_groups_per_flex)
            .u8(self.s_checksum_type)
            .zeros(Self::TAIL_ZEROS)
            .le32(self.s_checksum);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(SuperBlock {
            s_inodes_count: r.le32()?,
            s_blocks_count_lo: r.le32()?,
            s_r_blocks_count_lo: r.le32()?,
            s_free_blocks_count_lo: r.le32()?,
            s_free_inodes_count: r.le32()?,
            s_first_data_block: r.le32()?,
            s_log_block_size: r.le32()?,
            s_log_cluster_size: r.le32()?,
            s_blocks_per_group: r.le32()?,
            s_clusters_per_group: r.le32()?,
            s_inodes_per_group: r.le32()?,
            s_mtime: r.le32()?,
            s_wtime: r.le32()?,
            s_mnt_count: r.le16()?,
            s_max_mnt_count: r.le16()?,
            s_magic: r.le16()?,
            s_state: r.le16()?,
            s_errors: r.le16()?,
            s_minor_rev_level: r.le16()?,
            s_lastcheck: r.le32()?,
            s_checkinterval: r.le32()?,
            s_creator_os: r.le32()?,
            s_rev_level: r.le32()?,
            s_def_resuid: r.le16()?,
            s_def_resgid: r.le16()?,
            s_first_ino: r.le32()?,
            s_inode_size: r.le16()?,
            s_block_group_nr: r.le16()?,
            s_feature_compat: r.le32()?,
            s_feature_incompat: r.le32()?,
            s_feature_ro_compat: r.le32()?,
            s_uuid: r.array()?,
            s_volume_name: r.array()?,
            s_algorithm_usage_bitmap: r.skip(64)?.le32()?,
            s_prealloc_blocks: r.u8()?,
            s_prealloc_dir_blocks: r.u8()?,
            s_reserved_gdt_blocks: r.le16()?,
            s_journal_uuid: r.array()?,
            s_journal_inum: r.le32()?,
            s_journal_dev: r.le32()?,
            s_last_orphan: r.le32()?,
            s_hash_seed: read_le32s(r)?,
            s_def_hash_version: r.u8()?,
            s_jnl_backup_type: r.u8()?,
            s_desc_size: r.le16()?,
            s_default_mount_opts: r.le32()?,
            s_first_meta_bg: r.le32()?,
            s_mkfs_time: r.le32()?,
            s_jnl_blocks: read_le32s(r)?,
            s_blocks_count_hi: r.le32()?,
            s_r_blocks_count_hi: r.le32()?,
            s_free_blocks_count_hi: r.le32()?,
            s_min_extra_isize: r.le16()?,
            s_want_extra_isize: r.le16()?,
            s_flags: r.le32()?,
            s_raid_stride: r.le16()?,
            s_mmp_update_interval: r.le16()?,
            s_mmp_block: r.le64()?,
            s_raid_stripe_width: r.le32()?,
            s_log_groups_per_flex: r.u8()?,
            s_checksum_type: r.u8()?,
            s_checksum: r.skip(Self::TAIL_ZEROS)?.le32()?,
        })
    }
}

/// `struct ext4_group_desc` up to `bg_checksum`: the 32 bytes every
/// descriptor has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupDesc {
    /// The block bitmap's block (low 32 bits).
    pub(crate) bg_block_bitmap_lo: u32,
    /// The inode bitmap's block (low 32 bits).
    pub(crate) bg_inode_bitmap_lo: u32,
    /// The inode table's first block (low 32 bits).
    pub(crate) bg_inode_table_lo: u32,
    /// Free blocks in the group.
    pub(crate) bg_free_blocks_count_lo: u16,
    /// Free inodes in the group.
    pub(crate) bg_free_inodes_count_lo: u16,
    /// Directories in the group.
    pub(crate) bg_used_dirs_count_lo: u16,
    /// Flags (4: the inode table is zeroed).
    pub(crate) bg_flags: u16,
    /// The snapshot exclude bitmap.
    pub(crate) bg_exclude_bitmap_lo: u32,
    /// crc32c of the block bitmap (low 16 bits).
    pub(crate) bg_block_bitmap_csum_lo: u16,
    /// crc32c of the inode bitmap (low 16 bits).
    pub(crate) bg_inode_bitmap_csum_lo: u16,
    /// Inodes at the end of the table never used.
    pub(crate) bg_itable_unused_lo: u16,
    /// The descriptor's checksum (low 16 bits of a crc32c).
    pub(crate) bg_checksum: u16,
}

impl Record for GroupDesc {
    const SIZE: usize = 32;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.bg_block_bitmap_lo)
            .le32(self.bg_inode_bitmap_lo)
            .le32(self.bg_inode_table_lo)
            .le16(self.bg_free_blocks_count_lo)
            .le16(self.bg_free_inodes_count_lo)
            .le16(self.bg_used_dirs_count_lo)
            .le16(self.bg_flags)
            .le32(self.bg_exclude_bitmap_lo)
            .le16(self.bg_block_bitmap_csum_lo)
            .le16(self.bg_inode_bitmap_csum_lo)
            .le16(self.bg_itable_unused_lo)
            .le16(self.bg_checksum);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(GroupDesc {
            bg_block_bitmap_lo: r.le32()?,
            bg_inode_bitmap_lo: r.le32()?,
            bg_inode_table_lo: r.le32()?,
            bg_free_blocks_count_lo: r.le16()?,
            bg_free_inodes_count_lo: r.le16()?,
            bg_used_dirs_count_lo: r.le16()?,
            bg_flags: r.le16()?,
            bg_exclude_bitmap_lo: r.le32()?,
            bg_block_bitmap_csum_lo: r.le16()?,
            bg_inode_bitmap_csum_lo: r.le16()?,
            bg_itable_unused_lo: r.le16()?,
            bg_checksum: r.le16()?,
        })
    }
}

/// The second half of a 64-byte `struct ext4_group_desc` (`64bit`): the
/// high words. This writer never writes it; the reader takes the inode
/// table's high word from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupDescHi {
    /// The block bitmap's block (high 32 bits).
    pub(crate) bg_block_bitmap_hi: u32,
    /// The inode bitmap's block (high 32 bits).
    pub(crate) bg_inode_bitmap_hi: u32,
    /// The inode table's first block (high 32 bits).
    pub(crate) bg_inode_table_hi: u32,
    /// Free blocks (high 16 bits).
    pub(crate) bg_free_blocks_count_hi: u16,
    /// Free inodes (high 16 bits).
    pub(crate) bg_free_inodes_count_hi: u16,
    /// Directories (high 16 bits).
    pub(crate) bg_used_dirs_count_hi: u16,
    /// Unused inodes (high 16 bits).
    pub(crate) bg_itable_unused_hi: u16,
    /// The exclude bitmap (high 32 bits).
    pub(crate) bg_exclude_bitmap_hi: u32,
    /// Block bitmap checksum (high 16 bits).
    pub(crate) bg_block_bitmap_csum_hi: u16,
    /// Inode bitmap checksum (high 16 bits).
    pub(crate) bg_inode_bitmap_csum_hi: u16,
}

impl Record for GroupDescHi {
    const SIZE: usize = 32;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.bg_block_bitmap_hi)
            .le32(self.bg_inode_bitmap_hi)
            .le32(self.bg_inode_table_hi)
            .le16(self.bg_free_blocks_count_hi)
            .le16(self.bg_free_inodes_count_hi)
            .le16(self.bg_used_dirs_count_hi)
            .le16(self.bg_itable_unused_hi)
            .le32(self.bg_exclude_bitmap_hi)
            .le16(self.bg_block_bitmap_csum_hi)
            .le16(self.bg_inode_bitmap_csum_hi)
            .zeros(4);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(GroupDescHi {
            bg_block_bitmap_hi: r.le32()?,
            bg_inode_bitmap_hi: r.le32()?,
            bg_inode_table_hi: r.le32()?,
            bg_free_blocks_count_hi: r.le16()?,
            bg_free_inodes_count_hi: r.le16()?,
            bg_used_dirs_count_hi: r.le16()?,
            bg_itable_unused_hi: r.le16()?,
            bg_exclude_bitmap_hi: r.le32()?,
            bg_block_bitmap_csum_hi: r.le16()?,
            bg_inode_bitmap_csum_hi: r.le16()?,
        })
        .and_then(|d| r.skip(4).map(|_| d))
    }
}
