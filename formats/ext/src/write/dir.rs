//! Directory blocks: linear blocks and htree indexes.

use rootforge_common::{Error, Result, display_path};

use crate::disk::{self, INCOMPAT_FILETYPE, crc32c, pad4, put16, put32};
use crate::hash::dx_hash;

use super::{Dirent, Node, Plan};

impl Plan<'_> {
    pub(super) fn csum_tail(&self) -> usize {
        if self.csum_seed.is_some() { 12 } else { 0 }
    }

    pub(super) fn finish_dir_block(&self, block: &mut [u8], last: usize, ino: u32) {
        let usable = block.len() - self.csum_tail();
        put16(block, last + 4, (usable - last) as u16);
        if let Some(seed) = self.inode_seed(ino) {
            put32(block, usable, 0);
            put16(block, usable + 4, 12);
            block[usable + 6] = 0;
            block[usable + 7] = 0xDE;
            let crc = crc32c(seed, &block[..usable]);
            put32(block, usable + 8, crc);
        }
    }

    pub(super) fn empty_dir_block(&self, ino: u32) -> Vec<u8> {
        let mut b = vec![0u8; self.bs as usize];
        self.finish_dir_block(&mut b, 0, ino);
        b
    }

    /// Linear directory blocks: ".", ".." (unless `leaves_only`) and the
    /// entries, packed in order.
    pub(super) fn dir_blocks(
        &self,
        n: &Node<'_>,
        entries: &[Dirent<'_>],
        leaves_only: bool,
    ) -> Vec<u8> {
        let bs = self.bs as usize;
        let usable = bs - self.csum_tail();
        let ft_dir = if self.enc.features.has_incompat(INCOMPAT_FILETYPE) {
            disk::FT_DIR
        } else {
            0
        };
        let dots: [(&[u8], u32, u8); 2] = [(b".", n.ino, ft_dir), (b"..", n.parent, ft_dir)];
        let head: &[(&[u8], u32, u8)] = if leaves_only { &[] } else { &dots };
        let mut out = vec![0u8; bs];
        let mut base = 0;
        let mut off = 0;
        let mut last = 0;
        for &(name, ino, ft) in head.iter().chain(entries) {
            let rec = pad4(8 + name.len());
            if off + rec > usable {
                self.finish_dir_block(&mut out[base..base + bs], last, n.ino);
                base += bs;
                out.resize(base + bs, 0);
                off = 0;
            }
            let b = &mut out[base..base + bs];
            put32(b, off, ino);
            put16(b, off + 4, rec as u16);
            b[off + 6] = name.len() as u8;
            b[off + 7] = ft;
            b[off + 8..off + 8 + name.len()].copy_from_slice(name);
            last = off;
            off += rec;
        }
        self.finish_dir_block(&mut out[base..base + bs], last, n.ino);
        out
    }

    /// An htree directory: the dx root, interior nodes if needed, then the
    /// leaves with entries sorted by hash.
    pub(super) fn htree_blocks(&self, n: &Node<'_>) -> Result<Vec<u8>> {
        let bs = self.bs as usize;
        let mut hashed: Vec<(u32, u32, &[u8], u32, u8)> = n
            .children
            .iter()
            .map(|&(name, ino, ft)| {
                let (h, minor) = dx_hash(name, &self.hash_seed);
                (h, minor, name, ino, ft)
            })
            .collect();
        hashed.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        // Pack leaves, remembering each leaf's first and last hash.
        let usable = bs - self.csum_tail();
        let mut leaves: Vec<(u32, u32, Vec<Dirent<'_>>)> = Vec::new();
        let mut off = usable;
        for &(h, _, name, ino, ft) in &hashed {
            let rec = pad4(8 + name.len());
            if off + rec > usable {
                leaves.push((h, h, Vec::new()));
                off = 0;
            }
            if let Some(leaf) = leaves.last_mut() {
                leaf.1 = h;
                leaf.2.push((name, ino, ft));
            }
            off += rec;
        }
        // Index entries for the leaves: hash (with the collision bit when a
        // hash continues from the previous leaf) and logical block.
        let tail = if self.csum_seed.is_some() { 8 } else { 0 };
        let root_limit = (bs - 32 - tail) / 8;
        let node_limit = (bs - 8 - tail) / 8;
        let levels = if leaves.len() <= root_limit { 0 } else { 1 };
        let nodes = if levels == 0 {
            0
        } else {
            leaves.len().div_ceil(node_limit)
        };
        if nodes > root_limit {
            return Err(Error::Limit {
                path: display_path(&n.path),
                format: self.enc.variant.name(),
                what: "directory index leaf blocks",
                value: leaves.len() as u64,
                limit: (root_limit * node_limit) as u64,
            });
        }
        let first_leaf = 1 + nodes;
        let leaf_index: Vec<(u32, u32)> = leaves
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let collision = i > 0 && leaves[i - 1].1 == l.0;
                (l.0 | u32::from(collision), (first_leaf + i) as u32)
            })
            .collect();
        let total = first_leaf + leaves.len();
        let mut out = vec![0u8; total * bs];
        let ft_dir = if self.enc.features.has_incompat(INCOMPAT_FILETYPE) {
            disk::FT_DIR
        } else {
            0
        };
        // The root: "." and ".." (spanning the block), then the dx info.
        {
            let b = &mut out[..bs];
            put32(b, 0, n.ino);
            put16(b, 4, 12);
            b[6] = 1;
            b[7] = ft_dir;
            b[8] = b'.';
            put32(b, 12, n.parent);
            put16(b, 16, (bs - 12) as u16);
            b[18] = 2;
            b[19] = ft_dir;
            b[20] = b'.';
            b[21] = b'.';
            b[28] = 1; // half_md4
            b[29] = 8;
            b[30] = levels as u8;
        }
        let root_entries: Vec<(u32, u32)> = if levels == 0 {
            leaf_index.clone()
        } else {
            leaf_index
                .chunks(node_limit)
                .enumerate()
                .map(|(i, c)| (c[0].0, (1 + i) as u32))
                .collect()
        };
        self.dx_entries(&mut out[..bs], 32, root_limit, &root_entries, n.ino);
        if levels == 1 {
            for (i, chunk) in leaf_index.chunks(node_limit).enumerate() {
                let b = &mut out[(1 + i) * bs..(2 + i) * bs];
                put16(b, 4, bs as u16);
                self.dx_entries(b, 8, node_limit, chunk, n.ino);
            }
        }
        for (i, (_, _, entries)) in leaves.iter().enumerate() {
            let rendered = self.dir_blocks(n, entries, true);
            let at = (first_leaf + i) * bs;
            out[at..at + bs].copy_from_slice(&rendered[..bs]);
        }
        Ok(out)
    }

    /// A dx count/limit header at `at` followed by `(hash, block)` entries;
    /// the first entry's hash slot holds the count and limit.
    pub(super) fn dx_entries(
        &self,
        b: &mut [u8],
        at: usize,
        limit: usize,
        entries: &[(u32, u32)],
        ino: u32,
    ) {
        put16(b, at, limit as u16);
        put16(b, at + 2, entries.len() as u16);
        for (i, &(h, blk)) in entries.iter().enumerate() {
            if i > 0 {
                put32(b, at + 8 * i, h);
            }
            put32(b, at + 8 * i + 4, blk);
        }
        if let Some(seed) = self.inode_seed(ino) {
            let used = at + 8 * entries.len();
            let crc = crc32c(crc32c(seed, &b[..used]), &[0u8; 8]);
            let tail = at + 8 * limit;
            put32(b, tail, 0);
            put32(b, tail + 4, crc);
        }
    }
}
