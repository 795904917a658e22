//! Recognising and decoding compressed input.

use std::io::{self, BufRead, BufReader, Read};

use liblzma::stream::{CONCATENATED, Stream};

use super::{Compression, lz4, lzma, lzop};

/// The most memory an xz or lzma stream may ask for: xz -9 needs 65 MiB, and
/// a header may declare a dictionary of up to 4 GiB.
pub(super) const MEMLIMIT: u64 = 1 << 30;
/// zstd's default window limit (128 MiB), which `zstd -19` stays well under.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// zstd and lz4 share these skippable frame magics (little-endian): a
/// 4-byte length and that many bytes of data a decoder skips. pzstd
/// output starts with one.
const SKIPPABLE: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;
/// How far [`read_head`] reads past skippable frames to find the first
/// real frame.
const MAX_HEAD: usize = 1 << 20;

/// Where the first frame that is not a skippable one starts in `head`:
/// `Ok(offset)`, or `Err(len)` when `len` bytes are needed to know.
fn first_frame(head: &[u8]) -> Result<usize, usize> {
    let mut at = 0usize;
    loop {
        let Some(magic) = head.get(at..).and_then(|h| h.first_chunk::<4>()) else {
            return if at >= head.len() {
                Ok(at)
            } else {
                Err(at.saturating_add(4))
            };
        };
        if !SKIPPABLE.contains(&u32::from_le_bytes(*magic)) {
            return Ok(at);
        }
        let Some(len) = head.get(at + 4..).and_then(|h| h.first_chunk::<4>()) else {
            return Err(at.saturating_add(8));
        };
        let len = usize::try_from(u32::from_le_bytes(*len)).unwrap_or(usize::MAX);
        at = at.saturating_add(8).saturating_add(len);
    }
}

/// Reads the first bytes of an input, enough for [`sniff`] and
/// [`unsupported`]: 16 bytes, and past leading skippable frames (up to
/// 1 MiB) to the frame they precede.
pub fn read_head(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut want = 16;
    loop {
        let old = head.len();
        head.resize(want, 0);
        let got = read_full(r, &mut head[old..])?;
        head.truncate(old + got);
        if head.len() < want {
            break; // the input ended
        }
        want = match first_frame(&head) {
            Ok(at) => at.saturating_add(16),
            Err(need) => need.saturating_add(16),
        }
        .min(MAX_HEAD);
        if want <= head.len() {
            break;
        }
    }
    Ok(head)
}

/// Reads until `buf` is full or the input ends.
fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Recognises a compressed stream by its first bytes (13 are enough for
/// every format, after any zstd or lz4 skippable frames). Extensions are
/// never consulted.
pub fn sniff(head: &[u8]) -> Option<Compression> {
    const MAGICS: [(&[u8], Compression); 8] = [
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
        (b"LZIP", Compression::Lzip),
    ];
    let start = match first_frame(head) {
        Ok(0) => 0,
        Ok(at) => {
            // Skippable frames first: zstd or lz4 by the frame after them;
            // zstd if they are all there is.
            let rest = head.get(at..).unwrap_or_default();
            return Some(
                if rest.starts_with(MAGICS[4].0) || rest.starts_with(MAGICS[5].0) {
                    Compression::Lz4
                } else {
                    Compression::Zstd
                },
            );
        }
        // Skippable frames longer than the head: both decoders skip them.
        Err(_) => return Some(Compression::Zstd),
    };
    let head = &head[start..];
    MAGICS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|&(_, c)| c)
        .or_else(|| is_lzma_alone(head).then_some(Compression::Lzma))
}

/// The name of a compression recognised by its magic but not read, so the
/// error says what the input is instead of "not a tar archive".
pub fn unsupported(head: &[u8]) -> Option<&'static str> {
    const MAGICS: [(&[u8], &str); 3] = [
        (&[0x1F, 0x9D], "compress (.Z)"),
        (b"GRZipII", "grzip"),
        (b"LRZI", "lrzip"),
    ];
    MAGICS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|&(_, name)| name)
}

