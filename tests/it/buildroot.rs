//! `rootforge buildroot` and contrib/buildroot/post-image.sh, run the way
//! Buildroot runs a post-image script, on a target directory owned by the
//! build user.

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// Extracts a tarball as Buildroot's output/target is: owned by the build
/// user, whatever the tarball says.
fn target_dir(tar: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    run(Command::new(require_tool("tar"))
        .args(["-xf"])
        .arg(tar)
        .args(["--no-same-owner", "--no-same-permissions", "-C"])
        .arg(dir));
    run(Command::new("chown").args(["-R", "1000:1000"]).arg(dir));
}

#[test]
fn post_image_script_builds_what_the_config_enables() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    target_dir(&example_tar(), &target);
    let top = tmp.path().join("buildroot");
    std::fs::create_dir_all(top.join("system")).unwrap();
    std::fs::write(
        top.join("system/device_table.txt"),
        "/var/www\td\t755\t33\t33\t-\t-\t-\t-\t-\n/dev/ttyS\tc\t660\t0\t5\t4\t64\t0\t1\t2\n",
    )
    .unwrap();
    std::fs::write(
        top.join("system/users.txt"),
        "web -1 web -1 =secret /home/web /bin/sh - Web\n",
    )
    .unwrap();
    let config = top.join(".config");
    std::fs::write(
        &config,
        "BR2_ARCH=\"x86_64\"\n\
         BR2_ROOTFS_DEVICE_TABLE=\"system/device_table.txt\"\n\
         BR2_ROOTFS_USERS_TABLES=\"system/users.txt\"\n\
         # BR2_TARGET_ROOTFS_TAR is not set\n",
    )
    .unwrap();
    let fragment = tmp.path().join("rootfs.config");
    std::fs::write(
        &fragment,
        "BR2_TARGET_ROOTFS_CPIO=y\nBR2_TARGET_ROOTFS_CPIO_GZIP=y\n\
         BR2_TARGET_ROOTFS_EXT2=y\nBR2_TARGET_ROOTFS_EXT2_4=y\nBR2_TARGET_ROOTFS_EXT2_SIZE=\"8M\"\n\
         BR2_TARGET_ROOTFS_EXT2_MKFS_OPTIONS=\"-O ^64bit\"\n\
         BR2_TARGET_ROOTFS_SQUASHFS=y\nBR2_TARGET_ROOTFS_SQUASHFS4_ZSTD=y\n\
         BR2_TARGET_ROOTFS_SQUASHFS_BS_64K=y\nBR2_TARGET_ROOTFS_SQUASHFS_PAD=y\n\
         BR2_TARGET_ROOTFS_ISO9660=y\nBR2_TARGET_ROOTFS_TAR=y\n",
    )
    .unwrap();
    let images = tmp.path().join("images");
    run(Command::new(repo().join("contrib/buildroot/post-image.sh"))
        .arg(&images)
        .arg(&fragment)
        .current_dir(&top)
        .env("BR2_CONFIG", &config)
        .env("TARGET_DIR", &target)
        .env("ROOTFORGE", env!("CARGO_BIN_EXE_rootforge"))
        .env("SOURCE_DATE_EPOCH", "1700000000"));

    let mut names: Vec<String> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "rootfs.cpio.gz",
            "rootfs.ext2",
            "rootfs.ext4",
            "rootfs.iso9660",
            "rootfs.squashfs",
            "rootfs.tar"
        ]
    );
    assert_eq!(
        std::fs::read_link(images.join("rootfs.ext4")).unwrap(),
        Path::new("rootfs.ext2")
    );
    assert_eq!(
        std::fs::metadata(images.join("rootfs.ext2")).unwrap().len(),
        8 << 20
    );
    run(Command::new(require_tool("e2fsck"))
        .arg("-fn")
        .arg(images.join("rootfs.ext2")));

    // Every image: owned by root except what the tables say, the table's
    // entries and the user there, the cpio tweak in the cpio only.
    for name in [
        "rootfs.cpio.gz",
        "rootfs.ext2",
        "rootfs.iso9660",
        "rootfs.squashfs",
        "rootfs.tar",
    ] {
        let lines = inspect(&images.join(name));
        let find = |path: &str| lines.iter().find(|l| l.ends_with(&format!(" {path}")));
        let www = find("/var/www").unwrap_or_else(|| panic!("{name}: /var/www"));
        assert!(www.starts_with("d 0755 33 33 "), "{name}: {www}");
        for tty in ["/dev/ttyS0", "/dev/ttyS1"] {
            let l = find(tty).unwrap_or_else(|| panic!("{name}: {tty}"));
            assert!(l.starts_with("c 0660 0 5 0 4,"), "{name}: {l}");
        }
        let home = find("/home/web").unwrap_or_else(|| panic!("{name}: /home/web"));
        // uid -1: the first free system id, as mkusers allocates it.
        assert!(home.starts_with("d 0755 100 100 "), "{name}: {home}");
        let others: Vec<_> = lines
            .iter()
            .filter(|l| {
                !l.contains(" 0 0 ")
                    && !l.contains("/var/www")
                    && !l.contains("/dev/ttyS")
                    && !l.contains("/home/web")
                    && !l.ends_with(" /lost+found")
            })
            .collect();
        assert!(others.is_empty(), "{name}: not owned by root: {others:?}");
        assert_eq!(
            find("/init").is_some(),
            name.starts_with("rootfs.cpio"),
            "{name}: /init"
        );
    }
}

