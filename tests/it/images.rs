//! cpio and tar images end to end: built by the binary, read back by our
//! readers and by the real tools, compared with the input entry for entry.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// Inputs every image test runs on: the bundled example, the corner-case
/// tree and the tiny Debian/busybox corpus.
fn inputs(tmp: &Path) -> Vec<PathBuf> {
    vec![example_tar(), corner_tar(tmp, &[]), tiny_corpus()]
}

fn without_root(lines: Vec<String>) -> Vec<String> {
    lines.into_iter().filter(|l| !l.ends_with(" /")).collect()
}

/// Blanks the mtime of entries of the given kinds. Extraction tools do not
/// restore every mtime: GNU cpio sets neither directory nor symlink times,
/// and GNU tar sets a directory's time as soon as a member sorts outside it,
/// so `a/x` after `a-b` (the `find | sort` order) touches `a` again. The
/// kernel's listing (tests/it/vm.rs) checks every mtime instead.
fn mask_mtimes(lines: Vec<String>, kinds: &str) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| {
            let mut f: Vec<&str> = l.splitn(8, ' ').collect();
            if f.len() == 8 && kinds.contains(f[0]) {
                f[6] = "*";
            }
            f.join(" ")
        })
        .collect()
}

#[test]
fn images_read_back_match_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    for input in inputs(tmp.path()) {
        let expected = inspect(&input);
        let out = tmp.path().join("out");
        build(&input, &out, &["-f", "cpio,tar"]);
        for img in ["rootfs.cpio", "rootfs.tar"] {
            let got = inspect(&out.join(img));
            assert_same(&format!("{} {img}", input.display()), &expected, &got);
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
}

/// bsdtar extracts `image` into `into` (created) and the tree equals the
/// input's listing, root entry aside.
fn bsdtar_extracts_the_input(
    bsdtar: &Path,
    image: &Path,
    into: &Path,
    expected: &[String],
    input: &Path,
) {
    std::fs::create_dir(into).unwrap();
    run(Command::new(bsdtar)
        .arg("-xpf")
        .arg(image)
        .args(["--numeric-owner", "-C"])
        .arg(into));
    assert_same(
        &format!("bsdtar on {} from {}", image.display(), input.display()),
        expected,
        &without_root(dir_listing(into)),
    );
}

#[test]
fn gnu_cpio_and_bsdtar_extract_our_cpio() {
    let cpio = require_tool("cpio");
    let bsdtar = require_tool("bsdtar");
    let tmp = tempfile::tempdir().unwrap();
    for input in inputs(tmp.path()) {
        let expected = without_root(inspect(&input));
        let out = tmp.path().join("out");
        build(&input, &out, &["-f", "cpio"]);
        let image = std::fs::File::open(out.join("rootfs.cpio")).unwrap();

        let x = tmp.path().join("x-cpio");
        std::fs::create_dir(&x).unwrap();
        run(Command::new(&cpio)
            .args(["-idm", "--quiet", "--no-absolute-filenames"])
            .current_dir(&x)
            .stdin(image.try_clone().unwrap()));
        assert_same(
            &format!("GNU cpio on {}", input.display()),
            &mask_mtimes(expected.clone(), "dl"),
            &mask_mtimes(without_root(dir_listing(&x)), "dl"),
        );

        let y = tmp.path().join("x-bsdtar");
        bsdtar_extracts_the_input(&bsdtar, &out.join("rootfs.cpio"), &y, &expected, &input);
        for d in [&out, &x, &y] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}

#[test]
fn gnu_tar_and_bsdtar_extract_our_tar_with_xattrs() {
    let tar = require_tool("tar");
    let bsdtar = require_tool("bsdtar");
    let getfattr = require_tool("getfattr");
    let tmp = tempfile::tempdir().unwrap();
    for input in inputs(tmp.path()) {
        let expected = without_root(inspect(&input));
        let out = tmp.path().join("out");
        build(&input, &out, &["-f", "tar"]);
        let x = tmp.path().join("x-tar");
        std::fs::create_dir(&x).unwrap();
        run(Command::new(&tar)
            .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
            .arg(out.join("rootfs.tar"))
            .arg("-C")
            .arg(&x));
        assert_same(
            &format!("GNU tar on {}", input.display()),
            &mask_mtimes(expected.clone(), "d"),
            &mask_mtimes(without_root(dir_listing(&x)), "d"),
        );

        // Extract the input the same way: the xattrs must agree.
        let want = tmp.path().join("x-want");
        std::fs::create_dir(&want).unwrap();
        run(Command::new(&tar)
            .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
            .arg(&input)
            .arg("-C")
            .arg(&want));
        let dump = |d: &Path| {
            run(Command::new(&getfattr)
                .args([
                    "-R",
                    "-P",
                    "-h",
                    "-d",
                    "-m",
                    "-",
                    "-e",
                    "hex",
                    "--absolute-names",
                    ".",
                ])
                .current_dir(d))
        };
        let want_dump = String::from_utf8_lossy(&dump(&want)).into_owned();
        if input.ends_with("corner.tar") {
            assert!(
                want_dump.contains("security.capability") && want_dump.contains("user."),
                "{want_dump}"
            );
        }
        assert_eq!(
            want_dump,
            String::from_utf8_lossy(&dump(&x)).into_owned(),
            "xattrs of {}",
            input.display()
        );

        let y = tmp.path().join("x-bsdtar");
        bsdtar_extracts_the_input(&bsdtar, &out.join("rootfs.tar"), &y, &expected, &input);
        for d in [&out, &x, &y, &want] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}

/// The determinism matrix: every format with every compressor (outer
/// compression for cpio, tar and ext; squashfs's own compressor) gives the
/// same bytes at --jobs 1, 2 and 8, and on a second run.
#[test]
fn output_is_identical_for_any_jobs_and_run() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tiny_corpus();
    for comp in ["none", "gzip", "zstd", "xz", "lz4", "bzip2", "lzma", "lzo"] {
        let squashfs_comp = match comp {
            "bzip2" | "lzma" => "gzip",
            c => c,
        };
        let mut images: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
        for (run_no, jobs) in ["1", "2", "8", "2"].into_iter().enumerate() {
            let out = tmp.path().join(format!("out-{comp}-{run_no}"));
            build(
                &input,
                &out,
                &[
                    "-f",
                    "cpio,tar,squashfs,ext2,ext3,ext4,iso9660",
                    "--iso-zisofs",
                    "--compress",
                    comp,
                    "--compress-level",
                    "1",
                    "--squashfs-comp",
                    squashfs_comp,
                    "--squashfs-block-size",
                    "4K",
                    "-j",
                    jobs,
                ],
            );
            let mut files: Vec<_> = std::fs::read_dir(&out)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect();
            files.sort();
            images.push(files);
            std::fs::remove_dir_all(&out).unwrap();
        }
        for other in &images[1..] {
            let names: Vec<_> = other.iter().map(|f| &f.0).collect();
            assert!(
                images[0] == *other,
                "{comp}: output differs between runs/--jobs ({names:?})"
            );
        }
    }
}

#[test]
fn compressed_images_decode_with_the_real_tools() {
    let tmp = tempfile::tempdir().unwrap();
    let input = corner_tar(tmp.path(), &[]);
    let tools = [
        ("gzip", ".gz", vec!["gzip", "-dc"]),
        ("bzip2", ".bz2", vec!["bzip2", "-dc"]),
        ("xz", ".xz", vec!["xz", "-dc"]),
        ("zstd", ".zst", vec!["zstd", "-dc"]),
        ("lz4", ".lz4", vec!["lz4", "-dc"]),
        ("lzma", ".lzma", vec!["xz", "--format=lzma", "-dc"]),
        ("lzo", ".lzo", vec!["lzop", "-dc"]),
    ];
    for (comp, suffix, cmd) in tools {
        require_tool(cmd[0]);
        let out = tmp.path().join(format!("out-{comp}"));
        build(
            &input,
            &out,
            &["-f", "cpio", "--compress", comp, "--keep-uncompressed"],
        );
        let plain = std::fs::read(out.join("rootfs.cpio")).unwrap();
        let decoded = run(Command::new(cmd[0])
            .args(&cmd[1..])
            .arg(out.join(format!("rootfs.cpio{suffix}"))));
        assert!(
            decoded == plain,
            "{comp}: `{}` output differs from the uncompressed image",
            cmd.join(" ")
        );
        assert_eq!(
            inspect(&out.join(format!("rootfs.cpio{suffix}"))),
            inspect(&input),
            "{comp}"
        );
        if comp == "gzip" {
            // Compressed on all cores as independent members (gzip -9 -n
            // headers: no name, mtime 0, XFL 2, OS 3).
            let gz = std::fs::read(out.join("rootfs.cpio.gz")).unwrap();
            let members = gz
                .windows(10)
                .filter(|w| *w == [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3])
                .count();
            assert!(members >= 2, "{members} gzip members in {} bytes", gz.len());
        }
    }
}

#[test]
fn cpio_tweak_and_overlays_stay_in_their_image() {
    let tmp = tempfile::tempdir().unwrap();
    let input = example_tar();
    let extra = tmp.path().join("extra");
    std::fs::create_dir_all(extra.join("etc")).unwrap();
    std::fs::write(extra.join("etc/only-in-tar"), "x\n").unwrap();
    let out = tmp.path().join("out");
    build(
        &input,
        &out,
        &[
            "-f",
            "cpio,tar",
            "--cpio-init",
            "--overlay",
            &format!("tar:{}", extra.display()),
        ],
    );
    let cpio = inspect(&out.join("rootfs.cpio"));
    let tar = inspect(&out.join("rootfs.tar"));
    let has = |l: &[String], p: &str| l.iter().any(|x| x.ends_with(&format!(" {p}")));
    assert!(has(&cpio, "/init") && !has(&tar, "/init"));
    assert!(
        cpio.iter()
            .any(|l| l.starts_with("c 0622 0 0 0 5,1 ") && l.ends_with(" /dev/console"))
    );
    assert!(has(&tar, "/etc/only-in-tar") && !has(&cpio, "/etc/only-in-tar"));
    // The tar image is the input plus the overlay file, nothing else.
    let mut expected = inspect(&input);
    expected.retain(|l| !l.ends_with(" /etc"));
    let mut got = tar.clone();
    got.retain(|l| !l.ends_with(" /etc") && !l.ends_with(" /etc/only-in-tar"));
    assert_same("tar with overlay", &expected, &got);
}

#[test]
fn sparse_file_over_4gib_is_a_clear_cpio_error_and_fine_in_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let f = std::fs::File::create(src.join("big")).unwrap();
    f.set_len(5 << 30).unwrap();
    drop(f);
    std::fs::write(src.join("small"), "hello").unwrap();
    for format in ["gnu", "posix"] {
        let tarball = tmp.path().join(format!("{format}.tar"));
        run(Command::new(require_tool("tar"))
            .args(["-S", "--format", format, "-cf"])
            .arg(&tarball)
            .arg("-C")
            .arg(&src)
            .args(["big", "small"]));
        let listing = inspect(&tarball);
        assert!(
            listing
                .iter()
                .any(|l| l.starts_with(&format!("f 0644 0 0 {} ", 5u64 << 30))
                    && l.ends_with(" /big")),
            "{listing:?}"
        );
        let out = tmp.path().join(format!("out-{format}"));
        let res = rootforge()
            .args(["build", "-q", "-f", "cpio", "-o"])
            .arg(&out)
            .arg(&tarball)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{err}");
        assert!(err.contains("/big") && err.contains("4294967295"), "{err}");
        assert_eq!(std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0), 0);
    }
}

