//! Tar input read as GNU tar, bsdtar and Go read it (issue 17): every
//! archive here is made by the test (GNU tar, bsdtar, Python's tarfile or
//! bytes written below), built into every format, and the images' listing
//! is checked against what GNU tar and bsdtar extract from the same
//! archive: names, types, sizes, contents, modes, owners and times, and
//! for sparse files the holes.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::bad_input::Ustar;
use crate::util::{assert_same, dir_listing, inspect, require_tool, rootforge, run};

/// Every format rootforge writes.
const ALL: &str = "cpio,tar,squashfs,ext2,ext3,ext4,iso9660";

/// `"<len> <key>=<value>\n"`, where `len` counts itself.
fn record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = [b" ", key, b"=", value, b"\n"].concat();
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len += 1;
    }
    [len.to_string().as_bytes(), &body].concat()
}

/// An archive written block by block.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    /// A header (mtime 1740028160, mode 0644, owner 0:0) and its data.
    fn member(mut self, name: &[u8], kind: u8, size: u64, data: &[u8]) -> Self {
        self.0
            .extend_from_slice(&Ustar::header(name, kind, size, b""));
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(512), 0);
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        self.member(name.as_bytes(), b'0', data.len() as u64, data)
    }

    /// A header with a link name (hard link or symlink), a size field
    /// and no data; symlinks get mode 0777, as Linux gives them.
    fn link(mut self, name: &str, kind: u8, size: u64, target: &str) -> Self {
        let mut h = Ustar::header(name.as_bytes(), kind, size, target.as_bytes());
        if kind == b'2' {
            h[100..108].copy_from_slice(b"0000777\0");
            Ustar::fix_checksum(&mut h);
        }
        self.0.extend_from_slice(&h);
        self
    }

    /// A directory (mode 0755) whose size field says `size`, with no data.
    fn dir(mut self, name: &[u8], kind: u8, size: u64) -> Self {
        let mut h = Ustar::header(name, kind, size, b"");
        h[100..108].copy_from_slice(b"0000755\0");
        if kind == 0 {
            // v7: no typeflag, no magic.
            h[257..265].fill(0);
        }
        Ustar::fix_checksum(&mut h);
        self.0.extend_from_slice(&h);
        self
    }

    /// An extended header of `kind` (`x`, `g`, `X`) holding `records`.
    fn pax(self, kind: u8, records: &[(&[u8], &[u8])]) -> Self {
        let data: Vec<u8> = records.iter().flat_map(|(k, v)| record(k, v)).collect();
        self.member(b"./PaxHeaders/x", kind, data.len() as u64, &data)
    }

    fn zero_block(mut self) -> Self {
        self.0.extend_from_slice(&[0; 512]);
        self
    }

    fn end(self) -> Vec<u8> {
        self.zero_block().zero_block().0
    }
}

/// A scratch directory holding the archive under test.
struct Case {
    dir: tempfile::TempDir,
    tar: PathBuf,
}

impl Case {
    fn new(bytes: &[u8]) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("in.tar");
        std::fs::write(&tar, bytes).unwrap();
        Case { dir, tar }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `rootforge build` of the archive with `args`.
    fn build(&self, out: &str, args: &[&str]) -> Output {
        rootforge()
            .args(["build", "-q", "-o"])
            .arg(self.path(out))
            .arg(&self.tar)
            .args(args)
            .output()
            .unwrap()
    }

    /// Builds every format (with `args`), checks every image lists the
    /// same tree, and returns that listing and the warnings.
    fn images(&self, args: &[&str]) -> (Vec<String>, String) {
        let res = self.build("out", &[&["-f", ALL], args].concat());
        let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
        assert!(res.status.success(), "build failed: {stderr}");
        let out = self.path("out");
        let want = inspect(&out.join("rootfs.tar"));
        for format in ALL.split(',') {
            let image = format!("rootfs.{format}");
            let mut got = inspect(&out.join(&image));
            if format.starts_with("ext") {
                got.retain(|l| !l.ends_with(" /lost+found"));
            }
            assert_same(&image, &want, &got);
        }
        std::fs::remove_dir_all(&out).unwrap();
        (want, stderr)
    }

    /// What `tool` extracts, as a listing (the root left out: it is the
    /// extraction directory), and the extracted directory.
    fn extract(&self, tool: &str, args: &[&str]) -> (Vec<String>, PathBuf) {
        self.extract_checked(tool, args, true)
    }

