//! Batches the NumPy ufunc calls of a loop over its iterations (`runtime::ufunc_batch`).
//!
//! In `for i in range(a.shape[0]): trace += np.tanh(a[i, i])` each iteration calls NumPy's
//! float64 loop on one element, and most of that call is NumPy's per-call setup. Where
//!
//! - the loop runs no Python code (`hoist_inlined::loop_runs_no_python`) and stores nothing
//!   (so the array's elements cannot change while it runs),
//! - it counts up by one to a bound fixed on entering it (a range loop: its header compares its
//!   index `p < bound`, every back-edge passes `p + 1`), and
//! - the ufunc's argument is an element of an array (int64 or float64) whose address is
//!   `data + offset(p)`, `offset` made of additions and multiplications of `p` with values
//!   fixed in the loop (so elements of the next iterations lie `step` bytes apart, `step` its
//!   derivative, computed on entering the loop), and
//! - NumPy's loop gives each element of a chunk the bits it gives it alone
//!   (`runtime::ufunc_batch::lanes_agree`, probed once per NumPy loop and process),
//!
//! the call becomes `UfuncBatched`: the runtime reads the elements of the iterations left
//! (all valid: the specialiser checked the array's bounds for every index the loop can reach,
//! on entering it), calls NumPy's loop once per chunk of them and hands each iteration its
//! result. Each entry into the loop takes a new generation (`UfuncBatchBegin`), so results are
//! never reused across entries, only within the one that computed them; the loop's eval
//! breakers leave once they have run (signal handlers and other threads may change the array).
//! A function batches at most `runtime::UFUNC_BATCH_SLOTS` calls: the chunks each thread keeps.

use crate::hashing::{HashMap, HashSet};

use super::{ExitKind, Function, Instr, IntOp, Op, Terminator, Type, ValueId};
use crate::numpy::DType;

/// Batches the ufunc calls of loops where that is sound (see the module documentation).
/// Returns how many calls were batched.
pub fn batch(func: &mut Function) -> usize {
    let mut batched = 0;
    // One call at a time: each changes the instructions the next analysis sees.
    while let Some(site) = find_site(func) {
        apply(func, site);
        batched += 1;
    }
    batched
}

/// A ufunc call to batch.
struct Site {
    /// The call's block and position.
    block: usize,
    instr: usize,
    function: i64,
    data: i64,
    dtype: DType,
    /// The array's data pointer and the element's byte offset.
    base: ValueId,
    offset: ValueId,
    /// The loop's index (a header parameter) and bound.
    index: ValueId,
    bound: ValueId,
    /// The block entering the loop, and the loop's blocks.
    preheader: usize,
    blocks: HashSet<usize>,
    /// The derivative of the offset in the index: a sum of products of values available in
    /// the preheader (an empty product is 1).
    step: Vec<Vec<Leaf>>,
}

/// A factor of the step.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Leaf {
    /// A value defined outside the loop.
    Value(ValueId),
    /// An int constant (made again in the preheader).
    Const(i64),
}

