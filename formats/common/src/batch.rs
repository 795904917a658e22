//! The buffered writer the archive encoders share.

use std::io;

use crate::data::FileData;
use crate::encoder::Sink;

/// Headers and small files are gathered and handed to the sink in writes of
/// at least this size.
const FLUSH_AT: usize = 256 << 10;
/// File data at least this long goes to the sink directly, without a copy
/// into the buffer.
const DIRECT_AT: usize = 64 << 10;

/// Gathers an archive's small writes into large ones and marks member
/// boundaries for the sink. A boundary is marked only where the buffer has
/// just been flushed at the end of a member: marking one after every member
/// would force a flush per member and undo the batching, while this still
/// gives a splitter a cut at least every 256 KiB and after every large file.
pub struct Batch<'a> {
    sink: &'a mut dyn Sink,
    buf: Vec<u8>,
    /// Bytes already handed to the sink.
    flushed: u64,
    /// The sink has received bytes since the last boundary mark.
    unmarked: bool,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("pos", &self.pos())
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Batch<'a> {
    /// Starts an empty batch over `sink`, which has received nothing yet.
    pub fn new(sink: &'a mut dyn Sink) -> Self {
        Batch {
            sink,
            buf: Vec::with_capacity(FLUSH_AT + DIRECT_AT),
            flushed: 0,
            unmarked: false,
        }
    }

    /// Bytes of the archive so far.
    pub fn pos(&self) -> u64 {
        self.flushed.saturating_add(self.buf.len() as u64)
    }

    /// Appends bytes to the buffer; they reach the sink at the next flush.
    pub fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends `n` zero bytes (padding) to the buffer.
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len().saturating_add(n), 0);
    }

    /// Zeros up to the next multiple of `align` (a power of two or not).
    pub fn pad(&mut self, align: u64) {
        let rem = self.pos() % align.max(1);
        if rem != 0 {
            // Less than `align`, which is small.
            self.zeros(usize::try_from(align - rem).unwrap_or(0));
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.sink.write_all(&self.buf)?;
        self.flushed = self.pos();
        self.buf.clear();
        self.unmarked = true;
        Ok(())
    }

    /// A file's bytes: small ones are batched, large in-memory ones go to
    /// the sink straight from their slice, large file-backed ones in 1 MiB
    /// chunks. A host file that changed size is an error.
    pub fn data(&mut self, data: &FileData) -> io::Result<()> {
        match data.as_slice() {
            Some(slice) if slice.len() < DIRECT_AT => self.put(slice),
            Some(slice) => {
                self.flush()?;
                self.sink.write_all(slice)?;
                self.flushed = self.flushed.saturating_add(slice.len() as u64);
            }
            None if data.size() >= DIRECT_AT as u64 => {
                self.flush()?;
                self.sink.write_data(data)?;
                self.flushed = self.flushed.saturating_add(data.size());
            }
            None => data.for_each_chunk(&mut |chunk| {
                self.buf.extend_from_slice(chunk);
                Ok(())
            })?,
        }
        Ok(())
    }

    /// Called after a member and its padding: flushes a full buffer, and
    /// marks a boundary if the sink has received bytes since the last mark.
    pub fn end_member(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT || self.unmarked {
            self.flush()?;
        }
        self.mark()
    }

    /// Hands everything to the sink and marks the end.
    pub fn finish(&mut self) -> io::Result<()> {
        self.flush()?;
        self.mark()
    }

    fn mark(&mut self) -> io::Result<()> {
        if self.unmarked {
            self.sink.boundary()?;
            self.unmarked = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plain;

    /// Records writes and where boundaries fall.
    struct Recorder {
        bytes: Vec<u8>,
        writes: usize,
        marks: Vec<usize>,
    }

    impl io::Write for Recorder {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.bytes.extend_from_slice(b);
            self.writes += 1;
            Ok(b.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for Recorder {
        fn boundary(&mut self) -> io::Result<()> {
            self.marks.push(self.bytes.len());
            Ok(())
        }
    }

    #[test]
    fn batches_small_members_and_marks_only_between_members() {
        let mut rec = Recorder {
            bytes: Vec::new(),
            writes: 0,
            marks: Vec::new(),
        };
        let mut ends = Vec::new();
        {
            let mut b = Batch::new(&mut rec);
            for i in 0..2000u32 {
                b.put(&i.to_le_bytes());
                b.data(&FileData::bytes(vec![7u8; 300])).unwrap();
                b.pad(512);
                ends.push(usize::try_from(b.pos()).unwrap());
                b.end_member().unwrap();
            }
            b.data(&FileData::zeros(3 << 20)).unwrap();
            ends.push(usize::try_from(b.pos()).unwrap());
            b.end_member().unwrap();
            b.finish().unwrap();
        }
        assert_eq!(rec.bytes.len(), 2000 * 512 + (3 << 20));
        assert!(rec.writes < 20, "{} writes", rec.writes);
        assert!(!rec.marks.is_empty());
        assert!(
            rec.marks.iter().all(|m| ends.contains(m)),
            "a mark inside a member"
        );
        assert_eq!(rec.marks.last(), Some(&rec.bytes.len()));
    }

    #[test]
    fn pads_to_any_alignment() {
        let mut out = Plain(Vec::new());
        let mut b = Batch::new(&mut out);
        b.put(b"abcde");
        b.pad(4);
        assert_eq!(b.pos(), 8);
        b.pad(4);
        assert_eq!(b.pos(), 8);
        b.pad(10240);
        assert_eq!(b.pos(), 10240);
    }
}
