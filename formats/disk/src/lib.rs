//! Partitioned disk images: MBR (with extended and logical partitions),
//! GPT and hybrid tables, with raw areas at fixed offsets, planned as
//! genimage's `hdimage` plans them and written in one pass.
//!
//! [`plan::plan`] makes every check (placement, alignment, overlaps with
//! every other partition and with the table structures) and returns a
//! [`plan::Layout`]; [`write::DiskPlan`] then writes the partitions'
//! contents in offset order with the tables laid over them, gaps as sink
//! skips. [`read::read`] parses a table back.

pub mod config;
pub mod error;
pub mod guid;
pub mod plan;
pub mod read;
pub mod table;
pub mod write;

pub use error::{DiskError, Result, Span};
pub use guid::Guid;
pub use plan::{DiskSignature, DiskSpec, ImageRef, Layout, PartSpec, TableType, plan};
pub use write::{BytesContent, Content, DiskPlan, FileContent};

#[cfg(test)]
mod tests {
    use super::*;
    use rootforge_common::Buffer;

    fn part(name: &str, data: &[u8]) -> (PartSpec, Option<Box<dyn Content>>) {
        (
            PartSpec {
                name: name.into(),
                in_table: true,
                mbr_type: 0x83,
                image: Some(ImageRef {
                    name: name.into(),
                    size: data.len() as u64,
                    holes: vec![],
                }),
                ..PartSpec::default()
            },
            Some(Box::new(BytesContent(data.to_vec()))),
        )
    }

    fn build(
        mut spec: DiskSpec,
        parts: Vec<(PartSpec, Option<Box<dyn Content>>)>,
    ) -> (Layout, Vec<u8>) {
        let (specs, contents): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        spec.partitions = specs;
        let layout = plan(&spec).unwrap();
        let mut out = Buffer::default();
        let end = DiskPlan::new(layout.clone(), contents)
            .unwrap()
            .write(&mut out)
            .unwrap();
        assert_eq!(end, layout.file_size);
        assert_eq!(out.0.len() as u64, layout.file_size);
        (layout, out.0)
    }

    #[test]
    fn mbr_with_logical_partitions_reads_back() {
        let parts: Vec<_> = (0..6u8)
            .map(|i| part(&format!("p{i}"), &vec![i + 1; 1024 * (usize::from(i) + 1)]))
            .collect();
        let spec = DiskSpec {
            disk_signature: Some(DiskSignature::Value(0xfeed_c0de)),
            ..DiskSpec::default()
        };
        let (layout, disk) = build(spec, parts);
        let t = read::read(&disk).unwrap();
        assert_eq!(t.kind, read::Kind::Mbr);
        assert_eq!(t.disk_signature, 0xfeed_c0de);
        let got: Vec<_> = t
            .partitions
            .iter()
            .filter(|p| p.mbr_type != Some(0x0f))
            .map(|p| (p.start, p.size))
            .collect();
        let want: Vec<_> = layout.partitions().map(|p| (p.offset, p.size)).collect();
        assert_eq!(got, want);
        for p in layout.partitions() {
            let b = &disk[p.offset as usize..(p.offset + p.data_size) as usize];
            let i = p.index().unwrap() as u8;
            assert!(b.iter().all(|&x| x == i + 1), "{}", p.name);
        }
    }

    #[test]
    fn gpt_and_hybrid_read_back() {
        for table in [TableType::Gpt, TableType::Hybrid] {
            let mut a = part("boot", &[7; 4096]);
            a.0.bootable = true;
            a.0.mbr_type = 0;
            if table == TableType::Hybrid {
                a.0.mbr_type = 0x0c;
            }
            a.0.type_guid = Some("esp".into());
            let mut b = part("root", &[9; 8192]);
            b.0.mbr_type = 0;
            let (layout, disk) = build(
                DiskSpec {
                    table,
                    ..DiskSpec::default()
                },
                vec![a, b],
            );
            let t = read::read(&disk).unwrap();
            assert_eq!(t.partitions.len(), 2);
            assert_eq!(t.partitions[0].name, "boot");
            assert_eq!(t.partitions[0].type_guid, guid::partition_type("U"));
            assert_eq!(t.disk_guid, Some(layout.disk_guid));
            assert_eq!(t.kind == read::Kind::Hybrid, table == TableType::Hybrid);
            // Same spec, same bytes.
            let again = build(
                DiskSpec {
                    table,
                    ..DiskSpec::default()
                },
                vec![
                    {
                        let mut a = part("boot", &[7; 4096]);
                        a.0.bootable = true;
                        a.0.mbr_type = 0;
                        if table == TableType::Hybrid {
                            a.0.mbr_type = 0x0c;
                        }
                        a.0.type_guid = Some("esp".into());
                        a
                    },
                    {
                        let mut b = part("root", &[9; 8192]);
                        b.0.mbr_type = 0;
                        b
                    },
                ],
            );
            assert_eq!(again.1, disk);
        }
    }

