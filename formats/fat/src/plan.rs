//! Planning a volume from a view (every check, the geometry, the names and
//! the cluster of every file and directory), then writing it in
//! increasing offset order.

use std::collections::HashSet;

use rootforge_common::{
    Content, Encoder, Error, FileData, ImagePlan, InodeId, Kind, Report, Result, Sink, Source,
    View, display_path,
};
use sha2::{Digest, Sha256};

use crate::geometry::{self, Geometry, Request};
use crate::names::{self, LFN_CHARS, Name};
use crate::raw::{
    ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_READ_ONLY, ATTR_VOLUME_ID, BootSector, DIR_ENTRY, DirEntry,
    Fat32Bpb, FatTime, LAST_LONG_ENTRY, LongEntry, fs_info, fs_type_name,
};
use crate::{FORMAT, FatEncoder, FatOptions, FatSize, FatType, options_error};

/// Entries a directory may have (Linux's `FAT_MAX_DIR_ENTRIES`).
const MAX_DIR_ENTRIES: usize = 65_536;
/// The largest file: the size field is 32 bits.
const MAX_FILE: u64 = u32::MAX as u64;
/// Auto sizes are whole MiB.
const MIB: u64 = 1 << 20;
/// The largest volume: 2^32 - 1 sectors.
const MAX_SECTORS: u64 = u32::MAX as u64;

/// One file or directory of the volume.
#[derive(Debug)]
struct Item<'v> {
    path: Vec<u8>,
    /// `None` for a directory.
    data: Option<&'v FileData>,
    parent: usize,
    children: Vec<usize>,
    /// The name in the parent (unused for the root).
    name: Name,
    attr: u8,
    time: FatTime,
    /// Directory entries of a directory (0 for a file).
    slots: usize,
    first: u32,
    clusters: u32,
}

impl Item<'_> {
    fn bytes(&self) -> u64 {
        match self.data {
            Some(d) => d.size(),
            None => (self.slots * DIR_ENTRY) as u64,
        }
    }

    fn clusters_at(&self, cluster: u64) -> u64 {
        match self.data {
            Some(d) => d.size().div_ceil(cluster),
            // A directory has at least one cluster, for `.` and `..`.
            None => self.bytes().div_ceil(cluster).max(1),
        }
    }
}

/// A planned volume. See [`FatEncoder`].
#[derive(Debug)]
pub struct FatPlan<'v> {
    geo: Geometry,
    items: Vec<Item<'v>>,
    /// Items with clusters, in cluster order.
    order: Vec<usize>,
    /// The first cluster after the last used one.
    next_free: u32,
    image_bytes: u64,
    volume_id: u32,
    label: Option<[u8; 11]>,
    label_time: FatTime,
    oem_name: [u8; 8],
    warnings: Vec<String>,
}

fn io(what: &str, e: std::io::Error) -> Error {
    Error::io(what.to_owned(), e)
}

fn label_field(label: &str) -> Result<[u8; 11]> {
    let bytes = label.as_bytes();
    if bytes.len() > 11 {
        return Err(Error::Limit {
            path: "/".to_owned(),
            format: FORMAT,
            what: "the volume label length in bytes",
            value: bytes.len() as u64,
            limit: 11,
        });
    }
    if let Some(&c) = bytes
        .iter()
        .find(|&&c| !(b' '..0x7F).contains(&c) || b"*?.,;:/\\|+=<>[]\"".contains(&c))
    {
        return Err(options_error(format!(
            "the character {:?} in a volume label",
            char::from(c)
        )));
    }
    if bytes.first() == Some(&b' ') {
        return Err(options_error("a volume label starting with a space"));
    }
    let mut f = [b' '; 11];
    f[..bytes.len()].copy_from_slice(bytes);
    Ok(f)
}

/// Counts of what the volume cannot hold, said once each.
#[derive(Default)]
struct Lost {
    owners: u64,
    modes: u64,
    clamped: u64,
    rounded: u64,
    links: u64,
}

impl Lost {
    fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let mut say = |n: u64, what: &str| {
            if n > 0 {
                w.push(format!("vfat: {n} {what}"));
            }
        };
        say(
            self.owners,
            "entries owned by someone other than root:root (FAT has no owners)",
        );
        say(
            self.modes,
            "entries with permissions FAT cannot hold (it has only read-only)",
        );
        say(
            self.clamped,
            "mtimes outside 1980..2107 clamped to FAT's range",
        );
        say(
            self.rounded,
            "mtimes rounded down to FAT's 2-second resolution",
        );
        say(self.links, "hard links stored as separate copies");
        w
    }
}

