//! genimage's configuration language (libconfuse's syntax), parsed into a
//! tree of sections and options that remember their file and line.
//!
//! - `key = value`, `key += value`, `key = { "a", b, ... }` (a list);
//! - sections `name { ... }` and titled sections `name title { ... }`;
//! - strings unquoted, `"double quoted"` (C escapes, `${VAR}` and
//!   `${VAR:-default}` from the environment) or `'single quoted'` (only
//!   `\\` and `\'` escapes, no expansion); a bare `${VAR}` is a string too;
//! - comments `#`, `//` to the end of the line and `/* ... */`;
//! - `include("file")`, searched in the include path, then as given.
//!
//! What the keys mean (and which exist) is the caller's business: see
//! [`Section`]'s accessors and the genimage front end.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Most nested `include`s, as libconfuse allows.
const MAX_INCLUDE_DEPTH: usize = 10;

/// Where something was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: u32,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A configuration error: the file, the line, the key (when there is
/// one) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {}{msg}", key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct ConfigError {
    pub loc: Loc,
    pub key: Option<String>,
    pub msg: String,
}

impl ConfigError {
    pub fn new(loc: &Loc, key: Option<&str>, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            loc: loc.clone(),
            key: key.map(str::to_owned),
            msg: msg.into(),
        }
    }
}

/// `key = value` or `key = { list }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub key: String,
    pub values: Vec<String>,
    /// Written as a `{ list }`.
    pub list: bool,
    /// Written with `+=`.
    pub append: bool,
    pub loc: Loc,
}

/// A section, or the whole file (name `""`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub title: Option<String>,
    pub loc: Loc,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Opt(Opt),
    Section(Section),
}

impl Section {
    /// The options, in order.
    pub fn opts(&self) -> impl Iterator<Item = &Opt> {
        self.items.iter().filter_map(|i| match i {
            Item::Opt(o) => Some(o),
            Item::Section(_) => None,
        })
    }

    /// The subsections, in order.
    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.items.iter().filter_map(|i| match i {
            Item::Section(s) => Some(s),
            Item::Opt(_) => None,
        })
    }

    /// The last `key = value` of a single-valued option (libconfuse keeps
    /// the last assignment).
    #[must_use]
    pub fn opt(&self, key: &str) -> Option<&Opt> {
        self.opts().filter(|o| o.key == key).last()
    }

    /// The string value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.opt(key)
            .and_then(|o| o.values.last())
            .map(String::as_str)
    }

    /// A list option: `=` replaces, `+=` appends.
    #[must_use]
    pub fn list(&self, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for o in self.opts().filter(|o| o.key == key) {
            if !o.append {
                out.clear();
            }
            out.extend(o.values.iter().cloned());
        }
        out
    }

    /// A boolean option as libconfuse reads one: true/yes/on,
    /// false/no/off, in any case.
    ///
    /// # Errors
    ///
    /// Any other value.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        let Some(o) = self.opt(key) else {
            return Ok(None);
        };
        let v = o.values.last().map(String::as_str).unwrap_or_default();
        match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Ok(Some(true)),
            "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(ConfigError::new(
                &o.loc,
                Some(key),
                format!("'{v}' is not a boolean (true, false, yes, no, on, off)"),
            )),
        }
    }

    /// An integer option (`strtol` with base 0: `0x` hex, leading-0
    /// octal).
    ///
    /// # Errors
    ///
    /// A value that is not an integer.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        let Some(o) = self.opt(key) else {
            return Ok(None);
        };
        let v = o.values.last().map(String::as_str).unwrap_or_default();
        parse_int(v)
            .map(Some)
            .ok_or_else(|| ConfigError::new(&o.loc, Some(key), format!("'{v}' is not an integer")))
    }

    /// A size option (see [`parse_size`]); `%` is refused unless
    /// `percent` is allowed, and then returned as the flag.
    ///
    /// # Errors
    ///
    /// A value that is no size.
    pub fn size(&self, key: &str, percent: bool) -> Result<Option<(u64, bool)>, ConfigError> {
        let Some(o) = self.opt(key) else {
            return Ok(None);
        };
        let v = o.values.last().map(String::as_str).unwrap_or_default();
        match parse_size(v) {
            Ok((_, true)) if !percent => Err(ConfigError::new(
                &o.loc,
                Some(key),
                format!("'{v}': a '%' size is only valid for an image's size"),
            )),
            Ok(s) => Ok(Some(s)),
            Err(e) => Err(ConfigError::new(&o.loc, Some(key), e)),
        }
    }
}

