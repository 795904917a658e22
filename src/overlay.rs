//! Per-image overlays: Buildroot's built-in tweaks and user overlays read
//! from directories. Each is applied to its own [`Overlay`] over the shared
//! base tree, so no image sees another's changes.

use std::path::Path;

use rootforge_common::{
    Content, Edit, FileData, Inode, Meta, Overlay, Replace, Result, Time, Tree,
};

/// Buildroot's `fs/cpio/init`: devtmpfs is not mounted automatically for an
/// initramfs, and glibc's `ttyname_r()` wants the console from devtmpfs.
pub const CPIO_INIT_SCRIPT: &[u8] = b"#!/bin/sh
# devtmpfs does not get automounted for initramfs
/bin/mount -t devtmpfs devtmpfs /dev
# use the /dev/console device node from devtmpfs if possible to not
# confuse glibc's ttyname_r().
# This may fail (E.G. booted with console=), and errors from exec will
# terminate the shell, so use a subshell for the test
if (exec 0</dev/console) 2>/dev/null; then
    exec 0</dev/console
    exec 1>/dev/console
    exec 2>/dev/console
fi
exec /sbin/init \"$@\"
";

/// The cpio tweak: `/init` unless the rootfs has one, and `/dev/console`
/// (char 5:1, 0622, root) unless it exists, which the kernel needs before
/// `/init` runs.
pub fn add_cpio_init(o: &mut Overlay, mtime: Time) -> Result<()> {
    let root = |perm| Meta::new(perm, 0, 0, mtime);
    let init = Inode::new(
        root(0o755),
        Content::File(FileData::bytes(CPIO_INIT_SCRIPT)),
    );
    o.insert(b"init", init, Replace::IfAbsent)?;
    let console = Inode::new(root(0o622), Content::CharDev { major: 5, minor: 1 });
    o.insert(b"dev/console", console, Replace::IfAbsent)?;
    Ok(())
}

/// Copies every entry of `extra` (a tree read from an overlay directory)
/// over the overlay: directories merge, everything else replaces.
pub fn merge_tree(o: &mut Overlay, extra: &Tree) -> Result<()> {
    let view = extra.view();
    let mut first_name: std::collections::HashMap<_, Box<[u8]>> = std::collections::HashMap::new();
    // The overlay directory's own root would overwrite the image root's
    // metadata; rsync-style overlays merge into it instead.
    for e in view
        .sorted_entries()
        .into_iter()
        .filter(|e| !e.path.is_empty())
    {
        let inode = view.inode(e.ino);
        if inode.kind() != rootforge_common::Kind::Dir {
            if let Some(first) = first_name.get(&e.ino) {
                o.hard_link(&e.path, first)?;
                continue;
            }
            first_name.insert(e.ino, e.path.clone());
        }
        let mut copy = inode.clone();
        if let Content::Dir(children) = &mut copy.content {
            children.clear();
        }
        o.insert(&e.path, copy, Replace::Always)?;
    }
    Ok(())
}

/// Reads an overlay directory; its files are owned by root, as Buildroot's
/// overlays end up after `chown -R 0:0`.
pub fn read_overlay_dir(dir: &Path, source_date_epoch: Option<i64>) -> anyhow::Result<Tree> {
    let opts = crate::input::Options {
        source_date_epoch,
        all_root: true,
        ..Default::default()
    };
    Ok(crate::input::read_dir(dir, &opts)?.tree)
}

/// Empties `/run` and `/tmp` but keeps the directories (Buildroot does this
/// for every image).
pub fn empty_volatile_dirs(o: &mut Overlay) -> Result<()> {
    for dir in [&b"run"[..], b"tmp"] {
        let Some(id) = o.lookup(dir) else { continue };
        let names: Vec<Box<[u8]>> = o.view().children(id).map(|(n, _)| n.into()).collect();
        for name in names {
            let mut p = dir.to_vec();
            p.push(b'/');
            p.extend_from_slice(&name);
            o.remove(&p)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rootforge_common::TreeBuilder;

    use super::*;

    #[test]
    fn cpio_init_is_added_only_when_absent() {
        let m = Meta::new(0o755, 0, 0, Time::default());
        let mut b = TreeBuilder::new(m);
        b.insert(
            b"dev/console",
            Inode::new(
                Meta::new(0o600, 0, 5, Time::default()),
                Content::CharDev { major: 5, minor: 1 },
            ),
            Replace::Always,
        )
        .unwrap();
        let base = Arc::new(b.finish());
        let mut o = Overlay::new(base.clone(), m);
        add_cpio_init(&mut o, Time::from_secs(7)).unwrap();
        let v = o.view();
        let init = v.inode(v.lookup(b"init").unwrap());
        assert_eq!((init.meta.perm, init.meta.mtime.sec), (0o755, 7));
        assert_eq!(
            v.inode(v.lookup(b"dev/console").unwrap()).meta.perm,
            0o600,
            "existing console kept"
        );
        assert!(base.view().lookup(b"init").is_none(), "base untouched");
    }
}
