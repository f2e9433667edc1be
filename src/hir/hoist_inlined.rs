//! Moves the guard of an inlined call (`hir::inline`) out of a loop that runs no Python code.
//!
//! An inlined call keeps, where the call was, the load of the global it calls and a guard that
//! it is still the function inlined (`LoadGlobal`, `GuardFunction`, `Decref`): in
//! `for j in range(n): s += eval_A(i, j) * u[j]` that is a dict-version check, a reference
//! taken and released and two compares on every iteration. Only Python code can rebind a
//! global (or a function's `__code__`). In a loop whose every operation runs none (machine
//! operations, checked item loads, boxing numbers, releasing objects whose release runs no
//! destructor), the only place Python code can run is the eval breaker on the back-edge, where
//! signal handlers and other threads run. So the global is checked once on entering the loop,
//! the loop's eval breakers leave for the interpreter once they have run (as with NumPy array
//! views: `CheckEvalBreaker::leave`), and in the loop the callable is the function itself, a
//! constant the compiled code keeps alive.
//!
//! The check on entering the loop must not raise where the interpreter would not (the loop may
//! not run at all, and it reads the global only after some of its body ran): it looks the
//! global up without raising (`PeekGlobal`) and, if that fails or finds another object, leaves
//! through a deopt exit with the frame as at the loop's header (the one the specialiser made
//! for the loop's entry: `Function::loop_entries`), and the interpreter runs the loop as
//! written. The pass runs inside the specialiser, before its clean-up.

use crate::hashing::{HashMap, HashSet};

use super::{Exit, ExitId, ExitKind, Function, Instr, Op, Terminator, Type, ValueId};

/// A function inlined into the compiled code: its address, its code object's, and the index
/// of the constant (in the caller's extended constant table) that is the function.
#[derive(Debug, Clone, Copy)]
pub struct Inlined {
    pub func: i64,
    pub code: i64,
    pub constant: u32,
}

/// A natural loop: its header and blocks (the header included).
struct Loop {
    header: usize,
    blocks: HashSet<usize>,
}

/// Hoists the guards of inlined calls out of the innermost loops around them that run no
/// Python code (see the module documentation). Returns how many were hoisted.
pub fn hoist(func: &mut Function, inlined: &[Inlined]) -> usize {
    // Unboxing to NumPy scalars allocates objects whose creation this pass does not vet.
    if inlined.is_empty() || !func.numpy_boxes.is_empty() {
        return 0;
    }
    let mut hoisted = 0;
    // One site at a time: each hoist changes the blocks the next analysis sees.
    while let Some(site) = find_site(func, inlined) {
        apply(func, site);
        hoisted += 1;
    }
    hoisted
}

/// A global load of an inlined function in a loop that can do without it.
struct Site {
    /// The `LoadGlobal`'s block and result.
    block: usize,
    value: ValueId,
    name: u32,
    function: Inlined,
    /// The block entering the loop (it ends with a jump to the header).
    preheader: usize,
    /// The exit the check on entering the loop takes (not yet in `func.exits`).
    entry_exit: Exit,
    /// The loop's blocks.
    blocks: HashSet<usize>,
}

fn find_site(func: &Function, inlined: &[Inlined]) -> Option<Site> {
    let loops = natural_loops(func);
    if loops.is_empty() {
        return None;
    }
    let uses = uses_of_values(func);
    let defs = func.defining_ops();
    for (b, block) in func.blocks.iter().enumerate() {
        for instr in &block.instrs {
            let (Op::LoadGlobal { name }, Some(value)) = (&instr.op, instr.result) else { continue };
            // Read only by guards that it is one inlined function, and released.
            let Some(readers) = uses.get(&value) else { continue };
            let mut function: Option<Inlined> = None;
            let only_guards = readers.iter().all(|op| match op {
                Op::GuardFunction { func: f, code, .. } => {
                    let known = inlined.iter().find(|i| i.func == *f && i.code == *code).copied();
                    let same = match (function, known) {
                        (Some(g), Some(k)) => g.func == k.func && g.code == k.code,
                        _ => true,
                    };
                    function = function.or(known);
                    known.is_some() && same
                }
                Op::Decref(_) => true,
                _ => false,
            });
            let Some(function) = function.filter(|_| only_guards) else { continue };
            // The innermost loop around it.
            let Some(l) = loops.iter().filter(|l| l.blocks.contains(&b)).min_by_key(|l| l.blocks.len()) else { continue };
            if !runs_no_python(func, l, &defs) {
                continue;
            }
            let Some((preheader, entry_exit)) = entry(func, l) else { continue };
            return Some(Site { block: b, value, name: *name, function, preheader, entry_exit, blocks: l.blocks.clone() });
        }
    }
    None
}

/// The operations reading each value (instructions only: a value passed along an edge or
/// returned is listed with a `Null` stand-in, which no caller accepts).
fn uses_of_values(func: &Function) -> HashMap<ValueId, Vec<Op>> {
    let mut uses: HashMap<ValueId, Vec<Op>> = HashMap::default();
    for block in &func.blocks {
        for instr in &block.instrs {
            for v in instr.op.operands() {
                uses.entry(v).or_default().push(instr.op.clone());
            }
        }
        let edge_args = block.terminator.edges().into_iter().flat_map(|e| e.args.clone());
        for v in block.terminator.operands().into_iter().chain(edge_args) {
            uses.entry(v).or_default().push(Op::Null);
        }
    }
    uses
}

