//! On-disk constants and little helpers shared by the writer and the reader.

pub(crate) const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub(crate) const COMPAT_EXT_ATTR: u32 = 0x8;
pub(crate) const COMPAT_DIR_INDEX: u32 = 0x20;

pub(crate) const INCOMPAT_FILETYPE: u32 = 0x2;
pub(crate) const INCOMPAT_EXTENTS: u32 = 0x40;
pub(crate) const INCOMPAT_64BIT: u32 = 0x80;
pub(crate) const INCOMPAT_FLEX_BG: u32 = 0x200;

pub(crate) const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub(crate) const RO_COMPAT_LARGE_FILE: u32 = 0x2;
pub(crate) const RO_COMPAT_HUGE_FILE: u32 = 0x8;
pub(crate) const RO_COMPAT_DIR_NLINK: u32 = 0x20;
pub(crate) const RO_COMPAT_EXTRA_ISIZE: u32 = 0x40;
pub(crate) const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

pub(crate) const SUPER_MAGIC: u16 = 0xEF53;

pub(crate) const ROOT_INO: u32 = 2;
pub(crate) const JOURNAL_INO: u32 = 8;
pub(crate) const FIRST_INO: u32 = 11;

pub(crate) const EXTENTS_FL: u32 = 0x8_0000;
pub(crate) const INDEX_FL: u32 = 0x1000;
pub(crate) const EXTENT_MAGIC: u16 = 0xF30A;
/// The longest initialised extent.
pub(crate) const EXTENT_MAX_LEN: u64 = 32768;

/// `DX_HASH_HALF_MD4`: the directory hash this writer uses.
pub(crate) const DX_HASH_HALF_MD4: u8 = 1;

pub(crate) const XATTR_MAGIC: u32 = 0xEA02_0000;
pub(crate) const EXTRA_ISIZE: u16 = 32;

/// Directory entry file types (`filetype` feature).
pub(crate) const FT_REG: u8 = 1;
pub(crate) const FT_DIR: u8 = 2;
pub(crate) const FT_CHR: u8 = 3;
pub(crate) const FT_BLK: u8 = 4;
pub(crate) const FT_FIFO: u8 = 5;
pub(crate) const FT_SOCK: u8 = 6;
pub(crate) const FT_SYMLINK: u8 = 7;

/// Entries a link count can reach; a directory past it stores 1
/// (`dir_nlink`).
pub(crate) const LINK_MAX: u32 = 65000;

/// ext4's crc32c: the raw register, without the final inversion.
pub(crate) fn crc32c(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

/// `n` rounded up to a multiple of 4.
pub(crate) const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// A length or offset inside a block as the 16 bits ext stores.
#[expect(
    clippy::cast_possible_truncation,
    reason = "blocks are at most 4 KiB, so lengths and offsets in one fit 16 bits"
)]
pub(crate) const fn in_block(n: usize) -> u16 {
    n as u16
}

/// A length inside a block as 32 bits.
#[expect(
    clippy::cast_possible_truncation,
    reason = "blocks are at most 4 KiB, so lengths in one fit 32 bits"
)]
pub(crate) const fn in_block_u32(n: usize) -> u32 {
    n as u32
}

/// A name's length as its one-byte field.
#[expect(
    clippy::cast_possible_truncation,
    reason = "planning refuses names over 255 bytes"
)]
pub(crate) const fn name_len(name: &[u8]) -> u8 {
    name.len() as u8
}

/// The low 16 bits of a field ext splits in two (or keeps only the low
/// half of, as `i_uid` without the high word).
#[expect(clippy::cast_possible_truncation, reason = "the low half, on purpose")]
pub(crate) const fn lo16(v: u32) -> u16 {
    v as u16
}

/// The high 16 bits of a 32-bit value.
pub(crate) const fn hi16(v: u32) -> u16 {
    (v >> 16) as u16
}

/// The low 32 bits of a field ext splits in two (`_lo`), or of a count
/// that fits 32 bits without `64bit` (checked in planning).
#[expect(clippy::cast_possible_truncation, reason = "the low half, on purpose")]
pub(crate) const fn lo32(v: u64) -> u32 {
    v as u32
}

/// The high 32 bits of a 64-bit value (`_hi`, `_high`).
pub(crate) const fn hi32(v: u64) -> u32 {
    (v >> 32) as u32
}

/// A length or index of a buffer the writer holds in memory (bitmaps,
/// inode tables, rendered blocks), or of a block inside one.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the buffer is in memory, so its lengths and indexes fit the address space"
)]
pub(crate) const fn mem(n: u64) -> usize {
    n as usize
}
