//! The SquashFS 4.0 reader, following the Linux kernel (`fs/squashfs`) and
//! squashfs-tools, so that it reads mksquashfs images as well as ours.
//!
//! The superblock, the inode, directory and xattr tables and the lookup
//! tables are decoded when the image is opened, each bounded by the next
//! table's start, so what they unpack to is bounded by the image's size
//! (at most 8 KiB per 3 bytes of metadata block). File contents
//! stay compressed: every regular file is a [`Blob`] that decompresses the
//! blocks a read touches, so a large image costs its metadata in memory,
//! not its unpacked size. A malformed table is an [`Error::Malformed`] from
//! [`read`]; a corrupt data block is an I/O error when it is read.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use liblzma::stream::{Action, Status, Stream};
use rootforge_common::{
    Backing, Blob, Content, Edit, Error, FileData, Inode, Meta, Replace, Result, Time, Tree,
    TreeBuilder, Xattr, display_path,
};

use crate::superblock::{MAGIC, SUPERBLOCK_SIZE, Superblock};
use crate::{EXTENDED, FORMAT, NONE32, PATH_MAX};

/// Uncompressed size of a metadata block.
const META_SIZE: usize = 8192;
/// Metadata block header bit: stored raw.
const META_RAW: u16 = 0x8000;
/// Data and fragment block size word bit: stored raw.
const BLOCK_RAW: u32 = 1 << 24;
/// An absent table.
const NONE64: u64 = u64::MAX;
/// Entries one directory header may cover, and the longest name.
const DIR_RUN: u32 = 256;
const NAME_LEN: usize = 256;
/// The kernel refuses symlinks longer than a page; this is the smallest.
const SYMLINK_MAX: u32 = 4096;
/// Memory the xz decoder may use: dictionaries are at most a block
/// (1 MiB) in images the kernel reads; this leaves room for
/// squashfs-tools' largest dictionary option and nothing hostile.
const XZ_MEMLIMIT: u64 = 64 << 20;
/// Decompressed fragment blocks kept per image, so files sharing one are
/// not each decompressing it.
const FRAGMENT_CACHE: usize = 8;
/// Xattr bytes (names and values) the tree may hold beyond 4 per image
/// byte: shared xattr sets are copied into every inode that uses them.
const XATTR_BUDGET: u64 = 64 << 20;

fn malformed(offset: u64, reason: impl Into<String>) -> Error {
    Error::malformed(FORMAT, offset, reason)
}

/// Whether `data` starts with a SquashFS 4.0 superblock.
pub fn is_squashfs(data: &[u8]) -> bool {
    data.len() >= SUPERBLOCK_SIZE
        && le32(data, 0) == MAGIC
        && le16(data, 28) == 4
        && le16(data, 30) == 0
}

fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// The compressors of the superblock's ids that the kernel reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Gzip,
    Lzo,
    Xz,
    Lz4,
    Zstd,
}

impl Codec {
    fn from_id(id: u16) -> Result<Codec> {
        Ok(match id {
            1 => Codec::Gzip,
            3 => Codec::Lzo,
            4 => Codec::Xz,
            5 => Codec::Lz4,
            6 => Codec::Zstd,
            2 => {
                return Err(malformed(
                    20,
                    "lzma compression (id 2) is not supported; the kernel does not read it either",
                ));
            }
            _ => return Err(malformed(20, format!("unknown compressor id {id}"))),
        })
    }

    /// Decompresses `src` into `dst`, returning the length; output that
    /// does not fit `dst` is an error.
    fn decompress(self, src: &[u8], dst: &mut [u8]) -> Result<usize, String> {
        match self {
            Codec::Gzip => libdeflater::Decompressor::new()
                .zlib_decompress(src, dst)
                .map_err(|e| e.to_string()),
            Codec::Lzo => lzokay::decompress::decompress(src, dst).map_err(|e| e.to_string()),
            Codec::Lz4 => lz4_flex::block::decompress_into(src, dst).map_err(|e| e.to_string()),
            Codec::Zstd => zstd::bulk::decompress_to_buffer(src, dst).map_err(|e| e.to_string()),
            Codec::Xz => xz_decompress(src, dst),
        }
    }
}

