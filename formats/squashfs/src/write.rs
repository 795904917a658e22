//! The image writer: plan the whole layout from the view, compress data and
//! fragment blocks in parallel, then write everything in planned order.

use std::io;

use rayon::prelude::*;
use rootforge_common::bytes::{RecordWriter, usize_from_u32};
use rootforge_common::{
    Batch, Content, Encoder, Error, ImagePlan, Report, Result, Sink, View, display_path,
};

use crate::comp::{Bcj, Codec, Comp, Settings};
use crate::data::{FileLayout, Job, Packed, layout, run};
use crate::dir::{Listed, dir_inode};
use crate::meta::{META_RAW, MetaWriter, lookup_table};
use crate::plan::{Plan, plan};
use crate::records::{
    DevInode, EXTENDED, FragmentEntry, InodeHeader, IpcInode, LRegInode, Record, RegInode,
    SQUASHFS_BLKDEV_TYPE, SQUASHFS_CHRDEV_TYPE, SQUASHFS_DIR_TYPE, SQUASHFS_FIFO_TYPE,
    SQUASHFS_REG_TYPE, SQUASHFS_SOCKET_TYPE, SQUASHFS_SYMLINK_TYPE, SymlinkInode, XattrRef,
};
use crate::superblock::{SUPERBLOCK_SIZE, Superblock};
use crate::{FORMAT, NONE32, NONE64, overflow_error};

/// The image is padded to this, the largest device block the kernel uses.
const PAD: u64 = 4096;

/// Superblock flags.
const FLAG_UNCOMPRESSED_INODES: u16 = 0x0001;
const FLAG_UNCOMPRESSED_DATA: u16 = 0x0002;
const FLAG_UNCOMPRESSED_FRAGMENTS: u16 = 0x0008;
const FLAG_ALWAYS_FRAGMENTS: u16 = 0x0020;
const FLAG_DUPLICATES: u16 = 0x0040;
const FLAG_EXPORTABLE: u16 = 0x0080;
const FLAG_NO_XATTRS: u16 = 0x0200;
const FLAG_COMPRESSOR_OPTIONS: u16 = 0x0400;
const FLAG_UNCOMPRESSED_IDS: u16 = 0x0800;

/// Writes a view as a SquashFS 4.0 image, as the Linux kernel and
/// squashfs-tools read it: tail ends and small files packed into fragments,
/// all-zero blocks stored as holes, identical files stored once, hard links
/// as one inode with a link count, and an export table. The bytes depend
/// only on the view and these options, not on the number of threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SquashfsEncoder {
    /// The compressor of every block and table.
    pub comp: Comp,
    /// The compressor's level (see [`Comp::levels`]).
    pub level: u32,
    /// Data block size: a power of two from 4 KiB to 1 MiB.
    pub block_size: u32,
    /// xz only: BCJ filters to try on every block.
    pub bcj: Bcj,
    /// Write the export table that NFS needs to look inodes up by number
    /// (mksquashfs's default; `-no-exports` turns it off).
    pub exportable: bool,
    /// Pack the tail ends of files larger than a block into fragments too,
    /// not only small files (mksquashfs's `-always-use-fragments`): smaller
    /// with gzip, larger with zstd and xz, by a few KiB in 100 MiB.
    pub always_fragments: bool,
    /// Pad the image to a multiple of 4 KiB, the largest block a device
    /// reads (mksquashfs's default; `-nopad` turns it off).
    pub pad: bool,
}

impl Default for SquashfsEncoder {
    fn default() -> Self {
        SquashfsEncoder::new(Comp::Gzip)
    }
}

impl SquashfsEncoder {
    /// 128 KiB blocks at the compressor's default level, with an export
    /// table and padding, like mksquashfs.
    pub const fn new(comp: Comp) -> Self {
        SquashfsEncoder {
            comp,
            level: comp.default_level(),
            block_size: 128 << 10,
            bcj: Bcj::NONE,
            exportable: true,
            always_fragments: false,
            pad: true,
        }
    }

