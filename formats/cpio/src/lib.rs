//! SVR4 "new ASCII" cpio archives (newc `070701` and crc `070702`), the only
//! formats the Linux kernel unpacks as an initramfs.
//!
//! [`CpioEncoder`] writes a [`rootforge_common::View`] reproducibly in
//! `find . | LC_ALL=C sort` order; [`read`] parses an archive back into a
//! [`rootforge_common::Tree`] the way the kernel's unpacker would, with file
//! data left in place in the image buffer.

#![warn(missing_docs, unreachable_pub, clippy::cast_possible_truncation)]

mod header;
mod read;
mod write;

pub use header::{CpioFormat, is_cpio};
pub use read::read;
pub use write::CpioEncoder;

/// The kernel's `PATH_MAX`: the longest name, NUL included, and the longest
/// symlink target its initramfs unpacker accepts.
const PATH_MAX: usize = 4096;

/// The name of the member that ends an archive.
const TRAILER: &[u8] = b"TRAILER!!!";

#[cfg(test)]
mod tests;
