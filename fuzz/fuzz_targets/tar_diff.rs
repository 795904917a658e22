//! Differential: our tar reader against the `tar` crate. Where both read
//! an archive, every member the `tar` crate lists must be in our tree with
//! the same type, contents, link target, mode, owner and mtime.
//!
//! The readers disagree by design on some archives; these are left out,
//! each for the reason given where it is skipped:
//! - the `tar` crate counts the size field of every type as data, where
//!   GNU tar, bsdtar, Go and we count none for links, devices, directories
//!   and fifos (issue 17): archives with such a size are skipped;
//! - it knows no pax sparse format (the packed data is its file) and reads
//!   no `GNU.sparse.name`: archives with `GNU.sparse.*` records are skipped;
//! - it parses pax records by newline, so a value holding one is read
//!   differently: such archives are skipped;
//! - it applies no global (`g`) headers, no pax `mtime`, `uid`, `gid` to the
//!   header fields it returns: those fields are compared only when no
//!   record set them;
//! - it lists every member, while our tree is the result of extracting
//!   them (later members replace earlier ones, a file replaces a directory
//!   and what was under it, hard links share their target's inode): only
//!   archives whose member paths are unique and whose parents are
//!   directories are compared, and hard links are compared by contents;
//! - it lists extended headers, volume labels and Solaris ACL members as
//!   entries of their own, and reads device numbers in octal only.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rootforge_common::{Content, View};

/// One member as the `tar` crate reads it.
struct Theirs {
    typeflag: u8,
    data: Vec<u8>,
    link: Option<Vec<u8>>,
    mode: Option<u32>,
    owner: Option<(u64, u64)>,
    mtime: Option<u64>,
    dev: Option<(u32, u32)>,
}

/// The path our tree gives a member name, or `None` for one it refuses or
/// the root.
fn normalize(name: &[u8]) -> Option<Vec<u8>> {
    let parts = rootforge_common::normalize_path(name).ok()?;
    (!parts.is_empty()).then(|| parts.join(&b'/'))
}

/// The members, or `None` if the `tar` crate fails or the archive is one
/// the readers read differently by design.
fn theirs(data: &[u8]) -> Option<BTreeMap<Vec<u8>, Theirs>> {
    let mut archive = tar::Archive::new(data);
    let mut out = BTreeMap::new();
    for entry in archive.entries().ok()? {
        let mut e = entry.ok()?;
        let h = e.header().clone();
        let typeflag = h.as_bytes()[156];
        let mut pax = Vec::new();
        if let Ok(Some(exts)) = e.pax_extensions() {
            for ext in exts {
                let ext = ext.ok()?;
                pax.push((ext.key_bytes().to_vec(), ext.value_bytes().to_vec()));
            }
        }
        // Record values with newlines and sparse records: see above.
        if pax
            .iter()
            .any(|(k, v)| v.contains(&b'\n') || k.starts_with(b"GNU.sparse."))
        {
            return None;
        }
        // Extended headers the `tar` crate does not apply (global, Solaris),
        // labels, ACLs and multi-volume continuations (which we refuse).
        if matches!(
            typeflag,
            b'x' | b'g' | b'X' | b'A' | b'V' | b'L' | b'K' | b'M'
        ) {
            return None;
        }
        let header_only = matches!(typeflag, b'1'..=b'6');
        let size = h.entry_size().ok()?;
        if header_only && size != 0 {
            return None;
        }
        let path = e.path_bytes().into_owned();
        // A regular-type name ending in a slash is a directory to GNU tar,
        // bsdtar and us, a file to the `tar` crate.
        if matches!(typeflag, b'0' | b'\0' | b'7') && path.ends_with(b"/") {
            return None;
        }
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let set = |k: &[u8]| pax.iter().any(|(key, _)| key == k);
        let owner = (!set(b"uid") && !set(b"gid"))
            .then(|| Some((h.uid().ok()?, h.gid().ok()?)))
            .flatten();
        let mtime = (!set(b"mtime")).then(|| h.mtime().ok()).flatten();
        // Octal only in the `tar` crate.
        let dev = match (h.device_major(), h.device_minor()) {
            (Ok(Some(a)), Ok(Some(b))) => Some((a, b)),
            _ => None,
        };
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).ok()?;
        let key = normalize(&path)?;
        if out.contains_key(&key) {
            return None; // replacement: see above
        }
        out.insert(
            key,
            Theirs {
                typeflag,
                data: bytes,
                link,
                mode: h.mode().ok(),
                owner,
                mtime,
                dev,
            },
        );
    }
    // Every parent must be a directory member or implied.
    for path in out.keys() {
        let mut at = 0;
        while let Some(i) = path[at..].iter().position(|&b| b == b'/') {
            let parent = &path[..at + i];
            if out
                .get(parent)
                .is_some_and(|t| !matches!(t.typeflag, b'5' | b'D'))
            {
                return None;
            }
            at += i + 1;
        }
    }
    Some(out)
}

