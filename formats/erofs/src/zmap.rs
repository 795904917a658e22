//! The lcluster indexes of compressed files, in both layouts: full
//! (`EROFS_INODE_COMPRESSED_FULL`, one `z_erofs_lcluster_index` per
//! lcluster) and compact (`EROFS_INODE_COMPRESSED_COMPACT`, packs of 2
//! lclusters in 8 bytes or 16 in 32 bytes, each pack ending with a base
//! block address the heads' addresses are counted from), as the kernel's
//! `fs/erofs/zmap.c` decodes them.

use rootforge_common::bytes::le32_at;

use crate::records::{
    LclusterIndex, Z_EROFS_LCLUSTER_TYPE_HEAD1, Z_EROFS_LCLUSTER_TYPE_NONHEAD,
    Z_EROFS_LCLUSTER_TYPE_PLAIN, Z_EROFS_LI_D0_CBLKCNT, Z_EROFS_LI_LCLUSTER_TYPE_MASK,
};

/// One logical cluster of a compressed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lcluster {
    /// A pcluster starts here, `clusterofs` bytes in.
    Head {
        plain: bool,
        clusterofs: u16,
        blkaddr: u32,
    },
    /// Inside the extent of the head `delta0` lclusters back (or, with
    /// [`Z_EROFS_LI_D0_CBLKCNT`], the first one after it, holding the
    /// pcluster's block count); the next head is `delta1` ahead.
    NonHead { delta0: u16, delta1: u16 },
}

impl Lcluster {
    fn type_bits(self) -> u16 {
        match self {
            Lcluster::Head { plain: true, .. } => Z_EROFS_LCLUSTER_TYPE_PLAIN,
            Lcluster::Head { plain: false, .. } => Z_EROFS_LCLUSTER_TYPE_HEAD1,
            Lcluster::NonHead { .. } => Z_EROFS_LCLUSTER_TYPE_NONHEAD,
        }
    }
}

/// The full indexes.
pub(crate) fn full(lcs: &[Lcluster]) -> Vec<LclusterIndex> {
    lcs.iter()
        .map(|&l| match l {
            Lcluster::Head {
                clusterofs,
                blkaddr,
                ..
            } => LclusterIndex {
                di_advise: l.type_bits(),
                di_clusterofs: clusterofs,
                di_u: blkaddr,
            },
            Lcluster::NonHead { delta0, delta1 } => LclusterIndex {
                di_advise: l.type_bits(),
                di_clusterofs: 0,
                di_u: u32::from(delta0) | (u32::from(delta1) << 16),
            },
        })
        .collect()
}

/// Whether the compact layout can hold an lcluster of `2^bits` bytes, and
/// whether its 2-byte packs can.
pub(crate) fn compact_fits(bits: u32) -> (bool, bool) {
    (bits <= 14, bits <= 12)
}

/// The regions of a compact index array: (lclusters, bytes per lcluster),
/// as the kernel places them from `ebase` (the byte after the map header).
fn regions(ebase: u64, total: usize, two_b: bool) -> [(usize, usize); 3] {
    let init = usize::try_from(((32 - ebase % 32) / 4) & 7).unwrap_or(0);
    let two = if two_b && init < total {
        (total - init) / 16 * 16
    } else {
        0
    };
    let init = init.min(total);
    [(init, 4), (two, 2), (total - init - two, 4)]
}

/// The size of the compact indexes of `total` lclusters.
pub(crate) fn compact_len(ebase: u64, total: usize, two_b: bool) -> usize {
    regions(ebase, total, two_b)
        .iter()
        .map(|&(n, w)| n.next_multiple_of(if w == 4 { 2 } else { 16 }) * w)
        .sum()
}

/// `lobits`: the width of a slot's value.
fn lobits(bits: u32) -> u32 {
    bits.max(Z_EROFS_LI_D0_CBLKCNT.trailing_zeros() + 1)
}

