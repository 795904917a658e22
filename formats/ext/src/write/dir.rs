//! Directory blocks: linear blocks and htree indexes.

use rootforge_common::bytes::RecordWriter;
use rootforge_common::{Error, Result, display_path};

use crate::disk::{self, INCOMPAT_FILETYPE, crc32c, in_block, pad4};
use crate::hash::dx_hash;
use crate::raw::Record;
use crate::raw::dir::{DirEntry2, DirEntryTail, DxCountLimit, DxEntry, DxRootInfo, DxTail};

use super::{Dirent, Node, Plan};

impl Plan<'_> {
    /// The bytes a leaf block's checksum tail takes.
    pub(super) fn csum_tail(&self) -> usize {
        if self.csum_seed.is_some() {
            DirEntryTail::SIZE
        } else {
            0
        }
    }

    /// The bytes an index node's checksum tail takes.
    fn dx_tail(&self) -> usize {
        if self.csum_seed.is_some() {
            DxTail::SIZE
        } else {
            0
        }
    }

    fn ft_dir(&self) -> u8 {
        if self.enc.features.has_incompat(INCOMPAT_FILETYPE) {
            disk::FT_DIR
        } else {
            0
        }
    }

    /// One leaf block of `entries`, which fit it: each entry's `rec_len`
    /// reaches the next, the last one's the checksum tail (or the end).
    fn leaf_block(&self, entries: &[Dirent<'_>], ino: u32) -> Vec<u8> {
        let bs = self.block_len();
        let usable = bs - self.csum_tail();
        let mut w = RecordWriter::with_capacity(bs);
        if entries.is_empty() {
            // An empty block: one unused entry spanning it.
            DirEntry2 {
                inode: 0,
                rec_len: in_block(usable),
                name_len: 0,
                file_type: 0,
            }
            .encode(&mut w);
        }
        for (i, &(name, inode, file_type)) in entries.iter().enumerate() {
            let rec = if i + 1 == entries.len() {
                usable - w.len()
            } else {
                pad4(DirEntry2::SIZE + name.len())
            };
            DirEntry2 {
                inode,
                rec_len: in_block(rec),
                name_len: disk::name_len(name),
                file_type,
            }
            .encode(&mut w);
            w.bytes(name).zeros(rec - DirEntry2::SIZE - name.len());
        }
        let mut b = w.into_bytes();
        b.resize(usable, 0);
        if let Some(seed) = self.inode_seed(ino) {
            let det_checksum = crc32c(seed, &b);
            b.extend_from_slice(&DirEntryTail { det_checksum }.to_bytes());
        }
        b.resize(bs, 0);
        b
    }

    /// An empty leaf block of the directory `ino`.
    pub(super) fn empty_dir_block(&self, ino: u32) -> Vec<u8> {
        self.leaf_block(&[], ino)
    }

    /// Linear directory blocks: ".", ".." (unless `leaves_only`) and the
    /// entries, packed in order.
    pub(super) fn dir_blocks(
        &self,
        n: &Node<'_>,
        entries: &[Dirent<'_>],
        leaves_only: bool,
    ) -> Vec<u8> {
        let usable = self.block_len() - self.csum_tail();
        let ft_dir = self.ft_dir();
        let dots: [Dirent<'_>; 2] = [(b".", n.ino, ft_dir), (b"..", n.parent, ft_dir)];
        let head: &[Dirent<'_>] = if leaves_only { &[] } else { &dots };
        let mut out = Vec::new();
        let mut block: Vec<Dirent<'_>> = Vec::new();
        let mut off = 0;
        for &e in head.iter().chain(entries) {
            let rec = pad4(DirEntry2::SIZE + e.0.len());
            if off + rec > usable {
                out.extend_from_slice(&self.leaf_block(&block, n.ino));
                block.clear();
                off = 0;
            }
            block.push(e);
            off += rec;
        }
        out.extend_from_slice(&self.leaf_block(&block, n.ino));
        out
    }

    /// An htree directory: the dx root, interior nodes if needed, then the
    /// leaves with entries sorted by hash.
    pub(super) fn htree_blocks(&self, n: &Node<'_>) -> Result<Vec<u8>> {
        let bs = self.block_len();
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
            let rec = pad4(DirEntry2::SIZE + name.len());
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
        let root_head = 2 * (DirEntry2::SIZE + 4) + DxRootInfo::SIZE;
        let root_limit = (bs - root_head - self.dx_tail()) / DxEntry::SIZE;
        let node_limit = (bs - DirEntry2::SIZE - self.dx_tail()) / DxEntry::SIZE;
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
        let block_no = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        let leaf_index: Vec<DxEntry> = leaves
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let collision = i > 0 && leaves[i - 1].1 == l.0;
                DxEntry {
                    hash: l.0 | u32::from(collision),
                    block: block_no(first_leaf + i),
                }
            })
            .collect();
        let mut out = Vec::with_capacity((first_leaf + leaves.len()) * bs);
        // The root: "." and ".." (spanning the block), then the dx info.
        let ft_dir = self.ft_dir();
        let mut w = RecordWriter::with_capacity(bs);
        let dot = DirEntry2::SIZE + 4;
        DirEntry2 {
            inode: n.ino,
            rec_len: in_block(dot),
            name_len: 1,
            file_type: ft_dir,
        }
        .encode(&mut w);
        w.padded(b".", 4, 0);
        DirEntry2 {
            inode: n.parent,
            rec_len: in_block(bs - dot),
            name_len: 2,
            file_type: ft_dir,
        }
        .encode(&mut w);
        w.padded(b"..", 4, 0);
        DxRootInfo {
            hash_version: disk::DX_HASH_HALF_MD4,
            indirect_levels: levels,
        }
        .encode(&mut w);
        let root_entries: Vec<DxEntry> = if levels == 0 {
            leaf_index.clone()
        } else {
            leaf_index
                .chunks(node_limit)
                .enumerate()
                .map(|(i, c)| DxEntry {
                    hash: c[0].hash,
                    block: block_no(1 + i),
                })
                .collect()
        };
        out.extend_from_slice(&self.dx_node(w, root_limit, &root_entries, n.ino));
        if levels == 1 {
            for chunk in leaf_index.chunks(node_limit) {
                // A node starts with a fake entry spanning the block.
                let mut w = RecordWriter::with_capacity(bs);
                DirEntry2 {
                    inode: 0,
                    rec_len: in_block(bs),
                    name_len: 0,
                    file_type: 0,
                }
                .encode(&mut w);
                out.extend_from_slice(&self.dx_node(w, node_limit, chunk, n.ino));
            }
        }
        for (_, _, entries) in &leaves {
            out.extend_from_slice(&self.leaf_block(entries, n.ino));
        }
        Ok(out)
    }

    /// An index block: its head in `w`, then the count and limit, the
    /// entries (the first one's hash slot holds the count and limit), and
    /// the checksum tail after `limit` entries.
    fn dx_node(&self, mut w: RecordWriter, limit: usize, entries: &[DxEntry], ino: u32) -> Vec<u8> {
        let bs = self.block_len();
        let head = w.len();
        DxCountLimit {
            limit: in_block(limit),
            count: in_block(entries.len()),
            block: entries.first().map_or(0, |e| e.block),
        }
        .encode(&mut w);
        for e in entries.iter().skip(1) {
            e.encode(&mut w);
        }
        let mut b = w.into_bytes();
        if let Some(seed) = self.inode_seed(ino) {
            // The tail is summed with a zero checksum.
            let dt_checksum = crc32c(crc32c(seed, &b), &[0u8; DxTail::SIZE]);
            b.resize(head + DxEntry::SIZE * limit, 0);
            b.extend_from_slice(&DxTail { dt_checksum }.to_bytes());
        }
        b.resize(bs, 0);
        b
    }
}
