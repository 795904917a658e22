//! El Torito boot catalog and boot info table, and the isohybrid system
//! area: an MBR with the user's boot code and, with an EFI image, a GPT.

use sha2::{Digest, Sha256};

use crate::plan::{Boot, Plan};
use crate::{BLOCK, IsoEncoder};

/// Blocks at the end of the image for the backup GPT: 32 sectors of
/// entries and the header in the last sector.
pub(crate) const GPT_BACKUP_BLOCKS: u64 = 9;
const SECTOR: u64 = 512;
const GPT_ENTRIES: usize = 128;
const GPT_ENTRY: usize = 128;
/// Sectors the GPT entry array takes.
const GPT_ENTRY_SECTORS: u64 = (GPT_ENTRIES * GPT_ENTRY) as u64 / SECTOR;
const BASIC_DATA: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
const EFI_SYSTEM: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

/// The Boot Record volume descriptor (block 17).
pub(crate) fn boot_record(catalog: u32) -> Vec<u8> {
    let mut v = vec![0u8; BLOCK as usize];
    v[1..6].copy_from_slice(b"CD001");
    v[6] = 1;
    v[7..30].copy_from_slice(b"EL TORITO SPECIFICATION");
    v[0x47..0x4B].copy_from_slice(&catalog.to_le_bytes());
    v
}

fn entry(lba: u32, sectors: u16) -> [u8; 32] {
    let mut e = [0u8; 32];
    e[0] = 0x88;
    e[6..8].copy_from_slice(&sectors.to_le_bytes());
    e[8..12].copy_from_slice(&lba.to_le_bytes());
    e
}

/// Sectors of 512 bytes an EFI entry names; 0 ("the whole image") when
/// the size does not fit the 16-bit field.
fn efi_sectors(size: u64) -> u16 {
    u16::try_from(size.div_ceil(SECTOR)).unwrap_or(0)
}

