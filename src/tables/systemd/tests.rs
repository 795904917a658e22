use rootforge_common::{Content, Edit, FileData, Inode, Meta, Replace, Time, TreeBuilder};

use super::*;

const T0: Time = Time::from_secs(100);
const NOW: Time = Time::from_secs(2000);

fn meta(perm: u16, uid: u32, gid: u32) -> Meta {
    Meta::new(perm, uid, gid, T0)
}

fn file(b: &mut TreeBuilder, path: &str, perm: u16, owner: (u32, u32), text: &str) {
    let inode = Inode::new(
        meta(perm, owner.0, owner.1),
        Content::File(FileData::bytes(text.as_bytes().to_vec())),
    );
    b.insert(path.as_bytes(), inode, Replace::Always).unwrap();
}

fn dir(b: &mut TreeBuilder, path: &str, perm: u16, owner: (u32, u32)) {
    b.insert(
        path.as_bytes(),
        Inode::dir(meta(perm, owner.0, owner.1)),
        Replace::Always,
    )
    .unwrap();
}

fn symlink(b: &mut TreeBuilder, path: &str, target: &str) {
    let inode = Inode::new(
        meta(0o777, 0, 0),
        Content::Symlink(target.as_bytes().into()),
    );
    b.insert(path.as_bytes(), inode, Replace::Always).unwrap();
}

/// A tree with the databases owners are looked up in.
fn base() -> TreeBuilder {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0));
    file(
        &mut b,
        "etc/passwd",
        0o644,
        (0, 0),
        "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/bin/false\n",
    );
    file(
        &mut b,
        "etc/group",
        0o644,
        (0, 0),
        "root:x:0:\nwww-data:x:33:\nadm:x:4:\nutmp:x:43:\n",
    );
    file(
        &mut b,
        "usr/lib/os-release",
        0o644,
        (0, 0),
        "ID=buildroot\nVERSION_ID=\"2026.08\"\n",
    );
    symlink(&mut b, "etc/os-release", "../usr/lib/os-release");
    b
}

/// One entry as `find -printf '%y %m %U:%G'` would show it, then the
/// symlink target or the file contents; `-` if absent.
fn show(b: &TreeBuilder, path: &str) -> String {
    let Some(id) = b.lookup(path.as_bytes()) else {
        return "-".into();
    };
    let i = b.inode(id);
    let head = format!(
        "{} {:o} {}:{}",
        i.kind().letter(),
        i.meta.perm,
        i.meta.uid,
        i.meta.gid
    );
    match &i.content {
        Content::File(d) => format!(
            "{head} {:?}",
            String::from_utf8(d.to_vec().unwrap()).unwrap()
        ),
        Content::Symlink(s) => format!("{head} -> {}", String::from_utf8_lossy(s)),
        Content::CharDev { major, minor } => format!("{head} {major}:{minor}"),
        _ => head,
    }
}

