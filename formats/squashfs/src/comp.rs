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
    /// LZO1X blocks, by lzokay (an LZO1X-999-like search at every level).
    Lzo,
    /// xz streams with a CRC32 check and an LZMA2 dictionary of one block,
    /// optionally behind BCJ filters.
    Xz,
    /// Raw LZ4 blocks, by liblz4: level 0 is its default compressor, 1 to
    /// 12 LZ4 HC.
    Lz4,
    /// zstd frames.
    Zstd,
    /// Nothing compressed: every block and table stored raw, under the
    /// gzip id, which a reader then never has to call.
    None,
}

impl Comp {
    /// Every compressor, for tests and option help.
    pub const ALL: [Comp; 6] = [
        Comp::Gzip,
        Comp::Lzo,
        Comp::Xz,
        Comp::Lz4,
        Comp::Zstd,
        Comp::None,
    ];

    /// The name mksquashfs's `-comp` uses (`none` for no compression).
    pub const fn name(self) -> &'static str {
        match self {
            Comp::Gzip => "gzip",
            Comp::Lzo => "lzo",
            Comp::Xz => "xz",
            Comp::Lz4 => "lz4",
            Comp::Zstd => "zstd",
            Comp::None => "none",
        }
    }

    /// The superblock's compressor id.
    pub(crate) const fn id(self) -> u16 {
        match self {
            Comp::Gzip | Comp::None => 1,
            Comp::Lzo => 3,
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
            Comp::Lzo => 9,
            Comp::Zstd => 15,
            Comp::Lz4 | Comp::None => 0,
        }
    }

    /// The levels the compressor takes.
    pub const fn levels(self) -> std::ops::RangeInclusive<u32> {
        match self {
            Comp::Gzip => 1..=12,
            // lzokay has one search, as good as LZO1X-999 at level 9.
            Comp::Lzo => 9..=9,
            Comp::Xz => 0..=9,
            Comp::Lz4 => 0..=12,
            Comp::Zstd => 1..=22,
            Comp::None => 0..=0,
        }
    }

    /// Buildroot's "extreme" level (`BR2_TARGET_ROOTFS_SQUASHFS_EXTREME_COMP`):
    /// gzip and lzo 9, LZ4 HC at its default level 9, zstd 22; xz keeps
    /// its level and gains BCJ filters instead.
    pub const fn extreme_level(self) -> u32 {
        match self {
            Comp::Gzip | Comp::Lzo | Comp::Lz4 => 9,
            Comp::Zstd => 22,
            Comp::Xz | Comp::None => self.default_level(),
        }
    }
}

/// A set of xz BCJ filters, by the bits squashfs's xz options use. Each
/// block is compressed plain and behind each filter, and the smallest kept,
/// as mksquashfs does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Bcj(u32);

impl Bcj {
    /// No filter.
    pub const NONE: Bcj = Bcj(0);
    /// x86 (32 and 64 bit) code.
    pub const X86: Bcj = Bcj(1);
    /// Big-endian PowerPC code.
    pub const POWERPC: Bcj = Bcj(2);
    /// Itanium code.
    pub const IA64: Bcj = Bcj(4);
    /// 32-bit ARM code.
    pub const ARM: Bcj = Bcj(8);
    /// ARM Thumb code.
    pub const ARMTHUMB: Bcj = Bcj(16);
    /// SPARC code.
    pub const SPARC: Bcj = Bcj(32);
    const NAMES: [(&str, Bcj); 6] = [
        ("x86", Bcj::X86),
        ("powerpc", Bcj::POWERPC),
        ("ia64", Bcj::IA64),
        ("arm", Bcj::ARM),
        ("armthumb", Bcj::ARMTHUMB),
        ("sparc", Bcj::SPARC),
    ];

    /// The filters of both sets.
    pub const fn union(self, other: Bcj) -> Bcj {
        Bcj(self.0 | other.0)
    }

    /// No filter at all.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses mksquashfs's `-Xbcj` list, e.g. `arm,armthumb`.
    pub fn parse(list: &str) -> Result<Bcj, String> {
        list.split(',').try_fold(Bcj::default(), |set, name| {
            Bcj::NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| set.union(*f))
                .ok_or_else(|| {
                    format!(
                        "unknown BCJ filter `{name}` (x86, powerpc, ia64, arm, armthumb, sparc)"
                    )
                })
        })
    }

    /// Buildroot's filters for a target architecture, by the names
    /// mkimage and Buildroot use: none for architectures without one.
    pub fn for_arch(arch: &str) -> Bcj {
        match arch {
            "x86" | "x86_64" | "i386" => Bcj::X86,
            "arm" | "arm64" | "aarch64" => Bcj::ARM.union(Bcj::ARMTHUMB),
            "powerpc" | "ppc" | "powerpc64" => Bcj::POWERPC,
            "sparc" | "sparc64" => Bcj::SPARC,
            _ => Bcj::default(),
        }
    }

    fn filters(self) -> impl Iterator<Item = Bcj> {
        Bcj::NAMES
            .into_iter()
            .map(|(_, f)| f)
            .filter(move |f| self.0 & f.0 != 0)
    }
}

