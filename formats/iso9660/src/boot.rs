//! El Torito boot catalog and boot info table, and the isohybrid system
//! area: an MBR with the user's boot code and, with an EFI image, a GPT.

use rootforge_common::bytes::{RecordWriter, put_at, usize_from_u32};
use sha2::{Digest, Sha256};

use crate::plan::{Boot, Plan};
use crate::raw::eltorito::{
    BootInfoTable, FINAL_HEADER, PLATFORM_EFI, PLATFORM_X86, SectionEntry, SectionHeader,
    ValidationEntry,
};
use crate::raw::fixed;
use crate::raw::hybrid::{
    BOOT_CODE_LEN, GPT_ARRAY_LEN, GPT_ARRAY_SECTORS, GPT_BACKUP_BLOCKS, GptHeader,
    GptPartitionEntry, Mbr, MbrPartitionRecord, SECTOR, SECTOR_LEN,
};
use crate::raw::volume::{BOOT_RECORD, BootRecord, EL_TORITO, VolumeDescriptorHeader};
use crate::{BLOCK, BLOCK_LEN, IsoEncoder};

/// 512-byte sectors in a block.
const SECTORS_PER_BLOCK: u64 = BLOCK / SECTOR;
/// Bytes of the system area: blocks 0..16.
const SYSTEM_AREA_LEN: usize = 16 * BLOCK_LEN;
const BASIC_DATA: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
const EFI_SYSTEM: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

/// The Boot Record volume descriptor (block 17).
pub(crate) fn boot_record(catalog: u32) -> Vec<u8> {
    let mut w = RecordWriter::with_capacity(BLOCK_LEN);
    BootRecord {
        header: VolumeDescriptorHeader::new(BOOT_RECORD),
        boot_system_identifier: fixed(EL_TORITO, 0),
        boot_identifier: [0; 32],
        boot_catalog_pointer: catalog,
    }
    .encode(&mut w);
    w.into_bytes()
}

/// Sectors of 512 bytes an EFI entry names; 0 ("the whole image") when
/// the size does not fit the 16-bit field.
fn efi_sectors(size: u64) -> u16 {
    u16::try_from(size.div_ceil(SECTOR)).unwrap_or(0)
}

/// The boot catalog: a validation entry, the default entry (BIOS when
/// there is one), and a final EFI section when both are present.
pub(crate) fn catalog(enc: &IsoEncoder, p: &Plan<'_>, b: &Boot) -> Vec<u8> {
    let mut w = RecordWriter::with_capacity(BLOCK_LEN);
    let platform = if b.bios.is_some() {
        PLATFORM_X86
    } else {
        PLATFORM_EFI
    };
    ValidationEntry::new(platform).encode(&mut w);
    let efi = b.efi.map(|i| {
        let s = &p.slots[i];
        SectionEntry::bootable(s.lba, efi_sectors(s.size))
    });
    match b.bios {
        Some(i) => {
            SectionEntry::bootable(p.slots[i].lba, enc.boot_load_size).encode(&mut w);
            if let Some(e) = efi {
                SectionHeader {
                    header_indicator: FINAL_HEADER,
                    platform_id: PLATFORM_EFI,
                    number_of_section_entries: 1,
                    id_string: [0; 28],
                }
                .encode(&mut w);
                e.encode(&mut w);
            }
        }
        None => {
            if let Some(e) = efi {
                e.encode(&mut w);
            }
        }
    }
    w.zeros(BLOCK_LEN.saturating_sub(w.len()));
    w.into_bytes()
}

/// Writes the boot info table into a BIOS boot image at block `lba`: the
/// PVD's block, the image's block and length, and its checksum. `None`
/// when the image is too short to hold it (planning refuses those).
pub(crate) fn info_table(image: &mut [u8], lba: u32) -> Option<()> {
    let table = BootInfoTable {
        bi_pvd: 16,
        bi_file: lba,
        bi_length: u32::try_from(image.len()).ok()?,
        bi_csum: BootInfoTable::checksum(image),
    };
    let mut w = RecordWriter::with_capacity(BootInfoTable::LEN);
    table.encode(&mut w);
    put_at(image, BootInfoTable::OFFSET, &w.into_bytes())
}

