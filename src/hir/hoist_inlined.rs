//! Moves the guard of an inlined call (`hir::inline`), or of a builtin, `math` or NumPy function
//! called as machine code, out of a loop that runs no Python code.
//!
//! An inlined call keeps, where the call was, the load of the global it calls and a guard that
//! it is still the function inlined (`LoadGlobal`, `GuardFunction`, `Decref`): in
//! `for j in range(n): s += eval_A(i, j) * u[j]` that is a dict-version check, a reference
//! taken and released and two compares on every iteration. A function compiled as machine code
//! keeps the same, with the attribute load of a module in between for `np.tanh(x)` or
//! `math.sqrt(x)` (`LoadGlobal`, `LoadAttr`, `GuardIs`, `Decref`s). Only Python code can rebind
//! a global, a module's attribute (or a function's `__code__`). In a loop whose every operation runs none (machine
//! operations, checked item loads, boxing numbers, releasing objects whose release runs no
//! destructor), the only place Python code can run is the eval breaker on the back-edge, where
//! signal handlers and other threads run. So the global is checked once on entering the loop,
//! the loop's eval breakers leave for the interpreter once they have run (as with NumPy array
//! views: `CheckEvalBreaker::leave`), and in the loop the callable is the function itself, a
//! constant the compiled code keeps alive (`Const`, or `ConstObject` for the object a `GuardIs`
//! compares with, which the compiler keeps alive).
//!
//! The check on entering the loop must not raise where the interpreter would not (the loop may
//! not run at all, and it reads the global only after some of its body ran): it looks the
//! global (and the module's attribute) up without raising (`PeekGlobal`, `PeekAttr`: no Python
//! code runs, not even a module's `__getattr__`) and, if that fails or finds another object, leaves
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

/// Hoists the guards of inlined calls and of functions called as machine code out of the
/// innermost loops around them that run no Python code (see the module documentation).
/// Returns how many were hoisted.
pub fn hoist(func: &mut Function, inlined: &[Inlined]) -> usize {
    let mut hoisted = 0;
    // One site at a time: each hoist changes the blocks the next analysis sees.
    while let Some(site) = find_site(func, inlined) {
        apply(func, site);
        hoisted += 1;
    }
    hoisted
}

/// What the loaded object is checked to be where the code uses it.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// An inlined function (`GuardFunction`).
    Function(Inlined),
    /// The object at this address (`GuardIs`), which the compiler keeps alive.
    Object(i64),
}

/// A load of a global (and of an attribute of it) read only by guards of one kind and
/// releases: what a loop that runs no Python code can check once on entering.
#[derive(Debug, Clone, Copy)]
struct Load {
    /// The `LoadGlobal`'s block, result and name.
    block: usize,
    global: ValueId,
    name: u32,
    /// The `LoadAttr` of the global (result and name), if the guards check its attribute.
    attr: Option<(ValueId, u32)>,
    check: Check,
}

impl Load {
    /// The value the guards check.
    fn checked(&self) -> ValueId {
        self.attr.map_or(self.global, |(a, _)| a)
    }
}

/// A load in a loop that can do without it.
struct Site {
    load: Load,
    /// The block entering the loop (it ends with a jump to the header).
    preheader: usize,
    /// The exit the check on entering the loop takes (not yet in `func.exits`).
    entry_exit: Exit,
    /// The loop's blocks.
    blocks: HashSet<usize>,
}

fn find_site(func: &Function, inlined: &[Inlined]) -> Option<Site> {
    let loads = find_loads(func, inlined);
    if loads.is_empty() {
        return None;
    }
    let loops = natural_loops(func);
    if loops.is_empty() {
        return None;
    }
    let defs = func.defining_ops();
    for load in &loads {
        // The innermost loop around it.
        let Some(l) = loops.iter().filter(|l| l.blocks.contains(&load.block)).min_by_key(|l| l.blocks.len()) else { continue };
        if !runs_no_python(func, l, &defs, &loads) {
            continue;
        }
        let Some((preheader, entry_exit)) = entry(func, l) else { continue };
        return Some(Site { load: *load, preheader, entry_exit, blocks: l.blocks.clone() });
    }
    None
}

