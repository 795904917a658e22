//! Volume descriptors (ECMA-119 8): the primary and the supplementary
//! (Joliet) descriptor, the El Torito boot record and the set terminator.
//! Each fills one 2048-byte block from block 16 on.

use rootforge_common::Result;
use rootforge_common::bytes::{RecordReader, RecordWriter};

use super::decode_with;
use super::dir::DirectoryRecord;
use crate::BLOCK_LEN;

/// Standard Identifier of every volume descriptor.
pub(crate) const STANDARD_IDENTIFIER: [u8; 5] = *b"CD001";
/// Volume Descriptor Type of a boot record (8.2).
pub(crate) const BOOT_RECORD: u8 = 0;
/// Volume Descriptor Type of the primary volume descriptor (8.4).
pub(crate) const PRIMARY: u8 = 1;
/// Volume Descriptor Type of a supplementary volume descriptor (8.5).
pub(crate) const SUPPLEMENTARY: u8 = 2;
/// Volume Descriptor Type of the set terminator (8.3).
pub(crate) const TERMINATOR: u8 = 255;
/// Escape Sequences of a Joliet descriptor: UCS-2 level 3.
pub(crate) const JOLIET_LEVEL_3: &[u8] = b"%/E";
/// Boot System Identifier of an El Torito boot record.
pub(crate) const EL_TORITO: &[u8] = b"EL TORITO SPECIFICATION";

/// The start that every volume descriptor shares (ECMA-119 8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VolumeDescriptorHeader {
    /// Volume Descriptor Type.
    pub(crate) volume_descriptor_type: u8,
    /// Standard Identifier; [`STANDARD_IDENTIFIER`] in a volume
    /// descriptor.
    pub(crate) standard_identifier: [u8; 5],
    /// Volume Descriptor Version; 1.
    pub(crate) volume_descriptor_version: u8,
}

impl VolumeDescriptorHeader {
    /// The header of a descriptor of type `volume_descriptor_type`.
    pub(crate) fn new(volume_descriptor_type: u8) -> Self {
        VolumeDescriptorHeader {
            volume_descriptor_type,
            standard_identifier: STANDARD_IDENTIFIER,
            volume_descriptor_version: 1,
        }
    }

    /// Appends the header (7 bytes).
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        w.u8(self.volume_descriptor_type)
            .bytes(&self.standard_identifier)
            .u8(self.volume_descriptor_version);
    }

    /// Reads the header at the start of `bytes` (byte `at` of the image).
    pub(crate) fn decode(bytes: &[u8], at: u64) -> Result<Self> {
        decode_with(bytes, at, "volume descriptor", Self::read)
    }

    fn read(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(VolumeDescriptorHeader {
            volume_descriptor_type: r.u8()?,
            standard_identifier: r.array()?,
            volume_descriptor_version: r.u8()?,
        })
    }
}

