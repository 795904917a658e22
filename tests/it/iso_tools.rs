//! ISO9660 images checked by the tools that read them: xorriso, isoinfo,
//! bsdtar, fsck.fat and mtools, and the firmware in qemu (SeaBIOS and
//! OVMF). Moved here from the crate's unit tests, which need no tool.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rootforge_common::listing::{Line, sha256_hex};
use rootforge_common::{
    Buffer, Content, Edit, Encoder, FileBlob, FileData, Inode, Kind, Replace, Time, Tree,
    TreeBuilder,
};
use rootforge_iso9660::{IsoEncoder, read};
use tempfile::TempDir;

use crate::util::{tar_tree, tiny_corpus};

#[path = "../../formats/iso9660/src/tests/fixtures.rs"]
mod fixtures;

use fixtures::{efi_tree, file, listing_of, meta, pattern, sample, text, zisofs_tree};

/// The largest extent of a multi-extent file (the crate's `MAX_EXTENT`):
/// the largest multiple of 2048 a 32-bit length holds.
const MAX_EXTENT: u64 = 0xFFFF_F800;

fn encode(tree: &Tree, enc: &IsoEncoder) -> Vec<u8> {
    let mut out = Buffer::default();
    enc.write(&tree.view(), &mut out).unwrap();
    out.0
}

/// A scratch directory, removed afterwards.
fn scratch(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("rootforge-iso-{tag}-"))
        .tempdir()
        .unwrap()
}

/// Runs a tool and returns its stdout and stderr, failing the test when
/// it does not succeed.
fn tool(cmd: &mut Command) -> (String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (is the tool installed?)"));
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{cmd:?} failed:\n{so}\n{se}");
    (so, se)
}

/// The FAT image the encoder builds of [`efi_tree`] (with the default
/// creation time), as its boot catalog finds it.
fn built_efi_image() -> Vec<u8> {
    let enc = IsoEncoder {
        efi_tree: Some(Arc::new(efi_tree())),
        ..IsoEncoder::default()
    };
    let img = encode(&TreeBuilder::new(meta(0o755, 0, 0, 0)).finish(), &enc);
    let (lba, sectors) = efi_entry(&img);
    let at = lba as usize * 2048;
    img[at..at + usize::from(sectors) * 512].to_vec()
}

/// xorriso's complaints are lines with these severities.
fn assert_xorriso_quiet(stderr: &str) {
    for bad in ["FAILURE", "SORRY", "WARNING", "MISHAP", "FATAL"] {
        assert!(!stderr.contains(bad), "xorriso said {bad}:\n{stderr}");
    }
}

/// The listing of a directory on disk, as the tree listing spells it.
fn listing_of_dir(root: &Path) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let m = std::fs::symlink_metadata(&full).unwrap();
        let ft = m.file_type();
        let (kind, size, detail) = if ft.is_dir() {
            for e in std::fs::read_dir(&full).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
            (Kind::Dir, 0, "-".to_owned())
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&full).unwrap();
            let t = t.as_os_str().as_encoded_bytes();
            (
                Kind::Symlink,
                t.len() as u64,
                rootforge_common::escape_bytes(t),
            )
        } else if ft.is_file() {
            (
                Kind::File,
                m.len(),
                sha256_hex(&std::fs::read(&full).unwrap()),
            )
        } else {
            let dev = m.rdev();
            let d = format!("{},{}", libc_major(dev), libc_minor(dev));
            let k = if ft.is_char_device() {
                Kind::CharDev
            } else if ft.is_block_device() {
                Kind::BlockDev
            } else if ft.is_fifo() {
                Kind::Fifo
            } else {
                Kind::Socket
            };
            let d = if matches!(k, Kind::Fifo | Kind::Socket) {
                "-".to_owned()
            } else {
                d
            };
            (k, 0, d)
        };
        lines.push(Line {
            path: rootforge_common::display_path(rel.as_os_str().as_encoded_bytes()),
            kind,
            perm: (m.mode() & 0o7777) as u16,
            uid: m.uid(),
            gid: m.gid(),
            size,
            detail,
            mtime: m.mtime(),
        });
    }
    lines.sort();
    lines
}

