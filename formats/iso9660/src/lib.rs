//! ISO9660 images as Linux, xorriso and libarchive read them.
//!
//! [`IsoEncoder`] writes a [`rootforge_common::View`] as an ECMA-119 level 3
//! image with Rock Ridge (RRIP 1.10 entries, with the 1.12 file serial in
//! `PX` so hard links can be found again) and an optional Joliet tree, El
//! Torito boot entries (BIOS and EFI), an isohybrid MBR with a GPT, and
//! zisofs compression. The whole layout is planned first as a pure function
//! of the view and the options; the image is then written in increasing
//! offset order, so it can go through an outer compressor.
//!
//! [`read`] parses an image back into a tree (Rock Ridge aware), for tests,
//! fuzzing and `rootforge inspect`.

// The crate's own guard rails (the workspace lints apply as well).
#![warn(missing_docs, unreachable_pub, clippy::cast_possible_truncation)]

mod areas;
mod boot;
mod fat;
mod names;
mod plan;
mod raw;
mod read;
mod time;
mod write;
mod zisofs;

use std::sync::Arc;

use rootforge_common::{Error, Time, Tree, display_path};

pub use read::{is_iso, read};

/// The format name used in errors.
const FORMAT: &str = "iso9660";
/// The logical block size; every extent starts on one.
const BLOCK: u64 = 2048;
/// [`BLOCK`] as a length in memory.
const BLOCK_LEN: usize = 2048;
/// Directory nesting the reader follows (it recurses): the encoder refuses
/// deeper trees rather than write an image the reader calls malformed.
const MAX_DEPTH: usize = 1024;
/// The largest extent of a multi-extent file: the largest multiple of the
/// block size that a 32-bit length field holds.
const MAX_EXTENT: u64 = 0xFFFF_F800;

/// Writes ISO9660 images. See the crate documentation.
#[derive(Debug, Clone)]
pub struct IsoEncoder {
    /// The primary volume identifier (d-characters, at most 32; other
    /// characters are mapped to `_` and longer ids are cut).
    pub volume_id: String,
    /// Add a Joliet tree (UCS-2 names for Windows).
    pub joliet: bool,
    /// Path inside the image (no leading slash) of a BIOS no-emulation boot
    /// image; it gets a boot info table.
    pub boot_bios: Option<Vec<u8>>,
    /// 512-byte sectors the BIOS loads of the boot image (4 for ISOLINUX
    /// and GRUB).
    pub boot_load_size: u16,
    /// Path inside the image of a FAT image for the EFI boot entry.
    pub boot_efi: Option<Vec<u8>>,
    /// A tree to build a FAT image from natively and use as the EFI boot
    /// image (stored as a hidden extent, reachable only from the boot
    /// catalog and the partition tables). Ignored when `boot_efi` is set.
    pub efi_tree: Option<Arc<Tree>>,
    /// MBR boot code (syslinux's `isohdpfx.bin`; its first 432 bytes are
    /// used): makes the image isohybrid, with an MBR partition table and,
    /// when there is an EFI boot image, a GPT that names it.
    pub hybrid_mbr: Option<Vec<u8>>,
    /// Compress regular files with zisofs (Linux `CONFIG_ZISOFS`) where
    /// that saves space.
    pub zisofs: bool,
    /// The volume creation and modification dates (`SOURCE_DATE_EPOCH`);
    /// also seeds the MBR id and GPT GUIDs.
    pub created: Time,
}

impl Default for IsoEncoder {
    fn default() -> Self {
        IsoEncoder {
            volume_id: "ROOTFS".to_owned(),
            joliet: true,
            boot_bios: None,
            boot_load_size: 4,
            boot_efi: None,
            efi_tree: None,
            hybrid_mbr: None,
            zisofs: false,
            created: Time::default(),
        }
    }
}

fn limit(path: &[u8], what: &'static str, value: u64, limit: u64) -> Error {
    Error::Limit {
        path: display_path(path),
        format: FORMAT,
        what,
        value,
        limit,
    }
}

/// The corrupt-image error at byte `offset`.
fn malformed(offset: u64, reason: impl Into<String>) -> Error {
    Error::malformed(FORMAT, offset, reason)
}

fn overflow() -> Error {
    Error::io(
        "laying out the ISO9660 image",
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "image size overflows"),
    )
}

/// Blocks needed for `bytes`.
fn blocks(bytes: u64) -> u64 {
    bytes.div_ceil(BLOCK)
}

#[cfg(test)]
mod tests;
