//! Direct calls of compiled functions, by themselves (recursion such as `fib(n - 1) +
//! fib(n - 2)`) or by other functions, without a Python frame and on machine values.
//!
//! A function specialised for its arguments' kinds gets, besides its frame entry (the PEP 523
//! hook runs it on an interpreter frame), a *direct entry*: the same specialised code taking
//! the arguments as machine values (the kinds its entry guards check) and returning a machine
//! value, and a status. It qualifies only when, given those kinds, its body runs machine
//! operations and direct calls only: nothing in it can run Python code, raise, allocate or
//! touch a frame, so a call of it has no effect but its result. Then any way out of a direct
//! entry (a failed guard, an overflow, the eval breaker, the recursion limit) simply returns
//! "not done", up to the frame code that started the chain of direct calls, whose call site
//! leaves for the interpreter *before* the call (its deopt state): the interpreter redoes the
//! call for real, with a frame, so results, exceptions, tracebacks, recursion errors, signals
//! and tracing are exactly the interpreter's.
//!
//! A call site qualifies (`Facts::direct_calls`) when it calls, through a global, the function
//! being compiled (found at compile time) with arguments of the kinds it is specialised for.
//! At run time the frame code checks, before calling the direct entry, that the callable is a
//! plain function running this code object with the calling frame's globals and that no tracer
//! is on (`GuardCallee`, `CheckTracing`): inside the chain nothing can rebind the global or
//! turn tracing on, since no Python code runs there. The result kind of the direct entry is an
//! assumption the specialiser makes for the recursive calls (`DirectCall::returns`); the
//! direct entry is only made when every return of the specialised body returns a machine
//! value of that kind, which makes the assumption true by induction on the depth of the calls.
//!
//! Another function of the same globals (`sum_to(n)` with a loop, called from a loop of
//! `main`) may be called through its direct entry too: the caller compiles it for the kinds
//! of the arguments at the call (`compiler::add_other_direct_calls`) and guards the callee
//! the same way. Such an entry may only rely on that one guard: it has no guards on other
//! functions (nor calls of their entries), and its own recursive calls go through the very
//! global the caller checked. A function calling another's entry has no direct entry itself,
//! so chains stay one function deep (with its recursion).

use crate::hashing::{HashMap, HashSet};

use super::{BlockId, Edge, FloatOp, Function, Instr, Op, Terminator, Type, ValueId};

/// Removes the eval-breaker and tracing checks that follow a direct call (the interpreter's
/// checks after a CALL): the direct callee ran no Python code and checked the eval breaker
/// itself on entry.
pub fn drop_checks_after_direct_calls(func: &mut Function) {
    for block in &mut func.blocks {
        let mut k = 0;
        while k < block.instrs.len() {
            if !matches!(block.instrs[k].op, Op::CallDirect { .. }) {
                k += 1;
                continue;
            }
            k += 1;
            while k < block.instrs.len() {
                match block.instrs[k].op {
                    Op::Incref(_) | Op::Decref(_) => k += 1,
                    Op::CheckEvalBreaker { .. } | Op::CheckTracing => {
                        block.instrs.remove(k);
                    }
                    _ => break,
                }
            }
        }
    }
    super::build::compact_exits(func);
}

/// Whether `func` (specialised) calls its own direct entry.
pub fn has_direct_calls(func: &Function) -> bool {
    func.blocks.iter().flat_map(|b| &b.instrs).any(|i| matches!(i.op, Op::CallDirect { .. }))
}

/// A global a direct entry relies on without checking it: it must be the object at address
/// `expected` (`range`, a builtin, in a range loop), checked by the frame code before the
/// call. `name` indexes the callee's `co_names`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub name: u32,
    pub expected: i64,
}