/// A pack's geometry: (lclusters, bits per slot).
fn geometry(width: usize) -> (usize, usize) {
    let vcnt = if width == 4 { 2 } else { 16 };
    (vcnt, (vcnt * width - 4) * 8 / vcnt)
}

/// `decode_compactedbits`: slot `i`'s value and type.
fn slot(pack: &[u8], encodebits: usize, lobits: u32, i: usize) -> Option<(u16, u16)> {
    let pos = encodebits * i;
    let mut b = [0u8; 4];
    for (k, byte) in b.iter_mut().enumerate() {
        *byte = pack.get(pos / 8 + k).copied().unwrap_or(0);
    }
    let v = u32::from_le_bytes(b) >> (pos % 8);
    let lo = u16::try_from(v & ((1 << lobits) - 1)).ok()?;
    let t = u16::try_from((v >> lobits) & 3).ok()?;
    Some((lo, t))
}

/// How many blocks the kernel counts from a pack's base to the head in
/// slot `i` (its walk back over the pack in `z_erofs_load_compact_lcluster`).
fn blocks_before(pack: &[u8], encodebits: usize, lb: u32, i: usize, big: bool) -> Option<u32> {
    let mut i = isize::try_from(i).ok()?;
    let mut nblk: u32 = if big { 0 } else { 1 };
    while i > 0 {
        i -= 1;
        let (lo, t) = slot(pack, encodebits, lb, usize::try_from(i).ok()?)?;
        if !big {
            if t == Z_EROFS_LCLUSTER_TYPE_NONHEAD {
                i -= isize::try_from(lo).ok()?;
            }
            if i >= 0 {
                nblk += 1;
            }
        } else if t == Z_EROFS_LCLUSTER_TYPE_NONHEAD {
            if lo & Z_EROFS_LI_D0_CBLKCNT != 0 {
                i -= 1;
                nblk += u32::from(lo & !Z_EROFS_LI_D0_CBLKCNT);
                continue;
            }
            if lo <= 1 {
                return None;
            }
            i -= isize::try_from(lo).ok()? - 2;
        } else {
            nblk += 1;
        }
    }
    Some(nblk)
}

/// The compact indexes, or `None` when a pack's heads cannot share one
/// base address (the caller then writes full indexes).
pub(crate) fn compact(
    lcs: &[Lcluster],
    ebase: u64,
    two_b: bool,
    big: bool,
    bits: u32,
) -> Option<Vec<u8>> {
    let lb = lobits(bits);
    let mut out = Vec::with_capacity(compact_len(ebase, lcs.len(), two_b));
    let mut at = 0usize;
    for (n, width) in regions(ebase, lcs.len(), two_b) {
        let (vcnt, encodebits) = geometry(width);
        let group = &lcs[at..at + n];
        at += n;
        for chunk in group.chunks(vcnt) {
            let mut pack = vec![0u8; vcnt * width];
            for (i, &l) in chunk.iter().enumerate() {
                let lo = match l {
                    Lcluster::Head { clusterofs, .. } => clusterofs,
                    Lcluster::NonHead { delta0, .. } if delta0 & Z_EROFS_LI_D0_CBLKCNT != 0 => {
                        delta0
                    }
                    Lcluster::NonHead { delta1, .. } if i + 1 == vcnt => {
                        delta1.min(u16::try_from((1u32 << lb) - 1).ok()?)
                    }
                    Lcluster::NonHead { delta0, .. } => delta0,
                };
                if u32::from(lo) >= 1 << lb {
                    return None;
                }
                let v = (u32::from(l.type_bits()) << lb) | u32::from(lo);
                let pos = encodebits * i;
                for k in 0..3 {
                    let shifted = (u64::from(v) << (pos % 8)) >> (8 * k);
                    if let Some(b) = pack.get_mut(pos / 8 + k) {
                        *b |= u8::try_from(shifted & 0xff).ok()?;
                    }
                }
            }
            // Padding slots after the last lcluster are heads, so a walk
            // forward stops there.
            let base_at = vcnt * width - 4;
            let mut base: Option<u32> = None;
            for (i, &l) in chunk.iter().enumerate() {
                if let Lcluster::Head { blkaddr, .. } = l {
                    let before = blocks_before(&pack, encodebits, lb, i, big)?;
                    match base {
                        None => base = Some(blkaddr.checked_sub(before)?),
                        Some(b) if b.checked_add(before)? != blkaddr => return None,
                        Some(_) => {}
                    }
                }
            }
            pack[base_at..].copy_from_slice(&base.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&pack);
        }
    }
    Some(out)
}

