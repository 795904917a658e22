//! The makedevs device/permission table: `name type mode uid gid major minor
//! start inc count` lines, with `|xattr <capabilities>` continuation lines.

use std::path::Path;

use rootforge_common::{Content, Inode, Kind, Meta, Replace, Time, display_path};

use super::{Origin, TableError, Target, id_in, read_file, resolve};

/// What a line does to its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// `f` (must exist) or `F` (`optional`: skipped when absent): set the
    /// owner and mode of a regular file, following symlinks.
    File {
        optional: bool,
    },
    /// `d`: `mkdir -p`, then set the owner and mode.
    Dir,
    /// `r`: set the owner of the whole subtree, and the mode of everything
    /// in it but symlinks.
    Recursive,
    /// `c`, `b`, `p`: create a node (or a numbered range of them).
    Char,
    Block,
    Fifo,
}

/// An owner field: a number, a name from the tree's passwd or group, or `-1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Keep,
    Id(u32),
    Name(String),
}

/// One parsed table entry, with its capability lines merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLine {
    pub origin: Origin,
    /// Relative to the tree's root (a leading `/` is dropped).
    pub path: Vec<u8>,
    pub kind: DeviceKind,
    /// `None` for `-1`: keep the mode.
    pub mode: Option<u16>,
    pub uid: Owner,
    pub gid: Owner,
    pub major: u32,
    pub minor: u32,
    pub start: u32,
    pub inc: u32,
    pub count: u32,
    /// Capabilities from the `|xattr` lines that follow, if any.
    pub caps: Option<CapSets>,
}

/// makedevs refuses numbers above this.
const MAX_NUMBER: u32 = 0xfffff;

/// Parses a whole table. `file` only names the table in errors.
pub fn parse_device_table(text: &str, file: &Path) -> Result<Vec<DeviceLine>, TableError> {
    let mut out: Vec<DeviceLine> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let origin = Origin::new(file, i + 1);
        let trimmed = raw.trim_start();
        if let Some(rest) = trimmed.strip_prefix('|') {
            let text = rest
                .strip_prefix("xattr")
                .filter(|t| t.starts_with(char::is_whitespace))
                .ok_or_else(|| origin.err("only `|xattr <capabilities>` lines may start with |"))?;
            let sets = parse_capabilities(text).map_err(|e| origin.err(e))?;
            let prev = out
                .last_mut()
                .ok_or_else(|| origin.err("|xattr line before any entry"))?;
            prev.caps = Some(prev.caps.unwrap_or_default().union(sets));
            continue;
        }
        // makedevs skips lines that start with whitespace, as well as
        // blank lines and comments.
        if raw.is_empty() || raw.starts_with(char::is_whitespace) || raw.starts_with('#') {
            continue;
        }
        out.push(parse_line(raw, origin)?);
    }
    Ok(out)
}

fn parse_line(raw: &str, origin: Origin) -> Result<DeviceLine, TableError> {
    let mut fields = raw.split_whitespace();
    let name = fields.next().unwrap_or_default();
    let kind = match fields.next() {
        Some("f") => DeviceKind::File { optional: false },
        Some("F") => DeviceKind::File { optional: true },
        Some("d") => DeviceKind::Dir,
        Some("r") => DeviceKind::Recursive,
        Some("c") => DeviceKind::Char,
        Some("b") => DeviceKind::Block,
        Some("p") => DeviceKind::Fifo,
        Some(t) => return Err(origin.err(format!("unknown type '{t}' (f, F, d, r, c, b or p)"))),
        None => return Err(origin.err("missing type")),
    };
    let mut need = |what: &str| {
        fields
            .next()
            .ok_or_else(|| origin.err(format!("missing {what} field")))
    };
    let mode = match need("mode")? {
        "-1" => None,
        m => Some(
            u16::from_str_radix(m, 8)
                .ok()
                .filter(|&m| m <= 0o7777)
                .ok_or_else(|| {
                    origin.err(format!("bad mode '{m}' (octal, at most 7777, or -1)"))
                })?,
        ),
    };
    if mode.is_none() && !matches!(kind, DeviceKind::File { .. } | DeviceKind::Recursive) {
        return Err(origin.err("mode -1 (keep) is only allowed for f, F and r"));
    }
    let uid = owner(need("uid")?);
    let gid = owner(need("gid")?);
    // As makedevs' scanf: the first `-` (or a missing field) leaves it and
    // every later number 0.
    let mut nums = [0u32; 5];
    let names = ["major", "minor", "start", "inc", "count"];
    for (slot, what) in nums.iter_mut().zip(names) {
        match fields.next() {
            None | Some("-") => break,
            Some(v) => {
                *slot = v.parse().ok().filter(|&n| n <= MAX_NUMBER).ok_or_else(|| {
                    origin.err(format!("bad {what} '{v}' (a number up to {MAX_NUMBER})"))
                })?;
            }
        }
    }
    let [major, minor, start, inc, count] = nums;
    let path = name.trim_start_matches('/').as_bytes().to_vec();
    if path.is_empty() && !matches!(kind, DeviceKind::Dir | DeviceKind::Recursive) {
        return Err(origin.err("the root can only be a d or r entry"));
    }
    Ok(DeviceLine {
        origin,
        path,
        kind,
        mode,
        uid,
        gid,
        major,
        minor,
        start,
        inc,
        count,
        caps: None,
    })
}

