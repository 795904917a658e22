//! EROFS images, as the Linux kernel (6.12) and erofs-utils read them.
//!
//! [`ErofsEncoder`] writes a [`rootforge_common::View`] reproducibly: the
//! tree is planned first (inode order, xattrs, inode forms, directory
//! blocks, every limit checked), then file data is written block by block
//! or compressed into fixed-output-size pclusters on all cores, a window of
//! files at a time, and written in planned order. The metadata (inodes with
//! their inline tails or compressed indexes) follows the data, since a
//! compressed file's block addresses are known only once the files before
//! it are compressed; the superblock, which points at it, is written last
//! with [`rootforge_common::Sink::write_at`].
//!
//! Image layout, in blocks: the superblock (at byte 1024) and the
//! compression configurations, the file data, the metadata area
//! (`meta_blkaddr`; the root directory is its first inode), the blocks of
//! directories over one block, and the shared xattrs (`xattr_blkaddr`).
//!
//! [`read`] opens an image (ours, or mkfs.erofs's with uncompressed data or
//! full compressed indexes) as a tree, for tests, fuzzing and
//! `rootforge inspect`.

#![warn(missing_docs, unreachable_pub, clippy::cast_possible_truncation)]

mod comp;
mod read;
mod records;
mod write;
mod xattr;
mod zmap;

pub use comp::Comp;
pub use read::{is_erofs, read};
pub use write::ErofsEncoder;

use rootforge_common::{Error, display_path};

/// The format name used in errors.
const FORMAT: &str = "erofs";
/// The longest name a directory entry holds (`EROFS_NAME_LEN`).
const NAME_MAX: usize = 255;
/// The longest symlink target Linux follows (`PATH_MAX` less its NUL).
const SYMLINK_MAX: usize = 4095;

fn limit(path: &[u8], what: &'static str, value: u64, limit: u64) -> Error {
    Error::Limit {
        path: display_path(path),
        format: FORMAT,
        what,
        value,
        limit,
    }
}

fn overflow(what: &str) -> Error {
    Error::io(
        format!("laying out the erofs image ({what})"),
        std::io::Error::other("the image is too large for 32-bit block addresses"),
    )
}

#[cfg(test)]
mod tests;
