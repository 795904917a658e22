//! Outer compression: the algorithms Buildroot offers for cpio, tar and ext
//! images, a decoder for each, and a sink that compresses on every core.
//!
//! The sink cuts the stream into chunks and compresses each chunk as an
//! independent member (gzip member, zstd frame, xz stream, ...). Every tool's
//! decoder accepts such concatenations, and so does the Linux initramfs
//! unpacker as long as every member ends between two cpio entries, which the
//! encoders mark with [`Sink::boundary`](rootforge_common::Sink::boundary).

mod decode;
mod lz4;
mod lzma;
mod lzop;
mod member;
mod sink;

use std::fmt;
use std::io::{self, Write};
use std::ops::RangeInclusive;
use std::str::FromStr;

pub use decode::{Decoder, decoder, read_head, sniff, unsupported};
pub use sink::CompressSink;

/// An outer compression algorithm, named as Buildroot names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Bzip2,
    /// The legacy LZ4 frame (`lz4 -l`), the only one the kernel reads.
    Lz4,
    /// The LZMA "alone" format (`lzma`, `xz --format=lzma`).
    Lzma,
    /// The `lzop` file format with LZO1X blocks.
    Lzo,
    /// xz with CRC32 checks, the only check the kernel verifies.
    Xz,
    Zstd,
    /// lzip: read as input, never written (not in [`Compression::ALL`]).
    Lzip,
}

impl Compression {
    /// Every algorithm, in the order Buildroot lists them.
    pub const ALL: [Compression; 8] = [
        Compression::None,
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Lz4,
        Compression::Lzma,
        Compression::Lzo,
        Compression::Xz,
        Compression::Zstd,
    ];

    /// The name `FromStr` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Lz4 => "lz4",
            Compression::Lzma => "lzma",
            Compression::Lzo => "lzo",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lzip => "lzip",
        }
    }

    /// The file name suffix Buildroot appends (`rootfs.cpio.gz`).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Bzip2 => ".bz2",
            Compression::Lz4 => ".lz4",
            Compression::Lzma => ".lzma",
            Compression::Lzo => ".lzo",
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
            Compression::Lzip => ".lz",
        }
    }

    /// The level Buildroot's `fs/common.mk` uses.
    pub fn default_level(self) -> u32 {
        match self {
            Compression::None | Compression::Lzip => 0,
            Compression::Zstd => 19,
            _ => 9,
        }
    }

    /// The levels [`CompressSink::new`] accepts. gzip goes up to libdeflate's
    /// 12. lz4 and lzo accept their tools' levels for compatibility, but each
    /// has a single encoder here (lz4_flex's fast block encoder, lzokay's
    /// LZO1X-999 search), so the level does not change their output.
    pub fn levels(self) -> RangeInclusive<u32> {
        match self {
            Compression::None | Compression::Lzip => 0..=0,
            Compression::Gzip | Compression::Lz4 => 1..=12,
            Compression::Bzip2 | Compression::Lzo => 1..=9,
            Compression::Lzma | Compression::Xz => 0..=9,
            Compression::Zstd => 1..=22,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name given to [`Compression::from_str`] is not an algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression {0:?} (expected one of none, gzip, bzip2, lz4, lzma, lzo, xz, zstd)")]
pub struct UnknownCompression(pub String);

impl FromStr for Compression {
    type Err = UnknownCompression;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownCompression(s.to_owned()))
    }
}

/// Compresses `data` in one call, as [`CompressSink`] would with no
/// boundary marks.
pub fn compress_all(c: Compression, level: Option<u32>, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut sink = CompressSink::new(c, level, Vec::new())?;
    sink.write_all(data)?;
    sink.finish()
}

#[cfg(test)]
mod tests;
