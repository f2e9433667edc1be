//! Fewer clears of the floating-point exception flags (`Inst::ClearFpFlags`).
//!
//! A loop whose NumPy float64 arithmetic is checked where it is left clears the flags on
//! entering it (`hir::fp_flags`). Reading the flags (`stmxcsr`) waits for the floating-point
//! operations in flight, so for matmul's inner loop, entered once per `(i, j)`, the clear and
//! the check after it cost as much as several iterations. Yet on every entry but the first the
//! flags are known to be clear: the check after the loop found them so and nothing since
//! (integer arithmetic, a float64 store, the index checks) can set one.
//!
//! So: a clear is removed where the flags are clear on every path reaching it (a forward
//! "must" analysis: a clear or a passed check makes them clear; only instructions known not
//! to touch them keep them so). A clear that is needed only on entering an enclosing loop is
//! moved to that loop's preheader, one loop level at a time, as long as the analysis then
//! finds the original redundant: matmul's clear goes from the `k` loop's entry, run 12100
//! times, to before the `i` loop, run once.
//!
//! Correctness does not hinge on this: a flag left set only makes a check leave for the
//! interpreter, which redoes the work (slow, not wrong); the analysis keeps that from
//! happening where the code before did not.

use super::{Func, Inst};

/// Removes redundant clears and moves the rest out of loops where that makes them redundant
/// (see the module's comment).
pub fn reduce(func: &mut Func) {
    if !func.blocks.iter().flat_map(|b| &b.insts).any(|i| matches!(i, Inst::ClearFpFlags)) {
        return;
    }
    remove_redundant(func);
    let loops = super::loops::natural_loops(func);
    // Each round moves one clear one loop level out; the count of levels bounds the rounds.
    for _ in 0..=loops.len() {
        let mut moved = false;
        for (block, index) in clears(func) {
            // The innermost loop around the clear, and the block entering it.
            let Some((header, body)) = loops.iter().find(|(_, body)| body.contains(&block)) else { continue };
            let Some(pre) = super::loops::preheader(func, *header, body) else { continue };
            func.blocks[pre].insts.push(Inst::ClearFpFlags);
            if clear_before(func, block, index) {
                func.blocks[block].insts.remove(index);
                moved = true;
                break; // (the indices of the other clears may have changed)
            }
            func.blocks[pre].insts.pop();
        }
        if !moved {
            break;
        }
        remove_redundant(func);
    }
}

/// The clears, as (block, instruction index).
fn clears(func: &Func) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (b, block) in func.blocks.iter().enumerate() {
        for (i, inst) in block.insts.iter().enumerate() {
            if matches!(inst, Inst::ClearFpFlags) {
                out.push((b, i));
            }
        }
    }
    out
}

/// Removes the clears that find the flags clear already.
fn remove_redundant(func: &mut Func) {
    let entry = flags_clear_at_entry(func);
    for (b, block) in func.blocks.iter_mut().enumerate() {
        let mut clear = entry[b];
        block.insts.retain(|inst| {
            let redundant = clear && matches!(inst, Inst::ClearFpFlags);
            clear = after(inst, clear);
            !redundant
        });
    }
}

/// Whether the flags are clear on every path reaching instruction `index` of block `b`.
fn clear_before(func: &Func, b: usize, index: usize) -> bool {
    let entry = flags_clear_at_entry(func);
    func.blocks[b].insts[..index].iter().fold(entry[b], |clear, inst| after(inst, clear))
}

/// For each block: whether the flags are clear whenever it starts. The function's start
/// makes no promise; a block no path reaches keeps `true` (nothing runs there).
fn flags_clear_at_entry(func: &Func) -> Vec<bool> {
    let n = func.blocks.len();
    let mut entry = vec![true; n];
    if n == 0 {
        return entry;
    }
    entry[0] = false;
    let mut reached = vec![false; n];
    reached[0] = true;
    loop {
        let mut changed = false;
        let mut incoming: Vec<Option<bool>> = vec![None; n];
        for b in 0..n {
            if !reached[b] {
                continue;
            }
            let out = func.blocks[b].insts.iter().fold(entry[b], |clear, inst| after(inst, clear));
            for t in func.blocks[b].term.targets() {
                let slot = &mut incoming[t.block];
                *slot = Some(slot.unwrap_or(true) && out);
                if !reached[t.block] {
                    reached[t.block] = true;
                    changed = true;
                }
            }
        }
        for b in 1..n {
            if let Some(v) = incoming[b] {
                if v != entry[b] {
                    entry[b] = v;
                    changed = true;
                }
            }
        }
        if !changed {
            return entry;
        }
    }
}

/// Whether the flags are clear after `inst`, given whether they were before it.
fn after(inst: &Inst, clear: bool) -> bool {
    match inst {
        // A check that did not leave found them clear.
        Inst::ClearFpFlags | Inst::ExitIfFpFlags { .. } => true,
        _ => clear && keeps_flags(inst),
    }
}

