//! The pax writer: the archive Buildroot's `fs/tar` makes with
//! `find | LC_ALL=C sort | tar --format=posix --numeric-owner --xattrs
//! --pax-option=exthdr.name=%d/PaxHeaders/%f,atime:=0,ctime:=0`, field for
//! field as GNU tar 1.34 writes it, with these deliberate differences:
//!
//! - GNU tar gives every member an extended header holding `ctime=0` and
//!   `atime=0` (its `:=` override creates the header before it checks the
//!   override). Those records say nothing, so only members that need a pax
//!   record get an extended header, and none gets atime or ctime.
//! - A name of 101 to 256 bytes is split into the ustar prefix and name
//!   fields when a `/` allows it, where GNU tar writes a pax `path` record.
//! - A non-ASCII name that fits the ustar fields stays there as raw bytes.
//!   GNU tar also puts it in a `path` record, which pax defines as UTF-8:
//!   bsdtar fails on such a record holding a name that is not UTF-8.
//! - xattrs are in name order; GNU tar keeps the order the filesystem
//!   lists them in.
//!
//! Extended header names follow `%d/PaxHeaders/%f` (`./bin/PaxHeaders/ping`;
//! the root's is `./PaxHeaders/.`, as GNU tar names it), cut to the 100-byte
//! name field as GNU tar cuts them; readers ignore them.
//!
//! A file with holes (known to the tree: a sparse input member, a sparse
//! extent list from an image) is written, by default, as GNU tar's
//! `--sparse --sparse-version=1.0` writes it, which GNU tar, bsdtar, Go and
//! CPython read: `GNU.sparse.*` records, the header named
//! `%d/GNUSparseFile.0/%f` (GNU tar's `%p` is its process id, a constant
//! here), the map at the start of the data. [`Sparse::Dense`] writes every
//! byte, as Buildroot's `tar` (without `--sparse`) does. Every other file
//! is written the same either way.

use std::collections::HashMap;
use std::io;

use rootforge_common::{
    Batch, Content, Encoder, Entry, Error, FileData, ImagePlan, Inode, InodeId, Kind, Report,
    Result, Sink, Source, View, display_path,
};

use crate::header::{BLOCK, BLOCK_U64, Ustar};
use crate::pax::{format_time, record};
use crate::sparse;

/// The format name used in errors.
const FORMAT: &str = "tar";
/// GNU tar's default record size (`-b 20`): the archive is padded to it.
const RECORD: u64 = 10240;
const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
/// The largest values of the 8-byte (7 octal digits) and 12-byte (11 octal
/// digits) numeric fields.
const MAX_OCTAL_7: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;

/// Writes a view as a POSIX pax archive in `find . | LC_ALL=C sort` order
/// with `./`-prefixed names, numeric owners, xattrs as `SCHILY.xattr.*`
/// records and hard links pointing at the first name of their group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TarEncoder {
    /// How files with holes are written.
    pub sparse: Sparse,
}

/// How the tar image writes files with holes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sparse {
    /// As pax sparse 1.0 members: holes take no space in the image (a
    /// 60 GB sparse disk image stays a few blocks). GNU tar, bsdtar, Go
    /// and CPython extract them; BusyBox tar does not.
    #[default]
    Pax,
    /// Every byte written out, as Buildroot's `tar` writes them.
    Dense,
}

/// A name [`Sparse::from_str`](std::str::FromStr) does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tar sparse mode {0:?} (expected pax or none)")]
pub struct UnknownSparse(String);

impl std::str::FromStr for Sparse {
    type Err = UnknownSparse;

    /// `pax` or `none` (dense), as `--tar-sparse` takes them.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "pax" => Ok(Sparse::Pax),
            "none" => Ok(Sparse::Dense),
            other => Err(UnknownSparse(other.to_owned())),
        }
    }
}

/// One archive member, decided before anything is written.
struct Member {
    entry: Entry,
    /// For a later name of a hard-link group, the index (in the member list)
    /// of the name that carries the inode.
    link_to: Option<usize>,
}

struct Plan {
    members: Vec<Member>,
    warnings: Vec<String>,
}

