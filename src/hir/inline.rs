//! Inlining of small pure functions called through a global (`eval_A(i, j)`), before
//! specialisation, so their arithmetic runs on the caller's machine values.
//!
//! A callee qualifies when its body is one straight-line block and, specialised for the
//! argument kinds at the call site, runs machine operations only: it cannot run Python code,
//! touch a frame or have any effect. Then any of its exits can simply abandon it: the call is
//! redone by the interpreter from the caller's state *before* the call (its deopt state), which
//! gives exactly what the call would have given, traceback included. An exception already set
//! (only a failed allocation can do that) leaves through the caller's own exit for the call.
//!
//! The call site keeps the load of the global (the frame state before the call holds it) and
//! guards that it is still the function inlined, running the same code object (`__code__` can be
//! reassigned); the compiled code keeps both alive, so their addresses cannot be reused.

use crate::hashing::HashMap;

use super::{Exit, ExitId, ExitKind, Function, Instr, Op, Terminator, ValueId};

/// Whether `spec`, a callee specialised for a call site's argument kinds, runs only machine
/// operations (see the module documentation), in the one block after its entry.
pub fn is_pure_machine(generic: &Function, spec: &Function) -> bool {
    if generic.blocks.len() != 2 || !matches!(generic.blocks[1].terminator, Terminator::Return(_)) {
        return false;
    }
    let entry_ok = generic.blocks[0].instrs.iter().all(|i| matches!(i.op, Op::LoadArg { .. }))
        && matches!(&generic.blocks[0].terminator, Terminator::Jump(e) if e.target.index() == 1 && e.args.is_empty());
    if !entry_ok {
        return false;
    }
    // The returned value must be made by the body (not an argument), so it can become the
    // call's result.
    let Terminator::Return(ret) = generic.blocks[1].terminator else { return false };
    if !generic.blocks[1].instrs.iter().any(|i| i.result == Some(ret)) {
        return false;
    }
    // Locals other than the arguments would live in the callee's frame.
    if generic.blocks[1].instrs.iter().any(|i| matches!(i.op, Op::StoreLocal { .. } | Op::ClearLocal { .. })) {
        return false;
    }
    spec.blocks.iter().flat_map(|b| &b.instrs).all(|i| {
        matches!(
            i.op,
            Op::LoadArg { .. }
                | Op::Const { .. }
                | Op::ConstI64 { .. }
                | Op::ConstF64 { .. }
                | Op::ConstBool(_)
                | Op::IntBinary { .. }
                | Op::FloatBinary { .. }
                | Op::FloatNeg(_)
                | Op::IntToFloat { .. }
                | Op::IntCompare { .. }
                | Op::FloatCompare { .. }
                | Op::BoolNot(_)
                | Op::Box(_)
                | Op::Unbox { .. }
                | Op::GuardType { .. }
                | Op::Incref(_)
                | Op::Decref(_)
                | Op::CheckEvalBreaker { .. }
        )
    }) && spec.blocks.iter().all(|b| matches!(b.terminator, Terminator::Jump(_) | Terminator::Return(_)))
}

/// Replaces the call at `caller.blocks[block].instrs[index]` by the body of `callee` (its
/// generic HIR, built with deopt states), behind a guard that the callable is still `func`
/// running `code`. The callee's constants are `co_consts` indices offset by `const_base` in
/// the caller (the caller's constant tables are extended by the compiler). Returns false (and
/// changes nothing) if the call site does not have the shape this needs.
pub fn inline_call(caller: &mut Function, block: usize, index: usize, callee: &Function, func: i64, code: i64, const_base: u32) -> bool {
    let call = caller.blocks[block].instrs[index].clone();
    let (Op::Call { callable, args, kwnames: None, .. }, Some(result), Some(raise), Some(deopt)) =
        (&call.op, call.result, call.exit, call.deopt)
    else {
        return false;
    };
    let Terminator::Return(ret) = callee.blocks[1].terminator else { return false };
    // Callee values: arguments are the caller's, the returned value is the call's result,
    // everything else is new.
    let mut map: HashMap<ValueId, ValueId> = HashMap::default();
    for instr in &callee.blocks[0].instrs {
        if let (Op::LoadArg { local }, Some(r)) = (&instr.op, instr.result) {
            match args.get(*local as usize) {
                Some(a) => map.insert(r, *a),
                None => return false,
            };
        }
    }
    if map.len() != args.len() || map.contains_key(&ret) {
        return false;
    }
    map.insert(ret, result);
    for (i, ty) in callee.values.iter().enumerate() {
        let v = ValueId(i as u32);
        if !map.contains_key(&v) {
            caller.values.push(*ty);
            map.insert(v, ValueId(caller.values.len() as u32 - 1));
        }
    }
    let value = |v: ValueId| map[&v];
    // Callee exits become the caller's exits for the call, also releasing the references the
    // callee held there (its value stack and consumed operands; its locals are the caller's
    // borrowed arguments).
    let mut exits: HashMap<ExitId, ExitId> = HashMap::default();
    for (k, exit) in callee.exits.iter().enumerate() {
        let base = if exit.kind == ExitKind::Raise { raise } else { deopt };
        let mut new: Exit = caller.exits[base.index()].clone();
        for v in exit.state.stack.iter().chain(&exit.release) {
            if callee.type_of(*v).is_object_like() {
                new.release.push(value(*v));
            }
        }
        caller.exits.push(new);
        exits.insert(ExitId(k as u32), ExitId(caller.exits.len() as u32 - 1));
    }
    let mut body = vec![Instr {
        result: None,
        op: Op::GuardFunction { value: *callable, func, code },
        exit: Some(deopt),
        at: call.at,
        deopt: None,
    }];
    for instr in &callee.blocks[1].instrs {
        // The callee's own eval-breaker check at its start: the caller checks its loops.
        if matches!(instr.op, Op::CheckEvalBreaker { .. }) {
            continue;
        }
        let mut new = instr.clone();
        for operand in new.op.operands_mut() {
            *operand = value(*operand);
        }
        if let Op::Const { index } = &mut new.op {
            *index += const_base;
        }
        new.result = new.result.map(value);
        new.exit = new.exit.map(|x| exits[&x]);
        new.deopt = new.deopt.map(|x| exits[&x]);
        // The interpreter would show the caller at its CALL while the callee runs.
        new.at = call.at;
        body.push(new);
    }
    let after = index + body.len();
    caller.blocks[block].instrs.splice(index..=index, body);
    // The checks the interpreter makes after a call (signals, a tracer turned on by the
    // callee) have nothing to see after machine operations: the caller's loops check signals.
    let instrs = &mut caller.blocks[block].instrs;
    let mut k = after;
    while k < instrs.len() {
        match instrs[k].op {
            Op::Incref(_) | Op::Decref(_) => k += 1,
            Op::CheckEvalBreaker { .. } | Op::CheckTracing => {
                instrs.remove(k);
            }
            _ => break,
        }
    }
    true
}
