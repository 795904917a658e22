//! Reading a volume back into a tree: every FAT12/16/32 volume Linux
//! mounts, ours or mkfs.fat's, with long names (checksums checked) and
//! short names with their NT case bits. Untrusted input: arithmetic is
//! checked, cluster chains that loop or leave the volume are errors, and
//! no directory is entered twice.

use std::collections::HashSet;

use rootforge_common::bytes::usize_from_u32;
use rootforge_common::{
    Backing, Content, Edit, Extent, FileData, Inode, Meta, Replace, Result, Time, Tree, TreeBuilder,
};

use crate::geometry::Geometry;
use crate::names::{checksum, short_display};
use crate::raw::{
    ATTR_DIRECTORY, ATTR_LONG_NAME, ATTR_READ_ONLY, ATTR_VOLUME_ID, BootSector, DIR_ENTRY,
    DIR_FREE, DirEntry, FAT_MIN, FatTime, LAST_LONG_ENTRY, LongEntry,
};
use crate::{FatType, malformed};

/// Directory nesting followed.
const MAX_DEPTH: usize = 1024;
/// Bytes a directory may have (65536 entries).
const MAX_DIR_BYTES: u64 = 65_536 * DIR_ENTRY as u64;

/// Whether `head` starts with a FAT boot sector: the signature, a jump,
/// and a BIOS parameter block whose values a FAT volume can have.
pub fn is_fat(head: &[u8]) -> bool {
    let Some(bs) = BootSector::parse(head) else {
        return false;
    };
    let jump = head.first().is_some_and(|&b| b == 0xEB || b == 0xE9);
    let fat_sectors = bs
        .fat32
        .map_or(u32::from(bs.bpb_fat_sz16), |f| f.bpb_fat_sz32);
    jump && matches!(bs.bpb_byts_per_sec, 512 | 1024 | 2048 | 4096)
        && bs.bpb_sec_per_clus.is_power_of_two()
        && bs.bpb_rsvd_sec_cnt > 0
        && (1..=4).contains(&bs.bpb_num_fats)
        && (bs.bpb_media >= 0xF8 || bs.bpb_media == 0xF0)
        && fat_sectors > 0
        && (bs.bpb_tot_sec16 != 0 || bs.bpb_tot_sec32 != 0)
}

/// A volume read back.
#[derive(Debug)]
pub struct Volume {
    /// Its layout.
    pub geometry: Geometry,
    /// `BS_VolID`.
    pub volume_id: u32,
    /// The label of the root directory's volume entry (else of the boot
    /// sector), without its padding; `None` for `NO NAME`.
    pub label: Option<String>,
    /// The files and directories.
    pub tree: Tree,
}

/// Reads a volume's tree.
///
/// # Errors
///
/// A [`rootforge_common::Error::Malformed`] naming the byte where the volume stops making
/// sense.
pub fn read(img: Backing) -> Result<Tree> {
    read_volume(img).map(|v| v.tree)
}

struct Reader {
    img: Backing,
    geo: Geometry,
    fat: Vec<u8>,
    tree: TreeBuilder,
    visited: HashSet<u32>,
    label: Option<[u8; 11]>,
}

fn read_at(img: &Backing, at: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    img.read_at(at, &mut buf)
        .map_err(|e| malformed(at, format!("cannot read {len} bytes: {e}")))?;
    Ok(buf)
}

