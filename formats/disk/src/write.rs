//! Writing a planned disk: partition contents in offset order, the table
//! structures laid over them, gaps as sink skips (holes in a file).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use rootforge_common::Sink;

use crate::error::{DiskError, Result};
use crate::plan::Layout;
use crate::table::{self, Patch};

/// What a partition holds: an image that writes its bytes from its start.
/// The writer keeps the bytes the partition takes (after `imageoffset`,
/// up to the image's planned size) and drops the rest.
pub trait Content: Send {
    /// Writes the image to `out`.
    ///
    /// # Errors
    ///
    /// Reading the image's source or writing `out`.
    fn write_to(self: Box<Self>, out: &mut dyn Sink) -> io::Result<()>;
}

/// A host file as partition content, read in blocks; blocks of zeros
/// become holes.
#[derive(Debug, Clone)]
pub struct FileContent {
    pub path: PathBuf,
    /// The size the plan was made with: a file that changed since is an
    /// error, not a silently different image.
    pub len: u64,
}

impl Content for FileContent {
    fn write_to(self: Box<Self>, out: &mut dyn Sink) -> io::Result<()> {
        let mut f = File::open(&self.path)?;
        let mut buf = vec![0u8; 1 << 16];
        let mut left = self.len;
        while left > 0 {
            let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            let chunk = &mut buf[..want];
            f.read_exact(chunk).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{}: shorter than the {} bytes planned ({e})",
                        self.path.display(),
                        self.len
                    ),
                )
            })?;
            if chunk.iter().all(|&b| b == 0) {
                out.skip(want as u64)?;
            } else {
                out.write_all(chunk)?;
            }
            left -= want as u64;
        }
        Ok(())
    }
}

/// Bytes in memory as partition content.
#[derive(Debug, Clone)]
pub struct BytesContent(pub Vec<u8>);

impl Content for BytesContent {
    fn write_to(self: Box<Self>, out: &mut dyn Sink) -> io::Result<()> {
        out.write_all(&self.0)
    }
}

/// A planned disk with the content of its partitions.
pub struct DiskPlan {
    pub layout: Layout,
    contents: Vec<Option<Box<dyn Content>>>,
}

impl std::fmt::Debug for DiskPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskPlan")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl DiskPlan {
    /// `contents[i]` is the content of spec partition `i` (`None`: no
    /// image). A partition the plan writes data for must have content.
    ///
    /// # Errors
    ///
    /// A partition with data but no content.
    pub fn new(layout: Layout, mut contents: Vec<Option<Box<dyn Content>>>) -> Result<DiskPlan> {
        let n = layout.partitions().count();
        contents.resize_with(n.max(contents.len()), || None);
        for p in layout.partitions() {
            let i = p.index().unwrap_or(0);
            if p.data_size > 0 && contents.get(i).is_none_or(Option::is_none) {
                return Err(DiskError::invalid(
                    Some((i, &p.name)),
                    "has an image in the plan but no content to write",
                ));
            }
        }
        Ok(DiskPlan { layout, contents })
    }

    /// The file's length.
    #[must_use]
    pub fn file_size(&self) -> u64 {
        self.layout.file_size
    }

    /// Writes the disk to `out`, which starts at the disk's first byte.
    /// Returns the bytes the file spans (the last ones may be a skip: the
    /// caller sets a file's length to it).
    ///
    /// # Errors
    ///
    /// Content that cannot be read, or the sink's errors.
    pub fn write(mut self, out: &mut dyn Sink) -> Result<u64> {
        let patches = table::patches(&self.layout);
        let mut order: Vec<_> = self
            .layout
            .partitions()
            .filter(|p| p.data_size > 0)
            .map(|p| {
                (
                    p.offset,
                    p.index().unwrap_or(0),
                    p.data_size,
                    p.image_offset,
                    p.name.clone(),
                )
            })
            .collect();
        order.sort_by_key(|o| o.0);
        let mut sink = Patched {
            inner: out,
            pos: 0,
            patches,
            done: 0,
        };
        let io = |name: &str, e: io::Error| DiskError::Io {
            context: format!("writing partition {name}"),
            source: e,
        };
        for (offset, i, len, image_offset, name) in order {
            if offset < sink.pos {
                return Err(DiskError::invalid(
                    Some((i, &name)),
                    format!(
                        "its data at {offset} starts inside the previous partition's data (which ends at {}): holes that another partition's data fills are not supported",
                        sink.pos
                    ),
                ));
            }
            sink.skip(offset - sink.pos).map_err(|e| io(&name, e))?;
            let content = self.contents[i]
                .take()
                .ok_or_else(|| DiskError::invalid(Some((i, &name)), "has no content to write"))?;
            let mut w = Window {
                inner: &mut sink,
                base: offset,
                skip: image_offset,
                len,
                seen: 0,
            };
            content.write_to(&mut w).map_err(|e| io(&name, e))?;
            let left = w.left();
            sink.skip(left).map_err(|e| io(&name, e))?;
        }
        let end = self.layout.file_size.max(sink.pos);
        let rest = end - sink.pos;
        sink.skip(rest).map_err(|e| DiskError::Io {
            context: "writing the partition table".into(),
            source: e,
        })?;
        if sink.done < sink.patches.len() {
            return Err(DiskError::invalid(
                None,
                "a partition table structure lies past the end of the file",
            ));
        }
        sink.flush().map_err(|e| DiskError::Io {
            context: "writing the disk image".into(),
            source: e,
        })?;
        Ok(end)
    }
}

