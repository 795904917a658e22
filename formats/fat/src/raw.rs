//! The on-disk records, with the field names of Microsoft's FAT
//! specification ("Microsoft Extensible Firmware Initiative FAT32 File
//! System Specification", 1.03): the boot sector and its BIOS parameter
//! block (`BPB_*`, `BS_*`), the FAT32 FSInfo sector (`FSI_*`), the short
//! directory entry (`DIR_*`) and the long name entry (`LDIR_*`).

use rootforge_common::Time;
use rootforge_common::bytes::{RecordReader, RecordWriter};

use crate::FatType;

/// `BS_BootSig`: the three fields after it are present.
pub(crate) const EXT_BOOT_SIG: u8 = 0x29;
/// The signature at bytes 510..512 of the boot sector and FSInfo.
pub(crate) const BOOT_SIGN: u16 = 0xAA55;
/// `FSI_LeadSig`.
pub(crate) const FSI_LEAD_SIG: u32 = 0x4161_5252;
/// `FSI_StrucSig`.
pub(crate) const FSI_STRUC_SIG: u32 = 0x6141_7272;
/// `FSI_TrailSig`.
pub(crate) const FSI_TRAIL_SIG: u32 = 0xAA55_0000;

pub(crate) const ATTR_READ_ONLY: u8 = 0x01;
pub(crate) const ATTR_HIDDEN: u8 = 0x02;
pub(crate) const ATTR_SYSTEM: u8 = 0x04;
pub(crate) const ATTR_VOLUME_ID: u8 = 0x08;
pub(crate) const ATTR_DIRECTORY: u8 = 0x10;
pub(crate) const ATTR_ARCHIVE: u8 = 0x20;
/// `ATTR_LONG_NAME`: read-only, hidden, system and volume id together.
pub(crate) const ATTR_LONG_NAME: u8 = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_VOLUME_ID;
/// `LDIR_Ord` bit of the last (first stored) long name entry.
pub(crate) const LAST_LONG_ENTRY: u8 = 0x40;
/// `DIR_Name[0]` of a free entry.
pub(crate) const DIR_FREE: u8 = 0xE5;
/// Bytes of a directory entry.
pub(crate) const DIR_ENTRY: usize = 32;

/// Where `BS_FilSysType` and the boot code start on FAT12/16 and FAT32.
const BOOT_CODE_1216: usize = 62;
const BOOT_CODE_32: usize = 90;

/// The boot sector: the BPB and the extended boot record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BootSector {
    pub(crate) bs_oem_name: [u8; 8],
    pub(crate) bpb_byts_per_sec: u16,
    pub(crate) bpb_sec_per_clus: u8,
    pub(crate) bpb_rsvd_sec_cnt: u16,
    pub(crate) bpb_num_fats: u8,
    pub(crate) bpb_root_ent_cnt: u16,
    pub(crate) bpb_tot_sec16: u16,
    pub(crate) bpb_media: u8,
    pub(crate) bpb_fat_sz16: u16,
    pub(crate) bpb_sec_per_trk: u16,
    pub(crate) bpb_num_heads: u16,
    pub(crate) bpb_hidd_sec: u32,
    pub(crate) bpb_tot_sec32: u32,
    /// FAT32 only: `BPB_FATSz32`, `BPB_ExtFlags`, `BPB_FSVer`,
    /// `BPB_RootClus`, `BPB_FSInfo`, `BPB_BkBootSec`.
    pub(crate) fat32: Option<Fat32Bpb>,
    pub(crate) bs_drv_num: u8,
    pub(crate) bs_vol_id: u32,
    pub(crate) bs_vol_lab: [u8; 11],
    pub(crate) bs_fil_sys_type: [u8; 8],
}

/// The FAT32 part of the BPB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fat32Bpb {
    pub(crate) bpb_fat_sz32: u32,
    pub(crate) bpb_ext_flags: u16,
    pub(crate) bpb_fs_ver: u16,
    pub(crate) bpb_root_clus: u32,
    pub(crate) bpb_fs_info: u16,
    pub(crate) bpb_bk_boot_sec: u16,
}

/// Boot code that says the volume is not bootable: `int 0x18` (try the
/// next boot device), then `hlt` and a jump back to it.
const BOOT_CODE: [u8; 5] = [0xCD, 0x18, 0xF4, 0xEB, 0xFD];

