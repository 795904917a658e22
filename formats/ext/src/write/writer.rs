//! The buffered output stream.

use std::io;

use rootforge_common::{FileData, Sink, write_zeros};

use crate::disk::mem;

/// Buffers small writes and turns gaps into `skip`s.
pub(super) struct Writer<'a> {
    out: &'a mut dyn Sink,
    buf: Vec<u8>,
    pos: u64,
}

impl<'a> Writer<'a> {
    const FLUSH: usize = 1 << 20;

    pub(super) fn new(out: &'a mut dyn Sink) -> Self {
        Writer {
            out,
            buf: Vec::with_capacity(Self::FLUSH * 2),
            pos: 0,
        }
    }

    pub(super) fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    pub(super) fn put(&mut self, b: &[u8]) -> io::Result<()> {
        if b.len() >= Self::FLUSH {
            self.flush()?;
            self.out.write_all(b)?;
        } else {
            self.buf.extend_from_slice(b);
            if self.buf.len() >= Self::FLUSH {
                self.flush()?;
            }
        }
        self.pos += b.len() as u64;
        Ok(())
    }

    pub(super) fn skip(&mut self, n: u64) -> io::Result<()> {
        if n < 4096 {
            let z = [0u8; 4096];
            return self.put(&z[..mem(n)]);
        }
        self.flush()?;
        self.out.skip(n)?;
        self.pos += n;
        Ok(())
    }

    pub(super) fn skip_to(&mut self, at: u64) -> io::Result<()> {
        if at < self.pos {
            return Err(io::Error::other(format!(
                "ext layout overlaps at byte {at} (written up to {})",
                self.pos
            )));
        }
        self.skip(at - self.pos)
    }

    /// `len` bytes of `d` from `off`, zero-padded past the end of the file.
    pub(super) fn data(&mut self, d: &FileData, off: u64, len: u64) -> io::Result<()> {
        let real = len.min(d.size().saturating_sub(off));
        if let Some(s) = d.as_slice() {
            let s = &s[mem(off)..mem(off + real)];
            self.put(s)?;
        } else {
            let mut at = off;
            let end = off + real;
            let mut tmp = vec![0u8; (real.min(1 << 20)) as usize];
            while at < end {
                let n = (end - at).min(1 << 20) as usize;
                d.read_at(at, &mut tmp[..n])?;
                self.put(&tmp[..n])?;
                at += n as u64;
            }
        }
        write_zeros(&mut VecSink(&mut self.buf), len - real)?;
        self.pos += len - real;
        Ok(())
    }
}

/// Appends zeros straight into the write buffer.
struct VecSink<'a>(&'a mut Vec<u8>);

impl io::Write for VecSink<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
