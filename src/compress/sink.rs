//! A sink that compresses on the current rayon pool.
//!
//! The stream is cut into chunks, each compressed as an independent member,
//! and the members are written in order. Where the cuts fall depends only on
//! the data and the boundary marks, never on timing or the thread count, so
//! the output is the same for any `-j`.
//!
//! Two cutting rules:
//! - By default (safe for a Linux initramfs) a chunk ends only at a
//!   [`Sink::boundary`] mark, at the first mark after the algorithm's chunk
//!   size. The kernel decompresses member by member and requires each to end
//!   between two cpio entries. A run longer than [`MAX_RUN`] without a mark
//!   (one huge file) would have to be buffered whole, so instead the chunk is
//!   cut at the last mark before it and the run is compressed as one member
//!   by a streaming encoder on the calling thread, until the next mark.
//! - [`CompressSink::cut_anywhere`], for tar and ext images: any byte may end
//!   a member, so chunks are exactly the chunk size and marks are ignored.
//!
//! lzma is the exception: `xz` and `lzma` stop after the first of several
//! concatenated .lzma streams, so lzma output is always one stream, encoded
//! whole while it fits in one chunk, streamed on the calling thread beyond.
//!
//! Chunks are compressed in batches of `2 × threads + 2` (at most 256 MiB,
//! or one chunk per thread if that is more), on the current rayon pool; the
//! caller's thread takes part, so a pool of one thread works too. Memory:
//! one batch of input and its output, the chunk being filled (at most
//! [`MAX_RUN`] or the chunk size), and the encoders' own state (xz -9:
//! about 670 MiB per thread).

use std::io::{self, Write};

use rayon::prelude::*;
use rootforge_common::Sink;

use super::Compression;
use super::member::{Codec, StreamMember};

/// The longest run without a boundary mark that is buffered whole.
const MAX_RUN: usize = 64 << 20;
/// The most input bytes a batch holds when the chunks are small.
const BATCH_BYTES: usize = 256 << 20;
/// The serial encoder is fed in pieces of this size, so its output does not
/// depend on how the caller sliced its writes.
const PIECE: usize = 1 << 20;

/// Batches hold `window` chunks, but no more than [`BATCH_BYTES`] unless
/// one chunk per thread needs more (xz's 192 MiB chunks).
fn batch_limit(threads: usize, window: usize, chunk_size: usize) -> usize {
    let wanted = window.saturating_mul(chunk_size).min(BATCH_BYTES);
    threads.saturating_mul(chunk_size).max(wanted)
}

/// A [`Sink`] that compresses what it is given. Call [`finish`] to write the
/// last member; dropping the sink loses what is still buffered.
///
/// [`finish`]: CompressSink::finish
#[derive(Debug)]
pub struct CompressSink<W: Write> {
    codec: Codec,
    out: W,
    cut_anywhere: bool,
    chunk_size: usize,
    max_run: usize,
    /// The whole output is one member (lzma: xz-utils reads only the first
    /// of concatenated .lzma streams).
    one_member: bool,
    /// Chunks per batch.
    window: usize,
    /// Bytes per batch.
    batch_limit: usize,
    /// The chunk being filled, or in streaming mode the piece being filled.
    buf: Vec<u8>,
    /// Where in `buf` the last boundary mark fell (0: none since the cut).
    mark: usize,
    batch: Vec<Vec<u8>>,
    batch_bytes: usize,
    /// The member being streamed, for a run without marks.
    stream: Option<StreamMember>,
    members: u64,
}

impl<W: Write> CompressSink<W> {
    /// A sink writing `c` at `level` (the algorithm's default when `None`)
    /// to `out`. Fails on a level the algorithm does not have.
    pub fn new(c: Compression, level: Option<u32>, out: W) -> io::Result<Self> {
        let codec = Codec::new(c, level)?;
        let threads = rayon::current_num_threads();
        let window = threads.saturating_mul(2).saturating_add(2);
        let chunk_size = codec.chunk_size();
        Ok(CompressSink {
            codec,
            out,
            cut_anywhere: false,
            one_member: c == Compression::Lzma,
            chunk_size,
            max_run: MAX_RUN.max(chunk_size),
            window,
            batch_limit: batch_limit(threads, window, chunk_size),
            buf: Vec::new(),
            mark: 0,
            batch: Vec::new(),
            batch_bytes: 0,
            stream: None,
            members: 0,
        })
    }

    /// For payloads that are not an initramfs (tar, ext images): members may
    /// end at any byte, so chunks are cut every chunk size and boundary marks
    /// are ignored.
    #[must_use]
    pub fn cut_anywhere(mut self) -> Self {
        self.cut_anywhere = !self.one_member;
        self
    }

