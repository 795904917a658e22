//! A view's full state, for targets that compare two views: every name with
//! its inode id and link count, the listing line, and what the listing
//! leaves out (nanoseconds, xattrs).

use rootforge_common::listing::{self, Line};
use rootforge_common::{Entry, View, Xattr};

#[derive(Debug, PartialEq, Eq)]
pub struct EntryState {
    pub entry: Entry,
    pub line: Line,
    pub nsec: u32,
    pub xattrs: Vec<Xattr>,
}

/// Panics if some file cannot be read: the targets keep data in memory.
pub fn state(view: &View<'_>) -> Vec<EntryState> {
    let lines = listing::of_view(view).expect("in-memory data reads");
    view.sorted_entries()
        .into_iter()
        .zip(lines)
        .map(|(entry, line)| {
            let inode = view.inode(entry.ino);
            EntryState {
                nsec: inode.meta.mtime.nsec,
                xattrs: inode.xattrs.clone(),
                entry,
                line,
            }
        })
        .collect()
}
