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
        // An entry past the end.
        d[446 + 4] = 0x83;
        d[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
        d[446 + 12..446 + 16].copy_from_slice(&100u32.to_le_bytes());
        assert!(read::read(&d).is_err());
        // A protective MBR without a GPT.
        d[446 + 4] = 0xee;
        assert!(read::read(&d).is_err());
    }
}
