//! Parsed tmpfiles.d entries into tree edits, in systemd's order: one
//! line per path (the first wins), parents before children, globs last.

use std::collections::HashMap;

use rootforge_common::{
    Content, FileData, Inode, InodeId, Kind, Meta, Replace, Time, Tree, display_path,
};

use super::Skipped;
use super::parse::{Action, Item};
use crate::tables::systemd::{SystemdError, copy_tree, dir_entries, fnmatch, join_rel};
use crate::tables::{Target, resolve};

/// All lines for one path (or glob).
#[derive(Debug)]
struct Group {
    path: Vec<u8>,
    glob: bool,
    items: Vec<Item>,
    parent: Option<usize>,
    done: bool,
}

/// The lines of every file, grouped by path as they are added.
#[derive(Debug, Default)]
pub(super) struct Plan {
    groups: Vec<Group>,
    index: HashMap<(bool, Vec<u8>), usize>,
}

impl Plan {
    /// Adds a line to its path's group; a second line creating the same
    /// path is dropped (into `skipped` if it would differ).
    pub(super) fn add(&mut self, item: Item, skipped: &mut Vec<Skipped>) {
        let glob = item.action.globs();
        let key = (glob, item.path.clone());
        let Some(&g) = self.index.get(&key) else {
            self.index.insert(key, self.groups.len());
            self.groups.push(Group {
                path: item.path.clone(),
                glob,
                items: vec![item],
                parent: None,
                done: false,
            });
            return;
        };
        let group = &mut self.groups[g];
        let owner = item.action.takes_ownership();
        if let Some(first) = owner
            .then(|| group.items.iter().find(|o| o.action.takes_ownership()))
            .flatten()
        {
            if !first.same_effect(&item) {
                skipped.push(Skipped {
                    reason: format!(
                        "duplicate line for path /{}, ignoring (the line at {}:{} wins)",
                        String::from_utf8_lossy(&item.path),
                        first.origin.file,
                        first.origin.line
                    ),
                    origin: item.origin,
                });
            }
            return;
        }
        group.items.push(item);
    }

    /// Applies the groups: plain paths before globs, each after the group
    /// of its nearest ancestor. Lines not applied go to `skipped`.
    pub(super) fn run<T: Target + ?Sized>(
        mut self,
        t: &mut T,
        mtime: Time,
        skipped: &mut Vec<Skipped>,
    ) -> Result<(), SystemdError> {
        let groups = &mut self.groups;
        for g in groups.iter_mut() {
            g.parent = parent_of(&g.path, &self.index);
        }
        let order: Vec<usize> = (0..groups.len())
            .filter(|&g| !groups[g].glob)
            .chain((0..groups.len()).filter(|&g| groups[g].glob))
            .collect();
        let mut run = Run { mtime, skipped };
        for g in order {
            run.group(t, groups, g)?;
        }
        Ok(())
    }
}

/// The nearest group whose path is a proper ancestor of `path`.
fn parent_of(path: &[u8], index: &HashMap<(bool, Vec<u8>), usize>) -> Option<usize> {
    let mut p = path;
    while !p.is_empty() {
        p = p
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(&[][..], |i| &p[..i]);
        for glob in [false, true] {
            if let Some(&g) = index.get(&(glob, p.to_vec())) {
                return Some(g);
            }
        }
    }
    None
}

/// How applying one line went wrong.
enum Failure {
    /// Fails the run unless the line has `-`.
    Error(String),
    /// systemd only warns: the object is left as it is.
    Warning(String),
}

struct Run<'a> {
    mtime: Time,
    skipped: &'a mut Vec<Skipped>,
}

