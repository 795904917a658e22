//! vfat images checked three ways: dosfstools (`fsck.fat -n -v` clean, and
//! the geometry `mkfs.fat` chooses for the same size), mtools (`mdir` lists
//! every long name, `mcopy -s` extracts the same files), and the kernel's
//! vfat driver under qemu (FAT12, FAT16 and FAT32 mounted, the listing
//! compared with the input). FAT holds no owners and no modes but
//! read-only, and times at 2 seconds: listings compare path, type, size,
//! content hash and mtime.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use rootforge::common::listing::{self, Line};
use rootforge::common::{
    Buffer, Content, Edit, Encoder, FileData, Inode, Kind, Meta, Replace, Time, Tree, TreeBuilder,
};
use rootforge::fat::{FatEncoder, FatOptions, FatSize, FatType};

use crate::util::{build, inspect, require_tool, rootforge, tiny_corpus};
use crate::vm::{assert_same_listing, vm_listing_disks};

/// 2023-11-14 22:13:20 UTC, an even second.
const T0: i64 = 1_700_000_000;

/// Long and short names, case variants, nested and empty directories, an
/// empty, a zero-filled, a read-only and a multi-cluster file, UTF-8 names.
fn sample() -> Tree {
    let mut b = TreeBuilder::new(Meta::new(0o755, 0, 0, Time::from_secs(T0)));
    let mut n = 0;
    let mut file = |b: &mut TreeBuilder, path: &str, data: Vec<u8>, perm: u16| {
        n += 2;
        let meta = Meta::new(perm, 0, 0, Time::from_secs(T0 + n));
        b.insert(
            path.as_bytes(),
            Inode::new(meta, Content::File(FileData::bytes(data))),
            Replace::Always,
        )
        .unwrap();
    };
    file(&mut b, "README.TXT", b"upper case 8.3\n".to_vec(), 0o644);
    file(&mut b, "readme2.txt", b"lower case 8.3\n".to_vec(), 0o644);
    file(&mut b, "Config.Txt", b"mixed case 8.3\n".to_vec(), 0o644);
    file(
        &mut b,
        "kernel8.img",
        (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect(),
        0o644,
    );
    file(&mut b, "bcm2711-rpi-4-b.dtb", vec![0xd0; 40_000], 0o644);
    file(
        &mut b,
        "a file name with spaces.conf",
        b"spaces\n".to_vec(),
        0o644,
    );
    file(&mut b, "archive.tar.gz", b"dots\n".to_vec(), 0o644);
    file(&mut b, ".hidden", b"dot file\n".to_vec(), 0o644);
    file(&mut b, "read-only.bin", b"ro\n".to_vec(), 0o444);
    file(&mut b, "empty", Vec::new(), 0o644);
    file(&mut b, "zeros.bin", vec![0; 70_000], 0o644);
    file(&mut b, "EFI/BOOT/BOOTX64.EFI", vec![0x4d; 5_000], 0o644);
    file(
        &mut b,
        "extlinux/extlinux.conf",
        b"label linux\n".to_vec(),
        0o644,
    );
    file(&mut b, "overlays/README", b"overlays\n".to_vec(), 0o644);
    file(
        &mut b,
        "h\u{e9}llo w\u{f6}rld.txt",
        b"utf-8\n".to_vec(),
        0o644,
    );
    for i in 0..30 {
        let p = format!("overlays/very-long-overlay-name-{i:02}.dtbo");
        file(&mut b, &p, p.clone().into_bytes(), 0o644);
    }
    b.insert(
        b"empty-dir",
        Inode::dir(Meta::new(0o755, 0, 0, Time::from_secs(T0 + 100))),
        Replace::Always,
    )
    .unwrap();
    b.finish()
}

fn encode(tree: &Tree, options: FatOptions) -> Vec<u8> {
    let mut out = Buffer::default();
    let report = FatEncoder::new(options)
        .write(&tree.view(), &mut out)
        .unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    out.0
}

/// A file sink that leaves holes where the image is zero.
struct SparseFile(fs::File);

impl std::io::Write for SparseFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl rootforge::common::Sink for SparseFile {
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        use std::io::Seek;
        let at = self
            .0
            .seek(std::io::SeekFrom::Current(i64::try_from(n).unwrap()))?;
        self.0.set_len(at)
    }
}

