//! The U-Boot legacy image wrapper Buildroot puts around a cpio archive
//! (`rootfs.cpio.uboot`): a 64-byte big-endian header, then the payload as
//! is. The bytes match `mkimage -A <arch> -T ramdisk -C none -d <payload>`
//! given the same time (mkimage takes it from `SOURCE_DATE_EPOCH`).

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::str::FromStr;

/// `IH_MAGIC`.
pub const MAGIC: u32 = 0x2705_1956;
/// The header length.
pub const HEADER_LEN: usize = 64;
/// `IH_OS_LINUX`.
const OS_LINUX: u8 = 5;
/// `IH_TYPE_RAMDISK`.
const TYPE_RAMDISK: u8 = 3;
/// `IH_COMP_NONE`: Buildroot says "none" even for a gzipped cpio.
const COMP_NONE: u8 = 0;

/// A CPU architecture as `mkimage -A` names it (Buildroot's
/// `MKIMAGE_ARCH`: the kernel's arch name, with i386 and x86_64 as `x86`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UimageArch {
    Alpha,
    Arc,
    Arm,
    Arm64,
    Avr32,
    Blackfin,
    Ia64,
    M68k,
    Microblaze,
    Mips,
    Mips64,
    Nds32,
    Nios2,
    Or1k,
    Powerpc,
    Riscv,
    S390,
    Sandbox,
    Sh,
    Sparc,
    Sparc64,
    X86,
    X86_64,
    Xtensa,
}

impl UimageArch {
    /// Every architecture mkimage knows.
    pub const ALL: [UimageArch; 24] = [
        UimageArch::Alpha,
        UimageArch::Arc,
        UimageArch::Arm,
        UimageArch::Arm64,
        UimageArch::Avr32,
        UimageArch::Blackfin,
        UimageArch::Ia64,
        UimageArch::M68k,
        UimageArch::Microblaze,
        UimageArch::Mips,
        UimageArch::Mips64,
        UimageArch::Nds32,
        UimageArch::Nios2,
        UimageArch::Or1k,
        UimageArch::Powerpc,
        UimageArch::Riscv,
        UimageArch::S390,
        UimageArch::Sandbox,
        UimageArch::Sh,
        UimageArch::Sparc,
        UimageArch::Sparc64,
        UimageArch::X86,
        UimageArch::X86_64,
        UimageArch::Xtensa,
    ];

    /// The name `mkimage -A` takes.
    pub fn name(self) -> &'static str {
        self.entry().0
    }

    /// U-Boot's `IH_ARCH_*` number.
    pub fn code(self) -> u8 {
        self.entry().1
    }

    fn entry(self) -> (&'static str, u8) {
        match self {
            UimageArch::Alpha => ("alpha", 1),
            UimageArch::Arm => ("arm", 2),
            UimageArch::X86 => ("x86", 3),
            UimageArch::Ia64 => ("ia64", 4),
            UimageArch::Mips => ("mips", 5),
            UimageArch::Mips64 => ("mips64", 6),
            UimageArch::Powerpc => ("powerpc", 7),
            UimageArch::S390 => ("s390", 8),
            UimageArch::Sh => ("sh", 9),
            UimageArch::Sparc => ("sparc", 10),
            UimageArch::Sparc64 => ("sparc64", 11),
            UimageArch::M68k => ("m68k", 12),
            UimageArch::Microblaze => ("microblaze", 14),
            UimageArch::Nios2 => ("nios2", 15),
            UimageArch::Blackfin => ("blackfin", 16),
            UimageArch::Avr32 => ("avr32", 17),
            UimageArch::Sandbox => ("sandbox", 19),
            UimageArch::Nds32 => ("nds32", 20),
            UimageArch::Or1k => ("or1k", 21),
            UimageArch::Arm64 => ("arm64", 22),
            UimageArch::Arc => ("arc", 23),
            UimageArch::X86_64 => ("x86_64", 24),
            UimageArch::Xtensa => ("xtensa", 25),
            UimageArch::Riscv => ("riscv", 26),
        }
    }
}

impl fmt::Display for UimageArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name given to [`UimageArch::from_str`] is not one mkimage knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown U-Boot architecture {0:?} (mkimage -A takes e.g. arm, arm64, x86, mips, powerpc, riscv)"
)]
pub struct UnknownArch(pub String);

impl FromStr for UimageArch {
    type Err = UnknownArch;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // mkimage also spells PowerPC "ppc".
        if s == "ppc" {
            return Ok(UimageArch::Powerpc);
        }
        UimageArch::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownArch(s.to_owned()))
    }
}

/// The fields of a ramdisk header that vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UimageHeader {
    pub time: u32,
    pub size: u32,
    pub data_crc: u32,
    pub arch: UimageArch,
}

