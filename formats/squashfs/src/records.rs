//! The fixed parts of the records the inode, directory, fragment and xattr
//! tables hold, as Linux's `fs/squashfs/squashfs_fs.h` lays them out and
//! names their fields; the writer and the reader both go through them.
//!
//! A record here is the fixed-size part of its C struct. What follows it
//! (a name, a symlink target, a block list, an extended symlink's xattr
//! id) depends on a field of the record or on the superblock, so the
//! caller writes and reads it, as the kernel does.

use rootforge_common::bytes::{RecordReader, RecordWriter};

/// `SQUASHFS_DIR_TYPE`: a directory whose listing fits 64 KiB, without
/// xattrs or an index.
pub(crate) const SQUASHFS_DIR_TYPE: u16 = 1;
/// `SQUASHFS_REG_TYPE`: a regular file.
pub(crate) const SQUASHFS_REG_TYPE: u16 = 2;
/// `SQUASHFS_SYMLINK_TYPE`.
pub(crate) const SQUASHFS_SYMLINK_TYPE: u16 = 3;
/// `SQUASHFS_BLKDEV_TYPE`.
pub(crate) const SQUASHFS_BLKDEV_TYPE: u16 = 4;
/// `SQUASHFS_CHRDEV_TYPE`.
pub(crate) const SQUASHFS_CHRDEV_TYPE: u16 = 5;
/// `SQUASHFS_FIFO_TYPE`.
pub(crate) const SQUASHFS_FIFO_TYPE: u16 = 6;
/// `SQUASHFS_SOCKET_TYPE`.
pub(crate) const SQUASHFS_SOCKET_TYPE: u16 = 7;
/// An inode type's extended form (`SQUASHFS_LDIR_TYPE` and so on) is its
/// basic type plus this.
pub(crate) const EXTENDED: u16 = 7;

/// `SQUASHFS_XATTR_USER`: an xattr named `user.` plus the stored name.
pub(crate) const SQUASHFS_XATTR_USER: u16 = 0;
/// `SQUASHFS_XATTR_TRUSTED`: `trusted.`.
pub(crate) const SQUASHFS_XATTR_TRUSTED: u16 = 1;
/// `SQUASHFS_XATTR_SECURITY`: `security.`.
pub(crate) const SQUASHFS_XATTR_SECURITY: u16 = 2;
/// `SQUASHFS_XATTR_VALUE_OOL`: the type bit of a value stored out of line,
/// as a reference to the value of an earlier pair.
pub(crate) const SQUASHFS_XATTR_VALUE_OOL: u16 = 0x100;

/// A record's fixed-size part, encoded and decoded field by field.
pub(crate) trait Record: Sized {
    /// The record's name in messages.
    const NAME: &'static str;
    /// Its size on disk.
    const SIZE: usize;
    /// Appends the record.
    fn encode(&self, w: &mut RecordWriter);
    /// The record at the reader, or `None` when the input is too short,
    /// which the caller reports as a corrupt image where it is.
    fn decode(r: &mut RecordReader<'_>) -> Option<Self>;

    /// The record as bytes.
    #[cfg(test)]
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_capacity(Self::SIZE);
        self.encode(&mut w);
        w.into_bytes()
    }
}

/// `struct squashfs_base_inode`: the header every inode starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InodeHeader {
    /// The inode type, basic (1 to 7) or extended (8 to 14).
    pub(crate) inode_type: u16,
    /// The permission bits (`S_IFMT` comes from the type).
    pub(crate) mode: u16,
    /// The owner, as an index into the id table.
    pub(crate) uid: u16,
    /// The group, as an index into the id table.
    pub(crate) guid: u16,
    /// Modification time, in seconds since 1970.
    pub(crate) mtime: u32,
    /// The inode's number, from 1.
    pub(crate) inode_number: u32,
}

impl Record for InodeHeader {
    const NAME: &'static str = "inode header";
    const SIZE: usize = 16;

    fn encode(&self, w: &mut RecordWriter) {
        w.le16(self.inode_type)
            .le16(self.mode)
            .le16(self.uid)
            .le16(self.guid)
            .le32(self.mtime)
            .le32(self.inode_number);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(InodeHeader {
            inode_type: r.le16()?,
            mode: r.le16()?,
            uid: r.le16()?,
            guid: r.le16()?,
            mtime: r.le32()?,
            inode_number: r.le32()?,
        })
    }
}

