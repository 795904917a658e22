//! System use entries in a directory record's System Use field: the
//! System Use Sharing Protocol's own (SUSP 1.12: `SP`, `CE`, `ER`, `ST`),
//! the Rock Ridge ones (RRIP 1.12: `PX`, `PN`, `SL`, `NM`, `TF`) and
//! zisofs `ZF`. Deep directories are not relocated, so `RE`, `CL` and
//! `PL` are never written.

use rootforge_common::Result;
use rootforge_common::bytes::{RecordReader, RecordWriter};

use super::decode_with;

/// The 4-byte header every entry starts with.
pub(crate) const HEADER_LEN: usize = 4;
/// Bytes of a `CE` entry.
pub(crate) const CE_LEN: usize = HEADER_LEN + 24;

/// An entry as SUSP frames it (SUSP 5.1), its data not yet read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SystemUseEntry<'a> {
    /// Signature Word: the entry's type.
    pub(crate) signature_word: [u8; 2],
    /// System Use Entry Version; 1 for every entry here.
    pub(crate) system_use_entry_version: u8,
    /// The bytes after the header (LEN_SUE - 4 of them).
    pub(crate) data: &'a [u8],
}

/// The entries of a System Use field or continuation area, in order. The
/// walk ends at the first entry whose length is impossible, as Linux's
/// does (padding and garbage after the last entry are not entries).
pub(crate) fn entries(area: &[u8]) -> impl Iterator<Item = SystemUseEntry<'_>> {
    let mut rest = area;
    std::iter::from_fn(move || {
        let mut r = RecordReader::new(rest);
        let signature_word = r.array()?;
        let len_sue = usize::from(r.u8()?);
        let system_use_entry_version = r.u8()?;
        let data = r.bytes(len_sue.checked_sub(HEADER_LEN)?)?;
        rest = r.rest();
        Some(SystemUseEntry {
            signature_word,
            system_use_entry_version,
            data,
        })
    })
}

/// One entry type: its signature and how its data is laid out.
pub(crate) trait Entry<'a>: Sized {
    /// Signature Word.
    const SIGNATURE: [u8; 2];
    /// The entry's name in errors.
    const NAME: &'static str;

    /// Bytes of data after the header; at most 251.
    fn data_len(&self) -> usize;
    /// Appends the data.
    fn write_data(&self, w: &mut RecordWriter);
    /// Reads the data.
    fn read_data(r: &mut RecordReader<'a>) -> Option<Self>;

    /// The whole entry: header (LEN_SUE, version 1) and data. Callers
    /// keep the data within 251 bytes.
    fn encode(&self) -> Vec<u8> {
        let len_sue = HEADER_LEN + self.data_len();
        let mut w = RecordWriter::with_capacity(len_sue);
        w.bytes(&Self::SIGNATURE)
            .u8(u8::try_from(len_sue).unwrap_or(u8::MAX))
            .u8(1);
        self.write_data(&mut w);
        w.into_bytes()
    }

    /// Reads the entry's data; `at` is the byte of the image its record
    /// starts at.
    fn decode(e: &SystemUseEntry<'a>, at: u64) -> Result<Self> {
        decode_with(e.data, at, Self::NAME, Self::read_data)
    }
}

/// `SP` (SUSP 5.3): in the root's `.` record, says SUSP is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sp {
    /// Check Bytes; 0xBE 0xEF.
    pub(crate) check_bytes: [u8; 2],
    /// LEN_SKP: bytes to skip at the start of every other System Use
    /// field.
    pub(crate) len_skp: u8,
}

impl Entry<'_> for Sp {
    const SIGNATURE: [u8; 2] = *b"SP";
    const NAME: &'static str = "SUSP SP entry";

    fn data_len(&self) -> usize {
        3
    }

    fn write_data(&self, w: &mut RecordWriter) {
        w.bytes(&self.check_bytes).u8(self.len_skp);
    }

    fn read_data(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(Sp {
            check_bytes: r.array()?,
            len_skp: r.u8()?,
        })
    }
}

