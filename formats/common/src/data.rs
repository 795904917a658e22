//! References to file data. The tree never owns a copy of a file's bytes.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Immutable bytes that file data points into: the input tarball (read
/// with `pread`, so its pages count against the page cache rather than the
/// process), a decompressed copy of it in a temporary file, or bytes in
/// memory.
pub trait Blob: Send + Sync {
    /// The number of bytes; reads end there.
    fn len(&self) -> u64;

    /// Fills `buf` from `offset`; a short read is an error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// All the bytes, when they are in memory.
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }

    /// The file that holds the bytes from offset 0, when they are in one:
    /// a sink that writes to a file can then copy inside the kernel.
    fn file(&self) -> Option<&File> {
        None
    }

    /// Whether there are no bytes at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A shared [`Blob`].
pub type Backing = Arc<dyn Blob>;

/// Where a read of `len` bytes at `offset` ends in data of `size` bytes:
/// reading past the end is an error, for every [`Blob`] alike.
pub fn read_end(offset: u64, len: usize, size: u64) -> io::Result<u64> {
    offset
        .checked_add(len as u64)
        .filter(|&end| end <= size)
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of file"))
}

fn slice_read_at(bytes: &[u8], offset: u64, buf: &mut [u8]) -> io::Result<()> {
    let src = usize::try_from(offset)
        .ok()
        .and_then(|start| bytes.get(start..start.checked_add(buf.len())?))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the data",
            )
        })?;
    buf.copy_from_slice(src);
    Ok(())
}

impl Blob for Vec<u8> {
    fn len(&self) -> u64 {
        Vec::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        slice_read_at(self, offset, buf)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl Blob for &'static [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        slice_read_at(self, offset, buf)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// A file that nobody changes while it is read (the input, or our own
/// unlinked temporary file), with its length taken once.
#[derive(Debug)]
pub struct FileBlob {
    file: File,
    len: u64,
}

impl FileBlob {
    /// Takes the file's length now: the file must not change afterwards.
    pub fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileBlob { file, len })
    }
}

impl Blob for FileBlob {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn file(&self) -> Option<&File> {
        Some(&self.file)
    }
}

/// One stored run of a sparse file: `len` bytes that belong at `logical` in
/// the file and sit at `stored` in the backing buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Offset of the run in the file.
    pub logical: u64,
    /// Offset of the run in the backing buffer.
    pub stored: u64,
    /// Length of the run in bytes.
    pub len: u64,
}

/// Where a regular file's bytes come from.
#[derive(Clone)]
pub enum Source {
    /// Every byte is zero (this is also the empty file).
    Zeros,
    /// The bytes sit contiguously at `offset` in `backing`.
    Range {
        /// The buffer that holds the bytes.
        backing: Backing,
        /// Where the file's first byte is in it.
        offset: u64,
    },
    /// Data extents in `backing`, sorted and non-overlapping; the gaps are holes.
    Sparse {
        /// The buffer the extents point into.
        backing: Backing,
        /// The stored runs, by logical offset.
        extents: Arc<[Extent]>,
    },
    /// A file on the host, read when an encoder needs it.
    Host(Arc<Path>),
    /// A small owned buffer (overlay-created files, decompressed inputs).
    Bytes(Arc<[u8]>),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Zeros => f.write_str("Zeros"),
            Source::Range { offset, .. } => write!(f, "Range(@{offset})"),
            Source::Sparse { extents, .. } => write!(f, "Sparse({} extents)", extents.len()),
            Source::Host(p) => write!(f, "Host({})", p.display()),
            Source::Bytes(b) => write!(f, "Bytes({})", b.len()),
        }
    }
}

/// A regular file's contents: its size and where the bytes are.
#[derive(Debug, Clone)]
pub struct FileData {
    size: u64,
    source: Source,
}

impl FileData {
    /// A file of size 0.
    pub fn empty() -> Self {
        FileData {
            size: 0,
            source: Source::Zeros,
        }
    }

