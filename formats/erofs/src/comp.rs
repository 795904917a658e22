//! The compressors, each asked for the longest prefix of its input that
//! compresses into a pcluster (fixed-output-size compression).

use std::fmt;

/// An EROFS compressor (`Z_EROFS_COMPRESSION_*`), or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Comp {
    /// Every file stored as it is.
    None,
    /// LZ4 (`Z_EROFS_COMPRESSION_LZ4`), liblz4's fast mode.
    Lz4,
    /// LZ4 with liblz4's high-compression mode (levels 1-12).
    Lz4hc,
    /// Raw DEFLATE (`Z_EROFS_COMPRESSION_DEFLATE`), libdeflate, levels 1-12.
    Deflate,
    /// Zstandard (`Z_EROFS_COMPRESSION_ZSTD`), levels 1-22.
    Zstd,
}

impl Comp {
    /// Every compressor, in the order tables list them.
    pub const ALL: [Comp; 5] = [
        Comp::None,
        Comp::Lz4,
        Comp::Lz4hc,
        Comp::Deflate,
        Comp::Zstd,
    ];

    /// The name `--erofs-compress` takes (mkfs.erofs's `-z` names).
    pub const fn name(self) -> &'static str {
        match self {
            Comp::None => "none",
            Comp::Lz4 => "lz4",
            Comp::Lz4hc => "lz4hc",
            Comp::Deflate => "deflate",
            Comp::Zstd => "zstd",
        }
    }

    /// The level used when none is given (mkfs.erofs's defaults).
    pub const fn default_level(self) -> u32 {
        match self {
            Comp::None | Comp::Lz4 => 0,
            Comp::Lz4hc => 9,
            Comp::Deflate => 1,
            Comp::Zstd => 3,
        }
    }

    /// The levels the compressor takes.
    pub const fn levels(self) -> (u32, u32) {
        match self {
            Comp::None | Comp::Lz4 => (0, 0),
            Comp::Lz4hc => (1, 12),
            Comp::Deflate => (1, 12),
            Comp::Zstd => (1, 22),
        }
    }

    /// The on-disk algorithm number, `None` for no compression.
    pub(crate) const fn algorithm(self) -> Option<u8> {
        match self {
            Comp::None => None,
            Comp::Lz4 | Comp::Lz4hc => Some(Z_EROFS_COMPRESSION_LZ4),
            Comp::Deflate => Some(Z_EROFS_COMPRESSION_DEFLATE),
            Comp::Zstd => Some(Z_EROFS_COMPRESSION_ZSTD),
        }
    }
}

impl fmt::Display for Comp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `Z_EROFS_COMPRESSION_LZ4`.
pub(crate) const Z_EROFS_COMPRESSION_LZ4: u8 = 0;
/// `Z_EROFS_COMPRESSION_DEFLATE`.
pub(crate) const Z_EROFS_COMPRESSION_DEFLATE: u8 = 2;
/// `Z_EROFS_COMPRESSION_ZSTD`.
pub(crate) const Z_EROFS_COMPRESSION_ZSTD: u8 = 3;

/// The zstd window the superblock announces and frames stay within: the
/// kernel's largest (`Z_EROFS_ZSTD_MAX_DICT_SIZE`, 1 MiB).
pub(crate) const ZSTD_WINDOW_LOG: u32 = 20;

/// A compressor with its level, ready to compress pclusters.
pub(crate) struct Compressor {
    comp: Comp,
    level: u32,
}

impl Compressor {
    pub(crate) fn new(comp: Comp, level: u32) -> Self {
        Compressor { comp, level }
    }

    /// `input` compressed, if it fits in `limit` bytes and its first byte
    /// is not zero (the zero padding before a pcluster's data is found by
    /// skipping zero bytes).
    pub(crate) fn compress(&self, input: &[u8], limit: usize) -> Option<Vec<u8>> {
        let mut out = vec![0u8; limit];
        let n = match self.comp {
            Comp::None => return None,
            Comp::Lz4 | Comp::Lz4hc => {
                let mode = if self.comp == Comp::Lz4hc {
                    lz4::block::CompressionMode::HIGHCOMPRESSION(i32::try_from(self.level).ok()?)
                } else {
                    lz4::block::CompressionMode::DEFAULT
                };
                lz4::block::compress_to_buffer(input, Some(mode), false, &mut out).ok()?
            }
            Comp::Deflate => {
                let level =
                    libdeflater::CompressionLvl::new(i32::try_from(self.level).ok()?).ok()?;
                let mut c = libdeflater::Compressor::new(level);
                c.deflate_compress(input, &mut out).ok()?
            }
            Comp::Zstd => {
                let mut c = zstd::bulk::Compressor::new(i32::try_from(self.level).ok()?).ok()?;
                c.set_parameter(zstd::zstd_safe::CParameter::WindowLog(ZSTD_WINDOW_LOG))
                    .ok()?;
                c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(false))
                    .ok()?;
                c.compress_to_buffer(input, &mut out).ok()?
            }
        };
        if n == 0 || out.first() == Some(&0) {
            return None;
        }
        out.truncate(n);
        Some(out)
    }
}

/// Decompresses one pcluster's data (leading zeros already skipped) into
/// exactly `len` bytes.
pub(crate) fn decompress(algorithm: u8, input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    match algorithm {
        Z_EROFS_COMPRESSION_LZ4 => {
            let n = lz4_flex::block::decompress_into(input, &mut out).ok()?;
            (n == len).then_some(out)
        }
        Z_EROFS_COMPRESSION_DEFLATE => {
            let mut d = libdeflater::Decompressor::new();
            let n = d.deflate_decompress(input, &mut out).ok()?;
            (n == len).then_some(out)
        }
        Z_EROFS_COMPRESSION_ZSTD => {
            let mut d = zstd::bulk::Decompressor::new().ok()?;
            d.window_log_max(ZSTD_WINDOW_LOG).ok()?;
            let n = d.decompress_to_buffer(input, &mut out).ok()?;
            (n == len).then_some(out)
        }
        _ => None,
    }
}
