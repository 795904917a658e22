//! `systemd-tmpfiles --create --boot` over the tree's own tmpfiles.d, with
//! the lines Buildroot's `fakeroot_tmpfiles.sh` filters out left out.

use std::collections::HashMap;

use rootforge_common::{
    Content, FileData, Inode, InodeId, Kind, Meta, Replace, Time, Tree, display_path,
};

use super::{ConfigFile, SystemdError, config_files, copy_tree, dir_entries, fnmatch, join_rel};
use crate::tables::{Origin, TableError, Target, id_in, read_file, resolve};

/// Where tmpfiles.d files are read from, most important first.
const DIRS: [&[u8]; 4] = [
    b"etc/tmpfiles.d",
    b"run/tmpfiles.d",
    b"usr/local/lib/tmpfiles.d",
    b"usr/lib/tmpfiles.d",
];

/// Buildroot leaves these to the running system (both as a plain string
/// prefix of the line's path and as `--exclude-prefix`).
const EXCLUDED: [&[u8]; 6] = [b"/dev", b"/proc", b"/run", b"/sys", b"/tmp", b"/mnt"];

/// The specifiers that cannot leak the build host (Buildroot's list);
/// a line using any other one is dropped.
const SAFE_SPECIFIERS: &[u8] = b"%BCEgGhLMosStTuUVwW";

/// A line that was read but not (fully) applied, and why: a specifier that
/// would leak the build host, a duplicate path, a type the tree cannot
/// represent, a tolerated (`-`) failure, or an object left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub origin: Origin,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// `f`, `F`.
    CreateFile,
    /// `w`.
    WriteFile,
    /// `d`, `D`, and `v`, `q`, `Q` (subvolumes are plain directories here).
    CreateDir,
    /// `e`.
    AdjustDir,
    /// `p`.
    Fifo,
    /// `L`.
    Symlink,
    /// `c`, `b`.
    Device(Kind),
    /// `C`.
    Copy,
    /// `z` and (recursive) `Z`.
    Adjust { recursive: bool },
    /// `x`, `X`, `r`, `R`: only cleaning or removal use them.
    Nothing,
    /// `h`, `H`, `a`, `A`, `t`, `T`: what the tree cannot represent.
    Unsupported(&'static str),
}

impl Action {
    fn from_letter(c: u8) -> Option<Action> {
        Some(match c {
            b'f' | b'F' => Action::CreateFile,
            b'w' => Action::WriteFile,
            b'd' | b'D' | b'v' | b'q' | b'Q' => Action::CreateDir,
            b'e' => Action::AdjustDir,
            b'p' => Action::Fifo,
            b'L' => Action::Symlink,
            b'c' => Action::Device(Kind::CharDev),
            b'b' => Action::Device(Kind::BlockDev),
            b'C' => Action::Copy,
            b'z' | b'm' => Action::Adjust { recursive: false },
            b'Z' => Action::Adjust { recursive: true },
            b'x' | b'X' | b'r' | b'R' => Action::Nothing,
            b'h' | b'H' => Action::Unsupported("file attributes (chattr)"),
            b'a' | b'A' => Action::Unsupported("POSIX ACLs"),
            b't' | b'T' => Action::Unsupported("extended attributes"),
            _ => return None,
        })
    }

    /// Lines that create their path: two of them for one path conflict.
    fn takes_ownership(self) -> bool {
        !matches!(
            self,
            Action::AdjustDir | Action::Adjust { .. } | Action::Unsupported(_)
        )
    }

    /// Types that accept globs; systemd applies them after all others.
    fn globs(self) -> bool {
        matches!(
            self,
            Action::WriteFile
                | Action::AdjustDir
                | Action::Adjust { .. }
                | Action::Nothing
                | Action::Unsupported(_)
        )
    }
}

/// A mode field: the bits, `~` (masked by the existing mode) and `:`
/// (only applied when the line creates the object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mode {
    bits: u16,
    masked: bool,
    create_only: bool,
}