/// The natural loops of `func` (see `loops::natural_loops`), by block index.
fn natural_loops(func: &Function) -> Vec<Loop> {
    super::loops::natural_loops(func)
        .into_iter()
        .map(|l| Loop { header: l.header.index(), blocks: l.blocks.iter().map(|b| b.index()).collect() })
        .collect()
}

/// Whether no operation of loop `l` can run Python code (or let another thread run), its eval
/// breakers aside.
fn runs_no_python(func: &Function, l: &Loop, defs: &HashMap<ValueId, &Op>) -> bool {
    let all_instrs = || func.blocks.iter().flat_map(|b| &b.instrs);
    // Arguments whose slot the function never changes: the frame holds them throughout.
    let kept_arg =
        |local: u32| !all_instrs().any(|i| matches!(i.op, Op::StoreLocal { local: l, .. } | Op::ClearLocal { local: l } if l == local));
    // Releasing one of these runs no destructor: a number just boxed, or an object something
    // else keeps alive (a constant, a kept argument, a global's value: nothing in the loop can
    // change the dict holding it).
    let harmless_release = |v: &ValueId| match defs.get(v) {
        Some(Op::LoadArg { local }) => kept_arg(*local),
        other => matches!(other, Some(Op::Box(_) | Op::Const { .. } | Op::LoadGlobal { .. } | Op::Null)),
    };
    // Locals that only ever hold numbers boxed by the compiled code (not an argument, which
    // the frame received): clearing one runs no destructor either.
    let number_local = |local: u32| {
        all_instrs().all(|i| match &i.op {
            Op::LoadArg { local: l } => *l != local,
            Op::StoreLocal { local: l, value } => *l != local || matches!(defs.get(value), Some(Op::Box(_) | Op::BoxIfBound { .. })),
            _ => true,
        })
    };
    l.blocks.iter().flat_map(|b| &func.blocks[*b].instrs).all(|instr| match &instr.op {
        // Their own code: another Python function, NumPy's error handling.
        Op::CallDirect { .. } | Op::UfuncCall { .. } => false,
        // Numbers are not tracked by the garbage collector: making one cannot start a
        // collection (whose finalisers would be Python code).
        Op::Box(_) => true,
        op if op.is_machine() => true,
        Op::Const { .. }
        | Op::Null
        | Op::LoadArg { .. }
        | Op::LoadGlobal { .. }
        | Op::Incref(_)
        | Op::StoreLocal { .. }
        | Op::CheckEvalBreaker { .. }
        | Op::CheckTracing
        | Op::IsNull(_)
        | Op::NonNull(_)
        | Op::IsNone(_)
        | Op::Is { .. } => true,
        Op::Decref(v) | Op::XDecref(v) => harmless_release(v),
        Op::ClearLocal { local } => number_local(*local),
        _ => false,
    })
}

/// The block entering loop `l` (its only predecessor outside the loop, ending with a jump to
/// the header) and the specialiser's deopt exit there, with the frame as at the header.
fn entry(func: &Function, l: &Loop) -> Option<(usize, Exit)> {
    let mut outside = func
        .blocks
        .iter()
        .enumerate()
        .filter(|(b, block)| !l.blocks.contains(b) && block.terminator.edges().iter().any(|e| e.target.index() == l.header));
    let (preheader, block) = outside.next()?;
    if outside.next().is_some() || !matches!(&block.terminator, Terminator::Jump(_)) {
        return None;
    }
    let entry = func.loop_entries.iter().find(|e| e.from.index() == preheader && e.header.index() == l.header)?;
    let mut exit = func.exits[entry.exit.index()].clone();
    exit.kind = ExitKind::Deopt;
    Some((preheader, exit))
}

fn apply(func: &mut Function, site: Site) {
    let Site { block, value, name, function, preheader, mut entry_exit, blocks } = site;
    // On entering the loop: the global, checked, released (the compiled code keeps the
    // function alive).
    let peeked = ValueId(func.values.len() as u32);
    func.values.push(Type::MaybeNull);
    entry_exit.release.push(peeked);
    func.exits.push(entry_exit);
    let exit = ExitId(func.exits.len() as u32 - 1);
    let at = func.blocks[block].instrs.iter().find(|i| i.result == Some(value)).map_or(0, |i| i.at);
    let instr = |op, result, exit| Instr { result, op, exit, at, deopt: None };
    func.blocks[preheader].instrs.extend([
        instr(Op::PeekGlobal { name }, Some(peeked), None),
        instr(Op::GuardFunction { value: peeked, func: function.func, code: function.code }, None, Some(exit)),
        // (Not NULL past the guard; its type still says it may be.)
        instr(Op::XDecref(peeked), None, None),
    ]);
    // In the loop: the function as a constant, neither checked nor counted.
    for block in &mut func.blocks {
        block.instrs.retain(|i| !matches!(i.op, Op::GuardFunction { value: v, .. } | Op::Decref(v) if v == value));
        for i in &mut block.instrs {
            if i.result == Some(value) {
                *i = Instr { result: Some(value), op: Op::Const { index: function.constant }, exit: None, at: i.at, deopt: None };
            }
        }
    }
    // Exits holding it hand the frame a reference of their own.
    for exit in &mut func.exits {
        exit.release.retain(|v| *v != value);
        let held = exit.state.locals.iter().chain(&exit.state.stack).any(|v| *v == value);
        if held && !exit.borrowed.contains(&value) {
            exit.borrowed.push(value);
        }
    }
    // Other threads and signal handlers may rebind the global while the eval breaker runs.
    for b in blocks {
        for i in &mut func.blocks[b].instrs {
            if let Op::CheckEvalBreaker { leave, .. } = &mut i.op {
                *leave = true;
            }
        }
    }
}
