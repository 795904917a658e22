//! squashfs images of in-memory trees checked with squashfs-tools:
//! `unsquashfs` lists and extracts (as root, with xattrs) what the writer
//! wrote, and our reader reads what `mksquashfs` wrote. The trees are the
//! squashfs crate's sample tree (`formats/squashfs/src/sample.rs`).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rootforge::common::listing;
use rootforge::common::{
    Buffer, Content, Edit, Encoder, FileData, Inode, Kind, Meta, Replace, Time, Tree, TreeBuilder,
    View, Xattr,
};
use rootforge::squashfs::{Bcj, Comp, SquashfsEncoder};

#[path = "../../formats/squashfs/src/sample.rs"]
mod sample;

use sample::{T0, meta, noise, sample_builder};

fn sample_tree() -> Tree {
    sample_builder().finish()
}

fn encode(tree: &Tree, enc: &SquashfsEncoder) -> Vec<u8> {
    let mut out = Buffer::default();
    let report = enc.write(&tree.view(), &mut out).unwrap();
    assert_eq!(report.bytes, out.0.len() as u64);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    out.0
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("rootforge-squashfs-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs unsquashfs; a missing tool fails the test.
fn unsquashfs(args: &[&str], image: &Path) -> String {
    let out = Command::new("unsquashfs")
        .args(args)
        .arg(image)
        .output()
        .expect("unsquashfs (apt-get install squashfs-tools) must be installed");
    assert!(
        out.status.success(),
        "unsquashfs {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ls -l`'s mode column.
fn mode_string(kind: Kind, perm: u16) -> String {
    let mut s = String::new();
    s.push(match kind {
        Kind::File => '-',
        k => k.letter(),
    });
    let bit = |b: u16, c: char| if perm & b != 0 { c } else { '-' };
    let special = |x: u16, sp: u16, lower: char, upper: char, plain: char| match (
        perm & x != 0,
        perm & sp != 0,
    ) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => plain,
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S', 'x'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S', 'x'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T', 'x'));
    s
}

/// `YYYY-MM-DD HH:MM` in UTC.
fn minute(sec: i64) -> String {
    let days = sec.div_euclid(86400);
    let rem = sec.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// What `unsquashfs -lln -UTC` prints for each entry of the tree, by path,
/// without the size of directories (which is the listing's size).
fn expected_listing(tree: &Tree) -> HashMap<String, String> {
    let view = tree.view();
    let mut out = HashMap::new();
    for e in view.sorted_entries() {
        let inode = view.inode(e.ino);
        let size = match &inode.content {
            Content::Dir(_) => "-".to_owned(),
            Content::File(d) => d.size().to_string(),
            Content::Symlink(t) => t.len().to_string(),
            Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
                // unsquashfs lists the stored word as `word >> 8, word & 0xff`
                // (right only for minors below 256); extraction decodes it
                // properly, and `check_extracted` compares that.
                let word = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
                format!("{},{}", word >> 8, word & 0xff)
            }
            Content::Fifo | Content::Socket => "0".to_owned(),
        };
        let mut path = String::from("squashfs-root");
        if !e.path.is_empty() {
            path.push('/');
            path.push_str(std::str::from_utf8(&e.path).unwrap());
        }
        if let Content::Symlink(t) = &inode.content {
            path.push_str(" -> ");
            path.push_str(std::str::from_utf8(t).unwrap());
        }
        let line = format!(
            "{} {}/{} {size} {} {path}",
            mode_string(inode.kind(), inode.meta.perm),
            inode.meta.uid,
            inode.meta.gid,
            minute(inode.meta.mtime.sec),
        );
        out.insert(String::from_utf8(e.path.to_vec()).unwrap(), line);
    }
    out
}

/// The listing lines by path, with whitespace runs collapsed, device
/// numbers as `major,minor` and directory sizes as `-`.
fn actual_listing(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| l.contains("squashfs-root")) {
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let dev;
        if words[2].ends_with(',') {
            dev = format!("{}{}", words[2], words[3]);
            words.splice(2..4, [dev.as_str()]);
        }
        if words[0].starts_with('d') {
            words[2] = "-";
        }
        let path = words[5]
            .strip_prefix("squashfs-root")
            .unwrap()
            .trim_start_matches('/')
            .to_owned();
        out.insert(path, words.join(" "));
    }
    out
}

/// Extracts the image as root and compares every entry with the tree:
/// type, mode, owner, mtime, contents, link targets, devices, hard links.
fn check_extracted(tree: &Tree, image: &Path, dir: &Path) {
    let root = dir.join("x");
    unsquashfs(&["-d", root.to_str().unwrap()], image);
    let view = tree.view();
    let mut by_ino: HashMap<_, u64> = HashMap::new();
    for e in view.sorted_entries() {
        let inode = view.inode(e.ino);
        let p = root.join(std::str::from_utf8(&e.path).unwrap());
        let md = fs::symlink_metadata(&p).unwrap();
        let name = p.display();
        assert_eq!(md.mode(), inode.mode(), "{name}");
        assert_eq!(
            (md.uid(), md.gid()),
            (inode.meta.uid, inode.meta.gid),
            "{name}"
        );
        assert_eq!(md.mtime(), inode.meta.mtime.sec, "{name}");
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = xattr::list(&p)
            .unwrap()
            .map(|n| {
                let v = xattr::get(&p, &n).unwrap().unwrap_or_default();
                (n.as_encoded_bytes().to_vec(), v)
            })
            .collect();
        xattrs.sort();
        let want: Vec<(Vec<u8>, Vec<u8>)> = inode
            .xattrs
            .iter()
            .map(|x| (x.name.to_vec(), x.value.to_vec()))
            .collect();
        assert_eq!(xattrs, want, "{name}");
        match &inode.content {
            Content::File(d) => {
                assert_eq!(fs::read(&p).unwrap(), d.to_vec().unwrap(), "{name}");
                assert_eq!(md.nlink(), u64::from(e.nlink), "{name}");
                let ino = *by_ino.entry(e.ino).or_insert(md.ino());
                assert_eq!(ino, md.ino(), "{name} is not hard-linked");
            }
            Content::Symlink(t) => {
                assert_eq!(
                    fs::read_link(&p).unwrap().as_os_str().as_encoded_bytes(),
                    &**t
                );
            }
            Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
                let rdev = md.rdev();
                let (maj, min) = (
                    ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff),
                    (rdev & 0xff) | ((rdev >> 12) & !0xff),
                );
                assert_eq!((maj, min), (u64::from(*major), u64::from(*minor)), "{name}");
            }
            Content::Fifo => assert!(md.file_type().is_fifo(), "{name}"),
            Content::Socket => assert!(md.file_type().is_socket(), "{name}"),
            Content::Dir(_) => assert!(md.is_dir(), "{name}"),
        }
    }
}

/// Writes the sample tree, checks unsquashfs's listing, extraction and
/// statistics against it, and returns `unsquashfs -stat`.
fn roundtrip(name: &str, enc: SquashfsEncoder) -> String {
    let tree = sample_tree();
    let bytes = encode(&tree, &enc);
    assert_eq!(bytes.len() % 4096 == 0, enc.pad, "{}", bytes.len());
    let dir = scratch(name);
    let image = dir.join("img.sqfs");
    fs::write(&image, &bytes).unwrap();
    let listed = actual_listing(&unsquashfs(&["-lln", "-UTC"], &image));
    let expected = expected_listing(&tree);
    assert_eq!(listed.len(), expected.len());
    for (path, line) in &expected {
        assert_eq!(listed.get(path), Some(line), "{path}");
    }
    check_extracted(&tree, &image, &dir);
    let stat = unsquashfs(&["-stat"], &image);
    let exportable = stat.contains("Filesystem is exportable via NFS");
    assert_eq!(exportable, enc.exportable, "{stat}");
    let inodes: std::collections::HashSet<_> =
        tree.view().sorted_entries().iter().map(|e| e.ino).collect();
    assert!(
        stat.contains(&format!("Number of inodes {}\n", inodes.len())),
        "{stat}"
    );
    let compression = match enc.comp {
        Comp::None => "gzip",
        c => c.name(),
    };
    assert!(
        stat.contains(&format!("Compression {compression}\n")),
        "{stat}"
    );
    fs::remove_dir_all(&dir).unwrap();
    stat
}

#[test]
fn gzip_small_blocks_no_exports_no_pad_roundtrip() {
    roundtrip(
        "gzip",
        SquashfsEncoder {
            block_size: 4096,
            exportable: false,
            pad: false,
            ..SquashfsEncoder::new(Comp::Gzip)
        },
    );
}

#[test]
fn tail_ends_in_fragments_or_short_blocks_roundtrip() {
    for always_fragments in [false, true] {
        let stat = roundtrip(
            &format!("tails-{always_fragments}"),
            SquashfsEncoder {
                block_size: 4096,
                always_fragments,
                ..SquashfsEncoder::new(Comp::Zstd)
            },
        );
        let said = stat.contains("Always-use-fragments option is specified");
        assert_eq!(said, always_fragments, "{stat}");
    }
}

#[test]
fn every_compressor_roundtrips() {
    for comp in Comp::ALL {
        roundtrip(comp.name(), SquashfsEncoder::new(comp));
    }
}

/// The options block says what squashfs-tools would: only what differs
/// from its defaults, always for lz4.
#[test]
fn compressor_options_roundtrip() {
    let stat = roundtrip("lz4hc", SquashfsEncoder::new(Comp::Lz4).extreme("x86_64"));
    assert!(stat.contains("High Compression option specified"), "{stat}");
    let stat = roundtrip("lz4", SquashfsEncoder::new(Comp::Lz4));
    assert!(!stat.contains("High Compression"), "{stat}");
    let stat = roundtrip(
        "xz-bcj",
        SquashfsEncoder {
            bcj: Bcj::parse("x86,arm,armthumb").unwrap(),
            ..SquashfsEncoder::new(Comp::Xz)
        },
    );
    assert!(
        stat.contains("Filters selected: x86, arm, armthumb"),
        "{stat}"
    );
    let stat = roundtrip("xz-arm", SquashfsEncoder::new(Comp::Xz).extreme("arm"));
    assert!(stat.contains("Filters selected: arm, armthumb"), "{stat}");
    let stat = roundtrip(
        "gzip4",
        SquashfsEncoder {
            level: 4,
            ..SquashfsEncoder::new(Comp::Gzip)
        },
    );
    assert!(stat.contains("compression-level 4\n"), "{stat}");
    let stat = roundtrip("zstd22", SquashfsEncoder::new(Comp::Zstd).extreme("x86_64"));
    assert!(stat.contains("compression-level 22\n"), "{stat}");
    let stat = roundtrip("lzo", SquashfsEncoder::new(Comp::Lzo).extreme("x86_64"));
    assert!(stat.contains("Compression lzo"), "{stat}");
}

#[test]
fn files_over_4_gib_and_holes_use_extended_inodes() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    let size = (5u64 << 30) + 1;
    b.insert(
        b"huge",
        Inode::new(meta(0o644, 0, 0, T0), Content::File(FileData::zeros(size))),
        Replace::Always,
    )
    .unwrap();
    let tree = b.finish();
    let bytes = encode(&tree, &SquashfsEncoder::new(Comp::Zstd));
    // Every block is a hole: only metadata and one fragment remain.
    assert!(bytes.len() < 64 << 10, "{} bytes", bytes.len());
    let dir = scratch("huge");
    let image = dir.join("img.sqfs");
    fs::write(&image, &bytes).unwrap();
    let listed = actual_listing(&unsquashfs(&["-lln", "-UTC"], &image));
    assert_eq!(listed, expected_listing(&tree));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mtimes_outside_32_bits_are_clamped_with_a_warning() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, T0));
    for (name, sec) in [("old", -5), ("new", 1 << 33)] {
        let inode = Inode::new(meta(0o644, 0, 0, sec), Content::Fifo);
        b.insert(name.as_bytes(), inode, Replace::Always).unwrap();
    }
    let tree = b.finish();
    let mut out = Buffer::default();
    let report = SquashfsEncoder::default()
        .write(&tree.view(), &mut out)
        .unwrap();
    assert_eq!(
        report.warnings,
        [
            "squashfs stores mtimes as unsigned 32-bit seconds (1970 to 2106): clamped 2 \
          entries (first: /new at 8589934592)"
        ]
    );
    let dir = scratch("clamp");
    let image = dir.join("img.sqfs");
    fs::write(&image, &out.0).unwrap();
    let listed = actual_listing(&unsquashfs(&["-lln", "-UTC"], &image));
    assert!(listed["old"].contains(&minute(0)), "{}", listed["old"]);
    assert!(
        listed["new"].contains(&minute(u32::MAX.into())),
        "{}",
        listed["new"]
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// Each path's xattrs.
fn xattrs(view: &View<'_>) -> BTreeMap<Vec<u8>, Vec<Xattr>> {
    view.sorted_entries()
        .into_iter()
        .map(|e| (e.path.to_vec(), view.inode(e.ino).xattrs.clone()))
        .collect()
}

/// The groups of paths naming one non-directory inode, for inodes with
/// several names.
fn link_groups(view: &View<'_>) -> Vec<Vec<Vec<u8>>> {
    let mut by_ino: HashMap<_, Vec<Vec<u8>>> = HashMap::new();
    for e in view.sorted_entries() {
        if view.inode(e.ino).children().is_none() {
            by_ino.entry(e.ino).or_default().push(e.path.to_vec());
        }
    }
    let mut groups: Vec<_> = by_ino.into_values().filter(|g| g.len() > 1).collect();
    groups.sort();
    groups
}

/// The reader gives back the listing, the xattrs and the hard links.
fn assert_same(want: &Tree, got: &Tree) {
    let (w, g) = (want.view(), got.view());
    let (wl, gl) = (listing::of_view(&w).unwrap(), listing::of_view(&g).unwrap());
    assert_eq!(wl.len(), gl.len());
    for (a, b) in wl.iter().zip(&gl) {
        assert_eq!(a, b);
    }
    assert_eq!(xattrs(&w), xattrs(&g));
    assert_eq!(link_groups(&w), link_groups(&g));
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A source directory with every type, hard links, xattrs (a repeated
/// value, which mksquashfs stores once and refers to out of line), a
/// sparse file, duplicates, 32-bit owners and a directory needing an index.
fn make_source(root: &Path) {
    let w = |p: &str, data: &[u8]| fs::write(root.join(p), data).unwrap();
    for d in ["etc", "dev", "many", "long", "hl", "d/e/f"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    w("etc/passwd", b"root:x:0:0::/:/bin/sh\n");
    w("etc/dup", b"root:x:0:0::/:/bin/sh\n");
    w("empty", b"");
    w("exact", &b"0123456789abcdef".repeat(8192));
    let mut big = noise(1_500_000, 5);
    big.extend_from_slice(&b"tail".repeat(1000));
    w("big", &big);
    w("big-copy", &big);
    // Data, a 2 MiB hole, data: holes for every block size.
    let f = fs::File::create(root.join("sparse")).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&noise(5000, 3), 0).unwrap();
    f.write_all_at(b"end", 5000 + (2 << 20)).unwrap();
    drop(f);
    w("hl/a", b"linked");
    fs::hard_link(root.join("hl/a"), root.join("hl/b")).unwrap();
    fs::hard_link(root.join("hl/a"), root.join("c-link")).unwrap();
    std::os::unix::fs::symlink("etc/passwd", root.join("sym")).unwrap();
    std::os::unix::fs::symlink("x".repeat(2000), root.join("longsym")).unwrap();
    for i in 0..1500 {
        w(
            &format!("many/file-with-a-longish-name-{i:05}"),
            format!("{i}\n").as_bytes(),
        );
    }
    for i in 0..40 {
        w(
            &format!("long/{i:03}{}", "n".repeat(250)),
            &vec![b'y'; i * 100],
        );
    }
    let mknod = |p: &str, kind: &str, ma: u32, mi: u32| {
        run(Command::new("mknod")
            .arg(root.join(p))
            .arg(kind)
            .arg(ma.to_string())
            .arg(mi.to_string()));
    };
    mknod("dev/null", "c", 1, 3);
    mknod("dev/sda", "b", 8, 0);
    mknod("dev/wide", "c", 0xfff, 0xf_ffff);
    run(Command::new("mkfifo").arg(root.join("fifo")));
    let sock = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    drop(sock);
    for (p, uid, gid) in [
        ("etc/passwd", 4_000_000_000u32, 7),
        ("fifo", 1000, 1000),
        ("sym", 5, 6),
    ] {
        std::os::unix::fs::lchown(root.join(p), Some(uid), Some(gid)).unwrap();
    }
    let big_value = vec![b'v'; 3000];
    for (p, name, value) in [
        ("etc/passwd", "user.mime", &b"text/plain"[..]),
        (
            "etc/passwd",
            "security.capability",
            b"\x01\0\0\x02\0\x20\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        ),
        ("hl/a", "trusted.t", b"1"),
        ("many", "user.big", &big_value),
        ("exact", "user.big", &big_value),
        ("etc", "user.big", &big_value),
        ("sym", "trusted.s", b"on a symlink"),
        (
            "dev/null",
            "security.selinux",
            b"system_u:object_r:null_device_t:s0",
        ),
    ] {
        xattr::set(root.join(p), name, value).unwrap();
    }
    fs::set_permissions(root.join("exact"), fs::Permissions::from_mode(0o4751)).unwrap();
    fs::set_permissions(root.join("d/e"), fs::Permissions::from_mode(0o1777)).unwrap();
}

/// The source directory as a tree, read from the host.
fn walk_source(root: &Path) -> Tree {
    let md = fs::symlink_metadata(root).unwrap();
    let meta_of = |md: &fs::Metadata| {
        Meta::new(
            (md.mode() & 0o7777) as u16,
            md.uid(),
            md.gid(),
            Time::from_secs(md.mtime()),
        )
    };
    let mut b = TreeBuilder::new(meta_of(&md));
    let mut links: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut stack = vec![(root.to_path_buf(), Vec::<u8>::new())];
    while let Some((dir, rel)) = stack.pop() {
        let md = fs::symlink_metadata(&dir).unwrap();
        let mut inode = Inode::dir(meta_of(&md));
        add_xattrs(&mut inode, &dir);
        b.insert(&rel, inode, Replace::Always).unwrap();
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let mut child = rel.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(entry.file_name().as_encoded_bytes());
            let md = fs::symlink_metadata(&path).unwrap();
            let ft = md.file_type();
            if ft.is_dir() {
                stack.push((path, child));
                continue;
            }
            if md.nlink() > 1 {
                if let Some(first) = links.get(&md.ino()) {
                    b.hard_link(&child, first).unwrap();
                    continue;
                }
                links.insert(md.ino(), child.clone());
            }
            let rdev = md.rdev();
            let (major, minor) = (
                (((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)) as u32,
                ((rdev & 0xff) | ((rdev >> 12) & !0xff)) as u32,
            );
            let content = if ft.is_file() {
                Content::File(FileData::host(path.as_path(), md.len()))
            } else if ft.is_symlink() {
                Content::Symlink(
                    fs::read_link(&path)
                        .unwrap()
                        .as_os_str()
                        .as_encoded_bytes()
                        .into(),
                )
            } else if ft.is_char_device() {
                Content::CharDev { major, minor }
            } else if ft.is_block_device() {
                Content::BlockDev { major, minor }
            } else if ft.is_fifo() {
                Content::Fifo
            } else {
                Content::Socket
            };
            let mut inode = Inode::new(meta_of(&md), content);
            add_xattrs(&mut inode, &path);
            b.insert(&child, inode, Replace::Always).unwrap();
        }
    }
    b.finish()
}

fn add_xattrs(inode: &mut Inode, path: &Path) {
    for name in xattr::list(path).unwrap() {
        let value = xattr::get(path, &name).unwrap().unwrap_or_default();
        inode.set_xattr(name.as_encoded_bytes(), &value);
    }
}

#[test]
fn mksquashfs_images_read_back() {
    let dir = scratch("mksquashfs");
    let src = dir.join("src");
    fs::create_dir(&src).unwrap();
    make_source(&src);
    let want = walk_source(&src);
    assert!(!link_groups(&want.view()).is_empty());
    assert!(xattrs(&want.view()).values().any(|x| x.len() == 2));
    let image = dir.join("img");
    for opts in [
        &[][..],
        &["-comp", "lzo"],
        &["-comp", "xz", "-Xbcj", "x86"],
        &["-comp", "lz4", "-Xhc"],
        &["-comp", "zstd"],
        &["-no-fragments"],
        &["-always-use-fragments"],
        &["-b", "4K"],
        &["-b", "1M", "-comp", "zstd"],
        &["-noI", "-noD", "-noF", "-noX", "-no-exports"],
    ] {
        run(Command::new("mksquashfs")
            .arg(&src)
            .arg(&image)
            .args(["-noappend", "-quiet", "-no-progress"])
            .args(opts));
        let bytes = fs::read(&image).unwrap();
        let got =
            rootforge::squashfs::read(Arc::new(bytes)).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
        assert_same(&want, &got);
    }
    fs::remove_dir_all(&dir).unwrap();
}
