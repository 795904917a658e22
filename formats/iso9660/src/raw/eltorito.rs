//! El Torito 1.0 boot catalog entries (section 2), 32 bytes each, and the
//! boot info table that mkisofs and ISOLINUX define inside a no-emulation
//! boot image.

use rootforge_common::Result;
use rootforge_common::bytes::RecordWriter;

use super::decode_with;

/// Platform ID of 80x86 (BIOS) entries.
pub(crate) const PLATFORM_X86: u8 = 0;
/// Platform ID of EFI entries (UEFI 2.3 12.3.2).
pub(crate) const PLATFORM_EFI: u8 = 0xEF;
/// Boot Indicator of a bootable entry.
pub(crate) const BOOTABLE: u8 = 0x88;
/// Header Indicator of the last section header.
pub(crate) const FINAL_HEADER: u8 = 0x91;
/// Boot media type of a no-emulation image.
pub(crate) const NO_EMULATION: u8 = 0;
/// Bytes in one catalog entry.
pub(crate) const ENTRY_LEN: usize = 32;

/// The validation entry that opens the catalog (2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValidationEntry {
    /// Header ID; 1.
    pub(crate) header_id: u8,
    /// Platform ID of the default entry.
    pub(crate) platform_id: u8,
    /// ID string: the manufacturer or developer of the CD.
    pub(crate) id_string: [u8; 24],
    /// Checksum word: makes the entry's 16 words sum to zero.
    pub(crate) checksum: u16,
    /// Key bytes; 0x55 0xAA.
    pub(crate) key: [u8; 2],
}

impl ValidationEntry {
    /// The entry for `platform_id`, with its checksum.
    pub(crate) fn new(platform_id: u8) -> Self {
        let mut e = ValidationEntry {
            header_id: 1,
            platform_id,
            id_string: [0; 24],
            checksum: 0,
            key: [0x55, 0xAA],
        };
        let mut w = RecordWriter::with_capacity(ENTRY_LEN);
        e.encode(&mut w);
        let sum = w.into_bytes().chunks(2).fold(0u16, |s, p| {
            let word = match *p {
                [a, b] => u16::from_le_bytes([a, b]),
                _ => 0,
            };
            s.wrapping_add(word)
        });
        e.checksum = 0u16.wrapping_sub(sum);
        e
    }

    /// Appends the entry.
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        w.u8(self.header_id)
            .u8(self.platform_id)
            .zeros(2)
            .bytes(&self.id_string)
            .le16(self.checksum)
            .bytes(&self.key);
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the reader needs only the directory tree; the tests read it back"
        )
    )]
    /// Reads the entry at the start of `bytes` (byte `at` of the image).
    pub(crate) fn decode(bytes: &[u8], at: u64) -> Result<Self> {
        decode_with(bytes, at, "boot catalog validation entry", |r| {
            let header_id = r.u8()?;
            let platform_id = r.u8()?;
            r.skip(2)?;
            Some(ValidationEntry {
                header_id,
                platform_id,
                id_string: r.array()?,
                checksum: r.le16()?,
                key: r.array()?,
            })
        })
    }
}

/// The initial/default entry (2.2) and a section entry (2.4) share this
/// layout; a default entry has no selection criteria.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SectionEntry {
    /// Boot Indicator: [`BOOTABLE`] or 0.
    pub(crate) boot_indicator: u8,
    /// Boot media type: [`NO_EMULATION`] for the images rootforge writes.
    pub(crate) boot_media_type: u8,
    /// Load Segment; 0 means the traditional 0x7C0.
    pub(crate) load_segment: u16,
    /// System Type: the partition type of the image's own table.
    pub(crate) system_type: u8,
    /// Sector Count: 512-byte sectors the firmware loads.
    pub(crate) sector_count: u16,
    /// Load RBA: the image's first logical block.
    pub(crate) load_rba: u32,
    /// Selection criteria type (section entries only); 0, none.
    pub(crate) selection_criteria_type: u8,
    /// Vendor unique selection criteria (section entries only).
    pub(crate) vendor_unique_selection_criteria: [u8; 19],
}

