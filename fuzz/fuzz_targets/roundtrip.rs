//! An arbitrary tree → cpio and tar writers → our readers → the same
//! listing as the tree, for what each format holds (cpio: mtimes clamped to
//! 32 bits; tar: no sockets). A tree a format refuses must be refused by
//! `check` before anything is written.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rootforge::fuzzing::ArbitraryTree;
use rootforge::image::{build_in_memory, Format};
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
    };
    let back = rootforge_tar::read(Arc::new(image), &opts).expect("our tar reads back");
    let want: Vec<Line> = want.into_iter().filter(|l| l.kind != Kind::Socket).collect();
    assert_eq!(listing::of_view(&back.tree.view()).expect("tar data"), want);
});