    /// As [`Case::extract`]; `ok` says whether the tool must exit 0.
    fn extract_checked(&self, tool: &str, args: &[&str], ok: bool) -> (Vec<String>, PathBuf) {
        let to = self.path(&format!("x-{tool}"));
        let _ = std::fs::remove_dir_all(&to);
        std::fs::create_dir(&to).unwrap();
        let out = Command::new(require_tool(tool))
            .args(["-x", "-p", "--numeric-owner", "-f"])
            .arg(&self.tar)
            .arg("-C")
            .arg(&to)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success() || !ok,
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (without_root(dir_listing(&to)), to)
    }

    /// The images agree with each other and with GNU tar's and bsdtar's
    /// extraction; returns the listing and rootforge's warnings.
    fn agrees(&self) -> (Vec<String>, String) {
        let (listing, warnings) = self.images(&[]);
        for tool in ["tar", "bsdtar"] {
            let (got, _) = self.extract(tool, &[]);
            assert_same(tool, &without_root(listing.clone()), &got);
        }
        (listing, warnings)
    }

    /// rootforge refuses the archive: exit 1, nothing written; the error.
    fn refused(&self) -> String {
        let res = self.build("refused", &["-f", ALL]);
        let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
        assert_eq!(res.status.code(), Some(1), "expected exit 1: {stderr}");
        let left = std::fs::read_dir(self.path("refused")).map_or(0, |d| d.count());
        assert_eq!(left, 0, "output left behind");
        stderr
    }
}

fn without_root(mut lines: Vec<String>) -> Vec<String> {
    lines.retain(|l| !l.ends_with(" /"));
    lines
}

/// The listing line of `path`.
fn line<'a>(listing: &'a [String], path: &str) -> &'a str {
    listing
        .iter()
        .find(|l| l.ends_with(&format!(" {path}")))
        .unwrap_or_else(|| panic!("{path} not in {listing:#?}"))
}

/// A host file with data at `runs` (offset, length) and holes elsewhere.
fn sparse_file(path: &Path, size: u64, runs: &[(u64, u64)]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    for &(off, len) in runs {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
        f.write_all_at(&data, off).unwrap();
    }
}

/// Whether a file takes less space than its size: it has holes.
fn has_holes(path: &Path) -> bool {
    let md = std::fs::metadata(path).unwrap();
    md.blocks() * 512 < md.size()
}

/// GNU tar over `names` in `dir` with `args`.
fn gnu_tar(dir: &Path, out: &Path, args: &[&str], names: &[&str]) {
    run(Command::new(require_tool("tar"))
        .args(["--numeric-owner", "--mtime=@1700000000", "-c", "-f"])
        .arg(out)
        .args(args)
        .arg("-C")
        .arg(dir)
        .args(names));
}

/// Sparse files: 200 bytes with 5- and 7-byte runs (the data GNU tar
/// stores is block-aligned), 3 MiB with two runs, 2 MiB ending in a hole,
/// and 30 runs (old GNU needs two extension blocks for them).
fn sparse_tree(dir: &Path) -> Vec<&'static str> {
    std::fs::create_dir_all(dir).unwrap();
    sparse_file(&dir.join("small"), 200, &[(0, 5), (100, 7)]);
    sparse_file(&dir.join("three"), 3 << 20, &[(4096, 100), (1 << 20, 10)]);
    sparse_file(&dir.join("two"), 2 << 20, &[(0, 32 << 10)]);
    let many: Vec<_> = (0..30).map(|i| (i * 65536, 4096)).collect();
    sparse_file(&dir.join("many"), 31 * 65536, &many);
    vec!["small", "three", "two", "many"]
}

