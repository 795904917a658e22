//! The on-disk partition table records: the MBR tail and its entries, the
//! extended boot records of logical partitions, and the GPT header and
//! entry array (UEFI 2.10 section 5).

use rootforge_common::bytes::{RecordReader, RecordWriter};

use crate::guid::Guid;
use crate::plan::{
    Area, GPT_ENTRIES, GPT_ENTRY_SIZE, GPT_SECTORS, Layout, MBR_TAIL_OFFSET, Placed, SECTOR,
    TableType,
};

/// An MBR partition entry (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MbrEntry {
    pub boot_indicator: u8,
    pub starting_chs: [u8; 3],
    pub os_type: u8,
    pub ending_chs: [u8; 3],
    pub starting_lba: u32,
    pub size_in_lba: u32,
}

impl MbrEntry {
    pub const SIZE: usize = 16;

    /// An entry with CHS addresses computed from its LBAs, `base` sectors
    /// added (the EBR entries' CHS are absolute).
    fn new(boot: bool, os_type: u8, start: u32, size: u32, base: u64) -> MbrEntry {
        let first = u64::from(start) + base;
        let last = (u64::from(start) + u64::from(size)).saturating_sub(1) + base;
        MbrEntry {
            boot_indicator: if boot { 0x80 } else { 0 },
            starting_chs: chs(first),
            os_type,
            ending_chs: chs(last),
            starting_lba: start,
            size_in_lba: size,
        }
    }

    fn write(&self, w: &mut RecordWriter) {
        w.u8(self.boot_indicator)
            .bytes(&self.starting_chs)
            .u8(self.os_type)
            .bytes(&self.ending_chs)
            .le32(self.starting_lba)
            .le32(self.size_in_lba);
    }

    fn read(r: &mut RecordReader<'_>) -> Option<MbrEntry> {
        Some(MbrEntry {
            boot_indicator: r.u8()?,
            starting_chs: r.array()?,
            os_type: r.u8()?,
            ending_chs: r.array()?,
            starting_lba: r.le32()?,
            size_in_lba: r.le32()?,
        })
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.os_type == 0
    }
}

/// A CHS address for a 255-head, 63-sector geometry, the cylinder kept to
/// its 10 bits as genimage keeps it.
fn chs(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    let lba = lba & u64::from(u32::MAX);
    let head = (lba / SECTORS) % HEADS;
    let cyl = lba / (SECTORS * HEADS);
    let sector = if lba > 0 { lba % SECTORS + 1 } else { 0 };
    [
        (head & 0xff) as u8,
        (((cyl & 0x300) >> 2) | (sector & 0xff)) as u8,
        (cyl & 0xff) as u8,
    ]
}

/// The MBR's tail at byte 440 (72 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MbrTail {
    pub disk_signature: u32,
    pub copy_protected: u16,
    pub entries: [MbrEntry; 4],
    pub boot_signature: u16,
}

impl MbrTail {
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_capacity(72);
        w.le32(self.disk_signature).le16(self.copy_protected);
        for e in &self.entries {
            e.write(&mut w);
        }
        w.le16(self.boot_signature);
        w.into_bytes()
    }

    /// Parses the 72 bytes at 440.
    #[must_use]
    pub fn parse(b: &[u8]) -> Option<MbrTail> {
        let mut r = RecordReader::new(b);
        Some(MbrTail {
            disk_signature: r.le32()?,
            copy_protected: r.le16()?,
            entries: [
                MbrEntry::read(&mut r)?,
                MbrEntry::read(&mut r)?,
                MbrEntry::read(&mut r)?,
                MbrEntry::read(&mut r)?,
            ],
            boot_signature: r.le16()?,
        })
    }
}

pub const BOOT_SIGNATURE: u16 = 0xaa55;
pub const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";
pub const GPT_REVISION: u32 = 0x0001_0000;
pub const GPT_HEADER_SIZE: u32 = 92;

