//! An arbitrary base tree and a sequence of overlay operations (path edits,
//! and the per-image tweaks: merging an overlay directory's tree, the cpio
//! /init, emptying /run and /tmp). The overlay must end exactly like the
//! same operations done directly on a copy of the base tree (the model),
//! the base must be unchanged, and the overlay's view must be consistent:
//! names sorted and unique, every path looking up its inode, link counts
//! right.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rootforge::fuzzing::ArbitraryTree;
use rootforge::overlay::{CPIO_INIT_SCRIPT, add_cpio_init, empty_volatile_dirs, merge_tree};
use rootforge_common::{
    Content, Edit, FileData, Inode, InodeId, Kind, Meta, Overlay, Replace, Time, Tree, TreeBuilder,
    View,
};

#[path = "common/state.rs"]
mod common;

#[derive(Debug, Arbitrary)]
enum Node {
    File(Vec<u8>),
    Dir,
    Symlink(u8),
    Char(u8, u8),
    Fifo,
}

#[derive(Debug, Arbitrary)]
enum Op {
    Insert {
        path: Vec<u8>,
        node: Node,
        perm: u16,
        always: bool,
    },
    HardLink {
        path: Vec<u8>,
        target: Vec<u8>,
    },
    Remove(Vec<u8>),
    Modify {
        path: Vec<u8>,
        perm: u16,
        xattr: Option<Vec<u8>>,
    },
    Merge(ArbitraryTree),
    CpioInit(i64),
    EmptyVolatile,
}

#[derive(Debug, Arbitrary)]
struct Case {
    base: ArbitraryTree,
    ops: Vec<Op>,
}

/// Components from names the tweaks touch and the names ArbitraryTree
/// uses, with `.`, empty components and `..` (refused) mixed in.
fn path(raw: &[u8]) -> Vec<u8> {
    const NAMES: [&[u8]; 10] = [
        b"a", b"b", b"c", b"run", b"tmp", b"dev", b"init", b"console", b".", b"..",
    ];
    let mut p = Vec::new();
    for (i, b) in raw.iter().take(6).enumerate() {
        if i > 0 || b & 0x80 != 0 {
            p.push(b'/');
        }
        p.extend_from_slice(NAMES[usize::from(b & 0x7f) % NAMES.len()]);
    }
    p
}

fn node(n: &Node, perm: u16) -> Inode {
    let content = match n {
        Node::File(d) => Content::File(FileData::bytes(d.clone())),
        Node::Dir => Content::Dir(Default::default()),
        Node::Symlink(t) => Content::Symlink(path(&[*t, 1]).into_boxed_slice()),
        Node::Char(major, minor) => Content::CharDev {
            major: u32::from(*major),
            minor: u32::from(*minor),
        },
        Node::Fifo => Content::Fifo,
    };
    Inode::new(Meta::new(perm, 1, 2, Time::from_secs(3)), content)
}

/// Runs a path edit on either tree; the outcome, errors as text.
fn edit<E: Edit>(t: &mut E, op: &Op) -> Result<Option<InodeId>, String> {
    let r = match op {
        Op::Insert {
            path: p,
            node: n,
            perm,
            always,
        } => {
            let replace = if *always {
                Replace::Always
            } else {
                Replace::IfAbsent
            };
            t.insert(&path(p), node(n, *perm), replace).map(Some)
        }
        Op::HardLink { path: p, target } => t.hard_link(&path(p), &path(target)).map(Some),
        Op::Remove(p) => t.remove(&path(p)).map(|_| None),
        Op::Modify {
            path: p,
            perm,
            xattr,
        } => t
            .modify(&path(p), &mut |i| {
                i.meta.perm = *perm;
                match xattr {
                    Some(v) => i.set_xattr(b"user.fuzz", v),
                    None => {
                        i.remove_xattr(b"user.fuzz");
                    }
                }
            })
            .map(Some),
        Op::Merge(_) | Op::CpioInit(_) | Op::EmptyVolatile => return Ok(None),
    };
    r.map_err(|e| e.to_string())
}

