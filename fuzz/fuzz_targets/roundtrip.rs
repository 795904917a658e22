//! An arbitrary tree → every writer → our readers → the same listing as
//! the tree, for what each format holds (cpio and squashfs: mtimes clamped
//! to 32 bits; tar: no sockets; ext: its lost+found; ext and ISO9660:
//! mtimes compared elsewhere, as their ranges differ). A tree a format
//! refuses must be refused by `check` before anything is written.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rootforge::format::ReadOptions;
use rootforge::fuzzing::ArbitraryTree;
use rootforge::image::{Format, build_in_memory};
use rootforge_common::listing::{self, Line};
use rootforge_common::{Kind, Meta, Time};

fuzz_target!(|tree: ArbitraryTree| {
    let tree = tree.0;
    let view = tree.view();
    let want = listing::of_view(&view).expect("in-memory data");

    match build_in_memory(&view, Format::Cpio) {
        Ok((image, _)) => {
            let back = rootforge_cpio::read(Arc::new(image)).expect("our cpio reads back");
            let clamp = |mut l: Line| {
                l.mtime = l.mtime.clamp(0, i64::from(u32::MAX));
                l
            };
            let want: Vec<Line> = want.iter().cloned().map(clamp).collect();
            assert_eq!(listing::of_view(&back.view()).expect("cpio data"), want);
        }
        Err(_) => assert!(Format::Cpio.encoder().check(&view).is_err()),
    }

    let (image, _) = build_in_memory(&view, Format::Tar).expect("tar holds any such tree");
    let opts = rootforge_tar::ReadOptions {
        implicit_dir: Meta::new(0o755, 0, 0, Time::default()),
        clamp_mtime: None,
        ..Default::default()
    };
    let back = rootforge_tar::read(Arc::new(image), &opts).expect("our tar reads back");
    let no_sockets: Vec<Line> = want
        .iter()
        .filter(|l| l.kind != Kind::Socket)
        .cloned()
        .collect();
    assert_eq!(
        listing::of_view(&back.tree.view()).expect("tar data"),
        no_sockets
    );

    let clamp32 = |mut l: Line| {
        l.mtime = l.mtime.clamp(0, i64::from(u32::MAX));
        l
    };
    let no_mtime = |mut l: Line| {
        l.mtime = 0;
        l
    };
    type Adjust<'a> = &'a dyn Fn(Line) -> Line;
    let formats: [(Format, Adjust); 3] = [
        (Format::Squashfs, &clamp32),
        (Format::Ext4, &no_mtime),
        (Format::Iso9660, &no_mtime),
    ];
    for (format, adjust) in formats {
        match build_in_memory(&view, format) {
            Ok((image, _)) => {
                let back = format
                    .read(Arc::new(image), &ReadOptions::default())
                    .expect("our reader reads our image")
                    .tree;
                // What every image of the format has (ext's lost+found; the
                // tree may have its own).
                let implicit = format.spec().implicit_entries;
                let keep = |l: &Line| !implicit.contains(&l.path.as_str());
                let got: Vec<Line> = listing::of_view(&back.view())
                    .expect("image data")
                    .into_iter()
                    .filter(keep)
                    .map(adjust)
                    .collect();
                let want: Vec<Line> = want
                    .iter()
                    .filter(|l| keep(l))
                    .cloned()
                    .map(adjust)
                    .collect();
                assert_eq!(got, want, "{format}");
            }
            Err(_) => assert!(format.encoder().check(&view).is_err(), "{format}"),
        }
    }
});
