//! Metadata blocks: 8 KiB of records, each block compressed on its own and
//! preceded by a 16-bit length whose top bit marks it stored raw.

use std::io;

use crate::comp::Codec;

/// Uncompressed bytes per metadata block.
pub(crate) const META_SIZE: usize = 8192;
/// The header bit of a block stored raw (`SQUASHFS_COMPRESSED_BIT`).
pub(crate) const META_RAW: u16 = 1 << 15;

/// A table of metadata blocks being written.
pub(crate) struct MetaWriter {
    /// Finished blocks, headers included.
    out: Vec<u8>,
    /// The block being filled.
    cur: Vec<u8>,
    /// Where each sealed block starts in `out`.
    starts: Vec<u64>,
}

impl MetaWriter {
    pub(crate) fn new() -> Self {
        MetaWriter {
            out: Vec::new(),
            cur: Vec::with_capacity(META_SIZE),
            starts: Vec::new(),
        }
    }

    /// Where the next record starts: the offset of its block from the
    /// table's start, and its offset inside the uncompressed block.
    pub(crate) fn pos(&self) -> (u64, u16) {
        (self.out.len() as u64, block_len(self.cur.len()))
    }

    /// The reference a record at `pos()` gets, as inodes and the
    /// superblock store it.
    pub(crate) fn reference(&self) -> u64 {
        let (block, offset) = self.pos();
        (block << 16) | u64::from(offset)
    }

    /// Bytes put so far, before compression.
    pub(crate) fn written(&self) -> u64 {
        (self.starts.len() as u64)
            .saturating_mul(META_SIZE as u64)
            .saturating_add(self.cur.len() as u64)
    }

    /// Where the `n`th block (counting 8 KiB of uncompressed bytes each)
    /// starts in the table, once it has begun.
    pub(crate) fn block_start(&self, n: u64) -> Option<u64> {
        let n = usize::try_from(n).ok()?;
        match self.starts.get(n) {
            Some(&s) => Some(s),
            None if n == self.starts.len() => Some(self.out.len() as u64),
            None => None,
        }
    }

    pub(crate) fn put(&mut self, codec: &mut Codec, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = (META_SIZE - self.cur.len()).min(bytes.len());
            self.cur.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.cur.len() == META_SIZE {
                self.seal(codec)?;
            }
        }
        Ok(())
    }

    fn seal(&mut self, codec: &mut Codec) -> io::Result<()> {
        self.starts.push(self.out.len() as u64);
        match codec.compress(&self.cur)? {
            // A compressed block is shorter than its 8 KiB.
            Some(packed) => {
                self.out
                    .extend_from_slice(&block_len(packed.len()).to_le_bytes());
                self.out.extend_from_slice(&packed);
            }
            None => {
                let header = block_len(self.cur.len()) | META_RAW;
                self.out.extend_from_slice(&header.to_le_bytes());
                self.out.extend_from_slice(&self.cur);
            }
        }
        self.cur.clear();
        Ok(())
    }

    /// The table's bytes, with the last block sealed if it holds anything.
    pub(crate) fn finish(mut self, codec: &mut Codec) -> io::Result<Vec<u8>> {
        if !self.cur.is_empty() {
            self.seal(codec)?;
        }
        Ok(self.out)
    }
}

/// A lookup table (fragments, ids): fixed-size entries in metadata blocks,
/// followed by the absolute positions of those blocks. Returns the bytes
/// and the offset inside them of the position array, which the superblock
/// points at. `start` is where the table will sit in the image.
pub(crate) fn lookup_table(
    codec: &mut Codec,
    entries: &[u8],
    start: u64,
) -> io::Result<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut index = Vec::new();
    for chunk in entries.chunks(META_SIZE) {
        let at = start.checked_add(out.len() as u64).ok_or_else(overflow)?;
        index.extend_from_slice(&at.to_le_bytes());
        let mut m = MetaWriter::new();
        m.put(codec, chunk)?;
        out.extend_from_slice(&m.finish(codec)?);
    }
    let index_at = out.len();
    out.extend_from_slice(&index);
    Ok((out, index_at))
}

/// A length within one metadata block (at most 8192, which fits 15 bits).
#[expect(
    clippy::cast_possible_truncation,
    reason = "metadata blocks and offsets in them are at most 8192 bytes"
)]
fn block_len(n: usize) -> u16 {
    debug_assert!(n <= META_SIZE);
    n as u16
}

/// A reference's metadata block (from its table's start) and offset in
/// the unpacked block: the reference is `block << 16 | offset`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the low 16 bits of a reference are the offset"
)]
pub(crate) fn split_ref(reference: u64) -> (u64, u16) {
    (reference >> 16, reference as u16)
}

pub(crate) fn overflow() -> io::Error {
    io::Error::other("image offset overflow")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comp::{Bcj, Comp, Settings};

    #[test]
    fn records_straddle_blocks_and_refs_point_at_block_starts() {
        let mut codec = Codec::new(Settings {
            comp: Comp::None,
            level: 0,
            block_size: 4096,
            bcj: Bcj::NONE,
        })
        .unwrap();
        let mut m = MetaWriter::new();
        m.put(&mut codec, &[1u8; 8000]).unwrap();
        assert_eq!(m.reference(), 8000);
        m.put(&mut codec, &[2u8; 300]).unwrap();
        // The first block (2-byte header + 8192 raw bytes) is sealed.
        assert_eq!(m.pos(), (8194, 108));
        assert_eq!(m.reference(), (8194 << 16) | 108);
        assert_eq!(m.written(), 8300);
        assert_eq!(m.block_start(0), Some(0));
        assert_eq!(m.block_start(1), Some(8194));
        assert_eq!(m.block_start(2), None);
        let out = m.finish(&mut codec).unwrap();
        assert_eq!(out.len(), 8194 + 2 + 108);
        assert_eq!(&out[..2], &(8192u16 | META_RAW).to_le_bytes());
        assert_eq!(&out[8194..8196], &(108u16 | META_RAW).to_le_bytes());
    }

    #[test]
    fn lookup_table_indexes_each_block() {
        let mut codec = Codec::new(Settings {
            comp: Comp::None,
            level: 0,
            block_size: 4096,
            bcj: Bcj::NONE,
        })
        .unwrap();
        let (bytes, at) = lookup_table(&mut codec, &[7u8; 9000], 1000).unwrap();
        assert_eq!(at, 8194 + 2 + 808);
        assert_eq!(&bytes[at..at + 8], &1000u64.to_le_bytes());
        assert_eq!(&bytes[at + 8..], &(1000u64 + 8194).to_le_bytes());
    }
}
