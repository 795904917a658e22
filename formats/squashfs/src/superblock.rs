//! The 96-byte superblock, as the writer fills it in and the reader finds
//! it: one layout for both.

/// `hsqs`.
pub(crate) const MAGIC: u32 = 0x7371_7368;
pub(crate) const SUPERBLOCK_SIZE: usize = 96;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Superblock {
    pub(crate) inode_count: u32,
    pub(crate) mod_time: u32,
    pub(crate) block_size: u32,
    pub(crate) frag_count: u32,
    pub(crate) compressor: u16,
    /// log2 of `block_size`; the reader checks the two agree.
    pub(crate) block_log: u16,
    pub(crate) flags: u16,
    pub(crate) id_count: u16,
    pub(crate) version: (u16, u16),
    pub(crate) root: u64,
    pub(crate) bytes_used: u64,
    pub(crate) id_table: u64,
    pub(crate) xattr_table: u64,
    pub(crate) inode_table: u64,
    pub(crate) dir_table: u64,
    pub(crate) frag_table: u64,
    pub(crate) export_table: u64,
}

impl Superblock {
    pub(crate) fn encode(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        let words = [
            MAGIC,
            self.inode_count,
            self.mod_time,
            self.block_size,
            self.frag_count,
        ];
        for (i, v) in words.into_iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        let halves = [
            self.compressor,
            self.block_log,
            self.flags,
            self.id_count,
            self.version.0,
            self.version.1,
        ];
        for (i, v) in halves.into_iter().enumerate() {
            b[20 + i * 2..22 + i * 2].copy_from_slice(&v.to_le_bytes());
        }
        for (i, v) in self.tables().into_iter().enumerate() {
            b[32 + i * 8..40 + i * 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// The fields of `b`, if it is long enough and starts with the magic;
    /// nothing else is checked here.
    pub(crate) fn decode(b: &[u8]) -> Option<Superblock> {
        let b: &[u8; SUPERBLOCK_SIZE] = b.get(..SUPERBLOCK_SIZE)?.try_into().ok()?;
        let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let u64_at = |at: usize| u64::from(u32_at(at)) | u64::from(u32_at(at + 4)) << 32;
        (u32_at(0) == MAGIC).then(|| Superblock {
            inode_count: u32_at(4),
            mod_time: u32_at(8),
            block_size: u32_at(12),
            frag_count: u32_at(16),
            compressor: u16_at(20),
            block_log: u16_at(22),
            flags: u16_at(24),
            id_count: u16_at(26),
            version: (u16_at(28), u16_at(30)),
            root: u64_at(32),
            bytes_used: u64_at(40),
            id_table: u64_at(48),
            xattr_table: u64_at(56),
            inode_table: u64_at(64),
            dir_table: u64_at(72),
            frag_table: u64_at(80),
            export_table: u64_at(88),
        })
    }

    /// The eight 64-bit fields from `root` on, in their on-disk order.
    fn tables(&self) -> [u64; 8] {
        [
            self.root,
            self.bytes_used,
            self.id_table,
            self.xattr_table,
            self.inode_table,
            self.dir_table,
            self.frag_table,
            self.export_table,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_decode_agree() {
        let sb = Superblock {
            inode_count: 1,
            mod_time: 2,
            block_size: 1 << 17,
            frag_count: 3,
            compressor: 4,
            block_log: 17,
            flags: 0x0400,
            id_count: 5,
            version: (4, 0),
            root: 6,
            bytes_used: 7,
            id_table: 8,
            xattr_table: u64::MAX,
            inode_table: 9,
            dir_table: 10,
            frag_table: 11,
            export_table: 12,
        };
        let b = sb.encode();
        assert_eq!(&b[..4], b"hsqs");
        assert_eq!(b[28..32], [4, 0, 0, 0]);
        assert_eq!(Superblock::decode(&b), Some(sb));
        assert_eq!(Superblock::decode(&b[..95]), None);
        let mut bad = b;
        bad[0] = b'x';
        assert_eq!(Superblock::decode(&bad), None);
    }
}
