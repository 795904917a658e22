//! The data model every rootforge encoder consumes.
//!
//! A [`Tree`] is the frozen base filesystem: an arena of [`Inode`]s where a
//! directory holds its entries sorted by raw name bytes and a hard-link group is
//! one inode with several names. An [`Overlay`] is a small copy-on-write layer
//! of per-image changes over it, and a [`View`] is what encoders read: the base
//! plus at most one overlay, with nothing of the base copied.
//!
//! File data is never held in the tree: a [`FileData`] refers to a byte range of
//! a shared backing buffer (usually the memory-mapped input tarball), a host
//! file, or a small owned buffer.

#![warn(missing_docs, unreachable_pub, clippy::cast_possible_truncation)]

mod batch;
pub mod bytes;
mod data;
mod encoder;
mod error;
pub mod listing;
mod overlay;
mod path;
mod tree;
mod view;

pub use batch::Batch;
pub use data::{Backing, Blob, Extent, FileBlob, FileData, Source, read_end};
pub use encoder::{Buffer, Encoder, ImagePlan, Plain, Report, Sink, write_zeros};
pub use error::{Error, Result};
pub use overlay::Overlay;
pub use path::{PathError, display_path, elide, escape_bytes, normalize_path};
pub use tree::{
    Content, DirEntry, Edit, Inode, InodeId, Kind, Meta, Replace, Time, Tree, TreeBuilder, Xattr,
};
pub use view::{Entry, View};