impl FatEncoder {
    /// The geometry of a volume of `bytes` with these options (before the
    /// root directory grows to what a tree needs).
    ///
    /// # Errors
    ///
    /// Options no volume of that size can have.
    pub fn geometry(&self, bytes: u64) -> Result<Geometry> {
        geometry::choose(&self.request(bytes, None)?)
    }

    fn request(&self, bytes: u64, root_entries: Option<u32>) -> Result<Request> {
        let o = &self.options;
        if !matches!(o.sector_size, 512 | 1024 | 2048 | 4096) {
            return Err(options_error(format!(
                "a sector size of {} bytes (512, 1024, 2048 or 4096)",
                o.sector_size
            )));
        }
        if !(1..=2).contains(&o.fats) {
            return Err(options_error(format!("{} FATs (1 or 2)", o.fats)));
        }
        let spc = match o.cluster_size {
            None => None,
            Some(c) => {
                let spc = c / o.sector_size;
                if c % o.sector_size != 0 || !spc.is_power_of_two() || spc > 128 {
                    return Err(options_error(format!(
                        "a cluster size of {c} bytes (1 to 128 sectors of {}, a power of two)",
                        o.sector_size
                    )));
                }
                Some(spc)
            }
        };
        if let Some(r) = o.root_entries {
            if !(16..=65_520).contains(&r) {
                return Err(options_error(format!(
                    "{r} root directory entries (16 to 65520)"
                )));
            }
        }
        if let Some(r) = o.reserved_sectors {
            if !(1..=0xFFFF).contains(&r) {
                return Err(options_error(format!("{r} reserved sectors (1 to 65535)")));
            }
        }
        if bytes % u64::from(o.sector_size) != 0 {
            return Err(options_error(format!(
                "an image of {bytes} bytes, not a whole number of {}-byte sectors",
                o.sector_size
            )));
        }
        if bytes / u64::from(o.sector_size) > MAX_SECTORS {
            return Err(Error::Limit {
                path: "/".to_owned(),
                format: FORMAT,
                what: "the image size in sectors",
                value: bytes / u64::from(o.sector_size),
                limit: MAX_SECTORS,
            });
        }
        Ok(Request {
            bytes,
            sector_size: o.sector_size,
            fat_type: o.fat_type,
            sectors_per_cluster: spc,
            fats: o.fats,
            root_entries: o.root_entries.or(root_entries),
            reserved_sectors: o.reserved_sectors,
        })
    }
}

