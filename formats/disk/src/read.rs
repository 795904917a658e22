//! Reading a partition table back: the MBR (with its chain of extended
//! boot records) and the GPT, every field bounds-checked, for `inspect`
//! and the tests. Partitions are reported as the table has them, also
//! where they reach past the end of the file (genimage's files end at
//! their last data byte); the structures read (EBRs, the GPT) must lie
//! inside it.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{DiskError, Result};
use crate::guid::{self, Guid};
use crate::plan::{EXTENDED_TYPE, MBR_TAIL_OFFSET, MBR_TAIL_SIZE, SECTOR};
use crate::table::{BOOT_SIGNATURE, GptEntry, GptHeader, MbrTail};

/// Most logical partitions followed in an EBR chain.
const MAX_LOGICAL: usize = 256;

/// One partition as the table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based, as Linux numbers it (logical partitions from 5).
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub mbr_type: Option<u8>,
    pub bootable: bool,
    pub type_guid: Option<Guid>,
    pub guid: Option<Guid>,
    pub name: String,
    pub gpt_attrs: u64,
}

/// Which table a disk has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mbr,
    Gpt,
    /// A GPT whose MBR has entries other than the protective one.
    Hybrid,
}

/// A disk's partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub kind: Kind,
    pub disk_signature: u32,
    pub disk_guid: Option<Guid>,
    /// The GPT partitions (for GPT and hybrid), else the MBR ones.
    pub partitions: Vec<Partition>,
    /// The MBR's own entries of a hybrid disk.
    pub hybrid_mbr: Vec<Partition>,
}

fn malformed(offset: u64, reason: impl Into<String>) -> DiskError {
    DiskError::Malformed {
        offset,
        reason: reason.into(),
    }
}

fn slice(disk: &[u8], offset: u64, len: u64) -> Result<&[u8]> {
    let end = offset
        .checked_add(len)
        .ok_or_else(|| malformed(offset, "offset overflows"))?;
    usize::try_from(offset)
        .ok()
        .zip(usize::try_from(end).ok())
        .and_then(|(s, e)| disk.get(s..e))
        .ok_or_else(|| {
            malformed(
                offset,
                format!(
                    "{len} bytes at {offset} lie past the end of the {}-byte disk",
                    disk.len()
                ),
            )
        })
}

/// True when `disk` starts with an MBR boot signature.
#[must_use]
pub fn is_partitioned(disk: &[u8]) -> bool {
    disk.get(510..512) == Some(&BOOT_SIGNATURE.to_le_bytes()[..])
        && MbrTail::parse(disk.get(440..512).unwrap_or_default())
            .is_some_and(|t| t.entries.iter().any(|e| !e.is_empty()))
}

/// Reads the partition table of a whole disk image.
///
/// # Errors
///
/// A table that is truncated, points outside the disk, loops, or fails
/// its checksums.
pub fn read(disk: &[u8]) -> Result<Table> {
    let tail = MbrTail::parse(slice(disk, MBR_TAIL_OFFSET, MBR_TAIL_SIZE)?)
        .ok_or_else(|| malformed(MBR_TAIL_OFFSET, "truncated MBR"))?;
    if tail.boot_signature != BOOT_SIGNATURE {
        return Err(malformed(510, "no MBR boot signature (55 aa)"));
    }
    let protective = tail.entries.iter().any(|e| e.os_type == 0xee);
    let mbr = mbr_partitions(disk, &tail)?;
    if !protective {
        return Ok(Table {
            kind: Kind::Mbr,
            disk_signature: tail.disk_signature,
            disk_guid: None,
            partitions: mbr,
            hybrid_mbr: Vec::new(),
        });
    }
    let header =
        GptHeader::parse(slice(disk, SECTOR, SECTOR)?).map_err(|e| malformed(SECTOR, e))?;
    if header.my_lba != 1 {
        return Err(malformed(
            SECTOR,
            format!("GPT header says it is at LBA {}", header.my_lba),
        ));
    }
    let entry_size = u64::from(header.size_of_partition_entry);
    let count = u64::from(header.number_of_partition_entries);
    let array_at = header
        .partition_entry_lba
        .checked_mul(SECTOR)
        .ok_or_else(|| malformed(SECTOR, "entry array LBA overflows"))?;
    let array = slice(disk, array_at, count * entry_size)?;
    let crc = crc32fast::hash(array);
    if crc != header.partition_entry_array_crc32 {
        return Err(malformed(
            array_at,
            format!(
                "GPT entry array CRC is {:#010x}, the header says {:#010x}",
                crc, header.partition_entry_array_crc32
            ),
        ));
    }
    if header.first_usable_lba > header.last_usable_lba.saturating_add(1) {
        return Err(malformed(
            SECTOR,
            "first usable LBA is past the last usable LBA",
        ));
    }
    let mut partitions = Vec::new();
    for (i, chunk) in array.chunks_exact(entry_size as usize).enumerate() {
        let e = GptEntry::parse(chunk).ok_or_else(|| malformed(array_at, "truncated entry"))?;
        if e.partition_type_guid.is_nil() {
            continue;
        }
        let at = array_at + i as u64 * entry_size;
        if e.ending_lba < e.starting_lba {
            return Err(malformed(
                at,
                format!("entry {} ends before it starts", i + 1),
            ));
        }
        let start = e
            .starting_lba
            .checked_mul(SECTOR)
            .ok_or_else(|| malformed(at, "start overflows"))?;
        let size = (e.ending_lba - e.starting_lba + 1)
            .checked_mul(SECTOR)
            .ok_or_else(|| malformed(at, "size overflows"))?;
        if e.starting_lba < header.first_usable_lba || e.ending_lba > header.last_usable_lba {
            return Err(malformed(
                at,
                format!(
                    "entry {} (LBA {}..={}) lies outside the usable LBAs {}..={}",
                    i + 1,
                    e.starting_lba,
                    e.ending_lba,
                    header.first_usable_lba,
                    header.last_usable_lba
                ),
            ));
        }
        partitions.push(Partition {
            number: u32::try_from(i + 1).unwrap_or(u32::MAX),
            start,
            size,
            mbr_type: None,
            bootable: e.attributes & crate::plan::GPT_ATTR_LEGACY_BOOTABLE != 0,
            type_guid: Some(e.partition_type_guid),
            guid: Some(e.unique_partition_guid),
            name: e.name(),
            gpt_attrs: e.attributes,
        });
    }
    let hybrid: Vec<Partition> = mbr
        .into_iter()
        .filter(|p| p.mbr_type != Some(0xee))
        .collect();
    Ok(Table {
        kind: if hybrid.is_empty() {
            Kind::Gpt
        } else {
            Kind::Hybrid
        },
        disk_signature: tail.disk_signature,
        disk_guid: Some(header.disk_guid),
        partitions,
        hybrid_mbr: hybrid,
    })
}