impl SectionEntry {
    /// A bootable no-emulation entry loading `sector_count` sectors from
    /// block `load_rba`.
    pub(crate) fn bootable(load_rba: u32, sector_count: u16) -> Self {
        SectionEntry {
            boot_indicator: BOOTABLE,
            boot_media_type: NO_EMULATION,
            load_segment: 0,
            system_type: 0,
            sector_count,
            load_rba,
            selection_criteria_type: 0,
            vendor_unique_selection_criteria: [0; 19],
        }
    }

    /// Appends the entry.
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        w.u8(self.boot_indicator)
            .u8(self.boot_media_type)
            .le16(self.load_segment)
            .u8(self.system_type)
            .zeros(1)
            .le16(self.sector_count)
            .le32(self.load_rba)
            .u8(self.selection_criteria_type)
            .bytes(&self.vendor_unique_selection_criteria);
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the reader needs only the directory tree; the tests read it back"
        )
    )]
    /// Reads the entry at the start of `bytes` (byte `at` of the image).
    pub(crate) fn decode(bytes: &[u8], at: u64) -> Result<Self> {
        decode_with(bytes, at, "boot catalog entry", |r| {
            let boot_indicator = r.u8()?;
            let boot_media_type = r.u8()?;
            let load_segment = r.le16()?;
            let system_type = r.u8()?;
            r.skip(1)?;
            Some(SectionEntry {
                boot_indicator,
                boot_media_type,
                load_segment,
                system_type,
                sector_count: r.le16()?,
                load_rba: r.le32()?,
                selection_criteria_type: r.u8()?,
                vendor_unique_selection_criteria: r.array()?,
            })
        })
    }
}

/// A section header entry (2.3): the entries after it are for one
/// platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SectionHeader {
    /// Header Indicator: 0x90, more headers follow, or [`FINAL_HEADER`].
    pub(crate) header_indicator: u8,
    /// Platform ID of the section's entries.
    pub(crate) platform_id: u8,
    /// Number of section entries following this header.
    pub(crate) number_of_section_entries: u16,
    /// ID string: identifies the section to the boot software.
    pub(crate) id_string: [u8; 28],
}

impl SectionHeader {
    /// Appends the header.
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        w.u8(self.header_indicator)
            .u8(self.platform_id)
            .le16(self.number_of_section_entries)
            .bytes(&self.id_string);
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the reader needs only the directory tree; the tests read it back"
        )
    )]
    /// Reads the header at the start of `bytes` (byte `at` of the image).
    pub(crate) fn decode(bytes: &[u8], at: u64) -> Result<Self> {
        decode_with(bytes, at, "boot catalog section header", |r| {
            Some(SectionHeader {
                header_indicator: r.u8()?,
                platform_id: r.u8()?,
                number_of_section_entries: r.le16()?,
                id_string: r.array()?,
            })
        })
    }
}

/// The boot info table at byte [`BootInfoTable::OFFSET`] of a BIOS boot
/// image (mkisofs `-boot-info-table`), which ISOLINUX reads to find
/// itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BootInfoTable {
    /// bi_pvd: the block of the primary volume descriptor.
    pub(crate) bi_pvd: u32,
    /// bi_file: the boot image's first block.
    pub(crate) bi_file: u32,
    /// bi_length: the boot image's length in bytes.
    pub(crate) bi_length: u32,
    /// bi_csum: the sum of the image's 32-bit little-endian words from
    /// byte 64 on.
    pub(crate) bi_csum: u32,
}

