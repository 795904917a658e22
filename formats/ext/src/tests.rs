use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rootforge_common::{
    Backing, Buffer, Content, Edit, Encoder, Extent, FileData, Inode, Meta, Replace, Time, Tree,
    TreeBuilder, listing,
};

use crate::{ExtEncoder, Size, Variant};

fn meta(perm: u16, uid: u32, gid: u32, sec: i64) -> Meta {
    Meta::new(perm, uid, gid, Time { sec, nsec: 0 })
}

fn file(perm: u16, data: impl Into<Arc<[u8]>>) -> Inode {
    Inode::new(
        meta(perm, 0, 0, 1_700_000_000),
        Content::File(FileData::bytes(data)),
    )
}

fn node(content: Content) -> Inode {
    Inode::new(meta(0o644, 0, 0, 1_700_000_000), content)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| i.to_le_bytes()[0].wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

/// Every file type and feature the writer must carry.
fn sample() -> Tree {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_600_000_000));
    let mut root = Inode::dir(meta(0o751, 5, 6, 1_600_000_001));
    root.set_xattr(b"user.root", b"yes");
    b.insert(b"", root, Replace::Always).unwrap();
    b.insert(
        b"etc/passwd",
        file(0o644, &b"root:x:0:0::/root:/bin/sh\n"[..]),
        Replace::Always,
    )
    .unwrap();
    let mut ping = file(0o4755, pattern(70_000, 3));
    ping.meta.uid = 100_000;
    ping.meta.gid = 200_000;
    ping.meta.mtime = Time {
        sec: 1_700_000_000,
        nsec: 123_456_789,
    };
    let mut cap = vec![0u8; 20];
    cap[0] = 2;
    cap[3] = 2;
    cap[4] = 0x20;
    ping.set_xattr(b"security.capability", &cap);
    ping.set_xattr(b"user.long", &pattern(300, 9));
    ping.set_xattr(b"trusted.x", b"t");
    b.insert(b"bin/ping", ping, Replace::Always).unwrap();
    b.hard_link(b"bin/ping-link", b"bin/ping").unwrap();
    b.hard_link(b"ping-root", b"bin/ping").unwrap();
    b.insert(
        b"bin/sh",
        node(Content::Symlink((*b"busybox").into())),
        Replace::Always,
    )
    .unwrap();
    let long_target = vec![b'x'; 200];
    b.insert(
        b"bin/long",
        node(Content::Symlink(long_target.into())),
        Replace::Always,
    )
    .unwrap();
    b.insert(
        b"dev/null",
        node(Content::CharDev { major: 1, minor: 3 }),
        Replace::Always,
    )
    .unwrap();
    b.insert(
        b"dev/big",
        node(Content::BlockDev {
            major: 259,
            minor: 70_000,
        }),
        Replace::Always,
    )
    .unwrap();
    b.insert(b"run/fifo", node(Content::Fifo), Replace::Always)
        .unwrap();
    b.insert(b"run/sock", node(Content::Socket), Replace::Always)
        .unwrap();
    b.insert(b"empty", file(0o600, &b""[..]), Replace::Always)
        .unwrap();
    // Zero blocks in the middle become a hole.
    let mut holey = pattern(5000, 1);
    holey.extend(vec![0u8; 20_000]);
    holey.extend(pattern(3000, 2));
    b.insert(b"holey", file(0o644, holey), Replace::Always)
        .unwrap();
    let mut future = file(0o644, &b"y2038"[..]);
    future.meta.mtime = Time {
        sec: 4_000_000_000,
        nsec: 999_999_999,
    };
    b.insert(b"future", future, Replace::Always).unwrap();
    let mut past = file(0o644, &b"1960"[..]);
    past.meta.mtime = Time {
        sec: -300_000_000,
        nsec: 5,
    };
    b.insert(b"past", past, Replace::Always).unwrap();
    let mut d = Inode::dir(meta(0o2775, 1000, 1000, 1_650_000_000));
    d.set_xattr(
        b"system.posix_acl_access",
        &acl(&[
            (1, 7, u32::MAX),
            (2, 6, 1000),
            (4, 5, u32::MAX),
            (0x10, 7, u32::MAX),
            (0x20, 5, u32::MAX),
        ]),
    );
    d.set_xattr(
        b"system.posix_acl_default",
        &acl(&[(1, 7, u32::MAX), (4, 5, u32::MAX), (0x20, 0, u32::MAX)]),
    );
    b.insert(b"shared", d, Replace::Always).unwrap();
    b.insert(
        b"shared/name\xff\x01bytes",
        file(0o644, &b"x"[..]),
        Replace::Always,
    )
    .unwrap();
    let max_name = vec![b'n'; 255];
    let mut p = b"shared/".to_vec();
    p.extend_from_slice(&max_name);
    b.insert(&p, file(0o644, &b"long name"[..]), Replace::Always)
        .unwrap();
    b.finish()
}