    /// A file of `size` zero bytes that refers to no buffer (a hole throughout).
    pub fn zeros(size: u64) -> Self {
        FileData {
            size,
            source: Source::Zeros,
        }
    }

    /// A file whose contents are `bytes`, held in memory.
    pub fn bytes(bytes: impl Into<Arc<[u8]>>) -> Self {
        let bytes = bytes.into();
        FileData {
            size: bytes.len() as u64,
            source: Source::Bytes(bytes),
        }
    }

    /// A file on the host, read only when an encoder needs it; `size` is
    /// its length when the tree was built.
    pub fn host(path: impl Into<Arc<Path>>, size: u64) -> Self {
        FileData {
            size,
            source: Source::Host(path.into()),
        }
    }

    /// `size` bytes at `offset` of `backing`, or `None` if that range does
    /// not lie inside the buffer.
    pub fn range(backing: Backing, offset: u64, size: u64) -> Option<Self> {
        let end = offset.checked_add(size)?;
        if end > backing.len() {
            return None;
        }
        Some(FileData {
            size,
            source: Source::Range { backing, offset },
        })
    }

    /// A sparse file of `size` bytes, or `None` if an extent lies outside the
    /// backing buffer or the file, or the extents overlap or are unsorted.
    pub fn sparse(backing: Backing, extents: Vec<Extent>, size: u64) -> Option<Self> {
        let buf_len = backing.len();
        let mut logical_end = 0u64;
        for e in &extents {
            if e.logical < logical_end
                || e.logical.checked_add(e.len)? > size
                || e.stored.checked_add(e.len)? > buf_len
            {
                return None;
            }
            logical_end = e.logical.checked_add(e.len)?;
        }
        Some(FileData {
            size,
            source: Source::Sparse {
                backing,
                extents: extents.into(),
            },
        })
    }

    /// The file's length in bytes, holes included.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where the bytes come from, for encoders that copy by source (sparse
    /// maps, `copy_file_range`).
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The whole contents as one borrowed slice, when they are in memory and
    /// contiguous (the common case for a plain tarball input).
    pub fn as_slice(&self) -> Option<&[u8]> {
        match &self.source {
            Source::Zeros if self.size == 0 => Some(&[]),
            Source::Range { backing, offset } => {
                let buf = backing.as_slice()?;
                // In range by construction.
                let start = usize::try_from(*offset).ok()?;
                let len = usize::try_from(self.size).ok()?;
                buf.get(start..start.checked_add(len)?)
            }
            Source::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The file and offset that hold the whole contents contiguously, when
    /// they are in a file (a range of a file-backed input).
    pub fn in_file(&self) -> Option<(&File, u64)> {
        match &self.source {
            Source::Range { backing, offset } => Some((backing.file()?, *offset)),
            _ => None,
        }
    }

    /// Fills `buf` with the bytes at `offset`; reading past the end is an error.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = read_end(offset, buf.len(), self.size)?;
        match &self.source {
            Source::Zeros => buf.fill(0),
            Source::Range {
                backing,
                offset: base,
            } => {
                let at = base.checked_add(offset).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "offset overflow")
                })?;
                backing.read_at(at, buf)?;
            }
            Source::Bytes(b) => {
                buf.copy_from_slice(&b[to_usize(Some(offset))?..to_usize(Some(end))?]);
            }
            Source::Sparse { backing, extents } => {
                buf.fill(0);
                for e in extents.iter() {
                    let e_end = e.logical.saturating_add(e.len);
                    let lo = e.logical.max(offset);
                    let hi = e_end.min(end);
                    if lo >= hi {
                        continue;
                    }
                    let from = e.stored.checked_add(lo - e.logical).ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidInput, "offset overflow")
                    })?;
                    let n = to_usize(Some(hi - lo))?;
                    let at = to_usize(Some(lo - offset))?;
                    backing.read_at(from, &mut buf[at..at + n])?;
                }
            }
            Source::Host(path) => {
                let file = File::open(path)?;
                file.read_exact_at(buf, offset)?;
            }
        }
        Ok(())
    }

    /// A streaming reader over the contents.
    pub fn reader(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        if let Some(slice) = self.as_slice() {
            return Ok(Box::new(slice));
        }
        match &self.source {
            Source::Host(path) => {
                let file = File::open(path)?;
                Ok(Box::new(ExactReader {
                    inner: file.take(self.size),
                    left: self.size,
                }))
            }
            _ => Ok(Box::new(ChunkReader { data: self, pos: 0 })),
        }
    }

    /// Copies the contents into `out`, failing if a host file changed size.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        if let Some(slice) = self.as_slice() {
            return out.write_all(slice);
        }
        if !matches!(self.source, Source::Host(_)) {
            return self.for_each_chunk(&mut |chunk| out.write_all(chunk));
        }
        let copied = io::copy(&mut self.reader()?, out)?;
        if copied != self.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file shrank: expected {} bytes, read {copied}", self.size),
            ));
        }
        Ok(())
    }

    /// Hands the contents to `f` in order: as one slice when they are in
    /// memory, else in chunks of up to 1 MiB read into a per-thread buffer
    /// (large reads keep the syscall count low, and the buffer is zeroed
    /// once per thread, not once per file).
    pub fn for_each_chunk(&self, f: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        if let Some(slice) = self.as_slice() {
            return f(slice);
        }
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|scratch| {
            // A callback that reads file data on this thread would find the
            // buffer taken; it gets a fresh one instead of a panic.
            let mut own = Vec::new();
            let mut guard = scratch.try_borrow_mut();
            let buf = match &mut guard {
                Ok(b) => &mut **b,
                Err(_) => &mut own,
            };
            let want = usize::try_from(self.size.min(COPY_CHUNK)).unwrap_or(0);
            if buf.len() < want {
                buf.resize(want, 0);
            }
            let mut pos = 0u64;
            while pos < self.size {
                let n = usize::try_from((self.size - pos).min(COPY_CHUNK)).unwrap_or(0);
                self.read_at(pos, &mut buf[..n])?;
                f(&buf[..n])?;
                pos += n as u64;
            }
            Ok(())
        })
    }

    /// Reads the whole contents into memory.
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut v = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0).min(1 << 30));
        self.write_to(&mut v)?;
        Ok(v)
    }
}

