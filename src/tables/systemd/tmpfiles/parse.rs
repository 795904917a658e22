//! tmpfiles.d lines into typed entries: fields, specifiers, owners and
//! modes resolved against the tree, and the lines Buildroot drops dropped.

use std::collections::HashMap;

use rootforge_common::Kind;

use super::Skipped;
use crate::tables::systemd::ConfigFile;
use crate::tables::{Origin, TableError, Target, id_in, read_file};

/// Buildroot leaves these to the running system (both as a plain string
/// prefix of the line's path and as `--exclude-prefix`).
const EXCLUDED: [&[u8]; 6] = [b"/dev", b"/proc", b"/run", b"/sys", b"/tmp", b"/mnt"];

/// The specifiers that cannot leak the build host (Buildroot's list);
/// a line using any other one is dropped.
const SAFE_SPECIFIERS: &[u8] = b"%BCEgGhLMosStTuUVwW";

/// What a line's type letter does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
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
    pub(super) fn from_letter(c: u8) -> Option<Action> {
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
    pub(super) fn takes_ownership(self) -> bool {
        !matches!(
            self,
            Action::AdjustDir | Action::Adjust { .. } | Action::Unsupported(_)
        )
    }

    /// Types that accept globs; systemd applies them after all others.
    pub(super) fn globs(self) -> bool {
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
pub(super) struct Mode {
    pub(super) bits: u16,
    pub(super) masked: bool,
    pub(super) create_only: bool,
}

/// A user or group field, resolved to an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Id {
    pub(super) id: u32,
    pub(super) create_only: bool,
}

/// One tmpfiles.d line, parsed and checked.
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) origin: Origin,
    pub(super) action: Action,
    /// `+`: replace or truncate what exists.
    pub(super) force: bool,
    /// `-`: a failure is tolerated.
    pub(super) tolerant: bool,
    /// `=`: an object of the wrong type is replaced.
    pub(super) replace: bool,
    /// In the tree: no leading `/`, normalized (empty for the root).
    pub(super) path: Vec<u8>,
    pub(super) mode: Option<Mode>,
    pub(super) uid: Option<Id>,
    pub(super) gid: Option<Id>,
    pub(super) argument: Option<Vec<u8>>,
}

impl Item {
    /// Whether the two lines would do the same.
    pub(super) fn same_effect(&self, o: &Item) -> bool {
        self.action == o.action
            && self.force == o.force
            && self.mode == o.mode
            && self.uid == o.uid
            && self.gid == o.gid
            && self.argument == o.argument
    }
}

/// What specifiers and owner names resolve against.
pub(super) struct Context {
    passwd: Option<Vec<u8>>,
    group: Option<Vec<u8>>,
    os_release: Result<HashMap<String, String>, String>,
}

impl Context {
    pub(super) fn load<T: Target + ?Sized>(t: &mut T) -> Context {
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

/// The lines of one tmpfiles.d file; the ones dropped with a reason go
/// to `skipped`.
pub(super) fn parse_file(
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
