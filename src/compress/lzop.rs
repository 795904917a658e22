//! The lzop file format around LZO1X blocks (lzokay's LZO1X-999 search), and
//! its decoder.

use std::io::{self, BufRead, Read};

use super::decode::{corrupt, read_exact_or_eof, read_upto};

const MAGIC: [u8; 9] = [0x89, b'L', b'Z', b'O', 0x00, b'\r', b'\n', 0x1A, b'\n'];
/// lzop's block size, and the most the kernel's unlzo accepts.
const BLOCK: usize = 256 << 10;
/// lzop refuses blocks over 64 MiB; so do we, which bounds memory.
const MAX_BLOCK: usize = 64 << 20;

/// What lzop 1.04 with LZO 2.10 writes, so `lzop -t` trusts the file.
const VERSION: u16 = 0x1040;
const LIB_VERSION: u16 = 0x20A0;
const VERSION_NEEDED: u16 = 0x0940;
const METHOD_LZO1X_999: u8 = 3;
const LEVEL: u8 = 9;
const MODE: u32 = 0o100_644;

const F_ADLER32_D: u32 = 0x0000_0001;
const F_ADLER32_C: u32 = 0x0000_0002;
const F_H_EXTRA_FIELD: u32 = 0x0000_0040;
const F_CRC32_D: u32 = 0x0000_0100;
const F_CRC32_C: u32 = 0x0000_0200;
const F_MULTIPART: u32 = 0x0000_0400;
const F_H_FILTER: u32 = 0x0000_0800;
const F_H_CRC32: u32 = 0x0000_1000;
const F_OS_UNIX: u32 = 0x0300_0000;
/// Only the checksum of the uncompressed data, as `lzop -9` writes by
/// default: the kernel's unlzo skips exactly one 4-byte checksum per block,
/// so a compressed-data checksum as well makes it misread every block.
const FLAGS: u32 = F_OS_UNIX | F_ADLER32_D;

/// One lzop file holding `data`.
pub(super) fn encode(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut w = Writer::new();
    w.write_all(data)?;
    w.finish()
}

/// An lzop file built from a stream of writes, one 256 KiB block at a time.
pub(super) struct Writer {
    pending: Vec<u8>,
    out: Vec<u8>,
    dict: Box<lzokay::compress::Dict>,
}

impl Writer {
    pub fn new() -> Self {
        let mut header = Vec::with_capacity(32);
        header.extend_from_slice(&VERSION.to_be_bytes());
        header.extend_from_slice(&LIB_VERSION.to_be_bytes());
        header.extend_from_slice(&VERSION_NEEDED.to_be_bytes());
        header.extend_from_slice(&[METHOD_LZO1X_999, LEVEL]);
        header.extend_from_slice(&FLAGS.to_be_bytes());
        header.extend_from_slice(&MODE.to_be_bytes());
        // mtime low and high words, then an empty name.
        header.extend_from_slice(&[0; 8]);
        header.push(0);
        let sum = libdeflater::adler32(&header);
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&sum.to_be_bytes());
        Writer {
            pending: Vec::new(),
            out,
            dict: lzokay::compress::Dict::new(),
        }
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let room = BLOCK - self.pending.len();
            let (head, rest) = data.split_at(room.min(data.len()));
            if self.pending.is_empty() && head.len() == BLOCK {
                self.block(head)?;
            } else {
                self.pending.extend_from_slice(head);
                if self.pending.len() == BLOCK {
                    let block = std::mem::take(&mut self.pending);
                    self.block(&block)?;
                }
            }
            data = rest;
        }
        Ok(())
    }

    fn block(&mut self, block: &[u8]) -> io::Result<()> {
        let packed = lzokay::compress::compress_with_dict(block, &mut self.dict)
            .map_err(|e| io::Error::other(format!("lzo: {e}")))?;
        // Blocks are at most 256 KiB, so their lengths fit in 32 bits.
        let dst_len = u32::try_from(block.len()).map_err(io::Error::other)?;
        self.out.extend_from_slice(&dst_len.to_be_bytes());
        if packed.len() < block.len() {
            let src_len = u32::try_from(packed.len()).map_err(io::Error::other)?;
            self.out.extend_from_slice(&src_len.to_be_bytes());
            self.out
                .extend_from_slice(&libdeflater::adler32(block).to_be_bytes());
            self.out.extend_from_slice(&packed);
        } else {
            // Incompressible: stored, with no checksum of compressed data.
            self.out.extend_from_slice(&dst_len.to_be_bytes());
            self.out
                .extend_from_slice(&libdeflater::adler32(block).to_be_bytes());
            self.out.extend_from_slice(block);
        }
        Ok(())
    }

    /// The bytes produced so far, handed over and forgotten.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    pub fn finish(mut self) -> io::Result<Vec<u8>> {
        if !self.pending.is_empty() {
            let block = std::mem::take(&mut self.pending);
            self.block(&block)?;
        }
        self.out.extend_from_slice(&0u32.to_be_bytes());
        Ok(self.out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Magic,
    Blocks { flags: u32 },
}

