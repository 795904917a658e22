//! Table and systemd configuration text → parser → applied to a small fixed
//! tree: no panic on any text, and applying the same lines to the base tree
//! (a builder) and to an overlay over it gives the same tree or the same
//! error. Capabilities: text → sets → `security.capability` → the same sets.
//!
//! The first byte picks what the rest is: `d` a device table, `u` a users
//! table, `t` a tmpfiles.d file (after the /var factory), `p` a preset
//! file, `n` a unit file; anything else capability text and raw
//! `security.capability` bytes.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rootforge::tables::{
    self, CapSets, UsersOptions, decode_capability, encode_capability, parse_capabilities,
};
use rootforge_common::{
    Content, Edit, FileData, Inode, Meta, Overlay, Replace, Time, Tree, TreeBuilder,
};

#[path = "common/state.rs"]
mod common;

const MTIME: Time = Time::from_secs(1_000_000);

fn meta(perm: u16) -> Meta {
    Meta::new(perm, 0, 0, Time::from_secs(100))
}

/// A little rootfs with the user databases, /var and /run to work on,
/// symlinks (one a loop), a hard link, a device and a systemd unit.
fn base() -> Tree {
    let mut b = TreeBuilder::new(meta(0o755));
    let mut add = |path: &str, perm: u16, content: Content| {
        let inode = Inode::new(meta(perm), content);
        b.insert(path.as_bytes(), inode, Replace::Always)
            .expect("a valid fixed tree");
    };
    let text = |s: &str| Content::File(FileData::bytes(s.as_bytes().to_vec()));
    let link = |s: &str| Content::Symlink(s.as_bytes().into());
    add(
        "etc/passwd",
        0o644,
        text("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"),
    );
    add(
        "etc/group",
        0o644,
        text("root:x:0:\ndaemon:x:1:\nadm:x:4:\n"),
    );
    add(
        "etc/shadow",
        0o600,
        text("root::19000:0:99999:7:::\ndaemon:*:::::::\n"),
    );
    add("etc/gshadow", 0o600, text("root:::\n"));
    add("bin/sh", 0o755, text("#!fake shell\n"));
    add("sbin", 0o777, link("bin"));
    add("loop/a", 0o777, link("b"));
    add("loop/b", 0o777, link("a"));
    add("dev/null", 0o666, Content::CharDev { major: 1, minor: 3 });
    add("var/log/messages", 0o640, text(""));
    add("var/lib/misc", 0o755, Content::Dir(Default::default()));
    add("var/run", 0o777, link("../run"));
    add("run/lock", 0o755, Content::Dir(Default::default()));
    add("tmp", 0o1777, Content::Dir(Default::default()));
    add(
        "usr/lib/systemd/system/getty@.service",
        0o644,
        text("[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n"),
    );
    add(
        "usr/lib/systemd/system/sshd.service",
        0o644,
        text("[Install]\nWantedBy=multi-user.target\nAlias=ssh.service\n"),
    );
    b.hard_link(b"bin/busybox", b"bin/sh")
        .expect("a valid fixed tree");
    b.finish()
}

/// Runs `$body` on the base tree's builder and on an overlay over the base
/// tree (as `$t`): both must end the same, with the same outcome.
macro_rules! both {
    ($tree:expr, |$t:ident| $body:expr) => {{
        let tree: Arc<Tree> = $tree;
        let mut b = Tree::clone(&tree).into_builder(meta(0o755));
        let by_builder = {
            let $t = &mut b;
            $body
        };
        let mut o = Overlay::new(tree, meta(0o755));
        let by_overlay = {
            let $t = &mut o;
            $body
        };
        assert_eq!(by_builder, by_overlay);
        let built = b.finish();
        assert_eq!(common::state(&built.view()), common::state(&o.view()));
    }};
}

/// `base()` with `text` as the file at each of `paths`.
fn with_file(text: &str, paths: &[&str]) -> Arc<Tree> {
    let mut b = base().into_builder(meta(0o755));
    for p in paths {
        let data = FileData::bytes(text.as_bytes().to_vec());
        b.insert(
            p.as_bytes(),
            Inode::new(meta(0o644), Content::File(data)),
            Replace::Always,
        )
        .expect("a valid fixed tree");
    }
    Arc::new(b.finish())
}

/// Encoding then decoding gives the sets back, or encoding refuses sets a
/// file cannot hold (an effective set that is not all or nothing).
fn check_capability(sets: CapSets, rootid: u32) {
    let any = sets.permitted | sets.inheritable;
    match encode_capability(&sets, rootid) {
        Ok(Some(v)) => assert_eq!(decode_capability(&v), Ok((sets, rootid))),
        Ok(None) => assert_eq!(sets, CapSets::default()),
        Err(_) => assert!(sets.effective != 0 && sets.effective != any),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = std::str::from_utf8(rest).ok();
    let name = Path::new("fuzz.txt");
    match (which, text) {
        (b'd', Some(text)) => {
            if let Ok(lines) = tables::parse_device_table(text, name) {
                both!(Arc::new(base()), |t| {
                    tables::apply_device_table(t, &lines, MTIME).map_err(|e| e.to_string())
                });
            }
        }
        (b'u', Some(text)) => {
            if let Ok(lines) = tables::parse_users_table(text, name) {
                // Salts derived from the date, so both runs hash alike.
                let opts = UsersOptions {
                    source_date_epoch: Some(1),
                    mtime: MTIME,
                };
                both!(Arc::new(base()), |t| {
                    tables::apply_users(t, &lines, &opts).map_err(|e| e.to_string())
                });
            }
        }
        (b't', Some(text)) => {
            let tree = with_file(text, &["usr/lib/tmpfiles.d/fuzz.conf"]);
            both!(tree, |t| match tables::var_factory(t, MTIME) {
                Ok(()) => tables::apply_tmpfiles(t, MTIME).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            });
        }
        (b'p', Some(text)) => {
            let tree = with_file(text, &["usr/lib/systemd/system-preset/50-fuzz.preset"]);
            both!(tree, |t| {
                tables::preset_all(t, MTIME).map_err(|e| e.to_string())
            });
        }
        (b'n', Some(text)) => {
            let tree = with_file(
                text,
                &[
                    "usr/lib/systemd/system/fuzz.service",
                    "etc/systemd/system/fuzz@.socket",
                ],
            );
            both!(tree, |t| {
                tables::preset_all(t, MTIME).map_err(|e| e.to_string())
            });
        }
        (b'd' | b'u' | b't' | b'p' | b'n', None) => {}
        (_, text) => {
            if let Some(Ok(sets)) = text.map(parse_capabilities) {
                check_capability(sets, 0);
                check_capability(sets, u32::from(which));
            }
            if let Ok((sets, rootid)) = decode_capability(rest) {
                // What a value decodes to is always encodable.
                let any = sets.permitted | sets.inheritable;
                assert!(sets.effective == 0 || sets.effective == any);
                check_capability(sets, rootid);
            }
        }
    }
});