impl BootSector {
    /// The 512 bytes of the sector (a longer sector is zero past them).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_capacity(512);
        let code_at = if self.fat32.is_some() {
            BOOT_CODE_32
        } else {
            BOOT_CODE_1216
        };
        // BS_jmpBoot: a short jump over the BPB to the boot code.
        w.bytes(&[0xEB, (code_at - 2) as u8, 0x90])
            .bytes(&self.bs_oem_name)
            .le16(self.bpb_byts_per_sec)
            .u8(self.bpb_sec_per_clus)
            .le16(self.bpb_rsvd_sec_cnt)
            .u8(self.bpb_num_fats)
            .le16(self.bpb_root_ent_cnt)
            .le16(self.bpb_tot_sec16)
            .u8(self.bpb_media)
            .le16(self.bpb_fat_sz16)
            .le16(self.bpb_sec_per_trk)
            .le16(self.bpb_num_heads)
            .le32(self.bpb_hidd_sec)
            .le32(self.bpb_tot_sec32);
        if let Some(f) = &self.fat32 {
            w.le32(f.bpb_fat_sz32)
                .le16(f.bpb_ext_flags)
                .le16(f.bpb_fs_ver)
                .le32(f.bpb_root_clus)
                .le16(f.bpb_fs_info)
                .le16(f.bpb_bk_boot_sec)
                .zeros(12);
        }
        w.u8(self.bs_drv_num)
            .u8(0)
            .u8(EXT_BOOT_SIG)
            .le32(self.bs_vol_id)
            .bytes(&self.bs_vol_lab)
            .bytes(&self.bs_fil_sys_type)
            .bytes(&BOOT_CODE);
        let mut b = w.into_bytes();
        b.resize(510, 0);
        b.extend_from_slice(&BOOT_SIGN.to_le_bytes());
        b
    }

    /// Parses a boot sector; `None` when it is too short or lacks the
    /// signature. The caller checks the values.
    pub(crate) fn parse(b: &[u8]) -> Option<BootSector> {
        if b.get(510..512)? != BOOT_SIGN.to_le_bytes() {
            return None;
        }
        let mut r = RecordReader::new(b);
        r.skip(3)?;
        let bs_oem_name = r.array()?;
        let bpb_byts_per_sec = r.le16()?;
        let bpb_sec_per_clus = r.u8()?;
        let bpb_rsvd_sec_cnt = r.le16()?;
        let bpb_num_fats = r.u8()?;
        let bpb_root_ent_cnt = r.le16()?;
        let bpb_tot_sec16 = r.le16()?;
        let bpb_media = r.u8()?;
        let bpb_fat_sz16 = r.le16()?;
        let bpb_sec_per_trk = r.le16()?;
        let bpb_num_heads = r.le16()?;
        let bpb_hidd_sec = r.le32()?;
        let bpb_tot_sec32 = r.le32()?;
        // FAT32 has no 16-bit FAT size (Microsoft's rule).
        let fat32 = if bpb_fat_sz16 == 0 {
            let f = Fat32Bpb {
                bpb_fat_sz32: r.le32()?,
                bpb_ext_flags: r.le16()?,
                bpb_fs_ver: r.le16()?,
                bpb_root_clus: r.le32()?,
                bpb_fs_info: r.le16()?,
                bpb_bk_boot_sec: r.le16()?,
            };
            r.skip(12)?;
            Some(f)
        } else {
            None
        };
        let bs_drv_num = r.u8()?;
        r.skip(1)?;
        let sig = r.u8()?;
        let (bs_vol_id, bs_vol_lab, bs_fil_sys_type) = if sig == EXT_BOOT_SIG {
            (r.le32()?, r.array()?, r.array()?)
        } else {
            (0, *b"NO NAME    ", [b' '; 8])
        };
        Some(BootSector {
            bs_oem_name,
            bpb_byts_per_sec,
            bpb_sec_per_clus,
            bpb_rsvd_sec_cnt,
            bpb_num_fats,
            bpb_root_ent_cnt,
            bpb_tot_sec16,
            bpb_media,
            bpb_fat_sz16,
            bpb_sec_per_trk,
            bpb_num_heads,
            bpb_hidd_sec,
            bpb_tot_sec32,
            fat32,
            bs_drv_num,
            bs_vol_id,
            bs_vol_lab,
            bs_fil_sys_type,
        })
    }
}

/// The FAT32 FSInfo sector (its first 512 bytes).
pub(crate) fn fs_info(free_count: u32, nxt_free: u32) -> Vec<u8> {
    let mut w = RecordWriter::with_capacity(512);
    w.le32(FSI_LEAD_SIG)
        .zeros(480)
        .le32(FSI_STRUC_SIG)
        .le32(free_count)
        .le32(nxt_free)
        .zeros(12)
        .le32(FSI_TRAIL_SIG);
    w.into_bytes()
}