fn owner(field: &str) -> Owner {
    match field {
        "-1" => Owner::Keep,
        f => f
            .parse()
            .map_or_else(|_| Owner::Name(f.to_owned()), Owner::Id),
    }
}

/// The tree's user and group databases, read once per table; a read error
/// only matters to a line that names an owner.
struct Ids {
    passwd: Result<Option<Vec<u8>>, String>,
    group: Result<Option<Vec<u8>>, String>,
}

impl Ids {
    fn resolve(&self, o: &Owner, group: bool, origin: &Origin) -> Result<Option<u32>, TableError> {
        let name = match o {
            Owner::Keep => return Ok(None),
            Owner::Id(n) => return Ok(Some(*n)),
            Owner::Name(n) => n,
        };
        let (db, what, file) = if group {
            (&self.group, "group", "/etc/group")
        } else {
            (&self.passwd, "user", "/etc/passwd")
        };
        let db = db
            .as_ref()
            .map_err(|e| origin.err(e.clone()))?
            .as_deref()
            .ok_or_else(|| {
                origin.err(format!(
                    "{what} '{name}' given by name, but the tree has no {file}"
                ))
            })?;
        id_in(db, name).map(Some).ok_or_else(|| {
            origin.err(format!(
                "unknown {what} '{name}' (not in the tree's {file})"
            ))
        })
    }
}

/// Applies parsed lines in order (a later line wins). New nodes and
/// directories get `mtime`.
pub fn apply_device_table<T: Target + ?Sized>(
    t: &mut T,
    lines: &[DeviceLine],
    mtime: Time,
) -> Result<(), TableError> {
    let ids = Ids {
        passwd: read_file(t, b"etc/passwd"),
        group: read_file(t, b"etc/group"),
    };
    for line in lines {
        apply_line(t, line, &ids, mtime)?;
    }
    Ok(())
}

