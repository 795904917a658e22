//! Inode numbering, the UUID and hash seeds, and each inode's contents
//! before placement.

use std::collections::HashMap;
use std::io;

use rayon::prelude::*;
use rootforge_common::{
    Content, Error, FileData, Inode, InodeId, Kind, Result, Time, View, display_path,
};
use sha2::{Digest, Sha256};

use crate::disk::{
    COMPAT_DIR_INDEX, COMPAT_HAS_JOURNAL, FIRST_INO, INCOMPAT_FILETYPE, JOURNAL_INO,
    RO_COMPAT_METADATA_CSUM, ROOT_INO, crc32c,
};
use crate::layout::{self};
use crate::{ExtEncoder, Variant};

use super::{Dirent, LOST_FOUND, Node, Plan, Prepared, Src, file_type};

fn mix_time(h: &mut Sha256, t: Time) {
    h.update(t.sec.to_le_bytes());
    h.update(t.nsec.to_le_bytes());
}

impl<'a> Plan<'a> {
    pub(super) fn new(enc: &'a ExtEncoder, view: &View<'a>) -> Result<Plan<'a>> {
        let bs = u64::from(enc.block_size);
        let entries = view.sorted_entries();
        let f = &enc.features;
        let journal = f.has_compat(COMPAT_HAS_JOURNAL);
        let root = view.inode(view.root());
        let add_lost_found = root.children().is_none_or(|c| !c.contains_key(LOST_FOUND));

        // Inode numbers: the root is 2, lost+found 11, the rest from 12 in
        // path order (hard links take the number of their first name).
        let mut ino_of: HashMap<InodeId, u32> = HashMap::with_capacity(entries.len());
        ino_of.insert(view.root(), ROOT_INO);
        let mut next = if add_lost_found {
            FIRST_INO + 1
        } else {
            FIRST_INO
        };
        let mut order = Vec::new();
        for e in &entries {
            if let std::collections::hash_map::Entry::Vacant(v) = ino_of.entry(e.ino) {
                v.insert(next);
                next = next.checked_add(1).ok_or_else(|| {
                    Error::tree("/", "more inodes than ext can number (2^32 - 1)")
                })?;
                order.push(e);
            }
        }
        let max_ino = next - 1;
        let mut slots: Vec<Option<Node<'a>>> = (0..max_ino).map(|_| None).collect();
        let mut parents: HashMap<u32, u32> = HashMap::new();
        let mut links: HashMap<u32, u32> = HashMap::new();
        let ftype = |k: Kind| {
            if f.has_incompat(INCOMPAT_FILETYPE) {
                file_type(k)
            } else {
                0
            }
        };
        for e in &entries {
            let ino = ino_of[&e.ino];
            links.insert(ino, e.nlink);
            let inode = view.inode(e.ino);
            let mut children: Vec<Dirent<'a>> = Vec::new();
            for (name, id) in view.children(e.ino) {
                let kind = view.inode(id).kind();
                if kind == Kind::Dir {
                    parents.insert(ino_of[&id], ino);
                }
                children.push((name, ino_of[&id], ftype(kind)));
            }
            if ino == ROOT_INO && add_lost_found {
                let at = children.partition_point(|c| c.0 < LOST_FOUND);
                children.insert(at, (LOST_FOUND, FIRST_INO, ftype(Kind::Dir)));
            }
            if slots[ino as usize - 1].is_none() {
                slots[ino as usize - 1] = Some(Node {
                    ino,
                    src: Src::Tree(inode),
                    path: e.path.clone(),
                    links: 0,
                    parent: 0,
                    children,
                });
            }
        }
        for n in slots.iter_mut().flatten() {
            n.links = links.get(&n.ino).copied().unwrap_or(1);
            n.parent = parents.get(&n.ino).copied().unwrap_or(ROOT_INO);
            if n.ino == ROOT_INO && add_lost_found {
                n.links += 1;
            }
        }
        if add_lost_found {
            slots[FIRST_INO as usize - 1] = Some(Node {
                ino: FIRST_INO,
                src: Src::LostFound,
                path: LOST_FOUND.into(),
                links: 2,
                parent: ROOT_INO,
                children: Vec::new(),
            });
        }
        if journal {
            slots[JOURNAL_INO as usize - 1] = Some(Node {
                ino: JOURNAL_INO,
                src: Src::Journal,
                path: b"<journal>"[..].into(),
                links: 1,
                parent: 0,
                children: Vec::new(),
            });
        }
        let nodes: Vec<Node<'a>> = slots.into_iter().flatten().collect();

