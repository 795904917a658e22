//! genimage configuration text and partition layouts: the parser never
//! panics, and any layout the planner accepts writes a disk whose table
//! our reader reads back with every partition where the plan put it.
//!
//! The first byte picks: even, the rest is configuration text for the
//! parser; odd, the rest drives a small disk spec for the planner.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rootforge_common::Buffer;
use rootforge_disk::config;
use rootforge_disk::plan::{DiskSpec, ImageRef, PartSpec, TableType};
use rootforge_disk::{BytesContent, Content, DiskPlan};

fn spec(data: &[u8]) -> (DiskSpec, Vec<Option<Box<dyn Content>>>) {
    let mut it = data.iter().copied();
    let mut next = || it.next().unwrap_or(0);
    let table = match next() % 4 {
        0 => TableType::None,
        1 => TableType::Mbr,
        2 => TableType::Gpt,
        _ => TableType::Hybrid,
    };
    let mut spec = DiskSpec {
        table,
        align: u64::from(next() % 4) * 512,
        extended_partition: u32::from(next() % 6),
        gpt_location: u64::from(next() % 8) * 512,
        gpt_no_backup: next() & 1 == 1,
        fill: next() & 1 == 1,
        size: u64::from(next()) * 4096,
        ..DiskSpec::default()
    };
    let n = next() % 8;
    let mut contents: Vec<Option<Box<dyn Content>>> = Vec::new();
    for i in 0..n {
        let flags = next();
        let len = usize::from(next()) * 37;
        let p = PartSpec {
            name: format!("p{i}"),
            offset: u64::from(next()) * 512,
            size: u64::from(next() % 16) * 512,
            align: u64::from(next() % 3) * 512,
            mbr_type: if flags & 1 == 1 { 0x83 } else { 0 },
            bootable: flags & 2 == 2,
            forced_primary: flags & 4 == 4,
            in_table: flags & 8 == 0,
            autoresize: flags & 16 == 16,
            fill: flags & 32 == 32,
            image_offset: u64::from(flags >> 6),
            image: (len > 0).then(|| ImageRef {
                name: format!("f{i}"),
                size: len as u64,
                holes: if flags & 64 == 64 {
                    vec![(440, 512)]
                } else {
                    vec![]
                },
            }),
            ..PartSpec::default()
        };
        contents
            .push((len > 0).then(|| Box::new(BytesContent(vec![0xa5; len])) as Box<dyn Content>));
        spec.partitions.push(p);
    }
    (spec, contents)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    if pick % 2 == 0 {
        let text = String::from_utf8_lossy(rest).into_owned();
        let read = move |p: &Path| {
            if p == Path::new("main.cfg") {
                Ok(text.clone())
            } else {
                Err(std::io::Error::from(std::io::ErrorKind::NotFound))
            }
        };
        let env = |k: &str| (k == "X").then(|| "x".to_owned());
        let src = config::Source {
            include_path: vec![],
            env: &env,
            read: &read,
        };
        if let Ok(top) = config::parse(Path::new("main.cfg"), &src) {
            for s in top.sections() {
                let _ = s.size("size", true);
                let _ = s.bool("fill");
                let _ = s.int("partition-type");
            }
        }
        return;
    }
    let (spec, contents) = spec(rest);
    let Ok(layout) = rootforge_disk::plan(&spec) else {
        return;
    };
    let mut out = Buffer::default();
    let plan = DiskPlan::new(layout.clone(), contents).expect("contents for every image");
    if plan.write(&mut out).is_err() {
        return;
    }
    assert_eq!(out.0.len() as u64, layout.file_size);
    if spec.table == TableType::None {
        return;
    }
    // The disk is its planned size; the file may end earlier.
    let size = usize::try_from(layout.size).expect("a small disk");
    if out.0.len() < size {
        out.0.resize(size, 0);
    }
    let t = rootforge_disk::read::read(&out.0).expect("a planned table reads back");
    let mut planned: Vec<_> = layout
        .partitions()
        .filter(|p| p.in_table && (spec.table != TableType::Mbr || p.mbr_type != 0))
        .map(|p| (p.offset, p.size))
        .collect();
    let mut read: Vec<_> = t
        .partitions
        .iter()
        .filter(|p| p.mbr_type != Some(0x0f))
        .map(|p| (p.start, p.size))
        .collect();
    planned.sort_unstable();
    read.sort_unstable();
    assert_eq!(planned, read);
});