#[test]
fn every_sparse_flavour_gives_the_real_size_content_and_holes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let names = sparse_tree(&src);
    let flavours: [(&str, &[&str]); 4] = [
        ("gnu", &["--format=gnu", "--sparse"]),
        (
            "0.0",
            &["--format=posix", "--sparse", "--sparse-version=0.0"],
        ),
        (
            "0.1",
            &["--format=posix", "--sparse", "--sparse-version=0.1"],
        ),
        (
            "1.0",
            &["--format=posix", "--sparse", "--sparse-version=1.0"],
        ),
    ];
    for (flavour, args) in flavours {
        let tarball = tmp.path().join(format!("{flavour}.tar"));
        gnu_tar(&src, &tarball, args, &names);
        let case = Case::new(&std::fs::read(&tarball).unwrap());
        let (listing, _) = case.agrees();
        // The real sizes, not the stored data's.
        for (name, size) in [("small", 200), ("three", 3 << 20), ("two", 2 << 20)] {
            let l = line(&listing, &format!("/{name}"));
            assert!(
                l.starts_with(&format!("f 0644 0 0 {size} ")),
                "{flavour}: {l}"
            );
        }
        // Holes stay holes in our tree and in both tools' extraction.
        let tree = crate::util::tar_tree(&case.tar);
        let view = tree.view();
        for name in ["three", "two", "many"] {
            let inode = view.inode(view.lookup(name.as_bytes()).unwrap());
            let rootforge::common::Content::File(d) = &inode.content else {
                panic!("{name} is not a file");
            };
            assert!(
                matches!(d.source(), rootforge::common::Source::Sparse { .. }),
                "{flavour}: {name} read without holes"
            );
            // `agrees` left both tools' extraction in place.
            for tool in ["tar", "bsdtar"] {
                let file = case.path(&format!("x-{tool}")).join(name);
                assert!(has_holes(&file), "{flavour}: {tool} {name}");
            }
        }
    }
}

#[test]
fn header_only_types_have_no_data_whatever_their_size() {
    // A v7 directory (type NUL, trailing slash) with size 1 and a ustar
    // `0` one: no data, as both tools read them.
    // Children follow their directory: GNU tar sets a directory's mtime
    // once the members after it leave it.
    let bytes = Bytes::default()
        .dir(b"dir/", b'5', 255)
        .file("dir/f", b"hello")
        .link("dir/hard", b'1', 5, "dir/f")
        .dir(b"v7dir/", 0, 1)
        .file("v7dir/after", b"still here")
        .dir(b"regdir/", b'0', 1)
        .link("sym", b'2', 3, "dir/f")
        .member(b"fifo", b'6', 700, b"")
        .member(b"chr", b'3', 9, b"")
        .member(b"blk", b'4', 1024, b"")
        .end();
    let (listing, _) = Case::new(&bytes).agrees();
    for (path, kind) in [
        ("/dir", 'd'),
        ("/v7dir", 'd'),
        ("/regdir", 'd'),
        ("/dir/hard", 'f'),
        ("/sym", 'l'),
        ("/fifo", 'p'),
        ("/chr", 'c'),
        ("/blk", 'b'),
        ("/v7dir/after", 'f'),
    ] {
        assert!(line(&listing, path).starts_with(kind), "{path}");
    }
    assert_eq!(
        line(&listing, "/dir/hard").split(' ').nth(5),
        line(&listing, "/dir/f").split(' ').nth(5)
    );
}

#[test]
fn only_the_last_of_stacked_pax_headers_applies() {
    let bytes = Bytes::default()
        .pax(b'x', &[(b"path", b"first-path"), (b"mtime", b"1600000000")])
        .pax(b'x', &[(b"uid", b"7")])
        .file("fallback", b"x")
        .file("next", b"y")
        .end();
    let case = Case::new(&bytes);
    let (listing, _) = case.images(&[]);
    // bsdtar warns "Ignoring malformed pax extended attribute" at the
    // second header and exits 1, but extracts the same tree.
    for (tool, ok) in [("tar", true), ("bsdtar", false)] {
        let (got, _) = case.extract_checked(tool, &[], ok);
        assert_same(tool, &without_root(listing.clone()), &got);
    }
    assert!(
        !listing.iter().any(|l| l.contains("first-path")),
        "{listing:?}"
    );
    // The last header's uid; the header's own name and mtime.
    assert!(line(&listing, "/fallback").starts_with("f 0644 7 0 1 "));
    assert!(line(&listing, "/fallback").contains(" 1740028160 "));
    assert!(line(&listing, "/next").starts_with("f 0644 0 0 1 "));
}

#[test]
fn a_lone_zero_block_ends_the_archive_with_a_warning_and_ignore_zeros_reads_on() {
    let bytes = Bytes::default()
        .file("a", b"a")
        .zero_block()
        .file("b", b"b")
        .end();
    let case = Case::new(&bytes);
    let (listing, warnings) = case.agrees();
    assert!(listing.iter().any(|l| l.ends_with(" /a")));
    assert!(!listing.iter().any(|l| l.ends_with(" /b")));
    assert!(
        warnings.contains("lone zero block at byte 1024") && warnings.contains("2048 bytes after"),
        "{warnings}"
    );
    // --ignore-zeros reads on, as GNU tar -i does.
    let (listing, warnings) = case.images(&["--ignore-zeros"]);
    let (gnu, _) = case.extract("tar", &["--ignore-zeros"]);
    assert_same("tar -i", &without_root(listing.clone()), &gnu);
    assert!(listing.iter().any(|l| l.ends_with(" /b")));
    assert!(!warnings.contains("zero block"), "{warnings}");

    // Concatenated archives: a warning names the data after the end.
    let two = [
        Bytes::default().file("a", b"a").end(),
        Bytes::default().file("c", b"c").end(),
    ]
    .concat();
    let case = Case::new(&two);
    let (_, warnings) = case.agrees();
    assert!(
        warnings.contains("bytes follow its end-of-archive blocks"),
        "{warnings}"
    );
    let (listing, _) = case.images(&["--ignore-zeros"]);
    assert!(listing.iter().any(|l| l.ends_with(" /c")));
}

