//! LZ4: the legacy frame (what `lz4 -l` writes and the kernel reads) around
//! lz4_flex blocks, and a decoder for legacy and standard frames.

use std::hash::Hasher;
use std::io::{self, BufRead, Read};

use twox_hash::XxHash32;

use super::decode::{Framed, corrupt, read_exact_or_eof, read_u32_le, read_upto, skip_exact};

const LEGACY_MAGIC: u32 = 0x184C_2102;
const FRAME_MAGIC: u32 = 0x184D_2204;
const SKIPPABLE_MAGIC: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;
/// Uncompressed bytes per legacy block: fixed by the format, and the kernel's
/// output buffer size.
const LEGACY_BLOCK: usize = 8 << 20;
/// The history a linked block may refer to.
const WINDOW: usize = 64 << 10;

/// The worst-case compressed size of an LZ4 block (`LZ4_compressBound`).
const fn compress_bound(n: usize) -> usize {
    n + n / 255 + 16
}

/// One legacy frame holding `data`.
pub(super) fn encode_legacy(data: &[u8]) -> Vec<u8> {
    let mut w = LegacyWriter::new();
    w.write_all(data);
    w.finish()
}

/// A legacy frame built from a stream of writes, one 8 MiB block at a time.
#[derive(Debug)]
pub(super) struct LegacyWriter {
    pending: Vec<u8>,
    out: Vec<u8>,
}

impl LegacyWriter {
    pub fn new() -> Self {
        LegacyWriter {
            pending: Vec::new(),
            out: LEGACY_MAGIC.to_le_bytes().to_vec(),
        }
    }

    pub fn write_all(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = LEGACY_BLOCK - self.pending.len();
            let (head, rest) = data.split_at(room.min(data.len()));
            if self.pending.is_empty() && head.len() == LEGACY_BLOCK {
                self.block(head);
            } else {
                self.pending.extend_from_slice(head);
                if self.pending.len() == LEGACY_BLOCK {
                    let block = std::mem::take(&mut self.pending);
                    self.block(&block);
                }
            }
            data = rest;
        }
    }

    fn block(&mut self, block: &[u8]) {
        let packed = lz4_flex::block::compress(block);
        // A block is at most compress_bound(8 MiB) < 2^32 bytes.
        let len = u32::try_from(packed.len()).unwrap_or(u32::MAX);
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(&packed);
    }

    /// The bytes produced so far, handed over and forgotten.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    pub fn finish(mut self) -> Vec<u8> {
        if !self.pending.is_empty() {
            let block = std::mem::take(&mut self.pending);
            self.block(&block);
        }
        self.out
    }
}

#[derive(Debug)]
enum State {
    /// Before a magic number, or at the end of the input.
    Magic,
    Legacy,
    Frame(FrameInfo),
}

#[derive(Debug, Clone, Copy)]
struct FrameInfo {
    linked: bool,
    block_checksums: bool,
    content_checksum: bool,
    content_size: Option<u64>,
    max_block: usize,
}

/// Decodes any sequence of legacy frames, standard frames and skippable
/// frames. Memory: one block in and out (8 MiB at most) plus 64 KiB history.
#[derive(Debug)]
pub(super) struct Decoder<R> {
    r: R,
    state: State,
    frames: u64,
    src: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    history: Vec<u8>,
    content_hash: XxHash32,
    content_len: u64,
    /// Bytes after the last frame that start none, once seen.
    trailing: Option<u64>,
}

impl<R: BufRead> Decoder<R> {
    pub fn new(r: R) -> Self {
        Decoder {
            r,
            state: State::Magic,
            frames: 0,
            src: Vec::new(),
            out: Vec::new(),
            pos: 0,
            history: Vec::new(),
            content_hash: XxHash32::with_seed(0),
            content_len: 0,
            trailing: None,
        }
    }

