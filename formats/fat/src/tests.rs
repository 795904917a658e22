//! Roundtrips through our reader, and the geometry against mkfs.fat's.

use rootforge_common::{
    Buffer, Content, Edit, Encoder, FileData, Inode, Kind, Meta, Replace, Time, Tree, TreeBuilder,
};

use sha2::Digest;

use crate::{FatEncoder, FatOptions, FatSize, FatType, read_volume};

fn meta(perm: u16, t: i64) -> Meta {
    Meta::new(perm, 0, 0, Time::from_secs(t))
}

fn sample() -> Tree {
    let mut b = TreeBuilder::new(meta(0o755, 1_600_000_000));
    let file = |data: &[u8], t| {
        Inode::new(
            meta(0o644, t),
            Content::File(FileData::bytes(data.to_vec())),
        )
    };
    b.insert(
        b"README.TXT",
        file(b"upper", 1_600_000_000),
        Replace::Always,
    )
    .unwrap();
    b.insert(
        b"readme2.txt",
        file(b"lower", 1_600_000_002),
        Replace::Always,
    )
    .unwrap();
    b.insert(
        b"EFI/BOOT/bootx64.efi",
        file(&[7u8; 5000], 1_600_000_004),
        Replace::Always,
    )
    .unwrap();
    b.insert(
        b"a long file name with spaces.conf",
        file(b"long", 1_600_000_006),
        Replace::Always,
    )
    .unwrap();
    b.insert(
        b"extlinux/extlinux.conf",
        file(b"label linux\n", 1_600_000_008),
        Replace::Always,
    )
    .unwrap();
    b.insert(b"empty", file(b"", 1_600_000_010), Replace::Always)
        .unwrap();
    b.insert(
        b"zeros.bin",
        Inode::new(
            meta(0o444, 1_600_000_012),
            Content::File(FileData::zeros(70_000)),
        ),
        Replace::Always,
    )
    .unwrap();
    b.insert(b"Mixed.Case", file(b"m", 1_600_000_014), Replace::Always)
        .unwrap();
    b.insert(
        b"emptydir",
        Inode::dir(meta(0o755, 1_600_000_016)),
        Replace::Always,
    )
    .unwrap();
    b.insert(
        b"h\xc3\xa9llo w\xc3\xb6rld.txt",
        file(b"utf", 1_600_000_018),
        Replace::Always,
    )
    .unwrap();
    for i in 0..40 {
        let name = format!("many/longer-name-{i:03}.dat");
        b.insert(
            name.as_bytes(),
            file(name.as_bytes(), 1_600_000_020),
            Replace::Always,
        )
        .unwrap();
    }
    b.finish()
}

fn listing(t: &Tree) -> Vec<String> {
    t.view()
        .sorted_entries()
        .iter()
        .skip(1)
        .map(|e| {
            let i = t.view().inode(e.ino);
            let data = match &i.content {
                Content::File(d) => d.to_vec().unwrap(),
                _ => Vec::new(),
            };
            format!(
                "{} {:?} {:o} {} {} {:?}",
                String::from_utf8_lossy(&e.path),
                i.kind(),
                i.meta.perm,
                i.meta.mtime.sec,
                data.len(),
                &sha2::Sha256::digest(&data)[..8]
            )
        })
        .collect()
}

fn build(tree: &Tree, o: FatOptions) -> Vec<u8> {
    let enc = FatEncoder::new(o);
    let mut out = Buffer::default();
    enc.write(&tree.view(), &mut out).unwrap();
    out.0
}

#[test]
fn every_fat_type_round_trips() {
    let tree = sample();
    let want = listing(&tree);
    for (t, size) in [
        (FatType::Fat12, 2u64 << 20),
        (FatType::Fat16, 16 << 20),
        (FatType::Fat32, 64 << 20),
    ] {
        let img = build(
            &tree,
            FatOptions {
                size: FatSize::Fixed(size),
                fat_type: Some(t),
                label: Some("BOOT".into()),
                ..FatOptions::default()
            },
        );
        assert_eq!(img.len() as u64, size);
        assert!(crate::is_fat(&img));
        let v = read_volume(std::sync::Arc::new(img)).unwrap();
        assert_eq!(v.geometry.fat_type, t);
        assert_eq!(v.label.as_deref(), Some("BOOT"));
        assert_eq!(listing(&v.tree), want, "{t:?}");
    }
}

#[test]
fn output_is_deterministic_and_the_volume_id_depends_on_the_tree() {
    let tree = sample();
    let a = build(&tree, FatOptions::default());
    let b = build(&tree, FatOptions::default());
    assert_eq!(a, b);
    let mut other = tree.clone().into_builder(meta(0o755, 0));
    other
        .insert(
            b"x",
            Inode::new(meta(0o644, 1_600_000_000), Content::File(FileData::empty())),
            Replace::Always,
        )
        .unwrap();
    let c = build(&other.finish(), FatOptions::default());
    assert_ne!(a[39..43], c[39..43]);
    let d = build(
        &tree,
        FatOptions {
            volume_id: Some(0x1234_abcd),
            ..FatOptions::default()
        },
    );
    assert_eq!(d[39..43], 0x1234_abcdu32.to_le_bytes());
}

