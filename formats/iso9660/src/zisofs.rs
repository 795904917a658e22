//! zisofs (version 1), the transparent compression Linux reads with
//! `CONFIG_ZISOFS`: a 16-byte header, a table of block offsets, and one
//! zlib stream per block; a block of zeros is stored as nothing.

use libdeflater::{CompressionLvl, Compressor, Decompressor};

use crate::{BLOCK, blocks};

const MAGIC: [u8; 8] = [0x37, 0xE4, 0x53, 0x96, 0xC9, 0xDB, 0xD6, 0x07];
/// log2 of the block size: 32 KiB, as `mkzftree` writes.
pub(crate) const SHIFT: u8 = 15;
const HEADER: usize = 16;

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
    out.extend_from_slice(&[4, SHIFT, 0, 0]);
    out.resize(HEADER + table, 0);
    let mut comp = Compressor::new(CompressionLvl::best());
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

/// Expands a zisofs file whose `ZF` entry says `size` bytes in
/// 2^`shift`-byte blocks.
pub(crate) fn decompress(stored: &[u8], size: u32, shift: u8) -> Result<Vec<u8>, String> {
    if !(15..=17).contains(&shift) {
        return Err(format!("zisofs block size 2^{shift} is not 2^15..2^17"));
    }
    if stored.get(..8) != Some(&MAGIC[..]) {
        return Err("zisofs header magic is missing".to_owned());
    }
    let header = usize::from(stored.get(12).copied().unwrap_or(0)) * 4;
    let bs = 1usize << shift;
    let size = usize::try_from(size).map_err(|_| "zisofs size does not fit in memory")?;
    let n = size.div_ceil(bs);
    // The block table must be there before the output is allocated.
    if header.saturating_add(n.saturating_add(1).saturating_mul(4)) > stored.len() {
        return Err("zisofs block table runs past the data".to_owned());
    }
    let word = |i: usize| -> Result<usize, String> {
        let at = header + i * 4;
        stored
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(|b| u32::from_le_bytes(b) as usize)
            .ok_or_else(|| "zisofs block table runs past the data".to_owned())
    };
    let mut out = vec![0u8; size];
    let mut dec = Decompressor::new();
    for (i, dest) in out.chunks_mut(bs).enumerate().take(n) {
        let (start, end) = (word(i)?, word(i + 1)?);
        if start == end {
            continue;
        }
        let src = stored
            .get(start..end)
            .ok_or_else(|| format!("zisofs block {i} lies outside the file"))?;
        let got = dec
            .zlib_decompress(src, dest)
            .map_err(|e| format!("zisofs block {i}: {e}"))?;
        if got != dest.len() {
            return Err(format!(
                "zisofs block {i} is {got} bytes short of {}",
                dest.len()
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_zero_blocks() {
        let mut data: Vec<u8> = (0..100_000u32).map(|i| (i % 7) as u8).collect();
        data.extend(std::iter::repeat_n(0u8, 70_000));
        data.extend_from_slice(b"tail");
        let z = compress(&data).unwrap();
        assert!(z.len() < data.len() / 10);
        assert_eq!(decompress(&z, data.len() as u32, SHIFT).unwrap(), data);
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let noise: Vec<u8> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        assert!(compress(&noise).is_none());
    }
}