fn xz_decompress(src: &[u8], dst: &mut [u8]) -> Result<usize, String> {
    let mut stream = Stream::new_stream_decoder(XZ_MEMLIMIT, 0).map_err(|e| e.to_string())?;
    loop {
        let (read, written) = (stream.total_in(), stream.total_out());
        let (Ok(i), Ok(o)) = (usize::try_from(read), usize::try_from(written)) else {
            return Err("xz stream position overflow".to_owned());
        };
        let (Some(input), Some(output)) = (src.get(i..), dst.get_mut(o..)) else {
            return Err("xz decoder overran its buffers".to_owned());
        };
        match stream.process(input, output, Action::Finish) {
            Ok(Status::StreamEnd) => {
                return usize::try_from(stream.total_out()).map_err(|e| e.to_string());
            }
            Ok(_) if (stream.total_in(), stream.total_out()) == (read, written) => {
                return Err(if output.is_empty() {
                    "more data than the block holds".to_owned()
                } else {
                    "truncated xz stream".to_owned()
                });
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The image bytes up to `bytes_used`, and how to unpack its blocks.
struct Image {
    backing: Backing,
    end: u64,
    codec: Codec,
    block_size: u32,
}

impl Image {
    /// Calls `f` with `len` bytes at `at`, borrowed when the image is in
    /// memory.
    fn with_bytes<R>(&self, at: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> io::Result<R> {
        let past_end = || {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{len} bytes at {at} run past the image's end"),
            )
        };
        let stop = at
            .checked_add(len as u64)
            .filter(|&stop| stop <= self.end)
            .ok_or_else(past_end)?;
        if let Some(all) = self.backing.as_slice() {
            let (Ok(start), Ok(stop)) = (usize::try_from(at), usize::try_from(stop)) else {
                return Err(past_end());
            };
            return all.get(start..stop).map(f).ok_or_else(past_end);
        }
        let mut buf = vec![0u8; len];
        self.backing.read_at(at, &mut buf)?;
        Ok(f(&buf))
    }

    fn bytes(&self, at: u64, len: usize, what: &str) -> Result<Vec<u8>> {
        self.with_bytes(at, len, <[u8]>::to_vec)
            .map_err(|e| malformed(at, format!("{what}: {e}")))
    }

    /// The metadata block at `at`, which must end by `limit`, and where the
    /// next one starts.
    fn meta_block(&self, at: u64, limit: u64, what: &str) -> Result<(Vec<u8>, u64)> {
        let header = self.bytes(at, 2, what)?;
        let word = le16(&header, 0);
        let len = usize::from(word & !META_RAW);
        let next = (at + 2)
            .checked_add(len as u64)
            .filter(|&next| next <= limit)
            .ok_or_else(|| {
                malformed(
                    at,
                    format!("{what}: a {len}-byte metadata block runs past its table"),
                )
            })?;
        if len == 0 || len > META_SIZE {
            return Err(malformed(
                at,
                format!("{what}: metadata block of {len} bytes (1 to {META_SIZE} allowed)"),
            ));
        }
        let data = if word & META_RAW != 0 {
            self.bytes(at + 2, len, what)?
        } else {
            let mut out = vec![0u8; META_SIZE];
            let n = self
                .with_bytes(at + 2, len, |src| self.codec.decompress(src, &mut out))
                .map_err(|e| malformed(at, format!("{what}: {e}")))?
                .map_err(|e| malformed(at, format!("{what}: bad metadata block: {e}")))?;
            out.truncate(n);
            out
        };
        Ok((data, next))
    }

    /// The metadata blocks from `start` to exactly `end`, unpacked.
    fn table(&self, name: &'static str, start: u64, end: u64) -> Result<Table> {
        let mut table = Table {
            name,
            data: Vec::new(),
            blocks: Vec::new(),
        };
        let mut at = start;
        while at < end {
            let (data, next) = self.meta_block(at, end, name)?;
            table.blocks.push(MetaBlock {
                rel: at - start,
                data_at: table.data.len(),
                image_at: at,
            });
            table.data.extend_from_slice(&data);
            at = next;
        }
        Ok(table)
    }

    /// A lookup table of `count` entries of `size` bytes: the entries sit
    /// in metadata blocks before the array of their positions at `index`.
    /// Returns the entries and where their first block starts.
    fn lookup(&self, what: &str, index: u64, count: u64, size: u64) -> Result<(Vec<u8>, u64)> {
        let total = count
            .checked_mul(size)
            .ok_or_else(|| malformed(index, format!("{what}: {count} entries overflow")))?;
        let blocks = total.div_ceil(META_SIZE as u64);
        // The position array must lie in the image, which bounds `total`.
        let index_len = usize::try_from(blocks.saturating_mul(8)).unwrap_or(usize::MAX);
        let positions = self.bytes(index, index_len, &format!("{what} index"))?;
        let mut out = Vec::new();
        let first = le64(&positions, 0);
        // Blocks in order and apart, as written: no block is unpacked
        // twice, so the entries are bounded by the image, not the count.
        let mut free = first;
        for pos in positions.chunks_exact(8) {
            let at = le64(pos, 0);
            if at < free {
                return Err(malformed(
                    index,
                    format!("{what}: block at {at} overlaps or precedes the one before"),
                ));
            }
            let (data, next) = self.meta_block(at, index, what)?;
            free = next;
            let want = usize::try_from((total - out.len() as u64).min(META_SIZE as u64))
                .unwrap_or(META_SIZE);
            let got = data.get(..want).ok_or_else(|| {
                malformed(
                    at,
                    format!("{what}: block holds {} bytes, {want} expected", data.len()),
                )
            })?;
            out.extend_from_slice(got);
        }
        Ok((out, if positions.is_empty() { index } else { first }))
    }
}

/// A table of metadata blocks, unpacked into one buffer (records may
/// straddle blocks), with where each block came from.
struct Table {
    name: &'static str,
    data: Vec<u8>,
    blocks: Vec<MetaBlock>,
}

struct MetaBlock {
    /// Offset of the block from the table's start, as references give it.
    rel: u64,
    /// Where its bytes start in `data`.
    data_at: usize,
    /// Where it sits in the image, for messages.
    image_at: u64,
}

impl Table {
    /// Where a reference (block offset, offset inside the unpacked block)
    /// points in `data`.
    fn resolve(&self, block: u64, offset: u64) -> Result<usize> {
        let bad = || {
            malformed(
                self.blocks.first().map_or(0, |b| b.image_at),
                format!(
                    "reference to block {block} offset {offset} is outside the {}",
                    self.name
                ),
            )
        };
        let i = self
            .blocks
            .binary_search_by_key(&block, |b| b.rel)
            .map_err(|_| bad())?;
        let start = self.blocks[i].data_at;
        let stop = self
            .blocks
            .get(i + 1)
            .map_or(self.data.len(), |b| b.data_at);
        usize::try_from(offset)
            .ok()
            .filter(|&o| o < stop - start)
            .map(|o| start + o)
            .ok_or_else(bad)
    }

    fn resolve_ref(&self, reference: u64) -> Result<usize> {
        self.resolve(reference >> 16, reference & 0xffff)
    }

    /// The image offset of the metadata block holding `pos`.
    fn image_offset(&self, pos: usize) -> u64 {
        let i = self.blocks.partition_point(|b| b.data_at <= pos);
        self.blocks
            .get(i.saturating_sub(1))
            .map_or(0, |b| b.image_at)
    }

    fn cursor(&self, pos: usize, what: &'static str) -> Cursor<'_> {
        Cursor {
            table: self,
            pos,
            what,
        }
    }
}

/// Reads a record from a [`Table`].
struct Cursor<'a> {
    table: &'a Table,
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn error(&self, reason: impl std::fmt::Display) -> Error {
        malformed(
            self.table.image_offset(self.pos),
            format!("{} in the {}: {reason}", self.what, self.table.name),
        )
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let data: &'a [u8] = &self.table.data;
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|stop| data.get(self.pos..stop))
            .ok_or_else(|| self.error(format_args!("{n} bytes run past the table's end")))?;
        self.pos += n;
        Ok(bytes)
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(le16(self.take(2)?, 0))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(le32(self.take(4)?, 0))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(le64(self.take(8)?, 0))
    }
}

/// The superblock at the start of `b`, checked for what the reader relies on.
fn parse_superblock(b: &[u8], image_len: u64) -> Result<Superblock> {
    let sb =
        Superblock::decode(b).ok_or_else(|| malformed(0, "no squashfs superblock (magic hsqs)"))?;
    let (major, minor) = sb.version;
    if (major, minor) != (4, 0) {
        return Err(malformed(
            28,
            format!("version {major}.{minor}; only 4.0 is read"),
        ));
    }
    let bs = sb.block_size;
    if !bs.is_power_of_two() || !(4096..=1 << 20).contains(&bs) {
        return Err(malformed(
            12,
            format!("block size {bs} (a power of two from 4 KiB to 1 MiB expected)"),
        ));
    }
    let log = sb.block_log;
    if u32::from(log) != bs.trailing_zeros() {
        return Err(malformed(
            22,
            format!("block log {log} does not match block size {bs}"),
        ));
    }
    if sb.bytes_used < SUPERBLOCK_SIZE as u64 || sb.bytes_used > image_len {
        return Err(malformed(
            40,
            format!(
                "{} bytes used, but the image holds {image_len}",
                sb.bytes_used
            ),
        ));
    }
    if sb.id_count == 0 {
        return Err(malformed(26, "no uid/gid table entries"));
    }
    if sb.root & 0xffff >= META_SIZE as u64 {
        return Err(malformed(32, "root inode offset past its metadata block"));
    }
    if !(sb.inode_table < sb.dir_table && sb.dir_table <= sb.bytes_used) {
        return Err(malformed(
            64,
            format!(
                "inode table at {} and directory table at {} are out of order \
                     or past the end",
                sb.inode_table, sb.dir_table
            ),
        ));
    }
    Ok(sb)
}

/// A fragment table entry.
#[derive(Clone, Copy)]
struct Fragment {
    start: u64,
    word: u32,
}

/// What the files of one image share.
struct Shared {
    image: Image,
    fragments: Vec<Fragment>,
    cache: Mutex<Vec<(u32, Arc<[u8]>)>>,
}

fn data_error(at: u64, reason: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("squashfs block at byte {at}: {reason}"),
    )
}

impl Shared {
    /// Fills `out` with the block stored at `at` with size word `word`; it
    /// must unpack to exactly `out.len()` bytes.
    fn block_into(&self, at: u64, word: u32, out: &mut [u8]) -> io::Result<()> {
        if word == 0 {
            out.fill(0);
            return Ok(());
        }
        let len = (word & !BLOCK_RAW) as usize;
        if word & BLOCK_RAW != 0 {
            if len != out.len() {
                return Err(data_error(
                    at,
                    format!("{len} raw bytes where {} belong", out.len()),
                ));
            }
            return self
                .image
                .with_bytes(at, len, |src| out.copy_from_slice(src));
        }
        let n = self
            .image
            .with_bytes(at, len, |src| self.image.codec.decompress(src, out))?
            .map_err(|e| data_error(at, e))?;
        if n != out.len() {
            return Err(data_error(
                at,
                format!("unpacks to {n} bytes, {} expected", out.len()),
            ));
        }
        Ok(())
    }

    /// A fragment block, unpacked.
    fn fragment(&self, index: u32) -> io::Result<Arc<[u8]>> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = cache.iter().position(|(k, _)| *k == index) {
            let hit = cache.remove(i);
            let data = hit.1.clone();
            cache.insert(0, hit);
            return Ok(data);
        }
        drop(cache);
        let frag = usize::try_from(index)
            .ok()
            .and_then(|i| self.fragments.get(i))
            .ok_or_else(|| data_error(0, format!("no fragment {index}")))?;
        let len = (frag.word & !BLOCK_RAW) as usize;
        let data: Arc<[u8]> = if frag.word & BLOCK_RAW != 0 {
            self.image.with_bytes(frag.start, len, |s| Arc::from(s))?
        } else {
            let mut out = vec![0u8; self.image.block_size as usize];
            let n = self
                .image
                .with_bytes(frag.start, len, |src| {
                    self.image.codec.decompress(src, &mut out)
                })?
                .map_err(|e| data_error(frag.start, e))?;
            out.truncate(n);
            out.into()
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(0, (index, data.clone()));
        cache.truncate(FRAGMENT_CACHE);
        Ok(data)
    }
}

/// A regular file's bytes, unpacked block by block as they are read.
struct SquashFile {
    shared: Arc<Shared>,
    size: u64,
    /// Each full block's position and size word (0: a hole).
    blocks: Box<[(u64, u32)]>,
    /// The tail's fragment and offset in it.
    fragment: Option<(u32, u32)>,
}

impl Blob for SquashFile {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = rootforge_common::read_end(offset, buf.len(), self.size)?;
        let bs = u64::from(self.shared.image.block_size);
        let mut scratch = Vec::new();
        let mut pos = offset;
        while pos < end {
            let (index, within) = (pos / bs, pos % bs);
            // All three are at most the block size.
            let (within, block_len) = (within as usize, (self.size - index * bs).min(bs) as usize);
            let n = (end - pos).min((block_len - within) as u64) as usize;
            let at = (pos - offset) as usize;
            let dst = &mut buf[at..at + n];
            match usize::try_from(index).ok().and_then(|i| self.blocks.get(i)) {
                Some(&(start, word)) if within == 0 && n == block_len => {
                    self.shared.block_into(start, word, dst)?;
                }
                Some(&(start, word)) => {
                    scratch.resize(block_len, 0);
                    self.shared.block_into(start, word, &mut scratch)?;
                    dst.copy_from_slice(&scratch[within..within + n]);
                }
                None => {
                    let (frag, frag_at) = self
                        .fragment
                        .ok_or_else(|| data_error(0, "file tail without a fragment"))?;
                    let data = self.shared.fragment(frag)?;
                    let from = (frag_at as usize).saturating_add(within);
                    let src = data.get(from..from.saturating_add(n)).ok_or_else(|| {
                        data_error(
                            self.shared
                                .fragments
                                .get(frag as usize)
                                .map_or(0, |f| f.start),
                            format!(
                                "fragment {frag} holds {} bytes, too few for a tail at {frag_at}",
                                data.len()
                            ),
                        )
                    })?;
                    dst.copy_from_slice(src);
                }
            }
            pos += n as u64;
        }
        Ok(())
    }
}

/// A directory's listing location.
#[derive(Clone, Copy)]
struct DirRef {
    block: u32,
    offset: u16,
    size: u32,
}

/// An inode as stored.
struct Raw {
    /// The basic type (1 to 7).
    basic: u16,
    meta: Meta,
    number: u32,
    xattr: Option<u32>,
    body: Body,
}

enum Body {
    Dir(DirRef),
    Other(Content),
}

/// One directory entry as stored.
struct Dirent<'a> {
    name: &'a [u8],
    /// The inode's position in the inode table's unpacked bytes.
    inode: usize,
    number: u32,
    basic: u16,
}