/// `CE` (SUSP 5.1): the entries continue in a continuation area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ce {
    /// Block Location of Continuation Area.
    pub(crate) block_location: u32,
    /// Offset to Start of Continuation Area, within that block.
    pub(crate) offset: u32,
    /// Length of the Continuation Area in bytes.
    pub(crate) length: u32,
}

impl Entry<'_> for Ce {
    const SIGNATURE: [u8; 2] = *b"CE";
    const NAME: &'static str = "SUSP CE entry";

    fn data_len(&self) -> usize {
        CE_LEN - HEADER_LEN
    }

    fn write_data(&self, w: &mut RecordWriter) {
        w.both32(self.block_location)
            .both32(self.offset)
            .both32(self.length);
    }

    fn read_data(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(Ce {
            block_location: r.both32()?,
            offset: r.both32()?,
            length: r.both32()?,
        })
    }
}

/// `ER` (SUSP 5.5): names an extension in use, in the root's `.` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Er<'a> {
    /// EXT_VER: the extension's version.
    pub(crate) ext_ver: u8,
    /// EXT_ID (LEN_ID bytes): the extension's identifier.
    pub(crate) ext_id: &'a [u8],
    /// EXT_DES (LEN_DES bytes): its description.
    pub(crate) ext_des: &'a [u8],
    /// EXT_SRC (LEN_SRC bytes): where its specification is found.
    pub(crate) ext_src: &'a [u8],
}

impl Er<'static> {
    /// Rock Ridge as xorriso names it (RRIP 1.10's identifier; 1.12's
    /// `PX` serial numbers are read by every reader either way).
    pub(crate) const RRIP_1991A: Self = Er {
        ext_ver: 1,
        ext_id: b"RRIP_1991A",
        ext_des: b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS",
        ext_src: b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.",
    };
}

fn len8(b: &[u8]) -> u8 {
    u8::try_from(b.len()).unwrap_or(u8::MAX)
}

impl<'a> Entry<'a> for Er<'a> {
    const SIGNATURE: [u8; 2] = *b"ER";
    const NAME: &'static str = "SUSP ER entry";

    fn data_len(&self) -> usize {
        4 + self.ext_id.len() + self.ext_des.len() + self.ext_src.len()
    }

    fn write_data(&self, w: &mut RecordWriter) {
        w.u8(len8(self.ext_id))
            .u8(len8(self.ext_des))
            .u8(len8(self.ext_src))
            .u8(self.ext_ver)
            .bytes(self.ext_id)
            .bytes(self.ext_des)
            .bytes(self.ext_src);
    }

    fn read_data(r: &mut RecordReader<'a>) -> Option<Self> {
        let (len_id, len_des, len_src) = (r.u8()?, r.u8()?, r.u8()?);
        Some(Er {
            ext_ver: r.u8()?,
            ext_id: r.bytes(usize::from(len_id))?,
            ext_des: r.bytes(usize::from(len_des))?,
            ext_src: r.bytes(usize::from(len_src))?,
        })
    }
}

/// `ST` (SUSP 5.4): no entries follow in this area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct St;

impl Entry<'_> for St {
    const SIGNATURE: [u8; 2] = *b"ST";
    const NAME: &'static str = "SUSP ST entry";

    fn data_len(&self) -> usize {
        0
    }

    fn write_data(&self, _: &mut RecordWriter) {}

    fn read_data(_: &mut RecordReader<'_>) -> Option<Self> {
        Some(St)
    }
}

/// `PX` (RRIP 4.1.1): POSIX file attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Px {
    /// POSIX File Mode (`st_mode`).
    pub(crate) file_mode: u32,
    /// POSIX File Links (`st_nlink`).
    pub(crate) file_links: u32,
    /// POSIX File User ID (`st_uid`).
    pub(crate) file_user_id: u32,
    /// POSIX File Group ID (`st_gid`).
    pub(crate) file_group_id: u32,
    /// POSIX File Serial Number (`st_ino`, RRIP 1.12; absent in 1.10),
    /// which hard links share.
    pub(crate) file_serial_number: Option<u32>,
}