impl Run<'_> {
    fn group<T: Target + ?Sized>(
        &mut self,
        t: &mut T,
        groups: &mut [Group],
        g: usize,
    ) -> Result<(), SystemdError> {
        if groups[g].done {
            return Ok(());
        }
        groups[g].done = true;
        if let Some(p) = groups[g].parent {
            self.group(t, groups, p)?;
        }
        for item in std::mem::take(&mut groups[g].items) {
            match self.item(t, &item) {
                Ok(()) => {}
                Err(Failure::Warning(reason)) => self.skipped.push(Skipped {
                    origin: item.origin,
                    reason,
                }),
                Err(Failure::Error(reason)) if item.tolerant => self.skipped.push(Skipped {
                    origin: item.origin,
                    reason: format!("{reason} (tolerated: the type has -)"),
                }),
                Err(Failure::Error(reason)) => return Err(item.origin.err(reason).into()),
            }
        }
        Ok(())
    }

    fn item<T: Target + ?Sized>(&self, t: &mut T, item: &Item) -> Result<(), Failure> {
        let err = Failure::Error;
        let shown = display_path(&item.path);
        match item.action {
            Action::Nothing | Action::Unsupported(_) => Ok(()),
            Action::CreateDir => {
                let at = self.locate(t, &item.path)?;
                let created = match at.existing.map(|id| t.node(id).kind()) {
                    Some(Kind::Dir) => false,
                    Some(k) if !item.replace => {
                        return Err(err(format!(
                            "{shown} already exists and is a {}, not a directory",
                            k.name()
                        )));
                    }
                    _ => {
                        let meta = Meta::new(0o755, 0, 0, self.mtime);
                        self.create(t, &at.path, Inode::dir(meta), at.existing.is_some())?;
                        true
                    }
                };
                set_perms(t, &at.path, item, created)
            }
            Action::CreateFile => {
                let at = self.locate(t, &item.path)?;
                let data = || FileData::bytes(item.argument.clone().unwrap_or_default());
                let created = match at.existing.map(|id| t.node(id).kind()) {
                    Some(Kind::File) => {
                        if item.force {
                            let d = data();
                            modify(t, &at.path, &mut |i| i.content = Content::File(d.clone()))?;
                        }
                        false
                    }
                    Some(k) if !item.replace => {
                        return Err(err(format!(
                            "{shown} exists and is a {}, not a regular file",
                            k.name()
                        )));
                    }
                    _ => {
                        let meta = Meta::new(0o644, 0, 0, self.mtime);
                        let inode = Inode::new(meta, Content::File(data()));
                        self.create(t, &at.path, inode, at.existing.is_some())?;
                        true
                    }
                };
                set_perms(t, &at.path, item, created)
            }
            Action::Fifo | Action::Device(_) => {
                let content = match item.action {
                    Action::Device(kind) => device(kind, item.argument.as_deref()).map_err(err)?,
                    _ => Content::Fifo,
                };
                let new = Inode::new(Meta::new(0o644, 0, 0, self.mtime), content);
                let at = self.locate(t, &item.path)?;
                let created = match at.existing.map(|id| t.node(id).kind()) {
                    Some(k) if k == new.kind() => false,
                    Some(k) if !(item.force || item.replace) => {
                        return Err(Failure::Warning(format!(
                            "{shown} exists as a {}, not a {}; left as it is",
                            k.name(),
                            new.kind().name()
                        )));
                    }
                    existing => {
                        self.create(t, &at.path, new, existing.is_some())?;
                        true
                    }
                };
                set_perms(t, &at.path, item, created)
            }
            Action::Symlink => {
                let target = item.argument.clone().unwrap_or_default();
                let at = self.locate(t, &item.path)?;
                if let Some(id) = at.existing {
                    match &t.node(id).content {
                        Content::Symlink(old) if **old == *target => return Ok(()),
                        _ if !(item.force || item.replace) => {
                            return Err(Failure::Warning(format!(
                                "{shown} exists and is not a symlink to {}; left as it is",
                                String::from_utf8_lossy(&target)
                            )));
                        }
                        _ => {}
                    }
                }
                let meta = Meta::new(0o777, 0, 0, self.mtime);
                let link = Inode::new(meta, Content::Symlink(target.into()));
                self.create(t, &at.path, link, at.existing.is_some())
            }
            Action::Copy => self.copy(t, item),
            Action::WriteFile => {
                for path in expand_glob(t, &item.path) {
                    let Ok(Some(r)) = resolve(t, &path, true, None) else {
                        continue;
                    };
                    let node = t.node(r.id);
                    let Content::File(old) = &node.content else {
                        return Err(err(format!(
                            "{} is a {}, not a regular file",
                            display_path(&r.path),
                            node.kind().name()
                        )));
                    };
                    let mut bytes = old
                        .to_vec()
                        .map_err(|e| err(format!("reading {}: {e}", display_path(&r.path))))?;
                    let arg = item.argument.as_deref().unwrap_or_default();
                    // `w` writes from the start without truncating, `w+` appends.
                    let at = if item.force { bytes.len() } else { 0 };
                    let end = bytes.len().min(at.saturating_add(arg.len()));
                    bytes.splice(at..end, arg.iter().copied());
                    let d = FileData::bytes(bytes);
                    modify(t, &r.path, &mut |i| i.content = Content::File(d.clone()))?;
                    set_perms(t, &r.path, item, false)?;
                }
                Ok(())
            }
            Action::AdjustDir | Action::Adjust { .. } => {
                for path in expand_glob(t, &item.path) {
                    let Ok(Some(r)) = resolve(t, &path, false, None) else {
                        continue;
                    };
                    match item.action {
                        Action::Adjust { recursive: true } => {
                            for p in crate::tables::devices::subtree(t, r.path) {
                                set_perms(t, &p, item, false)?;
                            }
                        }
                        Action::AdjustDir if t.node(r.id).kind() != Kind::Dir => {
                            return Err(Failure::Warning(format!(
                                "{} exists and is not a directory; left as it is",
                                display_path(&r.path)
                            )));
                        }
                        _ => set_perms(t, &r.path, item, false)?,
                    }
                }
                Ok(())
            }
        }
    }

    /// Finds where `path`'s object goes: its parent (created as 0755
    /// directories if missing, symlinks followed) and what is there now.
    fn locate<T: Target + ?Sized>(&self, t: &mut T, path: &[u8]) -> Result<Located, Failure> {
        let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (&[][..], path),
        };
        if name.is_empty() {
            return Ok(Located {
                path: Vec::new(),
                existing: Some(Tree::ROOT),
            });
        }
        let dir = resolve(t, parent, true, Some(Meta::new(0o755, 0, 0, self.mtime)))
            .map_err(Failure::Error)?
            .ok_or_else(|| {
                Failure::Error(format!("{} could not be created", display_path(parent)))
            })?;
        if t.node(dir.id).kind() != Kind::Dir {
            return Err(Failure::Error(format!(
                "{} is not a directory",
                display_path(&dir.path)
            )));
        }
        let full = join_rel(&dir.path, name);
        Ok(Located {
            existing: t.lookup(&full),
            path: full,
        })
    }

    fn create<T: Target + ?Sized>(
        &self,
        t: &mut T,
        path: &[u8],
        inode: Inode,
        replacing: bool,
    ) -> Result<(), Failure> {
        if replacing {
            t.remove(path).map_err(|e| Failure::Error(e.to_string()))?;
        }
        t.insert(path, inode, Replace::Always)
            .map(drop)
            .map_err(|e| Failure::Error(e.to_string()))
    }

    /// `C`: copies the source tree if the target does not exist or is an
    /// empty directory; then (even if it existed) sets the mode and owner.
    fn copy<T: Target + ?Sized>(&self, t: &mut T, item: &Item) -> Result<(), Failure> {
        let source = item.argument.as_deref().unwrap_or_default();
        let src = resolve(t, source, false, None)
            .map_err(Failure::Error)?
            .ok_or_else(|| {
                Failure::Error(format!(
                    "copy source {} does not exist",
                    display_path(source)
                ))
            })?;
        let at = self.locate(t, &item.path)?;
        let src_kind = t.node(src.id).kind();
        let existing = at.existing.map(|id| (id, t.node(id).kind()));
        let empty_dir = |t: &T, id: InodeId| t.node(id).children().is_some_and(|c| c.is_empty());
        let (uid, gid) = (item.uid.map(|u| u.id), item.gid.map(|g| g.id));
        let mut chown = |i: &mut Inode| {
            if let Some(u) = uid {
                i.meta.uid = u;
            }
            if let Some(g) = gid {
                i.meta.gid = g;
            }
        };
        let created = match existing {
            None => true,
            Some((id, Kind::Dir)) if src_kind == Kind::Dir && empty_dir(t, id) => true,
            Some((_, k)) if k == src_kind => false,
            Some(_) => return Ok(()),
        };
        if created {
            // Merging into an empty directory keeps that directory's own
            // metadata.
            let kept = at.existing.map(|id| t.node(id).clone());
            copy_tree(t, &src.path, &at.path, &mut chown, false)
                .map_err(|e| Failure::Error(e.to_string()))?;
            if let Some(old) = kept {
                modify(t, &at.path, &mut |i| {
                    i.meta = old.meta;
                    i.xattrs.clone_from(&old.xattrs);
                })?;
            }
        }
        set_perms(t, &at.path, item, created)
    }
}

