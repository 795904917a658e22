//! Directory records (ECMA-119 9.1) and path table records (9.4).

use rootforge_common::Result;
use rootforge_common::bytes::{RecordReader, RecordWriter};

use super::{decode_with, truncated};
use crate::malformed;

/// File Flags bit 1: the record describes a directory.
pub(crate) const FLAG_DIRECTORY: u8 = 0x02;
/// File Flags bit 7: this is not the file's final record (multi-extent).
pub(crate) const FLAG_MULTI_EXTENT: u8 = 0x80;
/// The bytes of a directory record before its File Identifier.
pub(crate) const FIXED_LEN: usize = 33;

/// A directory record (ECMA-119 9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirectoryRecord<'a> {
    /// Extended Attribute Record Length; rootforge writes none.
    pub(crate) extended_attribute_record_length: u8,
    /// Location of Extent: the first logical block of the data.
    pub(crate) location_of_extent: u32,
    /// Data Length: bytes in this extent.
    pub(crate) data_length: u32,
    /// Recording Date and Time, in the 7-byte form (9.1.5).
    pub(crate) recording_date_and_time: [u8; 7],
    /// File Flags (9.1.6): [`FLAG_DIRECTORY`], [`FLAG_MULTI_EXTENT`].
    pub(crate) file_flags: u8,
    /// File Unit Size; 0, not interleaved.
    pub(crate) file_unit_size: u8,
    /// Interleave Gap Size; 0, not interleaved.
    pub(crate) interleave_gap_size: u8,
    /// Volume Sequence Number: the volume of the set holding the extent.
    pub(crate) volume_sequence_number: u16,
    /// File Identifier (LEN_FI bytes); `\0` is `.` and `\1` is `..`.
    pub(crate) file_identifier: &'a [u8],
    /// System Use: SUSP entries. Read back, it also holds the padding
    /// byte that makes LEN_DR even.
    pub(crate) system_use: &'a [u8],
}

impl<'a> DirectoryRecord<'a> {
    /// LEN_DR of a record with a `len_fi`-byte identifier and `len_su`
    /// bytes of system use: the identifier is padded to an even offset and
    /// the record to an even length.
    pub(crate) fn len_dr(len_fi: usize, len_su: usize) -> usize {
        let n = FIXED_LEN + len_fi + usize::from(len_fi % 2 == 0) + len_su;
        n + n % 2
    }

    /// Appends the record. Planning keeps records within 255 bytes.
    pub(crate) fn encode(&self, w: &mut RecordWriter) {
        let len_fi = self.file_identifier.len();
        let len_dr = Self::len_dr(len_fi, self.system_use.len());
        w.u8(u8::try_from(len_dr).unwrap_or(u8::MAX))
            .u8(self.extended_attribute_record_length)
            .both32(self.location_of_extent)
            .both32(self.data_length)
            .bytes(&self.recording_date_and_time)
            .u8(self.file_flags)
            .u8(self.file_unit_size)
            .u8(self.interleave_gap_size)
            .both16(self.volume_sequence_number)
            .u8(u8::try_from(len_fi).unwrap_or(u8::MAX))
            .bytes(self.file_identifier)
            .zeros(usize::from(len_fi % 2 == 0))
            .bytes(self.system_use);
        let written = FIXED_LEN + len_fi + usize::from(len_fi % 2 == 0) + self.system_use.len();
        w.zeros(len_dr - written);
    }

    /// Reads the record at the start of `bytes`, which lies at byte `at`
    /// of the image.
    pub(crate) fn decode(bytes: &'a [u8], at: u64) -> Result<Self> {
        let len_dr = usize::from(
            *bytes
                .first()
                .ok_or_else(|| malformed(at, "record outside its extent"))?,
        );
        let rec = bytes
            .get(..len_dr)
            .filter(|_| len_dr > FIXED_LEN)
            .ok_or_else(|| truncated("directory record", at))?;
        let mut r = RecordReader::new(rec);
        let fixed = (|| {
            r.skip(1)?;
            Some(DirectoryRecord {
                extended_attribute_record_length: r.u8()?,
                location_of_extent: r.both32()?,
                data_length: r.both32()?,
                recording_date_and_time: r.array()?,
                file_flags: r.u8()?,
                file_unit_size: r.u8()?,
                interleave_gap_size: r.u8()?,
                volume_sequence_number: r.both16()?,
                file_identifier: &[],
                system_use: &[],
            })
        })();
        let mut record = fixed.ok_or_else(|| truncated("directory record", at))?;
        let len_fi = usize::from(r.u8().unwrap_or(0));
        record.file_identifier = r
            .bytes(len_fi)
            .ok_or_else(|| malformed(at, "file identifier runs past its record"))?;
        if len_fi % 2 == 0 {
            r.skip(1);
        }
        record.system_use = r.rest();
        Ok(record)
    }
}

