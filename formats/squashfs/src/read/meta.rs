//! Metadata blocks and the tables made of them: each block is unpacked
//! once when the image is opened, and records are read from the unpacked
//! bytes with a [`Cursor`], which names the table and the block of what it
//! finds broken.

use std::io;

use rootforge_common::bytes::{RecordReader, le16_at, le64_at};
use rootforge_common::{Backing, Error, Result};

use super::codec::Codec;
use super::malformed;
use crate::meta::{META_RAW, META_SIZE, split_ref};
use crate::records::Record;

/// The image bytes up to `bytes_used`, and how to unpack its blocks.
pub(super) struct Image {
    pub(super) backing: Backing,
    /// `bytes_used`: nothing past it is read.
    pub(super) end: u64,
    pub(super) codec: Codec,
    pub(super) block_size: u32,
}

impl Image {
    /// Calls `f` with `len` bytes at `at`, borrowed when the image is in
    /// memory.
    pub(super) fn with_bytes<R>(
        &self,
        at: u64,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> io::Result<R> {
        let past_end = || {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{len} bytes at {at} run past the image's end"),
            )
        };
        let stop = at
            .checked_add(len as u64)
            .filter(|&stop| stop <= self.end)
            .ok_or_else(past_end)?;
        if let Some(all) = self.backing.as_slice() {
            let (Ok(start), Ok(stop)) = (usize::try_from(at), usize::try_from(stop)) else {
                return Err(past_end());
            };
            return all.get(start..stop).map(f).ok_or_else(past_end);
        }
        let mut buf = vec![0u8; len];
        self.backing.read_at(at, &mut buf)?;
        Ok(f(&buf))
    }

    pub(super) fn bytes(&self, at: u64, len: usize, what: &str) -> Result<Vec<u8>> {
        self.with_bytes(at, len, <[u8]>::to_vec)
            .map_err(|e| malformed(at, format!("{what}: {e}")))
    }

    /// The metadata block at `at`, which must end by `limit`, and where the
    /// next one starts.
    fn meta_block(&self, at: u64, limit: u64, what: &str) -> Result<(Vec<u8>, u64)> {
        let header = self.bytes(at, 2, what)?;
        let word = le16_at(&header, 0).unwrap_or_default();
        let len = usize::from(word & !META_RAW);
        let next = (at + 2)
            .checked_add(len as u64)
            .filter(|&next| next <= limit)
            .ok_or_else(|| {
                malformed(
                    at,
                    format!("{what}: a {len}-byte metadata block runs past its table"),
                )
            })?;
        if len == 0 || len > META_SIZE {
            return Err(malformed(
                at,
                format!("{what}: metadata block of {len} bytes (1 to {META_SIZE} allowed)"),
            ));
        }
        let data = if word & META_RAW != 0 {
            self.bytes(at + 2, len, what)?
        } else {
            let mut out = vec![0u8; META_SIZE];
            let n = self
                .with_bytes(at + 2, len, |src| self.codec.decompress(src, &mut out))
                .map_err(|e| malformed(at, format!("{what}: {e}")))?
                .map_err(|e| malformed(at, format!("{what}: bad metadata block: {e}")))?;
            out.truncate(n);
            out
        };
        Ok((data, next))
    }

    /// The metadata blocks from `start` to exactly `end`, unpacked.
    pub(super) fn table(&self, name: &'static str, start: u64, end: u64) -> Result<Table> {
        let mut table = Table {
            name,
            data: Vec::new(),
            blocks: Vec::new(),
        };
        let mut at = start;
        while at < end {
            let (data, next) = self.meta_block(at, end, name)?;
            table.blocks.push(MetaBlock {
                rel: at - start,
                data_at: table.data.len(),
                image_at: at,
            });
            table.data.extend_from_slice(&data);
            at = next;
        }
        Ok(table)
    }

