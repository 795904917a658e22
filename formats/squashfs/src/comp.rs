//! Block compressors, each producing what the kernel's decompressor for
//! that compressor id expects.

use std::io::{self, Read};

use libdeflater::{CompressionLvl, Compressor};
use liblzma::stream::{Check, Filters, LzmaOptions, Stream};

/// A compressor, as the superblock names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comp {
    /// zlib streams (the format calls them gzip), by libdeflate.
    Gzip,
    /// xz streams with a CRC32 check and an LZMA2 dictionary of one block.
    Xz,
    /// Raw LZ4 blocks.
    Lz4,
    /// zstd frames.
    Zstd,
    /// Nothing compressed: every block and table stored raw, under the
    /// gzip id, which a reader then never has to call.
    None,
}

impl Comp {
    /// The superblock's compressor id.
    pub(crate) const fn id(self) -> u16 {
        match self {
            Comp::Gzip | Comp::None => 1,
            Comp::Xz => 4,
            Comp::Lz4 => 5,
            Comp::Zstd => 6,
        }
    }

    /// The level used when none is given (mksquashfs's defaults, except
    /// libdeflate 6 for gzip: smaller than zlib 9 at a fraction of the cost).
    pub const fn default_level(self) -> u32 {
        match self {
            Comp::Gzip | Comp::Xz => 6,
            Comp::Zstd => 15,
            Comp::Lz4 | Comp::None => 0,
        }
    }

    /// The compressor options block, where the format requires one: the
    /// kernel refuses an lz4 image without it (version 1, no HC flag). The
    /// others have none, and readers then use their defaults.
    pub(crate) fn options(self) -> Option<[u8; 8]> {
        match self {
            Comp::Lz4 => {
                let mut o = [0u8; 8];
                o[..4].copy_from_slice(&1u32.to_le_bytes());
                Some(o)
            }
            _ => None,
        }
    }
}

/// One thread's compressor state.
pub(crate) struct Codec {
    comp: Comp,
    level: u32,
    dict: u32,
    deflate: Option<Compressor>,
}

impl Codec {
    /// `dict` is the block size, which the kernel's xz decoder preallocates
    /// as its dictionary.
    pub(crate) fn new(comp: Comp, level: u32, dict: u32) -> Self {
        let deflate = match comp {
            Comp::Gzip => {
                let lvl = i32::try_from(level)
                    .ok()
                    .and_then(|l| CompressionLvl::new(l).ok())
                    .unwrap_or_default();
                Some(Compressor::new(lvl))
            }
            _ => None,
        };
        Codec {
            comp,
            level,
            dict,
            deflate,
        }
    }

    /// `data` compressed, or `None` if that would not make it smaller (the
    /// block is then stored raw).
    pub(crate) fn compress(&mut self, data: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let out = match self.comp {
            Comp::None => return Ok(None),
            Comp::Gzip => {
                let Some(c) = self.deflate.as_mut() else {
                    return Ok(None);
                };
                let mut out = vec![0u8; data.len()];
                // An error here only means it did not fit in `data.len()`.
                match c.zlib_compress(data, &mut out) {
                    Ok(n) => {
                        out.truncate(n);
                        out
                    }
                    Err(_) => return Ok(None),
                }
            }
            Comp::Zstd => {
                let level = i32::try_from(self.level).unwrap_or(i32::MAX);
                zstd::bulk::compress(data, level)?
            }
            Comp::Lz4 => lz4_flex::block::compress(data),
            Comp::Xz => {
                let mut opts = LzmaOptions::new_preset(self.level).map_err(io::Error::other)?;
                opts.dict_size(self.dict);
                let mut filters = Filters::new();
                filters.lzma2(&opts);
                let stream =
                    Stream::new_stream_encoder(&filters, Check::Crc32).map_err(io::Error::other)?;
                let mut out = Vec::with_capacity(data.len());
                liblzma::bufread::XzEncoder::new_stream(data, stream).read_to_end(&mut out)?;
                out
            }
        };
        Ok((out.len() < data.len()).then_some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_data_shrinks_and_random_data_is_stored() {
        let text = b"squashfs ".repeat(1000);
        let mut noise = vec![0u8; 4096];
        let mut x = 0x1234_5678u32;
        for b in &mut noise {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        for comp in [Comp::Gzip, Comp::Xz, Comp::Lz4, Comp::Zstd] {
            let mut c = Codec::new(comp, comp.default_level(), 131072);
            let small = c.compress(&text).unwrap().unwrap();
            assert!(small.len() < text.len() / 10, "{comp:?}");
            assert_eq!(c.compress(&noise).unwrap(), None, "{comp:?}");
        }
        let mut none = Codec::new(Comp::None, 0, 131072);
        assert_eq!(none.compress(&text).unwrap(), None);
    }
}
