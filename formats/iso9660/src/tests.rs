//! Unit tests of the whole encoder and reader, with no external tool:
//! the ones that run xorriso, isoinfo, bsdtar, mtools or qemu are in
//! `tests/it/iso_tools.rs`.

use std::sync::Arc;

use rootforge_common::bytes::usize_from_u32;
use rootforge_common::{
    Buffer, Content, Edit, Encoder, Inode, Kind, Replace, Time, Tree, TreeBuilder,
};

use crate::raw::dir::{DirectoryRecord, PathTableRecord, PathTableType};
use crate::raw::eltorito::{
    BootInfoTable, FINAL_HEADER, PLATFORM_EFI, PLATFORM_X86, SectionEntry, SectionHeader,
    ValidationEntry,
};
use crate::raw::hybrid::{GptHeader, GptPartitionEntry, Mbr, MbrPartitionRecord};
use crate::raw::volume::{BootRecord, EL_TORITO, VolumeDescriptor};
use crate::{IsoEncoder, read};

mod fixtures;

use fixtures::{efi_tree, file, listing_of, meta, pattern, sample, text, zisofs_tree};

fn encode(tree: &Tree, enc: &IsoEncoder) -> Vec<u8> {
    let mut out = Buffer::default();
    enc.write(&tree.view(), &mut out).unwrap();
    out.0
}

/// Block `n` of an image and what follows.
fn block(img: &[u8], n: u32) -> &[u8] {
    &img[usize_from_u32(n) * 2048..]
}

#[test]
fn reader_gives_back_the_tree() {
    let tree = sample();
    let img = encode(&tree, &IsoEncoder::default());
    assert!(crate::is_iso(&img));
    let back = read(Arc::new(img)).unwrap();
    assert_eq!(text(&listing_of(&back)), text(&listing_of(&tree)));
}

#[test]
fn hard_links_share_one_extent_and_serial() {
    let tree = sample();
    let img = encode(&tree, &IsoEncoder::default());
    let back = read(Arc::new(img)).unwrap();
    let v = back.view();
    let a = v.lookup(b"bin/busybox").unwrap();
    assert_eq!(v.lookup(b"sbin/init"), Some(a));
    assert_eq!(v.lookup(b"usr/bin/sh"), Some(a));
    assert_ne!(v.lookup(b"etc/motd"), Some(a));
}

#[test]
fn output_is_identical_for_any_thread_count() {
    let tree = sample();
    let enc = IsoEncoder {
        zisofs: true,
        boot_bios: Some(b"bin/busybox".to_vec()),
        efi_tree: Some(Arc::new(efi_tree())),
        hybrid_mbr: Some(vec![0xAB; 440]),
        created: Time::from_secs(1_234_567_890),
        ..IsoEncoder::default()
    };
    let run = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
            .install(|| encode(&tree, &enc))
    };
    let one = run(1);
    assert_eq!(one, run(4));
    assert_eq!(one, encode(&tree, &enc));
}

#[test]
fn dropped_xattrs_and_clamped_times_are_reported_once() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_500_000_000));
    for p in [&b"a"[..], b"b"] {
        let mut i = file(0o644, &b"x"[..]);
        i.set_xattr(b"security.capability", b"\x01");
        b.insert(p, i, Replace::Always).unwrap();
    }
    b.insert(
        b"old",
        Inode::new(meta(0o644, 0, 0, -3_000_000_000), Content::Fifo),
        Replace::Always,
    )
    .unwrap();
    let tree = b.finish();
    let mut out = Buffer::default();
    let report = IsoEncoder::default().write(&tree.view(), &mut out).unwrap();
    assert_eq!(report.bytes, out.0.len() as u64);
    assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("extended attributes of 2 inodes"),
        "{:?}",
        report.warnings
    );
    assert!(
        report.warnings[1].contains("clamped 1 modification times"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn bad_input_is_refused_before_writing() {
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_500_000_000));
    b.insert(&[b'n'; 254], file(0o644, &b"x"[..]), Replace::Always)
        .unwrap();
    b.insert(b"boot/tiny", file(0o644, &b"x"[..]), Replace::Always)
        .unwrap();
    let tree = b.finish();
    let err = IsoEncoder::default().check(&tree.view()).unwrap_err();
    assert!(
        err.to_string()
            .contains("name length is 254, but iso9660 allows at most 253"),
        "{err}"
    );
    let mut b = tree.clone().into_builder(meta(0o755, 0, 0, 0));
    b.remove(&[b'n'; 254]).unwrap();
    let tree = b.finish();
    for (path, want) in [
        (&b"boot/tiny"[..], "at least 64 bytes"),
        (b"boot/none", "does not exist"),
        (b"boot", "not a regular file"),
    ] {
        let enc = IsoEncoder {
            boot_bios: Some(path.to_vec()),
            ..IsoEncoder::default()
        };
        let mut out = Buffer::default();
        let err = enc.write(&tree.view(), &mut out).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        assert!(out.0.is_empty());
    }
}

