//! Deterministic synthetic root filesystems shared by the criterion benches.
//!
//! Two shapes, each built from a fixed seed, written as a tarball by our tar
//! encoder and read back by our ingest, so the encoders see file data the way
//! `rootforge build` gives it to them (ranges of the input buffer):
//!
//! - `small-files`: 20,000 regular files of 1–3 KiB (2 KiB on average) in
//!   400 directories two levels deep (`usr/lib/mNN/dNN/fNNNNN`), every 50th
//!   file 0755, a relative symlink beside every 50th file.
//! - `large-files`: 8 files of 8 MiB in `opt/big`, the first with a 4 MiB
//!   run of zeros in the middle (tar writes it as data; squashfs and ext
//!   find the zero blocks themselves).
//!
//! Both also get the same special files: 16 hard links to regular files,
//! absolute symlinks, character and block devices, a fifo, and empty `run`
//! and `tmp` directories, so every encoder takes all its paths.
//!
//! File contents mix lines of words drawn from a list of 64 with runs of
//! 16–63 pseudo-random bytes (17 lines to 3 runs), so gzip -6 gets a
//! realistic ratio (3.3 on small-files, 2.8 on large-files) instead of
//! nothing (noise alone) or everything (zeros alone). Such text is slow work for the high zstd and xz levels, slower
//! than a real rootfs (see the peers tables for those).

use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use rootforge::common::{
    Backing, Buffer, Content, Edit, Encoder, FileData, Inode, Meta, Replace, Time, Tree,
    TreeBuilder,
};

const MTIME: Time = Time::from_secs(1_700_000_000);

/// A synthetic tree, its tarball, and the tree read back from that tarball.
pub struct Shape {
    pub name: &'static str,
    /// The tarball: the ingest benches' input, and the byte count every
    /// bench reports its throughput against.
    pub tar: Backing,
    pub tree: Arc<Tree>,
}

impl Shape {
    /// Input bytes, for `Throughput::Bytes`.
    pub fn bytes(&self) -> u64 {
        self.tar.len()
    }
}

/// Both shapes, built once per bench binary (a second or two).
pub fn shapes() -> Vec<Shape> {
    vec![
        shape("small-files", small_files()),
        shape("large-files", large_files()),
    ]
}

/// Few samples and short timings: the slowest benches (xz on 64 MiB) take
/// seconds an iteration, and the suite has to fit in minutes on 2 cores.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// Options for reading a tarball, as `rootforge build` uses by default.
pub fn read_options() -> rootforge::tar::ReadOptions {
    rootforge::tar::ReadOptions {
        implicit_dir: Meta::new(0o755, 0, 0, Time::default()),
        clamp_mtime: None,
        ..Default::default()
    }
}

fn shape(name: &'static str, tree: Tree) -> Shape {
    let mut out = Buffer::default();
    rootforge::tar::TarEncoder::default()
        .write(&tree.view(), &mut out)
        .expect("synthetic tree as tar");
    let tar: Backing = Arc::new(out.0);
    let tree = rootforge::tar::read(tar.clone(), &read_options())
        .expect("synthetic tarball reads back")
        .tree;
    Shape {
        name,
        tar,
        tree: Arc::new(tree),
    }
}

fn small_files() -> Tree {
    let mut b = TreeBuilder::new(meta(0o755));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut data = Vec::new();
    for i in 0..20_000u32 {
        let size = 1024 + rng.below(2048);
        fill(&mut rng, &mut data, size);
        let dir = format!("usr/lib/m{:02}/d{:02}", i / 1000, (i / 50) % 20);
        let perm = if i % 50 == 0 { 0o755 } else { 0o644 };
        insert(&mut b, &format!("{dir}/f{i:05}"), perm, file(&data));
        if i % 50 == 25 {
            let target = Content::Symlink(format!("f{i:05}").into_bytes().into());
            insert(&mut b, &format!("{dir}/l{i:05}"), 0o777, target);
        }
    }
    specials(&mut b, |k| {
        format!("usr/lib/m{:02}/d00/f{:05}", k, k * 1000)
    });
    b.finish()
}

