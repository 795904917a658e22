//! SquashFS 4.0 images, as the Linux kernel and squashfs-tools read them.
//!
//! [`SquashfsEncoder`] writes a [`rootforge_common::View`] reproducibly:
//! the layout is planned from the view first, data and fragment blocks are
//! compressed in parallel and written in planned order, so the bytes are the
//! same for any thread count.
//!
//! The superblock at offset 0 holds every table's position, which depends
//! on every block's compressed size: blocks are compressed and written a
//! window at a time behind a placeholder, and the superblock is written
//! last with [`rootforge_common::Sink::write_at`], so memory holds one
//! window of blocks, not the image.
//!
//! [`read`] opens an image (ours or mksquashfs's) as a tree whose files
//! decompress on demand, for tests, fuzzing and `rootforge inspect`.

#![warn(missing_docs, unreachable_pub, clippy::cast_possible_truncation)]

mod comp;
mod data;
mod dir;
mod meta;
mod plan;
mod read;
mod records;
mod superblock;
mod write;
mod xattr;

pub use comp::{Bcj, Comp};
pub use read::{is_squashfs, read};
pub use write::SquashfsEncoder;

use rootforge_common::{Error, display_path};

/// The format name used in errors.
const FORMAT: &str = "squashfs";
/// The longest name a directory entry holds (Linux's `NAME_MAX`).
const NAME_MAX: usize = 255;
/// The longest path (without its leading `/`) the reader follows: it bounds
/// the walk's cost, so the encoder refuses what the reader would.
const PATH_MAX: usize = 4096;
/// No fragment, no xattr.
const NONE32: u32 = u32::MAX;
/// An absent table.
const NONE64: u64 = u64::MAX;
/// The size word bit of a data or fragment block stored raw
/// (`SQUASHFS_COMPRESSED_BIT_BLOCK`).
const BLOCK_RAW: u32 = 1 << 24;

fn limit(path: &[u8], what: &'static str, value: u64, limit: u64) -> Error {
    Error::Limit {
        path: display_path(path),
        format: FORMAT,
        what,
        value,
        limit,
    }
}

fn overflow_error() -> Error {
    Error::io("laying out the squashfs image", meta::overflow())
}

#[cfg(test)]
mod sample;
#[cfg(test)]
mod tests;
