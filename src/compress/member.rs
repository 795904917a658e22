//! One independent compressed member per algorithm: from a whole chunk (the
//! parallel path) or from a stream of writes (the serial fallback for a long
//! run without a boundary mark).

use std::io::{self, Write};

use liblzma::stream::{Action, Check, Filters, LzmaOptions, Status, Stream};

use super::{Compression, lz4, lzop};

/// lzip is an input compression only.
fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "lzip is read as input but not written",
    )
}

/// The gzip header's OS byte for Unix, as `gzip -n` writes it.
const GZIP_OS_UNIX: u8 = 3;

/// An algorithm with a checked level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Codec {
    pub kind: Compression,
    pub level: u32,
}

impl Codec {
    pub fn new(kind: Compression, level: Option<u32>) -> io::Result<Self> {
        if kind == Compression::Lzip {
            return Err(read_only());
        }
        let level = level.unwrap_or_else(|| kind.default_level());
        if !kind.levels().contains(&level) {
            let range = kind.levels();
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{kind} level {level} is out of range {}..={}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(Codec { kind, level })
    }

    /// Bytes of input per member. Measured on a 50 MiB tar of /usr/bin,
    /// /usr/lib and Perl modules, against one member for the whole input:
    /// - gzip: 1 MiB chunks cost 0.08 % (256 KiB: 0.44 %); the window is
    ///   32 KiB.
    /// - bzip2: blocks are independent already; chunks of three blocks cost
    ///   0.16 % (the partial last block of each chunk).
    /// - lz4 (8 MiB legacy blocks) and lzop (256 KiB blocks) cut at block
    ///   boundaries, so chunks cost only a frame header each.
    /// - xz/lzma -9 use their 64 MiB dictionary: chunks of 8, 16 and 32 MiB
    ///   cost 7.9, 5.9 and 4.7 %. Chunks are three dictionaries, the block
    ///   size `xz -T` uses, so the ratio is never worse than the threaded xz
    ///   Buildroot runs; inputs below 192 MiB at -9 get one stream.
    /// - zstd -19: 8 and 32 MiB chunks cost 4.1 and 1.9 %. 32 MiB is the
    ///   job size of `zstd -19 -T` (whose overlapping jobs gave no speed-up
    ///   on 2 cores at -19).
    pub fn chunk_size(self) -> usize {
        const MIB: usize = 1 << 20;
        let level = usize::try_from(self.level).unwrap_or(usize::MAX);
        match self.kind {
            Compression::None | Compression::Gzip => MIB,
            Compression::Bzip2 => level.saturating_mul(300_000),
            Compression::Lz4 => 8 * MIB,
            Compression::Lzo => 4 * MIB,
            // lzma is never cut (see `sink`): this is how much of it is
            // encoded whole before the rest is streamed.
            Compression::Lzma | Compression::Xz => opts_dict_size(self.level)
                .ok()
                .and_then(|dict| usize::try_from(dict).ok())
                .map_or(MIB, |dict| dict.saturating_mul(3).max(MIB)),
            Compression::Zstd => 32 * MIB,
            Compression::Lzip => MIB,
        }
    }

    /// Compresses `data` as one member that decodes alone.
    pub fn encode(self, data: &[u8]) -> io::Result<Vec<u8>> {
        match self.kind {
            Compression::None => Ok(data.to_vec()),
            Compression::Gzip => gzip(self.level, data),
            Compression::Bzip2 => {
                let mut enc =
                    bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(self.level));
                enc.write_all(data)?;
                enc.finish()
            }
            Compression::Lz4 => Ok(lz4::encode_legacy(data)),
            Compression::Lzma | Compression::Xz => {
                let mut stream = self.lzma_stream(Some(data.len()))?;
                let mut out = Vec::with_capacity(data.len() / 4 + 4096);
                run_to_end(&mut stream, data, &mut out)?;
                Ok(out)
            }
            Compression::Lzo => lzop::encode(data),
            Compression::Zstd => {
                let level = zstd_level(self.level)?;
                let mut enc = zstd::bulk::Compressor::new(level)?;
                enc.include_checksum(true)?;
                enc.compress(data)
            }
            Compression::Lzip => Err(read_only()),
        }
    }

    /// An xz or lzma-alone encoder. A dictionary larger than the input buys
    /// nothing but memory, here and in the kernel that decodes it, so it is
    /// shrunk to the next power of two that holds the input.
    fn lzma_stream(self, input_len: Option<usize>) -> io::Result<Stream> {
        let mut opts = LzmaOptions::new_preset(self.level).map_err(io::Error::other)?;
        if let Some(len) = input_len {
            let preset = opts_dict_size(self.level)?;
            let fit = len
                .max(4096)
                .checked_next_power_of_two()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(u32::MAX);
            opts.dict_size(preset.min(fit));
        }
        let stream = if self.kind == Compression::Xz {
            let mut filters = Filters::new();
            filters.lzma2(&opts);
            Stream::new_stream_encoder(&filters, Check::Crc32)
        } else {
            Stream::new_lzma_encoder(&opts)
        };
        stream.map_err(io::Error::other)
    }
}

