//! The on-disk records of EROFS, as Linux's `fs/erofs/erofs_fs.h` lays them
//! out and names their fields; the writer and the reader both go through
//! them.

use rootforge_common::bytes::{RecordReader, RecordWriter};

/// `EROFS_SUPER_MAGIC_V1`.
pub(crate) const EROFS_SUPER_MAGIC_V1: u32 = 0xE0F5_E1E2;
/// `EROFS_SUPER_OFFSET`: the superblock's place in the image.
pub(crate) const EROFS_SUPER_OFFSET: u64 = 1024;
/// `EROFS_FEATURE_COMPAT_SB_CHKSUM`: the superblock carries a crc32c.
pub(crate) const EROFS_FEATURE_COMPAT_SB_CHKSUM: u32 = 0x1;
/// `EROFS_FEATURE_COMPAT_MTIME`: the extended inode's time is the mtime.
pub(crate) const EROFS_FEATURE_COMPAT_MTIME: u32 = 0x2;
/// `EROFS_FEATURE_INCOMPAT_ZERO_PADDING` (`LZ4_0PADDING`): compressed data
/// ends at its pcluster's end, after leading zeros.
pub(crate) const EROFS_FEATURE_INCOMPAT_ZERO_PADDING: u32 = 0x1;
/// `EROFS_FEATURE_INCOMPAT_COMPR_CFGS` (also `BIG_PCLUSTER`): per-algorithm
/// configurations follow the superblock.
pub(crate) const EROFS_FEATURE_INCOMPAT_COMPR_CFGS: u32 = 0x2;

/// The inode layouts of `i_format` bit 0.
pub(crate) const EROFS_INODE_LAYOUT_COMPACT: u16 = 0;
/// The 64-byte inode.
pub(crate) const EROFS_INODE_LAYOUT_EXTENDED: u16 = 1;
/// `EROFS_I_DATALAYOUT_BIT`.
pub(crate) const EROFS_I_DATALAYOUT_BIT: u16 = 1;

/// `EROFS_INODE_FLAT_PLAIN`: data in contiguous blocks.
pub(crate) const EROFS_INODE_FLAT_PLAIN: u16 = 0;
/// `EROFS_INODE_COMPRESSED_FULL`: compressed, with 8-byte lcluster indexes.
pub(crate) const EROFS_INODE_COMPRESSED_FULL: u16 = 1;
/// `EROFS_INODE_COMPRESSED_COMPACT`: compressed, with packed indexes.
pub(crate) const EROFS_INODE_COMPRESSED_COMPACT: u16 = 3;
/// `EROFS_INODE_FLAT_INLINE`: contiguous blocks, the tail after the inode.
pub(crate) const EROFS_INODE_FLAT_INLINE: u16 = 2;

/// `EROFS_FT_*`: the file types of directory entries.
pub(crate) const EROFS_FT_REG_FILE: u8 = 1;
pub(crate) const EROFS_FT_DIR: u8 = 2;
pub(crate) const EROFS_FT_CHRDEV: u8 = 3;
pub(crate) const EROFS_FT_BLKDEV: u8 = 4;
pub(crate) const EROFS_FT_FIFO: u8 = 5;
pub(crate) const EROFS_FT_SOCK: u8 = 6;
pub(crate) const EROFS_FT_SYMLINK: u8 = 7;

