//! The planner and the writer: inode numbers, directory blocks, sizing,
//! allocation, then the image in increasing offset order.
//!
//! `plan` numbers the inodes and renders their contents, `dir` the
//! directory blocks, `place` sizes the filesystem and allocates, `emit`
//! gathers every region in block order, `render` encodes the inodes and
//! superblocks, and `writer` streams the bytes.

mod dir;
mod emit;
mod place;
mod plan;
mod render;
mod writer;

use std::io;

use rootforge_common::{Error, ImagePlan, Inode, Kind, Report, Result, Sink, View};

use crate::disk;
use crate::layout::{Geometry, Mapped, Run};
use crate::{ExtEncoder, xattr};

const LOST_FOUND: &[u8] = b"lost+found";

/// A directory entry: name, inode number, file type.
type Dirent<'a> = (&'a [u8], u32, u8);

/// What an inode number stands for.
#[derive(Debug, Clone, Copy)]
enum Src<'a> {
    Tree(&'a Inode),
    LostFound,
    Journal,
}

#[derive(Debug)]
struct Node<'a> {
    ino: u32,
    src: Src<'a>,
    path: Box<[u8]>,
    links: u32,
    /// The parent directory's inode number (directories only).
    parent: u32,
    /// Directory entries, in name order.
    children: Vec<Dirent<'a>>,
}

/// An inode's contents before blocks are placed.
#[derive(Debug, Default)]
struct Prepared {
    /// Rendered blocks (directories, slow symlinks).
    blocks: Vec<u8>,
    /// Non-zero runs of a regular file: (first logical block, count).
    data: Vec<(u64, u64)>,
    htree: bool,
    xattr_area: Vec<u8>,
    xattr_block: Vec<xattr::Entry>,
}

/// Where an inode's blocks went.
#[derive(Debug, Default)]
struct Placed {
    runs: Vec<Run>,
    mapped: Mapped,
    xattr_block: Option<u64>,
}

/// Everything fixed by the options and the tree, before sizing.
struct Plan<'a> {
    enc: &'a ExtEncoder,
    bs: u64,
    nodes: Vec<Node<'a>>,
    prepared: Vec<Prepared>,
    /// Inode numbers in use: 1 up to this.
    max_ino: u32,
    uuid: [u8; 16],
    hash_seed: [u32; 4],
    csum_seed: Option<u32>,
    fs_time: u32,
    large_file: bool,
}

fn io_err(e: io::Error) -> Error {
    Error::io("writing the ext image", e)
}

fn file_type(kind: Kind) -> u8 {
    match kind {
        Kind::File => disk::FT_REG,
        Kind::Dir => disk::FT_DIR,
        Kind::CharDev => disk::FT_CHR,
        Kind::BlockDev => disk::FT_BLK,
        Kind::Fifo => disk::FT_FIFO,
        Kind::Socket => disk::FT_SOCK,
        Kind::Symlink => disk::FT_SYMLINK,
    }
}

/// An ext image planned and sized: what [`ImagePlan::write`] emits.
pub(crate) struct Planned<'a> {
    plan: Plan<'a>,
    geo: Geometry,
    placed: Vec<Placed>,
}

/// Plans and sizes the image of `view`: a fixed size too small for the
/// tree fails here, before any output exists.
pub(crate) fn plan<'a>(enc: &'a ExtEncoder, view: &View<'a>) -> Result<Planned<'a>> {
    let plan = Plan::new(enc, view)?;
    let (geo, placed) = plan.size()?;
    Ok(Planned { plan, geo, placed })
}

impl Plan<'_> {
    /// The block size as a length.
    fn block_len(&self) -> usize {
        rootforge_common::bytes::usize_from_u32(self.enc.block_size)
    }
}

impl ImagePlan for Planned<'_> {
    fn size(&self) -> Option<u64> {
        self.geo.blocks.checked_mul(self.plan.bs)
    }

    fn write(self: Box<Self>, out: &mut dyn Sink) -> Result<Report> {
        self.plan.emit(&self.geo, &self.placed, out)
    }
}

/// The journal size mke2fs picks for a filesystem of `blocks` blocks.
fn journal_blocks(blocks: u64) -> u64 {
    const TIERS: [(u64, u64); 7] = [
        (32768, 1024),
        (262_144, 4096),
        (524_288, 8192),
        (4_194_304, 16384),
        (8_388_608, 32768),
        (16_777_216, 65536),
        (33_554_432, 131_072),
    ];
    TIERS
        .iter()
        .find(|(below, _)| blocks < *below)
        .map_or(262_144, |t| t.1)
}
