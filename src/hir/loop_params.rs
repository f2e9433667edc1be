//! Loop parameters only the code after a range loop reads, computed there instead of carried
//! around the loop.
//!
//! A range loop carries values its body never reads but the code after it (or an exit there)
//! does: the loop variable's previous value (`for k in range(n)` leaves `k` bound to the last
//! item; inside, the frame's `k` is the current position), a flag that the accumulator became
//! a NumPy scalar, constant after the first iteration. Each costs a move per iteration, and the
//! variable its bound flag's store. Both are known once the loop ends from the loop's position
//! alone: on the first iteration (the position still where it started) they are what entered
//! the loop; after that, the position's previous value, or the constant the back-edges pass.
//!
//! So where a loop header's parameter is passed, along every back-edge, the header's position
//! parameter itself (or one value defined outside the loop, or a constant) and nothing in the
//! loop reads it, the parameter goes: on the edge leaving the loop a branch on "position at its
//! start" rebuilds it, and the stores of its local's bound flag inside the loop go with it.

use crate::bitset::BitSet;
use crate::hashing::{HashMap, HashSet};

use super::loops::{instr, jump, natural_loops, new_block, new_value, Loop};
use super::{BlockId, CompareOp, Edge, Function, IntOp, Op, Terminator, Type, ValueId};

/// How a parameter's value after the loop's first iteration is made.
#[derive(Debug, Clone, Copy)]
enum Later {
    /// The position before the last step (`position - 1`).
    PreviousPosition,
    /// The same value on every back-edge, defined outside the loop.
    Invariant(ValueId),
    /// A constant (its operation) passed on every back-edge.
    Constant(ValueId),
}

/// Rebuilds after the loop the loop parameters that only code after the loop reads (see the
/// module doc). Returns whether anything changed.
pub fn rebuild_after_loops(func: &mut Function) -> bool {
    let mut changed = false;
    // One loop at a time: each changes the graph (the loops found before stay valid: blocks
    // are only added on the edges leaving a loop, outside it).
    for l in natural_loops(func) {
        changed |= rebuild_after(func, &l);
    }
    changed
}