fn find_site(func: &Function) -> Option<Site> {
    // (Each batched call keeps a chunk of its own while its loop runs.)
    let batched = func.blocks.iter().flat_map(|b| &b.instrs).filter(|i| matches!(i.op, Op::UfuncBatched { .. })).count();
    if batched >= crate::runtime::UFUNC_BATCH_SLOTS {
        return None;
    }
    let defs = func.defining_ops();
    // The block defining each instruction's result and each block parameter.
    let mut def_block: HashMap<ValueId, usize> = HashMap::default();
    for (b, block) in func.blocks.iter().enumerate() {
        def_block.extend(block.params.iter().map(|p| (*p, b)));
        def_block.extend(block.instrs.iter().filter_map(|i| Some((i.result?, b))));
    }
    for l in super::loops::natural_loops(func) {
        let blocks: HashSet<usize> = l.blocks.iter().map(|b| b.index()).collect();
        let inside = |v: &ValueId| def_block.get(v).is_some_and(|b| blocks.contains(b));
        let calls: Vec<(usize, usize)> = blocks
            .iter()
            .flat_map(|&b| {
                func.blocks[b].instrs.iter().enumerate().filter(|(_, i)| matches!(&i.op, Op::UfuncCall { args, .. } if args.len() == 1)).map(move |(k, _)| (b, k))
            })
            .collect();
        if calls.is_empty() {
            continue;
        }
        let Some((preheader, index, bound)) = counted_loop(func, &l, &defs, &inside) else { continue };
        let stores = blocks.iter().flat_map(|b| &func.blocks[*b].instrs).any(|i| matches!(i.op, Op::StoreElement { .. }));
        if stores || !super::hoist_inlined::loop_runs_no_python(func, l.header.index(), &blocks) {
            continue;
        }
        for (b, k) in calls {
            let instr = &func.blocks[b].instrs[k];
            let Op::UfuncCall { function, data, args } = &instr.op else { continue };
            if !instr.exit.is_some_and(|x| func.exit(x).kind == ExitKind::Deopt) {
                continue;
            }
            // SAFETY: the specialiser's UfuncCall calls a ufunc's float64 loop of one argument.
            if !unsafe { crate::runtime::ufunc_lanes_agree(*function as usize, *data as usize) } {
                continue;
            }
            // The argument: an element, as a float64.
            let element = match defs.get(&args[0]) {
                Some(Op::IntToFloat { value, exact: false }) => match defs.get(value) {
                    Some(Op::LoadElement { data, offset, dtype: DType::I64 }) => Some((*data, *offset, DType::I64)),
                    _ => None,
                },
                Some(Op::LoadElement { data, offset, dtype: DType::F64 }) => Some((*data, *offset, DType::F64)),
                _ => None,
            };
            let Some((base, offset, dtype)) = element else { continue };
            if inside(&base) {
                continue;
            }
            let Some(step) = derivative(offset, index, &defs, &inside) else { continue };
            if step.is_empty() {
                continue;
            }
            let blocks = blocks.clone();
            return Some(Site { block: b, instr: k, function: *function, data: *data, dtype, base, offset, index, bound, preheader, blocks, step });
        }
    }
    None
}

/// The block entering loop `l`, its index and its bound, if the loop counts its index up by
/// one from entry to a bound fixed in the loop (see the module documentation).
fn counted_loop(
    func: &Function,
    l: &super::loops::Loop,
    defs: &HashMap<ValueId, &Op>,
    inside: &dyn Fn(&ValueId) -> bool,
) -> Option<(usize, ValueId, ValueId)> {
    let [preheader] = l.entries[..] else { return None };
    if !matches!(func.block(preheader).terminator, Terminator::Jump(_)) {
        return None;
    }
    let header = func.block(l.header);
    // `p < bound` goes into the loop (a negated test: the other edge).
    let Terminator::Branch { cond, if_true, if_false } = &header.terminator else { return None };
    let (test, into) = match defs.get(cond) {
        Some(Op::BoolNot(c)) => (*c, if_false),
        _ => (*cond, if_true),
    };
    if !l.contains(into.target) {
        return None;
    }
    let Some(Op::IntCompare { op: super::CompareOp::Lt, lhs, rhs }) = defs.get(&test) else { return None };
    let position = header.params.iter().position(|p| p == lhs)?;
    if inside(rhs) {
        return None;
    }
    // Every way back passes the index plus one.
    for latch in &l.latches {
        for edge in func.block(*latch).terminator.edges() {
            if edge.target == l.header && !matches!(defs.get(&edge.args[position]), Some(Op::RangeIndexNext(p)) if p == lhs) {
                return None;
            }
        }
    }
    Some((preheader.index(), *lhs, *rhs))
}

