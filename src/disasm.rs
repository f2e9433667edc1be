//! `rjit.dis`'s listing, architecture-independent: each stage's IR as lines tagged with the
//! bytecode instruction (code unit) they come from, so the Python side can put the source
//! lines between them, and the machine code cut at the marks the backend recorded, each piece
//! under the LIR block or instruction it implements. The decoding itself is the backend's
//! (`backend::disassemble`: iced-x86 on x86-64).

use crate::backend::{self, Mark, MachineInst};
use crate::hir;
use crate::lir;

/// A line of an IR listing and the code unit it comes from (None: no single instruction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub unit: Option<u32>,
    pub text: String,
}

/// Pairs printed lines with their code units; if the printer's shape ever stops matching
/// (`units` of another length), the lines come untagged rather than mislabelled.
fn tag(text: String, units: Vec<Option<u32>>) -> Vec<Line> {
    let lines: Vec<&str> = text.lines().collect();
    let fits = lines.len() == units.len();
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| Line { unit: if fits { units[i] } else { None }, text: l.to_owned() })
        .collect()
}

/// The HIR printed (`hir::print`: a header, then per block its header, one line per
/// instruction and its terminator, then one line per exit), tagged.
pub fn hir_lines(func: &hir::Function) -> Vec<Line> {
    let mut units = vec![None];
    for block in &func.blocks {
        units.push(Some(block.offset));
        units.extend(block.instrs.iter().map(|i| Some(i.at)));
        units.push(Some(block.end_at));
    }
    units.extend(func.exits.iter().map(|e| Some(e.state.offset)));
    tag(func.to_string(), units)
}

/// The code unit of each LIR instruction, per block: its own (a frame position it records or
/// an exit it may take), else the one before it in the block, else the block's end.
pub fn lir_units(func: &lir::Func) -> Vec<Vec<u32>> {
    func.blocks
        .iter()
        .map(|block| {
            let own: Vec<Option<u32>> = block
                .insts
                .iter()
                .map(|inst| match inst {
                    lir::Inst::SetPrevInstr { offset } => Some(*offset),
                    lir::Inst::Decref { at, .. } | lir::Inst::XDecref { at, .. } | lir::Inst::ListSetItem { at, .. } => {
                        Some(*at)
                    }
                    other => other.exits().first().and_then(|e| func.exits.get(*e as usize)).map(|e| e.offset),
                })
                .collect();
            let mut last = own.iter().flatten().next().copied().unwrap_or(block.end_at);
            own.into_iter()
                .map(|u| {
                    last = u.unwrap_or(last);
                    last
                })
                .collect()
        })
        .collect()
}

/// The LIR printed (a header, then per block its header, instructions and terminator), tagged.
pub fn lir_lines(func: &lir::Func) -> Vec<Line> {
    let per_inst = lir_units(func);
    let mut units = vec![None];
    for (block, insts) in func.blocks.iter().zip(&per_inst) {
        units.push(Some(insts.first().copied().unwrap_or(block.end_at)));
        units.extend(insts.iter().map(|u| Some(*u)));
        units.push(Some(block.end_at));
    }
    tag(func.to_string(), units)
}

/// What a piece of machine code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceKind {
    Prologue,
    /// The start of a LIR block (its header; its code is in the pieces that follow).
    Block,
    Inst,
    Term,
    SlowPaths,
    Exit,
    /// Constants after the code: not decoded.
    Data,
}

impl PieceKind {
    pub fn name(self) -> &'static str {
        match self {
            PieceKind::Prologue => "prologue",
            PieceKind::Block => "block",
            PieceKind::Inst => "inst",
            PieceKind::Term => "term",
            PieceKind::SlowPaths => "slow",
            PieceKind::Exit => "exit",
            PieceKind::Data => "data",
        }
    }
}

/// A run of machine code and what it implements.
#[derive(Debug, Clone)]
pub struct Piece {
    pub kind: PieceKind,
    /// The LIR block (layout order) it belongs to, for blocks, instructions and terminators.
    pub block: Option<u32>,
    /// The LIR text it implements (a block header, an instruction, a terminator), or a
    /// description.
    pub label: String,
    /// The code unit it comes from, when one does.
    pub unit: Option<u32>,
    /// Byte range from the entry.
    pub start: u32,
    pub end: u32,
    /// The instructions (offsets from the entry); empty for data.
    pub insts: Vec<MachineInst>,
}

