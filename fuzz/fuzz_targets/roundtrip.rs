//! An arbitrary tree → cpio and tar writers → our readers → the same
//! listing as the tree (for what each format holds).
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rootforge_common::{
    listing, Content, Edit, Encoder, FileData, Inode, Meta, Plain, Replace, Time, TreeBuilder,
};

#[derive(Debug, Arbitrary)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
    HardLink(u8),
}

#[derive(Debug, Arbitrary)]
struct Op {
    /// Path components from a small alphabet, so paths collide and nest.
    path: Vec<u8>,
    kind: Kind,
    perm: u16,
    uid: u32,
    gid: u32,
    mtime: u32,
}

fn path(raw: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    for (i, b) in raw.iter().take(6).enumerate() {
        if i > 0 {
            p.push(b'/');
        }
        p.push(b"abc-."[usize::from(*b) % 5]);
        if b & 0x80 != 0 {
            p.push(*b);
        }
    }
    p
}

fuzz_target!(|ops: Vec<Op>| {
    let mut b = TreeBuilder::new(Meta::new(0o755, 0, 0, Time::default()));
    let mut files: Vec<Vec<u8>> = Vec::new();
    for op in &ops {
        let p = path(&op.path);
        if p.is_empty() || p.split(|&c| c == b'/').any(|c| c == b"." || c.is_empty()) {
            continue;
        }
        let meta = Meta::new(op.perm, op.uid, op.gid, Time::from_secs(i64::from(op.mtime)));
        let content = match &op.kind {
            Kind::File(d) => Content::File(FileData::bytes(d.clone())),
            Kind::Dir => Content::Dir(Default::default()),
            Kind::Symlink(t) if !t.is_empty() && !t.contains(&0) => Content::Symlink(t.clone().into()),
            Kind::Symlink(_) => continue,
            Kind::Char(a, m) => Content::CharDev { major: *a, minor: *m },
            Kind::Block(a, m) => Content::BlockDev { major: *a, minor: *m },
            Kind::Fifo => Content::Fifo,
            Kind::HardLink(i) => {
                if let Some(t) = files.get(usize::from(*i) % files.len().max(1)) {
                    let _ = b.hard_link(&p, t);
                }
                continue;
            }
        };
        let is_file = matches!(content, Content::File(_));
        if b.insert(&p, Inode::new(meta, content), Replace::Always).is_ok() && is_file {
            files.push(p);
        }
    }
    let tree = b.finish();
    let want = listing::of_view(&tree.view()).expect("in-memory data");

    let mut cpio = Plain(Vec::new());
    rootforge_cpio::CpioEncoder::default().write(&tree.view(), &mut cpio).expect("cpio holds any such tree");
    let back = rootforge_cpio::read(Arc::new(cpio.0)).expect("our cpio reads back");
    assert_eq!(listing::of_view(&back.view()).expect("cpio data"), want);

    let mut tar = Plain(Vec::new());
    rootforge_tar::TarEncoder.write(&tree.view(), &mut tar).expect("tar holds any such tree");
    let opts = rootforge_tar::ReadOptions {
        implicit_dir: Meta::new(0o755, 0, 0, Time::default()),
        clamp_mtime: None,
    };
    let back = rootforge_tar::read(Arc::new(tar.0), &opts).expect("our tar reads back");
    assert_eq!(listing::of_view(&back.tree.view()).expect("tar data"), want);
});
