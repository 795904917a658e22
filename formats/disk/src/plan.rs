//! Partition planning: where every partition and every table structure of
//! the disk goes, with genimage's hdimage rules (image-hd.c), checked
//! before a byte is written.
//!
//! The rules, as genimage applies them:
//! - The default alignment is 512 bytes (1 byte with no table); a
//!   partition in the table is aligned to its own `align` (default: the
//!   disk's), a partition outside the table to 1 byte.
//! - A partition in the table without `offset` starts at the end of the
//!   previous partition (or of the MBR / GPT entry array), rounded up to
//!   its alignment. A partition outside the table stays at its `offset`
//!   (default 0).
//! - The size is `size`, or for `autoresize` the rest of the disk, or the
//!   image's size (rounded up to the alignment in the table).
//! - MBR: with more than four partitions in the table, the fourth becomes
//!   an extended partition and every later one a logical partition, each
//!   with its extended boot record one alignment unit before it;
//!   `forced-primary` puts later partitions back into the MBR.
//! - GPT: the header is at sector 1, the 128-entry array at `gpt-location`
//!   (default sector 2), the backup at the end of the disk, which is then
//!   rounded up to 4 KiB when the disk has no given size.
//! - Every partition is checked against every earlier one and the table
//!   structures; an area the earlier one's image declares as a hole may
//!   be overlapped.

use crate::error::{DiskError, Result, Span};
use crate::guid::{self, Guid};

/// Sectors as partition tables count them.
pub const SECTOR: u64 = 512;
/// Entries in a GPT partition entry array.
pub const GPT_ENTRIES: u64 = 128;
/// Bytes per GPT partition entry.
pub const GPT_ENTRY_SIZE: u64 = 128;
/// A GPT header sector plus its entry array, in sectors.
pub const GPT_SECTORS: u64 = 1 + GPT_ENTRIES * GPT_ENTRY_SIZE / SECTOR;
/// The MBR's tail (disk signature, copy protection, four entries, boot
/// signature) at byte 440: the only part of sector 0 a table writes.
pub const MBR_TAIL_OFFSET: u64 = 440;
pub const MBR_TAIL_SIZE: u64 = 72;
/// MBR type of an extended partition (LBA).
pub const EXTENDED_TYPE: u8 = 0x0f;

/// The kind of partition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableType {
    /// No table: partitions are raw areas.
    None,
    #[default]
    Mbr,
    Gpt,
    /// A GPT plus MBR entries (at most 3) for the partitions that have an
    /// MBR type.
    Hybrid,
}

impl TableType {
    #[must_use]
    pub fn has_mbr(self) -> bool {
        matches!(self, TableType::Mbr | TableType::Hybrid)
    }

    #[must_use]
    pub fn has_gpt(self) -> bool {
        matches!(self, TableType::Gpt | TableType::Hybrid)
    }
}

/// The MBR disk signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskSignature {
    Value(u32),
    /// genimage's `random`: here derived from the layout, so the image is
    /// the same on every run.
    Derived,
}

/// What a partition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// For errors: the file or image name.
    pub name: String,
    pub size: u64,
    /// Areas of the image that later partitions or the table may
    /// overwrite, `[start, end)` from the image's start.
    pub holes: Vec<(u64, u64)>,
}

/// One partition as the configuration gives it. Zero means "not given"
/// for `offset`, `size` and `align`, as in genimage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartSpec {
    pub name: String,
    pub offset: u64,
    pub size: u64,
    pub align: u64,
    /// The MBR type byte (0: none).
    pub mbr_type: u8,
    /// The GPT type, as a GUID or a genimage shortcut (default `L`).
    pub type_guid: Option<String>,
    /// The GPT partition GUID (default: derived).
    pub guid: Option<String>,
    pub bootable: bool,
    pub forced_primary: bool,
    pub read_only: bool,
    pub hidden: bool,
    pub no_automount: bool,
    /// Write the whole partition, zeros after the image.
    pub fill: bool,
    pub in_table: bool,
    pub autoresize: bool,
    /// Bytes of the image skipped before the partition's data starts.
    pub image_offset: u64,
    pub image: Option<ImageRef>,
}