/// The model of `merge_tree`, from its documentation: every entry of
/// `extra` but its root, in path order, replaces the entry at its path,
/// except that directories merge (keeping their children); later names of a
/// hard-link group link to the first.
fn merge_model(b: &mut TreeBuilder, extra: &Tree) -> Result<(), String> {
    let view = extra.view();
    let mut first: HashMap<InodeId, Box<[u8]>> = HashMap::new();
    for e in view.sorted_entries().into_iter().skip(1) {
        let inode = view.inode(e.ino);
        let r = if inode.kind() == Kind::Dir {
            b.insert(&e.path, Inode::dir(inode.meta), Replace::Always)
                .map(|id| {
                    b.inode_mut(id).xattrs = inode.xattrs.clone();
                })
        } else if let Some(f) = first.get(&e.ino) {
            b.hard_link(&e.path, f).map(drop)
        } else {
            first.insert(e.ino, e.path.clone());
            b.insert(&e.path, inode.clone(), Replace::Always).map(drop)
        };
        r.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The model of `add_cpio_init`: /init and /dev/console unless present.
fn cpio_init_model(b: &mut TreeBuilder, mtime: Time) -> Result<(), String> {
    let m = |perm| Meta::new(perm, 0, 0, mtime);
    let init = Content::File(FileData::bytes(CPIO_INIT_SCRIPT));
    b.insert(b"init", Inode::new(m(0o755), init), Replace::IfAbsent)
        .and_then(|_| {
            let console = Content::CharDev { major: 5, minor: 1 };
            b.insert(
                b"dev/console",
                Inode::new(m(0o622), console),
                Replace::IfAbsent,
            )
        })
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The model of `empty_volatile_dirs`: /run and /tmp lose their entries.
fn empty_model(b: &mut TreeBuilder) -> Result<(), String> {
    for dir in ["run", "tmp"] {
        let Some(id) = b.lookup(dir.as_bytes()) else {
            continue;
        };
        let names: Vec<Box<[u8]>> = b
            .inode(id)
            .children()
            .into_iter()
            .flat_map(|c| c.keys().cloned())
            .collect();
        for name in names {
            let p = [dir.as_bytes(), b"/", &name].concat();
            b.remove(&p).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Names sorted and unique, each looking up its inode, and link counts as
/// counted here: names of a non-directory, 2 plus subdirectories for a
/// directory.
fn check_consistent(view: &View<'_>) {
    let entries = view.sorted_entries();
    assert!(entries.windows(2).all(|w| w[0].path < w[1].path));
    let mut names: HashMap<InodeId, u32> = HashMap::new();
    let mut subdirs: HashMap<&[u8], u32> = HashMap::new();
    let mut dirs: HashSet<InodeId> = HashSet::new();
    for e in &entries {
        assert_eq!(view.lookup(&e.path), Some(e.ino), "{:?}", e.path);
        if view.inode(e.ino).kind() == Kind::Dir {
            // A directory has one name: no directory is hard-linked.
            assert!(dirs.insert(e.ino), "directory {:?} twice", e.path);
            if let Some(slash) = e.path.iter().rposition(|&b| b == b'/') {
                *subdirs.entry(&e.path[..slash]).or_default() += 1;
            } else if !e.path.is_empty() {
                *subdirs.entry(b"").or_default() += 1;
            }
        } else {
            *names.entry(e.ino).or_default() += 1;
        }
    }
    for e in &entries {
        let want = match view.inode(e.ino).kind() {
            Kind::Dir => 2 + subdirs.get(&*e.path).copied().unwrap_or(0),
            _ => names[&e.ino],
        };
        assert_eq!(e.nlink, want, "{:?}", e.path);
    }
}

fuzz_target!(|case: Case| {
    let implicit = Meta::new(0o700, 7, 7, Time::from_secs(9));
    let base = Arc::new(case.base.0);
    let before = common::state(&base.view());
    let mut model = Tree::clone(&base).into_builder(implicit);
    let mut o = Overlay::new(base.clone(), implicit);
    for op in &case.ops {
        let (got, want) = match op {
            Op::Merge(extra) => (
                merge_tree(&mut o, &extra.0).map_err(|e| e.to_string()),
                merge_model(&mut model, &extra.0),
            ),
            Op::CpioInit(sec) => {
                let mtime = Time::from_secs(*sec);
                (
                    add_cpio_init(&mut o, mtime).map_err(|e| e.to_string()),
                    cpio_init_model(&mut model, mtime),
                )
            }
            Op::EmptyVolatile => (
                empty_volatile_dirs(&mut o).map_err(|e| e.to_string()),
                empty_model(&mut model),
            ),
            _ => {
                assert_eq!(edit(&mut o, op), edit(&mut model, op), "{op:?}");
                continue;
            }
        };
        assert_eq!(got, want, "{op:?}");
    }
    let model = model.finish();
    assert_eq!(common::state(&o.view()), common::state(&model.view()));
    check_consistent(&o.view());
    assert_eq!(common::state(&base.view()), before, "the base changed");
});