    /// Decodes the next block into `self.out`; an empty `out` means the end.
    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        loop {
            match self.state {
                State::Magic if self.trailing.is_some() => return Ok(()),
                State::Magic if self.frames > 0 => {
                    let (magic, n) = read_upto::<4, _>(&mut self.r)?;
                    if n == 0 {
                        return Ok(());
                    }
                    let magic = u32::from_le_bytes(magic);
                    if n < 4 || !is_magic(magic) {
                        self.trailing = Some(garbage(&mut self.r, n)?);
                        return Ok(());
                    }
                    self.start_frame(magic)?;
                }
                State::Magic => {
                    let Some(magic) = read_exact_or_eof::<4, _>(&mut self.r)? else {
                        return Err(corrupt("empty input"));
                    };
                    self.start_frame(u32::from_le_bytes(magic))?;
                }
                State::Legacy => {
                    let Some(word) = read_exact_or_eof::<4, _>(&mut self.r)? else {
                        // A legacy frame simply ends with the input.
                        return Ok(());
                    };
                    let len = u32::from_le_bytes(word);
                    let len_usize = usize::try_from(len).map_err(io::Error::other)?;
                    if len_usize > compress_bound(LEGACY_BLOCK) {
                        // lz4 reads a value no block can have as the next
                        // magic; anything else is trailing garbage.
                        if !is_magic(len) {
                            self.trailing = Some(garbage(&mut self.r, 4)?);
                            self.state = State::Magic;
                            return Ok(());
                        }
                        self.start_frame(len)?;
                        continue;
                    }
                    if len == 0 {
                        return Err(corrupt("empty legacy block"));
                    }
                    self.read_src(len_usize)?;
                    self.out.resize(LEGACY_BLOCK, 0);
                    let n = lz4_flex::block::decompress_into(&self.src, &mut self.out)
                        .map_err(|e| corrupt(format!("bad legacy block: {e}")))?;
                    self.out.truncate(n);
                    if n > 0 {
                        return Ok(());
                    }
                }
                State::Frame(info) => {
                    if self.frame_block(info)? {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn start_frame(&mut self, magic: u32) -> io::Result<()> {
        self.frames += 1;
        if magic == LEGACY_MAGIC {
            self.state = State::Legacy;
        } else if magic == FRAME_MAGIC {
            let info = self.frame_header()?;
            self.history.clear();
            self.content_hash = XxHash32::with_seed(0);
            self.content_len = 0;
            self.state = State::Frame(info);
        } else if SKIPPABLE_MAGIC.contains(&magic) {
            let len = read_u32_le(&mut self.r, "skippable frame")?;
            skip_exact(&mut self.r, u64::from(len), "skippable frame")?;
            self.state = State::Magic;
        } else {
            return Err(corrupt(format!("bad magic number {magic:#010x}")));
        }
        Ok(())
    }

    fn frame_header(&mut self) -> io::Result<FrameInfo> {
        let mut desc = [0u8; 2];
        self.read_exact(&mut desc, "frame header")?;
        let [flg, bd] = desc;
        if flg >> 6 != 1 {
            return Err(corrupt("unsupported frame version"));
        }
        if flg & 0b10 != 0 || bd & 0b1000_1111 != 0 {
            return Err(corrupt("reserved frame header bits set"));
        }
        if flg & 1 != 0 {
            return Err(corrupt("frames with a dictionary id are not supported"));
        }
        let mut hashed = desc.to_vec();
        let content_size = if flg & 0b1000 != 0 {
            let mut size = [0u8; 8];
            self.read_exact(&mut size, "frame header")?;
            hashed.extend_from_slice(&size);
            Some(u64::from_le_bytes(size))
        } else {
            None
        };
        let mut hc = [0u8; 1];
        self.read_exact(&mut hc, "frame header")?;
        if hc[0] != XxHash32::oneshot(0, &hashed).to_le_bytes()[1] {
            return Err(corrupt("frame header checksum mismatch"));
        }
        let max_block = match (bd >> 4) & 0b111 {
            4 => 64 << 10,
            5 => 256 << 10,
            6 => 1 << 20,
            7 => 4 << 20,
            _ => return Err(corrupt("bad maximum block size")),
        };
        Ok(FrameInfo {
            linked: flg & 0b10_0000 == 0,
            block_checksums: flg & 0b1_0000 != 0,
            content_checksum: flg & 0b100 != 0,
            content_size,
            max_block,
        })
    }

    /// Decodes one block of a standard frame; returns whether `out` holds
    /// data (false after the end mark, or after an empty block).
    fn frame_block(&mut self, info: FrameInfo) -> io::Result<bool> {
        let word = read_u32_le(&mut self.r, "frame")?;
        if word == 0 {
            if info.content_checksum {
                let sum = read_u32_le(&mut self.r, "frame checksum")?;
                if sum != self.content_hash.finish_32() {
                    return Err(corrupt("content checksum mismatch"));
                }
            }
            if info
                .content_size
                .is_some_and(|size| size != self.content_len)
            {
                return Err(corrupt("content size mismatch"));
            }
            self.state = State::Magic;
            return Ok(false);
        }
        let stored = word & 0x8000_0000 != 0;
        let len = usize::try_from(word & 0x7FFF_FFFF).map_err(io::Error::other)?;
        if len > info.max_block {
            return Err(corrupt("block larger than the frame's maximum"));
        }
        self.read_src(len)?;
        if info.block_checksums {
            let sum = read_u32_le(&mut self.r, "block checksum")?;
            if sum != XxHash32::oneshot(0, &self.src) {
                return Err(corrupt("block checksum mismatch"));
            }
        }
        if stored {
            std::mem::swap(&mut self.out, &mut self.src);
        } else {
            self.out.resize(info.max_block, 0);
            let dict: &[u8] = if info.linked { &self.history } else { &[] };
            let n = lz4_flex::block::decompress_into_with_dict(&self.src, &mut self.out, dict)
                .map_err(|e| corrupt(format!("bad block: {e}")))?;
            self.out.truncate(n);
        }
        self.content_hash.write(&self.out);
        self.content_len = self
            .content_len
            .checked_add(u64::try_from(self.out.len()).map_err(io::Error::other)?)
            .ok_or_else(|| corrupt("content size overflows"))?;
        if info.linked {
            let keep = WINDOW
                .saturating_sub(self.out.len())
                .min(self.history.len());
            self.history.drain(..self.history.len() - keep);
            let tail = self.out.len().saturating_sub(WINDOW);
            self.history.extend_from_slice(&self.out[tail..]);
        }
        Ok(!self.out.is_empty())
    }

    fn read_src(&mut self, len: usize) -> io::Result<()> {
        self.src.clear();
        let got = (&mut self.r)
            .take(u64::try_from(len).map_err(io::Error::other)?)
            .read_to_end(&mut self.src)?;
        if got != len {
            return Err(truncated());
        }
        Ok(())
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> io::Result<()> {
        self.r.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                corrupt(format!("truncated {what}"))
            } else {
                e
            }
        })
    }
}

fn is_magic(magic: u32) -> bool {
    magic == LEGACY_MAGIC || magic == FRAME_MAGIC || SKIPPABLE_MAGIC.contains(&magic)
}

/// Counts the garbage after the last frame: the `read` bytes of what was
/// taken for a magic number, and the rest of the input.
fn garbage<R: Read>(r: &mut R, read: usize) -> io::Result<u64> {
    let rest = io::copy(r, &mut io::sink())?;
    Ok(rest.saturating_add(u64::try_from(read).unwrap_or(u64::MAX)))
}

impl<R: BufRead> Framed for Decoder<R> {
    fn trailing(&self) -> Option<u64> {
        self.trailing
    }
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "truncated block")
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
