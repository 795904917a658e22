use std::io;

use crate::path::elide;

/// An encoder or tree error. Every variant names the path it is about, so a
/// user can find the offending entry in a tree of thousands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The format cannot hold this entry (size, name length, id range, ...).
    #[error(
        "{}: {what} is {value}, but {format} allows at most {limit}",
        elide(path)
    )]
    Limit {
        /// The entry, as a display path.
        path: String,
        /// The image format, as users name it (`cpio`, `squashfs`, ...).
        format: &'static str,
        /// What exceeds the limit (`file size`, `name length`, ...).
        what: &'static str,
        /// The entry's value.
        value: u64,
        /// The largest value the format can hold.
        limit: u64,
    },
    /// The entry is well formed but the format has no way to store it.
    #[error("{}: {format} cannot store {what}", elide(path))]
    Unsupported {
        /// The entry, as a display path.
        path: String,
        /// The image format, as users name it.
        format: &'static str,
        /// What it cannot store (`extended attributes without the ext_attr
        /// feature`, ...).
        what: String,
    },
    /// A tree operation was given a path that does not fit the tree.
    #[error("{}: {reason}", elide(path))]
    Tree {
        /// The path as given, for display.
        path: String,
        /// Why it does not fit (`does not exist`, `is a symlink but is used as a
        /// parent directory`, ...).
        reason: String,
    },
    /// Reading file data or writing the image failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written, with its path.
        context: String,
        /// The error the system call returned.
        #[source]
        source: io::Error,
    },
    /// An image could not be parsed back.
    #[error("{format} image is malformed at byte {offset}: {reason}")]
    Malformed {
        /// The image format being read.
        format: &'static str,
        /// Where in the image the problem was found.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
}

impl Error {
    /// An [`Error::Io`] that says what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An [`Error::Tree`] about `path`.
    pub fn tree(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Tree {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::Malformed`] at byte `offset` of a `format` image.
    pub fn malformed(format: &'static str, offset: u64, reason: impl Into<String>) -> Self {
        Error::Malformed {
            format,
            offset,
            reason: reason.into(),
        }
    }
}

/// The result of tree and encoder operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