fn big_dir(n: usize) -> Tree {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_600_000_000));
    for i in 0..n {
        let name = format!("many/file-with-a-longish-name-{i:05}");
        b.insert(
            name.as_bytes(),
            file(0o644, format!("{i}").into_bytes()),
            Replace::Always,
        )
        .unwrap();
        // Bytes >= 0x80 hash differently as signed and unsigned chars.
        let mut high = format!("many/\u{e9}t\u{e9}-{i}").into_bytes();
        high.push(0xff);
        b.insert(&high, file(0o644, &b"high"[..]), Replace::Always)
            .unwrap();
    }
    b.insert(b"many/sub/x", file(0o644, &b"x"[..]), Replace::Always)
        .unwrap();
    b.finish()
}

fn encoder(variant: Variant, bs: u32) -> ExtEncoder {
    let mut e = ExtEncoder::new(variant);
    e.block_size = bs;
    e
}

fn write(enc: &ExtEncoder, tree: &Tree) -> Vec<u8> {
    let mut buf = Buffer::default();
    let report = enc.write(&tree.view(), &mut buf).unwrap();
    assert_eq!(report.bytes, buf.0.len() as u64);
    buf.0
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rootforge-ext-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn save(name: &str, image: &[u8]) -> PathBuf {
    let p = scratch(name);
    std::fs::write(&p, image).unwrap();
    p
}

fn fsck(image: &Path) {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "e2fsck -fn {}:\n{text}",
        image.display()
    );
    assert!(
        !text.contains('?'),
        "e2fsck -fn {} asks:\n{text}",
        image.display()
    );
}

