//! POSIX pax tar: the writer Buildroot's `fs/tar` output is matched against,
//! and the reader that ingests rootfs tarballs into a [`rootforge_common::Tree`]
//! without copying file data.
//!
//! Modules, by concern: `header` (the 512-byte block both sides share),
//! `pax` (extended header records), `sparse` (sparse maps of every GNU
//! flavour), `read` (the archive walk) and `write` (the encoder).

#![warn(missing_docs, unreachable_pub, clippy::cast_possible_truncation)]

mod header;
mod pax;
mod read;
mod sparse;
mod write;

pub use header::is_tar;
pub use read::{End, Ingest, ReadOptions, read};
pub use write::{Sparse, TarEncoder};