/// `Z_EROFS_ADVISE_COMPACTED_2B`: compact indexes use 2-byte packs.
pub(crate) const Z_EROFS_ADVISE_COMPACTED_2B: u16 = 0x0001;
/// `Z_EROFS_ADVISE_BIG_PCLUSTER_2`: PLAIN and HEAD2 pclusters may span
/// blocks.
pub(crate) const Z_EROFS_ADVISE_BIG_PCLUSTER_2: u16 = 0x0004;
/// `Z_EROFS_ADVISE_BIG_PCLUSTER_1`: HEAD1 pclusters may span blocks.
pub(crate) const Z_EROFS_ADVISE_BIG_PCLUSTER_1: u16 = 0x0002;
/// `Z_EROFS_LCLUSTER_TYPE_PLAIN`: an uncompressed pcluster starts here.
pub(crate) const Z_EROFS_LCLUSTER_TYPE_PLAIN: u16 = 0;
/// `Z_EROFS_LCLUSTER_TYPE_HEAD1`: a compressed pcluster starts here.
pub(crate) const Z_EROFS_LCLUSTER_TYPE_HEAD1: u16 = 1;
/// `Z_EROFS_LCLUSTER_TYPE_NONHEAD`: inside the pcluster of an earlier head.
pub(crate) const Z_EROFS_LCLUSTER_TYPE_NONHEAD: u16 = 2;
/// `Z_EROFS_LI_LCLUSTER_TYPE_MASK`.
pub(crate) const Z_EROFS_LI_LCLUSTER_TYPE_MASK: u16 = 3;
/// `Z_EROFS_LI_D0_CBLKCNT`: the first non-head lcluster's `delta[0]` holds
/// the pcluster's block count.
pub(crate) const Z_EROFS_LI_D0_CBLKCNT: u16 = 1 << 11;

/// `EROFS_XATTR_INDEX_*`: the name prefixes an xattr entry refers to.
pub(crate) const EROFS_XATTR_INDEX_USER: u8 = 1;
pub(crate) const EROFS_XATTR_INDEX_POSIX_ACL_ACCESS: u8 = 2;
pub(crate) const EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT: u8 = 3;
pub(crate) const EROFS_XATTR_INDEX_TRUSTED: u8 = 4;
pub(crate) const EROFS_XATTR_INDEX_SECURITY: u8 = 6;

/// A record, encoded and decoded field by field.
pub(crate) trait Record: Sized {
    /// Its size on disk.
    const SIZE: usize;
    /// Appends the record.
    fn encode(&self, w: &mut RecordWriter);
    /// The record at the reader, or `None` when the input is too short.
    fn decode(r: &mut RecordReader<'_>) -> Option<Self>;

    /// The record as bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_capacity(Self::SIZE);
        self.encode(&mut w);
        w.into_bytes()
    }

    /// The record at the start of `bytes`.
    fn parse(bytes: &[u8]) -> Option<Self> {
        Self::decode(&mut RecordReader::new(bytes))
    }
}

/// `struct erofs_super_block` (128 bytes at [`EROFS_SUPER_OFFSET`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SuperBlock {
    pub(crate) magic: u32,
    /// `crc32c(~0)` of the superblock's block from the superblock on, with
    /// this field zero.
    pub(crate) checksum: u32,
    pub(crate) feature_compat: u32,
    pub(crate) blkszbits: u8,
    pub(crate) sb_extslots: u8,
    pub(crate) root_nid: u16,
    pub(crate) inos: u64,
    pub(crate) build_time: u64,
    pub(crate) build_time_nsec: u32,
    pub(crate) blocks: u32,
    pub(crate) meta_blkaddr: u32,
    pub(crate) xattr_blkaddr: u32,
    pub(crate) uuid: [u8; 16],
    pub(crate) volume_name: [u8; 16],
    pub(crate) feature_incompat: u32,
    /// `u1`: `available_compr_algs` with `COMPR_CFGS`, else
    /// `lz4_max_distance`.
    pub(crate) available_compr_algs: u16,
    pub(crate) extra_devices: u16,
    pub(crate) devt_slotoff: u16,
    pub(crate) dirblkbits: u8,
    pub(crate) xattr_prefix_count: u8,
    pub(crate) xattr_prefix_start: u32,
    pub(crate) packed_nid: u64,
}

