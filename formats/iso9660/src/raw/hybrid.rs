//! The isohybrid system area's records: the MBR (with isohybrid's boot
//! image pointer) and its partition records, and the GPT header and
//! partition entries (UEFI 2.10 5.2 and 5.3). Field names are the UEFI
//! spec's.

use rootforge_common::Result;
use rootforge_common::bytes::{RecordReader, RecordWriter};

use super::decode_with;

/// Bytes in a sector of the partition tables.
pub(crate) const SECTOR: u64 = 512;
/// [`SECTOR`] as a length in memory.
pub(crate) const SECTOR_LEN: usize = 512;
/// Bytes of the MBR boot code that isohybrid's code may take: the 8 bytes
/// after it hold the boot image pointer.
pub(crate) const BOOT_CODE_LEN: usize = 432;
/// Partition entries in a GPT.
pub(crate) const GPT_ENTRIES: u32 = 128;
/// Bytes of one GPT partition entry.
pub(crate) const GPT_ENTRY_LEN: u32 = 128;
/// Bytes of the GPT partition entry array.
pub(crate) const GPT_ARRAY_LEN: usize = 128 * 128;
/// Sectors the GPT partition entry array takes.
pub(crate) const GPT_ARRAY_SECTORS: u64 = 128 * 128 / SECTOR;
/// 2048-byte blocks at the end of the image for the backup GPT: the
/// entry array and the header in the last sector.
pub(crate) const GPT_BACKUP_BLOCKS: u32 = 9;
/// HeaderSize of a GPT header: the bytes the header CRC covers.
const GPT_HEADER_SIZE: u32 = 92;
const GPT_HEADER_LEN: usize = 92;

/// A partition record of the MBR (UEFI 5.2.1, table 5-2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MbrPartitionRecord {
    /// BootIndicator: 0x80 marks the bootable partition.
    pub(crate) boot_indicator: u8,
    /// StartingCHS: the first sector as cylinder, head, sector.
    pub(crate) starting_chs: [u8; 3],
    /// OSType: the partition type (0x17 hidden IFS, 0xEF EFI system,
    /// 0xEE GPT protective).
    pub(crate) os_type: u8,
    /// EndingCHS: the last sector as cylinder, head, sector.
    pub(crate) ending_chs: [u8; 3],
    /// StartingLBA: the first sector.
    pub(crate) starting_lba: u32,
    /// SizeInLBA: the partition's length in sectors.
    pub(crate) size_in_lba: u32,
}

impl MbrPartitionRecord {
    /// Appends the record.
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        w.u8(self.boot_indicator)
            .bytes(&self.starting_chs)
            .u8(self.os_type)
            .bytes(&self.ending_chs)
            .le32(self.starting_lba)
            .le32(self.size_in_lba);
    }

    fn read(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(MbrPartitionRecord {
            boot_indicator: r.u8()?,
            starting_chs: r.array()?,
            os_type: r.u8()?,
            ending_chs: r.array()?,
            starting_lba: r.le32()?,
            size_in_lba: r.le32()?,
        })
    }
}

/// The MBR in sector 0 (UEFI 5.2.1), as isohybrid lays it out: the boot
/// code's last 8 bytes point at the El Torito boot image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mbr<'a> {
    /// BootCode: the first [`BOOT_CODE_LEN`] bytes of the boot loader's
    /// MBR code (isohdpfx.bin); shorter code is padded with zeros.
    pub(crate) boot_code: &'a [u8],
    /// isohybrid's boot image pointer: the 512-byte sector where the BIOS
    /// boot image starts (0 when there is none).
    pub(crate) boot_image_sector: u64,
    /// UniqueMBRDiskSignature.
    pub(crate) unique_mbr_disk_signature: [u8; 4],
    /// Unknown: 2 bytes, zero.
    pub(crate) unknown: u16,
    /// PartitionRecord: four records, unused ones zero.
    pub(crate) partition_record: [MbrPartitionRecord; 4],
    /// Signature: 0xAA55.
    pub(crate) signature: u16,
}

impl<'a> Mbr<'a> {
    /// The MBR's Signature.
    pub(crate) const SIGNATURE: u16 = 0xAA55;