/// The loads of globals (and of their attributes) that only guards and releases read.
fn find_loads(func: &Function, inlined: &[Inlined]) -> Vec<Load> {
    if !func.blocks.iter().flat_map(|b| &b.instrs).any(|i| matches!(i.op, Op::LoadGlobal { .. })) {
        return Vec::new();
    }
    let uses = uses_of_values(func);
    // The attribute loads of each object.
    let mut attrs: HashMap<ValueId, Vec<(ValueId, u32)>> = HashMap::default();
    for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
        if let (Op::LoadAttr { obj, name }, Some(r)) = (&instr.op, instr.result) {
            attrs.entry(*obj).or_default().push((r, *name));
        }
    }
    // Values an exit hands to the frame (the global itself must not be: it is no longer made).
    let held: HashSet<ValueId> = func.exits.iter().flat_map(|e| e.state.locals.iter().chain(&e.state.stack)).copied().collect();
    let mut loads = Vec::new();
    for (b, block) in func.blocks.iter().enumerate() {
        for instr in &block.instrs {
            let (Op::LoadGlobal { name }, Some(global)) = (&instr.op, instr.result) else { continue };
            let Some(readers) = uses.get(&global) else { continue };
            let load = |attr, check| Load { block: b, global, name: *name, attr, check };
            if let Some(check) = guards_only(readers, inlined) {
                loads.push(load(None, check));
                continue;
            }
            // `module.f`: the global read by one attribute load (and released), the attribute
            // by guards.
            let one_attr = match attrs.get(&global).map(Vec::as_slice) {
                Some([attr]) => Some(*attr),
                _ => None,
            };
            let Some((a, attr_name)) = one_attr else { continue };
            let only_attr = readers.iter().all(|op| matches!(op, Op::LoadAttr { .. } | Op::Decref(_)));
            let check = uses.get(&a).and_then(|r| guards_only(r, &[])).filter(|c| matches!(c, Check::Object(_)));
            if let (true, false, Some(check)) = (only_attr, held.contains(&global), check) {
                loads.push(load(Some((a, attr_name)), check));
            }
        }
    }
    loads
}