/// `BS_FilSysType` of a FAT type.
pub(crate) fn fs_type_name(t: FatType) -> [u8; 8] {
    match t {
        FatType::Fat12 => *b"FAT12   ",
        FatType::Fat16 => *b"FAT16   ",
        FatType::Fat32 => *b"FAT32   ",
    }
}

/// A short directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirEntry {
    pub(crate) dir_name: [u8; 11],
    pub(crate) dir_attr: u8,
    pub(crate) dir_nt_res: u8,
    pub(crate) dir_crt_time_tenth: u8,
    pub(crate) dir_crt_time: u16,
    pub(crate) dir_crt_date: u16,
    pub(crate) dir_lst_acc_date: u16,
    pub(crate) dir_fst_clus_hi: u16,
    pub(crate) dir_wrt_time: u16,
    pub(crate) dir_wrt_date: u16,
    pub(crate) dir_fst_clus_lo: u16,
    pub(crate) dir_file_size: u32,
}

impl DirEntry {
    /// An entry whose times are all `t`'s (which must be in FAT's range).
    pub(crate) fn new(name: [u8; 11], attr: u8, cluster: u32, size: u32, t: FatTime) -> Self {
        DirEntry {
            dir_name: name,
            dir_attr: attr,
            dir_nt_res: 0,
            dir_crt_time_tenth: t.tenth,
            dir_crt_time: t.time,
            dir_crt_date: t.date,
            dir_lst_acc_date: t.date,
            dir_fst_clus_hi: (cluster >> 16) as u16,
            dir_wrt_time: t.time,
            dir_wrt_date: t.date,
            dir_fst_clus_lo: (cluster & 0xFFFF) as u16,
            dir_file_size: size,
        }
    }

    pub(crate) fn cluster(&self) -> u32 {
        u32::from(self.dir_fst_clus_hi) << 16 | u32::from(self.dir_fst_clus_lo)
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let mut w = RecordWriter::with_capacity(DIR_ENTRY);
        w.bytes(&self.dir_name)
            .u8(self.dir_attr)
            .u8(self.dir_nt_res)
            .u8(self.dir_crt_time_tenth)
            .le16(self.dir_crt_time)
            .le16(self.dir_crt_date)
            .le16(self.dir_lst_acc_date)
            .le16(self.dir_fst_clus_hi)
            .le16(self.dir_wrt_time)
            .le16(self.dir_wrt_date)
            .le16(self.dir_fst_clus_lo)
            .le32(self.dir_file_size);
        out.extend_from_slice(&w.into_bytes());
    }

    pub(crate) fn parse(b: &[u8]) -> Option<DirEntry> {
        let mut r = RecordReader::new(b);
        Some(DirEntry {
            dir_name: r.array()?,
            dir_attr: r.u8()?,
            dir_nt_res: r.u8()?,
            dir_crt_time_tenth: r.u8()?,
            dir_crt_time: r.le16()?,
            dir_crt_date: r.le16()?,
            dir_lst_acc_date: r.le16()?,
            dir_fst_clus_hi: r.le16()?,
            dir_wrt_time: r.le16()?,
            dir_wrt_date: r.le16()?,
            dir_fst_clus_lo: r.le16()?,
            dir_file_size: r.le32()?,
        })
    }
}

/// Where the 13 UTF-16 units of a long name entry lie: `LDIR_Name1` (5),
/// `LDIR_Name2` (6), `LDIR_Name3` (2).
const LDIR_UNITS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// A long name entry: `LDIR_Ord`, 13 name units, `LDIR_Chksum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LongEntry {
    pub(crate) ldir_ord: u8,
    pub(crate) units: [u16; 13],
    pub(crate) ldir_chksum: u8,
}

impl LongEntry {
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let mut e = [0u8; DIR_ENTRY];
        e[0] = self.ldir_ord;
        e[11] = ATTR_LONG_NAME;
        // LDIR_Type 0, LDIR_FstClusLO 0.
        e[13] = self.ldir_chksum;
        for (u, &at) in self.units.iter().zip(&LDIR_UNITS) {
            e[at..at + 2].copy_from_slice(&u.to_le_bytes());
        }
        out.extend_from_slice(&e);
    }

    pub(crate) fn parse(b: &[u8]) -> Option<LongEntry> {
        let e: &[u8; DIR_ENTRY] = b.get(..DIR_ENTRY)?.try_into().ok()?;
        let mut units = [0u16; 13];
        for (u, &at) in units.iter_mut().zip(&LDIR_UNITS) {
            *u = u16::from_le_bytes([e[at], e[at + 1]]);
        }
        Some(LongEntry {
            ldir_ord: e[0],
            units,
            ldir_chksum: e[13],
        })
    }
}

