//! The image's regions in block order: superblocks, descriptors,
//! bitmaps, inode tables and contents.

use rayon::prelude::*;
use rootforge_common::{Content, FileData, Inode, Kind, Report, Result, Sink};

use rootforge_common::bytes::RecordWriter;

use crate::disk::{FIRST_INO, JOURNAL_INO, crc32c, lo16, lo32, mem};
use crate::layout::Geometry;
use crate::raw::Record;
use crate::raw::superblock::{GroupDesc, SuperBlock};
use crate::{Size, xattr};

use super::writer::Writer;
use super::{Placed, Plan, Src, io_err, journal_blocks};

impl Plan<'_> {
    pub(super) fn emit(
        &self,
        geo: &Geometry,
        placed: &[Placed],
        out: &mut dyn Sink,
    ) -> Result<Report> {
        let bs = self.block_len();
        let isz = usize::from(self.enc.inode_size());
        let ipg = u64::from(geo.ipg);
        let groups = mem(geo.groups);

        // Inodes, rendered in parallel, then gathered per group.
        let journal_len = journal_blocks(geo.blocks);
        let rendered: Vec<(u32, Vec<u8>)> = self
            .nodes
            .par_iter()
            .zip(placed.par_iter())
            .zip(self.prepared.par_iter())
            .map(|((n, pl), pr)| (n.ino, self.render_inode(n, pl, pr, journal_len)))
            .collect();
        let mut tables: Vec<Vec<u8>> = vec![Vec::new(); groups];
        let mut used_dirs = vec![0u32; groups];
        let mut top_ino = vec![0u64; groups];
        for ((ino, buf), n) in rendered.iter().zip(&self.nodes) {
            let idx = u64::from(*ino - 1);
            let g = mem(idx / ipg);
            let local = mem(idx % ipg);
            let t = &mut tables[g];
            if t.len() < (local + 1) * isz {
                t.resize((local + 1) * isz, 0);
            }
            t[local * isz..(local + 1) * isz].copy_from_slice(buf);
            top_ino[g] = top_ino[g].max(local as u64 + 1);
            let is_dir = match n.src {
                Src::Tree(i) => i.kind() == Kind::Dir,
                Src::LostFound => true,
                Src::Journal => false,
            };
            if is_dir {
                used_dirs[g] += 1;
            }
        }
        // Reserved inodes below the first free one count as used.
        top_ino[0] = top_ino[0].max(u64::from(FIRST_INO - 1));

        // Block usage, then each group's slice of it.
        let mut bitmap = vec![0u8; mem(geo.blocks).div_ceil(8)];
        mark(&mut bitmap, 0, geo.first_data_block);
        for (s, l) in geo.used_ranges() {
            mark(&mut bitmap, s, l);
        }
        for pl in placed {
            for r in &pl.runs {
                mark(&mut bitmap, r.pblk, r.len);
            }
            for (b, _) in &pl.mapped.meta {
                mark(&mut bitmap, *b, 1);
            }
            if let Some(b) = pl.xattr_block {
                mark(&mut bitmap, b, 1);
            }
        }
        let mut free_blocks = vec![0u32; groups];
        let mut block_bitmaps = vec![vec![0u8; bs]; groups];
        for g in 0..geo.groups {
            let len = geo.group_len(g);
            let bm = &mut block_bitmaps[mem(g)];
            copy_bits(&bitmap, geo.start(g), len, bm);
            let used: u32 = bm.iter().map(|b| b.count_ones()).sum();
            // Bits past the end of the filesystem are set.
            mark(bm, len, geo.bpg - len);
            free_blocks[mem(g)] = lo32(len) - used;
        }
        let mut inode_bitmaps = vec![vec![0u8; bs]; groups];
        let mut free_inodes = vec![0u32; groups];
        for g in 0..groups {
            let bm = &mut inode_bitmaps[g];
            mark(bm, 0, top_ino[g]);
            mark(bm, ipg, (bs * 8) as u64 - ipg);
            free_inodes[g] = lo32(ipg - top_ino[g]);
        }

        // Group descriptors.
        let csum = self.csum_seed;
        let mut gdt = RecordWriter::with_capacity(mem(geo.gdt_blocks) * bs);
        for g in 0..groups {
            let [bb, ib, it] = geo.meta[g];
            let mut d = GroupDesc {
                bg_block_bitmap_lo: lo32(bb),
                bg_inode_bitmap_lo: lo32(ib),
                bg_inode_table_lo: lo32(it),
                bg_free_blocks_count_lo: per_group(u64::from(free_blocks[g])),
                bg_free_inodes_count_lo: per_group(u64::from(free_inodes[g])),
                bg_used_dirs_count_lo: per_group(u64::from(used_dirs[g])),
                ..GroupDesc::default()
            };
            if let Some(seed) = csum {
                d.bg_flags = BG_INODE_ZEROED;
                let bcrc = crc32c(seed, &block_bitmaps[g][..(geo.bpg / 8) as usize]);
                let icrc = crc32c(seed, &inode_bitmaps[g][..(ipg / 8) as usize]);
                d.bg_block_bitmap_csum_lo = lo16(bcrc);
                d.bg_inode_bitmap_csum_lo = lo16(icrc);
                d.bg_itable_unused_lo = per_group(ipg - top_ino[g]);
                let crc = crc32c(crc32c(seed, &lo32(g as u64).to_le_bytes()), &d.to_bytes());
                d.bg_checksum = lo16(crc);
            }
            d.encode(&mut gdt);
        }
        let mut gdt = gdt.into_bytes();
        gdt.resize(mem(geo.gdt_blocks) * bs, 0);
        let total_free_blocks: u64 = free_blocks.iter().map(|&f| u64::from(f)).sum();
        let total_free_inodes: u64 = free_inodes.iter().map(|&f| u64::from(f)).sum();
        let journal_iblock = self
            .nodes
            .iter()
            .zip(placed)
            .find(|(n, _)| n.ino == JOURNAL_INO)
            .map(|(_, p)| p.mapped.i_block);
        let sb_args = SbArgs {
            geo,
            free_blocks: total_free_blocks,
            free_inodes: total_free_inodes,
            journal: journal_iblock.map(|ib| (ib, journal_len * self.bs)),
        };

        // Regions in block order.
        let mut regions: Vec<(u64, Fill<'_>)> = Vec::new();
        for g in 0..geo.groups {
            if geo.has_backup(g) {
                let mut b = vec![0u8; bs];
                let at = if g == 0 && bs > 1024 { 1024 } else { 0 };
                b[at..at + SuperBlock::SIZE].copy_from_slice(&self.superblock(&sb_args, g));
                b.extend_from_slice(&gdt);
                regions.push((geo.start(g), Fill::Own(b)));
            }
            let [bb, ib, it] = geo.meta[mem(g)];
            regions.push((bb, Fill::Mem(&block_bitmaps[mem(g)])));
            regions.push((ib, Fill::Mem(&inode_bitmaps[mem(g)])));
            if !tables[mem(g)].is_empty() {
                regions.push((it, Fill::Mem(&tables[mem(g)])));
            }
        }
        for ((n, pl), pr) in self.nodes.iter().zip(placed).zip(&self.prepared) {
            for r in &pl.runs {
                let fill = match n.src {
                    Src::Journal if r.lblk == 0 => {
                        regions.push((r.pblk, Fill::Own(self.journal_super(journal_len))));
                        if r.len > 1 {
                            regions.push((r.pblk + 1, Fill::Skip(r.len - 1)));
                        }
                        continue;
                    }
                    Src::Journal => Fill::Skip(r.len),
                    Src::Tree(Inode {
                        content: Content::File(d),
                        ..
                    }) => Fill::Data(d, r.lblk * self.bs, r.len * self.bs),
                    _ => {
                        let s = mem(r.lblk * self.bs);
                        Fill::Mem(&pr.blocks[s..s + mem(r.len * self.bs)])
                    }
                };
                regions.push((r.pblk, fill));
            }
            for (b, data) in &pl.mapped.meta {
                regions.push((*b, Fill::Mem(data)));
            }
            if let Some(b) = pl.xattr_block {
                regions.push((
                    b,
                    Fill::Own(xattr::render_block(&pr.xattr_block, bs, b, self.csum_seed)),
                ));
            }
        }
        regions.sort_by_key(|r| r.0);

        let total = match self.enc.size {
            Size::Fixed(bytes) => bytes,
            Size::Auto { .. } => geo.blocks * self.bs,
        };
        let mut w = Writer::new(out);
        for (blk, fill) in &regions {
            let at = blk * self.bs;
            w.skip_to(at).map_err(io_err)?;
            match fill {
                Fill::Mem(b) => w.put(b),
                Fill::Own(b) => w.put(b),
                Fill::Skip(n) => w.skip(n * self.bs),
                Fill::Data(d, off, len) => w.data(d, *off, *len),
            }
            .map_err(io_err)?;
        }
        w.skip_to(total).map_err(io_err)?;
        w.flush().map_err(io_err)?;
        Ok(Report {
            bytes: total,
            warnings: Vec::new(),
        })
    }
}