fn apply_line<T: Target + ?Sized>(
    t: &mut T,
    line: &DeviceLine,
    ids: &Ids,
    mtime: Time,
) -> Result<(), TableError> {
    let o = &line.origin;
    let uid = ids.resolve(&line.uid, false, o)?;
    let gid = ids.resolve(&line.gid, true, o)?;
    let set = |i: &mut Inode, chmod: bool| {
        if let Some(u) = uid {
            i.meta.uid = u;
        }
        if let Some(g) = gid {
            i.meta.gid = g;
        }
        if let (Some(m), true) = (line.mode, chmod) {
            i.meta.perm = m;
        }
    };
    let shown = display_path(&line.path);
    let mut touched: Vec<Vec<u8>> = Vec::new();
    match line.kind {
        DeviceKind::File { optional } => {
            let Some(r) = resolve(t, &line.path, true, None).map_err(|e| o.err(e))? else {
                return if optional {
                    Ok(())
                } else {
                    Err(o.err(format!(
                        "{shown} does not exist (use F for an optional file)"
                    )))
                };
            };
            let kind = t.node(r.id).kind();
            if kind != Kind::File {
                return Err(o.err(format!(
                    "{shown} is a {}, not a regular file (use d or r)",
                    kind.name()
                )));
            }
            t.modify(&r.path, &mut |i| set(i, true))
                .map_err(|e| o.err(e.to_string()))?;
            touched.push(r.path);
        }
        DeviceKind::Dir => {
            // Parents mkdir -p creates get 0777 (makedevs clears the umask).
            let parents = Meta::new(0o777, 0, 0, mtime);
            let r = resolve(t, &line.path, true, Some(parents))
                .map_err(|e| o.err(e))?
                .ok_or_else(|| o.err(format!("{shown} could not be created")))?;
            let kind = t.node(r.id).kind();
            if kind != Kind::Dir {
                return Err(o.err(format!("{shown} exists as a {}", kind.name())));
            }
            t.modify(&r.path, &mut |i| set(i, true))
                .map_err(|e| o.err(e.to_string()))?;
            touched.push(r.path);
        }
        DeviceKind::Recursive => {
            let r = resolve(t, &line.path, false, None)
                .map_err(|e| o.err(e))?
                .ok_or_else(|| o.err(format!("{shown} does not exist")))?;
            for path in subtree(t, r.path.clone()) {
                t.modify(&path, &mut |i| {
                    let chmod = i.kind() != Kind::Symlink;
                    set(i, chmod);
                })
                .map_err(|e| o.err(e.to_string()))?;
            }
            touched.push(r.path);
        }
        DeviceKind::Char | DeviceKind::Block | DeviceKind::Fifo => {
            touched = make_nodes(t, line, uid, gid, mtime)?;
        }
    }
    if let Some(caps) = line.caps {
        for path in &touched {
            add_caps(t, path, caps).map_err(|e| o.err(format!("{}: {e}", display_path(path))))?;
        }
    }
    Ok(())
}

/// Every path under `root` (itself first), without following symlinks.
pub(super) fn subtree<T: Target + ?Sized>(t: &T, root: Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(path) = todo.pop() {
        if let Some(children) = t.lookup(&path).and_then(|id| t.node(id).children()) {
            for name in children.keys() {
                let mut p = path.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(name);
                todo.push(p);
            }
        }
        out.push(path);
    }
    out
}

fn make_nodes<T: Target + ?Sized>(
    t: &mut T,
    line: &DeviceLine,
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Time,
) -> Result<Vec<Vec<u8>>, TableError> {
    let o = &line.origin;
    let (parent, name) = match line.path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&line.path[..i], &line.path[i + 1..]),
        None => (&[][..], &line.path[..]),
    };
    let dir = resolve(t, parent, true, None)
        .map_err(|e| o.err(e))?
        .filter(|r| t.node(r.id).kind() == Kind::Dir)
        .ok_or_else(|| {
            o.err(format!(
                "parent directory {} does not exist (add a d line first)",
                display_path(parent)
            ))
        })?;
    // A device node is created as root; mode -1 was refused when parsing.
    let meta = Meta::new(
        line.mode.unwrap_or(0),
        uid.unwrap_or(0),
        gid.unwrap_or(0),
        mtime,
    );
    let mut made = Vec::new();
    let n = line.count.max(1);
    for k in 0..n {
        let mut path = dir.path.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        let minor = if line.count == 0 {
            line.minor
        } else {
            let index = line.start.checked_add(k);
            path.extend_from_slice(index.unwrap_or(u32::MAX).to_string().as_bytes());
            k.checked_mul(line.inc)
                .and_then(|d| d.checked_add(line.minor))
                .ok_or_else(|| o.err("minor number overflows"))?
        };
        let content = match line.kind {
            DeviceKind::Char => Content::CharDev {
                major: line.major,
                minor,
            },
            DeviceKind::Block => Content::BlockDev {
                major: line.major,
                minor,
            },
            _ => Content::Fifo,
        };
        let new = Inode::new(meta, content);
        if let Some(id) = t.lookup(&path) {
            // makedevs fails on any existing node; an identical one is
            // harmless, so only its owner and mode are set.
            let old = t.node(id);
            if old.kind() != new.kind() || old.rdev() != new.rdev() {
                return Err(o.err(format!(
                    "{} already exists as a {}{}",
                    display_path(&path),
                    old.kind().name(),
                    old.rdev()
                        .map(|(a, b)| format!(" {a}:{b}"))
                        .unwrap_or_default()
                )));
            }
            t.modify(&path, &mut |i| {
                i.meta.uid = meta.uid;
                i.meta.gid = meta.gid;
                i.meta.perm = meta.perm;
            })
            .map_err(|e| o.err(e.to_string()))?;
        } else {
            t.insert(&path, new, Replace::Always)
                .map_err(|e| o.err(e.to_string()))?;
        }
        made.push(path);
    }
    Ok(made)
}

