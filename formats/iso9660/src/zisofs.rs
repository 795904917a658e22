//! zisofs (version 1), the transparent compression Linux reads with
//! `CONFIG_ZISOFS`: a 16-byte header, a table of block offsets, and one
//! zlib stream per block; a block of zeros is stored as nothing.

use std::io;

use libdeflater::{CompressionLvl, Compressor, Decompressor};
use rootforge_common::{Blob, FileData};

use crate::{BLOCK, blocks};

const MAGIC: [u8; 8] = [0x37, 0xE4, 0x53, 0x96, 0xC9, 0xDB, 0xD6, 0x07];
/// log2 of the block size: 32 KiB, as `mkzftree` writes.
pub(crate) const SHIFT: u8 = 15;
const HEADER: usize = 16;
/// The header's length / 4, as `ZF` and the header itself record it.
pub(crate) const HEADER_DIV_4: u8 = 4;

/// The zisofs form of `data`, or `None` when it would not take fewer
/// blocks than the plain bytes (files of 4 GiB or more are never stored
/// compressed).
pub(crate) fn compress(data: &[u8]) -> Option<Vec<u8>> {
    let size = u32::try_from(data.len()).ok()?;
    if data.len() as u64 <= BLOCK {
        return None;
    }
    let bs = 1usize << SHIFT;
    let n = data.len().div_ceil(bs);
    let table = (n + 1) * 4;
    let mut out = Vec::with_capacity(data.len() / 2);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&[HEADER_DIV_4, SHIFT, 0, 0]);
    out.resize(HEADER + table, 0);
    // mkzftree's default level: libdeflate's 12 saves about 1% more at
    // several times the time.
    let mut comp = Compressor::new(CompressionLvl::new(9).ok()?);
    let mut buf = Vec::new();
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(u32::try_from(out.len()).ok()?);
    for chunk in data.chunks(bs) {
        if chunk.iter().any(|&b| b != 0) {
            buf.resize(comp.zlib_compress_bound(chunk.len()), 0);
            let len = comp.zlib_compress(chunk, &mut buf).ok()?;
            out.extend_from_slice(&buf[..len]);
        }
        offsets.push(u32::try_from(out.len()).ok()?);
        if blocks(out.len() as u64) >= blocks(data.len() as u64) {
            return None;
        }
    }
    for (i, off) in offsets.iter().enumerate() {
        let at = HEADER + i * 4;
        out[at..at + 4].copy_from_slice(&off.to_le_bytes());
    }
    Some(out)
}

/// A zisofs file read back: its header and block table are checked when it
/// is opened, each block is decompressed when a read touches it, so a small
/// image claiming gigabytes of zeros costs nothing until they are read, and
/// then one block at a time.
pub(crate) struct Zisofs {
    stored: FileData,
    size: u64,
    shift: u8,
    /// Where each block's zlib stream starts in `stored`, and where the last
    /// one ends.
    table: Vec<u64>,
}

impl Zisofs {
    pub(crate) fn open(stored: FileData, size: u32, shift: u8) -> Result<Zisofs, String> {
        if !(15..=17).contains(&shift) {
            return Err(format!("zisofs block size 2^{shift} is not 2^15..2^17"));
        }
        let mut head = [0u8; HEADER];
        if stored.read_at(0, &mut head).is_err() || head[..8] != MAGIC {
            return Err("zisofs header magic is missing".to_owned());
        }
        let header = u64::from(head[12]) * 4;
        let blocks = u64::from(size).div_ceil(1 << shift);
        // The table is in the image, so it costs no more than the image.
        let table_len = (blocks + 1) * 4;
        if header + table_len > stored.size() {
            return Err("zisofs block table runs past the data".to_owned());
        }
        let table_bytes = usize::try_from(table_len).map_err(|_| {
            format!("zisofs block table of {table_len} bytes does not fit in memory")
        })?;
        let mut raw = vec![0u8; table_bytes];
        stored
            .read_at(header, &mut raw)
            .map_err(|e| format!("zisofs block table: {e}"))?;
        let table: Vec<u64> = raw
            .chunks_exact(4)
            .map(|w| u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
            .collect();
        if let Some(i) = table
            .windows(2)
            .position(|w| w[0] > w[1] || w[1] > stored.size())
        {
            return Err(format!("zisofs block {i} lies outside the file"));
        }
        Ok(Zisofs {
            stored,
            size: u64::from(size),
            shift,
            table,
        })
    }
}

fn data_error(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

/// `v` as a length in memory: each one here is bounded by the caller's
/// buffer or a block of at most 128 KiB.
fn in_memory(v: u64) -> io::Result<usize> {
    usize::try_from(v).map_err(|_| data_error(format!("zisofs length {v} does not fit in memory")))
}

impl Blob for Zisofs {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = rootforge_common::read_end(offset, buf.len(), self.size)?;
        let bs = 1u64 << self.shift;
        let mut dec = Decompressor::new();
        let (mut src, mut block) = (Vec::new(), Vec::new());
        let mut pos = offset;
        while pos < end {
            let (index, within) = (pos / bs, pos % bs);
            // At most the block size, 128 KiB.
            let block_len = in_memory((self.size - index * bs).min(bs))?;
            let within = in_memory(within)?;
            let n = in_memory((end - pos).min((block_len - within) as u64))?;
            let at = in_memory(pos - offset)?;
            let dst = &mut buf[at..at + n];
            // `open` checked the table: one more word than blocks, in order,
            // within the stored bytes.
            let i = in_memory(index)?;
            let (Some(&start), Some(&stop)) = (self.table.get(i), self.table.get(i + 1)) else {
                return Err(data_error(format!(
                    "zisofs block {index} is not in the table"
                )));
            };
            if start == stop {
                dst.fill(0);
            } else {
                src.resize(in_memory(stop - start)?, 0);
                self.stored.read_at(start, &mut src)?;
                block.resize(block_len, 0);
                let got = dec
                    .zlib_decompress(&src, &mut block)
                    .map_err(|e| data_error(format!("zisofs block {index}: {e}")))?;
                if got != block_len {
                    return Err(data_error(format!(
                        "zisofs block {index} is {got} bytes short of {block_len}"
                    )));
                }
                dst.copy_from_slice(&block[within..within + n]);
            }
            pos += n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_zero_blocks() {
        let mut data: Vec<u8> = (0..100_000u32)
            .map(|i| u8::try_from(i % 7).unwrap())
            .collect();
        data.extend(std::iter::repeat_n(0u8, 70_000));
        data.extend_from_slice(b"tail");
        let z = compress(&data).unwrap();
        assert!(z.len() < data.len() / 10);
        let stored = FileData::bytes(z);
        let file = Zisofs::open(stored, u32::try_from(data.len()).unwrap(), SHIFT).unwrap();
        let mut back = vec![1u8; data.len()];
        file.read_at(0, &mut back).unwrap();
        assert_eq!(back, data);
        // A read across a block boundary, into a run of zeros.
        let mut part = vec![1u8; 40_000];
        file.read_at(90_000, &mut part).unwrap();
        assert_eq!(part, data[90_000..130_000]);
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let noise: Vec<u8> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32).to_le_bytes()[0]
            })
            .collect();
        assert!(compress(&noise).is_none());
    }
}
