//! File data: full blocks and fragment blocks, unpacked when a file is
//! read.

use std::io;
use std::sync::{Arc, Mutex};

use rootforge_common::Blob;

use super::meta::Image;
use crate::BLOCK_RAW;
use crate::records::FragmentEntry;

/// Decompressed fragment blocks kept per image, so files sharing one are
/// not each decompressing it.
const FRAGMENT_CACHE: usize = 8;

/// What the files of one image share.
pub(super) struct Shared {
    pub(super) image: Image,
    pub(super) fragments: Vec<FragmentEntry>,
    /// The fragment blocks read last, the latest first.
    pub(super) cache: Mutex<Vec<(u32, Arc<[u8]>)>>,
}

fn data_error(at: u64, reason: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("squashfs block at byte {at}: {reason}"),
    )
}

impl Shared {
    /// Fills `out` with the block stored at `at` with size word `word`; it
    /// must unpack to exactly `out.len()` bytes.
    fn block_into(&self, at: u64, word: u32, out: &mut [u8]) -> io::Result<()> {
        if word == 0 {
            out.fill(0);
            return Ok(());
        }
        let len = (word & !BLOCK_RAW) as usize;
        if word & BLOCK_RAW != 0 {
            if len != out.len() {
                return Err(data_error(
                    at,
                    format!("{len} raw bytes where {} belong", out.len()),
                ));
            }
            return self
                .image
                .with_bytes(at, len, |src| out.copy_from_slice(src));
        }
        let n = self
            .image
            .with_bytes(at, len, |src| self.image.codec.decompress(src, out))?
            .map_err(|e| data_error(at, e))?;
        if n != out.len() {
            return Err(data_error(
                at,
                format!("unpacks to {n} bytes, {} expected", out.len()),
            ));
        }
        Ok(())
    }

    /// A fragment block, unpacked.
    fn fragment(&self, index: u32) -> io::Result<Arc<[u8]>> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = cache.iter().position(|(k, _)| *k == index) {
            let hit = cache.remove(i);
            let data = hit.1.clone();
            cache.insert(0, hit);
            return Ok(data);
        }
        drop(cache);
        let frag = usize::try_from(index)
            .ok()
            .and_then(|i| self.fragments.get(i))
            .ok_or_else(|| data_error(0, format!("no fragment {index}")))?;
        let len = (frag.size & !BLOCK_RAW) as usize;
        let data: Arc<[u8]> = if frag.size & BLOCK_RAW != 0 {
            self.image
                .with_bytes(frag.start_block, len, |s| Arc::from(s))?
        } else {
            let mut out = vec![0u8; self.image.block_size as usize];
            let n = self
                .image
                .with_bytes(frag.start_block, len, |src| {
                    self.image.codec.decompress(src, &mut out)
                })?
                .map_err(|e| data_error(frag.start_block, e))?;
            out.truncate(n);
            out.into()
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(0, (index, data.clone()));
        cache.truncate(FRAGMENT_CACHE);
        Ok(data)
    }
}

/// A regular file's bytes, unpacked block by block as they are read.
pub(super) struct SquashFile {
    pub(super) shared: Arc<Shared>,
    pub(super) size: u64,
    /// Each full block's position and size word (0: a hole).
    pub(super) blocks: Box<[(u64, u32)]>,
    /// The tail's fragment and offset in it.
    pub(super) fragment: Option<(u32, u32)>,
}

impl Blob for SquashFile {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = rootforge_common::read_end(offset, buf.len(), self.size)?;
        let bs = u64::from(self.shared.image.block_size);
        let mut scratch = Vec::new();
        let mut pos = offset;
        while pos < end {
            let (index, within) = (pos / bs, pos % bs);
            let block_len = (self.size - index * bs).min(bs);
            let n = (end - pos).min(block_len - within);
            // The first three are at most the block size, the last within
            // `buf`.
            let fit = |v: u64| usize::try_from(v).map_err(io::Error::other);
            let (within, block_len, n, at) =
                (fit(within)?, fit(block_len)?, fit(n)?, fit(pos - offset)?);
            let dst = &mut buf[at..at + n];
            match usize::try_from(index).ok().and_then(|i| self.blocks.get(i)) {
                Some(&(start, word)) if within == 0 && n == block_len => {
                    self.shared.block_into(start, word, dst)?;
                }
                Some(&(start, word)) => {
                    scratch.resize(block_len, 0);
                    self.shared.block_into(start, word, &mut scratch)?;
                    dst.copy_from_slice(&scratch[within..within + n]);
                }
                None => {
                    let (frag, frag_at) = self
                        .fragment
                        .ok_or_else(|| data_error(0, "file tail without a fragment"))?;
                    let data = self.shared.fragment(frag)?;
                    let from = (frag_at as usize).saturating_add(within);
                    let src = data.get(from..from.saturating_add(n)).ok_or_else(|| {
                        data_error(
                            self.shared
                                .fragments
                                .get(frag as usize)
                                .map_or(0, |f| f.start_block),
                            format!(
                                "fragment {frag} holds {} bytes, too few for a tail at {frag_at}",
                                data.len()
                            ),
                        )
                    })?;
                    dst.copy_from_slice(src);
                }
            }
            pos += n as u64;
        }
        Ok(())
    }
}
