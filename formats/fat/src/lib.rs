//! FAT12, FAT16 and FAT32 (vfat) images, as Linux, mtools and dosfstools
//! read them.
//!
//! [`FatEncoder`] writes a [`rootforge_common::View`] as a FAT volume:
//! the FAT type and cluster size are chosen for the image size as
//! `mkfs.fat` 4.2 chooses them (see [`Geometry`]) unless set; names get
//! VFAT long name entries and the 8.3 short names Linux's vfat makes;
//! files are contiguous; times are the tree's mtimes at FAT's 2-second
//! resolution in 1980..2107; the volume ID is derived from the tree unless
//! given; FAT32 volumes have an FSInfo sector and a backup boot sector.
//! [`Encoder::plan`](rootforge_common::Encoder::plan) does every check;
//! the plan's write only writes, in increasing offset order, leaving
//! holes (via [`rootforge_common::Sink::skip`]) where the image is zero.
//!
//! [`read`] parses a volume back into a tree (for tests, fuzzing,
//! `rootforge inspect` and images given as input); [`is_fat`] sniffs one.

#![warn(missing_docs, unreachable_pub)]

mod geometry;
mod names;
mod plan;
mod raw;
mod read;

pub use geometry::Geometry;
pub use plan::FatPlan;
pub use read::{Volume, is_fat, read, read_volume};

use rootforge_common::{Error, Time};

/// The format name used in errors.
const FORMAT: &str = "vfat";

/// The FAT entry width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FatType {
    /// 12-bit entries: at most 4084 clusters.
    Fat12,
    /// 16-bit entries: 4085 to 65524 clusters.
    Fat16,
    /// 28-bit entries: from 65525 clusters.
    Fat32,
}

impl FatType {
    /// `FAT12`, `FAT16` or `FAT32`.
    pub fn name(self) -> &'static str {
        match self {
            FatType::Fat12 => "FAT12",
            FatType::Fat16 => "FAT16",
            FatType::Fat32 => "FAT32",
        }
    }

    /// The entry width in bits.
    pub fn bits(self) -> u32 {
        match self {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        }
    }

    /// The type of a volume with `clusters` clusters (the rule every FAT
    /// driver uses: the cluster count alone decides).
    pub fn for_clusters(clusters: u64) -> FatType {
        if clusters <= geometry::MAX_CLUST_12 {
            FatType::Fat12
        } else if clusters <= geometry::MAX_CLUST_16 {
            FatType::Fat16
        } else {
            FatType::Fat32
        }
    }
}

impl std::str::FromStr for FatType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().trim_start_matches("fat") {
            "12" => Ok(FatType::Fat12),
            "16" => Ok(FatType::Fat16),
            "32" => Ok(FatType::Fat32),
            _ => Err(format!("`{s}` is not a FAT type (12, 16 or 32)")),
        }
    }
}

impl std::fmt::Display for FatType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.bits())
    }
}

/// The image size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatSize {
    /// The smallest size (in whole MiB) whose volume holds the tree, plus
    /// `headroom` bytes.
    Auto {
        /// Free space to add.
        headroom: u64,
    },
    /// Exactly this many bytes (a partition's size).
    Fixed(u64),
    /// The smallest volume that holds the tree, to the sector: no
    /// alignment, no slack, mkfs.fat's CHS rules not applied (an El Torito
    /// EFI image). The image ends with the last cluster.
    Compact,
}

impl Default for FatSize {
    fn default() -> Self {
        FatSize::Auto { headroom: 0 }
    }
}

/// How the volume is made. The defaults are `mkfs.fat`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatOptions {
    /// The image size.
    pub size: FatSize,
    /// The FAT type [default: by size, as mkfs.fat chooses].
    pub fat_type: Option<FatType>,
    /// Bytes per cluster, a power of two of 1 to 128 sectors [default: by
    /// size, as mkfs.fat chooses].
    pub cluster_size: Option<u32>,
    /// Bytes per sector: 512, 1024, 2048 or 4096 [default: 512].
    pub sector_size: u32,
    /// Copies of the FAT, 1 or 2 [default: 2].
    pub fats: u32,
    /// Entries of the FAT12/16 root directory [default: 512, rounded up to
    /// whole clusters; more when the root needs more].
    pub root_entries: Option<u32>,
    /// Reserved sectors [default: 1 on FAT12/16, 32 on FAT32].
    pub reserved_sectors: Option<u32>,
    /// The volume label, at most 11 characters [default: none, `NO NAME`].
    pub label: Option<String>,
    /// The volume ID (serial number) [default: derived from the tree].
    pub volume_id: Option<u32>,
    /// `BS_OEMName` [default: `ROOTFRGE`].
    pub oem_name: [u8; 8],
    /// The time of the volume label's entry (`SOURCE_DATE_EPOCH`).
    pub created: Time,
}

impl Default for FatOptions {
    fn default() -> Self {
        FatOptions {
            size: FatSize::default(),
            fat_type: None,
            cluster_size: None,
            sector_size: 512,
            fats: 2,
            root_entries: None,
            reserved_sectors: None,
            label: None,
            volume_id: None,
            oem_name: *b"ROOTFRGE",
            created: Time::default(),
        }
    }
}

/// Writes FAT images. See the crate documentation.
#[derive(Debug, Clone, Default)]
pub struct FatEncoder {
    /// How the volume is made.
    pub options: FatOptions,
}

impl FatEncoder {
    /// An encoder with these options.
    pub fn new(options: FatOptions) -> Self {
        FatEncoder { options }
    }
}

fn options_error(what: impl Into<String>) -> Error {
    Error::Unsupported {
        path: "/".to_owned(),
        format: FORMAT,
        what: what.into(),
    }
}

/// The corrupt-image error at byte `offset`.
fn malformed(offset: u64, reason: impl Into<String>) -> Error {
    Error::malformed(FORMAT, offset, reason)
}

#[cfg(test)]
mod tests;
