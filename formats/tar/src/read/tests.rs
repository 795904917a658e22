//! The reader on archives written here block by block (the integration
//! tests check the same rules against GNU tar and bsdtar).

use std::sync::Arc;

use rootforge_common::{Content, Source, View};

use super::*;
use crate::header::Ustar;
use crate::pax::record;

fn header(name: &[u8], typeflag: u8, size: u64, linkname: &[u8]) -> Block {
    Ustar {
        name,
        prefix: b"",
        mode: 0o644,
        uid: 0,
        gid: 0,
        size,
        mtime: 1_700_000_000,
        typeflag,
        linkname,
        dev: Some((0, 0)),
    }
    .encode()
}

/// An archive being written.
#[derive(Default)]
struct Tar(Vec<u8>);

impl Tar {
    fn raw(mut self, h: Block, data: &[u8]) -> Self {
        self.0.extend_from_slice(&h);
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(512), 0);
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        let h = header(name.as_bytes(), b'0', data.len() as u64, b"");
        self.raw(h, data)
    }

    fn pax(self, kind: u8, records: &[(&[u8], &[u8])]) -> Self {
        let mut data = Vec::new();
        for (k, v) in records {
            record(&mut data, k, v);
        }
        let h = header(b"PaxHeader", kind, data.len() as u64, b"");
        self.raw(h, &data)
    }

    fn zeros(mut self, blocks: usize) -> Self {
        self.0.resize(self.0.len() + 512 * blocks, 0);
        self
    }

    fn read(&self, opts: &ReadOptions) -> Result<Ingest> {
        read(Arc::new(self.0.clone()), opts)
    }

    fn ok(&self) -> Ingest {
        self.read(&ReadOptions::default()).unwrap()
    }

    fn err(&self) -> String {
        self.read(&ReadOptions::default()).unwrap_err().to_string()
    }
}

