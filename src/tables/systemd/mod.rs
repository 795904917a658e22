//! Buildroot's systemd hooks for a read-only rootfs, done natively on the
//! tree: the `/var` factory (`BR2_INIT_SYSTEMD_VAR_FACTORY`), the
//! `systemd-tmpfiles --create --boot` pass (`fakeroot_tmpfiles.sh`) and
//! `systemctl preset-all`.

mod preset;
mod tmpfiles;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rootforge_common::{
    Content, FileData, Inode, InodeId, Kind, Meta, Replace, Time, display_path,
};

pub use preset::preset_all;
pub use tmpfiles::{Skipped, apply_tmpfiles};

use super::{TableError, Target, resolve};

/// Why one of the systemd steps failed: a configuration line (with its
/// file and line), or the tree itself.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error(transparent)]
    Line(#[from] TableError),
    #[error("{path}: {reason}")]
    Tree { path: String, reason: String },
    #[error(transparent)]
    Edit(#[from] rootforge_common::Error),
}

impl SystemdError {
    fn tree(path: &[u8], reason: impl Into<String>) -> Self {
        SystemdError::Tree {
            path: display_path(path),
            reason: reason.into(),
        }
    }
}

/// Buildroot's `var.mount` for the factory mode (a tmpfs over `/var`),
/// installed byte for byte as `package/skeleton-init-systemd/factory/var.mount`.
const VAR_MOUNT: &str = "\
# SPDX-License-Identifier: LGPL-2.1-or-later
# Modelled after systemd's tmp.mount

[Unit]
Description=Buildroot /var tmpfs
DefaultDependencies=no
Conflicts=umount.target
Before=local-fs.target umount.target
After=swap.target

[Mount]
What=tmpfs
Where=/var
Type=tmpfs
Options=nosuid,nodev,size=50%%,nr_inodes=1m
";

const FACTORY: &[u8] = b"usr/share/factory";
const FACTORY_VAR: &[u8] = b"usr/share/factory/var";
const VAR_CONF: &[u8] = b"usr/lib/tmpfiles.d/00-buildroot-var.conf";

/// Moves `/var` to `/usr/share/factory/var`, leaves an empty `/var`, and
/// writes `00-buildroot-var.conf` (a `C!` line per entry of `var/*`,
/// `var/lib/*` and `var/lib/systemd/*`, an `L+!` line for symlinks) and
/// `var.mount`, as Buildroot's `SKELETON_INIT_SYSTEMD_PRE_ROOTFS_VAR_FACTORY`
/// does. New directories and files get `mtime`.
///
/// Unlike Buildroot's `mv`, a missing `/usr/share/factory` is created.
pub fn var_factory<T: Target + ?Sized>(t: &mut T, mtime: Time) -> Result<(), SystemdError> {
    let dir = Meta::new(0o755, 0, 0, mtime);
    let var = t
        .lookup(b"var")
        .ok_or_else(|| SystemdError::tree(b"var", "does not exist"))?;
    let kind = t.node(var).kind();
    if kind != Kind::Dir {
        return Err(SystemdError::tree(
            b"var",
            format!("is a {}, not a directory", kind.name()),
        ));
    }
    t.remove(FACTORY_VAR)?;
    let factory = resolve(t, FACTORY, true, Some(dir))
        .map_err(|e| SystemdError::tree(FACTORY, e))?
        .ok_or_else(|| SystemdError::tree(FACTORY, "could not be created"))?;
    let mut target = factory.path;
    target.extend_from_slice(b"/var");
    move_tree(t, b"var", &target)?;
    t.insert(b"var", Inode::dir(dir), Replace::Always)?;

    let mut conf = Vec::new();
    for sub in [&b""[..], b"/lib", b"/lib/systemd"] {
        let dir_path = join_rel(&target, sub.strip_prefix(b"/").unwrap_or(sub));
        for name in glob_names(t, &dir_path) {
            let entry = join_rel(&dir_path, &name);
            // The shell's `[ -e ]` follows symlinks: dangling ones are left out.
            if resolve(t, &entry, true, None).ok().flatten().is_none() {
                continue;
            }
            let mut j = b"/var".to_vec();
            j.extend_from_slice(sub);
            j.push(b'/');
            j.extend_from_slice(&name);
            let is_link = t
                .lookup(&entry)
                .is_some_and(|id| t.node(id).kind() == Kind::Symlink);
            let word = tmpfiles_path(&j)?;
            if is_link {
                let mut arg = b"../usr/share/factory/".to_vec();
                arg.extend_from_slice(&j);
                conf.extend_from_slice(b"L+! ");
                conf.extend_from_slice(&word);
                conf.extend_from_slice(b" - - - - ");
                conf.extend_from_slice(&tmpfiles_argument(&arg));
            } else {
                conf.extend_from_slice(b"C! ");
                conf.extend_from_slice(&word);
                conf.extend_from_slice(b" - - - -");
            }
            conf.push(b'\n');
        }
    }
    resolve(t, b"usr/lib/tmpfiles.d", true, Some(dir))
        .map_err(|e| SystemdError::tree(b"usr/lib/tmpfiles.d", e))?;
    let file = |bytes: Vec<u8>| {
        Inode::new(
            Meta::new(0o644, 0, 0, mtime),
            Content::File(FileData::bytes(bytes)),
        )
    };
    t.insert(VAR_CONF, file(conf), Replace::Always)?;
    t.insert(
        b"usr/lib/systemd/system/var.mount",
        file(VAR_MOUNT.as_bytes().to_vec()),
        Replace::Always,
    )?;
    Ok(())
}

/// The names a shell `dir/*` glob gives (no dot files), in `LC_ALL=C` order.
fn glob_names<T: Target + ?Sized>(t: &mut T, dir: &[u8]) -> Vec<Vec<u8>> {
    dir_entries(t, dir)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !n.starts_with(b"."))
        .collect()
}