#[derive(Debug)]
struct Located {
    path: Vec<u8>,
    existing: Option<InodeId>,
}

fn device(kind: Kind, argument: Option<&[u8]>) -> Result<Content, String> {
    let arg = String::from_utf8_lossy(argument.unwrap_or_default()).into_owned();
    let (major, minor) = arg
        .split_once(':')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
        .ok_or_else(|| format!("bad device numbers '{arg}' (major:minor)"))?;
    Ok(if kind == Kind::BlockDev {
        Content::BlockDev { major, minor }
    } else {
        Content::CharDev { major, minor }
    })
}

fn modify<T: Target + ?Sized>(
    t: &mut T,
    path: &[u8],
    f: &mut dyn FnMut(&mut Inode),
) -> Result<(), Failure> {
    t.modify(path, f)
        .map(drop)
        .map_err(|e| Failure::Error(e.to_string()))
}

/// Sets the line's mode (never on a symlink) and owner on `path`, as
/// systemd's `fd_set_perms`: `~` keeps only the read, write and execute
/// classes the old mode had (and set-id and sticky bits only on
/// directories); `:` fields only apply to what the line just created.
fn set_perms<T: Target + ?Sized>(
    t: &mut T,
    path: &[u8],
    item: &Item,
    created: bool,
) -> Result<(), Failure> {
    let applies = |create_only: bool| created || !create_only;
    let mode = item.mode.filter(|m| applies(m.create_only));
    let uid = item.uid.filter(|u| applies(u.create_only)).map(|u| u.id);
    let gid = item.gid.filter(|g| applies(g.create_only)).map(|g| g.id);
    modify(t, path, &mut |i| {
        let kind = i.kind();
        if let Some(m) = mode
            && kind != Kind::Symlink
        {
            let mut bits = m.bits;
            if m.masked {
                let old = i.meta.perm;
                for class in [0o111, 0o222, 0o444] {
                    if old & class == 0 {
                        bits &= !class;
                    }
                }
                if kind != Kind::Dir {
                    bits &= !0o7000;
                }
            }
            i.meta.perm = bits;
        }
        if let Some(u) = uid {
            i.meta.uid = u;
        }
        if let Some(g) = gid {
            i.meta.gid = g;
        }
    })
}

/// The tree paths a glob names (parents resolved through symlinks), in
/// sorted order; a path without glob characters is returned as is.
fn expand_glob<T: Target + ?Sized>(t: &mut T, path: &[u8]) -> Vec<Vec<u8>> {
    let is_glob = |c: &[u8]| c.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
    if !is_glob(path) {
        return vec![path.to_vec()];
    }
    let mut found: Vec<Vec<u8>> = vec![Vec::new()];
    for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for base in found {
            if !is_glob(comp) {
                next.push(join_rel(&base, comp));
                continue;
            }
            for (name, _) in dir_entries(t, &base) {
                // As glob(3): a leading dot must be matched literally.
                if name.starts_with(b".") && !comp.starts_with(b".") {
                    continue;
                }
                if fnmatch(comp, &name) {
                    next.push(join_rel(&base, &name));
                }
            }
        }
        found = next;
    }
    found.sort();
    found
}