#[test]
fn reader_refuses_malformed_images() {
    let tree = sample();
    let img = encode(&tree, &IsoEncoder::default());
    assert!(read(Arc::new(img[..40_000].to_vec())).is_err());
    let mut bad = img.clone();
    bad[16 * 2048 + 1] = b'X';
    assert!(read(Arc::new(bad)).is_err());
    // Damaged metadata gives an error or some tree, never a panic or a
    // loop.
    for at in (18 * 2048..img.len().min(60 * 2048)).step_by(97) {
        let mut bad = img.clone();
        bad[at] = bad[at].wrapping_add(0x55);
        let _ = read(Arc::new(bad));
    }
}

#[test]
fn zisofs_files_read_back_through_the_reader() {
    let tree = zisofs_tree();
    let enc = IsoEncoder {
        zisofs: true,
        ..IsoEncoder::default()
    };
    let img = encode(&tree, &enc);
    let plain = encode(&tree, &IsoEncoder::default());
    assert!(
        img.len() + 100 * 2048 < plain.len(),
        "{} vs {}",
        img.len(),
        plain.len()
    );
    let back = read(Arc::new(img)).unwrap();
    assert_eq!(text(&listing_of(&back)), text(&listing_of(&tree)));
}

/// Every option that changes the layout: the plan's size is the bytes
/// written, before anything is written.
#[test]
fn the_planned_size_is_the_written_size() {
    let tree = sample();
    let bios = || Some(b"bin/busybox".to_vec());
    let efi = || Some(Arc::new(efi_tree()));
    let mbr = || Some(vec![0xAB; 432]);
    let base = IsoEncoder::default;
    for enc in [
        base(),
        IsoEncoder {
            zisofs: true,
            ..base()
        },
        IsoEncoder {
            joliet: false,
            ..base()
        },
        IsoEncoder {
            boot_bios: bios(),
            ..base()
        },
        IsoEncoder {
            efi_tree: efi(),
            ..base()
        },
        IsoEncoder {
            hybrid_mbr: mbr(),
            ..base()
        },
        IsoEncoder {
            boot_bios: bios(),
            efi_tree: efi(),
            hybrid_mbr: mbr(),
            ..base()
        },
    ] {
        let plan = enc.plan(tree.view()).unwrap();
        let size = plan.size();
        let mut out = Buffer::default();
        let report = plan.write(&mut out).unwrap();
        assert_eq!(size, Some(out.0.len() as u64), "{enc:?}");
        assert_eq!(report.bytes, out.0.len() as u64);
    }
}

/// The El Torito, MBR and GPT records of a hybrid image with both boot
/// entries, read back with the records' own decoders.
#[test]
fn boot_catalog_mbr_and_gpt_read_back() {
    let enc = IsoEncoder {
        boot_bios: Some(b"bin/busybox".to_vec()),
        efi_tree: Some(Arc::new(efi_tree())),
        hybrid_mbr: Some(vec![0xAB; 440]),
        created: Time::from_secs(1_700_000_000),
        ..IsoEncoder::default()
    };
    let img = encode(&sample(), &enc);
    let blocks = u32::try_from(img.len() / 2048).unwrap();

    let br = BootRecord::decode(block(&img, 17), 17 * 2048).unwrap();
    assert_eq!(&br.boot_system_identifier[..EL_TORITO.len()], EL_TORITO);
    let cat = &block(&img, br.boot_catalog_pointer)[..2048];
    assert_eq!(
        ValidationEntry::decode(cat, 0).unwrap(),
        ValidationEntry::new(PLATFORM_X86)
    );
    let bios = SectionEntry::decode(&cat[32..], 0).unwrap();
    assert_eq!(bios, SectionEntry::bootable(bios.load_rba, 4));
    let h = SectionHeader::decode(&cat[64..], 0).unwrap();
    assert_eq!(
        (
            h.header_indicator,
            h.platform_id,
            h.number_of_section_entries
        ),
        (FINAL_HEADER, PLATFORM_EFI, 1)
    );
    let efi = SectionEntry::decode(&cat[96..], 0).unwrap();
    assert!(cat[128..].iter().all(|&b| b == 0));

    // The boot info table of the BIOS image, over its own bytes.
    let busybox = pattern(70_000, 7);
    let table = BootInfoTable::decode(block(&img, bios.load_rba), 0).unwrap();
    assert_eq!(
        table,
        BootInfoTable {
            bi_pvd: 16,
            bi_file: bios.load_rba,
            bi_length: 70_000,
            bi_csum: BootInfoTable::checksum(&busybox),
        }
    );
    assert_eq!(block(&img, bios.load_rba)[64..70_000], busybox[64..]);

    let mbr = Mbr::decode(&img, 0).unwrap();
    assert_eq!(mbr.signature, Mbr::SIGNATURE);
    assert_eq!(mbr.boot_code, &[0xAB; 432][..]);
    assert_eq!(mbr.boot_image_sector, u64::from(bios.load_rba) * 4);
    let [iso, esp, protective, unused] = mbr.partition_record;
    assert_eq!(
        (
            iso.boot_indicator,
            iso.os_type,
            iso.starting_lba,
            iso.size_in_lba
        ),
        (0x80, 0x17, 0, blocks * 4)
    );
    assert_eq!(
        (esp.os_type, esp.starting_lba, esp.size_in_lba),
        (0xEF, efi.load_rba * 4, u32::from(efi.sector_count))
    );
    assert_eq!(
        (
            protective.os_type,
            protective.starting_lba,
            protective.size_in_lba
        ),
        (0xEE, 1, 63)
    );
    assert_eq!(unused, MbrPartitionRecord::default());

    // The two GPT headers name each other, and their CRCs hold.
    let last = u64::from(blocks) * 4 - 1;
    let primary = GptHeader::decode(&img[512..], 512).unwrap();
    let backup = GptHeader::decode(&img[img.len() - 512..], last * 512).unwrap();
    assert_eq!((primary.my_lba, primary.alternate_lba), (1, last));
    assert_eq!((backup.my_lba, backup.alternate_lba), (last, 1));
    for h in [primary, backup] {
        let at = usize::try_from(h.partition_entry_lba).unwrap() * 512;
        let array = &img[at..at + 128 * 128];
        let again = GptHeader::new(
            h.my_lba,
            h.alternate_lba,
            h.first_usable_lba,
            h.last_usable_lba,
            h.disk_guid,
            h.partition_entry_lba,
            array,
        );
        assert_eq!(again, h, "the header and array CRCs");
        let iso_part = GptPartitionEntry::decode(array, 0).unwrap();
        let esp_part = GptPartitionEntry::decode(&array[128..], 0).unwrap();
        assert_eq!(esp_part.starting_lba, u64::from(esp.starting_lba));
        assert_eq!(iso_part.ending_lba + 1, esp_part.starting_lba);
        assert!(array[256..].iter().all(|&b| b == 0));
    }
}

