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
        path: String,
        format: &'static str,
        what: &'static str,
        value: u64,
        limit: u64,
    },
    /// The entry is well formed but the format has no way to store it.
    #[error("{}: {format} cannot store {what}", elide(path))]
    Unsupported {
        path: String,
        format: &'static str,
        what: String,
    },
    /// A tree operation was given a path that does not fit the tree.
    #[error("{}: {reason}", elide(path))]
    Tree { path: String, reason: String },
    /// Reading file data or writing the image failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// An image could not be parsed back.
    #[error("{format} image is malformed at byte {offset}: {reason}")]
    Malformed {
        format: &'static str,
        offset: u64,
        reason: String,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn tree(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Tree {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub fn malformed(format: &'static str, offset: u64, reason: impl Into<String>) -> Self {
        Error::Malformed {
            format,
            offset,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