#[test]
fn images_given_as_input_are_not_empty_rootfs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("imgs");
    run(rootforge()
        .args(["build", "-q", "-f", "ext4,iso9660", "-o"])
        .arg(&out)
        .arg(crate::util::example_tar()));
    // Images are inputs of their own now (tests/it/image_input.rs): read
    // as the images they are, never as an empty tarball.
    let want = crate::util::inspect(&crate::util::example_tar());
    for image in ["rootfs.ext4", "rootfs.iso9660"] {
        let again = tmp.path().join(format!("again-{image}"));
        crate::util::build(&out.join(image), &again, &["-f", "tar"]);
        // The ext image adds its lost+found.
        let lost_found = usize::from(image == "rootfs.ext4");
        let got = crate::util::inspect(&again.join("rootfs.tar"));
        assert_eq!(got.len(), want.len() + lost_found, "{image}");
    }
}

#[test]
fn files_with_holes_are_written_as_pax_sparse_members() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    // 1 GiB, nearly all hole, and a small dense file.
    sparse_file(
        &src.join("disk.img"),
        1 << 30,
        &[(1 << 20, 4096), (900 << 20, 100)],
    );
    std::fs::write(src.join("plain"), b"plain").unwrap();
    let tarball = tmp.path().join("in.tar");
    gnu_tar(
        &src,
        &tarball,
        &["--format=posix", "--sparse"],
        &["disk.img", "plain"],
    );
    let case = Case::new(&std::fs::read(&tarball).unwrap());
    let res = case.build("out", &["-f", "tar"]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let image = case.path("out/rootfs.tar");
    let size = std::fs::metadata(&image).unwrap().len();
    assert!(size < 64 << 10, "rootfs.tar is {size} bytes");
    // GNU tar and bsdtar extract it with its holes, as the input was.
    let want = without_root(inspect(&image));
    assert!(line(&want, "/disk.img").starts_with(&format!("f 0644 0 0 {} ", 1u64 << 30)));
    let written = Case::new(&std::fs::read(&image).unwrap());
    for tool in ["tar", "bsdtar"] {
        let (got, dir) = written.extract(tool, &[]);
        assert_same(tool, &want, &got);
        assert!(has_holes(&dir.join("disk.img")), "{tool}");
    }

    // --tar-sparse none: every byte, as Buildroot's tar writes them (an
    // 8 MiB file keeps the test small).
    let small = tmp.path().join("small");
    std::fs::create_dir(&small).unwrap();
    sparse_file(&small.join("img"), 8 << 20, &[(4096, 10)]);
    let tarball = tmp.path().join("small.tar");
    gnu_tar(&small, &tarball, &["--format=posix", "--sparse"], &["img"]);
    let case = Case::new(&std::fs::read(&tarball).unwrap());
    for (mode, dense) in [("pax", false), ("none", true)] {
        let res = case.build(mode, &["-f", "tar", "--tar-sparse", mode]);
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let image = case.path(&format!("{mode}/rootfs.tar"));
        let bytes = std::fs::read(&image).unwrap();
        assert_eq!(bytes.len() > 8 << 20, dense, "{mode}");
        let has_map = bytes.windows(16).any(|w| w == b"GNU.sparse.major");
        assert_eq!(has_map, !dense, "{mode}");
        let written = Case::new(&bytes);
        for tool in ["tar", "bsdtar"] {
            let (got, _) = written.extract(tool, &[]);
            assert_same(tool, &without_root(inspect(&image)), &got);
        }
    }
}

