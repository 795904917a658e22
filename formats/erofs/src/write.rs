//! The encoder: the plan (inode order, xattrs, inode forms, directories,
//! every check), then the data area, then the metadata it points into.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use rootforge_common::bytes::{RecordWriter, put_at};
use rootforge_common::{
    Content, Encoder, Error, FileData, ImagePlan, Inode, Kind, Report, Result, Sink, Time, View,
    display_path,
};
use sha2::{Digest, Sha256};

use crate::comp::{Comp, Compressor, ZSTD_WINDOW_LOG};
use crate::records::{
    COMPACT_SIZE, DeflateCfgs, Dirent, DiskInode, EROFS_FEATURE_COMPAT_MTIME,
    EROFS_FEATURE_COMPAT_SB_CHKSUM, EROFS_FEATURE_INCOMPAT_COMPR_CFGS,
    EROFS_FEATURE_INCOMPAT_ZERO_PADDING, EROFS_FT_BLKDEV, EROFS_FT_CHRDEV, EROFS_FT_DIR,
    EROFS_FT_FIFO, EROFS_FT_REG_FILE, EROFS_FT_SOCK, EROFS_FT_SYMLINK, EROFS_I_DATALAYOUT_BIT,
    EROFS_INODE_COMPRESSED_COMPACT, EROFS_INODE_COMPRESSED_FULL, EROFS_INODE_FLAT_INLINE,
    EROFS_INODE_FLAT_PLAIN, EROFS_INODE_LAYOUT_COMPACT, EROFS_INODE_LAYOUT_EXTENDED,
    EROFS_SUPER_MAGIC_V1, EROFS_SUPER_OFFSET, EXTENDED_SIZE, Lz4Cfgs, MapHeader, Record,
    SuperBlock, XattrIbodyHeader, Z_EROFS_ADVISE_BIG_PCLUSTER_1, Z_EROFS_ADVISE_BIG_PCLUSTER_2,
    Z_EROFS_ADVISE_COMPACTED_2B, Z_EROFS_LI_D0_CBLKCNT, ZstdCfgs,
};
use crate::xattr::{entry, split_name};
use crate::zmap::{self, Lcluster};
use crate::{FORMAT, NAME_MAX, SYMLINK_MAX, limit, overflow};

/// Files are cut into segments of this size, compressed independently (so
/// one large file keeps every core busy); a multiple of any lcluster.
const SEGMENT: u64 = 4 << 20;
/// The longest logical extent of one pcluster: zstd's window in the kernel
/// (1 MiB), far below `Z_EROFS_PCLUSTER_MAX_DSIZE` and the 2047 lclusters
/// a `delta[0]` counts.
const MAX_EXTENT: usize = 1 << 20;
/// The largest pcluster the kernel reads (`Z_EROFS_PCLUSTER_MAX_SIZE`).
const PCLUSTER_MAX: u32 = 1 << 20;
/// Input bytes compressed at once, in parallel, before they are written.
const WINDOW: u64 = 32 << 20;
/// `EROFS_MAX_SHARED_XATTRS`: shared xattrs one inode may refer to.
const MAX_SHARED: usize = 128;
/// The size of the xattr body `i_xattr_icount` can describe.
const XATTR_BODY_MAX: usize = XattrIbodyHeader::SIZE + 4 * (u16::MAX as usize - 1);

/// Writes EROFS images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErofsEncoder {
    /// The compressor of regular files.
    pub comp: Comp,
    /// The compression level; `None` is the compressor's default.
    pub level: Option<u32>,
    /// The block size, a power of two from 512 to 65536 (Linux mounts
    /// block sizes up to its page size).
    pub block_size: u32,
    /// The largest pcluster in bytes (mkfs.erofs `-C`), a multiple of the
    /// block size up to 1 MiB; `None` is one block.
    pub pcluster_size: Option<u32>,
    /// The volume UUID; `None` derives it from the image's contents.
    pub uuid: Option<[u8; 16]>,
    /// The build time (mkfs.erofs `-T`), which compact inodes take as their
    /// mtime; `None` is the most common mtime of the tree, so that most
    /// inodes can be compact.
    pub build_time: Option<Time>,
}

impl Default for ErofsEncoder {
    fn default() -> Self {
        ErofsEncoder {
            comp: Comp::None,
            level: None,
            block_size: 4096,
            pcluster_size: None,
            uuid: None,
            build_time: None,
        }
    }
}

impl ErofsEncoder {
    /// An encoder with the compressor's defaults.
    pub fn new(comp: Comp) -> Self {
        ErofsEncoder {
            comp,
            ..ErofsEncoder::default()
        }
    }
}

impl Encoder for ErofsEncoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn plan<'v>(&'v self, view: View<'v>) -> Result<Box<dyn ImagePlan + 'v>> {
        Ok(Box::new(plan(self, view)?))
    }
}

fn option_error(what: String) -> Error {
    Error::Unsupported {
        path: "/".into(),
        format: FORMAT,
        what,
    }
}

/// One inode of the image, in metadata order.
struct Node<'v> {
    inode: &'v Inode,
    /// The first name it was reached by.
    path: Box<[u8]>,
    nlink: u32,
    /// The xattr body (`erofs_xattr_ibody_header`, shared ids, entries);
    /// empty without xattrs.
    xattrs: Vec<u8>,
    extended: bool,
    /// A directory's entries, `.` and `..` included, sorted by name, as
    /// (name, node index).
    entries: Vec<(&'v [u8], usize)>,
    /// A directory's entries per block.
    dir_blocks: Vec<usize>,
    /// The size of the data (a directory's, a symlink's target, a file's).
    size: u64,
}