fn debugfs(image: &Path, cmd: &str) -> String {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(cmd)
        .arg(image)
        .output()
        .unwrap();
    assert!(out.status.success(), "debugfs {cmd}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const VARIANTS: [Variant; 3] = [Variant::Ext2, Variant::Ext3, Variant::Ext4];

#[test]
fn every_variant_and_block_size_passes_fsck() {
    let tree = sample();
    for v in VARIANTS {
        for bs in [1024, 2048, 4096] {
            let image = write(&encoder(v, bs), &tree);
            let p = save(&format!("sample-{}-{bs}.img", v.name()), &image);
            fsck(&p);
        }
        let mut small_inodes = encoder(v, 4096);
        small_inodes.inode_size = Some(128);
        let p = save(
            &format!("sample-{}-128.img", v.name()),
            &write(&small_inodes, &tree),
        );
        fsck(&p);
    }
}

#[test]
fn large_directories_get_an_htree() {
    let tree = big_dir(5000);
    for v in VARIANTS {
        for bs in [1024, 4096] {
            let image = write(&encoder(v, bs), &tree);
            let p = save(&format!("big-{}-{bs}.img", v.name()), &image);
            fsck(&p);
            let stat = debugfs(&p, "stat /many");
            assert_eq!(
                stat.contains("Flags: 0x1000") || stat.contains("Flags: 0x81000"),
                v != Variant::Ext2,
                "{stat}"
            );
            let ls = debugfs(&p, "ls /many");
            assert!(ls.contains("file-with-a-longish-name-04999"));
        }
    }
}

fn backing(image: Vec<u8>) -> Backing {
    Arc::new(image)
}

/// The tree as read back, without the lost+found the writer adds.
fn read_back(image: Vec<u8>) -> Tree {
    let tree = crate::read(backing(image)).unwrap();
    let mut b = tree.into_builder(meta(0o755, 0, 0, 0));
    b.remove(b"lost+found").unwrap();
    b.finish()
}

fn xattr_listing(tree: &Tree) -> Vec<(Box<[u8]>, Vec<rootforge_common::Xattr>)> {
    let view = tree.view();
    view.sorted_entries()
        .into_iter()
        .map(|e| (e.path, view.inode(e.ino).xattrs.clone()))
        .collect()
}

fn mtimes(tree: &Tree) -> Vec<Time> {
    let view = tree.view();
    view.sorted_entries()
        .into_iter()
        .map(|e| view.inode(e.ino).meta.mtime)
        .collect()
}

#[test]
fn reader_gives_back_the_input_tree() {
    let tree = sample();
    let want = listing::of_view(&tree.view()).unwrap();
    for v in VARIANTS {
        for bs in [1024, 4096] {
            let image = write(&encoder(v, bs), &tree);
            assert!(crate::is_ext(&image));
            let back = read_back(image);
            assert_eq!(listing::of_view(&back.view()).unwrap(), want, "{v:?} {bs}");
            assert_eq!(xattr_listing(&back), xattr_listing(&tree), "{v:?} {bs}");
            assert_eq!(mtimes(&back), mtimes(&tree), "{v:?} {bs}");
        }
    }
}

#[test]
fn debugfs_sees_owners_devices_and_xattrs() {
    let tree = sample();
    let image = write(&encoder(Variant::Ext4, 4096), &tree);
    let p = save("debugfs.img", &image);
    let ls = debugfs(&p, "ls -l /bin");
    assert!(ls.contains("104755 (1)  100000  200000   70000"), "{ls}");
    let stat = debugfs(&p, "stat /dev/big");
    assert!(
        stat.contains("Device major/minor number: 259:70000"),
        "{stat}"
    );
    let stat = debugfs(&p, "stat /future");
    assert!(stat.contains("mtime: 0xee6b2800:ee6b27fd"), "{stat}");
    let cap = debugfs(&p, "ea_get /bin/ping security.capability");
    assert!(cap.contains("02 00 00 02 20 00"), "{cap}");
    let acl = debugfs(&p, "ea_get /shared system.posix_acl_access");
    // debugfs decodes the on-disk (version 1) form back to the VFS one.
    assert!(
        acl.contains("= 02 00 00 00 01 00 07 00 00 00 00 00 02 00 06 00 e8 03 00 00 04 00 05 00"),
        "{acl}"
    );
    let ex = debugfs(&p, "ex /holey");
    assert!(
        ex.contains("1/  2     0 -     1 ") && ex.contains("2/  2     6 -     6 "),
        "{ex}"
    );
}

#[test]
fn output_is_the_same_for_any_thread_count() {
    let tree = big_dir(3000);
    let enc = encoder(Variant::Ext4, 1024);
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| write(&enc, &tree))
    };
    let one = run(1);
    assert_eq!(one, run(4));
    let mut other = enc.clone();
    other.label = "other".into();
    assert_ne!(one, write(&other, &tree));
}

#[test]
fn names_over_255_bytes_are_refused_in_check() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 0));
    let name = vec![b'a'; 256];
    b.insert(&name, file(0o644, &b"x"[..]), Replace::Always)
        .unwrap();
    let tree = b.finish();
    let err = encoder(Variant::Ext4, 4096)
        .check(&tree.view())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("name length is 256, but ext4 allows at most 255"),
        "{err}"
    );
}

#[test]
fn a_fixed_size_too_small_says_what_it_needs() {
    let tree = sample();
    let mut enc = encoder(Variant::Ext4, 4096);
    enc.size = Size::Fixed(1 << 20);
    let mut buf = Buffer::default();
    let err = enc.write(&tree.view(), &mut buf).unwrap_err().to_string();
    assert!(
        err.contains("cannot store the tree in 1048576 bytes: it needs"),
        "{err}"
    );
    assert!(err.contains(" inodes"), "{err}");
    assert!(buf.0.is_empty());
    let mut enc = encoder(Variant::Ext2, 1024);
    enc.inodes = Some(5);
    let err = enc
        .write(&tree.view(), &mut Buffer::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("in 5 inodes: it needs"), "{err}");
}