fn libc_major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)
}

fn libc_minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & !0xff)
}

fn save(dir: &TempDir, img: &[u8]) -> PathBuf {
    let p = dir.path().join("image.iso");
    std::fs::write(&p, img).unwrap();
    p
}

#[test]
fn xorriso_lists_and_extracts_the_tree() {
    let tree = sample();
    let img = encode(&tree, &IsoEncoder::default());
    let dir = scratch("xorriso");
    let iso = save(&dir, &img);
    let (out, err) = tool(
        Command::new("xorriso")
            .arg("-indev")
            .arg(&iso)
            .args(["-find", "/", "-exec", "lsdl"]),
    );
    assert_xorriso_quiet(&err);
    assert!(out.contains("bin/busybox"), "{out}");
    // Sockets are listed but never extracted.
    let sock = out.lines().find(|l| l.ends_with("'/run/sock'")).unwrap();
    assert!(sock.starts_with("srw-r-----"), "{sock}");
    let x = dir.path().join("x");
    let (_, err) = tool(
        Command::new("xorriso")
            .args(["-osirrox", "on:device_files", "-hardlinks", "on"])
            .arg("-indev")
            .arg(&iso)
            // xorriso reads PN as a glibc dev_t and cannot create the device
            // with a minor of 256 or more (see `susp::pn`): leave it out.
            .args(["-rm", "/dev/nvme", "--"])
            .args(["-extract", "/"])
            .arg(&x)
            .arg("-rollback_end"),
    );
    assert_xorriso_quiet(&err);
    let want = listing_of(&tree);
    // Extraction cannot set the root's or a symlink's time.
    let settle = |mut l: Line| {
        if l.kind == Kind::Symlink {
            l.mtime = 0;
        }
        l
    };
    let got: Vec<Line> = listing_of_dir(&x)
        .into_iter()
        .filter(|l| l.path != "/")
        .map(settle)
        .collect();
    let want: Vec<Line> = want
        .into_iter()
        .filter(|l| l.path != "/" && l.path != "/dev/nvme" && l.kind != Kind::Socket)
        .map(settle)
        .collect();
    assert_eq!(text(&got), text(&want));
    // With -hardlinks on, the PX serials bring the links back.
    let ino = |p: &str| std::fs::metadata(x.join(p)).unwrap().ino();
    assert_eq!(ino("bin/busybox"), ino("usr/bin/sh"));
    assert_eq!(ino("bin/busybox"), ino("sbin/init"));
    assert_ne!(ino("bin/busybox"), ino("etc/motd"));
}

