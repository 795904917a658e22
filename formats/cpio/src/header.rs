//! The 110-byte ASCII header shared by the newc and crc formats.

/// Length of a header: a 6-byte magic and 13 fields of 8 hex digits.
pub(crate) const HEADER_LEN: usize = 110;

const MAGIC_LEN: usize = 6;
const FIELDS: usize = 13;

/// The variant of the SVR4 "new ASCII" format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CpioFormat {
    /// `070701`: no checksums. What `cpio -H newc` and the kernel build write.
    #[default]
    Newc,
    /// `070702`: each regular file carries the 32-bit sum of its bytes, which
    /// the kernel's unpacker verifies.
    Crc,
}

impl CpioFormat {
    pub(crate) const fn magic(self) -> &'static [u8; MAGIC_LEN] {
        match self {
            CpioFormat::Newc => b"070701",
            CpioFormat::Crc => b"070702",
        }
    }

    fn from_magic(magic: &[u8]) -> Option<Self> {
        match magic {
            b"070701" => Some(CpioFormat::Newc),
            b"070702" => Some(CpioFormat::Crc),
            _ => None,
        }
    }
}

/// Whether `head` starts with a newc or crc header magic.
pub fn is_cpio(head: &[u8]) -> bool {
    head.get(..MAGIC_LEN)
        .is_some_and(|m| CpioFormat::from_magic(m).is_some())
}

/// The header fields, in on-disk order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub filesize: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    /// Length of the name including its terminating NUL.
    pub namesize: u32,
    /// Byte sum of the data in the crc format, 0 in newc.
    pub check: u32,
}

impl Header {
    fn fields(&self) -> [u32; FIELDS] {
        [
            self.ino,
            self.mode,
            self.uid,
            self.gid,
            self.nlink,
            self.mtime,
            self.filesize,
            self.dev_major,
            self.dev_minor,
            self.rdev_major,
            self.rdev_minor,
            self.namesize,
            self.check,
        ]
    }

    /// The header bytes, with hex digits in upper case as GNU cpio and
    /// `gen_init_cpio` write them.
    pub(crate) fn encode(&self, format: CpioFormat) -> [u8; HEADER_LEN] {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut out = [0u8; HEADER_LEN];
        out[..MAGIC_LEN].copy_from_slice(format.magic());
        for (field, chunk) in self
            .fields()
            .into_iter()
            .zip(out[MAGIC_LEN..].chunks_exact_mut(8))
        {
            for (i, digit) in chunk.iter_mut().enumerate() {
                let shift = 28 - 4 * i;
                *digit = HEX[((field >> shift) & 0xf) as usize];
            }
        }
        out
    }

    /// Parses a header; the error is the reason it is not one.
    pub(crate) fn decode(bytes: &[u8; HEADER_LEN]) -> Result<(CpioFormat, Header), String> {
        let (magic, rest) = bytes.split_at(MAGIC_LEN);
        let format = CpioFormat::from_magic(magic).ok_or_else(|| match magic {
            b"070707" => "odc (070707) cpio: only newc and crc are supported".to_owned(),
            _ => format!(
                "no newc/crc magic (found {:?})",
                String::from_utf8_lossy(magic)
            ),
        })?;
        let mut f = [0u32; FIELDS];
        for (i, (chunk, value)) in rest.chunks_exact(8).zip(&mut f).enumerate() {
            *value = parse_hex(chunk).ok_or_else(|| {
                format!(
                    "field {i} is not 8 hex digits: {:?}",
                    String::from_utf8_lossy(chunk)
                )
            })?;
        }
        let [
            ino,
            mode,
            uid,
            gid,
            nlink,
            mtime,
            filesize,
            dev_major,
            dev_minor,
            rdev_major,
            rdev_minor,
            namesize,
            check,
        ] = f;
        Ok((
            format,
            Header {
                ino,
                mode,
                uid,
                gid,
                nlink,
                mtime,
                filesize,
                dev_major,
                dev_minor,
                rdev_major,
                rdev_minor,
                namesize,
                check,
            },
        ))
    }
}

fn parse_hex(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = char::from(d).to_digit(16)?;
        Some((acc << 4) | v)
    })
}

/// Bytes of zero padding that bring `pos` to a multiple of `align`.
pub(crate) const fn padding(pos: u64, align: u64) -> u64 {
    (align - pos % align) % align
}

/// The crc format's checksum: the wrapping 32-bit sum of the bytes.
pub(crate) fn byte_sum(seed: u32, data: &[u8]) -> u32 {
    data.iter()
        .fold(seed, |acc, &b| acc.wrapping_add(u32::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes() {
        let h = Header {
            ino: 1,
            mode: 0o100644,
            uid: 4_000_000_000,
            gid: 0xdead_beef,
            nlink: 2,
            mtime: u32::MAX,
            filesize: 513,
            dev_major: 0,
            dev_minor: 0,
            rdev_major: 4095,
            rdev_minor: 1_048_575,
            namesize: 5,
            check: 0x1234,
        };
        let bytes = h.encode(CpioFormat::Crc);
        assert_eq!(&bytes[..30], b"07070200000001000081A4EE6B2800");
        assert_eq!(Header::decode(&bytes), Ok((CpioFormat::Crc, h)));
        let mut lower = bytes;
        lower.make_ascii_lowercase();
        assert_eq!(Header::decode(&lower), Ok((CpioFormat::Crc, h)));
    }

    #[test]
    fn rejects_bad_magic_and_digits() {
        let mut bytes = Header::default().encode(CpioFormat::Newc);
        bytes[20] = b'g';
        assert!(Header::decode(&bytes).unwrap_err().contains("field 1"));
        bytes[..6].copy_from_slice(b"070707");
        assert!(Header::decode(&bytes).unwrap_err().contains("odc"));
        assert!(!is_cpio(b"07070"));
        assert!(is_cpio(b"070701"));
        assert!(is_cpio(b"070702xyz"));
        assert!(!is_cpio(b"070707"));
    }

    #[test]
    fn pads_and_sums() {
        assert_eq!(padding(0, 4), 0);
        assert_eq!(padding(113, 4), 3);
        assert_eq!(padding(512, 512), 0);
        assert_eq!(padding(513, 512), 511);
        assert_eq!(byte_sum(0, &[0xff; 3]), 0x2fd);
        assert_eq!(byte_sum(u32::MAX, &[2]), 1);
    }
}