/// Writes the image of `tree` to `path` without holding it in memory.
fn encode_to(tree: &Tree, options: FatOptions, path: &Path) {
    let mut out = SparseFile(fs::File::create(path).unwrap());
    let report = FatEncoder::new(options)
        .write(&tree.view(), &mut out)
        .unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(out.0.metadata().unwrap().len(), report.bytes);
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rootforge-vfat-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The three FAT types at sizes Buildroot boards use.
fn images(dir: &Path, tree: &Tree) -> Vec<(FatType, PathBuf)> {
    [
        (FatType::Fat12, 2u64 << 20),
        (FatType::Fat16, 16 << 20),
        (FatType::Fat32, 64 << 20),
    ]
    .into_iter()
    .map(|(t, size)| {
        let img = encode(
            tree,
            FatOptions {
                size: FatSize::Fixed(size),
                fat_type: Some(t),
                label: Some("BOOT".into()),
                ..FatOptions::default()
            },
        );
        let path = dir.join(format!("{}.vfat", t.name()));
        fs::write(&path, img).unwrap();
        (t, path)
    })
    .collect()
}

fn tool(name: &str, args: &[&str], img: &Path) -> String {
    let out = Command::new(require_tool(name))
        .args(args)
        .arg(img)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{name} {args:?} {}: {text}",
        img.display()
    );
    text
}