fn rebuild_after(func: &mut Function, l: &Loop) -> bool {
    let h = l.header;
    let [entry] = l.entries[..] else { return false };
    // The loop is left only by the header's branch (no `break`).
    let leaving = l.leaving_edges(func);
    let [(from, which)] = leaving[..] else { return false };
    if from != h || !matches!(func.block(h).terminator, Terminator::Branch { .. }) {
        return false;
    }
    let params = func.block(h).params.clone();
    let entry_args = match edge_to(func, entry, h) {
        Some(args) => args,
        None => return false,
    };
    let mut back_args: Vec<Vec<ValueId>> = Vec::new();
    for &latch in &l.latches {
        for edge in func.block(latch).terminator.edges() {
            if edge.target == h {
                back_args.push(edge.args.clone());
            }
        }
    }
    // The operations defining the back-edges' arguments (owned: the function is changed below).
    let mut passed_back = BitSet::new(func.values.len());
    passed_back.extend(back_args.iter().flatten().map(|v| v.index()));
    let defs: HashMap<ValueId, Op> = func
        .blocks
        .iter()
        .flat_map(|b| &b.instrs)
        .filter_map(|i| i.result.filter(|r| passed_back.contains(r.index())).map(|r| (r, i.op.clone())))
        .collect();
    // The position: a parameter every back-edge passes its `RangeIndexNext`.
    let Some(q) = (0..params.len()).find(|&q| {
        back_args.iter().all(|args| matches!(defs.get(&args[q]), Some(Op::RangeIndexNext(p)) if *p == params[q]))
    }) else {
        return false;
    };
    let (position, start) = (params[q], entry_args[q]);
    let used_in_loop = values_read_in(func, l);
    let mut rebuilt: Vec<(usize, Later)> = Vec::new();
    for p in 0..params.len() {
        if p == q || used_in_loop.contains(params[p].index()) {
            continue;
        }
        let first = back_args[0][p];
        if !back_args.iter().all(|args| args[p] == first) {
            continue;
        }
        let later = if first == position {
            Later::PreviousPosition
        } else if matches!(defs.get(&first), Some(Op::ConstBool(_) | Op::ConstI64 { .. } | Op::ConstF64 { .. })) {
            Later::Constant(first)
        } else if !defined_in(func, l, first) && !func.bound_flags.contains_key(&first) {
            Later::Invariant(first)
        } else {
            continue;
        };
        rebuilt.push((p, later));
    }
    if rebuilt.is_empty() {
        return false;
    }
    // Parameters nothing after the loop reads just go (with their flags' stores).
    let read_after = values_read_outside(func, l, which);
    let (rebuilt, dropped): (Vec<(usize, Later)>, Vec<(usize, Later)>) =
        rebuilt.into_iter().partition(|(p, _)| read_after.contains(params[*p].index()));
    // Bound flags stored in the loop for the locals of rebuilt parameters go if nothing in the
    // loop reads them: the blocks made below set them for the code after the loop.
    let flag_locals: HashSet<u32> =
        rebuilt.iter().chain(&dropped).filter_map(|(p, _)| func.bound_flags.get(&params[*p]).copied()).collect();
    let read = flags_read_in(func, l);
    if flag_locals.iter().any(|local| read.contains(local)) {
        return false;
    }
    if rebuilt.is_empty() {
        remove_params(func, l, &params, &dropped, &flag_locals);
        return true;
    }

    // The leaving edge goes through: test (position at its start?) -> first | later -> join.
    let at = func.block(h).end_at;
    let leave_edge = func.blocks[h.index()].terminator.edges()[which].clone();
    let first_iteration = new_value(func, Type::CBool);
    let mut join_params = Vec::new();
    let (mut first_args, mut later_args) = (Vec::new(), Vec::new());
    let (mut first_instrs, mut later_instrs) = (Vec::new(), Vec::new());
    let mut replace: HashMap<ValueId, ValueId> = HashMap::default();
    for &(p, later) in &rebuilt {
        let old = params[p];
        let ty = func.type_of(old);
        let new = new_value(func, ty);
        join_params.push(new);
        replace.insert(old, new);
        let init = entry_args[p];
        first_args.push(init);
        let value = match later {
            Later::PreviousPosition => {
                let one = new_value(func, Type::I64);
                let previous = new_value(func, Type::I64);
                later_instrs.push(instr(Some(one), Op::ConstI64 { value: 1, origin: None }, at));
                later_instrs.push(instr(Some(previous), Op::IntBinary { op: IntOp::Sub, lhs: position, rhs: one }, at));
                previous
            }
            Later::Invariant(v) => v,
            Later::Constant(c) => {
                let copy = new_value(func, func.type_of(c));
                later_instrs.push(instr(Some(copy), defs[&c].clone(), at));
                copy
            }
        };
        later_args.push(value);
        if let Some(&local) = func.bound_flags.get(&old) {
            func.bound_flags.insert(new, local);
            if func.bound_flags.get(&init) != Some(&local) {
                first_instrs.push(instr(None, Op::SetBound { local, bound: func.type_of(init) != Type::Null }, at));
            }
            later_instrs.push(instr(None, Op::SetBound { local, bound: func.type_of(value) != Type::Null }, at));
        }
        if let Some(flag) = func.numpy_boxes.get(&old).copied() {
            func.numpy_boxes.insert(new, flag);
        }
    }
    let mut leave_args = leave_edge.args.clone();
    for a in &mut leave_args {
        *a = replace.get(a).copied().unwrap_or(*a);
    }
    let join = new_block(func, leave_edge.target, join_params, vec![], jump(leave_edge.target, leave_args));
    let first = new_block(func, leave_edge.target, vec![], first_instrs, jump(join, first_args));
    let later = new_block(func, leave_edge.target, vec![], later_instrs, jump(join, later_args));
    let test = new_block(
        func,
        leave_edge.target,
        vec![],
        vec![instr(Some(first_iteration), Op::IntCompare { op: CompareOp::Eq, lhs: position, rhs: start }, at)],
        Terminator::Branch {
            cond: first_iteration,
            if_true: Edge { target: first, args: vec![] },
            if_false: Edge { target: later, args: vec![] },
        },
    );
    *func.blocks[h.index()].terminator.edges_mut()[which] = Edge { target: test, args: vec![] };

    // Uses after the loop read the rebuilt values; the flags' stores in the loop go.
    let made: HashSet<BlockId> = [join, first, later, test].into_iter().collect();
    for b in func.block_ids().collect::<Vec<_>>() {
        if l.contains(b) || made.contains(&b) {
            continue;
        }
        let block = &mut func.blocks[b.index()];
        for i in &mut block.instrs {
            for v in i.op.operands_mut() {
                *v = replace.get(v).copied().unwrap_or(*v);
            }
        }
        if let Terminator::Branch { cond, .. } | Terminator::Return(cond) = &mut block.terminator {
            *cond = replace.get(cond).copied().unwrap_or(*cond);
        }
        for edge in block.terminator.edges_mut() {
            for a in &mut edge.args {
                *a = replace.get(a).copied().unwrap_or(*a);
            }
        }
    }
    for exit in &mut func.exits {
        for v in exit.state.locals.iter_mut().chain(&mut exit.state.stack).chain(&mut exit.release).chain(&mut exit.borrowed) {
            *v = replace.get(v).copied().unwrap_or(*v);
        }
        for (it, index) in &mut exit.range_positions {
            *it = replace.get(it).copied().unwrap_or(*it);
            *index = replace.get(index).copied().unwrap_or(*index);
        }
    }
    for flag in func.numpy_boxes.values_mut().flatten() {
        *flag = replace.get(flag).copied().unwrap_or(*flag);
    }
    let gone: Vec<(usize, Later)> = rebuilt.into_iter().chain(dropped).collect();
    remove_params(func, l, &params, &gone, &flag_locals);
    true
}

