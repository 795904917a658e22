//! `rootforge inspect`: one listing line per entry of any image the project
//! can read back, whatever its outer compression or U-Boot wrapper.

use std::io;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rootforge_common::{Backing, Blob, FileBlob, Tree, listing};

use crate::compress;
use crate::format::{Format, ReadOptions, SNIFF_LEN};

const UIMAGE_MAGIC: [u8; 4] = [0x27, 0x05, 0x19, 0x56];
const UIMAGE_HEADER: usize = 64;

/// Reads an image file into a tree, sniffing its format from its bytes
/// through the format registry.
///
/// # Errors
///
/// A file that cannot be read, that is no image rootforge reads, or that
/// its reader refuses.
pub fn read_image(path: &Path) -> Result<(Format, Tree)> {
    let reading = || format!("reading {}", path.display());
    let file = std::fs::File::open(path).with_context(reading)?;
    let blob = FileBlob::new(file).with_context(reading)?;
    let head = head_of(&blob).with_context(reading)?;
    // A plain image is read in place; a wrapped or compressed one is
    // unpacked into memory first.
    let data: Backing = if head.starts_with(&UIMAGE_MAGIC) || compress::sniff(&head).is_some() {
        let all: Backing = Arc::new(std::fs::read(path).with_context(reading)?);
        unwrap_layers(all).with_context(|| format!("decompressing {}", path.display()))?
    } else {
        Arc::new(blob)
    };
    let head = head_of(&*data).with_context(reading)?;
    let bytes: &[u8] = &head;
    let Some(format) = Format::sniff(bytes) else {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        bail!(
            "{}: not an image rootforge can read ({})",
            path.display(),
            names.join(", ")
        );
    };
    let read = format.read(data, &ReadOptions::default())?;
    // An image must end as its format's images end; an input may be read
    // more leniently.
    if !read.complete {
        bail!(
            "{}: the {format} image does not end as {format} images end: truncated?",
            path.display()
        );
    }
    Ok((format, read.tree))
}

/// The first bytes of an image, as many as sniffing looks at.
fn head_of(data: &dyn Blob) -> io::Result<Vec<u8>> {
    let len = usize::try_from(data.len())
        .unwrap_or(usize::MAX)
        .min(SNIFF_LEN);
    let mut head = vec![0u8; len];
    data.read_at(0, &mut head)?;
    Ok(head)
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

/// The partition table of a disk image (a file that is no other image
/// rootforge reads and starts with an MBR), for `inspect`.
///
/// # Errors
///
/// A file that cannot be read, or a disk whose table is malformed.
pub fn disk_table(path: &Path) -> Result<Option<rootforge_disk::read::Table>> {
    use std::io::Read;
    // Only the head decides, so an image of another format is read once.
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(1 << 16).read_to_end(&mut head))
        .with_context(|| format!("reading {}", path.display()))?;
    if Format::sniff(&head).is_some()
        || compress::sniff(&head).is_some()
        || head.starts_with(&UIMAGE_MAGIC)
        || !rootforge_disk::read::is_partitioned(&head)
    {
        return Ok(None);
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let table = rootforge_disk::read::read(&bytes).with_context(|| path.display().to_string())?;
    Ok(Some(table))
}