/// A disk as the configuration gives it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskSpec {
    pub table: TableType,
    /// 0: the default (512, or 1 with no table).
    pub align: u64,
    /// Which MBR slot (1 to 4) becomes the extended partition; 0: the
    /// fourth, when more than four partitions are in the table.
    pub extended_partition: u32,
    pub disk_signature: Option<DiskSignature>,
    pub disk_guid: Option<String>,
    /// Where the GPT entry array starts (0: sector 2).
    pub gpt_location: u64,
    pub gpt_no_backup: bool,
    /// Make the file as long as the disk.
    pub fill: bool,
    /// The disk's size (0: up to the last partition).
    pub size: u64,
    pub partitions: Vec<PartSpec>,
    /// Type shortcuts of the configuration, looked up (without regard to
    /// case) before genimage's own.
    pub type_shortcuts: Vec<(String, Guid)>,
}

/// What an area of the planned disk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The partition of this index in the spec.
    Partition(usize),
    /// The MBR extended partition holding the logical ones.
    Extended,
    Mbr,
    GptHeader,
    GptArray,
    /// The backup entry array and header at the end of the disk.
    GptBackup,
}

/// GPT partition attribute bits (UEFI 2.10 table 5.7, and the
/// Discoverable Partitions Specification for 60, 62, 63).
pub const GPT_ATTR_LEGACY_BOOTABLE: u64 = 1 << 2;
pub const GPT_ATTR_READ_ONLY: u64 = 1 << 60;
pub const GPT_ATTR_HIDDEN: u64 = 1 << 62;
pub const GPT_ATTR_NO_AUTO: u64 = 1 << 63;

/// One planned area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub area: Area,
    pub name: String,
    pub offset: u64,
    pub size: u64,
    pub align: u64,
    pub in_table: bool,
    pub logical: bool,
    pub mbr_type: u8,
    pub bootable: bool,
    pub type_guid: Guid,
    pub guid: Guid,
    pub gpt_attrs: u64,
    /// Bytes of the image written at `offset` (0: nothing is written).
    pub data_size: u64,
    pub image_offset: u64,
    pub holes: Vec<(u64, u64)>,
}

impl Placed {
    fn fake(area: Area, name: &str, offset: u64, size: u64) -> Placed {
        Placed {
            area,
            name: name.to_owned(),
            offset,
            size,
            align: 1,
            in_table: false,
            logical: false,
            mbr_type: 0,
            bootable: false,
            type_guid: Guid::default(),
            guid: Guid::default(),
            gpt_attrs: 0,
            data_size: 0,
            image_offset: 0,
            holes: Vec::new(),
        }
    }

    /// `offset + size`.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.size)
    }

    #[must_use]
    pub fn span(&self) -> Span {
        Span {
            start: self.offset,
            end: self.end(),
        }
    }

    /// The spec index, for a user partition.
    #[must_use]
    pub fn index(&self) -> Option<usize> {
        match self.area {
            Area::Partition(i) => Some(i),
            _ => None,
        }
    }

    fn who(&self) -> Option<(usize, &str)> {
        self.index().map(|i| (i, self.name.as_str()))
    }
}

/// A planned disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub table: TableType,
    pub align: u64,
    pub disk_signature: u32,
    pub disk_guid: Guid,
    pub gpt_location: u64,
    pub gpt_no_backup: bool,
    /// The disk's size.
    pub size: u64,
    /// The output file's length: the end of the last byte written, or the
    /// disk's size with `fill` or a backup GPT.
    pub file_size: u64,
    /// The partitions in genimage's order (the extended partition before
    /// the first logical one), then the table structures.
    pub areas: Vec<Placed>,
}