/// What the encoder asks of the compressor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) comp: Comp,
    pub(crate) level: u32,
    pub(crate) block_size: u32,
    pub(crate) bcj: Bcj,
}

impl Settings {
    /// The compressor options block, written as squashfs-tools does: only
    /// where it differs from the reader's defaults, and always for lz4,
    /// which the kernel refuses without it. gzip levels above zlib's 9
    /// cannot be named, so they leave the default (9) in place.
    pub(crate) fn options(&self) -> Option<Vec<u8>> {
        let words = |a: u32, b: u32| [a.to_le_bytes(), b.to_le_bytes()].concat();
        match self.comp {
            Comp::Gzip if self.level < 9 => Some(
                [
                    self.level.to_le_bytes().as_slice(),
                    &15u16.to_le_bytes(),
                    &0u16.to_le_bytes(),
                ]
                .concat(),
            ),
            Comp::Xz if !self.bcj.is_empty() => Some(words(self.block_size, self.bcj.0)),
            Comp::Lz4 => Some(words(1, u32::from(self.level > 0))),
            Comp::Zstd if self.level != 15 => Some(self.level.to_le_bytes().to_vec()),
            _ => None,
        }
    }
}

/// One thread's compressor state.
pub(crate) struct Codec {
    settings: Settings,
    deflate: Option<Compressor>,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    lzo: Option<Box<lzokay::compress::Dict>>,
}

impl Codec {
    pub(crate) fn new(settings: Settings) -> io::Result<Self> {
        let level = settings.level;
        let deflate = match settings.comp {
            Comp::Gzip => {
                let lvl = i32::try_from(level)
                    .ok()
                    .and_then(|l| CompressionLvl::new(l).ok())
                    .ok_or_else(|| io::Error::other(format!("gzip level {level}")))?;
                Some(Compressor::new(lvl))
            }
            _ => None,
        };
        let zstd = match settings.comp {
            Comp::Zstd => Some(zstd::bulk::Compressor::new(
                i32::try_from(level).map_err(io::Error::other)?,
            )?),
            _ => None,
        };
        let lzo = (settings.comp == Comp::Lzo).then(lzokay::compress::Dict::new);
        Ok(Codec {
            settings,
            deflate,
            zstd,
            lzo,
        })
    }

    /// `data` compressed, or `None` if that would not make it smaller (the
    /// block is then stored raw).
    pub(crate) fn compress(&mut self, data: &[u8]) -> io::Result<Option<Vec<u8>>> {
        // Fast LZ4 gives up on random data sooner than the test would.
        let gate = !matches!(
            (self.settings.comp, self.settings.level),
            (Comp::None | Comp::Lz4, 0)
        );
        if gate && incompressible(data) {
            return Ok(None);
        }
        let out = match self.settings.comp {
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
            Comp::Zstd => match self.zstd.as_mut() {
                Some(c) => c.compress(data)?,
                None => return Ok(None),
            },
            Comp::Lz4 => {
                let mut out = vec![0u8; data.len()];
                let mode = match self.settings.level {
                    0 => lz4::block::CompressionMode::DEFAULT,
                    l => lz4::block::CompressionMode::HIGHCOMPRESSION(
                        i32::try_from(l).map_err(io::Error::other)?,
                    ),
                };
                // An error here only means it did not fit in `data.len()`.
                match lz4::block::compress_to_buffer(data, Some(mode), false, &mut out) {
                    Ok(n) => {
                        out.truncate(n);
                        out
                    }
                    Err(_) => return Ok(None),
                }
            }
            Comp::Lzo => match self.lzo.as_mut() {
                Some(dict) => {
                    lzokay::compress::compress_with_dict(data, dict).map_err(io::Error::other)?
                }
                None => return Ok(None),
            },
            Comp::Xz => {
                let mut best = self.xz(data, None)?;
                for filter in self.settings.bcj.filters() {
                    let candidate = self.xz(data, Some(filter))?;
                    if candidate.len() < best.len() {
                        best = candidate;
                    }
                }
                best
            }
        };
        Ok((out.len() < data.len()).then_some(out))
    }