/// `struct squashfs_dir_inode` after the header: a directory whose listing
/// is under 64 KiB, with no index and no xattrs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirInode {
    /// The listing's metadata block, as an offset from the directory
    /// table's start.
    pub(crate) start_block: u32,
    /// 2 plus the number of subdirectories.
    pub(crate) nlink: u32,
    /// The listing's size plus 3 (for the `.` and `..` the kernel adds).
    pub(crate) file_size: u16,
    /// Where the listing starts in its unpacked metadata block.
    pub(crate) offset: u16,
    /// The parent directory's inode number (the root's is the inode count
    /// plus 1).
    pub(crate) parent_inode: u32,
}

impl Record for DirInode {
    const NAME: &'static str = "directory inode";
    const SIZE: usize = 16;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.start_block)
            .le32(self.nlink)
            .le16(self.file_size)
            .le16(self.offset)
            .le32(self.parent_inode);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(DirInode {
            start_block: r.le32()?,
            nlink: r.le32()?,
            file_size: r.le16()?,
            offset: r.le16()?,
            parent_inode: r.le32()?,
        })
    }
}

/// `struct squashfs_ldir_inode` after the header: the extended directory,
/// followed by `i_count` [`DirIndex`] entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LDirInode {
    /// 2 plus the number of subdirectories.
    pub(crate) nlink: u32,
    /// The listing's size plus 3.
    pub(crate) file_size: u32,
    /// The listing's metadata block, from the directory table's start.
    pub(crate) start_block: u32,
    /// The parent directory's inode number.
    pub(crate) parent_inode: u32,
    /// How many directory index entries follow.
    pub(crate) i_count: u16,
    /// Where the listing starts in its unpacked metadata block.
    pub(crate) offset: u16,
    /// The xattr id, or `u32::MAX` for none.
    pub(crate) xattr: u32,
}

impl Record for LDirInode {
    const NAME: &'static str = "extended directory inode";
    const SIZE: usize = 24;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.nlink)
            .le32(self.file_size)
            .le32(self.start_block)
            .le32(self.parent_inode)
            .le16(self.i_count)
            .le16(self.offset)
            .le32(self.xattr);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(LDirInode {
            nlink: r.le32()?,
            file_size: r.le32()?,
            start_block: r.le32()?,
            parent_inode: r.le32()?,
            i_count: r.le16()?,
            offset: r.le16()?,
            xattr: r.le32()?,
        })
    }
}

/// `struct squashfs_dir_index`: a listing header that starts a metadata
/// block, which the kernel's lookup can skip to; followed by `size + 1`
/// bytes of the header's first name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirIndex {
    /// The header's offset in the listing.
    pub(crate) index: u32,
    /// Its metadata block, from the directory table's start.
    pub(crate) start_block: u32,
    /// The length of the name that follows, minus one.
    pub(crate) size: u32,
}

impl Record for DirIndex {
    const NAME: &'static str = "directory index entry";
    const SIZE: usize = 12;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.index).le32(self.start_block).le32(self.size);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(DirIndex {
            index: r.le32()?,
            start_block: r.le32()?,
            size: r.le32()?,
        })
    }
}

/// `struct squashfs_reg_inode` after the header: a regular file under
/// 4 GiB whose data starts below 4 GiB, with one name, no holes and no
/// xattrs; followed by the `block_list` of its full blocks' size words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RegInode {
    /// Where its first data block is in the image.
    pub(crate) start_block: u32,
    /// The fragment block holding its tail, or `u32::MAX` for none.
    pub(crate) fragment: u32,
    /// Where the tail starts in the unpacked fragment block.
    pub(crate) offset: u32,
    /// The file's size in bytes.
    pub(crate) file_size: u32,
}

impl Record for RegInode {
    const NAME: &'static str = "file inode";
    const SIZE: usize = 16;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.start_block)
            .le32(self.fragment)
            .le32(self.offset)
            .le32(self.file_size);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(RegInode {
            start_block: r.le32()?,
            fragment: r.le32()?,
            offset: r.le32()?,
            file_size: r.le32()?,
        })
    }
}

/// `struct squashfs_lreg_inode` after the header: the extended regular
/// file, followed by its `block_list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LRegInode {
    /// Where its first data block is in the image.
    pub(crate) start_block: u64,
    /// The file's size in bytes.
    pub(crate) file_size: u64,
    /// Bytes stored as holes (all-zero blocks with a size word of 0).
    pub(crate) sparse: u64,
    /// The number of names it has.
    pub(crate) nlink: u32,
    /// The fragment block holding its tail, or `u32::MAX` for none.
    pub(crate) fragment: u32,
    /// Where the tail starts in the unpacked fragment block.
    pub(crate) offset: u32,
    /// The xattr id, or `u32::MAX` for none.
    pub(crate) xattr: u32,
}

