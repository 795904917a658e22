//! `rootforge buildroot`: a Buildroot `.config` (or any file in its syntax)
//! turned into the `rootforge build` command that makes exactly the images
//! it enables, with Buildroot's options and names.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A `.config`: `BR2_X=y`, `BR2_X="text"`, `# BR2_X is not set`.
#[derive(Debug, Default)]
pub struct Kconfig(BTreeMap<String, String>);

impl Kconfig {
    pub fn parse(text: &str) -> Kconfig {
        let mut map = BTreeMap::new();
        for line in text.lines().map(str::trim) {
            // A later "not set" undoes an earlier value (a fragment
            // appended to a .config).
            if let Some(key) = line
                .strip_prefix("# ")
                .and_then(|l| l.strip_suffix(" is not set"))
            {
                map.remove(key);
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .map_or_else(|| value.to_owned(), |v| v.replace("\\\"", "\""));
                map.insert(key.trim().to_owned(), value);
            }
        }
        Kconfig(map)
    }

    fn on(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|v| v == "y")
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The images' names that differ from rootforge's: Buildroot names every
/// ext image `rootfs.ext2` and links `rootfs.ext3`/`rootfs.ext4` to it.
#[derive(Debug, PartialEq, Eq)]
pub struct ExtRename {
    /// `ext3` or `ext4`.
    pub variant: &'static str,
    /// The outer compression suffix, with its dot, or empty.
    pub suffix: &'static str,
}

/// What a `.config` asks for, as `rootforge build` arguments.
#[derive(Debug)]
pub struct Plan {
    pub args: Vec<OsString>,
    pub ext_rename: Option<ExtRename>,
    /// Options rootforge does not follow, said as warnings.
    pub ignored: Vec<String>,
}

const COMPRESSIONS: [(&str, &str, &str); 7] = [
    ("GZIP", "gzip", ".gz"),
    ("BZIP2", "bzip2", ".bz2"),
    ("LZ4", "lz4", ".lz4"),
    ("LZMA", "lzma", ".lzma"),
    ("LZO", "lzo", ".lzo"),
    ("XZ", "xz", ".xz"),
    ("ZSTD", "zstd", ".zst"),
];

/// The outer compression Buildroot's `BR2_TARGET_ROOTFS_<FS>_<ALG>` sets.
fn compression(k: &Kconfig, fs: &str) -> Option<(&'static str, &'static str)> {
    COMPRESSIONS
        .iter()
        .find(|(alg, _, _)| k.on(&format!("BR2_TARGET_ROOTFS_{fs}_{alg}")))
        .map(|&(_, name, suffix)| (name, suffix))
}

/// Buildroot's table paths are relative to its top directory; several are
/// separated by spaces.
fn paths(k: &Kconfig, key: &str, topdir: &Path) -> Vec<PathBuf> {
    k.text(key)
        .map(|v| v.split_whitespace().map(|p| topdir.join(p)).collect())
        .unwrap_or_default()
}

/// Buildroot's sizes: a number of KiB, or with a k/m/g/t suffix.
fn ext_size(text: &str) -> Result<String> {
    let t = text.trim();
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("BR2_TARGET_ROOTFS_EXT2_SIZE=\"{text}\" is not a size");
    }
    Ok(match &t[digits.len()..] {
        "" => format!("{digits}K"),
        unit => format!("{digits}{}", unit.to_ascii_uppercase()),
    })
}

/// The `-O` list of `BR2_TARGET_ROOTFS_EXT2_MKFS_OPTIONS`; other mke2fs
/// options are reported as ignored.
fn mkfs_features(text: &str, ignored: &mut Vec<String>) -> Option<String> {
    let mut words = text.split_whitespace();
    let mut features = Vec::new();
    while let Some(w) = words.next() {
        match w {
            "-O" => features.extend(words.next()),
            _ => match w.strip_prefix("-O") {
                Some(list) => features.push(list),
                None => ignored.push(format!(
                    "BR2_TARGET_ROOTFS_EXT2_MKFS_OPTIONS: `{w}` (only -O is followed)"
                )),
            },
        }
    }
    (!features.is_empty()).then(|| features.join(","))
}