/// The boot catalog: a validation entry, the default entry (BIOS when
/// there is one), and a final EFI section when both are present.
pub(crate) fn catalog(enc: &IsoEncoder, p: &Plan<'_>, b: &Boot) -> Vec<u8> {
    let mut v = vec![0u8; BLOCK as usize];
    v[0] = 1;
    v[1] = if b.bios.is_some() { 0 } else { 0xEF };
    v[30] = 0x55;
    v[31] = 0xAA;
    let sum = v[..32].chunks(2).fold(0u16, |s, w| {
        s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    v[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
    let efi = b
        .efi
        .map(|i| entry(p.slots[i].lba, efi_sectors(p.slots[i].size)));
    match b.bios {
        Some(i) => {
            v[32..64].copy_from_slice(&entry(p.slots[i].lba, enc.boot_load_size));
            if let Some(e) = efi {
                v[64] = 0x91;
                v[65] = 0xEF;
                v[66..68].copy_from_slice(&1u16.to_le_bytes());
                v[96..128].copy_from_slice(&e);
            }
        }
        None => {
            if let Some(e) = efi {
                v[32..64].copy_from_slice(&e);
            }
        }
    }
    v
}

/// Writes the boot info table into bytes 8..64 of a BIOS boot image at
/// block `lba`: the PVD's block, the image's block and length, and the
/// sum of its 32-bit little-endian words from byte 64.
pub(crate) fn info_table(image: &mut [u8], lba: u32) {
    if image.len() < 64 {
        return;
    }
    let sum = image[64..].chunks(4).fold(0u32, |s, w| {
        let mut b = [0u8; 4];
        b[..w.len()].copy_from_slice(w);
        s.wrapping_add(u32::from_le_bytes(b))
    });
    let len = u32::try_from(image.len()).unwrap_or(u32::MAX);
    image[8..12].copy_from_slice(&16u32.to_le_bytes());
    image[12..16].copy_from_slice(&lba.to_le_bytes());
    image[16..20].copy_from_slice(&len.to_le_bytes());
    image[20..24].copy_from_slice(&sum.to_le_bytes());
    image[24..64].fill(0);
}

/// A deterministic 16-byte value for the MBR id and GPT GUIDs.
fn seed(enc: &IsoEncoder, what: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(enc.created.sec.to_le_bytes());
    h.update(enc.created.nsec.to_le_bytes());
    h.update(enc.volume_id.as_bytes());
    h.update(what.as_bytes());
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
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

fn chs(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 64;
    const SECTORS: u64 = 32;
    let c = lba / (HEADS * SECTORS);
    if c > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let h = (lba / SECTORS) % HEADS;
    let s = lba % SECTORS + 1;
    [
        h as u8,
        (s as u8) | (((c >> 2) & 0xC0) as u8),
        (c & 0xFF) as u8,
    ]
}

fn mbr_entry(out: &mut [u8], active: bool, kind: u8, start: u64, count: u64) {
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    out[0] = if active { 0x80 } else { 0 };
    out[1..4].copy_from_slice(&chs(start));
    out[4] = kind;
    out[5..8].copy_from_slice(&chs(start + count.max(1) - 1));
    out[8..12].copy_from_slice(&clamp(start).to_le_bytes());
    out[12..16].copy_from_slice(&clamp(count).to_le_bytes());
}

/// The GPT partition entries: the ISO as basic data, the EFI image as the
/// EFI system partition.
fn gpt_entries(enc: &IsoEncoder, p: &Plan<'_>) -> Vec<u8> {
    let mut out = vec![0u8; GPT_ENTRIES * GPT_ENTRY];
    // The EFI image is the last extent (see `plan::layout`), so the ISO
    // partition ends where it starts.
    let data_end = u64::from(p.gpt_backup.unwrap_or(p.total)) * (BLOCK / SECTOR);
    let efi = p.boot.as_ref().and_then(|b| b.efi).map(|e| {
        let s = &p.slots[e];
        let start = u64::from(s.lba) * (BLOCK / SECTOR);
        (start, start + s.size.div_ceil(SECTOR).max(1) - 1)
    });
    let iso_end = efi.map_or(data_end, |(start, _)| start);
    let mut parts = vec![(BASIC_DATA, "ISO9660", 64u64, iso_end.saturating_sub(1))];
    if let Some((start, last)) = efi {
        parts.push((EFI_SYSTEM, "EFI boot image", start, last));
    }
    for (i, (kind, name, first, last)) in parts.into_iter().enumerate() {
        let e = &mut out[i * GPT_ENTRY..(i + 1) * GPT_ENTRY];
        e[0..16].copy_from_slice(&guid_bytes(kind));
        e[16..32].copy_from_slice(&guid(enc, &format!("gpt partition {i}")));
        e[32..40].copy_from_slice(&first.to_le_bytes());
        e[40..48].copy_from_slice(&last.to_le_bytes());
        for (k, c) in name.encode_utf16().enumerate() {
            e[56 + 2 * k..58 + 2 * k].copy_from_slice(&c.to_le_bytes());
        }
    }
    out
}

/// A GPT header at sector `mine` whose partner is at `other` and whose
/// entries start at sector `entries`.
fn gpt_header(enc: &IsoEncoder, p: &Plan<'_>, mine: u64, other: u64, entries: u64) -> Vec<u8> {
    let total = u64::from(p.total) * (BLOCK / SECTOR);
    let array = gpt_entries(enc, p);
    let mut h = vec![0u8; SECTOR as usize];
    h[0..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&mine.to_le_bytes());
    h[32..40].copy_from_slice(&other.to_le_bytes());
    h[40..48].copy_from_slice(&(2 + GPT_ENTRY_SECTORS).to_le_bytes());
    h[48..56].copy_from_slice(&(total - 2 - GPT_ENTRY_SECTORS).to_le_bytes());
    h[56..72].copy_from_slice(&guid(enc, "gpt disk"));
    h[72..80].copy_from_slice(&entries.to_le_bytes());
    h[80..84].copy_from_slice(&(GPT_ENTRIES as u32).to_le_bytes());
    h[84..88].copy_from_slice(&(GPT_ENTRY as u32).to_le_bytes());
    h[88..92].copy_from_slice(&crc32fast::hash(&array).to_le_bytes());
    let crc = crc32fast::hash(&h[..92]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Blocks 0..16: zeros, or the isohybrid MBR (and primary GPT).
pub(crate) fn system_area(enc: &IsoEncoder, p: &Plan<'_>) -> Vec<u8> {
    let mut v = vec![0u8; 16 * BLOCK as usize];
    let Some(code) = &enc.hybrid_mbr else {
        return v;
    };
    let n = code.len().min(432);
    v[..n].copy_from_slice(&code[..n]);
    let boot = p.boot.as_ref();
    if let Some(i) = boot.and_then(|b| b.bios) {
        // isohdpfx reads the boot image's 512-byte sector number here.
        let sector = u64::from(p.slots[i].lba) * (BLOCK / SECTOR);
        v[432..440].copy_from_slice(&sector.to_le_bytes());
    }
    v[440..444].copy_from_slice(&seed(enc, "mbr id")[..4]);
    let total = u64::from(p.total) * (BLOCK / SECTOR);
    mbr_entry(&mut v[446..462], true, 0x17, 0, total);
    if let Some(e) = boot.and_then(|b| b.efi) {
        let s = &p.slots[e];
        let start = u64::from(s.lba) * (BLOCK / SECTOR);
        mbr_entry(
            &mut v[462..478],
            false,
            0xEF,
            start,
            s.size.div_ceil(SECTOR).max(1),
        );
        if p.gpt_backup.is_some() {
            mbr_entry(&mut v[478..494], false, 0xEE, 1, 63);
            let h = gpt_header(enc, p, 1, total - 1, 2);
            v[512..1024].copy_from_slice(&h);
            v[1024..1024 + GPT_ENTRIES * GPT_ENTRY].copy_from_slice(&gpt_entries(enc, p));
        }
    }
    v[510] = 0x55;
    v[511] = 0xAA;
    v
}

/// The backup GPT: entries, then the header in the image's last sector.
pub(crate) fn gpt_backup(enc: &IsoEncoder, p: &Plan<'_>) -> Vec<u8> {
    let total = u64::from(p.total) * (BLOCK / SECTOR);
    let mut v = vec![0u8; (GPT_BACKUP_BLOCKS * BLOCK) as usize];
    let entries_at = v.len() - SECTOR as usize - GPT_ENTRIES * GPT_ENTRY;
    v[entries_at..entries_at + GPT_ENTRIES * GPT_ENTRY].copy_from_slice(&gpt_entries(enc, p));
    let h = gpt_header(enc, p, total - 1, 1, total - 1 - GPT_ENTRY_SECTORS);
    let at = v.len() - SECTOR as usize;
    v[at..].copy_from_slice(&h);
    v
}