impl Record for LRegInode {
    const NAME: &'static str = "extended file inode";
    const SIZE: usize = 40;

    fn encode(&self, w: &mut RecordWriter) {
        w.le64(self.start_block)
            .le64(self.file_size)
            .le64(self.sparse)
            .le32(self.nlink)
            .le32(self.fragment)
            .le32(self.offset)
            .le32(self.xattr);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(LRegInode {
            start_block: r.le64()?,
            file_size: r.le64()?,
            sparse: r.le64()?,
            nlink: r.le32()?,
            fragment: r.le32()?,
            offset: r.le32()?,
            xattr: r.le32()?,
        })
    }
}

/// `struct squashfs_symlink_inode` after the header: followed by the
/// `symlink_size` bytes of the target, and in the extended form by a
/// 32-bit xattr id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SymlinkInode {
    /// The number of names it has.
    pub(crate) nlink: u32,
    /// The target's length.
    pub(crate) symlink_size: u32,
}

impl Record for SymlinkInode {
    const NAME: &'static str = "symlink inode";
    const SIZE: usize = 8;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.nlink).le32(self.symlink_size);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(SymlinkInode {
            nlink: r.le32()?,
            symlink_size: r.le32()?,
        })
    }
}

/// `struct squashfs_dev_inode` and `squashfs_ldev_inode` after the
/// header: a block or character device, with the xattr id in the extended
/// form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DevInode {
    /// The number of names it has.
    pub(crate) nlink: u32,
    /// The device number, as Linux's `new_encode_dev` packs it.
    pub(crate) rdev: u32,
}

impl DevInode {
    /// The device number of `major` (at most 12 bits) and `minor` (at most
    /// 20), as Linux's `new_encode_dev`.
    pub(crate) fn encode_dev(major: u32, minor: u32) -> u32 {
        (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
    }

    /// The major and minor of `rdev`, as Linux's `new_decode_dev`.
    pub(crate) fn decode_dev(rdev: u32) -> (u32, u32) {
        (
            (rdev & 0xf_ff00) >> 8,
            (rdev & 0xff) | ((rdev >> 12) & 0xf_ff00),
        )
    }
}

impl Record for DevInode {
    const NAME: &'static str = "device inode";
    const SIZE: usize = 8;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.nlink).le32(self.rdev);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(DevInode {
            nlink: r.le32()?,
            rdev: r.le32()?,
        })
    }
}

/// `struct squashfs_ipc_inode` after the header: a fifo or a socket, with
/// the xattr id in the extended form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpcInode {
    /// The number of names it has.
    pub(crate) nlink: u32,
}

impl Record for IpcInode {
    const NAME: &'static str = "fifo or socket inode";
    const SIZE: usize = 4;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.nlink);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(IpcInode { nlink: r.le32()? })
    }
}

/// The xattr id that ends an extended device, fifo, socket or symlink
/// inode (`xattr` of `squashfs_ldev_inode` and `squashfs_lipc_inode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct XattrRef {
    /// The xattr id, or `u32::MAX` for none.
    pub(crate) xattr: u32,
}

impl Record for XattrRef {
    const NAME: &'static str = "inode xattr id";
    const SIZE: usize = 4;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.xattr);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(XattrRef { xattr: r.le32()? })
    }
}

/// `struct squashfs_dir_header`: starts a run of `count + 1` entries of a
/// listing whose inodes share one metadata block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirHeader {
    /// The number of entries that follow, minus one (at most 255).
    pub(crate) count: u32,
    /// The entries' inode metadata block, from the inode table's start.
    pub(crate) start_block: u32,
    /// The inode number the entries' numbers are relative to.
    pub(crate) inode_number: u32,
}

impl Record for DirHeader {
    const NAME: &'static str = "directory header";
    const SIZE: usize = 12;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.count)
            .le32(self.start_block)
            .le32(self.inode_number);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(DirHeader {
            count: r.le32()?,
            start_block: r.le32()?,
            inode_number: r.le32()?,
        })
    }
}

