//! Input semantics: compression sniffing, pax details, replacement,
//! implied parents, SOURCE_DATE_EPOCH, the config file.

use std::process::Command;

use crate::bad_input::Ustar;
use crate::util::*;

/// A pax record, `"<len> key=value\n"` with the length counting itself.
fn record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = [b" ", key.as_bytes(), b"=", value, b"\n"].concat();
    let mut len = body.len() + 1;
    while format!("{len}").len() + body.len() != len {
        len += 1;
    }
    [format!("{len}").as_bytes(), &body].concat()
}

fn pax(kind: u8, records: &[(&str, &[u8])]) -> Vec<u8> {
    let data: Vec<u8> = records.iter().flat_map(|(k, v)| record(k, v)).collect();
    let mut out = Ustar::header(b"./PaxHeaders/x", kind, data.len() as u64, b"").to_vec();
    out.extend_from_slice(&data);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

fn listing_of(tar: &[u8], env: &[(&str, &str)]) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.tar");
    std::fs::write(&input, tar).unwrap();
    let out = tmp.path().join("out");
    run(rootforge()
        .envs(env.iter().copied())
        .args(["build", "-q", "-f", "tar", "-o"])
        .arg(&out)
        .arg(&input));
    inspect(&out.join("rootfs.tar"))
}

#[test]
fn pax_records_globals_replacement_and_implied_parents() {
    let mut tar = Vec::new();
    // A global header sets the owner of everything after it.
    tar.extend(pax(b'g', &[("uid", b"4000000000"), ("gid", b"77")]));
    tar.extend(Ustar::new().file("etc/first", b"old contents").0);
    // pax path, fractional mtime, xattrs in both encodings; a value holding
    // a newline and something that looks like a record must not desync.
    tar.extend(pax(
        b'x',
        &[
            ("path", "usr/share/ünïcode name".as_bytes()),
            ("mtime", b"1700000000.25"),
            ("SCHILY.xattr.user.nl", b"a\n9 path=evil\n"),
            ("LIBARCHIVE.xattr.user.%41b", b"AQID"),
        ],
    ));
    tar.extend(Ustar::new().file("ignored-short-name", b"data").0);
    // The same path again: the later entry wins.
    tar.extend(Ustar::new().file("etc/first", b"new").0);
    tar.extend(Ustar::new().finish());
    let lines = listing_of(&tar, &[]);
    let by_path = |p: &str| {
        lines
            .iter()
            .find(|l| l.ends_with(&format!(" {p}")))
            .unwrap_or_else(|| panic!("{p} in {lines:?}"))
    };
    assert!(by_path("/etc/first").starts_with("f 0644 4000000000 77 3 "));
    assert!(by_path("/usr/share/ünïcode name").contains(" 1700000000 "));
    // Implied parents: 0755, root, mtime 0 (no SOURCE_DATE_EPOCH).
    assert_eq!(by_path("/usr"), "d 0755 0 0 0 - 0 /usr");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("evil") || l.contains("ignored-short-name"))
    );
}

#[test]
fn xattrs_from_both_pax_encodings_reach_the_tar_image() {
    let mut tar = pax(
        b'x',
        &[
            ("SCHILY.xattr.user.nl", b"a\n9 path=evil\n"),
            ("LIBARCHIVE.xattr.user.%41b", b"AQID"),
        ],
    );
    tar.extend(Ustar::new().file("f", b"x").finish());
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.tar");
    std::fs::write(&input, &tar).unwrap();
    let out = tmp.path().join("out");
    build(&input, &out, &["-f", "tar"]);
    let x = tmp.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run(Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "-xf"])
        .arg(out.join("rootfs.tar"))
        .arg("-C")
        .arg(&x));
    assert_eq!(
        xattr::get(x.join("f"), "user.nl").unwrap().unwrap(),
        b"a\n9 path=evil\n"
    );
    assert_eq!(
        xattr::get(x.join("f"), "user.Ab").unwrap().unwrap(),
        [1, 2, 3]
    );
}

#[test]
fn source_date_epoch_clamps_every_mtime() {
    let tar = Ustar::new().file("a/b", b"x").finish();
    let lines = listing_of(&tar, &[("SOURCE_DATE_EPOCH", "1000")]);
    // The file's 1700000000 is clamped; the implied parents are dated 1000.
    assert!(
        lines.iter().all(|l| l.split(' ').nth(6) == Some("1000")),
        "{lines:?}"
    );
}

#[test]
fn every_input_compression_is_sniffed() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = inspect(&example_tar());
    for (tool, args) in [
        ("gzip", &["-c"][..]),
        ("zstd", &["-c", "-q"]),
        ("xz", &["-c"]),
        ("bzip2", &["-c"]),
        ("lz4", &["-c", "-q"]),
    ] {
        require_tool(tool);
        // A misleading name: the magic bytes decide.
        let input = tmp.path().join(format!("rootfs-{tool}.tar"));
        std::fs::write(
            &input,
            run(Command::new(tool).args(args).arg(example_tar())),
        )
        .unwrap();
        let out = tmp.path().join(format!("out-{tool}"));
        build(&input, &out, &["-f", "tar"]);
        assert_same(tool, &expected, &inspect(&out.join("rootfs.tar")));
    }
    // gzip with several members (as pigz or a concatenation makes).
    let parts = tmp.path().join("multi.tar.gz");
    let raw = std::fs::read(example_tar()).unwrap();
    let (a, b) = raw.split_at(10240);
    let gz = |d: &[u8]| {
        let p = tmp.path().join("part");
        std::fs::write(&p, d).unwrap();
        run(Command::new("gzip").arg("-c").arg(&p))
    };
    std::fs::write(&parts, [gz(a), gz(b)].concat()).unwrap();
    let out = tmp.path().join("out-multi");
    build(&parts, &out, &["-f", "tar"]);
    assert_same(
        "multi-member gzip",
        &expected,
        &inspect(&out.join("rootfs.tar")),
    );
}

#[test]
fn config_file_describes_input_images_and_overlays() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("extra/etc")).unwrap();
    std::fs::write(tmp.path().join("extra/etc/motd"), "hi\n").unwrap();
    std::fs::copy(example_tar(), tmp.path().join("rootfs.tar")).unwrap();
    let cfg = tmp.path().join("images.toml");
    std::fs::write(
        &cfg,
        "input = \"rootfs.tar\"\noutput = \"images\"\njobs = 1\n\n[images.cpio]\ncompress = \"gzip\"\ninit = true\noverlays = [\"extra\"]\n\n[images.tar]\n",
    )
    .unwrap();
    run(rootforge().args(["build", "-q", "--config"]).arg(&cfg));
    let cpio = inspect(&tmp.path().join("images/rootfs.cpio.gz"));
    let tar = inspect(&tmp.path().join("images/rootfs.tar"));
    assert!(
        cpio.iter().any(|l| l.ends_with(" /etc/motd"))
            && cpio.iter().any(|l| l.ends_with(" /init"))
    );
    assert_same("tar from the config", &inspect(&example_tar()), &tar);
}