/// A time as FAT directory entries store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FatTime {
    /// Day (1..31), month (1..12) << 5, years since 1980 << 9.
    pub(crate) date: u16,
    /// Seconds / 2, minutes << 5, hours << 11.
    pub(crate) time: u16,
    /// Hundredths of a second past `time` (0..199): the odd second and
    /// the fraction.
    pub(crate) tenth: u8,
}

/// The first and last seconds FAT holds: 1980-01-01 00:00:00 and
/// 2107-12-31 23:59:59.
pub(crate) const FAT_MIN: i64 = 315_532_800;
pub(crate) const FAT_MAX: i64 = 4_354_819_199;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub(crate) const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl FatTime {
    /// `t` (UTC) in FAT's form, clamped to FAT's range; the flag says
    /// whether it was clamped.
    pub(crate) fn from_time(t: Time) -> (FatTime, bool) {
        let sec = t.sec.clamp(FAT_MIN, FAT_MAX);
        let nsec = if sec == t.sec {
            t.nsec.min(999_999_999)
        } else {
            0
        };
        let (y, m, d) = civil_from_days(sec.div_euclid(86_400));
        let s = sec.rem_euclid(86_400);
        let (hh, mm, ss) = (s / 3600, s / 60 % 60, s % 60);
        // All in range: the clamp keeps the year in 1980..=2107.
        let date = (((y - 1980) << 9) | (m << 5) | d) as u16;
        let time = ((hh << 11) | (mm << 5) | (ss / 2)) as u16;
        let tenth = ((ss % 2) * 100 + i64::from(nsec / 10_000_000)) as u8;
        (FatTime { date, time, tenth }, sec != t.sec)
    }

    /// The write time and date of an entry, as seconds since the epoch
    /// (UTC); `None` for a field out of range.
    pub(crate) fn to_secs(date: u16, time: u16) -> Option<i64> {
        let y = 1980 + i64::from(date >> 9);
        let m = i64::from(date >> 5 & 0xF);
        let d = i64::from(date & 0x1F);
        let (hh, mm, ss) = (
            i64::from(time >> 11),
            i64::from(time >> 5 & 0x3F),
            i64::from(time & 0x1F) * 2,
        );
        if !(1..=12).contains(&m) || d == 0 || hh > 23 || mm > 59 || ss > 59 {
            return None;
        }
        Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips_at_two_seconds() {
        for sec in [FAT_MIN, 1_000_000_001, 1_700_000_000, FAT_MAX - 1] {
            let (t, clamped) = FatTime::from_time(Time::from_secs(sec));
            assert!(!clamped);
            assert_eq!(FatTime::to_secs(t.date, t.time), Some(sec - sec % 2));
        }
        assert_eq!(days_from_civil(1980, 1, 1) * 86_400, FAT_MIN);
        assert_eq!(days_from_civil(2108, 1, 1) * 86_400 - 1, FAT_MAX);
        let (t, clamped) = FatTime::from_time(Time::from_secs(0));
        assert!(clamped);
        assert_eq!((t.date, t.time), (0x21, 0));
    }

    #[test]
    fn boot_sector_round_trips() {
        let bs = BootSector {
            bs_oem_name: *b"ROOTFRGE",
            bpb_byts_per_sec: 512,
            bpb_sec_per_clus: 8,
            bpb_rsvd_sec_cnt: 32,
            bpb_num_fats: 2,
            bpb_root_ent_cnt: 0,
            bpb_tot_sec16: 0,
            bpb_media: 0xF8,
            bpb_fat_sz16: 0,
            bpb_sec_per_trk: 63,
            bpb_num_heads: 16,
            bpb_hidd_sec: 0,
            bpb_tot_sec32: 1_048_572,
            fat32: Some(Fat32Bpb {
                bpb_fat_sz32: 1024,
                bpb_ext_flags: 0,
                bpb_fs_ver: 0,
                bpb_root_clus: 2,
                bpb_fs_info: 1,
                bpb_bk_boot_sec: 6,
            }),
            bs_drv_num: 0x80,
            bs_vol_id: 0x1234_5678,
            bs_vol_lab: *b"BOOT       ",
            bs_fil_sys_type: *b"FAT32   ",
        };
        let b = bs.to_bytes();
        assert_eq!(b.len(), 512);
        assert_eq!(&b[82..90], b"FAT32   ");
        assert_eq!(BootSector::parse(&b), Some(bs));
    }
}
