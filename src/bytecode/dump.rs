//! The printed form of a decoded code object, close to `dis`' so the two can be read side by
//! side: byte offsets (as `dis`), `>>` at block starts, the line number where a line starts,
//! jump targets resolved. Deterministic: it is what snapshot tests and `rjit.dis` show.
//!
//! ```text
//!     2        2 LOAD_CONST               1
//!              4 STORE_FAST               1
//!     3        6 LOAD_FAST                0
//!              8 GET_ITER
//!       >>    10 FOR_ITER                 9 (to 30)
//!       >>    12 STORE_FAST               2
//! ```

use std::fmt;

use super::{op, Bytecode, ExceptionEntry, Instr};

/// Widths of the columns: line, byte offset, opcode name (`dis`' `_OPNAME_WIDTH`) and
/// argument (`_OPARG_WIDTH`). A longer name pushes the argument right, as in `dis`.
const LINE_WIDTH: usize = 5;
const OFFSET_WIDTH: usize = 5;
const NAME_WIDTH: usize = 20;
const ARG_WIDTH: usize = 5;

impl fmt::Display for Bytecode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line_starts = self.line_starts().peekable();
        for (index, instr) in self.instrs().iter().enumerate() {
            let line = line_starts.next_if(|(i, _)| *i == index).map(|(_, line)| line);
            let block = index > 0 && self.is_block_start(index);
            self.write_instr(f, instr, line, block)?;
        }
        if !self.exception_table().is_empty() {
            writeln!(f, "ExceptionTable:")?;
            for entry in self.exception_table() {
                write_entry(f, entry)?;
            }
        }
        Ok(())
    }
}

impl Bytecode {
    /// One instruction's line: line number (at a line start), block marker, byte offset,
    /// name, argument (for opcodes that take one) and jump target.
    fn write_instr(&self, f: &mut fmt::Formatter<'_>, instr: &Instr, line: Option<u32>, block: bool) -> fmt::Result {
        match line {
            Some(line) => write!(f, "{line:>LINE_WIDTH$}")?,
            None => write!(f, "{:LINE_WIDTH$}", "")?,
        }
        let marker = if block { ">>" } else { "  " };
        write!(f, " {marker} {:>OFFSET_WIDTH$} ", instr.offset * 2)?;
        if instr.opcode >= op::HAVE_ARGUMENT {
            write!(f, "{:<NAME_WIDTH$} {:>ARG_WIDTH$}", instr.name(), instr.arg)?;
        } else {
            write!(f, "{}", instr.name())?;
        }
        if let Some(target) = self.jump_target(instr) {
            write!(f, " (to {})", target * 2)?;
        }
        writeln!(f)
    }
}

/// One exception-table entry as `dis` prints it: byte offsets, the end inclusive (the last
/// covered unit), the stack depth in brackets.
fn write_entry(f: &mut fmt::Formatter<'_>, entry: &ExceptionEntry) -> fmt::Result {
    let last = entry.end.saturating_sub(1) * 2;
    let lasti = if entry.lasti { " lasti" } else { "" };
    writeln!(f, "  {} to {} -> {} [{}]{lasti}", entry.start * 2, last, entry.target * 2, entry.depth)
}
