//! A decoder for concatenated LZMA "alone" streams. liblzma decodes one
//! stream; the kernel and our sink write several back to back.

use std::io::{self, BufRead, Read};

use liblzma::stream::{Action, Status, Stream};

use super::decode::{MEMLIMIT, corrupt};

pub(super) struct AloneDecoder<R> {
    r: R,
    stream: Option<Stream>,
    members: u64,
}

impl<R: BufRead> AloneDecoder<R> {
    pub fn new(r: R) -> Self {
        AloneDecoder {
            r,
            stream: None,
            members: 0,
        }
    }
}

impl<R: BufRead> Read for AloneDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
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
