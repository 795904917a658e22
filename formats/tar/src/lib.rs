//! POSIX pax tar: the writer Buildroot's `fs/tar` output is matched against,
//! and the reader that ingests rootfs tarballs into a [`rootforge_common::Tree`]
//! without copying file data.

mod read;
mod write;

pub use read::{Ingest, ReadOptions, read};
pub use write::TarEncoder;