impl Record for SuperBlock {
    const SIZE: usize = 128;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.magic)
            .le32(self.checksum)
            .le32(self.feature_compat)
            .u8(self.blkszbits)
            .u8(self.sb_extslots)
            .le16(self.root_nid)
            .le64(self.inos)
            .le64(self.build_time)
            .le32(self.build_time_nsec)
            .le32(self.blocks)
            .le32(self.meta_blkaddr)
            .le32(self.xattr_blkaddr)
            .bytes(&self.uuid)
            .bytes(&self.volume_name)
            .le32(self.feature_incompat)
            .le16(self.available_compr_algs)
            .le16(self.extra_devices)
            .le16(self.devt_slotoff)
            .u8(self.dirblkbits)
            .u8(self.xattr_prefix_count)
            .le32(self.xattr_prefix_start)
            .le64(self.packed_nid)
            .zeros(24);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        let sb = SuperBlock {
            magic: r.le32()?,
            checksum: r.le32()?,
            feature_compat: r.le32()?,
            blkszbits: r.u8()?,
            sb_extslots: r.u8()?,
            root_nid: r.le16()?,
            inos: r.le64()?,
            build_time: r.le64()?,
            build_time_nsec: r.le32()?,
            blocks: r.le32()?,
            meta_blkaddr: r.le32()?,
            xattr_blkaddr: r.le32()?,
            uuid: r.array()?,
            volume_name: r.array()?,
            feature_incompat: r.le32()?,
            available_compr_algs: r.le16()?,
            extra_devices: r.le16()?,
            devt_slotoff: r.le16()?,
            dirblkbits: r.u8()?,
            xattr_prefix_count: r.u8()?,
            xattr_prefix_start: r.le32()?,
            packed_nid: r.le64()?,
        };
        r.skip(24)?;
        Some(sb)
    }
}

/// An on-disk inode, `struct erofs_inode_compact` (32 bytes) or
/// `struct erofs_inode_extended` (64 bytes) by `i_format` bit 0. The
/// compact form has no time (the superblock's build time applies) and
/// narrower fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DiskInode {
    pub(crate) i_format: u16,
    pub(crate) i_xattr_icount: u16,
    pub(crate) i_mode: u16,
    pub(crate) i_nlink: u32,
    pub(crate) i_size: u64,
    /// `i_u`: `raw_blkaddr`, `compressed_blocks` or `rdev`.
    pub(crate) i_u: u32,
    pub(crate) i_ino: u32,
    pub(crate) i_uid: u32,
    pub(crate) i_gid: u32,
    pub(crate) i_mtime: u64,
    pub(crate) i_mtime_nsec: u32,
}

/// `sizeof(struct erofs_inode_compact)`.
pub(crate) const COMPACT_SIZE: usize = 32;
/// `sizeof(struct erofs_inode_extended)`.
pub(crate) const EXTENDED_SIZE: usize = 64;

impl DiskInode {
    pub(crate) fn extended(&self) -> bool {
        self.i_format & 1 == EROFS_INODE_LAYOUT_EXTENDED
    }

    pub(crate) fn datalayout(&self) -> u16 {
        (self.i_format >> EROFS_I_DATALAYOUT_BIT) & 7
    }

    pub(crate) fn size_on_disk(&self) -> usize {
        if self.extended() {
            EXTENDED_SIZE
        } else {
            COMPACT_SIZE
        }
    }

