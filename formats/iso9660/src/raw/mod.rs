//! The on-disk records, one type per structure a spec defines and named
//! as the spec names it: ECMA-119 volume descriptors, directory records
//! and path table records ([`volume`], [`dir`]); El Torito boot catalog
//! entries and the boot info table ([`eltorito`]); SUSP 1.12 and RRIP 1.12
//! system use entries with zisofs `ZF` ([`susp`]); the isohybrid MBR and
//! GPT ([`hybrid`]).
//!
//! Each record writes itself in field order with a [`RecordWriter`]
//! (`encode`) and reads itself back with a [`RecordReader`] (`decode`),
//! so the writer and the reader share one layout. A record cut short is a
//! corrupt-image error at the record's offset.
//!
//! [`RecordWriter`]: rootforge_common::bytes::RecordWriter

use rootforge_common::bytes::RecordReader;
use rootforge_common::{Error, Result};

use crate::malformed;

pub(crate) mod dir;
pub(crate) mod eltorito;
pub(crate) mod hybrid;
pub(crate) mod susp;
pub(crate) mod volume;

/// Reads a record named `what` from `bytes` (at byte `at` of the image)
/// with `read`, which gives `None` when a field runs past the end.
pub(crate) fn decode_with<'a, T>(
    bytes: &'a [u8],
    at: u64,
    what: &str,
    read: impl FnOnce(&mut RecordReader<'a>) -> Option<T>,
) -> Result<T> {
    read(&mut RecordReader::new(bytes)).ok_or_else(|| truncated(what, at))
}

/// The corrupt-image error for a record named `what` at byte `at`.
pub(crate) fn truncated(what: &str, at: u64) -> Error {
    malformed(at, format!("{what} is truncated"))
}

/// `N` bytes of `b` as an array, cut or padded with `fill`: fixed-width
/// text fields.
pub(crate) fn fixed<const N: usize>(b: &[u8], fill: u8) -> [u8; N] {
    let mut out = [fill; N];
    let n = b.len().min(N);
    out[..n].copy_from_slice(&b[..n]);
    out
}