    /// Buildroot's "extreme compression" for a target architecture: the
    /// compressor's highest usual level, or BCJ filters for xz.
    pub fn extreme(mut self, arch: &str) -> Self {
        self.level = self.comp.extreme_level();
        if self.comp == Comp::Xz {
            self.bcj = Bcj::for_arch(arch);
        }
        self
    }

    fn settings(&self) -> Settings {
        Settings {
            comp: self.comp,
            level: self.level,
            block_size: self.block_size,
            bcj: self.bcj,
        }
    }

    fn check_options(&self) -> Result<()> {
        let bs = self.block_size;
        if !bs.is_power_of_two() || !(4096..=1 << 20).contains(&bs) {
            return Err(option_error(format!(
                "a block size of {bs} bytes (it must be a power of two from 4 KiB to 1 MiB)"
            )));
        }
        let levels = self.comp.levels();
        if !levels.contains(&self.level) {
            return Err(option_error(format!(
                "{} level {} (it takes {} to {})",
                self.comp.name(),
                self.level,
                levels.start(),
                levels.end()
            )));
        }
        if !self.bcj.is_empty() && self.comp != Comp::Xz {
            return Err(option_error(format!(
                "BCJ filters with {} (only xz has them)",
                self.comp.name()
            )));
        }
        Ok(())
    }
}

fn option_error(what: String) -> Error {
    Error::Unsupported {
        path: "/".to_owned(),
        format: FORMAT,
        what,
    }
}

/// The basic inode type of each kind of content.
fn basic_type(content: &Content) -> u16 {
    match content {
        Content::Dir(_) => SQUASHFS_DIR_TYPE,
        Content::File(_) => SQUASHFS_REG_TYPE,
        Content::Symlink(_) => SQUASHFS_SYMLINK_TYPE,
        Content::BlockDev { .. } => SQUASHFS_BLKDEV_TYPE,
        Content::CharDev { .. } => SQUASHFS_CHRDEV_TYPE,
        Content::Fifo => SQUASHFS_FIFO_TYPE,
        Content::Socket => SQUASHFS_SOCKET_TYPE,
    }
}

impl Encoder for SquashfsEncoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn plan<'v>(&'v self, view: View<'v>) -> Result<Box<dyn ImagePlan + 'v>> {
        self.check_options()?;
        let plan = plan(&view)?;
        Ok(Box::new(Planned {
            encoder: self,
            view,
            plan,
        }))
    }
}

/// A squashfs image planned for one view. Where each file's blocks go is
/// decided while writing: finding duplicates reads the data.
struct Planned<'v> {
    encoder: &'v SquashfsEncoder,
    view: View<'v>,
    plan: Plan<'v>,
}

impl ImagePlan for Planned<'_> {
    fn write(self: Box<Self>, out: &mut dyn Sink) -> Result<Report> {
        self.encoder.write_plan(&self.view, self.plan, out)
    }
}