/// The primary (ECMA-119 8.4) or a supplementary (8.5) volume
/// descriptor; the text fields hold d-characters or, in a Joliet
/// descriptor, UCS-2 big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VolumeDescriptor<'a> {
    /// Type ([`PRIMARY`] or [`SUPPLEMENTARY`]), identifier and version.
    pub(crate) header: VolumeDescriptorHeader,
    /// Volume Flags (supplementary only; unused in the primary).
    pub(crate) volume_flags: u8,
    /// System Identifier: the system that may use the system area.
    pub(crate) system_identifier: [u8; 32],
    /// Volume Identifier.
    pub(crate) volume_identifier: [u8; 32],
    /// Volume Space Size: logical blocks in the volume.
    pub(crate) volume_space_size: u32,
    /// Escape Sequences (supplementary only): the character set.
    pub(crate) escape_sequences: [u8; 32],
    /// Volume Set Size: volumes in the set.
    pub(crate) volume_set_size: u16,
    /// Volume Sequence Number: this volume's number in the set.
    pub(crate) volume_sequence_number: u16,
    /// Logical Block Size in bytes.
    pub(crate) logical_block_size: u16,
    /// Path Table Size in bytes.
    pub(crate) path_table_size: u32,
    /// Location of Occurrence of Type L Path Table.
    pub(crate) location_of_type_l_path_table: u32,
    /// Location of Optional Occurrence of Type L Path Table; 0, none.
    pub(crate) location_of_optional_type_l_path_table: u32,
    /// Location of Occurrence of Type M Path Table.
    pub(crate) location_of_type_m_path_table: u32,
    /// Location of Optional Occurrence of Type M Path Table; 0, none.
    pub(crate) location_of_optional_type_m_path_table: u32,
    /// Directory Record for Root Directory (34 bytes, no system use).
    pub(crate) directory_record_for_root_directory: DirectoryRecord<'a>,
    /// Volume Set Identifier.
    pub(crate) volume_set_identifier: [u8; 128],
    /// Publisher Identifier.
    pub(crate) publisher_identifier: [u8; 128],
    /// Data Preparer Identifier.
    pub(crate) data_preparer_identifier: [u8; 128],
    /// Application Identifier: the program that wrote the volume.
    pub(crate) application_identifier: [u8; 128],
    /// Copyright File Identifier.
    pub(crate) copyright_file_identifier: [u8; 37],
    /// Abstract File Identifier.
    pub(crate) abstract_file_identifier: [u8; 37],
    /// Bibliographic File Identifier.
    pub(crate) bibliographic_file_identifier: [u8; 37],
    /// Volume Creation Date and Time (17-byte form, 8.4.26.1).
    pub(crate) volume_creation_date_and_time: [u8; 17],
    /// Volume Modification Date and Time.
    pub(crate) volume_modification_date_and_time: [u8; 17],
    /// Volume Expiration Date and Time.
    pub(crate) volume_expiration_date_and_time: [u8; 17],
    /// Volume Effective Date and Time.
    pub(crate) volume_effective_date_and_time: [u8; 17],
    /// File Structure Version; 1.
    pub(crate) file_structure_version: u8,
}