/// Bytes read per call when copying file-backed data.
const COPY_CHUNK: u64 = 1 << 20;

fn to_usize(v: Option<u64>) -> io::Result<usize> {
    v.and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflow"))
}

/// Reads a non-contiguous source in chunks through `read_at`.
struct ChunkReader<'a> {
    data: &'a FileData,
    pos: u64,
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.data.size.saturating_sub(self.pos);
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.data.read_at(self.pos, &mut buf[..n])?;
        self.pos = self.pos.saturating_add(n as u64);
        Ok(n)
    }
}

/// A host file read to its recorded size: a file that shrank is an error
/// instead of a silently short image member.
struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file shrank: {} bytes missing", self.left),
            ));
        }
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_reads_holes_as_zeros() {
        let backing: Backing = Arc::new(b"xxABCDyyEF".to_vec());
        let extents = vec![
            Extent {
                logical: 2,
                stored: 2,
                len: 4,
            },
            Extent {
                logical: 10,
                stored: 8,
                len: 2,
            },
        ];
        let data = FileData::sparse(backing, extents, 14).unwrap();
        assert_eq!(data.to_vec().unwrap(), b"\0\0ABCD\0\0\0\0EF\0\0");
        let mut mid = [0u8; 3];
        data.read_at(5, &mut mid).unwrap();
        assert_eq!(&mid, b"D\0\0");
    }

    #[test]
    fn range_outside_backing_is_refused() {
        let backing: Backing = Arc::new(vec![0u8; 10]);
        assert!(FileData::range(backing.clone(), 8, 3).is_none());
        assert!(FileData::range(backing.clone(), u64::MAX, 2).is_none());
        assert_eq!(
            FileData::range(backing, 8, 2)
                .unwrap()
                .as_slice()
                .unwrap()
                .len(),
            2
        );
    }
}
