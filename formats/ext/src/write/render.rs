//! Inodes, the superblock and the journal superblock as bytes.

use rootforge_common::{Content, Time};

use crate::disk::{
    self, EXTENTS_FL, EXTRA_ISIZE, FIRST_INO, INCOMPAT_EXTENTS, INDEX_FL, JOURNAL_INO, LINK_MAX,
    RO_COMPAT_DIR_NLINK, RO_COMPAT_HUGE_FILE, RO_COMPAT_LARGE_FILE, RO_COMPAT_METADATA_CSUM,
    crc32c, put16, put32,
};

use super::emit::SbArgs;
use super::{Node, Placed, Plan, Prepared, Src};

impl Plan<'_> {
    pub(super) fn render_inode(
        &self,
        n: &Node<'_>,
        pl: &Placed,
        pr: &Prepared,
        journal_len: u64,
    ) -> Vec<u8> {
        let isz = usize::from(self.enc.inode_size());
        let f = &self.enc.features;
        let mut b = vec![0u8; isz];
        let (mode, uid, gid, mtime, size) = match n.src {
            Src::Journal => (
                0o100600,
                0,
                0,
                Time::from_secs(i64::from(self.fs_time)),
                journal_len * self.bs,
            ),
            Src::LostFound => (
                0o40700,
                0,
                0,
                Time::from_secs(i64::from(self.fs_time)),
                pr.blocks.len() as u64,
            ),
            Src::Tree(i) => {
                let size = match &i.content {
                    Content::File(d) => d.size(),
                    Content::Symlink(t) => t.len() as u64,
                    Content::Dir(_) => pr.blocks.len() as u64,
                    _ => 0,
                };
                (i.mode(), i.meta.uid, i.meta.gid, i.meta.mtime, size)
            }
        };
        let extra = isz > 128;
        let (t, t_extra) = encode_time(mtime, extra);
        put16(&mut b, 0, mode as u16);
        put16(&mut b, 2, uid as u16);
        put32(&mut b, 4, size as u32);
        put32(&mut b, 8, t);
        put32(&mut b, 0xC, t);
        put32(&mut b, 0x10, t);
        put16(&mut b, 0x18, gid as u16);
        let is_dir = mode & 0o170000 == 0o040000;
        let links = if is_dir && n.links > LINK_MAX && f.has_ro_compat(RO_COMPAT_DIR_NLINK) {
            1
        } else {
            n.links.min(LINK_MAX)
        };
        put16(&mut b, 0x1A, links as u16);
        let blocks: u64 = pl.runs.iter().map(|r| r.len).sum::<u64>()
            + pl.mapped.meta.len() as u64
            + u64::from(pl.xattr_block.is_some());
        let sectors = blocks * (self.bs / 512);
        put32(&mut b, 0x1C, sectors as u32);
        if f.has_ro_compat(RO_COMPAT_HUGE_FILE) {
            put16(&mut b, 0x74, (sectors >> 32) as u16);
        }
        let mut flags = 0;
        let has_map = match n.src {
            Src::Journal | Src::LostFound => true,
            Src::Tree(i) => match &i.content {
                Content::File(_) | Content::Dir(_) => true,
                Content::Symlink(t) => t.len() >= 60,
                _ => false,
            },
        };
        if has_map {
            if f.has_incompat(INCOMPAT_EXTENTS) {
                flags |= EXTENTS_FL;
            }
            b[0x28..0x28 + 60].copy_from_slice(&pl.mapped.i_block);
        } else if let Src::Tree(i) = n.src {
            match &i.content {
                Content::Symlink(t) => b[0x28..0x28 + t.len()].copy_from_slice(t),
                Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
                    if *major < 256 && *minor < 256 {
                        put32(&mut b, 0x28, (major << 8) | minor);
                    } else {
                        let dev = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
                        put32(&mut b, 0x2C, dev);
                    }
                }
                _ => {}
            }
        }
        if pr.htree {
            flags |= INDEX_FL;
        }
        put32(&mut b, 0x20, flags);
        if let Some(x) = pl.xattr_block {
            put32(&mut b, 0x68, x as u32);
        }
        put32(&mut b, 0x6C, (size >> 32) as u32);
        put16(&mut b, 0x78, (uid >> 16) as u16);
        put16(&mut b, 0x7A, (gid >> 16) as u16);
        if extra {
            put16(&mut b, 0x80, EXTRA_ISIZE);
            put32(&mut b, 0x84, t_extra);
            put32(&mut b, 0x88, t_extra);
            put32(&mut b, 0x8C, t_extra);
            put32(&mut b, 0x90, t);
            put32(&mut b, 0x94, t_extra);
            let at = 128 + usize::from(EXTRA_ISIZE);
            b[at..at + pr.xattr_area.len()].copy_from_slice(&pr.xattr_area);
        }
        if let Some(seed) = self.inode_seed(n.ino) {
            let crc = crc32c(seed, &b);
            put16(&mut b, 0x7C, crc as u16);
            if extra {
                put16(&mut b, 0x82, (crc >> 16) as u16);
            }
        }
        b
    }

    pub(super) fn superblock(&self, a: &SbArgs<'_>, group: u64) -> [u8; 1024] {
        let geo = a.geo;
        let f = &self.enc.features;
        let mut s = [0u8; 1024];
        let reserved = geo.blocks * u64::from(self.enc.reserved_percent) / 100;
        put32(&mut s, 0, geo.inodes() as u32);
        put32(&mut s, 4, geo.blocks as u32);
        put32(&mut s, 8, reserved as u32);
        put32(&mut s, 0xC, a.free_blocks as u32);
        put32(&mut s, 0x10, a.free_inodes as u32);
        put32(&mut s, 0x14, geo.first_data_block as u32);
        let log = (self.bs / 1024).trailing_zeros();
        put32(&mut s, 0x18, log);
        put32(&mut s, 0x1C, log);
        put32(&mut s, 0x20, geo.bpg as u32);
        put32(&mut s, 0x24, geo.bpg as u32);
        put32(&mut s, 0x28, geo.ipg);
        put32(&mut s, 0x30, self.fs_time);
        put16(&mut s, 0x36, 0xFFFF);
        put16(&mut s, 0x38, disk::SUPER_MAGIC);
        put16(&mut s, 0x3A, 1); // clean
        put16(&mut s, 0x3C, 1); // continue on errors
        put32(&mut s, 0x40, self.fs_time);
        put32(&mut s, 0x4C, 1); // dynamic revision
        put32(&mut s, 0x54, FIRST_INO);
        put16(&mut s, 0x58, self.enc.inode_size());
        put16(&mut s, 0x5A, group as u16);
        let mut ro = f.ro_compat;
        if self.large_file {
            ro |= RO_COMPAT_LARGE_FILE;
        }
        put32(&mut s, 0x5C, f.compat);
        put32(&mut s, 0x60, f.incompat & !disk::INCOMPAT_64BIT);
        put32(&mut s, 0x64, ro);
        s[0x68..0x78].copy_from_slice(&self.uuid);
        let label = self.enc.label.as_bytes();
        s[0x78..0x78 + label.len()].copy_from_slice(label);
        if let Some((iblock, size)) = a.journal {
            put32(&mut s, 0xE0, JOURNAL_INO);
            s[0xFD] = 1; // s_jnl_blocks holds a copy of i_block
            s[0x10C..0x10C + 60].copy_from_slice(&iblock);
            put32(&mut s, 0x10C + 60, (size >> 32) as u32);
            put32(&mut s, 0x10C + 64, size as u32);
        }
        for (i, w) in self.hash_seed.iter().enumerate() {
            put32(&mut s, 0xEC + 4 * i, *w);
        }
        s[0xFC] = 1; // half_md4
        put32(&mut s, 0x100, 0x0C); // user_xattr, acl
        put32(&mut s, 0x108, self.fs_time);
        if self.enc.inode_size() > 128 {
            put16(&mut s, 0x15C, EXTRA_ISIZE);
            put16(&mut s, 0x15E, EXTRA_ISIZE);
        }
        put32(&mut s, 0x160, 0x1); // directory hashes use signed chars
        if f.has_incompat(disk::INCOMPAT_FLEX_BG) {
            s[0x174] = 4; // 16 groups per flex group
        }
        if f.has_ro_compat(RO_COMPAT_METADATA_CSUM) {
            s[0x175] = 1; // crc32c
            let crc = crc32c(!0, &s[..0x3FC]);
            put32(&mut s, 0x3FC, crc);
        }
        s
    }

    /// A clean, empty jbd2 (version 2) superblock, big-endian.
    pub(super) fn journal_super(&self, len: u64) -> Vec<u8> {
        let mut j = vec![0u8; self.bs as usize];
        let mut be = |at: usize, v: u32| j[at..at + 4].copy_from_slice(&v.to_be_bytes());
        be(0, 0xC03B_3998);
        be(4, 4);
        be(0xC, self.bs as u32);
        be(0x10, len as u32);
        be(0x14, 1);
        be(0x18, 1);
        be(0x40, 1);
        j[0x30..0x40].copy_from_slice(&self.uuid);
        j
    }
}

/// Seconds and the `_extra` word (nanoseconds and two epoch bits).
fn encode_time(t: Time, extra: bool) -> (u32, u32) {
    if !extra {
        let s = t.sec.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        return (s as i32 as u32, 0);
    }
    let s = t
        .sec
        .clamp(i64::from(i32::MIN), (3i64 << 32) + i64::from(i32::MAX));
    let low = s as i32;
    let epoch = (((s - i64::from(low)) >> 32) & 3) as u32;
    (low as u32, (t.nsec.min(999_999_999) << 2) | epoch)
}
