//! Buildroot's users and device tables applied natively, with no fakeroot:
//! owners, devices, capabilities and /etc files arrive in every image, and
//! errors name the table file and line.

use std::path::Path;
use std::process::Command;

use crate::util::*;

const USERS: &str = "\
# username uid group gid password home shell groups comment
www -1 www -1 =secret /var/www /bin/sh - Web server
";

const DEVICES: &str = "\
# name          type mode uid gid major minor start inc count
/dev            d    755  0   0   -     -     -     -   -
/dev/mem        c    640  0   0   1     1     -     -   -
/dev/ttyS       c    666  0   0   4     64    0     1   4
/var/www        r    750  www www -     -     -     -   -
/usr/bin/ping   f    755  0   0   -     -     -     -   -
|xattr cap_net_raw,cap_net_admin+ep
/bin/busybox    f    4755 root root -   -     -     -   -
";

fn build_with_tables(out: &Path, users: &str, devices: &str) -> std::process::Output {
    let dir = out.parent().unwrap();
    let u = dir.join("users.txt");
    let d = dir.join("device_table.txt");
    std::fs::write(&u, users).unwrap();
    std::fs::write(&d, devices).unwrap();
    rootforge()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["build", "-q", "-f", "cpio,tar,squashfs,ext4,iso9660", "-o"])
        .arg(out)
        .arg(example_tar())
        .arg("--users-table")
        .arg(&u)
        .arg("--device-table")
        .arg(&d)
        .output()
        .unwrap()
}

#[test]
fn users_devices_and_capabilities_reach_every_image() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let res = build_with_tables(&out, USERS, DEVICES);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let tar = inspect(&out.join("rootfs.tar"));
    for image in [
        "rootfs.cpio",
        "rootfs.squashfs",
        "rootfs.ext4",
        "rootfs.iso9660",
    ] {
        let lines: Vec<String> = inspect(&out.join(image))
            .into_iter()
            .filter(|l| !l.ends_with(" /lost+found"))
            .collect();
        assert_same(&format!("{image} and tar see the same tree"), &tar, &lines);
    }
    let line = |p: &str| {
        tar.iter()
            .find(|l| l.ends_with(&format!(" {p}")))
            .cloned()
            .unwrap_or_else(|| panic!("{p}"))
    };
    assert!(line("/dev/mem").starts_with("c 0640 0 0 0 1,1 "));
    for (i, minor) in (64..68).enumerate() {
        assert!(line(&format!("/dev/ttyS{i}")).starts_with(&format!("c 0666 0 0 0 4,{minor} ")));
    }
    // The automatic system id is the first free one from 100.
    assert!(
        line("/var/www").starts_with("d 0750 100 100 "),
        "{}",
        line("/var/www")
    );
    assert!(line("/bin/busybox").starts_with("f 4755 0 0 "));

    // /etc files, read back from the tar image with GNU tar.
    let x = tmp.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run(Command::new(require_tool("tar"))
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
        .arg(out.join("rootfs.tar"))
        .arg("-C")
        .arg(&x));
    let passwd = std::fs::read_to_string(x.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("www:x:100:100:Web server:/var/www:/bin/sh\n"),
        "{passwd}"
    );
    let group = std::fs::read_to_string(x.join("etc/group")).unwrap();
    assert!(group.contains("www:x:100:"), "{group}");
    let shadow = std::fs::read_to_string(x.join("etc/shadow")).unwrap();
    let hash = shadow
        .lines()
        .find(|l| l.starts_with("www:"))
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(hash.starts_with("$6$"), "{hash}");
    // The same clear password hashes the same with SOURCE_DATE_EPOCH set.
    let salt = hash.split('$').nth(2).unwrap();
    let openssl =
        run(Command::new(require_tool("openssl")).args(["passwd", "-6", "-salt", salt, "secret"]));
    assert_eq!(String::from_utf8_lossy(&openssl).trim(), hash);

    // The capability, as getfattr sees it after GNU tar restored it.
    let cap = run(Command::new(require_tool("getfattr"))
        .args(["-n", "security.capability", "-e", "hex", "--absolute-names"])
        .arg(x.join("usr/bin/ping")));
    // v2, effective; permitted = CAP_NET_ADMIN (12) | CAP_NET_RAW (13).
    const CAP_HEX: &str = "0100000200300000000000000000000000000000";
    assert!(
        String::from_utf8_lossy(&cap).contains(&format!("security.capability=0x{CAP_HEX}")),
        "{}",
        String::from_utf8_lossy(&cap)
    );
    let cap_bytes: Vec<u8> = (0..CAP_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&CAP_HEX[i..i + 2], 16).unwrap())
        .collect();

    // The same capability from squashfs (unsquashfs restores it) and ext4
    // (debugfs reads it).
    let y = tmp.path().join("y");
    run(Command::new(require_tool("unsquashfs"))
        .args(["-q", "-n", "-d"])
        .arg(&y)
        .arg(out.join("rootfs.squashfs")));
    let cap = run(Command::new(require_tool("getfattr"))
        .args(["-n", "security.capability", "-e", "hex", "--absolute-names"])
        .arg(y.join("usr/bin/ping")));
    assert!(
        String::from_utf8_lossy(&cap).contains(&format!("security.capability=0x{CAP_HEX}")),
        "squashfs: {}",
        String::from_utf8_lossy(&cap)
    );
    let cap = run(Command::new(require_tool("debugfs"))
        .args([
            "-R",
            "ea_get -f /dev/stdout /usr/bin/ping security.capability",
        ])
        .arg(out.join("rootfs.ext4")));
    assert_eq!(cap, cap_bytes, "ext4: security.capability");
}