impl Encoder for TarEncoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn plan<'v>(&'v self, view: View<'v>) -> Result<Box<dyn ImagePlan + 'v>> {
        let plan = plan(&view)?;
        Ok(Box::new(Planned {
            sparse: self.sparse,
            view,
            plan,
        }))
    }
}

/// A tar archive planned for one view.
struct Planned<'v> {
    sparse: Sparse,
    view: View<'v>,
    plan: Plan,
}

impl ImagePlan for Planned<'_> {
    fn write(self: Box<Self>, out: &mut dyn Sink) -> Result<Report> {
        write_plan(self.sparse, &self.view, self.plan, out)
    }
}

fn write_plan(sparse: Sparse, view: &View<'_>, plan: Plan, out: &mut dyn Sink) -> Result<Report> {
    let mut w = Writer {
        sparse,
        batch: Batch::new(out),
        name: Vec::new(),
        link: Vec::new(),
        pax: Vec::new(),
    };
    for m in &plan.members {
        w.member(view, &plan.members, m)?;
    }
    // End of archive: two zero blocks, then zeros to the record size.
    w.batch.zeros(2 * BLOCK);
    let tail = (RECORD - w.batch.pos() % RECORD) % RECORD;
    w.batch.zeros(usize::try_from(tail).unwrap_or(0));
    w.batch.finish().map_err(write_error)?;
    Ok(Report {
        bytes: w.batch.pos(),
        warnings: plan.warnings,
    })
}

/// Checks every entry and decides which name carries each hard-link group,
/// before a byte is written.
fn plan(view: &View<'_>) -> Result<Plan> {
    let entries = view.sorted_entries();
    let mut members = Vec::with_capacity(entries.len());
    let mut first_name: HashMap<InodeId, usize> = HashMap::new();
    let mut sockets = Skipped::default();
    for entry in entries {
        let inode = view.inode(entry.ino);
        check_entry(&entry, inode)?;
        let kind = inode.kind();
        if kind == Kind::Socket {
            sockets.note(&entry);
            continue;
        }
        let mut link_to = None;
        if kind != Kind::Dir && entry.nlink >= 2 {
            let next = members.len();
            let first = *first_name.entry(entry.ino).or_insert(next);
            link_to = (first != next).then_some(first);
        }
        members.push(Member { entry, link_to });
    }
    Ok(Plan {
        members,
        warnings: sockets.warning().into_iter().collect(),
    })
}

/// What no pax reader could make sense of. Nothing a Linux filesystem holds
/// is refused here; sockets are skipped later with a warning.
fn check_entry(entry: &Entry, inode: &Inode) -> Result<()> {
    let unsupported = |what: &str| Error::Unsupported {
        path: display_path(&entry.path),
        format: FORMAT,
        what: what.to_owned(),
    };
    if entry.path.contains(&0) {
        return Err(unsupported("a NUL byte in a name"));
    }
    if let Content::Symlink(target) = &inode.content {
        if target.contains(&0) {
            return Err(unsupported("a NUL byte in a symlink target"));
        }
    }
    // A pax key ends at the first `=`.
    if inode
        .xattrs
        .iter()
        .any(|x| x.name.is_empty() || x.name.contains(&0) || x.name.contains(&b'='))
    {
        return Err(unsupported(
            "an xattr name that is empty or holds `=` or NUL",
        ));
    }
    let nsec = inode.meta.mtime.nsec;
    if nsec >= 1_000_000_000 {
        return Err(Error::Limit {
            path: display_path(&entry.path),
            format: FORMAT,
            what: "mtime nanoseconds",
            value: u64::from(nsec),
            limit: 999_999_999,
        });
    }
    Ok(())
}

/// Counts sockets, which tar cannot hold, for one warning.
#[derive(Default)]
struct Skipped {
    count: u64,
    first: Option<String>,
}

impl Skipped {
    fn note(&mut self, entry: &Entry) {
        self.count = self.count.saturating_add(1);
        self.first.get_or_insert_with(|| display_path(&entry.path));
    }

    fn warning(self) -> Option<String> {
        let first = self.first?;
        Some(format!(
            "tar cannot store sockets: skipped {} (first: {first})",
            self.count
        ))
    }
}