/// A GPT header (92 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GptHeader {
    pub revision: u32,
    pub header_size: u32,
    pub header_crc32: u32,
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub disk_guid: Guid,
    pub partition_entry_lba: u64,
    pub number_of_partition_entries: u32,
    pub size_of_partition_entry: u32,
    pub partition_entry_array_crc32: u32,
}

impl GptHeader {
    /// The header's bytes with `crc` in its CRC field.
    fn bytes_with(&self, crc: u32) -> Vec<u8> {
        let mut w = RecordWriter::with_capacity(92);
        w.bytes(GPT_SIGNATURE)
            .le32(self.revision)
            .le32(self.header_size)
            .le32(crc)
            .le32(0)
            .le64(self.my_lba)
            .le64(self.alternate_lba)
            .le64(self.first_usable_lba)
            .le64(self.last_usable_lba)
            .bytes(&self.disk_guid.to_disk())
            .le64(self.partition_entry_lba)
            .le32(self.number_of_partition_entries)
            .le32(self.size_of_partition_entry)
            .le32(self.partition_entry_array_crc32);
        w.into_bytes()
    }

    /// The header with its CRC computed.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let crc = crc32fast::hash(&self.bytes_with(0));
        self.bytes_with(crc)
    }

    /// Parses a header sector, checking the signature, the size and the
    /// CRC.
    ///
    /// # Errors
    ///
    /// What is wrong with it.
    pub fn parse(b: &[u8]) -> Result<GptHeader, String> {
        let mut r = RecordReader::new(b);
        if r.bytes(8) != Some(&GPT_SIGNATURE[..]) {
            return Err("no GPT signature".into());
        }
        let short = || "truncated GPT header".to_owned();
        let revision = r.le32().ok_or_else(short)?;
        let header_size = r.le32().ok_or_else(short)?;
        let header_crc32 = r.le32().ok_or_else(short)?;
        r.le32().ok_or_else(short)?;
        let h = GptHeader {
            revision,
            header_size,
            header_crc32,
            my_lba: r.le64().ok_or_else(short)?,
            alternate_lba: r.le64().ok_or_else(short)?,
            first_usable_lba: r.le64().ok_or_else(short)?,
            last_usable_lba: r.le64().ok_or_else(short)?,
            disk_guid: Guid::from_disk(r.array().ok_or_else(short)?),
            partition_entry_lba: r.le64().ok_or_else(short)?,
            number_of_partition_entries: r.le32().ok_or_else(short)?,
            size_of_partition_entry: r.le32().ok_or_else(short)?,
            partition_entry_array_crc32: r.le32().ok_or_else(short)?,
        };
        let size = usize::try_from(header_size).unwrap_or(usize::MAX);
        if !(92..=512).contains(&size) || size > b.len() {
            return Err(format!("GPT header size {header_size} is not in 92..=512"));
        }
        let mut copy = b[..size].to_vec();
        copy[16..20].fill(0);
        let crc = crc32fast::hash(&copy);
        if crc != header_crc32 {
            return Err(format!(
                "GPT header CRC is {header_crc32:#010x}, but the header's bytes give {crc:#010x}"
            ));
        }
        if h.size_of_partition_entry < 128
            || h.size_of_partition_entry % 8 != 0
            || h.size_of_partition_entry > 4096
        {
            return Err(format!(
                "GPT entry size {} is not a multiple of 8 in 128..=4096",
                h.size_of_partition_entry
            ));
        }
        if h.number_of_partition_entries > 65536 {
            return Err(format!(
                "GPT claims {} entries, more than 65536",
                h.number_of_partition_entries
            ));
        }
        Ok(h)
    }
}

/// A GPT partition entry (128 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GptEntry {
    pub partition_type_guid: Guid,
    pub unique_partition_guid: Guid,
    pub starting_lba: u64,
    pub ending_lba: u64,
    pub attributes: u64,
    /// UTF-16LE, at most 36 code units.
    pub partition_name: Vec<u16>,
}

impl GptEntry {
    fn write(&self, w: &mut RecordWriter) {
        w.bytes(&self.partition_type_guid.to_disk())
            .bytes(&self.unique_partition_guid.to_disk())
            .le64(self.starting_lba)
            .le64(self.ending_lba)
            .le64(self.attributes);
        for i in 0..36 {
            w.le16(self.partition_name.get(i).copied().unwrap_or(0));
        }
    }