/// The .lzma header has no magic: properties 0x5D (lc=3 lp=0 pb=2, what
/// every encoder writes), a dictionary size of 2^n or 2^n + 2^(n-1), and an
/// uncompressed size that is unknown (all ones) or below 256 GiB. These are
/// the checks xz makes before it calls a file .lzma.
pub(super) fn is_lzma_alone(head: &[u8]) -> bool {
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
/// streams, lz4 frames of either kind, lzma streams, lzop files, lzip
/// members). Memory stays bounded whatever the input; errors name the
/// format.
///
/// For gzip, bzip2, lz4, lzma and lzop, bytes after the last complete
/// member that do not start another one end the stream, as `gzip -d`
/// ignores "trailing garbage": [`Decoder::trailing`] then says how many.
pub fn decoder<'a>(c: Compression, r: impl Read + 'a) -> io::Result<Decoder<'a>> {
    let inner: Box<dyn Framed + 'a> = match c {
        Compression::None => Box::new(Whole(r)),
        Compression::Gzip => Box::new(Members::new(Peek::new(r), Kind::Gzip)),
        Compression::Bzip2 => Box::new(Members::new(Peek::new(r), Kind::Bzip2)),
        Compression::Xz => {
            let stream =
                Stream::new_stream_decoder(MEMLIMIT, CONCATENATED).map_err(io::Error::other)?;
            Box::new(Whole(liblzma::read::XzDecoder::new_stream(r, stream)))
        }
        Compression::Lzip => {
            let stream =
                Stream::new_lzip_decoder(MEMLIMIT, CONCATENATED).map_err(io::Error::other)?;
            Box::new(Whole(liblzma::read::XzDecoder::new_stream(r, stream)))
        }
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(r)?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
            Box::new(Whole(d))
        }
        Compression::Lz4 => Box::new(lz4::Decoder::new(BufReader::new(r))),
        Compression::Lzma => Box::new(lzma::AloneDecoder::new(Peek::new(r))),
        Compression::Lzo => Box::new(lzop::Decoder::new(BufReader::new(r))),
    };
    Ok(Decoder {
        name: c.name(),
        inner,
        produced: 0,
        plain: c == Compression::None,
    })
}

/// A decompressing reader: see [`decoder`].
pub struct Decoder<'a> {
    name: &'static str,
    inner: Box<dyn Framed + 'a>,
    produced: u64,
    plain: bool,
}

impl std::fmt::Debug for Decoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("name", &self.name)
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

impl Decoder<'_> {
    /// Bytes after the end of the compressed stream that were not read as
    /// part of it, once the output has been read to its end.
    pub fn trailing(&self) -> Option<u64> {
        self.inner.trailing()
    }
}

/// A decoder that may end before its input does.
pub(super) trait Framed: Read {
    /// Bytes left after the last member, once the end was reached.
    fn trailing(&self) -> Option<u64> {
        None
    }
}

/// A decoder that reads its whole input or fails.
struct Whole<R>(R);

impl<R: Read> Read for Whole<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Framed for Whole<R> {}

/// Prefixes every error with the format and the output offset, so a user
/// reading "corrupt deflate stream" knows what failed and where.
impl Read for Decoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.produced = self
                    .produced
                    .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted || self.plain => Err(e),
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

/// A buffered reader that can look a few bytes ahead across its buffer's
/// end, to tell the next member's magic from trailing garbage.
pub(super) struct Peek<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes consumed so far.
    consumed: u64,
}

impl<R: Read> Peek<R> {
    const CAPACITY: usize = 64 << 10;

    pub(super) fn new(r: R) -> Self {
        Peek {
            r,
            buf: Vec::with_capacity(Self::CAPACITY),
            pos: 0,
            consumed: 0,
        }
    }