fn parse_int(v: &str) -> Option<i64> {
    let (neg, digits) = match v.trim().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v.trim().strip_prefix('+').unwrap_or(v.trim())),
    };
    let n = parse_uint(digits)?.0;
    let n = i64::try_from(n).ok()?;
    Some(if neg { -n } else { n })
}

/// `strtoull(s, &end, 0)`: the value and the rest.
fn parse_uint(s: &str) -> Option<(u64, &str)> {
    let (radix, body) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    let end = body
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(body.len());
    if end == 0 {
        // "0" alone, or "0" followed by a suffix, is zero.
        return if radix == 8 { Some((0, body)) } else { None };
    }
    let n = u64::from_str_radix(&body[..end], radix).ok()?;
    Some((n, &body[end..]))
}

/// A genimage size: a number (`0x` hex and leading-0 octal as `strtoull`
/// reads them) with an optional suffix `k`/`K` (KiB), `M` (MiB), `G`
/// (GiB), `s` (512-byte sectors) or `%`. Returns the value and whether it
/// is a percentage.
///
/// # Errors
///
/// No number, an unknown suffix, or a value past 64 bits.
pub fn parse_size(v: &str) -> Result<(u64, bool), String> {
    let t = v.trim();
    let (n, rest) = parse_uint(t).ok_or_else(|| format!("'{v}' is not a size"))?;
    let (mul, percent) = match rest {
        "" => (1, false),
        "k" | "K" => (1 << 10, false),
        "M" => (1 << 20, false),
        "G" => (1 << 30, false),
        "s" => (512, false),
        "%" => (1, true),
        s => {
            return Err(format!(
                "invalid size suffix '{s}' in '{v}' (k, K, M, G, s or %)"
            ));
        }
    };
    n.checked_mul(mul)
        .map(|n| (n, percent))
        .ok_or_else(|| format!("'{v}' does not fit in 64 bits"))
}

/// A `holes` entry: `"(start; end)"` with sizes.
///
/// # Errors
///
/// Anything else.
pub fn parse_hole(v: &str) -> Result<(u64, u64), String> {
    let inner = v
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("hole '{v}' is not \"(start; end)\""))?;
    let (a, b) = inner
        .split_once(';')
        .ok_or_else(|| format!("hole '{v}' is not \"(start; end)\""))?;
    let (start, _) = parse_size(a.trim()).map_err(|e| format!("hole '{v}': {e}"))?;
    let (end, _) = parse_size(b.trim()).map_err(|e| format!("hole '{v}': {e}"))?;
    if end < start {
        return Err(format!("hole '{v}' ends before it starts"));
    }
    Ok((start, end))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Eq,
    PlusEq,
    Comma,
    Str(String),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Eq => "'='".into(),
            Tok::PlusEq => "'+='".into(),
            Tok::Comma => "','".into(),
            Tok::Str(s) => format!("'{s}'"),
        }
    }
}

/// How the parser reads files and the environment.
pub struct Source<'a> {
    /// Directories `include` searches before the path as given.
    pub include_path: Vec<PathBuf>,
    /// Environment lookups for `${VAR}`.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Reads a file.
    pub read: &'a dyn Fn(&Path) -> std::io::Result<String>,
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("include_path", &self.include_path)
            .finish_non_exhaustive()
    }
}

