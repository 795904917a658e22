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