impl<'a> VolumeDescriptor<'a> {
    /// Appends the descriptor: one block, the Application Use field and
    /// the reserved bytes zero.
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        let start = w.len();
        self.header.encode(w);
        w.u8(self.volume_flags)
            .bytes(&self.system_identifier)
            .bytes(&self.volume_identifier)
            .zeros(8)
            .both32(self.volume_space_size)
            .bytes(&self.escape_sequences)
            .both16(self.volume_set_size)
            .both16(self.volume_sequence_number)
            .both16(self.logical_block_size)
            .both32(self.path_table_size)
            .le32(self.location_of_type_l_path_table)
            .le32(self.location_of_optional_type_l_path_table)
            .be32(self.location_of_type_m_path_table)
            .be32(self.location_of_optional_type_m_path_table);
        self.directory_record_for_root_directory.encode(w);
        w.bytes(&self.volume_set_identifier)
            .bytes(&self.publisher_identifier)
            .bytes(&self.data_preparer_identifier)
            .bytes(&self.application_identifier)
            .bytes(&self.copyright_file_identifier)
            .bytes(&self.abstract_file_identifier)
            .bytes(&self.bibliographic_file_identifier)
            .bytes(&self.volume_creation_date_and_time)
            .bytes(&self.volume_modification_date_and_time)
            .bytes(&self.volume_expiration_date_and_time)
            .bytes(&self.volume_effective_date_and_time)
            .u8(self.file_structure_version);
        w.zeros((start + BLOCK_LEN).saturating_sub(w.len()));
    }

    /// Reads a descriptor from its block, which starts at byte `at` of the
    /// image.
    pub(crate) fn decode(bytes: &'a [u8], at: u64) -> Result<Self> {
        const ROOT_AT: usize = 156;
        let root_bytes = bytes.get(ROOT_AT..).unwrap_or_default();
        let root = DirectoryRecord::decode(root_bytes, at + ROOT_AT as u64)?;
        decode_with(bytes, at, "volume descriptor", |r| {
            let header = VolumeDescriptorHeader::read(r)?;
            let volume_flags = r.u8()?;
            let system_identifier = r.array()?;
            let volume_identifier = r.array()?;
            r.skip(8)?;
            let volume_space_size = r.both32()?;
            let escape_sequences = r.array()?;
            let volume_set_size = r.both16()?;
            let volume_sequence_number = r.both16()?;
            let logical_block_size = r.both16()?;
            let path_table_size = r.both32()?;
            let location_of_type_l_path_table = r.le32()?;
            let location_of_optional_type_l_path_table = r.le32()?;
            let location_of_type_m_path_table = r.be32()?;
            let location_of_optional_type_m_path_table = r.be32()?;
            r.skip(34)?;
            Some(VolumeDescriptor {
                header,
                volume_flags,
                system_identifier,
                volume_identifier,
                volume_space_size,
                escape_sequences,
                volume_set_size,
                volume_sequence_number,
                logical_block_size,
                path_table_size,
                location_of_type_l_path_table,
                location_of_optional_type_l_path_table,
                location_of_type_m_path_table,
                location_of_optional_type_m_path_table,
                directory_record_for_root_directory: root,
                volume_set_identifier: r.array()?,
                publisher_identifier: r.array()?,
                data_preparer_identifier: r.array()?,
                application_identifier: r.array()?,
                copyright_file_identifier: r.array()?,
                abstract_file_identifier: r.array()?,
                bibliographic_file_identifier: r.array()?,
                volume_creation_date_and_time: r.array()?,
                volume_modification_date_and_time: r.array()?,
                volume_expiration_date_and_time: r.array()?,
                volume_effective_date_and_time: r.array()?,
                file_structure_version: r.u8()?,
            })
        })
    }
}

/// The El Torito boot record volume descriptor (El Torito 2.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BootRecord {
    /// Type [`BOOT_RECORD`], identifier and version.
    pub(crate) header: VolumeDescriptorHeader,
    /// Boot System Identifier: [`EL_TORITO`], padded with zeros.
    pub(crate) boot_system_identifier: [u8; 32],
    /// Boot Identifier; unused by El Torito.
    pub(crate) boot_identifier: [u8; 32],
    /// Absolute pointer to the first sector of the boot catalog.
    pub(crate) boot_catalog_pointer: u32,
}

impl BootRecord {
    /// Appends the boot record: one block.
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        let start = w.len();
        self.header.encode(w);
        w.bytes(&self.boot_system_identifier)
            .bytes(&self.boot_identifier)
            .le32(self.boot_catalog_pointer);
        w.zeros((start + BLOCK_LEN).saturating_sub(w.len()));
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the reader needs only the directory tree; the tests read it back"
        )
    )]
    /// Reads a boot record from its block (at byte `at` of the image).
    pub(crate) fn decode(bytes: &[u8], at: u64) -> Result<Self> {
        decode_with(bytes, at, "boot record", |r| {
            Some(BootRecord {
                header: VolumeDescriptorHeader::read(r)?,
                boot_system_identifier: r.array()?,
                boot_identifier: r.array()?,
                boot_catalog_pointer: r.le32()?,
            })
        })
    }
}

/// The volume descriptor set terminator (ECMA-119 8.3): a header and
/// zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VolumeDescriptorSetTerminator {
    /// Type [`TERMINATOR`], identifier and version.
    pub(crate) header: VolumeDescriptorHeader,
}

