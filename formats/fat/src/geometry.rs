//! The volume's layout for an image size, chosen as `mkfs.fat` 4.2 chooses
//! it (dosfstools `establish_params` and `setup_tables`), so an image of a
//! given size has the FAT type, cluster size, FAT length and data start an
//! `mkfs.fat` of the same size would have:
//!
//! - the CHS geometry follows the SD card recommendation below 256 MiB and
//!   LBA-assist translation above; the sector count is cut to a whole number
//!   of tracks (DOS and mtools want that), unless the volume is 8192 sectors
//!   or less, where nothing is aligned;
//! - FAT32 from 512 MiB on, with clusters by size as Microsoft's format does
//!   (512 bytes up to 260 MiB, 4 KiB up to 8 GiB, 8 KiB up to 16 GiB, 16 KiB
//!   up to 32 GiB, else 32 KiB);
//! - FAT12/16 start at 4 sectors per cluster and double it until a FAT
//!   type holds the clusters; FAT16 must have at least 4087 clusters (fewer
//!   would be read as FAT12) and FAT32 at least 65525;
//! - reserved sectors, FATs and the root directory are rounded up to whole
//!   clusters, so clusters are aligned in the image;
//! - the five floppy sizes (360K, 720K, 1200K, 1440K, 2880K) get the floppy
//!   media byte, geometry, cluster size and root directory size.

use rootforge_common::{Error, Result};

use crate::{FORMAT, FatType, options_error};

/// FAT12's largest cluster count.
pub(crate) const MAX_CLUST_12: u64 = 4084;
/// FAT16's smallest cluster count that is not taken for FAT12.
const MIN_CLUST_16: u64 = 4087;
/// FAT16's largest cluster count.
pub(crate) const MAX_CLUST_16: u64 = 65524;
/// FAT32's smallest cluster count that is not taken for FAT16.
const MIN_CLUST_32: u64 = 65525;
/// FAT32's largest cluster count (28-bit entries, minus the reserved ones).
const MAX_CLUST_32: u64 = 268_435_446;

/// What the caller fixes; everything else is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) bytes: u64,
    pub(crate) sector_size: u32,
    pub(crate) fat_type: Option<FatType>,
    /// Sectors per cluster.
    pub(crate) sectors_per_cluster: Option<u32>,
    pub(crate) fats: u32,
    pub(crate) root_entries: Option<u32>,
    pub(crate) reserved_sectors: Option<u32>,
}

/// A volume's layout, in sectors of [`Geometry::sector_size`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// FAT12, FAT16 or FAT32.
    pub fat_type: FatType,
    /// Bytes per sector.
    pub sector_size: u32,
    /// Sectors per cluster.
    pub sectors_per_cluster: u32,
    /// Sectors before the first FAT (the boot sector, and on FAT32 the
    /// FSInfo sector and the backup boot sector).
    pub reserved_sectors: u32,
    /// Copies of the FAT.
    pub fats: u32,
    /// Sectors of one FAT.
    pub fat_sectors: u32,
    /// Entries of the fixed root directory (0 on FAT32).
    pub root_entries: u32,
    /// Sectors the volume has (the image may be longer: the rest of the
    /// last track is unused).
    pub total_sectors: u32,
    /// Data clusters (numbered from 2).
    pub clusters: u32,
    /// The media byte (0xF8 for a fixed disk).
    pub media: u8,
    /// Sectors per track, as the boot sector records them.
    pub sectors_per_track: u16,
    /// Heads, as the boot sector records them.
    pub heads: u16,
}

impl Geometry {
    /// Bytes per cluster.
    pub fn cluster_bytes(&self) -> u64 {
        u64::from(self.sectors_per_cluster) * u64::from(self.sector_size)
    }

    /// Sectors of the fixed root directory.
    pub fn root_sectors(&self) -> u32 {
        (self.root_entries * 32).div_ceil(self.sector_size)
    }

