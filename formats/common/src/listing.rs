//! The canonical one-line-per-entry listing that `rootforge inspect` prints
//! and that tests compare across the input, our readers, the real tools and
//! the kernel's own view of an image.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::path::{display_path, escape_bytes};
use crate::tree::{Content, Kind};
use crate::view::View;

/// One entry: `kind perm uid gid size detail mtime path`, where `detail` is
/// the SHA-256 of a regular file, the target of a symlink, `major,minor` of a
/// device and `-` otherwise; `size` is the file size or the target length
/// (0 for the rest); `mtime` is in whole seconds; the path is absolute, with
/// non-UTF-8 bytes, control characters and `\` escaped as `\xNN`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Line {
    /// Absolute path, escaped.
    pub path: String,
    /// File type.
    pub kind: Kind,
    /// Permission bits, setuid, setgid and sticky included.
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// File size or symlink target length; 0 for other kinds.
    pub size: u64,
    /// File hash, symlink target, `major,minor` or `-`.
    pub detail: String,
    /// Modification time in whole seconds.
    pub mtime: i64,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:04o} {} {} {} {} {} {}",
            self.kind.letter(),
            self.perm,
            self.uid,
            self.gid,
            self.size,
            self.detail,
            self.mtime,
            self.path
        )
    }
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The listing of a view, sorted by path.
pub fn of_view(view: &View<'_>) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    for e in view.sorted_entries() {
        let inode = view.inode(e.ino);
        let path = display_path(&e.path);
        let (size, detail) = match &inode.content {
            Content::File(data) => {
                let mut hasher = Sha256::new();
                let mut w = HashWriter(&mut hasher);
                data.write_to(&mut w)
                    .map_err(|err| Error::io(format!("reading {path}"), err))?;
                (data.size(), hex(&hasher.finalize()))
            }
            Content::Symlink(t) => (t.len() as u64, escape_bytes(t)),
            Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
                (0, format!("{major},{minor}"))
            }
            _ => (0, "-".to_owned()),
        };
        lines.push(Line {
            path,
            kind: inode.kind(),
            perm: inode.meta.perm,
            uid: inode.meta.uid,
            gid: inode.meta.gid,
            size,
            detail,
            mtime: inode.meta.mtime.sec,
        });
    }
    lines.sort();
    Ok(lines)
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Formats a listing, one line per entry.
pub fn to_text(lines: &[Line]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(&l.to_string());
        s.push('\n');
    }
    s
}