impl Entry<'_> for Px {
    const SIGNATURE: [u8; 2] = *b"PX";
    const NAME: &'static str = "Rock Ridge PX entry";

    fn data_len(&self) -> usize {
        if self.file_serial_number.is_some() {
            40
        } else {
            32
        }
    }

    fn write_data(&self, w: &mut RecordWriter) {
        w.both32(self.file_mode)
            .both32(self.file_links)
            .both32(self.file_user_id)
            .both32(self.file_group_id);
        if let Some(serial) = self.file_serial_number {
            w.both32(serial);
        }
    }

    fn read_data(r: &mut RecordReader<'_>) -> Option<Self> {
        let mut px = Px {
            file_mode: r.both32()?,
            file_links: r.both32()?,
            file_user_id: r.both32()?,
            file_group_id: r.both32()?,
            file_serial_number: None,
        };
        if !r.rest().is_empty() {
            px.file_serial_number = Some(r.both32()?);
        }
        Some(px)
    }
}

/// `PN` (RRIP 4.1.2): a device's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pn {
    /// Dev_t High: the upper 32 bits.
    pub(crate) dev_t_high: u32,
    /// Dev_t Low: the lower 32 bits.
    pub(crate) dev_t_low: u32,
}

impl Pn {
    /// The entry for `major:minor`. The kernel reads `high == 0` with
    /// `low > 0xff` as a 16-bit `major << 8 | minor` and anything else as
    /// `MKDEV(high, low)`, while libarchive and libisofs read `high << 32 |
    /// low` as a glibc `dev_t`. The glibc form with `high == 0` satisfies
    /// both while the major fits in 12 bits and the minor in 8; otherwise
    /// the kernel's form wins, since the kernel is what mounts the image.
    pub(crate) fn from_device(major: u32, minor: u32) -> Self {
        let (dev_t_high, dev_t_low) =
            if major < 0x1000 && (minor < 0x100 || major == 0) && minor < 0x10_0000 {
                (0, (major << 8) | (minor & 0xff) | ((minor & !0xff) << 12))
            } else {
                (major, minor)
            };
        Pn {
            dev_t_high,
            dev_t_low,
        }
    }

    /// `(major, minor)` as [`Pn::from_device`] encodes them (and the
    /// kernel reads them, for minors under 256).
    pub(crate) fn device(&self) -> (u32, u32) {
        let (high, low) = (self.dev_t_high, self.dev_t_low);
        if high == 0 {
            ((low >> 8) & 0xfff, (low & 0xff) | ((low >> 12) & 0xf_ff00))
        } else {
            (high, low)
        }
    }
}

impl Entry<'_> for Pn {
    const SIGNATURE: [u8; 2] = *b"PN";
    const NAME: &'static str = "Rock Ridge PN entry";

    fn data_len(&self) -> usize {
        16
    }

    fn write_data(&self, w: &mut RecordWriter) {
        w.both32(self.dev_t_high).both32(self.dev_t_low);
    }

    fn read_data(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(Pn {
            dev_t_high: r.both32()?,
            dev_t_low: r.both32()?,
        })
    }
}

/// `SL` and `NM` flag: the value continues in the next entry (`SL`,
/// `NM`) or component record (`SL` components).
pub(crate) const CONTINUE: u8 = 0x01;
/// `SL` component flag: the component is `.`.
pub(crate) const CURRENT: u8 = 0x02;
/// `SL` component flag: the component is `..`.
pub(crate) const PARENT: u8 = 0x04;
/// `SL` component flag: the component is the root `/`.
pub(crate) const ROOT: u8 = 0x08;

/// A component record of an `SL` entry (RRIP 4.1.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Component<'a> {
    /// Component Flags: [`CONTINUE`], [`CURRENT`], [`PARENT`], [`ROOT`].
    pub(crate) component_flags: u8,
    /// Component Content (LEN_CP bytes).
    pub(crate) component_content: &'a [u8],
}

/// `SL` (RRIP 4.1.3): a symbolic link's target, as components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sl<'a> {
    /// Flags: [`CONTINUE`] when the target goes on in the next `SL`.
    pub(crate) flags: u8,
    /// Component Area.
    pub(crate) components: Vec<Component<'a>>,
}

/// Room for components in one `SL` entry: 255 less the header and flags.
const SL_ROOM: usize = 250;
/// The longest piece of one component in a component record.
const COMPONENT_MAX: usize = 247;