/// A user or group field, resolved to an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Id {
    id: u32,
    create_only: bool,
}

#[derive(Debug, Clone)]
struct Item {
    origin: Origin,
    action: Action,
    /// `+`: replace or truncate what exists.
    force: bool,
    /// `-`: a failure is tolerated.
    tolerant: bool,
    /// `=`: an object of the wrong type is replaced.
    replace: bool,
    /// In the tree: no leading `/`, normalized (empty for the root).
    path: Vec<u8>,
    mode: Option<Mode>,
    uid: Option<Id>,
    gid: Option<Id>,
    argument: Option<Vec<u8>>,
}

impl Item {
    fn same_effect(&self, o: &Item) -> bool {
        self.action == o.action
            && self.force == o.force
            && self.mode == o.mode
            && self.uid == o.uid
            && self.gid == o.gid
            && self.argument == o.argument
    }
}

/// All lines for one path (or glob).
#[derive(Debug)]
struct Group {
    path: Vec<u8>,
    glob: bool,
    items: Vec<Item>,
    parent: Option<usize>,
    done: bool,
}

/// Applies every tmpfiles.d line of the tree as Buildroot does at image
/// time: `systemd-tmpfiles --create --boot` (so `!` lines too), without the
/// lines for `/dev`, `/proc`, `/run`, `/sys`, `/tmp` and `/mnt` and the
/// ones using a specifier that would leak the build host. Names of owners
/// come from the tree's `/etc/passwd` and `/etc/group`. Created objects get
/// `mtime`; copies keep their source's.
///
/// Returns the lines skipped on the way. A malformed line, an unknown
/// owner, or a failure on a line without `-` is an error naming the file
/// and line.
pub fn apply_tmpfiles<T: Target + ?Sized>(
    t: &mut T,
    mtime: Time,
) -> Result<Vec<Skipped>, SystemdError> {
    let files = config_files(t, &DIRS, b".conf")?;
    let ctx = Context::load(t);
    let mut skipped = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<(bool, Vec<u8>), usize> = HashMap::new();
    for file in &files {
        for item in parse_file(file, &ctx, &mut skipped)? {
            let glob = item.action.globs();
            let key = (glob, item.path.clone());
            let Some(&g) = index.get(&key) else {
                index.insert(key, groups.len());
                groups.push(Group {
                    path: item.path.clone(),
                    glob,
                    items: vec![item],
                    parent: None,
                    done: false,
                });
                continue;
            };
            let group = &mut groups[g];
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
                continue;
            }
            group.items.push(item);
        }
    }
    for g in &mut groups {
        g.parent = parent_of(&g.path, &index);
    }
    let order: Vec<usize> = (0..groups.len())
        .filter(|&g| !groups[g].glob)
        .chain((0..groups.len()).filter(|&g| groups[g].glob))
        .collect();
    let mut run = Run {
        mtime,
        skipped: &mut skipped,
    };
    for g in order {
        run.group(t, &mut groups, g)?;
    }
    Ok(skipped)
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

/// What specifiers and owner names resolve against.
struct Context {
    passwd: Option<Vec<u8>>,
    group: Option<Vec<u8>>,
    os_release: Result<HashMap<String, String>, String>,
}

impl Context {
    fn load<T: Target + ?Sized>(t: &mut T) -> Context {
        let os_release = match read_file(t, b"etc/os-release") {
            Ok(Some(b)) => Ok(b),
            _ => read_file(t, b"usr/lib/os-release").and_then(|b| {
                b.ok_or_else(|| "the tree has no /etc/os-release or /usr/lib/os-release".into())
            }),
        };
        Context {
            passwd: read_file(t, b"etc/passwd").ok().flatten(),
            group: read_file(t, b"etc/group").ok().flatten(),
            os_release: os_release.map(|b| parse_os_release(&b)),
        }
    }

