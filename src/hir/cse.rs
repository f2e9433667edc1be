//! Reuses the result of a machine operation that its block computes again with the same
//! operands: `(i + j) * (i + j + 1)` (an inlined `eval_A`) adds `i + j` once.
//!
//! Only operations on machine values whose result depends on nothing but their operands. One
//! with a deopt exit (an int add that may overflow) leaves the same way both times: if the first
//! did not leave, the second would not either, so the second (and its exit) goes.

use crate::hashing::{HashMap, HashSet};

use super::{Function, IntOp, Op, Terminator, ValueId};

/// Whether `op` computes its result from its operands alone (no memory, no effect).
fn repeatable(op: &Op) -> bool {
    matches!(
        op,
        Op::IntBinary { .. }
            | Op::FloatBinary { .. }
            | Op::IntToFloat { .. }
            | Op::IntCompare { .. }
            | Op::FloatCompare { .. }
            | Op::FloatNeg(_)
            | Op::BoolNot(_)
            | Op::IntAbs(_)
    )
}

/// Drops repeated machine operations within each block, renaming their results everywhere
/// to the first one's. Returns how many were dropped.
pub fn reuse_repeated(func: &mut Function) -> usize {
    // NumPy-scalar boxing names flags by value: left alone.
    if !func.numpy_boxes.is_empty() {
        return 0;
    }
    let mut renamed: HashMap<ValueId, ValueId> = HashMap::default();
    for block in &mut func.blocks {
        let mut seen: Vec<(Op, ValueId)> = Vec::new();
        block.instrs.retain_mut(|instr| {
            // (Operands defined earlier in the block are renamed already.)
            for operand in instr.op.operands_mut() {
                if let Some(first) = renamed.get(operand) {
                    *operand = *first;
                }
            }
            let Some(result) = instr.result.filter(|_| repeatable(&instr.op)) else { return true };
            if let Some((_, first)) = seen.iter().find(|(op, _)| *op == instr.op) {
                renamed.insert(result, *first);
                return false;
            }
            seen.push((instr.op.clone(), result));
            true
        });
    }
    if renamed.is_empty() {
        return 0;
    }
    let rename = |v: &mut ValueId| {
        if let Some(first) = renamed.get(v) {
            *v = *first;
        }
    };
    for block in &mut func.blocks {
        for instr in &mut block.instrs {
            instr.op.operands_mut().into_iter().for_each(rename);
        }
        match &mut block.terminator {
            Terminator::Branch { cond, .. } => rename(cond),
            Terminator::Return(v) => rename(v),
            Terminator::Jump(_) | Terminator::Exit(_) => {}
        }
        for edge in block.terminator.edges_mut() {
            edge.args.iter_mut().for_each(rename);
        }
    }
    for exit in &mut func.exits {
        let state = &mut exit.state;
        state.locals.iter_mut().chain(&mut state.stack).chain(&mut exit.release).chain(&mut exit.borrowed).for_each(rename);
        for (it, position) in &mut exit.range_positions {
            rename(it);
            rename(position);
        }
    }
    renamed.len()
}

/// Moves `a // b` next to an earlier `a % b` in the same block (or `a % b` next to an earlier
/// `a // b`), so the back end makes both with one division (`idiv` gives quotient and
/// remainder). Both fail on exactly the same operands (a zero divisor; `MIN // -1`), so once
/// the first succeeded the second cannot fail: it moves without its exit. Divisors that are
/// constant powers of two are left alone (a shift and a mask are cheaper). Returns how many
/// moved.
pub fn pair_divisions(func: &mut Function) -> usize {
    let powers_of_two: HashSet<ValueId> = func
        .blocks
        .iter()
        .flat_map(|b| &b.instrs)
        .filter(|i| matches!(i.op, Op::ConstI64 { value, .. } if value > 0 && value & (value - 1) == 0))
        .filter_map(|i| i.result)
        .collect();
    let power_of_two = |v: &ValueId| powers_of_two.contains(v);
    let mut moved = 0;
    for block in &mut func.blocks {
        let mut i = 0;
        while i < block.instrs.len() {
            let Op::IntBinary { op: first @ (IntOp::FloorDiv | IntOp::Mod), lhs, rhs } = block.instrs[i].op else {
                i += 1;
                continue;
            };
            let other = if first == IntOp::Mod { IntOp::FloorDiv } else { IntOp::Mod };
            let later = block.instrs[i + 1..]
                .iter()
                .position(|instr| matches!(instr.op, Op::IntBinary { op, lhs: l, rhs: r } if op == other && l == lhs && r == rhs));
            if let Some(k) = later.filter(|_| !power_of_two(&rhs)) {
                let mut second = block.instrs.remove(i + 1 + k);
                second.exit = None;
                second.deopt = None;
                block.instrs.insert(i + 1, second);
                moved += 1;
                i += 2;
            } else {
                i += 1;
            }
        }
    }
    // (The moved instructions' exits may now be unused: the specialiser's clean-up drops
    // them, after the passes that read `Function::loop_entries`' exit ids.)
    moved
}
