//! ubinize's configuration: an INI file (iniparser's rules: section and key
//! names case-insensitive, `;` and `#` comments, values trimmed and
//! unquoted), one section per volume.

use rootforge_common::FileData;

use crate::write::{Volume, VolumeType};

/// A configuration ubinize would refuse, with its line or section.
#[derive(Debug, thiserror::Error)]
pub enum IniError {
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    #[error("section [{section}]: {reason}")]
    Section { section: String, reason: String },
}

/// `ubiutils_get_bytes`: a number (decimal, `0x` hex or `0` octal) with an
/// optional `KiB`, `MiB` or `GiB`.
fn get_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    for (unit, mult) in [("KiB", 1u64 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)] {
        if let Some(n) = s.strip_suffix(unit) {
            return parse_int(n.trim()).and_then(|n| n.checked_mul(mult));
        }
    }
    parse_int(s)
}

/// `strtol(s, NULL, 0)` for a whole field.
fn parse_int(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// Parses ubinize's INI configuration into volumes, in section order;
/// `image` turns each `image=` value into the volume's contents (ubinize
/// reads a relative path from the configuration file's directory).
///
/// # Errors
///
/// What ubinize refuses: a line that is not a section, key or comment, a
/// section without `mode`, or a `ubi` section without `vol_id` or
/// `vol_name`, with a bad value, or with an image `image` cannot open.
pub fn parse_ini(
    text: &str,
    image: &mut dyn FnMut(&str) -> Result<FileData, String>,
) -> Result<Vec<Volume>, IniError> {
    let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .split_once(']')
                .map(|(n, _)| n.trim().to_ascii_lowercase())
                .ok_or_else(|| IniError::Syntax {
                    line: i + 1,
                    reason: "a section without its `]`".into(),
                })?;
            sections.push((name, Vec::new()));
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| IniError::Syntax {
            line: i + 1,
            reason: format!("`{line}` is not `key=value`"),
        })?;
        // A value's comment starts at a `;` or `#` after it.
        let v = v.split([';', '#']).next().unwrap_or_default();
        let (_, keys) = sections.last_mut().ok_or_else(|| IniError::Syntax {
            line: i + 1,
            reason: "a key before any section".into(),
        })?;
        let k = k.trim().to_ascii_lowercase();
        let v = unquote(v).to_owned();
        match keys.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => keys.push((k, v)),
        }
    }
    let mut out = Vec::new();
    for (section, keys) in sections {
        let get = |k: &str| {
            keys.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let err = |reason: String| IniError::Section {
            section: section.clone(),
            reason,
        };
        match get("mode") {
            None => return Err(err("no `mode` key (`mode=ubi` for a UBI volume)".into())),
            Some("ubi") => {}
            Some(_) => continue,
        }
        let vtype = match get("vol_type") {
            None | Some("dynamic") => VolumeType::Dynamic,
            Some("static") => VolumeType::Static,
            Some(t) => return Err(err(format!("unknown vol_type `{t}`"))),
        };
        let img = get("image").map(|p| image(p).map_err(&err)).transpose()?;
        let id = get("vol_id")
            .ok_or_else(|| err("no `vol_id` key".into()))
            .and_then(|v| {
                parse_int(v)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| err(format!("bad vol_id `{v}`")))
            })?;
        let size = get("vol_size")
            .map(|v| {
                get_bytes(v)
                    .filter(|&n| n > 0)
                    .ok_or_else(|| err(format!("bad vol_size `{v}`")))
            })
            .transpose()?;
        let name = get("vol_name").ok_or_else(|| err("no `vol_name` key".into()))?;
        let alignment = match get("vol_alignment") {
            None => 1,
            Some(v) => parse_int(v)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| err(format!("bad vol_alignment `{v}`")))?,
        };
        let (mut autoresize, mut skip_check) = (false, false);
        if let Some(flags) = get("vol_flags") {
            for f in flags.split(',').map(str::trim) {
                match f {
                    "autoresize" => autoresize = true,
                    "skip-check" => skip_check = true,
                    _ => return Err(err(format!("unknown vol_flags `{f}`"))),
                }
            }
        }
        out.push(Volume {
            section: section.clone(),
            name: name.as_bytes().to_vec(),
            id,
            vtype,
            size,
            alignment,
            autoresize,
            skip_check,
            image: img,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::get_bytes;

    #[test]
    fn sizes_as_ubinize_reads_them() {
        assert_eq!(get_bytes("100"), Some(100));
        assert_eq!(get_bytes("0x20"), Some(32));
        assert_eq!(get_bytes("16MiB"), Some(16 << 20));
        assert_eq!(get_bytes("4 KiB"), Some(4096));
        assert_eq!(get_bytes("0x10KiB"), Some(16 << 10));
        assert_eq!(get_bytes("16MB"), None);
    }
}