    /// A lookup table of `count` entries of `size` bytes: the entries sit
    /// in metadata blocks before the array of their positions at `index`.
    /// Returns the entries and where their first block starts.
    pub(super) fn lookup(
        &self,
        what: &str,
        index: u64,
        count: u64,
        size: u64,
    ) -> Result<(Vec<u8>, u64)> {
        let total = count
            .checked_mul(size)
            .ok_or_else(|| malformed(index, format!("{what}: {count} entries overflow")))?;
        let blocks = total.div_ceil(META_SIZE as u64);
        // The position array must lie in the image, which bounds `total`.
        let index_len = usize::try_from(blocks.saturating_mul(8)).unwrap_or(usize::MAX);
        let positions = self.bytes(index, index_len, &format!("{what} index"))?;
        let mut out = Vec::new();
        let first = le64_at(&positions, 0).unwrap_or_default();
        // Blocks in order and apart, as written: no block is unpacked
        // twice, so the entries are bounded by the image, not the count.
        let mut free = first;
        let mut r = RecordReader::new(&positions);
        while let Some(at) = r.le64() {
            if at < free {
                return Err(malformed(
                    index,
                    format!("{what}: block at {at} overlaps or precedes the one before"),
                ));
            }
            let (data, next) = self.meta_block(at, index, what)?;
            free = next;
            let want = usize::try_from((total - out.len() as u64).min(META_SIZE as u64))
                .unwrap_or(META_SIZE);
            let got = data.get(..want).ok_or_else(|| {
                malformed(
                    at,
                    format!("{what}: block holds {} bytes, {want} expected", data.len()),
                )
            })?;
            out.extend_from_slice(got);
        }
        Ok((out, if positions.is_empty() { index } else { first }))
    }
}

/// A table of metadata blocks, unpacked into one buffer (records may
/// straddle blocks), with where each block came from.
pub(super) struct Table {
    name: &'static str,
    pub(super) data: Vec<u8>,
    blocks: Vec<MetaBlock>,
}

struct MetaBlock {
    /// Offset of the block from the table's start, as references give it.
    rel: u64,
    /// Where its bytes start in `data`.
    data_at: usize,
    /// Where it sits in the image, for messages.
    image_at: u64,
}

impl Table {
    /// Where a reference (block offset, offset inside the unpacked block)
    /// points in `data`.
    pub(super) fn resolve(&self, block: u64, offset: u64) -> Result<usize> {
        let bad = || {
            malformed(
                self.blocks.first().map_or(0, |b| b.image_at),
                format!(
                    "reference to block {block} offset {offset} is outside the {}",
                    self.name
                ),
            )
        };
        let i = self
            .blocks
            .binary_search_by_key(&block, |b| b.rel)
            .map_err(|_| bad())?;
        let start = self.blocks[i].data_at;
        let stop = self
            .blocks
            .get(i + 1)
            .map_or(self.data.len(), |b| b.data_at);
        usize::try_from(offset)
            .ok()
            .filter(|&o| o < stop - start)
            .map(|o| start + o)
            .ok_or_else(bad)
    }

    pub(super) fn resolve_ref(&self, reference: u64) -> Result<usize> {
        let (block, offset) = split_ref(reference);
        self.resolve(block, u64::from(offset))
    }

    /// The image offset of the metadata block holding `pos`.
    pub(super) fn image_offset(&self, pos: usize) -> u64 {
        let i = self.blocks.partition_point(|b| b.data_at <= pos);
        self.blocks
            .get(i.saturating_sub(1))
            .map_or(0, |b| b.image_at)
    }

    pub(super) fn cursor(&self, pos: usize, what: &'static str) -> Cursor<'_> {
        Cursor {
            table: self,
            pos,
            what,
        }
    }
}

/// Reads a record from a [`Table`].
pub(super) struct Cursor<'a> {
    table: &'a Table,
    pub(super) pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    /// A malformed-image error at the cursor, naming what it reads.
    pub(super) fn error(&self, reason: impl std::fmt::Display) -> Error {
        malformed(
            self.table.image_offset(self.pos),
            format!("{} in the {}: {reason}", self.what, self.table.name),
        )
    }

    /// Reads with `f` from the cursor on and moves past what it read; what
    /// `f` finds short is a malformed image.
    fn read<T>(
        &mut self,
        what: impl std::fmt::Display,
        f: impl FnOnce(&mut RecordReader<'a>) -> Option<T>,
    ) -> Result<T> {
        let data: &'a [u8] = &self.table.data;
        let rest = data.get(self.pos..).unwrap_or_default();
        let mut r = RecordReader::new(rest);
        let value =
            f(&mut r).ok_or_else(|| self.error(format_args!("{what} past the table's end")))?;
        self.pos += rest.len() - r.rest().len();
        Ok(value)
    }

    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        self.read(format_args!("{n} bytes"), |r| r.bytes(n))
    }

    /// The next record.
    pub(super) fn record<T: Record>(&mut self) -> Result<T> {
        self.read(format_args!("a {}", T::NAME), T::decode)
    }

    /// The next little-endian 64-bit field.
    pub(super) fn le64(&mut self) -> Result<u64> {
        self.read("a 64-bit field", RecordReader::le64)
    }
}