#[test]
fn a_fixed_size_image_is_exactly_that_size() {
    let tree = sample();
    for v in VARIANTS {
        let mut enc = encoder(v, 4096);
        enc.size = Size::Fixed(64 << 20);
        let image = write(&enc, &tree);
        assert_eq!(image.len(), 64 << 20);
        let p = save(&format!("fixed-{}.img", v.name()), &image);
        fsck(&p);
    }
}

#[test]
fn files_over_4gib_become_holes() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 0));
    let size = 5u64 << 30;
    b.insert(
        b"zeros",
        node(Content::File(FileData::zeros(size))),
        Replace::Always,
    )
    .unwrap();
    // A sparse file with data at 4.5 GiB.
    let data: Backing = Arc::new(pattern(8192, 7));
    let sparse = FileData::sparse(
        data,
        vec![Extent {
            logical: 9 << 29,
            stored: 0,
            len: 8192,
        }],
        size,
    )
    .unwrap();
    b.insert(b"sparse", node(Content::File(sparse)), Replace::Always)
        .unwrap();
    let tree = b.finish();
    for v in VARIANTS {
        let image = write(&encoder(v, 4096), &tree);
        assert!(image.len() < 64 << 20, "{}", image.len());
        let p = save(&format!("huge-{}.img", v.name()), &image);
        fsck(&p);
        let back = read_back(image);
        let view = back.view();
        for (path, want) in [
            (&b"zeros"[..], vec![0u8; 8192]),
            (b"sparse", pattern(8192, 7)),
        ] {
            let Content::File(d) = &view.inode(view.lookup(path).unwrap()).content else {
                panic!("not a file");
            };
            assert_eq!(d.size(), size);
            let mut got = vec![1u8; 8192];
            d.read_at(9 << 29, &mut got).unwrap();
            assert_eq!(got, want);
            d.read_at(size - 8192, &mut got).unwrap();
            assert_eq!(got, vec![0u8; 8192]);
        }
    }
}

#[test]
fn feature_edits_use_mke2fs_syntax() {
    let enc = ExtEncoder::new(Variant::Ext4)
        .with_features("^metadata_csum,^64bit")
        .unwrap();
    assert!(
        !enc.features
            .has_ro_compat(crate::disk::RO_COMPAT_METADATA_CSUM)
    );
    assert!(
        ExtEncoder::new(Variant::Ext4)
            .with_features("bogus")
            .is_err()
    );
    let tree = sample();
    let p = save("nocsum.img", &write(&enc, &tree));
    fsck(&p);
    let sb = Command::new("dumpe2fs").arg("-h").arg(&p).output().unwrap();
    let sb = String::from_utf8_lossy(&sb.stdout);
    assert!(sb.contains("Filesystem features:      has_journal ext_attr dir_index filetype extent flex_bg sparse_super large_file huge_file dir_nlink extra_isize\n"), "{sb}");
}

#[test]
fn a_debian_rootfs_passes_fsck() {
    let Ok(bytes) = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/corpus/tiny.tar"
    )) else {
        return;
    };
    let opts = rootforge_tar::ReadOptions {
        implicit_dir: meta(0o755, 0, 0, 0),
        clamp_mtime: None,
        ..Default::default()
    };
    let tree = rootforge_tar::read(backing(bytes), &opts).unwrap().tree;
    let want = listing::of_view(&tree.view()).unwrap();
    for v in VARIANTS {
        for bs in [1024, 4096] {
            let image = write(&encoder(v, bs), &tree);
            let p = save(&format!("tiny-{}-{bs}.img", v.name()), &image);
            fsck(&p);
            let back = read_back(image);
            assert_eq!(listing::of_view(&back.view()).unwrap(), want);
            assert_eq!(xattr_listing(&back), xattr_listing(&tree));
        }
    }
    let enc = encoder(Variant::Ext4, 4096);
    let in_pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| write(&enc, &tree))
    };
    assert_eq!(in_pool(1), in_pool(3));
}

