//! If-conversion of conditional increments, on specialised HIR: `if c: x += k` of machine
//! ints `x` and `k` becomes `x += (k if c else 0)`, with no branch (a `Select`: a
//! conditional move). A condition the processor cannot predict costs a misprediction per
//! change of direction: counting the `True` items of a sieve's flags (`if f: count += 1`,
//! primes scattered among composites) took 5 of its 19 ms in branch misses.
//!
//! The add keeps its overflow exit and its frame state (that of `x += k` in the `if`'s
//! body): adding 0 cannot overflow, so it leaves only when `c` holds, where the interpreter
//! would have run the body. Only a body of constants and that one add (or subtract) is
//! converted, whose block the branch alone enters and which only jumps on to where the other
//! side of the branch goes, passing the new value for the old one.

use crate::hashing::HashSet;

use super::{Edge, Function, Instr, IntOp, Op, Terminator, Type, ValueId};

/// Converts every conditional increment of `func` (see the module doc).
pub fn conditional_increments(func: &mut Function) {
    let mut preds = vec![0usize; func.blocks.len()];
    for block in &func.blocks {
        for edge in block.terminator.edges() {
            preds[edge.target.index()] += 1;
        }
    }
    for b in 0..func.blocks.len() {
        let Terminator::Branch { cond, if_true, if_false } = func.blocks[b].terminator.clone() else { continue };
        for (body, other, when) in [(&if_true, &if_false, true), (&if_false, &if_true, false)] {
            let t = body.target.index();
            if t == b || preds[t] != 1 || !body.args.is_empty() || !func.blocks[t].params.is_empty() {
                continue;
            }
            let Some((add, out)) = increment(func, t, other) else { continue };
            let (x, k, r) = add;
            // In the branch's block: the body's constants, then x + (k if c else 0).
            let zero = new_value(func, Type::I64);
            let inc = new_value(func, Type::I64);
            let body_instrs = std::mem::take(&mut func.blocks[t].instrs);
            let (mut moved, adds): (Vec<Instr>, Vec<Instr>) = body_instrs.into_iter().partition(|i| i.result != Some(r));
            let Some(mut add_instr) = adds.into_iter().next() else { return };
            let at = add_instr.at;
            let op = match add_instr.op {
                Op::IntBinary { op: IntOp::Sub, .. } => IntOp::Sub,
                _ => IntOp::Add,
            };
            let (if_true, if_false) = if when { (k, zero) } else { (zero, k) };
            moved.push(Instr { result: Some(zero), op: Op::ConstI64 { value: 0, origin: None }, exit: None, at, deopt: None });
            moved.push(Instr { result: Some(inc), op: Op::Select { cond, if_true, if_false, ty: Type::I64 }, exit: None, at, deopt: None });
            add_instr.op = Op::IntBinary { op, lhs: x, rhs: inc };
            moved.push(add_instr);
            func.blocks[b].instrs.extend(moved);
            func.blocks[b].terminator = Terminator::Jump(out);
            // The body is no longer entered: it reads nothing (a jump to itself), so no value
            // stays live into it (the allocator stretches a value to its last use).
            func.blocks[t].terminator = Terminator::Jump(Edge { target: body.target, args: vec![] });
            preds[t] = 0;
            break;
        }
    }
}

/// If block `t` is a conditional increment joining `other` (see the module doc): the
/// incremented value, the increment, the result, and the edge to take in the branch's place.
fn increment(func: &Function, t: usize, other: &Edge) -> Option<((ValueId, ValueId, ValueId), Edge)> {
    let block = &func.blocks[t];
    let Terminator::Jump(out) = &block.terminator else { return None };
    if out.target != other.target || out.target.index() == t {
        return None;
    }
    let mut add = None;
    for instr in &block.instrs {
        match (&instr.op, instr.result) {
            (Op::ConstI64 { .. } | Op::ConstF64 { .. } | Op::ConstBool(_), Some(_)) if instr.exit.is_none() => {}
            (Op::IntBinary { op: op @ (IntOp::Add | IntOp::Sub), lhs, rhs }, Some(r)) if add.is_none() => add = Some((*op, *lhs, *rhs, r)),
            _ => return None,
        }
    }
    let (op, lhs, rhs, r) = add?;
    // The jump passes the result where the other side passes `x`, and the same elsewhere.
    if out.args.len() != other.args.len() {
        return None;
    }
    let mut x = None;
    for (a, o) in out.args.iter().zip(&other.args) {
        match (a == o, *a == r) {
            (true, false) => {}
            (false, true) if x.is_none() => x = Some(*o),
            _ => return None,
        }
    }
    // `x + k`, `k + x` or `x - k` (`k` a constant made here or a value from before).
    let x = x?;
    let k = match op {
        _ if lhs == x => rhs,
        IntOp::Add if rhs == x => lhs,
        _ => return None,
    };
    let defined: HashSet<ValueId> = block.instrs.iter().filter_map(|i| i.result).collect();
    if defined.contains(&x) || k == x {
        return None;
    }
    Some(((x, k, r), out.clone()))
}

fn new_value(func: &mut Function, ty: Type) -> ValueId {
    func.values.push(ty);
    ValueId(func.values.len() as u32 - 1)
}