/// Where a non-directory inode was first placed, for its hard links.
struct FirstName<'a> {
    parent: Rc<[u8]>,
    name: &'a [u8],
    basic: u16,
}

/// The directory table's bytes already listed, by start: a listing read
/// twice (directories sharing or overlapping listings) would multiply its
/// entries.
#[derive(Default)]
struct Listed(BTreeMap<usize, usize>);

impl Listed {
    /// Whether `start..end` overlaps no earlier listing; it is now taken.
    fn claim(&mut self, start: usize, end: usize) -> bool {
        // The ranges are disjoint: only the last one starting before `end`
        // can reach past `start`.
        if self
            .0
            .range(..end)
            .next_back()
            .is_some_and(|(_, &e)| e > start)
        {
            return false;
        }
        self.0.insert(start, end);
        true
    }
}

/// `parent/name`, or `name` in the root.
fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(parent.len() + 1 + name.len());
    path.extend_from_slice(parent);
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// Everything decoded at open time.
struct Reader {
    shared: Arc<Shared>,
    inodes: Table,
    dirs: Table,
    ids: Vec<u32>,
    xattr_kv: Option<Table>,
    xattr_ids: Vec<(u64, u32)>,
    /// Xattr bytes the tree may still take.
    xattr_budget: Cell<u64>,
}

