//! Data and fragment blocks: files cut into full blocks, tail ends and
//! small files packed into fragments, each block compressed on its own.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::io;

use rayon::prelude::*;
use rootforge_common::{Content, Error, FileData, Result, View, display_path};

use crate::comp::Codec;
use crate::plan::Node;
use crate::{BLOCK_RAW, limit, overflow_error};

/// A stretch of a file's bytes.
#[derive(Clone, Copy)]
pub(crate) struct Piece<'v> {
    data: &'v FileData,
    path: &'v [u8],
    at: u64,
    len: usize,
}

/// One block to compress: a full data block of a file, or a fragment block
/// of tail ends.
pub(crate) enum Job<'v> {
    Block(Piece<'v>),
    Fragment(Vec<Piece<'v>>),
}

/// A block as it goes into the image.
pub(crate) struct Packed<'v> {
    /// The size word: the stored length, with [`BLOCK_RAW`] if stored raw;
    /// 0 for a hole.
    pub(crate) word: u32,
    pub(crate) bytes: Cow<'v, [u8]>,
}

/// A fragment block's index and an offset in it.
type FragmentAt = (u32, u32);

/// Where a regular file's bytes go. Files with the same contents share one.
#[derive(Clone, Copy)]
pub(crate) struct FileLayout {
    /// Its full blocks are jobs `first_job..first_job + blocks`.
    pub(crate) first_job: usize,
    pub(crate) blocks: usize,
    /// Fragment index and the tail's offset in it.
    pub(crate) fragment: Option<FragmentAt>,
}

