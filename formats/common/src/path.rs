//! Path normalisation and display for byte paths.

use std::fmt::Write as _;

/// Why a path cannot be placed in a rootfs tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A `..` component, which could climb above the root.
    #[error("`..` component would escape the root")]
    DotDot,
    /// A NUL byte, which no filesystem stores in a name.
    #[error("NUL byte in name")]
    Nul,
}

/// Splits an archive path into its components: a leading `/` or `./` is
/// dropped, `//` and `.` components collapse, and `..` is refused (a rootfs
/// builder must never be talked into writing outside its tree). The empty
/// component list is the root.
pub fn normalize_path(path: &[u8]) -> Result<Vec<&[u8]>, PathError> {
    let mut parts = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(PathError::DotDot),
            p if p.contains(&0) => return Err(PathError::Nul),
            p => parts.push(p),
        }
    }
    Ok(parts)
}

/// A printable form of a byte path for messages: UTF-8 is kept, other bytes
/// and control characters are written as `\xNN`.
pub fn display_path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len().saturating_add(1));
    if !path.starts_with(b"/") {
        out.push('/');
    }
    escape_into(&mut out, path);
    out
}

/// Bytes as printable text: UTF-8 is kept, other bytes, control characters
/// and backslashes are written as `\xNN`, so the text is unambiguous.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_into(&mut out, bytes);
    out
}

/// Text longer than this is shortened by [`elide`].
const ELIDE_OVER: usize = 256;
/// How much of each end [`elide`] keeps.
const ELIDE_KEEP: usize = 100;

/// A long name for an error message: its first and last 100 bytes around
/// an ellipsis, with its length, so a megabyte-long path from a hostile
/// archive gives a readable line. Shorter text is unchanged.
pub fn elide(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= ELIDE_OVER {
        return text.into();
    }
    let mut head = ELIDE_KEEP;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - ELIDE_KEEP;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}…{} ({} bytes)", &text[..head], &text[tail..], text.len()).into()
}

fn escape_into(out: &mut String, path: &[u8]) {
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(
            normalize_path(b"./a//b/./c/").unwrap(),
            vec![&b"a"[..], b"b", b"c"]
        );
        assert_eq!(normalize_path(b"/").unwrap(), Vec::<&[u8]>::new());
        assert_eq!(normalize_path(b"a/../b"), Err(PathError::DotDot));
        assert_eq!(normalize_path(b"a\0b"), Err(PathError::Nul));
    }

    #[test]
    fn elides_long_text_only() {
        assert_eq!(elide("short"), "short");
        let long = format!("/{}é{}", "a".repeat(99), "b".repeat(400));
        let e = elide(&long);
        assert!(e.starts_with(&format!("/{}…", "a".repeat(99))), "{e}");
        assert!(
            e.ends_with(&format!("{} (502 bytes)", "b".repeat(100))),
            "{e}"
        );
    }

    #[test]
    fn displays_bytes() {
        assert_eq!(display_path(b"a/\xffb\n"), "/a/\\xffb\\x0a");
        assert_eq!(display_path("/é".as_bytes()), "/é");
    }
}