/// Reads a SquashFS 4.0 image into a tree. Regular files decompress their
/// blocks from `image` when read; nothing else of the image is kept.
///
/// As the kernel: names under one inode are hard links of it, and a
/// directory's `.`/`..` are implied, never stored. Tables must lie where the
/// superblock says, in the kernel's order; directories must form a tree
/// (a directory reached twice is an error), and paths are at most 4096
/// bytes. Images compressed with lzma (id 2), which only squashfs-tools
/// reads, are refused.
pub fn read(image: Backing) -> Result<Tree> {
    let head = {
        let mut b = vec![0u8; SUPERBLOCK_SIZE.min(usize::try_from(image.len()).unwrap_or(0))];
        image
            .read_at(0, &mut b)
            .map_err(|e| Error::io("reading the squashfs superblock", e))?;
        b
    };
    let sb = parse_superblock(&head, image.len())?;
    let image = Image {
        backing: image,
        end: sb.bytes_used,
        codec: Codec::from_id(sb.compressor)?,
        block_size: sb.block_size,
    };
    let reader = Reader::open(image, &sb)?;
    reader.walk(sb.root)
}

impl Reader {
    fn open(image: Image, sb: &Superblock) -> Result<Reader> {
        let (id_bytes, id_first) =
            image.lookup("uid/gid table", sb.id_table, u64::from(sb.id_count), 4)?;
        let ids = id_bytes.chunks_exact(4).map(|c| le32(c, 0)).collect();
        // Where each table's blocks begin: the directory table runs to the
        // first of them after it.
        let mut starts = vec![sb.id_table, id_first, sb.bytes_used];
        let mut fragments = Vec::new();
        if sb.frag_count > 0 {
            let (bytes, first) = image.lookup(
                "fragment table",
                sb.frag_table,
                u64::from(sb.frag_count),
                16,
            )?;
            for (i, e) in bytes.chunks_exact(16).enumerate() {
                let frag = Fragment {
                    start: le64(e, 0),
                    word: le32(e, 8),
                };
                let len = frag.word & !BLOCK_RAW;
                if len == 0
                    || len > sb.block_size
                    || frag.start.saturating_add(u64::from(len)) > sb.bytes_used
                {
                    return Err(malformed(
                        first,
                        format!(
                            "fragment {i}: {len} bytes at {} do not fit a block or the image",
                            frag.start
                        ),
                    ));
                }
                fragments.push(frag);
            }
            starts.extend([sb.frag_table, first]);
        }
        if sb.export_table != NONE64 {
            let first = le64(&image.bytes(sb.export_table, 8, "export table index")?, 0);
            starts.extend([sb.export_table, first]);
        }
        let mut xattr_kv = None;
        let mut xattr_ids = Vec::new();
        if sb.xattr_table != NONE64 {
            let header = image.bytes(sb.xattr_table, 16, "xattr table header")?;
            let (kv_start, count) = (le64(&header, 0), le32(&header, 8));
            let (bytes, first) =
                image.lookup("xattr id table", sb.xattr_table + 16, u64::from(count), 16)?;
            if count == 0 {
                return Err(malformed(sb.xattr_table, "an xattr table without ids"));
            }
            if kv_start > first {
                return Err(malformed(
                    sb.xattr_table,
                    format!("xattr pairs at {kv_start} start after their ids at {first}"),
                ));
            }
            xattr_kv = Some(image.table("xattr table", kv_start, first)?);
            // The size field is informational; the pairs are counted.
            xattr_ids = bytes
                .chunks_exact(16)
                .map(|e| (le64(e, 0), le32(e, 8)))
                .collect();
            starts.extend([sb.xattr_table, kv_start]);
        }
        let dir_end = starts
            .into_iter()
            .filter(|&s| s >= sb.dir_table)
            .min()
            .unwrap_or(sb.bytes_used);
        let inodes = image.table("inode table", sb.inode_table, sb.dir_table)?;
        let dirs = image.table("directory table", sb.dir_table, dir_end)?;
        let xattr_budget = image.end.saturating_mul(4).saturating_add(XATTR_BUDGET);
        Ok(Reader {
            shared: Arc::new(Shared {
                image,
                fragments,
                cache: Mutex::new(Vec::new()),
            }),
            inodes,
            dirs,
            ids,
            xattr_kv,
            xattr_ids,
            xattr_budget: Cell::new(xattr_budget),
        })
    }

