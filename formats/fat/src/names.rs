//! Directory entry names: the VFAT long name, and the 8.3 short name made
//! from it as Linux's vfat driver makes it (`vfat_create_shortname`):
//!
//! - the extension is what follows the last dot, unless the dot is the
//!   last character or only dots and spaces precede it;
//! - dots and spaces are dropped, `[ ] ; , + =` become `_`, letters are
//!   upper-cased, characters outside ASCII become `_`;
//! - a name that is a valid 8.3 name and whose base and extension are each
//!   in one case is stored as a short entry alone; lower case parts are
//!   flagged with the NT case bits, as mtools and Windows NT store them
//!   (`readme.txt` is `README  TXT` with both bits);
//! - any other name gets long name entries; an 8.3 name of mixed case
//!   keeps its own short form, anything else gets a numeric tail: the base
//!   is cut to 6 characters and `~1` to `~9` are tried, then (where Linux
//!   would use random hex digits) mtools' `~10`, `~11`, ... with the base
//!   cut to fit.
//!
//! FAT compares names without case, so two names of one directory that
//! differ only in case are an error, and so are names Linux's vfat refuses
//! (control characters, `* ? < > | " : \`, a trailing dot or space).

use std::collections::HashSet;

use rootforge_common::{Error, Result, display_path};

use crate::FORMAT;

/// The longest long name, in UTF-16 units.
pub(crate) const LFN_MAX: usize = 255;
/// UTF-16 units in one long name entry.
pub(crate) const LFN_CHARS: usize = 13;
/// `DIR_NTRes` bit: the base is shown in lower case.
pub(crate) const CASE_LOWER_BASE: u8 = 0x08;
/// `DIR_NTRes` bit: the extension is shown in lower case.
pub(crate) const CASE_LOWER_EXT: u8 = 0x10;

/// One child's names in its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    /// `DIR_Name`: 8 characters of base, 3 of extension, space padded.
    pub(crate) short: [u8; 11],
    /// `DIR_NTRes` case bits.
    pub(crate) lcase: u8,
    /// The long name, when one is stored.
    pub(crate) long: Option<Vec<u16>>,
}

impl Name {
    /// Directory entries the name takes: its long name entries and the
    /// short entry.
    pub(crate) fn slots(&self) -> usize {
        1 + self
            .long
            .as_ref()
            .map_or(0, |l| l.len().div_ceil(LFN_CHARS))
    }
}

/// The long-name checksum of a short name, stored in each of its long
/// name entries (Microsoft's FAT specification, `ChkSum`).
pub(crate) fn checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |s, &c| s.rotate_right(1).wrapping_add(c))
}

fn bad(path: &[u8], what: String) -> Error {
    Error::Unsupported {
        path: display_path(path),
        format: FORMAT,
        what,
    }
}

/// Whether Linux's vfat refuses the character in a long name.
fn forbidden(c: char) -> bool {
    c < ' ' || matches!(c, '*' | '?' | '<' | '>' | '|' | '"' | ':' | '\\' | '/')
}

/// What a part (base or extension) of a short name looked like.
#[derive(Debug, Clone, Copy)]
struct Info {
    /// No character was lost or changed, but for letter case.
    valid: bool,
    /// No lower case letter.
    upper: bool,
    /// No upper case letter.
    lower: bool,
}

impl Info {
    const START: Info = Info {
        valid: true,
        upper: true,
        lower: true,
    };
}

/// The short form of one character: `None` for one that is dropped.
fn short_char(c: char, info: &mut Info) -> Option<u8> {
    if c == '.' || c == ' ' {
        info.valid = false;
        return None;
    }
    if matches!(c, '[' | ']' | ';' | ',' | '+' | '=') || !c.is_ascii() || c == '\x7f' {
        info.valid = false;
        return Some(b'_');
    }
    // ASCII, checked above.
    let b = c as u8;
    if b.is_ascii_lowercase() {
        info.upper = false;
    } else if b.is_ascii_uppercase() {
        info.lower = false;
    }
    Some(b.to_ascii_uppercase())
}

/// The short name a long name maps to before any tail, with whether it is
/// the name itself (but for case) and how its parts are cased.
struct Candidate {
    short: [u8; 11],
    base_len: usize,
    exact: bool,
    base: Info,
    ext: Info,
}