impl Layout {
    /// The user partitions, in spec order.
    pub fn partitions(&self) -> impl Iterator<Item = &Placed> {
        self.areas
            .iter()
            .filter(|p| matches!(p.area, Area::Partition(_)))
    }

    /// The extended partition, if there are logical partitions.
    #[must_use]
    pub fn extended(&self) -> Option<&Placed> {
        self.areas.iter().find(|p| p.area == Area::Extended)
    }
}

fn round_up(v: u64, align: u64, who: Option<(usize, &str)>) -> Result<u64> {
    if align <= 1 {
        return Ok(v);
    }
    v.div_ceil(align)
        .checked_mul(align)
        .ok_or_else(|| DiskError::invalid(who, "offset overflows 64 bits"))
}

fn add(a: u64, b: u64, who: Option<(usize, &str)>) -> Result<u64> {
    a.checked_add(b)
        .ok_or_else(|| DiskError::invalid(who, "offset or size overflows 64 bits"))
}

/// Plans `spec`: every check genimage makes, and the placement of every
/// partition and table structure.
///
/// # Errors
///
/// The first partition or option that cannot be placed, naming it (and,
/// for overlaps, both areas and their byte ranges).
#[allow(clippy::too_many_lines)]
pub fn plan(spec: &DiskSpec) -> Result<Layout> {
    let table = spec.table;
    let align = match spec.align {
        0 if table == TableType::None => 1,
        0 => SECTOR,
        a => a,
    };
    if table != TableType::None && align % SECTOR != 0 {
        return Err(DiskError::invalid(
            None,
            format!("partition alignment ({align}) must be a multiple of 1 sector (512 bytes)"),
        ));
    }
    if spec.extended_partition > 4 {
        return Err(DiskError::invalid(
            None,
            format!(
                "invalid extended partition index ({}): it must be at most 4 (0 for automatic)",
                spec.extended_partition
            ),
        ));
    }

    let mut areas: Vec<Placed> = Vec::with_capacity(spec.partitions.len() + 5);
    for (i, p) in spec.partitions.iter().enumerate() {
        let mut placed = Placed::fake(Area::Partition(i), &p.name, p.offset, p.size);
        placed.align = p.align;
        placed.in_table = p.in_table && table != TableType::None;
        placed.mbr_type = p.mbr_type;
        placed.bootable = p.bootable;
        placed.image_offset = p.image_offset;
        placed.gpt_attrs = (if p.bootable {
            GPT_ATTR_LEGACY_BOOTABLE
        } else {
            0
        }) | (if p.read_only { GPT_ATTR_READ_ONLY } else { 0 })
            | (if p.hidden { GPT_ATTR_HIDDEN } else { 0 })
            | (if p.no_automount { GPT_ATTR_NO_AUTO } else { 0 });
        if let Some(img) = &p.image {
            placed.holes.clone_from(&img.holes);
        }
        areas.push(placed);
    }

    // Logical partitions (MBR only).
    let mut extended: Option<usize> = None;
    if table == TableType::Mbr {
        let in_table = areas.iter().filter(|a| a.in_table).count();
        let index = match spec.extended_partition {
            0 if in_table > 4 => 4,
            n => n as usize,
        };
        if index > 0 {
            let (mut count, mut mbr_entries) = (0usize, 0usize);
            let (mut in_ext, mut found) = (false, false);
            let mut i = 0;
            while i < areas.len() {
                if !areas[i].in_table {
                    i += 1;
                    continue;
                }
                count += 1;
                if count == index {
                    let owned = areas[i].who().map(|(j, n)| (j, n.to_owned()));
                    let who = owned.as_ref().map(|(j, n)| (*j, n.as_str()));
                    let offset = match areas[i].offset {
                        0 => 0,
                        o => o.checked_sub(align).ok_or_else(|| {
                            DiskError::invalid(
                                who,
                                format!(
                                    "the first logical partition's offset ({o}) leaves no room for its extended boot record ({align} bytes before it)"
                                ),
                            )
                        })?,
                    };
                    let mut ext = Placed::fake(Area::Extended, "[Extended]", offset, 0);
                    ext.in_table = true;
                    ext.mbr_type = EXTENDED_TYPE;
                    ext.align = align;
                    areas.insert(i, ext);
                    extended = Some(i);
                    i += 1;
                    in_ext = true;
                    found = true;
                    mbr_entries += 1;
                }
                let part = &mut areas[i];
                let forced = spec.partitions[part.index().unwrap_or(0)].forced_primary;
                if forced {
                    in_ext = false;
                }
                if in_ext {
                    part.logical = true;
                } else {
                    mbr_entries += 1;
                }
                if forced && !found {
                    return Err(DiskError::invalid(
                        part.who(),
                        "forced-primary can only be used for partitions after the extended partition",
                    ));
                } else if !forced && !in_ext && found {
                    return Err(DiskError::invalid(
                        part.who(),
                        "a partition after a forced-primary partition must be forced-primary too (logical partitions cannot follow it)",
                    ));
                }
                if mbr_entries > 4 {
                    return Err(DiskError::invalid(
                        part.who(),
                        format!(
                            "too many primary partitions: this is MBR entry {mbr_entries}, the MBR holds 4"
                        ),
                    ));
                }
                i += 1;
            }
            if let Some(e) = extended
                && !areas.iter().any(|a| a.logical)
            {
                let first = areas.get(e + 1).and_then(Placed::who);
                return Err(DiskError::invalid(
                    first,
                    "the extended partition would hold no logical partition (this partition, at its slot, is forced-primary)",
                ));
            }
        }
    }

    // Identifiers.
    let disk_guid = match &spec.disk_guid {
        Some(s) => {
            if !table.has_gpt() {
                return Err(DiskError::invalid(
                    None,
                    "'disk-uuid' is only valid for gpt and hybrid partition tables",
                ));
            }
            Guid::parse(s)
                .ok_or_else(|| DiskError::invalid(None, format!("invalid disk UUID: {s}")))?
        }
        None => derive_disk_guid(spec),
    };
    let disk_signature = match spec.disk_signature {
        None => 0,
        Some(_) if !table.has_mbr() => {
            return Err(DiskError::invalid(
                None,
                "'disk-signature' is only valid for mbr and hybrid partition tables",
            ));
        }
        Some(DiskSignature::Value(v)) => v,
        Some(DiskSignature::Derived) => {
            let g = derive_disk_guid(spec).0;
            u32::from_le_bytes([g[0], g[1], g[2], g[3]])
        }
    };
    let gpt_location = match spec.gpt_location {
        0 => 2 * SECTOR,
        l if l % SECTOR != 0 => {
            return Err(DiskError::invalid(
                None,
                format!("GPT location ({l}) must be a multiple of 1 sector (512 bytes)"),
            ));
        }
        l => l,
    };

    // The table structures go last: each is checked against every
    // partition before it, so a bootloader's hole may hold them.
    let mut now = 0u64;
    let mut file_size = 0u64;
    let mut backup = None;
    if table != TableType::None {
        areas.push(Placed::fake(
            Area::Mbr,
            "[MBR]",
            MBR_TAIL_OFFSET,
            MBR_TAIL_SIZE,
        ));
        now = SECTOR;
        if table.has_gpt() {
            areas.push(Placed::fake(
                Area::GptHeader,
                "[GPT header]",
                SECTOR,
                SECTOR,
            ));
            let array = (GPT_SECTORS - 1) * SECTOR;
            areas.push(Placed::fake(
                Area::GptArray,
                "[GPT array]",
                gpt_location,
                array,
            ));
            now = add(gpt_location, array, None)?;
            let size = GPT_SECTORS * SECTOR;
            let offset = if spec.size > 0 {
                spec.size.checked_sub(size).ok_or_else(|| {
                    DiskError::invalid(
                        None,
                        format!(
                            "the disk size ({}) is smaller than the backup GPT ({size} bytes)",
                            spec.size
                        ),
                    )
                })?
            } else {
                0
            };
            areas.push(Placed::fake(Area::GptBackup, "[GPT backup]", offset, size));
            backup = Some(areas.len() - 1);
        }
        file_size = now;
    }

    let mut hybrid_entries = 0u32;
    let mut resized = false;
    for i in 0..areas.len() {
        let idx = areas[i].index();
        let pspec = idx.map(|j| &spec.partitions[j]);
        let owned = areas[i].who().map(|(j, n)| (j, n.to_owned()));
        let who = owned.as_ref().map(|(j, n)| (*j, n.as_str()));
        let in_table = areas[i].in_table;
        if areas[i].align == 0 {
            areas[i].align = if in_table || table == TableType::None {
                align
            } else {
                1
            };
        }
        let palign = areas[i].align;
        if in_table && palign % align != 0 {
            return Err(DiskError::invalid(
                who,
                format!(
                    "partition alignment ({palign}) must be a multiple of the disk's alignment ({align})"
                ),
            ));
        }
        if let Some(p) = pspec {
            if p.type_guid.is_some() && !table.has_gpt() {
                return Err(DiskError::invalid(
                    who,
                    "'partition-type-uuid' is only valid for gpt and hybrid partition tables",
                ));
            }
            if p.guid.is_some() && !table.has_gpt() {
                return Err(DiskError::invalid(
                    who,
                    "'partition-uuid' is only valid for gpt and hybrid partition tables",
                ));
            }
            if p.mbr_type != 0 && !table.has_mbr() {
                return Err(DiskError::invalid(
                    who,
                    "'partition-type' is only valid for mbr and hybrid partition tables",
                ));
            }
            if table.has_gpt() && in_table {
                let t = p.type_guid.as_deref().unwrap_or("L");
                let custom = spec
                    .type_shortcuts
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(t))
                    .map(|(_, g)| *g);
                areas[i].type_guid =
                    custom.or_else(|| guid::partition_type(t)).ok_or_else(|| {
                        DiskError::invalid(
                            who,
                            format!(
                                "invalid partition type (neither a UUID nor a known shortcut): {t}"
                            ),
                        )
                    })?;
                areas[i].guid = match &p.guid {
                    Some(g) => Guid::parse(g).ok_or_else(|| {
                        DiskError::invalid(who, format!("invalid partition UUID: {g}"))
                    })?,
                    None => Guid::derive(&[
                        &disk_guid.0,
                        b"partition",
                        &(idx.unwrap_or(0) as u64).to_le_bytes(),
                        p.name.as_bytes(),
                    ]),
                };
                if p.mbr_type != 0 {
                    hybrid_entries += 1;
                }
            }
        }
        if areas[i].logical {
            now = add(now, align, who)?;
            now = round_up(now, palign, who)?;
        }
        if Some(i) == backup && areas[i].offset == 0 {
            let size = areas[i].size;
            now = add(now, size, who)?;
            areas[i].offset = round_up(now, 4096, who)? - size;
        }
        if areas[i].offset == 0 && (in_table || table == TableType::None) {
            areas[i].offset = round_up(now, palign, who)?;
        }
        let offset = areas[i].offset;
        if offset % palign != 0 {
            return Err(DiskError::invalid(
                who,
                format!("offset ({offset}) must be a multiple of {palign} bytes"),
            ));
        }
        if let Some(p) = pspec {
            if p.autoresize {
                if resized {
                    return Err(DiskError::invalid(
                        who,
                        "'autoresize' is supported for one partition only",
                    ));
                }
                if spec.size == 0 {
                    return Err(DiskError::invalid(
                        who,
                        "the disk size must be given for an 'autoresize' partition",
                    ));
                }
                let mut room = spec.size.saturating_sub(offset);
                if table.has_gpt() {
                    room = room.saturating_sub(GPT_SECTORS * SECTOR);
                }
                room -= room % palign;
                if room == 0 {
                    return Err(DiskError::invalid(
                        who,
                        format!(
                            "the partition starts at {offset}, past the end of the {}-byte disk",
                            spec.size
                        ),
                    ));
                }
                if room < areas[i].size {
                    return Err(DiskError::invalid(
                        who,
                        format!(
                            "auto-resize gives {room} bytes, less than the partition's minimum size {}",
                            areas[i].size
                        ),
                    ));
                }
                areas[i].size = room;
                resized = true;
            }
            if let Some(img) = &p.image {
                let data = img.size.checked_sub(p.image_offset).ok_or_else(|| {
                    DiskError::invalid(
                        who,
                        format!(
                            "{} is {} bytes, too small for imageoffset {}",
                            img.name, img.size, p.image_offset
                        ),
                    )
                })?;
                if areas[i].size == 0 {
                    areas[i].size = if in_table {
                        round_up(data, palign, who)?
                    } else {
                        data
                    };
                }
                if data > areas[i].size {
                    return Err(DiskError::TooLarge {
                        part: idx.unwrap_or(0),
                        name: p.name.clone(),
                        image: img.name.clone(),
                        image_size: data,
                        size: areas[i].size,
                    });
                }
                // genimage writes nothing for an empty image.
                areas[i].data_size = if img.size == 0 && !p.fill {
                    0
                } else if p.fill {
                    areas[i].size
                } else {
                    data
                };
                file_size = file_size.max(add(offset, data, who)?);
                if p.fill {
                    file_size = file_size.max(add(offset, areas[i].size, who)?);
                }
            }
        }
        if areas[i].size == 0 && areas[i].area != Area::Extended {
            return Err(DiskError::invalid(
                who,
                "the size must not be zero (give 'size' or an image)",
            ));
        }
        // Checked: the end fits in 64 bits from here on.
        add(offset, areas[i].size, who)?;
        if areas[i].logical {
            if now > offset {
                return Err(DiskError::invalid(
                    who,
                    format!(
                        "logical partition at {offset} overlaps the previous partition or its extended boot record (which ends at {now})"
                    ),
                ));
            }
        } else {
            check_overlap(&areas, i)?;
        }
        if in_table && areas[i].size % SECTOR != 0 {
            return Err(DiskError::invalid(
                who,
                format!(
                    "the size ({}) must be a multiple of 1 sector (512 bytes)",
                    areas[i].size
                ),
            ));
        }
        if table.has_mbr() && in_table && (areas[i].mbr_type != 0 || table == TableType::Mbr) {
            let limit = u64::from(u32::MAX) * SECTOR;
            if areas[i].end() > limit {
                return Err(DiskError::invalid(
                    who,
                    format!(
                        "ends at byte {}, past the MBR's limit of 2^32 sectors ({limit} bytes)",
                        areas[i].end()
                    ),
                ));
            }
        }
        now = now.max(areas[i].end());
        if areas[i].logical {
            file_size = file_size.max(offset - align + SECTOR);
            if let Some(e) = extended {
                areas[e].size = now - areas[e].offset;
            }
        }
    }

    if hybrid_entries > 3 {
        return Err(DiskError::invalid(
            None,
            format!(
                "{hybrid_entries} partitions have an MBR 'partition-type', but a hybrid MBR holds at most 3"
            ),
        ));
    }
    if table == TableType::Hybrid && hybrid_entries == 0 {
        return Err(DiskError::invalid(
            None,
            "a hybrid partition table needs a partition with 'partition-type'",
        ));
    }
    if spec.size > 0 && now > spec.size {
        let last = areas
            .iter()
            .filter(|a| a.end() > spec.size)
            .max_by_key(|a| a.end())
            .expect("an area ends at `now`");
        return Err(DiskError::PastEnd {
            part: last.index(),
            name: last.name.clone(),
            span: last.span(),
            size: spec.size,
        });
    }
    let size = if spec.size == 0 { now } else { spec.size };
    if spec.fill || (table.has_gpt() && !spec.gpt_no_backup) {
        file_size = size;
    }
    Ok(Layout {
        table,
        align,
        disk_signature,
        disk_guid,
        gpt_location,
        gpt_no_backup: spec.gpt_no_backup,
        size,
        file_size,
        areas,
    })
}