#[test]
fn isoinfo_and_bsdtar_agree() {
    let tree = sample();
    let img = encode(&tree, &IsoEncoder::default());
    let dir = scratch("isoinfo");
    let iso = save(&dir, &img);
    let (out, _) = tool(Command::new("isoinfo").arg("-d").arg("-i").arg(&iso));
    assert!(out.contains("Joliet with UCS level 3 found"), "{out}");
    assert!(
        out.contains("Rock Ridge signatures version 1 found"),
        "{out}"
    );
    assert!(out.contains("Volume id: ROOTFS"), "{out}");
    let (out, _) = tool(Command::new("isoinfo").args(["-J", "-l", "-i"]).arg(&iso));
    // Joliet names are cut to 64 UCS-2 units, keeping the extension.
    let cut = format!("{}.conf;1", "L".repeat(57));
    assert!(out.contains(&format!(" {cut}")), "{out}");
    assert!(out.contains("bad_name;1"), "{out}");
    let (out, err) = tool(Command::new("bsdtar").arg("-tvf").arg(&iso));
    assert!(err.is_empty(), "{err}");
    for want in [
        "bin/busybox",
        "d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/deep.txt",
        "run/sock",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    assert!(out.contains("usr/share/ünïcödé/日本語.txt"), "{out}");
    // The Joliet tree alone: files and directories under UCS-2 names.
    let (out, err) = tool(
        Command::new("bsdtar")
            .args(["--options", "iso9660:!rockridge", "-tf"])
            .arg(&iso),
    );
    assert!(err.is_empty(), "{err}");
    let names: Vec<&str> = out.lines().collect();
    for want in [
        "usr/share/ünïcödé/日本語.txt",
        "usr/share/bad_name",
        "readme.",
        "sbin/init",
    ] {
        assert!(names.contains(&want), "{want} missing:\n{out}");
    }
    assert!(!names.contains(&"lib/libc.so"), "{out}");
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    tool(
        Command::new("bsdtar")
            .arg("-xpf")
            .arg(&iso)
            // libarchive reads PN as a glibc dev_t (see `susp::pn`).
            .args(["--exclude", "dev/nvme"])
            .arg("-C")
            .arg(&x),
    );
    let f = std::fs::read(x.join("bin/busybox")).unwrap();
    assert_eq!(f, pattern(70_000, 7));
    let sh = std::fs::metadata(x.join("usr/bin/sh")).unwrap();
    assert_eq!(
        sh.ino(),
        std::fs::metadata(x.join("bin/busybox")).unwrap().ino()
    );
}

#[test]
fn debian_tiny_corpus_round_trips_through_xorriso() {
    let tree = tar_tree(&tiny_corpus());
    let img = encode(&tree, &IsoEncoder::default());
    let back = read(Arc::new(img.clone())).unwrap();
    let want = listing_of(&tree);
    assert_eq!(text(&listing_of(&back)), text(&want));

    let dir = scratch("corpus");
    let iso = save(&dir, &img);
    let x = dir.path().join("x");
    let (_, err) = tool(
        Command::new("xorriso")
            .args(["-osirrox", "on:device_files"])
            .arg("-indev")
            .arg(&iso)
            .args(["-extract", "/"])
            .arg(&x),
    );
    assert_xorriso_quiet(&err);
    let settle = |mut l: Line| {
        if l.kind == Kind::Symlink {
            l.mtime = 0;
        }
        l
    };
    let keep = |l: &Line| l.path != "/" && l.kind != Kind::Socket;
    let got: Vec<Line> = listing_of_dir(&x)
        .into_iter()
        .filter(keep)
        .map(settle)
        .collect();
    let want: Vec<Line> = want.into_iter().filter(keep).map(settle).collect();
    assert_eq!(text(&got), text(&want));
}

/// A file output that leaves holes, like the CLI's.
struct FileSink(std::fs::File);

impl std::io::Write for FileSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl rootforge_common::Sink for FileSink {
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        use std::io::Seek;
        let end = self.0.seek(std::io::SeekFrom::Current(n as i64))?;
        self.0.set_len(end)
    }
}