        // File data is read once here: for holes, and for a checksum that
        // makes the UUID depend on the contents too.
        let scans: Vec<(Vec<(u64, u64)>, u32)> = nodes
            .par_iter()
            .map(|n| match n.src {
                Src::Tree(Inode {
                    content: Content::File(d),
                    ..
                }) => nonzero_runs(d, bs)
                    .map_err(|e| Error::io(format!("reading {}", display_path(&n.path)), e)),
                _ => Ok((Vec::new(), 0)),
            })
            .collect::<Result<_>>()?;

        let mut large_file = false;
        let uuid = match enc.uuid {
            Some(u) => u,
            None => {
                // From the options and every entry's metadata: the same
                // tree gives the same UUID, another tree almost surely not.
                let mut h = Sha256::new();
                h.update(enc.variant.name());
                h.update(bs.to_le_bytes());
                h.update(enc.label.as_bytes());
                for e in &entries {
                    let i = view.inode(e.ino);
                    h.update((e.path.len() as u64).to_le_bytes());
                    h.update(&e.path);
                    h.update(i.mode().to_le_bytes());
                    h.update(i.meta.uid.to_le_bytes());
                    h.update(i.meta.gid.to_le_bytes());
                    mix_time(&mut h, i.meta.mtime);
                    match &i.content {
                        Content::File(d) => h.update(d.size().to_le_bytes()),
                        Content::Symlink(t) => h.update(t),
                        _ => {}
                    }
                    if let Some((a, b)) = i.rdev() {
                        h.update(a.to_le_bytes());
                        h.update(b.to_le_bytes());
                    }
                    for x in &i.xattrs {
                        h.update(&x.name);
                        h.update(&x.value);
                    }
                }
                for (_, crc) in &scans {
                    h.update(crc.to_le_bytes());
                }
                let d = h.finalize();
                let mut u = [0u8; 16];
                u.copy_from_slice(&d[..16]);
                // An RFC 4122 version 4 layout, as mke2fs's UUIDs have.
                u[6] = (u[6] & 0x0f) | 0x40;
                u[8] = (u[8] & 0x3f) | 0x80;
                u
            }
        };
        // The filesystem's own times (creation, last write and check)
        // are the root directory's mtime.
        let fs_time = root.meta.mtime.sec;
        for e in &entries {
            let i = view.inode(e.ino);
            if let Content::File(d) = &i.content {
                large_file |= d.size() >= 1 << 31;
            }
        }
        let seed_digest = Sha256::new()
            .chain_update(uuid)
            .chain_update(b"htree hash seed")
            .finalize();
        let mut hash_seed = [0u32; 4];
        for (i, w) in hash_seed.iter_mut().enumerate() {
            *w = u32::from_le_bytes([
                seed_digest[4 * i],
                seed_digest[4 * i + 1],
                seed_digest[4 * i + 2],
                seed_digest[4 * i + 3],
            ]);
        }
        let csum_seed = f
            .has_ro_compat(RO_COMPAT_METADATA_CSUM)
            .then(|| crc32c(!0, &uuid));
        let mut plan = Plan {
            enc,
            bs,
            nodes,
            prepared: Vec::new(),
            max_ino,
            uuid,
            hash_seed,
            csum_seed,
            fs_time: u32::try_from(fs_time.clamp(0, i64::from(u32::MAX))).unwrap_or(u32::MAX),
            large_file,
        };
        plan.prepared = plan
            .nodes
            .par_iter()
            .zip(scans.into_par_iter())
            .map(|(n, (runs, _))| plan.prepare(n, runs))
            .collect::<Result<_>>()?;
        Ok(plan)
    }

    pub(super) fn inode_seed(&self, ino: u32) -> Option<u32> {
        self.csum_seed
            .map(|s| crc32c(crc32c(s, &ino.to_le_bytes()), &0u32.to_le_bytes()))
    }

    pub(super) fn prepare(&self, n: &Node<'a>, data: Vec<(u64, u64)>) -> Result<Prepared> {
        let bs = self.block_len();
        let mut p = Prepared::default();
        match n.src {
            // Sized with the filesystem, in `place`.
            Src::Journal => {}
            Src::LostFound => {
                let mut d = self.dir_blocks(n, &[], false);
                // mke2fs gives lost+found 16 KiB so e2fsck has room to
                // reconnect files without allocating.
                let extra = (16384 / bs).saturating_sub(1);
                for _ in 0..extra {
                    d.extend_from_slice(&self.empty_dir_block(n.ino));
                }
                p.blocks = d;
            }
            Src::Tree(inode) => {
                if !inode.xattrs.is_empty() {
                    let room = layout::xattr_room(self.enc.inode_size());
                    let (area, block) = layout::xattrs_of(self.enc, inode, &n.path, room)?;
                    p.xattr_area = area;
                    p.xattr_block = block;
                }
                match &inode.content {
                    Content::Dir(_) => {
                        let htree = self.enc.variant != Variant::Ext2
                            && self.enc.features.has_compat(COMPAT_DIR_INDEX);
                        let linear = self.dir_blocks(n, &n.children, false);
                        if htree && linear.len() > bs {
                            p.blocks = self.htree_blocks(n)?;
                            p.htree = true;
                        } else {
                            p.blocks = linear;
                        }
                    }
                    Content::Symlink(t) if t.len() >= 60 => {
                        let mut b = t.to_vec();
                        b.resize(bs, 0);
                        p.blocks = b;
                    }
                    Content::File(_) => p.data = data,
                    _ => {}
                }
            }
        }
        Ok(p)
    }
}