impl SquashfsEncoder {
    fn write_plan(&self, view: &View<'_>, plan: Plan<'_>, out: &mut dyn Sink) -> Result<Report> {
        let (jobs, layouts, block_jobs) =
            layout(view, &plan.nodes, self.block_size, self.always_fragments)?;
        let settings = self.settings();
        let write_err = |e| Error::io("writing the squashfs image", e);
        let options = settings.options();

        // The superblock names every table, so it is written last, over
        // this placeholder.
        let mut w = Batch::new(out);
        w.zeros(SUPERBLOCK_SIZE);
        if let Some(o) = &options {
            // A raw metadata block of at most 8 bytes.
            let len = u16::try_from(o.len()).map_err(|_| overflow_error())?;
            w.put(&(META_RAW | len).to_le_bytes());
            w.put(o);
        }
        let data_start = w.pos();
        let blocks = self.compress_blocks(&jobs, &mut w)?;
        let data_end = w.pos();
        let fragments = jobs.len() - block_jobs;
        let fragment_blocks = &blocks[block_jobs..];

        let mut codec = Codec::new(settings).map_err(write_err)?;
        let placed = Placed {
            layouts: &layouts,
            blocks: &blocks,
            data_start,
        };
        let Metadata {
            inode_table,
            dir_table,
            refs,
        } = self.metadata(view, &plan, &placed, &mut codec)?;

        let inode_start = data_end;
        let dir_start = add(inode_start, inode_table.len())?;
        let mut entries = RecordWriter::with_capacity(fragment_blocks.len() * FragmentEntry::SIZE);
        for block in fragment_blocks {
            FragmentEntry {
                start_block: block.start,
                size: block.word,
            }
            .encode(&mut entries);
        }
        let entries = entries.into_bytes();
        let frag_at = add(dir_start, dir_table.len())?;
        let (frag_table, frag_index) =
            lookup_table(&mut codec, &entries, frag_at).map_err(write_err)?;
        let export_at = add(frag_at, frag_table.len())?;
        let (export_table, export_index) = if self.exportable {
            let entries: Vec<u8> = refs.iter().flat_map(|r| r.to_le_bytes()).collect();
            let (bytes, index) =
                lookup_table(&mut codec, &entries, export_at).map_err(write_err)?;
            (bytes, Some(add(export_at, index)?))
        } else {
            (Vec::new(), None)
        };
        let id_at = add(export_at, export_table.len())?;
        let id_entries: Vec<u8> = plan.ids.iter().flat_map(|id| id.to_le_bytes()).collect();
        let (id_table, id_index) =
            lookup_table(&mut codec, &id_entries, id_at).map_err(write_err)?;
        let xattr_at = add(id_at, id_table.len())?;
        let (xattr_table, xattr_header) = if plan.xattrs.is_empty() {
            (Vec::new(), None)
        } else {
            let (bytes, header) = plan.xattrs.table(&mut codec, xattr_at).map_err(write_err)?;
            (bytes, Some(add(xattr_at, header)?))
        };
        let bytes_used = add(xattr_at, xattr_table.len())?;

        let mut flags = FLAG_DUPLICATES;
        if self.always_fragments {
            flags |= FLAG_ALWAYS_FRAGMENTS;
        }
        if export_index.is_some() {
            flags |= FLAG_EXPORTABLE;
        }
        if xattr_header.is_none() {
            flags |= FLAG_NO_XATTRS;
        }
        if self.comp == Comp::None {
            flags |= FLAG_UNCOMPRESSED_INODES
                | FLAG_UNCOMPRESSED_DATA
                | FLAG_UNCOMPRESSED_FRAGMENTS
                | FLAG_UNCOMPRESSED_IDS;
        }
        if options.is_some() {
            flags |= FLAG_COMPRESSOR_OPTIONS;
        }
        let sb = Superblock {
            inode_count: u32::try_from(plan.nodes.len()).map_err(|_| overflow_error())?,
            mod_time: plan.newest,
            block_size: self.block_size,
            frag_count: u32::try_from(fragments).map_err(|_| overflow_error())?,
            compressor: self.comp.id(),
            block_log: u16::try_from(self.block_size.trailing_zeros())
                .map_err(|_| overflow_error())?,
            flags,
            id_count: u16::try_from(plan.ids.len()).map_err(|_| overflow_error())?,
            version: (4, 0),
            root: refs.last().copied().unwrap_or_default(),
            bytes_used,
            id_table: add(id_at, id_index)?,
            xattr_table: xattr_header.unwrap_or(NONE64),
            inode_table: inode_start,
            dir_table: dir_start,
            frag_table: add(frag_at, frag_index)?,
            export_table: export_index.unwrap_or(NONE64),
        };

        for table in [
            &inode_table,
            &dir_table,
            &frag_table,
            &export_table,
            &id_table,
            &xattr_table,
        ] {
            w.put(table);
        }
        if self.pad {
            w.pad(PAD);
        }
        w.finish().map_err(write_err)?;
        let bytes = w.pos();
        drop(w);
        out.write_at(0, &sb.encode()).map_err(|e| {
            Error::io(
                "writing the squashfs superblock (squashfs needs a seekable output, \
                 without outer compression)",
                e,
            )
        })?;
        Ok(Report {
            bytes,
            warnings: plan.warnings,
        })
    }
}

