//! `rootforge genimage` disks checked three ways: util-linux (`sfdisk -d`,
//! `sfdisk --verify`) and gdisk (`sgdisk -p`, `sgdisk -v`) accept the
//! tables; Debian's real genimage, run on the same configuration and input
//! files, gives the same `sfdisk -d` and the same bytes in every partition
//! and raw area; the kernel sees every partition where the plan put it and
//! mounts the filesystems built in the same configuration. Bad
//! configurations fail with exit 1, name the file and line, and leave the
//! output directory empty.
//!
//! Debian's genimage is v16. Two of its outputs changed upstream since and
//! rootforge follows upstream: the GPT first usable LBA (genimage commit
//! 1ccb8c3: the end of the last table or raw area before the first
//! partition, not the first partition's start) and the CHS fields of
//! extended boot records (86d9a34). The comparison masks those fields and
//! nothing else besides identifiers genimage picks at random.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rootforge_disk::read::{self, Kind};

use crate::util::{require_tool, rootforge};
use crate::vm;

/// A scratch directory with genimage's four paths.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new(name: &str) -> Work {
        let dir = tempfile::Builder::new()
            .prefix(&format!("rootforge-disk-{name}-"))
            .tempdir()
            .unwrap();
        for d in ["in", "out", "gout", "root", "tmp"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Work { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn config(&self, text: &str) {
        fs::write(self.path("c.cfg"), text).unwrap();
    }

    /// An input file of `len` bytes of seeded noise.
    fn input(&self, name: &str, len: usize, seed: u64) {
        fs::write(self.path("in").join(name), noise(len, seed)).unwrap();
    }

    fn ours(&self) -> Output {
        rootforge()
            .current_dir(self.dir.path())
            .args(["genimage", "--loglevel", "0", "--config", "c.cfg"])
            .args(["--inputpath", "in", "--outputpath", "out"])
            .args(["--rootpath", "root", "--tmppath", "tmp"])
            .output()
            .unwrap()
    }

    fn ours_ok(&self) {
        let o = self.ours();
        assert!(
            o.status.success(),
            "rootforge genimage failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn genimage(&self) {
        let o = Command::new(require_tool("genimage"))
            .current_dir(self.dir.path())
            .args([
                "--config",
                "c.cfg",
                "--inputpath",
                "in",
                "--outputpath",
                "gout",
            ])
            .args(["--rootpath", "root", "--tmppath", "tmp"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "genimage failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn tool(name: &str, args: &[&str], image: &Path) -> String {
    let o = Command::new(require_tool(name))
        .args(args)
        .arg(image)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{name} {args:?} {} failed: {}{}",
        image.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `sfdisk -d` with the device name and the identifiers genimage picks at
/// random (GPT disk and partition GUIDs) replaced, and v16's first LBA
/// dropped.
fn sfdisk_dump(image: &Path) -> String {
    let text = tool("sfdisk", &["-d"], image);
    let dev = image.display().to_string();
    text.lines()
        .filter(|l| !l.starts_with("first-lba:"))
        .map(|l| {
            let l = l.replace(&dev, "DISK");
            let mut out = String::new();
            for word in l.split(' ') {
                let w = if word.starts_with("uuid=") {
                    "uuid=R,".to_owned()
                } else if l.starts_with("label-id:") && word.len() == 36 {
                    "R".to_owned()
                } else {
                    word.to_owned()
                };
                out.push_str(&w);
                out.push(' ');
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `sgdisk -p` without the GUID and the lines v16's first LBA changes.
fn sgdisk_print(image: &Path) -> String {
    let dev = image.display().to_string();
    tool("sgdisk", &["-p"], image)
        .lines()
        .filter(|l| {
            !l.starts_with("Disk identifier")
                && !l.starts_with("First usable sector")
                && !l.starts_with("Total free space")
        })
        .map(|l| l.replace(&dev, "DISK"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Bytes that may differ from genimage v16's image: GPT headers and
/// arrays (random GUIDs, CRCs, v16's first LBA), and EBRs (v16's CHS):
/// the sectors inside the extended partition that no logical partition
/// holds.
fn masked(image: &Path) -> Vec<(u64, u64)> {
    let disk = fs::read(image).unwrap();
    let t = read::read(&disk).unwrap();
    let mut mask = Vec::new();
    let len = disk.len() as u64;
    if t.kind != Kind::Mbr {
        mask.push((512, 1024));
        let hdr = rootforge_disk::table::GptHeader::parse(&disk[512..1024]).unwrap();
        let at = hdr.partition_entry_lba * 512;
        mask.push((at, at + 128 * 128));
        if hdr.alternate_lba != 1 {
            mask.push((len - 33 * 512, len));
        }
    }
    if let Some(ext) = t.partitions.iter().find(|p| p.mbr_type == Some(0x0f)) {
        let logical: Vec<_> = t.partitions.iter().filter(|p| p.number >= 5).collect();
        let mut s = ext.start;
        while s < ext.start + ext.size {
            if !logical.iter().any(|p| p.start <= s && s < p.start + p.size) {
                mask.push((s, s + 512));
            }
            s += 512;
        }
    }
    mask
}

/// Our image and genimage's have the same size and the same bytes outside
/// [`masked`].
fn assert_same_bytes(ours: &Path, theirs: &Path) {
    let a = fs::read(ours).unwrap();
    let b = fs::read(theirs).unwrap();
    assert_eq!(a.len(), b.len(), "{}: image sizes differ", ours.display());
    let mask = masked(ours);
    let mut first = None;
    let mut count = 0u64;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if x != y {
            let i = i as u64;
            if !mask.iter().any(|&(s, e)| s <= i && i < e) {
                count += 1;
                first.get_or_insert(i);
            }
        }
    }
    assert_eq!(
        count,
        0,
        "{}: {count} bytes differ from genimage's outside the table structures, the first at {:?}",
        ours.display(),
        first
    );
}

/// Builds with both, and checks everything the tools say.
fn compare_with_genimage(w: &Work) {
    w.ours_ok();
    w.genimage();
    let mut names: Vec<_> = fs::read_dir(w.path("gout"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut ours_names: Vec<_> = fs::read_dir(w.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    ours_names.sort();
    assert_eq!(ours_names, names, "the same images");
    for n in names {
        let ours = w.path("out").join(&n);
        let theirs = w.path("gout").join(&n);
        tool("sfdisk", &["--verify"], &ours);
        assert_eq!(
            sfdisk_dump(&ours),
            sfdisk_dump(&theirs),
            "{n:?}: sfdisk -d differs from genimage's"
        );
        let disk = fs::read(&ours).unwrap();
        if read::read(&disk).unwrap().kind != Kind::Mbr {
            let v = tool("sgdisk", &["-v"], &ours);
            let hdr = rootforge_disk::table::GptHeader::parse(&disk[512..1024]).unwrap();
            if hdr.alternate_lba == 1 {
                // gpt-no-backup: sgdisk misses the backup, and says the
                // same of genimage's image.
                // Its warnings (not problems) differ by v16's first LBA.
                let problems = |t: String| -> Vec<String> {
                    t.lines()
                        .filter(|l| l.starts_with("Problem:") || l.starts_with("Identified"))
                        .map(str::to_owned)
                        .collect()
                };
                assert_eq!(
                    problems(v.clone()),
                    problems(tool("sgdisk", &["-v"], &theirs)),
                    "sgdisk -v {n:?}"
                );
                assert!(v.contains("secondary header"), "sgdisk -v {n:?}:\n{v}");
            } else {
                assert!(v.contains("No problems found"), "sgdisk -v {n:?}:\n{v}");
            }
            assert_eq!(
                sgdisk_print(&ours),
                sgdisk_print(&theirs),
                "{n:?}: sgdisk -p"
            );
        }
        assert_same_bytes(&ours, &theirs);
    }
}

/// The shared research directory: `ROOTFORGE_SHARED`, else `../shared`
/// beside the repository (as CI has it), else beside its parent (a git
/// worktree one level down).
fn shared() -> PathBuf {
    if let Some(p) = std::env::var_os("ROOTFORGE_SHARED") {
        return PathBuf::from(p);
    }
    let repo = crate::util::repo();
    let beside = repo.join("../shared");
    if beside.is_dir() {
        return beside;
    }
    repo.join("../../shared")
}

/// A Buildroot board configuration from ../shared/genimage, with its vfat
/// images left out (their partitions then hold input files of the vfat's
/// size) and its post-image script's placeholders filled in.
fn buildroot_config(name: &str) -> String {
    let path = shared().join("genimage").join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("image ") {
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        let open = tail.find('{').unwrap();
        let mut depth = 0;
        let mut end = 0;
        for (i, c) in tail.char_indices().skip(open) {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        let body = &tail[..end];
        if !body.contains("vfat {") && !body.contains("vfat{") {
            out.push_str(body);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out.replace("%PARTUUID%", "\"0d4b8ac1-0a53-4c4f-9a02-3b1a9c8e5f21\"")
        .replace("UUID_TMP", "\"5e1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b\"")
        .replace("%ATFBIN%", "tf-a.stm32")
}

#[test]
fn buildroot_boards_match_genimage() {
    // (config, [(input, size)]): inputs of the sizes the boards' are near.
    let boards: &[(&str, &[(&str, usize)])] = &[
        (
            "olimex__a20_olinuxino__genimage.cfg",
            &[
                ("u-boot-sunxi-with-spl.bin", 541_023),
                ("rootfs.ext4", 3_145_728 + 4096),
            ],
        ),
        (
            "orangepi__common__genimage.cfg",
            &[
                ("u-boot-sunxi-with-spl.bin", 620_011),
                ("rootfs.ext4", 2_097_152),
            ],
        ),
        (
            "pc__genimage-bios.cfg",
            &[
                ("boot.img", 512),
                ("grub.img", 31_337),
                ("rootfs.ext2", 2_000_000),
            ],
        ),
        (
            "pc__genimage-efi.cfg",
            &[("efi-part.vfat", 16_352 * 1024), ("rootfs.ext2", 1_500_000)],
        ),
        (
            "avnet__rzboard_v2l__genimage.cfg",
            &[("boot.vfat", 24 << 20), ("rootfs.ext2", 1_048_576)],
        ),
        (
            "beagleboard__beaglebone__genimage.cfg",
            &[("boot.vfat", 16 << 20), ("rootfs.ext4", 1_234_567)],
        ),
        (
            "raspberrypi__genimage.cfg.in",
            &[("boot.vfat", 32 << 20), ("rootfs.ext4", 2_222_222)],
        ),
        (
            "stmicroelectronics__common__stm32mp1xx__genimage.cfg.template",
            &[
                ("tf-a.stm32", 121_345),
                ("fip.bin", 1_500_000),
                ("rootfs.ext4", 1_111_111),
            ],
        ),
    ];
    for (i, (cfg, inputs)) in boards.iter().enumerate() {
        let w = Work::new("board");
        w.config(&buildroot_config(cfg));
        for (j, (name, len)) in inputs.iter().enumerate() {
            w.input(name, *len, (i * 16 + j) as u64 + 1);
        }
        eprintln!("disk: {cfg}");
        compare_with_genimage(&w);
    }
}

fn parts_123(w: &Work) {
    w.input("part1.img", 7 * 512, 1);
    w.input("part2.img", 11 * 512, 2);
    w.input("part3.img", 0, 3);
}

#[test]
fn mbr_layouts_match_genimage() {
    // Six partitions: the fourth becomes the extended partition; fill and
    // a disk signature; an explicit extended partition index; autoresize;
    // forced-primary after logical partitions.
    let configs = [
        r#"image six.img {
    hdimage { align = 1M  fill = true  disk-signature = 0x12345678 }
    partition a { image = "part1.img" size = 1M partition-type = 0x83 }
    partition b { image = "part3.img" size = 1M partition-type = 0x83 }
    partition c { image = "part1.img" size = 1M partition-type = 0x0c bootable = true }
    partition d { image = "part2.img" size = 1M partition-type = 0x83 }
    partition e { image = "part1.img" size = 1M partition-type = 0x83 }
    partition f { image = "part2.img" size = 1M partition-type = 0x83 }
}"#,
        r#"image ext2.img {
    hdimage { align = 1M  disk-signature = 0xfeedc0de  extended-partition = 2 }
    partition a { image = "part1.img" size = 1M partition-type = 0x83 }
    partition b { image = "part2.img" size = 1M partition-type = 0x83 }
    partition c { image = "part1.img" size = 1M partition-type = 0x83 }
    partition d { image = "part2.img" autoresize = true partition-type = 0x83 }
    size = 12M
}"#,
        r#"image offsets.img {
    hdimage { extended-partition = 3 }
    partition a { offset = 128K size = 256K partition-type = 0x83 image = "part2.img" }
    partition b { size = 3072K partition-type = 0x83 }
    partition c { offset = 3686400 size = 8126464 partition-type = 0x83 image = "part1.img" }
    partition d { offset = 11821056 size = 16252928 partition-type = 0x83 }
    partition e { offset = 28082176 size = 16252928 partition-type = 0x83 image = "part2.img" }
}"#,
        r#"image raw.img {
    hdimage { }
    partition spl { in-partition-table = "no" image = "part2.img" offset = 8K }
    partition boot { offset = 1M partition-type = 0xC bootable = "yes" image = "part1.img" size = 4M }
    partition root { partition-type = 0x83 image = "part2.img" size = 6M }
}"#,
    ];
    for cfg in configs {
        let w = Work::new("mbr");
        w.config(cfg);
        parts_123(&w);
        compare_with_genimage(&w);
    }
}

#[test]
fn gpt_and_hybrid_layouts_match_genimage() {
    let configs = [
        r#"image gpt.img {
    hdimage { partition-table-type = "gpt" align = 1M disk-uuid = "afcfea87-e41a-40e0-85ae-295c60773c7a" }
    partition esp { image = "part1.img" size = 2M partition-type-uuid = U bootable = true }
    partition root { image = "part2.img" size = 3M partition-type-uuid = "b921b045-1df0-41c3-af44-4c6f280d3fae" partition-uuid = "92762261-e854-45c1-b4c9-fc5e752034ab" }
    partition swap { size = 1M partition-type-uuid = S read-only = true }
    partition data { image = "part1.img" partition-type-uuid = "0fc63daf-8483-4772-8e79-3d69d8477de4" hidden = true no-automount = true }
}"#,
        r#"image nobackup.img {
    hdimage { partition-table-type = "gpt" gpt-location = 768K gpt-no-backup = true }
    partition spl { in-partition-table = false image = "part2.img" offset = 8K }
    partition root { offset = 1M image = "part2.img" partition-type-uuid = L }
}"#,
        r#"image hybrid.img {
    hdimage { partition-table-type = "hybrid" disk-signature = 0x0badcafe }
    partition boot { partition-type = 0xC bootable = true image = "part1.img" size = 2M partition-type-uuid = F }
    partition root { partition-type = 0x83 image = "part2.img" size = 2M }
    partition data { image = "part1.img" size = 1M }
}"#,
    ];
    for cfg in configs {
        let w = Work::new("gpt");
        w.config(cfg);
        parts_123(&w);
        compare_with_genimage(&w);
    }
}

/// A bad configuration: exit 1, the file and the line in the message,
/// nothing in the output directory.
fn assert_fails(name: &str, cfg: &str, line: u32, needles: &[&str]) {
    let w = Work::new("bad");
    w.config(cfg);
    parts_123(&w);
    w.input("big.img", 3 << 20, 9);
    let o = w.ours();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{name}: exit status; stderr: {err}"
    );
    assert!(
        err.contains(&format!("c.cfg:{line}:")),
        "{name}: the message names c.cfg:{line}: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "{name}: the message has {n:?}: {err}");
    }
    let left: Vec<_> = fs::read_dir(w.path("out")).unwrap().collect();
    assert!(left.is_empty(), "{name}: output left behind: {left:?}");
}

#[test]
fn bad_configurations_fail_naming_file_and_line() {
    // A good image first: it must not be left behind either.
    let good = "image ok.img {\n hdimage {}\n partition a { image = \"part1.img\" partition-type = 0x83 }\n}\n";
    assert_fails(
        "overlap",
        &format!(
            "{good}image o.img {{\n hdimage {{}}\n partition boot {{ offset = 1M size = 2M partition-type = 0x83 }}\n partition root {{\n  offset = 2M size = 2M partition-type = 0x83 }}\n}}\n"
        ),
        8,
        &["root", "boot", "0x200000..0x400000", "0x100000..0x300000"],
    );
    assert_fails(
        "overlap with the MBR",
        "image o.img {\n hdimage {}\n partition spl {\n in-partition-table = no image = \"part2.img\" offset = 0 }\n partition r { offset = 1M size = 1M partition-type = 0x83 }\n}\n",
        3,
        &["[MBR]", "spl", "hole"],
    );
    assert_fails(
        "image larger than its partition",
        "image o.img {\n hdimage {}\n partition root {\n  image = \"big.img\"\n  size = 1M\n  partition-type = 0x83 }\n}\n",
        3,
        &["root", "big.img", "3145728", "1048576"],
    );
    assert_fails(
        "missing file",
        "image o.img {\n hdimage {}\n partition root {\n  partition-type = 0x83\n  image = \"nope.img\"\n }\n}\n",
        5,
        &["image", "nope.img"],
    );
    assert_fails(
        "unknown key",
        &format!("{good}image o.img {{\n hdimage {{\n  partition-table-typ = gpt\n }}\n}}\n"),
        7,
        &["partition-table-typ", "unknown option"],
    );
    assert_fails(
        "unknown type",
        &format!("{good}\nimage o.img {{\n  fatfs {{ }}\n}}\n"),
        7,
        &["fatfs", "unknown image type"],
    );
    assert_fails(
        "a type rootforge does not build",
        "image o.img {\n  qemu { }\n}\n",
        2,
        &["qemu"],
    );
    assert_fails(
        "a vfat file that is missing",
        "image boot.vfat {\n  vfat { files = { \"missing.img\" } }\n  size = 8M\n}\n",
        2,
        &["missing.img", "No such file"],
    );
    let mut five = String::from("image o.img {\n hdimage { extended-partition = 2 }\n");
    for i in 0..5 {
        five.push_str(&format!(
            " partition p{i} {{ size = 1M partition-type = 0x83{} }}\n",
            if i >= 2 { " forced-primary = yes" } else { "" }
        ));
    }
    five.push_str("}\n");
    assert_fails(
        "too many primary partitions",
        &five,
        7,
        &["p4", "too many primary"],
    );
    assert_fails(
        "hybrid with four MBR entries",
        "image o.img {\n hdimage { partition-table-type = hybrid }\n partition a { size = 1M partition-type = 0x83 }\n partition b { size = 1M partition-type = 0x83 }\n partition c { size = 1M partition-type = 0x83 }\n partition d { size = 1M partition-type = 0x83 }\n}\n",
        2,
        &["at most 3"],
    );
    assert_fails(
        "syntax",
        "image o.img {\n hdimage {}\n partition a { size = }\n}\n",
        3,
        &["size"],
    );
}

#[test]
fn run_as_genimage_takes_genimage_options() {
    let w = Work::new("argv0");
    w.config("image o.img {\n hdimage {}\n partition a { image = \"part1.img\" partition-type = 0x83 }\n}\n");
    parts_123(&w);
    let link = w.path("genimage");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rootforge"), &link).unwrap();
    let o = Command::new(&link)
        .current_dir(w.dir.path())
        .args(["--config=c.cfg", "--inputpath", "in", "--outputpath", "out"])
        .args(["--rootpath", "root", "--tmppath", "tmp", "--loglevel", "0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let disk = fs::read(w.path("out/o.img")).unwrap();
    let t = read::read(&disk).unwrap();
    assert_eq!(t.partitions.len(), 1);
    assert_eq!(
        (t.partitions[0].start, t.partitions[0].size),
        (512, 7 * 512)
    );
}

/// The kernel's view: a GPT disk with an ext4 and a squashfs partition
/// built from the root path in the same configuration, and a raw one.
#[test]
fn kernel_sees_the_planned_partitions_and_mounts_them() {
    let w = Work::new("vm");
    let root = w.path("root");
    fs::create_dir_all(root.join("etc/init.d")).unwrap();
    fs::write(root.join("etc/hostname"), "board\n").unwrap();
    fs::write(root.join("etc/init.d/rcS"), "#!/bin/sh\necho hi\n").unwrap();
    fs::write(root.join("big"), noise(300_000, 7)).unwrap();
    std::os::unix::fs::symlink("etc/hostname", root.join("link")).unwrap();
    w.input("raw.bin", 70_000, 5);
    w.config(
        r#"image rootfs.ext4 { ext4 { label = "root" } size = 8M }
image rootfs.squashfs { squashfs { } }
image disk.img {
    hdimage { partition-table-type = "gpt" }
    partition raw { image = "raw.bin" offset = 64K }
    partition root { image = "rootfs.ext4" partition-type-uuid = root-x86-64 }
    partition ro { image = "rootfs.squashfs" offset = 12M }
}
"#,
    );
    w.ours_ok();
    let image = w.path("out/disk.img");
    let disk = fs::read(&image).unwrap();
    let t = read::read(&disk).unwrap();
    assert_eq!(t.partitions.len(), 3);
    assert_eq!(t.partitions[2].start, 12 << 20);
    // The partitions hold the images that were written beside the disk.
    for (p, file) in
        t.partitions
            .iter()
            .zip(["in/raw.bin", "out/rootfs.ext4", "out/rootfs.squashfs"])
    {
        let want = fs::read(w.path(file)).unwrap();
        let got = &disk[p.start as usize..p.start as usize + want.len()];
        assert!(
            got == want.as_slice(),
            "partition {} holds {file}",
            p.number
        );
    }
    let (sys, listings) = vm::vm_partitions(&image, &[(2, "ext4"), (3, "squashfs")]);
    for p in &t.partitions {
        let want = format!("vda{} {} {}", p.number, p.start / 512, p.size / 512);
        assert!(
            sys.lines().any(|l| l == want),
            "the kernel sees {want}: /sys says\n{sys}"
        );
    }
    let want = vm::host_listing(&root);
    let ext: Vec<_> = listings[0]
        .iter()
        .filter(|l| l.path != "/lost+found")
        .cloned()
        .collect();
    vm::assert_same_listing("ext4 partition", &ext, &want);
    vm::assert_same_listing("squashfs partition", &listings[1], &want);
}

/// The files of a vfat image, as mtools extracts them: relative path and
/// content, sorted.
fn vfat_files(image: &Path, into: &Path) -> Vec<(String, Vec<u8>)> {
    fs::create_dir_all(into).unwrap();
    let o = Command::new(require_tool("mcopy"))
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-s", "-n", "-i"])
        .arg(image)
        .arg("::")
        .arg(into)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mcopy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            if p.is_dir() {
                out.push((format!("{rel}/"), Vec::new()));
                walk(base, &p, out);
            } else {
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(into, into, &mut out);
    out.sort();
    out
}

/// vfat images as Buildroot's boards make them (`files` lists and `file
/// NAME { image }` with a directory, a label, a size): fsck.fat finds ours
/// clean, and mtools extracts the same names and contents from ours as
/// from genimage's (mkdosfs and mcopy); the disk holding one has
/// genimage's table.
#[test]
fn vfat_images_hold_what_genimage_puts_in_them() {
    let w = Work::new("vfat");
    fs::create_dir_all(w.path("in/efi-part/EFI/BOOT")).unwrap();
    w.input("efi-part/EFI/BOOT/bootx64.efi", 300_000, 1);
    w.input("efi-part/EFI/BOOT/grub.cfg", 100, 2);
    w.input("bzImage", 3_000_000, 3);
    w.input("bcm2711-rpi-4-b.dtb", 50_000, 4);
    w.input("config.txt", 200, 5);
    w.input("Image.gz", 1_000_000, 6);
    w.input("rootfs.ext4", 1 << 20, 7);
    w.config(
        r#"image efi-part.vfat {
	vfat {
		file EFI {
			image = "efi-part/EFI"
		}
		file bzImage {
			image = "bzImage"
		}
	}
	size = 16352K
}

image boot.vfat {
	vfat {
		label = "BOOT"
		files = {
			"bcm2711-rpi-4-b.dtb",
			"config.txt",
			"Image.gz"
		}
	}
	size = 32M
}

image sdcard.img {
	hdimage {
	}
	partition boot {
		partition-type = 0xC
		bootable = "true"
		image = "boot.vfat"
	}
	partition rootfs {
		partition-type = 0x83
		image = "rootfs.ext4"
	}
}
"#,
    );
    w.ours_ok();
    w.genimage();
    for name in ["efi-part.vfat", "boot.vfat"] {
        let ours = w.path("out").join(name);
        let theirs = w.path("gout").join(name);
        assert_eq!(
            fs::metadata(&ours).unwrap().len(),
            fs::metadata(&theirs).unwrap().len(),
            "{name}: size"
        );
        tool("fsck.fat", &["-n"], &ours);
        let got = vfat_files(&ours, &w.path(&format!("x-ours-{name}")));
        let want = vfat_files(&theirs, &w.path(&format!("x-theirs-{name}")));
        assert!(got.len() >= 3, "{name}: {got:?}");
        assert!(
            got == want,
            "{name}: mtools extracts different files from ours and genimage's"
        );
    }
    let label = Command::new(require_tool("mlabel"))
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-s", "-i"])
        .arg(w.path("out/boot.vfat"))
        .arg("::")
        .output()
        .unwrap();
    let label = String::from_utf8_lossy(&label.stdout);
    assert!(label.contains("Volume label is BOOT"), "{label}");
    assert_eq!(
        sfdisk_dump(&w.path("out/sdcard.img")),
        sfdisk_dump(&w.path("gout/sdcard.img"))
    );
}