/// Both path tables of both trees list every directory, in the same
/// order, each at the extent that starts with its own `.` record.
#[test]
fn path_tables_match_the_directory_records() {
    let tree = sample();
    let dirs = listing_of(&tree)
        .iter()
        .filter(|l| l.kind == Kind::Dir)
        .count();
    let img = encode(&tree, &IsoEncoder::default());
    for n in [16, 17] {
        let vd = VolumeDescriptor::decode(block(&img, n), 0).unwrap();
        assert_eq!(u64::from(vd.volume_space_size) * 2048, img.len() as u64);
        let size = usize_from_u32(vd.path_table_size);
        let l = &block(&img, vd.location_of_type_l_path_table)[..size];
        let m = &block(&img, vd.location_of_type_m_path_table)[..size];
        let (mut pos, mut count) = (0, 0);
        while pos < size {
            let rec = PathTableRecord::decode(&l[pos..], 0, PathTableType::L).unwrap();
            assert_eq!(
                PathTableRecord::decode(&m[pos..], 0, PathTableType::M).unwrap(),
                rec
            );
            assert!(usize::from(rec.parent_directory_number) <= count + 1);
            let dot = DirectoryRecord::decode(block(&img, rec.location_of_extent), 0).unwrap();
            assert_eq!(dot.file_identifier, [0]);
            assert_eq!(dot.location_of_extent, rec.location_of_extent);
            if count == 0 {
                let root = vd.directory_record_for_root_directory;
                assert_eq!(root.location_of_extent, rec.location_of_extent);
                assert_eq!(root.data_length, dot.data_length);
            }
            pos += PathTableRecord::len(rec.directory_identifier.len());
            count += 1;
        }
        assert_eq!(count, dirs, "block {n}");
    }
}

/// Found by the roundtrip fuzzer: a device number beyond Linux's 12-bit
/// major and 20-bit minor came back as another device; it is refused.
#[test]
fn device_numbers_linux_cannot_hold_are_refused() {
    for (major, minor, what) in [
        (0, 0x8000_0025, "device minor"),
        (0x1000, 1, "device major"),
    ] {
        let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_500_000_000));
        let dev = Inode::new(meta(0o600, 0, 0, 0), Content::BlockDev { major, minor });
        b.insert(b"dev/x", dev, Replace::Always).unwrap();
        let err = IsoEncoder::default().check(&b.finish().view()).unwrap_err();
        assert!(
            matches!(&err, rootforge_common::Error::Limit { what: w, path, .. } if *w == what && path == "/dev/x"),
            "{err}"
        );
    }
    let mut b = TreeBuilder::new(meta(0o755, 0, 0, 1_500_000_000));
    let dev = Inode::new(
        meta(0o600, 0, 0, 0),
        Content::BlockDev {
            major: 0xfff,
            minor: 0xf_ffff,
        },
    );
    b.insert(b"dev/x", dev, Replace::Always).unwrap();
    let tree = b.finish();
    let back = read(Arc::new(encode(&tree, &IsoEncoder::default()))).unwrap();
    assert_eq!(listing_of(&back), listing_of(&tree));
}