#[test]
fn table_errors_name_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    for (devices, want) in [
        ("/etc/x f 644 nobody 0 - - - - -\n", "device_table.txt:1: "),
        (
            "/dev/a c 600 0 0 1 1 - - -\n/nope f 644 0 0 - - - - -\n",
            "device_table.txt:2: ",
        ),
        ("/dev/sda c 600 0 0 8 0 - - -\n", "device_table.txt:1: "),
    ] {
        let out = tmp.path().join("out");
        let res = build_with_tables(&out, "", devices);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "{devices:?}: {err}");
        assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
    }
    let out = tmp.path().join("out");
    let res = build_with_tables(&out, "a 5 g 5 - - - - -\nb 5 g 5 - - - - -\n", "");
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        res.status.code() == Some(1) && err.contains("users.txt:2: "),
        "{err}"
    );
}

/// --post-image runs after every image is in place, on its own format's
/// image only; a failing command fails the build and says which.
#[test]
fn post_image_commands_run_on_their_image() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let log = tmp.path().join("log");
    let cmd = format!(
        "tar:echo \"$1 $(basename $ROOTFORGE_IMAGE) $BINARIES_DIR $(ls $BINARIES_DIR | tr '\\n' ' ')\" >> {}",
        log.display()
    );
    build(
        &example_tar(),
        &out,
        &["-f", "cpio,tar", "--compress", "gzip", "--post-image", &cmd],
    );
    let said = std::fs::read_to_string(&log).unwrap();
    let image = out.join("rootfs.tar.gz");
    assert_eq!(
        said.trim_end(),
        format!(
            "{} rootfs.tar.gz {} rootfs.cpio.gz rootfs.tar.gz",
            image.display(),
            out.display()
        )
    );
    let res = rootforge()
        .args(["build", "-q", "-f", "cpio", "-o"])
        .arg(tmp.path().join("out2"))
        .arg(example_tar())
        .args(["--post-image", "cpio:exit 3"])
        .output()
        .unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("post-image command `exit 3`") && err.contains("rootfs.cpio"),
        "{err}"
    );
    let res = rootforge()
        .args(["build", "-q", "-f", "cpio", "-o"])
        .arg(tmp.path().join("out3"))
        .arg(example_tar())
        .args(["--post-image", "tar:true"])
        .output()
        .unwrap();
    assert!(!res.status.success(), "a post-image for a format not built");
}