    /// One xz stream; `dict` is the block size, which the kernel's decoder
    /// preallocates as its dictionary.
    fn xz(&self, data: &[u8], bcj: Option<Bcj>) -> io::Result<Vec<u8>> {
        let mut opts = LzmaOptions::new_preset(self.settings.level).map_err(io::Error::other)?;
        opts.dict_size(self.settings.block_size);
        let mut filters = Filters::new();
        match bcj {
            Some(Bcj::X86) => filters.x86(),
            Some(Bcj::POWERPC) => filters.powerpc(),
            Some(Bcj::IA64) => filters.ia64(),
            Some(Bcj::ARM) => filters.arm(),
            Some(Bcj::ARMTHUMB) => filters.arm_thumb(),
            Some(Bcj::SPARC) => filters.sparc(),
            _ => &mut filters,
        };
        filters.lzma2(&opts);
        let stream =
            Stream::new_stream_encoder(&filters, Check::Crc32).map_err(io::Error::other)?;
        let mut out = Vec::with_capacity(data.len());
        liblzma::bufread::XzEncoder::new_stream(data, stream).read_to_end(&mut out)?;
        Ok(out)
    }
}

/// Whether `data` is already compressed (or random) so that no compressor
/// would make it smaller: no LZ4 match saves a byte, and its byte
/// histogram is as flat as that of random bytes (whose entropy falls short
/// of 8 bits by about 255 / (2 n ln 2) from sampling alone), which leaves
/// an entropy coder nothing to gain. Such blocks (`.gz`, `.xz`, images in a rootfs) are stored raw
/// without paying for the slow compressors' search; any block that fails
/// either test goes to the compressor as before.
fn incompressible(data: &[u8]) -> bool {
    if data.len() < 4096 {
        return false;
    }
    // Four tables, so runs of one byte value do not serialise the counting
    // on one counter.
    let mut tables = [[0u32; 256]; 4];
    let mut quads = data.chunks_exact(4);
    for q in &mut quads {
        for (t, &b) in tables.iter_mut().zip(q) {
            t[usize::from(b)] += 1;
        }
    }
    for &b in quads.remainder() {
        tables[0][usize::from(b)] += 1;
    }
    let counts = (0..256).map(|i| tables.iter().map(|t| t[i]).sum::<u32>());
    let n = data.len() as f64;
    let entropy: f64 = counts
        .filter(|&c| c > 0)
        .map(|c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    // Within 1.5 times random data's sampling shortfall of 8 bits.
    let random = 8.0 - 1.5 * 255.0 / (2.0 * n * std::f64::consts::LN_2);
    entropy >= random && lz4_flex::block::compress(data).len() >= data.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(comp: Comp, level: u32) -> Settings {
        Settings {
            comp,
            level,
            block_size: 131072,
            bcj: Bcj::default(),
        }
    }

    #[test]
    fn compressible_data_shrinks_and_random_data_is_stored() {
        let text = b"squashfs ".repeat(1000);
        let mut noise = vec![0u8; 4096];
        let mut x = 0x1234_5678u32;
        for b in &mut noise {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x.to_le_bytes()[0];
        }
        for comp in [Comp::Gzip, Comp::Lzo, Comp::Xz, Comp::Lz4, Comp::Zstd] {
            let mut c = Codec::new(settings(comp, comp.default_level())).unwrap();
            let small = c.compress(&text).unwrap().unwrap();
            assert!(small.len() < text.len() / 10, "{comp:?}");
            assert_eq!(c.compress(&noise).unwrap(), None, "{comp:?}");
        }
        let mut none = Codec::new(settings(Comp::None, 0)).unwrap();
        assert_eq!(none.compress(&text).unwrap(), None);
    }

    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32).to_le_bytes()[0]
            })
            .collect()
    }

    #[test]
    fn only_random_looking_blocks_skip_the_compressor() {
        assert!(incompressible(&random(131072, 1)));
        assert!(incompressible(&random(4096, 2)));
        // Random halves that repeat: LZ finds the match.
        let half = random(65536, 3);
        assert!(!incompressible(&[half.clone(), half].concat()));
        // A skewed histogram leaves the entropy coder something.
        let mut skewed = random(131072, 4);
        skewed.iter_mut().step_by(3).for_each(|b| *b &= 0x7f);
        assert!(!incompressible(&skewed));
        assert!(!incompressible(&b"text ".repeat(30000)));
        // Too small to judge.
        assert!(!incompressible(&random(1000, 5)));
    }
}