#[test]
fn files_of_4_gib_and_more_are_multi_extent() {
    const SIZE: u64 = (9 << 29) + 123; // 4.5 GiB and a bit
    const CROSS: u64 = MAX_EXTENT - 3;
    let backing: rootforge_common::Backing = Arc::new(b"HEADCROSSINGTAIL".to_vec());
    let ext = |logical, stored, len| rootforge_common::Extent {
        logical,
        stored,
        len,
    };
    let data = FileData::sparse(
        backing,
        vec![ext(0, 0, 4), ext(CROSS, 4, 8), ext(SIZE - 4, 12, 4)],
        SIZE,
    )
    .unwrap();
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_500_000_000));
    b.insert(
        b"big",
        Inode::new(meta(0o600, 1, 2, 3), Content::File(data)),
        Replace::Always,
    )
    .unwrap();
    b.insert(b"after", file(0o644, &b"after"[..]), Replace::Always)
        .unwrap();
    b.hard_link(b"big2", b"big").unwrap();
    let tree = b.finish();
    let dir = scratch("big");
    let iso = dir.path().join("big.iso");
    let mut sink = FileSink(std::fs::File::create(&iso).unwrap());
    IsoEncoder::default()
        .write(&tree.view(), &mut sink)
        .unwrap();
    drop(sink);

    let blob = FileBlob::new(std::fs::File::open(&iso).unwrap()).unwrap();
    let back = read(Arc::new(blob)).unwrap();
    assert_eq!(text(&listing_of(&back)), text(&listing_of(&tree)));

    let (out, err) = tool(
        Command::new("xorriso")
            .arg("-indev")
            .arg(&iso)
            .args(["-find", "/", "-exec", "lsdl"]),
    );
    assert_xorriso_quiet(&err);
    let big = out.lines().find(|l| l.ends_with("'/big'")).unwrap();
    assert!(big.contains(&format!(" {SIZE} ")), "{big}");
    let (out, _) = tool(Command::new("isoinfo").args(["-l", "-R", "-i"]).arg(&iso));
    assert_eq!(
        out.matches(" big").count(),
        4,
        "two records per name:\n{out}"
    );
    // osirrox reads the file across its extents.
    let x = dir.path().join("x");
    let (_, err) = tool(
        Command::new("xorriso")
            .args(["-osirrox", "on:sparse=1m"])
            .arg("-indev")
            .arg(&iso)
            .args(["-extract", "/big"])
            .arg(&x),
    );
    assert_xorriso_quiet(&err);
    let f = std::fs::File::open(&x).unwrap();
    assert_eq!(f.metadata().unwrap().len(), SIZE);
    let mut buf = [0u8; 8];
    use std::os::unix::fs::FileExt;
    f.read_exact_at(&mut buf, CROSS).unwrap();
    assert_eq!(&buf, b"CROSSING");
    f.read_exact_at(&mut buf[..4], SIZE - 4).unwrap();
    assert_eq!(&buf[..4], b"TAIL");
}

const ISOLINUX: &str = "/usr/lib/ISOLINUX/isolinux.bin";
const LDLINUX: &str = "/usr/lib/syslinux/modules/bios/ldlinux.c32";
const ISOHDPFX: &str = "/usr/lib/ISOLINUX/isohdpfx.bin";

/// A tree that ISOLINUX boots, printing a line on the serial port.
fn isolinux_tree() -> TreeBuilder {
    let read = |p: &str| {
        std::fs::read(p)
            .unwrap_or_else(|e| panic!("{p}: {e} (apt-get install isolinux syslinux-common)"))
    };
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_500_000_000));
    b.insert(
        b"isolinux/isolinux.bin",
        file(0o644, read(ISOLINUX)),
        Replace::Always,
    )
    .unwrap();
    b.insert(
        b"isolinux/ldlinux.c32",
        file(0o644, read(LDLINUX)),
        Replace::Always,
    )
    .unwrap();
    let cfg = "SERIAL 0 115200\nSAY rootforge-isolinux-ok\nPROMPT 0\nDEFAULT none\nLABEL none\n  LOCALBOOT 0\n";
    b.insert(
        b"isolinux/isolinux.cfg",
        file(0o644, cfg.as_bytes().to_vec()),
        Replace::Always,
    )
    .unwrap();
    b.insert(b"etc/hostname", file(0o644, &b"iso\n"[..]), Replace::Always)
        .unwrap();
    b
}

fn u32_at(img: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(img[at..at + 4].try_into().unwrap())
}