    /// Appends the inode in the form its `i_format` says. The caller has
    /// checked that a compact inode's fields fit.
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        if self.extended() {
            w.le16(self.i_format)
                .le16(self.i_xattr_icount)
                .le16(self.i_mode)
                .le16(0) // i_reserved
                .le64(self.i_size)
                .le32(self.i_u)
                .le32(self.i_ino)
                .le32(self.i_uid)
                .le32(self.i_gid)
                .le64(self.i_mtime)
                .le32(self.i_mtime_nsec)
                .le32(self.i_nlink)
                .zeros(16); // i_reserved2
        } else {
            w.le16(self.i_format)
                .le16(self.i_xattr_icount)
                .le16(self.i_mode)
                .le16(low16(self.i_nlink))
                .le32(low32(self.i_size))
                .le32(0) // i_reserved
                .le32(self.i_u)
                .le32(self.i_ino)
                .le16(low16(self.i_uid))
                .le16(low16(self.i_gid))
                .le32(0); // i_reserved2
        }
    }

    /// The inode at the reader, either form; a compact inode's time is
    /// left zero for the caller to fill from the superblock.
    pub(crate) fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        let i_format = r.le16()?;
        let i_xattr_icount = r.le16()?;
        let i_mode = r.le16()?;
        if i_format & 1 == EROFS_INODE_LAYOUT_EXTENDED {
            r.skip(2)?;
            let i_size = r.le64()?;
            let i_u = r.le32()?;
            let i_ino = r.le32()?;
            let i_uid = r.le32()?;
            let i_gid = r.le32()?;
            let i_mtime = r.le64()?;
            let i_mtime_nsec = r.le32()?;
            let i_nlink = r.le32()?;
            r.skip(16)?;
            Some(DiskInode {
                i_format,
                i_xattr_icount,
                i_mode,
                i_nlink,
                i_size,
                i_u,
                i_ino,
                i_uid,
                i_gid,
                i_mtime,
                i_mtime_nsec,
            })
        } else {
            let i_nlink = u32::from(r.le16()?);
            let i_size = u64::from(r.le32()?);
            r.skip(4)?;
            let i_u = r.le32()?;
            let i_ino = r.le32()?;
            let i_uid = u32::from(r.le16()?);
            let i_gid = u32::from(r.le16()?);
            r.skip(4)?;
            Some(DiskInode {
                i_format,
                i_xattr_icount,
                i_mode,
                i_nlink,
                i_size,
                i_u,
                i_ino,
                i_uid,
                i_gid,
                i_mtime: 0,
                i_mtime_nsec: 0,
            })
        }
    }
}

fn low16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

fn low32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// `struct erofs_dirent` (12 bytes; the names follow the entries of a
/// block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dirent {
    pub(crate) nid: u64,
    pub(crate) nameoff: u16,
    pub(crate) file_type: u8,
}

impl Record for Dirent {
    const SIZE: usize = 12;

    fn encode(&self, w: &mut RecordWriter) {
        w.le64(self.nid).le16(self.nameoff).u8(self.file_type).u8(0);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        let d = Dirent {
            nid: r.le64()?,
            nameoff: r.le16()?,
            file_type: r.u8()?,
        };
        r.skip(1)?;
        Some(d)
    }
}

/// `struct erofs_xattr_ibody_header` (12 bytes), followed by
/// `h_shared_count` 4-byte shared xattr ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct XattrIbodyHeader {
    /// `h_name_filter` (0: no filter).
    pub(crate) h_name_filter: u32,
    pub(crate) h_shared_count: u8,
}

impl Record for XattrIbodyHeader {
    const SIZE: usize = 12;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.h_name_filter).u8(self.h_shared_count).zeros(7);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        let h = XattrIbodyHeader {
            h_name_filter: r.le32()?,
            h_shared_count: r.u8()?,
        };
        r.skip(7)?;
        Some(h)
    }
}

/// `struct erofs_xattr_entry` (4 bytes), followed by the name suffix and
/// the value, padded to 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct XattrEntry {
    pub(crate) e_name_len: u8,
    pub(crate) e_name_index: u8,
    pub(crate) e_value_size: u16,
}

impl Record for XattrEntry {
    const SIZE: usize = 4;

    fn encode(&self, w: &mut RecordWriter) {
        w.u8(self.e_name_len)
            .u8(self.e_name_index)
            .le16(self.e_value_size);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(XattrEntry {
            e_name_len: r.u8()?,
            e_name_index: r.u8()?,
            e_value_size: r.le16()?,
        })
    }
}

