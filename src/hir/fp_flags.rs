//! Where NumPy float64 arithmetic's floating-point exceptions are checked.
//!
//! NumPy warns (or raises, as `numpy.errstate` says) where a float64 scalar operation raises a
//! floating-point exception: invalid, divide by zero, overflow, underflow. The processor keeps
//! a sticky flag for each, so compiled code computes as NumPy does and checks the flags
//! (`Op::GuardFpFlags`), leaving for the interpreter to redo the operations (and warn) when
//! one is set. Python's own float arithmetic may set them too without NumPy reporting it: a
//! check then leaves for nothing, which is slow but not wrong; the flags are cleared
//! (`Op::ClearFpFlags`) where the function starts and where loops are entered, so that old
//! flags do not make every check fail.
//!
//! A loop that only computes (no stores, no calls, nothing the interpreter would see if it ran
//! the loop again) need not check after every operation: it checks once where it is left,
//! leaving to the loop's start if a flag is set, so that the interpreter runs the whole loop
//! again and warns where NumPy would. Every exit taken inside the loop checks first too
//! (`Exit::redo_from`): a guard failing after an operation that overflowed must not hand the
//! interpreter a frame past that operation. (`s += a[i] * b[i]` then costs no check at all per
//! iteration.)

use crate::hashing::{HashMap, HashSet};

use super::loops::{instr, jump, natural_loops, new_block, Loop};
use super::{BlockId, Edge, ExitId, ExitKind, Function, Instr, LoopEntry, Op, Terminator};

/// Moves the checks of loops that only compute to where they are left, then clears the flags
/// where the function starts and where loops with checks are entered. `loop_entries` give the
/// deopt exits to range loops' starts, valid on the edge entering the loop.
pub fn place_checks(func: &mut Function, loop_entries: &[LoopEntry]) {
    if !func.blocks.iter().flat_map(|b| &b.instrs).any(|i| i.op == Op::GuardFpFlags) {
        return;
    }
    let loops = natural_loops(func);
    let mut done: Vec<HashSet<BlockId>> = Vec::new();
    // Blocks whose checks follow a clear on entering their loop (and the checks made where
    // loops that only compute are left).
    let mut covered: HashSet<BlockId> = HashSet::default();
    for l in &loops {
        // (Outermost first: a loop inside one already done has no checks left.)
        if done.iter().any(|d| d.contains(&l.header)) {
            continue;
        }
        let start = loop_entries.iter().find(|e| e.header == l.header && l.entries == [e.from]).map(|e| e.exit);
        if let Some(start) = start {
            if let Some(checks) = check_when_left(func, l, start) {
                done.push(l.blocks.clone());
                covered.extend(checks);
            }
        }
    }
    // Clears: on entering each loop that checks inside or where it is left, and at the start
    // if a check elsewhere needs it.
    let mut clear_in: Vec<BlockId> = Vec::new();
    for l in &loops {
        let checks = l.blocks.iter().any(|b| func.block(*b).instrs.iter().any(|i| i.op == Op::GuardFpFlags))
            || done.iter().any(|d| *d == l.blocks);
        if let ([entry], true) = (&l.entries[..], checks) {
            clear_in.push(*entry);
            covered.extend(l.blocks.iter().copied());
        }
    }
    let elsewhere = func.block_ids().any(|b| !covered.contains(&b) && func.block(b).instrs.iter().any(|i| i.op == Op::GuardFpFlags));
    if elsewhere {
        clear_in.push(Function::ENTRY);
    }
    clear_in.sort();
    clear_in.dedup();
    for b in clear_in {
        // At the end of the block: every NumPy operation in it has its check before that (a
        // check merged into a later one is still in the same block).
        let at = func.block(b).end_at;
        func.blocks[b.index()].instrs.push(instr(None, Op::ClearFpFlags, at));
    }
}