fn names(b: &TreeBuilder, path: &str) -> Vec<String> {
    let id = b.lookup(path.as_bytes()).unwrap();
    b.inode(id)
        .children()
        .unwrap()
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

fn reasons(skipped: &[Skipped]) -> Vec<String> {
    skipped
        .iter()
        .map(|s| format!("{}:{}: {}", s.origin.file, s.origin.line, s.reason))
        .collect()
}

#[test]
fn fnmatch_follows_fnmatch3() {
    assert!(fnmatch(b"*", b"a.service"));
    assert!(fnmatch(b"getty@*.service", b"getty@tty1.service"));
    assert!(fnmatch(b"x.*", b"x.socket"));
    assert!(!fnmatch(b"x.*", b"xy.socket"));
    assert!(fnmatch(b"[a-c]?.t[!x]t", b"bz.tyt"));
    assert!(!fnmatch(b"[a-c]?.t[!x]t", b"bz.txt"));
    assert!(!fnmatch(b"[a-c]?.t[!x]t", b"dz.tyt"));
    assert!(fnmatch(b"a\\*b", b"a*b"));
    assert!(!fnmatch(b"a\\*b", b"axb"));
    assert!(fnmatch(b"*a*b*", b"xxaybzz"));
    assert!(!fnmatch(b"*a*b", b"xxaybzz"));
    assert!(!fnmatch(b"[ab", b"a"));
}

/// A Buildroot-like /var: the skeleton's symlinks, package data, a hard link.
fn with_var() -> TreeBuilder {
    let mut b = base();
    dir(&mut b, "var", 0o755, (0, 0));
    symlink(&mut b, "var/run", "../run");
    symlink(&mut b, "var/lock", "../run/lock");
    dir(&mut b, "var/www", 0o750, (33, 33));
    file(&mut b, "var/www/index.html", 0o640, (33, 33), "hello\n");
    dir(&mut b, "var/log", 0o755, (0, 0));
    dir(&mut b, "var/lib/systemd", 0o755, (0, 0));
    file(&mut b, "var/lib/systemd/random-seed", 0o600, (0, 0), "seed");
    dir(&mut b, "var/lib/dbus", 0o755, (0, 0));
    file(&mut b, "etc/machine-id", 0o444, (0, 0), "0123\n");
    b.hard_link(b"var/lib/dbus/machine-id", b"etc/machine-id")
        .unwrap();
    symlink(&mut b, "var/lib/tz", "/usr/share/zoneinfo");
    dir(&mut b, "usr/share/zoneinfo", 0o755, (0, 0));
    file(&mut b, "var/lib/.hidden", 0o644, (0, 0), "");
    file(&mut b, "var/lib/odd name", 0o644, (0, 0), "");
    symlink(&mut b, "var/lib/odd %link", "dbus");
    b
}

#[test]
fn var_factory_moves_var_and_describes_it() {
    let mut b = with_var();
    let machine_id = b.lookup(b"etc/machine-id").unwrap();
    var_factory(&mut b, NOW).unwrap();

    assert_eq!(names(&b, "var"), Vec::<String>::new());
    let var = b.inode(b.lookup(b"var").unwrap());
    assert_eq!(
        (var.meta.perm, var.meta.uid, var.meta.mtime),
        (0o755, 0, NOW)
    );
    assert_eq!(
        names(&b, "usr/share/factory/var"),
        ["lib", "lock", "log", "run", "www"]
    );
    assert_eq!(show(&b, "usr/share/factory/var/www"), "d 750 33:33");
    assert_eq!(
        show(&b, "usr/share/factory/var/www/index.html"),
        "f 640 33:33 \"hello\\n\""
    );
    assert_eq!(show(&b, "usr/share/factory/var/run"), "l 777 0:0 -> ../run");
    // Moving keeps the inode: the hard link with /etc/machine-id survives.
    assert_eq!(
        b.lookup(b"usr/share/factory/var/lib/dbus/machine-id"),
        Some(machine_id)
    );
    // run and lock dangle from the factory, so the shell's `[ -e ]` drops
    // them; dot files are not globbed; odd names are quoted.
    assert_eq!(
        show(&b, "usr/lib/tmpfiles.d/00-buildroot-var.conf"),
        format!(
            "f 644 0:0 {:?}",
            "C! /var/lib - - - -\n\
             C! /var/log - - - -\n\
             C! /var/www - - - -\n\
             C! /var/lib/dbus - - - -\n\
             L+! \"/var/lib/odd %%link\" - - - - ../usr/share/factory//var/lib/odd\\x20%%link\n\
             C! \"/var/lib/odd name\" - - - -\n\
             C! /var/lib/systemd - - - -\n\
             L+! /var/lib/tz - - - - ../usr/share/factory//var/lib/tz\n\
             C! /var/lib/systemd/random-seed - - - -\n"
        )
    );
    let mount = show(&b, "usr/lib/systemd/system/var.mount");
    assert!(mount.starts_with("f 644 0:0 \"# SPDX-License-Identifier: LGPL-2.1-or-later\\n"));
    assert!(mount.ends_with("Type=tmpfs\\nOptions=nosuid,nodev,size=50%%,nr_inodes=1m\\n\""));
}

#[test]
fn var_factory_needs_a_var_directory() {
    let mut b = base();
    assert_eq!(
        var_factory(&mut b, NOW).unwrap_err().to_string(),
        "/var: does not exist"
    );
    symlink(&mut b, "var", "data");
    assert_eq!(
        var_factory(&mut b, NOW).unwrap_err().to_string(),
        "/var: is a symlink, not a directory"
    );
}

#[test]
fn tmpfiles_restores_var_from_the_factory() {
    let mut b = with_var();
    file(
        &mut b,
        "usr/lib/tmpfiles.d/var.conf",
        0o644,
        (0, 0),
        "q /var 0755 - - -\nL /var/run - - - - ../run\nd /var/log 0755 - - -\n\
         f /var/log/wtmp 0664 root utmp -\nd /var/cache 0755 - - -\n",
    );
    var_factory(&mut b, NOW).unwrap();
    let skipped = apply_tmpfiles(&mut b, NOW).unwrap();
    assert_eq!(
        reasons(&skipped),
        [
            "/usr/lib/tmpfiles.d/var.conf:3: duplicate line for path /var/log, ignoring \
          (the line at /usr/lib/tmpfiles.d/00-buildroot-var.conf:2 wins)"
        ]
    );
    assert_eq!(names(&b, "var"), ["cache", "lib", "log", "run", "www"]);
    assert_eq!(show(&b, "var/www/index.html"), "f 640 33:33 \"hello\\n\"");
    assert_eq!(show(&b, "var/run"), "l 777 0:0 -> ../run");
    assert_eq!(
        show(&b, "var/lib/tz"),
        "l 777 0:0 -> ../usr/share/factory//var/lib/tz"
    );
    assert_eq!(show(&b, "var/log/wtmp"), "f 664 0:43 \"\"");
    assert_eq!(show(&b, "var/cache"), "d 755 0:0");
    // The copy is a copy: new inodes, but the hard links inside it kept
    // apart from the factory's.
    let copied = b.lookup(b"var/lib/dbus/machine-id").unwrap();
    assert_ne!(Some(copied), b.lookup(b"etc/machine-id"));
    assert_eq!(b.inode(copied).meta.mtime, T0);
    assert_eq!(show(&b, "var/lib/odd name"), "f 644 0:0 \"\"");
    assert_eq!(
        show(&b, "var/lib/odd %link"),
        "l 777 0:0 -> ../usr/share/factory//var/lib/odd %link"
    );
}

#[test]
fn tmpfiles_types_owners_and_modes() {
    let mut b = base();
    dir(&mut b, "existing", 0o700, (5, 5));
    file(&mut b, "keep", 0o600, (0, 0), "old");
    file(&mut b, "trunc", 0o604, (0, 0), "old");
    dir(&mut b, "z/sub", 0o755, (0, 0));
    file(&mut b, "z/sub/f", 0o644, (0, 0), "");
    symlink(&mut b, "z/sub/l", "/nowhere");
    file(&mut b, "masks/a", 0o644, (0, 0), "");
    file(&mut b, "masks/b", 0o600, (0, 0), "");
    file(&mut b, "masks/c", 0o755, (0, 0), "");
    file(&mut b, "glob/a.txt", 0o644, (0, 0), "");
    file(&mut b, "glob/b.dat", 0o644, (0, 0), "");
    file(&mut b, "glob/.c.txt", 0o644, (0, 0), "");
    dir(&mut b, "replace-me", 0o755, (0, 0));
    file(&mut b, "replace-me/inner", 0o644, (0, 0), "");
    file(&mut b, "was-file", 0o644, (0, 0), "");
    file(
        &mut b,
        "usr/share/factory/etc/skel/.profile",
        0o640,
        (33, 4),
        "PS1\n",
    );
    dir(&mut b, "empty", 0o700, (5, 5));
    file(&mut b, "usr/share/factory/empty/x", 0o644, (0, 0), "x");
    dir(&mut b, "full", 0o755, (0, 0));
    file(&mut b, "full/old", 0o644, (0, 0), "");
    file(&mut b, "usr/share/factory/full/new", 0o644, (0, 0), "");
    file(
        &mut b,
        "usr/lib/tmpfiles.d/test.conf",
        0o644,
        (0, 0),
        r#"# every type Buildroot relies on
d /a/b/c - - - -
d /existing - - - -
D /dd 0750 www-data adm -
  f /keep - - - - new
f /new 0600 www-data - - hello\nworld
f+ /trunc - - - - replaced
F /made-by-F - - - - F
w /keep - - - - W
L /link - - - - /target
L /deep/default
L+ /replace-me - - - - /elsewhere
C /etc/skel
C /empty
C /full
Z /z 0700 www-data adm
z /masks/a ~0777
z /masks/b ~0755
z /masks/c ~4755
z /glob/*.txt 0600 33
e /existing 0711
z /later 0701
d /later 0755
d= /was-file 0700
p /fifo 0600
d! /boot-only
f "/with space" - - - - "kept" \x41
f /spec/%o-%w-%u-%U-%g-%G-%h-%S-%%-%E - - - - %o %w%%
f /spec-leak/%H - - - - x
f /spec-leak-arg - - - - %m
d /run/systemd
d /tmp/x
d /mntdata
d /devices
r /keep
x /var/tmp/*
a+ /var/log/journal - - - - group:adm:r-x
"#,
    );
    let skipped = apply_tmpfiles(&mut b, NOW).unwrap();
    assert_eq!(
        reasons(&skipped),
        [
            "/usr/lib/tmpfiles.d/test.conf:29: specifier %H would take its value from the build host",
            "/usr/lib/tmpfiles.d/test.conf:30: specifier %m would take its value from the build host",
            "/usr/lib/tmpfiles.d/test.conf:37: type a sets POSIX ACLs, which the tree does not hold",
            // w and r both claim /keep (in the set applied after creation).
            "/usr/lib/tmpfiles.d/test.conf:35: duplicate line for path /keep, ignoring \
             (the line at /usr/lib/tmpfiles.d/test.conf:9 wins)",
        ]
    );
    let expect = [
        ("a/b/c", "d 755 0:0"),
        ("a", "d 755 0:0"),
        ("existing", "d 711 5:5"),
        ("dd", "d 750 33:4"),
        // `f` leaves an existing file alone; `w` overwrites without truncating.
        ("keep", "f 600 0:0 \"Wld\""),
        ("new", "f 600 33:0 \"hello\\nworld\""),
        ("trunc", "f 604 0:0 \"replaced\""),
        ("made-by-F", "f 644 0:0 \"F\""),
        ("link", "l 777 0:0 -> /target"),
        (
            "deep/default",
            "l 777 0:0 -> /usr/share/factory/deep/default",
        ),
        ("replace-me", "l 777 0:0 -> /elsewhere"),
        ("etc/skel", "d 755 0:0"),
        ("etc/skel/.profile", "f 640 33:4 \"PS1\\n\""),
        // An empty directory is filled, keeping its own metadata.
        ("empty", "d 700 5:5"),
        ("empty/x", "f 644 0:0 \"x\""),
        ("full/old", "f 644 0:0 \"\""),
        ("full/new", "-"),
        ("z", "d 700 33:4"),
        ("z/sub/f", "f 700 33:4 \"\""),
        ("z/sub/l", "l 777 33:4 -> /nowhere"),
        ("masks/a", "f 666 0:0 \"\""),
        ("masks/b", "f 644 0:0 \"\""),
        ("masks/c", "f 755 0:0 \"\""),
        ("glob/a.txt", "f 600 33:0 \"\""),
        ("glob/b.dat", "f 644 0:0 \"\""),
        ("glob/.c.txt", "f 644 0:0 \"\""),
        ("later", "d 701 0:0"),
        ("was-file", "d 700 0:0"),
        ("fifo", "p 600 0:0"),
        ("boot-only", "d 755 0:0"),
        ("with space", "f 644 0:0 \"\\\"kept\\\" A\""),
        ("run/systemd", "-"),
        ("tmp", "-"),
        // Buildroot's filter is a plain string prefix: /mnt and /dev take
        // these along.
        ("mntdata", "-"),
        ("devices", "-"),
        ("var", "-"),
    ];
    for (path, want) in expect {
        assert_eq!(show(&b, path), want, "{path}");
    }
    // Specifiers expand in the path (to nested directories) and argument.
    assert_eq!(
        show(
            &b,
            "spec/buildroot-2026.08-root-0-root-0-/root-/var/lib-%-/etc"
        ),
        "f 644 0:0 \"buildroot 2026.08%\""
    );
    assert_eq!(b.inode(b.lookup(b"new").unwrap()).meta.mtime, NOW);
    assert_eq!(
        b.inode(b.lookup(b"etc/skel/.profile").unwrap()).meta.mtime,
        T0
    );
}

#[test]
fn tmpfiles_config_precedence() {
    let mut b = base();
    file(
        &mut b,
        "usr/lib/tmpfiles.d/b.conf",
        0o644,
        (0, 0),
        "d /from-usr-b\n",
    );
    file(
        &mut b,
        "etc/tmpfiles.d/b.conf",
        0o644,
        (0, 0),
        "d /from-etc-b\n",
    );
    file(
        &mut b,
        "usr/lib/tmpfiles.d/masked.conf",
        0o644,
        (0, 0),
        "d /masked\n",
    );
    symlink(&mut b, "etc/tmpfiles.d/masked.conf", "/dev/null");
    // Files are read in name order whatever their directory, so a.conf's
    // line for /order wins over c.conf's.
    file(
        &mut b,
        "run/tmpfiles.d/c.conf",
        0o644,
        (0, 0),
        "d /order 0700\n",
    );
    file(
        &mut b,
        "usr/local/lib/tmpfiles.d/a.conf",
        0o644,
        (0, 0),
        "d /order 0711\n",
    );
    file(
        &mut b,
        "usr/lib/tmpfiles.d/not-a-conf.txt",
        0o644,
        (0, 0),
        "d /nope\n",
    );
    let skipped = apply_tmpfiles(&mut b, NOW).unwrap();
    assert_eq!(show(&b, "from-etc-b"), "d 755 0:0");
    assert_eq!(show(&b, "from-usr-b"), "-");
    assert_eq!(show(&b, "masked"), "-");
    assert_eq!(show(&b, "nope"), "-");
    assert_eq!(show(&b, "order"), "d 711 0:0");
    assert_eq!(
        reasons(&skipped),
        [
            "/run/tmpfiles.d/c.conf:1: duplicate line for path /order, ignoring \
          (the line at /usr/local/lib/tmpfiles.d/a.conf:1 wins)"
        ]
    );
}

#[test]
fn tmpfiles_errors_name_file_and_line() {
    let err = |conf: &str| {
        let mut b = base();
        file(&mut b, "etc/passwd-is-here", 0o644, (0, 0), "");
        file(&mut b, "file", 0o644, (0, 0), "");
        file(&mut b, "usr/lib/tmpfiles.d/x.conf", 0o644, (0, 0), conf);
        apply_tmpfiles(&mut b, NOW).unwrap_err().to_string()
    };
    assert_eq!(
        err("d /ok\nd /a 0755 nobody"),
        "/usr/lib/tmpfiles.d/x.conf:2: unknown user 'nobody' (not in the tree's /etc/passwd)"
    );
    assert_eq!(
        err("d /a 0755 - nogroup"),
        "/usr/lib/tmpfiles.d/x.conf:1: unknown group 'nogroup' (not in the tree's /etc/group)"
    );
    assert_eq!(
        err("d /file"),
        "/usr/lib/tmpfiles.d/x.conf:1: /file already exists and is a regular file, not a directory"
    );
    assert_eq!(
        err("d relative"),
        "/usr/lib/tmpfiles.d/x.conf:1: path 'relative' is not absolute"
    );
    assert_eq!(
        err("d /a/../b"),
        "/usr/lib/tmpfiles.d/x.conf:1: path '/a/../b' is not normalized"
    );
    assert_eq!(
        err("d /a 0855"),
        "/usr/lib/tmpfiles.d/x.conf:1: bad mode '0855'"
    );
    assert_eq!(
        err("Y /a"),
        "/usr/lib/tmpfiles.d/x.conf:1: unknown type 'Y'"
    );
    assert_eq!(
        err("C /copy - - - - /missing"),
        "/usr/lib/tmpfiles.d/x.conf:1: copy source /missing does not exist"
    );
    assert_eq!(
        err("w /a"),
        "/usr/lib/tmpfiles.d/x.conf:1: w needs an argument to write"
    );
    assert_eq!(
        err("f /a - - - - bad\\q"),
        "/usr/lib/tmpfiles.d/x.conf:1: unknown escape \\q"
    );

    // With `-`, a failure is only reported.
    let mut b = base();
    file(&mut b, "file", 0o644, (0, 0), "");
    file(
        &mut b,
        "usr/lib/tmpfiles.d/x.conf",
        0o644,
        (0, 0),
        "d- /file\nd /after\n",
    );
    let skipped = apply_tmpfiles(&mut b, NOW).unwrap();
    assert_eq!(
        reasons(&skipped),
        [
            "/usr/lib/tmpfiles.d/x.conf:1: /file already exists and is a regular file, \
          not a directory (tolerated: the type has -)"
        ]
    );
    assert_eq!(show(&b, "after"), "d 755 0:0");
}

fn unit(b: &mut TreeBuilder, path: &str, install: &str) {
    file(
        b,
        path,
        0o644,
        (0, 0),
        &format!("[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n\n{install}"),
    );
}

const SYS: &str = "usr/lib/systemd/system";
const ETC: &str = "etc/systemd/system";

fn preset_tree() -> TreeBuilder {
    let mut b = base();
    unit(
        &mut b,
        &format!("{SYS}/a.service"),
        "[Install]\nWantedBy=multi-user.target\nAlias=alias-a.service\nAlso=b.service\n",
    );
    unit(
        &mut b,
        &format!("{SYS}/b.service"),
        "[Install]\nRequiredBy=sysinit.target\n",
    );
    unit(
        &mut b,
        &format!("{SYS}/off.service"),
        "[Install]\nWantedBy=multi-user.target\n",
    );
    unit(
        &mut b,
        &format!("{SYS}/getty@.service"),
        "[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n",
    );
    unit(
        &mut b,
        &format!("{SYS}/inst@.service"),
        "[Install]\nWantedBy=multi-user.target \\\n  graphical.target\n",
    );
    unit(
        &mut b,
        &format!("{SYS}/bare@.service"),
        "[Install]\nWantedBy=multi-user.target\n",
    );
    unit(
        &mut b,
        &format!("{SYS}/tpl-dep@.timer"),
        "[Install]\nWantedBy=bare@%i.service\n",
    );
    unit(&mut b, &format!("{SYS}/static.service"), "");
    unit(
        &mut b,
        &format!("{SYS}/spec.service"),
        "[Install]\nWantedBy=\nWantedBy=default.target\nUpheldBy=up.target\nAlias=%N-alias.service\n",
    );
    unit(
        &mut b,
        &format!("{SYS}/masked.service"),
        "[Install]\nWantedBy=multi-user.target\n",
    );
    symlink(&mut b, &format!("{ETC}/masked.service"), "/dev/null");
    symlink(&mut b, &format!("{SYS}/shipped-alias.service"), "a.service");
    unit(
        &mut b,
        &format!("{ETC}/local.service"),
        "[Install]\nWantedBy=multi-user.target\n",
    );
    // Left by an earlier `systemctl enable` of units the presets disable.
    symlink(
        &mut b,
        &format!("{ETC}/sockets.target.wants/off.service"),
        "/usr/lib/systemd/system/off.service",
    );
    symlink(
        &mut b,
        &format!("{ETC}/off-alias.service"),
        "/usr/lib/systemd/system/off.service",
    );
    symlink(
        &mut b,
        &format!("{ETC}/timers.target.wants/via-alias.service"),
        "../off-alias.service",
    );
    symlink(
        &mut b,
        &format!("{ETC}/timers.target.wants/keep.timer"),
        "/usr/lib/systemd/system/keep.timer",
    );
    file(
        &mut b,
        "usr/lib/systemd/system-preset/50-test.preset",
        0o644,
        (0, 0),
        "# test\nenable inst@.service one two\ndisable off.*\n; comment\nenable *\n",
    );
    file(
        &mut b,
        "usr/lib/systemd/system-preset/99-default.preset",
        0o644,
        (0, 0),
        "disable *\n",
    );
    file(
        &mut b,
        "usr/lib/systemd/system-preset/40-spec.preset",
        0o644,
        (0, 0),
        "disable spec.service\n",
    );
    // Same name in /etc: it replaces the /usr/lib file, so spec is enabled.
    file(
        &mut b,
        "etc/systemd/system-preset/40-spec.preset",
        0o644,
        (0, 0),
        "",
    );
    b
}

#[test]
fn preset_all_creates_and_removes_links() {
    let mut b = preset_tree();
    preset_all(&mut b, NOW).unwrap();
    let abs = |u: &str| format!("l 777 0:0 -> /usr/lib/systemd/system/{u}");
    let expect = [
        ("alias-a.service", abs("a.service")),
        ("multi-user.target.wants/a.service", abs("a.service")),
        ("sysinit.target.requires/b.service", abs("b.service")),
        (
            "getty.target.wants/getty@tty1.service",
            abs("getty@.service"),
        ),
        (
            "multi-user.target.wants/inst@one.service",
            abs("inst@.service"),
        ),
        (
            "multi-user.target.wants/inst@two.service",
            abs("inst@.service"),
        ),
        (
            "graphical.target.wants/inst@one.service",
            abs("inst@.service"),
        ),
        (
            "graphical.target.wants/inst@two.service",
            abs("inst@.service"),
        ),
        ("bare@.service.wants/tpl-dep@.timer", abs("tpl-dep@.timer")),
        ("default.target.wants/spec.service", abs("spec.service")),
        ("up.target.upholds/spec.service", abs("spec.service")),
        ("spec-alias.service", abs("spec.service")),
        (
            "multi-user.target.wants/local.service",
            "l 777 0:0 -> /etc/systemd/system/local.service".into(),
        ),
        ("timers.target.wants/keep.timer", abs("keep.timer")),
        ("masked.service", "l 777 0:0 -> /dev/null".into()),
    ];
    for (path, want) in &expect {
        assert_eq!(show(&b, &format!("{ETC}/{path}")), *want, "{path}");
    }
    let mut all: Vec<String> = Vec::new();
    for d in names(&b, ETC) {
        let p = format!("{ETC}/{d}");
        match b.inode(b.lookup(p.as_bytes()).unwrap()).children() {
            Some(_) => all.extend(names(&b, &p).into_iter().map(|n| format!("{d}/{n}"))),
            None => all.push(d),
        }
    }
    let mut want: Vec<String> = expect.iter().map(|(p, _)| p.to_string()).collect();
    want.push("local.service".into());
    want.sort();
    // Nothing else: off.service lost every link to it (also through its
    // alias) and the directory left empty; the template without instance
    // got no multi-user link; masked and static units were left alone.
    assert_eq!(all, want);
    assert_eq!(show(&b, &format!("{ETC}/sockets.target.wants")), "-");
    let wants = b.inode(
        b.lookup(format!("{ETC}/multi-user.target.wants").as_bytes())
            .unwrap(),
    );
    assert_eq!((wants.meta.perm, wants.meta.mtime), (0o755, NOW));

    // Running it again changes nothing.
    let before: Vec<String> = all
        .iter()
        .map(|p| show(&b, &format!("{ETC}/{p}")))
        .collect();
    preset_all(&mut b, NOW).unwrap();
    let after: Vec<String> = all
        .iter()
        .map(|p| show(&b, &format!("{ETC}/{p}")))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn preset_errors() {
    let mut b = preset_tree();
    file(
        &mut b,
        "usr/lib/systemd/system-preset/10-bad.preset",
        0o644,
        (0, 0),
        "\nenable\n",
    );
    assert_eq!(
        preset_all(&mut b, NOW).unwrap_err().to_string(),
        "/usr/lib/systemd/system-preset/10-bad.preset:2: cannot parse preset line 'enable'"
    );

    let mut b = preset_tree();
    symlink(
        &mut b,
        &format!("{ETC}/multi-user.target.wants/a.service"),
        "/opt/a.service",
    );
    assert_eq!(
        preset_all(&mut b, NOW).unwrap_err().to_string(),
        "/etc/systemd/system/multi-user.target.wants/a.service: already links to \
         /opt/a.service, not /usr/lib/systemd/system/a.service"
    );

    let mut b = preset_tree();
    unit(
        &mut b,
        &format!("{SYS}/host.service"),
        "[Install]\n\nWantedBy=%H.target\n",
    );
    assert_eq!(
        preset_all(&mut b, NOW).unwrap_err().to_string(),
        "/usr/lib/systemd/system/host.service:9: specifier %H in '%H.target' is not \
         supported (only the unit name ones)"
    );
}