/// The kernel mounts each variant with its own type name and finds names
/// in an htree directory by hash. Needs root (loop devices).
#[test]
fn the_kernel_mounts_every_variant() {
    assert!(
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n"),
        "this test needs root: it mounts images on loop devices"
    );
    let mut b = big_dir(3000).into_builder(meta(0o755, 0, 0, 0));
    let mut f = file(0o640, &b"payload"[..]);
    f.set_xattr(b"user.tag", b"v1");
    b.insert(b"etc/tagged", f, Replace::Always).unwrap();
    let tree = b.finish();
    for v in VARIANTS {
        let image = write(&encoder(v, 1024), &tree);
        let img = save(&format!("mount-{}.img", v.name()), &image);
        let mnt = scratch(&format!("mnt-{}", v.name()));
        std::fs::create_dir_all(&mnt).unwrap();
        let ok = Command::new("mount")
            .args(["-o", "loop,ro", "-t", v.name()])
            .arg(&img)
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(ok.success(), "mount -t {}", v.name());
        let read = std::fs::read(mnt.join("many/file-with-a-longish-name-02345"));
        let count = std::fs::read_dir(mnt.join("many")).map(|d| d.count());
        let high = {
            use std::os::unix::ffi::OsStrExt;
            let mut name = "\u{e9}t\u{e9}-2999".as_bytes().to_vec();
            name.push(0xff);
            std::fs::read(mnt.join("many").join(std::ffi::OsStr::from_bytes(&name)))
        };
        let tag = Command::new("getfattr")
            .args(["--only-values", "-n", "user.tag"])
            .arg(mnt.join("etc/tagged"))
            .output();
        Command::new("umount").arg(&mnt).status().unwrap();
        assert_eq!(read.unwrap(), b"2345");
        assert_eq!(count.unwrap(), 6001);
        assert_eq!(high.unwrap(), b"high");
        if let Ok(tag) = tag {
            assert_eq!(tag.stdout, b"v1");
        }
    }
}

#[test]
fn the_reader_refuses_garbage() {
    let image = write(&encoder(Variant::Ext4, 1024), &sample());
    for len in [0, 100, 2047, 4000] {
        let cut = image[..len.min(image.len())].to_vec();
        assert!(crate::read(backing(cut)).is_err(), "{len} bytes");
    }
    // Flip bytes across the metadata: errors, never panics.
    for at in (1024..image.len().min(200_000)).step_by(97) {
        let mut bad = image.clone();
        bad[at] ^= 0x5a;
        let _ = crate::read(backing(bad));
    }
}

#[test]
fn the_uuid_follows_file_contents() {
    let uuid =
        |tree: &Tree| write(&encoder(Variant::Ext2, 1024), tree)[1024 + 0x68..1024 + 0x78].to_vec();
    let tree = sample();
    let mut b = sample().into_builder(meta(0o755, 0, 0, 0));
    b.insert(
        b"etc/passwd",
        file(0o644, &b"root:x:0:0::/root:/bin/bash"[..]),
        Replace::Always,
    )
    .unwrap();
    let mut same_size = sample().into_builder(meta(0o755, 0, 0, 0));
    same_size
        .insert(
            b"etc/passwd",
            file(0o644, &b"toor:x:0:0::/root:/bin/sh\n"[..]),
            Replace::Always,
        )
        .unwrap();
    let a = uuid(&tree);
    assert_eq!(a, uuid(&sample()));
    assert_ne!(a, uuid(&b.finish()));
    assert_ne!(a, uuid(&same_size.finish()));
}