    #[test]
    fn a_bootloader_keeps_its_bytes_around_the_mbr() {
        let mut boot = part("spl", &[0x5a; 8192]);
        boot.0.in_table = false;
        boot.0.image.as_mut().unwrap().holes = vec![(440, 512)];
        let mut root = part("root", &[1; 512]);
        root.0.offset = 8192;
        let (_, disk) = build(DiskSpec::default(), vec![boot, root]);
        assert!(disk[..440].iter().all(|&b| b == 0x5a));
        assert_eq!(&disk[510..512], &[0x55, 0xaa]);
        assert!(disk[512..8192].iter().all(|&b| b == 0x5a));
        let t = read::read(&disk).unwrap();
        assert_eq!(t.partitions.len(), 1);
    }

    #[test]
    fn imageoffset_and_fill() {
        let mut a = part("a", &(0..=255u8).cycle().take(2048).collect::<Vec<_>>());
        a.0.image_offset = 1000;
        a.0.size = 4096;
        a.0.fill = true;
        let (layout, disk) = build(DiskSpec::default(), vec![a]);
        let p = layout.partitions().next().unwrap();
        assert_eq!(p.data_size, 4096);
        assert_eq!(disk.len(), 512 + 4096);
        assert_eq!(disk[512], (1000 % 256) as u8);
        assert!(disk[512 + 1048..].iter().all(|&b| b == 0));
    }

    #[test]
    fn reader_refuses_garbage() {
        assert!(read::read(&[]).is_err());
        let mut d = vec![0u8; 4096];
        d[510] = 0x55;
        d[511] = 0xaa;
        // An entry past the end of the file is read as it is: genimage's
        // files end at their last data byte.
        d[446 + 4] = 0x83;
        d[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
        d[446 + 12..446 + 16].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(read::read(&d).unwrap().partitions[0].size, 100 * 512);
        // An extended partition whose EBR lies past the end.
        d[446 + 4] = 0x0f;
        assert!(read::read(&d).is_err());
        // A protective MBR without a GPT.
        d[446 + 4] = 0xee;
        assert!(read::read(&d).is_err());
    }

    /// Random layouts (the fuzz target's generator, fuzz/fuzz_targets/
    /// disk.rs): whatever the planner accepts writes a disk whose table
    /// reads back with every partition where the plan put it.
    #[test]
    fn random_layouts_read_back_as_planned() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut accepted = 0;
        for _ in 0..30_000 {
            let rest: Vec<u8> = (0..64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 32) as u8
                })
                .collect();
            if check(&rest) {
                accepted += 1;
            }
        }
        assert!(accepted > 100, "only {accepted} layouts accepted");
    }

    fn check(rest: &[u8]) -> bool {
        let (spec, contents) = spec(rest);
        let Ok(layout) = plan(&spec) else {
            return false;
        };
        let mut out = Buffer::default();
        let plan = DiskPlan::new(layout.clone(), contents).expect("contents for every image");
        if plan.write(&mut out).is_err() {
            return false;
        }
        assert_eq!(out.0.len() as u64, layout.file_size);
        if spec.table == TableType::None {
            return false;
        }
        // The disk is its planned size; the file may end earlier.
        let size = usize::try_from(layout.size).expect("a small disk");
        if out.0.len() < size {
            out.0.resize(size, 0);
        }
        let t = read::read(&out.0)
            .unwrap_or_else(|e| panic!("a planned table reads back: {e}\n{spec:#?}\n{layout:#?}"));
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
        true
    }

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
            contents.push(
                (len > 0).then(|| Box::new(BytesContent(vec![0xa5; len])) as Box<dyn Content>),
            );
            spec.partitions.push(p);
        }
        (spec, contents)
    }
}
