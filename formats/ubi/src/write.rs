//! ubinize's image: the geometry checks of its option parsing, libubigen's
//! layout of each PEB, the volumes in configuration order from PEB 2 and the
//! layout volume in PEBs 0 and 1.

use std::io::Write;

use rootforge_common::{Error, FileData, Result};
use sha2::{Digest, Sha256};

use crate::records::{
    COMPAT_REJECT, EC_HDR_SIZE, LAYOUT_VOLUME_EBS, LAYOUT_VOLUME_ID, MAX_VOLUMES, VID_DYNAMIC,
    VID_HDR_SIZE, VID_STATIC, VOL_NAME_MAX, VTBL_AUTORESIZE_FLG, VTBL_RECORD_SIZE,
    VTBL_SKIP_CRC_CHECK_FLG, VidHdr, VtblRecord, crc, ec_hdr,
};

const FORMAT: &str = "ubi";

/// The flash and the headers: ubinize's `-p -m -s -O -e -x -Q`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// `-p`: the physical erase block size.
    pub peb_size: u32,
    /// `-m`: the minimum I/O unit (a NAND page), a power of 2.
    pub min_io_size: u32,
    /// `-s`: the sub-page size; the minimum I/O unit when `None`.
    pub sub_page_size: Option<u32>,
    /// `-O`: where the VID header is; after the EC header, at the next
    /// sub-page, when `None`.
    pub vid_hdr_offset: Option<u32>,
    /// `-e`: every PEB's erase counter.
    pub erase_counter: u64,
    /// `-x`: the UBI version.
    pub ubi_version: u8,
    /// `-Q`: the image sequence number; derived from the content when
    /// `None` (ubinize picks a random one).
    pub image_seq: Option<u32>,
}

impl Geometry {
    /// NAND with `peb_size` erase blocks and `min_io_size` pages, the other
    /// options as ubinize defaults them.
    pub fn new(peb_size: u32, min_io_size: u32) -> Geometry {
        Geometry {
            peb_size,
            min_io_size,
            sub_page_size: None,
            vid_hdr_offset: None,
            erase_counter: 0,
            ubi_version: 1,
            image_seq: None,
        }
    }
}

/// `vol_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VolumeType {
    #[default]
    Dynamic,
    Static,
}

/// One volume: a section of ubinize's INI file.
#[derive(Debug, Clone)]
pub struct Volume {
    /// The section's name, for messages.
    pub section: String,
    /// `vol_name`.
    pub name: Vec<u8>,
    /// `vol_id`.
    pub id: u32,
    /// `vol_type`.
    pub vtype: VolumeType,
    /// `vol_size`: the image's size when `None`.
    pub size: Option<u64>,
    /// `vol_alignment`.
    pub alignment: u32,
    /// `vol_flags=autoresize`.
    pub autoresize: bool,
    /// `vol_flags=skip-check`.
    pub skip_check: bool,
    /// `image`: the volume's contents.
    pub image: Option<FileData>,
}

impl Volume {
    /// Buildroot's default ubinize.cfg: volume 0, dynamic, named `rootfs`,
    /// alignment 1, autoresize, holding `image`.
    pub fn buildroot_rootfs(image: FileData) -> Volume {
        Volume {
            section: "ubifs".into(),
            name: b"rootfs".to_vec(),
            id: 0,
            vtype: VolumeType::Dynamic,
            size: None,
            alignment: 1,
            autoresize: true,
            skip_check: false,
            image: Some(image),
        }
    }
}

/// What the geometry makes of each PEB.
#[derive(Debug, Clone, Copy)]
struct Layout {
    vid_hdr_offs: u32,
    data_offs: u32,
    leb_size: u32,
    max_volumes: u32,
    vtbl_size: u32,
}

/// A volume as it is written: its LEBs' data size and count.
#[derive(Debug, Clone, Copy)]
struct Placed {
    usable_leb_size: u32,
    data_pad: u32,
    used_ebs: u32,
}

/// An image of volumes, as ubinize makes it.
#[derive(Debug, Clone)]
pub struct Ubinize {
    pub geometry: Geometry,
    pub volumes: Vec<Volume>,
}

fn bad(section: &str, what: String) -> Error {
    Error::Unsupported {
        path: section.to_owned(),
        format: FORMAT,
        what,
    }
}