/// Which of the two path tables a record belongs to (ECMA-119 9.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathTableType {
    /// Type L: numbers are little-endian.
    L,
    /// Type M: numbers are big-endian.
    M,
}

/// A path table record (ECMA-119 9.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathTableRecord<'a> {
    /// Extended Attribute Record Length; rootforge writes none.
    pub(crate) extended_attribute_record_length: u8,
    /// Location of Extent: the directory's first logical block.
    pub(crate) location_of_extent: u32,
    /// Parent Directory Number: the parent's 1-based position in the
    /// table (the root is its own parent).
    pub(crate) parent_directory_number: u16,
    /// Directory Identifier (LEN_DI bytes); `\0` for the root.
    pub(crate) directory_identifier: &'a [u8],
}

impl<'a> PathTableRecord<'a> {
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the reader needs only the directory tree; the tests read it back"
        )
    )]
    /// The record's length: 8 bytes, the identifier and its padding to an
    /// even length.
    pub(crate) fn len(len_di: usize) -> usize {
        8 + len_di + len_di % 2
    }

    /// Appends the record in the byte order of table `ty`.
    pub(crate) fn encode(&self, w: &mut RecordWriter, ty: PathTableType) {
        let len_di = self.directory_identifier.len();
        w.u8(u8::try_from(len_di).unwrap_or(u8::MAX))
            .u8(self.extended_attribute_record_length);
        match ty {
            PathTableType::L => w
                .le32(self.location_of_extent)
                .le16(self.parent_directory_number),
            PathTableType::M => w
                .be32(self.location_of_extent)
                .be16(self.parent_directory_number),
        };
        w.bytes(self.directory_identifier).zeros(len_di % 2);
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the reader needs only the directory tree; the tests read it back"
        )
    )]
    /// Reads the record at the start of `bytes` (at byte `at` of the
    /// image) from table `ty`.
    pub(crate) fn decode(bytes: &'a [u8], at: u64, ty: PathTableType) -> Result<Self> {
        decode_with(bytes, at, "path table record", |r| {
            let len_di = usize::from(r.u8()?);
            let extended_attribute_record_length = r.u8()?;
            let (location_of_extent, parent_directory_number) = match ty {
                PathTableType::L => (r.le32()?, r.le16()?),
                PathTableType::M => (r.be32()?, r.be16()?),
            };
            let directory_identifier = r.bytes(len_di)?;
            r.skip(len_di % 2)?;
            Some(PathTableRecord {
                extended_attribute_record_length,
                location_of_extent,
                parent_directory_number,
                directory_identifier,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_records_round_trip_at_even_lengths() {
        for (ident, su) in [(&b"\0"[..], &b""[..]), (b"A.;1", b"PX"), (b"LIB", b"abc")] {
            let rec = DirectoryRecord {
                extended_attribute_record_length: 0,
                location_of_extent: 0x0102_0304,
                data_length: 2048,
                recording_date_and_time: [123, 1, 2, 3, 4, 5, 0],
                file_flags: FLAG_DIRECTORY,
                file_unit_size: 0,
                interleave_gap_size: 0,
                volume_sequence_number: 1,
                file_identifier: ident,
                system_use: su,
            };
            let mut w = RecordWriter::default();
            rec.encode(&mut w);
            let b = w.into_bytes();
            assert_eq!(b.len(), DirectoryRecord::len_dr(ident.len(), su.len()));
            assert_eq!(b.len() % 2, 0);
            assert_eq!(usize::from(b[0]), b.len());
            let back = DirectoryRecord::decode(&b, 0).unwrap();
            assert_eq!(back.file_identifier, ident);
            assert_eq!(&back.system_use[..su.len()], su);
            assert_eq!(
                DirectoryRecord {
                    system_use: su,
                    ..back
                },
                rec
            );
            assert!(DirectoryRecord::decode(&b[..b.len() - 1], 0).is_err());
        }
        let root = DirectoryRecord::len_dr(1, 0);
        assert_eq!(root, 34);
    }

    #[test]
    fn path_table_records_in_both_orders() {
        let rec = PathTableRecord {
            extended_attribute_record_length: 0,
            location_of_extent: 20,
            parent_directory_number: 1,
            directory_identifier: b"ETC",
        };
        for ty in [PathTableType::L, PathTableType::M] {
            let mut w = RecordWriter::default();
            rec.encode(&mut w, ty);
            let b = w.into_bytes();
            assert_eq!(b.len(), PathTableRecord::len(3));
            assert_eq!(PathTableRecord::decode(&b, 0, ty).unwrap(), rec);
            assert!(PathTableRecord::decode(&b[..9], 0, ty).is_err());
        }
    }
}
