//! The two variable-length integer encodings of 3.11+ code objects, read from a byte cursor.
//!
//! Both use 6-bit chunks with bit 6 (0x40) meaning "more chunks follow", but in opposite
//! orders: the location table (`co_linetable`, CPython's `Objects/locations.md`) puts the
//! least significant chunk first, the exception table (`co_exceptiontable`,
//! `Objects/exception_handling_notes.txt`) the most significant first. Bit 7 is a marker for
//! the first byte of an entry in both tables and never part of a value.

/// Why a varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum VarintError {
    /// The bytes ended inside the value.
    Truncated,
    /// The value does not fit in 32 bits (never produced by CPython's compiler).
    TooLarge,
}

impl VarintError {
    /// A short description, for `DecodeError` messages.
    pub(super) fn reason(self) -> &'static str {
        match self {
            VarintError::Truncated => "the table ends inside a value",
            VarintError::TooLarge => "a value does not fit in 32 bits",
        }
    }
}

/// Bit 6: another chunk follows.
const CONTINUE: u8 = 0x40;
/// The payload of a chunk.
const CHUNK: u8 = 0x3f;

/// A forward-only cursor over a table's bytes.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `bytes`.
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// The byte position of the next read (for error messages).
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// Whether every byte has been read.
    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// The next byte without consuming it.
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// The next byte.
    pub(super) fn byte(&mut self) -> Result<u8, VarintError> {
        let b = self.peek().ok_or(VarintError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// Skips `n` bytes.
    pub(super) fn skip(&mut self, n: usize) -> Result<(), VarintError> {
        if self.bytes.len() - self.pos < n {
            return Err(VarintError::Truncated);
        }
        self.pos += n;
        Ok(())
    }

    /// An unsigned varint, least significant chunk first (the location table's `varint`, read
    /// by `read_varint` in CPython's codeobject.c).
    pub(super) fn varint_le(&mut self) -> Result<u32, VarintError> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            value |= u64::from(b & CHUNK) << shift;
            if b & CONTINUE == 0 {
                return u32::try_from(value).map_err(|_| VarintError::TooLarge);
            }
            shift += 6;
            if shift >= 32 {
                // Only zero chunks could follow without overflowing; CPython never writes them.
                return Err(VarintError::TooLarge);
            }
        }
    }

    /// A signed varint of the location table (`svarint`): the unsigned value holds the
    /// magnitude shifted left by one, with the sign in bit 0.
    pub(super) fn svarint_le(&mut self) -> Result<i64, VarintError> {
        let raw = self.varint_le()?;
        let magnitude = i64::from(raw >> 1);
        Ok(if raw & 1 != 0 { -magnitude } else { magnitude })
    }

    /// An unsigned varint, most significant chunk first (the exception table's encoding, read
    /// by `parse_varint` in ceval.c and `dis._parse_varint`). Bit 7 of the first byte (the
    /// entry marker) is ignored, as they do.
    pub(super) fn varint_be(&mut self) -> Result<u32, VarintError> {
        let mut b = self.byte()?;
        let mut value = u64::from(b & CHUNK);
        while b & CONTINUE != 0 {
            b = self.byte()?;
            value = (value << 6) | u64::from(b & CHUNK);
            if value > u64::from(u32::MAX) {
                return Err(VarintError::TooLarge);
            }
        }
        u32::try_from(value).map_err(|_| VarintError::TooLarge)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn little_endian_varints_match_locations_md() {
        // locations.md: 63 is 0x3f; 200 is 0x48 0x03.
        assert_eq!(Reader::new(&[0x3f]).varint_le(), Ok(63));
        assert_eq!(Reader::new(&[0x48, 0x03]).varint_le(), Ok(200));
        assert_eq!(Reader::new(&[0x40, 0x40, 0x01]).varint_le(), Ok(1 << 12));
    }

    #[test]
    fn signed_varints_keep_the_sign_in_bit_zero() {
        assert_eq!(Reader::new(&[0x04]).svarint_le(), Ok(2));
        assert_eq!(Reader::new(&[0x05]).svarint_le(), Ok(-2));
        assert_eq!(Reader::new(&[0x00]).svarint_le(), Ok(0));
    }

    #[test]
    fn big_endian_varints_read_most_significant_chunk_first() {
        // 200 = 3 * 64 + 8: chunks 3 then 8.
        assert_eq!(Reader::new(&[0x43, 0x08]).varint_be(), Ok(200));
        // The entry marker (bit 7) is not part of the value.
        assert_eq!(Reader::new(&[0x80 | 0x05]).varint_be(), Ok(5));
    }

    #[test]
    fn bad_varints_are_errors_not_panics() {
        assert_eq!(Reader::new(&[]).varint_le(), Err(VarintError::Truncated));
        assert_eq!(Reader::new(&[0x40]).varint_le(), Err(VarintError::Truncated));
        assert_eq!(Reader::new(&[0x7f; 10]).varint_le(), Err(VarintError::TooLarge));
        assert_eq!(Reader::new(&[0x7f; 10]).varint_be(), Err(VarintError::TooLarge));
        assert_eq!(Reader::new(&[0x41]).varint_be(), Err(VarintError::Truncated));
        let mut r = Reader::new(&[1, 2]);
        assert_eq!(r.skip(3), Err(VarintError::Truncated));
        assert_eq!(r.skip(2), Ok(()));
        assert!(r.at_end());
    }

    #[test]
    fn every_u32_round_trips_through_both_encodings() {
        for value in [0u32, 1, 63, 64, 4095, 4096, 1 << 20, u32::MAX - 1, u32::MAX] {
            assert_eq!(Reader::new(&encode_le(value)).varint_le(), Ok(value), "{value}");
            assert_eq!(Reader::new(&encode_be(value)).varint_be(), Ok(value), "{value}");
        }
    }

    /// The location table's writer (`write_varint` in CPython's compile.c), for the tests.
    pub(crate) fn encode_le(mut value: u32) -> Vec<u8> {
        let mut out = Vec::new();
        while value >= 64 {
            out.push(CONTINUE | (value as u8 & CHUNK));
            value >>= 6;
        }
        out.push(value as u8);
        out
    }

    /// The exception table's writer (`write_except_varint`), for the tests.
    pub(crate) fn encode_be(value: u32) -> Vec<u8> {
        let mut chunks = vec![(value & 63) as u8];
        let mut rest = value >> 6;
        while rest > 0 {
            chunks.push(CONTINUE | (rest & 63) as u8);
            rest >>= 6;
        }
        chunks.reverse();
        chunks
    }
}