/// `struct squashfs_dir_entry`: one name of a listing, followed by its
/// `size + 1` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirEntry {
    /// Where the inode starts in its unpacked metadata block.
    pub(crate) offset: u16,
    /// The inode's number less the header's `inode_number` (signed).
    pub(crate) inode_number: i16,
    /// The inode's basic type.
    pub(crate) r#type: u16,
    /// The name's length, minus one.
    pub(crate) size: u16,
}

impl Record for DirEntry {
    const NAME: &'static str = "directory entry";
    const SIZE: usize = 8;

    fn encode(&self, w: &mut RecordWriter) {
        w.le16(self.offset)
            .bytes(&self.inode_number.to_le_bytes())
            .le16(self.r#type)
            .le16(self.size);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(DirEntry {
            offset: r.le16()?,
            inode_number: i16::from_le_bytes(r.array()?),
            r#type: r.le16()?,
            size: r.le16()?,
        })
    }
}

/// `struct squashfs_fragment_entry`: where a fragment block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FragmentEntry {
    /// Its position in the image.
    pub(crate) start_block: u64,
    /// Its size word: the stored length, with bit 24 if stored raw.
    pub(crate) size: u32,
}

impl Record for FragmentEntry {
    const NAME: &'static str = "fragment table entry";
    const SIZE: usize = 16;

    /// The 32-bit `unused` field is written as 0.
    fn encode(&self, w: &mut RecordWriter) {
        w.le64(self.start_block).le32(self.size).zeros(4);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        let e = FragmentEntry {
            start_block: r.le64()?,
            size: r.le32()?,
        };
        r.skip(4)?;
        Some(e)
    }
}

/// `struct squashfs_xattr_entry`: the name of one xattr pair, followed by
/// its `size` bytes (without the prefix the type names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct XattrEntry {
    /// The prefix (`SQUASHFS_XATTR_USER`...), with
    /// [`SQUASHFS_XATTR_VALUE_OOL`] if the value is out of line.
    pub(crate) r#type: u16,
    /// The name's length.
    pub(crate) size: u16,
}

impl Record for XattrEntry {
    const NAME: &'static str = "xattr entry";
    const SIZE: usize = 4;

    fn encode(&self, w: &mut RecordWriter) {
        w.le16(self.r#type).le16(self.size);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(XattrEntry {
            r#type: r.le16()?,
            size: r.le16()?,
        })
    }
}

/// `struct squashfs_xattr_val`: an xattr value's length, followed by the
/// value (or, out of line, by a 64-bit reference to the real one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct XattrVal {
    /// The value's length (8 for an out-of-line reference).
    pub(crate) vsize: u32,
}

impl Record for XattrVal {
    const NAME: &'static str = "xattr value";
    const SIZE: usize = 4;

    fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.vsize);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(XattrVal { vsize: r.le32()? })
    }
}

/// `struct squashfs_xattr_id`: one xattr id's set of pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct XattrId {
    /// A reference (metadata block << 16 | offset) to its first pair in
    /// the xattr table.
    pub(crate) xattr: u64,
    /// The number of pairs.
    pub(crate) count: u32,
    /// The total of the names (with their prefixes and a NUL each) and
    /// the values, as listxattr and getxattr would return them.
    pub(crate) size: u32,
}

impl Record for XattrId {
    const NAME: &'static str = "xattr id entry";
    const SIZE: usize = 16;

    fn encode(&self, w: &mut RecordWriter) {
        w.le64(self.xattr).le32(self.count).le32(self.size);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(XattrId {
            xattr: r.le64()?,
            count: r.le32()?,
            size: r.le32()?,
        })
    }
}

/// `struct squashfs_xattr_id_table`: the header the superblock's xattr
/// table position points at, followed by the id blocks' positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct XattrIdTable {
    /// Where the pairs' metadata blocks start in the image.
    pub(crate) xattr_table_start: u64,
    /// The number of xattr ids.
    pub(crate) xattr_ids: u32,
}

impl Record for XattrIdTable {
    const NAME: &'static str = "xattr table header";
    const SIZE: usize = 16;