impl Ubinize {
    fn layout(&self) -> Result<Layout> {
        let g = &self.geometry;
        let opt = "options";
        let sub = g.sub_page_size.unwrap_or(g.min_io_size);
        if g.peb_size == 0 || g.min_io_size == 0 || !g.min_io_size.is_power_of_two() {
            return Err(bad(
                opt,
                format!("a min. I/O unit of {} (a power of 2)", g.min_io_size),
            ));
        }
        if sub == 0 || !sub.is_power_of_two() || sub > g.min_io_size {
            return Err(bad(
                opt,
                format!("a sub-page of {sub} (a power of 2 up to the min. I/O unit)"),
            ));
        }
        if g.peb_size % g.min_io_size != 0 {
            return Err(bad(
                opt,
                format!(
                    "a PEB of {} (a multiple of the min. I/O unit {})",
                    g.peb_size, g.min_io_size
                ),
            ));
        }
        let vid_hdr_offs = match g.vid_hdr_offset.filter(|&o| o != 0) {
            Some(o) => {
                if o.checked_add(VID_HDR_SIZE).is_none_or(|e| e >= g.peb_size) || o % 8 != 0 {
                    return Err(bad(opt, format!("the VID header offset {o}")));
                }
                o
            }
            None => EC_HDR_SIZE.next_multiple_of(sub),
        };
        let data_offs = (vid_hdr_offs + VID_HDR_SIZE).next_multiple_of(g.min_io_size);
        if data_offs >= g.peb_size {
            return Err(bad(
                opt,
                format!("a PEB of {} (no room for data)", g.peb_size),
            ));
        }
        let leb_size = g.peb_size - data_offs;
        let max_volumes = (leb_size / VTBL_RECORD_SIZE).min(MAX_VOLUMES);
        Ok(Layout {
            vid_hdr_offs,
            data_offs,
            leb_size,
            max_volumes,
            vtbl_size: max_volumes * VTBL_RECORD_SIZE,
        })
    }

    /// Checks every volume as ubinize does, and its place.
    fn place(&self, l: &Layout) -> Result<Vec<Placed>> {
        let mut ids = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        let mut autoresize = 0;
        let mut out = Vec::new();
        for v in &self.volumes {
            let s = &v.section;
            if v.id >= l.max_volumes {
                return Err(Error::Limit {
                    path: s.clone(),
                    format: FORMAT,
                    what: "volume id",
                    value: v.id.into(),
                    limit: (l.max_volumes - 1).into(),
                });
            }
            if !ids.insert(v.id) {
                return Err(bad(s, format!("volume id {} twice", v.id)));
            }
            if v.name.is_empty() || v.name.len() > VOL_NAME_MAX {
                return Err(bad(
                    s,
                    format!("a volume name of {} bytes (1 to 127)", v.name.len()),
                ));
            }
            if !names.insert(v.name.clone()) {
                return Err(bad(s, "the same volume name twice".into()));
            }
            if v.alignment == 0 || v.alignment >= l.leb_size {
                return Err(bad(
                    s,
                    format!(
                        "alignment {} (1 to below the LEB size {})",
                        v.alignment, l.leb_size
                    ),
                ));
            }
            autoresize += usize::from(v.autoresize);
            if autoresize > 1 {
                return Err(bad(s, "a second autoresize volume".into()));
            }
            let image_len = v.image.as_ref().map(FileData::size);
            if image_len == Some(0) {
                return Err(bad(s, "an empty image".into()));
            }
            if v.vtype == VolumeType::Static && image_len.is_none() {
                return Err(bad(s, "a static volume without an image".into()));
            }
            let bytes = match (v.size, image_len) {
                (Some(size), Some(len)) if len > size => {
                    return Err(Error::Limit {
                        path: s.clone(),
                        format: FORMAT,
                        what: "image size",
                        value: len,
                        limit: size,
                    });
                }
                (Some(0), _) => return Err(bad(s, "a volume size of 0".into())),
                (Some(size), _) => size,
                (None, Some(len)) => len,
                (None, None) => return Err(bad(s, "neither an image nor a volume size".into())),
            };
            let data_pad = l.leb_size % v.alignment;
            let usable = l.leb_size - data_pad;
            let used = u32::try_from(image_len.unwrap_or(0).div_ceil(usable.into()))
                .map_err(|_| bad(s, "an image of over 2^32 LEBs".into()))?;
            let reserved = bytes.div_ceil(l.leb_size.into());
            if reserved > u64::from(u32::MAX) {
                return Err(bad(s, "a volume of over 2^32 LEBs".into()));
            }
            out.push(Placed {
                usable_leb_size: usable,
                data_pad,
                used_ebs: used,
            });
        }
        Ok(out)
    }

    /// The image's size in bytes, after every check.
    ///
    /// # Errors
    ///
    /// A geometry or volume that ubinize refuses.
    pub fn size(&self) -> Result<u64> {
        let l = self.layout()?;
        let placed = self.place(&l)?;
        let pebs: u64 = placed.iter().map(|p| u64::from(p.used_ebs)).sum();
        Ok((pebs + u64::from(LAYOUT_VOLUME_EBS)) * u64::from(self.geometry.peb_size))
    }

