//! The trait every image encoder implements, and the sink it writes to.

use std::io::{self, Write};

use crate::data::FileData;
use crate::error::Result;
use crate::view::View;

/// What an encoder reports after writing an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Bytes written (before any outer compression).
    pub bytes: u64,
    /// Things the format could not hold and that were dropped, said once
    /// each with a count (e.g. xattrs in cpio).
    pub warnings: Vec<String>,
}

/// Where an encoder writes: a byte stream that also hears where the stream
/// may be cut. An outer compressor uses those marks to compress pieces on
/// several cores as independent members; the Linux initramfs unpacker needs
/// every member to end between two cpio entries.
pub trait Sink: Write {
    /// The bytes written so far end between two archive members.
    fn boundary(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Appends `n` zero bytes. A seekable output leaves a hole instead, so
    /// a filesystem image of a fixed size stays sparse on disk.
    fn skip(&mut self, n: u64) -> io::Result<()> {
        write_zeros(self, n)
    }

    /// Appends a file's contents. A sink that writes to a file copies
    /// file-backed data inside the kernel instead.
    fn write_data(&mut self, data: &FileData) -> io::Result<()> {
        data.write_to(&mut &mut *self)
    }

    /// Overwrites bytes already written, at `offset` from the start: a
    /// header whose fields are known only at the end (the squashfs
    /// superblock). Streams that cannot seek (outer compression, pipes)
    /// refuse with [`io::ErrorKind::Unsupported`].
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let _ = (offset, buf);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this output cannot seek back (an outer compressor or a pipe)",
        ))
    }
}

/// Writes `n` zero bytes to `w`, a page at a time.
pub fn write_zeros<W: Write + ?Sized>(w: &mut W, mut n: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let step = usize::try_from(n).map_or(ZEROS.len(), |n| n.min(ZEROS.len()));
        w.write_all(&ZEROS[..step])?;
        n -= step as u64;
    }
    Ok(())
}

/// A sink over any writer that ignores boundaries.
#[derive(Debug)]
pub struct Plain<W>(pub W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Sink for Plain<W> {}

/// A seekable sink in memory: building images without files (fuzzers,
/// tests, [`Sink::write_at`] users).
#[derive(Debug, Default)]
pub struct Buffer(pub Vec<u8>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for Buffer {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let len = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_add(self.0.len()))
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::OutOfMemory, "image too large for memory")
            })?;
        self.0.resize(len, 0);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let dest = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .and_then(|range| self.0.get_mut(range))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "write_at past the end of the image",
                )
            })?;
        dest.copy_from_slice(buf);
        Ok(())
    }
}

/// An image format writer.
///
/// Writing is two steps. [`Encoder::plan`] decides the whole image (every
/// check on the tree and the options, the layout, the size where the
/// format knows it) without writing a byte; [`ImagePlan::write`] then emits
/// exactly that plan. The pipeline plans every image before it creates any
/// file, so a tree one format cannot hold leaves nothing behind. Both steps
/// are pure functions of the view and the options, so the output is the
/// same for any thread count (encoders may use the current rayon pool).
pub trait Encoder: Send + Sync {
    /// The format's name, as `-f` spells it.
    fn format(&self) -> &'static str;

    /// Plans the image of `view`, failing with the first entry or option
    /// the format cannot hold.
    ///
    /// # Errors
    ///
    /// Every error about the tree or the options: writing the plan fails
    /// only on I/O.
    fn plan<'v>(&'v self, view: View<'v>) -> Result<Box<dyn ImagePlan + 'v>>;

    /// Fails with the first entry or option the format cannot hold: a plan
    /// made and dropped.
    ///
    /// # Errors
    ///
    /// What [`Encoder::plan`] returns.
    fn check(&self, view: &View<'_>) -> Result<()> {
        self.plan(*view).map(drop)
    }

    /// Plans and writes the image in one go, for callers that hold the
    /// sink already (tests, in-memory builds).
    ///
    /// # Errors
    ///
    /// What [`Encoder::plan`] or [`ImagePlan::write`] returns.
    fn write(&self, view: &View<'_>, out: &mut dyn Sink) -> Result<Report> {
        self.plan(*view)?.write(out)
    }
}

/// A planned image, ready to be written.
pub trait ImagePlan: Send {
    /// The image's exact size in bytes, for formats that know it before
    /// writing (a fixed-size filesystem, a planned layout).
    fn size(&self) -> Option<u64> {
        None
    }

    /// Writes the planned image to `out`.
    ///
    /// # Errors
    ///
    /// Only the sink's I/O errors (and data that changed under the plan,
    /// such as a host file that shrank).
    fn write(self: Box<Self>, out: &mut dyn Sink) -> Result<Report>;
}
