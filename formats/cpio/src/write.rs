//! The newc/crc writer.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};

use rootforge_common::{
    Batch, Content, Encoder, Entry, Error, FileData, ImagePlan, InodeId, Report, Result, Sink,
    Source, View, Xattr, display_path, escape_bytes,
};

use crate::header::{CpioFormat, Header, byte_sum};
use crate::{PATH_MAX, TRAILER};

/// The format name used in errors.
const FORMAT: &str = "cpio";
/// The crc sum of file-backed data is read in chunks of this size.
const SUM_CHUNK: usize = 64 << 10;
/// The archive is padded to a multiple of this, as GNU cpio and
/// `gen_init_cpio` do.
const BLOCK: u64 = 512;

/// Writes a view as a newc (or crc) archive in `find . | LC_ALL=C sort`
/// order, the root first as `.`, with the choices of
/// `cpio --reproducible -H newc`: inodes renumbered in member order (from 1,
/// where GNU cpio starts at 0) with one number per hard-link group, device
/// fields 0:0, hard-link data on the last name of the group (GNU cpio also
/// moves the earlier names next to it; they stay in sorted order here), and
/// the output padded to 512 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpioEncoder {
    /// newc, or crc with a checksum of each file's bytes.
    pub format: CpioFormat,
}

/// One archive member, decided before anything is written.
struct Member {
    entry: Entry,
    ino: u32,
    mtime: u32,
    /// Whether a regular file's data goes with this name (the last name of
    /// its hard-link group).
    carries_data: bool,
}

/// What follows a member's name.
#[derive(Clone, Copy)]
enum Body<'a> {
    File(&'a FileData),
    /// A symlink's target, without a NUL.
    Target(&'a [u8]),
    Empty,
}

struct Plan {
    members: Vec<Member>,
    warnings: Vec<String>,
}

impl Encoder for CpioEncoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn plan<'v>(&'v self, view: View<'v>) -> Result<Box<dyn ImagePlan + 'v>> {
        let plan = plan(&view)?;
        Ok(Box::new(Planned {
            encoder: self,
            view,
            plan,
        }))
    }
}

/// A cpio archive planned for one view.
struct Planned<'v> {
    encoder: &'v CpioEncoder,
    view: View<'v>,
    plan: Plan,
}

impl ImagePlan for Planned<'_> {
    fn write(self: Box<Self>, out: &mut dyn Sink) -> Result<Report> {
        self.encoder.write_plan(&self.view, self.plan, out)
    }
}

impl CpioEncoder {
    fn write_plan(&self, view: &View<'_>, plan: Plan, out: &mut dyn Sink) -> Result<Report> {
        let mut w = Batch::new(out);
        for m in &plan.members {
            self.write_member(view, m, &mut w)?;
        }
        let trailer = Header {
            nlink: 1,
            namesize: name_size(TRAILER)?,
            ..Header::default()
        };
        w.put(&trailer.encode(self.format));
        w.put(TRAILER);
        w.put(&[0]);
        w.pad(BLOCK);
        w.finish().map_err(write_error)?;
        Ok(Report {
            bytes: w.pos(),
            warnings: plan.warnings,
        })
    }
}

impl CpioEncoder {
    fn write_member(&self, view: &View<'_>, m: &Member, w: &mut Batch<'_>) -> Result<()> {
        let inode = view.inode(m.entry.ino);
        let name: &[u8] = if m.entry.path.is_empty() {
            b"."
        } else {
            &m.entry.path
        };
        let body = match &inode.content {
            Content::File(data) if m.carries_data => Body::File(data),
            Content::Symlink(target) => Body::Target(target),
            _ => Body::Empty,
        };
        let (filesize, check) = match body {
            Body::File(data) => {
                let check = match self.format {
                    CpioFormat::Crc => checksum(data).map_err(|e| read_error(&m.entry, e))?,
                    CpioFormat::Newc => 0,
                };
                (checked_size(&m.entry, data.size())?, check)
            }
            Body::Target(target) => (checked_size(&m.entry, target.len() as u64)?, 0),
            Body::Empty => (0, 0),
        };
        let (rdev_major, rdev_minor) = inode.rdev().unwrap_or((0, 0));
        let header = Header {
            ino: m.ino,
            mode: inode.mode(),
            uid: inode.meta.uid,
            gid: inode.meta.gid,
            nlink: m.entry.nlink,
            mtime: m.mtime,
            filesize,
            dev_major: 0,
            dev_minor: 0,
            rdev_major,
            rdev_minor,
            namesize: name_size(name)?,
            check,
        };
        w.put(&header.encode(self.format));
        w.put(name);
        w.put(&[0]);
        w.pad(4);
        match body {
            Body::File(data) => w.data(data).map_err(|e| copy_error(&m.entry, e))?,
            Body::Target(target) => w.put(target),
            Body::Empty => {}
        }
        w.pad(4);
        w.end_member().map_err(write_error)
    }
}