/// The dictionary size of an xz preset, from liblzma's table.
fn opts_dict_size(level: u32) -> io::Result<u32> {
    // Presets 0..=9 use 256 KiB, 1, 2, 4, 4, 8, 8, 16, 32, 64 MiB.
    const KIB: u32 = 1 << 10;
    const MIB: u32 = 1 << 20;
    const TABLE: [u32; 10] = [
        256 * KIB,
        MIB,
        2 * MIB,
        4 * MIB,
        4 * MIB,
        8 * MIB,
        8 * MIB,
        16 * MIB,
        32 * MIB,
        64 * MIB,
    ];
    usize::try_from(level)
        .ok()
        .and_then(|l| TABLE.get(l).copied())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "xz preset out of range"))
}

fn zstd_level(level: u32) -> io::Result<i32> {
    i32::try_from(level).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "zstd level"))
}

/// A gzip member like `gzip -n`: no name, mtime 0, Unix OS byte.
fn gzip(level: u32, data: &[u8]) -> io::Result<Vec<u8>> {
    let lvl = i32::try_from(level)
        .ok()
        .and_then(|l| libdeflater::CompressionLvl::new(l).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "gzip level"))?;
    let mut enc = libdeflater::Compressor::new(lvl);
    let mut out = vec![0; enc.gzip_compress_bound(data.len())];
    let len = enc
        .gzip_compress(data, &mut out)
        .map_err(|e| io::Error::other(format!("gzip: {e:?}")))?;
    out.truncate(len);
    // libdeflate writes OS "unknown" (255); gzip writes 3 and the same XFL
    // (2 = slowest, 4 = fastest). The header carries no CRC, so patching it
    // is safe.
    if let Some(os) = out.get_mut(9) {
        *os = GZIP_OS_UNIX;
    }
    Ok(out)
}

/// Feeds all of `data` to a liblzma encoder and finishes the stream.
fn run_to_end(stream: &mut Stream, mut data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let before = stream.total_in();
        let status = stream
            .process_vec(data, out, Action::Finish)
            .map_err(io::Error::other)?;
        let used = usize::try_from(stream.total_in() - before).map_err(io::Error::other)?;
        data = data.get(used..).unwrap_or_default();
        if status == Status::StreamEnd {
            return Ok(());
        }
    }
}

/// A member built from a stream of writes, for a run of data too long to
/// buffer whole. Output accumulates in a `Vec` that the caller drains.
pub(super) enum StreamMember {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Bzip2(bzip2::write::BzEncoder<Vec<u8>>),
    Lzma { stream: Stream, out: Vec<u8> },
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Lz4(lz4::LegacyWriter),
    Lzo(lzop::Writer),
}

impl std::fmt::Debug for StreamMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamMember")
    }
}

impl StreamMember {
    /// Returns `None` for [`Compression::None`], which needs no member.
    pub fn new(codec: Codec) -> io::Result<Option<Self>> {
        Ok(Some(match codec.kind {
            Compression::None => return Ok(None),
            Compression::Gzip => StreamMember::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(GZIP_OS_UNIX)
                    .write(Vec::new(), flate2::Compression::new(codec.level.min(9))),
            ),
            Compression::Bzip2 => StreamMember::Bzip2(bzip2::write::BzEncoder::new(
                Vec::new(),
                bzip2::Compression::new(codec.level),
            )),
            Compression::Lzma | Compression::Xz => StreamMember::Lzma {
                stream: codec.lzma_stream(None)?,
                out: Vec::new(),
            },
            Compression::Zstd => {
                let mut enc =
                    zstd::stream::write::Encoder::new(Vec::new(), zstd_level(codec.level)?)?;
                enc.include_checksum(true)?;
                StreamMember::Zstd(enc)
            }
            Compression::Lz4 => StreamMember::Lz4(lz4::LegacyWriter::new()),
            Compression::Lzo => StreamMember::Lzo(lzop::Writer::new()),
            Compression::Lzip => return Err(read_only()),
        }))
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        match self {
            StreamMember::Gzip(e) => e.write_all(data),
            StreamMember::Bzip2(e) => e.write_all(data),
            StreamMember::Zstd(e) => e.write_all(data),
            StreamMember::Lz4(e) => {
                e.write_all(data);
                Ok(())
            }
            StreamMember::Lzo(e) => e.write_all(data),
            StreamMember::Lzma { stream, out } => {
                while !data.is_empty() {
                    if out.capacity() - out.len() < 4096 {
                        out.reserve(64 * 1024);
                    }
                    let before = stream.total_in();
                    stream
                        .process_vec(data, out, Action::Run)
                        .map_err(io::Error::other)?;
                    let used =
                        usize::try_from(stream.total_in() - before).map_err(io::Error::other)?;
                    data = data.get(used..).unwrap_or_default();
                }
                Ok(())
            }
        }
    }

    /// The compressed bytes produced so far, handed over and forgotten.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(match self {
            StreamMember::Gzip(e) => e.get_mut(),
            StreamMember::Bzip2(e) => e.get_mut(),
            StreamMember::Zstd(e) => e.get_mut(),
            StreamMember::Lz4(e) => e.output(),
            StreamMember::Lzo(e) => e.output(),
            StreamMember::Lzma { out, .. } => out,
        })
    }

    /// Ends the member and returns its last bytes.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            StreamMember::Gzip(e) => e.finish(),
            StreamMember::Bzip2(e) => e.finish(),
            StreamMember::Zstd(e) => e.finish(),
            StreamMember::Lz4(e) => Ok(e.finish()),
            StreamMember::Lzo(e) => e.finish(),
            StreamMember::Lzma {
                mut stream,
                mut out,
            } => {
                run_to_end(&mut stream, &[], &mut out)?;
                Ok(out)
            }
        }
    }
}