    /// Parses one entry of `b` (at least 128 bytes).
    #[must_use]
    pub fn parse(b: &[u8]) -> Option<GptEntry> {
        let mut r = RecordReader::new(b);
        let mut e = GptEntry {
            partition_type_guid: Guid::from_disk(r.array()?),
            unique_partition_guid: Guid::from_disk(r.array()?),
            starting_lba: r.le64()?,
            ending_lba: r.le64()?,
            attributes: r.le64()?,
            partition_name: Vec::new(),
        };
        for _ in 0..36 {
            let c = r.le16()?;
            if c == 0 {
                break;
            }
            e.partition_name.push(c);
        }
        Some(e)
    }

    /// The name as text.
    #[must_use]
    pub fn name(&self) -> String {
        String::from_utf16_lossy(&self.partition_name)
    }
}

/// A region of the image a table structure overwrites: `(offset, bytes)`.
pub type Patch = (u64, Vec<u8>);

fn sectors(v: u64) -> u32 {
    // The planner keeps MBR partitions below 2^32 sectors; the protective
    // entry is capped as UEFI says.
    u32::try_from(v / SECTOR).unwrap_or(u32::MAX)
}

fn mbr_tail(layout: &Layout) -> MbrTail {
    let mut tail = MbrTail {
        disk_signature: layout.disk_signature,
        boot_signature: BOOT_SIGNATURE,
        ..MbrTail::default()
    };
    let mut slot = 0;
    if layout.table == TableType::Gpt {
        tail.entries[0] = MbrEntry::new(
            false,
            0xee,
            1,
            sectors(layout.size.saturating_sub(SECTOR)),
            0,
        );
        return tail;
    }
    for p in &layout.areas {
        if !p.in_table || p.logical {
            continue;
        }
        if layout.table == TableType::Hybrid && p.mbr_type == 0 {
            continue;
        }
        if let Some(e) = tail.entries.get_mut(slot) {
            *e = MbrEntry::new(
                p.bootable,
                p.mbr_type,
                sectors(p.offset),
                sectors(p.size),
                0,
            );
        }
        slot += 1;
    }
    if layout.table == TableType::Hybrid
        && let Some(e) = tail.entries.get_mut(slot)
    {
        *e = MbrEntry::new(
            false,
            0xee,
            1,
            sectors(layout.gpt_location) + (GPT_SECTORS as u32) - 2,
            0,
        );
    }
    tail
}

/// The extended boot record before logical partition `p`: its own entry,
/// and the link to the next logical partition.
fn ebr(layout: &Layout, i: usize) -> Patch {
    let p = &layout.areas[i];
    let ext = layout.extended().map_or(0, |e| e.offset);
    let ebr_at = p.offset - layout.align;
    let mut entries = [MbrEntry::default(); 2];
    entries[0] = MbrEntry::new(
        false,
        p.mbr_type,
        sectors(layout.align),
        sectors(p.size),
        ebr_at / SECTOR,
    );
    if let Some(next) = layout.areas[i + 1..].iter().find(|q| q.logical) {
        entries[1] = MbrEntry::new(
            false,
            crate::plan::EXTENDED_TYPE,
            sectors(next.offset - layout.align - ext),
            sectors(next.size + layout.align),
            ext / SECTOR,
        );
    }
    let mut w = RecordWriter::with_capacity(66);
    for e in &entries {
        e.write(&mut w);
    }
    w.zeros(32).le16(BOOT_SIGNATURE);
    (ebr_at + 446, w.into_bytes())
}

fn gpt_entries(layout: &Layout) -> Vec<u8> {
    let mut w = RecordWriter::with_capacity((GPT_ENTRIES * GPT_ENTRY_SIZE) as usize);
    let mut n = 0;
    for p in layout.areas.iter().filter(|p| p.in_table) {
        GptEntry {
            partition_type_guid: p.type_guid,
            unique_partition_guid: p.guid,
            starting_lba: p.offset / SECTOR,
            ending_lba: (p.end() / SECTOR).saturating_sub(1),
            attributes: p.gpt_attrs,
            partition_name: p.name.encode_utf16().take(36).collect(),
        }
        .write(&mut w);
        n += 1;
    }
    w.zeros(((GPT_ENTRIES - n) * GPT_ENTRY_SIZE) as usize);
    w.into_bytes()
}