/// A sink that lays the table structures over what passes through it.
struct Patched<'a> {
    inner: &'a mut dyn Sink,
    pos: u64,
    /// Sorted by offset, not overlapping.
    patches: Vec<Patch>,
    /// Patches before this one lie wholly before `pos`.
    done: usize,
}

impl Patched<'_> {
    /// Writes `buf` at `pos` with every patch over it applied.
    fn emit(&mut self, buf: &[u8]) -> io::Result<()> {
        let start = self.pos;
        let end = start + buf.len() as u64;
        let mut copy: Option<Vec<u8>> = None;
        for (at, bytes) in &self.patches[self.done..] {
            if *at >= end {
                break;
            }
            let pend = at + bytes.len() as u64;
            if pend <= start {
                continue;
            }
            let from = (*at).max(start);
            let to = pend.min(end);
            let c = copy.get_or_insert_with(|| buf.to_vec());
            let dst = (from - start) as usize..(to - start) as usize;
            let src = (from - at) as usize..(to - at) as usize;
            c[dst].copy_from_slice(&bytes[src]);
        }
        self.inner.write_all(copy.as_deref().unwrap_or(buf))?;
        self.pos = end;
        while self
            .patches
            .get(self.done)
            .is_some_and(|(at, b)| at + b.len() as u64 <= self.pos)
        {
            self.done += 1;
        }
        Ok(())
    }
}

impl Write for Patched<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.emit(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.emit(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Sink for Patched<'_> {
    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let next = self
                .patches
                .get(self.done)
                .map(|(at, b)| (*at, at + b.len() as u64));
            match next {
                Some((at, end)) if at < self.pos + n => {
                    if at > self.pos {
                        let gap = at - self.pos;
                        self.inner.skip(gap)?;
                        self.pos = at;
                        n -= gap;
                    }
                    // Zeros under the patch, up to its end or the skip's.
                    let len = (end - self.pos).min(n);
                    let zeros = vec![0u8; usize::try_from(len).unwrap_or(0)];
                    self.emit(&zeros)?;
                    n -= len;
                }
                _ => {
                    self.inner.skip(n)?;
                    self.pos += n;
                    n = 0;
                }
            }
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.inner.write_at(offset, buf)
    }
}

/// The bytes of one image that its partition keeps: `len` bytes from
/// `skip` bytes in.
struct Window<'a, 'b> {
    inner: &'a mut Patched<'b>,
    base: u64,
    skip: u64,
    len: u64,
    /// Bytes of the image seen so far.
    seen: u64,
}

impl Window<'_, '_> {
    /// Of `n` incoming bytes: how many are dropped before the window, and
    /// how many are kept.
    fn take(&mut self, n: u64) -> (u64, u64) {
        let (from, to) = (self.seen, self.seen.saturating_add(n));
        self.seen = to;
        let keep_from = from.max(self.skip);
        let keep_to = to.min(self.skip + self.len);
        if keep_to <= keep_from {
            return (n, 0);
        }
        (keep_from - from, keep_to - keep_from)
    }

    /// Bytes of the window not written yet.
    fn left(&self) -> u64 {
        (self.skip + self.len).saturating_sub(self.seen.max(self.skip))
    }
}

impl Write for Window<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let (before, keep) = self.take(buf.len() as u64);
        if keep > 0 {
            self.inner
                .emit(&buf[before as usize..(before + keep) as usize])?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for Window<'_, '_> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let (_, keep) = self.take(n);
        self.inner.skip(keep)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        // A header the image writes last (squashfs): kept where it falls
        // inside the window.
        let from = offset.max(self.skip);
        let to = (offset + buf.len() as u64).min(self.skip + self.len);
        if to <= from {
            return Ok(());
        }
        let part = &buf[(from - offset) as usize..(to - offset) as usize];
        self.inner.write_at(self.base + (from - self.skip), part)
    }
}