#[test]
fn xattr_names_that_are_empty_or_hold_nul_are_refused() {
    for (key, member) in [
        (&b"SCHILY.xattr."[..], "empty"),
        (b"SCHILY.xattr.user.a\0b", "nul"),
        (b"LIBARCHIVE.xattr.user.%00x", "encoded"),
    ] {
        let bytes = Bytes::default()
            .pax(b'x', &[(key, b"dg==")])
            .file(member, b"x")
            .end();
        let err = Case::new(&bytes).refused();
        assert!(
            err.contains(&format!("/{member}:")) && err.contains("xattr name"),
            "{err}"
        );
    }
}

#[test]
fn names_no_linux_filesystem_holds_are_refused_and_elided() {
    let long = |n| "c".repeat(n);
    let cases = [
        (format!("d/{}", long(256)), "255"),
        (format!("{}/f", [long(255).as_str(); 17].join("/")), "4096"),
        (long(1 << 20), "4096"),
    ];
    for (path, limit) in cases {
        let bytes = Bytes::default()
            .pax(b'x', &[(b"path", path.as_bytes())])
            .file("short", b"x")
            .end();
        let err = Case::new(&bytes).refused();
        assert!(
            err.contains(limit) && err.contains("Linux"),
            "{}",
            &err[..err.len().min(500)]
        );
        assert!(err.len() < 600, "an error line of {} bytes", err.len());
        if path.len() > 300 {
            assert!(
                err.contains('…') && err.contains(&format!("({} bytes)", path.len() + 1)),
                "{err}"
            );
        }
    }
    let target = "t".repeat(4097);
    let bytes = Bytes::default()
        .pax(b'x', &[(b"linkpath", target.as_bytes())])
        .link("sym", b'2', 0, "t")
        .end();
    let err = Case::new(&bytes).refused();
    assert!(
        err.contains("/sym") && err.contains("symlink target") && err.contains("4096"),
        "{err}"
    );
}

#[test]
fn archives_ending_at_a_header_boundary_are_read_with_a_warning() {
    let mut bytes = Bytes::default().file("a", b"a").file("b", b"bb").end();
    bytes.truncate(bytes.len() - 1024);
    let case = Case::new(&bytes);
    let (listing, warnings) = case.agrees();
    assert!(listing.iter().any(|l| l.ends_with(" /b")));
    assert!(
        warnings.contains("without the two zero blocks"),
        "{warnings}"
    );
    // Cut inside a member's data: still an error.
    bytes.truncate(bytes.len() - 100);
    let err = Case::new(&bytes).refused();
    assert!(err.contains("/b") && err.contains("truncated"), "{err}");
}

fn tiny_tar() -> Vec<u8> {
    Bytes::default()
        .member(b"etc/", b'5', 0, b"")
        .file("etc/hostname", b"rootforge\n")
        .file("data", &[7u8; 3000])
        .end()
}

/// `tool args` on stdin `input`, its stdout.
fn pipe(tool: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(require_tool(tool))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{tool} {args:?} failed");
    out.stdout
}

#[test]
fn skippable_frames_before_zstd_and_lz4() {
    let plain = tiny_tar();
    let want = Case::new(&plain).images(&[]).0;
    // pzstd writes a skippable frame first.
    let pz = pipe("pzstd", &["-q", "-c", "-p", "2"], &plain);
    assert_eq!(&pz[..4], &[0x50, 0x2A, 0x4D, 0x18]);
    // An lz4 stream after a 100-byte skippable frame.
    let mut lz = vec![0x5A, 0x2A, 0x4D, 0x18, 100, 0, 0, 0];
    lz.extend_from_slice(&[0xAB; 100]);
    lz.extend_from_slice(&pipe("lz4", &["-q", "-c"], &plain));
    for (what, stream) in [("pzstd", pz), ("lz4", lz)] {
        let case = Case::new(&stream);
        assert_same(what, &want, &case.images(&[]).0);
    }
}

#[test]
fn trailing_garbage_after_a_complete_stream_is_a_warning() {
    let plain = tiny_tar();
    let want = Case::new(&plain).images(&[]).0;
    for (tool, args) in [
        ("gzip", &["-c"][..]),
        ("bzip2", &["-c"]),
        ("lz4", &["-q", "-c"]),
        ("lzma", &["-c"]),
        ("lzop", &["-c"]),
    ] {
        let mut stream = pipe(tool, args, &plain);
        stream.extend_from_slice(b"trailing garbage\n");
        let case = Case::new(&stream);
        let (got, warnings) = case.images(&[]);
        assert_same(tool, &want, &got);
        assert!(
            warnings.contains("17 bytes of trailing garbage"),
            "{tool}: {warnings}"
        );
        // With the archive inside incomplete, it is an error.
        let cut = &plain[..plain.len() - 1024];
        let mut stream = pipe(tool, args, cut);
        stream.extend_from_slice(b"garbage");
        let err = Case::new(&stream).refused();
        assert!(
            err.contains("trailing garbage") && err.contains("incomplete"),
            "{tool}: {err}"
        );
    }
}