#[test]
fn example_stdin_and_directory_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    // No input: the bundled example.
    let out = tmp.path().join("ex");
    run(rootforge()
        .args(["build", "-q", "-f", "tar", "-o"])
        .arg(&out));
    assert_same(
        "bundled example",
        &inspect(&example_tar()),
        &inspect(&out.join("rootfs.tar")),
    );

    // stdin, gzip-compressed.
    let gz = tmp.path().join("in.tar.gz");
    let data = run(Command::new("gzip").arg("-c").arg(example_tar()));
    std::fs::write(&gz, data).unwrap();
    let out2 = tmp.path().join("stdin");
    run(rootforge()
        .args(["build", "-q", "-f", "cpio", "-o"])
        .arg(&out2)
        .arg("-")
        .stdin(std::fs::File::open(&gz).unwrap()));
    assert_same(
        "stdin",
        &inspect(&example_tar()),
        &inspect(&out2.join("rootfs.cpio")),
    );

    // A directory (extracted as root, so owners are kept).
    let dir = tmp.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    run(Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
        .arg(example_tar())
        .arg("-C")
        .arg(&dir));
    let out3 = tmp.path().join("fromdir");
    build(&dir, &out3, &["-f", "tar"]);
    assert_same(
        "directory input",
        &without_root(inspect(&example_tar())),
        &without_root(inspect(&out3.join("rootfs.tar"))),
    );
    let out4 = tmp.path().join("allroot");
    build(&dir, &out4, &["-f", "tar", "--all-root"]);
    assert!(
        inspect(&out4.join("rootfs.tar"))
            .iter()
            .all(|l| l.split(' ').nth(2) == Some("0"))
    );
}