impl SquashfsEncoder {
    /// Compresses the data and fragment blocks on all threads and writes
    /// them in job order, a window at a time so that memory holds one
    /// window, not the image. Returns where each block went.
    fn compress_blocks(&self, jobs: &[Job<'_>], w: &mut Batch<'_>) -> Result<Vec<Block>> {
        let write_err = |e| Error::io("writing the squashfs image", e);
        // A window of at least 64 MiB of input and four jobs per thread,
        // so that threads rarely wait at the window's end.
        let window =
            ((64usize << 20) / self.block_size as usize).max(4 * rayon::current_num_threads());
        let settings = self.settings();
        let mut blocks = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(window) {
            let packed: Vec<Packed<'_>> = chunk
                .par_iter()
                .map_init(
                    || Codec::new(settings),
                    |codec, job| match codec {
                        Ok(codec) => run(codec, job),
                        // io::Error is not Clone; each thread reports its own.
                        Err(e) => Err(Error::io(
                            "starting the compressor",
                            io::Error::new(e.kind(), e.to_string()),
                        )),
                    },
                )
                .collect::<Result<_>>()?;
            for p in packed {
                blocks.push(Block {
                    start: w.pos(),
                    word: p.word,
                });
                w.put(&p.bytes);
                w.end_member().map_err(write_err)?;
            }
        }
        Ok(blocks)
    }
}

/// A data or fragment block as placed in the image.
#[derive(Clone, Copy)]
struct Block {
    start: u64,
    /// The size word (see [`Packed::word`]).
    word: u32,
}

fn add(a: u64, b: usize) -> Result<u64> {
    u64::try_from(b)
        .ok()
        .and_then(|b| a.checked_add(b))
        .ok_or_else(overflow_error)
}

/// Where the data went.
struct Placed<'a> {
    /// Per inode of the plan, where a regular file's blocks are.
    layouts: &'a [Option<FileLayout>],
    /// Every block in image order.
    blocks: &'a [Block],
    data_start: u64,
}

