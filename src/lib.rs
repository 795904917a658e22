//! rootforge: build every root filesystem image a build needs from one
//! in-memory tree, natively and in parallel.
//!
//! The flow is `input` (tarball, stdin or directory → [`common::Tree`]) →
//! per-image `overlay`s → `pipeline` (encoders from the `formats/` crates,
//! outer `compress`ion, atomic output) → files. `cli` ties it to the
//! command line.

pub mod build;
pub mod buildroot;
pub mod cli;
pub mod compare;
pub mod compress;
pub mod format;
#[cfg(feature = "arbitrary")]
pub mod fuzzing;
pub mod genimage;
pub mod image;
pub mod input;
pub mod inspect;
pub mod overlay;
pub mod pipeline;
pub mod plan;
mod staged;
pub mod tables;
pub mod uimage;

pub use rootforge_common as common;
pub use rootforge_cpio as cpio;
pub use rootforge_disk as disk;
pub use rootforge_erofs as erofs;
pub use rootforge_ext as ext;
pub use rootforge_fat as fat;
pub use rootforge_iso9660 as iso9660;
pub use rootforge_jffs2 as jffs2;
pub use rootforge_squashfs as squashfs;
pub use rootforge_tar as tar;