fn mbr_partitions(disk: &[u8], tail: &MbrTail) -> Result<Vec<Partition>> {
    let mut out = Vec::new();
    let mut extended = None;
    for (i, e) in tail.entries.iter().enumerate() {
        if e.is_empty() {
            continue;
        }
        let start = u64::from(e.starting_lba) * SECTOR;
        let size = u64::from(e.size_in_lba) * SECTOR;
        if matches!(e.os_type, 0x05 | EXTENDED_TYPE | 0x85) {
            if extended.is_some() {
                return Err(malformed(446 + i as u64 * 16, "two extended partitions"));
            }
            extended = Some((start, size));
        }
        out.push(Partition {
            number: (i + 1) as u32,
            start,
            size,
            mbr_type: Some(e.os_type),
            bootable: e.boot_indicator & 0x80 != 0,
            type_guid: None,
            guid: None,
            name: String::new(),
            gpt_attrs: 0,
        });
    }
    if let Some((ext_start, ext_size)) = extended {
        let mut seen = BTreeSet::new();
        let mut ebr = ext_start;
        let mut number = 5u32;
        loop {
            if !seen.insert(ebr) || seen.len() > MAX_LOGICAL {
                return Err(malformed(
                    ebr,
                    "the chain of extended boot records loops or is too long",
                ));
            }
            let t = MbrTail::parse(slice(disk, ebr + MBR_TAIL_OFFSET, MBR_TAIL_SIZE)?)
                .ok_or_else(|| malformed(ebr, "truncated EBR"))?;
            if t.boot_signature != BOOT_SIGNATURE {
                return Err(malformed(ebr + 510, "EBR without boot signature"));
            }
            let [this, next, ..] = t.entries;
            if !this.is_empty() {
                let start = ebr + u64::from(this.starting_lba) * SECTOR;
                let size = u64::from(this.size_in_lba) * SECTOR;
                if start + size > ext_start + ext_size {
                    return Err(malformed(
                        ebr + 446,
                        "logical partition ends past its extended partition",
                    ));
                }
                out.push(Partition {
                    number,
                    start,
                    size,
                    mbr_type: Some(this.os_type),
                    bootable: this.boot_indicator & 0x80 != 0,
                    type_guid: None,
                    guid: None,
                    name: String::new(),
                    gpt_attrs: 0,
                });
                number += 1;
            }
            if next.is_empty() {
                break;
            }
            ebr = ext_start + u64::from(next.starting_lba) * SECTOR;
            if ebr >= ext_start + ext_size {
                return Err(malformed(
                    ebr,
                    "EBR link points past its extended partition",
                ));
            }
        }
    }
    Ok(out)
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Mbr => writeln!(f, "label: dos\nlabel-id: {:#010x}", self.disk_signature)?,
            Kind::Gpt | Kind::Hybrid => {
                writeln!(f, "label: gpt")?;
                if let Some(g) = self.disk_guid {
                    writeln!(f, "label-id: {g}")?;
                }
            }
        }
        for p in &self.partitions {
            write!(
                f,
                "{:>3} start={:>10} size={:>10}",
                p.number,
                p.start / SECTOR,
                p.size / SECTOR
            )?;
            if let Some(t) = p.mbr_type {
                write!(f, " type={t:x}")?;
            }
            if let Some(t) = p.type_guid {
                write!(f, " type={t}")?;
                if let Some(s) = guid::shortcut_name(t) {
                    write!(f, " ({s})")?;
                }
            }
            if let Some(g) = p.guid {
                write!(f, " uuid={g}")?;
            }
            if !p.name.is_empty() {
                write!(f, " name={:?}", p.name)?;
            }
            if p.bootable {
                write!(f, " bootable")?;
            }
            if p.gpt_attrs != 0 {
                write!(f, " attrs={:#x}", p.gpt_attrs)?;
            }
            writeln!(f)?;
        }
        for p in &self.hybrid_mbr {
            writeln!(
                f,
                "mbr{} start={:>10} size={:>10} type={:x}{}",
                p.number,
                p.start / SECTOR,
                p.size / SECTOR,
                p.mbr_type.unwrap_or(0),
                if p.bootable { " bootable" } else { "" }
            )?;
        }
        Ok(())
    }
}