/// Collects the tree: every check on entries, and the names.
fn collect<'v>(view: &View<'v>, lost: &mut Lost) -> Result<Vec<Item<'v>>> {
    let root_time = FatTime::from_time(view.inode(view.root()).meta.mtime).0;
    let mut items = vec![Item {
        path: Vec::new(),
        data: None,
        parent: 0,
        children: Vec::new(),
        name: Name {
            short: [b' '; 11],
            lcase: 0,
            long: None,
        },
        attr: ATTR_DIRECTORY,
        time: root_time,
        slots: 0,
        first: 0,
        clusters: 0,
    }];
    let mut seen: HashSet<InodeId> = HashSet::new();
    let mut inos = vec![view.root()];
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        let kids: Vec<(&[u8], InodeId)> = view.children(inos[i]).collect();
        let raw: Vec<&[u8]> = kids.iter().map(|k| k.0).collect();
        let names = names::assign(&raw, &items[i].path)?;
        let mut slots = if i == 0 { 0 } else { 2 };
        let mut children = Vec::with_capacity(kids.len());
        for ((name_bytes, ino), name) in kids.into_iter().zip(names) {
            let mut path = items[i].path.clone();
            path.push(b'/');
            path.extend_from_slice(name_bytes);
            let inode = view.inode(ino);
            let kind = inode.kind();
            let data = match &inode.content {
                Content::Dir(_) => None,
                Content::File(d) => {
                    if d.size() > MAX_FILE {
                        return Err(Error::Limit {
                            path: display_path(&path),
                            format: FORMAT,
                            what: "the file size in bytes",
                            value: d.size(),
                            limit: MAX_FILE,
                        });
                    }
                    if !seen.insert(ino) {
                        lost.links += 1;
                    }
                    Some(d)
                }
                _ => {
                    return Err(Error::Unsupported {
                        path: display_path(&path),
                        format: FORMAT,
                        what: format!("a {} (FAT holds only files and directories)", kind.name()),
                    });
                }
            };
            let m = inode.meta;
            if m.uid != 0 || m.gid != 0 {
                lost.owners += 1;
            }
            let holdable: &[u16] = if kind == Kind::Dir {
                &[0o755]
            } else {
                &[0o644, 0o755, 0o444, 0o555]
            };
            if !holdable.contains(&m.perm) {
                lost.modes += 1;
            }
            let (time, clamped) = FatTime::from_time(m.mtime);
            if clamped {
                lost.clamped += 1;
            } else if m.mtime.sec % 2 != 0 || m.mtime.nsec != 0 {
                lost.rounded += 1;
            }
            let attr = match data {
                None => ATTR_DIRECTORY,
                Some(_) if m.perm & 0o222 == 0 => ATTR_ARCHIVE | ATTR_READ_ONLY,
                Some(_) => ATTR_ARCHIVE,
            };
            slots += name.slots();
            items.push(Item {
                path,
                data,
                parent: i,
                children: Vec::new(),
                name,
                attr,
                time,
                slots: 0,
                first: 0,
                clusters: 0,
            });
            inos.push(ino);
            children.push(items.len() - 1);
        }
        if slots > MAX_DIR_ENTRIES {
            return Err(Error::Limit {
                path: display_path(&items[i].path),
                format: FORMAT,
                what: "the directory entries",
                value: slots as u64,
                limit: MAX_DIR_ENTRIES as u64,
            });
        }
        items[i].slots = slots;
        for &k in children.iter().rev() {
            if items[k].data.is_none() {
                stack.push(k);
            }
        }
        items[i].children = children;
    }
    Ok(items)
}

