//! Writes an ext image from a tarball, for measurements:
//! `mkext ext4 IN.tar OUT.img [block size] [size in bytes or auto] [inode size]`.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::Instant;

use rootforge_common::{Encoder, Meta, Sink, Time};
use rootforge_ext::{ExtEncoder, Size, Variant};

/// A file output where skipped ranges stay holes.
struct FileSink(BufWriter<File>);

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Sink for FileSink {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let n = i64::try_from(n).map_err(io::Error::other)?;
        self.0.seek(SeekFrom::Current(n)).map(drop)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, variant, input, output, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: mkext ext2|ext3|ext4 IN.tar OUT.img [block size] [size|auto] [inode size]"
                .into(),
        );
    };
    let variant = match variant.as_str() {
        "ext2" => Variant::Ext2,
        "ext3" => Variant::Ext3,
        _ => Variant::Ext4,
    };
    let t0 = Instant::now();
    let bytes = std::fs::read(input)?;
    let opts = rootforge_tar::ReadOptions {
        implicit_dir: Meta::new(0o755, 0, 0, Time::default()),
        clamp_mtime: None,
        ..Default::default()
    };
    let tree = rootforge_tar::read(Arc::new(bytes), &opts)?.tree;
    let t1 = Instant::now();
    let mut enc = ExtEncoder::new(variant);
    if let Some(bs) = rest.first() {
        enc.block_size = bs.parse()?;
    }
    if let Some(size) = rest.get(1).filter(|s| *s != "auto") {
        enc.size = Size::Fixed(size.parse()?);
    }
    if let Some(isz) = rest.get(2) {
        enc.inode_size = Some(isz.parse()?);
    }
    let file = File::create(output)?;
    let mut sink = FileSink(BufWriter::with_capacity(1 << 20, file));
    let report = enc.write(&tree.view(), &mut sink)?;
    sink.flush()?;
    let file = sink.0.into_inner().map_err(|e| e.into_error())?;
    file.set_len(report.bytes)?;
    let t2 = Instant::now();
    eprintln!(
        "read {:.3}s, encode+write {:.3}s, {} bytes",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        report.bytes
    );
    Ok(())
}