#[test]
fn geometry_matches_mkfs_fat() {
    // fsck.fat -v of `truncate -s SIZE; mkfs.fat` (dosfstools 4.2):
    // (size, type, cluster bytes, reserved, FAT sectors, root entries,
    // total sectors, clusters).
    type Case = (u64, FatType, u64, u32, u32, u32, u32, u32);
    let cases: [Case; 13] = [
        (1 << 20, FatType::Fat12, 2048, 1, 2, 512, 2048, 502),
        (2 << 20, FatType::Fat12, 2048, 1, 3, 512, 4096, 1014),
        (4 << 20, FatType::Fat12, 2048, 1, 6, 512, 8192, 2036),
        (5 << 20, FatType::Fat12, 2048, 4, 8, 512, 10240, 2547),
        (16 << 20, FatType::Fat16, 2048, 4, 32, 512, 32768, 8167),
        (32 << 20, FatType::Fat16, 2048, 4, 64, 512, 65536, 16343),
        (64 << 20, FatType::Fat16, 2048, 4, 128, 512, 131_072, 32695),
        (128 << 20, FatType::Fat16, 2048, 4, 256, 512, 262_144, 65399),
        (256 << 20, FatType::Fat16, 4096, 8, 256, 512, 524_288, 65467),
        (
            300 << 20,
            FatType::Fat16,
            8192,
            16,
            160,
            512,
            614_376,
            38375,
        ),
        (
            511 << 20,
            FatType::Fat16,
            8192,
            16,
            256,
            512,
            1_046_493,
            65370,
        ),
        (
            512 << 20,
            FatType::Fat32,
            4096,
            32,
            1024,
            0,
            1_048_572,
            130_811,
        ),
        (
            1 << 30,
            FatType::Fat32,
            4096,
            32,
            2048,
            0,
            2_097_144,
            261_627,
        ),
    ];
    let enc = FatEncoder::default();
    for (size, t, cb, res, fs, root, total, clusters) in cases {
        let g = enc.geometry(size).unwrap();
        assert_eq!(
            (
                g.fat_type,
                g.cluster_bytes(),
                g.reserved_sectors,
                g.fat_sectors,
                g.root_entries,
                g.total_sectors,
                g.clusters
            ),
            (t, cb, res, fs, root, total, clusters),
            "{size}"
        );
    }
}

#[test]
fn what_fat_cannot_hold_is_an_error() {
    let mut b = TreeBuilder::new(meta(0o755, 0));
    b.insert(
        b"link",
        Inode::new(meta(0o777, 0), Content::Symlink(b"x".to_vec().into())),
        Replace::Always,
    )
    .unwrap();
    let t = b.finish();
    let e = FatEncoder::default()
        .check(&t.view())
        .unwrap_err()
        .to_string();
    assert!(e.contains("/link") && e.contains("symlink"), "{e}");

    let mut b = TreeBuilder::new(meta(0o755, 0));
    b.insert(
        b"big",
        Inode::new(meta(0o644, 0), Content::File(FileData::zeros(4 << 30))),
        Replace::Always,
    )
    .unwrap();
    let e = FatEncoder::default()
        .check(&b.finish().view())
        .unwrap_err()
        .to_string();
    assert!(e.contains("/big") && e.contains("4294967295"), "{e}");

    let tree = sample();
    let e = FatEncoder::new(FatOptions {
        size: FatSize::Fixed(64 << 10),
        ..FatOptions::default()
    })
    .check(&tree.view())
    .unwrap_err()
    .to_string();
    assert!(e.contains("would do"), "{e}");
}

#[test]
fn warnings_count_what_is_lost() {
    let mut b = TreeBuilder::new(meta(0o755, 1_600_000_000));
    b.insert(
        b"a",
        Inode::new(
            Meta::new(0o4755, 5, 5, Time::from_secs(1)),
            Content::File(FileData::empty()),
        ),
        Replace::Always,
    )
    .unwrap();
    let t = b.finish();
    let mut out = Buffer::default();
    let r = FatEncoder::default().write(&t.view(), &mut out).unwrap();
    let w = r.warnings.join("\n");
    assert!(
        w.contains("1 entries owned")
            && w.contains("1 entries with permissions")
            && w.contains("1 mtimes outside"),
        "{w}"
    );
}