impl Node<'_> {
    fn head(&self) -> u64 {
        let isize = if self.extended {
            EXTENDED_SIZE
        } else {
            COMPACT_SIZE
        };
        (isize + self.xattrs.len()) as u64
    }
}

/// Everything decided before a byte is written.
struct Plan<'v> {
    enc: &'v ErofsEncoder,
    nodes: Vec<Node<'v>>,
    shared: Vec<u8>,
    build_time: Time,
    blksz: u64,
    pcluster: u64,
    level: u32,
    warnings: Vec<String>,
}

fn plan<'v>(enc: &'v ErofsEncoder, view: View<'v>) -> Result<Plan<'v>> {
    let bs = enc.block_size;
    if !bs.is_power_of_two() || !(512..=65536).contains(&bs) {
        return Err(option_error(format!(
            "a block size of {bs} bytes (a power of two from 512 to 65536)"
        )));
    }
    let pcluster = enc.pcluster_size.unwrap_or(bs);
    if pcluster % bs != 0 || pcluster == 0 || pcluster > PCLUSTER_MAX {
        return Err(option_error(format!(
            "a pcluster of {pcluster} bytes (a multiple of the {bs}-byte block up to 1 MiB)"
        )));
    }
    let level = enc.level.unwrap_or(enc.comp.default_level());
    let (lo, hi) = enc.comp.levels();
    if !(lo..=hi).contains(&level) {
        return Err(option_error(format!(
            "{} at level {level} (levels {lo} to {hi})",
            enc.comp
        )));
    }
    let blksz = u64::from(bs);

    // Inodes in path order, each at its first name; the root first.
    let entries = view.sorted_entries();
    let mut index = HashMap::with_capacity(entries.len());
    let mut dirs: HashMap<&[u8], usize> = HashMap::new();
    let mut order = Vec::with_capacity(entries.len());
    for e in &entries {
        if index.contains_key(&e.ino) {
            continue;
        }
        index.insert(e.ino, order.len());
        if view.inode(e.ino).kind() == Kind::Dir {
            dirs.insert(&e.path, order.len());
        }
        order.push(e);
    }

    let mut unsupported: BTreeMap<Vec<u8>, (u64, Box<[u8]>)> = BTreeMap::new();
    let mut counts: HashMap<(u8, &[u8], &[u8]), u32> = HashMap::new();
    for e in &order {
        for x in &view.inode(e.ino).xattrs {
            match split_name(&x.name) {
                Some((i, rest)) => {
                    let len = rest.len();
                    if len > usize::from(u8::MAX) {
                        return Err(limit(&e.path, "an xattr name's length", len as u64, 255));
                    }
                    if x.value.len() > usize::from(u16::MAX) {
                        return Err(limit(
                            &e.path,
                            "an xattr value's size",
                            x.value.len() as u64,
                            u64::from(u16::MAX),
                        ));
                    }
                    *counts.entry((i, rest, &x.value)).or_default() += 1;
                }
                None => {
                    let n = unsupported
                        .entry(x.name.to_vec())
                        .or_insert((0, e.path.clone()));
                    n.0 += 1;
                }
            }
        }
    }
    // xattrs that two inodes or more have are stored once, in the shared
    // area, as mkfs.erofs does by default.
    let mut shared_keys: Vec<_> = counts
        .iter()
        .filter(|(_, n)| **n >= 2)
        .map(|(k, _)| *k)
        .collect();
    shared_keys.sort_unstable();
    let mut shared = Vec::new();
    let mut shared_id: HashMap<(u8, &[u8], &[u8]), u32> = HashMap::new();
    for k in shared_keys {
        let id = u32::try_from(shared.len() / 4).map_err(|_| overflow("shared xattrs"))?;
        shared_id.insert(k, id);
        shared.extend_from_slice(&entry(k.0, k.1, k.2));
    }

    let build_time = enc
        .build_time
        .unwrap_or_else(|| common_mtime(&view, &order));
    let mut nodes = Vec::with_capacity(order.len());
    for e in &order {
        let inode = view.inode(e.ino);
        check_inode(inode, &e.path)?;
        let xattrs = xattr_body(inode, &shared_id, &e.path)?;
        let size = match &inode.content {
            Content::File(d) => d.size(),
            Content::Symlink(t) => t.len() as u64,
            _ => 0,
        };
        let m = &inode.meta;
        let extended = m.uid > u32::from(u16::MAX)
            || m.gid > u32::from(u16::MAX)
            || e.nlink > u32::from(u16::MAX)
            || size > u64::from(u32::MAX)
            || m.mtime != build_time;
        nodes.push(Node {
            inode,
            path: e.path.clone(),
            nlink: e.nlink,
            xattrs,
            extended,
            entries: Vec::new(),
            dir_blocks: Vec::new(),
            size,
        });
    }
    // Directory entries, with `.` and `..`, sorted as the kernel's binary
    // search expects: by the bytes of the name.
    for (i, e) in order.iter().enumerate() {
        let inode = view.inode(e.ino);
        if inode.kind() != Kind::Dir {
            continue;
        }
        let parent = match e.path.iter().rposition(|&b| b == b'/') {
            Some(p) => dirs.get(&e.path[..p]).copied(),
            None if e.path.is_empty() => Some(i),
            None => dirs.get(&b""[..]).copied(),
        }
        .ok_or_else(|| Error::tree(display_path(&e.path), "directory without a parent"))?;
        let mut list: Vec<(&[u8], usize)> = vec![(b".", i), (b"..", parent)];
        for (name, child) in view.children(e.ino) {
            let at = index
                .get(&child)
                .copied()
                .ok_or_else(|| Error::tree(display_path(&e.path), "entry outside the walk"))?;
            list.push((name, at));
        }
        list.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let (blocks, size) = dir_blocks(&list, blksz);
        let node = &mut nodes[i];
        node.entries = list;
        node.dir_blocks = blocks;
        node.size = size;
    }

    let mut warnings = Vec::new();
    if let Some((name, (_, path))) = unsupported.iter().next() {
        let total: u64 = unsupported.values().map(|v| v.0).sum();
        warnings.push(format!(
            "{total} xattr(s) with a name erofs has no prefix for were left out (such as {} on {})",
            String::from_utf8_lossy(name),
            display_path(path)
        ));
    }
    // Every block address is 32 bits: the image cannot pass 2^32 blocks
    // even with every file stored as it is.
    let mut blocks: u64 = 4;
    for n in &nodes {
        let data = n.size.div_ceil(blksz).saturating_add(1);
        let meta = (n.head() + 64 + 8 * n.size.div_ceil(blksz)).div_ceil(blksz);
        blocks = blocks.saturating_add(data).saturating_add(meta);
    }
    blocks = blocks.saturating_add((shared.len() as u64).div_ceil(blksz));
    if blocks > u64::from(u32::MAX) {
        return Err(limit(
            b"",
            "the image's size in blocks",
            blocks,
            u64::from(u32::MAX),
        ));
    }
    Ok(Plan {
        enc,
        nodes,
        shared,
        build_time,
        blksz,
        pcluster: u64::from(pcluster),
        level,
        warnings,
    })
}