/// The archive being written, with scratch buffers reused across members.
struct Writer<'a> {
    sparse: Sparse,
    batch: Batch<'a>,
    /// The member name: `./`, `./bin/`, `./bin/sh`.
    name: Vec<u8>,
    /// A hard link's target name.
    link: Vec<u8>,
    /// The member's pax records.
    pax: Vec<u8>,
}

impl Writer<'_> {
    fn member(&mut self, view: &View<'_>, members: &[Member], m: &Member) -> Result<()> {
        let inode = view.inode(m.entry.ino);
        let path = &m.entry.path;
        let kind = inode.kind();
        self.name.clear();
        self.name.extend_from_slice(b"./");
        self.name.extend_from_slice(path);
        if kind == Kind::Dir && !path.is_empty() {
            self.name.push(b'/');
        }

        let mut data = None;
        let (typeflag, link): (u8, &[u8]) =
            match (m.link_to.and_then(|i| members.get(i)), &inode.content) {
                (Some(first), _) => {
                    self.link.clear();
                    self.link.extend_from_slice(b"./");
                    self.link.extend_from_slice(&first.entry.path);
                    (b'1', &self.link)
                }
                (None, Content::File(d)) => {
                    data = Some(d);
                    (b'0', b"")
                }
                (None, Content::Dir(_)) => (b'5', b""),
                (None, Content::Symlink(target)) => (b'2', target),
                (None, Content::CharDev { .. }) => (b'3', b""),
                (None, Content::BlockDev { .. }) => (b'4', b""),
                (None, Content::Fifo) => (b'6', b""),
                // Left out by the plan.
                (None, Content::Socket) => return Ok(()),
            };
        let meta = &inode.meta;
        let runs = data
            .filter(|_| self.sparse == Sparse::Pax)
            .and_then(sparse::runs);
        let map = runs
            .as_ref()
            .zip(data)
            .map(|(runs, d)| sparse::encode_map(runs, d.size()));
        let stored = runs
            .as_ref()
            .map(|r| r.iter().map(|&(_, len)| len).sum::<u64>());
        let size = match (&map, stored) {
            (Some(map), Some(stored)) => stored.saturating_add(map.len() as u64),
            _ => data.map_or(0, FileData::size),
        };

        // Records in the order GNU tar stores them.
        self.pax.clear();
        if let Some(d) = data.filter(|_| map.is_some()) {
            record(&mut self.pax, b"GNU.sparse.major", b"1");
            record(&mut self.pax, b"GNU.sparse.minor", b"0");
            record(&mut self.pax, b"GNU.sparse.name", &self.name);
            record(
                &mut self.pax,
                b"GNU.sparse.realsize",
                d.size().to_string().as_bytes(),
            );
        }
        let sparse_name = map.as_ref().map(|_| sparse_header_name(path));
        if link.len() > NAME_LEN {
            record(&mut self.pax, b"linkpath", link);
        }
        let (prefix, name) = if let Some(sparse_name) = &sparse_name {
            // Only readers that know no sparse format see this name.
            split_name(sparse_name).unwrap_or((b"", sparse_name))
        } else {
            match split_name(&self.name) {
                Some(split) => split,
                None => {
                    record(&mut self.pax, b"path", &self.name);
                    (&b""[..], &self.name[..])
                }
            }
        };
        let uid = id_field(&mut self.pax, b"uid", meta.uid);
        let gid = id_field(&mut self.pax, b"gid", meta.gid);
        let size_field = if size > MAX_OCTAL_11 {
            record(&mut self.pax, b"size", size.to_string().as_bytes());
            0
        } else {
            size
        };
        let mtime = octal_time(meta.mtime.sec);
        if mtime.is_none() || meta.mtime.nsec != 0 {
            record(&mut self.pax, b"mtime", format_time(meta.mtime).as_bytes());
        }
        // A hard link's xattrs are those of the name it points at.
        if m.link_to.is_none() {
            for x in &inode.xattrs {
                let mut key = Vec::with_capacity(x.name.len().saturating_add(13));
                key.extend_from_slice(b"SCHILY.xattr.");
                key.extend_from_slice(&x.name);
                record(&mut self.pax, &key, &x.value);
            }
        }

        if !self.pax.is_empty() {
            let xname = pax_header_name(path);
            let header = Ustar {
                name: &xname,
                prefix: b"",
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: self.pax.len() as u64,
                mtime: mtime.unwrap_or(if meta.mtime.sec < 0 { 0 } else { MAX_OCTAL_11 }),
                typeflag: b'x',
                linkname: b"",
                dev: None,
            };
            self.batch.put(&header.encode());
            self.batch.put(&self.pax);
            self.batch.pad(BLOCK_U64);
        }

        let header = Ustar {
            name,
            prefix,
            mode: u32::from(meta.perm & 0o7777),
            uid,
            gid,
            size: size_field,
            mtime: mtime.unwrap_or(0),
            typeflag,
            linkname: link,
            dev: Some(inode.rdev().unwrap_or((0, 0))),
        };
        self.batch.put(&header.encode());
        if let Some(data) = data {
            let written = match &map {
                Some(map) => {
                    self.batch.put(map);
                    sparse_data(&mut self.batch, data)
                }
                None => self.batch.data(data),
            };
            written.map_err(|e| {
                Error::io(
                    format!("writing {} into the tar image", display_path(path)),
                    e,
                )
            })?;
            self.batch.pad(BLOCK_U64);
        }
        self.batch.end_member().map_err(write_error)
    }
}