    /// The first sector of FAT number `n`.
    pub fn fat_start(&self, n: u32) -> u32 {
        self.reserved_sectors + n * self.fat_sectors
    }

    /// The first sector of the fixed root directory (FAT12/16).
    pub fn root_start(&self) -> u32 {
        self.fat_start(self.fats)
    }

    /// The first sector of cluster 2.
    pub fn data_start(&self) -> u32 {
        self.root_start() + self.root_sectors()
    }

    /// The byte offset of cluster `c` (2 or more).
    pub fn cluster_offset(&self, c: u32) -> u64 {
        u64::from(self.data_start()) * u64::from(self.sector_size)
            + u64::from(c - 2) * self.cluster_bytes()
    }

    /// The volume's bytes.
    pub fn volume_bytes(&self) -> u64 {
        u64::from(self.total_sectors) * u64::from(self.sector_size)
    }
}

fn round_up(n: u64, to: u64, align: bool) -> u64 {
    if align { n.div_ceil(to) * to } else { n }
}

/// The floppy formats `mkfs.fat` knows by size: (KiB, sectors per track,
/// heads, media, sectors per cluster, root entries).
const FLOPPIES: [(u64, u16, u16, u8, u32, u32); 5] = [
    (360, 9, 2, 0xFD, 2, 112),
    (720, 9, 2, 0xF9, 2, 112),
    (1200, 15, 2, 0xF9, 1, 224),
    (1440, 18, 2, 0xF0, 1, 224),
    (2880, 36, 2, 0xF0, 2, 224),
];