#[test]
fn uimage_matches_mkimage() {
    let mkimage = require_tool("mkimage");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run(rootforge()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args([
            "build",
            "-q",
            "-f",
            "cpio",
            "--compress",
            "gzip",
            "--cpio-uimage",
            "--arch",
            "arm",
            "-o",
        ])
        .arg(&out)
        .arg(example_tar()));
    let theirs = tmp.path().join("theirs.uboot");
    run(Command::new(mkimage)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["-A", "arm", "-T", "ramdisk", "-C", "none", "-d"])
        .arg(out.join("rootfs.cpio.gz"))
        .arg(&theirs));
    assert!(
        std::fs::read(&theirs).unwrap() == std::fs::read(out.join("rootfs.cpio.uboot")).unwrap()
    );
    assert_same(
        "uImage",
        &inspect(&example_tar()),
        &inspect(&out.join("rootfs.cpio.uboot")),
    );
}

/// The invariant the design exists for: every image's bytes are the same
/// whether it is built alone or with all the others, and no image sees
/// another's tweaks (Buildroot's /init and /dev/console are in the cpio
/// only, an overlay given for one format is in that image only).
#[test]
fn each_image_is_independent_of_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    // With names ISO9660 holds (Linux reads Rock Ridge names up to 253 bytes).
    let input = corner_tar(tmp.path(), &["--name-max", "253"]);
    let extra = tmp.path().join("extra");
    std::fs::create_dir_all(extra.join("etc")).unwrap();
    std::fs::write(extra.join("etc/only-in-squashfs"), b"overlay\n").unwrap();
    let formats = ["cpio", "tar", "squashfs", "ext2", "ext3", "ext4", "iso9660"];
    let overlay = format!("squashfs:{}", extra.display());
    let common = ["--profile", "buildroot"];
    let together = tmp.path().join("together");
    build(
        &input,
        &together,
        &[
            &["-f", &formats.join(","), "--overlay", &overlay],
            &common[..],
        ]
        .concat(),
    );
    let input_paths: Vec<String> = inspect(&input)
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        .collect();
    assert!(
        !input_paths
            .iter()
            .any(|p| p == "/init" || p == "/dev/console")
    );
    for f in formats {
        let alone = tmp.path().join(format!("alone-{f}"));
        // An overlay names an image being built: squashfs's goes with it.
        let own: &[&str] = if f == "squashfs" {
            &["--overlay", &overlay]
        } else {
            &[]
        };
        build(&input, &alone, &[&["-f", f], own, &common[..]].concat());
        let name = format!("rootfs.{f}");
        assert!(
            std::fs::read(alone.join(&name)).unwrap()
                == std::fs::read(together.join(&name)).unwrap(),
            "{name} differs when built with the other images"
        );
        let paths: Vec<String> = inspect(&together.join(&name))
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
            .collect();
        let has = |p: &str| paths.iter().any(|x| x == p);
        assert_eq!(has("/init"), f == "cpio", "{name}: /init");
        assert_eq!(has("/dev/console"), f == "cpio", "{name}: /dev/console");
        assert_eq!(
            has("/etc/only-in-squashfs"),
            f == "squashfs",
            "{name}: overlay"
        );
    }
}