const CAPABILITY: &[u8] = b"security.capability";

/// Merges `caps` into the file's `security.capability`, as makedevs does
/// with each `|xattr` line.
fn add_caps<T: Target + ?Sized>(t: &mut T, path: &[u8], caps: CapSets) -> Result<(), String> {
    let id = t.lookup(path).ok_or("vanished")?;
    let old = t
        .node(id)
        .xattrs
        .iter()
        .find(|x| &*x.name == CAPABILITY)
        .map(|x| decode_capability(&x.value))
        .transpose()?;
    let (sets, rootid) = old.map_or((caps, 0), |(s, r)| (s.union(caps), r));
    let value = encode_capability(&sets, rootid)?;
    t.modify(path, &mut |i| match &value {
        Some(v) => i.set_xattr(CAPABILITY, v),
        None => {
            i.remove_xattr(CAPABILITY);
        }
    })
    .map(drop)
    .map_err(|e| e.to_string())
}

/// The three capability sets, one bit per capability number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

impl CapSets {
    fn union(self, o: CapSets) -> CapSets {
        CapSets {
            effective: self.effective | o.effective,
            permitted: self.permitted | o.permitted,
            inheritable: self.inheritable | o.inheritable,
        }
    }
}

/// Capability names by number (`linux/capability.h`, up to CAP_LAST_CAP 40).
const CAP_NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// Every named capability, what libcap's `all` (or an empty list before
/// `=`) means.
const ALL_CAPS: u64 = (1 << CAP_NAMES.len()) - 1;

/// Parses libcap's text form (`cap_setuid,cap_net_raw+ep cap_chown=i`,
/// `=ep`, `all+p`, numbers for names): whitespace-separated clauses, each a
/// capability list followed by operators `=`, `+` or `-` with flags from
/// `eip`, applied left to right to an empty set.
pub fn parse_capabilities(text: &str) -> Result<CapSets, String> {
    let mut sets = CapSets::default();
    let clauses: Vec<&str> = text.split_whitespace().collect();
    if clauses.is_empty() {
        return Err("empty capability text".into());
    }
    for clause in clauses {
        let bad = |why: String| format!("bad capability clause '{clause}': {why}");
        let split = clause
            .find(['=', '+', '-'])
            .ok_or_else(|| bad("no operator (=, + or -)".into()))?;
        let (list, mut ops) = clause.split_at(split);
        let caps = if list.is_empty() {
            if !ops.starts_with('=') {
                return Err(bad(
                    "an empty capability list is only allowed before =".into()
                ));
            }
            ALL_CAPS
        } else {
            let mut bits = 0u64;
            for name in list.split(',') {
                bits |= cap_bit(name).ok_or_else(|| bad(format!("unknown capability '{name}'")))?;
            }
            bits
        };
        while let Some(op) = ops.chars().next() {
            let rest = &ops[1..];
            let end = rest.find(['=', '+', '-']).unwrap_or(rest.len());
            let (flags, next) = rest.split_at(end);
            if op == '=' {
                sets.effective &= !caps;
                sets.permitted &= !caps;
                sets.inheritable &= !caps;
            } else if flags.is_empty() {
                return Err(bad(format!("no flags (e, i, p) after '{op}'")));
            }
            for f in flags.chars() {
                let set = match f.to_ascii_lowercase() {
                    'e' => &mut sets.effective,
                    'i' => &mut sets.inheritable,
                    'p' => &mut sets.permitted,
                    _ => return Err(bad(format!("unknown flag '{f}' (e, i or p)"))),
                };
                if op == '-' {
                    *set &= !caps;
                } else {
                    *set |= caps;
                }
            }
            ops = next;
        }
    }
    Ok(sets)
}