/// The layout for `req`, or why there is none.
pub(crate) fn choose(req: &Request) -> Result<Geometry> {
    let ss = u64::from(req.sector_size);
    let size_sectors = req.bytes / ss;
    let (mut spt, mut heads) = if size_sectors <= 524_288 {
        let heads = match size_sectors {
            0..=32_768 => 2,
            32_769..=65_536 => 4,
            65_537..=262_144 => 8,
            _ => 16,
        };
        (if size_sectors <= 4096 { 16 } else { 32 }, heads)
    } else {
        let heads = match size_sectors {
            n if n <= 16 * 63 * 1024 => 16,
            n if n <= 32 * 63 * 1024 => 32,
            n if n <= 64 * 63 * 1024 => 64,
            n if n <= 128 * 63 * 1024 => 128,
            _ => 255,
        };
        (63, heads)
    };
    let mut media = 0xF8;
    let mut spc = 4u64;
    let mut default_root = 512u64;
    if let Some(&(_, s, h, m, c, r)) = FLOPPIES.iter().find(|f| f.0 == req.bytes / 1024) {
        (spt, heads, media, spc, default_root) = (s, h, m, u64::from(c), u64::from(r));
    }
    let fat_type = match req.fat_type {
        Some(t) => Some(t),
        None if req.bytes >= 512 << 20 => Some(FatType::Fat32),
        None => None,
    };
    if fat_type == Some(FatType::Fat32) {
        spc = match size_sectors {
            n if n > 32 * 1024 * 1024 * 2 => 64,
            n if n > 16 * 1024 * 1024 * 2 => 32,
            n if n > 8 * 1024 * 1024 * 2 => 16,
            n if n > 260 * 1024 * 2 => 8,
            _ => 1,
        };
    }
    let fats = u64::from(req.fats);
    let reserved = match req.reserved_sectors {
        Some(r) => {
            if fat_type == Some(FatType::Fat32) && r < 2 {
                return Err(options_error("FAT32 needs at least 2 reserved sectors"));
            }
            u64::from(r)
        }
        None if fat_type == Some(FatType::Fat32) => 32,
        None => 1,
    };
    let root_entries = if fat_type == Some(FatType::Fat32) {
        0
    } else {
        req.root_entries.map_or(default_root, u64::from)
    };
    let root_sectors = (root_entries * 32).div_ceil(ss);
    let mut align = true;
    let mut num_sectors = size_sectors.min(u64::from(u32::MAX));
    num_sectors = num_sectors / u64::from(spt) * u64::from(spt);
    if num_sectors <= 8192 {
        align = false;
    }
    let max_spc = match req.sectors_per_cluster {
        Some(s) => {
            spc = u64::from(s);
            spc
        }
        None => 128,
    };
    let too_small = || Error::Limit {
        path: "/".to_owned(),
        format: FORMAT,
        what: "the image size in bytes",
        value: req.bytes,
        limit: 0,
    };
    // (clusters, fat sectors) for each type at the cluster size tried.
    let mut found: Option<(FatType, u64, u64)> = None;
    while spc <= max_spc {
        let fatdata32 = num_sectors
            .checked_sub(round_up(reserved, spc, align))
            .ok_or_else(too_small)?;
        let fatdata1216 = fatdata32
            .checked_sub(round_up(root_sectors, spc, align))
            .ok_or_else(too_small)?;
        let fit = |clust: u64, bits: u64, data: u64| -> (u64, u64) {
            // FAT sectors for `clust` clusters, and the clusters left
            // beside that many FATs.
            let len = round_up(((clust + 2) * bits).div_ceil(8).div_ceil(ss), spc, align);
            let left = data.saturating_sub(fats * len) / spc;
            (left, len)
        };
        let guess12 = 2 * (fatdata1216 * ss + fats * 3) / (2 * spc * ss + fats * 3);
        let (c12, l12) = fit(guess12, 12, fatdata1216);
        let max12 = (l12 * 2 * ss / 3).min(MAX_CLUST_12);
        let c12 = if c12 > max12 { 0 } else { c12 };
        let guess16 = (fatdata1216 * ss + fats * 4) / (spc * ss + fats * 2);
        let (c16, l16) = fit(guess16, 16, fatdata1216);
        let max16 = (l16 * ss / 2).min(MAX_CLUST_16);
        let mut c16 = if c16 > max16 { 0 } else { c16 };
        if c16 < MIN_CLUST_16 {
            c16 = 0;
        }
        let guess32 = (fatdata32 * ss + fats * 8) / (spc * ss + fats * 4);
        let (c32, l32) = fit(guess32, 32, fatdata32);
        let max32 = (l32 * ss / 4).min(MAX_CLUST_32);
        let mut c32 = if c32 > max32 { 0 } else { c32 };
        if c32 < MIN_CLUST_32 && req.fat_type != Some(FatType::Fat32) {
            c32 = 0;
        }
        let pick = match fat_type {
            Some(FatType::Fat12) => (c12 > 0).then_some((FatType::Fat12, c12, l12)),
            Some(FatType::Fat16) => (c16 > 0).then_some((FatType::Fat16, c16, l16)),
            Some(FatType::Fat32) => (c32 > 0).then_some((FatType::Fat32, c32, l32)),
            None if c16 > c12 => Some((FatType::Fat16, c16, l16)),
            None if c12 > 0 => Some((FatType::Fat12, c12, l12)),
            None => None,
        };
        if let Some(p) = pick {
            found = Some(p);
            break;
        }
        spc *= 2;
    }
    let Some((fat_type, clusters, fat_sectors)) = found else {
        return Err(Error::Unsupported {
            path: "/".to_owned(),
            format: FORMAT,
            what: format!(
                "an image of {} bytes with these options (no cluster size gives a valid {})",
                req.bytes,
                req.fat_type.map_or("FAT", FatType::name)
            ),
        });
    };
    let reserved = round_up(reserved, spc, align);
    let root_entries = if align {
        round_up(root_sectors, spc, true) * (ss / 32)
    } else {
        root_entries
    };
    let as32 = |n: u64, what: &'static str| {
        u32::try_from(n).map_err(|_| Error::Limit {
            path: "/".to_owned(),
            format: FORMAT,
            what,
            value: n,
            limit: u64::from(u32::MAX),
        })
    };
    if reserved > 0xFFFF {
        return Err(options_error("more than 65535 reserved sectors"));
    }
    if root_entries > 0xFFFF {
        return Err(options_error("more than 65535 root directory entries"));
    }
    Ok(Geometry {
        fat_type,
        sector_size: req.sector_size,
        sectors_per_cluster: as32(spc, "sectors per cluster")?,
        reserved_sectors: as32(reserved, "reserved sectors")?,
        fats: req.fats,
        fat_sectors: as32(fat_sectors, "FAT sectors")?,
        root_entries: as32(root_entries, "root directory entries")?,
        total_sectors: as32(num_sectors, "sectors")?,
        clusters: as32(clusters, "clusters")?,
        media,
        sectors_per_track: spt,
        heads,
    })
}

