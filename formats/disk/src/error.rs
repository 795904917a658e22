//! What can go wrong planning, writing or reading a disk image.

use std::io;

/// A byte range of the disk, printed as `[start, end)` in hex and decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bytes {:#x}..{:#x} ({}..{})",
            self.start, self.end, self.start, self.end
        )
    }
}

/// A disk image error. Errors about one partition carry its index in the
/// spec (`part`), so a front end can point at the line that declared it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    /// Two areas of the disk overlap: two partitions, or a partition and
    /// the MBR or a GPT structure.
    #[error(
        "partition {name} ({span}) overlaps {other_name} ({other_span}){}",
        if *table_hint { "; a bootloader that overlaps the partition table must declare that area as a hole" } else { "" }
    )]
    Overlap {
        part: Option<usize>,
        name: String,
        span: Span,
        other: Option<usize>,
        other_name: String,
        other_span: Span,
        table_hint: bool,
    },
    /// An image that does not fit its partition.
    #[error("partition {name}: {image} is {image_size} bytes, larger than the partition's {size}")]
    TooLarge {
        part: usize,
        name: String,
        image: String,
        image_size: u64,
        size: u64,
    },
    /// A partition that ends past the disk's given size.
    #[error("partition {name} ({span}) ends past the end of the {size}-byte disk")]
    PastEnd {
        part: Option<usize>,
        name: String,
        span: Span,
        size: u64,
    },
    /// Any other option the layout cannot follow.
    #[error("{}{reason}", name.as_ref().map(|n| format!("partition {n}: ")).unwrap_or_default())]
    Invalid {
        part: Option<usize>,
        name: Option<String>,
        reason: String,
    },
    /// Reading a partition's data or writing the image failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// A partition table could not be parsed back.
    #[error("partition table is malformed at byte {offset}: {reason}")]
    Malformed { offset: u64, reason: String },
}

impl DiskError {
    /// The index (in the spec) of the partition the error is about.
    #[must_use]
    pub fn part(&self) -> Option<usize> {
        match self {
            DiskError::Overlap { part, .. }
            | DiskError::PastEnd { part, .. }
            | DiskError::Invalid { part, .. } => *part,
            DiskError::TooLarge { part, .. } => Some(*part),
            DiskError::Io { .. } | DiskError::Malformed { .. } => None,
        }
    }

    /// The partition to point at: the one the error is about, or, when
    /// that is a table structure, the partition it collided with.
    #[must_use]
    pub fn blame(&self) -> Option<usize> {
        match self {
            DiskError::Overlap { part, other, .. } => part.or(*other),
            _ => self.part(),
        }
    }

    pub(crate) fn invalid(part: Option<(usize, &str)>, reason: impl Into<String>) -> DiskError {
        DiskError::Invalid {
            part: part.map(|p| p.0),
            name: part.map(|p| p.1.to_owned()),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = DiskError> = std::result::Result<T, E>;
