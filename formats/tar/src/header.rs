//! The 512-byte header block, shared by the reader and the writer: field
//! positions named as POSIX.1-2001 ("ustar Interchange Format") and GNU
//! tar's `tar.h` (`struct posix_header`, `struct oldgnu_header`,
//! `struct sparse_header`) name them, the numeric field encodings and the
//! checksum.

use std::ops::Range;

/// Header blocks, data and the end of the archive are counted in blocks.
pub(crate) const BLOCK: usize = 512;
/// [`BLOCK`] as a byte offset.
pub(crate) const BLOCK_U64: u64 = 512;

/// `struct posix_header` (ustar), shared by GNU's `oldgnu_header` up to
/// `devminor`.
pub(crate) mod ustar {
    use super::Range;

    /// `name[100]`: the member name, or its last part after `prefix`.
    pub(crate) const NAME: Range<usize> = 0..100;
    /// `mode[8]`: permission bits, octal.
    pub(crate) const MODE: Range<usize> = 100..108;
    /// `uid[8]`.
    pub(crate) const UID: Range<usize> = 108..116;
    /// `gid[8]`.
    pub(crate) const GID: Range<usize> = 116..124;
    /// `size[12]`: bytes of data after the header (for most types).
    pub(crate) const SIZE: Range<usize> = 124..136;
    /// `mtime[12]`: seconds since the epoch.
    pub(crate) const MTIME: Range<usize> = 136..148;
    /// `chksum[8]`: the sum of the header bytes, this field read as spaces.
    pub(crate) const CHKSUM: Range<usize> = 148..156;
    /// `typeflag`.
    pub(crate) const TYPEFLAG: usize = 156;
    /// `linkname[100]`: a symlink's target or a hard link's first name.
    pub(crate) const LINKNAME: Range<usize> = 157..257;
    /// `magic[6]`: `"ustar\0"` (POSIX) or `"ustar "` (GNU, with `version`
    /// `" \0"`).
    pub(crate) const MAGIC: Range<usize> = 257..263;
    /// `version[2]`: `"00"` for POSIX.
    pub(crate) const VERSION: Range<usize> = 263..265;
    /// `devmajor[8]`.
    pub(crate) const DEVMAJOR: Range<usize> = 329..337;
    /// `devminor[8]`.
    pub(crate) const DEVMINOR: Range<usize> = 337..345;
    /// `prefix[155]`: POSIX only; GNU uses these bytes for other fields.
    pub(crate) const PREFIX: Range<usize> = 345..500;
}

/// `struct oldgnu_header`: the old GNU sparse member (type `S`).
pub(crate) mod oldgnu {
    use super::Range;

    /// `sp[4]`: four `struct sparse` entries.
    pub(crate) const SP: Range<usize> = 386..482;
    /// `isextended`: a `sparse_header` block follows.
    pub(crate) const ISEXTENDED: usize = 482;
    /// `realsize[12]`: the file's size, holes included.
    pub(crate) const REALSIZE: Range<usize> = 483..495;
    /// `struct sparse_header`, the extension block: `sp[21]`.
    pub(crate) const EXT_SP: Range<usize> = 0..504;
    /// `sparse_header.isextended`: another extension block follows.
    pub(crate) const EXT_ISEXTENDED: usize = 504;
    /// `struct sparse`: `offset[12]` then `numbytes[12]`.
    pub(crate) const SPARSE_LEN: usize = 24;
}

/// POSIX magic and version.
pub(crate) const USTAR_MAGIC: &[u8; 6] = b"ustar\0";
/// GNU's magic and version together (`"ustar  \0"`).
pub(crate) const GNU_MAGIC: &[u8; 8] = b"ustar  \0";

/// One header block as read from an archive.
pub(crate) type Block = [u8; BLOCK];

/// The bytes before the first NUL.
pub(crate) fn cstr(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |n| &b[..n])
}

/// A tar numeric field: octal (space or NUL terminated) or GNU base-256.
pub(crate) fn numeric(field: &[u8]) -> Option<u64> {
    if let Some((&first, rest)) = field.split_first() {
        if first & 0x80 != 0 {
            if first & 0x40 != 0 {
                return None; // negative
            }
            let mut v = u64::from(first & 0x3f);
            for &b in rest {
                v = v.checked_mul(256)?.checked_add(u64::from(b))?;
            }
            return Some(v);
        }
    }
    let s = field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| b != 0 && b != b' ');
    let mut v = 0u64;
    for &b in s {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// A numeric field that may be negative (GNU base-256 with the sign bit,
/// used for mtimes before 1970).
pub(crate) fn signed_numeric(field: &[u8]) -> Option<i64> {
    if let Some((0xff, rest)) = field.split_first() {
        // Two's complement: -1 followed by the remaining bytes.
        let mut v: i64 = -1;
        for &b in rest {
            v = v.checked_mul(256)?.checked_add(i64::from(b))?;
        }
        return Some(v);
    }
    i64::try_from(numeric(field)?).ok()
}

/// The stored checksum and the computed one, if the stored field parses
/// and matches: the sum of the header's bytes with the checksum field read
/// as spaces, unsigned as POSIX says or signed as some old writers did.
pub(crate) fn checksum(h: &Block) -> Result<(), (Option<u64>, u64)> {
    let rest = || {
        h[..ustar::CHKSUM.start]
            .iter()
            .chain(&h[ustar::CHKSUM.end..])
    };
    let spaces = 8 * u64::from(b' ');
    let unsigned = rest().map(|&b| u64::from(b)).sum::<u64>() + spaces;
    let Some(stored) = numeric(&h[ustar::CHKSUM]) else {
        return Err((None, unsigned));
    };
    let signed = rest()
        .map(|&b| i64::from(i8::from_ne_bytes([b])))
        .sum::<i64>()
        + 8 * i64::from(b' ');
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        Err((Some(stored), unsigned))
    }
}