/// Translates a `.config` into `rootforge build` arguments for a target
/// directory owned by the build user (everything becomes 0:0, as under
/// Buildroot's fakeroot).
pub fn plan(k: &Kconfig, target_dir: &Path, output: &Path, topdir: &Path) -> Result<Plan> {
    let mut args: Vec<OsString> = vec![
        target_dir.into(),
        "-o".into(),
        output.into(),
        "--profile".into(),
        "buildroot".into(),
    ];
    let mut push = |a: &[&str]| args.extend(a.iter().map(OsString::from));
    let mut ignored = Vec::new();
    let mut formats = Vec::new();
    let mut ext_rename = None;

    if k.on("BR2_TARGET_ROOTFS_CPIO") {
        formats.push("cpio");
        if let Some((c, _)) = compression(k, "CPIO") {
            push(&["--cpio-compress", c]);
        }
        if k.on("BR2_TARGET_ROOTFS_CPIO_UIMAGE") {
            push(&["--cpio-uimage"]);
        }
        if k.on("BR2_TARGET_ROOTFS_CPIO_DRACUT") {
            bail!(
                "BR2_TARGET_ROOTFS_CPIO_DRACUT: dracut images run dracut's module scripts; rootforge builds full cpio images only"
            );
        }
    }
    if k.on("BR2_TARGET_ROOTFS_TAR") {
        formats.push("tar");
        if let Some((c, _)) = compression(k, "TAR") {
            push(&["--tar-compress", c]);
        }
        if let Some(opts) = k.text("BR2_TARGET_ROOTFS_TAR_OPTIONS") {
            ignored.push(format!("BR2_TARGET_ROOTFS_TAR_OPTIONS=\"{opts}\""));
        }
    }
    if k.on("BR2_TARGET_ROOTFS_SQUASHFS") {
        formats.push("squashfs");
        let comp = [
            ("GZIP", "gzip"),
            ("LZ4", "lz4"),
            ("LZO", "lzo"),
            ("XZ", "xz"),
            ("ZSTD", "zstd"),
            ("NONE", "none"),
        ]
        .into_iter()
        .find(|(c, _)| k.on(&format!("BR2_TARGET_ROOTFS_SQUASHFS4_{c}")))
        .map(|(_, name)| name);
        if k.on("BR2_TARGET_ROOTFS_SQUASHFS4_LZMA") {
            bail!(
                "BR2_TARGET_ROOTFS_SQUASHFS4_LZMA: the legacy lzma compressor is not supported (the kernel does not read it)"
            );
        }
        push(&["--squashfs-comp", comp.unwrap_or("gzip")]);
        let bs = [4, 8, 16, 32, 64, 128, 256, 512, 1024]
            .into_iter()
            .find(|kib| k.on(&format!("BR2_TARGET_ROOTFS_SQUASHFS_BS_{kib}K")))
            .unwrap_or(128);
        push(&["--squashfs-block-size", &format!("{bs}K")]);
        if k.on("BR2_TARGET_ROOTFS_SQUASHFS_EXTREME_COMP") {
            push(&["--squashfs-extreme"]);
        }
        if !k.on("BR2_TARGET_ROOTFS_SQUASHFS_PAD") {
            push(&["--squashfs-no-pad"]);
        }
    }
    if k.on("BR2_TARGET_ROOTFS_EXT2") {
        let variant = if k.on("BR2_TARGET_ROOTFS_EXT2_4") {
            "ext4"
        } else if k.on("BR2_TARGET_ROOTFS_EXT2_3") {
            "ext3"
        } else {
            "ext2"
        };
        formats.push(variant);
        let size = ext_size(k.text("BR2_TARGET_ROOTFS_EXT2_SIZE").unwrap_or("60M"))?;
        push(&["--ext-size", &size]);
        // Buildroot's default size is below 512 MiB: mke2fs's "small" type.
        let bytes = crate::cli::parse_size(&size).map_err(anyhow::Error::msg)?;
        if bytes < 512 << 20 {
            push(&["--ext-block-size", "1K"]);
        }
        push(&[
            "--ext-label",
            k.text("BR2_TARGET_ROOTFS_EXT2_LABEL").unwrap_or("rootfs"),
        ]);
        if let Some(n) = k
            .text("BR2_TARGET_ROOTFS_EXT2_INODES")
            .filter(|n| *n != "0")
        {
            push(&["--ext-inodes", n]);
        }
        if let Some(n) = k
            .text("BR2_TARGET_ROOTFS_EXT2_INODE_SIZE")
            .filter(|n| *n != "0")
        {
            push(&["--ext-inode-size", n]);
        }
        if let Some(n) = k.text("BR2_TARGET_ROOTFS_EXT2_RESBLKS") {
            push(&["--ext-reserved-percent", n]);
        }
        let mkfs = k
            .text("BR2_TARGET_ROOTFS_EXT2_MKFS_OPTIONS")
            .unwrap_or("-O ^64bit");
        if let Some(f) = mkfs_features(mkfs, &mut ignored) {
            push(&["--ext-features", &f]);
        }
        let suffix = compression(k, "EXT2").map_or("", |(c, suffix)| {
            push(&["--ext-compress", c]);
            suffix
        });
        if variant != "ext2" {
            ext_rename = Some(ExtRename { variant, suffix });
        }
    }
    if k.on("BR2_TARGET_ROOTFS_ISO9660") {
        if k.on("BR2_TARGET_ROOTFS_ISO9660_INITRD") || k.on("BR2_TARGET_ROOTFS_INITRAMFS") {
            bail!(
                "BR2_TARGET_ROOTFS_ISO9660_INITRD: the initrd layout is not supported yet; build the ISO in rootfs mode (BR2_TARGET_ROOTFS_ISO9660_INITRD is not set)"
            );
        }
        formats.push("iso9660");
        if k.on("BR2_TARGET_ROOTFS_ISO9660_TRANSPARENT_COMPRESSION") {
            push(&["--iso-zisofs"]);
        }
    }
    if formats.is_empty() {
        bail!(
            "the configuration enables no image rootforge builds (BR2_TARGET_ROOTFS_CPIO, _TAR, _SQUASHFS, _EXT2, _ISO9660)"
        );
    }
    push(&["-f", &formats.join(",")]);

    let mut tables = paths(k, "BR2_ROOTFS_DEVICE_TABLE", topdir);
    if k.on("BR2_ROOTFS_DEVICE_CREATION_STATIC") {
        tables.extend(paths(k, "BR2_ROOTFS_STATIC_DEVICE_TABLE", topdir));
    }
    for t in tables {
        args.extend(["--device-table".into(), t.into()]);
    }
    for t in paths(k, "BR2_ROOTFS_USERS_TABLES", topdir) {
        args.extend(["--users-table".into(), t.into()]);
    }
    let mut push = |a: &[&str]| args.extend(a.iter().map(OsString::from));
    if k.on("BR2_INIT_SYSTEMD") {
        let read_only = !k.on("BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW");
        if read_only && k.on("BR2_INIT_SYSTEMD_VAR_FACTORY") {
            push(&["--systemd-var-factory"]);
        }
        if k.on("BR2_INIT_SYSTEMD_POPULATE_TMPFILES") {
            push(&["--systemd-tmpfiles"]);
        }
        push(&["--systemd-preset-all"]);
    }
    if let Some(arch) = k.text("BR2_ARCH") {
        push(&["--arch", uimage_arch(arch)]);
    }
    for key in ["BR2_ROOTFS_POST_FAKEROOT_SCRIPT", "BR2_ROOTFS_OVERLAY"] {
        if let Some(v) = k.text(key) {
            ignored.push(format!(
                "{key}=\"{v}\" (Buildroot applies it before the images; run it on the target directory first)"
            ));
        }
    }
    Ok(Plan {
        args,
        ext_rename,
        ignored,
    })
}