/// The most common mtime (the earliest of equals), so that most inodes can
/// be compact.
fn common_mtime(view: &View<'_>, order: &[&rootforge_common::Entry]) -> Time {
    let mut counts: HashMap<Time, u64> = HashMap::new();
    for e in order {
        *counts.entry(view.inode(e.ino).meta.mtime).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map_or(Time::default(), |(t, _)| t)
}

fn check_inode(inode: &Inode, path: &[u8]) -> Result<()> {
    if let Some(name) = path.rsplit(|&b| b == b'/').next() {
        if name.len() > NAME_MAX {
            return Err(limit(
                path,
                "a name's length",
                name.len() as u64,
                NAME_MAX as u64,
            ));
        }
    }
    if let Content::Symlink(t) = &inode.content {
        if t.len() > SYMLINK_MAX {
            return Err(limit(
                path,
                "a symlink target's length",
                t.len() as u64,
                SYMLINK_MAX as u64,
            ));
        }
    }
    Ok(())
}

/// An inode's xattr body: the shared xattrs it refers to, then its own.
fn xattr_body(
    inode: &Inode,
    shared_id: &HashMap<(u8, &[u8], &[u8]), u32>,
    path: &[u8],
) -> Result<Vec<u8>> {
    let mut ids = Vec::new();
    let mut inline = Vec::new();
    for x in &inode.xattrs {
        let Some((i, rest)) = split_name(&x.name) else {
            continue;
        };
        match shared_id.get(&(i, rest, &x.value[..])) {
            Some(&id) if ids.len() < MAX_SHARED => ids.push(id),
            _ => inline.extend_from_slice(&entry(i, rest, &x.value)),
        }
    }
    if ids.is_empty() && inline.is_empty() {
        return Ok(Vec::new());
    }
    let mut w = RecordWriter::with_capacity(XattrIbodyHeader::SIZE + 4 * ids.len() + inline.len());
    XattrIbodyHeader {
        h_name_filter: 0,
        h_shared_count: u8::try_from(ids.len()).unwrap_or(u8::MAX),
    }
    .encode(&mut w);
    for id in ids {
        w.le32(id);
    }
    w.bytes(&inline);
    let body = w.into_bytes();
    if body.len() > XATTR_BODY_MAX {
        return Err(limit(
            path,
            "the size of an inode's xattrs",
            body.len() as u64,
            XATTR_BODY_MAX as u64,
        ));
    }
    Ok(body)
}

/// Packs sorted entries into blocks: each block holds its dirents, then
/// their names. Returns the entries per block and the directory's size
/// (its last block as far as its last name).
fn dir_blocks(list: &[(&[u8], usize)], blksz: u64) -> (Vec<usize>, u64) {
    let mut blocks = Vec::new();
    let mut used = 0u64;
    let mut count = 0usize;
    for (name, _) in list {
        let need = Dirent::SIZE as u64 + name.len() as u64;
        if used + need > blksz {
            blocks.push(count);
            used = 0;
            count = 0;
        }
        used += need;
        count += 1;
    }
    blocks.push(count);
    let size = (blocks.len() as u64 - 1) * blksz + used;
    (blocks, size)
}

/// The `EROFS_FT_*` of a directory entry.
fn file_type(kind: Kind) -> u8 {
    match kind {
        Kind::File => EROFS_FT_REG_FILE,
        Kind::Dir => EROFS_FT_DIR,
        Kind::CharDev => EROFS_FT_CHRDEV,
        Kind::BlockDev => EROFS_FT_BLKDEV,
        Kind::Fifo => EROFS_FT_FIFO,
        Kind::Socket => EROFS_FT_SOCK,
        Kind::Symlink => EROFS_FT_SYMLINK,
    }
}

/// The kernel's `new_encode_dev`.
pub(crate) fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// One pcluster: the logical bytes from `start` of its file.
struct Pcl {
    start: u64,
    plain: bool,
    /// The pcluster's blocks: the compressed data after leading zeros, or
    /// the bytes as they are, padded.
    bytes: Vec<u8>,
}

/// A pcluster as the indexes see it.
#[derive(Debug, Clone, Copy)]
struct Extent {
    start: u64,
    plain: bool,
    blkaddr: u32,
    blocks: u32,
}

/// Where a node's data went.
#[derive(Default)]
enum Layout {
    /// Nothing (devices, fifos, sockets, empty files), or a directory (laid
    /// out after the metadata).
    #[default]
    None,
    /// Contiguous blocks from `blkaddr`, and a tail after the inode.
    Flat {
        blkaddr: u32,
        tail: Vec<u8>,
        inline: bool,
    },
    Compressed {
        blocks: u32,
        /// The data layout and the bytes after the xattrs (padding, map
        /// header, indexes).
        index: (u16, Vec<u8>),
    },
}

/// A piece of the data area.
enum Work {
    /// A file or symlink stored as it is.
    Raw(usize),
    /// A segment of a file to compress; `whole` when it is the whole file,
    /// which may then be stored as it is if compression saves no block.
    Segment {
        node: usize,
        start: u64,
        len: u64,
        whole: bool,
        last: bool,
    },
}

/// The image's byte stream.
struct Out<'a> {
    sink: &'a mut dyn Sink,
    pos: u64,
    crc: u32,
}

