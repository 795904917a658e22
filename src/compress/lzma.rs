//! A decoder for concatenated LZMA "alone" streams. liblzma decodes one
//! stream; the kernel and our sink write several back to back.

use std::io::{self, BufRead, Read};

use liblzma::stream::{Action, Status, Stream};

use super::decode::{Framed, MEMLIMIT, Peek, corrupt, is_lzma_alone};

pub(super) struct AloneDecoder<R> {
    r: Peek<R>,
    stream: Option<Stream>,
    members: u64,
    /// Bytes after the last stream that start none, once seen.
    trailing: Option<u64>,
}

impl<R: Read> AloneDecoder<R> {
    pub fn new(r: Peek<R>) -> Self {
        AloneDecoder {
            r,
            stream: None,
            members: 0,
            trailing: None,
        }
    }
}

impl<R: Read> Framed for AloneDecoder<R> {
    fn trailing(&self) -> Option<u64> {
        self.trailing
    }
}

impl<R: Read> Read for AloneDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.trailing.is_some() {
            return Ok(0);
        }
        loop {
            if self.stream.is_none() && self.members > 0 {
                // A header that no encoder writes is not another stream.
                let head = self.r.peek(13)?;
                if !head.is_empty() && !is_lzma_alone(head) {
                    self.trailing = Some(self.r.drain()?);
                    return Ok(0);
                }
            }
            let input = self.r.fill_buf()?;
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None if input.is_empty() => {
                    if self.members == 0 {
                        return Err(corrupt("empty input"));
                    }
                    return Ok(0);
                }
                None => self.stream.insert(
                    Stream::new_lzma_decoder(MEMLIMIT).map_err(|e| corrupt(format!("{e}")))?,
                ),
            };
            if input.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated stream",
                ));
            }
            let (in_before, out_before) = (stream.total_in(), stream.total_out());
            let status = stream
                .process(input, buf, Action::Run)
                .map_err(|e| corrupt(format!("{e}")))?;
            let used = usize::try_from(stream.total_in() - in_before).map_err(io::Error::other)?;
            let produced =
                usize::try_from(stream.total_out() - out_before).map_err(io::Error::other)?;
            self.r.consume(used);
            if status == Status::StreamEnd {
                self.stream = None;
                self.members += 1;
            }
            if produced > 0 {
                return Ok(produced);
            }
            if used == 0 && status != Status::StreamEnd {
                return Err(corrupt("decoder stalled"));
            }
        }
    }
}
