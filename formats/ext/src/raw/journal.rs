//! The jbd2 superblock: `journal_superblock_t` of `include/linux/jbd2.h`,
//! big-endian, in the journal's first block.

use rootforge_common::bytes::{RecordReader, RecordWriter};

use super::Record;

/// `JBD2_MAGIC_NUMBER`.
pub(crate) const JBD2_MAGIC_NUMBER: u32 = 0xC03B_3998;
/// `JBD2_SUPERBLOCK_V2`.
pub(crate) const JBD2_SUPERBLOCK_V2: u32 = 4;

/// `journal_superblock_t` up to `s_nr_users`: a clean, empty journal has
/// nothing after it (the fields from `s_dynsuper` on, the checksum and
/// `s_users` stay zero).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JournalSuperblock {
    /// `s_header.h_magic`.
    pub(crate) h_magic: u32,
    /// `s_header.h_blocktype`.
    pub(crate) h_blocktype: u32,
    /// `s_header.h_sequence`.
    pub(crate) h_sequence: u32,
    /// The journal's block size.
    pub(crate) s_blocksize: u32,
    /// Blocks in the journal.
    pub(crate) s_maxlen: u32,
    /// The first block of log information.
    pub(crate) s_first: u32,
    /// The first commit ID expected.
    pub(crate) s_sequence: u32,
    /// The block of the log's start, 0 for a clean journal.
    pub(crate) s_start: u32,
    /// An error value.
    pub(crate) s_errno: u32,
    /// Compatible features.
    pub(crate) s_feature_compat: u32,
    /// Incompatible features.
    pub(crate) s_feature_incompat: u32,
    /// Read-only compatible features.
    pub(crate) s_feature_ro_compat: u32,
    /// The journal's UUID.
    pub(crate) s_uuid: [u8; 16],
    /// Filesystems sharing the journal.
    pub(crate) s_nr_users: u32,
}

impl Record for JournalSuperblock {
    const SIZE: usize = 0x44;

    fn encode(&self, w: &mut RecordWriter) {
        w.be32(self.h_magic)
            .be32(self.h_blocktype)
            .be32(self.h_sequence)
            .be32(self.s_blocksize)
            .be32(self.s_maxlen)
            .be32(self.s_first)
            .be32(self.s_sequence)
            .be32(self.s_start)
            .be32(self.s_errno)
            .be32(self.s_feature_compat)
            .be32(self.s_feature_incompat)
            .be32(self.s_feature_ro_compat)
            .bytes(&self.s_uuid)
            .be32(self.s_nr_users);
    }

    fn decode(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(JournalSuperblock {
            h_magic: r.be32()?,
            h_blocktype: r.be32()?,
            h_sequence: r.be32()?,
            s_blocksize: r.be32()?,
            s_maxlen: r.be32()?,
            s_first: r.be32()?,
            s_sequence: r.be32()?,
            s_start: r.be32()?,
            s_errno: r.be32()?,
            s_feature_compat: r.be32()?,
            s_feature_incompat: r.be32()?,
            s_feature_ro_compat: r.be32()?,
            s_uuid: r.array()?,
            s_nr_users: r.be32()?,
        })
    }
}
