//! The node compressors, and mkfs.jffs2's priority mode: the enabled
//! compressors are tried from the highest priority down, the first whose
//! output is smaller than the input wins, and a node nothing shrinks is
//! stored as it is.

use libdeflater::{CompressionLvl, Compressor, Decompressor};

use crate::records::{COMPR_LZO, COMPR_NONE, COMPR_RTIME, COMPR_ZERO, COMPR_ZLIB};

/// `--jffs2-compr`: the compressors enabled, as mkfs.jffs2's options set
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compr {
    /// mkfs.jffs2's default: zlib (priority 60), then rtime (50).
    #[default]
    Zlib,
    /// `-X lzo`: lzo (80), then zlib and rtime.
    Lzo,
    /// `-x zlib`: rtime only.
    Rtime,
    /// `-m none`: every node stored uncompressed.
    None,
}

impl Compr {
    pub const ALL: [Compr; 4] = [Compr::Zlib, Compr::Lzo, Compr::Rtime, Compr::None];

    pub fn name(self) -> &'static str {
        match self {
            Compr::Zlib => "zlib",
            Compr::Lzo => "lzo",
            Compr::Rtime => "rtime",
            Compr::None => "none",
        }
    }

    /// The compressors tried, in priority order.
    fn chain(self) -> &'static [u8] {
        match self {
            Compr::Zlib => &[COMPR_ZLIB, COMPR_RTIME],
            Compr::Lzo => &[COMPR_LZO, COMPR_ZLIB, COMPR_RTIME],
            Compr::Rtime => &[COMPR_RTIME],
            Compr::None => &[],
        }
    }
}

/// One thread's compressor state.
pub(crate) struct Codec {
    compr: Compr,
    deflate: Compressor,
    lzo: Box<lzokay::compress::Dict>,
}

impl Codec {
    pub(crate) fn new(compr: Compr) -> Codec {
        // Level 9 of libdeflate is still fast, and smaller than zlib's 6
        // that mkfs.jffs2 uses.
        let level = CompressionLvl::new(9).unwrap_or_default();
        Codec {
            compr,
            deflate: Compressor::new(level),
            lzo: lzokay::compress::Dict::new(),
        }
    }

    /// `data` compressed by the first compressor of the chain that makes it
    /// smaller, with that compressor's id; or `COMPR_NONE` and the data.
    pub(crate) fn compress(&mut self, data: &[u8]) -> (u8, Vec<u8>) {
        for &c in self.compr.chain() {
            let out = match c {
                COMPR_ZLIB => {
                    let mut out = vec![0u8; data.len()];
                    // An error only means it did not fit in `data.len()`.
                    match self.deflate.zlib_compress(data, &mut out) {
                        Ok(n) => {
                            out.truncate(n);
                            Some(out)
                        }
                        Err(_) => None,
                    }
                }
                COMPR_LZO => lzokay::compress::compress_with_dict(data, &mut self.lzo).ok(),
                COMPR_RTIME => rtime_compress(data),
                _ => None,
            };
            if let Some(out) = out.filter(|o| o.len() < data.len()) {
                return (c, out);
            }
        }
        (COMPR_NONE, data.to_vec())
    }
}

/// The rtime compressor: each byte, then the length (up to 255) of the run
/// that repeats what followed that byte's previous occurrence. `None` when
/// that is not smaller.
pub(crate) fn rtime_compress(data: &[u8]) -> Option<Vec<u8>> {
    let mut positions = [0usize; 256];
    let mut out = Vec::with_capacity(data.len());
    let mut pos = 0usize;
    while pos < data.len() {
        let value = data[pos];
        out.push(value);
        pos += 1;
        let mut back = positions[usize::from(value)];
        positions[usize::from(value)] = pos;
        let mut run = 0u8;
        while back < pos && pos < data.len() && data[pos] == data[back] && run < u8::MAX {
            pos += 1;
            back += 1;
            run += 1;
        }
        out.push(run);
        if out.len() >= data.len() {
            return None;
        }
    }
    Some(out)
}

/// Decompresses rtime data into exactly `out.len()` bytes.
fn rtime_decompress(src: &[u8], out: &mut [u8]) -> Result<(), String> {
    let mut positions = [0usize; 256];
    let mut outpos = 0usize;
    let mut pos = 0usize;
    while outpos < out.len() {
        let (Some(&value), Some(&run)) = (src.get(pos), src.get(pos + 1)) else {
            return Err("rtime data ends early".into());
        };
        pos += 2;
        out[outpos] = value;
        outpos += 1;
        let back = positions[usize::from(value)];
        positions[usize::from(value)] = outpos;
        let run = usize::from(run);
        if outpos + run > out.len() {
            return Err("rtime run past the node's data size".into());
        }
        // `back` trails `outpos`, so the copy (which may overlap what it
        // writes) stays in bounds.
        for k in 0..run {
            out[outpos + k] = out[back + k];
        }
        outpos += run;
    }
    Ok(())
}

/// Decompresses a node's data of compressor `compr` into `out` (its
/// `dsize` bytes).
pub(crate) fn decompress(compr: u8, src: &[u8], out: &mut [u8]) -> Result<(), String> {
    match compr {
        COMPR_NONE => {
            if src.len() < out.len() {
                return Err("uncompressed data shorter than its size".into());
            }
            out.copy_from_slice(&src[..out.len()]);
            Ok(())
        }
        COMPR_ZERO => {
            out.fill(0);
            Ok(())
        }
        COMPR_RTIME => rtime_decompress(src, out),
        COMPR_ZLIB => {
            let n = Decompressor::new()
                .zlib_decompress(src, out)
                .map_err(|e| format!("zlib: {e}"))?;
            if n != out.len() {
                return Err(format!("zlib data is {n} bytes, not {}", out.len()));
            }
            Ok(())
        }
        COMPR_LZO => {
            let n = lzokay::decompress::decompress(src, out).map_err(|e| format!("lzo: {e:?}"))?;
            if n != out.len() {
                return Err(format!("lzo data is {n} bytes, not {}", out.len()));
            }
            Ok(())
        }
        c => Err(format!("unsupported compressor {c}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtime_round_trips() {
        let mut data = b"abcabcabcabcabcabcxyz".repeat(50);
        data.extend(std::iter::repeat_n(7u8, 1000));
        let c = rtime_compress(&data).unwrap();
        assert!(c.len() < data.len());
        let mut out = vec![0; data.len()];
        rtime_decompress(&c, &mut out).unwrap();
        assert_eq!(out, data);
        assert!(rtime_compress(&(0..=255u8).collect::<Vec<_>>()).is_none());
    }

    #[test]
    fn every_chain_round_trips() {
        let data = b"hello hello hello hello world ".repeat(100);
        for compr in Compr::ALL {
            let (c, out) = Codec::new(compr).compress(&data);
            assert_eq!(c == COMPR_NONE, compr == Compr::None);
            let mut back = vec![0; data.len()];
            decompress(c, &out, &mut back).unwrap();
            assert_eq!(back, data);
        }
    }
}