    /// Appends the MBR: one sector.
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        w.padded(self.boot_code, BOOT_CODE_LEN, 0)
            .le64(self.boot_image_sector)
            .bytes(&self.unique_mbr_disk_signature)
            .le16(self.unknown);
        for p in &self.partition_record {
            p.encode(w);
        }
        w.le16(self.signature);
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the reader needs only the directory tree; the tests read it back"
        )
    )]
    /// Reads the MBR at the start of `bytes` (byte `at` of the image).
    pub(crate) fn decode(bytes: &'a [u8], at: u64) -> Result<Self> {
        decode_with(bytes, at, "MBR", |r| {
            let boot_code = r.bytes(BOOT_CODE_LEN)?;
            let boot_image_sector = r.le64()?;
            let unique_mbr_disk_signature = r.array()?;
            let unknown = r.le16()?;
            let mut partition_record = [MbrPartitionRecord::default(); 4];
            for p in &mut partition_record {
                *p = MbrPartitionRecord::read(r)?;
            }
            Some(Mbr {
                boot_code,
                boot_image_sector,
                unique_mbr_disk_signature,
                unknown,
                partition_record,
                signature: r.le16()?,
            })
        })
    }
}

/// A GPT header (UEFI 5.3.2), in a sector of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GptHeader {
    /// Signature: `EFI PART`.
    pub(crate) signature: [u8; 8],
    /// Revision: 1.0 (0x00010000).
    pub(crate) revision: u32,
    /// HeaderSize: 92 bytes.
    pub(crate) header_size: u32,
    /// HeaderCRC32: the CRC32 of the header's HeaderSize bytes with this
    /// field zero.
    pub(crate) header_crc32: u32,
    /// MyLBA: the sector of this header.
    pub(crate) my_lba: u64,
    /// AlternateLBA: the sector of the other header.
    pub(crate) alternate_lba: u64,
    /// FirstUsableLBA: the first sector a partition may use.
    pub(crate) first_usable_lba: u64,
    /// LastUsableLBA: the last sector a partition may use.
    pub(crate) last_usable_lba: u64,
    /// DiskGUID.
    pub(crate) disk_guid: [u8; 16],
    /// PartitionEntryLBA: where this header's entry array starts.
    pub(crate) partition_entry_lba: u64,
    /// NumberOfPartitionEntries in the array.
    pub(crate) number_of_partition_entries: u32,
    /// SizeOfPartitionEntry in bytes.
    pub(crate) size_of_partition_entry: u32,
    /// PartitionEntryArrayCRC32: the CRC32 of the entry array.
    pub(crate) partition_entry_array_crc32: u32,
}

impl GptHeader {
    /// A header with the fixed fields set and its CRC computed.
    pub(crate) fn new(
        my_lba: u64,
        alternate_lba: u64,
        first_usable_lba: u64,
        last_usable_lba: u64,
        disk_guid: [u8; 16],
        partition_entry_lba: u64,
        array: &[u8],
    ) -> Self {
        let mut h = GptHeader {
            signature: *b"EFI PART",
            revision: 0x0001_0000,
            header_size: GPT_HEADER_SIZE,
            header_crc32: 0,
            my_lba,
            alternate_lba,
            first_usable_lba,
            last_usable_lba,
            disk_guid,
            partition_entry_lba,
            number_of_partition_entries: GPT_ENTRIES,
            size_of_partition_entry: GPT_ENTRY_LEN,
            partition_entry_array_crc32: crc32fast::hash(array),
        };
        let mut w = RecordWriter::with_capacity(SECTOR_LEN);
        h.encode(&mut w);
        let bytes = w.into_bytes();
        h.header_crc32 = crc32fast::hash(bytes.get(..GPT_HEADER_LEN).unwrap_or_default());
        h
    }

    /// Appends the header: one sector, the rest reserved and zero.
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        let start = w.len();
        w.bytes(&self.signature)
            .le32(self.revision)
            .le32(self.header_size)
            .le32(self.header_crc32)
            .zeros(4)
            .le64(self.my_lba)
            .le64(self.alternate_lba)
            .le64(self.first_usable_lba)
            .le64(self.last_usable_lba)
            .bytes(&self.disk_guid)
            .le64(self.partition_entry_lba)
            .le32(self.number_of_partition_entries)
            .le32(self.size_of_partition_entry)
            .le32(self.partition_entry_array_crc32);
        w.zeros((start + SECTOR_LEN).saturating_sub(w.len()));
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the reader needs only the directory tree; the tests read it back"
        )
    )]
    /// Reads a header at the start of `bytes` (byte `at` of the image).
    pub(crate) fn decode(bytes: &[u8], at: u64) -> Result<Self> {
        decode_with(bytes, at, "GPT header", |r| {
            let signature = r.array()?;
            let revision = r.le32()?;
            let header_size = r.le32()?;
            let header_crc32 = r.le32()?;
            r.skip(4)?;
            Some(GptHeader {
                signature,
                revision,
                header_size,
                header_crc32,
                my_lba: r.le64()?,
                alternate_lba: r.le64()?,
                first_usable_lba: r.le64()?,
                last_usable_lba: r.le64()?,
                disk_guid: r.array()?,
                partition_entry_lba: r.le64()?,
                number_of_partition_entries: r.le32()?,
                size_of_partition_entry: r.le32()?,
                partition_entry_array_crc32: r.le32()?,
            })
        })
    }
}