impl SquashfsEncoder {
    /// The inode and directory tables.
    fn metadata(
        &self,
        view: &View<'_>,
        plan: &Plan,
        placed: &Placed<'_>,
        codec: &mut Codec,
    ) -> Result<Metadata> {
        let write_err = |e| Error::io("writing the squashfs metadata", e);
        let mut inodes = MetaWriter::new();
        let mut dirs = MetaWriter::new();
        let mut refs: Vec<u64> = Vec::with_capacity(plan.nodes.len());
        let count = u32::try_from(plan.nodes.len()).map_err(|_| overflow_error())?;
        let bs = u64::from(self.block_size);
        for (i, (node, layout)) in plan.nodes.iter().zip(placed.layouts).enumerate() {
            let inode = view.inode(node.id);
            let number = u32::try_from(i)
                .ok()
                .and_then(|i| i.checked_add(1))
                .ok_or_else(overflow_error)?;
            let mut ty = basic_type(&inode.content);
            let mut body = RecordWriter::with_capacity(64);
            match &inode.content {
                Content::Dir(children) => {
                    let mut listed = Vec::with_capacity(children.len());
                    for (name, child) in children {
                        let n = plan.numbers.get(child).copied().unwrap_or_default();
                        let reference = refs
                            .get(usize_from_u32(n).wrapping_sub(1))
                            .copied()
                            .ok_or_else(|| {
                                Error::tree(display_path(&node.path), "child not planned")
                            })?;
                        listed.push(Listed {
                            name,
                            number: n,
                            reference,
                            kind: basic_type(&view.inode(*child).content),
                        });
                    }
                    let parent = node
                        .parent
                        .and_then(|p| plan.numbers.get(&p).copied())
                        .unwrap_or(count.saturating_add(1));
                    ty = dir_inode(&mut dirs, codec, &listed, node, parent, &mut body)?;
                }
                Content::File(data) => {
                    let not_laid_out = || Error::tree(display_path(&node.path), "not laid out");
                    let l = layout.as_ref().ok_or_else(not_laid_out)?;
                    let own = l
                        .first_job
                        .checked_add(l.blocks)
                        .and_then(|end| placed.blocks.get(l.first_job..end))
                        .ok_or_else(not_laid_out)?;
                    let start = placed
                        .blocks
                        .get(l.first_job)
                        .map_or(placed.data_start, |b| b.start);
                    let size = data.size();
                    // Bytes left out as holes; a short last block counts
                    // for its own length.
                    let sparse = (0u64..)
                        .zip(own)
                        .filter(|(_, b)| b.word == 0)
                        .map(|(i, _)| bs.min(size.saturating_sub(i.saturating_mul(bs))))
                        .sum::<u64>();
                    let (fragment, offset) = l.fragment.unwrap_or((NONE32, 0));
                    let basic = (node.nlink == 1 && sparse == 0 && node.xattr.is_none())
                        .then(|| Some((u32::try_from(start).ok()?, u32::try_from(size).ok()?)))
                        .flatten();
                    match basic {
                        Some((start_block, file_size)) => RegInode {
                            start_block,
                            fragment,
                            offset,
                            file_size,
                        }
                        .encode(&mut body),
                        None => {
                            ty += EXTENDED;
                            LRegInode {
                                start_block: start,
                                file_size: size,
                                sparse,
                                nlink: node.nlink,
                                fragment,
                                offset,
                                xattr: node.xattr.unwrap_or(NONE32),
                            }
                            .encode(&mut body);
                        }
                    }
                    // The block list.
                    for p in own {
                        body.le32(p.word);
                    }
                }
                Content::Symlink(target) => {
                    SymlinkInode {
                        nlink: node.nlink,
                        // At most a page, checked in `plan`.
                        symlink_size: u32::try_from(target.len()).map_err(|_| overflow_error())?,
                    }
                    .encode(&mut body);
                    body.bytes(target);
                }
                Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
                    DevInode {
                        nlink: node.nlink,
                        // Within the ranges `plan` checked.
                        rdev: DevInode::encode_dev(*major, *minor),
                    }
                    .encode(&mut body);
                }
                Content::Fifo | Content::Socket => IpcInode { nlink: node.nlink }.encode(&mut body),
            }
            // Other types' extended forms only add the xattr id at the end.
            if let (Some(xattr), SQUASHFS_SYMLINK_TYPE..=SQUASHFS_SOCKET_TYPE) = (node.xattr, ty) {
                ty += EXTENDED;
                XattrRef { xattr }.encode(&mut body);
            }
            let mut record = RecordWriter::with_capacity(InodeHeader::SIZE + body.len());
            InodeHeader {
                inode_type: ty,
                mode: inode.meta.perm & 0o7777,
                uid: node.uid,
                guid: node.gid,
                mtime: node.mtime,
                inode_number: number,
            }
            .encode(&mut record);
            record.bytes(&body.into_bytes());
            refs.push(inodes.reference());
            inodes.put(codec, &record.into_bytes()).map_err(write_err)?;
        }
        Ok(Metadata {
            inode_table: inodes.finish(codec).map_err(write_err)?,
            dir_table: dirs.finish(codec).map_err(write_err)?,
            refs,
        })
    }
}

/// The inode and directory tables, and each inode's reference by number
/// (the root's last: every directory follows its contents).
struct Metadata {
    inode_table: Vec<u8>,
    dir_table: Vec<u8>,
    refs: Vec<u64>,
}