#[test]
fn reader_survives_garbage() {
    let tree = sample();
    let img = build(
        &tree,
        FatOptions {
            size: FatSize::Fixed(2 << 20),
            ..FatOptions::default()
        },
    );
    // Flip bytes all over the metadata; the reader may fail, never panic.
    for step in [1usize, 7, 13, 31, 97] {
        let mut bad = img.clone();
        for i in (0..40_000).step_by(step) {
            bad[i] ^= 0x5A;
        }
        let _ = read_volume(std::sync::Arc::new(bad));
    }
    // A FAT that loops.
    let mut looped = img.clone();
    let fat = 512;
    looped[fat + 3] = 0x02;
    looped[fat + 4] = 0x20;
    let _ = read_volume(std::sync::Arc::new(looped));
    let _ = read_volume(std::sync::Arc::new(img[..1000].to_vec()));
    let _ = Kind::File;
}

#[test]
fn scratch_dump() {
    let Ok(dir) = std::env::var("FAT_DUMP") else {
        return;
    };
    let tree = sample();
    for (t, size) in [
        (FatType::Fat12, 2u64 << 20),
        (FatType::Fat16, 16 << 20),
        (FatType::Fat32, 64 << 20),
    ] {
        let img = build(
            &tree,
            FatOptions {
                size: FatSize::Fixed(size),
                fat_type: Some(t),
                label: Some("BOOT".into()),
                ..FatOptions::default()
            },
        );
        std::fs::write(format!("{dir}/{t:?}.img"), img).unwrap();
    }
    let img = build(
        &tree,
        FatOptions {
            size: FatSize::Fixed(64 << 20),
            fat_type: Some(FatType::Fat32),
            reserved_sectors: Some(4),
            sector_size: 4096,
            ..FatOptions::default()
        },
    );
    std::fs::write(format!("{dir}/fat32-r4.img"), img).unwrap();
}

#[test]
fn compact_volumes_are_exactly_what_the_tree_needs() {
    let tree = sample();
    let img = build(
        &tree,
        FatOptions {
            size: FatSize::Compact,
            ..FatOptions::default()
        },
    );
    let v = read_volume(std::sync::Arc::new(img.clone())).unwrap();
    assert_eq!(v.geometry.volume_bytes(), img.len() as u64);
    assert_eq!(v.geometry.sectors_per_cluster, 1);
    assert_eq!(v.geometry.fat_type, FatType::Fat12);
    assert_eq!(listing(&v.tree), listing(&tree));
}

#[test]
fn geometry_with_options_matches_mkfs_fat() {
    // fsck.fat -v of mkfs.fat 4.2 with the options named.
    let o = |f: &dyn Fn(&mut FatOptions)| {
        let mut x = FatOptions::default();
        f(&mut x);
        x
    };
    type Case = (&'static str, FatOptions, u64, [u64; 8]);
    // [sector, cluster bytes, reserved, fats, FAT sectors, root, clusters, total]
    let cases: Vec<Case> = vec![
        (
            "-S 4096",
            o(&|x| x.sector_size = 4096),
            64 << 20,
            [4096, 16384, 4, 2, 4, 512, 4092, 16384],
        ),
        (
            "-S 1024",
            o(&|x| x.sector_size = 1024),
            16 << 20,
            [1024, 4096, 4, 2, 8, 512, 4087, 16384],
        ),
        (
            "-F 32",
            o(&|x| x.fat_type = Some(FatType::Fat32)),
            64 << 20,
            [512, 512, 32, 2, 1009, 0, 129_022, 131_072],
        ),
        (
            "-s 1",
            o(&|x| x.cluster_size = Some(512)),
            16 << 20,
            [512, 512, 1, 2, 127, 512, 32481, 32768],
        ),
        (
            "-F 12",
            o(&|x| x.fat_type = Some(FatType::Fat12)),
            16 << 20,
            [512, 8192, 16, 2, 16, 512, 2043, 32768],
        ),
        (
            "-f 1",
            o(&|x| x.fats = 1),
            128 << 20,
            [512, 2048, 4, 1, 256, 512, 65463, 262_144],
        ),
        (
            "-r 1024",
            o(&|x| x.root_entries = Some(1024)),
            32 << 20,
            [512, 2048, 4, 2, 64, 1024, 16335, 65536],
        ),
        (
            "-R 8",
            o(&|x| x.reserved_sectors = Some(8)),
            8 << 20,
            [512, 2048, 8, 2, 12, 512, 4080, 16384],
        ),
    ];
    for (what, opts, size, want) in cases {
        let g = FatEncoder::new(opts).geometry(size).unwrap();
        let got = [
            u64::from(g.sector_size),
            g.cluster_bytes(),
            u64::from(g.reserved_sectors),
            u64::from(g.fats),
            u64::from(g.fat_sectors),
            u64::from(g.root_entries),
            u64::from(g.clusters),
            u64::from(g.total_sectors),
        ];
        assert_eq!(got, want, "{what}");
    }
    // mkfs.fat -F 16 refuses 4 MiB: too few clusters for FAT16.
    let f16 = FatEncoder::new(o(&|x| x.fat_type = Some(FatType::Fat16)));
    assert!(f16.geometry(4 << 20).is_err());
}