/// The derivative of `v` in `index` as a sum of products of leaves, if `v` is made of
/// additions and multiplications (that cannot leave) of `index` and values fixed in the loop,
/// linearly.
fn derivative(v: ValueId, index: ValueId, defs: &HashMap<ValueId, &Op>, inside: &dyn Fn(&ValueId) -> bool) -> Option<Vec<Vec<Leaf>>> {
    if v == index {
        return Some(vec![vec![]]);
    }
    let fixed = |v: ValueId| -> Option<Leaf> {
        match defs.get(&v) {
            _ if !inside(&v) => Some(Leaf::Value(v)),
            Some(Op::ConstI64 { value, .. }) => Some(Leaf::Const(*value)),
            _ => None,
        }
    };
    if fixed(v).is_some() {
        return Some(vec![]);
    }
    match defs.get(&v) {
        Some(Op::IntBinary { op: IntOp::Add, lhs, rhs }) => {
            let mut terms = derivative(*lhs, index, defs, inside)?;
            terms.extend(derivative(*rhs, index, defs, inside)?);
            Some(terms)
        }
        Some(Op::IntBinary { op: IntOp::Mul, lhs, rhs }) => {
            let (varying, factor) = match (fixed(*lhs), fixed(*rhs)) {
                (Some(f), None) => (*rhs, f),
                (None, Some(f)) => (*lhs, f),
                (Some(_), Some(_)) => return Some(vec![]),
                (None, None) => return None,
            };
            let mut terms = derivative(varying, index, defs, inside)?;
            for t in &mut terms {
                t.push(factor);
            }
            Some(terms)
        }
        _ => None,
    }
}

fn apply(func: &mut Function, site: Site) {
    let Site { block, instr, function, data, dtype, base, offset, index, bound, preheader, blocks, step } = site;
    let at = func.blocks[block].instrs[instr].at;
    let fresh = |func: &mut Function| {
        func.values.push(Type::I64);
        ValueId(func.values.len() as u32 - 1)
    };
    // On entering the loop: a generation, and the step between elements.
    let mut entry: Vec<Instr> = Vec::new();
    let emit = |func: &mut Function, entry: &mut Vec<Instr>, op: Op| {
        let r = fresh(func);
        entry.push(Instr { result: Some(r), op, exit: None, at, deopt: None });
        r
    };
    let generation = emit(func, &mut entry, Op::UfuncBatchBegin);
    let mut sum: Option<ValueId> = None;
    for term in step {
        let mut product: Option<ValueId> = None;
        for leaf in term {
            let v = match leaf {
                Leaf::Value(v) => v,
                Leaf::Const(value) => emit(func, &mut entry, Op::ConstI64 { value, origin: None }),
            };
            product = Some(match product {
                None => v,
                Some(p) => emit(func, &mut entry, Op::IntBinary { op: IntOp::Mul, lhs: p, rhs: v }),
            });
        }
        let product = match product {
            Some(p) => p,
            None => emit(func, &mut entry, Op::ConstI64 { value: 1, origin: None }),
        };
        sum = Some(match sum {
            None => product,
            Some(s) => emit(func, &mut entry, Op::IntBinary { op: IntOp::Add, lhs: s, rhs: product }),
        });
    }
    let step = sum.expect("a step of at least one term");
    func.blocks[preheader].instrs.extend(entry);
    // At the call: the element's address and the iterations left.
    let address = fresh(func);
    let remaining = fresh(func);
    let call = &mut func.blocks[block].instrs[instr];
    call.op = Op::UfuncBatched { function, data, dtype, generation, address, step, remaining };
    func.blocks[block].instrs.splice(
        instr..instr,
        [
            Instr { result: Some(address), op: Op::IntBinary { op: IntOp::Add, lhs: base, rhs: offset }, exit: None, at, deopt: None },
            Instr { result: Some(remaining), op: Op::IntBinary { op: IntOp::Sub, lhs: bound, rhs: index }, exit: None, at, deopt: None },
        ],
    );
    // Signal handlers and other threads may change the array while the eval breaker runs:
    // the loop leaves then (results computed before would be stale).
    for b in blocks {
        for i in &mut func.blocks[b].instrs {
            if let Op::CheckEvalBreaker { leave, .. } = &mut i.op {
                *leave = true;
            }
        }
    }
}