impl Out<'_> {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.sink
            .write_all(b)
            .map_err(|e| Error::io("writing the erofs image", e))?;
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.pos += b.len() as u64;
        Ok(())
    }

    fn zeros(&mut self, n: u64) -> Result<()> {
        let zeros = [0u8; 4096];
        let mut left = n;
        while left > 0 {
            let step = left.min(4096);
            self.put(&zeros[..usize::try_from(step).unwrap_or(4096)])?;
            left -= step;
        }
        Ok(())
    }

    fn pad(&mut self, blksz: u64) -> Result<()> {
        let to = self.pos.next_multiple_of(blksz);
        self.zeros(to - self.pos)
    }

    fn block(&self, blksz: u64) -> Result<u32> {
        u32::try_from(self.pos / blksz).map_err(|_| overflow("a block address"))
    }
}

fn read_error(path: &[u8], e: std::io::Error) -> Error {
    Error::io(format!("reading {}", display_path(path)), e)
}

/// Bytes `start..start+len` of a file.
fn read_range(data: &FileData, start: u64, len: u64, path: &[u8]) -> Result<Vec<u8>> {
    let n = usize::try_from(len).map_err(|_| overflow("a segment"))?;
    let mut buf = vec![0u8; n];
    data.read_at(start, &mut buf)
        .map_err(|e| read_error(path, e))?;
    Ok(buf)
}

