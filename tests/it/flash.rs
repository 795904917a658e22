//! Flash images: JFFS2 read back by jefferson (PyPI) and by the kernel from
//! simulated NOR flash (mtdram), and UBI attached by the kernel from
//! simulated NAND (nandsim) with a squashfs volume read through ubiblock.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use rootforge_common::Kind;
use rootforge_common::listing::Line;
use rootforge_ubi::{Geometry, Ubinize, Volume};

use crate::util::{build, require_tool, tiny_corpus};
use crate::vm::{assert_same_listing, host_listing, vm_listing_flash};

fn input_listing() -> Vec<Line> {
    rootforge::inspect::listing(&tiny_corpus()).unwrap()
}

/// The kernel mounts our JFFS2 images from NOR flash of 64 KiB erase blocks
/// with cleanmarkers and of 128 KiB without (padded, as for NAND), with
/// zlib, lzo and rtime, with and without summary nodes (the kernel then
/// mounts from the summaries alone), and from NAND of 128 KiB blocks.
#[test]
fn kernel_mounts_jffs2_from_nor_and_nand_flash() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    build(
        &tiny_corpus(),
        &a,
        &["-f", "jffs2", "--jffs2-eraseblock", "64K"],
    );
    let b = tmp.path().join("b");
    build(
        &tiny_corpus(),
        &b,
        &[
            "-f",
            "jffs2",
            "--jffs2-eraseblock",
            "0x20000",
            "--jffs2-no-cleanmarkers",
            "--jffs2-pad",
            "--jffs2-compr",
            "lzo",
        ],
    );
    let c = tmp.path().join("c");
    build(
        &tiny_corpus(),
        &c,
        &[
            "-f",
            "jffs2",
            "--jffs2-eraseblock",
            "64K",
            "--jffs2-summary",
        ],
    );
    let d = tmp.path().join("d");
    build(
        &tiny_corpus(),
        &d,
        &[
            "-f",
            "jffs2",
            "--jffs2-eraseblock",
            "128K",
            "--jffs2-summary",
            "--jffs2-no-cleanmarkers",
            "--jffs2-compr",
            "rtime",
        ],
    );
    let images: [(&Path, &str); 5] = [
        (&a.join("rootfs.jffs2"), "mtdram.64.jffs2"),
        (&b.join("rootfs.jffs2"), "mtdram.128.jffs2"),
        (&c.join("rootfs.jffs2"), "mtdram.64.jffs2"),
        (&d.join("rootfs.jffs2"), "mtdram.128.jffs2"),
        // NAND: no cleanmarkers in the data area, 128 KiB erase blocks.
        (&d.join("rootfs.jffs2"), "nandsim.raw.jffs2"),
    ];
    let want = input_listing();
    for ((image, _), got) in images.iter().zip(vm_listing_flash(&images)) {
        assert_same_listing(&image.display().to_string(), &got, &want);
    }
}

/// A UBI image of Buildroot's single autoresize volume, holding a squashfs
/// image, attached by the kernel from simulated NAND (2 KiB pages, 512-byte
/// sub-pages, 128 KiB PEBs) and read through ubiblock.
#[test]
fn kernel_attaches_ubi_from_nand_flash() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    build(&tiny_corpus(), &a, &["-f", "squashfs"]);
    let sq = std::fs::read(a.join("rootfs.squashfs")).unwrap();
    let mut geometry = Geometry::new(128 << 10, 2048);
    geometry.sub_page_size = Some(512);
    let u = Ubinize {
        geometry,
        volumes: vec![Volume::buildroot_rootfs(rootforge_common::FileData::bytes(
            sq,
        ))],
    };
    let mut img = Vec::new();
    u.write(&mut img).unwrap();
    let ubi = tmp.path().join("rootfs.ubi");
    std::fs::write(&ubi, img).unwrap();
    let got = vm_listing_flash(&[(&ubi, "nandsim.ubi.squashfs")]);
    assert_same_listing("rootfs.ubi", &got[0], &input_listing());
}

/// jefferson extracts our image as it extracts mkfs.jffs2's: every file,
/// directory and symlink with its content, but only one name of a hard-link
/// group and none of the fifos, sockets and devices (it skips them).
#[test]
fn jefferson_extracts_jffs2() {
    let jefferson = require_tool("jefferson");
    let tmp = tempfile::tempdir().unwrap();
    for (n, args) in [
        &["-f", "jffs2"][..],
        &[
            "-f",
            "jffs2",
            "--jffs2-endian",
            "big",
            "--jffs2-compr",
            "rtime",
        ],
        &[
            "-f",
            "jffs2",
            "--jffs2-compr",
            "none",
            "--jffs2-no-cleanmarkers",
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let out = tmp.path().join(format!("o{n}"));
        build(&tiny_corpus(), &out, args);
        let dest = tmp.path().join(format!("x{n}"));
        let st = Command::new(&jefferson)
            .arg("-d")
            .arg(&dest)
            .arg(out.join("rootfs.jffs2"))
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        // Content only: jefferson sets no owner, mode or time.
        let key = |l: &Line| (l.path.clone(), l.kind, l.size, l.detail.clone());
        let got: BTreeSet<_> = host_listing(&dest).iter().map(key).collect();
        let want = input_listing();
        let want_set: BTreeSet<_> = want.iter().map(key).collect();
        let extra: Vec<_> = got.difference(&want_set).collect();
        assert!(
            extra.is_empty(),
            "{args:?}: jefferson extracted what the input lacks: {extra:?}"
        );
        for l in &want {
            let skipped = matches!(
                l.kind,
                Kind::Fifo | Kind::Socket | Kind::CharDev | Kind::BlockDev
            ) || (l.kind == Kind::File
                && want.iter().any(|o| {
                    o.path != l.path
                        && o.kind == Kind::File
                        && o.detail == l.detail
                        && got.contains(&key(o))
                }));
            assert!(
                got.contains(&key(l)) || skipped,
                "{args:?}: jefferson did not extract {}",
                l.path
            );
        }
    }
}

/// `rootforge buildroot` maps Buildroot's JFFS2 options as fs/jffs2/jffs2.mk
/// passes them to mkfs.jffs2 and sumtool.
#[test]
fn buildroot_maps_jffs2() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join(".config");
    std::fs::write(
        &config,
        "BR2_ENDIAN=\"BIG\"\nBR2_TARGET_ROOTFS_JFFS2=y\nBR2_TARGET_ROOTFS_JFFS2_NANDFLASH_2K_128K=y\n\
         BR2_TARGET_ROOTFS_JFFS2_PAGESIZE=0x800\nBR2_TARGET_ROOTFS_JFFS2_EBSIZE=0x20000\n\
         BR2_TARGET_ROOTFS_JFFS2_NANDFLASH=y\nBR2_TARGET_ROOTFS_JFFS2_PAD=y\n\
         BR2_TARGET_ROOTFS_JFFS2_PADSIZE=0x0\nBR2_TARGET_ROOTFS_JFFS2_SUMMARY=y\n",
    )
    .unwrap();
    let out = crate::util::run(
        crate::util::rootforge()
            .args([
                "buildroot",
                "--print",
                "--target-dir",
                "t",
                "-o",
                "o",
                "--config",
            ])
            .arg(&config),
    );
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains(" -f jffs2 "), "{text}");
    assert!(
        text.trim_end().ends_with(
            "--jffs2-eraseblock 128K --jffs2-pad --jffs2-no-cleanmarkers --jffs2-summary --jffs2-endian big"
        ),
        "{text}"
    );
}