    /// The image sequence number: `-Q`, or a hash of the geometry and the
    /// volumes' tables and contents.
    fn image_seq(&self) -> Result<u32> {
        if let Some(q) = self.geometry.image_seq {
            return Ok(q);
        }
        let g = &self.geometry;
        let mut h = Sha256::new();
        h.update(format!("{g:?}"));
        for v in &self.volumes {
            h.update(format!(
                "{}|{:?}|{}|{:?}|{:?}|{}|{}|{}",
                v.section, v.name, v.id, v.vtype, v.size, v.alignment, v.autoresize, v.skip_check
            ));
            if let Some(img) = &v.image {
                img.for_each_chunk(&mut |c| {
                    h.update(c);
                    Ok(())
                })
                .map_err(|e| Error::io(format!("reading the image of [{}]", v.section), e))?;
            }
        }
        let d = h.finalize();
        Ok(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
    }

    /// Writes the image.
    ///
    /// # Errors
    ///
    /// What [`Ubinize::size`] refuses, and I/O errors.
    pub fn write(&self, out: &mut dyn Write) -> Result<u64> {
        let l = self.layout()?;
        let placed = self.place(&l)?;
        let g = &self.geometry;
        let seq = self.image_seq()?;
        let peb = g.peb_size as usize;
        let ec = ec_hdr(
            g.ubi_version,
            g.erase_counter,
            l.vid_hdr_offs,
            l.data_offs,
            seq,
        );
        let put = |out: &mut dyn Write, vid: &VidHdr, data: &[u8]| -> Result<()> {
            let mut buf = vec![0xffu8; peb];
            buf[..ec.len()].copy_from_slice(&ec);
            let v = vid.encode();
            let at = l.vid_hdr_offs as usize;
            buf[at..at + v.len()].copy_from_slice(&v);
            let d = l.data_offs as usize;
            buf[d..d + data.len()].copy_from_slice(data);
            out.write_all(&buf)
                .map_err(|e| Error::io("writing the ubi image", e))
        };

        // The volume table: every slot empty but its CRC, then the volumes.
        let mut vtbl = Vec::with_capacity(l.vtbl_size as usize);
        for _ in 0..l.max_volumes {
            vtbl.extend_from_slice(&VtblRecord::default().encode());
        }
        for (v, p) in self.volumes.iter().zip(&placed) {
            let bytes = v.size.or(v.image.as_ref().map(FileData::size)).unwrap_or(0);
            let rec = VtblRecord {
                reserved_pebs: bytes.div_ceil(l.leb_size.into()) as u32,
                alignment: v.alignment,
                data_pad: p.data_pad,
                vol_type: vol_type(v.vtype),
                upd_marker: 0,
                name: v.name.clone(),
                flags: if v.autoresize { VTBL_AUTORESIZE_FLG } else { 0 }
                    | if v.skip_check {
                        VTBL_SKIP_CRC_CHECK_FLG
                    } else {
                        0
                    },
            };
            let at = v.id as usize * VTBL_RECORD_SIZE as usize;
            vtbl[at..at + VTBL_RECORD_SIZE as usize].copy_from_slice(&rec.encode());
        }
        for lnum in 0..LAYOUT_VOLUME_EBS {
            let vid = VidHdr {
                version: g.ubi_version,
                vol_type: VID_DYNAMIC,
                compat: COMPAT_REJECT,
                vol_id: LAYOUT_VOLUME_ID,
                lnum,
                ..VidHdr::default()
            };
            put(out, &vid, &vtbl)?;
        }
        let mut written = u64::from(LAYOUT_VOLUME_EBS) * u64::from(g.peb_size);
        for (v, p) in self.volumes.iter().zip(&placed) {
            let Some(img) = &v.image else { continue };
            let mut buf = vec![0u8; p.usable_leb_size as usize];
            let mut off = 0u64;
            for lnum in 0..p.used_ebs {
                let n = (img.size() - off).min(u64::from(p.usable_leb_size)) as usize;
                img.read_at(off, &mut buf[..n])
                    .map_err(|e| Error::io(format!("reading the image of [{}]", v.section), e))?;
                let data = &buf[..n];
                let mut vid = VidHdr {
                    version: g.ubi_version,
                    vol_type: vol_type(v.vtype),
                    vol_id: v.id,
                    lnum,
                    data_pad: p.data_pad,
                    ..VidHdr::default()
                };
                if v.vtype == VolumeType::Static {
                    vid.data_size = n as u32;
                    vid.used_ebs = p.used_ebs;
                    vid.data_crc = crc(data);
                }
                put(out, &vid, data)?;
                off += n as u64;
                written += u64::from(g.peb_size);
            }
        }
        Ok(written)
    }
}

fn vol_type(t: VolumeType) -> u8 {
    match t {
        VolumeType::Dynamic => VID_DYNAMIC,
        VolumeType::Static => VID_STATIC,
    }
}
