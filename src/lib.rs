//! rootforge: build every root filesystem image a build needs from one
//! in-memory tree, natively and in parallel.

pub mod compress;
pub mod uimage;

pub use rootforge_common as common;