fn lex(
    text: &str,
    file: &Arc<str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(Tok, u32)>, ConfigError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut line = 1u32;
    let mut i = 0;
    let err = |line: u32, msg: String| ConfigError {
        loc: Loc {
            file: file.clone(),
            line,
        },
        key: None,
        msg,
    };
    let expand = |body: &str| -> String {
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        env(name)
            .or_else(|| default.map(str::to_owned))
            .unwrap_or_default()
    };
    while i < b.len() {
        let c = b[i];
        let start_line = line;
        match c {
            b' ' | b'\t' | b'\r' => i += 1,
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                loop {
                    match b.get(i) {
                        None => return Err(err(start_line, "unterminated /* comment".into())),
                        Some(b'*') if b.get(i + 1) == Some(&b'/') => {
                            i += 2;
                            break;
                        }
                        Some(b'\n') => {
                            line += 1;
                            i += 1;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'{' => {
                out.push((Tok::LBrace, line));
                i += 1;
            }
            b'}' => {
                out.push((Tok::RBrace, line));
                i += 1;
            }
            b'(' => {
                out.push((Tok::LParen, line));
                i += 1;
            }
            b')' => {
                out.push((Tok::RParen, line));
                i += 1;
            }
            b'=' => {
                out.push((Tok::Eq, line));
                i += 1;
            }
            b',' => {
                out.push((Tok::Comma, line));
                i += 1;
            }
            b'+' if b.get(i + 1) == Some(&b'=') => {
                out.push((Tok::PlusEq, line));
                i += 2;
            }
            b'$' if b.get(i + 1) == Some(&b'{') => {
                let end = text[i..]
                    .find('}')
                    .ok_or_else(|| err(line, "unterminated ${".into()))?;
                let body = &text[i + 2..i + end];
                if body.contains('\n') {
                    return Err(err(line, "unterminated ${".into()));
                }
                out.push((Tok::Str(expand(body)), line));
                i += end + 1;
            }
            b'"' => {
                let mut s: Vec<u8> = Vec::new();
                i += 1;
                loop {
                    let Some(&c) = b.get(i) else {
                        return Err(err(start_line, "unterminated string constant".into()));
                    };
                    match c {
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\n' => {
                            s.push(b'\n');
                            line += 1;
                            i += 1;
                        }
                        b'$' if b.get(i + 1) == Some(&b'{') => {
                            let rest = &text[i..];
                            match rest.find('}') {
                                Some(end) if !rest[..end].contains('\n') => {
                                    s.extend_from_slice(expand(&rest[2..end]).as_bytes());
                                    i += end + 1;
                                }
                                _ => {
                                    s.push(b'$');
                                    i += 1;
                                }
                            }
                        }
                        b'\\' => {
                            let Some(&n) = b.get(i + 1) else {
                                return Err(err(start_line, "unterminated string constant".into()));
                            };
                            i += 2;
                            match n {
                                b'\n' => line += 1,
                                b'0'..=b'7' => {
                                    let mut v = u32::from(n - b'0');
                                    let mut k = 0;
                                    while k < 2 && matches!(b.get(i), Some(b'0'..=b'7')) {
                                        v = v * 8 + u32::from(b[i] - b'0');
                                        i += 1;
                                        k += 1;
                                    }
                                    let byte = u8::try_from(v).map_err(|_| {
                                        err(line, format!("invalid octal escape \\{v:o}"))
                                    })?;
                                    s.push(byte);
                                }
                                b'8' | b'9' => {
                                    return Err(err(line, "bad escape sequence".into()));
                                }
                                b'x' if b.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                                    let mut v = 0u8;
                                    let mut k = 0;
                                    while k < 2 && b.get(i).is_some_and(u8::is_ascii_hexdigit) {
                                        v = v * 16 + (b[i] as char).to_digit(16).unwrap_or(0) as u8;
                                        i += 1;
                                        k += 1;
                                    }
                                    s.push(v);
                                }
                                b'n' => s.push(b'\n'),
                                b'r' => s.push(b'\r'),
                                b'b' => s.push(8),
                                b'f' => s.push(12),
                                b'a' => s.push(7),
                                b'e' => s.push(27),
                                b't' => s.push(b'\t'),
                                b'v' => s.push(11),
                                other => s.push(other),
                            }
                        }
                        _ => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                let s = String::from_utf8(s)
                    .map_err(|_| err(start_line, "string is not UTF-8".into()))?;
                out.push((Tok::Str(s), start_line));
            }
            b'\'' => {
                let mut s: Vec<u8> = Vec::new();
                i += 1;
                loop {
                    let Some(&c) = b.get(i) else {
                        return Err(err(start_line, "unterminated string constant".into()));
                    };
                    match c {
                        b'\'' => {
                            i += 1;
                            break;
                        }
                        b'\n' => {
                            s.push(b'\n');
                            line += 1;
                            i += 1;
                        }
                        b'\\' => match b.get(i + 1) {
                            Some(b'\n') => {
                                line += 1;
                                i += 2;
                            }
                            Some(&n @ (b'\\' | b'\'')) => {
                                s.push(n);
                                i += 2;
                            }
                            _ => {
                                s.push(b'\\');
                                i += 1;
                            }
                        },
                        _ => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                let s = String::from_utf8(s)
                    .map_err(|_| err(start_line, "string is not UTF-8".into()))?;
                out.push((Tok::Str(s), start_line));
            }
            _ => {
                let start = i;
                while i < b.len() {
                    let c = b[i];
                    if matches!(
                        c,
                        b' ' | b'#'
                            | b'"'
                            | b'\''
                            | b'\t'
                            | b'\n'
                            | b'\r'
                            | b'='
                            | b'{'
                            | b'}'
                            | b'('
                            | b')'
                            | b'+'
                            | b','
                            | b'*'
                    ) {
                        break;
                    }
                    if c == b'/' && matches!(b.get(i + 1), Some(b'/' | b'*')) {
                        break;
                    }
                    i += 1;
                }
                if i == start {
                    return Err(err(
                        line,
                        format!("unexpected character '{}'", char::from(c)),
                    ));
                }
                out.push((Tok::Str(text[start..i].to_owned()), line));
            }
        }
    }
    Ok(out)
}

struct Parser<'s, 'a> {
    src: &'s Source<'a>,
    depth: usize,
}

impl Parser<'_, '_> {
    fn parse_file(&mut self, path: &Path, from: Option<&Loc>) -> Result<Vec<Item>, ConfigError> {
        let name: Arc<str> = path.display().to_string().into();
        let text = (self.src.read)(path).map_err(|e| match from {
            Some(loc) => ConfigError::new(loc, Some("include"), format!("{}: {e}", path.display())),
            None => ConfigError {
                loc: Loc {
                    file: name.clone(),
                    line: 0,
                },
                key: None,
                msg: format!("cannot read the configuration: {e}"),
            },
        })?;
        let toks = lex(&text, &name, self.src.env)?;
        let mut pos = 0;
        let items = self.items(&toks, &mut pos, &name, false)?;
        Ok(items)
    }

    fn items(
        &mut self,
        toks: &[(Tok, u32)],
        pos: &mut usize,
        file: &Arc<str>,
        nested: bool,
    ) -> Result<Vec<Item>, ConfigError> {
        let mut items = Vec::new();
        let loc_at = |line: u32| Loc {
            file: file.clone(),
            line,
        };
        let last_line = toks.last().map_or(1, |t| t.1);
        loop {
            let Some((tok, line)) = toks.get(*pos) else {
                if nested {
                    return Err(ConfigError::new(
                        &loc_at(last_line),
                        None,
                        "missing '}' at the end of the file",
                    ));
                }
                return Ok(items);
            };
            let loc = loc_at(*line);
            let key = match tok {
                Tok::RBrace if nested => {
                    *pos += 1;
                    return Ok(items);
                }
                Tok::Str(s) => s.clone(),
                other => {
                    return Err(ConfigError::new(
                        &loc,
                        None,
                        format!(
                            "expected an option or a section, found {}",
                            other.describe()
                        ),
                    ));
                }
            };
            *pos += 1;
            let next = toks.get(*pos).map(|t| &t.0);
            match next {
                Some(Tok::Eq | Tok::PlusEq) => {
                    let append = next == Some(&Tok::PlusEq);
                    *pos += 1;
                    let (values, list) = match toks.get(*pos) {
                        Some((Tok::Str(v), _)) => {
                            *pos += 1;
                            (vec![v.clone()], false)
                        }
                        Some((Tok::LBrace, _)) => {
                            *pos += 1;
                            let mut values = Vec::new();
                            loop {
                                match toks.get(*pos) {
                                    Some((Tok::RBrace, _)) if values.is_empty() => {
                                        *pos += 1;
                                        break;
                                    }
                                    Some((Tok::Str(v), _)) => {
                                        values.push(v.clone());
                                        *pos += 1;
                                        match toks.get(*pos) {
                                            Some((Tok::Comma, _)) => *pos += 1,
                                            Some((Tok::RBrace, _)) => {
                                                *pos += 1;
                                                break;
                                            }
                                            other => {
                                                return Err(ConfigError::new(
                                                    &other.map_or(loc.clone(), |t| loc_at(t.1)),
                                                    Some(&key),
                                                    format!(
                                                        "expected ',' or '}}' in the list, found {}",
                                                        other.map_or(
                                                            "the end of the file".into(),
                                                            |t| t.0.describe()
                                                        )
                                                    ),
                                                ));
                                            }
                                        }
                                    }
                                    other => {
                                        return Err(ConfigError::new(
                                            &other.map_or(loc.clone(), |t| loc_at(t.1)),
                                            Some(&key),
                                            format!(
                                                "expected a value in the list, found {}",
                                                other.map_or("the end of the file".into(), |t| t
                                                    .0
                                                    .describe())
                                            ),
                                        ));
                                    }
                                }
                            }
                            (values, true)
                        }
                        other => {
                            return Err(ConfigError::new(
                                &loc,
                                Some(&key),
                                format!(
                                    "expected a value after '=', found {}",
                                    other.map_or("the end of the file".into(), |t| t.0.describe())
                                ),
                            ));
                        }
                    };
                    items.push(Item::Opt(Opt {
                        key,
                        values,
                        list,
                        append,
                        loc,
                    }));
                }
                Some(Tok::LBrace) => {
                    *pos += 1;
                    let sub = self.items(toks, pos, file, true)?;
                    items.push(Item::Section(Section {
                        name: key,
                        title: None,
                        loc,
                        items: sub,
                    }));
                }
                Some(Tok::Str(title)) if matches!(toks.get(*pos + 1), Some((Tok::LBrace, _))) => {
                    let title = title.clone();
                    *pos += 2;
                    let sub = self.items(toks, pos, file, true)?;
                    items.push(Item::Section(Section {
                        name: key,
                        title: Some(title),
                        loc,
                        items: sub,
                    }));
                }
                Some(Tok::LParen) => {
                    *pos += 1;
                    let mut args = Vec::new();
                    loop {
                        match toks.get(*pos) {
                            Some((Tok::RParen, _)) => {
                                *pos += 1;
                                break;
                            }
                            Some((Tok::Str(v), _)) => {
                                args.push(v.clone());
                                *pos += 1;
                                if let Some((Tok::Comma, _)) = toks.get(*pos) {
                                    *pos += 1;
                                }
                            }
                            _ => {
                                return Err(ConfigError::new(
                                    &loc,
                                    Some(&key),
                                    "expected the function's arguments and ')'",
                                ));
                            }
                        }
                    }
                    if key != "include" {
                        return Err(ConfigError::new(
                            &loc,
                            Some(&key),
                            "unknown function (only include() exists)",
                        ));
                    }
                    let [file_name] = args.as_slice() else {
                        return Err(ConfigError::new(
                            &loc,
                            Some("include"),
                            "include() takes one file name",
                        ));
                    };
                    if self.depth >= MAX_INCLUDE_DEPTH {
                        return Err(ConfigError::new(
                            &loc,
                            Some("include"),
                            "includes nested too deeply (10 levels)",
                        ));
                    }
                    let path = self.find_include(file_name);
                    self.depth += 1;
                    let sub = self.parse_file(&path, Some(&loc))?;
                    self.depth -= 1;
                    items.extend(sub);
                }
                other => {
                    return Err(ConfigError::new(
                        &loc,
                        Some(&key),
                        format!(
                            "expected '=', '{{', a section title or '(' after '{key}', found {}",
                            other.map_or("the end of the file".into(), Tok::describe)
                        ),
                    ));
                }
            }
        }
    }

    fn find_include(&self, name: &str) -> PathBuf {
        let p = Path::new(name);
        if p.is_absolute() {
            return p.to_owned();
        }
        for dir in &self.src.include_path {
            let cand = dir.join(name);
            if (self.src.read)(&cand).is_ok() {
                return cand;
            }
        }
        p.to_owned()
    }
}

/// Parses the configuration file at `path` (with its includes).
///
/// # Errors
///
/// The first syntax error, with its file and line, or a file that cannot
/// be read.
pub fn parse(path: &Path, src: &Source<'_>) -> Result<Section, ConfigError> {
    let mut p = Parser { src, depth: 0 };
    let items = p.parse_file(path, None)?;
    Ok(Section {
        name: String::new(),
        title: None,
        loc: Loc {
            file: path.display().to_string().into(),
            line: 1,
        },
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn parse_files(files: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Section, ConfigError> {
        let files: BTreeMap<PathBuf, String> = files
            .iter()
            .map(|(n, t)| (PathBuf::from(n), (*t).to_owned()))
            .collect();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let read = move |p: &Path| {
            files
                .get(p)
                .cloned()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        };
        let envf = move |k: &str| env.get(k).cloned();
        let src = Source {
            include_path: vec![PathBuf::from("inc")],
            env: &envf,
            read: &read,
        };
        parse(Path::new("main.cfg"), &src)
    }

    #[test]
    fn sections_titles_lists_and_comments() {
        let text = r#"
# a comment
image sdcard.img { // another
    hdimage { partition-table-type = "gpt" }
    /* a
       block */
    partition boot {
        image = 'boot.vfat'
        offset = 8M
        bootable = yes
    }
    size = ${SIZE:-64M}
}
image "boot.vfat" {
    vfat { files = { "zImage", dtb,
        "u-boot.img" } }
    name += x
}
"#;
        let top = parse_files(&[("main.cfg", text)], &[]).unwrap();
        let images: Vec<_> = top.sections().collect();
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].title.as_deref(), Some("sdcard.img"));
        assert_eq!(images[0].loc.line, 3);
        assert_eq!(images[0].get("size"), Some("64M"));
        let part = images[0].sections().nth(1).unwrap();
        assert_eq!(part.title.as_deref(), Some("boot"));
        assert_eq!(part.get("image"), Some("boot.vfat"));
        assert_eq!(part.bool("bootable").unwrap(), Some(true));
        assert_eq!(part.opt("offset").unwrap().loc.line, 9);
        let vfat = images[1].sections().next().unwrap();
        assert_eq!(vfat.list("files"), vec!["zImage", "dtb", "u-boot.img"]);
        assert!(images[1].opt("name").unwrap().append);
    }

    #[test]
    fn environment_and_escapes() {
        let top = parse_files(
            &[(
                "main.cfg",
                "a = \"${X}/b\\n\\x41\\101\"\nb = '${X}\\'q'\nc = ${X}\nd = \"${NOPE}\"",
            )],
            &[("X", "ex")],
        )
        .unwrap();
        assert_eq!(top.get("a"), Some("ex/b\nAA"));
        assert_eq!(top.get("b"), Some("${X}'q"));
        assert_eq!(top.get("c"), Some("ex"));
        assert_eq!(top.get("d"), Some(""));
    }

    #[test]
    fn include_searches_the_path_then_as_given() {
        let top = parse_files(
            &[
                (
                    "main.cfg",
                    "include(\"flash.cfg\")\ninclude(\"here.cfg\")\nz = 1",
                ),
                ("inc/flash.cfg", "flash nor { pebsize = 64K }"),
                ("here.cfg", "y = 2"),
            ],
            &[],
        )
        .unwrap();
        let f = top.sections().next().unwrap();
        assert_eq!(&*f.loc.file, "inc/flash.cfg");
        assert_eq!(top.get("y"), Some("2"));
        let e = parse_files(&[("main.cfg", "\n\ninclude(\"gone.cfg\")")], &[]).unwrap_err();
        assert_eq!(e.loc.line, 3);
        assert_eq!(e.key.as_deref(), Some("include"));
        assert!(
            e.to_string().starts_with("main.cfg:3: include: gone.cfg"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        for (text, line) in [
            ("a {\n b = 1\n", 2),
            ("a = \n", 1),
            ("a = \"x\n\n", 1),
            ("a { b = {1, } }", 1),
            ("\n\n/* open", 3),
            ("x y z", 1),
        ] {
            let e = parse_files(&[("main.cfg", text)], &[]).unwrap_err();
            assert_eq!(e.loc.line, line, "{text:?}: {e}");
            assert_eq!(&*e.loc.file, "main.cfg");
        }
        let e =
            parse_files(&[("main.cfg", "a = \"${X}\"\ninclude(\"main.cfg\")")], &[]).unwrap_err();
        assert!(e.msg.contains("nested too deeply"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok((64 << 20, false)));
        assert_eq!(parse_size("16352K"), Ok((16352 << 10, false)));
        assert_eq!(parse_size("8k"), Ok((8192, false)));
        assert_eq!(parse_size("2G"), Ok((2 << 30, false)));
        assert_eq!(parse_size("34s"), Ok((34 * 512, false)));
        assert_eq!(parse_size("0x100"), Ok((256, false)));
        assert_eq!(parse_size("010"), Ok((8, false)));
        assert_eq!(parse_size("0"), Ok((0, false)));
        assert_eq!(parse_size("150%"), Ok((150, true)));
        assert!(parse_size("1m").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999999G").is_err());
        assert_eq!(parse_hole("(440; 512)"), Ok((440, 512)));
        assert!(parse_hole("440;512").is_err());
        assert_eq!(parse_int("0xC"), Some(12));
    }
}
