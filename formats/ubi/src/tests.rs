//! Images read back by our reader, and compared byte for byte with
//! mtd-utils' ubinize (which must be installed).

use std::process::Command;

use rootforge_common::FileData;

use crate::{Geometry, Ubinize, Volume, VolumeType, parse_ini, read};

fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn ours(u: &Ubinize) -> Vec<u8> {
    let mut out = Vec::new();
    let n = u.write(&mut out).unwrap();
    assert_eq!(n, out.len() as u64);
    assert_eq!(u.size().unwrap(), n);
    out
}

#[test]
fn buildroot_volume_reads_back() {
    let data = noise(300_000, 1);
    let u = Ubinize {
        geometry: Geometry::new(128 << 10, 2048),
        volumes: vec![Volume::buildroot_rootfs(FileData::bytes(data.clone()))],
    };
    let img = ours(&u);
    assert!(crate::is_ubi(&img));
    let vols = read(&img, 128 << 10).unwrap();
    assert_eq!(vols.len(), 1);
    assert_eq!(vols[0].name, b"rootfs");
    assert_eq!(vols[0].flags, 1);
    assert_eq!(&vols[0].data[..data.len()], &data[..]);
    // Deterministic, and the sequence number follows the content.
    assert_eq!(ours(&u), img);
    let mut other = u.clone();
    other.volumes[0].image = Some(FileData::bytes(noise(300_000, 2)));
    assert_ne!(ours(&other)[24..28], img[24..28]);
}

#[test]
fn refuses_what_ubinize_refuses() {
    let mut u = Ubinize {
        geometry: Geometry::new(128 << 10, 2048),
        volumes: vec![Volume::buildroot_rootfs(FileData::bytes(vec![1; 10]))],
    };
    u.volumes[0].size = Some(5);
    assert!(u.size().is_err());
    u.volumes[0].size = None;
    u.geometry.min_io_size = 3000;
    assert!(u.size().is_err());
    u.geometry.min_io_size = 2048;
    u.volumes
        .push(Volume::buildroot_rootfs(FileData::bytes(vec![1; 10])));
    assert!(u.size().is_err());
}

/// ubinize's output for the same configuration, images and -Q.
fn ubinize(dir: &std::path::Path, cfg: &str, args: &[&str]) -> Vec<u8> {
    std::fs::write(dir.join("ubinize.cfg"), cfg).unwrap();
    let out = dir.join("out.ubi");
    let st = Command::new("ubinize")
        .current_dir(dir)
        .arg("-o")
        .arg(&out)
        .args(args)
        .arg(dir.join("ubinize.cfg"))
        .output()
        .expect("ubinize (mtd-utils) is needed");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    std::fs::read(out).unwrap()
}

fn geometry_of(args: &[&str]) -> Geometry {
    let mut g = Geometry::new(0, 0);
    let num = |s: &str| -> u64 {
        for (u, m) in [("KiB", 1u64 << 10), ("MiB", 1 << 20)] {
            if let Some(n) = s.strip_suffix(u) {
                return n.parse::<u64>().unwrap() * m;
            }
        }
        s.strip_prefix("0x").map_or_else(
            || s.parse().unwrap(),
            |h| u64::from_str_radix(h, 16).unwrap(),
        )
    };
    for pair in args.chunks(2) {
        let v = num(pair[1]);
        match pair[0] {
            "-p" => g.peb_size = v as u32,
            "-m" => g.min_io_size = v as u32,
            "-s" => g.sub_page_size = Some(v as u32),
            "-O" => g.vid_hdr_offset = Some(v as u32),
            "-e" => g.erase_counter = v,
            "-x" => g.ubi_version = v as u8,
            "-Q" => g.image_seq = Some(v as u32),
            f => panic!("{f}"),
        }
    }
    g
}

#[test]
fn same_bytes_as_ubinize() {
    let dir = std::env::temp_dir().join(format!("h-flash-ubi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.img"), noise(700_001, 5)).unwrap();
    std::fs::write(dir.join("b.img"), noise(5000, 6)).unwrap();
    let buildroot = "[ubifs]\nmode=ubi\nvol_id=0\nvol_type=dynamic\nvol_name=rootfs\nvol_alignment=1\nvol_flags=autoresize\nimage=a.img\n";
    let multi = "# two volumes\n[Kernel]\nmode=ubi\nimage=b.img\nvol_id=3\nvol_type=static\nvol_name=kernel\n\n[data]\nmode = ubi\nvol_id = 1\nvol_size = 2MiB\nvol_name = data ; empty\nvol_alignment=2048\n\n[root]\nmode=ubi\nimage=a.img\nvol_id=0\nvol_size=1MiB\nvol_name=rootfs\nvol_flags=autoresize\n";
    let geometries: [&[&str]; 5] = [
        &["-p", "128KiB", "-m", "2048", "-Q", "12345"],
        &["-p", "256KiB", "-m", "4096", "-Q", "1"],
        &["-p", "128KiB", "-m", "2048", "-s", "512", "-Q", "99"],
        &[
            "-p",
            "0x20000",
            "-m",
            "2048",
            "-O",
            "2048",
            "-e",
            "7",
            "-Q",
            "4000000000",
        ],
        &["-p", "64KiB", "-m", "1", "-x", "1", "-Q", "5"],
    ];
    for cfg in [buildroot, multi] {
        for args in geometries {
            let want = ubinize(&dir, cfg, args);
            let volumes = parse_ini(cfg, &mut |p| {
                std::fs::read(dir.join(p))
                    .map(FileData::bytes)
                    .map_err(|e| e.to_string())
            })
            .unwrap();
            let u = Ubinize {
                geometry: geometry_of(args),
                volumes,
            };
            let got = ours(&u);
            assert_eq!(got.len(), want.len(), "{args:?}\n{cfg}");
            if let Some(at) = got.iter().zip(&want).position(|(a, b)| a != b) {
                panic!("{args:?}: first difference at byte {at}\n{cfg}");
            }
        }
    }
    let vols = parse_ini(multi, &mut |p| {
        std::fs::read(dir.join(p))
            .map(FileData::bytes)
            .map_err(|e| e.to_string())
    })
    .unwrap();
    assert_eq!(vols.len(), 3);
    assert_eq!(vols[0].vtype, VolumeType::Static);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Flipped bytes and cut images fail cleanly, never panic.
#[test]
fn corrupt_images_fail_cleanly() {
    let u = Ubinize {
        geometry: Geometry::new(16 << 10, 512),
        volumes: vec![Volume::buildroot_rootfs(FileData::bytes(noise(40_000, 9)))],
    };
    let img = ours(&u);
    for at in (0..img.len()).step_by(61) {
        let mut bad = img.clone();
        bad[at] ^= 0xa5;
        let _ = read(&bad, 16 << 10);
    }
    for len in (0..img.len()).step_by(509) {
        let _ = read(&img[..len], 16 << 10);
    }
}

/// Sections of other modes are skipped (ubinize itself crashes on them).
#[test]
fn other_modes_are_skipped() {
    let cfg = "[a]\nmode=raw\n[B]\nMode=ubi\nvol_id=0x2\nvol_size=1KiB\nvol_name=\"b\"\n";
    let vols = parse_ini(cfg, &mut |_| Err("no images".into())).unwrap();
    assert_eq!(vols.len(), 1);
    assert_eq!(
        (vols[0].id, vols[0].size, &vols[0].name[..]),
        (2, Some(1024), &b"b"[..])
    );
    assert!(parse_ini("[a]\nvol_id=1\n", &mut |_| Err(String::new())).is_err());
}