fn candidate(name: &[char]) -> Option<Candidate> {
    let dot = name.iter().rposition(|&c| c == '.');
    let (base_chars, ext_chars) = match dot {
        Some(i) if i + 1 < name.len() && name[..i].iter().any(|&c| c != '.' && c != ' ') => {
            (&name[..i], Some(&name[i + 1..]))
        }
        _ => (name, None),
    };
    let mut exact = true;
    let mut base_info = Info::START;
    let mut ext_info = Info::START;
    let mut short = [b' '; 11];
    let mut base_len = 0;
    for (i, &c) in base_chars.iter().enumerate() {
        let Some(b) = short_char(c, &mut base_info) else {
            continue;
        };
        short[base_len] = b;
        base_len += 1;
        if base_len == 8 {
            if i + 1 < base_chars.len() {
                exact = false;
            }
            break;
        }
    }
    if base_len == 0 {
        return None;
    }
    if let Some(ext_chars) = ext_chars {
        let mut n = 0;
        for (i, &c) in ext_chars.iter().enumerate() {
            let Some(b) = short_char(c, &mut ext_info) else {
                continue;
            };
            short[8 + n] = b;
            n += 1;
            if n == 3 {
                if i + 1 < ext_chars.len() {
                    exact = false;
                }
                break;
            }
        }
    }
    Some(Candidate {
        short,
        base_len,
        exact: exact && base_info.valid && ext_info.valid,
        base: base_info,
        ext: ext_info,
    })
}

