//! The El Torito EFI image built from a tree (what Buildroot otherwise
//! makes with `mkfs.vfat` and `mcopy`): a compact FAT12/16 volume made by
//! rootforge-fat, with its long and short names, its times and its checks.

use rootforge_common::{Buffer, Encoder, Result, Time, View};
use rootforge_fat::{FatEncoder, FatOptions, FatSize};

/// Builds the FAT image of `view`. The volume ID comes from the ISO's
/// creation time, as the ISO's other serials do.
pub(crate) fn image(view: &View<'_>, created: Time) -> Result<Vec<u8>> {
    let [s0, s1, s2, s3, ..] = created.sec.to_le_bytes();
    let enc = FatEncoder::new(FatOptions {
        size: FatSize::Compact,
        volume_id: Some(u32::from_le_bytes([s0, s1, s2, s3]) ^ 0x5EED_F00D),
        created,
        ..FatOptions::default()
    });
    let mut out = Buffer::default();
    // What FAT drops of the tree (owners, modes) does not matter to
    // firmware; the report's warnings are not passed on.
    enc.write(view, &mut out)?;
    Ok(out.0)
}