fn file_bytes(view: &View<'_>, path: &[u8]) -> Vec<u8> {
    let id = view.lookup(path).expect("in our tree");
    match &view.inode(id).content {
        Content::File(d) => d.to_vec().expect("readable"),
        other => panic!(
            "{}: not a file in our tree: {other:?}",
            String::from_utf8_lossy(path)
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let opts = rootforge_tar::ReadOptions::default();
    let Ok(ours) = rootforge_tar::read(Arc::new(data.to_vec()), &opts) else {
        return;
    };
    let Some(theirs) = theirs(data) else {
        return;
    };
    let view = ours.tree.view();
    let mut seen = BTreeSet::new();
    for (path, t) in &theirs {
        let shown = String::from_utf8_lossy(path);
        let id = view
            .lookup(path)
            .unwrap_or_else(|| panic!("{shown}: listed by the tar crate, not in our tree"));
        let inode = view.inode(id);
        seen.insert(path.clone());
        if t.typeflag == b'1' {
            // Hard links share their target's inode and contents.
            let target = t.link.as_deref().and_then(normalize).expect("link target");
            if let Content::File(_) = &inode.content {
                assert_eq!(
                    file_bytes(&view, path),
                    file_bytes(&view, &target),
                    "{shown}"
                );
            }
            continue;
        }
        match (&inode.content, t.typeflag) {
            // Regular, contiguous, old GNU sparse, and unknown types (a
            // regular file for both).
            (Content::File(_), b'0' | b'\0' | b'7' | b'S')
            | (Content::File(_), b'8'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b' ' | 0x80..=0xff) => {
                assert!(
                    file_bytes(&view, path) == t.data,
                    "{shown}: contents differ"
                );
            }
            // A GNU dump directory's data is its listing.
            (Content::Dir(_), b'5' | b'D') => {}
            (Content::Symlink(target), b'2') => {
                assert_eq!(Some(&target[..]), t.link.as_deref(), "{shown}: target");
            }
            (Content::CharDev { major, minor }, b'3')
            | (Content::BlockDev { major, minor }, b'4') => {
                if let Some(dev) = t.dev {
                    assert_eq!((*major, *minor), dev, "{shown}: device");
                }
            }
            (Content::Fifo, b'6') => {}
            (ours, flag) => panic!("{shown}: we read {ours:?}, the tar crate type {flag:?}"),
        }
        if let Some(mode) = t.mode {
            assert_eq!(u32::from(inode.meta.perm), mode & 0o7777, "{shown}: mode");
        }
        if let Some((uid, gid)) = t.owner {
            assert_eq!(
                (u64::from(inode.meta.uid), u64::from(inode.meta.gid)),
                (uid, gid),
                "{shown}: owner"
            );
        }
        if let Some(mtime) = t.mtime {
            assert_eq!(
                inode.meta.mtime.sec,
                i64::try_from(mtime).unwrap(),
                "{shown}: mtime"
            );
        }
    }
    // Our tree has nothing else but the directories the names imply.
    for entry in view.sorted_entries() {
        if entry.path.is_empty() || seen.contains(&entry.path[..]) {
            continue;
        }
        let implied = theirs
            .keys()
            .any(|p| p.starts_with(&entry.path) && p.get(entry.path.len()) == Some(&b'/'));
        assert!(
            implied,
            "{}: only in our tree",
            String::from_utf8_lossy(&entry.path)
        );
    }
});