/// The body of the direct entry made from `spec`, the specialised function (frame entry),
/// whose direct entry returns machine values of type `returns`, and the globals it relies on;
/// None if it does not qualify (see the module documentation). Arguments become
/// `DirectArg`s; the frame's argument objects, the loads of the function's own global and of
/// the globals it requires, and the boxing of returned values go; every exit means "not
/// done" (its frame state is dropped).
pub fn direct_variant(spec: &Function, returns: Type, own_code: i64) -> Option<(Function, Vec<Requirement>)> {
    let mut out = spec.clone();
    let mut arg_local: HashMap<ValueId, u32> = HashMap::default();
    let mut callees: HashSet<ValueId> = HashSet::default();
    // Globals checked to be one object (`GuardIs`), by the value loaded: that object.
    let mut checked: HashMap<ValueId, i64> = HashMap::default();
    let mut reads_flags = false;
    for instr in spec.blocks.iter().flat_map(|b| &b.instrs) {
        match (&instr.op, instr.result) {
            (Op::LoadArg { local }, Some(r)) => {
                arg_local.insert(r, *local);
            }
            (Op::GuardIs { value, expected }, _) => {
                checked.insert(*value, *expected);
            }
            (Op::CheckFlag { .. }, _) => reads_flags = true,
            (Op::GuardCallee { value, code }, _) if *code == own_code => {
                callees.insert(*value);
            }
            // A guard on another function (or a call of its entry) would need checking before
            // the chain of direct calls starts, which only checks the function itself.
            (Op::GuardCallee { .. }, _) => return None,
            (Op::CallDirect { target, .. }, _) if *target != 0 => return None,
            _ => {}
        }
    }
    // The machine value of each argument object (made by the entry guards).
    let mut arg_value: HashMap<ValueId, ValueId> = HashMap::default();
    let mut boxes: HashMap<ValueId, ValueId> = HashMap::default();
    let mut nulls: HashSet<ValueId> = HashSet::default();
    let mut required: HashSet<ValueId> = HashSet::default();
    let mut requirements = Vec::new();
    let mut virtual_ranges: HashSet<ValueId> = HashSet::default();
    for block in &mut out.blocks {
        let mut instrs = Vec::with_capacity(block.instrs.len());
        for mut instr in std::mem::take(&mut block.instrs) {
            let result = instr.result;
            match &instr.op {
                // Objects the frame code holds for its exits (NULL: CALL's method slot).
                Op::LoadArg { .. } => continue,
                Op::Null => {
                    nulls.insert(result?);
                    continue;
                }
                Op::GuardType { value, .. } if arg_local.contains_key(value) => continue,
                Op::Unbox { value, to } if arg_local.contains_key(value) => {
                    let index = arg_local[value];
                    arg_value.insert(*value, result?);
                    instr.op = Op::DirectArg { index, ty: *to };
                    instr.exit = None;
                }
                Op::Incref(v) | Op::Decref(v) if arg_local.contains_key(v) || callees.contains(v) || boxes.contains_key(v) => {
                    continue
                }
                Op::LoadGlobal { .. } if result.is_some_and(|r| callees.contains(&r)) => continue,
                Op::LoadGlobal { name } if result.is_some_and(|r| checked.contains_key(&r)) => {
                    let r = result?;
                    required.insert(r);
                    requirements.push(Requirement { name: *name, expected: checked[&r] });
                    continue;
                }
                Op::GuardIs { value, .. } | Op::Incref(value) | Op::Decref(value) if required.contains(value) => continue,
                // Emits no code: only exits (which make the iterator) read it.
                Op::RangeIterVirtual { .. } => {
                    virtual_ranges.insert(result?);
                    continue;
                }
                // Bound flags only matter to exits when nothing reads them.
                Op::SetBound { .. } if !reads_flags => continue,
                // Checked by the frame code before the chain of calls starts; and the
                // frame's slots (the objects of unboxed locals, for exits): a direct entry
                // has none.
                Op::GuardCallee { .. } | Op::CheckTracing | Op::GuardGlobalIs { .. } | Op::ClearLocal { .. } | Op::StoreLocal { .. } => {
                    continue
                }
                Op::Box(m) => {
                    boxes.insert(result?, *m);
                    continue;
                }
                Op::ConstI64 { .. }
                | Op::ConstF64 { .. }
                | Op::ConstBool(_)
                | Op::IntBinary { .. }
                | Op::FloatBinary { op: FloatOp::Add | FloatOp::Sub | FloatOp::Mul | FloatOp::Div, .. }
                | Op::FloatNeg(_)
                | Op::IntToFloat { .. }
                | Op::IntCompare { .. }
                | Op::FloatCompare { .. }
                | Op::BoolNot(_)
                | Op::Select { .. }
                | Op::Copy(_)
                | Op::RangeIndexNext(_)
                | Op::CallDirect { .. }
                | Op::CheckEvalBreaker { .. } => {}
                _ => return None,
            }
            instrs.push(instr);
        }
        block.instrs = instrs;
    }
    for block in &mut out.blocks {
        if let Terminator::Return(v) = block.terminator {
            let machine = if let Some(&m) = boxes.get(&v) {
                m
            } else if arg_local.contains_key(&v) {
                *arg_value.get(&v)?
            } else {
                return None;
            };
            if out.values[machine.index()] != returns {
                return None;
            }
            block.terminator = Terminator::Return(machine);
        }
    }
    // Every exit only says "not done".
    for exit in &mut out.exits {
        exit.state.locals.clear();
        exit.state.stack.clear();
        exit.release.clear();
        exit.range_positions.clear();
        exit.borrowed.clear();
    }
    // Parameters only exits read (a loop variable that may be unbound) go with them.
    drop_unread_params(&mut out);
    // Nothing left may read a value the direct entry does not have; block parameters are
    // machine values.
    let gone = |v: &ValueId| {
        arg_local.contains_key(v)
            || callees.contains(v)
            || boxes.contains_key(v)
            || nulls.contains(v)
            || required.contains(v)
            || virtual_ranges.contains(v)
    };
    for block in &out.blocks {
        if block.params.iter().any(|p| !out.values[p.index()].is_unboxed()) {
            return None;
        }
        let edge_args = block.terminator.edges().into_iter().flat_map(|e| e.args.clone());
        let reads: Vec<ValueId> =
            block.instrs.iter().flat_map(|i| i.op.operands()).chain(block.terminator.operands()).chain(edge_args).collect();
        if reads.iter().any(gone) {
            return None;
        }
    }
    out.bound_flags.clear();
    // No frame, no local slots.
    out.nlocalsplus = 0;
    Some((out, requirements))
}