/// Removes the header parameters `gone` (with their arguments on every edge into the header)
/// and the stores of the bound flags of `flag_locals` inside the loop.
fn remove_params(func: &mut Function, l: &Loop, params: &[ValueId], gone: &[(usize, Later)], flag_locals: &HashSet<u32>) {
    for &b in &l.blocks {
        func.blocks[b.index()].instrs.retain(|i| !matches!(i.op, Op::SetBound { local, .. } if flag_locals.contains(&local)));
    }
    let h = l.header;
    let gone: HashSet<usize> = gone.iter().map(|(p, _)| *p).collect();
    let keep = |args: &[ValueId]| args.iter().enumerate().filter(|(i, _)| !gone.contains(i)).map(|(_, a)| *a).collect::<Vec<_>>();
    func.blocks[h.index()].params = keep(params);
    for b in 0..func.blocks.len() {
        for edge in func.blocks[b].terminator.edges_mut() {
            if edge.target == h {
                edge.args = keep(&edge.args);
            }
        }
    }
}

/// Every value read outside loop `l` (by blocks outside it, the exits they take, and along
/// the edge `which` by which the header leaves the loop).
fn values_read_outside(func: &Function, l: &Loop, which: usize) -> BitSet {
    let mut read = BitSet::new(func.values.len());
    read.extend(func.block(l.header).terminator.edges()[which].args.iter().map(|v| v.index()));
    for b in func.block_ids().filter(|b| !l.contains(*b)) {
        block_reads(func, b, &mut read);
        for edge in func.block(b).terminator.edges() {
            read.extend(edge.args.iter().map(|v| v.index()));
        }
    }
    read
}

