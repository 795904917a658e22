//! ISO9660 images end to end: our reader, xorriso, isoinfo and bsdtar.

use std::process::Command;

use crate::util::*;

/// The corner cases and the tiny corpus: our reader gives back the input
/// entry for entry; xorriso reads the whole tree without a complaint;
/// isoinfo finds Rock Ridge and Joliet; bsdtar lists every entry.
#[test]
fn iso_images_read_back_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    for input in [
        // Within what Linux (names) and libisofs (symlink targets) read.
        corner_tar(tmp.path(), &["--name-max", "253", "--symlink-max", "1023"]),
        tiny_corpus(),
    ] {
        let expected = inspect(&input);
        let out = tmp.path().join("out");
        build(
            &input,
            &out,
            &["-f", "iso9660", "--iso-volume-id", "CORNER_1"],
        );
        let image = out.join("rootfs.iso9660");
        assert_same(&input.display().to_string(), &expected, &inspect(&image));

        let x = Command::new(require_tool("xorriso"))
            .arg("-indev")
            .arg(&image)
            .args(["-find", "/", "-exec", "lsdl"])
            .output()
            .unwrap();
        assert!(x.status.success());
        let err = String::from_utf8_lossy(&x.stderr);
        for word in ["FAILURE", "SORRY", "WARNING", "MISHAP"] {
            assert!(!err.contains(word), "xorriso: {err}");
        }
        let listed = String::from_utf8_lossy(&x.stdout).lines().count();
        assert_eq!(listed, expected.len(), "xorriso lists every entry");

        let info = run(Command::new(require_tool("isoinfo"))
            .arg("-d")
            .arg("-i")
            .arg(&image));
        let info = String::from_utf8_lossy(&info);
        assert!(info.contains("Volume id: CORNER_1"), "{info}");
        assert!(info.contains("Rock Ridge signatures"), "{info}");
        assert!(info.contains("Joliet with UCS level 3 found"), "{info}");

        let listed = run(Command::new(require_tool("bsdtar")).arg("-tf").arg(&image));
        assert_eq!(
            String::from_utf8_lossy(&listed).lines().count(),
            expected.len(),
            "bsdtar lists every entry"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
}

/// A name longer than Linux's isofs reads whole is refused before any file
/// appears, naming the path and the limit.
#[test]
fn names_linux_would_cut_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let input = corner_tar(tmp.path(), &[]);
    let out = tmp.path().join("out");
    let res = rootforge()
        .args(["build", "-q", "-f", "cpio,iso9660", "-o"])
        .arg(&out)
        .arg(&input)
        .output()
        .unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("/names/nnnn") && err.contains("at most 253"),
        "{err}"
    );
    assert!(std::fs::read_dir(&out).map_or(true, |mut d| d.next().is_none()));
}

/// Buildroot's initrd layout: the ISO holds the kernel, this run's cpio
/// image as boot/initrd, the boot loader files and the menu with its paths
/// filled in, and nothing of the rootfs.
#[test]
fn initrd_layout_holds_the_boot_files_and_this_runs_cpio() {
    let tmp = tempfile::tempdir().unwrap();
    let kernel = tmp.path().join("bzImage");
    std::fs::write(&kernel, b"not really a kernel").unwrap();
    let menu = tmp.path().join("isolinux.cfg");
    std::fs::write(
        &menu,
        "KERNEL __KERNEL_PATH__\nAPPEND initrd=__INITRD_PATH__\n",
    )
    .unwrap();
    let loader = tmp.path().join("loader");
    std::fs::create_dir_all(loader.join("isolinux")).unwrap();
    std::fs::write(loader.join("isolinux/ldlinux.c32"), b"loader module").unwrap();
    let out = tmp.path().join("out");
    let common = [
        "-f",
        "cpio,iso9660",
        "--cpio-compress",
        "gzip",
        "--iso-initrd",
        "--iso-kernel",
        kernel.to_str().unwrap(),
        "--iso-boot-menu",
        &format!("{}:isolinux/isolinux.cfg", menu.display()),
        "--overlay",
        &format!("iso9660:{}", loader.display()),
    ];
    build(&example_tar(), &out, &common);
    let lines = inspect(&out.join("rootfs.iso9660"));
    let paths: Vec<&str> = lines
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/",
            "/boot",
            "/boot/bzImage",
            "/boot/initrd",
            "/isolinux",
            "/isolinux/isolinux.cfg",
            "/isolinux/ldlinux.c32"
        ]
    );
    let cpio = std::fs::read(out.join("rootfs.cpio.gz")).unwrap();
    let initrd = lines.iter().find(|l| l.ends_with(" /boot/initrd")).unwrap();
    let want = format!(
        " {} {} ",
        cpio.len(),
        rootforge::common::listing::sha256_hex(&cpio)
    );
    assert!(initrd.contains(&want), "{initrd} lacks{want}");
    let data: rootforge::common::Backing =
        std::sync::Arc::new(std::fs::read(out.join("rootfs.iso9660")).unwrap());
    let tree = rootforge::iso9660::read(data).unwrap();
    let view = tree.view();
    let menu = view.lookup(b"isolinux/isolinux.cfg").unwrap();
    let rootforge::common::Content::File(text) = &view.inode(menu).content else {
        panic!("the menu is not a file");
    };
    assert_eq!(
        text.to_vec().unwrap(),
        b"KERNEL /boot/bzImage\nAPPEND initrd=/boot/initrd\n"
    );

    // Without the cpio image, or with a kernel that is not there: an
    // error, and no image at all.
    for (formats, kernel) in [
        ("iso9660", kernel.to_str().unwrap()),
        ("cpio,iso9660", "/no/such/kernel"),
    ] {
        let out = tmp.path().join("bad");
        let mut args: Vec<&str> = common.to_vec();
        args[1] = formats;
        args[6] = kernel;
        let res = rootforge()
            .args(["build", "-q", "-o"])
            .arg(&out)
            .arg(example_tar())
            .args(&args)
            .output()
            .unwrap();
        assert!(!res.status.success(), "{formats} {kernel}");
        let left: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{formats} {kernel}: left {left:?}");
    }
}
