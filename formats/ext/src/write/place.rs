//! Sizing the filesystem and placing every inode's blocks.

use rootforge_common::{Content, Error, Result};

use crate::Size;
use crate::disk::{COMPAT_HAS_JOURNAL, INCOMPAT_EXTENTS};
use crate::layout::{self, Alloc, Geometry, Mapped, NeedBlocks, Run};

use super::{Placed, Plan, Src, journal_blocks};

impl Plan<'_> {
    pub(super) fn needed_inodes(&self) -> u64 {
        u64::from(self.max_ino)
    }

    /// Picks the block count and places every inode's blocks.
    pub(super) fn size(&self) -> Result<(Geometry, Vec<Placed>)> {
        let want_inodes = |blocks: u64| -> u64 {
            match (self.enc.inodes, self.enc.size) {
                (Some(n), _) => u64::from(n),
                // Room for new files in proportion to the free space asked
                // for, at mke2fs's one inode per 16 KiB.
                (None, Size::Auto { headroom }) => self.needed_inodes() + headroom / 16384,
                (None, Size::Fixed(_)) => self
                    .needed_inodes()
                    .max(blocks.saturating_mul(self.bs) / 16384),
            }
        };
        if let Some(n) = self.enc.inodes
            && u64::from(n) < self.needed_inodes()
        {
            return Err(self.too_small(format!("{n} inodes")));
        }
        match self.enc.size {
            Size::Auto { headroom } => self.auto_size(headroom.div_ceil(self.bs), &want_inodes),
            Size::Fixed(bytes) => {
                let blocks = bytes / self.bs;
                if blocks > u64::from(u32::MAX) {
                    return Err(self.limit_blocks(blocks));
                }
                let err = || self.too_small(format!("{bytes} bytes"));
                let geo = Geometry::new(self.enc, blocks, want_inodes(blocks), true)
                    .map_err(|_| err())?;
                if geo.inodes() > u64::from(u32::MAX) {
                    return Err(self.limit_blocks(blocks));
                }
                let (placed, alloc) = self.place(&geo);
                if alloc.short > 0 {
                    return Err(err());
                }
                Ok((geo, placed))
            }
        }
    }

    pub(super) fn limit_blocks(&self, blocks: u64) -> Error {
        Error::Limit {
            path: "/".into(),
            format: self.enc.variant.name(),
            what: "block count (without 64bit)",
            value: blocks,
            limit: u64::from(u32::MAX),
        }
    }

    pub(super) fn auto_size(
        &self,
        headroom: u64,
        want_inodes: &dyn Fn(u64) -> u64,
    ) -> Result<(Geometry, Vec<Placed>)> {
        let data: u64 = self
            .prepared
            .iter()
            .map(|p| {
                (p.blocks.len() as u64 / self.bs)
                    + p.data.iter().map(|r| r.1).sum::<u64>()
                    + u64::from(!p.xattr_block.is_empty())
            })
            .sum();
        let inode_blocks = (want_inodes(0) * u64::from(self.enc.inode_size())).div_ceil(self.bs);
        let mut blocks = data + inode_blocks + headroom + 16;
        if self.enc.features.has_compat(COMPAT_HAS_JOURNAL) {
            blocks += journal_blocks(blocks);
        }
        loop {
            if blocks > u64::from(u32::MAX) {
                return Err(self.limit_blocks(blocks));
            }
            let geo = match Geometry::new(self.enc, blocks, want_inodes(blocks), false) {
                Ok(g) => g,
                Err(NeedBlocks(n)) => {
                    blocks = n.max(blocks + 1);
                    continue;
                }
            };
            let (placed, alloc) = self.place(&geo);
            let free = alloc.free();
            if alloc.short == 0 && free >= headroom {
                return Ok((geo, placed));
            }
            blocks += alloc.short + headroom.saturating_sub(free);
        }
    }

    pub(super) fn too_small(&self, given: String) -> Error {
        let need = self
            .auto_size(0, &|_| self.needed_inodes())
            .map(|(g, _)| g.blocks * self.bs);
        let what = match need {
            Ok(bytes) => format!(
                "the tree in {given}: it needs {bytes} bytes and {} inodes",
                self.needed_inodes()
            ),
            Err(e) => format!("the tree in {given}: {e}"),
        };
        Error::Unsupported {
            path: "/".into(),
            format: self.enc.variant.name(),
            what,
        }
    }

    /// Allocates every inode's blocks in inode order.
    pub(super) fn place(&self, geo: &Geometry) -> (Vec<Placed>, Alloc) {
        let mut alloc = Alloc::new(geo);
        let bs = self.block_len();
        let extents = self.enc.features.has_incompat(INCOMPAT_EXTENTS);
        let mut placed = Vec::with_capacity(self.nodes.len());
        for (n, p) in self.nodes.iter().zip(&self.prepared) {
            let mut runs = Vec::new();
            let mut pieces = Vec::new();
            let mut add = |lblk: u64, count: u64, alloc: &mut Alloc| {
                pieces.clear();
                alloc.take(count, &mut pieces);
                let mut l = lblk;
                for &(pblk, len) in &pieces {
                    runs.push(Run { lblk: l, pblk, len });
                    l += len;
                }
            };
            let dir_blocks = p.blocks.len() as u64 / self.bs;
            if dir_blocks > 0 {
                add(0, dir_blocks, &mut alloc);
            }
            for &(l, c) in &p.data {
                add(l, c, &mut alloc);
            }
            if matches!(n.src, Src::Journal) {
                add(0, journal_blocks(geo.blocks), &mut alloc);
            }
            // Devices, FIFOs, sockets and fast symlinks use `i_block` for
            // themselves: no extent header, no block pointers.
            let unmapped = runs.is_empty()
                && matches!(n.src, Src::Tree(i) if !matches!(i.content, Content::File(_) | Content::Dir(_)));
            let mapped = if unmapped {
                Mapped::default()
            } else if extents {
                layout::extent_tree(&runs, bs, &mut alloc, self.inode_seed(n.ino))
            } else {
                layout::block_map(&runs, bs, &mut alloc)
            };
            let xattr_block = (!p.xattr_block.is_empty()).then(|| alloc.one());
            placed.push(Placed {
                runs,
                mapped,
                xattr_block,
            });
        }
        (placed, alloc)
    }
}