/// Reads the whole volume.
///
/// # Errors
///
/// See [`read`].
pub fn read_volume(img: Backing) -> Result<Volume> {
    let head = read_at(&img, 0, 512.min(usize::try_from(img.len()).unwrap_or(512)))?;
    if !is_fat(&head) {
        return Err(malformed(0, "no FAT boot sector"));
    }
    let bs = BootSector::parse(&head).ok_or_else(|| malformed(0, "no FAT boot sector"))?;
    let ss = u32::from(bs.bpb_byts_per_sec);
    let spc = u32::from(bs.bpb_sec_per_clus);
    let total = if bs.bpb_tot_sec16 != 0 {
        u32::from(bs.bpb_tot_sec16)
    } else {
        bs.bpb_tot_sec32
    };
    let fat_sectors = bs
        .fat32
        .map_or(u32::from(bs.bpb_fat_sz16), |f| f.bpb_fat_sz32);
    let root_entries = u32::from(bs.bpb_root_ent_cnt);
    let root_sectors = (root_entries * 32).div_ceil(ss);
    let fats = u32::from(bs.bpb_num_fats);
    let data_start = fats
        .checked_mul(fat_sectors)
        .and_then(|f| f.checked_add(u32::from(bs.bpb_rsvd_sec_cnt)))
        .and_then(|f| f.checked_add(root_sectors))
        .filter(|&d| d < total)
        .ok_or_else(|| malformed(11, "the FATs and root directory do not fit the volume"))?;
    let clusters = (total - data_start) / spc;
    let fat_type = FatType::for_clusters(u64::from(clusters));
    if (fat_type == FatType::Fat32) != bs.fat32.is_some() {
        return Err(malformed(
            22,
            format!(
                "{clusters} clusters, but the BPB is not {}'s",
                fat_type.name()
            ),
        ));
    }
    let needed_fat = (u64::from(clusters) + 2) * u64::from(fat_type.bits()) / 8;
    if u64::from(fat_sectors) * u64::from(ss) < needed_fat {
        return Err(malformed(22, "the FAT is too short for the clusters"));
    }
    let geo = Geometry {
        fat_type,
        sector_size: ss,
        sectors_per_cluster: spc,
        reserved_sectors: u32::from(bs.bpb_rsvd_sec_cnt),
        fats,
        fat_sectors,
        root_entries,
        total_sectors: total,
        clusters,
        media: bs.bpb_media,
        sectors_per_track: bs.bpb_sec_per_trk,
        heads: bs.bpb_num_heads,
    };
    let end = geo.cluster_offset(clusters + 2);
    if end > img.len() {
        return Err(malformed(
            img.len(),
            format!("the image ends before the volume's {end} bytes"),
        ));
    }
    let fat_at = u64::from(geo.reserved_sectors) * u64::from(ss);
    // At most 4 bytes per cluster plus two: bounded by the image size.
    let fat_len = usize::try_from(needed_fat + 4)
        .map_err(|_| malformed(fat_at, "FAT too large"))?
        .min(usize_from_u32(fat_sectors) * usize_from_u32(ss));
    let fat = read_at(&img, fat_at, fat_len)?;
    let mut r = Reader {
        img,
        geo,
        fat,
        tree: TreeBuilder::new(Meta::new(0o755, 0, 0, Time::from_secs(FAT_MIN))),
        visited: HashSet::new(),
        label: None,
    };
    let root = match bs.fat32 {
        Some(f) => r.chain_bytes(f.bpb_root_clus, None, MAX_DIR_BYTES)?,
        None => {
            let at = u64::from(geo.root_start()) * u64::from(ss);
            read_at(&r.img, at, usize_from_u32(root_entries) * DIR_ENTRY)?
        }
    };
    if let Some(f) = bs.fat32 {
        r.visited.insert(f.bpb_root_clus);
    }
    r.dir(&root, &[], 0, true)?;
    let label = r
        .label
        .or((bs.bs_vol_lab != *b"NO NAME    ").then_some(bs.bs_vol_lab))
        .map(|l| String::from_utf8_lossy(&l).trim_end().to_owned());
    Ok(Volume {
        geometry: geo,
        volume_id: bs.bs_vol_id,
        label,
        tree: r.tree.finish(),
    })
}