/// `struct z_erofs_map_header` (8 bytes), at the first 8-byte boundary
/// after a compressed inode and its xattrs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MapHeader {
    /// `h_fragmentoff`, or `h_reserved1` and `h_idata_size`.
    pub(crate) h_fragmentoff: u32,
    pub(crate) h_advise: u16,
    /// Bits 0-3: the algorithm of HEAD1 lclusters; 4-7: of HEAD2.
    pub(crate) h_algorithmtype: u8,
    /// Bits 0-2: logical cluster bits minus the block size bits.
    pub(crate) h_clusterbits: u8,
}

impl Record for MapHeader {
    const SIZE: usize = 8;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.h_fragmentoff)
            .le16(self.h_advise)
            .u8(self.h_algorithmtype)
            .u8(self.h_clusterbits);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(MapHeader {
            h_fragmentoff: r.le32()?,
            h_advise: r.le16()?,
            h_algorithmtype: r.u8()?,
            h_clusterbits: r.u8()?,
        })
    }
}

/// `struct z_erofs_lcluster_index` (8 bytes): one logical cluster of a
/// compressed file, in the full index layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LclusterIndex {
    /// The type in bits 0-1.
    pub(crate) di_advise: u16,
    /// Where the head's pcluster starts in this lcluster.
    pub(crate) di_clusterofs: u16,
    /// `di_u`: `blkaddr` of a head, or `delta[0]` (low half) and `delta[1]`
    /// (high half) of a non-head.
    pub(crate) di_u: u32,
}

/// Where the full indexes of an inode start, from the end of its xattrs
/// (`Z_EROFS_FULL_INDEX_ALIGN`): the map header at the next 8-byte
/// boundary, then 8 reserved bytes.
pub(crate) fn full_index_start(end: u64) -> Option<u64> {
    end.checked_next_multiple_of(8)?.checked_add(16)
}

impl Record for LclusterIndex {
    const SIZE: usize = 8;

    fn encode(&self, w: &mut RecordWriter) {
        w.le16(self.di_advise)
            .le16(self.di_clusterofs)
            .le32(self.di_u);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(LclusterIndex {
            di_advise: r.le16()?,
            di_clusterofs: r.le16()?,
            di_u: r.le32()?,
        })
    }
}

/// `struct z_erofs_lz4_cfgs` (14 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lz4Cfgs {
    pub(crate) max_distance: u16,
    pub(crate) max_pclusterblks: u16,
}

impl Record for Lz4Cfgs {
    const SIZE: usize = 14;

    fn encode(&self, w: &mut RecordWriter) {
        w.le16(self.max_distance)
            .le16(self.max_pclusterblks)
            .zeros(10);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        let c = Lz4Cfgs {
            max_distance: r.le16()?,
            max_pclusterblks: r.le16()?,
        };
        r.skip(10)?;
        Some(c)
    }
}

/// `struct z_erofs_deflate_cfgs` (6 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeflateCfgs {
    pub(crate) windowbits: u8,
}

impl Record for DeflateCfgs {
    const SIZE: usize = 6;

    fn encode(&self, w: &mut RecordWriter) {
        w.u8(self.windowbits).zeros(5);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        let c = DeflateCfgs {
            windowbits: r.u8()?,
        };
        r.skip(5)?;
        Some(c)
    }
}

/// `struct z_erofs_zstd_cfgs` (6 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ZstdCfgs {
    pub(crate) format: u8,
    /// The window's log minus 10 (`ZSTD_WINDOWLOG_ABSOLUTEMIN`).
    pub(crate) windowlog: u8,
}

impl Record for ZstdCfgs {
    const SIZE: usize = 6;

    fn encode(&self, w: &mut RecordWriter) {
        w.u8(self.format).u8(self.windowlog).zeros(4);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        let c = ZstdCfgs {
            format: r.u8()?,
            windowlog: r.u8()?,
        };
        r.skip(4)?;
        Some(c)
    }
}