    fn specifier(&self, c: u8) -> Result<String, String> {
        let os = |key: &str| {
            self.os_release
                .as_ref()
                .map(|m| m.get(key).cloned().unwrap_or_default())
                .map_err(|e| format!("%{} needs os-release: {e}", char::from(c)))
        };
        Ok(match c {
            b'%' => "%".into(),
            b'B' => os("BUILD_ID")?,
            b'M' => os("IMAGE_ID")?,
            b'o' => os("ID")?,
            b'w' => os("VERSION_ID")?,
            b'W' => os("VARIANT_ID")?,
            // Buildroot runs tmpfiles as (fake) root.
            b'u' | b'g' => "root".into(),
            b'U' | b'G' => "0".into(),
            b'h' => "/root".into(),
            b's' => "/bin/sh".into(),
            b'C' => "/var/cache".into(),
            b'E' => "/etc".into(),
            b'L' => "/var/log".into(),
            b'S' => "/var/lib".into(),
            b't' => "/run".into(),
            b'T' => "/tmp".into(),
            b'V' => "/var/tmp".into(),
            _ => return Err(format!("unknown specifier %{}", char::from(c))),
        })
    }

    fn expand(&self, s: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(s.len());
        let mut it = s.iter();
        while let Some(&b) = it.next() {
            if b != b'%' {
                out.push(b);
                continue;
            }
            let c = it
                .next()
                .ok_or("a lone % at the end (write %% for a percent sign)")?;
            out.extend_from_slice(self.specifier(*c)?.as_bytes());
        }
        Ok(out)
    }

    fn owner(&self, field: &[u8], group: bool) -> Result<Option<Id>, String> {
        let (create_only, field) = match field.strip_prefix(b":") {
            Some(f) => (true, f),
            None => (false, field),
        };
        if field.is_empty() || field == b"-" {
            return Ok(None);
        }
        let text = std::str::from_utf8(field).map_err(|_| "owner is not UTF-8".to_owned())?;
        if let Ok(id) = text.parse::<u32>() {
            return Ok(Some(Id { id, create_only }));
        }
        let (db, what, file) = if group {
            (&self.group, "group", "/etc/group")
        } else {
            (&self.passwd, "user", "/etc/passwd")
        };
        db.as_deref()
            .and_then(|db| id_in(db, text))
            .map(|id| Some(Id { id, create_only }))
            .ok_or_else(|| format!("unknown {what} '{text}' (not in the tree's {file})"))
    }
}

/// `KEY=value` lines, with shell-style quotes around values.
fn parse_os_release(bytes: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = match v.as_bytes().first() {
                Some(q @ (b'"' | b'\'')) if v.len() >= 2 && v.as_bytes()[v.len() - 1] == *q => {
                    let inner = &v[1..v.len() - 1];
                    if *q == b'"' {
                        unescape_shell(inner)
                    } else {
                        inner.to_owned()
                    }
                }
                _ => v.to_owned(),
            };
            Some((k.trim().to_owned(), v))
        })
        .collect()
}

