//! JFFS2, the journalling flash file system of NOR and small NAND flash, as
//! mtd-utils' mkfs.jffs2 writes it.
//!
//! [`Jffs2Encoder`] writes a [`rootforge_common::View`] as dirent, inode,
//! xattr and xref nodes in mkfs.jffs2's order, each file page compressed by
//! mkfs.jffs2's priority rule ([`Compr`]), packed into erase blocks that no
//! node crosses, with a cleanmarker at the start of each (NOR) or none
//! (NAND), in either byte order. [`read`] parses an image back the way the
//! kernel's scan does.

mod comp;
mod read;
pub mod records;
mod write;

pub use comp::Compr;
pub use read::{is_jffs2, read};
pub use records::Endian;
pub use write::{Jffs2Encoder, PAGE_SIZE, Pad};

#[cfg(test)]
mod tests;