/// A deterministic 16-byte value for the MBR id and GPT GUIDs.
fn seed(enc: &IsoEncoder, what: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(enc.created.sec.to_le_bytes());
    h.update(enc.created.nsec.to_le_bytes());
    h.update(enc.volume_id.as_bytes());
    h.update(what.as_bytes());
    fixed(&h.finalize(), 0)
}

/// A version-4-style GUID derived from the seed.
fn guid(enc: &IsoEncoder, what: &str) -> [u8; 16] {
    let mut g = seed(enc, what);
    g[7] = (g[7] & 0x0F) | 0x40;
    g[8] = (g[8] & 0x3F) | 0x80;
    g
}

/// A GUID in text form, in its on-disk mixed-endian layout.
fn guid_bytes(text: &str) -> [u8; 16] {
    let hex: Vec<u8> = text
        .bytes()
        .filter(|&c| c != b'-')
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).unwrap_or("00");
            u8::from_str_radix(s, 16).unwrap_or(0)
        })
        .collect();
    let mut g = [0u8; 16];
    if hex.len() == 16 {
        g.copy_from_slice(&hex);
        g[0..4].reverse();
        g[4..6].reverse();
        g[6..8].reverse();
    }
    g
}

/// The CHS form of sector `lba` (64 heads, 32 sectors per track), or the
/// "beyond CHS" marker.
fn chs(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 64;
    const SECTORS: u64 = 32;
    const BEYOND: [u8; 3] = [0xFE, 0xFF, 0xFF];
    let cylinder = u16::try_from(lba / (HEADS * SECTORS)).unwrap_or(u16::MAX);
    let head = u8::try_from(lba / SECTORS % HEADS);
    let sector = u8::try_from(lba % SECTORS + 1);
    match (cylinder, head, sector) {
        (0..=1023, Ok(h), Ok(s)) => {
            let [c_low, c_high] = cylinder.to_le_bytes();
            [h, s | (c_high << 6), c_low]
        }
        _ => BEYOND,
    }
}

fn mbr_partition(active: bool, os_type: u8, start: u64, count: u64) -> MbrPartitionRecord {
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    MbrPartitionRecord {
        boot_indicator: if active { 0x80 } else { 0 },
        starting_chs: chs(start),
        os_type,
        ending_chs: chs((start + count.max(1)).saturating_sub(1)),
        starting_lba: clamp(start),
        size_in_lba: clamp(count),
    }
}

/// The EFI image's first and last 512-byte sector.
fn efi_sectors_span(p: &Plan<'_>) -> Option<(u64, u64)> {
    p.boot.as_ref().and_then(|b| b.efi).map(|e| {
        let s = &p.slots[e];
        let start = u64::from(s.lba) * SECTORS_PER_BLOCK;
        (start, start + s.size.div_ceil(SECTOR).max(1) - 1)
    })
}

/// The GPT partition entry array: the ISO as basic data, the EFI image as
/// the EFI system partition.
fn gpt_entries(enc: &IsoEncoder, p: &Plan<'_>) -> Vec<u8> {
    let mut w = RecordWriter::with_capacity(GPT_ARRAY_LEN);
    // The EFI image is the last extent (see `plan::layout`), so the ISO
    // partition ends where it starts.
    let data_end = u64::from(p.gpt_backup.unwrap_or(p.total)) * SECTORS_PER_BLOCK;
    let efi = efi_sectors_span(p);
    let iso_end = efi.map_or(data_end, |(start, _)| start);
    let mut parts = vec![(BASIC_DATA, "ISO9660", 64u64, iso_end.saturating_sub(1))];
    if let Some((start, last)) = efi {
        parts.push((EFI_SYSTEM, "EFI boot image", start, last));
    }
    for (i, (kind, name, first, last)) in parts.into_iter().enumerate() {
        let mut partition_name = [0u16; 36];
        for (slot, c) in partition_name.iter_mut().zip(name.encode_utf16()) {
            *slot = c;
        }
        GptPartitionEntry {
            partition_type_guid: guid_bytes(kind),
            unique_partition_guid: guid(enc, &format!("gpt partition {i}")),
            starting_lba: first,
            ending_lba: last,
            attributes: 0,
            partition_name,
        }
        .encode(&mut w);
    }
    w.zeros(GPT_ARRAY_LEN.saturating_sub(w.len()));
    w.into_bytes()
}

