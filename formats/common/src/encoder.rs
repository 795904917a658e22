//! The trait every image encoder implements, and the sink it writes to.

use std::io::{self, Write};

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

/// An image format writer.
///
/// `check` rejects everything the format cannot hold before a byte is
/// written; `write` then plans the layout and writes it in order. Both are
/// pure functions of the view and the encoder's options, so the output is the
/// same for any thread count (encoders may use the current rayon pool).
pub trait Encoder: Send + Sync {
    /// The format's name, as `-f` spells it.
    fn format(&self) -> &'static str;

    /// Fails with the first entry the format cannot hold.
    fn check(&self, view: &View<'_>) -> Result<()>;

    /// Writes the image. Implementations call `check` first.
    fn write(&self, view: &View<'_>, out: &mut dyn Sink) -> Result<Report>;
}