impl Plan<'_> {
    fn compressor(&self) -> Compressor {
        Compressor::new(self.enc.comp, self.level)
    }

    /// Whether a tail of `tail` bytes fits after the inode in one block.
    fn inline_fits(&self, node: &Node<'_>, tail: u64) -> bool {
        tail > 0 && node.head() + tail <= self.blksz
    }

    /// Writes a file or symlink as it is: its full blocks, and its tail
    /// inline or in a last block.
    fn write_raw(&self, out: &mut Out<'_>, node: &Node<'_>) -> Result<Layout> {
        let blksz = self.blksz;
        let tail_len = node.size % blksz;
        let inline = self.inline_fits(node, tail_len);
        let full = node.size - if inline { tail_len } else { 0 };
        let blkaddr = if full > 0 { out.block(blksz)? } else { 0 };
        let mut tail = Vec::new();
        match &node.inode.content {
            Content::Symlink(t) => {
                if inline {
                    tail = t.to_vec();
                } else {
                    out.put(t)?;
                }
            }
            Content::File(data) => {
                let mut at = 0u64;
                while at < full {
                    let step = (full - at).min(1 << 20);
                    out.put(&read_range(data, at, step, &node.path)?)?;
                    at += step;
                }
                if inline {
                    tail = read_range(data, full, tail_len, &node.path)?;
                }
            }
            _ => {}
        }
        out.pad(blksz)?;
        Ok(Layout::Flat {
            blkaddr,
            tail,
            inline,
        })
    }

    /// The pclusters of one segment, or `None` when the segment is the
    /// whole file and compression saves no block.
    fn compress_segment(
        &self,
        node: &Node<'_>,
        start: u64,
        len: u64,
        whole: bool,
    ) -> Result<Option<Vec<Pcl>>> {
        let Content::File(data) = &node.inode.content else {
            return Ok(Some(Vec::new()));
        };
        let input = read_range(data, start, len, &node.path)?;
        let c = self.compressor();
        let blksz = usize::try_from(self.blksz).map_err(|_| overflow("a block"))?;
        let pcl = usize::try_from(self.pcluster).map_err(|_| overflow("a pcluster"))?;
        let mut pcls = Vec::new();
        let mut pos = 0usize;
        let mut guess = pcl.saturating_mul(3);
        let mut total_blocks = 0u64;
        while pos < input.len() {
            let rest = &input[pos..];
            let found = longest_prefix(&c, rest, pcl, blksz, &mut guess);
            let (n, bytes, plain) = match found {
                Some((n, z)) => {
                    let blocks = z.len().div_ceil(blksz);
                    let mut b = vec![0u8; blocks * blksz - z.len()];
                    b.extend_from_slice(&z);
                    (n, b, false)
                }
                None => {
                    let n = rest.len().min(blksz);
                    let mut b = rest[..n].to_vec();
                    b.resize(blksz, 0);
                    (n, b, true)
                }
            };
            total_blocks += (bytes.len() / blksz) as u64;
            pcls.push(Pcl {
                start: start + pos as u64,
                plain,
                bytes,
            });
            pos += n;
        }
        if whole && total_blocks >= len.div_ceil(self.blksz) {
            return Ok(None);
        }
        Ok(Some(pcls))
    }

    fn works(&self) -> Vec<Work> {
        let mut works = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            match &n.inode.content {
                Content::Symlink(_) => works.push(Work::Raw(i)),
                Content::File(_) if n.size == 0 => {}
                Content::File(_) if self.enc.comp == Comp::None || n.size <= self.blksz => {
                    works.push(Work::Raw(i));
                }
                Content::File(_) => {
                    let mut start = 0;
                    while start < n.size {
                        let len = (n.size - start).min(SEGMENT);
                        works.push(Work::Segment {
                            node: i,
                            start,
                            len,
                            whole: n.size <= SEGMENT,
                            last: start + len == n.size,
                        });
                        start += len;
                    }
                }
                _ => {}
            }
        }
        works
    }

    /// Writes the data area, window by window, and returns each node's
    /// layout.
    fn write_data(&self, out: &mut Out<'_>) -> Result<Vec<Layout>> {
        let mut layouts: Vec<Layout> = Vec::with_capacity(self.nodes.len());
        layouts.resize_with(self.nodes.len(), Layout::default);
        let works = self.works();
        let mut extents: Vec<Extent> = Vec::new();
        let mut blocks_of_file = 0u32;
        let mut i = 0;
        while i < works.len() {
            let mut j = i;
            let mut bytes = 0u64;
            while j < works.len() && (j == i || bytes < WINDOW) {
                if let Work::Segment { len, .. } = works[j] {
                    bytes += len;
                }
                j += 1;
            }
            let window = &works[i..j];
            let done: Vec<Result<Option<Vec<Pcl>>>> = window
                .par_iter()
                .map(|w| match *w {
                    Work::Raw(_) => Ok(None),
                    Work::Segment {
                        node,
                        start,
                        len,
                        whole,
                        ..
                    } => self.compress_segment(&self.nodes[node], start, len, whole),
                })
                .collect();
            for (w, result) in window.iter().zip(done) {
                match *w {
                    Work::Raw(n) => layouts[n] = self.write_raw(out, &self.nodes[n])?,
                    Work::Segment { node, last, .. } => {
                        let Some(pcls) = result? else {
                            layouts[node] = self.write_raw(out, &self.nodes[node])?;
                            continue;
                        };
                        for p in pcls {
                            let blkaddr = out.block(self.blksz)?;
                            let blocks = u32::try_from(p.bytes.len() as u64 / self.blksz)
                                .map_err(|_| overflow("a pcluster"))?;
                            out.put(&p.bytes)?;
                            blocks_of_file = blocks_of_file
                                .checked_add(blocks)
                                .ok_or_else(|| overflow("compressed blocks"))?;
                            extents.push(Extent {
                                start: p.start,
                                plain: p.plain,
                                blkaddr,
                                blocks,
                            });
                        }
                        if last {
                            let extents = std::mem::take(&mut extents);
                            let n = &self.nodes[node];
                            let index = self.index_area(n.head(), n.size, &extents)?;
                            layouts[node] = Layout::Compressed {
                                blocks: std::mem::take(&mut blocks_of_file),
                                index,
                            };
                        }
                    }
                }
            }
            i = j;
        }
        Ok(layouts)
    }

    /// The lclusters of a compressed file. With big pclusters, the first
    /// lcluster after every head that has a non-head one holds the
    /// pcluster's block count.
    fn lclusters(&self, size: u64, extents: &[Extent]) -> Result<Vec<Lcluster>> {
        let blksz = self.blksz;
        let nl = usize::try_from(size.div_ceil(blksz)).map_err(|_| overflow("lclusters"))?;
        let big = self.pcluster > blksz;
        let mut out = vec![
            Lcluster::NonHead {
                delta0: 0,
                delta1: 0,
            };
            nl
        ];
        let lcn_of = |e: &Extent| usize::try_from(e.start / blksz).unwrap_or(usize::MAX);
        for (k, e) in extents.iter().enumerate() {
            let head = lcn_of(e);
            let next = extents.get(k + 1).map_or(nl, lcn_of);
            let slot = out.get_mut(head).ok_or_else(|| overflow("an extent"))?;
            *slot = Lcluster::Head {
                plain: e.plain,
                clusterofs: u16::try_from(e.start % blksz).map_err(|_| overflow("an offset"))?,
                blkaddr: e.blkaddr,
            };
            for (lcn, slot) in out.iter_mut().enumerate().take(next).skip(head + 1) {
                let d0 = u16::try_from(lcn - head).map_err(|_| overflow("a delta"))?;
                let d1 = u16::try_from(next - lcn).map_err(|_| overflow("a delta"))?;
                let delta0 = if lcn == head + 1 && big {
                    Z_EROFS_LI_D0_CBLKCNT
                        | u16::try_from(e.blocks).map_err(|_| overflow("a pcluster"))?
                } else {
                    d0
                };
                *slot = Lcluster::NonHead { delta0, delta1: d1 };
            }
        }
        Ok(out)
    }

    /// A compressed file's map header and indexes, compact when they fit
    /// (mkfs.erofs's default, with 2-byte packs for lclusters up to 4 KiB),
    /// else full; `head` is the size of the inode and its xattrs.
    fn index_area(&self, head: u64, size: u64, extents: &[Extent]) -> Result<(u16, Vec<u8>)> {
        let lcs = self.lclusters(size, extents)?;
        let bits = self.blksz.trailing_zeros();
        let big = self.pcluster > self.blksz;
        let (compact_ok, two_b) = zmap::compact_fits(bits);
        let big_advise = if big {
            Z_EROFS_ADVISE_BIG_PCLUSTER_1 | Z_EROFS_ADVISE_BIG_PCLUSTER_2
        } else {
            0
        };
        let alg = self.enc.comp.algorithm().unwrap_or(0);
        let pad = usize::try_from(head.next_multiple_of(8) - head).unwrap_or(0);
        let header = |advise: u16| {
            let mut w = RecordWriter::with_capacity(16);
            w.zeros(pad);
            MapHeader {
                h_fragmentoff: 0,
                h_advise: advise,
                h_algorithmtype: alg,
                h_clusterbits: 0,
            }
            .encode(&mut w);
            w
        };
        if compact_ok {
            let ebase = head.next_multiple_of(8) + MapHeader::SIZE as u64;
            if let Some(packs) = zmap::compact(&lcs, ebase, two_b, big, bits) {
                let advise = big_advise
                    | if two_b {
                        Z_EROFS_ADVISE_COMPACTED_2B
                    } else {
                        0
                    };
                let mut w = header(advise);
                w.bytes(&packs);
                return Ok((EROFS_INODE_COMPRESSED_COMPACT, w.into_bytes()));
            }
        }
        let mut w = header(big_advise);
        w.zeros(8);
        for ix in zmap::full(&lcs) {
            ix.encode(&mut w);
        }
        Ok((EROFS_INODE_COMPRESSED_FULL, w.into_bytes()))
    }

    fn disk_inode(
        &self,
        n: usize,
        node: &Node<'_>,
        layout: &Layout,
        dir_blkaddr: u32,
    ) -> DiskInode {
        let inode = node.inode;
        let (datalayout, i_u) = match (&inode.content, layout) {
            (Content::CharDev { major, minor } | Content::BlockDev { major, minor }, _) => {
                (EROFS_INODE_FLAT_PLAIN, encode_dev(*major, *minor))
            }
            (Content::Dir(_), _) => {
                if self.inline_fits(node, dir_tail(node, self.blksz)) {
                    (EROFS_INODE_FLAT_INLINE, dir_blkaddr)
                } else {
                    (EROFS_INODE_FLAT_PLAIN, dir_blkaddr)
                }
            }
            (
                _,
                Layout::Flat {
                    blkaddr, inline, ..
                },
            ) => (
                if *inline {
                    EROFS_INODE_FLAT_INLINE
                } else {
                    EROFS_INODE_FLAT_PLAIN
                },
                *blkaddr,
            ),
            (_, Layout::Compressed { blocks, index, .. }) => (index.0, *blocks),
            _ => (EROFS_INODE_FLAT_PLAIN, 0),
        };
        let version = if node.extended {
            EROFS_INODE_LAYOUT_EXTENDED
        } else {
            EROFS_INODE_LAYOUT_COMPACT
        };
        let icount = if node.xattrs.is_empty() {
            0
        } else {
            u16::try_from((node.xattrs.len() - XattrIbodyHeader::SIZE) / 4 + 1).unwrap_or(u16::MAX)
        };
        DiskInode {
            i_format: version | (datalayout << EROFS_I_DATALAYOUT_BIT),
            i_xattr_icount: icount,
            i_mode: u16::try_from(inode.mode()).unwrap_or(u16::MAX),
            i_nlink: node.nlink,
            i_size: node.size,
            i_u,
            i_ino: u32::try_from(n + 1).unwrap_or(u32::MAX),
            i_uid: inode.meta.uid,
            i_gid: inode.meta.gid,
            i_mtime: inode.meta.mtime.sec as u64,
            i_mtime_nsec: inode.meta.mtime.nsec,
        }
    }

    fn write_all(self, sink: &mut dyn Sink) -> Result<Report> {
        let blksz = self.blksz;
        let comp = self.enc.comp;
        let cfgs = self.cfgs();
        let sb_end = EROFS_SUPER_OFFSET + SuperBlock::SIZE as u64 + cfgs.len() as u64;
        let data_start = sb_end.next_multiple_of(blksz);
        let mut out = Out {
            sink,
            pos: 0,
            crc: 0,
        };
        out.sink
            .skip(data_start)
            .map_err(|e| Error::io("writing the erofs image", e))?;
        out.pos = data_start;
        let layouts = self.write_data(&mut out)?;
        let data_crc = out.crc;

        // The metadata area: each inode at a 32-byte slot, a tail that
        // would cross a block moved with its inode to the next block.
        let meta_start = out.pos;
        let mut offsets = Vec::with_capacity(self.nodes.len());
        let mut cur = meta_start;
        // Blocks left with room when an inode moved on to the next block:
        // later inodes that fit go there first (as mkfs.erofs fills its
        // partly used blocks), so inline tails waste little.
        let mut open: Vec<(u64, u64)> = Vec::new();
        for (i, (node, layout)) in self.nodes.iter().zip(&layouts).enumerate() {
            let head = node.head();
            let (tail, body) = match layout {
                _ if node.inode.kind() == Kind::Dir => {
                    let t = dir_tail(node, blksz);
                    if self.inline_fits(node, t) {
                        (t, head + t)
                    } else {
                        (0, head)
                    }
                }
                Layout::Flat {
                    tail, inline: true, ..
                } => (tail.len() as u64, head + tail.len() as u64),
                Layout::Compressed { index, .. } => (0, head + index.1.len() as u64),
                _ => (0, head),
            };
            // The root comes first (its nid is 16 bits); an inode that fits
            // a block is kept within one, which keeps any tail in one too.
            let fits = |at: u64, end: u64| at.next_multiple_of(32) + body <= end;
            if i > 0 && body <= blksz {
                if let Some(slot) = open.iter_mut().find(|(b, used)| fits(*used, b + blksz)) {
                    let off = slot.1.next_multiple_of(32);
                    slot.1 = off + body;
                    offsets.push(off);
                    open.retain(|(b, used)| used.next_multiple_of(32) + 32 <= b + blksz);
                    continue;
                }
            }
            let mut off = cur.next_multiple_of(32);
            let block = off / blksz * blksz;
            if (i > 0 && body <= blksz || tail > 0) && !fits(off, block + blksz) {
                if off > block {
                    open.push((block, cur));
                    if open.len() > 64 {
                        open.remove(0);
                    }
                }
                off = off.next_multiple_of(blksz);
            }
            offsets.push(off);
            cur = off + body;
        }
        let meta_end = cur.next_multiple_of(blksz);
        let nid = |i: usize| (offsets[i] - meta_start) / 32;

        // Directory blocks past the inline tails, after the metadata.
        let mut dir_addr = vec![0u32; self.nodes.len()];
        let mut dir_bytes = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.inode.kind() != Kind::Dir {
                continue;
            }
            let full = dir_full_blocks(node, self.inline_fits(node, dir_tail(node, blksz)));
            if full == 0 {
                continue;
            }
            dir_addr[i] = u32::try_from((meta_end + dir_bytes.len() as u64) / blksz)
                .map_err(|_| overflow("a directory block"))?;
            let mut at = 0;
            for &count in &node.dir_blocks[..full] {
                let mut b = self.dir_block(&node.entries[at..at + count], &nid);
                b.resize(usize::try_from(blksz).unwrap_or(0), 0);
                dir_bytes.extend_from_slice(&b);
                at += count;
            }
        }
        let xattr_start = meta_end + dir_bytes.len() as u64;

        let mut meta =
            vec![0u8; usize::try_from(meta_end - meta_start).map_err(|_| overflow("metadata"))?];
        for (i, (node, layout)) in self.nodes.iter().zip(&layouts).enumerate() {
            let at = usize::try_from(offsets[i] - meta_start).map_err(|_| overflow("metadata"))?;
            let mut w = RecordWriter::with_capacity(128);
            self.disk_inode(i, node, layout, dir_addr[i]).encode(&mut w);
            w.bytes(&node.xattrs);
            match layout {
                _ if node.inode.kind() == Kind::Dir => {
                    let t = dir_tail(node, blksz);
                    if self.inline_fits(node, t) {
                        let full = dir_full_blocks(node, true);
                        let skip: usize = node.dir_blocks[..full].iter().sum();
                        let b = self.dir_block(&node.entries[skip..], &nid);
                        w.bytes(&b);
                    }
                }
                Layout::Flat {
                    tail, inline: true, ..
                } => {
                    w.bytes(tail);
                }
                Layout::Compressed { index, .. } => {
                    w.bytes(&index.1);
                }
                _ => {}
            }
            put_at(&mut meta, at, &w.into_bytes()).ok_or_else(|| overflow("metadata"))?;
        }
        out.put(&meta)?;
        out.put(&dir_bytes)?;
        out.put(&self.shared)?;
        out.pad(blksz)?;
        let total = out.pos;

        let uuid = self.enc.uuid.unwrap_or_else(|| {
            let mut h = Sha256::new();
            h.update(data_crc.to_le_bytes());
            h.update(&meta);
            h.update(&dir_bytes);
            h.update(&self.shared);
            let d = h.finalize();
            let mut u = [0u8; 16];
            u.copy_from_slice(&d[..16]);
            u[6] = (u[6] & 0x0f) | 0x40;
            u[8] = (u[8] & 0x3f) | 0x80;
            u
        });
        let mut feature_incompat = 0;
        let mut algs = 0;
        if let Some(a) = comp.algorithm() {
            feature_incompat |=
                EROFS_FEATURE_INCOMPAT_ZERO_PADDING | EROFS_FEATURE_INCOMPAT_COMPR_CFGS;
            algs = 1u16 << a;
        }
        let sb = SuperBlock {
            magic: EROFS_SUPER_MAGIC_V1,
            checksum: 0,
            feature_compat: EROFS_FEATURE_COMPAT_SB_CHKSUM | EROFS_FEATURE_COMPAT_MTIME,
            blkszbits: u8::try_from(blksz.trailing_zeros()).unwrap_or(12),
            sb_extslots: 0,
            root_nid: 0,
            inos: self.nodes.len() as u64,
            build_time: self.build_time.sec as u64,
            build_time_nsec: self.build_time.nsec,
            blocks: u32::try_from(total / blksz).map_err(|_| overflow("the image"))?,
            meta_blkaddr: u32::try_from(meta_start / blksz).map_err(|_| overflow("metadata"))?,
            xattr_blkaddr: if self.shared.is_empty() {
                0
            } else {
                u32::try_from(xattr_start / blksz).map_err(|_| overflow("xattrs"))?
            },
            uuid,
            volume_name: [0; 16],
            feature_incompat,
            available_compr_algs: algs,
            ..SuperBlock::default()
        };
        let mut head = sb.to_bytes();
        head.extend_from_slice(&cfgs);
        let region =
            usize::try_from(data_start - EROFS_SUPER_OFFSET).map_err(|_| overflow("superblock"))?;
        head.resize(region, 0);
        let csum_len = if blksz > EROFS_SUPER_OFFSET {
            blksz - EROFS_SUPER_OFFSET
        } else {
            blksz
        };
        let csum_len = usize::try_from(csum_len).map_err(|_| overflow("superblock"))?;
        let crc = !crc32c::crc32c(&head[..csum_len]);
        put_at(&mut head, 4, &crc.to_le_bytes()).ok_or_else(|| overflow("superblock"))?;
        out.sink
            .write_at(EROFS_SUPER_OFFSET, &head)
            .map_err(|e| Error::io("writing the erofs superblock", e))?;
        Ok(Report {
            bytes: total,
            warnings: self.warnings,
        })
    }

    /// The compression configurations after the superblock, each at a
    /// 4-byte boundary after its 16-bit length.
    fn cfgs(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_capacity(32);
        let blocks = u16::try_from(self.pcluster / self.blksz).unwrap_or(u16::MAX);
        match self.enc.comp {
            Comp::None => {}
            Comp::Lz4 | Comp::Lz4hc => {
                w.le16(cfg_len(Lz4Cfgs::SIZE));
                Lz4Cfgs {
                    max_distance: 0,
                    max_pclusterblks: blocks,
                }
                .encode(&mut w);
            }
            Comp::Deflate => {
                w.le16(cfg_len(DeflateCfgs::SIZE));
                DeflateCfgs { windowbits: 15 }.encode(&mut w);
            }
            Comp::Zstd => {
                w.le16(cfg_len(ZstdCfgs::SIZE));
                ZstdCfgs {
                    format: 0,
                    windowlog: u8::try_from(ZSTD_WINDOW_LOG - 10).unwrap_or(0),
                }
                .encode(&mut w);
            }
        }
        let pad = w.len().next_multiple_of(4) - w.len();
        w.zeros(pad);
        w.into_bytes()
    }

    /// One directory block's bytes: the dirents, then the names.
    fn dir_block(&self, entries: &[(&[u8], usize)], nid: &dyn Fn(usize) -> u64) -> Vec<u8> {
        let mut w = RecordWriter::with_capacity(usize::try_from(self.blksz).unwrap_or(4096));
        let mut nameoff = Dirent::SIZE * entries.len();
        for &(name, at) in entries {
            Dirent {
                nid: nid(at),
                nameoff: u16::try_from(nameoff).unwrap_or(u16::MAX),
                file_type: file_type(self.nodes[at].inode.kind()),
            }
            .encode(&mut w);
            nameoff += name.len();
        }
        for &(name, _) in entries {
            w.bytes(name);
        }
        w.into_bytes()
    }
}