/// The runs of non-zero blocks of a file (zero blocks become holes), and a
/// crc32c of the bytes read.
fn nonzero_runs(d: &FileData, bs: u64) -> io::Result<(Vec<(u64, u64)>, u32)> {
    let mut crc = 0u32;
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut push = |blk: u64| match runs.last_mut() {
        Some(r) if r.0 + r.1 == blk => r.1 += 1,
        _ => runs.push((blk, 1)),
    };
    let mut scan = |start: u64, bytes: &[u8]| {
        crc = crc32c(crc, bytes);
        for (i, chunk) in bytes.chunks(crate::disk::mem(bs)).enumerate() {
            if chunk.iter().any(|&b| b != 0) {
                push(start / bs + i as u64);
            }
        }
    };
    match d.source() {
        rootforge_common::Source::Zeros => {}
        rootforge_common::Source::Sparse { extents, .. } => {
            // Only the stored ranges can hold non-zero bytes; read them
            // block-aligned.
            let mut buf = Vec::new();
            let mut next = 0u64;
            for e in extents.iter() {
                let from = (e.logical / bs * bs).max(next);
                let to = (e.logical + e.len).div_ceil(bs) * bs;
                let to = to.min(d.size().div_ceil(bs) * bs);
                let mut at = from;
                while at < to {
                    let n = (to - at).min(1 << 20);
                    let real = n.min(d.size() - at);
                    buf.resize(n as usize, 0);
                    buf.fill(0);
                    d.read_at(at, &mut buf[..real as usize])?;
                    scan(at, &buf);
                    at += n;
                }
                next = next.max(to);
            }
        }
        _ => {
            let mut at = 0u64;
            d.for_each_chunk(&mut |chunk| {
                scan(at, chunk);
                at += chunk.len() as u64;
                Ok(())
            })?;
        }
    }
    Ok((runs, crc))
}
