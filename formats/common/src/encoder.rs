//! The trait every image encoder implements.

use std::io::Write;

use crate::error::Result;
use crate::view::View;

/// What an encoder reports after writing an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Bytes written.
    pub bytes: u64,
    /// Things the format could not hold and that were dropped, said once
    /// each with a count (e.g. xattrs in cpio).
    pub warnings: Vec<String>,
}

/// An image format writer.
///
/// `check` rejects everything the format cannot hold before a byte is
/// written; `write` then plans the layout and writes it in order. Both are
/// pure functions of the view and the encoder's options, so the output is the
/// same for any thread count.
pub trait Encoder: Send + Sync {
    /// The format's name, as `-f` spells it.
    fn format(&self) -> &'static str;

    /// Fails with the first entry the format cannot hold.
    fn check(&self, view: &View<'_>) -> Result<()>;

    /// Writes the image. Implementations call `check` first.
    fn write(&self, view: &View<'_>, out: &mut dyn Write) -> Result<Report>;
}