/// A path as a tmpfiles.d path field: as is when that is unambiguous
/// (always, for the names Buildroot's shell loop can describe), else
/// double-quoted with `\` before `"` and `\`; `%` is doubled so it is
/// not taken as a specifier. The field has no escape for a newline.
fn tmpfiles_path(path: &[u8]) -> Result<Vec<u8>, SystemdError> {
    if path.contains(&b'\n') {
        return Err(SystemdError::tree(
            path,
            "a name with a newline cannot be written in a tmpfiles.d line",
        ));
    }
    let plain = path
        .iter()
        .all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\' | b'%'));
    if plain {
        return Ok(path.to_vec());
    }
    let mut out = vec![b'"'];
    for &b in path {
        match b {
            b'%' => out.extend_from_slice(b"%%"),
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b => out.push(b),
        }
    }
    out.push(b'"');
    Ok(out)
}

/// Bytes as a tmpfiles.d argument, which is C-unescaped and then has its
/// specifiers expanded: `\`, `%` and anything but visible ASCII are escaped.
fn tmpfiles_argument(arg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(arg.len());
    for &b in arg {
        match b {
            b'%' => out.extend_from_slice(b"%%"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b if b.is_ascii_graphic() => out.push(b),
            b => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out
}

/// Moves the subtree at `from` to `to` (whose parent exists): directories
/// are recreated with their metadata, everything else keeps its inode.
fn move_tree<T: Target + ?Sized>(t: &mut T, from: &[u8], to: &[u8]) -> Result<(), SystemdError> {
    copy_tree(t, from, to, &mut |_| {}, true)?;
    t.remove(from)?;
    Ok(())
}

/// Copies the subtree at `from` (not following a final symlink) to `to`.
/// With `share`, non-directories are linked rather than duplicated (a move);
/// otherwise they become new inodes, hard links inside the copy kept.
/// `adjust` is applied to every new inode.
fn copy_tree<T: Target + ?Sized>(
    t: &mut T,
    from: &[u8],
    to: &[u8],
    adjust: &mut dyn FnMut(&mut Inode),
    share: bool,
) -> Result<(), SystemdError> {
    let root = t
        .lookup(from)
        .ok_or_else(|| SystemdError::tree(from, "does not exist"))?;
    // Gathered first, so a copy into its own source cannot loop.
    let mut entries: Vec<(Vec<u8>, InodeId)> = Vec::new();
    let mut todo = vec![(Vec::new(), root)];
    while let Some((rel, id)) = todo.pop() {
        if let Some(children) = t.node(id).children() {
            for (name, &child) in children.iter().rev() {
                let mut p = rel.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(name);
                todo.push((p, child));
            }
        }
        entries.push((rel, id));
    }
    let mut first_copy: HashMap<InodeId, Vec<u8>> = HashMap::new();
    for (rel, id) in entries {
        let mut dest = to.to_vec();
        if !rel.is_empty() {
            dest.push(b'/');
            dest.extend_from_slice(&rel);
        }
        let src = t.node(id);
        if src.kind() != Kind::Dir
            && let Some(prev) = first_copy.get(&id)
        {
            let prev = prev.clone();
            t.hard_link(&dest, &prev)?;
            continue;
        }
        if share && src.kind() != Kind::Dir {
            let src_path = join_rel(from, &rel);
            t.remove(&dest)?;
            t.hard_link(&dest, &src_path)?;
            first_copy.insert(id, dest);
            continue;
        }
        let mut inode = Inode {
            meta: src.meta,
            xattrs: src.xattrs.clone(),
            content: match &src.content {
                Content::Dir(_) => Content::Dir(BTreeMap::new()),
                c => c.clone(),
            },
        };
        adjust(&mut inode);
        t.insert(&dest, inode, Replace::Always)?;
        if t.node(id).kind() != Kind::Dir {
            first_copy.insert(id, dest);
        }
    }
    Ok(())
}

fn join_rel(base: &[u8], rel: &[u8]) -> Vec<u8> {
    let mut p = base.to_vec();
    if !rel.is_empty() {
        p.push(b'/');
        p.extend_from_slice(rel);
    }
    p
}

/// A configuration file: its path in the tree (for messages) and bytes.
#[derive(Debug)]
struct ConfigFile {
    path: Arc<str>,
    text: Vec<u8>,
}

/// The configuration files of a systemd-style search path: every
/// `*<suffix>` regular file of `dirs` (most important first), one per file
/// name (the first directory wins; a symlink to `/dev/null` there masks
/// the name), sorted by name.
fn config_files<T: Target + ?Sized>(
    t: &mut T,
    dirs: &[&[u8]],
    suffix: &[u8],
) -> Result<Vec<ConfigFile>, SystemdError> {
    let mut chosen: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for dir in dirs {
        for (name, id) in dir_entries(t, dir) {
            if name.len() <= suffix.len() || !name.ends_with(suffix) || chosen.contains_key(&name) {
                continue;
            }
            let path = join_rel(dir, &name);
            let masked = matches!(&t.node(id).content, Content::Symlink(s) if &**s == b"/dev/null");
            chosen.insert(name, (!masked).then_some(path));
        }
    }
    let mut out = Vec::new();
    for path in chosen.into_values().flatten() {
        // Only regular files count; a dangling link or a directory is no config.
        let Ok(Some(r)) = resolve(t, &path, true, None) else {
            continue;
        };
        if let Content::File(data) = &t.node(r.id).content {
            let text = data
                .to_vec()
                .map_err(|e| SystemdError::tree(&path, format!("cannot be read: {e}")))?;
            out.push(ConfigFile {
                path: display_path(&path).into(),
                text,
            });
        }
    }
    Ok(out)
}

/// The entries of the directory at `dir` (following symlinks), by name.
fn dir_entries<T: Target + ?Sized>(t: &mut T, dir: &[u8]) -> Vec<(Vec<u8>, InodeId)> {
    let Ok(Some(r)) = resolve(t, dir, true, None) else {
        return Vec::new();
    };
    t.node(r.id).children().map_or_else(Vec::new, |c| {
        c.iter().map(|(n, &id)| (n.to_vec(), id)).collect()
    })
}

/// `fnmatch(3)` without flags: `*`, `?`, `[...]` (with `!` or `^`
/// negation and ranges) and `\` escapes; `/` is an ordinary byte.
fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where to resume after the last `*`: (pattern index, name index).
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => match_class(pattern, p, name[n]),
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == name[n]).then_some(p + 2),
            Some(&c) => (c == name[n]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                n += 1;
            }
            (None, Some((sp, sn))) => {
                p = sp;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the bracket expression at `pattern[start]`; returns
/// the index after it on a match. An unclosed `[` matches nothing.
fn match_class(pattern: &[u8], start: usize, c: u8) -> Option<usize> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let lo = *pattern.get(i)?;
        if lo == b']' && !first {
            break;
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pattern[i + 2];
            found |= (lo..=hi).contains(&c);
            i += 3;
        } else {
            found |= lo == c;
            i += 1;
        }
    }
    if found != negate { Some(i + 1) } else { None }
}