/// Cuts the machine code `bytes` (at `address`) at `marks` and decodes each piece. `lir` is
/// the LIR it was made from (rebuilt by `compiler::stages`), for the labels; without it, or if
/// it does not match the marks, the pieces are labelled by position only.
pub fn machine_pieces(bytes: &[u8], address: usize, marks: &[(Mark, u32)], lir: Option<&lir::Func>) -> Vec<Piece> {
    let lir = lir.filter(|f| matches_marks(f, marks));
    let lines = lir.map(lir_lines);
    let units = lir.map(lir_units);
    // Index of block b's header line in `lines` (1 + per earlier block: header, insts, term).
    let header_line = |b: usize| -> usize {
        1 + lir.map_or(0, |f| f.blocks[..b].iter().map(|blk| blk.insts.len() + 2).sum::<usize>())
    };
    let text = |line: usize| lines.as_ref().and_then(|l| l.get(line)).map(|l| l.text.trim().to_owned());
    let exit_label = |x: u32| match lir.and_then(|f| f.exits.get(x as usize)) {
        Some(e) => (format!("exit{x}: {:?} @{}", e.kind, e.offset * 2).to_lowercase(), Some(e.offset)),
        None => (format!("exit{x}"), None),
    };
    let size = bytes.len() as u32;
    let mut starts: Vec<(Option<Mark>, u32)> = vec![(None, 0)];
    starts.extend(marks.iter().map(|(m, at)| (Some(*m), *at)));
    let mut pieces = Vec::with_capacity(starts.len());
    for (i, (mark, start)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(size, |(_, at)| *at).min(size);
        let (kind, block, label, unit) = match *mark {
            None => (PieceKind::Prologue, None, "prologue: save registers, link the frame, count recursion".to_owned(), None),
            Some(Mark::Block(b)) => {
                let label = text(header_line(b as usize)).unwrap_or_else(|| format!("L{b}:"));
                let unit = units.as_ref().and_then(|u| u[b as usize].first().copied());
                (PieceKind::Block, Some(b), label, unit)
            }
            Some(Mark::Inst { block, inst }) => {
                let label = text(header_line(block as usize) + 1 + inst as usize).unwrap_or_else(|| format!("L{block} #{inst}"));
                let unit = units.as_ref().and_then(|u| u[block as usize].get(inst as usize).copied());
                (PieceKind::Inst, Some(block), label, unit)
            }
            Some(Mark::Term(b)) => {
                // The terminator, with a compare fused into it (the instructions not marked).
                let marked = marks
                    .iter()
                    .filter(|(m, _)| matches!(m, Mark::Inst { block, .. } if *block == b))
                    .count();
                let first = header_line(b as usize) + 1 + marked;
                let last = header_line(b as usize) + 1 + lir.map_or(0, |f| f.blocks[b as usize].insts.len());
                let label = (first..=last).filter_map(text).collect::<Vec<_>>().join("; ");
                let label = if label.is_empty() { format!("L{b} end") } else { label };
                (PieceKind::Term, Some(b), label, lir.map(|f| f.blocks[b as usize].end_at))
            }
            Some(Mark::SlowPaths) => (PieceKind::SlowPaths, None, "slow paths (eval breaker, deallocation)".to_owned(), None),
            Some(Mark::ExitStub(x)) => {
                let (label, unit) = exit_label(x);
                (PieceKind::Exit, None, label, unit)
            }
            Some(Mark::Data) => (PieceKind::Data, None, format!("constants ({} bytes)", end.saturating_sub(*start)), None),
        };
        let insts = if kind == PieceKind::Data || end <= *start {
            Vec::new()
        } else {
            let mut insts = backend::disassemble(&bytes[*start as usize..end as usize], (address + *start as usize) as u64);
            for inst in &mut insts {
                inst.offset += start;
            }
            insts
        };
        pieces.push(Piece { kind, block, label, unit, start: *start, end, insts });
    }
    pieces
}

/// Whether `lir` has the blocks and instructions the marks name (it is the LIR the machine
/// code was made from).
pub fn matches_marks(lir: &lir::Func, marks: &[(Mark, u32)]) -> bool {
    let blocks = marks.iter().filter(|(m, _)| matches!(m, Mark::Block(_))).count();
    let exits = marks.iter().filter(|(m, _)| matches!(m, Mark::ExitStub(_))).count();
    // Each block's instructions are all marked, but a compare fused into the terminator.
    let insts_match = lir.blocks.iter().enumerate().all(|(b, block)| {
        let marked = marks.iter().filter(|(m, _)| matches!(m, Mark::Inst { block, .. } if *block as usize == b)).count();
        marked == block.insts.len() || marked + 1 == block.insts.len()
    });
    blocks == lir.blocks.len() && exits == lir.exits.len() && insts_match
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_code_between_marks() {
        // push rbp; mov rbp, rsp | nop | ret | data
        let bytes = [0x55, 0x48, 0x89, 0xe5, 0x90, 0xc3, 0xde, 0xad];
        let marks = [(Mark::Block(0), 4), (Mark::Term(0), 5), (Mark::Data, 6)];
        let pieces = machine_pieces(&bytes, 0x1000, &marks, None);
        let kinds: Vec<PieceKind> = pieces.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [PieceKind::Prologue, PieceKind::Block, PieceKind::Term, PieceKind::Data]);
        assert_eq!(pieces[0].insts.len(), 2);
        assert_eq!(pieces[1].insts[0].text, "nop");
        assert_eq!(pieces[2].insts[0].text, "ret");
        assert_eq!(pieces[2].insts[0].offset, 5);
        assert!(pieces[3].insts.is_empty());
        assert_eq!(pieces[3].label, "constants (2 bytes)");
    }
}