impl<'a> Sl<'a> {
    /// `SL` entries for a symlink target. Components longer than fit are
    /// split with the component [`CONTINUE`] flag; entries that run out of
    /// room end with the entry [`CONTINUE`] flag.
    pub(crate) fn for_target(target: &'a [u8]) -> Vec<Self> {
        let mut comps: Vec<Component<'a>> = Vec::new();
        let comp = |component_flags, component_content| Component {
            component_flags,
            component_content,
        };
        let rest = match target.strip_prefix(b"/") {
            Some(r) => {
                comps.push(comp(ROOT, &[]));
                r
            }
            None => target,
        };
        if !rest.is_empty() || comps.is_empty() {
            for part in rest.split(|&b| b == b'/') {
                match part {
                    b"." => comps.push(comp(CURRENT, &[])),
                    b".." => comps.push(comp(PARENT, &[])),
                    p if p.is_empty() => comps.push(comp(0, p)),
                    p => {
                        let mut pieces = p.chunks(COMPONENT_MAX).peekable();
                        while let Some(piece) = pieces.next() {
                            let more = pieces.peek().is_some();
                            comps.push(comp(u8::from(more) * CONTINUE, piece));
                        }
                    }
                }
            }
        }
        let mut out = vec![Sl {
            flags: 0,
            components: Vec::new(),
        }];
        for c in comps {
            let need = 2 + c.component_content.len();
            if let Some(last) = out.last_mut()
                && !last.components.is_empty()
                && last.data_len() + need > SL_ROOM
            {
                last.flags = CONTINUE;
                out.push(Sl {
                    flags: 0,
                    components: Vec::new(),
                });
            }
            if let Some(last) = out.last_mut() {
                last.components.push(c);
            }
        }
        out
    }
}

impl<'a> Entry<'a> for Sl<'a> {
    const SIGNATURE: [u8; 2] = *b"SL";
    const NAME: &'static str = "Rock Ridge SL entry";

    fn data_len(&self) -> usize {
        1 + self
            .components
            .iter()
            .map(|c| 2 + c.component_content.len())
            .sum::<usize>()
    }

    fn write_data(&self, w: &mut RecordWriter) {
        w.u8(self.flags);
        for c in &self.components {
            w.u8(c.component_flags)
                .u8(len8(c.component_content))
                .bytes(c.component_content);
        }
    }

    fn read_data(r: &mut RecordReader<'a>) -> Option<Self> {
        let flags = r.u8()?;
        let mut components = Vec::new();
        while !r.rest().is_empty() {
            let component_flags = r.u8()?;
            let len_cp = usize::from(r.u8()?);
            components.push(Component {
                component_flags,
                component_content: r.bytes(len_cp)?,
            });
        }
        Some(Sl { flags, components })
    }
}

/// `NM` (RRIP 4.1.4): the file's POSIX name, or part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Nm<'a> {
    /// Flags: [`CONTINUE`]; also `CURRENT` (2) and `PARENT` (4), which
    /// name `.` and `..` and carry no content.
    pub(crate) flags: u8,
    /// Name Content.
    pub(crate) name_content: &'a [u8],
}

/// The longest name part in one `NM` entry.
const NM_MAX: usize = 250;

impl<'a> Nm<'a> {
    /// `NM` entries for a name, split with [`CONTINUE`].
    pub(crate) fn for_name(name: &'a [u8]) -> Vec<Self> {
        let mut parts = name.chunks(NM_MAX).peekable();
        let mut out = Vec::new();
        while let Some(name_content) = parts.next() {
            let more = parts.peek().is_some();
            out.push(Nm {
                flags: u8::from(more) * CONTINUE,
                name_content,
            });
        }
        out
    }
}

impl<'a> Entry<'a> for Nm<'a> {
    const SIGNATURE: [u8; 2] = *b"NM";
    const NAME: &'static str = "Rock Ridge NM entry";

    fn data_len(&self) -> usize {
        1 + self.name_content.len()
    }

    fn write_data(&self, w: &mut RecordWriter) {
        w.u8(self.flags).bytes(self.name_content);
    }

    fn read_data(r: &mut RecordReader<'a>) -> Option<Self> {
        Some(Nm {
            flags: r.u8()?,
            name_content: r.rest(),
        })
    }
}