impl VolumeDescriptorSetTerminator {
    /// Appends the terminator: one block.
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        let start = w.len();
        self.header.encode(w);
        w.zeros((start + BLOCK_LEN).saturating_sub(w.len()));
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the reader needs only the directory tree; the tests read it back"
        )
    )]
    /// Reads a terminator (at byte `at` of the image).
    pub(crate) fn decode(bytes: &[u8], at: u64) -> Result<Self> {
        Ok(VolumeDescriptorSetTerminator {
            header: VolumeDescriptorHeader::decode(bytes, at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::fixed;

    #[test]
    fn descriptors_fill_one_block_and_read_back() {
        let root = DirectoryRecord {
            extended_attribute_record_length: 0,
            location_of_extent: 18,
            data_length: 2048,
            recording_date_and_time: [100, 1, 1, 0, 0, 0, 0],
            file_flags: 2,
            file_unit_size: 0,
            interleave_gap_size: 0,
            volume_sequence_number: 1,
            file_identifier: b"\0",
            system_use: b"",
        };
        let text = |s: &[u8]| fixed::<128>(s, b' ');
        let id = |s: &[u8]| fixed::<37>(s, b' ');
        let date = fixed::<17>(b"2023111422132000", 0);
        let vd = VolumeDescriptor {
            header: VolumeDescriptorHeader::new(SUPPLEMENTARY),
            volume_flags: 0,
            system_identifier: fixed(b"", b' '),
            volume_identifier: fixed(b"ROOTFS", b' '),
            volume_space_size: 1234,
            escape_sequences: fixed(JOLIET_LEVEL_3, 0),
            volume_set_size: 1,
            volume_sequence_number: 1,
            logical_block_size: 2048,
            path_table_size: 10,
            location_of_type_l_path_table: 19,
            location_of_optional_type_l_path_table: 0,
            location_of_type_m_path_table: 20,
            location_of_optional_type_m_path_table: 0,
            directory_record_for_root_directory: root,
            volume_set_identifier: text(b""),
            publisher_identifier: text(b""),
            data_preparer_identifier: text(b""),
            application_identifier: text(b"ROOTFORGE"),
            copyright_file_identifier: id(b""),
            abstract_file_identifier: id(b""),
            bibliographic_file_identifier: id(b""),
            volume_creation_date_and_time: date,
            volume_modification_date_and_time: date,
            volume_expiration_date_and_time: fixed(b"0000000000000000", 0),
            volume_effective_date_and_time: date,
            file_structure_version: 1,
        };
        let mut w = RecordWriter::default();
        vd.encode(&mut w);
        let b = w.into_bytes();
        assert_eq!(b.len(), BLOCK_LEN);
        assert_eq!(&b[88..91], JOLIET_LEVEL_3);
        assert_eq!(b[881], 1);
        assert_eq!(VolumeDescriptor::decode(&b, 0).unwrap(), vd);
        assert!(VolumeDescriptor::decode(&b[..800], 0).is_err());

        let br = BootRecord {
            header: VolumeDescriptorHeader::new(BOOT_RECORD),
            boot_system_identifier: fixed(EL_TORITO, 0),
            boot_identifier: [0; 32],
            boot_catalog_pointer: 77,
        };
        let mut w = RecordWriter::default();
        br.encode(&mut w);
        let b = w.into_bytes();
        assert_eq!(b.len(), BLOCK_LEN);
        assert_eq!(u32::from_le_bytes(b[0x47..0x4B].try_into().unwrap()), 77);
        assert_eq!(BootRecord::decode(&b, 0).unwrap(), br);

        let t = VolumeDescriptorSetTerminator {
            header: VolumeDescriptorHeader::new(TERMINATOR),
        };
        let mut w = RecordWriter::default();
        t.encode(&mut w);
        let b = w.into_bytes();
        assert_eq!(&b[..7], b"\xffCD001\x01");
        assert_eq!(VolumeDescriptorSetTerminator::decode(&b, 0).unwrap(), t);
        assert!(VolumeDescriptorHeader::decode(&b[..6], 0).is_err());
    }
}
