//! Fixed-layout on-disk records: the one field helper the format crates
//! share, so that a record's layout is spelled once, in field order, and both
//! the writer and the reader go through it.
//!
//! A record type writes itself with a [`RecordWriter`] and reads itself with
//! a [`RecordReader`], naming each field as its spec does:
//!
//! ```
//! use rootforge_common::bytes::{RecordReader, RecordWriter};
//!
//! let mut w = RecordWriter::with_capacity(8);
//! w.le16(0xef53).le32(7).zeros(2);
//! let bytes = w.into_bytes();
//! let mut r = RecordReader::new(&bytes);
//! assert_eq!(r.le16(), Some(0xef53));
//! assert_eq!(r.le32(), Some(7));
//! ```

/// Appends the fields of a record, in order.
#[derive(Debug, Default, Clone)]
pub struct RecordWriter {
    buf: Vec<u8>,
}

impl RecordWriter {
    /// A writer with room for `n` bytes.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        RecordWriter {
            buf: Vec::with_capacity(n),
        }
    }

    /// The bytes written so far.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// How many bytes have been written.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Nothing written yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// A little-endian 16-bit field.
    pub fn le16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// A little-endian 32-bit field.
    pub fn le32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// A little-endian 64-bit field.
    pub fn le64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// A big-endian 16-bit field.
    pub fn be16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// A big-endian 32-bit field.
    pub fn be32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// A both-byte-order 16-bit field (ECMA-119 7.2.3): little-endian, then
    /// big-endian.
    pub fn both16(&mut self, v: u16) -> &mut Self {
        self.le16(v).be16(v)
    }

    /// A both-byte-order 32-bit field (ECMA-119 7.3.3).
    pub fn both32(&mut self, v: u32) -> &mut Self {
        self.le32(v).be32(v)
    }

    /// Bytes as they are.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// `n` zero bytes (reserved or unused fields).
    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.buf.resize(self.buf.len().saturating_add(n), 0);
        self
    }

    /// `b` padded with `fill` (or cut) to exactly `n` bytes: fixed-width
    /// text fields.
    pub fn padded(&mut self, b: &[u8], n: usize, fill: u8) -> &mut Self {
        let take = b.len().min(n);
        self.bytes(&b[..take]);
        self.buf
            .resize(self.buf.len().saturating_add(n - take), fill);
        self
    }
}

/// Reads the fields of a record, in order. Every read past the end gives
/// `None`, so a truncated record is an error the caller names.
#[derive(Debug, Clone)]
pub struct RecordReader<'a> {
    rest: &'a [u8],
}

impl<'a> RecordReader<'a> {
    /// A reader at the start of `bytes`.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        RecordReader { rest: bytes }
    }

    /// The bytes not read yet.
    #[must_use]
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N).and_then(|b| b.try_into().ok())
    }

    /// Skips `n` bytes (reserved fields).
    pub fn skip(&mut self, n: usize) -> Option<&mut Self> {
        self.bytes(n).map(|_| self)
    }

    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    /// A little-endian 16-bit field.
    pub fn le16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    /// A little-endian 32-bit field.
    pub fn le32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// A little-endian 64-bit field.
    pub fn le64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    /// A big-endian 16-bit field.
    pub fn be16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    /// A big-endian 32-bit field.
    pub fn be32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// A both-byte-order 16-bit field; the little-endian half is used, as
    /// Linux's isofs does.
    pub fn both16(&mut self) -> Option<u16> {
        let v = self.le16()?;
        self.skip(2)?;
        Some(v)
    }

    /// A both-byte-order 32-bit field; the little-endian half is used.
    pub fn both32(&mut self) -> Option<u32> {
        let v = self.le32()?;
        self.skip(4)?;
        Some(v)
    }
}

/// A little-endian `u16` at `at`, if `buf` holds it.
#[must_use]
pub fn le16_at(buf: &[u8], at: usize) -> Option<u16> {
    RecordReader::new(buf.get(at..)?).le16()
}

/// A little-endian `u32` at `at`, if `buf` holds it.
#[must_use]
pub fn le32_at(buf: &[u8], at: usize) -> Option<u32> {
    RecordReader::new(buf.get(at..)?).le32()
}

/// A little-endian `u64` at `at`, if `buf` holds it.
#[must_use]
pub fn le64_at(buf: &[u8], at: usize) -> Option<u64> {
    RecordReader::new(buf.get(at..)?).le64()
}

/// Overwrites `v.len()` bytes of `buf` at `at` (a checksum or a field
/// known only later), failing when they do not fit.
pub fn put_at(buf: &mut [u8], at: usize, v: &[u8]) -> Option<()> {
    let end = at.checked_add(v.len())?;
    buf.get_mut(at..end)?.copy_from_slice(v);
    Some(())
}

/// `n` as a `usize`: every target rootforge builds for has pointers of at
/// least 32 bits.
#[must_use]
pub const fn usize_from_u32(n: u32) -> usize {
    n as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_in_both_orders() {
        let mut w = RecordWriter::default();
        w.u8(1)
            .le16(0x0203)
            .be16(0x0405)
            .both32(0x0607_0809)
            .padded(b"ab", 4, b' ');
        let b = w.into_bytes();
        assert_eq!(
            b,
            [
                1, 3, 2, 4, 5, 9, 8, 7, 6, 6, 7, 8, 9, b'a', b'b', b' ', b' '
            ]
        );
        let mut r = RecordReader::new(&b);
        assert_eq!(r.u8(), Some(1));
        assert_eq!(r.le16(), Some(0x0203));
        assert_eq!(r.be16(), Some(0x0405));
        assert_eq!(r.both32(), Some(0x0607_0809));
        assert_eq!(r.bytes(4), Some(&b"ab  "[..]));
        assert_eq!(r.u8(), None);
    }

    #[test]
    fn reads_past_the_end_are_none() {
        assert_eq!(le32_at(&[1, 2, 3], 0), None);
        assert_eq!(le16_at(&[1, 2, 3], 1), Some(0x0302));
        assert_eq!(le16_at(&[1, 2, 3], usize::MAX), None);
        let mut buf = [0u8; 4];
        assert_eq!(put_at(&mut buf, 3, &[1, 2]), None);
        assert_eq!(put_at(&mut buf, 2, &[1, 2]), Some(()));
        assert_eq!(buf, [0, 0, 1, 2]);
    }
}