    fn walk(self, root_ref: u64) -> Result<Tree> {
        let root_at = self.inodes.resolve_ref(root_ref)?;
        let root = self.inode(root_at)?;
        let Body::Dir(root_dir) = root.body else {
            return Err(malformed(32, "the root inode is not a directory"));
        };
        let mut tree = TreeBuilder::new(root.meta);
        let mut top = Inode::dir(root.meta);
        top.xattrs = self.xattrs(root.xattr)?;
        tree.insert(b"", top, Replace::Always)
            .map_err(|e| malformed(0, e.to_string()))?;
        // Inode positions already placed: directories (to refuse loops)
        // and the first name of every other inode (for hard links).
        let mut dirs_seen = HashSet::from([root_at]);
        let mut first_names: HashMap<usize, FirstName<'_>> = HashMap::new();
        let mut listed = Listed::default();
        // The kernel keys inodes by number: one number, one inode.
        let mut numbers: HashMap<u32, usize> = HashMap::from([(root.number, root_at)]);
        let mut stack: Vec<(Rc<[u8]>, DirRef)> = vec![(Rc::from(&[][..]), root_dir)];
        while let Some((path, dir)) = stack.pop() {
            let entries = self.listing(dir, &mut listed).map_err(|e| match e {
                Error::Malformed {
                    format,
                    offset,
                    reason,
                } => Error::Malformed {
                    format,
                    offset,
                    reason: format!("{}: {reason}", display_path(&path)),
                },
                e => e,
            })?;
            for e in entries {
                let offset = self.inodes.image_offset(e.inode);
                let child = join(&path, e.name);
                if child.len() > PATH_MAX {
                    return Err(malformed(
                        offset,
                        format!("a path is longer than {PATH_MAX} bytes"),
                    ));
                }
                if *numbers.entry(e.number).or_insert(e.inode) != e.inode {
                    return Err(malformed(
                        offset,
                        format!("inode number {} names two different inodes", e.number),
                    ));
                }
                let place_err = |err: Error| malformed(offset, err.to_string());
                let type_error = |basic: u16| {
                    malformed(
                        offset,
                        format!(
                            "directory entry of type {} for an inode of type {basic}",
                            e.basic
                        ),
                    )
                };
                if let Some(first) = first_names.get(&e.inode) {
                    if first.basic != e.basic {
                        return Err(type_error(first.basic));
                    }
                    tree.hard_link(&child, &join(&first.parent, first.name))
                        .map_err(place_err)?;
                    continue;
                }
                let raw = self.inode(e.inode)?;
                if raw.basic != e.basic {
                    return Err(type_error(raw.basic));
                }
                let xattrs = self.xattrs(raw.xattr)?;
                match raw.body {
                    Body::Dir(listing) => {
                        if !dirs_seen.insert(e.inode) {
                            return Err(malformed(
                                offset,
                                format!(
                                    "{}: a directory is reached twice (a loop or a linked directory)",
                                    display_path(&child)
                                ),
                            ));
                        }
                        let mut inode = Inode::dir(raw.meta);
                        inode.xattrs = xattrs;
                        tree.insert(&child, inode, Replace::Always)
                            .map_err(place_err)?;
                        stack.push((child.into(), listing));
                    }
                    Body::Other(content) => {
                        let mut inode = Inode::new(raw.meta, content);
                        inode.xattrs = xattrs;
                        tree.insert(&child, inode, Replace::Always)
                            .map_err(place_err)?;
                        first_names.insert(
                            e.inode,
                            FirstName {
                                parent: path.clone(),
                                name: e.name,
                                basic: raw.basic,
                            },
                        );
                    }
                }
            }
        }
        Ok(tree.finish())
    }

