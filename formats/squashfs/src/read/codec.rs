//! The decompressors of the superblock's compressor ids that the kernel
//! reads.

use liblzma::stream::{Action, Status, Stream};
use rootforge_common::Result;

use super::malformed;

/// Memory the xz decoder may use: dictionaries are at most a block
/// (1 MiB) in images the kernel reads; this leaves room for
/// squashfs-tools' largest dictionary option and nothing hostile.
const XZ_MEMLIMIT: u64 = 64 << 20;

/// The compressors of the superblock's ids that the kernel reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codec {
    Gzip,
    Lzo,
    Xz,
    Lz4,
    Zstd,
}

impl Codec {
    pub(super) fn from_id(id: u16) -> Result<Codec> {
        Ok(match id {
            1 => Codec::Gzip,
            3 => Codec::Lzo,
            4 => Codec::Xz,
            5 => Codec::Lz4,
            6 => Codec::Zstd,
            2 => {
                return Err(malformed(
                    20,
                    "lzma compression (id 2) is not supported; the kernel does not read it either",
                ));
            }
            _ => return Err(malformed(20, format!("unknown compressor id {id}"))),
        })
    }

    /// Decompresses `src` into `dst`, returning the length; output that
    /// does not fit `dst` is an error.
    pub(super) fn decompress(self, src: &[u8], dst: &mut [u8]) -> Result<usize, String> {
        match self {
            Codec::Gzip => libdeflater::Decompressor::new()
                .zlib_decompress(src, dst)
                .map_err(|e| e.to_string()),
            Codec::Lzo => lzokay::decompress::decompress(src, dst).map_err(|e| e.to_string()),
            Codec::Lz4 => lz4_flex::block::decompress_into(src, dst).map_err(|e| e.to_string()),
            Codec::Zstd => zstd::bulk::decompress_to_buffer(src, dst).map_err(|e| e.to_string()),
            Codec::Xz => xz_decompress(src, dst),
        }
    }
}

fn xz_decompress(src: &[u8], dst: &mut [u8]) -> Result<usize, String> {
    let mut stream = Stream::new_stream_decoder(XZ_MEMLIMIT, 0).map_err(|e| e.to_string())?;
    loop {
        let (read, written) = (stream.total_in(), stream.total_out());
        let (Ok(i), Ok(o)) = (usize::try_from(read), usize::try_from(written)) else {
            return Err("xz stream position overflow".to_owned());
        };
        let (Some(input), Some(output)) = (src.get(i..), dst.get_mut(o..)) else {
            return Err("xz decoder overran its buffers".to_owned());
        };
        match stream.process(input, output, Action::Finish) {
            Ok(Status::StreamEnd) => {
                return usize::try_from(stream.total_out()).map_err(|e| e.to_string());
            }
            Ok(_) if (stream.total_in(), stream.total_out()) == (read, written) => {
                return Err(if output.is_empty() {
                    "more data than the block holds".to_owned()
                } else {
                    "truncated xz stream".to_owned()
                });
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}