/// Cuts files into full blocks and packs small files into fragment blocks,
/// next-fit in inode-table order; the tail end of a larger file goes into a
/// fragment too with `always_fragments` (stored once if another file ends
/// the same way), else it is a short last block (as mksquashfs does by
/// default). A file with the same
/// bytes as an earlier one (same size and hash, then compared byte for
/// byte) shares its blocks and fragment and is never compressed. The
/// fragment jobs come after all the block jobs, whose count is returned.
pub(crate) fn layout<'v>(
    view: &View<'v>,
    nodes: &'v [Node],
    block_size: u32,
    always_fragments: bool,
) -> Result<(Vec<Job<'v>>, Vec<Option<FileLayout>>, usize)> {
    let bs = u64::from(block_size);
    let files: Vec<Option<&'v FileData>> = nodes
        .iter()
        .map(|node| match &view.inode(node.id).content {
            Content::File(data) => Some(data),
            _ => None,
        })
        .collect();
    // Only a file whose size another file shares can be a duplicate, so
    // only those are read to be hashed (most sizes in a rootfs are unique).
    let mut sizes: HashMap<u64, u32> = HashMap::new();
    for data in files.iter().flatten() {
        *sizes.entry(data.size()).or_default() += 1;
    }
    let shared = |data: &FileData| sizes.get(&data.size()).is_some_and(|&n| n > 1);
    let digests: Vec<Option<u64>> = files
        .par_iter()
        .zip(nodes)
        .map(|(file, node)| match file {
            Some(data) if data.size() > 0 && shared(data) => digest(data)
                .map(Some)
                .map_err(|e| Error::io(format!("reading {}", display_path(&node.path)), e)),
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    let mut seen: HashMap<(u64, u64), Vec<(&'v FileData, FileLayout)>> = HashMap::new();
    let mut seen_tails: HashMap<(usize, u64), Vec<(Piece<'v>, FragmentAt)>> = HashMap::new();
    let mut jobs = Vec::new();
    let mut layouts = Vec::with_capacity(nodes.len());
    let mut fragments: Vec<Vec<Piece<'v>>> = Vec::new();
    let mut filling: Vec<Piece<'v>> = Vec::new();
    let mut filled = 0usize;
    for ((node, file), digest) in nodes.iter().zip(files).zip(digests) {
        let Some(data) = file else {
            layouts.push(None);
            continue;
        };
        let size = data.size();
        let key = digest.map(|d| (size, d));
        if let Some(candidates) = key.and_then(|k| seen.get(&k)) {
            let mut twin = None;
            for (other, layout) in candidates {
                if same(data, other)
                    .map_err(|e| Error::io(format!("reading {}", display_path(&node.path)), e))?
                {
                    twin = Some(*layout);
                    break;
                }
            }
            if let Some(layout) = twin {
                layouts.push(Some(layout));
                continue;
            }
        }
        let mut full = size / bs;
        let first_job = jobs.len();
        for n in 0..full {
            jobs.push(Job::Block(Piece {
                data,
                path: &node.path,
                at: n * bs,
                len: block_size as usize,
            }));
        }
        let tail = usize::try_from(size % bs).map_err(|_| overflow_error())?;
        let mut fragment = None;
        if tail > 0 && full > 0 && !always_fragments {
            jobs.push(Job::Block(Piece {
                data,
                path: &node.path,
                at: full * bs,
                len: tail,
            }));
            full += 1;
        } else if tail > 0 {
            let piece = Piece {
                data,
                path: &node.path,
                at: full * bs,
                len: tail,
            };
            // The tail end of a large file may equal one packed before
            // (small files are whole-file duplicates, found above).
            let tail_key = if full > 0 {
                let bytes = read(&piece)?;
                let mut h = DefaultHasher::new();
                h.write(&bytes);
                Some((tail, h.finish()))
            } else {
                None
            };
            let mut twin = None;
            for (other, at) in tail_key
                .and_then(|k| seen_tails.get(&k))
                .into_iter()
                .flatten()
            {
                if read(other)? == read(&piece)? {
                    twin = Some(*at);
                    break;
                }
            }
            if twin.is_some() {
                fragment = twin;
            } else {
                if filled + tail > block_size as usize {
                    fragments.push(std::mem::take(&mut filling));
                    filled = 0;
                }
                let index = u32::try_from(fragments.len()).map_err(|_| {
                    limit(
                        &node.path,
                        "fragment count",
                        u64::from(u32::MAX) + 1,
                        u64::from(u32::MAX),
                    )
                })?;
                // Below the block size, which is at most 1 MiB.
                let at = (index, u32::try_from(filled).map_err(|_| overflow_error())?);
                fragment = Some(at);
                filling.push(piece);
                filled += tail;
                if let Some(k) = tail_key {
                    seen_tails.entry(k).or_default().push((piece, at));
                }
            }
        }
        let layout = FileLayout {
            first_job,
            blocks: usize::try_from(full)
                .map_err(|_| limit(&node.path, "file size", size, usize::MAX as u64))?,
            fragment,
        };
        if let Some(k) = key {
            seen.entry(k).or_default().push((data, layout));
        }
        layouts.push(Some(layout));
    }
    if !filling.is_empty() {
        fragments.push(filling);
    }
    let block_jobs = jobs.len();
    jobs.extend(fragments.into_iter().map(Job::Fragment));
    Ok((jobs, layouts, block_jobs))
}

/// A hash of a file's bytes, to find duplicates.
fn digest(data: &FileData) -> io::Result<u64> {
    let mut h = DefaultHasher::new();
    data.for_each_chunk(&mut |chunk| {
        h.write(chunk);
        Ok(())
    })?;
    Ok(h.finish())
}

/// Whether two files of the same size hold the same bytes.
fn same(a: &FileData, b: &FileData) -> io::Result<bool> {
    if let (Some(x), Some(y)) = (a.as_slice(), b.as_slice()) {
        return Ok(x == y);
    }
    const CHUNK: u64 = 1 << 20;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut at = 0;
    while at < a.size() {
        let n = usize::try_from(CHUNK.min(a.size() - at)).map_err(io::Error::other)?;
        x.resize(n, 0);
        y.resize(n, 0);
        a.read_at(at, &mut x)?;
        b.read_at(at, &mut y)?;
        if x != y {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

fn read<'v>(piece: &Piece<'v>) -> Result<Cow<'v, [u8]>> {
    let err = |e| Error::io(format!("reading {}", display_path(piece.path)), e);
    if let Some(slice) = piece.data.as_slice() {
        let bytes = usize::try_from(piece.at)
            .ok()
            .and_then(|at| slice.get(at..at.checked_add(piece.len)?))
            .ok_or_else(|| err(io::Error::from(io::ErrorKind::UnexpectedEof)))?;
        return Ok(Cow::Borrowed(bytes));
    }
    let mut buf = vec![0u8; piece.len];
    piece.data.read_at(piece.at, &mut buf).map_err(err)?;
    Ok(Cow::Owned(buf))
}

pub(crate) fn run<'v>(codec: &mut Codec, job: &Job<'v>) -> Result<Packed<'v>> {
    let bytes = match job {
        Job::Block(piece) => {
            let bytes = read(piece)?;
            if bytes.iter().all(|&b| b == 0) {
                return Ok(Packed {
                    word: 0,
                    bytes: Cow::Borrowed(&[]),
                });
            }
            bytes
        }
        Job::Fragment(pieces) => {
            let mut buf = Vec::new();
            for piece in pieces {
                buf.extend_from_slice(&read(piece)?);
            }
            Cow::Owned(buf)
        }
    };
    let packed = codec
        .compress(&bytes)
        .map_err(|e| Error::io("compressing a block", e))?;
    // Block lengths are at most 1 MiB, far below bit 24.
    let len = |b: &[u8]| u32::try_from(b.len()).map_err(|_| overflow_error());
    Ok(match packed {
        Some(p) => Packed {
            word: len(&p)?,
            bytes: Cow::Owned(p),
        },
        None => Packed {
            word: len(&bytes)? | BLOCK_RAW,
            bytes,
        },
    })
}