/// Decodes a sequence of lzop files. Memory: one block in and out, at most
/// 64 MiB each (256 KiB for files that lzop or we wrote).
#[derive(Debug)]
pub(super) struct Decoder<R> {
    r: R,
    state: State,
    files: u64,
    src: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    /// Bytes after the last file that start none, once seen.
    trailing: Option<u64>,
}

impl<R: BufRead> super::decode::Framed for Decoder<R> {
    fn trailing(&self) -> Option<u64> {
        self.trailing
    }
}

impl<R: BufRead> Decoder<R> {
    pub fn new(r: R) -> Self {
        Decoder {
            r,
            state: State::Magic,
            files: 0,
            src: Vec::new(),
            out: Vec::new(),
            pos: 0,
            trailing: None,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        loop {
            match self.state {
                State::Magic if self.trailing.is_some() => return Ok(()),
                State::Magic => {
                    let magic = if self.files > 0 {
                        let (magic, n) = read_upto::<9, _>(&mut self.r)?;
                        if n == 0 {
                            return Ok(());
                        }
                        if magic != MAGIC {
                            // Not another lzop file: trailing garbage.
                            let rest = io::copy(&mut self.r, &mut io::sink())?;
                            self.trailing =
                                Some(rest.saturating_add(u64::try_from(n).unwrap_or(u64::MAX)));
                            return Ok(());
                        }
                        magic
                    } else {
                        read_exact_or_eof::<9, _>(&mut self.r)?
                            .ok_or_else(|| corrupt("empty input"))?
                    };
                    if magic != MAGIC {
                        return Err(corrupt("not an lzop file (bad magic)"));
                    }
                    let flags = self.header()?;
                    self.files += 1;
                    self.state = State::Blocks { flags };
                }
                State::Blocks { flags } => {
                    let dst_len = self.u32("block header")?;
                    if dst_len == 0 {
                        self.state = State::Magic;
                        continue;
                    }
                    self.block(flags, dst_len)?;
                    return Ok(());
                }
            }
        }
    }

    /// Reads and checks a header after the magic; returns its flags.
    fn header(&mut self) -> io::Result<u32> {
        let mut h = HeaderReader {
            r: &mut self.r,
            bytes: Vec::new(),
        };
        let version = u16::from_be_bytes(h.take()?);
        let _lib_version: [u8; 2] = h.take()?;
        if version < 0x0900 {
            return Err(corrupt("lzop file version too old"));
        }
        if version >= 0x0940 {
            let needed = u16::from_be_bytes(h.take()?);
            if needed > VERSION {
                return Err(corrupt("file needs a newer lzop"));
            }
        }
        let [method] = h.take()?;
        if !(1..=3).contains(&method) {
            return Err(corrupt(format!("unsupported method {method}")));
        }
        if version >= 0x0940 {
            let _level: [u8; 1] = h.take()?;
        }
        let flags = u32::from_be_bytes(h.take()?);
        if flags & (F_H_FILTER | F_MULTIPART | F_H_EXTRA_FIELD) != 0 {
            return Err(corrupt(format!("unsupported header flags {flags:#010x}")));
        }
        let _mode: [u8; 4] = h.take()?;
        let _mtime_low: [u8; 4] = h.take()?;
        if version >= 0x0940 {
            let _mtime_high: [u8; 4] = h.take()?;
        }
        let [name_len] = h.take()?;
        for _ in 0..name_len {
            let _: [u8; 1] = h.take()?;
        }
        let expected = if flags & F_H_CRC32 != 0 {
            libdeflater::crc32(&h.bytes)
        } else {
            libdeflater::adler32(&h.bytes)
        };
        if self.u32("header checksum")? != expected {
            return Err(corrupt("header checksum mismatch"));
        }
        Ok(flags)
    }

    fn block(&mut self, flags: u32, dst_len: u32) -> io::Result<()> {
        let dst_len = usize::try_from(dst_len).map_err(io::Error::other)?;
        if dst_len > MAX_BLOCK {
            return Err(corrupt("block larger than 64 MiB"));
        }
        let src_len = usize::try_from(self.u32("block header")?).map_err(io::Error::other)?;
        if src_len == 0 || src_len > dst_len {
            return Err(corrupt("bad compressed block size"));
        }
        let compressed = src_len < dst_len;
        let sum_d_adler = self.opt_u32(flags & F_ADLER32_D != 0)?;
        let sum_d_crc = self.opt_u32(flags & F_CRC32_D != 0)?;
        let sum_c_adler = self.opt_u32(compressed && flags & F_ADLER32_C != 0)?;
        let sum_c_crc = self.opt_u32(compressed && flags & F_CRC32_C != 0)?;

        self.src.clear();
        let got = (&mut self.r)
            .take(u64::try_from(src_len).map_err(io::Error::other)?)
            .read_to_end(&mut self.src)?;
        if got != src_len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated block",
            ));
        }
        check(
            sum_c_adler,
            || libdeflater::adler32(&self.src),
            "compressed",
        )?;
        check(sum_c_crc, || libdeflater::crc32(&self.src), "compressed")?;
        if compressed {
            self.out.resize(dst_len, 0);
            let n = lzokay::decompress::decompress(&self.src, &mut self.out)
                .map_err(|e| corrupt(format!("bad block: {e}")))?;
            if n != dst_len {
                return Err(corrupt("block decompressed to the wrong size"));
            }
        } else {
            std::mem::swap(&mut self.out, &mut self.src);
        }
        check(
            sum_d_adler,
            || libdeflater::adler32(&self.out),
            "decompressed",
        )?;
        check(sum_d_crc, || libdeflater::crc32(&self.out), "decompressed")?;
        Ok(())
    }

    fn u32(&mut self, what: &str) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.r.read_exact(&mut b).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(e.kind(), format!("truncated {what}"))
            } else {
                e
            }
        })?;
        Ok(u32::from_be_bytes(b))
    }

    fn opt_u32(&mut self, present: bool) -> io::Result<Option<u32>> {
        present.then(|| self.u32("block checksum")).transpose()
    }
}

fn check(expected: Option<u32>, actual: impl FnOnce() -> u32, what: &str) -> io::Result<()> {
    match expected {
        Some(sum) if sum != actual() => Err(corrupt(format!("checksum of {what} block mismatch"))),
        _ => Ok(()),
    }
}

/// Reads header fields and keeps their bytes for the header checksum.
struct HeaderReader<'a, R> {
    r: &'a mut R,
    bytes: Vec<u8>,
}

impl<R: Read> HeaderReader<'_, R> {
    fn take<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(e.kind(), "truncated header")
            } else {
                e
            }
        })?;
        self.bytes.extend_from_slice(&b);
        Ok(b)
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pos == self.out.len() {
            self.refill()?;
        }
        let avail = &self.out[self.pos..];
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.pos += n;
        Ok(n)
    }
}