fn data(view: &View<'_>, path: &str) -> Vec<u8> {
    match &view.inode(view.lookup(path.as_bytes()).unwrap()).content {
        Content::File(d) => d.to_vec().unwrap(),
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn header_only_sizes_count_no_data() {
    let mut v7 = header(b"v7/", b'0', 1, b"");
    v7[ustar::TYPEFLAG] = 0;
    v7[ustar::CHKSUM].fill(b' ');
    let sum: u32 = v7.iter().map(|&b| u32::from(b)).sum();
    v7[ustar::CHKSUM.start..ustar::CHKSUM.end - 2].copy_from_slice(format!("{sum:06o}").as_bytes());
    let t = Tar::default()
        .raw(header(b"d/", b'5', 255, b""), b"")
        .raw(v7, b"")
        .file("d/f", b"hello")
        .raw(header(b"d/l", b'1', 5, b"d/f"), b"")
        .raw(header(b"s", b'2', 3, b"d/f"), b"")
        .raw(header(b"p", b'6', 9000, b""), b"")
        .file("v7/g", b"hi")
        .zeros(2);
    let ingest = t.ok();
    let view = ingest.tree.view();
    assert_eq!(data(&view, "d/l"), b"hello");
    assert_eq!(data(&view, "v7/g"), b"hi");
    assert!(matches!(
        view.inode(view.lookup(b"v7").unwrap()).content,
        Content::Dir(_)
    ));
    assert_eq!(ingest.members, 7);
    assert_eq!(ingest.end, End::Marker);
    assert!(ingest.warnings.is_empty(), "{:?}", ingest.warnings);
}

#[test]
fn the_last_extended_header_applies() {
    let t = Tar::default()
        .pax(b'x', &[(b"path", b"first"), (b"uid", b"5")])
        .pax(b'X', &[(b"gid", b"6")])
        .file("named", b"x")
        .zeros(2);
    let ingest = t.ok();
    let view = ingest.tree.view();
    assert!(view.lookup(b"first").is_none());
    let m = view.inode(view.lookup(b"named").unwrap()).meta;
    assert_eq!((m.uid, m.gid), (0, 6));
}

#[test]
fn ends_lone_zeros_and_ignore_zeros() {
    let base = Tar::default().file("a", b"a");
    // No end blocks at all.
    let ingest = base.ok();
    assert_eq!(ingest.end, End::Eof(1024));
    assert!(ingest.warnings[0].contains("without the two zero blocks"));
    // One zero block, then more.
    let t = Tar(base.0.clone()).zeros(1).file("b", b"b").zeros(2);
    let ingest = t.ok();
    assert_eq!(ingest.end, End::LoneZero(1024));
    assert!(ingest.warnings[0].contains("lone zero block at byte 1024"));
    assert!(ingest.tree.view().lookup(b"b").is_none());
    let opts = ReadOptions {
        ignore_zeros: true,
        ..Default::default()
    };
    let ingest = t.read(&opts).unwrap();
    assert_eq!(ingest.end, End::Marker);
    assert!(ingest.warnings.is_empty(), "{:?}", ingest.warnings);
    assert!(ingest.tree.view().lookup(b"b").is_some());
    // A tail too short for a header is an error unless it is zeros.
    let mut short = base.0.clone();
    short.extend_from_slice(&[b'z'; 300]);
    let err = Tar(short).err();
    assert!(err.contains("too few for a header"), "{err}");
    // Zeros, then something else, and no member: not a tarball.
    let mut ext = vec![0u8; 1024];
    ext.extend_from_slice(&[0x53, 0xEF, 1, 2]);
    let err = Tar(ext).err();
    assert!(err.contains("not a tarball"), "{err}");
}

#[test]
fn solaris_acls_and_unknown_types() {
    let t = Tar::default()
        .raw(header(b"f", b'A', 3, b""), b"acl")
        .file("f", b"data")
        .raw(header(b"q", b'Q', 2, b""), b"qq")
        .zeros(2);
    let ingest = t.ok();
    let view = ingest.tree.view();
    assert_eq!(data(&view, "f"), b"data");
    assert_eq!(data(&view, "q"), b"qq");
    assert_eq!(ingest.members, 2);
    let w = ingest.warnings.join("\n");
    assert!(w.contains("skipped 1 Solaris ACL"), "{w}");
    assert!(
        w.contains("1 members of unknown type 'Q'") && w.contains("/q"),
        "{w}"
    );
    let err = Tar::default()
        .raw(header(b"m", b'M', 0, b""), b"")
        .zeros(2)
        .err();
    assert!(err.contains("/m: a continuation"), "{err}");
}

#[test]
fn names_and_xattrs_no_filesystem_holds() {
    let long = "n".repeat(256);
    let err = Tar::default()
        .pax(b'x', &[(b"path", long.as_bytes())])
        .file("x", b"")
        .zeros(2)
        .err();
    assert!(
        err.contains("component's length is 256") && err.contains("255"),
        "{err}"
    );
    // 4096 bytes after `./` are fine; one more is not.
    let ok = format!("./c{}", ["c"; 2048].join("/"));
    assert_eq!(ok.len(), 2 + 4096);
    let t = Tar::default()
        .pax(b'x', &[(b"path", ok.as_bytes())])
        .file("x", b"")
        .zeros(2);
    t.ok();
    let over = format!("cc{}", ["c"; 2048].join("/"));
    let t = Tar::default()
        .pax(b'x', &[(b"path", over.as_bytes())])
        .file("x", b"")
        .zeros(2);
    assert!(t.err().contains("the path length is 4097"));
    let huge = "d/".repeat(1 << 19);
    let err = Tar::default()
        .pax(b'x', &[(b"path", huge.as_bytes())])
        .file("x", b"")
        .zeros(2)
        .err();
    assert!(err.len() < 400 && err.contains("(1048577 bytes)"), "{err}");
    let err = Tar::default()
        .pax(b'x', &[(b"SCHILY.xattr.", b"v")])
        .file("e", b"")
        .zeros(2)
        .err();
    assert!(err.contains("/e: xattr name"), "{err}");
}

#[test]
fn pax_sparse_zero_zero() {
    let stored = b"abcdeFGHIJKL";
    let t = Tar::default()
        .pax(
            b'x',
            &[
                (b"GNU.sparse.size", b"200"),
                (b"GNU.sparse.numblocks", b"2"),
                (b"GNU.sparse.offset", b"0"),
                (b"GNU.sparse.numbytes", b"5"),
                (b"GNU.sparse.offset", b"100"),
                (b"GNU.sparse.numbytes", b"7"),
            ],
        )
        .file("s", stored)
        .zeros(2);
    let ingest = t.ok();
    let view = ingest.tree.view();
    let got = data(&view, "s");
    assert_eq!(got.len(), 200);
    assert_eq!(&got[..5], b"abcde");
    assert_eq!(&got[100..107], b"FGHIJKL");
    let Content::File(d) = &view.inode(view.lookup(b"s").unwrap()).content else {
        unreachable!()
    };
    assert!(matches!(d.source(), Source::Sparse { .. }));
}

#[test]
fn pax_errors_name_the_member() {
    let mut bad = Vec::new();
    record(&mut bad, b"path", b"etc/named");
    bad.extend_from_slice(b"4 x\n");
    let h = header(b"PaxHeader", b'x', bad.len() as u64, b"");
    let err = Tar::default().raw(h, &bad).file("x", b"").zeros(2).err();
    assert!(
        err.contains("the extended header of /etc/named: bad pax record"),
        "{err}"
    );
    let h = header(b"PaxHeader", b'x', 4, b"");
    let err = Tar::default()
        .file("before", b"")
        .raw(h, b"4 x\n")
        .zeros(2)
        .err();
    assert!(
        err.contains("at byte 512: the extended header after /before"),
        "{err}"
    );
}
