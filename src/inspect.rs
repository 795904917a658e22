//! `rootforge inspect`: one listing line per entry of any image the project
//! can read back, whatever its outer compression or U-Boot wrapper.

use std::io;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rootforge_common::{Backing, Tree, listing};

use crate::compress;

const UIMAGE_MAGIC: [u8; 4] = [0x27, 0x05, 0x19, 0x56];
const UIMAGE_HEADER: usize = 64;

/// The formats `inspect` recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    Cpio,
    Ext,
    Iso9660,
    Squashfs,
    Tar,
}

/// Reads an image file into a tree.
pub fn read_image(path: &Path) -> Result<(Detected, Tree)> {
    let data: Backing =
        Arc::new(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    let data = unwrap_layers(data).with_context(|| format!("decompressing {}", path.display()))?;
    let bytes: &[u8] = data.as_slice().unwrap_or_default();
    let detected = if rootforge_cpio::is_cpio(bytes) {
        Detected::Cpio
    } else if rootforge_ext::is_ext(bytes) {
        Detected::Ext
    } else if rootforge_iso9660::is_iso(bytes) {
        Detected::Iso9660
    } else if rootforge_squashfs::is_squashfs(bytes) {
        Detected::Squashfs
    } else if bytes.len() >= 263 && &bytes[257..262] == b"ustar" {
        Detected::Tar
    } else {
        bail!(
            "{}: not an image rootforge can read (cpio, ext2/3/4, iso9660, squashfs or tar)",
            path.display()
        );
    };
    let tree = match detected {
        Detected::Cpio => rootforge_cpio::read(data)?,
        Detected::Ext => rootforge_ext::read(data)?,
        Detected::Iso9660 => rootforge_iso9660::read(data)?,
        Detected::Squashfs => rootforge_squashfs::read(data)?,
        Detected::Tar => {
            let ingest = rootforge_tar::read(data, &rootforge_tar::ReadOptions::default())?;
            // An image must end as archives end; input may be read leniently.
            if ingest.end != rootforge_tar::End::Marker {
                bail!("the tar image does not end with its end-of-archive blocks: truncated?");
            }
            ingest.tree
        }
    };
    Ok((detected, tree))
}

/// Strips a U-Boot legacy header and any outer compression.
fn unwrap_layers(mut data: Backing) -> io::Result<Backing> {
    // A compressed image inside a uImage is the usual case; no image is
    // wrapped more than twice.
    for _ in 0..3 {
        let bytes: &[u8] = data.as_slice().unwrap_or_default();
        if bytes.len() > UIMAGE_HEADER && bytes[..4] == UIMAGE_MAGIC {
            data = Arc::new(bytes[UIMAGE_HEADER..].to_vec());
            continue;
        }
        match compress::sniff(bytes) {
            Some(c) => {
                let mut out = Vec::new();
                io::copy(&mut compress::decoder(c, bytes)?, &mut out)?;
                data = Arc::new(out);
            }
            None => return Ok(data),
        }
    }
    Ok(data)
}

/// The listing of an image, as `rootforge inspect` prints it.
pub fn listing(path: &Path) -> Result<Vec<listing::Line>> {
    let (_, tree) = read_image(path)?;
    Ok(listing::of_view(&tree.view())?)
}