/// `TF` flag: a creation time is recorded.
pub(crate) const TF_CREATION: u8 = 0x01;
/// `TF` flag: a modification time is recorded.
pub(crate) const TF_MODIFY: u8 = 0x02;
/// `TF` flag: an access time is recorded.
pub(crate) const TF_ACCESS: u8 = 0x04;
/// `TF` flag: an attribute change time is recorded.
pub(crate) const TF_ATTRIBUTES: u8 = 0x08;
/// `TF` flag: times are in the 17-byte form, not the 7-byte one.
pub(crate) const TF_LONG_FORM: u8 = 0x80;

/// `TF` (RRIP 4.1.6): time stamps, in flag order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tf<'a> {
    /// Flags: which times follow, and their form.
    pub(crate) flags: u8,
    /// Time Stamps, one per flag bit 0..=6 that is set.
    pub(crate) time_stamps: &'a [u8],
}

impl<'a> Tf<'a> {
    /// Bytes of one stamp.
    fn stamp_len(flags: u8) -> usize {
        if flags & TF_LONG_FORM != 0 { 17 } else { 7 }
    }

    /// The modification time's bytes, if recorded: after the creation
    /// time when that is present.
    pub(crate) fn modify(&self) -> Option<&'a [u8]> {
        if self.flags & TF_MODIFY == 0 {
            return None;
        }
        let step = Self::stamp_len(self.flags);
        let at = step * usize::from(self.flags & TF_CREATION);
        self.time_stamps.get(at..at + step)
    }
}

impl<'a> Entry<'a> for Tf<'a> {
    const SIGNATURE: [u8; 2] = *b"TF";
    const NAME: &'static str = "Rock Ridge TF entry";

    fn data_len(&self) -> usize {
        1 + self.time_stamps.len()
    }

    fn write_data(&self, w: &mut RecordWriter) {
        w.u8(self.flags).bytes(self.time_stamps);
    }

    fn read_data(r: &mut RecordReader<'a>) -> Option<Self> {
        let flags = r.u8()?;
        let count = (flags & 0x7F).count_ones() as usize;
        Some(Tf {
            flags,
            time_stamps: r.bytes(count * Self::stamp_len(flags))?,
        })
    }
}

/// `ZF` (zisofs, as mkzftree and Linux define it): the file's data is
/// compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Zf {
    /// Algorithm; `pz` is zisofs.
    pub(crate) algorithm: [u8; 2],
    /// Header Size Div 4: the zisofs file header's length / 4.
    pub(crate) header_size_div_4: u8,
    /// Log2 of Block Size.
    pub(crate) log2_of_block_size: u8,
    /// Uncompressed Size in bytes.
    pub(crate) uncompressed_size: u32,
}

impl Zf {
    /// The zisofs algorithm.
    pub(crate) const ZISOFS: [u8; 2] = *b"pz";
}

