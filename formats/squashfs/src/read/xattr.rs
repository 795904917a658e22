//! An inode's xattrs: its id's pairs in the xattr table, with values
//! stored inline or out of line.

use rootforge_common::bytes::usize_from_u32;
use rootforge_common::{Result, Xattr};

use super::{Reader, malformed};
use crate::records::{SQUASHFS_XATTR_VALUE_OOL, XattrEntry, XattrId, XattrVal};
use crate::xattr::PREFIXES;

impl Reader {
    /// An inode's xattrs, sorted by name.
    pub(super) fn xattrs(&self, id: Option<u32>) -> Result<Vec<Xattr>> {
        let Some(id) = id else {
            return Ok(Vec::new());
        };
        let (Some(kv), Some(&XattrId { xattr, count, .. })) = (
            self.xattr_kv.as_ref(),
            usize::try_from(id).ok().and_then(|i| self.xattr_ids.get(i)),
        ) else {
            return Err(malformed(
                0,
                format!(
                    "xattr id {id}, of {} in the xattr id table",
                    self.xattr_ids.len()
                ),
            ));
        };
        let mut c = kv.cursor(kv.resolve_ref(xattr)?, "xattr");
        let mut out: Vec<Xattr> = Vec::new();
        for _ in 0..count {
            let entry: XattrEntry = c.record()?;
            let ty = entry.r#type;
            let Some(&(prefix, _)) = PREFIXES
                .iter()
                .find(|&&(_, code)| code == ty & !SQUASHFS_XATTR_VALUE_OOL)
            else {
                return Err(c.error(format_args!("unknown xattr type {ty:#x}")));
            };
            let mut name = prefix.to_vec();
            name.extend_from_slice(c.take(usize::from(entry.size))?);
            let XattrVal { vsize } = c.record()?;
            let value = if ty & SQUASHFS_XATTR_VALUE_OOL != 0 {
                // Out of line: the value is a reference to the real one.
                if vsize != 8 {
                    return Err(c.error(format_args!("an out-of-line value of {vsize} bytes")));
                }
                let mut v = kv.cursor(kv.resolve_ref(c.le64()?)?, "xattr value");
                let XattrVal { vsize } = v.record()?;
                v.take(usize_from_u32(vsize))?
            } else {
                c.take(usize_from_u32(vsize))?
            };
            let cost = (name.len() as u64).saturating_add(value.len() as u64);
            let left = self.xattr_budget.get().checked_sub(cost);
            self.xattr_budget
                .set(left.ok_or_else(|| c.error("more xattr bytes than the image could hold"))?);
            out.push(Xattr {
                name: name.into(),
                value: value.into(),
            });
        }
        out.sort_unstable();
        if out.windows(2).any(|w| w[0].name == w[1].name) {
            return Err(c.error("an xattr name appears twice"));
        }
        Ok(out)
    }
}