/// Removes the block parameters of `func` that nothing reads but edges into other such
/// parameters, with their edges' arguments.
fn drop_unread_params(func: &mut Function) {
    let mut read: HashSet<ValueId> = HashSet::default();
    for block in &func.blocks {
        read.extend(block.instrs.iter().flat_map(|i| i.op.operands()));
        read.extend(block.terminator.operands());
    }
    // A parameter read makes what its edges pass read, up to a fixed point.
    loop {
        let before = read.len();
        for block in &func.blocks {
            for edge in block.terminator.edges() {
                let params = &func.blocks[edge.target.index()].params;
                for (param, arg) in params.iter().zip(&edge.args) {
                    if read.contains(param) {
                        read.insert(*arg);
                    }
                }
            }
        }
        if read.len() == before {
            break;
        }
    }
    let keep: Vec<Vec<bool>> = func.blocks.iter().map(|b| b.params.iter().map(|p| read.contains(p)).collect()).collect();
    for (b, block) in func.blocks.iter_mut().enumerate() {
        block.params = block.params.iter().zip(&keep[b]).filter(|(_, k)| **k).map(|(p, _)| *p).collect();
        for edge in block.terminator.edges_mut() {
            let kept = &keep[edge.target.index()];
            edge.args = edge.args.iter().zip(kept).filter(|(_, k)| **k).map(|(a, _)| *a).collect();
        }
    }
}

/// Inlines the direct entry's body, once, into each of its own direct calls in `body` (the
/// body `direct_variant` made): each direct entry then runs two levels of the recursion, so
/// half as many calls are made (fib's body gets four calls of itself instead of two). The
/// inlined copies' exits are the entry's own (every exit of a direct entry means "not done":
/// abandoning the inner level abandons the outer one too, which had no effect either); their
/// eval-breaker checks go (the entry checks once). The entry takes two levels of recursion
/// budget (see `backend::current::DirectEntry::levels`).
pub fn inline_self_once(body: &Function) -> Function {
    let mut out = body.clone();
    let mut sites: Vec<(usize, usize)> = Vec::new();
    for (b, block) in body.blocks.iter().enumerate() {
        for (i, instr) in block.instrs.iter().enumerate() {
            if matches!(instr.op, Op::CallDirect { .. }) {
                sites.push((b, i));
            }
        }
    }
    // Last first, so splitting a block leaves the positions of the sites before it.
    for &(b, i) in sites.iter().rev() {
        let call = out.blocks[b].instrs[i].clone();
        let (Op::CallDirect { args, .. }, Some(result)) = (&call.op, call.result) else { continue };
        // The rest of the block continues after the call, with its result as a parameter.
        let rest: Vec<Instr> = out.blocks[b].instrs.drain(i..).skip(1).collect();
        let continuation = BlockId(out.blocks.len() as u32);
        let mut after = out.blocks[b].clone();
        after.params = vec![result];
        after.instrs = rest;
        out.blocks.push(after);
        // A copy of the body: arguments are the call's, other values new.
        let mut values: HashMap<ValueId, ValueId> = HashMap::default();
        for instr in body.blocks.iter().flat_map(|bl| &bl.instrs) {
            if let (Op::DirectArg { index, .. }, Some(r)) = (&instr.op, instr.result) {
                values.insert(r, args[*index as usize]);
            }
        }
        for (k, ty) in body.values.iter().enumerate() {
            values.entry(ValueId(k as u32)).or_insert_with(|| {
                out.values.push(*ty);
                ValueId(out.values.len() as u32 - 1)
            });
        }
        let base = out.blocks.len() as u32;
        let value = |v: &ValueId| values[v];
        for block in &body.blocks {
            let mut copy = block.clone();
            copy.params = block.params.iter().map(value).collect();
            copy.instrs = block
                .instrs
                .iter()
                .filter(|instr| !matches!(instr.op, Op::DirectArg { .. } | Op::CheckEvalBreaker { .. }))
                .map(|instr| {
                    let mut new = instr.clone();
                    for operand in new.op.operands_mut() {
                        *operand = value(operand);
                    }
                    new.result = new.result.map(|r| value(&r));
                    new
                })
                .collect();
            for edge in copy.terminator.edges_mut() {
                edge.target = BlockId(base + edge.target.0);
                for a in &mut edge.args {
                    *a = value(a);
                }
            }
            match &mut copy.terminator {
                Terminator::Return(v) => copy.terminator = Terminator::Jump(Edge { target: continuation, args: vec![value(v)] }),
                Terminator::Branch { cond, .. } => *cond = value(cond),
                Terminator::Jump(_) | Terminator::Exit(_) => {}
            }
            out.blocks.push(copy);
        }
        out.blocks[b].terminator = Terminator::Jump(Edge { target: BlockId(base), args: vec![] });
    }
    out
}