fn large_files() -> Tree {
    const SIZE: usize = 8 << 20;
    let mut b = TreeBuilder::new(meta(0o755));
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut data = Vec::new();
    for i in 0..8 {
        fill(&mut rng, &mut data, SIZE);
        if i == 0 {
            data[SIZE / 4..SIZE / 4 * 3].fill(0);
        }
        insert(&mut b, &format!("opt/big/b{i}"), 0o644, file(&data));
    }
    specials(&mut b, |k| format!("opt/big/b{}", k % 8));
    b.finish()
}

/// Hard links to 16 regular files named by `target`, symlinks, devices, a
/// fifo and the directories every rootfs has.
fn specials(b: &mut TreeBuilder, target: impl Fn(u32) -> String) {
    for k in 0..16 {
        b.hard_link(format!("usr/bin/hl{k:02}").as_bytes(), target(k).as_bytes())
            .expect("hard link");
        let link = Content::Symlink(format!("/{}", target(k)).into_bytes().into());
        insert(b, &format!("usr/sbin/sl{k:02}"), 0o777, link);
    }
    let devices = [
        (
            "dev/console",
            0o600,
            Content::CharDev { major: 5, minor: 1 },
        ),
        ("dev/null", 0o666, Content::CharDev { major: 1, minor: 3 }),
        ("dev/zero", 0o666, Content::CharDev { major: 1, minor: 5 }),
        ("dev/tty1", 0o620, Content::CharDev { major: 4, minor: 1 }),
        ("dev/sda", 0o660, Content::BlockDev { major: 8, minor: 0 }),
        ("dev/sda1", 0o660, Content::BlockDev { major: 8, minor: 1 }),
        (
            "dev/mmcblk0",
            0o660,
            Content::BlockDev {
                major: 179,
                minor: 0,
            },
        ),
        ("dev/initctl", 0o600, Content::Fifo),
    ];
    for (path, perm, content) in devices {
        insert(b, path, perm, content);
    }
    for dir in ["run", "tmp", "proc", "sys"] {
        b.insert(dir.as_bytes(), Inode::dir(meta(0o755)), Replace::Always)
            .expect("directory");
    }
}

fn insert(b: &mut TreeBuilder, path: &str, perm: u16, content: Content) {
    b.insert(
        path.as_bytes(),
        Inode::new(meta(perm), content),
        Replace::Always,
    )
    .expect("synthetic entry");
}

fn meta(perm: u16) -> Meta {
    Meta::new(perm, 0, 0, MTIME)
}

fn file(data: &[u8]) -> Content {
    Content::File(FileData::bytes(data))
}

const WORDS: [&str; 64] = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "on",
    "be",
    "at",
    "by",
    "this",
    "from",
    "or",
    "an",
    "are",
    "not",
    "if",
    "return",
    "static",
    "const",
    "struct",
    "int",
    "char",
    "void",
    "unsigned",
    "long",
    "size_t",
    "error",
    "buffer",
    "length",
    "offset",
    "file",
    "device",
    "kernel",
    "module",
    "config",
    "value",
    "option",
    "default",
    "enable",
    "disable",
    "path",
    "name",
    "user",
    "group",
    "mode",
    "read",
    "write",
    "open",
    "close",
    "data",
    "block",
    "inode",
    "directory",
    "link",
    "mount",
    "system",
    "service",
    "target",
];

/// Replaces `out` with `len` bytes: lines of words with runs of noise.
fn fill(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    out.clear();
    while out.len() < len {
        if rng.below(20) < 17 {
            for _ in 0..4 + rng.below(9) {
                out.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
                out.push(b' ');
            }
            out.push(b'\n');
        } else {
            for _ in 0..16 + rng.below(48) {
                out.push(rng.byte());
            }
        }
    }
    out.truncate(len);
}

/// xorshift64: fast, fixed, and enough for bench data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        // The high bits are the best mixed; n is small, so the bias is nil.
        ((self.next() >> 32) as usize) % n
    }

    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
}