fn cap_bit(name: &str) -> Option<u64> {
    let lower = name.to_ascii_lowercase();
    if lower == "all" {
        return Some(ALL_CAPS);
    }
    let n = match lower.strip_prefix("cap_") {
        Some(short) => CAP_NAMES.iter().position(|&c| c == short)?,
        None => lower.parse::<usize>().ok().filter(|&n| n < 64)?,
    };
    Some(1 << n)
}

const VFS_CAP_REVISION_1: u32 = 0x0100_0000;
const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_REVISION_3: u32 = 0x0300_0000;
const VFS_CAP_REVISION_MASK: u32 = 0xff00_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;

/// The `security.capability` value libcap's `cap_set_file` writes: revision
/// 2 (revision 3 when `rootid` is not 0), the effective flag, then the
/// permitted and inheritable sets as two little-endian 32-bit halves.
/// `None` when every set is empty (libcap then removes the attribute).
/// As in libcap, a non-empty effective set must cover permitted and
/// inheritable, since a file has one effective bit for all of them.
pub fn encode_capability(sets: &CapSets, rootid: u32) -> Result<Option<Vec<u8>>, String> {
    let any = sets.permitted | sets.inheritable;
    if any == 0 && sets.effective == 0 {
        return Ok(None);
    }
    if sets.effective != 0 && sets.effective != any {
        return Err(
            "the effective flag applies to all file capabilities: use e for all of them or none"
                .into(),
        );
    }
    let mut magic = if rootid == 0 {
        VFS_CAP_REVISION_2
    } else {
        VFS_CAP_REVISION_3
    };
    if sets.effective != 0 {
        magic |= VFS_CAP_FLAGS_EFFECTIVE;
    }
    let mut v = magic.to_le_bytes().to_vec();
    for half in [0, 32] {
        // Truncation to each 32-bit half is the format.
        v.extend_from_slice(&((sets.permitted >> half) as u32).to_le_bytes());
        v.extend_from_slice(&((sets.inheritable >> half) as u32).to_le_bytes());
    }
    if rootid != 0 {
        v.extend_from_slice(&rootid.to_le_bytes());
    }
    Ok(Some(v))
}