#[test]
fn solaris_headers_and_unknown_types() {
    let bytes = Bytes::default()
        .pax(
            b'X',
            &[(b"path", b"solaris-long-name"), (b"mtime", b"1600000000.5")],
        )
        .file("short", b"s")
        .member(
            b"acl",
            b'A',
            41,
            b"01000003\0user::rw-,group::r--,other::r--\0",
        )
        .file("acl", b"file with acl")
        .member(b"odd", b'Q', 2, b"QQ")
        .member(b"odd2", b'Q', 3, b"QQQ")
        .end();
    let (listing, warnings) = Case::new(&bytes).agrees();
    assert!(line(&listing, "/solaris-long-name").contains(" 1600000000 "));
    assert!(line(&listing, "/odd").starts_with("f 0644 0 0 2 "));
    assert!(warnings.contains("1 Solaris ACL"), "{warnings}");
    assert!(
        warnings.contains("2 members of unknown type 'Q'") && warnings.contains("/odd"),
        "{warnings}"
    );
}

/// An lzip member of `data` (lzip's format: "LZIP", version 1, the coded
/// dictionary size, an LZMA stream with an end marker, CRC32, data size,
/// member size), made with Python's lzma module.
fn lzip(data: &[u8]) -> Vec<u8> {
    let script = r#"
import lzma, struct, sys, zlib
data = sys.stdin.buffer.read()
body = lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 20, "lc": 3, "lp": 0, "pb": 2}])
head = b"LZIP\x01" + bytes([20])
member = head + body + struct.pack("<IQ", zlib.crc32(data), len(data))
sys.stdout.buffer.write(member + struct.pack("<Q", len(member) + 8))
"#;
    pipe("python3", &["-c", script], data)
}

#[test]
fn compressions_are_named_and_lzip_is_read() {
    let plain = tiny_tar();
    let want = Case::new(&plain).images(&[]).0;
    let case = Case::new(&lzip(&plain));
    assert_same("lzip", &want, &case.images(&[]).0);
    for (magic, name) in [
        (&[0x1F, 0x9D, 0x90][..], "compress (.Z)"),
        (b"GRZipII\0\x02\x00", "grzip"),
        (b"LRZI\x00\x06", "lrzip"),
    ] {
        let mut bytes = magic.to_vec();
        bytes.resize(100, 0x41);
        let err = Case::new(&bytes).refused();
        assert!(err.contains(&format!("is {name} compressed")), "{err}");
    }
    let help = String::from_utf8(run(rootforge().args(["build", "--help"]))).unwrap();
    let readme = std::fs::read_to_string(crate::util::repo().join("README.md")).unwrap();
    for name in ["gzip", "bzip2", "lz4", "lzip", "lzma", "lzo", "xz", "zstd"] {
        assert!(help.contains(name), "--help does not list {name}");
        assert!(readme.contains(name), "README does not list {name}");
    }
}

#[test]
fn pax_header_errors_name_their_member() {
    let bad = b"4 x\n";
    // A path record read before the bad one names the member.
    let mut with_path = record(b"path", b"etc/named");
    with_path.extend_from_slice(bad);
    let t = Bytes::default()
        .member(b"./PaxHeaders/x", b'x', with_path.len() as u64, &with_path)
        .file("ignored", b"x")
        .end();
    let err = Case::new(&t).refused();
    assert!(
        err.contains("extended header of /etc/named") && err.contains("no `=`"),
        "{err}"
    );
    // Else the next header's name.
    let t = Bytes::default()
        .file("first", b"1")
        .member(b"./PaxHeaders/x", b'x', 4, bad)
        .file("etc/next", b"x")
        .end();
    let err = Case::new(&t).refused();
    assert!(err.contains("extended header of /etc/next"), "{err}");
    // Else the offset and the previous member.
    let mut t = Bytes::default()
        .file("first", b"1")
        .member(b"./PaxHeaders/x", b'x', 4, bad)
        .0;
    t.extend_from_slice(&[b'z'; 1024]);
    let err = Case::new(&t).refused();
    assert!(
        err.contains("byte 1024") && err.contains("extended header after /first"),
        "{err}"
    );
}
