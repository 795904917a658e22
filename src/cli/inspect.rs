//! `rootforge inspect`.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

/// Prints one listing line per entry of the image at `image`.
///
/// # Errors
///
/// An image that cannot be read, or a closed stdout.
pub fn run(image: &Path) -> Result<()> {
    if let Some(table) = crate::inspect::disk_table(image)? {
        print!("{table}");
        return Ok(());
    }
    let lines = crate::inspect::listing(image)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for l in &lines {
        out.write_all(format!("{l}\n").as_bytes())?;
    }
    out.flush()?;
    Ok(())
}