/// What `fsck.fat -v` says about the layout, without the volume id.
fn geometry_lines(fsck: &str) -> Vec<String> {
    let keys = [
        "bytes per logical sector",
        "bytes per cluster",
        "reserved sector",
        "FATs, ",
        "bytes per FAT",
        "root directory entries",
        "Data area starts at",
        "data clusters",
        "sectors total",
    ];
    fsck.lines()
        .filter(|l| keys.iter().any(|k| l.contains(k)))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// A listing for comparing with what FAT keeps: no owners, no modes, no
/// root mtime.
fn comparable(lines: &[Line]) -> Vec<Line> {
    lines
        .iter()
        .filter(|l| l.path != "/")
        .map(|l| Line {
            perm: 0,
            uid: 0,
            gid: 0,
            ..l.clone()
        })
        .collect()
}

fn want(tree: &Tree) -> Vec<Line> {
    comparable(&listing::of_view(&tree.view()).unwrap())
}

#[test]
fn fsck_fat_finds_nothing_wrong() {
    let dir = scratch("fsck");
    let tree = sample();
    for (t, img) in images(&dir, &tree) {
        let out = tool("fsck.fat", &["-n", "-v"], &img);
        // Every entry, and the volume label.
        let entries = tree.view().sorted_entries().len() - 1 + 1;
        assert!(
            out.contains(&format!(": {entries} files, ")),
            "{t:?}: {out}"
        );
        for bad in [
            "differ",
            "wrong",
            "invalid",
            "Bad",
            "lost",
            "Orphan",
            "Free cluster summary",
        ] {
            assert!(!out.contains(bad), "{t:?}: fsck.fat says {bad:?}:\n{out}");
        }
        // Our reader agrees with the input, too.
        let back =
            rootforge::fat::read_volume(std::sync::Arc::new(fs::read(&img).unwrap())).unwrap();
        assert_eq!(back.geometry.fat_type, t);
        assert_eq!(
            comparable(&listing::of_view(&back.tree.view()).unwrap()),
            want(&tree)
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// Every file under `dir` as (path, is_dir, size, sha256, mtime).
fn walk(dir: &Path) -> BTreeMap<String, (bool, u64, String, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = format!("/{}", p.strip_prefix(dir).unwrap().to_string_lossy());
            if m.is_dir() {
                stack.push(p.clone());
                out.insert(rel, (true, 0, "-".to_owned(), m.mtime()));
            } else {
                let data = fs::read(&p).unwrap();
                out.insert(
                    rel,
                    (
                        false,
                        data.len() as u64,
                        listing::sha256_hex(&data),
                        m.mtime(),
                    ),
                );
            }
        }
    }
    out
}

#[test]
fn mtools_list_and_extract_the_input() {
    let dir = scratch("mtools");
    let tree = sample();
    let expected: BTreeMap<String, (bool, u64, String, i64)> = want(&tree)
        .into_iter()
        .map(|l| {
            (
                l.path.clone(),
                (l.kind == Kind::Dir, l.size, l.detail.clone(), l.mtime),
            )
        })
        .collect();
    for (t, img) in images(&dir, &tree) {
        let mdir = tool("mdir", &["-/", "-a", "-i"], &img);
        for path in expected.keys() {
            let name = path.rsplit('/').next().unwrap();
            // A name stored as a short entry alone shows in mdir's 8.3
            // columns; a long name at the end of its line.
            let (base, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            let columns = format!("{base:<8} {ext:<3}");
            assert!(
                mdir.contains(&format!(" {name}\n")) || mdir.contains(&columns),
                "{t:?}: mdir lacks {name}:\n{mdir}"
            );
        }
        let out = dir.join(format!("{}-x", t.name()));
        let st = Command::new(require_tool("mcopy"))
            .env("TZ", "UTC")
            .args(["-s", "-n", "-m", "-i"])
            .arg(&img)
            .arg("::")
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success(), "{t:?}: mcopy failed");
        assert_eq!(walk(&out), expected, "{t:?}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn geometry_is_mkfs_fat_s_for_the_same_size() {
    let dir = scratch("mkfs");
    let tree = sample();
    for size in [2u64 << 20, 16 << 20, 64 << 20, 128 << 20, 512 << 20] {
        let ours = dir.join("ours.vfat");
        encode_to(
            &tree,
            FatOptions {
                size: FatSize::Fixed(size),
                ..FatOptions::default()
            },
            &ours,
        );
        let theirs = dir.join("theirs.vfat");
        let f = fs::File::create(&theirs).unwrap();
        f.set_len(size).unwrap();
        drop(f);
        tool("mkfs.fat", &[], &theirs);
        let a = geometry_lines(&tool("fsck.fat", &["-n", "-v"], &ours));
        let b = geometry_lines(&tool("fsck.fat", &["-n", "-v"], &theirs));
        assert!(a.len() >= 7, "{a:?}");
        assert_eq!(a, b, "{size} bytes");
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// The short names mtools gives the same files, copied by mcopy into a
/// volume mkfs.fat made, are ours (ASCII names: mtools maps other
/// characters through its code page).
#[test]
fn short_names_are_those_mcopy_makes() {
    let dir = scratch("mcopy");
    let tree = sample();
    let src = dir.join("src");
    for e in tree.view().sorted_entries().iter().skip(1) {
        let path = String::from_utf8(e.path.to_vec()).unwrap();
        if !path.is_ascii() {
            continue;
        }
        let p = src.join(&path);
        match &tree.view().inode(e.ino).content {
            Content::Dir(_) => fs::create_dir_all(&p).unwrap(),
            Content::File(d) => {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, d.to_vec().unwrap()).unwrap();
            }
            _ => unreachable!(),
        }
    }
    let mut ascii = TreeBuilder::new(Meta::new(0o755, 0, 0, Time::from_secs(T0)));
    for e in tree.view().sorted_entries().iter().skip(1) {
        let inode = tree.view().inode(e.ino);
        let inode = match inode.kind() {
            Kind::Dir => Inode::dir(inode.meta),
            _ => inode.clone(),
        };
        if e.path.is_ascii() {
            ascii.insert(&e.path, inode, Replace::Always).unwrap();
        }
    }
    let ascii = ascii.finish();
    let ours = dir.join("ours.vfat");
    fs::write(
        &ours,
        encode(
            &ascii,
            FatOptions {
                size: FatSize::Fixed(16 << 20),
                ..FatOptions::default()
            },
        ),
    )
    .unwrap();
    let theirs = dir.join("theirs.vfat");
    fs::File::create(&theirs)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    tool("mkfs.fat", &[], &theirs);
    // mcopy -s copies a directory's entries in readdir order; one entry at
    // a time in byte order gives the order (and so the numeric tails) our
    // directories have.
    for e in ascii.view().sorted_entries().iter().skip(1) {
        let path = String::from_utf8(e.path.to_vec()).unwrap();
        let target = format!("::/{path}");
        let mut cmd = if ascii.view().inode(e.ino).kind() == Kind::Dir {
            let mut c = Command::new(require_tool("mmd"));
            c.arg("-i").arg(&theirs).arg(&target);
            c
        } else {
            let mut c = Command::new(require_tool("mcopy"));
            c.arg("-i").arg(&theirs).arg(src.join(&path)).arg(&target);
            c
        };
        assert!(cmd.status().unwrap().success(), "{path}");
    }
    // Each entry's 8.3 columns and long name, by directory.
    let short = |img: &Path| -> Vec<String> {
        let mut dir = String::new();
        let mut out: Vec<String> = tool("mdir", &["-/", "-a", "-i"], img)
            .lines()
            .filter_map(|l| {
                if let Some(d) = l.strip_prefix("Directory for ") {
                    dir = d.to_owned();
                    return None;
                }
                // The date column, YYYY-MM-DD, then two spaces and HH:MM.
                let b = l.as_bytes();
                let date = (0..b.len().saturating_sub(10)).find(|&i| {
                    b[i..i + 4].iter().all(u8::is_ascii_digit)
                        && b[i + 4] == b'-'
                        && b[i + 7] == b'-'
                })?;
                let long = l.get(date + 17..).unwrap_or("").trim();
                let cols = l.get(..12)?;
                Some(format!("{dir} {cols} {long}"))
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(short(&ours), short(&theirs));
    fs::remove_dir_all(&dir).unwrap();
}

/// Linux's vfat driver mounts FAT12, FAT16 and FAT32 images and lists the
/// input: long names, short names with their case, sizes, contents, mtimes.
#[test]
fn kernel_mounts_every_fat_type() {
    let dir = scratch("vm");
    let tree = sample();
    let imgs = images(&dir, &tree);
    let disks: Vec<(&Path, &str)> = imgs.iter().map(|(_, p)| (p.as_path(), "vfat")).collect();
    let listings = vm_listing_disks(&disks);
    for ((t, _), got) in imgs.iter().zip(&listings) {
        assert_same_listing(&format!("{t:?}"), &comparable(got), &want(&tree));
        // The kernel shows FAT's one mode bit.
        let ro = got.iter().find(|l| l.path == "/read-only.bin").unwrap();
        assert_eq!(ro.perm & 0o222, 0, "{t:?}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// `-f vfat` builds rootfs.vfat from a tree of files, `inspect` reads it,
/// and a tree with a symlink is refused with its path.
#[test]
fn build_writes_rootfs_vfat() {
    let dir = scratch("cli");
    let input = dir.join("in");
    fs::create_dir_all(input.join("EFI/BOOT")).unwrap();
    fs::write(input.join("EFI/BOOT/BOOTX64.EFI"), vec![1u8; 3000]).unwrap();
    fs::write(input.join("cmdline.txt"), b"console=ttyS0\n").unwrap();
    let out = dir.join("out");
    build(
        &input,
        &out,
        &[
            "-f",
            "vfat",
            "--all-root",
            "--vfat-label",
            "BOOT",
            "--vfat-volume-id",
            "1234-ABCD",
        ],
    );
    let img = out.join("rootfs.vfat");
    let head = fs::read(&img).unwrap();
    assert_eq!(head.len() % (1 << 20), 0);
    assert_eq!(&head[39..43], &0x1234_abcdu32.to_le_bytes());
    let lines = inspect(&img);
    assert!(
        lines.iter().any(|l| l.ends_with(" /EFI/BOOT/BOOTX64.EFI")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(" /cmdline.txt")),
        "{lines:?}"
    );

    // The image is an input like any other.
    let again = dir.join("again");
    build(&img, &again, &["-f", "tar"]);
    let relisted = inspect(&again.join("rootfs.tar"));
    assert!(
        relisted
            .iter()
            .any(|l| l.ends_with(" /EFI/BOOT/BOOTX64.EFI")),
        "{relisted:?}"
    );

    let res = rootforge()
        .args(["build", "-f", "vfat", "-o"])
        .arg(dir.join("bad"))
        .arg(tiny_corpus())
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("vfat cannot store"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}