/// First usable LBA as genimage computes it: the end of the last area
/// outside the table (MBR, GPT, raw bootloaders) that ends before the
/// first partition.
fn first_usable(layout: &Layout) -> u64 {
    let first = layout
        .areas
        .iter()
        .filter(|p| p.in_table)
        .map(|p| p.offset)
        .min()
        .unwrap_or(u64::MAX);
    let end = layout
        .areas
        .iter()
        .filter(|p| !p.in_table && p.area != Area::GptBackup && p.area != Area::Extended)
        .map(Placed::end)
        .filter(|&e| e <= first)
        .max()
        .unwrap_or(0);
    end.div_ceil(SECTOR)
}

/// The table structures of `layout`, as regions to write over the image.
#[must_use]
pub fn patches(layout: &Layout) -> Vec<Patch> {
    let mut out = Vec::new();
    if layout.table == TableType::None {
        return out;
    }
    for (i, p) in layout.areas.iter().enumerate() {
        if p.logical {
            out.push(ebr(layout, i));
        }
    }
    if layout.table.has_gpt() {
        let array = gpt_entries(layout);
        let lbas = layout.size / SECTOR;
        let mut h = GptHeader {
            revision: GPT_REVISION,
            header_size: GPT_HEADER_SIZE,
            header_crc32: 0,
            my_lba: 1,
            alternate_lba: if layout.gpt_no_backup {
                1
            } else {
                lbas.saturating_sub(1)
            },
            first_usable_lba: first_usable(layout),
            last_usable_lba: lbas.saturating_sub(1 + GPT_SECTORS),
            disk_guid: layout.disk_guid,
            partition_entry_lba: layout.gpt_location / SECTOR,
            number_of_partition_entries: GPT_ENTRIES as u32,
            size_of_partition_entry: GPT_ENTRY_SIZE as u32,
            partition_entry_array_crc32: crc32fast::hash(&array),
        };
        out.push((SECTOR, h.to_bytes()));
        out.push((layout.gpt_location, array.clone()));
        if !layout.gpt_no_backup {
            h.my_lba = lbas.saturating_sub(1);
            h.alternate_lba = 1;
            h.partition_entry_lba = lbas.saturating_sub(GPT_SECTORS);
            out.push((h.partition_entry_lba * SECTOR, array));
            out.push((h.my_lba * SECTOR, h.to_bytes()));
        }
    }
    out.push((MBR_TAIL_OFFSET, mbr_tail(layout).to_bytes()));
    out.sort_by_key(|p| p.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chs_matches_the_usual_geometry() {
        assert_eq!(chs(0), [0, 0, 0]);
        assert_eq!(chs(2048), [32, 33, 0]);
        // Sector 63*255 is cylinder 1, head 0, sector 1.
        assert_eq!(chs(63 * 255), [0, 1, 1]);
    }

    #[test]
    fn gpt_header_round_trips_with_its_crc() {
        let h = GptHeader {
            revision: GPT_REVISION,
            header_size: 92,
            my_lba: 1,
            alternate_lba: 99,
            first_usable_lba: 34,
            last_usable_lba: 66,
            disk_guid: Guid::derive(&[b"x"]),
            partition_entry_lba: 2,
            number_of_partition_entries: 128,
            size_of_partition_entry: 128,
            partition_entry_array_crc32: 7,
            header_crc32: 0,
        };
        let b = h.to_bytes();
        let back = GptHeader::parse(&b).unwrap();
        assert_eq!(back.disk_guid, h.disk_guid);
        let mut bad = b.clone();
        bad[40] ^= 1;
        assert!(GptHeader::parse(&bad).unwrap_err().contains("CRC"));
    }
}