impl UimageHeader {
    /// The 64 header bytes, with the header CRC computed over them with its
    /// own field zeroed.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        h[8..12].copy_from_slice(&self.time.to_be_bytes());
        h[12..16].copy_from_slice(&self.size.to_be_bytes());
        // Load address and entry point stay 0.
        h[24..28].copy_from_slice(&self.data_crc.to_be_bytes());
        h[28] = OS_LINUX;
        h[29] = self.arch.code();
        h[30] = TYPE_RAMDISK;
        h[31] = COMP_NONE;
        // The 32-byte name stays empty.
        let hcrc = crc32fast::hash(&h);
        h[4..8].copy_from_slice(&hcrc.to_be_bytes());
        h
    }
}

/// Writes `payload` (read to its end from its start) wrapped in a ramdisk
/// uImage header to `out`; returns the bytes written. The payload is read
/// twice, once for its CRC and once to copy it, so it need not fit in
/// memory. Fails, as mkimage does, on an empty payload; and on one of 4 GiB
/// or more, or one that changes between the passes.
pub fn write_uimage<R: Read + Seek + ?Sized>(
    payload: &mut R,
    time: u32,
    arch: UimageArch,
    out: &mut dyn Write,
) -> io::Result<u64> {
    payload.seek(SeekFrom::Start(0))?;
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size: u64 = 0;
    loop {
        let n = match payload.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        crc.update(&buf[..n]);
        size = size
            .checked_add(u64::try_from(n).map_err(io::Error::other)?)
            .ok_or_else(|| io::Error::other("payload size overflows"))?;
    }
    if size == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the uImage payload is empty (mkimage refuses that too)",
        ));
    }
    let size32 = u32::try_from(size).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "payload is {size} bytes, but a legacy uImage holds at most {}",
                u32::MAX
            ),
        )
    })?;
    let header = UimageHeader {
        time,
        size: size32,
        data_crc: crc.finalize(),
        arch,
    };
    out.write_all(&header.to_bytes())?;
    payload.seek(SeekFrom::Start(0))?;
    let copied = io::copy(&mut payload.take(size), out)?;
    if copied != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "payload shrank while it was being wrapped",
        ));
    }
    u64::try_from(HEADER_LEN)
        .ok()
        .and_then(|h| h.checked_add(size))
        .ok_or_else(|| io::Error::other("image size overflows"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn be32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn header_fields_and_crcs() {
        let payload = b"070701 some cpio bytes".to_vec();
        let mut out = Vec::new();
        let n = write_uimage(
            &mut Cursor::new(&payload),
            1_700_000_000,
            UimageArch::Arm,
            &mut out,
        )
        .unwrap();
        assert_eq!(n, 64 + payload.len() as u64);
        assert_eq!(out.len(), 64 + payload.len());
        assert_eq!(be32(&out, 0), MAGIC);
        assert_eq!(be32(&out, 8), 1_700_000_000);
        assert_eq!(be32(&out, 12), payload.len() as u32);
        assert_eq!(be32(&out, 16), 0);
        assert_eq!(be32(&out, 20), 0);
        assert_eq!(be32(&out, 24), crc32fast::hash(&payload));
        assert_eq!(&out[28..32], &[5, 2, 3, 0]);
        assert!(out[32..64].iter().all(|&b| b == 0));
        assert_eq!(&out[64..], &payload[..]);
        let mut zeroed = out[..64].to_vec();
        zeroed[4..8].fill(0);
        assert_eq!(be32(&out, 4), crc32fast::hash(&zeroed));
    }

    #[test]
    fn same_bytes_as_mkimage() {
        // `printf x > one; SOURCE_DATE_EPOCH=0 mkimage -A x86 -T ramdisk
        // -C none -d one one.uboot` (U-Boot tools 2023.01).
        let expected: [u8; 65] = [
            0x27, 0x05, 0x19, 0x56, 0x07, 0xaf, 0x8e, 0xeb, 0, 0, 0, 0, 0, 0, 0, 1, //
            0, 0, 0, 0, 0, 0, 0, 0, 0x8c, 0xdc, 0x16, 0x83, 5, 3, 3, 0, //
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
            b'x',
        ];
        let mut out = Vec::new();
        write_uimage(&mut Cursor::new(b"x"), 0, UimageArch::X86, &mut out).unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn empty_payload_is_refused_like_mkimage() {
        let err =
            write_uimage(&mut Cursor::new(b""), 0, UimageArch::Arm, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn arch_names_round_trip() {
        for arch in UimageArch::ALL {
            assert_eq!(arch.name().parse::<UimageArch>().unwrap(), arch);
            assert_eq!(arch.to_string(), arch.name());
        }
        assert_eq!("ppc".parse::<UimageArch>().unwrap(), UimageArch::Powerpc);
        assert!("aarch64".parse::<UimageArch>().is_err());
        let mut codes: Vec<u8> = UimageArch::ALL.iter().map(|a| a.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), UimageArch::ALL.len());
    }

    #[test]
    fn payload_is_read_from_its_start() {
        let mut cur = Cursor::new(b"abcdef".to_vec());
        cur.set_position(3);
        let mut out = Vec::new();
        write_uimage(&mut cur, 7, UimageArch::Riscv, &mut out).unwrap();
        assert_eq!(&out[64..], b"abcdef");
        assert_eq!(out[29], 26);
    }
}