fn unescape_shell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(n) = chars.next()
        {
            out.push(n);
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_file(
    file: &ConfigFile,
    ctx: &Context,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<Item>, TableError> {
    let mut out = Vec::new();
    for (i, raw) in file.text.split(|&b| b == b'\n').enumerate() {
        let origin = Origin {
            file: file.path.clone(),
            line: i + 1,
        };
        let line = raw.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        match parse_line(line, ctx, &origin) {
            Ok(Parsed::Item(item)) => out.push(*item),
            Ok(Parsed::Excluded) => {}
            Ok(Parsed::Skip(reason)) => skipped.push(Skipped { origin, reason }),
            Err(e) => return Err(origin.err(e)),
        }
    }
    Ok(out)
}

enum Parsed {
    Item(Box<Item>),
    /// A path Buildroot leaves to the running system: dropped silently.
    Excluded,
    Skip(String),
}

fn parse_line(line: &[u8], ctx: &Context, origin: &Origin) -> Result<Parsed, String> {
    let mut rest = line;
    let mut fields: Vec<Vec<u8>> = Vec::new();
    for _ in 0..6 {
        match next_word(&mut rest)? {
            Some(w) => fields.push(w),
            None => break,
        }
    }
    let argument = rest.trim_ascii();
    let [action, raw_path, ..] = &fields[..] else {
        return Err("a line needs at least a type and a path".into());
    };
    let field = |n: usize| fields.get(n).map_or(&b"-"[..], Vec::as_slice);
    if EXCLUDED.iter().any(|p| raw_path.starts_with(p)) {
        return Ok(Parsed::Excluded);
    }
    if let Some(bad) = leaking_specifier(raw_path).or_else(|| leaking_specifier(argument)) {
        return Ok(Parsed::Skip(format!(
            "specifier %{} would take its value from the build host",
            char::from(bad)
        )));
    }
    let (&letter, modifiers) = action.split_first().ok_or("empty type")?;
    let kind = Action::from_letter(letter)
        .ok_or_else(|| format!("unknown type '{}'", String::from_utf8_lossy(action)))?;
    let (mut force, mut tolerant, mut replace) = (letter == b'F', false, false);
    for &m in modifiers {
        match m {
            b'+' => force = true,
            b'-' => tolerant = true,
            b'=' => replace = true,
            // Boot-only lines are wanted (`--boot`); purge only matters to `--purge`.
            b'!' | b'$' => {}
            b'^' => {
                return Ok(Parsed::Skip(
                    "the argument is a credential, which does not exist at build time".into(),
                ));
            }
            b'~' => return Err("base64 arguments (~) are not supported".into()),
            _ => return Err(format!("unknown modifier '{}'", char::from(m))),
        }
    }
    let path = ctx.expand(raw_path)?;
    if path.first() != Some(&b'/') {
        return Err(format!(
            "path '{}' is not absolute",
            String::from_utf8_lossy(&path)
        ));
    }
    let mut parts = Vec::new();
    for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if c == b"." || c == b".." {
            return Err(format!(
                "path '{}' is not normalized",
                String::from_utf8_lossy(&path)
            ));
        }
        parts.push(c);
    }
    let path = parts.join(&b'/');
    let mut shown = vec![b'/'];
    shown.extend_from_slice(&path);
    if EXCLUDED
        .iter()
        .any(|p| shown.starts_with(p) && matches!(shown.get(p.len()), None | Some(b'/')))
    {
        return Ok(Parsed::Excluded);
    }
    let mode = parse_mode(field(2))?;
    let uid = ctx.owner(field(3), false)?;
    let gid = ctx.owner(field(4), true)?;
    let mut argument = (!argument.is_empty() && argument != b"-").then(|| argument.to_vec());
    if matches!(
        kind,
        Action::CreateFile | Action::WriteFile | Action::Symlink | Action::Copy
    ) && let Some(a) = &argument
    {
        argument = Some(ctx.expand(&cunescape(a)?)?);
    }
    let factory = || {
        let mut a = b"/usr/share/factory/".to_vec();
        a.extend_from_slice(&path);
        a
    };
    match kind {
        Action::Symlink if argument.is_none() => argument = Some(factory()),
        Action::Copy => {
            let a = argument.get_or_insert_with(factory);
            if a.first() != Some(&b'/') {
                return Err(format!(
                    "copy source '{}' is not absolute",
                    String::from_utf8_lossy(a)
                ));
            }
        }
        Action::WriteFile if argument.is_none() => {
            return Err("w needs an argument to write".into());
        }
        Action::Device(_) if argument.is_none() => {
            return Err("a device node needs major:minor as its argument".into());
        }
        Action::Unsupported(what) => {
            return Ok(Parsed::Skip(format!(
                "type {} sets {what}, which the tree does not hold",
                char::from(letter)
            )));
        }
        _ => {}
    }
    Ok(Parsed::Item(Box::new(Item {
        origin: origin.clone(),
        action: kind,
        force,
        tolerant,
        replace,
        path,
        mode,
        uid,
        gid,
        argument,
    })))
}

/// The first specifier in `s` that is not on Buildroot's safe list.
fn leaking_specifier(s: &[u8]) -> Option<u8> {
    let mut it = s.iter();
    while let Some(&b) = it.next() {
        if b == b'%' {
            match it.next() {
                Some(c) if SAFE_SPECIFIERS.contains(c) => {}
                Some(&c) => return Some(c),
                None => return Some(b'%'),
            }
        }
    }
    None
}

fn parse_mode(field: &[u8]) -> Result<Option<Mode>, String> {
    let mut f = field;
    let (mut masked, mut create_only) = (false, false);
    loop {
        match f.first() {
            Some(b'~') => masked = true,
            Some(b':') => create_only = true,
            _ => break,
        }
        f = &f[1..];
    }
    if f.is_empty() || f == b"-" {
        return Ok(None);
    }
    let bad = || format!("bad mode '{}'", String::from_utf8_lossy(field));
    let text = std::str::from_utf8(f).map_err(|_| bad())?;
    let bits = u16::from_str_radix(text, 8)
        .ok()
        .filter(|&m| m <= 0o7777)
        .ok_or_else(bad)?;
    Ok(Some(Mode {
        bits,
        masked,
        create_only,
    }))
}

/// One field: whitespace-separated, with `'` or `"` quoting and `\`
/// taking the next byte literally.
fn next_word(rest: &mut &[u8]) -> Result<Option<Vec<u8>>, String> {
    let s = rest.trim_ascii_start();
    if s.is_empty() {
        *rest = s;
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        match (b, quote) {
            // As systemd's EXTRACT_UNQUOTE: a backslash takes the next byte
            // as it is (fields, unlike the argument, are not C-unescaped).
            (b'\\', _) => {
                out.push(*s.get(i + 1).ok_or("a lone \\ at the end of a field")?);
                i += 2;
                continue;
            }
            (b'"' | b'\'', None) => quote = Some(b),
            (q, Some(open)) if q == open => quote = None,
            (w, None) if w.is_ascii_whitespace() => break,
            _ => out.push(b),
        }
        i += 1;
    }
    if quote.is_some() {
        return Err("unbalanced quotes".into());
    }
    *rest = &s[i..];
    Ok(Some(out))
}

/// systemd's `cunescape()`.
fn cunescape(s: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' {
            let (bytes, used) = unescape_one(&s[i..])?;
            out.extend_from_slice(&bytes);
            i += used;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Decodes the escape at the start of `s` (which begins with `\`): its
/// bytes and the length of the escape.
fn unescape_one(s: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let c = *s.get(1).ok_or("a lone \\ at the end")?;
    let simple = match c {
        b'a' => Some(7),
        b'b' => Some(8),
        b'f' => Some(12),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(11),
        b's' => Some(b' '),
        b'\\' | b'"' | b'\'' => Some(c),
        _ => None,
    };
    if let Some(b) = simple {
        return Ok((vec![b], 2));
    }
    let digits = |from: usize, n: usize, radix: u32| -> Result<u32, String> {
        let d = s.get(from..from + n).ok_or("truncated escape")?;
        let d = std::str::from_utf8(d).map_err(|_| "bad escape".to_owned())?;
        u32::from_str_radix(d, radix).map_err(|_| format!("bad escape \\{d}"))
    };
    let (code, used) = match c {
        b'x' => (digits(2, 2, 16)?, 4),
        b'0'..=b'7' => (digits(1, 3, 8)?, 4),
        b'u' => (digits(2, 4, 16)?, 6),
        b'U' => (digits(2, 8, 16)?, 10),
        _ => return Err(format!("unknown escape \\{}", char::from(c))),
    };
    let bytes = if matches!(c, b'u' | b'U') {
        let ch = char::from_u32(code).ok_or("escape is not a character")?;
        ch.to_string().into_bytes()
    } else {
        vec![u8::try_from(code).map_err(|_| "escape above \\377".to_owned())?]
    };
    if bytes == [0] {
        return Err("NUL escape".into());
    }
    Ok((bytes, used))
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