/// ext4-view, an independent reader that also verifies checksums, sees
/// the same types, owners, modes, sizes, contents and link targets.
fn check_with_ext4_view(image: Vec<u8>, tree: &Tree) {
    let fs = ext4_view::Ext4::load(Box::new(image)).unwrap();
    let view = tree.view();
    for e in view.sorted_entries() {
        let mut path = b"/".to_vec();
        path.extend_from_slice(&e.path);
        let p = ext4_view::Path::try_from(path.as_slice()).unwrap();
        let inode = view.inode(e.ino);
        let md = fs
            .symlink_metadata(p)
            .unwrap_or_else(|err| panic!("{}: {err}", String::from_utf8_lossy(&path)));
        let name = String::from_utf8_lossy(&path).into_owned();
        assert_eq!(md.mode() & 0o7777, inode.meta.perm, "{name}");
        assert_eq!(
            md.is_dir(),
            inode.kind() == rootforge_common::Kind::Dir,
            "{name}"
        );
        assert_eq!(
            md.is_symlink(),
            inode.kind() == rootforge_common::Kind::Symlink,
            "{name}"
        );
        assert_eq!(
            (md.uid(), md.gid()),
            (inode.meta.uid, inode.meta.gid),
            "{name}"
        );
        match &inode.content {
            Content::File(d) => {
                assert_eq!(md.len(), d.size(), "{name}");
                assert!(fs.read(p).unwrap() == d.to_vec().unwrap(), "{name}");
            }
            Content::Symlink(t) => {
                assert_eq!(fs.read_link(p).unwrap().as_ref(), &t[..], "{name}");
            }
            _ => {}
        }
    }
}

#[test]
fn ext4_view_reads_what_we_wrote() {
    // ext4-view 1.0 rejects seconds fields with the top bit set, which the
    // kernel writes for times before 1970 and after 2038.
    let mut b = sample().into_builder(meta(0o755, 0, 0, 0));
    b.remove(b"past").unwrap();
    b.remove(b"future").unwrap();
    let tree = b.finish();
    for bs in [1024, 4096] {
        check_with_ext4_view(write(&encoder(Variant::Ext4, bs), &tree), &tree);
    }
    let tree = big_dir(2000);
    check_with_ext4_view(write(&encoder(Variant::Ext4, 1024), &tree), &tree);
}

#[test]
fn auto_size_keeps_the_headroom_free() {
    let tree = sample();
    let mut enc = encoder(Variant::Ext4, 4096);
    enc.size = Size::Auto { headroom: 10 << 20 };
    let image = write(&enc, &tree);
    let free_blocks = u32::from_le_bytes(image[1024 + 0xC..1024 + 0x10].try_into().unwrap());
    let free_inodes = u32::from_le_bytes(image[1024 + 0x10..1024 + 0x14].try_into().unwrap());
    assert!(free_blocks >= 2560, "{free_blocks}");
    assert!(free_inodes >= 640, "{free_inodes}");
    let tight = write(&encoder(Variant::Ext4, 4096), &tree);
    assert!(tight.len() + (10 << 20) <= image.len());
}

/// A read-write mount can add and remove files, and the result is still
/// clean: the journal and the free-space accounting are usable. Needs root.
#[test]
fn the_kernel_writes_to_our_images() {
    assert!(
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n"),
        "this test needs root: it mounts images read-write on loop devices"
    );
    let tree = sample();
    for v in VARIANTS {
        let mut enc = encoder(v, 1024);
        enc.size = Size::Auto { headroom: 8 << 20 };
        let img = save(&format!("rw-{}.img", v.name()), &write(&enc, &tree));
        let mnt = scratch(&format!("rw-mnt-{}", v.name()));
        std::fs::create_dir_all(&mnt).unwrap();
        let ok = Command::new("mount")
            .args(["-o", "loop", "-t", v.name()])
            .arg(&img)
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(ok.success(), "mount -t {}", v.name());
        let mut wrote = Ok(());
        for i in 0..300 {
            wrote = wrote.and(std::fs::write(
                mnt.join(format!("shared/new-{i}")),
                pattern(5000, 1),
            ));
        }
        let removed = std::fs::remove_file(mnt.join("bin/ping-link"));
        Command::new("umount").arg(&mnt).status().unwrap();
        wrote.unwrap();
        removed.unwrap();
        fsck(&img);
    }
}