    /// The 32-bit `unused` field is written as 0.
    fn encode(&self, w: &mut RecordWriter) {
        w.le64(self.xattr_table_start).le32(self.xattr_ids).zeros(4);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        let t = XattrIdTable {
            xattr_table_start: r.le64()?,
            xattr_ids: r.le32()?,
        };
        r.skip(4)?;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `record`, checks its size and the bytes, and decodes it back,
    /// also from every shorter prefix (which must fail).
    fn round_trip<T: Record + PartialEq + std::fmt::Debug>(record: T, bytes: &[u8]) {
        let b = record.to_bytes();
        assert_eq!(b.len(), T::SIZE, "{}", T::NAME);
        assert_eq!(b, bytes, "{}", T::NAME);
        let mut r = RecordReader::new(&b);
        assert_eq!(T::decode(&mut r), Some(record), "{}", T::NAME);
        assert!(r.rest().is_empty());
        for len in 0..b.len() {
            assert_eq!(T::decode(&mut RecordReader::new(&b[..len])), None, "{len}");
        }
    }

    #[test]
    fn records_have_the_kernel_layout() {
        round_trip(
            InodeHeader {
                inode_type: 9,
                mode: 0o4755,
                uid: 1,
                guid: 2,
                mtime: 0x0102_0304,
                inode_number: 0x0a0b_0c0d,
            },
            &[9, 0, 0xed, 9, 1, 0, 2, 0, 4, 3, 2, 1, 0xd, 0xc, 0xb, 0xa],
        );
        round_trip(
            DirInode {
                start_block: 1,
                nlink: 2,
                file_size: 3,
                offset: 4,
                parent_inode: 5,
            },
            &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 4, 0, 5, 0, 0, 0],
        );
        round_trip(
            LDirInode {
                nlink: 1,
                file_size: 2,
                start_block: 3,
                parent_inode: 4,
                i_count: 5,
                offset: 6,
                xattr: u32::MAX,
            },
            &[
                1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
            ],
        );
        round_trip(
            DirIndex {
                index: 1,
                start_block: 2,
                size: 3,
            },
            &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0],
        );
        round_trip(
            RegInode {
                start_block: 96,
                fragment: u32::MAX,
                offset: 0,
                file_size: 5,
            },
            &[96, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 5, 0, 0, 0],
        );
        let lreg = LRegInode {
            start_block: 1 << 32,
            file_size: 2,
            sparse: 3,
            nlink: 4,
            fragment: 5,
            offset: 6,
            xattr: 7,
        };
        let mut want = vec![0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3];
        want.extend([0; 7]);
        for v in [4, 5, 6, 7] {
            want.extend([v, 0, 0, 0]);
        }
        round_trip(lreg, &want);
        round_trip(
            SymlinkInode {
                nlink: 1,
                symlink_size: 10,
            },
            &[1, 0, 0, 0, 10, 0, 0, 0],
        );
        round_trip(
            DevInode {
                nlink: 1,
                rdev: 0x0103,
            },
            &[1, 0, 0, 0, 3, 1, 0, 0],
        );
        round_trip(IpcInode { nlink: 2 }, &[2, 0, 0, 0]);
        round_trip(XattrRef { xattr: 3 }, &[3, 0, 0, 0]);
        round_trip(
            DirHeader {
                count: 255,
                start_block: 2,
                inode_number: 40_001,
            },
            &[255, 0, 0, 0, 2, 0, 0, 0, 0x41, 0x9c, 0, 0],
        );
        round_trip(
            DirEntry {
                offset: 32,
                inode_number: -1,
                r#type: 2,
                size: 0,
            },
            &[32, 0, 0xff, 0xff, 2, 0, 0, 0],
        );
        round_trip(
            FragmentEntry {
                start_block: 96,
                size: 1 << 24 | 100,
            },
            &[96, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 1, 0, 0, 0, 0],
        );
        round_trip(
            XattrEntry {
                r#type: SQUASHFS_XATTR_SECURITY | SQUASHFS_XATTR_VALUE_OOL,
                size: 10,
            },
            &[2, 1, 10, 0],
        );
        round_trip(XattrVal { vsize: 8 }, &[8, 0, 0, 0]);
        round_trip(
            XattrId {
                xattr: 1 << 16 | 2,
                count: 3,
                size: 4,
            },
            &[2, 0, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0],
        );
        round_trip(
            XattrIdTable {
                xattr_table_start: 1000,
                xattr_ids: 2,
            },
            &[0xe8, 3, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
        );
    }

    #[test]
    fn device_numbers_pack_as_linux_does() {
        for (major, minor) in [(1, 3), (8, 0), (0xfff, 0xf_ffff), (259, 0x1_2345)] {
            let rdev = DevInode::encode_dev(major, minor);
            assert_eq!(DevInode::decode_dev(rdev), (major, minor));
        }
        assert_eq!(DevInode::encode_dev(1, 3), 0x0103);
        assert_eq!(DevInode::encode_dev(0, 0x100), 0x10_0000);
    }
}