/// Decodes compact indexes back into lclusters (the reader's side).
pub(crate) fn decode_compact(
    bytes: &[u8],
    ebase: u64,
    total: usize,
    two_b: bool,
    big: bool,
    bits: u32,
) -> Option<Vec<Lcluster>> {
    let lb = lobits(bits);
    let mut out = Vec::with_capacity(total);
    let mut off = 0usize;
    for (n, width) in regions(ebase, total, two_b) {
        let (vcnt, encodebits) = geometry(width);
        for k in 0..n {
            let pack_at = off + k / vcnt * vcnt * width;
            let pack = bytes.get(pack_at..pack_at + vcnt * width)?;
            let i = k % vcnt;
            let (lo, t) = slot(pack, encodebits, lb, i)?;
            out.push(match t {
                Z_EROFS_LCLUSTER_TYPE_NONHEAD => {
                    if lo & Z_EROFS_LI_D0_CBLKCNT != 0 {
                        Lcluster::NonHead {
                            delta0: lo,
                            delta1: 0,
                        }
                    } else if i + 1 == vcnt {
                        let prev = i.checked_sub(1).and_then(|p| slot(pack, encodebits, lb, p));
                        let d0 = match prev {
                            Some((plo, Z_EROFS_LCLUSTER_TYPE_NONHEAD)) => {
                                if plo & Z_EROFS_LI_D0_CBLKCNT != 0 {
                                    1
                                } else {
                                    plo
                                }
                            }
                            _ => 0,
                        };
                        Lcluster::NonHead {
                            delta0: d0.checked_add(1)?,
                            delta1: lo,
                        }
                    } else {
                        Lcluster::NonHead {
                            delta0: lo,
                            delta1: 0,
                        }
                    }
                }
                Z_EROFS_LCLUSTER_TYPE_PLAIN | Z_EROFS_LCLUSTER_TYPE_HEAD1 => {
                    let base = le32_at(pack, vcnt * width - 4)?;
                    let before = blocks_before(pack, encodebits, lb, i, big)?;
                    Lcluster::Head {
                        plain: t == Z_EROFS_LCLUSTER_TYPE_PLAIN,
                        clusterofs: lo,
                        blkaddr: base.checked_add(before)?,
                    }
                }
                _ => return None,
            });
        }
        off += n.next_multiple_of(vcnt) * width;
    }
    Some(out)
}

/// Decodes full indexes.
pub(crate) fn decode_full(ix: &[LclusterIndex]) -> Option<Vec<Lcluster>> {
    ix.iter()
        .map(|e| match e.di_advise & Z_EROFS_LI_LCLUSTER_TYPE_MASK {
            Z_EROFS_LCLUSTER_TYPE_NONHEAD => Some(Lcluster::NonHead {
                delta0: u16::try_from(e.di_u & 0xffff).ok()?,
                delta1: u16::try_from(e.di_u >> 16).ok()?,
            }),
            t @ (Z_EROFS_LCLUSTER_TYPE_PLAIN | Z_EROFS_LCLUSTER_TYPE_HEAD1) => {
                Some(Lcluster::Head {
                    plain: t == Z_EROFS_LCLUSTER_TYPE_PLAIN,
                    clusterofs: e.di_clusterofs,
                    blkaddr: e.di_u,
                })
            }
            _ => None,
        })
        .collect()
}