impl Reader {
    /// FAT entry `c`.
    fn entry(&self, c: u32) -> Result<u32> {
        let c = usize_from_u32(c);
        let at_err = || malformed(0, format!("FAT entry {c} lies past the FAT"));
        Ok(match self.geo.fat_type {
            FatType::Fat12 => {
                let at = c + c / 2;
                let b = self.fat.get(at..at + 2).ok_or_else(at_err)?;
                let v = u32::from(u16::from_le_bytes([b[0], b[1]]));
                if c % 2 == 0 { v & 0xFFF } else { v >> 4 }
            }
            FatType::Fat16 => {
                let b = self.fat.get(c * 2..c * 2 + 2).ok_or_else(at_err)?;
                u32::from(u16::from_le_bytes([b[0], b[1]]))
            }
            FatType::Fat32 => {
                let b = self.fat.get(c * 4..c * 4 + 4).ok_or_else(at_err)?;
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x0FFF_FFFF
            }
        })
    }

    fn is_eoc(&self, v: u32) -> bool {
        match self.geo.fat_type {
            FatType::Fat12 => v >= 0xFF8,
            FatType::Fat16 => v >= 0xFFF8,
            FatType::Fat32 => v >= 0x0FFF_FFF8,
        }
    }

    /// The clusters of a chain, at most `want` of them when given.
    fn chain(&self, first: u32, want: Option<u64>) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        let mut c = first;
        let max = self.geo.clusters + 2;
        loop {
            if c < 2 || c >= max {
                return Err(malformed(
                    self.geo.cluster_offset(2),
                    format!("cluster chain from {first} reaches cluster {c}, outside the volume"),
                ));
            }
            out.push(c);
            if want.is_some_and(|w| out.len() as u64 >= w) {
                return Ok(out);
            }
            if out.len() > usize_from_u32(self.geo.clusters) {
                return Err(malformed(
                    self.geo.cluster_offset(2),
                    format!("cluster chain from {first} loops"),
                ));
            }
            let next = self.entry(c)?;
            if self.is_eoc(next) {
                return match want {
                    Some(w) if (out.len() as u64) < w => Err(malformed(
                        self.geo.cluster_offset(first),
                        format!(
                            "cluster chain from {first} has {} clusters, the file needs {w}",
                            out.len()
                        ),
                    )),
                    _ => Ok(out),
                };
            }
            c = next;
        }
    }

    /// The bytes of a chain (a directory), at most `limit`.
    fn chain_bytes(&self, first: u32, want: Option<u64>, limit: u64) -> Result<Vec<u8>> {
        let cb = self.geo.cluster_bytes();
        let chain = self.chain(first, want)?;
        if chain.len() as u64 * cb > limit {
            return Err(malformed(
                self.geo.cluster_offset(first),
                format!("a directory of more than {limit} bytes"),
            ));
        }
        let mut out = Vec::new();
        for c in chain {
            out.extend(read_at(&self.img, self.geo.cluster_offset(c), cb as usize)?);
        }
        Ok(out)
    }

    /// Reads directory `bytes` at `path`.
    fn dir(&mut self, bytes: &[u8], path: &[u8], depth: usize, root: bool) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(malformed(
                0,
                format!("directories nested deeper than {MAX_DEPTH}"),
            ));
        }
        let mut long: Vec<u16> = Vec::new();
        let mut expect: Option<(u8, u8)> = None; // (next ordinal, checksum)
        // The checksum of a complete long name just read.
        let mut done: Option<u8> = None;
        for slot in bytes.chunks_exact(DIR_ENTRY) {
            let first = slot[0];
            if first == 0 {
                break;
            }
            if first == DIR_FREE {
                expect = None;
                done = None;
                continue;
            }
            let attr = slot[11];
            if attr & 0x3F == ATTR_LONG_NAME {
                let Some(l) = LongEntry::parse(slot) else {
                    continue;
                };
                let ord = l.ldir_ord & 0x1F;
                if l.ldir_ord & LAST_LONG_ENTRY != 0 && (1..=20).contains(&ord) {
                    long = vec![0xFFFF; usize::from(ord) * 13];
                    expect = Some((ord, l.ldir_chksum));
                }
                match expect {
                    Some((o, sum)) if o == ord && sum == l.ldir_chksum => {
                        let at = usize::from(ord - 1) * 13;
                        long[at..at + 13].copy_from_slice(&l.units);
                        done = (ord == 1).then_some(sum);
                        expect = (ord > 1).then_some((ord - 1, sum));
                    }
                    _ => {
                        expect = None;
                        done = None;
                    }
                }
                continue;
            }
            let Some(e) = DirEntry::parse(slot) else {
                break;
            };
            let lfn = done == Some(checksum(&e.dir_name));
            done = None;
            expect = None;
            if attr & ATTR_VOLUME_ID != 0 {
                if root && self.label.is_none() {
                    self.label = Some(e.dir_name);
                }
                continue;
            }
            if e.dir_name[0] == b'.' {
                // `.` and `..`.
                continue;
            }
            let name: Vec<u8> = if lfn {
                let end = long.iter().position(|&u| u == 0).unwrap_or(long.len());
                match String::from_utf16(&long[..end]) {
                    Ok(s) => s.into_bytes(),
                    Err(_) => short_display(&e.dir_name, e.dir_nt_res),
                }
            } else {
                short_display(&e.dir_name, e.dir_nt_res)
            };
            if name.is_empty() || name.contains(&b'/') || name.contains(&0) || name == b".." {
                return Err(malformed(
                    0,
                    format!("a bad name {:?}", String::from_utf8_lossy(&name)),
                ));
            }
            let mut child = path.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&name);
            let mtime = FatTime::to_secs(e.dir_wrt_date, e.dir_wrt_time).unwrap_or(FAT_MIN);
            let ro = attr & ATTR_READ_ONLY != 0;
            if attr & ATTR_DIRECTORY != 0 {
                let meta = Meta::new(0o755, 0, 0, Time::from_secs(mtime));
                self.tree
                    .insert(&child, Inode::dir(meta), Replace::IfAbsent)?;
                let c = e.cluster();
                if c == 0 {
                    continue;
                }
                if !self.visited.insert(c) {
                    return Err(malformed(
                        self.geo.cluster_offset(2),
                        format!("directory cluster {c} is reached twice"),
                    ));
                }
                let sub = self.chain_bytes(c, None, MAX_DIR_BYTES)?;
                self.dir(&sub, &child, depth + 1, false)?;
            } else {
                let size = u64::from(e.dir_file_size);
                let data = self.file(e.cluster(), size)?;
                let meta = Meta::new(if ro { 0o444 } else { 0o644 }, 0, 0, Time::from_secs(mtime));
                self.tree.insert(
                    &child,
                    Inode::new(meta, Content::File(data)),
                    Replace::IfAbsent,
                )?;
            }
        }
        Ok(())
    }

    /// A file's data: one range when contiguous, else one extent per run.
    fn file(&self, first: u32, size: u64) -> Result<FileData> {
        if size == 0 {
            return Ok(FileData::empty());
        }
        let cb = self.geo.cluster_bytes();
        let chain = self.chain(first, Some(size.div_ceil(cb)))?;
        let mut extents: Vec<Extent> = Vec::new();
        let mut logical = 0u64;
        for c in chain {
            let len = cb.min(size - logical);
            let stored = self.geo.cluster_offset(c);
            match extents.last_mut() {
                Some(x) if x.stored + x.len == stored => x.len += len,
                _ => extents.push(Extent {
                    logical,
                    stored,
                    len,
                }),
            }
            logical += len;
        }
        let bad = || {
            malformed(
                self.geo.cluster_offset(first),
                "file data outside the image",
            )
        };
        match extents.as_slice() {
            [one] => FileData::range(self.img.clone(), one.stored, size).ok_or_else(bad),
            _ => FileData::sparse(self.img.clone(), extents, size).ok_or_else(bad),
        }
    }
}