/// Checks every entry against the format's limits and decides inode numbers,
/// clamped times and where hard-link data goes, before a byte is written.
fn plan(view: &View<'_>) -> Result<Plan> {
    let entries = view.sorted_entries();

    // The data of a hard-link group goes with its last name.
    let mut last_seen = HashSet::new();
    let mut carries_data = vec![false; entries.len()];
    for (e, carries) in entries.iter().zip(&mut carries_data).rev() {
        *carries = e.nlink < 2 || last_seen.insert(e.ino);
    }

    let mut members = Vec::with_capacity(entries.len());
    let mut group_ino: HashMap<InodeId, u32> = HashMap::new();
    let mut next_ino = Some(1u32);
    let mut clamped = Clamped::default();
    let mut dropped = Dropped::default();
    for (entry, carries_data) in entries.into_iter().zip(carries_data) {
        let inode = view.inode(entry.ino);
        check_entry(&entry, &inode.content)?;

        let linked = entry.nlink >= 2 && !matches!(inode.content, Content::Dir(_));
        let ino = match group_ino.get(&entry.ino) {
            Some(&ino) if linked => ino,
            _ => {
                let ino = next_ino.ok_or_else(|| Error::Limit {
                    path: display_path(&entry.path),
                    format: FORMAT,
                    what: "inode count",
                    value: u64::from(u32::MAX) + 1,
                    limit: u64::from(u32::MAX),
                })?;
                next_ino = ino.checked_add(1);
                if linked {
                    group_ino.insert(entry.ino, ino);
                }
                dropped.note(&entry, &inode.xattrs);
                ino
            }
        };

        let sec = inode.meta.mtime.sec;
        let mtime = u32::try_from(sec).unwrap_or_else(|_| {
            clamped.note(&entry, sec);
            if sec < 0 { 0 } else { u32::MAX }
        });
        members.push(Member {
            entry,
            ino,
            mtime,
            carries_data,
        });
    }
    let warnings = [dropped.warning(), clamped.warning()]
        .into_iter()
        .flatten()
        .collect();
    Ok(Plan { members, warnings })
}

/// What the format (and the kernel's unpacker) cannot hold.
fn check_entry(entry: &Entry, content: &Content) -> Result<()> {
    let limit = |what, value: usize, limit: usize| Error::Limit {
        path: display_path(&entry.path),
        format: FORMAT,
        what,
        value: value as u64,
        limit: limit as u64,
    };
    let unsupported = |what: &str| Error::Unsupported {
        path: display_path(&entry.path),
        format: FORMAT,
        what: what.to_owned(),
    };
    // The root is stored as ".", which always fits.
    if entry.path.len() >= PATH_MAX {
        return Err(limit("name length", entry.path.len(), PATH_MAX - 1));
    }
    if entry.path.contains(&0) {
        return Err(unsupported("a NUL byte in a name"));
    }
    match content {
        Content::File(data) => checked_size(entry, data.size()).map(drop),
        Content::Symlink(target) if target.len() >= PATH_MAX => {
            Err(limit("symlink target length", target.len(), PATH_MAX - 1))
        }
        Content::Symlink(target) if target.contains(&0) => {
            Err(unsupported("a NUL byte in a symlink target"))
        }
        _ => Ok(()),
    }
}

/// Counts mtimes outside the 32-bit unsigned range, for one warning.
#[derive(Default)]
struct Clamped {
    count: u64,
    first: Option<(String, i64)>,
}

impl Clamped {
    fn note(&mut self, entry: &Entry, sec: i64) {
        self.count = self.count.saturating_add(1);
        self.first
            .get_or_insert_with(|| (display_path(&entry.path), sec));
    }

    fn warning(self) -> Option<String> {
        let (path, sec) = self.first?;
        Some(format!(
            "cpio stores mtimes as unsigned 32-bit seconds (1970 to 2106): clamped {} \
             entries (first: {path} at {sec})",
            self.count
        ))
    }
}

/// Counts xattrs the format has no place for, for one warning.
#[derive(Default)]
struct Dropped {
    xattrs: u64,
    entries: u64,
    first: Option<String>,
}

impl Dropped {
    /// Called once per inode (its first name).
    fn note(&mut self, entry: &Entry, xattrs: &[Xattr]) {
        let Some(x) = xattrs.first() else { return };
        self.xattrs = self.xattrs.saturating_add(xattrs.len() as u64);
        self.entries = self.entries.saturating_add(1);
        self.first.get_or_insert_with(|| {
            format!("{} {}", display_path(&entry.path), escape_bytes(&x.name))
        });
    }

    fn warning(self) -> Option<String> {
        let first = self.first?;
        Some(format!(
            "cpio cannot store xattrs: dropped {} xattrs on {} entries (first: {first})",
            self.xattrs, self.entries
        ))
    }
}

fn checked_size(entry: &Entry, size: u64) -> Result<u32> {
    u32::try_from(size).map_err(|_| Error::Limit {
        path: display_path(&entry.path),
        format: FORMAT,
        what: "file size",
        value: size,
        limit: u64::from(u32::MAX),
    })
}

fn name_size(name: &[u8]) -> Result<u32> {
    name.len()
        .checked_add(1)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| Error::Limit {
            path: display_path(name),
            format: FORMAT,
            what: "name length",
            value: name.len() as u64,
            limit: (PATH_MAX - 1) as u64,
        })
}

fn read_error(entry: &Entry, e: io::Error) -> Error {
    Error::io(format!("reading {}", display_path(&entry.path)), e)
}

fn copy_error(entry: &Entry, e: io::Error) -> Error {
    Error::io(
        format!("copying {} into the cpio image", display_path(&entry.path)),
        e,
    )
}

/// The crc format's sum over a file's bytes. Data that is not one slice in
/// memory (a host file, a sparse file) is read once here and once to write.
fn checksum(data: &FileData) -> io::Result<u32> {
    if let Some(slice) = data.as_slice() {
        return Ok(byte_sum(0, slice));
    }
    if let Source::Zeros = data.source() {
        return Ok(0);
    }
    let mut reader = data.reader()?;
    let mut chunk = vec![0u8; SUM_CHUNK];
    let mut sum = 0u32;
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sum = byte_sum(sum, &chunk[..n]);
        total = total.saturating_add(n as u64);
    }
    expect_size(data, total)?;
    Ok(sum)
}

fn expect_size(data: &FileData, got: u64) -> io::Result<()> {
    if got == data.size() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("expected {} bytes, read {got}", data.size()),
    ))
}

fn write_error(e: io::Error) -> Error {
    Error::io("writing the cpio image", e)
}