/// Checks area `i` against every area before it.
fn check_overlap(areas: &[Placed], i: usize) -> Result<()> {
    let p = &areas[i];
    for q in &areas[..i] {
        if p.offset >= q.end() || q.offset >= p.end() {
            continue;
        }
        let start = p.offset.max(q.offset) - q.offset;
        let end = p.end().min(q.end()) - q.offset;
        if q.holes.iter().any(|&(hs, he)| hs <= start && end <= he) {
            continue;
        }
        let table_hint = !q.in_table
            && matches!(
                p.area,
                Area::Mbr | Area::GptHeader | Area::GptArray | Area::GptBackup
            );
        return Err(DiskError::Overlap {
            part: p.index(),
            name: p.name.clone(),
            span: p.span(),
            other: q.index(),
            other_name: q.name.clone(),
            other_span: q.span(),
            table_hint,
        });
    }
    Ok(())
}

/// The disk GUID when none is given: derived from the layout the spec
/// describes (names, offsets, sizes, types, image sizes).
fn derive_disk_guid(spec: &DiskSpec) -> Guid {
    let mut text = format!(
        "{:?} {} {} {} {}\n",
        spec.table, spec.align, spec.gpt_location, spec.size, spec.extended_partition
    );
    for p in &spec.partitions {
        text.push_str(&format!(
            "{:?} {} {} {} {} {:?} {:?} {}\n",
            p.name,
            p.offset,
            p.size,
            p.align,
            p.mbr_type,
            p.type_guid,
            p.in_table,
            p.image.as_ref().map_or(0, |i| i.size)
        ));
    }
    Guid::derive(&[b"disk", text.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &str, size: u64) -> PartSpec {
        PartSpec {
            name: name.into(),
            in_table: true,
            image: Some(ImageRef {
                name: format!("{name}.img"),
                size,
                holes: vec![],
            }),
            ..PartSpec::default()
        }
    }

    fn starts(l: &Layout) -> Vec<(u64, u64)> {
        l.partitions().map(|p| (p.offset, p.size)).collect()
    }

    #[test]
    fn mbr_partitions_follow_each_other_aligned() {
        let spec = DiskSpec {
            partitions: vec![part("a", 1000), part("b", 4096)],
            ..DiskSpec::default()
        };
        let l = plan(&spec).unwrap();
        assert_eq!(starts(&l), vec![(512, 1024), (1536, 4096)]);
        assert_eq!(l.size, 1536 + 4096);
        assert_eq!(l.file_size, 1536 + 4096);
    }

    #[test]
    fn five_partitions_make_an_extended_one() {
        let mut parts: Vec<_> = (0..6).map(|i| part(&format!("p{i}"), 512 * 4)).collect();
        parts[0].offset = 1 << 20;
        let spec = DiskSpec {
            align: 1 << 20,
            partitions: parts,
            ..DiskSpec::default()
        };
        let l = plan(&spec).unwrap();
        let m = 1u64 << 20;
        let ext = l.extended().unwrap();
        // p0..p2 primary, p3..p5 logical, each 1 MiB (EBR) after the last.
        assert_eq!(ext.offset, 4 * m);
        assert_eq!(
            starts(&l),
            vec![
                (m, m),
                (2 * m, m),
                (3 * m, m),
                (5 * m, m),
                (7 * m, m),
                (9 * m, m)
            ]
        );
        assert_eq!(ext.size, 6 * m);
        assert!(l.partitions().skip(3).all(|p| p.logical));
    }

    #[test]
    fn too_many_primaries_names_the_fifth() {
        let mut parts: Vec<_> = (0..6).map(|i| part(&format!("p{i}"), 512)).collect();
        parts[4].forced_primary = true;
        parts[5].forced_primary = true;
        let spec = DiskSpec {
            partitions: parts,
            ..DiskSpec::default()
        };
        let e = plan(&spec).unwrap_err();
        assert_eq!(e.part(), Some(4), "{e}");
        assert!(e.to_string().contains("too many primary"), "{e}");
    }

    #[test]
    fn overlap_names_both_partitions_and_ranges() {
        let mut a = part("boot", 4096);
        a.offset = 4096;
        let mut b = part("root", 4096);
        b.offset = 6144;
        let spec = DiskSpec {
            partitions: vec![a, b],
            ..DiskSpec::default()
        };
        let e = plan(&spec).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("root") && s.contains("boot"), "{s}");
        assert!(
            s.contains("0x1800..0x2800") && s.contains("0x1000..0x2000"),
            "{s}"
        );
    }

    #[test]
    fn a_bootloader_over_the_mbr_needs_a_hole() {
        let mut boot = part("spl", 8192);
        boot.in_table = false;
        let spec = DiskSpec {
            partitions: vec![boot.clone(), part("root", 4096)],
            ..DiskSpec::default()
        };
        let e = plan(&spec).unwrap_err().to_string();
        assert!(e.contains("[MBR]") && e.contains("hole"), "{e}");
        boot.image.as_mut().unwrap().holes = vec![(440, 512)];
        let mut root = part("root", 4096);
        root.offset = 8192;
        let spec = DiskSpec {
            partitions: vec![boot, root],
            ..DiskSpec::default()
        };
        let l = plan(&spec).unwrap();
        assert_eq!(starts(&l), vec![(0, 8192), (8192, 4096)]);
    }

    #[test]
    fn gpt_backup_rounds_the_disk_to_4k() {
        let spec = DiskSpec {
            table: TableType::Gpt,
            partitions: vec![part("a", 512)],
            ..DiskSpec::default()
        };
        let l = plan(&spec).unwrap();
        assert_eq!(starts(&l), vec![(17408, 512)]);
        let backup = l.areas.iter().find(|a| a.area == Area::GptBackup).unwrap();
        assert_eq!(backup.end() % 4096, 0);
        assert_eq!(l.size, backup.end());
        assert_eq!(l.file_size, l.size);
    }

    #[test]
    fn image_larger_than_partition() {
        let mut a = part("a", 5000);
        a.size = 4096;
        let spec = DiskSpec {
            partitions: vec![a],
            ..DiskSpec::default()
        };
        let e = plan(&spec).unwrap_err();
        assert!(
            matches!(
                e,
                DiskError::TooLarge {
                    image_size: 5000,
                    size: 4096,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn hybrid_allows_three_mbr_entries() {
        let mut parts: Vec<_> = (0..4).map(|i| part(&format!("p{i}"), 512)).collect();
        for p in &mut parts {
            p.mbr_type = 0x83;
        }
        let mut spec = DiskSpec {
            table: TableType::Hybrid,
            partitions: parts,
            ..DiskSpec::default()
        };
        assert!(plan(&spec).unwrap_err().to_string().contains("at most 3"));
        spec.partitions.pop();
        plan(&spec).unwrap();
    }

    #[test]
    fn autoresize_takes_the_rest() {
        let mut a = part("a", 512);
        a.autoresize = true;
        let spec = DiskSpec {
            table: TableType::Gpt,
            size: 1 << 20,
            partitions: vec![a],
            ..DiskSpec::default()
        };
        let l = plan(&spec).unwrap();
        assert_eq!(starts(&l), vec![(17408, (1 << 20) - 17408 - 33 * 512)]);
    }
}