/// What `readers` (the operations reading a value) check it to be, if they are guards that
/// agree (all that it is one inlined function, or all that it is one object) and releases.
fn guards_only(readers: &[Op], inlined: &[Inlined]) -> Option<Check> {
    let mut check: Option<Check> = None;
    for op in readers {
        let this = match op {
            Op::GuardFunction { func: f, code, .. } => Check::Function(*inlined.iter().find(|i| i.func == *f && i.code == *code)?),
            Op::GuardIs { expected, .. } => Check::Object(*expected),
            Op::Decref(_) => continue,
            _ => return None,
        };
        let same = match (check, this) {
            (None, _) => true,
            (Some(Check::Function(g)), Check::Function(k)) => g.func == k.func && g.code == k.code,
            (Some(Check::Object(x)), Check::Object(y)) => x == y,
            _ => false,
        };
        if !same {
            return None;
        }
        check = Some(this);
    }
    check
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

/// Whether no operation of the loop of `blocks` (by index) can run Python code (or let another
/// thread run), its eval breakers aside (for `ufunc_batch`, after this pass).
pub(super) fn loop_runs_no_python(func: &Function, header: usize, blocks: &HashSet<usize>) -> bool {
    runs_no_python(func, &Loop { header, blocks: blocks.clone() }, &func.defining_ops(), &[])
}

/// Whether no operation of loop `l` can run Python code (or let another thread run), its eval
/// breakers aside. The loads in `loads` (and their releases) count as gone: each is hoisted in
/// turn.
fn runs_no_python(func: &Function, l: &Loop, defs: &HashMap<ValueId, &Op>, loads: &[Load]) -> bool {
    let all_instrs = || func.blocks.iter().flat_map(|b| &b.instrs);
    let hoisted: HashSet<ValueId> = loads.iter().flat_map(|s| [s.global, s.checked()]).collect();
    // Arguments whose slot the function never changes: the frame holds them throughout.
    let kept_arg =
        |local: u32| !all_instrs().any(|i| matches!(i.op, Op::StoreLocal { local: l, .. } | Op::ClearLocal { local: l } if l == local));
    // Releasing one of these runs no destructor: a number just boxed, or an object something
    // else keeps alive (a constant, a kept argument, a global's value: nothing in the loop can
    // change the dict holding it).
    let harmless_release = |v: &ValueId| match defs.get(v) {
        Some(Op::LoadArg { local }) => kept_arg(*local),
        _ if hoisted.contains(v) => true,
        other => matches!(other, Some(Op::Box(_) | Op::Const { .. } | Op::LoadGlobal { .. } | Op::PeekGlobal { .. } | Op::Null)),
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
    let runs_no_python_op = |instr: &Instr| match &instr.op {
            // Another Python function's code.
            Op::CallDirect { .. } => false,
            // NumPy's inner loop for float64 is C code; a floating-point exception it raises is
            // left to the interpreter (a deopt), which warns as NumPy does.
            Op::UfuncCall { .. } => true,
            // Numbers are not tracked by the garbage collector: making one cannot start a
            // collection (whose finalisers would be Python code). (NumPy scalars: not vetted.)
            Op::Box(v) | Op::BoxIfBound { value: v, .. } => !func.numpy_boxes.contains_key(v),
            op if op.is_machine() || op.runs_no_code() => true,
            Op::LoadAttr { .. } => instr.result.is_some_and(|r| hoisted.contains(&r)),
            Op::Decref(v) | Op::XDecref(v) => harmless_release(v),
            Op::ClearLocal { local } => number_local(*local),
            _ => false,
        };
    l.blocks.iter().all(|b| {
        let instrs = &func.blocks[*b].instrs;
        instrs.iter().enumerate().all(|(k, instr)| match &instr.op {
            Op::Decref(v) | Op::XDecref(v) if released_after_incref(&instrs[..k], *v) => true,
            _ => runs_no_python_op(instr),
        })
    })
}

/// Whether `before` (the instructions of a block before a release of `v`) took a reference
/// to `v` that nothing since could have let go of: then the release leaves at least the
/// reference `v` had when it was taken (`LOAD_FAST c` ... `STORE_SUBSCR` consuming it: the
/// local keeps `c` alive). Nothing in between releases anything, calls C code that could, or
/// lets another thread run.
fn released_after_incref(before: &[Instr], v: ValueId) -> bool {
    for instr in before.iter().rev() {
        match &instr.op {
            Op::Incref(x) if *x == v => return true,
            Op::Decref(_) | Op::XDecref(_) | Op::StoreLocal { .. } | Op::ClearLocal { .. } | Op::CheckEvalBreaker { .. } => {
                return false
            }
            op if op.is_machine() => {}
            Op::Incref(_) | Op::Const { .. } | Op::ConstObject { .. } | Op::Null | Op::LoadArg { .. } | Op::IsNull(_) | Op::NonNull(_) => {}
            _ => return false,
        }
    }
    false
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
    let Site { load, preheader, mut entry_exit, blocks } = site;
    let value = load.checked();
    // On entering the loop: the global (and its attribute), checked, released (the compiled
    // code keeps the object checked alive).
    let mut fresh = || {
        func.values.push(Type::MaybeNull);
        ValueId(func.values.len() as u32 - 1)
    };
    let peeked = fresh();
    let attr = load.attr.map(|(_, name)| (fresh(), name));
    let last = attr.map_or(peeked, |(a, _)| a);
    entry_exit.release.push(peeked);
    entry_exit.release.extend(attr.map(|(a, _)| a));
    func.exits.push(entry_exit);
    let exit = ExitId(func.exits.len() as u32 - 1);
    let at = func.blocks[load.block].instrs.iter().find(|i| i.result == Some(load.global)).map_or(0, |i| i.at);
    let instr = |op, result, exit| Instr { result, op, exit, at, deopt: None };
    let (guard, constant) = match load.check {
        Check::Function(f) => (Op::GuardFunction { value: last, func: f.func, code: f.code }, Op::Const { index: f.constant }),
        Check::Object(address) => (Op::GuardIs { value: last, expected: address }, Op::ConstObject { address }),
    };
    let entry = &mut func.blocks[preheader].instrs;
    entry.push(instr(Op::PeekGlobal { name: load.name }, Some(peeked), None));
    if let Some((a, name)) = attr {
        entry.push(instr(Op::PeekAttr { obj: peeked, name }, Some(a), None));
    }
    entry.push(instr(guard, None, Some(exit)));
    // (Not NULL past the guard; their types still say they may be.)
    entry.extend(attr.map(|(a, _)| instr(Op::XDecref(a), None, None)));
    entry.push(instr(Op::XDecref(peeked), None, None));
    // In the loop: the object as a constant, neither checked nor counted; the global's load
    // (when the attribute is what is checked) gone.
    let gone = |v: ValueId| v == value || (load.attr.is_some() && v == load.global);
    for block in &mut func.blocks {
        block.instrs.retain(|i| {
            let guard_or_release = matches!(i.op, Op::GuardFunction { value: v, .. } | Op::GuardIs { value: v, .. } | Op::Decref(v) if gone(v));
            let global_load = load.attr.is_some() && i.result == Some(load.global);
            !guard_or_release && !global_load
        });
        for i in &mut block.instrs {
            if i.result == Some(value) {
                *i = Instr { result: Some(value), op: constant.clone(), exit: None, at: i.at, deopt: None };
            }
        }
    }
    // Exits holding it hand the frame a reference of their own.
    for exit in &mut func.exits {
        exit.release.retain(|v| !gone(*v));
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