/// Makes loop `l` check the flags only where it is left (see the module doc), if it only
/// computes: returns the blocks made for the checks. `start` is the deopt exit to its start.
fn check_when_left(func: &mut Function, l: &Loop, start: ExitId) -> Option<Vec<BlockId>> {
    if func.exit(start).kind != ExitKind::Deopt || l.entries.len() != 1 {
        return None;
    }
    let mut any = false;
    // Locals whose bound flag the exit to the start reads: the loop must not set them.
    let start_flags: HashSet<u32> = func
        .exit(start)
        .state
        .locals
        .iter()
        .enumerate()
        .filter(|(slot, v)| func.bound_flags.get(v) == Some(&(*slot as u32)))
        .map(|(slot, _)| slot as u32)
        .collect();
    for &b in &l.blocks {
        let block = func.block(b);
        if !matches!(block.terminator, Terminator::Jump(_) | Terminator::Branch { .. }) {
            return None;
        }
        for i in &block.instrs {
            match &i.op {
                Op::GuardFpFlags => any = true,
                Op::SetBound { local, .. } if !start_flags.contains(local) => {}
                Op::CheckEvalBreaker { .. } => {}
                op if computes_only(op) => {
                    if let Some(x) = i.exit {
                        if func.exit(x).kind != ExitKind::Deopt || func.exit(x).redo_from.is_some() {
                            return None;
                        }
                    }
                }
                _ => return None,
            }
        }
    }
    if !any {
        return None;
    }
    // Inside: no checks; every exit checks first (a copy of it: the exit may be shared).
    let mut copies: HashMap<ExitId, ExitId> = HashMap::default();
    let mut blocks: Vec<BlockId> = l.blocks.iter().copied().collect();
    blocks.sort();
    for &b in &blocks {
        let mut instrs = std::mem::take(&mut func.blocks[b.index()].instrs);
        instrs.retain(|i| i.op != Op::GuardFpFlags);
        for i in &mut instrs {
            if let Some(x) = &mut i.exit {
                *x = checking_copy(func, &mut copies, *x, start);
            }
            if let Op::CheckEvalBreaker { resume, .. } = &mut i.op {
                *resume = checking_copy(func, &mut copies, *resume, start);
            }
        }
        func.blocks[b.index()].instrs = instrs;
    }
    // Where it is left: a check on each edge leaving the loop.
    let mut made = Vec::new();
    for (b, which) in l.leaving_edges(func) {
        let edge = func.block(b).terminator.edges()[which].clone();
        let at = func.block(b).end_at;
        let check = Instr { result: None, op: Op::GuardFpFlags, exit: Some(start), at, deopt: None };
        let checked = new_block(func, edge.target, vec![], vec![check], jump(edge.target, edge.args));
        *func.blocks[b.index()].terminator.edges_mut()[which] = Edge { target: checked, args: vec![] };
        made.push(checked);
    }
    Some(made)
}

/// A copy of exit `x` that first checks the flags, leaving through `start` if one is set.
fn checking_copy(func: &mut Function, copies: &mut HashMap<ExitId, ExitId>, x: ExitId, start: ExitId) -> ExitId {
    *copies.entry(x).or_insert_with(|| {
        let mut exit = func.exit(x).clone();
        exit.redo_from = Some(start);
        func.exits.push(exit);
        ExitId(func.exits.len() as u32 - 1)
    })
}

/// Whether `op` only computes from values and memory (reads) the interpreter would compute
/// again: it may be run twice.
fn computes_only(op: &Op) -> bool {
    use Op::*;
    op.is_pure()
        || matches!(
            op,
            IntBinary { .. }
                | FloatBinary { .. }
                | Select { .. }
                | IntToFloat { .. }
                | FloatToInt { .. }
                | IntAbs(_)
                | MathCall { .. }
                | MathCall2 { .. }
                | GuardType { .. }
                | GuardNonNegative(_)
                | GuardIs { .. }
                | GuardArray { .. }
                | GuardIntRange { .. }
                | ArrayIndex { .. }
                | Unbox { .. }
        )
}