pub(super) struct SbArgs<'a> {
    pub(super) geo: &'a Geometry,
    pub(super) free_blocks: u64,
    pub(super) free_inodes: u64,
    pub(super) journal: Option<([u8; 60], u64)>,
}

/// `EXT4_BG_INODE_ZEROED`: the group's inode table is zeroed.
const BG_INODE_ZEROED: u16 = 4;

/// A count of a group's blocks or inodes as 16 bits.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a group holds at most 8 * 4096 blocks and as many inodes"
)]
fn per_group(n: u64) -> u16 {
    n as u16
}

/// What goes at a block.
enum Fill<'a> {
    Mem(&'a [u8]),
    Own(Vec<u8>),
    /// `len` bytes of a file from byte `offset`, zero-padded past its end.
    Data(&'a FileData, u64, u64),
    Skip(u64),
}

/// Sets bits `start..start + len`, whole bytes at a time in the middle.
fn mark(bits: &mut [u8], start: u64, len: u64) {
    let (mut b, end) = (start, start + len);
    while b < end && b % 8 != 0 {
        bits[(b / 8) as usize] |= 1 << (b % 8);
        b += 1;
    }
    let whole = (end - b) / 8;
    bits[mem(b / 8)..mem(b / 8 + whole)].fill(0xff);
    b += whole * 8;
    while b < end {
        bits[(b / 8) as usize] |= 1 << (b % 8);
        b += 1;
    }
}

/// Copies bits `start..start + len` of `src` to the start of `dst`.
fn copy_bits(src: &[u8], start: u64, len: u64, dst: &mut [u8]) {
    let shift = (start % 8) as u32;
    let first = (start / 8) as usize;
    let bytes = mem(len.div_ceil(8));
    for (i, d) in dst[..bytes].iter_mut().enumerate() {
        let lo = src.get(first + i).copied().unwrap_or(0);
        let hi = src.get(first + i + 1).copied().unwrap_or(0);
        *d = if shift == 0 {
            lo
        } else {
            (lo >> shift) | (hi << (8 - shift))
        };
    }
    // Bits past `len` in the last byte belong to the next group.
    if len % 8 != 0 {
        dst[bytes - 1] &= (1u8 << (len % 8)) - 1;
    }
}
