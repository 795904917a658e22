//! Recognising and decoding compressed input.

use std::io::{self, BufRead, BufReader, Read};

use liblzma::stream::{CONCATENATED, Stream};

use super::{Compression, lz4, lzma, lzop};

/// The most memory an xz or lzma stream may ask for: xz -9 needs 65 MiB, and
/// a header may declare a dictionary of up to 4 GiB.
pub(super) const MEMLIMIT: u64 = 1 << 30;
/// zstd's default window limit (128 MiB), which `zstd -19` stays well under.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Recognises a compressed stream by its first bytes (13 are enough for
/// every format). Extensions are never consulted.
pub fn sniff(head: &[u8]) -> Option<Compression> {
    const MAGICS: [(&[u8], Compression); 7] = [
        (&[0x1F, 0x8B], Compression::Gzip),
        (&[0x28, 0xB5, 0x2F, 0xFD], Compression::Zstd),
        (&[0xFD, b'7', b'z', b'X', b'Z', 0x00], Compression::Xz),
        (b"BZh", Compression::Bzip2),
        (&[0x04, 0x22, 0x4D, 0x18], Compression::Lz4),
        (&[0x02, 0x21, 0x4C, 0x18], Compression::Lz4),
        (
            &[0x89, b'L', b'Z', b'O', 0x00, b'\r', b'\n', 0x1A, b'\n'],
            Compression::Lzo,
        ),
    ];
    MAGICS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|&(_, c)| c)
        .or_else(|| is_lzma_alone(head).then_some(Compression::Lzma))
}

/// The .lzma header has no magic: properties 0x5D (lc=3 lp=0 pb=2, what
/// every encoder writes), a dictionary size of 2^n or 2^n + 2^(n-1), and an
/// uncompressed size that is unknown (all ones) or below 256 GiB. These are
/// the checks xz makes before it calls a file .lzma.
fn is_lzma_alone(head: &[u8]) -> bool {
    let Some((&[props], rest)) = head.split_first_chunk::<1>() else {
        return false;
    };
    let Some((dict, rest)) = rest.split_first_chunk::<4>() else {
        return false;
    };
    let Some((size, _)) = rest.split_first_chunk::<8>() else {
        return false;
    };
    let dict = u32::from_le_bytes(*dict);
    let size = u64::from_le_bytes(*size);
    let dict_ok = dict >= 4096 && {
        let top = 1u32 << (31 - dict.leading_zeros());
        dict == top || dict == top | (top >> 1)
    };
    props == 0x5D && dict_ok && (size == u64::MAX || size < 1 << 38)
}

/// A reader of the decompressed bytes of `r`, which holds one or more
/// concatenated members (gzip members, zstd frames, xz streams, bzip2
/// streams, lz4 frames of either kind, lzma streams, lzop files). Memory
/// stays bounded whatever the input; errors name the format.
pub fn decoder<'a>(c: Compression, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let inner: Box<dyn Read + 'a> = match c {
        Compression::None => return Ok(Box::new(r)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Compression::Xz => {
            let stream =
                Stream::new_stream_decoder(MEMLIMIT, CONCATENATED).map_err(io::Error::other)?;
            Box::new(liblzma::read::XzDecoder::new_stream(r, stream))
        }
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(r)?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
            Box::new(d)
        }
        Compression::Lz4 => Box::new(lz4::Decoder::new(BufReader::new(r))),
        Compression::Lzma => Box::new(lzma::AloneDecoder::new(BufReader::new(r))),
        Compression::Lzo => Box::new(lzop::Decoder::new(BufReader::new(r))),
    };
    Ok(Box::new(Labeled {
        name: c.name(),
        inner,
        produced: 0,
    }))
}

/// Prefixes every error with the format and the output offset, so a user
/// reading "corrupt deflate stream" knows what failed and where.
struct Labeled<'a> {
    name: &'static str,
    inner: Box<dyn Read + 'a>,
    produced: u64,
}

impl Read for Labeled<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.produced = self
                    .produced
                    .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!(
                    "{} decoding failed after {} bytes of output: {e}",
                    self.name, self.produced
                ),
            )),
        }
    }
}

/// An error for malformed compressed data.
pub(super) fn corrupt(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads exactly `N` bytes, or returns `None` if the input ends before the
/// first one; ending in between is an error.
pub(super) fn read_exact_or_eof<const N: usize, R: BufRead>(
    r: &mut R,
) -> io::Result<Option<[u8; N]>> {
    if r.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let mut b = [0u8; N];
    r.read_exact(&mut b).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(e.kind(), "truncated header")
        } else {
            e
        }
    })?;
    Ok(Some(b))
}

pub(super) fn read_u32_le<R: Read>(r: &mut R, what: &str) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(e.kind(), format!("truncated {what}"))
        } else {
            e
        }
    })?;
    Ok(u32::from_le_bytes(b))
}

/// Skips `n` bytes, failing if the input ends first.
pub(super) fn skip_exact<R: Read>(r: &mut R, n: u64, what: &str) -> io::Result<()> {
    let skipped = io::copy(&mut r.take(n), &mut io::sink())?;
    if skipped != n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("truncated {what}"),
        ));
    }
    Ok(())
}