    /// At least `n` bytes ahead, fewer only at the end of the input.
    pub(super) fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.buf.len() - self.pos < n {
            self.buf.drain(..self.pos);
            self.pos = 0;
            while self.buf.len() < n {
                let old = self.buf.len();
                self.buf.resize(old.max(Self::CAPACITY).max(n), 0);
                let got = read_full(&mut self.r, &mut self.buf[old..])?;
                self.buf.truncate(old + got);
                if got == 0 {
                    break;
                }
            }
        }
        Ok(&self.buf[self.pos..])
    }

    /// Reads and counts whatever is left: the trailing garbage.
    pub(super) fn drain(&mut self) -> io::Result<u64> {
        let buffered = u64::try_from(self.buf.len() - self.pos).unwrap_or(u64::MAX);
        self.pos = self.buf.len();
        let rest = io::copy(&mut self.r, &mut io::sink())?;
        Ok(buffered.saturating_add(rest))
    }
}

impl<R: Read> Read for Peek<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let avail = self.fill_buf()?;
            let n = avail.len().min(out.len());
            out[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Peek<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            self.buf.resize(Self::CAPACITY, 0);
            let got = loop {
                match self.r.read(&mut self.buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            };
            match got {
                Ok(n) => self.buf.truncate(n),
                Err(e) => {
                    self.buf.clear();
                    return Err(e);
                }
            }
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len() - self.pos);
        self.pos += n;
        self.consumed = self
            .consumed
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }
}

/// The member formats whose decoders read one member at a time here.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Gzip,
    Bzip2,
}

impl Kind {
    fn magic(self) -> &'static [u8] {
        match self {
            Kind::Gzip => &[0x1F, 0x8B],
            Kind::Bzip2 => b"BZh",
        }
    }
}

/// One gzip or bzip2 member after another, while the next bytes start a
/// member; anything else after a complete member is trailing garbage.
enum Member<R: Read> {
    Between(Peek<R>),
    Gzip(Box<flate2::bufread::GzDecoder<Peek<R>>>),
    Bzip2(bzip2::bufread::BzDecoder<Peek<R>>),
    /// The end: the bytes of trailing garbage, if there were any.
    Done(Option<u64>),
    /// Only while switching states.
    Taken,
}

struct Members<R: Read> {
    kind: Kind,
    state: Member<R>,
    members: u64,
}

impl<R: Read> Members<R> {
    fn new(r: Peek<R>, kind: Kind) -> Self {
        Members {
            kind,
            state: Member::Between(r),
            members: 0,
        }
    }
}

impl<R: Read> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = match &mut self.state {
                Member::Gzip(d) => d.read(buf)?,
                Member::Bzip2(d) => d.read(buf)?,
                Member::Done(_) => return Ok(0),
                Member::Taken => return Err(io::Error::other("decoder state lost")),
                Member::Between(r) => {
                    let head = r.peek(self.kind.magic().len())?;
                    if head.is_empty() && self.members > 0 {
                        self.state = Member::Done(None);
                        return Ok(0);
                    }
                    let starts = head.starts_with(self.kind.magic());
                    let Member::Between(mut r) = std::mem::replace(&mut self.state, Member::Taken)
                    else {
                        return Err(io::Error::other("decoder state lost"));
                    };
                    if !starts && self.members > 0 {
                        self.state = Member::Done(Some(r.drain()?));
                        return Ok(0);
                    }
                    self.members += 1;
                    self.state = match self.kind {
                        Kind::Gzip => Member::Gzip(Box::new(flate2::bufread::GzDecoder::new(r))),
                        Kind::Bzip2 => Member::Bzip2(bzip2::bufread::BzDecoder::new(r)),
                    };
                    continue;
                }
            };
            if n > 0 {
                return Ok(n);
            }
            // The member ended: see what follows.
            self.state = match std::mem::replace(&mut self.state, Member::Taken) {
                Member::Gzip(d) => Member::Between(d.into_inner()),
                Member::Bzip2(d) => Member::Between(d.into_inner()),
                other => other,
            };
        }
    }
}

impl<R: Read> Framed for Members<R> {
    fn trailing(&self) -> Option<u64> {
        match self.state {
            Member::Done(t) => t,
            _ => None,
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

/// Reads up to `N` bytes: fewer only at the end of the input.
pub(super) fn read_upto<const N: usize, R: Read>(r: &mut R) -> io::Result<([u8; N], usize)> {
    let mut b = [0u8; N];
    let n = read_full(r, &mut b)?;
    Ok((b, n))
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