/// --print shows the translated command; what cannot be followed is an
/// error that names the option.
#[test]
fn buildroot_print_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join(".config");
    std::fs::write(&config, "BR2_TARGET_ROOTFS_SQUASHFS=y\nBR2_TARGET_ROOTFS_SQUASHFS4_XZ=y\nBR2_TARGET_ROOTFS_SQUASHFS_EXTREME_COMP=y\nBR2_ARCH=\"arm\"\n").unwrap();
    let out = run(rootforge()
        .args([
            "buildroot",
            "--print",
            "--target-dir",
            "t",
            "-o",
            "o",
            "--config",
        ])
        .arg(&config));
    assert_eq!(
        String::from_utf8_lossy(&out).trim(),
        format!(
            "rootforge build t -o o -f squashfs -j {} --profile buildroot --arch arm \
             --squashfs-comp xz --squashfs-block-size 128K --squashfs-extreme --squashfs-no-pad",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        )
    );
    std::fs::write(
        &config,
        "BR2_TARGET_ROOTFS_ISO9660=y\nBR2_TARGET_ROOTFS_ISO9660_INITRD=y\n",
    )
    .unwrap();
    let res = rootforge()
        .args(["buildroot", "--target-dir", "t", "-o", "o", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("BR2_TARGET_ROOTFS_ISO9660_INITRD"));
}

#[test]
fn buildroot_erofs_options() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join(".config");
    std::fs::write(
        &config,
        "BR2_TARGET_ROOTFS_EROFS=y\nBR2_TARGET_ROOTFS_EROFS_LZ4HC=y\nBR2_TARGET_ROOTFS_EROFS_LZ4HC_LEVEL=12\n\
         BR2_TARGET_ROOTFS_EROFS_PCLUSTERSIZE=65536\nBR2_REPRODUCIBLE=y\n",
    )
    .unwrap();
    let out = run(rootforge()
        .args([
            "buildroot",
            "--print",
            "--target-dir",
            "t",
            "-o",
            "o",
            "--config",
        ])
        .arg(&config));
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("-f erofs -j ")
            && text.contains(
            "--erofs-compress lz4hc --erofs-level 12 --erofs-pcluster-size 64K --erofs-uuid 00000000-0000-0000-0000-000000000000"
        ),
        "{text}"
    );
    std::fs::write(
        &config,
        "BR2_TARGET_ROOTFS_EROFS=y\nBR2_TARGET_ROOTFS_EROFS_DEDUPE=y\n",
    )
    .unwrap();
    let res = rootforge()
        .args(["buildroot", "--target-dir", "t", "-o", "o", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("BR2_TARGET_ROOTFS_EROFS_DEDUPE"));
}
