//! UBI's on-disk headers, as `include/uapi/mtd/ubi-media.h` names them.
//! Every field is big endian; the CRCs are `crc32(UBI_CRC32_INIT, ...)`:
//! reflected CRC-32 seeded with all ones, without the final inversion.

use rootforge_common::bytes::RecordWriter;

/// `UBI_EC_HDR_MAGIC`: "UBI#".
pub const EC_HDR_MAGIC: u32 = 0x5542_4923;
/// `UBI_VID_HDR_MAGIC`: "UBI!".
pub const VID_HDR_MAGIC: u32 = 0x5542_4921;
/// `UBI_EC_HDR_SIZE`, `UBI_VID_HDR_SIZE`.
pub const EC_HDR_SIZE: u32 = 64;
pub const VID_HDR_SIZE: u32 = 64;
/// `UBI_VTBL_RECORD_SIZE`.
pub const VTBL_RECORD_SIZE: u32 = 172;
/// `UBI_MAX_VOLUMES`.
pub const MAX_VOLUMES: u32 = 128;
/// `UBI_VOL_NAME_MAX`.
pub const VOL_NAME_MAX: usize = 127;
/// `UBI_LAYOUT_VOLUME_ID`: `UBI_INTERNAL_VOL_START`, 0x7fffffff - 4096.
pub const LAYOUT_VOLUME_ID: u32 = 0x7fff_efff;
/// `UBI_LAYOUT_VOLUME_EBS`.
pub const LAYOUT_VOLUME_EBS: u32 = 2;
/// `UBI_COMPAT_REJECT`, the layout volume's compatibility.
pub const COMPAT_REJECT: u8 = 5;
/// `UBI_VID_DYNAMIC`, `UBI_VID_STATIC`.
pub const VID_DYNAMIC: u8 = 1;
pub const VID_STATIC: u8 = 2;
/// `UBI_VTBL_AUTORESIZE_FLG`, `UBI_VTBL_SKIP_CRC_CHECK_FLG`.
pub const VTBL_AUTORESIZE_FLG: u8 = 0x01;
pub const VTBL_SKIP_CRC_CHECK_FLG: u8 = 0x02;

/// UBI's `crc32(UBI_CRC32_INIT, data, len)`.
pub fn crc(data: &[u8]) -> u32 {
    !crc32fast::hash(data)
}

fn with_crc(w: RecordWriter) -> Vec<u8> {
    let mut v = w.into_bytes();
    let c = crc(&v);
    v.extend_from_slice(&c.to_be_bytes());
    v
}

/// `struct ubi_ec_hdr`.
pub(crate) fn ec_hdr(
    version: u8,
    ec: u64,
    vid_hdr_offset: u32,
    data_offset: u32,
    image_seq: u32,
) -> Vec<u8> {
    let mut w = RecordWriter::with_capacity(EC_HDR_SIZE as usize);
    w.be32(EC_HDR_MAGIC).u8(version).zeros(3);
    w.be32((ec >> 32) as u32).be32(ec as u32);
    w.be32(vid_hdr_offset)
        .be32(data_offset)
        .be32(image_seq)
        .zeros(32);
    with_crc(w)
}

/// `struct ubi_vid_hdr`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct VidHdr {
    pub version: u8,
    pub vol_type: u8,
    pub copy_flag: u8,
    pub compat: u8,
    pub vol_id: u32,
    pub lnum: u32,
    pub data_size: u32,
    pub used_ebs: u32,
    pub data_pad: u32,
    pub data_crc: u32,
    pub sqnum: u64,
}

impl VidHdr {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_capacity(VID_HDR_SIZE as usize);
        w.be32(VID_HDR_MAGIC)
            .u8(self.version)
            .u8(self.vol_type)
            .u8(self.copy_flag)
            .u8(self.compat);
        w.be32(self.vol_id).be32(self.lnum).zeros(4);
        w.be32(self.data_size)
            .be32(self.used_ebs)
            .be32(self.data_pad)
            .be32(self.data_crc)
            .zeros(4);
        w.be32((self.sqnum >> 32) as u32)
            .be32(self.sqnum as u32)
            .zeros(12);
        with_crc(w)
    }
}

/// `struct ubi_vtbl_record`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VtblRecord {
    pub reserved_pebs: u32,
    pub alignment: u32,
    pub data_pad: u32,
    pub vol_type: u8,
    pub upd_marker: u8,
    pub name: Vec<u8>,
    pub flags: u8,
}

impl VtblRecord {
    /// The record's 172 bytes; `name` is at most [`VOL_NAME_MAX`].
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::with_capacity(VTBL_RECORD_SIZE as usize);
        w.be32(self.reserved_pebs)
            .be32(self.alignment)
            .be32(self.data_pad)
            .u8(self.vol_type)
            .u8(self.upd_marker)
            .be16(self.name.len() as u16)
            .padded(&self.name, VOL_NAME_MAX + 1, 0)
            .u8(self.flags)
            .zeros(23);
        with_crc(w)
    }
}