/// Whether `bytes` start with a tar header block: a valid checksum and
/// the POSIX, GNU or (empty) v7 magic. The all-zero block, which also
/// starts ext and ISO 9660 images, is not a header.
pub fn is_tar(bytes: &[u8]) -> bool {
    let Some(h) = bytes.first_chunk::<BLOCK>() else {
        return false;
    };
    let magic = &h[ustar::MAGIC.start..ustar::VERSION.end];
    let known =
        magic.starts_with(USTAR_MAGIC) || magic == GNU_MAGIC || magic.iter().all(|&b| b == 0);
    known && h.iter().any(|&b| b != 0) && checksum(h).is_ok()
}

/// The fields of one ustar header block to write. Names longer than their
/// field are cut (the caller has put the full one in a pax record).
#[derive(Debug)]
pub(crate) struct Ustar<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) prefix: &'a [u8],
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    pub(crate) mtime: u64,
    pub(crate) typeflag: u8,
    pub(crate) linkname: &'a [u8],
    /// Device numbers; `None` leaves the fields empty, as GNU tar does in
    /// extended headers.
    pub(crate) dev: Option<(u32, u32)>,
}

impl Ustar<'_> {
    /// The header block, checksum included.
    pub(crate) fn encode(&self) -> Block {
        let mut b = [0u8; BLOCK];
        put_bytes(&mut b[ustar::NAME], self.name);
        put_number(&mut b[ustar::MODE], u64::from(self.mode));
        put_number(&mut b[ustar::UID], u64::from(self.uid));
        put_number(&mut b[ustar::GID], u64::from(self.gid));
        put_number(&mut b[ustar::SIZE], self.size);
        put_number(&mut b[ustar::MTIME], self.mtime);
        b[ustar::TYPEFLAG] = self.typeflag;
        put_bytes(&mut b[ustar::LINKNAME], self.linkname);
        b[ustar::MAGIC].copy_from_slice(USTAR_MAGIC);
        b[ustar::VERSION].copy_from_slice(b"00");
        // uname and gname stay empty: owners are numeric.
        if let Some((major, minor)) = self.dev {
            put_number(&mut b[ustar::DEVMAJOR], u64::from(major));
            put_number(&mut b[ustar::DEVMINOR], u64::from(minor));
        }
        put_bytes(&mut b[ustar::PREFIX], self.prefix);
        // The sum is taken with the checksum field as spaces, and written as
        // six octal digits, a NUL and a space (at most 512 * 255 < 8^6).
        b[ustar::CHKSUM].fill(b' ');
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        put_octal(
            &mut b[ustar::CHKSUM.start..ustar::CHKSUM.end - 1],
            u64::from(sum),
        );
        b
    }
}

fn put_bytes(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
}

/// A numeric field: zero-padded octal digits and a NUL, or, for a value too
/// large for them, GNU's base-256 form (a 0x80 marker byte, then the value
/// big-endian), which GNU tar and libarchive read. The types of the fields
/// keep every value within the base-256 range.
fn put_number(field: &mut [u8], v: u64) {
    if !put_octal(field, v) {
        field.fill(0);
        if let Some((marker, rest)) = field.split_first_mut() {
            *marker = 0x80;
            for (slot, byte) in rest.iter_mut().rev().zip(v.to_be_bytes().into_iter().rev()) {
                *slot = byte;
            }
        }
    }
}

/// Writes `v` as `field.len() - 1` octal digits and a NUL; false when it
/// does not fit.
fn put_octal(field: &mut [u8], mut v: u64) -> bool {
    let Some((nul, digits)) = field.split_last_mut() else {
        return false;
    };
    *nul = 0;
    for d in digits.iter_mut().rev() {
        // One octal digit.
        *d = b'0' + u8::try_from(v & 7).unwrap_or(0);
        v >>= 3;
    }
    v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields() {
        assert_eq!(numeric(b"0000644\0"), Some(0o644));
        assert_eq!(numeric(b"   17 \0"), Some(0o17));
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(numeric(b"0009"), None);
        assert_eq!(signed_numeric(&[0xff; 12]), Some(-1));
        let mut f = [0u8; 12];
        put_number(&mut f, 1 << 40);
        assert_eq!(numeric(&f), Some(1 << 40));
    }

    #[test]
    fn is_tar_checks_the_checksum_and_magic() {
        let h = Ustar {
            name: b"a",
            prefix: b"",
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            typeflag: b'0',
            linkname: b"",
            dev: None,
        }
        .encode();
        assert!(is_tar(&h));
        assert!(!is_tar(&h[..511]));
        assert!(!is_tar(&[0; 1024]));
        let mut bad = h;
        bad[0] = b'b';
        assert!(!is_tar(&bad));
        // GNU magic, and v7 (no magic), with their checksums fixed.
        for magic in [&GNU_MAGIC[..], &[0; 8]] {
            let mut other = h;
            other[ustar::MAGIC.start..ustar::VERSION.end].copy_from_slice(magic);
            other[ustar::CHKSUM].fill(b' ');
            let sum: u32 = other.iter().map(|&x| u32::from(x)).sum();
            put_octal(&mut other[148..155], u64::from(sum));
            assert!(is_tar(&other));
        }
        let mut cpio = h;
        cpio[ustar::MAGIC].copy_from_slice(b"070701");
        assert!(!is_tar(&cpio));
    }
}