/// A uid or gid for its 7-digit field; a larger one goes in a pax record
/// and the field holds 0.
fn id_field(pax: &mut Vec<u8>, key: &[u8], id: u32) -> u32 {
    if u64::from(id) > MAX_OCTAL_7 {
        record(pax, key, id.to_string().as_bytes());
        0
    } else {
        id
    }
}

/// The seconds for the 11-digit mtime field, if they fit there.
fn octal_time(sec: i64) -> Option<u64> {
    u64::try_from(sec).ok().filter(|&s| s <= MAX_OCTAL_11)
}

/// Splits a member name into the ustar prefix and name fields, or `None`
/// when it needs a pax `path` record. A directory's trailing `/` stays in
/// the name field, which is never left empty.
fn split_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= NAME_LEN {
        return Some((b"", name));
    }
    let (_, head) = name.split_last()?;
    let head = head.get(..=PREFIX_LEN).unwrap_or(head);
    let slash = head.iter().rposition(|&b| b == b'/')?;
    let rest = name.get(slash.checked_add(1)?..)?;
    (rest.len() <= NAME_LEN).then(|| (&name[..slash], rest))
}

/// GNU tar's `%d/PaxHeaders/%f` for a tree path (the root is the empty path).
fn pax_header_name(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len().saturating_add(14));
    out.extend_from_slice(b"./");
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => {
            out.extend_from_slice(&path[..slash]);
            out.extend_from_slice(b"/PaxHeaders/");
            out.extend_from_slice(&path[slash + 1..]);
        }
        None if path.is_empty() => out.extend_from_slice(b"PaxHeaders/."),
        None => {
            out.extend_from_slice(b"PaxHeaders/");
            out.extend_from_slice(path);
        }
    }
    out
}

/// GNU tar's `%d/GNUSparseFile.%p/%f` for a tree path, with `%p` (its
/// process id) 0.
fn sparse_header_name(path: &[u8]) -> Vec<u8> {
    let (dir, file) = match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => (&b""[..], path),
    };
    let mut out = Vec::with_capacity(path.len().saturating_add(20));
    out.extend_from_slice(b"./");
    if !dir.is_empty() {
        out.extend_from_slice(dir);
        out.push(b'/');
    }
    out.extend_from_slice(b"GNUSparseFile.0/");
    out.extend_from_slice(file);
    out
}

/// The data runs of a sparse file, back to back, each straight from its
/// backing buffer.
fn sparse_data(batch: &mut Batch<'_>, data: &FileData) -> io::Result<()> {
    if let Source::Sparse { backing, extents } = data.source() {
        for e in extents.iter().filter(|e| e.len > 0) {
            let run = FileData::range(backing.clone(), e.stored, e.len).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "sparse extent past its buffer")
            })?;
            batch.data(&run)?;
        }
    }
    Ok(())
}

fn write_error(e: io::Error) -> Error {
    Error::io("writing the tar image", e)
}

#[cfg(test)]
mod tests;