/// A GPT partition entry (UEFI 5.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GptPartitionEntry {
    /// PartitionTypeGUID, in its on-disk mixed-endian layout.
    pub(crate) partition_type_guid: [u8; 16],
    /// UniquePartitionGUID.
    pub(crate) unique_partition_guid: [u8; 16],
    /// StartingLBA: the first sector.
    pub(crate) starting_lba: u64,
    /// EndingLBA: the last sector (inclusive).
    pub(crate) ending_lba: u64,
    /// Attributes; none set.
    pub(crate) attributes: u64,
    /// PartitionName: UTF-16LE, zero-padded.
    pub(crate) partition_name: [u16; 36],
}

impl GptPartitionEntry {
    /// Appends the entry (128 bytes).
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        w.bytes(&self.partition_type_guid)
            .bytes(&self.unique_partition_guid)
            .le64(self.starting_lba)
            .le64(self.ending_lba)
            .le64(self.attributes);
        for &c in &self.partition_name {
            w.le16(c);
        }
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the reader needs only the directory tree; the tests read it back"
        )
    )]
    /// Reads an entry at the start of `bytes` (byte `at` of the image).
    pub(crate) fn decode(bytes: &[u8], at: u64) -> Result<Self> {
        decode_with(bytes, at, "GPT partition entry", |r| {
            let mut e = GptPartitionEntry {
                partition_type_guid: r.array()?,
                unique_partition_guid: r.array()?,
                starting_lba: r.le64()?,
                ending_lba: r.le64()?,
                attributes: r.le64()?,
                partition_name: [0; 36],
            };
            for c in &mut e.partition_name {
                *c = r.le16()?;
            }
            Some(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbr_and_gpt_records_read_back() {
        let part = MbrPartitionRecord {
            boot_indicator: 0x80,
            starting_chs: [0, 1, 0],
            os_type: 0x17,
            ending_chs: [0xFE, 0xFF, 0xFF],
            starting_lba: 0,
            size_in_lba: 4000,
        };
        let mbr = Mbr {
            boot_code: &[0xAB; 10],
            boot_image_sector: 1234,
            unique_mbr_disk_signature: [1, 2, 3, 4],
            unknown: 0,
            partition_record: [part, MbrPartitionRecord::default(), part, part],
            signature: Mbr::SIGNATURE,
        };
        let mut w = RecordWriter::default();
        mbr.encode(&mut w);
        let b = w.into_bytes();
        assert_eq!(b.len(), 512);
        assert_eq!(&b[510..], &[0x55, 0xAA]);
        assert_eq!(b[446], 0x80);
        let back = Mbr::decode(&b, 0).unwrap();
        assert_eq!(&back.boot_code[..10], mbr.boot_code);
        assert_eq!(
            Mbr {
                boot_code: mbr.boot_code,
                ..back
            },
            mbr
        );

        let array = vec![0u8; GPT_ARRAY_LEN];
        let h = GptHeader::new(1, 99, 34, 60, [7; 16], 2, &array);
        let mut w = RecordWriter::default();
        h.encode(&mut w);
        let b = w.into_bytes();
        assert_eq!(b.len(), 512);
        let mut zeroed = b[..92].to_vec();
        zeroed[16..20].fill(0);
        assert_eq!(h.header_crc32, crc32fast::hash(&zeroed));
        assert_eq!(GptHeader::decode(&b, 0).unwrap(), h);
        assert!(GptHeader::decode(&b[..91], 0).is_err());

        let mut name = [0u16; 36];
        name[0] = u16::from(b'X');
        let e = GptPartitionEntry {
            partition_type_guid: [1; 16],
            unique_partition_guid: [2; 16],
            starting_lba: 64,
            ending_lba: 127,
            attributes: 0,
            partition_name: name,
        };
        let mut w = RecordWriter::default();
        e.encode(&mut w);
        let b = w.into_bytes();
        assert_eq!(b.len(), 128);
        assert_eq!(GptPartitionEntry::decode(&b, 0).unwrap(), e);
    }
}