/// The block of a file, from the reader's view of the image.
fn lba_of(img: &[u8], path: &[u8]) -> u32 {
    let back = read(Arc::new(img.to_vec())).unwrap();
    let v = back.view();
    match &v.inode(v.lookup(path).unwrap()).content {
        Content::File(d) => match d.source() {
            rootforge_common::Source::Range { offset, .. } => (*offset / 2048) as u32,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

/// Boots `drive` in QEMU for a few seconds and returns the serial output.
fn boot(args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args([
            "15",
            "qemu-system-x86_64",
            "-machine",
            "accel=tcg",
            "-m",
            "256",
        ])
        .args(["-display", "none", "-serial", "stdio", "-no-reboot"])
        .args(args)
        .output()
        .expect("qemu-system-x86_64");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn el_torito_bios_boot_with_boot_info_table() {
    let tree = isolinux_tree().finish();
    let enc = IsoEncoder {
        boot_bios: Some(b"isolinux/isolinux.bin".to_vec()),
        ..IsoEncoder::default()
    };
    let img = encode(&tree, &enc);
    let dir = scratch("eltorito");
    let iso = save(&dir, &img);
    let (out, err) = tool(
        Command::new("xorriso")
            .arg("-indev")
            .arg(&iso)
            .args(["-report_el_torito", "plain"]),
    );
    assert_xorriso_quiet(&err);
    let lba = lba_of(&img, b"isolinux/isolinux.bin");
    let entry = out
        .lines()
        .find(|l| l.starts_with("El Torito boot img :   1"))
        .unwrap_or_else(|| panic!("{out}"));
    let fields: Vec<&str> = entry.split_whitespace().collect();
    // "El Torito boot img : 1 BIOS y none 0x0000 0x00 4 LBA"
    assert_eq!(
        &fields[6..12],
        &["BIOS", "y", "none", "0x0000", "0x00", "4"],
        "{out}"
    );
    assert_eq!(fields[12], lba.to_string(), "{out}");
    assert!(out.contains("img opts :   1  boot-info-table"), "{out}");
    assert!(
        out.contains("El Torito img path :   1  /isolinux/isolinux.bin"),
        "{out}"
    );

    // The boot info table.
    let bin = std::fs::read(ISOLINUX).unwrap();
    let at = lba as usize * 2048;
    assert_eq!(u32_at(&img, at + 8), 16);
    assert_eq!(u32_at(&img, at + 12), lba);
    assert_eq!(u32_at(&img, at + 16), bin.len() as u32);
    let sum = bin[64..].chunks(4).fold(0u32, |s, w| {
        s.wrapping_add(u32::from_le_bytes(w.try_into().unwrap()))
    });
    assert_eq!(u32_at(&img, at + 20), sum);
    assert_eq!(&img[at + 64..at + bin.len()], &bin[64..]);

    // ISOLINUX loads ldlinux.c32 and its configuration through the
    // ISO9660 tree, then runs the LOCALBOOT label.
    let serial = boot(&["-cdrom", iso.to_str().unwrap()]);
    assert!(serial.contains("ISOLINUX 6.04"), "{serial}");
    assert!(serial.contains("Booting from local disk"), "{serial}");
}

const OVMF: &str = "/usr/share/ovmf/OVMF.fd";

/// Boots OVMF with `args`; its shell runs startup.nsh from the first FAT
/// file system it finds when no loader is there.
fn boot_uefi(args: &[&str]) -> String {
    assert!(Path::new(OVMF).exists(), "apt-get install ovmf");
    let out = Command::new("timeout")
        .args([
            "120",
            "qemu-system-x86_64",
            "-machine",
            "accel=tcg",
            "-m",
            "256",
        ])
        .args([
            "-display",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
            "-nic",
            "none",
        ])
        .args(["-bios", OVMF])
        .args(args)
        .output()
        .expect("qemu-system-x86_64");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The EFI entry of the boot catalog: (block, 512-byte sectors).
fn efi_entry(img: &[u8]) -> (u32, u16) {
    let cat = u32_at(img, 17 * 2048 + 0x47) as usize * 2048;
    let e = if img[cat + 1] == 0xEF {
        cat + 32
    } else {
        cat + 96
    };
    assert_eq!(img[e], 0x88);
    (
        u32_at(img, e + 8),
        u16::from_le_bytes([img[e + 6], img[e + 7]]),
    )
}

#[test]
fn efi_image_built_natively_with_hybrid_mbr_and_gpt() {
    let mut b = isolinux_tree();
    b.insert(
        b"EFI/BOOT/BOOTX64.EFI",
        file(0o644, pattern(100_000, 3)),
        Replace::Always,
    )
    .unwrap();
    let tree = b.finish();
    let enc = IsoEncoder {
        boot_bios: Some(b"isolinux/isolinux.bin".to_vec()),
        efi_tree: Some(Arc::new(efi_tree())),
        hybrid_mbr: Some(std::fs::read(ISOHDPFX).unwrap()),
        created: Time::from_secs(1_700_000_000),
        ..IsoEncoder::default()
    };
    let img = encode(&tree, &enc);
    assert_eq!(img.len() % 2048, 0);
    let dir = scratch("efi");
    let iso = save(&dir, &img);
    let (out, err) = tool(Command::new("xorriso").arg("-indev").arg(&iso).args([
        "-report_el_torito",
        "plain",
        "-report_system_area",
        "plain",
    ]));
    assert_xorriso_quiet(&err);
    for want in [
        "El Torito boot img :   2  UEFI  y   none  0x0000  0x00",
        "System area summary: MBR isohybrid cyl-align-off GPT",
        "MBR partition      :   1   0x80  0x17            0",
        "GPT partname local :   1  ISO9660",
        "GPT partname local :   2  EFI boot image",
        "GPT type GUID      :   2  28732ac11ff8d211ba4b00a0c93ec93b",
    ] {
        assert!(out.contains(want), "{want}:\n{out}");
    }
    assert!(
        !out.contains("overlapping"),
        "UEFI ignores overlapping partitions:\n{out}"
    );

    let (lba, sectors) = efi_entry(&img);
    let fat = &img[lba as usize * 2048..lba as usize * 2048 + usize::from(sectors) * 512];
    let fat_path = dir.path().join("efi.img");
    std::fs::write(&fat_path, fat).unwrap();
    let (out, _) = tool(Command::new("fsck.fat").arg("-n").arg(&fat_path));
    assert!(out.contains("7 files"), "{out}");
    let (out, _) = tool(
        Command::new("mdir")
            .args(["-/", "-i"])
            .arg(&fat_path)
            .arg("::/"),
    );
    // A lower case 8.3 name is one short entry with the NT case bits, as
    // mcopy stores it.
    assert!(out.contains("grub     cfg        14"), "{out}");
    assert!(out.contains("startup-with-a-long-name.nsh"), "{out}");
    let got = dir.path().join("boot.efi");
    tool(
        Command::new("mcopy")
            .arg("-i")
            .arg(&fat_path)
            .arg("::/EFI/BOOT/BOOTX64.EFI")
            .arg(&got),
    );
    assert_eq!(std::fs::read(&got).unwrap(), pattern(100_000, 3));

    // Booted as a hard disk, the MBR code finds ISOLINUX; UEFI finds the
    // EFI system partition through the GPT.
    let drive = format!("file={},format=raw", iso.display());
    let serial = boot(&["-drive", &drive]);
    assert!(serial.contains("ISOLINUX 6.04"), "{serial}");
    let serial = boot_uefi(&["-drive", &drive]);
    assert!(serial.contains("rootforge-efi-ok"), "{serial}");
}

/// zisofs files as xorriso reads them (the reader's view is a unit
/// test).
#[test]
fn zisofs_files_read_back_through_xorriso() {
    let tree = zisofs_tree();
    let enc = IsoEncoder {
        zisofs: true,
        ..IsoEncoder::default()
    };
    let img = encode(&tree, &enc);
    let dir = scratch("zisofs");
    let iso = save(&dir, &img);
    let (out, err) = tool(Command::new("xorriso").arg("-indev").arg(&iso).args([
        "-find",
        "/",
        "-exec",
        "show_stream",
    ]));
    assert_xorriso_quiet(&err);
    assert!(
        out.contains("'/text' < --zisofs-decode:pz:32k < image"),
        "{out}"
    );
    let x = dir.path().join("x");
    let (_, err) = tool(
        Command::new("xorriso")
            .args(["-osirrox", "on"])
            .arg("-indev")
            .arg(&iso)
            .args(["-extract", "/"])
            .arg(&x),
    );
    assert_xorriso_quiet(&err);
    let want: Vec<Line> = listing_of(&tree)
        .into_iter()
        .filter(|l| l.path != "/")
        .collect();
    let got: Vec<Line> = listing_of_dir(&x)
        .into_iter()
        .filter(|l| l.path != "/")
        .collect();
    assert_eq!(text(&got), text(&want));
}

#[test]
fn efi_only_boot_from_a_file_in_the_tree() {
    let fat = built_efi_image();
    let fat_len = fat.len();
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_500_000_000));
    b.insert(b"boot/efi.img", file(0o644, fat), Replace::Always)
        .unwrap();
    let tree = b.finish();
    let enc = IsoEncoder {
        boot_efi: Some(b"boot/efi.img".to_vec()),
        ..IsoEncoder::default()
    };
    let img = encode(&tree, &enc);
    let dir = scratch("efionly");
    let iso = save(&dir, &img);
    let (out, err) = tool(Command::new("xorriso").arg("-indev").arg(&iso).args([
        "-report_el_torito",
        "plain",
        "-report_system_area",
        "plain",
    ]));
    assert_xorriso_quiet(&err);
    assert!(
        out.contains("El Torito boot img :   1  UEFI  y   none"),
        "{out}"
    );
    assert!(
        out.contains("El Torito img path :   1  /boot/efi.img"),
        "{out}"
    );
    assert!(!out.contains("El Torito boot img :   2"), "{out}");
    let (lba, sectors) = efi_entry(&img);
    assert_eq!(lba, lba_of(&img, b"boot/efi.img"));
    assert_eq!(usize::from(sectors) * 512, fat_len);
}

#[test]
fn uefi_firmware_reads_the_built_efi_image_from_a_cd() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_500_000_000));
    b.insert(b"etc/hostname", file(0o644, &b"iso\n"[..]), Replace::Always)
        .unwrap();
    let enc = IsoEncoder {
        efi_tree: Some(Arc::new(efi_tree())),
        ..IsoEncoder::default()
    };
    let img = encode(&b.finish(), &enc);
    let dir = scratch("ovmf");
    let iso = save(&dir, &img);
    // No loader is there, so the firmware's shell runs startup.nsh from
    // the El Torito EFI image.
    let serial = boot_uefi(&["-cdrom", iso.to_str().unwrap()]);
    assert!(serial.contains("rootforge-efi-ok"), "{serial}");
}

#[test]
fn reader_reads_what_xorriso_writes() {
    let tar = tiny_corpus();
    let tree = tar_tree(&tar);
    let dir = scratch("xorriso-made");
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    tool(
        Command::new("tar")
            .arg("-xpf")
            .arg(&tar)
            .arg("-C")
            .arg(&src),
    );
    let iso = dir.path().join("x.iso");
    tool(
        Command::new("xorriso")
            .args(["-as", "mkisofs", "-R", "-J", "-quiet", "-o"])
            .arg(&iso)
            .arg(&src),
    );
    let blob = FileBlob::new(std::fs::File::open(&iso).unwrap()).unwrap();
    let back = read(Arc::new(blob)).unwrap();
    let not_root = |l: &Line| l.path != "/";
    let got: Vec<Line> = listing_of(&back).into_iter().filter(not_root).collect();
    let want: Vec<Line> = listing_of(&tree).into_iter().filter(not_root).collect();
    assert_eq!(text(&got), text(&want));
}