/// A configuration's length field.
fn cfg_len(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// The bytes of a directory's last block.
fn dir_tail(node: &Node<'_>, blksz: u64) -> u64 {
    node.size - (node.dir_blocks.len() as u64 - 1) * blksz
}

/// The directory blocks stored outside the metadata area.
fn dir_full_blocks(node: &Node<'_>, inline: bool) -> usize {
    node.dir_blocks.len() - usize::from(inline)
}

/// The longest prefix of `input` (up to [`MAX_EXTENT`]) that compresses
/// into `pcl` bytes while saving at least one block, with its compressed
/// bytes; `guess` carries the last extent's length to the next search.
fn longest_prefix(
    c: &Compressor,
    input: &[u8],
    pcl: usize,
    blksz: usize,
    guess: &mut usize,
) -> Option<(usize, Vec<u8>)> {
    let max = input.len().min(MAX_EXTENT);
    let saves = |n: usize, z: &[u8]| z.len().div_ceil(blksz) < n.div_ceil(blksz);
    // The whole rest at once: most files are small.
    if max <= guess.saturating_mul(2) {
        if let Some(z) = c.compress(&input[..max], pcl) {
            return saves(max, &z).then_some((max, z));
        }
    }
    // One byte more than the pcluster holds as it is: if even that does
    // not fit, the
    // data does not compress here.
    let least = (pcl + 1).min(max);
    let mut best = match c.compress(&input[..least], pcl) {
        Some(z) if saves(least, &z) => (least, z),
        _ => return None,
    };
    // Gallop from the last extent's length in steps that double, then
    // halve the bracket, until it is within 1/128 of the length found.
    let mut hi = max + 1;
    let mut probe = (*guess).clamp(least + 1, max.max(least + 1));
    let mut step = (best.0 / 16).max(64);
    let mut last_up = true;
    while hi - best.0 > (best.0 / 128).max(64) {
        if probe >= hi || probe <= best.0 {
            probe = best.0 + (hi - best.0) / 2;
        }
        let up = match c.compress(&input[..probe], pcl) {
            Some(z) => {
                best = (probe, z);
                true
            }
            None => {
                hi = probe;
                false
            }
        };
        probe = if up && hi > max {
            best.0.saturating_add(step)
        } else if !up && best.0 == least && !last_up {
            hi.saturating_sub(step)
        } else {
            best.0 + (hi - best.0) / 2
        };
        step = step.saturating_mul(2);
        last_up = up;
    }
    *guess = best.0;
    saves(best.0, &best.1).then_some(best)
}

impl ImagePlan for Plan<'_> {
    fn write(self: Box<Self>, out: &mut dyn Sink) -> Result<Report> {
        (*self).write_all(out)
    }
}
