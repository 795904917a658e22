//! The reader: the volume table from the layout volume, and each volume's
//! contents from its LEBs, as the kernel's attach finds them (the copy with
//! the highest sequence number of each LEB wins).

use std::collections::BTreeMap;

use rootforge_common::bytes::RecordReader;
use rootforge_common::{Error, Result};

use crate::records::{
    EC_HDR_MAGIC, EC_HDR_SIZE, LAYOUT_VOLUME_ID, VID_HDR_MAGIC, VID_HDR_SIZE, VTBL_RECORD_SIZE, crc,
};

const FORMAT: &str = "ubi";

fn malformed(offset: u64, reason: impl Into<String>) -> Error {
    Error::malformed(FORMAT, offset, reason)
}

/// Whether `head` starts with a UBI EC header whose CRC holds.
pub fn is_ubi(head: &[u8]) -> bool {
    head.get(..EC_HDR_SIZE as usize).is_some_and(|h| {
        h[..4] == EC_HDR_MAGIC.to_be_bytes() && crc(&h[..60]).to_be_bytes() == h[60..64]
    })
}

/// One volume of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UbiVolume {
    pub id: u32,
    pub name: Vec<u8>,
    pub vol_type: u8,
    pub reserved_pebs: u32,
    pub flags: u8,
    /// The LEBs' data in LEB order (a static volume's exact size; a
    /// dynamic volume's LEBs up to its last written one, whole).
    pub data: Vec<u8>,
}

/// The newest copy of one LEB.
struct Leb<'a> {
    sqnum: u64,
    data: &'a [u8],
    vol_type: u8,
    /// A static volume's data bytes in this LEB.
    data_size: u32,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads every volume of a UBI image of `peb_size` erase blocks.
///
/// # Errors
///
/// A PEB whose headers are corrupt, or a missing or corrupt volume table.
pub fn read(image: &[u8], peb_size: usize) -> Result<Vec<UbiVolume>> {
    if peb_size < 1024 || image.len() % peb_size != 0 {
        return Err(malformed(
            0,
            format!(
                "{} bytes is not a whole number of {peb_size}-byte PEBs",
                image.len()
            ),
        ));
    }
    let mut lebs: BTreeMap<(u32, u32), Leb<'_>> = BTreeMap::new();
    for (i, peb) in image.chunks(peb_size).enumerate() {
        let at = (i * peb_size) as u64;
        if peb.iter().all(|&b| b == 0xff) {
            continue;
        }
        if !is_ubi(peb) {
            return Err(malformed(at, "bad EC header"));
        }
        let vid_off = be32(peb, 16) as usize;
        let data_off = be32(peb, 20) as usize;
        let vid = vid_off
            .checked_add(VID_HDR_SIZE as usize)
            .and_then(|e| peb.get(vid_off..e))
            .filter(|_| data_off <= peb_size && data_off >= vid_off + VID_HDR_SIZE as usize)
            .ok_or_else(|| malformed(at, "header offsets outside the PEB"))?;
        if vid.iter().all(|&b| b == 0xff) {
            continue;
        }
        if vid[..4] != VID_HDR_MAGIC.to_be_bytes() || crc(&vid[..60]).to_be_bytes() != vid[60..64] {
            return Err(malformed(at + vid_off as u64, "bad VID header"));
        }
        let mut r = RecordReader::new(&vid[5..]);
        let vol_type = r.u8().unwrap_or(0);
        let vol_id = be32(vid, 8);
        let lnum = be32(vid, 12);
        let data_size = be32(vid, 20);
        let data_pad = be32(vid, 28) as usize;
        let sqnum = u64::from(be32(vid, 40)) << 32 | u64::from(be32(vid, 44));
        let end = peb_size
            .checked_sub(data_pad)
            .filter(|&e| e >= data_off)
            .ok_or_else(|| malformed(at, "data pad past the PEB"))?;
        let data = &peb[data_off..end];
        if lebs.get(&(vol_id, lnum)).is_none_or(|l| l.sqnum <= sqnum) {
            lebs.insert(
                (vol_id, lnum),
                Leb {
                    sqnum,
                    data,
                    vol_type,
                    data_size,
                },
            );
        }
    }
    let table = lebs
        .get(&(LAYOUT_VOLUME_ID, 0))
        .or_else(|| lebs.get(&(LAYOUT_VOLUME_ID, 1)))
        .ok_or_else(|| malformed(0, "no layout volume"))?
        .data;
    let mut out = Vec::new();
    for (id, rec) in table
        .chunks_exact(VTBL_RECORD_SIZE as usize)
        .take(crate::records::MAX_VOLUMES as usize)
        .enumerate()
    {
        if crc(&rec[..168]).to_be_bytes() != rec[168..172] {
            return Err(malformed(
                0,
                format!("volume table record {id} CRC mismatch"),
            ));
        }
        let reserved_pebs = be32(rec, 0);
        if reserved_pebs == 0 {
            continue;
        }
        let name_len = usize::from(u16::from_be_bytes([rec[14], rec[15]])).min(127);
        let id = id as u32;
        let mut data = Vec::new();
        let vol_type = rec[12];
        for (&(_, lnum), leb) in lebs.range((id, 0)..=(id, u32::MAX)) {
            let (d, t, size) = (leb.data, leb.vol_type, leb.data_size);
            let start = (lnum as usize)
                .checked_mul(d.len())
                .ok_or_else(|| malformed(0, "LEB number overflows"))?;
            if start > image.len() {
                return Err(malformed(
                    0,
                    format!("LEB {lnum} of volume {id} past the image"),
                ));
            }
            let d = if t == 2 {
                &d[..(size as usize).min(d.len())]
            } else {
                d
            };
            data.resize(start, 0xff);
            data.extend_from_slice(d);
        }
        out.push(UbiVolume {
            id,
            name: rec[16..16 + name_len].to_vec(),
            vol_type,
            reserved_pebs,
            flags: rec[144],
            data,
        });
    }
    Ok(out)
}