    /// A directory's entries, with their names checked.
    fn listing(&self, dir: DirRef, listed: &mut Listed) -> Result<Vec<Dirent<'_>>> {
        // The size counts the "." and ".." the kernel synthesises.
        let Some(len) = dir.size.checked_sub(3).filter(|&l| l > 0) else {
            return Ok(Vec::new());
        };
        let start = self
            .dirs
            .resolve(u64::from(dir.block), u64::from(dir.offset))?;
        let mut c = self.dirs.cursor(start, "directory listing");
        let end = start
            .checked_add(len as usize)
            .filter(|&end| end <= self.dirs.data.len())
            .ok_or_else(|| c.error(format_args!("{len} bytes run past the table's end")))?;
        if !listed.claim(start, end) {
            return Err(c.error("it overlaps another directory's listing"));
        }
        let mut out = Vec::new();
        let mut names = HashSet::new();
        while c.pos < end {
            let count = c.u32()?;
            if count >= DIR_RUN {
                return Err(c.error(format_args!("a header of {} entries", u64::from(count) + 1)));
            }
            let (block, base) = (c.u32()?, c.u32()?);
            for _ in 0..=count {
                if c.pos >= end {
                    return Err(c.error("a header counts more entries than the listing holds"));
                }
                let offset = c.u16()?;
                // The delta is a signed 16-bit number.
                let delta = i64::from(c.u16()? as i16);
                let basic = c.u16()?;
                let name_len = usize::from(c.u16()?) + 1;
                if name_len > NAME_LEN {
                    return Err(c.error(format_args!("a name of {name_len} bytes")));
                }
                let name = c.take(name_len)?;
                if name == b"." || name == b".." || name.iter().any(|&b| b == b'/' || b == 0) {
                    return Err(c.error(format_args!(
                        "the name {:?} cannot be a path component",
                        String::from_utf8_lossy(name)
                    )));
                }
                if !names.insert(name) {
                    return Err(c.error(format_args!(
                        "the name {:?} appears twice",
                        String::from_utf8_lossy(name)
                    )));
                }
                let number = u32::try_from(i64::from(base) + delta)
                    .map_err(|_| c.error("an inode number out of range"))?;
                out.push(Dirent {
                    name,
                    inode: self.inodes.resolve(u64::from(block), u64::from(offset))?,
                    number,
                    basic,
                });
            }
        }
        if c.pos != end {
            return Err(c.error("the last entry runs past the listing's size"));
        }
        Ok(out)
    }

    /// The inode at `pos` of the inode table.
    fn inode(&self, pos: usize) -> Result<Raw> {
        let mut c = self.inodes.cursor(pos, "inode");
        let ty = c.u16()?;
        let perm = c.u16()?;
        let uid = c.u16()?;
        let gid = c.u16()?;
        let (uid, gid) = (self.id(&c, uid)?, self.id(&c, gid)?);
        let mtime = c.u32()?;
        let number = c.u32()?;
        let basic = match ty {
            1..=7 => ty,
            8..=14 => ty - EXTENDED,
            _ => return Err(c.error(format_args!("unknown inode type {ty}"))),
        };
        let extended = ty > EXTENDED;
        let mut xattr = None;
        let body = match basic {
            1 => {
                let dir = if extended {
                    let _nlink = c.u32()?;
                    let size = c.u32()?;
                    let block = c.u32()?;
                    let _parent = c.u32()?;
                    let index_count = c.u16()?;
                    let offset = c.u16()?;
                    xattr = Some(c.u32()?);
                    // The index only speeds up the kernel's lookups.
                    for _ in 0..index_count {
                        c.take(8)?;
                        let name_len = usize::try_from(c.u32()?)
                            .ok()
                            .and_then(|n| n.checked_add(1))
                            .filter(|&n| n <= NAME_LEN)
                            .ok_or_else(|| c.error("a directory index name is too long"))?;
                        c.take(name_len)?;
                    }
                    DirRef {
                        block,
                        offset,
                        size,
                    }
                } else {
                    let block = c.u32()?;
                    let _nlink = c.u32()?;
                    let size = u32::from(c.u16()?);
                    let offset = c.u16()?;
                    let _parent = c.u32()?;
                    DirRef {
                        block,
                        offset,
                        size,
                    }
                };
                if u64::from(dir.offset) >= META_SIZE as u64 {
                    return Err(c.error("a listing offset past its metadata block"));
                }
                Body::Dir(dir)
            }
            2 => {
                let (start, size, fragment, offset) = if extended {
                    let start = c.u64()?;
                    let size = c.u64()?;
                    let _sparse = c.u64()?;
                    let _nlink = c.u32()?;
                    let fragment = c.u32()?;
                    let offset = c.u32()?;
                    xattr = Some(c.u32()?);
                    (start, size, fragment, offset)
                } else {
                    let start = u64::from(c.u32()?);
                    let fragment = c.u32()?;
                    let offset = c.u32()?;
                    let size = u64::from(c.u32()?);
                    (start, size, fragment, offset)
                };
                Body::Other(self.file(&mut c, start, size, fragment, offset)?)
            }
            3 => {
                let _nlink = c.u32()?;
                let len = c.u32()?;
                if len > SYMLINK_MAX {
                    return Err(c.error(format_args!("a symlink target of {len} bytes")));
                }
                let target = c.take(len as usize)?.into();
                Body::Other(Content::Symlink(target))
            }
            4 | 5 => {
                let _nlink = c.u32()?;
                // Linux's new_decode_dev.
                let dev = c.u32()?;
                let (major, minor) = (
                    (dev & 0xf_ff00) >> 8,
                    (dev & 0xff) | ((dev >> 12) & 0xf_ff00),
                );
                Body::Other(if basic == 4 {
                    Content::BlockDev { major, minor }
                } else {
                    Content::CharDev { major, minor }
                })
            }
            _ => {
                let _nlink = c.u32()?;
                Body::Other(if basic == 6 {
                    Content::Fifo
                } else {
                    Content::Socket
                })
            }
        };
        if extended && basic >= 3 {
            xattr = Some(c.u32()?);
        }
        Ok(Raw {
            basic,
            meta: Meta::new(perm, uid, gid, Time::from_secs(i64::from(mtime))),
            number,
            xattr: xattr.filter(|&x| x != NONE32),
            body,
        })
    }

    fn id(&self, c: &Cursor<'_>, index: u16) -> Result<u32> {
        self.ids
            .get(usize::from(index))
            .copied()
            .ok_or_else(|| c.error(format_args!("uid/gid index {index} past the id table")))
    }

    /// A regular file's contents: its block list follows the inode.
    fn file(
        &self,
        c: &mut Cursor<'_>,
        start: u64,
        size: u64,
        fragment: u32,
        offset: u32,
    ) -> Result<Content> {
        let bs = u64::from(self.shared.image.block_size);
        let tail = size % bs;
        let fragment = (fragment != NONE32 && tail > 0).then_some((fragment, offset));
        let count = if fragment.is_some() {
            size / bs
        } else {
            size.div_ceil(bs)
        };
        // The list is in the inode table, which bounds the count.
        let words = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(4))
            .map(|n| c.take(n))
            .ok_or_else(|| c.error(format_args!("a file of {size} bytes")))??;
        let mut blocks = Vec::with_capacity(words.len() / 4);
        let mut at = start;
        for w in words.chunks_exact(4) {
            let word = le32(w, 0);
            let len = word & !BLOCK_RAW;
            if len > self.shared.image.block_size {
                return Err(c.error(format_args!("a data block of {len} bytes")));
            }
            blocks.push((at, word));
            at = at
                .checked_add(u64::from(len))
                .filter(|&a| a <= self.shared.image.end)
                .ok_or_else(|| c.error("file data past the image's end"))?;
        }
        if let Some((index, offset)) = fragment {
            let known = usize::try_from(index)
                .ok()
                .is_some_and(|i| i < self.shared.fragments.len());
            if !known || u64::from(offset).saturating_add(tail) > bs {
                return Err(c.error(format_args!(
                    "a {tail}-byte tail at offset {offset} of fragment {index}, \
                     of {} fragments",
                    self.shared.fragments.len()
                )));
            }
        }
        if size == 0 {
            return Ok(Content::File(FileData::empty()));
        }
        let blob: Backing = Arc::new(SquashFile {
            shared: self.shared.clone(),
            size,
            blocks: blocks.into(),
            fragment,
        });
        FileData::range(blob, 0, size)
            .map(Content::File)
            .ok_or_else(|| c.error("file size overflow"))
    }

    /// An inode's xattrs, sorted by name.
    fn xattrs(&self, id: Option<u32>) -> Result<Vec<Xattr>> {
        let Some(id) = id else {
            return Ok(Vec::new());
        };
        let (Some(kv), Some(&(reference, count))) = (
            self.xattr_kv.as_ref(),
            usize::try_from(id).ok().and_then(|i| self.xattr_ids.get(i)),
        ) else {
            return Err(malformed(
                0,
                format!(
                    "xattr id {id}, of {} in the xattr id table",
                    self.xattr_ids.len()
                ),
            ));
        };
        let mut c = kv.cursor(kv.resolve_ref(reference)?, "xattr");
        let mut out: Vec<Xattr> = Vec::new();
        for _ in 0..count {
            let ty = c.u16()?;
            let prefix: &[u8] = match ty & !0x100 {
                0 => b"user.",
                1 => b"trusted.",
                2 => b"security.",
                _ => return Err(c.error(format_args!("unknown xattr type {ty:#x}"))),
            };
            let name_len = usize::from(c.u16()?);
            let mut name = prefix.to_vec();
            name.extend_from_slice(c.take(name_len)?);
            let size = c.u32()?;
            let value = if ty & 0x100 != 0 {
                // Out of line: the value is a reference to the real one.
                if size != 8 {
                    return Err(c.error(format_args!("an out-of-line value of {size} bytes")));
                }
                let mut v = kv.cursor(kv.resolve_ref(c.u64()?)?, "xattr value");
                let len = v.u32()? as usize;
                v.take(len)?
            } else {
                c.take(size as usize)?
            };
            let cost = (name.len() as u64).saturating_add(value.len() as u64);
            let left = self.xattr_budget.get().checked_sub(cost);
            self.xattr_budget
                .set(left.ok_or_else(|| c.error("more xattr bytes than the image could hold"))?);
            out.push(Xattr {
                name: name.into(),
                value: value.into(),
            });
        }
        out.sort_unstable();
        if out.windows(2).any(|w| w[0].name == w[1].name) {
            return Err(c.error("an xattr name appears twice"));
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