/// Clusters the items need at `cluster` bytes per cluster (the root of a
/// FAT12/16 volume lives outside the data area).
fn clusters_needed(items: &[Item<'_>], cluster: u64, fat32: bool) -> u64 {
    let skip = usize::from(!fat32);
    items
        .iter()
        .skip(skip)
        .map(|i| i.clusters_at(cluster))
        .sum()
}

impl<'v> FatPlan<'v> {
    fn new(enc: &FatEncoder, view: View<'v>) -> Result<FatPlan<'v>> {
        let o: &FatOptions = &enc.options;
        let label = o.label.as_deref().map(label_field).transpose()?;
        let mut lost = Lost::default();
        let mut items = collect(&view, &mut lost)?;
        if label.is_some() {
            items[0].slots += 1;
        }
        let root_slots = items[0].slots;
        // The fixed root grows past mkfs.fat's 512 entries when the tree's
        // root needs more.
        let root_entries = (root_slots > 512)
            .then(|| u32::try_from(root_slots.next_multiple_of(16)).unwrap_or(u32::MAX));
        let fits = |bytes: u64| -> Result<Option<Geometry>> {
            let geo = match geometry::choose(&enc.request(bytes, root_entries)?) {
                Ok(g) => g,
                Err(_) => return Ok(None),
            };
            let fat32 = geo.fat_type == FatType::Fat32;
            if !fat32 && (geo.root_entries as usize) < root_slots {
                return Ok(None);
            }
            let need = clusters_needed(&items, geo.cluster_bytes(), fat32);
            Ok((need <= u64::from(geo.clusters)).then_some(geo))
        };
        let smallest = || -> Result<u64> {
            // Doubling, then bisection in whole MiB. The geometry jumps at
            // the FAT16/FAT32 switch, so this finds a small size that fits,
            // which may not be the very smallest.
            let max = MAX_SECTORS * u64::from(o.sector_size) / MIB;
            let mut hi = 1u64;
            while fits(hi * MIB)?.is_none() {
                if hi >= max {
                    return Err(options_error("a tree larger than any FAT volume"));
                }
                hi = (hi * 2).min(max);
            }
            let mut lo = hi / 2;
            while lo + 1 < hi {
                let mid = (lo + hi) / 2;
                if fits(mid * MIB)?.is_some() {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            Ok(hi * MIB)
        };
        let (image_bytes, geo) = match o.size {
            FatSize::Fixed(bytes) => match fits(bytes)? {
                Some(g) => (bytes, g),
                None => {
                    // Say what the options and the size allow, and what
                    // would do.
                    let geo = geometry::choose(&enc.request(bytes, root_entries)?)?;
                    let need = clusters_needed(
                        &items,
                        geo.cluster_bytes(),
                        geo.fat_type == FatType::Fat32,
                    );
                    let enough = smallest()?;
                    return Err(Error::Unsupported {
                        path: "/".to_owned(),
                        format: FORMAT,
                        what: format!(
                            "the tree in {bytes} bytes: it needs {need} clusters of {} bytes and \
                             {root_slots} root entries, the volume has {} clusters and {} root \
                             entries; {enough} bytes ({} MiB) would do",
                            geo.cluster_bytes(),
                            geo.clusters,
                            geo.root_entries,
                            enough / MIB
                        ),
                    });
                }
            },
            FatSize::Compact => {
                let req = enc.request(0, root_entries)?;
                let need = |cluster: u64, fat32: bool| clusters_needed(&items, cluster, fat32);
                let geo = geometry::compact(&req, root_slots as u64, &need)?;
                (geo.volume_bytes(), geo)
            }
            FatSize::Auto { headroom } => {
                let mut bytes = smallest()?
                    .checked_add(headroom)
                    .map(|b| b.next_multiple_of(MIB))
                    .ok_or_else(|| options_error("a headroom that overflows"))?;
                loop {
                    if let Some(g) = fits(bytes)? {
                        break (bytes, g);
                    }
                    bytes += MIB;
                }
            }
        };
        // Clusters: the FAT32 root first, then every entry in the order the
        // walk met it.
        let fat32 = geo.fat_type == FatType::Fat32;
        let cluster = geo.cluster_bytes();
        let mut next = 2u32;
        let mut order = Vec::new();
        for (i, item) in items.iter_mut().enumerate() {
            if i == 0 && !fat32 {
                continue;
            }
            // At most the volume's cluster count, checked above.
            let n = u32::try_from(item.clusters_at(cluster)).unwrap_or(u32::MAX);
            if n > 0 {
                item.first = next;
                item.clusters = n;
                next = next.saturating_add(n);
                order.push(i);
            }
        }
        let volume_id = o.volume_id.unwrap_or_else(|| {
            // From the options and every entry: the same tree gives the
            // same ID, another tree almost surely not.
            let mut h = Sha256::new();
            h.update(geo.fat_type.name());
            h.update(image_bytes.to_le_bytes());
            h.update(geo.cluster_bytes().to_le_bytes());
            h.update(label.unwrap_or([0; 11]));
            for item in &items {
                h.update((item.path.len() as u64).to_le_bytes());
                h.update(&item.path);
                h.update(item.bytes().to_le_bytes());
                h.update(item.time.date.to_le_bytes());
                h.update(item.time.time.to_le_bytes());
                h.update([item.attr]);
            }
            let d = h.finalize();
            u32::from_le_bytes([d[0], d[1], d[2], d[3]])
        });
        Ok(FatPlan {
            geo,
            items,
            order,
            next_free: next,
            image_bytes,
            volume_id,
            label,
            label_time: FatTime::from_time(o.created).0,
            oem_name: o.oem_name,
            warnings: lost.warnings(),
        })
    }

    /// The volume's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// The volume ID the boot sector records.
    pub fn volume_id(&self) -> u32 {
        self.volume_id
    }

    fn boot_sector(&self) -> BootSector {
        let g = &self.geo;
        let fat32 = g.fat_type == FatType::Fat32;
        // Every value below was range-checked by the geometry.
        let (tot16, tot32) = match u16::try_from(g.total_sectors) {
            Ok(n) => (n, 0),
            Err(_) => (0, g.total_sectors),
        };
        BootSector {
            bs_oem_name: self.oem_name,
            bpb_byts_per_sec: g.sector_size as u16,
            bpb_sec_per_clus: g.sectors_per_cluster as u8,
            bpb_rsvd_sec_cnt: g.reserved_sectors as u16,
            bpb_num_fats: g.fats as u8,
            bpb_root_ent_cnt: g.root_entries as u16,
            bpb_tot_sec16: tot16,
            bpb_media: g.media,
            bpb_fat_sz16: if fat32 { 0 } else { g.fat_sectors as u16 },
            bpb_sec_per_trk: g.sectors_per_track,
            bpb_num_heads: g.heads,
            bpb_hidd_sec: 0,
            bpb_tot_sec32: tot32,
            fat32: fat32.then_some(Fat32Bpb {
                bpb_fat_sz32: g.fat_sectors,
                bpb_ext_flags: 0,
                bpb_fs_ver: 0,
                bpb_root_clus: self.items[0].first,
                bpb_fs_info: 1,
                // Where mkfs.fat puts it: sector 6, or the last reserved one.
                bpb_bk_boot_sec: match g.reserved_sectors {
                    7.. => 6,
                    r @ 2..=6 => r as u16 - 1,
                    _ => 0,
                },
            }),
            bs_drv_num: if g.media == 0xF8 { 0x80 } else { 0 },
            bs_vol_id: self.volume_id,
            bs_vol_lab: self.label.unwrap_or(*b"NO NAME    "),
            bs_fil_sys_type: fs_type_name(g.fat_type),
        }
    }

    /// The used part of the FAT: entries 0 up to the last used cluster.
    fn fat_bytes(&self) -> Vec<u8> {
        let t = self.geo.fat_type;
        let n = self.next_free as usize;
        let mut entries = vec![0u32; n];
        let eoc = match t {
            FatType::Fat12 => 0xFFF,
            FatType::Fat16 => 0xFFFF,
            FatType::Fat32 => 0x0FFF_FFFF,
        };
        entries[0] = (eoc & !0xFF) | u32::from(self.geo.media);
        entries[1] = eoc;
        for &i in &self.order {
            let it = &self.items[i];
            let last = it.first + it.clusters - 1;
            for c in it.first..last {
                entries[c as usize] = c + 1;
            }
            entries[last as usize] = eoc;
        }
        match t {
            FatType::Fat12 => {
                let mut out = Vec::with_capacity(n * 3 / 2 + 2);
                for pair in entries.chunks(2) {
                    let a = pair[0];
                    let b = pair.get(1).copied().unwrap_or(0);
                    out.push((a & 0xFF) as u8);
                    out.push(((a >> 8) & 0x0F | (b & 0x0F) << 4) as u8);
                    if pair.len() == 2 {
                        out.push((b >> 4) as u8);
                    }
                }
                out
            }
            FatType::Fat16 => entries
                .iter()
                .flat_map(|&e| (e as u16).to_le_bytes())
                .collect(),
            FatType::Fat32 => entries.iter().flat_map(|&e| e.to_le_bytes()).collect(),
        }
    }

    /// A directory's entries.
    fn dir_bytes(&self, i: usize) -> Vec<u8> {
        let it = &self.items[i];
        let mut out = Vec::with_capacity(it.slots * DIR_ENTRY);
        if i == 0 {
            if let Some(label) = self.label {
                DirEntry::new(label, ATTR_VOLUME_ID, 0, 0, self.label_time).write(&mut out);
            }
        } else {
            // `..` of a directory in the root names cluster 0, on FAT32 too.
            let parent = if it.parent == 0 {
                0
            } else {
                self.items[it.parent].first
            };
            DirEntry::new(*b".          ", ATTR_DIRECTORY, it.first, 0, it.time).write(&mut out);
            DirEntry::new(*b"..         ", ATTR_DIRECTORY, parent, 0, it.time).write(&mut out);
        }
        for &k in &it.children {
            let c = &self.items[k];
            if let Some(long) = &c.name.long {
                let sum = names::checksum(&c.name.short);
                let parts = long.len().div_ceil(LFN_CHARS);
                for p in (0..parts).rev() {
                    let mut units = [0xFFFFu16; 13];
                    for (j, u) in units.iter_mut().enumerate() {
                        let at = p * LFN_CHARS + j;
                        match long.get(at) {
                            Some(&v) => *u = v,
                            None if at == long.len() => *u = 0,
                            None => {}
                        }
                    }
                    // At most 20 parts: names are at most 255 units.
                    let ord = (p + 1) as u8 | if p + 1 == parts { LAST_LONG_ENTRY } else { 0 };
                    LongEntry {
                        ldir_ord: ord,
                        units,
                        ldir_chksum: sum,
                    }
                    .write(&mut out);
                }
            }
            // Checked against MAX_FILE in the plan.
            let size = c.data.map_or(0, |d| d.size() as u32);
            let mut e = DirEntry::new(c.name.short, c.attr, c.first, size, c.time);
            e.dir_nt_res = c.name.lcase;
            e.write(&mut out);
        }
        out
    }
}

/// Writes `b` and counts it.
fn put(out: &mut dyn Sink, pos: &mut u64, b: &[u8]) -> Result<()> {
    out.write_all(b)
        .map_err(|e| io("writing the vfat image", e))?;
    *pos += b.len() as u64;
    Ok(())
}

/// Skips to `to`.
fn skip_to(out: &mut dyn Sink, pos: &mut u64, to: u64) -> Result<()> {
    debug_assert!(to >= *pos);
    let n = to.saturating_sub(*pos);
    if n > 0 {
        out.skip(n).map_err(|e| io("writing the vfat image", e))?;
    }
    *pos = to;
    Ok(())
}

impl ImagePlan for FatPlan<'_> {
    fn size(&self) -> Option<u64> {
        Some(self.image_bytes)
    }

    fn write(self: Box<Self>, out: &mut dyn Sink) -> Result<Report> {
        let g = self.geo;
        let ss = u64::from(g.sector_size);
        let fat32 = g.fat_type == FatType::Fat32;
        let mut pos = 0u64;
        let boot = self.boot_sector();
        let boot_bytes = boot.to_bytes();
        put(out, &mut pos, &boot_bytes)?;
        if fat32 {
            let used = u64::from(self.next_free - 2);
            let free = u64::from(g.clusters).saturating_sub(used) as u32;
            let next = if free == 0 { u32::MAX } else { self.next_free };
            let info = fs_info(free, next);
            skip_to(out, &mut pos, ss)?;
            put(out, &mut pos, &info)?;
            if let Some(bk) = boot
                .fat32
                .map(|f| u64::from(f.bpb_bk_boot_sec))
                .filter(|&b| b > 0)
            {
                skip_to(out, &mut pos, bk * ss)?;
                put(out, &mut pos, &boot_bytes)?;
                if bk + 1 < u64::from(g.reserved_sectors) {
                    skip_to(out, &mut pos, (bk + 1) * ss)?;
                    put(out, &mut pos, &info)?;
                }
            }
        }
        let fat = self.fat_bytes();
        for n in 0..g.fats {
            skip_to(out, &mut pos, u64::from(g.fat_start(n)) * ss)?;
            put(out, &mut pos, &fat)?;
        }
        skip_to(out, &mut pos, u64::from(g.root_start()) * ss)?;
        if !fat32 {
            put(out, &mut pos, &self.dir_bytes(0))?;
        }
        for &i in &self.order {
            let it = &self.items[i];
            let at = g.cluster_offset(it.first);
            skip_to(out, &mut pos, at)?;
            match it.data {
                None => put(out, &mut pos, &self.dir_bytes(i))?,
                Some(d) => write_file(out, &mut pos, d, &it.path)?,
            }
        }
        skip_to(out, &mut pos, self.image_bytes)?;
        Ok(Report {
            bytes: pos,
            warnings: self.warnings,
        })
    }
}

/// Copies a file's data, leaving holes where it is zero.
fn write_file(out: &mut dyn Sink, pos: &mut u64, d: &FileData, path: &[u8]) -> Result<()> {
    let what = || format!("reading {}", display_path(path));
    if matches!(d.source(), Source::Zeros) {
        return skip_to(out, pos, *pos + d.size());
    }
    let start = *pos;
    let mut err = None;
    d.for_each_chunk(&mut |chunk| {
        for piece in chunk.chunks(64 << 10) {
            let r = if piece.iter().all(|&b| b == 0) {
                out.skip(piece.len() as u64)
            } else {
                out.write_all(piece)
            };
            if let Err(e) = r {
                err = Some(e);
                return Err(std::io::Error::other("write failed"));
            }
            *pos += piece.len() as u64;
        }
        Ok(())
    })
    .map_err(|e| match err.take() {
        Some(w) => io("writing the vfat image", w),
        None => Error::io(what(), e),
    })?;
    if *pos - start != d.size() {
        return Err(Error::io(
            what(),
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file changed size"),
        ));
    }
    Ok(())
}

impl Encoder for FatEncoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn plan<'v>(&'v self, view: View<'v>) -> Result<Box<dyn ImagePlan + 'v>> {
        Ok(Box::new(FatPlan::new(self, view)?))
    }
}

impl FatEncoder {
    /// Plans the volume of `view`, with its geometry and volume ID.
    ///
    /// # Errors
    ///
    /// What the tree or the options cannot be.
    pub fn plan_volume<'v>(&'v self, view: View<'v>) -> Result<FatPlan<'v>> {
        FatPlan::new(self, view)
    }
}
