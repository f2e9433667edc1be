//! The 3.11+ exception table (`co_exceptiontable`, CPython's
//! `Objects/exception_handling_notes.txt`).
//!
//! Each entry is four big-endian varints (see `varint`): start, length, target (all in code
//! units) and `depth << 1 | lasti`. The first byte of an entry has bit 7 set, which the
//! interpreter relies on to find entry boundaries; it is checked here so that garbage is
//! rejected instead of read as a plausible table.

use super::varint::Reader;
use super::DecodeError;

/// One entry of the exception table: an exception raised by an instruction in
/// `start..end` jumps to `target` with the value stack cut to `depth` items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExceptionEntry {
    /// First code unit covered.
    pub start: u32,
    /// First code unit after the covered range (exclusive, unlike `dis`' printed form).
    pub end: u32,
    /// Code unit of the handler (an instruction start).
    pub target: u32,
    /// Value-stack depth the handler expects below the pushed exception.
    pub depth: u32,
    /// Whether the offset of the raising instruction is pushed before the exception
    /// (`lasti`, used by `RERAISE` to restore `f_lasti`).
    pub lasti: bool,
}

impl ExceptionEntry {
    /// Whether code unit `unit` is covered by this entry.
    pub fn covers(&self, unit: u32) -> bool {
        (self.start..self.end).contains(&unit)
    }
}

/// Bit 7 of an entry's first byte.
const ENTRY_MARKER: u8 = 0x80;

/// Parses the whole table of a code object with `n_units` code units. Handler targets are
/// checked against the instructions later, by the caller.
pub(super) fn parse(table: &[u8], n_units: u32) -> Result<Vec<ExceptionEntry>, DecodeError> {
    // An entry takes at least four bytes.
    let mut entries = Vec::with_capacity(table.len() / 4);
    let mut reader = Reader::new(table);
    while let Some(first) = reader.peek() {
        let at = reader.pos();
        if first & ENTRY_MARKER == 0 {
            return Err(DecodeError::BadExceptionTable {
                at,
                reason: "an entry does not start with a byte with bit 7 set",
            });
        }
        let entry = read_entry(&mut reader, at)?;
        if entry.end > n_units || entry.target >= n_units {
            return Err(DecodeError::BadExceptionTable { at, reason: "an entry points outside the code" });
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Reads one entry whose first byte is at `at`.
fn read_entry(reader: &mut Reader<'_>, at: usize) -> Result<ExceptionEntry, DecodeError> {
    let bad = |reason: &'static str| DecodeError::BadExceptionTable { at, reason };
    let mut next = || reader.varint_be().map_err(|e| bad(e.reason()));
    let start = next()?;
    let length = next()?;
    let target = next()?;
    let depth_lasti = next()?;
    let end = start.checked_add(length).ok_or_else(|| bad("an entry's range overflows"))?;
    Ok(ExceptionEntry { start, end, target, depth: depth_lasti >> 1, lasti: depth_lasti & 1 != 0 })
}

#[cfg(test)]
mod tests {
    use super::super::varint::tests::encode_be;
    use super::*;

    /// An entry as CPython's assembler writes it.
    fn entry(start: u32, length: u32, target: u32, depth: u32, lasti: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for value in [start, length, target, depth << 1 | u32::from(lasti)] {
            out.extend(encode_be(value));
        }
        out[0] |= ENTRY_MARKER;
        out
    }

    #[test]
    fn entries_read_back_in_code_units() {
        let mut table = entry(2, 10, 20, 1, true);
        table.extend(entry(100, 300, 500, 3, false)); // multi-chunk values
        assert_eq!(
            parse(&table, 600),
            Ok(vec![
                ExceptionEntry { start: 2, end: 12, target: 20, depth: 1, lasti: true },
                ExceptionEntry { start: 100, end: 400, target: 500, depth: 3, lasti: false },
            ])
        );
        assert_eq!(parse(&[], 10), Ok(vec![]));
    }

    #[test]
    fn malformed_tables_are_errors() {
        let good = entry(2, 10, 20, 1, true);
        assert!(matches!(parse(&good[..good.len() - 1], 600), Err(DecodeError::BadExceptionTable { .. })));
        assert!(matches!(parse(&[0x01, 0x01, 0x01, 0x01], 600), Err(DecodeError::BadExceptionTable { at: 0, .. })));
        assert!(matches!(parse(&good, 11), Err(DecodeError::BadExceptionTable { .. })), "end past the code");
        assert!(matches!(parse(&good, 20), Err(DecodeError::BadExceptionTable { .. })), "target past the code");
    }

    #[test]
    fn covers_is_half_open() {
        let e = ExceptionEntry { start: 2, end: 4, target: 9, depth: 0, lasti: false };
        assert!(!e.covers(1) && e.covers(2) && e.covers(3) && !e.covers(4));
    }
}