/// A GPT header at sector `mine` whose partner is at `other` and whose
/// entries start at sector `entries`.
fn gpt_header(
    enc: &IsoEncoder,
    p: &Plan<'_>,
    array: &[u8],
    (mine, other, entries): (u64, u64, u64),
) -> GptHeader {
    let total = u64::from(p.total) * SECTORS_PER_BLOCK;
    GptHeader::new(
        mine,
        other,
        2 + GPT_ARRAY_SECTORS,
        total.saturating_sub(2 + GPT_ARRAY_SECTORS),
        guid(enc, "gpt disk"),
        entries,
        array,
    )
}

/// Blocks 0..16: zeros, or the isohybrid MBR (and primary GPT).
pub(crate) fn system_area(enc: &IsoEncoder, p: &Plan<'_>) -> Vec<u8> {
    let mut w = RecordWriter::with_capacity(SYSTEM_AREA_LEN);
    if let Some(code) = &enc.hybrid_mbr {
        let boot = p.boot.as_ref();
        // isohdpfx reads the boot image's 512-byte sector number here.
        let boot_image_sector = boot
            .and_then(|b| b.bios)
            .map_or(0, |i| u64::from(p.slots[i].lba) * SECTORS_PER_BLOCK);
        let total = u64::from(p.total) * SECTORS_PER_BLOCK;
        let mut partition_record = [MbrPartitionRecord::default(); 4];
        partition_record[0] = mbr_partition(true, 0x17, 0, total);
        let efi = efi_sectors_span(p);
        let gpt = efi.is_some() && p.gpt_backup.is_some();
        if let Some((start, last)) = efi {
            partition_record[1] = mbr_partition(false, 0xEF, start, last + 1 - start);
            if gpt {
                partition_record[2] = mbr_partition(false, 0xEE, 1, 63);
            }
        }
        Mbr {
            boot_code: code.get(..BOOT_CODE_LEN).unwrap_or(code),
            boot_image_sector,
            unique_mbr_disk_signature: fixed(&seed(enc, "mbr id"), 0),
            unknown: 0,
            partition_record,
            signature: Mbr::SIGNATURE,
        }
        .encode(&mut w);
        if gpt {
            let array = gpt_entries(enc, p);
            gpt_header(enc, p, &array, (1, total - 1, 2)).encode(&mut w);
            w.bytes(&array);
        }
    }
    w.zeros(SYSTEM_AREA_LEN.saturating_sub(w.len()));
    w.into_bytes()
}

/// The backup GPT: entries, then the header in the image's last sector.
pub(crate) fn gpt_backup(enc: &IsoEncoder, p: &Plan<'_>) -> Vec<u8> {
    let total = u64::from(p.total) * SECTORS_PER_BLOCK;
    let len = usize_from_u32(GPT_BACKUP_BLOCKS) * BLOCK_LEN;
    let mut w = RecordWriter::with_capacity(len);
    let array = gpt_entries(enc, p);
    w.zeros(len - SECTOR_LEN - GPT_ARRAY_LEN);
    w.bytes(&array);
    let last = total - 1;
    gpt_header(enc, p, &array, (last, 1, last - GPT_ARRAY_SECTORS)).encode(&mut w);
    w.into_bytes()
}