    /// Smaller chunks and runs, so tests exercise every path on little data.
    #[cfg(test)]
    pub(super) fn with_sizes(mut self, chunk_size: usize, max_run: usize) -> Self {
        self.chunk_size = chunk_size;
        self.max_run = max_run;
        self.batch_limit = batch_limit(rayon::current_num_threads(), self.window, chunk_size);
        self
    }

    /// Compresses what is buffered, writes the last member and returns the
    /// writer. An empty input still gives one (empty) member, so the output
    /// is a valid compressed file.
    pub fn finish(mut self) -> io::Result<W> {
        if self.codec.kind != Compression::None {
            if self.stream.is_some() {
                self.end_stream()?;
            } else if !self.buf.is_empty() {
                self.cut()?;
            }
            self.flush_batch()?;
            if self.members == 0 {
                let empty = self.codec.encode(&[])?;
                self.out.write_all(&empty)?;
            }
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// The cut-off for the chunk being filled.
    fn limit(&self) -> usize {
        if self.cut_anywhere {
            self.chunk_size
        } else {
            self.max_run
        }
    }

    /// Queues `buf` as a chunk and compresses the batch once it is full.
    fn cut(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(self.chunk_size.min(MAX_RUN)),
        );
        self.mark = 0;
        self.queue(chunk)
    }

    fn queue(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        self.batch_bytes = self.batch_bytes.saturating_add(chunk.len());
        self.batch.push(chunk);
        if self.batch.len() >= self.window || self.batch_bytes >= self.batch_limit {
            self.flush_batch()?;
        }
        Ok(())
    }

    /// Compresses the queued chunks in parallel and writes them in order.
    fn flush_batch(&mut self) -> io::Result<()> {
        let chunks = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let codec = self.codec;
        let members: Vec<io::Result<Vec<u8>>> =
            chunks.par_iter().map(|chunk| codec.encode(chunk)).collect();
        for member in members {
            self.out.write_all(&member?)?;
            self.members = self.members.saturating_add(1);
        }
        Ok(())
    }

    /// A run reached [`MAX_RUN`] bytes without a mark: everything before the
    /// last mark becomes a chunk, the rest starts a streamed member.
    fn start_stream(&mut self) -> io::Result<()> {
        let tail = self.buf.split_off(self.mark);
        if !self.buf.is_empty() {
            self.cut()?;
        }
        self.flush_batch()?;
        self.stream = StreamMember::new(self.codec)?;
        self.buf.clear();
        self.mark = 0;
        let mut pieces = tail.chunks_exact(PIECE);
        for piece in &mut pieces {
            self.feed_stream(piece)?;
        }
        self.buf.extend_from_slice(pieces.remainder());
        Ok(())
    }

    fn feed_stream(&mut self, piece: &[u8]) -> io::Result<()> {
        if let Some(stream) = &mut self.stream {
            stream.write_all(piece)?;
            let done = stream.take_output();
            self.out.write_all(&done)?;
        }
        Ok(())
    }

    fn end_stream(&mut self) -> io::Result<()> {
        let piece = std::mem::take(&mut self.buf);
        self.feed_stream(&piece)?;
        if let Some(stream) = self.stream.take() {
            let last = stream.finish()?;
            self.out.write_all(&last)?;
            self.members = self.members.saturating_add(1);
        }
        self.buf = piece;
        self.buf.clear();
        Ok(())
    }

    fn write_some(&mut self, data: &[u8]) -> io::Result<()> {
        let mut data = data;
        while !data.is_empty() {
            let limit = if self.stream.is_some() {
                PIECE
            } else {
                self.limit()
            };
            let room = limit.saturating_sub(self.buf.len());
            let (head, rest) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(head);
            data = rest;
            if self.buf.len() >= limit {
                if self.stream.is_some() {
                    let piece = std::mem::take(&mut self.buf);
                    self.feed_stream(&piece)?;
                    self.buf = piece;
                    self.buf.clear();
                } else if self.cut_anywhere {
                    self.cut()?;
                } else {
                    self.start_stream()?;
                }
            }
        }
        Ok(())
    }
}

impl<W: Write> Write for CompressSink<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.codec.kind == Compression::None {
            return self.out.write(data);
        }
        self.write_some(data)?;
        Ok(data.len())
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if self.codec.kind == Compression::None {
            return self.out.write_all(data);
        }
        self.write_some(data)
    }

    /// Flushes the members already compressed. Buffered input stays
    /// buffered: cutting here would make the output depend on when the
    /// caller flushes.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> Sink for CompressSink<W> {
    fn boundary(&mut self) -> io::Result<()> {
        if self.codec.kind == Compression::None || self.cut_anywhere || self.one_member {
            return Ok(());
        }
        if self.stream.is_some() {
            return self.end_stream();
        }
        self.mark = self.buf.len();
        if self.buf.len() >= self.chunk_size {
            self.cut()?;
        }
        Ok(())
    }
}