impl Entry<'_> for Zf {
    const SIGNATURE: [u8; 2] = *b"ZF";
    const NAME: &'static str = "zisofs ZF entry";

    fn data_len(&self) -> usize {
        12
    }

    fn write_data(&self, w: &mut RecordWriter) {
        w.bytes(&self.algorithm)
            .u8(self.header_size_div_4)
            .u8(self.log2_of_block_size)
            .both32(self.uncompressed_size);
    }

    fn read_data(r: &mut RecordReader<'_>) -> Option<Self> {
        Some(Zf {
            algorithm: r.array()?,
            header_size_div_4: r.u8()?,
            log2_of_block_size: r.u8()?,
            uncompressed_size: r.both32()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `e` and reads it back through the entry walk.
    fn round_trip<'a, E: Entry<'a> + PartialEq + std::fmt::Debug>(e: &E, bytes: &'a [u8]) {
        assert_eq!(bytes.len(), HEADER_LEN + e.data_len());
        let all: Vec<_> = entries(bytes).collect();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].signature_word, E::SIGNATURE);
        assert_eq!(all[0].system_use_entry_version, 1);
        assert_eq!(&E::decode(&all[0], 0).unwrap(), e);
        let cut = SystemUseEntry {
            data: &all[0].data[..all[0].data.len().saturating_sub(1)],
            ..all[0]
        };
        if !all[0].data.is_empty() && E::SIGNATURE != *b"NM" {
            assert!(E::decode(&cut, 0).is_err(), "{:?}", E::SIGNATURE);
        }
    }

    #[test]
    fn entries_round_trip() {
        let sp = Sp {
            check_bytes: [0xBE, 0xEF],
            len_skp: 0,
        };
        round_trip(&sp, &sp.encode());
        let ce = Ce {
            block_location: 30,
            offset: 100,
            length: 200,
        };
        assert_eq!(ce.encode().len(), CE_LEN);
        round_trip(&ce, &ce.encode());
        let er = Er::RRIP_1991A;
        round_trip(&er, &er.encode());
        round_trip(&St, &St.encode());
        let px = Px {
            file_mode: 0o100644,
            file_links: 2,
            file_user_id: 1000,
            file_group_id: 100,
            file_serial_number: Some(7),
        };
        round_trip(&px, &px.encode());
        let old = Px {
            file_serial_number: None,
            ..px
        };
        round_trip(&old, &old.encode());
        let pn = Pn::from_device(8, 1);
        round_trip(&pn, &pn.encode());
        let t = [1u8; 7].repeat(3);
        let tf = Tf {
            flags: TF_MODIFY | TF_ACCESS | TF_ATTRIBUTES,
            time_stamps: &t,
        };
        round_trip(&tf, &tf.encode());
        let zf = Zf {
            algorithm: Zf::ZISOFS,
            header_size_div_4: 4,
            log2_of_block_size: 15,
            uncompressed_size: 123_456,
        };
        round_trip(&zf, &zf.encode());
        for nm in Nm::for_name(&[b'n'; 300]) {
            round_trip(&nm, &nm.encode());
        }
        for sl in Sl::for_target(b"/usr/../lib/./x") {
            round_trip(&sl, &sl.encode());
        }
    }

    #[test]
    fn device_numbers_follow_the_kernel() {
        for (ma, mi) in [
            (5, 1),
            (8, 0),
            (4095, 255),
            (0, 300),
            (8, 256),
            (259, 70000),
        ] {
            let pn = Pn::from_device(ma, mi);
            assert_eq!(pn.device(), (ma, mi));
            if mi >= 256 && ma != 0 {
                assert_eq!(
                    (pn.dev_t_high, pn.dev_t_low),
                    (ma, mi),
                    "the kernel reads MKDEV(high, low)"
                );
            }
        }
        let e = Pn::from_device(5, 1).encode();
        assert_eq!(&e[4..20], &[0, 0, 0, 0, 0, 0, 0, 0, 1, 5, 0, 0, 0, 0, 5, 1]);
    }

    #[test]
    fn symlink_components() {
        let e = Sl::for_target(b"/a/../b/")[0].encode();
        assert_eq!(e[4..], [0, 8, 0, 0, 1, b'a', 4, 0, 0, 1, b'b', 0, 0][..]);
        let long = vec![b'x'; 600];
        let e: Vec<Vec<u8>> = Sl::for_target(&long).iter().map(Sl::encode).collect();
        assert!(e.iter().all(|e| e.len() <= 255));
        assert_eq!(e.len(), 3);
        assert_eq!(e[0][4], 1, "entry continues");
        assert_eq!(e[0][5], 1, "component continues");
    }

    #[test]
    fn the_walk_stops_at_an_impossible_length() {
        let mut area = Px {
            file_mode: 1,
            file_links: 1,
            file_user_id: 0,
            file_group_id: 0,
            file_serial_number: None,
        }
        .encode();
        area.extend_from_slice(&[b'N', b'M', 2, 1, 0]);
        area.extend_from_slice(&[b'N', b'M', 200, 1, 0]);
        let sigs: Vec<[u8; 2]> = entries(&area).map(|e| e.signature_word).collect();
        assert_eq!(sigs, [*b"PX"]);
    }
}
