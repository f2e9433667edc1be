//! Line numbers from the 3.11+ location table (`co_linetable`, CPython's
//! `Objects/locations.md`).
//!
//! The table is a run of entries, each covering 1 to 8 code units: a first byte
//! `1 kind:4 (length-1):3`, then kind-specific bytes. Only the start line is kept here (the
//! columns are skipped); it is a delta from the previous entry's start line, starting at
//! `co_firstlineno`. Kind 15 means "no location": the entry has no line and leaves the running
//! line unchanged (as `advance` in codeobject.c keeps `computed_line` and reports -1).

use super::varint::{Reader, VarintError};
use super::DecodeError;

/// Kinds 0-9: the short forms (same line, one byte of columns).
const SHORT_FORM_LAST: u8 = 9;
/// Kinds 10-12: the one-line forms (line delta = kind - 10, two column bytes).
const ONE_LINE_FIRST: u8 = 10;
const ONE_LINE_LAST: u8 = 12;
/// Kind 13: a signed line delta, no columns.
const NO_COLUMNS: u8 = 13;
/// Kind 14: line delta, end-line delta, start and end column.
const LONG_FORM: u8 = 14;
/// Kind 15: no location at all.
const NO_LOCATION: u8 = 15;

/// Walks the location table in step with increasing code-unit offsets, so decoding stays one
/// pass over `co_code` and one over `co_linetable`.
pub(super) struct LineCursor<'a> {
    reader: Reader<'a>,
    /// CPython's `computed_line`: the start line of the last entry that had one.
    line: i64,
    /// The first code unit after the current entry.
    end: u32,
    /// The line of the current entry (`None` for "no location").
    current: Option<u32>,
}

impl<'a> LineCursor<'a> {
    /// A cursor before the first entry of `table`, for a code object whose first line is
    /// `first_line` (`co_firstlineno`).
    pub(super) fn new(table: &'a [u8], first_line: i32) -> Self {
        LineCursor { reader: Reader::new(table), line: i64::from(first_line), end: 0, current: None }
    }

    /// The line of code unit `unit`. Units must be asked in non-decreasing order. Units past
    /// the end of the table have no line (`PyCode_Addr2Line` returns -1 for them).
    pub(super) fn line_at(&mut self, unit: u32) -> Result<Option<u32>, DecodeError> {
        while unit >= self.end {
            if self.reader.at_end() {
                self.current = None;
                self.end = u32::MAX;
                break;
            }
            self.advance()?;
        }
        Ok(self.current)
    }

    /// Reads the next entry.
    fn advance(&mut self) -> Result<(), DecodeError> {
        let at = self.reader.pos();
        let bad = |reason: &'static str| DecodeError::BadLineTable { at, reason };
        let first = self.reader.byte().map_err(|e| bad(e.reason()))?;
        if first & 0x80 == 0 {
            return Err(bad("an entry does not start with a byte with bit 7 set"));
        }
        let kind = (first >> 3) & 0x0f;
        let length = u32::from(first & 0x07) + 1;
        let delta = self.line_delta(kind).map_err(|e| bad(e.reason()))?;
        self.line = self.line.saturating_add(delta);
        self.current = if kind == NO_LOCATION {
            None
        } else {
            Some(u32::try_from(self.line).map_err(|_| bad("a line number is negative or too large"))?)
        };
        self.end = self.end.saturating_add(length);
        Ok(())
    }

    /// Reads the rest of an entry of `kind` and returns its start-line delta.
    fn line_delta(&mut self, kind: u8) -> Result<i64, VarintError> {
        let r = &mut self.reader;
        match kind {
            0..=SHORT_FORM_LAST => r.skip(1).map(|()| 0),
            ONE_LINE_FIRST..=ONE_LINE_LAST => r.skip(2).map(|()| i64::from(kind - ONE_LINE_FIRST)),
            NO_COLUMNS => r.svarint_le(),
            LONG_FORM => {
                let delta = r.svarint_le()?;
                r.varint_le()?; // end line - start line
                r.varint_le()?; // start column + 1
                r.varint_le()?; // end column + 1
                Ok(delta)
            }
            _ => Ok(0), // NO_LOCATION: no more bytes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::varint::tests::encode_le;
    use super::*;

    /// The first byte of an entry.
    fn head(kind: u8, length: u8) -> u8 {
        0x80 | (kind << 3) | (length - 1)
    }

    /// A signed varint, as CPython's `write_signed_varint`.
    fn svarint(value: i32) -> Vec<u8> {
        let raw = if value < 0 { (value.unsigned_abs() << 1) | 1 } else { (value as u32) << 1 };
        encode_le(raw)
    }

    fn lines(table: &[u8], first_line: i32, units: u32) -> Result<Vec<Option<u32>>, DecodeError> {
        let mut cursor = LineCursor::new(table, first_line);
        (0..units).map(|u| cursor.line_at(u)).collect()
    }

    #[test]
    fn every_kind_of_entry_moves_the_line_as_locations_md_says() {
        let mut table = vec![head(0, 2), 0x12]; // short form: line 10, 2 units
        table.extend([head(11, 1), 4, 9]); // one-line form: +1 -> 11
        table.push(head(13, 1)); // no columns: -3 -> 8
        table.extend(svarint(-3));
        table.push(head(14, 3)); // long form: +5 -> 13
        table.extend(svarint(5));
        table.extend([2, 5, 20]);
        table.push(head(15, 1)); // no location
        table.extend([head(10, 1), 0, 1]); // one-line form, +0: back to 13
        assert_eq!(
            lines(&table, 10, 10),
            Ok(vec![Some(10), Some(10), Some(11), Some(8), Some(13), Some(13), Some(13), None, Some(13), None])
        );
    }

    #[test]
    fn no_location_entries_keep_the_running_line() {
        // As codeobject.c's `advance`: deltas after a "no location" entry count from the last
        // real start line.
        let mut table = vec![head(13, 1)];
        table.extend(svarint(4)); // 5
        table.push(head(15, 1)); // none
        table.push(head(13, 1));
        table.extend(svarint(1)); // 6
        assert_eq!(lines(&table, 1, 3), Ok(vec![Some(5), None, Some(6)]));
    }

    #[test]
    fn malformed_tables_are_errors() {
        assert!(matches!(lines(&[0x00], 1, 1), Err(DecodeError::BadLineTable { at: 0, .. })));
        assert!(matches!(lines(&[head(0, 1)], 1, 1), Err(DecodeError::BadLineTable { .. })));
        assert!(matches!(lines(&[head(10, 1), 1], 1, 1), Err(DecodeError::BadLineTable { .. })));
        let mut negative = vec![head(13, 1)];
        negative.extend(svarint(-5));
        assert!(matches!(lines(&negative, 1, 1), Err(DecodeError::BadLineTable { .. })));
    }

    #[test]
    fn units_past_the_table_have_no_line() {
        assert_eq!(lines(&[], 1, 2), Ok(vec![None, None]));
        assert_eq!(lines(&[head(0, 1), 0], 7, 3), Ok(vec![Some(7), None, None]));
    }
}
