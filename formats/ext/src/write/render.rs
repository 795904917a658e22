//! Inodes, the superblock and the journal superblock as bytes.

use rootforge_common::Content;
use rootforge_common::Time;
use rootforge_common::bytes::RecordWriter;

use crate::disk::{
    self, EXTENTS_FL, EXTRA_ISIZE, FIRST_INO, INCOMPAT_EXTENTS, INDEX_FL, JOURNAL_INO, LINK_MAX,
    RO_COMPAT_DIR_NLINK, RO_COMPAT_HUGE_FILE, RO_COMPAT_LARGE_FILE, RO_COMPAT_METADATA_CSUM,
    crc32c, hi16, hi32, lo16, lo32,
};
use crate::raw::Record;
use crate::raw::inode::{Ext4Inode, Ext4InodeExtra};
use crate::raw::journal::{JBD2_MAGIC_NUMBER, JBD2_SUPERBLOCK_V2, JournalSuperblock};
use crate::raw::superblock::SuperBlock;

use super::emit::SbArgs;
use super::{Node, Placed, Plan, Prepared, Src};

/// `s_default_mount_opts`: `user_xattr` and `acl`.
const DEFAULT_MOUNT_OPTS: u32 = 0x0C;
/// `s_flags`: directory hashes use signed chars.
const FLAGS_SIGNED_HASH: u32 = 0x1;
/// `s_log_groups_per_flex`: 16 groups per flex group.
const LOG_GROUPS_PER_FLEX: u8 = 4;

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
        let extra = isz > Ext4Inode::SIZE;
        let (t, t_extra) = encode_time(mtime, extra);
        let is_dir = mode & 0o170000 == 0o040000;
        let links = if is_dir && n.links > LINK_MAX && f.has_ro_compat(RO_COMPAT_DIR_NLINK) {
            1
        } else {
            n.links.min(LINK_MAX)
        };
        let blocks: u64 = pl.runs.iter().map(|r| r.len).sum::<u64>()
            + pl.mapped.meta.len() as u64
            + u64::from(pl.xattr_block.is_some());
        let sectors = blocks * (self.bs / 512);
        let mut i = Ext4Inode {
            i_mode: lo16(mode),
            i_uid: lo16(uid),
            i_size_lo: lo32(size),
            i_atime: t,
            i_ctime: t,
            i_mtime: t,
            i_gid: lo16(gid),
            i_links_count: lo16(links),
            i_blocks_lo: lo32(sectors),
            i_size_high: hi32(size),
            l_i_uid_high: hi16(uid),
            l_i_gid_high: hi16(gid),
            ..Ext4Inode::default()
        };
        if f.has_ro_compat(RO_COMPAT_HUGE_FILE) {
            i.l_i_blocks_high = lo16(hi32(sectors));
        }
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
                i.i_flags |= EXTENTS_FL;
            }
            i.i_block = pl.mapped.i_block;
        } else if let Src::Tree(inode) = n.src {
            match &inode.content {
                Content::Symlink(t) => i.i_block[..t.len()].copy_from_slice(t),
                Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
                    // The old encoding in the first word, the new one in
                    // the second.
                    if *major < 256 && *minor < 256 {
                        i.i_block[..4].copy_from_slice(&((major << 8) | minor).to_le_bytes());
                    } else {
                        let dev = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
                        i.i_block[4..8].copy_from_slice(&dev.to_le_bytes());
                    }
                }
                _ => {}
            }
        }
        if pr.htree {
            i.i_flags |= INDEX_FL;
        }
        if let Some(x) = pl.xattr_block {
            i.i_file_acl_lo = lo32(x);
        }
        let mut x = extra.then(|| Ext4InodeExtra {
            i_extra_isize: EXTRA_ISIZE,
            i_ctime_extra: t_extra,
            i_mtime_extra: t_extra,
            i_atime_extra: t_extra,
            i_crtime: t,
            i_crtime_extra: t_extra,
            ..Ext4InodeExtra::default()
        });
        // The in-inode xattrs follow the extra fields.
        let encode = |i: &Ext4Inode, x: Option<&Ext4InodeExtra>| {
            let mut w = RecordWriter::with_capacity(isz);
            i.encode(&mut w);
            if let Some(x) = x {
                x.encode(&mut w);
                w.bytes(&pr.xattr_area);
            }
            let mut b = w.into_bytes();
            b.resize(isz, 0);
            b
        };
        let b = encode(&i, x.as_ref());
        let Some(seed) = self.inode_seed(n.ino) else {
            return b;
        };
        // The checksum covers the inode with its checksum fields zero.
        let crc = crc32c(seed, &b);
        i.l_i_checksum_lo = lo16(crc);
        if let Some(x) = &mut x {
            x.i_checksum_hi = hi16(crc);
        }
        encode(&i, x.as_ref())
    }

    pub(super) fn superblock(&self, a: &SbArgs<'_>, group: u64) -> Vec<u8> {
        let geo = a.geo;
        let f = &self.enc.features;
        let reserved = geo.blocks * u64::from(self.enc.reserved_percent) / 100;
        let log = (self.bs / 1024).trailing_zeros();
        let mut ro = f.ro_compat;
        if self.large_file {
            ro |= RO_COMPAT_LARGE_FILE;
        }
        let mut s_volume_name = [0u8; 16];
        let label = self.enc.label.as_bytes();
        s_volume_name[..label.len()].copy_from_slice(label);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "s_block_group_nr holds the group number's low 16 bits"
        )]
        let s_block_group_nr = group as u16;
        let mut sb = SuperBlock {
            s_inodes_count: lo32(geo.inodes()),
            s_blocks_count_lo: lo32(geo.blocks),
            s_r_blocks_count_lo: lo32(reserved),
            s_free_blocks_count_lo: lo32(a.free_blocks),
            s_free_inodes_count: lo32(a.free_inodes),
            s_first_data_block: lo32(geo.first_data_block),
            s_log_block_size: log,
            s_log_cluster_size: log,
            s_blocks_per_group: lo32(geo.bpg),
            s_clusters_per_group: lo32(geo.bpg),
            s_inodes_per_group: geo.ipg,
            s_wtime: self.fs_time,
            // Never checked by mount count.
            s_max_mnt_count: 0xFFFF,
            s_magic: disk::SUPER_MAGIC,
            // Clean; continue on errors.
            s_state: 1,
            s_errors: 1,
            s_lastcheck: self.fs_time,
            // Dynamic revision.
            s_rev_level: 1,
            s_first_ino: FIRST_INO,
            s_inode_size: self.enc.inode_size(),
            s_block_group_nr,
            s_feature_compat: f.compat,
            s_feature_incompat: f.incompat & !disk::INCOMPAT_64BIT,
            s_feature_ro_compat: ro,
            s_uuid: self.uuid,
            s_volume_name,
            s_hash_seed: self.hash_seed,
            s_def_hash_version: disk::DX_HASH_HALF_MD4,
            s_default_mount_opts: DEFAULT_MOUNT_OPTS,
            s_mkfs_time: self.fs_time,
            s_flags: FLAGS_SIGNED_HASH,
            ..SuperBlock::default()
        };
        if let Some((iblock, size)) = a.journal {
            sb.s_journal_inum = JOURNAL_INO;
            // s_jnl_blocks holds a copy of i_block, then the size.
            sb.s_jnl_backup_type = 1;
            for (w, b) in sb.s_jnl_blocks.iter_mut().zip(iblock.chunks_exact(4)) {
                *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            sb.s_jnl_blocks[15] = hi32(size);
            sb.s_jnl_blocks[16] = lo32(size);
        }
        if self.enc.inode_size() > 128 {
            sb.s_min_extra_isize = EXTRA_ISIZE;
            sb.s_want_extra_isize = EXTRA_ISIZE;
        }
        if f.has_incompat(disk::INCOMPAT_FLEX_BG) {
            sb.s_log_groups_per_flex = LOG_GROUPS_PER_FLEX;
        }
        if f.has_ro_compat(RO_COMPAT_METADATA_CSUM) {
            // crc32c.
            sb.s_checksum_type = 1;
            sb.s_checksum = crc32c(!0, &sb.to_bytes()[..SuperBlock::CHECKSUMMED]);
        }
        sb.to_bytes()
    }

    /// A clean, empty jbd2 (version 2) superblock, big-endian.
    pub(super) fn journal_super(&self, len: u64) -> Vec<u8> {
        let mut j = JournalSuperblock {
            h_magic: JBD2_MAGIC_NUMBER,
            h_blocktype: JBD2_SUPERBLOCK_V2,
            s_blocksize: self.enc.block_size,
            s_maxlen: lo32(len),
            s_first: 1,
            s_sequence: 1,
            s_uuid: self.uuid,
            s_nr_users: 1,
            ..JournalSuperblock::default()
        }
        .to_bytes();
        j.resize(self.block_len(), 0);
        j
    }
}

/// Seconds and the `_extra` word (nanoseconds and two epoch bits).
#[expect(
    clippy::cast_possible_truncation,
    reason = "the seconds field holds the low 32 bits, the epoch bits the rest"
)]
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