/// `short` with the numeric tail `~n`, the base cut to make room: to 6
/// characters for `~1`..`~9` as Linux does, to what fits beyond.
fn with_tail(short: &[u8; 11], base_len: usize, n: u32) -> [u8; 11] {
    let tail = format!("~{n}");
    let keep = if n < 10 {
        base_len.min(6)
    } else {
        base_len.min(8 - tail.len().min(8))
    };
    let mut s = *short;
    for b in &mut s[keep..8] {
        *b = b' ';
    }
    s[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
    s
}

/// The names of a directory's children, in the order given. `dir` is the
/// directory's path, for errors.
pub(crate) fn assign(children: &[&[u8]], dir: &[u8]) -> Result<Vec<Name>> {
    let child_path = |name: &[u8]| {
        let mut p = dir.to_vec();
        p.push(b'/');
        p.extend_from_slice(name);
        p
    };
    let mut folded = HashSet::new();
    let mut parsed = Vec::with_capacity(children.len());
    for &raw in children {
        let path = child_path(raw);
        let text = std::str::from_utf8(raw)
            .map_err(|_| bad(&path, "a name that is not UTF-8".to_owned()))?;
        if let Some(c) = text.chars().find(|&c| forbidden(c)) {
            return Err(bad(&path, format!("the character {c:?} in a name")));
        }
        if text.ends_with('.') || text.ends_with(' ') {
            return Err(bad(
                &path,
                "a name ending in a dot or a space (vfat drops them)".to_owned(),
            ));
        }
        let units: Vec<u16> = text.encode_utf16().collect();
        if units.len() > LFN_MAX {
            return Err(Error::Limit {
                path: display_path(&path),
                format: FORMAT,
                what: "the name length in UTF-16 units",
                value: units.len() as u64,
                limit: LFN_MAX as u64,
            });
        }
        if !folded.insert(text.to_lowercase()) {
            return Err(bad(
                &path,
                "two names that differ only in case in one directory".to_owned(),
            ));
        }
        let chars: Vec<char> = text.chars().collect();
        let c = candidate(&chars)
            .ok_or_else(|| bad(&path, "a name of only dots and spaces".to_owned()))?;
        parsed.push((c, units));
    }
    // Names stored as a short entry alone come first: they have no other
    // form, so the generated ones must step around them.
    let mut taken: HashSet<[u8; 11]> = HashSet::new();
    let short_only =
        |c: &Candidate| c.exact && (c.base.upper || c.base.lower) && (c.ext.upper || c.ext.lower);
    for (c, _) in &parsed {
        if short_only(c) {
            taken.insert(c.short);
        }
    }
    let mut out = Vec::with_capacity(parsed.len());
    for ((c, units), &raw) in parsed.into_iter().zip(children) {
        if short_only(&c) {
            let mut lcase = 0;
            if !c.base.upper {
                lcase |= CASE_LOWER_BASE;
            }
            if !c.ext.upper {
                lcase |= CASE_LOWER_EXT;
            }
            out.push(Name {
                short: c.short,
                lcase,
                long: None,
            });
            continue;
        }
        let short = if c.exact && taken.insert(c.short) {
            c.short
        } else {
            let mut n = 1u32;
            loop {
                let s = with_tail(&c.short, c.base_len, n);
                if taken.insert(s) {
                    break s;
                }
                n += 1;
                if n > 999_999 {
                    return Err(bad(
                        &child_path(raw),
                        "more names with one short form than ~999999 tells apart".to_owned(),
                    ));
                }
            }
        };
        out.push(Name {
            short,
            lcase: 0,
            long: Some(units),
        });
    }
    Ok(out)
}

/// A short name as Linux shows it: base and extension joined by a dot,
/// with the NT case bits applied.
pub(crate) fn short_display(short: &[u8; 11], lcase: u8) -> Vec<u8> {
    let mut base: Vec<u8> = short[..8].to_vec();
    if base.first() == Some(&0x05) {
        base[0] = 0xE5;
    }
    while base.last() == Some(&b' ') {
        base.pop();
    }
    let mut ext: Vec<u8> = short[8..].to_vec();
    while ext.last() == Some(&b' ') {
        ext.pop();
    }
    if lcase & CASE_LOWER_BASE != 0 {
        base.make_ascii_lowercase();
    }
    if lcase & CASE_LOWER_EXT != 0 {
        ext.make_ascii_lowercase();
    }
    if !ext.is_empty() {
        base.push(b'.');
        base.extend_from_slice(&ext);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str) -> Name {
        assign(&[name.as_bytes()], b"").unwrap().remove(0)
    }

    fn short(n: &Name) -> String {
        String::from_utf8(n.short.to_vec()).unwrap()
    }

    #[test]
    fn short_forms_as_linux_makes_them() {
        let n = one("README.TXT");
        assert_eq!(
            (short(&n), n.lcase, n.long.is_none()),
            ("README  TXT".into(), 0, true)
        );
        let n = one("readme.txt");
        assert_eq!(
            (short(&n), n.lcase, n.long.is_none()),
            ("README  TXT".into(), 0x18, true)
        );
        let n = one("readme.TXT");
        assert_eq!((short(&n), n.lcase), ("README  TXT".into(), 0x08));
        let n = one("ReadMe.txt");
        assert_eq!(
            (short(&n), n.lcase, n.long.is_some()),
            ("README  TXT".into(), 0, true)
        );
        assert_eq!(short(&one("longfilename.txt")), "LONGFI~1TXT");
        assert_eq!(short(&one("a+b.c")), "A_B~1   C  ");
        assert_eq!(short(&one(".bashrc")), "BASHRC~1   ");
        assert_eq!(short(&one("archive.tar.gz")), "ARCHIV~1GZ ");
        assert_eq!(short(&one("x.jpeg")), "X~1     JPE");
        assert_eq!(short(&one("EFI")), "EFI        ");
        assert_eq!(short(&one("grub.cfg")).as_str(), "GRUB    CFG");
        assert_eq!(short(&one("héllo")), "H_LLO~1    ");
        assert_eq!(short(&one("1234")), "1234       ");
    }

    #[test]
    fn tails_count_up_and_step_around_short_names() {
        let names: Vec<String> = (0..12).map(|i| format!("longname{i:02}.txt")).collect();
        let mut refs: Vec<&[u8]> = names.iter().map(|s| s.as_bytes()).collect();
        refs.push(b"LONGNA~2.TXT");
        let got = assign(&refs, b"").unwrap();
        let shorts: Vec<String> = got.iter().map(short).collect();
        assert_eq!(shorts[0], "LONGNA~1TXT");
        assert_eq!(shorts[1], "LONGNA~3TXT");
        assert_eq!(shorts[7], "LONGNA~9TXT");
        assert_eq!(shorts[8], "LONGN~10TXT");
        assert_eq!(shorts[12], "LONGNA~2TXT");
    }

    #[test]
    fn names_fat_cannot_hold() {
        for bad in ["a:b", "x?", "trail.", "trail ", "a\u{1}b", "A"] {
            let names: Vec<&[u8]> = if bad == "A" {
                vec![b"a", b"A"]
            } else {
                vec![bad.as_bytes()]
            };
            assert!(assign(&names, b"/d").is_err(), "{bad}");
        }
        assert!(assign(&[&[0xff]], b"").is_err());
    }

    #[test]
    fn checksum_is_the_rotating_sum() {
        let mut s = 0u8;
        for &c in b"FILENA~1TXT" {
            s = ((s & 1) << 7 | s >> 1).wrapping_add(c);
        }
        assert_eq!(checksum(b"FILENA~1TXT"), s);
    }

    #[test]
    fn display_applies_case_bits() {
        assert_eq!(short_display(b"README  TXT", 0x18), b"readme.txt");
        assert_eq!(short_display(b"README  TXT", 0x08), b"readme.TXT");
        assert_eq!(short_display(b"EFI        ", 0), b"EFI");
    }
}