impl BootInfoTable {
    /// Where the table lies in the boot image.
    pub(crate) const OFFSET: usize = 8;
    /// The table's length, its 40 reserved bytes included.
    pub(crate) const LEN: usize = 56;
    /// Where the checksummed part of the image starts.
    pub(crate) const CHECKSUM_FROM: usize = Self::OFFSET + Self::LEN;

    /// `bi_csum` of `image`: its words from byte 64, the last one padded
    /// with zeros.
    pub(crate) fn checksum(image: &[u8]) -> u32 {
        let from = image.get(Self::CHECKSUM_FROM..).unwrap_or_default();
        from.chunks(4).fold(0u32, |s, w| {
            let mut b = [0u8; 4];
            b[..w.len()].copy_from_slice(w);
            s.wrapping_add(u32::from_le_bytes(b))
        })
    }

    /// Appends the table, the reserved bytes zero.
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        w.le32(self.bi_pvd)
            .le32(self.bi_file)
            .le32(self.bi_length)
            .le32(self.bi_csum)
            .zeros(40);
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the reader needs only the directory tree; the tests read it back"
        )
    )]
    /// Reads the table of a boot image at byte `at` of the image.
    pub(crate) fn decode(image: &[u8], at: u64) -> Result<Self> {
        let table = image.get(Self::OFFSET..).unwrap_or_default();
        decode_with(table, at, "boot info table", |r| {
            let t = BootInfoTable {
                bi_pvd: r.le32()?,
                bi_file: r.le32()?,
                bi_length: r.le32()?,
                bi_csum: r.le32()?,
            };
            r.skip(40)?;
            Some(t)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_entries_are_32_bytes_and_read_back() {
        let v = ValidationEntry::new(PLATFORM_EFI);
        let mut w = RecordWriter::default();
        v.encode(&mut w);
        let b = w.into_bytes();
        assert_eq!(b.len(), ENTRY_LEN);
        let sum = b.chunks(2).fold(0u16, |s, p| {
            s.wrapping_add(u16::from_le_bytes([p[0], p[1]]))
        });
        assert_eq!(sum, 0);
        assert_eq!(ValidationEntry::decode(&b, 0).unwrap(), v);

        let e = SectionEntry::bootable(1234, 4);
        let mut w = RecordWriter::default();
        e.encode(&mut w);
        let b = w.into_bytes();
        assert_eq!(b.len(), ENTRY_LEN);
        assert_eq!(b[0], BOOTABLE);
        assert_eq!(SectionEntry::decode(&b, 0).unwrap(), e);
        assert!(SectionEntry::decode(&b[..31], 0).is_err());

        let h = SectionHeader {
            header_indicator: FINAL_HEADER,
            platform_id: PLATFORM_EFI,
            number_of_section_entries: 1,
            id_string: [0; 28],
        };
        let mut w = RecordWriter::default();
        h.encode(&mut w);
        let b = w.into_bytes();
        assert_eq!(b.len(), ENTRY_LEN);
        assert_eq!(SectionHeader::decode(&b, 0).unwrap(), h);
    }

    #[test]
    fn boot_info_table_sits_at_byte_8() {
        let mut image: Vec<u8> = (0..200u8).collect();
        let t = BootInfoTable {
            bi_pvd: 16,
            bi_file: 40,
            bi_length: 200,
            bi_csum: BootInfoTable::checksum(&image),
        };
        let mut w = RecordWriter::default();
        t.encode(&mut w);
        let b = w.into_bytes();
        assert_eq!(b.len(), BootInfoTable::LEN);
        image[8..64].copy_from_slice(&b);
        assert_eq!(BootInfoTable::decode(&image, 0).unwrap(), t);
        assert!(BootInfoTable::decode(&image[..63], 0).is_err());
        // 64..200 as words, the last one short.
        let want = (64..200u32)
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .map(|(i, &v)| v << (8 * i))
                    .sum::<u32>()
            })
            .fold(0u32, u32::wrapping_add);
        assert_eq!(t.bi_csum, want);
    }
}
