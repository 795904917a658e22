//! Buildroot's text tables applied natively to the tree: the users table
//! (`mkusers`) and the device/permission table (`makedevs`), in the order
//! Buildroot's fakeroot script runs them (users first).

mod devices;
mod systemd;
mod users;

use std::path::Path;
use std::sync::Arc;

use rootforge_common::{
    Content, Edit, FileData, Inode, InodeId, Meta, Overlay, Replace, TreeBuilder, display_path,
};

pub use devices::{
    CapSets, DeviceKind, DeviceLine, Owner, apply_device_table, decode_capability,
    encode_capability, parse_capabilities, parse_device_table,
};
pub use systemd::{Skipped, SystemdError, apply_tmpfiles, preset_all, var_factory};
pub use users::{Password, UserLine, UsersOptions, apply_users, parse_users_table, sha512_crypt};

/// A table line that cannot be parsed or applied, with where it came from.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct TableError {
    pub file: Arc<str>,
    pub line: usize,
    pub reason: String,
}

/// Where a table line came from: the table's name and its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: usize,
}

impl Origin {
    fn new(file: &Path, line: usize) -> Self {
        Origin {
            file: file.display().to_string().into(),
            line,
        }
    }

    fn err(&self, reason: impl Into<String>) -> TableError {
        TableError {
            file: self.file.clone(),
            line: self.line,
            reason: reason.into(),
        }
    }
}

/// A tree the tables can be applied to: the base tree being built, or a
/// per-image overlay. Reading an inode by id is all [`Edit`] lacks.
pub trait Target: Edit {
    fn node(&self, id: InodeId) -> &Inode;
}

impl Target for TreeBuilder {
    fn node(&self, id: InodeId) -> &Inode {
        self.inode(id)
    }
}

impl Target for Overlay {
    fn node(&self, id: InodeId) -> &Inode {
        self.view().inode(id)
    }
}

/// Symlinks followed in one lookup before giving up, as Linux does.
const MAX_SYMLINKS: u32 = 40;

/// A path resolved inside the tree: its symlink-free form and its inode.
#[derive(Debug)]
struct Resolved {
    path: Vec<u8>,
    id: InodeId,
}

/// Resolves `path` inside the tree the way the kernel would inside a chroot:
/// symlinks in the middle are followed (absolute targets from the tree's
/// root), the last one only if `follow_last`. With `create`, missing
/// directories are made with that metadata (`mkdir -p`). `Ok(None)` means
/// some component does not exist.
fn resolve<T: Target + ?Sized>(
    t: &mut T,
    path: &[u8],
    follow_last: bool,
    create: Option<Meta>,
) -> Result<Option<Resolved>, String> {
    let mut pending: Vec<Box<[u8]>> = components(path).rev().map(Box::from).collect();
    let mut stack: Vec<(Box<[u8]>, InodeId)> = Vec::new();
    let mut links = 0u32;
    while let Some(name) = pending.pop() {
        match &*name {
            b"." => continue,
            b".." => {
                stack.pop();
                continue;
            }
            _ => {}
        }
        let dir = stack.last().map_or(rootforge_common::Tree::ROOT, |s| s.1);
        let here = join(stack.iter().map(|s| &*s.0));
        let child = match t.node(dir).children() {
            Some(c) => c.get(&name).copied(),
            None => return Err(format!("{} is not a directory", display_path(&here))),
        };
        let id = match (child, create) {
            (Some(id), _) => id,
            (None, Some(meta)) => {
                let full = join(stack.iter().map(|s| &*s.0).chain([&*name]));
                t.insert(&full, Inode::dir(meta), Replace::IfAbsent)
                    .map_err(|e| e.to_string())?
            }
            (None, None) => return Ok(None),
        };
        if let Content::Symlink(target) = &t.node(id).content
            && (follow_last || !pending.is_empty())
        {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(format!(
                    "too many levels of symbolic links under {}",
                    display_path(path)
                ));
            }
            if target.first() == Some(&b'/') {
                stack.clear();
            }
            pending.extend(components(target).rev().map(Box::from));
            continue;
        }
        stack.push((name, id));
    }
    let id = stack.last().map_or(rootforge_common::Tree::ROOT, |s| s.1);
    Ok(Some(Resolved {
        path: join(stack.iter().map(|s| &*s.0)),
        id,
    }))
}

fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

fn join<'a>(parts: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(p);
    }
    out
}

/// The contents of a regular file of the tree (following symlinks), or
/// `None` if there is none at `path`.
fn read_file<T: Target + ?Sized>(t: &mut T, path: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let Some(r) = resolve(t, path, true, None)? else {
        return Ok(None);
    };
    let inode = t.node(r.id);
    match &inode.content {
        Content::File(data) => data
            .to_vec()
            .map(Some)
            .map_err(|e| format!("reading {}: {e}", display_path(path))),
        _ => Err(format!(
            "{} is a {}, not a regular file",
            display_path(path),
            inode.kind().name()
        )),
    }
}

/// Replaces the bytes of the regular file at `path`, keeping its inode
/// (owner, mode, xattrs and other names).
fn write_file<T: Target + ?Sized>(t: &mut T, path: &[u8], bytes: Vec<u8>) -> Result<(), String> {
    let data = FileData::bytes(bytes);
    t.modify(path, &mut |i| i.content = Content::File(data.clone()))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Looks `name` up in a passwd or group file: the numeric id of its first
/// line with that name.
fn id_in(db: &[u8], name: &str) -> Option<u32> {
    db.split(|&b| b == b'\n').find_map(|line| {
        let mut f = line.split(|&b| b == b':');
        if f.next()? != name.as_bytes() {
            return None;
        }
        std::str::from_utf8(f.nth(1)?).ok()?.parse().ok()
    })
}