/// Whether `inst` cannot set a floating-point exception flag: it runs no other code (no
/// calls; an eval-breaker check only if it leaves compiled code once the breaker has run) and
/// does no floating-point arithmetic (`Inst::may_set_fp_flags`).
fn keeps_flags(inst: &Inst) -> bool {
    let runs_no_code = match inst {
        Inst::Move { .. }
        | Inst::LoadFrame { .. }
        | Inst::StoreFrame { .. }
        | Inst::Load { .. }
        | Inst::Incref(_)
        | Inst::SetEq { .. }
        | Inst::Select { .. }
        | Inst::SetPrevInstr { .. }
        | Inst::ExitIfZero { .. }
        | Inst::ExitIfNegative { .. }
        | Inst::ExitIfTracing { .. }
        | Inst::IntArith { .. }
        | Inst::Compare { .. }
        | Inst::GuardType { .. }
        | Inst::ExitIfEqual { .. }
        | Inst::RangeIndex { .. }
        | Inst::RangeHasNext { .. }
        | Inst::RangeItem { .. }
        | Inst::LoadBoundFlag { .. }
        | Inst::SetBoundFlag { .. }
        | Inst::GuardFunction { .. }
        | Inst::GuardIs { .. }
        | Inst::ArrayIndex { .. }
        | Inst::LoadElement { .. }
        | Inst::StoreElement { .. }
        | Inst::ExitIfOutside { .. }
        | Inst::DirectArg { .. } => true,
        Inst::UnboxInt { exit, .. } => exit.is_some(),
        Inst::CheckEvalBreaker { leave, .. } => *leave,
        _ => false,
    };
    runs_no_code && !inst.may_set_fp_flags()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lir::test_support::{block, to};
    use crate::hir::{CompareOp, FloatOp, IntOp};
    use crate::lir::{Src, Term, VReg};


    fn lt(dst: u32, a: u32, b: u32) -> Inst {
        Inst::Compare { op: CompareOp::Lt, float: false, dst: VReg(dst), a: VReg(a), b: VReg(b) }
    }

    fn inc(dst: u32, a: u32) -> Inst {
        Inst::IntArith { op: IntOp::Add, dst: VReg(dst), a: VReg(a), b: Src::Imm(1), exit: None }
    }

    /// for j in range(%0): clear; for k in range(%0): %20 = %20 + %20; check
    /// L0(%0): %1 = 0; jump L1(%1)
    /// L1(%2 j): %3 = j < n; branch %3, L2, L6
    /// L2: %4 = j + 1; <middle>; clear; %5 = 0; jump L3(%5)
    /// L3(%6 k): %7 = k < n; branch %7, L4, L5
    /// L4: %8 = k + 1; %20 = float.Add %20, %20; jump L3(%8)
    /// L5: check (exit 0); jump L1(%4)
    /// L6: return %0
    fn nested(middle: Vec<Inst>) -> Func {
        let mut l2 = vec![inc(4, 2)];
        l2.extend(middle);
        l2.extend([Inst::ClearFpFlags, Inst::Move { dst: VReg(5), src: Src::Imm(0) }]);
        let blocks = vec![
            block(vec![0], vec![Inst::Move { dst: VReg(1), src: Src::Imm(0) }], Term::Jump(to(1, vec![1]))),
            block(vec![2], vec![lt(3, 2, 0)], Term::Branch { cond: VReg(3), if_true: to(2, vec![]), if_false: to(6, vec![]) }),
            block(vec![], l2, Term::Jump(to(3, vec![5]))),
            block(vec![6], vec![lt(7, 6, 0)], Term::Branch { cond: VReg(7), if_true: to(4, vec![]), if_false: to(5, vec![]) }),
            block(
                vec![],
                vec![inc(8, 6), Inst::FloatArith { op: FloatOp::Add, dst: VReg(20), a: VReg(20), b: VReg(20), exit: None }],
                Term::Jump(to(3, vec![8])),
            ),
            block(vec![], vec![Inst::ExitIfFpFlags { exit: 0 }], Term::Jump(to(1, vec![4]))),
            block(vec![], vec![], Term::Return(VReg(0))),
        ];
        Func { name: "t".into(), blocks, exits: vec![], nregs: 21, nlocalsplus: 0, float_regs: vec![false; 21], constants: Default::default(), derived: Default::default() }
    }

    fn clear_blocks(f: &Func) -> Vec<usize> {
        clears(f).into_iter().map(|(b, _)| b).collect()
    }

    #[test]
    fn the_inner_loops_clear_moves_before_the_outer_loop() {
        let mut f = nested(vec![]);
        reduce(&mut f);
        assert_eq!(clear_blocks(&f), vec![0]);
    }

    #[test]
    fn float_arithmetic_between_check_and_clear_keeps_the_clear_in_place() {
        let mut f = nested(vec![Inst::FloatArith { op: FloatOp::Mul, dst: VReg(21), a: VReg(20), b: VReg(20), exit: None }]);
        f.nregs = 22;
        reduce(&mut f);
        assert_eq!(clear_blocks(&f), vec![2]);
    }

    #[test]
    fn a_call_between_check_and_clear_keeps_the_clear_in_place() {
        let callee = crate::lir::Callee { name: "c", address: 0, returns_int: false };
        let mut f = nested(vec![Inst::Call { callee, args: vec![], ret: None }]);
        reduce(&mut f);
        assert_eq!(clear_blocks(&f), vec![2]);
    }

    #[test]
    fn a_second_clear_after_a_passed_check_goes() {
        let mut f = nested(vec![]);
        // A clear right after the check: redundant.
        f.blocks[5].insts.push(Inst::ClearFpFlags);
        remove_redundant(&mut f);
        assert_eq!(clear_blocks(&f), vec![2]);
    }
}