/// Reads a `security.capability` value (revision 1, 2 or 3) back into sets
/// and its root id.
pub fn decode_capability(v: &[u8]) -> Result<(CapSets, u32), String> {
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            v.get(i * 4..i * 4 + 4)?.try_into().ok()?,
        ))
    };
    let bad = || "existing security.capability value is malformed".to_string();
    let magic = word(0).ok_or_else(bad)?;
    let (halves, rootid) = match (magic & VFS_CAP_REVISION_MASK, v.len()) {
        (VFS_CAP_REVISION_1, 12) => (1, 0),
        (VFS_CAP_REVISION_2, 20) => (2, 0),
        (VFS_CAP_REVISION_3, 24) => (2, word(5).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    let mut sets = CapSets::default();
    for h in 0..halves {
        let p = u64::from(word(1 + 2 * h).ok_or_else(bad)?);
        let i = u64::from(word(2 + 2 * h).ok_or_else(bad)?);
        sets.permitted |= p << (32 * h);
        sets.inheritable |= i << (32 * h);
    }
    if magic & VFS_CAP_FLAGS_EFFECTIVE != 0 {
        sets.effective = sets.permitted | sets.inheritable;
    }
    Ok((sets, rootid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rootforge_common::{Edit, FileData, TreeBuilder};

    const T: Time = Time::from_secs(7);

    fn tree() -> TreeBuilder {
        let m = |p| Meta::new(p, 0, 0, T);
        let mut b = TreeBuilder::new(m(0o755));
        let file = |b: &mut TreeBuilder, p: &[u8], data: &'static [u8]| {
            b.insert(
                p,
                Inode::new(m(0o644), Content::File(FileData::bytes(data))),
                Replace::Always,
            )
            .unwrap();
        };
        file(
            &mut b,
            b"etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n",
        );
        file(
            &mut b,
            b"etc/group",
            b"root:x:0:\nwww:x:33:\nappgrp:x:150:\n",
        );
        file(&mut b, b"opt/app/bin/pinger", b"elf");
        b.insert(
            b"opt/app/lib",
            Inode::new(m(0o700), Content::Dir(Default::default())),
            Replace::Always,
        )
        .unwrap();
        b.insert(
            b"opt/app/link",
            Inode::new(m(0o777), Content::Symlink((*b"bin/pinger").into())),
            Replace::Always,
        )
        .unwrap();
        b.insert(b"dev", Inode::dir(m(0o755)), Replace::Always)
            .unwrap();
        b
    }

    fn apply(b: &mut TreeBuilder, table: &str) -> Result<(), TableError> {
        let lines = parse_device_table(table, Path::new("device_table.txt"))?;
        apply_device_table(b, &lines, T)
    }

    fn meta(b: &TreeBuilder, p: &[u8]) -> Meta {
        b.inode(b.lookup(p).unwrap()).meta
    }

    #[test]
    fn parses_every_field() {
        let lines = parse_device_table(
            "# comment\n\n  indented is skipped\n/dev/tty c 620 0 5 4 1 0 1 4\n/x f -1 -1 www\n/y F 4750 www -1 - 9 9\n",
            Path::new("t"),
        )
        .unwrap();
        assert_eq!(lines.len(), 3);
        let l = &lines[0];
        assert_eq!(
            (l.origin.line, &l.path[..], l.kind),
            (4, &b"dev/tty"[..], DeviceKind::Char)
        );
        assert_eq!(l.mode, Some(0o620));
        assert_eq!((l.major, l.minor, l.start, l.inc, l.count), (4, 1, 0, 1, 4));
        assert_eq!(
            (&lines[1].uid, &lines[1].gid, lines[1].mode),
            (&Owner::Keep, &Owner::Name("www".into()), None)
        );
        // The first `-` ends the numbers, as makedevs' scanf does.
        assert_eq!((lines[2].major, lines[2].minor), (0, 0));
        assert_eq!(lines[2].kind, DeviceKind::File { optional: true });
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let e = |t: &str| {
            parse_device_table(t, Path::new("dt.txt"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e("\n/a q 755 0 0"),
            "dt.txt:2: unknown type 'q' (f, F, d, r, c, b or p)"
        );
        assert_eq!(
            e("/a d -1 0 0"),
            "dt.txt:1: mode -1 (keep) is only allowed for f, F and r"
        );
        assert_eq!(
            e("/a d 8 0 0"),
            "dt.txt:1: bad mode '8' (octal, at most 7777, or -1)"
        );
        assert_eq!(e("/a d 755 0"), "dt.txt:1: missing gid field");
        assert!(e("/a c 600 0 0 1 1048576").starts_with("dt.txt:1: bad minor"));
        assert_eq!(
            e("|xattr cap_net_raw+ep"),
            "dt.txt:1: |xattr line before any entry"
        );
        assert!(
            e("/a f 755 0 0\n|xattr cap_bogus+ep")
                .contains("dt.txt:2: bad capability clause 'cap_bogus+ep': unknown capability")
        );
    }

    #[test]
    fn files_dirs_and_names() {
        let mut b = tree();
        apply(&mut b, "/opt/app/bin/pinger f 4750 www appgrp\n/opt/app/link f 0700 -1 -1\n/var/www/html d 750 33 www\n/missing F 600 0 0\n").unwrap();
        // The symlink was followed: its target got the later mode.
        let m = meta(&b, b"opt/app/bin/pinger");
        assert_eq!((m.perm, m.uid, m.gid), (0o700, 33, 150));
        assert_eq!(meta(&b, b"opt/app/link").perm, 0o777);
        let m = meta(&b, b"var/www/html");
        assert_eq!((m.perm, m.uid, m.gid), (0o750, 33, 33));
        // Parents mkdir -p made.
        assert_eq!(meta(&b, b"var").perm, 0o777);
        assert!(b.lookup(b"missing").is_none());
    }

    #[test]
    fn recursive_keeps_modes_with_minus_one() {
        let mut b = tree();
        apply(&mut b, "/opt/app r -1 www appgrp\n").unwrap();
        for p in [
            &b"opt/app"[..],
            b"opt/app/bin/pinger",
            b"opt/app/lib",
            b"opt/app/link",
        ] {
            let m = meta(&b, p);
            assert_eq!((m.uid, m.gid), (33, 150), "{}", display_path(p));
        }
        assert_eq!(meta(&b, b"opt/app/lib").perm, 0o700);
        apply(&mut b, "/opt/app r 0750 0 0\n").unwrap();
        assert_eq!(meta(&b, b"opt/app/bin/pinger").perm, 0o750);
        assert_eq!(meta(&b, b"opt/app/lib").perm, 0o750);
        // Symlinks are chowned but never chmodded.
        assert_eq!(meta(&b, b"opt/app/link").perm, 0o777);
        assert_eq!(meta(&b, b"opt").uid, 0);
    }

    #[test]
    fn device_ranges_and_fifos() {
        let mut b = tree();
        apply(
            &mut b,
            "/dev/ttyX c 0660 0 5 240 2 1 3 3\n/dev/sda b 640 0 0 8 0 0 0 0\n/dev/fifo p 600 0 0\n",
        )
        .unwrap();
        for (i, minor) in [(1, 2), (2, 5), (3, 8)] {
            let p = format!("dev/ttyX{i}");
            let n = b.inode(b.lookup(p.as_bytes()).unwrap());
            assert_eq!(
                (n.kind(), n.rdev(), n.meta.perm, n.meta.gid),
                (Kind::CharDev, Some((240, minor)), 0o660, 5)
            );
        }
        assert!(b.lookup(b"dev/ttyX0").is_none() && b.lookup(b"dev/ttyX4").is_none());
        let sda = b.inode(b.lookup(b"dev/sda").unwrap());
        assert_eq!((sda.kind(), sda.rdev()), (Kind::BlockDev, Some((8, 0))));
        assert_eq!(b.inode(b.lookup(b"dev/fifo").unwrap()).kind(), Kind::Fifo);
        // The same node again only updates owner and mode.
        apply(&mut b, "/dev/sda b 600 0 6 8 0\n").unwrap();
        assert_eq!(
            (meta(&b, b"dev/sda").perm, meta(&b, b"dev/sda").gid),
            (0o600, 6)
        );
    }

    #[test]
    fn apply_errors_name_file_and_line() {
        let mut b = tree();
        let e = |b: &mut TreeBuilder, t: &str| apply(b, t).unwrap_err().to_string();
        assert_eq!(
            e(&mut b, "/dev d 755 0 0\n/x f 644 nobody 0"),
            "device_table.txt:2: unknown user 'nobody' (not in the tree's /etc/passwd)"
        );
        assert_eq!(
            e(&mut b, "/x F 644 0 staff"),
            "device_table.txt:1: unknown group 'staff' (not in the tree's /etc/group)"
        );
        assert_eq!(
            e(&mut b, "/nope f 644 0 0"),
            "device_table.txt:1: /nope does not exist (use F for an optional file)"
        );
        assert_eq!(
            e(&mut b, "/opt f 644 0 0"),
            "device_table.txt:1: /opt is a directory, not a regular file (use d or r)"
        );
        assert_eq!(
            e(&mut b, "/dev/sda b 640 0 0 8 0\n/dev/sda c 640 0 0 8 0"),
            "device_table.txt:2: /dev/sda already exists as a block device 8:0"
        );
        assert_eq!(
            e(&mut b, "/nodir/null c 666 0 0 1 3"),
            "device_table.txt:1: parent directory /nodir does not exist (add a d line first)"
        );
        assert_eq!(
            e(&mut b, "/etc/passwd d 755 0 0"),
            "device_table.txt:1: /etc/passwd exists as a regular file"
        );
    }

    /// Values written by `setcap` and read back with `getfattr -e hex`
    /// (libcap 2.66, Linux with CAP_LAST_CAP 40).
    const SETCAP: [(&str, &str); 7] = [
        ("cap_net_raw+ep", "0100000200200000000000000000000000000000"),
        (
            "cap_net_raw,cap_net_admin+eip",
            "0100000200300000003000000000000000000000",
        ),
        (
            "cap_net_bind_service=p",
            "0000000200040000000000000000000000000000",
        ),
        (
            "cap_chown+i cap_setuid+p",
            "0000000280000000010000000000000000000000",
        ),
        ("=ep", "01000002ffffffff00000000ff01000000000000"),
        (
            "cap_checkpoint_restore+p",
            "0000000200000000000000000001000000000000",
        ),
        (
            "cap_setuid,cap_sys_admin=eip",
            "0100000280002000800020000000000000000000",
        ),
    ];

    fn hex(v: &[u8]) -> String {
        v.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn capabilities_match_setcap() {
        for (text, want) in SETCAP {
            let sets = parse_capabilities(text).unwrap();
            let got = encode_capability(&sets, 0).unwrap().unwrap();
            assert_eq!(hex(&got), want, "{text}");
            assert_eq!(decode_capability(&got).unwrap(), (sets, 0), "{text}");
        }
        // `setcap -n 1000 cap_net_raw+ep`: revision 3 with the root id.
        let v3 = encode_capability(&parse_capabilities("cap_net_raw+ep").unwrap(), 1000)
            .unwrap()
            .unwrap();
        assert_eq!(hex(&v3), "0100000300200000000000000000000000000000e8030000");
        // Numbers, `all`, case and `-` work as in libcap.
        assert_eq!(
            parse_capabilities("13+ep").unwrap(),
            parse_capabilities("CAP_NET_RAW+ep").unwrap()
        );
        assert_eq!(
            parse_capabilities("all=p cap_chown-p").unwrap().permitted,
            ALL_CAPS & !1
        );
        assert_eq!(encode_capability(&CapSets::default(), 0).unwrap(), None);
        assert!(
            encode_capability(&parse_capabilities("cap_chown+ep cap_kill+p").unwrap(), 0).is_err()
        );
        assert!(parse_capabilities("cap_chown+x").is_err());
        assert!(parse_capabilities("cap_chown").is_err());
    }

    #[test]
    fn xattr_lines_merge_into_the_entry() {
        let mut b = tree();
        apply(
            &mut b,
            "/opt/app/bin/pinger f 4750 0 0\n  |xattr cap_net_raw+ep\n|xattr cap_net_admin+ep\n",
        )
        .unwrap();
        let n = b.inode(b.lookup(b"opt/app/bin/pinger").unwrap());
        assert_eq!(&*n.xattrs[0].name, CAPABILITY);
        assert_eq!(
            hex(&n.xattrs[0].value),
            "0100000200300000000000000000000000000000"
        );
        // A later table adds to what the file has, keeping a v3 root id.
        let id = b.lookup(b"opt/app/bin/pinger").unwrap();
        b.inode_mut(id).set_xattr(
            CAPABILITY,
            &encode_capability(&parse_capabilities("cap_kill+p").unwrap(), 7)
                .unwrap()
                .unwrap(),
        );
        apply(
            &mut b,
            "/opt/app/bin/pinger f -1 -1 -1\n|xattr cap_chown+p\n",
        )
        .unwrap();
        let n = b.inode(id);
        assert_eq!(
            decode_capability(&n.xattrs[0].value).unwrap(),
            (
                CapSets {
                    effective: 0,
                    permitted: 0b100001,
                    inheritable: 0
                },
                7
            )
        );
    }

    #[test]
    fn works_on_an_overlay() {
        let base = std::sync::Arc::new(tree().finish());
        let mut o = rootforge_common::Overlay::new(base.clone(), Meta::new(0o755, 0, 0, T));
        let lines = parse_device_table(
            "/dev/null c 666 0 0 1 3\n/etc/passwd f 600 www 0\n",
            Path::new("t"),
        )
        .unwrap();
        apply_device_table(&mut o, &lines, T).unwrap();
        let v = o.view();
        assert_eq!(v.inode(v.lookup(b"dev/null").unwrap()).rdev(), Some((1, 3)));
        assert_eq!(v.inode(v.lookup(b"etc/passwd").unwrap()).meta.uid, 33);
        assert!(base.view().lookup(b"dev/null").is_none());
    }
}