/// Buildroot's `BR2_ARCH` as mkimage names it.
fn uimage_arch(arch: &str) -> &str {
    match arch {
        "i386" | "i486" | "i586" | "i686" => "x86",
        "aarch64" | "aarch64_be" => "arm64",
        "arm" | "armeb" => "arm",
        "powerpc" | "powerpc64" | "powerpc64le" => "powerpc",
        "mips" | "mipsel" => "mips",
        "mips64" | "mips64el" => "mips64",
        "riscv" | "riscv32" | "riscv64" => "riscv",
        other => other,
    }
}

/// Gives the ext image Buildroot's name: `rootfs.ext2[.gz]`, with
/// `rootfs.ext4[.gz]` a symlink to it.
pub fn rename_ext(output: &Path, r: &ExtRename) -> Result<()> {
    let ours = output.join(format!("rootfs.{}{}", r.variant, r.suffix));
    let theirs = format!("rootfs.ext2{}", r.suffix);
    std::fs::rename(&ours, output.join(&theirs))
        .with_context(|| format!("renaming {} to {theirs}", ours.display()))?;
    std::os::unix::fs::symlink(&theirs, &ours)
        .with_context(|| format!("linking {} to {theirs}", ours.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(plan: &Plan) -> Vec<String> {
        plan.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_image_option_maps_to_a_build_argument() {
        let k = Kconfig::parse(
            r#"
BR2_ARCH="aarch64"
BR2_INIT_SYSTEMD=y
BR2_INIT_SYSTEMD_VAR_FACTORY=y
BR2_INIT_SYSTEMD_POPULATE_TMPFILES=y
BR2_ROOTFS_DEVICE_TABLE="system/device_table.txt board/perms.txt"
BR2_ROOTFS_USERS_TABLES="board/users.txt"
# BR2_ROOTFS_DEVICE_CREATION_STATIC is not set
BR2_ROOTFS_STATIC_DEVICE_TABLE="system/device_table_dev.txt"
BR2_TARGET_ROOTFS_CPIO=y
BR2_TARGET_ROOTFS_CPIO_GZIP=y
BR2_TARGET_ROOTFS_CPIO_UIMAGE=y
BR2_TARGET_ROOTFS_EXT2=y
BR2_TARGET_ROOTFS_EXT2_4=y
BR2_TARGET_ROOTFS_EXT2_LABEL="my root"
BR2_TARGET_ROOTFS_EXT2_SIZE="120M"
BR2_TARGET_ROOTFS_EXT2_INODES=0
BR2_TARGET_ROOTFS_EXT2_INODE_SIZE=256
BR2_TARGET_ROOTFS_EXT2_RESBLKS=5
BR2_TARGET_ROOTFS_EXT2_MKFS_OPTIONS="-O ^64bit -E lazy_itable_init=0"
BR2_TARGET_ROOTFS_EXT2_ZSTD=y
BR2_TARGET_ROOTFS_SQUASHFS=y
BR2_TARGET_ROOTFS_SQUASHFS4_XZ=y
BR2_TARGET_ROOTFS_SQUASHFS_BS_256K=y
BR2_TARGET_ROOTFS_SQUASHFS_EXTREME_COMP=y
# BR2_TARGET_ROOTFS_SQUASHFS_PAD is not set
BR2_TARGET_ROOTFS_TAR=y
BR2_TARGET_ROOTFS_TAR_OPTIONS=""
"#,
        );
        let p = plan(&k, Path::new("t"), Path::new("o"), Path::new("/br")).unwrap();
        let a = args(&p).join(" ");
        for want in [
            "t -o o --profile buildroot",
            "--cpio-compress gzip --cpio-uimage",
            "--squashfs-comp xz --squashfs-block-size 256K --squashfs-extreme --squashfs-no-pad",
            "--ext-size 120M --ext-block-size 1K --ext-label my root --ext-inode-size 256 \
             --ext-reserved-percent 5 --ext-features ^64bit --ext-compress zstd",
            "-f cpio,tar,squashfs,ext4",
            "--device-table /br/system/device_table.txt --device-table /br/board/perms.txt \
             --users-table /br/board/users.txt",
            "--systemd-var-factory --systemd-tmpfiles --systemd-preset-all --arch arm64",
        ] {
            assert!(a.contains(want), "{want:?} not in {a:?}");
        }
        assert!(!a.contains("device_table_dev"), "{a}");
        assert_eq!(
            p.ext_rename,
            Some(ExtRename {
                variant: "ext4",
                suffix: ".zst"
            })
        );
        assert_eq!(
            p.ignored,
            [
                "BR2_TARGET_ROOTFS_EXT2_MKFS_OPTIONS: `-E` (only -O is followed)",
                "BR2_TARGET_ROOTFS_EXT2_MKFS_OPTIONS: `lazy_itable_init=0` (only -O is followed)"
            ]
        );
    }

    #[test]
    fn later_lines_win() {
        let k = Kconfig::parse(
            "BR2_TARGET_ROOTFS_TAR=y\nBR2_TARGET_ROOTFS_CPIO=y\n\
             # BR2_TARGET_ROOTFS_TAR is not set\nBR2_TARGET_ROOTFS_EXT2_LABEL=\"a \\\"b\\\"\"\n",
        );
        assert!(!k.on("BR2_TARGET_ROOTFS_TAR"));
        assert!(k.on("BR2_TARGET_ROOTFS_CPIO"));
        assert_eq!(k.text("BR2_TARGET_ROOTFS_EXT2_LABEL"), Some("a \"b\""));
    }

    #[test]
    fn sizes_and_unsupported_choices() {
        assert_eq!(ext_size("60M").unwrap(), "60M");
        assert_eq!(ext_size("65536").unwrap(), "65536K");
        assert_eq!(ext_size("1g").unwrap(), "1G");
        assert!(ext_size("lots").is_err());
        for bad in [
            "BR2_TARGET_ROOTFS_ISO9660=y\nBR2_TARGET_ROOTFS_ISO9660_INITRD=y\n",
            "BR2_TARGET_ROOTFS_SQUASHFS=y\nBR2_TARGET_ROOTFS_SQUASHFS4_LZMA=y\n",
            "BR2_TARGET_ROOTFS_CPIO=y\nBR2_TARGET_ROOTFS_CPIO_DRACUT=y\n",
            "BR2_TARGET_ROOTFS_EXT2=y\nBR2_TARGET_ROOTFS_EXT2_SIZE=\"big\"\n",
            "# nothing\n",
        ] {
            let k = Kconfig::parse(bad);
            assert!(
                plan(&k, Path::new("t"), Path::new("o"), Path::new(".")).is_err(),
                "{bad}"
            );
        }
    }
}