/// The smallest volume that holds `need(cluster bytes, fat32)` clusters
/// and `root_slots` root entries, with no alignment and no slack: the
/// layout of an El Torito EFI image (what `mkfs.fat -C` of an exact size
/// would hold). The smallest cluster that keeps the count within FAT16
/// wins; a tree too large for that gets FAT32 with 4 KiB clusters.
pub(crate) fn compact(
    req: &Request,
    root_slots: u64,
    need: &dyn Fn(u64, bool) -> u64,
) -> Result<Geometry> {
    let ss = u64::from(req.sector_size);
    let fats = u64::from(req.fats);
    let overflow = || options_error("a tree larger than any FAT volume");
    let pick = |spc: u64, t: FatType| -> Result<Geometry> {
        let fat32 = t == FatType::Fat32;
        let count = need(spc * ss, fat32).max(1);
        let count = if fat32 {
            count.max(MIN_CLUST_32)
        } else {
            count
        };
        let reserved = req
            .reserved_sectors
            .map_or(if fat32 { 32 } else { 1 }, u64::from);
        let root_entries = if fat32 {
            0
        } else {
            req.root_entries
                .map_or(root_slots.max(512), u64::from)
                .next_multiple_of(ss / 32)
        };
        let fat_bytes = ((count + 2) * u64::from(t.bits())).div_ceil(8);
        let fat_sectors = fat_bytes.div_ceil(ss);
        let data = reserved + fats * fat_sectors + (root_entries * 32).div_ceil(ss);
        let total = count
            .checked_mul(spc)
            .and_then(|d| d.checked_add(data))
            .ok_or_else(overflow)?;
        let as32 = |n: u64| u32::try_from(n).map_err(|_| overflow());
        Ok(Geometry {
            fat_type: t,
            sector_size: req.sector_size,
            sectors_per_cluster: as32(spc)?,
            reserved_sectors: as32(reserved)?,
            fats: req.fats,
            fat_sectors: as32(fat_sectors)?,
            root_entries: as32(root_entries)?,
            total_sectors: as32(total)?,
            clusters: as32(count)?,
            media: 0xF8,
            sectors_per_track: 32,
            heads: 64,
        })
    };
    let sizes: Vec<u64> = match req.sectors_per_cluster {
        Some(s) => vec![u64::from(s)],
        None => (0..8).map(|k| 1u64 << k).collect(),
    };
    if req.fat_type != Some(FatType::Fat32) {
        for &spc in &sizes {
            let count = need(spc * ss, false).max(1);
            let t = match req.fat_type {
                Some(t) => t,
                None if count > MAX_CLUST_12 => FatType::Fat16,
                None => FatType::Fat12,
            };
            let ok = match t {
                FatType::Fat12 => count <= MAX_CLUST_12,
                _ => (MAX_CLUST_12 < count || req.fat_type.is_some()) && count <= MAX_CLUST_16,
            };
            if ok {
                return pick(spc, t);
            }
        }
        if req.fat_type.is_some() {
            return Err(options_error(format!(
                "the tree in a compact {} volume (no cluster size holds it)",
                req.fat_type.map_or("FAT", FatType::name)
            )));
        }
    }
    let spc = req
        .sectors_per_cluster
        .map_or((4096 / ss).max(1), u64::from);
    pick(spc, FatType::Fat32)
}