/// What block `b` reads, its edges' arguments aside: operands, the flags of values it boxes,
/// its terminator's operands, what the exits it may take hold.
fn block_reads(func: &Function, b: BlockId, read: &mut BitSet) {
    let block = func.block(b);
    for i in &block.instrs {
        read.extend(i.op.operands().into_iter().map(|v| v.index()));
        read.extend(boxing_flag(func, &i.op).map(|v| v.index()));
    }
    read.extend(block.terminator.operands().into_iter().map(|v| v.index()));
    for x in block.referenced_exits() {
        exit_reads(func, x, read);
    }
}

/// The flag saying whether the value `op` boxes is a NumPy scalar (boxing reads it).
fn boxing_flag(func: &Function, op: &Op) -> Option<ValueId> {
    match op {
        Op::Box(v) | Op::BoxIfBound { value: v, .. } => func.numpy_boxes.get(v).copied().flatten(),
        _ => None,
    }
}

/// What exit `x` (and the one it may leave through instead) reads, with the flags boxing it.
fn exit_reads(func: &Function, x: super::ExitId, read: &mut BitSet) {
    let exit = func.exit(x);
    let redo = exit.redo_from.map(|r| func.exit(r));
    for exit in [Some(exit), redo].into_iter().flatten() {
        for v in exit.state.locals.iter().chain(&exit.state.stack).chain(&exit.release).chain(&exit.borrowed) {
            read.insert(v.index());
            if let Some(flag) = func.numpy_boxes.get(v).copied().flatten() {
                read.insert(flag.index());
            }
        }
        read.extend(exit.range_positions.iter().flat_map(|(it, index)| [it.index(), index.index()]));
    }
}

/// The arguments of `from`'s (only) edge to `to`.
fn edge_to(func: &Function, from: BlockId, to: BlockId) -> Option<Vec<ValueId>> {
    let edges: Vec<&Edge> = func.block(from).terminator.edges().into_iter().filter(|e| e.target == to).collect();
    match edges[..] {
        [edge] => Some(edge.args.clone()),
        _ => None,
    }
}

fn defined_in(func: &Function, l: &Loop, v: ValueId) -> bool {
    l.blocks.iter().any(|b| {
        let block = func.block(*b);
        block.params.contains(&v) || block.instrs.iter().any(|i| i.result == Some(v))
    })
}

/// Every value the loop's code reads: operands, branch conditions, arguments of edges within
/// the loop, what its exits hold (and the flags boxing those reads).
fn values_read_in(func: &Function, l: &Loop) -> BitSet {
    let mut read = BitSet::new(func.values.len());
    for &b in &l.blocks {
        block_reads(func, b, &mut read);
        for edge in func.block(b).terminator.edges() {
            if l.contains(edge.target) {
                // (A parameter passed back to itself is not read.)
                let params = &func.block(edge.target).params;
                read.extend(edge.args.iter().zip(params).filter(|(a, p)| a != p).map(|(a, _)| a.index()));
            }
        }
    }
    read
}

/// The locals whose bound flag the loop's code reads (unbound-local checks, boxing, exits).
fn flags_read_in(func: &Function, l: &Loop) -> HashSet<u32> {
    let mut read = HashSet::default();
    for &b in &l.blocks {
        let block = func.block(b);
        for i in &block.instrs {
            match i.op {
                Op::CheckFlag { local } | Op::BoxIfBound { local, .. } => {
                    read.insert(local);
                }
                _ => {}
            }
        }
        for x in block.referenced_exits() {
            let exit = func.exit(x);
            let redo = exit.redo_from.map(|r| func.exit(r));
            for exit in [Some(exit), redo].into_iter().flatten() {
                for (slot, v) in exit.state.locals.iter().enumerate() {
                    if func.bound_flags.get(v) == Some(&(slot as u32)) {
                        read.insert(slot as u32);
                    }
                }
            }
        }
    }
    read
}
